using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;

namespace MaLiang.Engine.IO;

/// <summary>How <see cref="TiffStack"/> decodes pages: Auto maps uncompressed pages and hands compressed ones to
/// LibTiff; LibTiff decodes every page through LibTiff (to compare the two readers in bench/).</summary>
public enum TiffDecoder { Auto, LibTiff }

/// <summary>
/// A TIFF stack (one or several files) as an <see cref="IFrameSource"/>, memory-mapped read-only.
/// <para>Supported: classic TIFF and BigTIFF, either byte order, one sample per pixel, 8/16/32-bit unsigned, 16/32-bit
/// signed and 32-bit float samples, strips (any rows per strip) or tiles, multi-page files; uncompressed, LZW, Deflate
/// (Adobe and old-style) and PackBits, with or without a predictor. Uncompressed pages are read from the mapping
/// directly; compressed ones are decoded by BitMiracle.LibTiff.NET (<see cref="LibTiffPages"/>), after this class has
/// parsed and checked them like any other page. Lossy (JPEG) and other schemes are refused.
/// Pages flagged as reduced-resolution (NewSubfileType bit 0, e.g. thumbnails) are skipped.</para>
/// <para>ImageJ: when the first page's ImageDescription is ImageJ's (<c>ImageJ=...</c>) and says <c>images=N</c> with N
/// greater than the number of pages in the file (ImageJ's layout for stacks over 4 GB: one IFD, data contiguous), the
/// frame offsets are derived from the first frame's offset and the frame size, provided the pages that are listed
/// agree with that contiguous layout. Otherwise the IFDs are used.</para>
/// <para>Micro-Manager / OME-TIFF sets (only by <see cref="Open(string)"/>): if the first page carries OME-XML whose
/// <c>UUID FileName="..."</c> attributes name other files, those files (in order of first mention, all in the same folder,
/// restricted to the opened file's <c>_MMStack_</c> position when it follows that naming) are opened as one stack;
/// otherwise, a file named <c>X_MMStack_P.ome.tif</c> or <c>X_MMStack_P_k.ome.tif</c> opens <c>X_MMStack_P.ome.tif</c>,
/// <c>X_MMStack_P_1.ome.tif</c>, <c>X_MMStack_P_2.ome.tif</c>, ... while they exist. Frames are all pages of all files in
/// that order (no reordering by OME dimension).</para>
/// <para>Errors are <see cref="MaLiangException"/>s naming the file (and the 1-based frame where relevant).
/// <see cref="ReadFrame(int, Span{float})"/> is safe to call from several threads at once; do not dispose while reading.</para>
/// </summary>
public sealed unsafe class TiffStack : IFrameSource
{
    private readonly MappedFile[] _files;
    private readonly FrameLoc[] _frames;
    private readonly Layout[] _layouts;
    private readonly int _frameBytes;
    private readonly int _bytesPerSample;

    public string Name { get; }
    public int Width { get; }
    public int Height { get; }
    public int FrameCount => _frames.Length;
    public PixelType PixelType { get; }
    /// <summary>The files that make up the stack, in frame order.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>Opens a TIFF file; Micro-Manager OME-TIFF sets are opened whole (see the class remarks).</summary>
    public static TiffStack Open(string path) => OpenCore(ExpandSet(path), path, false);

    /// <summary>Opens several TIFF files of equal frame size as one stack, frames in the given file order (no set expansion).</summary>
    public static TiffStack Open(IReadOnlyList<string> paths) => Open(paths, TiffDecoder.Auto);

    /// <summary>As <see cref="Open(IReadOnlyList{string})"/>; <see cref="TiffDecoder.LibTiff"/> decodes uncompressed pages
    /// through LibTiff too (for comparing the two readers; ImageJ's contiguous >4 GB layout is then not recognised).</summary>
    public static TiffStack Open(IReadOnlyList<string> paths, TiffDecoder decoder)
    {
        if (paths.Count == 0) throw new InvalidParameterException("paths", "no TIFF files given");
        return OpenCore(paths, paths[0], decoder == TiffDecoder.LibTiff);
    }

    private TiffStack(MappedFile[] files, FrameLoc[] frames, Layout[] layouts, int w, int h, PixelType type, string name)
    {
        _files = files; _frames = frames; _layouts = layouts; Width = w; Height = h; PixelType = type; Name = name;
        _bytesPerSample = PixelConvert.BytesPerSample(type);
        _frameBytes = w * h * _bytesPerSample;
        Files = Array.ConvertAll(files, f => f.Path);
    }

    /// <summary>Reads frame <paramref name="index"/> (0-based) as raw values into <paramref name="destination"/> (Width x Height).</summary>
    public void ReadFrame(int index, Span<float> destination)
    {
        var (f, fr) = Locate(index, destination.Length);
        bool swap = f.LittleEndian != BitConverter.IsLittleEndian;
        if (fr.Layout < 0)
        {
            PixelConvert.ToFloat(f.Span(fr.Offset, _frameBytes), destination[..(Width * Height)], PixelType, swap);
            f.Release(fr.Offset, _frameBytes);
            return;
        }
        ForEachRun(f, _layouts[fr.Layout], destination, swap);
    }

    /// <summary>16-bit fast path: frame <paramref name="index"/> as stored, without conversion to float.
    /// Only for <see cref="PixelType.UInt16"/> (and <see cref="PixelType.UInt8"/>, widened).</summary>
    public void ReadFrame(int index, Span<ushort> destination)
    {
        if (PixelType is not (PixelType.UInt16 or PixelType.UInt8))
            throw new InvalidOperationException($"{Name} holds {PixelType} pixels; read it as float");
        var (f, fr) = Locate(index, destination.Length);
        bool swap = f.LittleEndian != BitConverter.IsLittleEndian;
        if (fr.Layout < 0)
        {
            PixelConvert.ToUInt16(f.Span(fr.Offset, _frameBytes), destination[..(Width * Height)], PixelType, swap);
            f.Release(fr.Offset, _frameBytes);
            return;
        }
        ForEachRun(f, _layouts[fr.Layout], destination, swap);
    }

    private (MappedFile, FrameLoc) Locate(int index, int destLength)
    {
        // A read after Dispose would dereference an unmapped view and crash the process, not throw.
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)index >= (uint)_frames.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"{Name} has {_frames.Length} frames");
        if (destLength < Width * Height) throw new ArgumentException($"destination holds {destLength} pixels, a frame has {Width * Height}", "destination");
        var fr = _frames[index];
        return (_files[fr.File], fr);
    }

    // Strips: each strip is whole rows, contiguous. Tiles: each tile row is one run inside a destination row.
    private void ForEachRun<T>(MappedFile f, Layout lay, Span<T> dst, bool swap) where T : unmanaged
    {
        if (lay.Ifd >= 0)
        {
            if (lay.Compression == 5) CheckLzwLengths(f, lay);
            f.Codec!.Read(lay.Ifd, lay.Page, Width, Height, lay.Tiled, lay.RowsPerSegment, lay.TileWidth, dst);
            return;
        }
        int bps = _bytesPerSample;
        if (!lay.Tiled)
        {
            for (int s = 0; s < lay.Offsets.Length; s++)
            {
                int y0 = s * lay.RowsPerSegment;
                if (y0 >= Height) break;
                int rows = Math.Min(lay.RowsPerSegment, Height - y0);
                int n = rows * Width;
                Convert(f.Span(lay.Offsets[s], n * bps), dst.Slice(y0 * Width, n), swap);
                f.Release(lay.Offsets[s], (long)n * bps);
            }
            return;
        }
        int across = (Width + lay.TileWidth - 1) / lay.TileWidth;
        for (int t = 0; t < lay.Offsets.Length; t++)
        {
            int tx = (t % across) * lay.TileWidth, ty = (t / across) * lay.RowsPerSegment;
            if (ty >= Height) break;
            int w = Math.Min(lay.TileWidth, Width - tx), rows = Math.Min(lay.RowsPerSegment, Height - ty);
            for (int r = 0; r < rows; r++)
                Convert(f.Span(lay.Offsets[t] + (long)r * lay.TileWidth * bps, w * bps), dst.Slice((ty + r) * Width + tx, w), swap);
            f.Release(lay.Offsets[t], (long)lay.TileWidth * lay.RowsPerSegment * bps);
        }
    }

    /// <summary>
    /// LibTiff.NET's LZW decoder does not notice a strip whose data ends early (it reads on into its buffer and returns
    /// garbage without an error), so each LZW segment's decoded length is counted from its codes first (cheap: no
    /// string table, only lengths) and a short one is reported as truncated.
    /// </summary>
    private void CheckLzwLengths(MappedFile f, Layout lay)
    {
        int bps = _bytesPerSample;
        for (int s = 0; s < lay.Offsets.Length; s++)
        {
            long expected = lay.Tiled ? (long)lay.TileWidth * lay.RowsPerSegment * bps
                : (long)Math.Min(lay.RowsPerSegment, Height - s * lay.RowsPerSegment) * Width * bps;
            int count = (int)lay.ByteCounts![s];
            long got = LibTiffPages.LzwDecodedLength(f.Span(lay.Offsets[s], count), expected);
            f.Release(lay.Offsets[s], count);
            if (got < expected)
                throw new MaLiangException($"{f.Name}: frame {lay.Page}: {(lay.Tiled ? "tile" : "strip")} {s + 1} is truncated (its LZW data decodes to {got} bytes, {expected} expected)");
        }
    }

    private void Convert<T>(ReadOnlySpan<byte> src, Span<T> dst, bool swap) where T : unmanaged
    {
        // T is float or ushort (the two public ReadFrame overloads); the JIT removes the dead branch.
        if (typeof(T) == typeof(float))
            PixelConvert.ToFloat(src, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(dst), PixelType, swap);
        else
            PixelConvert.ToUInt16(src, System.Runtime.InteropServices.MemoryMarshal.Cast<T, ushort>(dst), PixelType, swap);
    }

    private volatile bool _disposed;

    public void Dispose()
    {
        _disposed = true;
        foreach (var f in _files) f.Dispose();
    }

    // ---------------------------------------------------------------- opening

    private readonly record struct FrameLoc(int File, long Offset, int Layout);

    /// <summary>Non-contiguous frame data: strip or tile offsets. RowsPerSegment = rows per strip or tile length.
    /// A page decoded by LibTiff (compressed) has its IFD offset in <see cref="Ifd"/> (else -1) and its 1-based page
    /// number in the file in <see cref="Page"/>, for messages.</summary>
    private sealed record Layout(long[] Offsets, int RowsPerSegment, int TileWidth, bool Tiled, long Ifd = -1, int Page = 0,
        long[]? ByteCounts = null, long Compression = 1);

    private static TiffStack OpenCore(IReadOnlyList<string> paths, string displayPath, bool libTiffAll)
    {
        var files = new List<MappedFile>();
        try
        {
            var frames = new List<FrameLoc>();
            var layouts = new List<Layout>();
            int w = 0, h = 0; PixelType type = default; string firstName = "";
            for (int i = 0; i < paths.Count; i++)
            {
                var mf = MappedFile.Open(paths[i]);
                files.Add(mf);
                var pages = new TiffParser(mf, libTiffAll).ReadPages();
                if (pages.Count == 0) throw new MaLiangException($"{mf.Name} contains no frames");
                pages = ImageJContiguous(mf, pages);
                for (int j = 0; j < pages.Count; j++)
                {
                    var p = pages[j];
                    if (frames.Count == 0) { w = p.Width; h = p.Height; type = p.Type; firstName = mf.Name; }
                    else if (p.Width != w || p.Height != h)
                        throw new MaLiangException($"{mf.Name}: frame {j + 1} is {p.Width}x{p.Height} but frame 1 of {firstName} is {w}x{h}; all frames must have the same size");
                    else if (p.Type != type)
                        throw new MaLiangException($"{mf.Name}: frame {j + 1} has {p.Type} pixels but frame 1 of {firstName} has {type}; all frames must have the same pixel type");
                    int layout = -1;
                    if (p.Layout != null) { layout = layouts.Count; layouts.Add(p.Layout); }
                    if (p.Layout is { Ifd: >= 0 }) mf.Codec ??= new LibTiffPages(mf.Path, mf.Name, type);
                    frames.Add(new FrameLoc(i, p.Offset, layout));
                }
            }
            string name = paths.Count == 1 ? files[0].Name : $"{files[0].Name} (+{paths.Count - 1} files)";
            return new TiffStack([.. files], [.. frames], [.. layouts], w, h, type, name);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>ImageJ's >4 GB layout: fewer IFDs than images=N, data contiguous from the first frame on.</summary>
    private static List<Page> ImageJContiguous(MappedFile mf, List<Page> pages)
    {
        var first = pages[0];
        int n = ImageJImages(first.Descriptions);
        if (n <= pages.Count || first.Layout != null) return pages;
        long frameBytes = (long)first.Width * first.Height * PixelConvert.BytesPerSample(first.Type);
        for (int i = 1; i < pages.Count; i++)
            if (pages[i].Layout != null || pages[i].Offset != first.Offset + i * frameBytes) return pages;
        var all = new List<Page>(n);
        for (int i = 0; i < n; i++)
        {
            long off = first.Offset + i * frameBytes;
            if (off + frameBytes > mf.Length)
                throw new MaLiangException($"{mf.Name} is truncated: frame {i + 1} data ends past end of file");
            all.Add(first with { Offset = off });
        }
        return all;
    }

    private static int ImageJImages(List<string> descriptions)
    {
        foreach (var d in descriptions)
        {
            if (!d.StartsWith("ImageJ=", StringComparison.Ordinal)) continue;
            foreach (var line in d.Split('\n'))
                if (line.StartsWith("images=", StringComparison.Ordinal) && int.TryParse(line.AsSpan(7).Trim(), out int n)) return n;
        }
        return 0;
    }

    // ---------------------------------------------------------------- multi-file sets

    private static IReadOnlyList<string> ExpandSet(string path)
    {
        string full;
        try { full = Path.GetFullPath(path); } catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return [path]; }
        if (!File.Exists(full)) return [path]; // MappedFile.Open reports it
        string dir = Path.GetDirectoryName(full) ?? ".";
        string file = Path.GetFileName(full);

        var fromXml = OmeReferencedFiles(full);
        if (fromXml.Count > 0)
        {
            string? prefix = MmPrefix(file, fromXml.Contains);
            var set = new List<string>();
            foreach (var name in fromXml)
                if (prefix == null || MmPrefix(name, fromXml.Contains) == prefix) set.Add(name);
            if (set.Contains(file) && (set.Count > 1))
            {
                foreach (var name in set)
                    if (!File.Exists(Path.Combine(dir, name)))
                        throw new MaLiangException($"{file}: its OME-XML lists {name}, which is not in {dir}");
                return set.ConvertAll(n => Path.Combine(dir, n));
            }
        }
        if (file.Contains("_MMStack", StringComparison.Ordinal))
        {
            string? prefix = MmPrefix(file, n => File.Exists(Path.Combine(dir, n)));
            string ext = OmeExt(file)!;
            var set = new List<string> { Path.Combine(dir, prefix + ext) };
            for (int k = 1; File.Exists(Path.Combine(dir, $"{prefix}_{k}{ext}")); k++) set.Add(Path.Combine(dir, $"{prefix}_{k}{ext}"));
            if (set.Count > 1) return set;
        }
        return [path];
    }

    private static string? OmeExt(string name)
    {
        foreach (var ext in (ReadOnlySpan<string>)[".ome.tif", ".ome.tiff", ".tif", ".tiff"])
            if (name.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) return name[^ext.Length..];
        return null;
    }

    /// <summary>"a_MMStack_Pos0_3.ome.tif" -> "a_MMStack_Pos0" when "a_MMStack_Pos0.ome.tif" exists (position names may
    /// themselves end in _digits, so the stripped name must exist to count as the set's base); null if not MM naming.</summary>
    private static string? MmPrefix(string name, Func<string, bool> exists)
    {
        string? ext = OmeExt(name);
        if (ext == null || !name.Contains("_MMStack", StringComparison.Ordinal)) return null;
        string stem = name[..^ext.Length];
        int us = stem.LastIndexOf('_');
        if (us > 0 && us < stem.Length - 1 && stem.AsSpan(us + 1).IndexOfAnyExceptInRange('0', '9') < 0 && exists(stem[..us] + ext))
            return stem[..us];
        return stem;
    }

    /// <summary>File names in <c>&lt;UUID FileName="..."&gt;</c> elements of the first page's OME-XML, in order of first mention.</summary>
    private static List<string> OmeReferencedFiles(string fullPath)
    {
        var result = new List<string>();
        List<string> descriptions;
        try
        {
            using var mf = MappedFile.Open(fullPath);
            descriptions = new TiffParser(mf).FirstDescriptions();
        }
        catch (MaLiangException) { return result; } // the real open reports it
        foreach (var d in descriptions)
        {
            var s = d.AsSpan().TrimStart();
            if (!(s.StartsWith("<?xml") || s.StartsWith("<OME")) || !d.Contains("<OME", StringComparison.Ordinal)) continue;
            int pos = 0;
            while ((pos = d.IndexOf('<', pos)) >= 0)
            {
                int end = d.IndexOf('>', pos);
                if (end < 0) break;
                var tag = d.AsSpan(pos + 1, end - pos - 1);
                int colon = tag.IndexOfAny(' ', ':');
                if (colon >= 0 && tag[colon] == ':') tag = tag[(colon + 1)..]; // namespace prefix, e.g. ome:UUID
                if (tag.StartsWith("UUID") && tag.Length > 4 && char.IsWhiteSpace(tag[4]))
                {
                    int a = tag.IndexOf("FileName=\"");
                    if (a >= 0)
                    {
                        var rest = tag[(a + 10)..];
                        int q = rest.IndexOf('"');
                        if (q > 0)
                        {
                            string name = Path.GetFileName(XmlUnescape(rest[..q].ToString()));
                            if (!result.Contains(name)) result.Add(name);
                        }
                    }
                }
                pos = end + 1;
            }
            break;
        }
        return result;
    }

    private static string XmlUnescape(string s) => s.Contains('&')
        ? s.Replace("&lt;", "<").Replace("&gt;", ">").Replace("&quot;", "\"").Replace("&apos;", "'").Replace("&amp;", "&")
        : s;

    // ---------------------------------------------------------------- mapped file

    private sealed class MappedFile : IDisposable
    {
        private readonly MemoryMappedFile _mmf;
        private readonly MemoryMappedViewAccessor _view;
        private byte* _ptr;
        public string Path { get; }
        public string Name { get; }
        public long Length { get; }
        public bool LittleEndian;
        /// <summary>LibTiff readers for this file's compressed pages; null when it has none.</summary>
        public LibTiffPages? Codec;

        private MappedFile(string path, MemoryMappedFile mmf, MemoryMappedViewAccessor view, long length)
        {
            Path = path; Name = System.IO.Path.GetFileName(path); _mmf = mmf; _view = view; Length = length;
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _ptr = p + view.PointerOffset;
        }

        public static MappedFile Open(string path)
        {
            string name = System.IO.Path.GetFileName(path);
            FileStream fs;
            // ReadWrite: Micro-Manager may still hold the file open for writing while the user looks at it.
            try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.RandomAccess); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new MaLiangException(e is FileNotFoundException or DirectoryNotFoundException ? $"{path}: file not found" : $"cannot open {path}: {e.Message}", e);
            }
            long length = fs.Length;
            if (length < 8) { fs.Dispose(); throw new MaLiangException($"{name} is not a TIFF file (bad header)"); }
            MemoryMappedFile? mmf = null;
            try
            {
                mmf = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
                var view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                return new MappedFile(path, mmf, view, length);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (mmf != null) mmf.Dispose(); else fs.Dispose();
                throw new MaLiangException($"cannot map {path}: {e.Message}", e);
            }
        }

        /// <summary>
        /// Drops a frame's pages from this process's mapping once it has been read, so streaming a stack of any size
        /// keeps the resident set bounded (the page cache keeps them; a later read faults them back in). The range is
        /// widened to whole pages and 128 KiB before the frame, because the kernel's fault-around maps pages of the
        /// neighbouring frame too. Dropping pages another thread is reading is safe: they fault back in. Linux only.
        /// </summary>
        public void Release(long offset, long length)
        {
            if (!OperatingSystem.IsLinux() || _ptr == null) return;
            const long page = 4096, margin = 128 * 1024;
            long from = Math.Max(0, offset - margin) & ~(page - 1), to = Math.Min(Length, offset + length);
            if (to > from) madvise(_ptr + from, (nuint)(to - from), 4 /* MADV_DONTNEED */);
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise")]
        private static extern int madvise(void* addr, nuint length, int advice);

        /// <summary>Bytes [offset, offset+length); callers have checked the range at open.</summary>
        public ReadOnlySpan<byte> Span(long offset, int length) => new(_ptr + offset, length);

        /// <summary>Bounds-checked range for parsing; a range past the end means the file was cut short.</summary>
        public ReadOnlySpan<byte> Checked(long offset, long length, string what)
        {
            if (offset < 0 || length < 0 || offset > Length - length)
                throw new MaLiangException($"{Name} is truncated: {what} ends past end of file");
            return new(_ptr + offset, checked((int)length));
        }

        public void Dispose()
        {
            Codec?.Dispose();
            if (_ptr == null) return;
            _ptr = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _mmf.Dispose();
        }
    }

    // ---------------------------------------------------------------- IFD parsing

    private sealed record Page(int Width, int Height, PixelType Type, long Offset, Layout? Layout, List<string> Descriptions);

    private readonly struct TiffParser
    {
        private readonly MappedFile _f;
        private readonly bool _big;
        private readonly long _firstIfd;
        private readonly bool _libTiffAll;

        public TiffParser(MappedFile f, bool libTiffAll = false)
        {
            _f = f; _libTiffAll = libTiffAll;
            var h = f.Span(0, 8);
            if (h[0] == 'I' && h[1] == 'I') f.LittleEndian = true;
            else if (h[0] == 'M' && h[1] == 'M') f.LittleEndian = false;
            else throw Bad();
            int magic = U16(h[2..]);
            if (magic == 42) { _big = false; _firstIfd = U32(h[4..]); }
            else if (magic == 43)
            {
                if (f.Length < 16 || U16(h[4..]) != 8 || U16(h[6..]) != 0) throw Bad();
                _big = true; _firstIfd = (long)U64(f.Span(8, 8));
            }
            else throw Bad();
        }

        private readonly MaLiangException Bad() => new($"{_f.Name} is not a TIFF file (bad header)");

        private readonly ushort U16(ReadOnlySpan<byte> b) => _f.LittleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(b) : BinaryPrimitives.ReadUInt16BigEndian(b);
        private readonly uint U32(ReadOnlySpan<byte> b) => _f.LittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);
        private readonly ulong U64(ReadOnlySpan<byte> b) => _f.LittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt64BigEndian(b);

        public readonly List<string> FirstDescriptions()
        {
            var descs = new List<string>();
            if (_firstIfd != 0) ReadIfd(_firstIfd, 1, descs, out _);
            return descs;
        }

        public readonly List<Page> ReadPages()
        {
            var pages = new List<Page>();
            var seen = new HashSet<long>();
            long ifd = _firstIfd;
            while (ifd != 0)
            {
                if (!seen.Add(ifd)) break; // a loop in the IFD chain: stop rather than spin
                var descs = new List<string>();
                var p = ReadIfd(ifd, pages.Count + 1, pages.Count == 0 ? descs : null, out long next);
                if (p != null) pages.Add(p with { Descriptions = descs });
                ifd = next;
            }
            return pages;
        }

        private struct Entry { public ushort Tag, Type; public long Count; public long ValuePos; }

        /// <summary>Parses one IFD; null for a reduced-resolution page. <paramref name="frame"/> (1-based) is for messages.</summary>
        private readonly Page? ReadIfd(long ifd, int frame, List<string>? descriptions, out long next)
        {
            int countSize = _big ? 8 : 2, entrySize = _big ? 20 : 12, offSize = _big ? 8 : 4;
            string where = $"IFD of frame {frame}";
            var cb = _f.Checked(ifd, countSize, where);
            long n = _big ? (long)U64(cb) : U16(cb);
            if (n > 1 << 16) throw new MaLiangException($"{_f.Name}: {where} is corrupt ({n} entries)");
            var body = _f.Checked(ifd + countSize, n * entrySize + offSize, where);
            next = _big ? (long)U64(body[(int)(n * entrySize)..]) : U32(body[(int)(n * entrySize)..]);

            long width = 0, height = 0, rowsPerStrip = long.MaxValue, tileW = 0, tileH = 0, compression = 1, spp = 1, bits = 1, format = 1, photometric = 1, subfile = 0;
            long[]? strips = null, tiles = null, stripBytes = null, tileBytesTag = null;
            for (int i = 0; i < n; i++)
            {
                var e = body.Slice(i * entrySize, entrySize);
                var en = new Entry
                {
                    Tag = U16(e),
                    Type = U16(e[2..]),
                    Count = _big ? (long)U64(e[4..]) : U32(e[4..]),
                    ValuePos = ifd + countSize + i * entrySize + (_big ? 12 : 8),
                };
                switch (en.Tag)
                {
                    case 254: subfile = First(en, where); break;
                    case 256: width = First(en, where); break;
                    case 257: height = First(en, where); break;
                    case 258: bits = First(en, where); break;
                    case 259: compression = First(en, where); break;
                    case 262: photometric = First(en, where); break;
                    case 270: descriptions?.Add(Ascii(en, where)); break;
                    case 273: strips = Values(en, where); break;
                    case 277: spp = First(en, where); break;
                    case 278: rowsPerStrip = First(en, where); break;
                    case 279: stripBytes = Values(en, where); break;
                    case 325: tileBytesTag = Values(en, where); break;
                    case 322: tileW = First(en, where); break;
                    case 323: tileH = First(en, where); break;
                    case 324: tiles = Values(en, where); break;
                    case 339: format = First(en, where); break;
                }
            }
            if ((subfile & 1) != 0) return null;
            if (!LibTiffPages.IsSupported(compression))
                throw new MaLiangException($"{_f.Name}: frame {frame}: compression {CompressionName(compression)} is not supported (uncompressed, LZW, Deflate or PackBits); save the stack with one of those");
            bool viaLibTiff = compression != 1 || _libTiffAll;
            if (spp != 1)
                throw new MaLiangException(photometric == 2 || spp == 3
                    ? $"{_f.Name}: RGB ({spp} samples per pixel) is not supported; convert to a grayscale stack"
                    : $"{_f.Name}: {spp} samples per pixel are not supported; convert to a grayscale stack");
            if (width <= 0 || height <= 0 || width > 1 << 20 || height > 1 << 20 || width * height > int.MaxValue / 4)
                throw new MaLiangException($"{_f.Name}: frame {frame} has an unsupported size {width}x{height}");
            PixelType type = (format, bits) switch
            {
                (1 or 4, 8) => PixelType.UInt8,
                (1 or 4, 16) => PixelType.UInt16,
                (1 or 4, 32) => PixelType.UInt32,
                (2, 16) => PixelType.Int16,
                (2, 32) => PixelType.Int32,
                (3, 32) => PixelType.Float32,
                _ => throw new MaLiangException($"{_f.Name}: {bits}-bit {(format switch { 2 => "signed", 3 => "float", _ => "unsigned" })} samples are not supported (8/16/32-bit integer or 32-bit float)"),
            };
            int bps = PixelConvert.BytesPerSample(type);
            int w = (int)width, h = (int)height;

            if (tiles != null)
            {
                if (tileW <= 0 || tileH <= 0 || tileW * tileH > int.MaxValue / 4) throw new MaLiangException($"{_f.Name}: frame {frame} has bad tile size {tileW}x{tileH}");
                long need = ((w + tileW - 1) / tileW) * ((h + tileH - 1) / tileH);
                if (tiles.Length < need) throw new MaLiangException($"{_f.Name}: frame {frame} lists {tiles.Length} tiles, {need} needed");
                long tileBytes = tileW * tileH * bps;
                if (viaLibTiff)
                {
                    CheckCompressed(tiles, tileBytesTag, (int)need, compression, frame, "tile");
                    return new Page(w, h, type, -1, new Layout(tiles[..(int)need], (int)tileH, (int)tileW, true, ifd, frame, tileBytesTag, compression), []);
                }
                foreach (var o in tiles.AsSpan(0, (int)need)) _f.Checked(o, tileBytes, $"frame {frame} data");
                return new Page(w, h, type, -1, new Layout(tiles[..(int)need], (int)tileH, (int)tileW, true), []);
            }
            if (strips == null || strips.Length == 0) throw new MaLiangException($"{_f.Name}: frame {frame} has no image data (no StripOffsets)");
            int rps = (int)Math.Clamp(rowsPerStrip, 1, h);
            int nStrips = (h + rps - 1) / rps;
            if (strips.Length < nStrips) throw new MaLiangException($"{_f.Name}: frame {frame} lists {strips.Length} strips, {nStrips} needed");
            if (viaLibTiff)
            {
                CheckCompressed(strips, stripBytes, nStrips, compression, frame, "strip");
                return new Page(w, h, type, -1, new Layout(strips[..nStrips], rps, w, false, ifd, frame, stripBytes, compression), []);
            }
            // Uncompressed sizes are known, so StripByteCounts is not needed (and is wrong in some writers' files).
            bool contiguous = true;
            long rowBytes = (long)w * bps;
            for (int s = 0; s < nStrips; s++)
            {
                long rows = Math.Min(rps, h - (long)s * rps);
                _f.Checked(strips[s], rows * rowBytes, $"frame {frame} data");
                if (strips[s] != strips[0] + s * rps * rowBytes) contiguous = false;
            }
            return contiguous
                ? new Page(w, h, type, strips[0], null, [])
                : new Page(w, h, type, -1, new Layout(strips[..nStrips], rps, w, false), []);
        }

        /// <summary>A compressed page's segments must lie inside the file (a cut-short file is named at open, not mid-run).</summary>
        private readonly void CheckCompressed(long[] offsets, long[]? byteCounts, int n, long compression, int frame, string what)
        {
            if (compression == 1) return; // uncompressed through LibTiff (comparison mode): sizes are known, checked on read
            if (byteCounts == null || byteCounts.Length < n)
                throw new MaLiangException($"{_f.Name}: frame {frame} is {CompressionName(compression)}-compressed but lists {byteCounts?.Length ?? 0} {what} byte counts, {n} needed");
            for (int s = 0; s < n; s++) _f.Checked(offsets[s], byteCounts[s], $"frame {frame} {what} {s + 1}");
        }

        private static string CompressionName(long c) => c switch
        {
            2 => "CCITT RLE",
            3 => "CCITT Group 3",
            4 => "CCITT Group 4",
            5 => "LZW",
            6 => "JPEG (old-style)",
            7 => "JPEG",
            8 or 32946 => "Deflate",
            32773 => "PackBits",
            34712 => "JPEG 2000",
            34887 => "LERC",
            34925 => "LZMA",
            50000 => "Zstandard",
            50001 => "WebP",
            _ => $"scheme {c}",
        };

        private static int TypeSize(ushort type) => type switch
        {
            1 or 2 or 6 or 7 => 1,
            3 or 8 => 2,
            4 or 9 or 11 or 13 => 4,
            5 or 10 or 12 or 16 or 17 or 18 => 8,
            _ => 0,
        };

        private readonly long First(in Entry e, string where)
        {
            var v = Values(e, where, 1);
            return v.Length > 0 ? v[0] : 0;
        }

        private readonly long[] Values(in Entry e, string where, long max = long.MaxValue)
        {
            int size = TypeSize(e.Type);
            if (size == 0 || e.Count <= 0) return [];
            long count = Math.Min(e.Count, max);
            if (count > int.MaxValue / 8) throw new MaLiangException($"{_f.Name}: {where} is corrupt (tag {e.Tag} count {e.Count})");
            long pos = DataPos(e, size, where);
            var b = _f.Checked(pos, count * size, where);
            var r = new long[count];
            for (int i = 0; i < r.Length; i++)
            {
                var s = b[(i * size)..];
                r[i] = e.Type switch
                {
                    1 or 7 => s[0],
                    6 => (sbyte)s[0],
                    3 => U16(s),
                    8 => (short)U16(s),
                    4 or 13 => U32(s),
                    9 => (int)U32(s),
                    16 or 17 or 18 => (long)U64(s),
                    _ => 0, // rationals/floats are not used as integers here
                };
            }
            return r;
        }

        private readonly long DataPos(in Entry e, int size, string where)
        {
            long bytes = e.Count * size;
            if (bytes <= (_big ? 8 : 4)) return e.ValuePos; // value stored inline in the entry
            var p = _f.Checked(e.ValuePos, _big ? 8 : 4, where);
            return _big ? (long)U64(p) : U32(p);
        }

        private readonly string Ascii(in Entry e, string where)
        {
            if (e.Type != 2 && e.Type != 7 && e.Type != 1) return "";
            if (e.Count > int.MaxValue) throw new MaLiangException($"{_f.Name}: {where} is corrupt (ImageDescription count {e.Count})");
            var b = _f.Checked(DataPos(e, 1, where), e.Count, where);
            int nul = b.IndexOf((byte)0);
            return Encoding.UTF8.GetString(nul >= 0 ? b[..nul] : b);
        }
    }
}
