using MaLiang.Engine.Camera;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Evaluate;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Fit;

/// <summary>The sCMOS likelihood (Huang et al. 2013; issue 14): per-pixel read-noise variance in the fit and detection.</summary>
public class ScmosTests
{
    private static FitOptions Opts(bool fixedSigma = false) => new(1.3f, fixedSigma, 20, true, 1e-4f);

    /// <summary>Isolated ROIs with Poisson photons plus Gaussian read noise of the given per-pixel variance (photons^2).</summary>
    private static RoiBatch ScmosRois(int count, int n, float[] gamma, int seed, bool withPlanes, out double[] tx, out double[] ty)
    {
        var pixels = Simulator.IsolatedRois(count, n, 1000, 10, 1.3, seed, out tx, out ty);
        var rng = new Sampling(seed + 7);
        var batch = new RoiBatch(n, count);
        var roi = new float[n * n];
        for (int m = 0; m < count; m++)
        {
            for (int p = 0; p < n * n; p++) roi[p] = pixels[m * n * n + p] + (float)(Math.Sqrt(gamma[p]) * rng.Normal());
            batch.Add(roi, m, 0, 0, roiReadNoise: withPlanes ? gamma : default);
        }
        return batch;
    }

    [Test]
    public void ZeroReadNoisePlaneGivesTheSameFitBitForBit()
    {
        const int n = 7, count = 301;
        var plain = FitTestData.Isolated(count, n, 1000, 10, 1.3, 5, out _, out _);
        var zeros = new RoiBatch(n, count);
        var z = new float[n * n];
        for (int m = 0; m < count; m++) zeros.Add(plain.Roi(m), m, 0, 0, plain.Peak[m], roiReadNoise: z);
        Assert.That(zeros.HasReadNoise, Is.True);
        Assert.That(plain.HasReadNoise, Is.False);
        foreach (bool fixedSigma in new[] { false, true })
        {
            var a = new FitResult[count]; var b = new FitResult[count];
            new CpuFitBackend(2).Fit(plain, Opts(fixedSigma), a);
            new CpuFitBackend(2).Fit(zeros, Opts(fixedSigma), b);
            for (int m = 0; m < count; m++) Assert.That(b[m], Is.EqualTo(a[m]), $"ROI {m}, fixed sigma {fixedSigma}");
        }
        Span<float> c0 = stackalloc float[5], c1 = stackalloc float[5];
        CpuFitBackend.Crlb(n, 3.3f, 3.6f, 1000, 10, 1.3f, false, c0);
        CpuFitBackend.Crlb(n, 3.3f, 3.6f, 1000, 10, 1.3f, false, c1, z);
        Assert.That(c1.ToArray(), Is.EqualTo(c0.ToArray()));
    }

    [Test]
    public void CrlbCarriesTheReadNoise()
    {
        // Uniform read noise gamma on every pixel: the Fisher information is that of a Poisson fit whose denominator is
        // mu + gamma; with gamma = background, as if the background were doubled in the denominator only. Check against
        // the direct sum of dmu_p dmu_q / (mu + gamma).
        const int n = 7; const float gamma = 10f;
        var g = Enumerable.Repeat(gamma, n * n).ToArray();
        var mu = new float[n * n]; var d = new float[5 * n * n];
        CpuFitBackend.Model(n, 3.4f, 3.7f, 1000, 10, 1.3f, mu, d);
        var f = new double[5, 5];
        for (int p = 0; p < 5; p++)
            for (int q = 0; q < 5; q++)
                for (int i = 0; i < n * n; i++) f[p, q] += d[p * n * n + i] * (double)d[q * n * n + i] / (mu[i] + gamma);
        var inv = Invert(f);
        Span<float> c = stackalloc float[5], plain = stackalloc float[5];
        CpuFitBackend.Crlb(n, 3.4f, 3.7f, 1000, 10, 1.3f, false, c, g);
        CpuFitBackend.Crlb(n, 3.4f, 3.7f, 1000, 10, 1.3f, false, plain);
        for (int p = 0; p < 5; p++) Assert.That(c[p], Is.EqualTo(Math.Sqrt(inv[p, p])).Within(1e-3 * Math.Sqrt(inv[p, p])), $"parameter {p}");
        Assert.That(c[0], Is.GreaterThan(plain[0] * 1.05f), "read noise must widen the CRLB");
    }

    [Test]
    public void ScmosFitReachesItsCrlbOnRoisWithHotPixels()
    {
        // 7x7 ROIs with 5 of their 49 pixels (about 10%, near the centre where the photons are) at 10x the median variance.
        const int n = 7, count = 4000;
        var gamma = Enumerable.Repeat(4f, n * n).ToArray();
        foreach (int p in new[] { 17, 23, 25, 31, 10 }) gamma[p] = 40f;   // around the centre, where the photons are
        var scmos = ScmosRois(count, n, gamma, 11, true, out var tx, out var ty);
        var poisson = new RoiBatch(n, count);
        for (int m = 0; m < count; m++) poisson.Add(scmos.Roi(m), m, 0, 0);
        var rs = new FitResult[count]; var rp = new FitResult[count];
        new CpuFitBackend().Fit(scmos, Opts(), rs);
        new CpuFitBackend().Fit(poisson, Opts(), rp);
        double e2s = 0, e2p = 0, crlb2 = 0; int k = 0;
        Span<float> c = stackalloc float[5];
        for (int m = 0; m < count; m++)
        {
            if (!rs[m].Kept || !rp[m].Kept) continue;
            e2s += Sq(rs[m].X - tx[m]) + Sq(rs[m].Y - ty[m]);
            e2p += Sq(rp[m].X - tx[m]) + Sq(rp[m].Y - ty[m]);
            CpuFitBackend.Crlb(n, (float)tx[m], (float)ty[m], 1000, 10, 1.3f, false, c, gamma);
            crlb2 += Sq(c[0]) + Sq(c[1]);
            k++;
        }
        Assert.That(k, Is.GreaterThan(0.99 * count));
        double rmseS = Math.Sqrt(e2s / (2 * k)), rmseP = Math.Sqrt(e2p / (2 * k)), crlb = Math.Sqrt(crlb2 / (2 * k));
        TestContext.Out.WriteLine($"ROIs: sCMOS RMSE {rmseS:F4} px, Poisson RMSE {rmseP:F4} px, sCMOS CRLB {crlb:F4} px");
        Assert.That(rmseS, Is.LessThanOrEqualTo(1.10 * crlb));
        Assert.That(rmseS, Is.LessThan(rmseP));
    }

    private static double Sq(double v) => v * v;

    /// <summary>Gauss-Jordan inverse with partial pivoting (double).</summary>
    private static double[,] Invert(double[,] a)
    {
        int n = a.GetLength(0);
        var m = new double[n, 2 * n];
        for (int i = 0; i < n; i++) { for (int j = 0; j < n; j++) m[i, j] = a[i, j]; m[i, n + i] = 1; }
        for (int c = 0; c < n; c++)
        {
            int piv = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(m[r, c]) > Math.Abs(m[piv, c])) piv = r;
            for (int j = 0; j < 2 * n; j++) (m[c, j], m[piv, j]) = (m[piv, j], m[c, j]);
            double d = m[c, c];
            for (int j = 0; j < 2 * n; j++) m[c, j] /= d;
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double k = m[r, c];
                for (int j = 0; j < 2 * n; j++) m[r, j] -= k * m[c, j];
            }
        }
        var inv = new double[n, n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) inv[i, j] = m[i, n + j];
        return inv;
    }

    [Test]
    public void OnSimulatedScmosStacksTheScmosFitBeatsPoissonAndReachesItsCrlb()
    {
        var r = ScmosComparison.Run(frames: 240, seed: 3);
        TestContext.Out.WriteLine($"{r.Truths} emitters: sCMOS {r.Scmos}, ratio {r.Scmos.RmseOverCrlb:F3}; Poisson {r.Poisson}, ratio {r.Poisson.RmseOverCrlb:F3}");
        Assert.That(r.Scmos.Matched, Is.GreaterThan(0.98 * r.Truths));
        Assert.That(r.Scmos.RmsePx, Is.LessThanOrEqualTo(1.10 * r.Scmos.CrlbPx));
        Assert.That(r.Scmos.RmsePx, Is.LessThan(r.Poisson.RmsePx));
        // No false detections on the noisy pixels (each frame holds exactly the grid's emitters).
        Assert.That(r.Scmos.Localizations - r.Scmos.Matched, Is.LessThanOrEqualTo(r.Truths / 200));
    }

    [Test]
    public void SimulatorDrawsEachPixelsOffsetGainAndReadNoise()
    {
        const int w = 16, h = 12, frames = 3000;
        var maps = ScmosComparison.Maps(24, 20, 9);
        var maps2 = new CameraMaps(24, 20, maps.OffsetAdu, maps.VarianceAdu2, maps.GainPhotonsPerAdu, originX: 5, originY: 3);
        var sim = Simulator.Run(new SimulationSettings { Width = w, Height = h, Frames = frames, EmitterCount = 0, BackgroundPhotons = 20, Maps = maps2, Seed = 4 });
        for (int y = 0; y < h; y += 3)
            for (int x = 0; x < w; x += 5)
            {
                double s = 0, s2 = 0;
                for (int f = 0; f < frames; f++) { double v = sim.Frames[(f * h + y) * w + x]; s += v; s2 += v * v; }
                double mean = s / frames, variance = s2 / frames - mean * mean;
                int i = (y + 3) * 24 + x + 5;
                double g = maps.GainPhotonsPerAdu![i];
                // ADU = offset + Poisson(20) / g + N(0, var): mean offset + 20 / g, variance 20 / g^2 + var (+ 1/12 rounding).
                double expMean = maps.OffsetAdu![i] + 20 / g, expVar = 20 / (g * g) + maps.VarianceAdu2![i] + 1.0 / 12;
                Assert.That(mean, Is.EqualTo(expMean).Within(4 * Math.Sqrt(expVar / frames) + 0.5), $"pixel ({x}, {y}) mean");
                Assert.That(variance, Is.EqualTo(expVar).Within(0.1 * expVar), $"pixel ({x}, {y}) variance");
            }
    }

    [Test]
    public void CameraModelCropsTheMapsAtTheOriginAndConvertsTheVarianceToPhotons()
    {
        var off = new float[6 * 4]; var variance = new float[6 * 4]; var gain = new float[6 * 4];
        for (int i = 0; i < off.Length; i++) { off[i] = 100 + i; variance[i] = 4 + i; gain[i] = 0.5f + 0.01f * i; }
        var s = new LocalizerSettings { EmGain = 2, CameraMaps = new CameraMaps(6, 4, off, variance, gain, 2, 1) };
        var cam = CameraModel.From(s, 3, 2);
        int i0 = 1 * 6 + 2, i5 = 2 * 6 + 4;    // frame (0, 0) and (2, 1)
        Assert.That(cam.OffsetMap![0], Is.EqualTo(off[i0]));
        Assert.That(cam.OffsetMap![5], Is.EqualTo(off[i5]));
        Assert.That(cam.GainMap![5], Is.EqualTo(gain[i5] / 2f));
        Assert.That(cam.ReadNoiseMap![5], Is.EqualTo(variance[i5] * (gain[i5] / 2f) * (gain[i5] / 2f)).Within(1e-5));
        var frame = new float[] { 110, 111, 112, 113, 114, 115 };
        cam.ToPhotons(frame);
        Assert.That(frame[5], Is.EqualTo((115 - off[i5]) * gain[i5] / 2f).Within(1e-4));
        Assert.That(() => CameraModel.From(s, 5, 2), Throws.TypeOf<InvalidParameterException>().With.Message.Contains("camera-origin"));
    }

    [TestCase(0, float.NaN, "camera-offset-map", "x 3, y 1")]
    [TestCase(1, 0f, "camera-variance-map", "x 3, y 1")]
    [TestCase(1, -2f, "camera-variance-map", "x 3, y 1")]
    [TestCase(2, 0f, "camera-gain-map", "x 3, y 1")]
    [TestCase(2, float.PositiveInfinity, "camera-gain-map", "x 3, y 1")]
    [TestCase(0, -1f, "camera-offset-map", "x 3, y 1")]
    public void BadMapValuesAreNamedWithTheirPixel(int which, float value, string map, string pixel)
    {
        float[] Make(float v) => Enumerable.Repeat(v, 5 * 4).ToArray();
        var maps = new[] { Make(100), Make(4), Make(0.5f) };
        maps[which][1 * 5 + 3] = value;
        var e = Assert.Throws<InvalidParameterException>(() => new CameraMaps(5, 4, maps[0], maps[1], maps[2]))!;
        Assert.That(e.Message, Does.Contain(map).And.Contain(pixel));
    }

    [Test]
    public void MapSizeAndOriginErrorsNameTheMap()
    {
        var e = Assert.Throws<InvalidParameterException>(() => new CameraMaps(5, 4, new float[20], new float[19], null))!;
        Assert.That(e.Message, Does.Contain("camera-variance-map"));
        e = Assert.Throws<InvalidParameterException>(() => new CameraMaps(5, 4, new float[20], null, null, 5, 0))!;
        Assert.That(e.Message, Does.Contain("camera-origin"));
        using var dir = new IO.TempDir();
        string a = Path.Combine(dir.Path, "off.tif"), b = Path.Combine(dir.Path, "var.tif");
        TiffWriter.Write(a, Enumerable.Repeat(100f, 20).ToArray(), 5, 4, 1);
        TiffWriter.Write(b, Enumerable.Repeat(4f, 24).ToArray(), 6, 4, 1);
        e = Assert.Throws<InvalidParameterException>(() => CameraMaps.Load(a, b, null))!;
        Assert.That(e.Message, Does.Contain("camera-variance-map").And.Contain("var.tif").And.Contain("6x4"));
        var ok = CameraMaps.Load(a, null, null, 1, 2);
        Assert.That(ok.SensorWidth, Is.EqualTo(5));
        Assert.That(ok.OffsetAdu![7], Is.EqualTo(100f));
        // A stack larger than the maps from its origin: named at the localizer.
        var s = new LocalizerSettings { CameraMaps = ok, Threads = 1, Backend = BackendKind.Cpu };
        using var loc = new Localizer(s);
        var src = new MemoryFrameSource(new ushort[8 * 8], 8, 8, 1, "tiny.tif");
        e = Assert.Throws<InvalidParameterException>(() => loc.Run(src))!;
        Assert.That(e.Message, Does.Contain("camera-origin").And.Contain("tiny.tif"));
    }

    [Test]
    public void PerPixelThresholdDropsMaximaOnNoisyPixelsOnly()
    {
        // A blank frame with noisy pixels: with the map no maximum passes; without, the noisy pixels do.
        const int w = 64, h = 64;
        const int frames = 50;
        var maps = ScmosComparison.Maps(w, h, 21, hotFactor: 100);
        var sim = Simulator.Run(new SimulationSettings { Width = w, Height = h, Frames = frames, EmitterCount = 0, BackgroundPhotons = 10, Maps = maps, Seed = 8 });
        var settings = new LocalizerSettings { OffsetAdu = 100, PhotonsPerAdu = 0.5, CameraMaps = maps };
        var cam = CameraModel.From(settings, w, h);
        var excess = ReadNoiseThreshold.Excess(Denoise.FrameFilters.Create(settings), cam.ReadNoiseMap!, w, h);
        var det = new FrameDetector(settings, cam);
        var found = new List<Candidate>();
        int with = 0, without = 0;
        for (int f = 0; f < frames; f++)
        {
            det.ReadNoiseExcess = null;
            without += det.Detect(sim.Frame(f), w, h, found).Stats.Candidates;
            det.ReadNoiseExcess = excess;
            with += det.Detect(sim.Frame(f), w, h, found).Stats.Candidates;
            Assert.That(found.Count, Is.EqualTo(det.Detect(sim.Frame(f), w, h, found).Stats.Candidates));
        }
        TestContext.Out.WriteLine($"false candidates in {frames} blank frames: {without} with one threshold, {with} per pixel");
        Assert.That(without, Is.GreaterThan(20));
        Assert.That(with, Is.LessThanOrEqualTo(without / 10));
    }
}
