using MaLiang.Engine.Calibration;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Models;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Fit;

/// <summary>Calibrations the 3D tests share: widths in px at 100 nm pixels, stage z in nm.</summary>
internal static class TestCalibrations
{
    /// <summary>Unequal A and B terms per axis, in-focus planes ~410 nm apart.</summary>
    public static readonly ZCalibration Unequal = new()
    {
        X = new DefocusCurve(1.10, 0.12, 0.04, -200, 380),
        Y = new DefocusCurve(1.25, -0.15, 0.09, 210, 430),
        PixelSizeNm = 100, ZMinNm = -600, ZMaxNm = 600, Source = "unequal.yaml",
    };

    /// <summary>Like ThunderSTORM's example calibration: equal widths at focus, small equal A and B, planes 360 nm apart.</summary>
    public static readonly ZCalibration ThunderStormLike = new()
    {
        X = new DefocusCurve(1.3, 0.1, 0.03, -180, 390),
        Y = new DefocusCurve(1.3, 0.1, 0.03, 180, 390),
        PixelSizeNm = 100, ZMinNm = -600, ZMaxNm = 600, Source = "thunderstorm-like.yaml",
    };
}

public class AstigmaticFitTests
{
    private static FitOptions Opts(ZCalibration c) => new FitOptions(1.3f, false, 30, true, 1e-4f) { ZCalibration = c };

    [Test]
    public void CurveDerivativeMatchesNumericDifference()
    {
        foreach (var c in new[] { TestCalibrations.Unequal.X, TestCalibrations.Unequal.Y })
            for (double z = -600; z <= 600; z += 50)
            {
                double num = (c.SigmaPx(z + 0.01) - c.SigmaPx(z - 0.01)) / 0.02;
                Assert.That(c.DSigmaDz(z), Is.EqualTo(num).Within(1e-6 + 1e-4 * Math.Abs(num)), $"z = {z}");
            }
    }

    [Test]
    public void CrlbEqualsInverseFisherFromNumericDerivatives()
    {
        // F_pq = sum dmu_p dmu_q / mu with central differences of the double-precision simulator model, inverted in double.
        var cal = TestCalibrations.Unequal;
        const int n = 17;
        double[] p = [8.3, 8.6, 2000, 10, 150];
        double[] steps = [1e-3, 1e-3, 1, 0.05, 0.5];
        double[] Mu(double[] q)
        {
            var m = new double[n * n];
            for (int j = 0; j < n; j++) for (int i = 0; i < n; i++)
                m[j * n + i] = q[3] + q[2] * IntegratedGaussian.PixelFraction(i, i + 1, q[0], cal.X.SigmaPx(q[4]))
                                           * IntegratedGaussian.PixelFraction(j, j + 1, q[1], cal.Y.SigmaPx(q[4]));
            return m;
        }
        var mu = Mu(p);
        var grads = new double[5][];
        for (int k = 0; k < 5; k++)
        {
            var pp = (double[])p.Clone(); var pm = (double[])p.Clone(); pp[k] += steps[k]; pm[k] -= steps[k];
            var a = Mu(pp); var b = Mu(pm);
            grads[k] = new double[n * n];
            for (int i = 0; i < n * n; i++) grads[k][i] = (a[i] - b[i]) / (2 * steps[k]);
        }
        var f = new double[5, 5];
        for (int a = 0; a < 5; a++) for (int b = 0; b < 5; b++)
            { double s = 0; for (int i = 0; i < n * n; i++) s += grads[a][i] * grads[b][i] / mu[i]; f[a, b] = s; }
        var inv = Invert(f);
        Span<float> c = stackalloc float[5];
        AstigmaticGaussian.Crlb(cal, n, (float)p[0], (float)p[1], (float)p[2], (float)p[3], (float)p[4], c);
        for (int k = 0; k < 5; k++) Assert.That(c[k], Is.EqualTo(Math.Sqrt(inv[k, k])).Within(0.01 * Math.Sqrt(inv[k, k])), $"parameter {k}");
    }

    private static double[,] Invert(double[,] a)
    {
        int n = a.GetLength(0);
        var m = (double[,])a.Clone(); var inv = new double[n, n];
        for (int i = 0; i < n; i++) inv[i, i] = 1;
        for (int c = 0; c < n; c++)
        {
            int piv = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(m[r, c]) > Math.Abs(m[piv, c])) piv = r;
            for (int k = 0; k < n; k++) { (m[c, k], m[piv, k]) = (m[piv, k], m[c, k]); (inv[c, k], inv[piv, k]) = (inv[piv, k], inv[c, k]); }
            double d = m[c, c];
            for (int k = 0; k < n; k++) { m[c, k] /= d; inv[c, k] /= d; }
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double fct = m[r, c];
                for (int k = 0; k < n; k++) { m[r, k] -= fct * m[c, k]; inv[r, k] -= fct * inv[c, k]; }
            }
        }
        return inv;
    }

    /// <summary>Per 100 nm z bin over -500..500 nm: RMSE / sqrt(mean CRLB) in z, x and y, the z bias, and the share of fits
    /// more than 5 sqrt(CRLB_z) off. Every ROI is fitted; a fit that is dropped counts as an outlier.</summary>
    internal static (double[] zRatio, double[] xRatio, double[] yRatio, double[] bias, double outlierShare) Bins(
        ZCalibration cal, double photons, int perBin, int seed)
    {
        int n = cal.RoiSize(7), bins = 10, count = perBin * bins;
        var pixels = Simulator.IsolatedAstigmaticRois(count, n, photons, 10, cal, -500, 500, seed, out var tx, out var ty, out var tz);
        var batch = new RoiBatch(n, count);
        for (int m = 0; m < count; m++) batch.Add(pixels.AsSpan(m * n * n, n * n), m, 0, 0);
        var res = new FitResult[count];
        new CpuFitBackend().Fit(batch, Opts(cal), res);
        var se = new double[bins, 3]; var crlb = new double[bins, 3]; var sum = new double[bins]; var k = new int[bins];
        int outliers = 0;
        for (int m = 0; m < count; m++)
        {
            int bin = Math.Clamp((int)Math.Floor((tz[m] + 500) / 100), 0, bins - 1);
            var r = res[m];
            if (!r.Kept || Math.Abs(r.Z - tz[m]) > 5 * r.CrlbZ) { outliers++; if (!r.Kept) continue; }
            double dz = r.Z - tz[m], dx = r.X - tx[m], dy = r.Y - ty[m];
            se[bin, 0] += dz * dz; se[bin, 1] += dx * dx; se[bin, 2] += dy * dy;
            crlb[bin, 0] += r.CrlbZ * (double)r.CrlbZ; crlb[bin, 1] += r.CrlbX * (double)r.CrlbX; crlb[bin, 2] += r.CrlbY * (double)r.CrlbY;
            sum[bin] += dz; k[bin]++;
        }
        var zr = new double[bins]; var xr = new double[bins]; var yr = new double[bins]; var bias = new double[bins];
        for (int b = 0; b < bins; b++)
        {
            zr[b] = Math.Sqrt(se[b, 0] / crlb[b, 0]); xr[b] = Math.Sqrt(se[b, 1] / crlb[b, 1]); yr[b] = Math.Sqrt(se[b, 2] / crlb[b, 2]);
            bias[b] = sum[b] / k[b];
        }
        return (zr, xr, yr, bias, outliers / (double)count);
    }

    [TestCase("unequal", 1000)]
    [TestCase("unequal", 5000)]
    [TestCase("thunderstorm", 1000)]
    [TestCase("thunderstorm", 5000)]
    public void PrecisionReachesTheCrlbInEveryZBin(string which, double photons)
    {
        var cal = which == "unequal" ? TestCalibrations.Unequal : TestCalibrations.ThunderStormLike;
        var (zr, xr, yr, bias, outliers) = Bins(cal, photons, 1000, which.Length * 7 + (int)photons);
        for (int b = 0; b < zr.Length; b++)
            TestContext.Progress.WriteLine($"{which} {photons} z {-500 + 100 * b,5}..{-400 + 100 * b,5}: z {zr[b]:0.000} x {xr[b]:0.000} y {yr[b]:0.000} bias {bias[b]:0.0} nm");
        TestContext.Progress.WriteLine($"{which} {photons} outliers {outliers:P2}");
        for (int b = 0; b < zr.Length; b++)
        {
            Assert.That(zr[b], Is.LessThanOrEqualTo(1.15), $"z RMSE / sqrt(CRLB), bin {b}");
            Assert.That(xr[b], Is.LessThanOrEqualTo(1.10), $"x RMSE / sqrt(CRLB), bin {b}");
            Assert.That(yr[b], Is.LessThanOrEqualTo(1.10), $"y RMSE / sqrt(CRLB), bin {b}");
            Assert.That(Math.Abs(bias[b]), Is.LessThanOrEqualTo(5.0), $"z bias, bin {b}");
        }
        Assert.That(outliers, Is.LessThan(0.005));
    }
}
