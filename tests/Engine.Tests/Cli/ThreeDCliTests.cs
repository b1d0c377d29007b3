using MaLiang.Engine.Calibration;
using MaLiang.Engine.IO;
using MaLiang.Engine.Tests.Fit;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Cli;

/// <summary>3D through the CLI: simulate --calibration, calibrate-z, localize --calibration, and their bad input.</summary>
[NonParallelizable]
public class ThreeDCliTests
{
    private string _dir = "";

    [SetUp] public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "maliang-3d-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string P(string name) => Path.Combine(_dir, name);
    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private string Calibration(string name = "cal.yaml")
    {
        ZCalibrationFile.Write(P(name), TestCalibrations.Unequal);
        return P(name);
    }

    private void AssertBadInput((int Code, string Out, string Err) r, string output, params string[] mentions)
    {
        Assert.That(r.Code, Is.EqualTo(2), $"stdout: {r.Out} stderr: {r.Err}");
        var lines = r.Err.Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1), r.Err);
        foreach (var m in mentions) Assert.That(lines[0], Does.Contain(m));
        Assert.That(File.Exists(P(output)), Is.False, "no output file left behind");
        Assert.That(Directory.GetFiles(_dir).Where(f => Path.GetFileName(f).StartsWith('.')), Is.Empty, "no temp files left");
    }

    [Test]
    public void SimulateLocalizeWithCalibrationReachesTheCrlbInZ()
    {
        var cal = Calibration();
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--calibration", cal, "--width", "64", "--height", "64", "--frames", "300",
            "--emitters", "4", "--emitters-per-frame", "2", "--min-separation", "20", "--edge-margin", "9", "--photons", "3000", "--seed", "5");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        r = Run("localize", P("s.tif"), "-o", P("out.csv"), "--calibration", cal, "--offset", "100");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("outside the calibrated z range"));
        var header = File.ReadLines(P("out.csv")).First();
        Assert.That(header, Does.StartWith("\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"z [nm]\",\"sigma [nm]\""));
        Assert.That(header, Does.Contain("\"uncertainty [nm]\",\"uncertainty_z [nm]\","));
        var locs = LocalizationCsv.Read(P("out.csv"), 100).Localizations;
        var truth = LocalizationCsv.Read(P("t.csv"), 100).Localizations;
        int matched = 0; double se = 0, crlb = 0, bias = 0;
        foreach (var l in locs)
        {
            var t = truth.Where(t => t.Frame == l.Frame).MinBy(t => Math.Pow(t.X - l.X, 2) + Math.Pow(t.Y - l.Y, 2));
            if (Math.Pow(t.X - l.X, 2) + Math.Pow(t.Y - l.Y, 2) > 1) continue;
            matched++; se += Math.Pow(l.Z - t.Z, 2); crlb += l.UncertaintyZ * (double)l.UncertaintyZ; bias += l.Z - t.Z;
        }
        TestContext.Progress.WriteLine($"3D pipeline: {matched} of {truth.Length} matched, z RMSE / sqrt(CRLB) {Math.Sqrt(se / crlb):0.000}, bias {bias / matched:0.0} nm");
        Assert.That(matched, Is.GreaterThanOrEqualTo((int)(0.98 * truth.Length)));
        Assert.That(Math.Sqrt(se / crlb), Is.LessThanOrEqualTo(1.15));
        Assert.That(Math.Abs(bias / matched), Is.LessThanOrEqualTo(5));
    }

    /// <summary>Drift correction, merging and filtering keep the z columns of a 3D table; merging averages z.</summary>
    [Test]
    public void PostProcessingCarriesZ()
    {
        var cal = Calibration();
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--calibration", cal, "--width", "64", "--height", "64", "--frames", "200",
            "--emitters", "4", "--emitters-per-frame", "3", "--on-frames", "4", "--min-separation", "20", "--edge-margin", "9", "--photons", "3000", "--seed", "6");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        r = Run("localize", P("s.tif"), "-o", P("l.csv"), "--calibration", cal, "--offset", "100", "--quiet");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        var locs = LocalizationCsv.Read(P("l.csv"), 100).Localizations;
        foreach (var (verb, extra) in new[] { ("drift", new[] { "--segments", "4" }), ("merge", Array.Empty<string>()), ("filter", new[] { "--expr", "z [nm] > 0" }) })
        {
            r = Run([verb, P("l.csv"), "-o", P(verb + ".csv"), .. extra]);
            Assert.That(r.Code, Is.EqualTo(0), verb + ": " + r.Err);
            Assert.That(File.ReadLines(P(verb + ".csv")).First(), Does.Contain("\"z [nm]\"").And.Contain("\"uncertainty_z [nm]\""), verb);
        }
        var filtered = LocalizationCsv.Read(P("filter.csv"), 100).Localizations;
        Assert.That(filtered.Length, Is.EqualTo(locs.Count(l => l.Z > 0)));
        // Each emitter sits at one z: merged molecules keep it within their uncertainty.
        var merged = LocalizationCsv.Read(P("merge.csv"), 100).Localizations;
        Assert.That(merged.Length, Is.LessThan(locs.Length));
        var truth = LocalizationCsv.Read(P("t.csv"), 100).Localizations;
        foreach (var m in merged)
        {
            var t = truth.MinBy(t => Math.Pow(t.X - m.X, 2) + Math.Pow(t.Y - m.Y, 2));
            Assert.That(m.Z, Is.EqualTo(t.Z).Within(6 * m.UncertaintyZ + 1), $"merged molecule at frame {m.Frame + 1}");
        }
        // In memory (C ABI, Python): the z columns filter too.
        var provider = Engine.Post.LocalizationColumns.Provider(locs, 100);
        Assert.That(provider("z [nm]"), Is.EqualTo(locs.Select(l => (double)l.Z).ToArray()));
    }

    [Test]
    public void CalibrateZFromASimulatedBeadStack()
    {
        var cal = Calibration();
        var r = Run("simulate", P("beads.tif"), "--truth", P("bt.csv"), "--calibration", cal, "--bead-z-step-nm", "10", "--bead-z-first-nm", "-600",
            "--frames", "121", "--width", "64", "--height", "64", "--emitters", "4", "--photons", "20000", "--background", "20",
            "--min-separation", "20", "--edge-margin", "10", "--seed", "2");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        r = Run("calibrate-z", P("beads.tif"), "-o", P("fit.yaml"), "--z-step-nm", "10", "--z-first-nm", "-600", "--offset", "100", "--plot", P("plot.png"));
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        var c = ZCalibrationFile.Read(P("fit.yaml"), 100);
        Assert.That(c.X.CNm, Is.EqualTo(TestCalibrations.Unequal.X.CNm).Within(5));
        Assert.That(c.Y.CNm, Is.EqualTo(TestCalibrations.Unequal.Y.CNm).Within(5));
        Assert.That(File.ReadAllBytes(P("plot.png"))[1..4], Is.EqualTo("PNG"u8.ToArray()));
    }

    [Test]
    public void CalibrationMissingAFieldIsRefused()
    {
        var cal = Calibration();
        File.WriteAllLines(cal, File.ReadAllLines(cal).Where(l => !l.Contains("c_nm")).ToArray());
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--frames", "3", "--width", "32", "--height", "32");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        AssertBadInput(Run("localize", P("s.tif"), "-o", P("out.csv"), "--calibration", cal), "out.csv", "cal.yaml", "x.c_nm", "missing");
    }

    [Test]
    public void CalibrationAtAnotherPixelSizeIsRefused()
    {
        var cal = Calibration();
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--frames", "3", "--width", "32", "--height", "32");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        AssertBadInput(Run("localize", P("s.tif"), "-o", P("out.csv"), "--calibration", cal, "--pixel-size", "160"), "out.csv", "cal.yaml", "pixel_size_nm", "160");
    }

    [TestCase("0")]
    [TestCase("-10")]
    public void ZStepMustBePositive(string step)
    {
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--frames", "10", "--width", "32", "--height", "32");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        AssertBadInput(Run("calibrate-z", P("s.tif"), "-o", P("c.yaml"), "--z-step-nm", step), "c.yaml", "z-step-nm");
    }

    [Test]
    public void StackWithoutBeadsIsRefused()
    {
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--frames", "10", "--width", "48", "--height", "48", "--photons", "0");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        AssertBadInput(Run("calibrate-z", P("s.tif"), "-o", P("c.yaml"), "--z-step-nm", "10", "--offset", "100", "--plot", P("c.png")), "c.yaml", "s.tif", "no bead found");
        Assert.That(File.Exists(P("c.png")), Is.False);
    }

    [Test]
    public void TwoDimensionalCsvKeepsItsColumns()
    {
        var r = Run("simulate", P("s.tif"), "--truth", P("t.csv"), "--frames", "3", "--width", "32", "--height", "32");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        r = Run("localize", P("s.tif"), "-o", P("out.csv"), "--offset", "100", "--quiet");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        Assert.That(File.ReadLines(P("out.csv")).First(), Is.EqualTo(
            "\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"sigma [nm]\",\"intensity [photon]\",\"offset [photon]\",\"bkgstd [photon]\",\"uncertainty [nm]\"," +
            "\"uncertainty_x [nm]\",\"uncertainty_y [nm]\",\"uncertainty_photons [photon]\",\"uncertainty_offset [photon]\",\"uncertainty_sigma [nm]\"," +
            "\"loglikelihood\",\"llr\",\"iterations\",\"detections\",\"fitted_together\""));
        Assert.That(File.ReadLines(P("t.csv")).First(), Does.Not.Contain("z [nm]"));
    }
}
