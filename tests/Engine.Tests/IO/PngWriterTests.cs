using System.Buffers.Binary;
using System.IO.Compression;
using MaLiang.Engine.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.IO;

public class PngWriterTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    /// <summary>Bitwise CRC-32 (no table), so the engine's table CRC is checked against an independent one.</summary>
    private static uint Crc(ReadOnlySpan<byte> d)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in d) { c ^= b; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1)); }
        return ~c;
    }

    /// <summary>Minimal PNG decoder for filter-type-0 rows: checks signature, chunk CRCs, IHDR; returns pixels.</summary>
    private static (int w, int h, int colorType, byte[] pixels, int idatChunks) Decode(byte[] f)
    {
        Assert.That(f[..8], Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        int pos = 8, w = 0, h = 0, ct = -1, idats = 0;
        var z = new MemoryStream();
        var types = new List<string>();
        while (pos < f.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(f.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(f, pos + 4, 4);
            var body = f.AsSpan(pos + 8, len);
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(pos + 8 + len)), Is.EqualTo(Crc(f.AsSpan(pos + 4, len + 4))), $"CRC of {type}");
            types.Add(type);
            if (type == "IHDR")
            {
                w = BinaryPrimitives.ReadInt32BigEndian(body); h = BinaryPrimitives.ReadInt32BigEndian(body[4..]);
                Assert.That((body[8], body[10], body[11], body[12]), Is.EqualTo(((byte)8, (byte)0, (byte)0, (byte)0)));
                ct = body[9];
            }
            if (type == "IDAT") { z.Write(body); idats++; }
            pos += 12 + len;
        }
        Assert.That(types[0], Is.EqualTo("IHDR"));
        Assert.That(types[^1], Is.EqualTo("IEND"));
        Assert.That(pos, Is.EqualTo(f.Length));
        int ch = ct == 0 ? 1 : 3;
        z.Position = 0;
        var raw = new MemoryStream();
        using (var inflate = new ZLibStream(z, CompressionMode.Decompress)) inflate.CopyTo(raw);
        var r = raw.ToArray();
        Assert.That(r, Has.Length.EqualTo(h * (1 + w * ch)));
        var px = new byte[w * h * ch];
        for (int y = 0; y < h; y++)
        {
            Assert.That(r[y * (1 + w * ch)], Is.Zero, "filter type None");
            Array.Copy(r, y * (1 + w * ch) + 1, px, y * w * ch, w * ch);
        }
        return (w, h, ct, px, idats);
    }

    [Test]
    public void GrayPngDecodesToTheSamePixels()
    {
        var px = new byte[7 * 5];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * 37);
        PngWriter.WriteGray(_dir["g.png"], px, 7, 5);
        Assert.That(_dir.Files(), Is.EqualTo(new[] { "g.png" }));
        var (w, h, ct, got, _) = Decode(File.ReadAllBytes(_dir["g.png"]));
        Assert.That((w, h, ct), Is.EqualTo((7, 5, 0)));
        Assert.That(got, Is.EqualTo(px));
    }

    [Test]
    public void RgbPngDecodesToTheSamePixels()
    {
        var px = new byte[3 * 4 * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(255 - i * 7);
        PngWriter.WriteRgb(_dir["c.png"], px, 3, 4);
        var (w, h, ct, got, _) = Decode(File.ReadAllBytes(_dir["c.png"]));
        Assert.That((w, h, ct), Is.EqualTo((3, 4, 2)));
        Assert.That(got, Is.EqualTo(px));
    }

    [Test]
    public void LargeImageSpansSeveralIdatChunks()
    {
        var px = new byte[700 * 700];
        new Random(3).NextBytes(px); // incompressible: ~490 kB of zlib data
        PngWriter.WriteGray(_dir["big.png"], px, 700, 700);
        var (_, _, _, got, idats) = Decode(File.ReadAllBytes(_dir["big.png"]));
        Assert.That(idats, Is.GreaterThan(1));
        Assert.That(got, Is.EqualTo(px));
    }

    [Test]
    public void WrongBufferSizeIsRejected()
    {
        var ex = Assert.Throws<InvalidParameterException>(() => PngWriter.WriteRgb(_dir["x.png"], new byte[10], 2, 2))!;
        Assert.That(ex.Parameter, Is.EqualTo("pixels"));
        Assert.That(_dir.Files(), Is.Empty);
    }

    [Test]
    public void ToGray8WithExplicitMaximum()
    {
        var g = PngWriter.ToGray8([0f, 100.3f, 100.6f, 255f, 1000f, -5f, float.NaN, float.PositiveInfinity], 255f);
        Assert.That(g, Is.EqualTo(new byte[] { 0, 100, 101, 255, 255, 0, 0, 255 }));
    }

    [Test]
    public void ToGray8SaturatesAtThe999thPercentileOfPositivePixels()
    {
        // 1000 positive values 1..1000 among many zeros: the nearest-rank 99.9th percentile is 999.
        var img = new float[5000];
        for (int i = 0; i < 1000; i++) img[i * 5] = 1000 - i;
        var g = PngWriter.ToGray8(img);
        Assert.That(g[0], Is.EqualTo(255));          // 1000, above the percentile
        Assert.That(g[5], Is.EqualTo(255));          // 999
        Assert.That(g[500 * 5], Is.EqualTo(128));    // 500 * 255 / 999 = 127.6
        Assert.That(g[999 * 5], Is.EqualTo(0));      // 1 * 255 / 999 = 0.26
        Assert.That(g[1], Is.EqualTo(0));
        Assert.That(PngWriter.ToGray8(new float[4]), Is.EqualTo(new byte[4]), "all-zero image stays black");
    }
}
