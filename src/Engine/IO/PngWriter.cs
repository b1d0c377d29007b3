using System.Buffers.Binary;
using System.IO.Compression;

namespace MaLiang.Engine.IO;

/// <summary>8-bit grayscale / RGB PNG, written atomically with the framework's zlib (no packages).</summary>
public static class PngWriter
{
    /// <summary>Writes <paramref name="pixels"/> (width x height, row-major) as an 8-bit grayscale PNG.</summary>
    public static void WriteGray(string path, ReadOnlySpan<byte> pixels, int width, int height) => Write(path, pixels, width, height, 1);

    /// <summary>Writes <paramref name="pixels"/> (width x height x 3, row-major, R G B interleaved) as an 8-bit RGB PNG.</summary>
    public static void WriteRgb(string path, ReadOnlySpan<byte> pixels, int width, int height) => Write(path, pixels, width, height, 3);

    private static void Write(string path, ReadOnlySpan<byte> pixels, int width, int height, int channels)
    {
        if (width <= 0 || height <= 0 || (long)width * channels + 1 > int.MaxValue)
            throw new InvalidParameterException("width/height", $"image size {width}x{height} is not supported");
        if (pixels.Length != (long)width * height * channels)
            throw new InvalidParameterException("pixels", $"buffer holds {pixels.Length} bytes, a {width}x{height} {(channels == 1 ? "gray" : "RGB")} image needs {(long)width * height * channels}");

        using var file = AtomicFile.Create(path);
        var s = file.Stream;
        s.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8;                              // bit depth
        ihdr[9] = (byte)(channels == 1 ? 0 : 2);  // colour type: gray / truecolour
        ihdr[10] = ihdr[11] = ihdr[12] = 0;       // deflate, adaptive filtering, no interlace
        WriteChunk(s, "IHDR"u8, ihdr);

        using (var idat = new IdatStream(s))
        using (var z = new ZLibStream(idat, CompressionLevel.Optimal, leaveOpen: true))
        {
            int rowBytes = width * channels;
            Span<byte> filter = [0]; // filter type None: rendered images are mostly flat, deflate does the work
            for (int y = 0; y < height; y++)
            {
                z.Write(filter);
                z.Write(pixels.Slice(y * rowBytes, rowBytes));
            }
        }
        WriteChunk(s, "IEND"u8, []);
        file.Commit();
    }

    private static void WriteChunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(u32, data.Length);
        s.Write(u32);
        s.Write(type);
        s.Write(data);
        uint crc = Crc32.Update(Crc32.Update(Crc32.Initial, type), data);
        BinaryPrimitives.WriteUInt32BigEndian(u32, crc ^ Crc32.Initial);
        s.Write(u32);
    }

    /// <summary>Buffers the zlib stream and emits it as IDAT chunks of up to 256 KiB, so no image-sized buffer is needed.</summary>
    private sealed class IdatStream(Stream inner) : Stream
    {
        private readonly byte[] _buf = new byte[1 << 18];
        private int _n;

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (buffer.Length > 0)
            {
                int k = Math.Min(buffer.Length, _buf.Length - _n);
                buffer[..k].CopyTo(_buf.AsSpan(_n));
                _n += k; buffer = buffer[k..];
                if (_n == _buf.Length) Emit();
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        private void Emit() { if (_n > 0) WriteChunk(inner, "IDAT"u8, _buf.AsSpan(0, _n)); _n = 0; }
        public override void Flush() { }
        protected override void Dispose(bool disposing) { if (disposing) Emit(); base.Dispose(disposing); }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>
    /// Scales a float image to 8 bits for display: 0 -> 0, <paramref name="max"/> (and above) -> 255, linear, rounded;
    /// negative and NaN -> 0. Without <paramref name="max"/>, saturates at the 99.9th percentile (nearest rank) of the
    /// positive pixels, so a few bright spots do not leave a rendered image black (zeros are ignored because a
    /// super-resolution render is mostly empty).
    /// </summary>
    public static byte[] ToGray8(ReadOnlySpan<float> image, float? max = null)
    {
        float m = max ?? Detect.Selection.PositivePercentile(image, 99.9);
        var result = new byte[image.Length];
        if (!(m > 0) || !float.IsFinite(m)) return result;
        float scale = 255f / m;
        for (int i = 0; i < image.Length; i++)
        {
            float v = image[i] * scale + 0.5f;
            result[i] = v >= 1f ? (v >= 255f ? (byte)255 : (byte)v) : (byte)0; // !(v >= 1) also catches NaN
        }
        return result;
    }

}

/// <summary>CRC-32 (ISO-HDLC, as PNG and zlib's crc32 use), table-driven. Start from <see cref="Initial"/>, xor with it at the end.</summary>
internal static class Crc32
{
    public const uint Initial = 0xFFFFFFFFu;
    private static readonly uint[] Table = MakeTable();

    private static uint[] MakeTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        var t = Table;
        foreach (byte b in data) crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Update(Initial, data) ^ Initial;
}
