using MaLiang.Engine.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.IO;

public class TiffStackTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private static string Data(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "data", name);

    private string Save(string name, TiffBuilder b, IReadOnlyList<double[]> frames)
    {
        string p = _dir[name];
        File.WriteAllBytes(p, b.Build(frames));
        return p;
    }

    private static void AssertFrames(TiffStack s, IReadOnlyList<double[]> expected)
    {
        Assert.That(s.FrameCount, Is.EqualTo(expected.Count));
        var buf = new float[s.Width * s.Height];
        for (int f = 0; f < expected.Count; f++)
        {
            s.ReadFrame(f, buf);
            Assert.That(buf, Is.EqualTo(expected[f].Select(v => (float)v).ToArray()), $"frame {f}");
        }
    }

    private static MaLiangException Fails(string path) => Assert.Throws<MaLiangException>(() => TiffStack.Open(path).Dispose())!;

    // ------------------------------------------------------------ sample types, byte orders, classic/BigTIFF

    private static IEnumerable<TestCaseData> Formats()
    {
        var types = new (int bits, int fmt, PixelType type, double lo, double hi, bool integer)[]
        {
            (8, 1, PixelType.UInt8, 0, 255, true),
            (16, 1, PixelType.UInt16, 0, 65535, true),
            (32, 1, PixelType.UInt32, 0, 4_000_000_000, false), // extremes exact in float; others rounded by float
            (16, 2, PixelType.Int16, -32768, 32767, true),
            (32, 2, PixelType.Int32, -2_000_000_000, 2_000_000_000, false),
            (32, 3, PixelType.Float32, -1e6, 1e30, false),
        };
        foreach (var t in types)
            foreach (bool be in new[] { false, true })
                foreach (bool big in new[] { false, true })
                    yield return new TestCaseData(t.bits, t.fmt, t.type, t.lo, t.hi, t.integer, be, big)
                        .SetName($"Reads {t.type} {(be ? "big" : "little")}-endian {(big ? "BigTIFF" : "classic")}");
    }

    [TestCaseSource(nameof(Formats))]
    public void ReadsSampleTypes(int bits, int fmt, PixelType type, double lo, double hi, bool integer, bool bigEndian, bool bigTiff)
    {
        var b = new TiffBuilder { Bits = bits, SampleFormat = fmt, BigEndian = bigEndian, BigTiff = bigTiff, Width = 37, Height = 5 };
        // Integer types with 32 bits: keep values float-exact so the float comparison is exact.
        var frames = TiffBuilder.Frames(3, 37, 5, lo, hi, integer);
        if (!integer && fmt != 3) foreach (var f in frames) for (int i = 0; i < f.Length; i++) f[i] = (double)(float)Math.Round(f[i]);
        using var s = TiffStack.Open(Save("t.tif", b, frames));
        Assert.That((s.Width, s.Height, s.PixelType), Is.EqualTo((37, 5, type)));
        AssertFrames(s, frames);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void SixteenBitFastPathMatchesFloat(bool bigEndian)
    {
        var frames = TiffBuilder.Frames(2, 33, 4, 0, 65535);
        using var s = TiffStack.Open(Save("t.tif", new TiffBuilder { BigEndian = bigEndian, Width = 33, Height = 4 }, frames));
        var u = new ushort[33 * 4];
        s.ReadFrame(1, u);
        Assert.That(u, Is.EqualTo(frames[1].Select(v => (ushort)v).ToArray()));
    }

    [Test]
    public void SixteenBitFastPathRefusesFloatStacks()
    {
        using var s = TiffStack.Open(Save("f.tif", new TiffBuilder { Bits = 32, SampleFormat = 3 }, TiffBuilder.Frames(1, 6, 5, 0, 1, false)));
        Assert.Throws<InvalidOperationException>(() => s.ReadFrame(0, new ushort[30]));
    }

    [Test]
    public void FrameIndexOutOfRangeThrows()
    {
        using var s = TiffStack.Open(Save("t.tif", new TiffBuilder(), TiffBuilder.Frames(2, 6, 5, 0, 100)));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.ReadFrame(2, new float[30]));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.ReadFrame(-1, new float[30]));
    }

    [Test]
    public void ReadAfterDisposeThrowsInsteadOfCrashing()
    {
        var s = TiffStack.Open(Save("t.tif", new TiffBuilder(), TiffBuilder.Frames(1, 6, 5, 0, 100)));
        s.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.ReadFrame(0, new float[30]));
    }

    // ------------------------------------------------------------ strips and tiles

    [TestCase(3, 0, false)]   // 4 strips, last one 1 row, contiguous
    [TestCase(3, 10, false)]  // strips with gaps: per-strip path
    [TestCase(1, 6, true)]    // one row per strip, big-endian
    [TestCase(4, 2, true)]
    public void ReadsMultiStripFrames(int rowsPerStrip, int gap, bool bigEndian)
    {
        var b = new TiffBuilder { Width = 9, Height = 10, RowsPerStrip = rowsPerStrip, StripGap = gap, BigEndian = bigEndian };
        var frames = TiffBuilder.Frames(3, 9, 10, 0, 65535);
        using var s = TiffStack.Open(Save("s.tif", b, frames));
        AssertFrames(s, frames);
        var u = new ushort[90];
        s.ReadFrame(2, u);
        Assert.That(u, Is.EqualTo(frames[2].Select(v => (ushort)v).ToArray()));
    }

    [TestCase(16, false)]
    [TestCase(32, true)]
    [TestCase(32, false)]
    public void ReadsTiledFrames(int bits, bool bigEndian)
    {
        // 40x35 with 16x16 tiles: 3x3 tiles, the right and bottom ones padded.
        var b = new TiffBuilder { Width = 40, Height = 35, TileWidth = 16, TileHeight = 16, Bits = bits, SampleFormat = bits == 32 ? 3 : 1, BigEndian = bigEndian, StripGap = 4 };
        var frames = TiffBuilder.Frames(2, 40, 35, 0, 60000, integer: bits == 16);
        using var s = TiffStack.Open(Save("tiles.tif", b, frames));
        AssertFrames(s, frames);
    }

    [Test]
    public void SkipsReducedResolutionPages()
    {
        var frames = TiffBuilder.Frames(3, 6, 5, 0, 1000);
        using var s = TiffStack.Open(Save("thumb.tif", new TiffBuilder { AddThumbnail = true }, frames));
        AssertFrames(s, frames);
    }

    // ------------------------------------------------------------ ImageJ

    [TestCase(1, false)]
    [TestCase(2, false)]
    [TestCase(1, true)]
    public void ImageJStackWithFewerIfdsThanImagesIsDerivedFromContiguousData(int ifds, bool bigEndian)
    {
        var frames = TiffBuilder.Frames(7, 6, 5, 0, 65535);
        var b = new TiffBuilder { IfdCount = ifds, BigEndian = bigEndian, Description = "ImageJ=1.53t\nimages=7\nslices=7\nloop=false\n" };
        using var s = TiffStack.Open(Save("ij.tif", b, frames));
        AssertFrames(s, frames);
    }

    [Test]
    public void ImageJStackWithAllIfdsUsesTheIfds()
    {
        // Gaps between frames: deriving offsets from the first frame would read the wrong bytes.
        var frames = TiffBuilder.Frames(4, 6, 5, 0, 65535);
        var b = new TiffBuilder { FrameGap = 14, Description = "ImageJ=1.53t\nimages=4\nchannels=2\nslices=2\nhyperstack=true\n" };
        using var s = TiffStack.Open(Save("hyper.tif", b, frames));
        AssertFrames(s, frames);
    }

    [Test]
    public void ImageJStackCutShortNamesTheFrame()
    {
        var frames = TiffBuilder.Frames(10, 6, 5, 0, 65535);
        var b = new TiffBuilder { IfdCount = 1, Description = "ImageJ=1.53t\nimages=10\nslices=10\n" };
        var bytes = b.Build(frames);
        // Keep 6.5 frames of data: frame 7 (1-based) is the first incomplete one.
        File.WriteAllBytes(_dir["cut.tif"], bytes[..(TiffBuilder.DataBase + 6 * 60 + 30)]);
        var ex = Fails(_dir["cut.tif"]);
        Assert.That(ex.Message, Is.EqualTo("cut.tif is truncated: frame 7 data ends past end of file"));
    }

    [Test]
    public void TruncatedMultiPageFileNamesTheFrame()
    {
        var frames = TiffBuilder.Frames(10, 6, 5, 0, 65535);
        var bytes = new TiffBuilder().Build(frames);
        File.WriteAllBytes(_dir["cut.tif"], bytes[..(TiffBuilder.DataBase + 6 * 60 + 59)]);
        Assert.That(Fails(_dir["cut.tif"]).Message, Is.EqualTo("cut.tif is truncated: frame 7 data ends past end of file"));
    }

    // ------------------------------------------------------------ several files

    [Test]
    public void OpensSeveralFilesAsOneStack()
    {
        var a = TiffBuilder.Frames(2, 6, 5, 0, 1000, seed: 1);
        var c = TiffBuilder.Frames(3, 6, 5, 0, 1000, seed: 2);
        string pa = Save("a.tif", new TiffBuilder(), a), pc = Save("c.tif", new TiffBuilder { BigEndian = true, BigTiff = true }, c);
        using var s = TiffStack.Open([pa, pc]);
        AssertFrames(s, [.. a, .. c]);
        Assert.That(s.Files, Is.EqualTo(new[] { pa, pc }));
    }

    [Test]
    public void MicroManagerSetIsFoundByName()
    {
        var all = TiffBuilder.Frames(6, 6, 5, 0, 60000);
        Save("run_MMStack_Pos0.ome.tif", new TiffBuilder(), all[0..2]);
        Save("run_MMStack_Pos0_1.ome.tif", new TiffBuilder(), all[2..4]);
        Save("run_MMStack_Pos0_2.ome.tif", new TiffBuilder(), all[4..6]);
        Save("run_MMStack_Pos1.ome.tif", new TiffBuilder(), TiffBuilder.Frames(2, 6, 5, 0, 60000, seed: 9)); // other position: not part of it
        using (var s = TiffStack.Open(_dir["run_MMStack_Pos0.ome.tif"])) AssertFrames(s, all);
        using (var s = TiffStack.Open(_dir["run_MMStack_Pos0_1.ome.tif"])) AssertFrames(s, all);
        // An explicit list is taken as given.
        using (var s = TiffStack.Open(new[] { _dir["run_MMStack_Pos0_1.ome.tif"] })) AssertFrames(s, all[2..4]);
    }

    [Test]
    public void MicroManagerPositionNameEndingInDigitsIsNotMistakenForAFileIndex()
    {
        var all = TiffBuilder.Frames(4, 6, 5, 0, 60000);
        Save("run_MMStack_1-Pos_000_000.ome.tif", new TiffBuilder(), all[0..2]);
        Save("run_MMStack_1-Pos_000_000_1.ome.tif", new TiffBuilder(), all[2..4]);
        using var s = TiffStack.Open(_dir["run_MMStack_1-Pos_000_000.ome.tif"]);
        AssertFrames(s, all);
    }

    private static string OmeXml(params string[] files) =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\"><Image ID=\"Image:0\"><Pixels>"
        + string.Concat(files.Select((f, i) => $"<TiffData IFD=\"0\" PlaneCount=\"2\" FirstT=\"{2 * i}\"><UUID FileName=\"{f}\">urn:uuid:{i}</UUID></TiffData>"))
        + "</Pixels></Image></OME>";

    [Test]
    public void OmeXmlFileListOpensTheWholeSet()
    {
        var all = TiffBuilder.Frames(6, 6, 5, 0, 60000);
        Save("first.ome.tif", new TiffBuilder { Description = OmeXml("first.ome.tif", "second.ome.tif", "third &amp; last.ome.tif") }, all[0..2]);
        Save("second.ome.tif", new TiffBuilder { BigEndian = true }, all[2..4]);
        Save("third & last.ome.tif", new TiffBuilder(), all[4..6]);
        using var s = TiffStack.Open(_dir["first.ome.tif"]);
        AssertFrames(s, all);
        Assert.That(s.Files.Select(Path.GetFileName), Is.EqualTo(new[] { "first.ome.tif", "second.ome.tif", "third & last.ome.tif" }));
    }

    [Test]
    public void OmeXmlNamingAMissingFileIsAnError()
    {
        Save("first.ome.tif", new TiffBuilder { Description = OmeXml("first.ome.tif", "gone.ome.tif") }, TiffBuilder.Frames(2, 6, 5, 0, 9));
        var ex = Fails(_dir["first.ome.tif"]);
        Assert.That(ex.Message, Does.StartWith("first.ome.tif: its OME-XML lists gone.ome.tif, which is not in "));
    }

    [Test]
    public void MismatchedFrameSizesAcrossFilesAreAnError()
    {
        string a = Save("a.tif", new TiffBuilder(), TiffBuilder.Frames(2, 6, 5, 0, 9));
        string b = Save("b.tif", new TiffBuilder { Width = 7 }, TiffBuilder.Frames(1, 7, 5, 0, 9));
        var ex = Assert.Throws<MaLiangException>(() => TiffStack.Open([a, b]))!;
        Assert.That(ex.Message, Is.EqualTo("b.tif: frame 1 is 7x5 but frame 1 of a.tif is 6x5; all frames must have the same size"));
    }

    [Test]
    public void MismatchedFrameSizesWithinAFileAreAnError()
    {
        var b = new TiffBuilder { SizeOverride = { [2] = (6, 4) } };
        var ex = Fails(Save("m.tif", b, TiffBuilder.Frames(3, 6, 5, 0, 9)));
        Assert.That(ex.Message, Is.EqualTo("m.tif: frame 3 is 6x4 but frame 1 of m.tif is 6x5; all frames must have the same size"));
    }

    [Test]
    public void MismatchedPixelTypesAcrossFilesAreAnError()
    {
        string a = Save("a.tif", new TiffBuilder(), TiffBuilder.Frames(1, 6, 5, 0, 9));
        string b = Save("b.tif", new TiffBuilder { Bits = 8 }, TiffBuilder.Frames(1, 6, 5, 0, 9));
        var ex = Assert.Throws<MaLiangException>(() => TiffStack.Open([a, b]))!;
        Assert.That(ex.Message, Is.EqualTo("b.tif: frame 1 has UInt8 pixels but frame 1 of a.tif has UInt16; all frames must have the same pixel type"));
    }

    // ------------------------------------------------------------ errors

    [Test]
    public void NotATiff()
    {
        File.WriteAllText(_dir["notes.tif"], "this is plain text, not an image");
        Assert.That(Fails(_dir["notes.tif"]).Message, Is.EqualTo("notes.tif is not a TIFF file (bad header)"));
        File.WriteAllBytes(_dir["empty.tif"], []);
        Assert.That(Fails(_dir["empty.tif"]).Message, Is.EqualTo("empty.tif is not a TIFF file (bad header)"));
    }

    [Test]
    public void MissingFile()
    {
        Assert.That(Fails(_dir["nope.tif"]).Message, Is.EqualTo($"{_dir["nope.tif"]}: file not found"));
    }

    // LZW, Deflate and PackBits are decoded (CompressedTiffTests); lossy and other schemes are refused by name.
    [TestCase(7, "JPEG")]
    [TestCase(6, "JPEG (old-style)")]
    [TestCase(34712, "JPEG 2000")]
    [TestCase(50000, "Zstandard")]
    [TestCase(12345, "scheme 12345")]
    public void UnsupportedCompressionIsRefusedByName(int code, string name)
    {
        var ex = Fails(Save("c.tif", new TiffBuilder { Compression = code }, TiffBuilder.Frames(1, 6, 5, 0, 9)));
        Assert.That(ex.Message, Is.EqualTo($"c.tif: frame 1: compression {name} is not supported (uncompressed, LZW, Deflate or PackBits); save the stack with one of those"));
    }

    [Test]
    public void RgbIsRefused()
    {
        var ex = Fails(Save("rgb.tif", new TiffBuilder { SamplesPerPixel = 3, Photometric = 2, Bits = 8 }, TiffBuilder.Frames(1, 6, 5, 0, 9)));
        Assert.That(ex.Message, Is.EqualTo("rgb.tif: RGB (3 samples per pixel) is not supported; convert to a grayscale stack"));
        ex = Fails(Save("two.tif", new TiffBuilder { SamplesPerPixel = 2 }, TiffBuilder.Frames(1, 6, 5, 0, 9)));
        Assert.That(ex.Message, Is.EqualTo("two.tif: 2 samples per pixel are not supported; convert to a grayscale stack"));
    }

    [Test]
    public void ZeroFramesIsAnError()
    {
        File.WriteAllBytes(_dir["none.tif"], "II*\0\0\0\0\0"u8.ToArray());
        Assert.That(Fails(_dir["none.tif"]).Message, Is.EqualTo("none.tif contains no frames"));
    }

    [Test]
    public void UnsupportedBitDepthIsNamed()
    {
        var bytes = new TiffBuilder { Bits = 16, SampleFormat = 3 }.Build(TiffBuilder.Frames(1, 6, 5, 0, 9));
        File.WriteAllBytes(_dir["half.tif"], bytes);
        Assert.That(Fails(_dir["half.tif"]).Message, Does.StartWith("half.tif: 16-bit float samples are not supported"));
    }

    // ------------------------------------------------------------ concurrency

    [Test]
    public void ConcurrentReadsReturnTheSameFrames()
    {
        var frames = TiffBuilder.Frames(16, 64, 48, 0, 65535);
        using var s = TiffStack.Open(Save("p.tif", new TiffBuilder { Width = 64, Height = 48, RowsPerStrip = 7, StripGap = 2 }, frames));
        var bad = 0;
        Parallel.For(0, 16 * 20, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var buf = new float[64 * 48];
            s.ReadFrame(i % 16, buf);
            for (int k = 0; k < buf.Length; k++) if (buf[k] != (float)frames[i % 16][k]) { Interlocked.Increment(ref bad); break; }
        });
        Assert.That(bad, Is.Zero);
    }

    // ------------------------------------------------------------ real files

    [Test]
    public void ReadsThunderStormTubulinFrame()
    {
        using var s = TiffStack.Open(Data("tubulins1_00020.tif"));
        Assert.That((s.Width, s.Height, s.FrameCount, s.PixelType), Is.EqualTo((256, 256, 1, PixelType.UInt16)));
        var f = new float[256 * 256];
        s.ReadFrame(0, f);
        Assert.That((f.Min(), f.Max()), Is.EqualTo((100f, 1078f)));
        var u = new ushort[256 * 256];
        s.ReadFrame(0, u);
        Assert.That(u.Select(v => (float)v), Is.EqualTo(f));
    }

    [Test]
    public void ReadsPicassoStackEqualToRawData()
    {
        var raw = File.ReadAllBytes(Data("picasso_testdata.raw"));
        Assert.That(raw, Has.Length.EqualTo(100 * 32 * 32 * 2));
        using var s = TiffStack.Open(Data("picasso_testdata.tif"));
        Assert.That((s.Width, s.Height, s.FrameCount, s.PixelType), Is.EqualTo((32, 32, 100, PixelType.UInt16)));
        var f = new float[32 * 32];
        var u = new ushort[32 * 32];
        for (int i = 0; i < 100; i++)
        {
            var expected = new ushort[32 * 32];
            for (int k = 0; k < expected.Length; k++) expected[k] = BitConverter.ToUInt16(raw, (i * 1024 + k) * 2); // raw is little-endian
            s.ReadFrame(i, u);
            s.ReadFrame(i, f);
            Assert.That(u, Is.EqualTo(expected), $"frame {i}");
            Assert.That(f, Is.EqualTo(expected.Select(v => (float)v).ToArray()), $"frame {i}");
        }
    }
}
