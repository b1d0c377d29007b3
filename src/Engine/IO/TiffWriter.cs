using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace MaLiang.Engine.IO;

/// <summary>Calibration and format choices for <see cref="TiffWriter"/> / <see cref="TiffStackWriter"/>.</summary>
public sealed class TiffWriteOptions
{
    /// <summary>Pixel size in <see cref="Unit"/>s: written as ImageJ <c>unit=</c> plus X/YResolution, so ImageJ opens the image calibrated.</summary>
    public double? PixelSize { get; init; }
    /// <summary>Length unit of <see cref="PixelSize"/> (ASCII; "µm" is written as ImageJ's "micron").</summary>
    public string Unit { get; init; } = "nm";
    /// <summary>ImageJ display range (<c>min=</c>/<c>max=</c>), e.g. for a rendered float image.</summary>
    public double? DisplayMin { get; init; }
    public double? DisplayMax { get; init; }
    /// <summary>Write BigTIFF even when classic TIFF would do (BigTIFF is chosen automatically above ~4 GB).</summary>
    public bool ForceBigTiff { get; init; }
}

/// <summary>Whole-stack TIFF writing (ImageJ-compatible, uncompressed, little-endian, atomic).</summary>
public static class TiffWriter
{
    /// <summary>Writes <paramref name="count"/> 16-bit frames (frame-major, row-major) to <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<ushort> frames, int width, int height, int count, TiffWriteOptions? opts = null)
    {
        CheckLength(frames.Length, width, height, count);
        using var w = new TiffStackWriter(path, width, height, PixelType.UInt16, opts);
        w.Append(frames);
        w.Commit();
    }

    /// <summary>Writes <paramref name="count"/> 32-bit float frames (frame-major, row-major) to <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<float> frames, int width, int height, int count, TiffWriteOptions? opts = null)
    {
        CheckLength(frames.Length, width, height, count);
        using var w = new TiffStackWriter(path, width, height, PixelType.Float32, opts);
        w.Append(frames);
        w.Commit();
    }

    private static void CheckLength(int length, int width, int height, int count)
    {
        if (count <= 0) throw new InvalidParameterException("count", $"zero frames (count = {count})");
        if (width <= 0 || height <= 0) throw new InvalidParameterException("width/height", $"frame size {width}x{height} is not positive");
        if (length != (long)width * height * count)
            throw new InvalidParameterException("frames", $"buffer holds {length} pixels, {count} frames of {width}x{height} are {(long)width * height * count}");
    }
}

/// <summary>
/// Streams frames into a TIFF stack: pixel data go straight to a temporary file (contiguous from offset 16, as ImageJ
/// expects for <c>images=N</c>); <see cref="Commit"/> appends the ImageDescription and one IFD per frame, picks BigTIFF
/// if the file would pass 4 GB, and renames the file into place. Dispose without Commit leaves nothing behind.
/// </summary>
public sealed class TiffStackWriter : IDisposable
{
    private const int DataStart = 16; // room for the BigTIFF header; classic TIFF uses the first 8 bytes
    private readonly AtomicFile _file;
    private readonly TiffWriteOptions _opts;
    private readonly int _frameBytes;
    private bool _done;

    public string Path => _file.Path;
    public int Width { get; }
    public int Height { get; }
    public PixelType PixelType { get; }
    /// <summary>Frames appended so far.</summary>
    public int Count { get; private set; }

    /// <param name="pixelType"><see cref="PixelType.UInt16"/> or <see cref="PixelType.Float32"/>.</param>
    public TiffStackWriter(string path, int width, int height, PixelType pixelType, TiffWriteOptions? options = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("TiffStackWriter writes little-endian data from memory as is");
        if (pixelType is not (PixelType.UInt16 or PixelType.Float32)) throw new InvalidParameterException("pixel-type", $"{pixelType} cannot be written; use UInt16 or Float32");
        if (width <= 0 || height <= 0 || (long)width * height * 4 > int.MaxValue) throw new InvalidParameterException("width/height", $"frame size {width}x{height} is not supported");
        _opts = options ?? new TiffWriteOptions();
        if (_opts.PixelSize is double ps && !(ps > 0 && double.IsFinite(ps))) throw new InvalidParameterException("pixel-size", $"{ps} is not a positive number");
        if (_opts.Unit.Any(c => c < 0x20 || c > 0x7e) && _opts.Unit != "µm") throw new InvalidParameterException("unit", $"\"{_opts.Unit}\" must be printable ASCII");
        Width = width; Height = height; PixelType = pixelType;
        _frameBytes = width * height * PixelConvert.BytesPerSample(pixelType);
        _file = AtomicFile.Create(path);
        try { _file.Stream.Write(new byte[DataStart]); }
        catch { _file.Dispose(); throw; } // no hidden temp file left behind (disk full, ...)
    }

    /// <summary>Appends one or more whole 16-bit frames (length a multiple of Width x Height).</summary>
    public void Append(ReadOnlySpan<ushort> frames) => AppendBytes(MemoryMarshal.AsBytes(frames), PixelType.UInt16);

    /// <summary>Appends one or more whole float frames (length a multiple of Width x Height).</summary>
    public void Append(ReadOnlySpan<float> frames) => AppendBytes(MemoryMarshal.AsBytes(frames), PixelType.Float32);

    private void AppendBytes(ReadOnlySpan<byte> bytes, PixelType type)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (type != PixelType) throw new InvalidOperationException($"{System.IO.Path.GetFileName(Path)} is a {PixelType} stack; cannot append {type} frames");
        if (bytes.Length == 0 || bytes.Length % _frameBytes != 0)
            throw new InvalidParameterException("frame", $"{bytes.Length / PixelConvert.BytesPerSample(type)} pixels is not a whole number of {Width}x{Height} frames");
        _file.Stream.Write(bytes);
        Count += bytes.Length / _frameBytes;
    }

    /// <summary>Writes the directory and moves the file into place.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (Count == 0) throw new InvalidParameterException("count", $"no frames were written to {System.IO.Path.GetFileName(Path)}");
        var fs = _file.Stream;
        long dataEnd = DataStart + (long)Count * _frameBytes;
        byte[] desc = Encoding.ASCII.GetBytes(Description() + "\0");
        // Classic TIFF if every offset fits in 32 bits: IFD = 2 + 15 entries x 12 + 4 bytes.
        long classicEnd = dataEnd + 2 + desc.Length + 16 + (long)Count * (2 + 15 * 12 + 4);
        bool big = _opts.ForceBigTiff || classicEnd > uint.MaxValue;

        fs.Position = dataEnd;
        if ((fs.Position & 1) != 0) fs.WriteByte(0); // TIFF wants word-aligned offsets
        long descPos = fs.Position;
        fs.Write(desc);
        if ((fs.Position & 1) != 0) fs.WriteByte(0);
        long resPos = fs.Position;
        var (num, den) = Rational(_opts.PixelSize is double p ? 1.0 / p : 1.0);
        Span<byte> res = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(res, num);
        BinaryPrimitives.WriteUInt32LittleEndian(res[4..], den);
        if (_opts.PixelSize != null && !big) fs.Write(res); // BigTIFF holds an 8-byte rational inline

        long firstIfd = fs.Position;
        int entries = _opts.PixelSize != null ? 15 : 12;
        int entrySize = big ? 20 : 12;
        int ifdSize = (big ? 8 : 2) + entries * entrySize + (big ? 8 : 4);
        byte[] ifd = new byte[ifdSize];
        for (int i = 0; i < Count; i++)
        {
            long self = firstIfd + (long)i * ifdSize;
            var e = new IfdBuilder(ifd, big);
            e.Count(entries);
            e.Entry(254, 4, 1, 0);
            e.Entry(256, 4, 1, (ulong)Width);
            e.Entry(257, 4, 1, (ulong)Height);
            e.Entry(258, 3, 1, PixelType == PixelType.UInt16 ? 16u : 32u);
            e.Entry(259, 3, 1, 1);
            e.Entry(262, 3, 1, 1);
            // Every IFD points at the one description (ImageJ reads it from the first), so each IFD has the same entry count.
            e.Entry(270, 2, (ulong)desc.Length, (ulong)descPos);
            e.Entry(273, big ? (ushort)16 : (ushort)4, 1, (ulong)(DataStart + (long)i * _frameBytes));
            e.Entry(277, 3, 1, 1);
            e.Entry(278, 4, 1, (ulong)Height);
            e.Entry(279, big ? (ushort)16 : (ushort)4, 1, (ulong)_frameBytes);
            if (_opts.PixelSize != null)
            {
                ulong r = big ? num | ((ulong)den << 32) : (ulong)resPos;
                e.Entry(282, 5, 1, r);
                e.Entry(283, 5, 1, r);
                e.Entry(296, 3, 1, _opts.Unit switch { "inch" => 2u, "cm" => 3u, _ => 1u });
            }
            e.Entry(339, 3, 1, PixelType == PixelType.Float32 ? 3u : 1u);
            e.Next(i + 1 < Count ? (ulong)(self + ifdSize) : 0);
            fs.Write(ifd);
        }

        fs.Position = 0;
        Span<byte> h = stackalloc byte[DataStart];
        h.Clear();
        h[0] = h[1] = (byte)'I';
        if (big)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(h[2..], 43);
            BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 8);
            BinaryPrimitives.WriteUInt64LittleEndian(h[8..], (ulong)firstIfd);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(h[2..], 42);
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)firstIfd);
        }
        fs.Write(h);
        _file.Commit();
        _done = true;
    }

    private string Description()
    {
        var sb = new StringBuilder("ImageJ=1.53t\n");
        if (Count > 1) sb.Append(CultureInfo.InvariantCulture, $"images={Count}\nslices={Count}\n");
        if (_opts.PixelSize != null) sb.Append("unit=").Append(_opts.Unit == "µm" ? "micron" : _opts.Unit).Append('\n');
        if (_opts.DisplayMin is double mn) sb.Append(CultureInfo.InvariantCulture, $"min={mn:R}\n");
        if (_opts.DisplayMax is double mx) sb.Append(CultureInfo.InvariantCulture, $"max={mx:R}\n");
        if (Count > 1) sb.Append("loop=false\n");
        return sb.ToString();
    }

    /// <summary>
    /// x as num/den, both 32-bit, by continued fractions: exact for pixel sizes like 150 nm (1/150) and otherwise the
    /// best approximation (ImageJ reads the pixel size back as 1/XResolution).
    /// </summary>
    internal static (uint num, uint den) Rational(double x)
    {
        long h0 = 0, h1 = 1, k0 = 1, k1 = 0; // convergents h/k
        double r = x;
        for (int i = 0; i < 64; i++)
        {
            double a = Math.Floor(r);
            if (a * h1 + h0 > uint.MaxValue || a * k1 + k0 > uint.MaxValue) break;
            (h0, h1) = (h1, (long)a * h1 + h0);
            (k0, k1) = (k1, (long)a * k1 + k0);
            double frac = r - a;
            if (frac == 0) break;
            r = 1 / frac;
        }
        return h1 == 0 || k1 == 0 ? (1u, uint.MaxValue) : ((uint)h1, (uint)k1);
    }

    public void Dispose()
    {
        _done = true;
        _file.Dispose();
    }

    private ref struct IfdBuilder(Span<byte> buf, bool big)
    {
        private readonly Span<byte> _b = buf;
        private int _pos;

        public void Count(int n)
        {
            if (big) { BinaryPrimitives.WriteUInt64LittleEndian(_b, (ulong)n); _pos = 8; }
            else { BinaryPrimitives.WriteUInt16LittleEndian(_b, (ushort)n); _pos = 2; }
        }

        // Little-endian: a SHORT or LONG value written as a whole 32/64-bit word lands left-justified, as TIFF requires.
        public void Entry(ushort tag, ushort type, ulong count, ulong value)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(_b[_pos..], tag);
            BinaryPrimitives.WriteUInt16LittleEndian(_b[(_pos + 2)..], type);
            if (big)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(_b[(_pos + 4)..], count);
                BinaryPrimitives.WriteUInt64LittleEndian(_b[(_pos + 12)..], value);
                _pos += 20;
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(_b[(_pos + 4)..], (uint)count);
                BinaryPrimitives.WriteUInt32LittleEndian(_b[(_pos + 8)..], (uint)value);
                _pos += 12;
            }
        }

        public void Next(ulong offset)
        {
            if (big) BinaryPrimitives.WriteUInt64LittleEndian(_b[_pos..], offset);
            else BinaryPrimitives.WriteUInt32LittleEndian(_b[_pos..], (uint)offset);
        }
    }
}
