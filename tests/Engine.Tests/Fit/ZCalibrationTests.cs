using MaLiang.Engine.Calibration;
using MaLiang.Engine.IO;
using MaLiang.Engine.Simulate;
using MaLiang.Engine.Tests.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Fit;

public class ZCalibrationTests
{
    /// <summary>A bead z-stack: 4 beads, 20000 photons, 10 nm steps over -600..600 nm stage z, 20 photons/px background.</summary>
    internal static SimulationResult BeadStack(ZCalibration truth, int seed, out SimulationSettings s)
    {
        s = new SimulationSettings
        {
            Width = 64, Height = 64, Frames = 121, Photons = 20000, BackgroundPhotons = 20, OffsetAdu = 100, Seed = seed,
            Positions = [new(16.3, 16.6), new(47.5, 15.2), new(15.8, 47.9), new(48.4, 48.1)],
            ZCalibration = truth, BeadZStepNm = 10, BeadZFirstNm = -600,
        };
        return Simulator.Run(s);
    }

    private static ZCalibrationRun Calibrate(SimulationResult sim, double? first)
    {
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount, "beads.tif");
        return ZCalibrator.Calibrate(src, new LocalizerSettings { OffsetAdu = 100 }, 10, first);
    }

    [TestCase("unequal")]
    [TestCase("thunderstorm")]
    public void BeadStackRecoversBothCurvesAndFocalPlanes(string which)
    {
        var truth = which == "unequal" ? TestCalibrations.Unequal : TestCalibrations.ThunderStormLike;
        var sim = BeadStack(truth, 11, out _);
        var run = Calibrate(sim, -600);
        var c = run.Calibration;
        Assert.That(run.Beads, Is.EqualTo(4));
        double worst = 0;
        for (double z = c.ZMinNm; z <= c.ZMaxNm; z += 5)
        {
            worst = Math.Max(worst, Math.Abs(c.X.SigmaPx(z) / truth.X.SigmaPx(z) - 1));
            worst = Math.Max(worst, Math.Abs(c.Y.SigmaPx(z) / truth.Y.SigmaPx(z) - 1));
        }
        TestContext.Progress.WriteLine($"{which}: range {c.ZMinNm}..{c.ZMaxNm}, worst width error {worst:P2}, focus x {c.X.CNm:0.0} (true {truth.X.CNm}), y {c.Y.CNm:0.0} (true {truth.Y.CNm})");
        Assert.That(c.ZMaxNm - c.ZMinNm, Is.GreaterThanOrEqualTo(1000), "measured range");
        Assert.That(worst, Is.LessThanOrEqualTo(0.02), "width curves");
        Assert.That(c.X.CNm, Is.EqualTo(truth.X.CNm).Within(5), "x in-focus plane");
        Assert.That(c.Y.CNm, Is.EqualTo(truth.Y.CNm).Within(5), "y in-focus plane");
    }

    [Test]
    public void WithoutFirstZTheEqualWidthPlaneIsZero()
    {
        var truth = TestCalibrations.Unequal;
        var sim = BeadStack(truth, 12, out _);
        var c = Calibrate(sim, null).Calibration;
        double cross = truth.CrossingNm();
        Assert.That(c.CrossingNm(), Is.EqualTo(0).Within(1e-3));
        // The planes keep their distances: each is the true one minus the true crossing.
        Assert.That(c.X.CNm, Is.EqualTo(truth.X.CNm - cross).Within(5));
        Assert.That(c.Y.CNm, Is.EqualTo(truth.Y.CNm - cross).Within(5));
    }

    [Test]
    public void YamlRoundTripsEveryField()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "c.yaml");
        var c = new ZCalibration
        {
            X = new DefocusCurve(1.1234567, 0.1, -0.02, -201.5, 380.25), Y = new DefocusCurve(1.3, -0.15, 0.09, 210, 430),
            PixelSizeNm = 107, ZMinNm = -612.5, ZMaxNm = 598, RefractiveIndexFactor = 0.79,
        };
        ZCalibrationFile.Write(path, c);
        var r = ZCalibrationFile.Read(path, 107);
        Assert.That(r.X, Is.EqualTo(c.X)); Assert.That(r.Y, Is.EqualTo(c.Y));
        Assert.That((r.PixelSizeNm, r.ZMinNm, r.ZMaxNm, r.RefractiveIndexFactor), Is.EqualTo((107.0, -612.5, 598.0, 0.79)));
    }

    [Test]
    public void ThunderStormFileIsReadWithWidthsHalved()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "ts.yaml");
        File.WriteAllText(path, "!!cz.cuni.lf1.lge.ThunderSTORM.calibration.DaostormCalibration\nangle: 0.01\nw01: 2.6\na1: 0.1\nb1: 0.03\nc1: -180.0\nd1: 390.0\n" +
                                "w02: 2.8\na2: -0.1\nb2: 0.02\nc2: 180.0\nd2: 400.0\n");
        var c = ZCalibrationFile.Read(path, 100);
        Assert.That(c.X, Is.EqualTo(new DefocusCurve(1.3, 0.1, 0.03, -180, 390)));
        Assert.That(c.Y, Is.EqualTo(new DefocusCurve(1.4, -0.1, 0.02, 180, 400)));
        Assert.That((c.ZMinNm, c.ZMaxNm, c.PixelSizeNm), Is.EqualTo((-580.0, 580.0, 100.0)));
    }

    [Test]
    public void PicassoFileIsConvertedToCurvesThroughItsPolynomials()
    {
        // Picasso's widths as polynomials of its z (which runs against ours): build them from a known curve by a
        // least-squares 6th-order fit, write the file, read it back and compare the widths at our z.
        var truth = TestCalibrations.ThunderStormLike;
        double[] Coeffs(DefocusCurve cv)
        {
            int m = 121, deg = 6;
            var a = new double[deg + 1, deg + 1]; var b = new double[deg + 1];
            for (int i = 0; i < m; i++)
            {
                double zp = -600 + 10 * i; // Picasso's z = -ours
                double v = cv.SigmaPx(-zp);
                var pw = new double[deg + 1];
                for (int k = 0; k <= deg; k++) pw[k] = Math.Pow(zp / 600, deg - k);
                for (int r = 0; r <= deg; r++) { b[r] += pw[r] * v; for (int q = 0; q <= deg; q++) a[r, q] += pw[r] * pw[q]; }
            }
            var x = Solve(a, b);
            for (int k = 0; k <= deg; k++) x[k] /= Math.Pow(600, deg - k); // back to z in nm
            return x;
        }
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "3d_calib.yaml");
        string L(double[] c) => "[" + string.Join(", ", c.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]";
        File.WriteAllText(path, $"X Coefficients: {L(Coeffs(truth.X))}\nY Coefficients: {L(Coeffs(truth.Y))}\nNumber of frames: 121\nStep size in nm: 10\nMagnification factor: 0.79\n");
        var c = ZCalibrationFile.Read(path, 100);
        Assert.That(c.RefractiveIndexFactor, Is.EqualTo(0.79));
        Assert.That((c.ZMinNm, c.ZMaxNm), Is.EqualTo((-600.0, 600.0)));
        for (double z = -500; z <= 500; z += 50)
        {
            Assert.That(c.X.SigmaPx(z), Is.EqualTo(truth.X.SigmaPx(z)).Within(0.02 * truth.X.SigmaPx(z)), $"x at {z}");
            Assert.That(c.Y.SigmaPx(z), Is.EqualTo(truth.Y.SigmaPx(z)).Within(0.02 * truth.Y.SigmaPx(z)), $"y at {z}");
        }
    }

    private static double[] Solve(double[,] a, double[] b)
    {
        int n = b.Length;
        for (int c = 0; c < n; c++)
        {
            int piv = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(a[r, c]) > Math.Abs(a[piv, c])) piv = r;
            for (int k = 0; k < n; k++) (a[c, k], a[piv, k]) = (a[piv, k], a[c, k]);
            (b[c], b[piv]) = (b[piv], b[c]);
            for (int r = c + 1; r < n; r++) { double f = a[r, c] / a[c, c]; for (int k = c; k < n; k++) a[r, k] -= f * a[c, k]; b[r] -= f * b[c]; }
        }
        var x = new double[n];
        for (int r = n - 1; r >= 0; r--) { double v = b[r]; for (int k = r + 1; k < n; k++) v -= a[r, k] * x[k]; x[r] = v / a[r, r]; }
        return x;
    }

    [TestCase("format: maliang-z-calibration 1\npixel_size_nm: 100\nz_range_nm: [-500, 500]\nrefractive_index_factor: 1\nx:\n  sigma0_px: 1\n  a: 0\n  b: 0\n  c_nm: -200\n  d_nm: 400\ny:\n  sigma0_px: 1\n  a: 0\n  b: 0\n  c_nm: 200\n",
              "c.yaml: field y.d_nm: missing")]
    [TestCase("format: maliang-z-calibration 1\npixel_size_nm: 100\nz_range_nm: [-500, 500]\nrefractive_index_factor: 1\nx:\n  sigma0_px: -1\n  a: 0\n  b: 0\n  c_nm: -200\n  d_nm: 400\ny:\n  sigma0_px: 1\n  a: 0\n  b: 0\n  c_nm: 200\n  d_nm: 400\n",
              "c.yaml: field x.sigma0_px: must be > 0, got -1")]
    [TestCase("hello: 1\n", "c.yaml: not a z calibration (no field format, w01 or \"X Coefficients\")")]
    public void BadFileNamesTheField(string text, string message)
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "c.yaml");
        File.WriteAllText(path, text);
        var e = Assert.Throws<MaLiangException>(() => ZCalibrationFile.Read(path, 100));
        Assert.That(e!.Message, Is.EqualTo(message));
    }

    [Test]
    public void StackWithoutBeadsIsRefused()
    {
        var s = new SimulationSettings { Width = 48, Height = 48, Frames = 20, Photons = 0, EmitterCount = 0, BackgroundPhotons = 20, OffsetAdu = 100 };
        var sim = Simulator.Run(s);
        using var src = new MemoryFrameSource(sim.Frames, 48, 48, 20, "empty.tif");
        var e = Assert.Throws<MaLiangException>(() => ZCalibrator.Calibrate(src, new LocalizerSettings { OffsetAdu = 100 }, 10, null));
        Assert.That(e!.Message, Does.StartWith("empty.tif: no bead found"));
        var e2 = Assert.Throws<InvalidParameterException>(() => ZCalibrator.Calibrate(src, new LocalizerSettings { OffsetAdu = 100 }, 0, null));
        Assert.That(e2!.Message, Is.EqualTo("parameter z-step-nm: must be a finite number > 0, got 0"));
    }
}
