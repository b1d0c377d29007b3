using System.Buffers.Binary;
using System.Text;
using MaLiang.Engine.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.IO;

public class TiffWriterTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    /// <summary>First-IFD tags of a little-endian file, read independently of the engine: tag -> (type, count, value or offset).</summary>
    private static Dictionary<int, (int type, long count, long value)> FirstIfd(byte[] f, out bool big)
    {
        Assert.That(f[0..2], Is.EqualTo("II"u8.ToArray()));
        big = BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(2)) == 43;
        long ifd = big ? (long)BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(4));
        long n = big ? (long)BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan((int)ifd)) : BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan((int)ifd));
        var tags = new Dictionary<int, (int, long, long)>();
        for (int i = 0; i < n; i++)
        {
            var e = f.AsSpan((int)ifd + (big ? 8 + 20 * i : 2 + 12 * i));
            int tag = BinaryPrimitives.ReadUInt16LittleEndian(e), type = BinaryPrimitives.ReadUInt16LittleEndian(e[2..]);
            long count = big ? (long)BinaryPrimitives.ReadUInt64LittleEndian(e[4..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            long value = big ? (long)BinaryPrimitives.ReadUInt64LittleEndian(e[12..]) : BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
            if (type == 3 && count == 1) value &= 0xFFFF;
            tags[tag] = (type, count, value);
        }
        return tags;
    }

    private static string Description(byte[] f, Dictionary<int, (int type, long count, long value)> t) =>
        Encoding.ASCII.GetString(f, (int)t[270].value, (int)t[270].count - 1);

    [Test]
    public void UInt16StackRoundTrips()
    {
        var px = new ushort[4 * 13 * 7];
        for (int i = 0; i < px.Length; i++) px[i] = (ushort)(i * 977 % 65536);
        px[5] = 65535;
        TiffWriter.Write(_dir["u16.tif"], px, 13, 7, 4);
        Assert.That(_dir.Files(), Is.EqualTo(new[] { "u16.tif" }), "no temporary file left");

        using (var s = TiffStack.Open(_dir["u16.tif"]))
        {
            Assert.That((s.Width, s.Height, s.FrameCount, s.PixelType), Is.EqualTo((13, 7, 4, PixelType.UInt16)));
            var u = new ushort[91];
            var f = new float[91];
            for (int i = 0; i < 4; i++)
            {
                s.ReadFrame(i, u);
                s.ReadFrame(i, f);
                Assert.That(u, Is.EqualTo(px.AsSpan(i * 91, 91).ToArray()));
                Assert.That(f, Is.EqualTo(px.AsSpan(i * 91, 91).ToArray().Select(v => (float)v)));
            }
        }
        var bytes = File.ReadAllBytes(_dir["u16.tif"]);
        var t = FirstIfd(bytes, out bool big);
        Assert.That(big, Is.False);
        Assert.That(Description(bytes, t), Is.EqualTo("ImageJ=1.53t\nimages=4\nslices=4\nloop=false\n"));
        Assert.That((t[258].value, t[339].value, t[259].value, t[273].value), Is.EqualTo((16L, 1L, 1L, 16L)));
        Assert.That(t.ContainsKey(282), Is.False, "no calibration unless asked");
    }

    [Test]
    public void FloatStackRoundTripsWithCalibration()
    {
        var px = new float[3 * 5 * 4];
        for (int i = 0; i < px.Length; i++) px[i] = (i - 20) * 0.37f;
        px[7] = float.NaN; px[8] = float.MaxValue; px[9] = -0f;
        TiffWriter.Write(_dir["f.tif"], px, 5, 4, 3, new TiffWriteOptions { PixelSize = 10, Unit = "nm", DisplayMin = 0, DisplayMax = 2.5 });
        using (var s = TiffStack.Open(_dir["f.tif"]))
        {
            Assert.That((s.Width, s.Height, s.FrameCount, s.PixelType), Is.EqualTo((5, 4, 3, PixelType.Float32)));
            var all = new float[px.Length];
            for (int i = 0; i < 3; i++) s.ReadFrame(i, all.AsSpan(i * 20, 20));
            Assert.That(all.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(px.Select(BitConverter.SingleToInt32Bits)), "bit-exact, NaN and -0 included");
        }
        var bytes = File.ReadAllBytes(_dir["f.tif"]);
        var t = FirstIfd(bytes, out _);
        Assert.That(Description(bytes, t), Is.EqualTo("ImageJ=1.53t\nimages=3\nslices=3\nunit=nm\nmin=0\nmax=2.5\nloop=false\n"));
        Assert.That((t[258].value, t[339].value, t[296].value), Is.EqualTo((32L, 3L, 1L)));
        foreach (int tag in new[] { 282, 283 })
        {
            long off = t[tag].value;
            double xres = (double)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)off)) / BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)off + 4));
            Assert.That(1 / xres, Is.EqualTo(10.0).Within(1e-12), "ImageJ reads pixel width as 1/XResolution");
        }
    }

    [TestCase(150.0)]
    [TestCase(117.3)]
    [TestCase(0.16)]
    [TestCase(1e-4)]
    [TestCase(314.15926535897931)]
    public void PixelSizeRationalIsAccurate(double pixelSize)
    {
        var (num, den) = TiffStackWriter.Rational(1 / pixelSize);
        Assert.That((double)den / num, Is.EqualTo(pixelSize).Within(pixelSize * 1e-12));
    }

    [Test]
    public void SingleImageHasNoImagesCount()
    {
        TiffWriter.Write(_dir["one.tif"], new float[6], 3, 2, 1, new TiffWriteOptions { PixelSize = 0.1, Unit = "µm" });
        var bytes = File.ReadAllBytes(_dir["one.tif"]);
        Assert.That(Description(bytes, FirstIfd(bytes, out _)), Is.EqualTo("ImageJ=1.53t\nunit=micron\n"));
    }

    [Test]
    public void ForcedBigTiffRoundTrips()
    {
        var px = Enumerable.Range(0, 2 * 6 * 3).Select(i => (ushort)(i * 1000)).ToArray();
        TiffWriter.Write(_dir["big.tif"], px, 6, 3, 2, new TiffWriteOptions { ForceBigTiff = true, PixelSize = 160 });
        var bytes = File.ReadAllBytes(_dir["big.tif"]);
        var t = FirstIfd(bytes, out bool big);
        Assert.That(big, Is.True);
        Assert.That(t[273].type, Is.EqualTo(16), "LONG8 strip offsets");
        // BigTIFF keeps the 8-byte rational inline.
        Assert.That((double)((ulong)t[282].value >> 32) / (uint)t[282].value, Is.EqualTo(160.0).Within(1e-12));
        using var s = TiffStack.Open(_dir["big.tif"]);
        var u = new ushort[18];
        s.ReadFrame(1, u);
        Assert.That(u, Is.EqualTo(px[18..]));
    }

    [Test]
    public void StreamingWriterAppendsFramesInOrder()
    {
        using (var w = new TiffStackWriter(_dir["s.tif"], 4, 2, PixelType.Float32))
        {
            w.Append(new float[] { 1, 2, 3, 4, 5, 6, 7, 8 });
            w.Append(Enumerable.Range(10, 16).Select(i => (float)i).ToArray()); // two frames at once
            Assert.That(w.Count, Is.EqualTo(3));
            Assert.That(File.Exists(_dir["s.tif"]), Is.False, "nothing at the final path before Commit");
            w.Commit();
        }
        using var s = TiffStack.Open(_dir["s.tif"]);
        Assert.That(s.FrameCount, Is.EqualTo(3));
        var f = new float[8];
        s.ReadFrame(2, f);
        Assert.That(f, Is.EqualTo(new float[] { 18, 19, 20, 21, 22, 23, 24, 25 }));
    }

    [Test]
    public void AbandonedWriterLeavesNoFileAndKeepsTheOldOne()
    {
        File.WriteAllText(_dir["keep.tif"], "old");
        using (var w = new TiffStackWriter(_dir["keep.tif"], 4, 2, PixelType.UInt16))
        {
            w.Append(new ushort[8]);
            Assert.That(_dir.Files(), Has.Length.EqualTo(2), "the temporary file exists while writing");
        } // no Commit: as if the run failed
        Assert.That(_dir.Files(), Is.EqualTo(new[] { "keep.tif" }));
        Assert.That(File.ReadAllText(_dir["keep.tif"]), Is.EqualTo("old"));
    }

    [Test]
    public void WrongFrameLengthIsRejected()
    {
        using var w = new TiffStackWriter(_dir["s.tif"], 4, 2, PixelType.UInt16);
        var ex = Assert.Throws<InvalidParameterException>(() => w.Append(new ushort[12]))!;
        Assert.That(ex.Parameter, Is.EqualTo("frame"));
        Assert.Throws<InvalidOperationException>(() => w.Append(new float[8]));
        Assert.That(Assert.Throws<InvalidParameterException>(() => TiffWriter.Write(_dir["x.tif"], new ushort[10], 3, 3, 1))!.Parameter, Is.EqualTo("frames"));
        Assert.That(Assert.Throws<InvalidParameterException>(w.Commit)!.Parameter, Is.EqualTo("count"));
    }

    [Test]
    public void AtomicFileCommitReplacesAndDisposeDiscards()
    {
        File.WriteAllText(_dir["a.txt"], "old");
        using (var f = AtomicFile.Create(_dir["a.txt"]))
        {
            f.Stream.Write("new"u8);
            Assert.That(Path.GetDirectoryName(f.TempPath), Is.EqualTo(_dir.Path));
            f.Commit();
        }
        Assert.That(File.ReadAllText(_dir["a.txt"]), Is.EqualTo("new"));
        using (var f = AtomicFile.Create(_dir["b.txt"])) f.Stream.Write("partial"u8);
        Assert.That(_dir.Files(), Is.EqualTo(new[] { "a.txt" }));
    }

    [Test]
    public void AtomicFileInMissingFolderNamesThePath()
    {
        string p = Path.Combine(_dir.Path, "no-such-folder", "out.tif");
        var ex = Assert.Throws<MaLiangException>(() => AtomicFile.Create(p))!;
        Assert.That(ex.Message, Does.StartWith($"cannot write {p}: "));
    }
}
