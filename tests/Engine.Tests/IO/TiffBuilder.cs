using System.Buffers.Binary;
using System.Text;

namespace MaLiang.Engine.Tests.IO;

/// <summary>
/// Builds TIFF files byte by byte, independently of the engine's writer, so reader tests do not test the writer
/// against itself. Layout: header, IFDs (with their out-of-line values), then pixel data from <see cref="DataBase"/>.
/// </summary>
internal sealed class TiffBuilder
{
    public bool BigEndian;
    public bool BigTiff;
    public int Width = 6, Height = 5;
    public int Bits = 16;
    /// <summary>TIFF SampleFormat: 1 unsigned, 2 signed, 3 float.</summary>
    public int SampleFormat = 1;
    /// <summary>0 = one strip per frame.</summary>
    public int RowsPerStrip;
    /// <summary>Bytes of junk between strips (forces the non-contiguous path).</summary>
    public int StripGap;
    /// <summary>Bytes of junk between frames.</summary>
    public int FrameGap;
    public int TileWidth, TileHeight;
    public int SamplesPerPixel = 1, Photometric = 1, Compression = 1;
    public string? Description;
    /// <summary>Write IFDs for only the first N frames (ImageJ's >4 GB layout); null = all.</summary>
    public int? IfdCount;
    /// <summary>Per-frame size override (frame index -> (w, h)) for mismatch tests; data still written at Width x Height.</summary>
    public Dictionary<int, (int w, int h)> SizeOverride = [];
    /// <summary>Reduced-resolution page (NewSubfileType = 1) inserted after frame 0.</summary>
    public bool AddThumbnail;
    public const int DataBase = 1 << 16;

    public int BytesPerSample => Bits / 8;

    /// <summary>Encodes one sample the way this file stores it.</summary>
    private void Sample(List<byte> o, double v)
    {
        Span<byte> b = stackalloc byte[4];
        switch (Bits, SampleFormat)
        {
            case (8, _): o.Add((byte)v); return;
            case (16, 2): Put16(b, (ushort)(short)v); break;
            case (16, _): Put16(b, (ushort)v); break;
            case (32, 3): Put32(b, BitConverter.SingleToUInt32Bits((float)v)); break;
            case (32, 2): Put32(b, (uint)(int)v); break;
            case (32, _): Put32(b, (uint)v); break;
            default: throw new ArgumentException("bits");
        }
        for (int i = 0; i < Bits / 8; i++) o.Add(b[i]);
    }

    private void Put16(Span<byte> b, ushort v) { if (BigEndian) BinaryPrimitives.WriteUInt16BigEndian(b, v); else BinaryPrimitives.WriteUInt16LittleEndian(b, v); }
    private void Put32(Span<byte> b, uint v) { if (BigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v); else BinaryPrimitives.WriteUInt32LittleEndian(b, v); }
    private void Put64(Span<byte> b, ulong v) { if (BigEndian) BinaryPrimitives.WriteUInt64BigEndian(b, v); else BinaryPrimitives.WriteUInt64LittleEndian(b, v); }

    /// <summary>Builds the file; <paramref name="frames"/> are Width x Height values each (row-major).</summary>
    public byte[] Build(IReadOnlyList<double[]> frames)
    {
        // Pixel data first (into its own buffer) so the IFDs know every offset.
        var data = new List<byte>();
        var segOffsets = new List<long[]>();
        foreach (var f in frames)
        {
            var offs = new List<long>();
            if (TileWidth > 0)
            {
                for (int ty = 0; ty < Height; ty += TileHeight)
                    for (int tx = 0; tx < Width; tx += TileWidth)
                    {
                        offs.Add(DataBase + data.Count);
                        for (int y = ty; y < ty + TileHeight; y++)
                            for (int x = tx; x < tx + TileWidth; x++)
                                Sample(data, x < Width && y < Height ? f[y * Width + x] : 0); // edge tiles are padded
                        for (int g = 0; g < StripGap; g++) data.Add(0xEE);
                    }
            }
            else
            {
                int rps = RowsPerStrip > 0 ? RowsPerStrip : Height;
                for (int y0 = 0; y0 < Height; y0 += rps)
                {
                    offs.Add(DataBase + data.Count);
                    for (int i = y0 * Width; i < Math.Min(Height, y0 + rps) * Width; i++) Sample(data, f[i]);
                    for (int g = 0; g < StripGap; g++) data.Add(0xEE);
                }
            }
            for (int g = 0; g < FrameGap; g++) data.Add(0xDD);
            segOffsets.Add([.. offs]);
        }

        var o = new List<byte>();
        Span<byte> b = stackalloc byte[8];
        o.AddRange(BigEndian ? "MM"u8.ToArray() : "II"u8.ToArray());
        Put16(b, (ushort)(BigTiff ? 43 : 42)); o.Add(b[0]); o.Add(b[1]);
        if (BigTiff) { Put16(b, 8); o.Add(b[0]); o.Add(b[1]); o.Add(0); o.Add(0); }
        int firstIfdPtr = o.Count;
        for (int i = 0; i < (BigTiff ? 8 : 4); i++) o.Add(0);

        int nIfd = Math.Min(IfdCount ?? frames.Count, frames.Count);
        int prevNextPtr = firstIfdPtr;
        for (int k = 0; k < nIfd; k++)
        {
            WriteIfd(o, k, segOffsets[k], ref prevNextPtr, subfile: 0);
            if (k == 0 && AddThumbnail) WriteIfd(o, k, segOffsets[k], ref prevNextPtr, subfile: 1);
        }
        if (o.Count > DataBase) throw new InvalidOperationException("IFDs overflow the data base offset");
        while (o.Count < DataBase) o.Add(0);
        o.AddRange(data);
        return [.. o];
    }

    private void WriteIfd(List<byte> o, int k, long[] segs, ref int prevNextPtr, int subfile)
    {
        var (w, h) = SizeOverride.TryGetValue(k, out var s) ? s : (Width, Height);
        var entries = new List<(ushort tag, ushort type, byte[] bytes, long count)>();
        void Add(ushort tag, ushort type, params long[] vals)
        {
            int size = type switch { 3 => 2, 4 => 4, 16 => 8, _ => throw new ArgumentException() };
            var bytes = new byte[vals.Length * size];
            for (int i = 0; i < vals.Length; i++)
            {
                var d = bytes.AsSpan(i * size);
                if (size == 2) Put16(d, (ushort)vals[i]); else if (size == 4) Put32(d, (uint)vals[i]); else Put64(d, (ulong)vals[i]);
            }
            entries.Add((tag, type, bytes, vals.Length));
        }
        ushort offType = BigTiff ? (ushort)16 : (ushort)4;
        if (subfile != 0) Add(254, 4, subfile);
        Add(256, 3, w); // SHORT on purpose: readers must accept SHORT or LONG
        Add(257, 4, h);
        Add(258, 3, Bits);
        Add(259, 3, Compression);
        Add(262, 3, Photometric);
        if (k == 0 && subfile == 0 && Description != null)
        {
            var d = Encoding.UTF8.GetBytes(Description + "\0");
            entries.Add((270, 2, d, d.Length));
        }
        long segBytes = (long)(TileWidth > 0 ? TileWidth * TileHeight : (RowsPerStrip > 0 ? RowsPerStrip : Height) * Width) * BytesPerSample;
        if (TileWidth > 0)
        {
            Add(277, 3, SamplesPerPixel);
            Add(322, 3, TileWidth);
            Add(323, 3, TileHeight);
            Add(324, offType, segs);
            Add(325, offType, segs.Select(_ => segBytes).ToArray());
        }
        else
        {
            Add(273, offType, segs);
            Add(277, 3, SamplesPerPixel);
            if (RowsPerStrip > 0) Add(278, 4, RowsPerStrip);
            Add(279, offType, segs.Select(_ => segBytes).ToArray());
        }
        Add(339, 3, SampleFormat);
        entries.Sort((a, c) => a.tag.CompareTo(c.tag));

        Span<byte> b = stackalloc byte[8];
        int inline = BigTiff ? 8 : 4;
        // Out-of-line values go right before the IFD.
        var pos = new Dictionary<int, long>();
        for (int i = 0; i < entries.Count; i++)
        {
            if (entries[i].bytes.Length <= inline) continue;
            if ((o.Count & 1) != 0) o.Add(0);
            pos[i] = o.Count;
            o.AddRange(entries[i].bytes);
        }
        if ((o.Count & 1) != 0) o.Add(0);
        long ifdPos = o.Count;
        // Patch the previous "next IFD" pointer (or the header's first-IFD pointer).
        if (BigTiff) Put64(b, (ulong)ifdPos); else Put32(b, (uint)ifdPos);
        for (int i = 0; i < inline; i++) o[prevNextPtr + i] = b[i];

        if (BigTiff) { Put64(b, (ulong)entries.Count); o.AddRange(b[..8].ToArray()); }
        else { Put16(b, (ushort)entries.Count); o.AddRange(b[..2].ToArray()); }
        for (int i = 0; i < entries.Count; i++)
        {
            var (tag, type, bytes, count) = entries[i];
            Put16(b, tag); o.Add(b[0]); o.Add(b[1]);
            Put16(b, type); o.Add(b[0]); o.Add(b[1]);
            if (BigTiff) { Put64(b, (ulong)count); o.AddRange(b[..8].ToArray()); }
            else { Put32(b, (uint)count); o.AddRange(b[..4].ToArray()); }
            var val = new byte[inline];
            if (pos.TryGetValue(i, out long p)) { if (BigTiff) Put64(val, (ulong)p); else Put32(val, (uint)p); }
            else bytes.CopyTo(val, 0); // inline values are left-justified
            o.AddRange(val);
        }
        prevNextPtr = o.Count;
        for (int i = 0; i < inline; i++) o.Add(0);
    }

    /// <summary>Deterministic test frames: distinct values per frame and pixel, within [lo, hi].</summary>
    public static List<double[]> Frames(int count, int w, int h, double lo, double hi, bool integer = true, int seed = 1)
    {
        var rng = new Random(seed);
        var list = new List<double[]>();
        for (int f = 0; f < count; f++)
        {
            var a = new double[w * h];
            for (int i = 0; i < a.Length; i++)
            {
                double v = lo + rng.NextDouble() * (hi - lo);
                a[i] = integer ? Math.Round(v) : (float)v;
            }
            a[0] = lo; a[^1] = hi; // the type's extremes must survive
            list.Add(a);
        }
        return list;
    }
}
