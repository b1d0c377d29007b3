using System.Collections.Concurrent;
using BitMiracle.LibTiff.Classic;

namespace MaLiang.Engine.IO;

/// <summary>
/// Decodes compressed TIFF pages (LZW, Deflate, PackBits; strips or tiles) of one file through BitMiracle.LibTiff.NET,
/// for <see cref="TiffStack"/>, which has already parsed and checked every page and knows each page's IFD offset.
/// <para>A LibTiff <see cref="Tiff"/> is not thread-safe, so each reading thread borrows its own from a pool (one
/// per thread that ever reads at once), positioned by IFD offset (<see cref="Tiff.SetSubDirectory(long)"/>: O(1), not
/// a walk of the IFD chain). Decoded samples are in this machine's byte order (LibTiff swaps them).</para>
/// <para>LibTiff reports problems through one process-wide <see cref="TiffErrorHandler"/>: ours keeps the last error of
/// the calling thread for the exception's message and drops warnings, so nothing is printed on the console.</para>
/// </summary>
internal sealed class LibTiffPages : IDisposable
{
    /// <summary>TIFF compression schemes decoded here (lossless, and written by common acquisition and export tools).</summary>
    public static bool IsSupported(long compression) => compression is 1 or 5 or 8 or 32946 or 32773;

    private readonly string _path;
    private readonly string _name;
    private readonly PixelType _type;
    private readonly ConcurrentBag<Reader> _pool = [];
    private volatile bool _disposed;

    public LibTiffPages(string path, string name, PixelType type)
    {
        _path = path; _name = name; _type = type;
        Tiff.SetErrorHandler(QuietHandler.Instance);
    }

    /// <summary>Decodes the page at IFD offset <paramref name="ifd"/> (frame <paramref name="frame1"/>, 1-based, for
    /// messages) into <paramref name="dst"/> (width x height), converting samples to T (float or ushort). The geometry
    /// (strip rows, or tile size) is the one <see cref="TiffStack"/> parsed and checked.</summary>
    public void Read<T>(long ifd, int frame1, int width, int height, bool tiled, int rowsPerSegment, int tileWidth, Span<T> dst) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var r = Borrow();
        bool ok = false;
        try
        {
            Decode(r, ifd, frame1, width, height, tiled, rowsPerSegment, tileWidth, dst);
            ok = true;
        }
        finally
        {
            // A reader that failed mid-decode may hold a codec in a bad state: drop it rather than reuse it.
            if (ok && !_disposed) _pool.Add(r); else r.Dispose();
        }
    }

    private void Decode<T>(Reader r, long ifd, int frame1, int width, int height, bool tiled, int rowsPerSegment, int tileWidth, Span<T> dst) where T : unmanaged
    {
        var tif = r.Tif;
        QuietHandler.LastError = null;
        if (r.Ifd != ifd)
        {
            r.Ifd = -1;
            if (!tif.SetSubDirectory(ifd)) throw Fail(frame1, "cannot read its IFD");
            r.Ifd = ifd;
        }
        int bps = PixelConvert.BytesPerSample(_type);
        if (tiled != tif.IsTiled()) throw Fail(frame1, "LibTiff and MaLiang disagree on whether it is tiled");
        if (!tiled)
        {
            int rps = rowsPerSegment;
            int strips = (height + rps - 1) / rps;
            byte[] buf = r.Buffer(Math.Max(tif.StripSize(), rps * width * bps));
            for (int s = 0; s < strips; s++)
            {
                int y0 = s * rps, rows = Math.Min(rps, height - y0), n = rows * width;
                int got = tif.ReadEncodedStrip(s, buf, 0, -1);
                if (got < n * bps) throw Fail(frame1, got < 0 ? $"strip {s + 1} cannot be decoded" : $"strip {s + 1} decodes to {got} bytes, {n * bps} expected (truncated?)");
                Convert(buf.AsSpan(0, n * bps), dst.Slice(y0 * width, n));
            }
            return;
        }
        int tw = tileWidth, th = rowsPerSegment;
        int tileBytes = tw * th * bps;
        byte[] tb = r.Buffer(Math.Max(tif.TileSize(), tileBytes));
        int across = (width + tw - 1) / tw, down = (height + th - 1) / th;
        for (int t = 0; t < across * down; t++)
        {
            int tx = (t % across) * tw, ty = (t / across) * th;
            int w = Math.Min(tw, width - tx), rows = Math.Min(th, height - ty);
            int got = tif.ReadEncodedTile(t, tb, 0, -1);
            if (got < tileBytes) throw Fail(frame1, got < 0 ? $"tile {t + 1} cannot be decoded" : $"tile {t + 1} decodes to {got} bytes, {tileBytes} expected (truncated?)");
            for (int y = 0; y < rows; y++)
                Convert(tb.AsSpan(y * tw * bps, w * bps), dst.Slice((ty + y) * width + tx, w));
        }
    }

    private void Convert<T>(ReadOnlySpan<byte> src, Span<T> dst) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            PixelConvert.ToFloat(src, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(dst), _type, swap: false);
        else
            PixelConvert.ToUInt16(src, System.Runtime.InteropServices.MemoryMarshal.Cast<T, ushort>(dst), _type, swap: false);
    }

    /// <summary>
    /// The number of bytes a TIFF LZW segment decodes to (up to <paramref name="limit"/>), counted from its codes
    /// without building the strings: 9-12 bit codes MSB first, Clear 256, EOI 257, the code width growing one code
    /// early as libtiff's decoder does. Old-style (LSB-first) LZW is not counted: returns <paramref name="limit"/>.
    /// </summary>
    public static long LzwDecodedLength(ReadOnlySpan<byte> raw, long limit)
    {
        if (raw.Length >= 2 && raw[0] == 0 && (raw[1] & 1) != 0) return limit; // old-style codes: LibTiff checks those
        Span<int> lengths = stackalloc int[4096];
        long total = 0, bitPos = 0, bits = (long)raw.Length * 8;
        int width = 9, next = 258, prev = -1;
        while (total < limit && bitPos + width <= bits)
        {
            // read `width` bits MSB first from bitPos (at most 3 bytes)
            int byteIdx = (int)(bitPos >> 3), shift = (int)(bitPos & 7);
            int window = raw[byteIdx] << 16;
            if (byteIdx + 1 < raw.Length) window |= raw[byteIdx + 1] << 8;
            if (byteIdx + 2 < raw.Length) window |= raw[byteIdx + 2];
            int code = (window >> (24 - shift - width)) & ((1 << width) - 1);
            bitPos += width;
            if (code == 257) break;
            if (code == 256) { width = 9; next = 258; prev = -1; continue; }
            int len = code < 256 ? 1 : code < next ? lengths[code] : (prev < 0 ? 1 : (prev < 256 ? 1 : lengths[prev]) + 1);
            if (code >= next && code != next) return total; // a code not yet defined: corrupt, stop counting
            total += len;
            if (prev >= 0 && next < 4096)
            {
                lengths[next] = (prev < 256 ? 1 : lengths[prev]) + 1;
                if (++next >= (1 << width) - 1 && width < 12) width++;
            }
            prev = code;
        }
        return total;
    }

    private MaLiangException Fail(int frame1, string what)
    {
        string? why = QuietHandler.LastError;
        return new MaLiangException($"{_name}: frame {frame1}: {what}{(why != null ? $" ({why})" : "")}");
    }

    private Reader Borrow()
    {
        if (_pool.TryTake(out var r)) return r;
        FileStream fs;
        try { fs = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, FileOptions.RandomAccess); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MaLiangException($"cannot open {_path}: {e.Message}", e);
        }
        QuietHandler.LastError = null;
        // "c": no strip chopping (LibTiff would otherwise cut a big uncompressed strip into 8 KB pieces that our layout does not know)
        var tif = Tiff.ClientOpen(_name, "rc", fs, new TiffStream());
        if (tif == null)
        {
            fs.Dispose();
            throw new MaLiangException($"{_name}: LibTiff cannot open it{(QuietHandler.LastError is { } e2 ? $" ({e2})" : "")}");
        }
        return new Reader(tif, fs, tif.CurrentDirOffset());
    }

    public void Dispose()
    {
        _disposed = true;
        while (_pool.TryTake(out var r)) r.Dispose();
    }

    private sealed class Reader(Tiff tif, FileStream fs, long ifd) : IDisposable
    {
        public readonly Tiff Tif = tif;
        public long Ifd = ifd;
        private byte[] _buffer = [];

        /// <summary>A scratch buffer of at least <paramref name="bytes"/>, kept for the next page (no allocation per frame).</summary>
        public byte[] Buffer(int bytes) => _buffer.Length >= bytes ? _buffer : _buffer = new byte[bytes];

        public void Dispose() { Tif.Dispose(); fs.Dispose(); }
    }

    /// <summary>LibTiff's process-wide error handler: errors kept for the calling thread's exception, warnings dropped.</summary>
    private sealed class QuietHandler : TiffErrorHandler
    {
        public static readonly QuietHandler Instance = new();
        [ThreadStatic] public static string? LastError;

        private static void Keep(string method, string format, object[] args)
        {
            string msg;
            try { msg = args is { Length: > 0 } ? string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args) : format; }
            catch (FormatException) { msg = format; }
            LastError = string.IsNullOrEmpty(method) ? msg : $"{method}: {msg}";
        }

        public override void ErrorHandler(Tiff tif, string method, string format, params object[] args) => Keep(method, format, args);
        public override void ErrorHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args) => Keep(method, format, args);
        public override void WarningHandler(Tiff tif, string method, string format, params object[] args) { }
        public override void WarningHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args) { }
    }
}
