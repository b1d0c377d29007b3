using MaLiang.Cli;
using MaLiang.Engine.IO;
using MaLiang.Engine.Tests.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Cli;

/// <summary>The `maliang` command in-process: bad input gives exit code 2, one line naming the culprit, and no output file.</summary>
[NonParallelizable]
public class CliTests
{
    private string _dir = "";

    [SetUp] public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "maliang-cli-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>Runs the CLI in this process with stdout and stderr captured (shared by the CLI test classes).</summary>
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = Console.Out; var e = Console.Error;
        var so = new StringWriter(); var se = new StringWriter();
        Console.SetOut(so); Console.SetError(se);
        try { return (Commands.Run(args), so.ToString(), se.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }

    private string Simulated(int frames = 5, int size = 48)
    {
        var path = P("sim.tif");
        var r = Run("simulate", path, "--truth", P("truth.csv"), "--width", $"{size}", "--height", $"{size}", "--frames", $"{frames}",
            "--emitters", "6", "--emitters-per-frame", "4", "--photons", "2000", "--offset", "100", "--seed", "3");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        return path;
    }

    private void AssertBadInput((int Code, string Out, string Err) r, params string[] mentions)
    {
        Assert.That(r.Code, Is.EqualTo(2), $"stdout: {r.Out} stderr: {r.Err}");
        var lines = r.Err.Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1), r.Err);
        foreach (var m in mentions) Assert.That(lines[0], Does.Contain(m));
        Assert.That(File.Exists(P("out.csv")), Is.False, "no output file left behind");
        Assert.That(Directory.GetFiles(_dir).Where(f => f.Contains(".tmp") || Path.GetFileName(f).StartsWith('.')), Is.Empty, "no temp files left");
    }

    [Test]
    public void LocalizeWritesCsvAndRender()
    {
        var stack = Simulated();
        var r = Run("localize", stack, "-o", P("out.csv"), "--offset", "100", "--render", P("r.png"), "--quiet");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        var table = LocalizationCsv.Read(P("out.csv"), 100);
        var truth = LocalizationCsv.Read(P("truth.csv"), 100);
        var m = Evaluate.GroundTruth.Match(table.Localizations, truth.Localizations.Select(t => new Evaluate.TruePosition(t.Frame, t.X, t.Y)).ToList(), 1.0);
        Assert.That(m.Recall, Is.GreaterThanOrEqualTo(0.95));
        Assert.That(File.ReadAllBytes(P("r.png"))[1..4], Is.EqualTo("PNG"u8.ToArray()));
    }

    [Test]
    public void SummaryNamesFramesLocalizationsAndDrops()
    {
        var r = Run("localize", Simulated(), "-o", P("out.csv"), "--offset", "100");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("5 frames").And.Contain("localizations").And.Contain("dropped").And.Contain("ms/frame"));
    }

    [Test]
    public void NotATiff()
    {
        File.WriteAllText(P("notes.tif"), "this is text, not an image");
        AssertBadInput(Run("localize", P("notes.tif"), "-o", P("out.csv")), "notes.tif", "not a TIFF");
    }

    [Test]
    public void TruncatedTiff()
    {
        var bytes = File.ReadAllBytes(Simulated(frames: 5));
        File.WriteAllBytes(P("cut.tif"), bytes[..(bytes.Length / 2)]);
        AssertBadInput(Run("localize", P("cut.tif"), "-o", P("out.csv")), "cut.tif", "truncated");
    }

    [Test]
    public void CompressedTiff()
    {
        // JPEG-in-TIFF (lossy) is refused; LZW, Deflate and PackBits are read (CompressedTiffTests)
        File.WriteAllBytes(P("jpeg.tif"), new TiffBuilder { Compression = 7, Width = 16, Height = 16 }.Build(TiffBuilder.Frames(1, 16, 16, 0, 9)));
        AssertBadInput(Run("localize", P("jpeg.tif"), "-o", P("out.csv")), "jpeg.tif", "frame 1", "compression JPEG is not supported");
    }

    [Test]
    public void RgbTiff()
    {
        File.WriteAllBytes(P("rgb.tif"), new TiffBuilder { SamplesPerPixel = 3, Photometric = 2, Bits = 8, Width = 16, Height = 16 }.Build(TiffBuilder.Frames(1, 16, 16 * 3, 0, 9)));
        AssertBadInput(Run("localize", P("rgb.tif"), "-o", P("out.csv")), "rgb.tif", "RGB");
    }

    [Test]
    public void ZeroFrames()
    {
        File.WriteAllBytes(P("empty.tif"), new TiffBuilder { Width = 16, Height = 16 }.Build(new List<double[]>()));
        AssertBadInput(Run("localize", P("empty.tif"), "-o", P("out.csv")), "empty.tif", "no frames");
    }

    [Test]
    public void FramesSmallerThanTheRoi()
    {
        TiffWriter.Write(P("small.tif"), new ushort[5 * 5 * 2], 5, 5, 2);
        AssertBadInput(Run("localize", P("small.tif"), "-o", P("out.csv")), "small.tif", "smaller than the 7x7 ROI");
    }

    [TestCase("--psf-sigma", "NaN", "psf-sigma")]
    [TestCase("--pixel-size", "-1", "pixel-size")]
    [TestCase("--photons-per-adu", "0", "photons-per-adu")]
    [TestCase("--roi", "6", "roi")]
    [TestCase("--threshold", "-5", "threshold")]
    [TestCase("--filter", "median", "filter")]
    [TestCase("--backend", "quantum", "backend")]
    public void BadParameter(string option, string value, string named)
        => AssertBadInput(Run("localize", Simulated(), "-o", P("out.csv"), option, value), named);

    /// <summary>Writes 80x60 px sensor maps (offset, variance, gain) and returns their paths.</summary>
    private (string Off, string Var, string Gain) WriteMaps(Engine.Camera.CameraMaps maps)
    {
        TiffWriter.Write(P("off.tif"), maps.OffsetAdu!, maps.SensorWidth, maps.SensorHeight, 1);
        TiffWriter.Write(P("var.tif"), maps.VarianceAdu2!, maps.SensorWidth, maps.SensorHeight, 1);
        TiffWriter.Write(P("gain.tif"), maps.GainPhotonsPerAdu!, maps.SensorWidth, maps.SensorHeight, 1);
        return (P("off.tif"), P("var.tif"), P("gain.tif"));
    }

    [Test]
    public void ScmosMapsAtAnOriginSimulateAndLocalize()
    {
        var (off, variance, gain) = WriteMaps(Evaluate.ScmosComparison.Maps(80, 60, 2));
        string[] maps = ["--camera-offset-map", off, "--camera-variance-map", variance, "--camera-gain-map", gain, "--camera-origin", "20,10"];
        var r = Run(["simulate", P("sim.tif"), "--truth", P("truth.csv"), "--width", "48", "--height", "40", "--frames", "20",
            "--emitters", "8", "--emitters-per-frame", "6", "--photons", "1500", .. maps, "--seed", "5"]);
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        r = Run(["localize", P("sim.tif"), "-o", P("out.csv"), "--photons-per-adu", "0.5", .. maps, "--quiet"]);
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        var table = LocalizationCsv.Read(P("out.csv"), 100);
        var truth = LocalizationCsv.Read(P("truth.csv"), 100);
        var m = Evaluate.GroundTruth.Match(table.Localizations, truth.Localizations.Select(t => new Evaluate.TruePosition(t.Frame, t.X, t.Y)).ToList(), 1.0);
        Assert.That(m.Recall, Is.GreaterThanOrEqualTo(0.95));
        Assert.That(m.Precision, Is.GreaterThanOrEqualTo(0.95));
        // The offset and gain maps turn the ADU back into the simulated photons.
        double photons = table.Localizations.Take(m.Matched).Average(l => l.Photons);
        Assert.That(photons, Is.EqualTo(1500).Within(150));
    }

    [TestCase("--camera-origin", "40,30", "camera-origin")]
    [TestCase("--camera-origin", "4;3", "camera-origin")]
    [TestCase("--camera-variance-map", "missing.tif", "camera-variance-map")]
    public void BadScmosOptions(string option, string value, string named)
    {
        var stack = Simulated(size: 48);
        var (off, _, _) = WriteMaps(Evaluate.ScmosComparison.Maps(80, 60, 2));
        if (value == "missing.tif") value = P(value);
        AssertBadInput(Run("localize", stack, "-o", P("out.csv"), "--camera-offset-map", off, option, value), named);
    }

    [Test]
    public void ZeroVarianceInTheMapIsNamedWithItsPixel()
    {
        var maps = Evaluate.ScmosComparison.Maps(80, 60, 2);
        maps.VarianceAdu2![12 * 80 + 33] = 0;   // the maps' own check ran already; the file is what the CLI reads
        var (off, variance, gain) = WriteMaps(maps);
        AssertBadInput(Run("localize", Simulated(size: 48), "-o", P("out.csv"), "--camera-variance-map", variance), "camera-variance-map", "x 33, y 12");
    }

    [Test]
    public void MinSnrMustBeANumberAtLeastZero()
        => AssertBadInput(Run("localize", Simulated(), "-o", P("out.csv"), "--min-snr", "-1"), "min-snr");

    [Test]
    public void KeepAndRejectOverlappingContradict()
        => AssertBadInput(Run("localize", Simulated(), "-o", P("out.csv"), "--keep-overlapping", "--reject-overlapping"), "reject-overlapping");

    [Test]
    public void EdgeEmittersAreFoundUnlessDropEdge()
    {
        // 32 x 32 px frames, emitters anywhere (--edge-margin 0), isolated (--min-separation 8): the CLI path of EdgeTests.
        var r = Run("simulate", P("edge.tif"), "--truth", P("truth.csv"), "--width", "32", "--height", "32", "--frames", "40",
            "--emitters", "12", "--emitters-per-frame", "4", "--edge-margin", "0", "--min-separation", "7", "--photons", "1000",
            "--offset", "100", "--seed", "5");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        var truth = LocalizationCsv.Read(P("truth.csv"), 100).Localizations.Select(t => new Evaluate.TruePosition(t.Frame, t.X, t.Y)).ToList();
        double Recall(params string[] extra)
        {
            var l = Run(["localize", P("edge.tif"), "-o", P("out.csv"), "--offset", "100", .. extra]);
            Assert.That(l.Code, Is.EqualTo(0), l.Err);
            TestContext.Out.WriteLine(l.Out.Trim());
            var m = Evaluate.GroundTruth.Match(LocalizationCsv.Read(P("out.csv"), 100).Localizations, truth, 1.0);
            var c = Run("compare", P("out.csv"), P("truth.csv"));
            Assert.That(c.Out, Does.Contain($"recall {m.Recall:F4}").And.Contain($"Jaccard {m.Jaccard:F4}"));
            return m.Recall;
        }
        int nearEdge = truth.Count(t => Math.Min(Math.Min(t.X, 32 - t.X), Math.Min(t.Y, 32 - t.Y)) < 3);
        Assert.That(nearEdge, Is.GreaterThan(truth.Count / 5), "a 3 px band on every side of a 32 px frame holds many of them");
        double now = Recall(), dropped = Recall("--drop-edge");
        Assert.That(now, Is.GreaterThanOrEqualTo(0.97));
        Assert.That(dropped, Is.LessThan(now - 0.15));
    }

    [Test]
    public void OffsetAboveEveryPixel()
        => AssertBadInput(Run("localize", Simulated(), "-o", P("out.csv"), "--offset", "60000"), "sim.tif", "frame 1", "offset");

    [Test]
    public void MicroManagerSetOpensWholeFromItsFirstFile()
    {
        // Two files of one MMStack position: localize given the first file reads both (as the README says).
        var stack = Simulated(frames: 4);
        File.Copy(stack, P("A_MMStack_Pos0.ome.tif"));
        File.Copy(stack, P("A_MMStack_Pos0_1.ome.tif"));
        var r = Run("localize", P("A_MMStack_Pos0.ome.tif"), "-o", P("out.csv"), "--offset", "100");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("8 frames"));
        Assert.That(LocalizationCsv.Read(P("out.csv"), 100).Localizations.Max(l => l.Frame), Is.EqualTo(7));
    }

    [Test, Category("Cuda")]
    public void LocalizeOnCudaWritesTheCpuLocalizations()
    {
        Gpu.CudaDriver.Require();
        var stack = Simulated(frames: 8, size: 96);
        var cpu = Run("localize", stack, "-o", P("cpu.csv"), "--offset", "100", "--backend", "cpu", "--quiet");
        var cuda = Run("localize", stack, "-o", P("cuda.csv"), "--offset", "100", "--backend", "cuda");
        Assert.That(cpu.Code, Is.EqualTo(0), cpu.Err);
        Assert.That(cuda.Code, Is.EqualTo(0), cuda.Err);
        Assert.That(cuda.Out + cuda.Err, Does.Contain("cuda:"), "the summary names the backend");
        var a = LocalizationCsv.Read(P("cpu.csv"), 100).Localizations;
        var b = LocalizationCsv.Read(P("cuda.csv"), 100).Localizations;
        Assert.That(b.Length, Is.EqualTo(a.Length).And.GreaterThan(20));
        for (int i = 0; i < a.Length; i++)
        {
            Assert.That(b[i].Frame, Is.EqualTo(a[i].Frame));
            Assert.That(b[i].X, Is.EqualTo(a[i].X).Within(1e-4), $"x of localization {i}");
            Assert.That(b[i].Y, Is.EqualTo(a[i].Y).Within(1e-4), $"y of localization {i}");
        }
    }

    [Test, Category("Cuda")]
    public void BenchOnCudaPrintsTheContractKeysAndTheDevice()
    {
        Gpu.CudaDriver.Require();
        var r = Run("bench", "--backend", "cuda", "--json", "--frames", "16", "--fits", "20000", "--size", "128", "--molecules", "20");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Out);
        var o = doc.RootElement;
        foreach (var key in new[] { "ms_per_frame_total", "ms_per_frame_read", "ms_per_frame_denoise", "ms_per_frame_detect", "ms_per_frame_fit",
                                    "frames", "localizations_per_frame", "fits_per_second", "fits", "fits_kept", "rmse_over_crlb", "threads",
                                    "backend", "device", "device_detection", "chunk_frames", "fits_per_second_kernel", "ms_per_frame_fit_kernel" })
            Assert.That(o.TryGetProperty(key, out _), Is.True, $"key {key}");
        Assert.That(o.GetProperty("backend").GetString(), Does.StartWith("cuda:"));
        Assert.That(o.GetProperty("device").GetString(), Is.EqualTo(MaLiang.Engine.Fit.Backends.Cuda.CudaRuntime.Devices()[0].Name));
        Assert.That(o.GetProperty("frames").GetInt32(), Is.EqualTo(16));
        Assert.That(o.GetProperty("fits").GetInt32(), Is.EqualTo(20000));
        Assert.That(o.GetProperty("rmse_over_crlb").GetDouble(), Is.InRange(0.9, 1.1), "the same precision as the CPU backend");
        Assert.That(o.GetProperty("fits_per_second_kernel").GetDouble(), Is.GreaterThan(0));
    }

    [Test]
    public void BenchFitsIsCapped()
    {
        // 20 million ROIs would overflow one batch's pixel array: a named bad parameter, not a crash.
        var r = Run("bench", "--fits", "20000000");
        Assert.That(r.Code, Is.EqualTo(2), "--fits is capped: a named bad parameter");
        Assert.That(r.Err, Does.Contain("fits"));
    }

    [Test]
    public void TinySimulationIsRefusedNotALoop()
    {
        var r = Run("simulate", P("t.tif"), "--truth", P("t.csv"), "--width", "8", "--height", "8", "--pattern", "filaments");
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Does.Contain("16x16"));
    }

    [Test]
    public void MissingFile() => AssertBadInput(Run("localize", P("nope.tif"), "-o", P("out.csv")), "nope.tif");

    [Test]
    public void BadCsvForRender()
    {
        File.WriteAllText(P("bad.csv"), "\"id\",\"intensity [photon]\"\n1,100\n");
        var r = Run("render", P("bad.csv"), "-o", P("r.png"));
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Does.Contain("bad.csv"));
        Assert.That(File.Exists(P("r.png")), Is.False);
    }

    [Test]
    public void ExistingOutputSurvivesAFailedRun()
    {
        File.WriteAllText(P("out.csv"), "previous results");
        File.WriteAllText(P("notes.tif"), "text");
        var r = Run("localize", P("notes.tif"), "-o", P("out.csv"));
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(File.ReadAllText(P("out.csv")), Is.EqualTo("previous results"));
    }
}
