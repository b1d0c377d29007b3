using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Fit;

public class CpuFitTests
{
    private static FitOptions Opts(bool fixedSigma = false, int iterations = 20, bool useTol = true)
        => new(1.3f, fixedSigma, iterations, useTol, 1e-4f);

    [Test]
    public void CrlbMatchesDesignCheckValue()
    {
        // DESIGN.md: 1000 photons, 10/px, s = 1.3 px, 7x7, five free parameters: mean sqrt(CRLB_x) = 0.0567 px.
        double acc = 0; int k = 0;
        Span<float> c = stackalloc float[5];
        for (double dx = -0.45; dx <= 0.451; dx += 0.1)
            for (double dy = -0.45; dy <= 0.451; dy += 0.1)
            {
                CpuFitBackend.Crlb(7, (float)(3.5 + dx), (float)(3.5 + dy), 1000, 10, 1.3f, false, c);
                acc += c[0]; k++;
            }
        Assert.That(acc / k, Is.EqualTo(0.0567).Within(0.0005));
    }

    [Test]
    public void DerivativesMatchNumericDifferences()
    {
        const int n = 7; const float h = 1e-3f;
        float[] p = [3.2f, 3.9f, 800f, 12f, 1.4f];
        var mu = new float[n * n]; var d = new float[5 * n * n];
        var plus = new float[n * n]; var minus = new float[n * n];
        CpuFitBackend.Model(n, p[0], p[1], p[2], p[3], p[4], mu, d);
        for (int k = 0; k < 5; k++)
        {
            var pp = (float[])p.Clone(); var pm = (float[])p.Clone();
            float step = k == 2 ? 1f : k == 3 ? 0.1f : h;
            pp[k] += step; pm[k] -= step;
            CpuFitBackend.Model(n, pp[0], pp[1], pp[2], pp[3], pp[4], plus);
            CpuFitBackend.Model(n, pm[0], pm[1], pm[2], pm[3], pm[4], minus);
            for (int i = 0; i < n * n; i++)
            {
                double num = (plus[i] - minus[i]) / (2.0 * step);
                Assert.That(d[k * n * n + i], Is.EqualTo(num).Within(0.02 * Math.Abs(num) + 0.02), $"parameter {k}, pixel {i}");
            }
        }
    }

    [Test]
    public void PsfSumsToPhotonsOnALargeRoi()
    {
        const int n = 21;
        var mu = new float[n * n];
        CpuFitBackend.Model(n, 10.3f, 10.7f, 1000f, 0f, 1.3f, mu);
        Assert.That(mu.Sum(), Is.EqualTo(1000).Within(0.05));
    }

    [Test]
    public void CrlbEqualsInverseFisherFromNumericDerivatives()
    {
        // F_pq = sum dmu_p dmu_q / mu with central differences, inverted in double: sqrt(diag) must match.
        const int n = 7;
        double[] p = [3.4, 3.6, 1500, 8, 1.25];
        var f = new double[5, 5];
        var mu = new float[n * n]; var plus = new float[n * n]; var minus = new float[n * n];
        var grads = new double[5][];
        CpuFitBackend.Model(n, (float)p[0], (float)p[1], (float)p[2], (float)p[3], (float)p[4], mu);
        double[] steps = [1e-3, 1e-3, 1, 0.05, 1e-3];
        for (int k = 0; k < 5; k++)
        {
            var pp = (double[])p.Clone(); var pm = (double[])p.Clone(); pp[k] += steps[k]; pm[k] -= steps[k];
            CpuFitBackend.Model(n, (float)pp[0], (float)pp[1], (float)pp[2], (float)pp[3], (float)pp[4], plus);
            CpuFitBackend.Model(n, (float)pm[0], (float)pm[1], (float)pm[2], (float)pm[3], (float)pm[4], minus);
            grads[k] = new double[n * n];
            for (int i = 0; i < n * n; i++) grads[k][i] = (plus[i] - (double)minus[i]) / (2 * steps[k]);
        }
        for (int a = 0; a < 5; a++) for (int b = 0; b < 5; b++)
            { double s = 0; for (int i = 0; i < n * n; i++) s += grads[a][i] * grads[b][i] / mu[i]; f[a, b] = s; }
        var inv = Invert(f);
        Span<float> c = stackalloc float[5];
        CpuFitBackend.Crlb(n, (float)p[0], (float)p[1], (float)p[2], (float)p[3], (float)p[4], false, c);
        for (int k = 0; k < 5; k++) Assert.That(c[k], Is.EqualTo(Math.Sqrt(inv[k, k])).Within(0.02 * Math.Sqrt(inv[k, k])), $"parameter {k}");
    }

    private static double[,] Invert(double[,] m)
    {
        int n = m.GetLength(0); var a = (double[,])m.Clone(); var inv = new double[n, n];
        for (int i = 0; i < n; i++) inv[i, i] = 1;
        for (int c = 0; c < n; c++)
        {
            int piv = c; for (int r = c + 1; r < n; r++) if (Math.Abs(a[r, c]) > Math.Abs(a[piv, c])) piv = r;
            for (int k = 0; k < n; k++) { (a[c, k], a[piv, k]) = (a[piv, k], a[c, k]); (inv[c, k], inv[piv, k]) = (inv[piv, k], inv[c, k]); }
            double d = a[c, c];
            for (int k = 0; k < n; k++) { a[c, k] /= d; inv[c, k] /= d; }
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue; double f = a[r, c];
                for (int k = 0; k < n; k++) { a[r, k] -= f * a[c, k]; inv[r, k] -= f * inv[c, k]; }
            }
        }
        return inv;
    }

    // Precision grid from the issue: photons 500..10,000, background 1..50 photons/px.
    [TestCase(500, 1)]
    [TestCase(500, 10)]
    [TestCase(1000, 10)]
    [TestCase(2000, 50)]
    [TestCase(5000, 20)]
    [TestCase(10000, 1)]
    [TestCase(10000, 50)]
    public void RmseIsWithinFivePercentOfCrlbAndPhotonsUnbiased(int photons, int background)
    {
        const int count = 6000;
        var batch = FitTestData.Isolated(count, 7, photons, background, 1.3, 17 + photons + background, out var tx, out var ty);
        var res = new FitResult[count];
        new CpuFitBackend().Fit(batch, Opts(), res);
        double se = 0, crlb = 0, ph = 0; int kept = 0;
        Span<float> c = stackalloc float[5];
        for (int i = 0; i < count; i++)
        {
            if (!res[i].Kept) continue;
            kept++;
            se += Sq(res[i].X - tx[i]) + Sq(res[i].Y - ty[i]);
            CpuFitBackend.Crlb(7, (float)tx[i], (float)ty[i], photons, background, 1.3f, false, c);
            crlb += c[0] * c[0] + c[1] * c[1];
            ph += res[i].Photons;
        }
        Assert.That(kept, Is.GreaterThan(count * 0.99), "fits kept");
        double ratio = Math.Sqrt(se / crlb);
        Assert.That(ratio, Is.InRange(0.95, 1.05), "RMSE / sqrt(CRLB)");
        Assert.That(ph / kept / photons, Is.InRange(0.98, 1.02), "photon bias");
    }

    private static double Sq(double v) => v * v;

    [Test]
    public void FixedSigmaAndFixedStepsWork()
    {
        var batch = FitTestData.Isolated(400, 7, 2000, 10, 1.3, 5, out var tx, out _);
        var res = new FitResult[400];
        new CpuFitBackend().Fit(batch, Opts(fixedSigma: true, iterations: 10, useTol: false), res);
        Assert.That(res.All(r => r.Iterations == 10), "the paper's fixed ten steps");
        Assert.That(res.All(r => r.Sigma == 1.3f && r.CrlbSigma == 0f), "sigma stays fixed");
        double rmse = Math.Sqrt(res.Select((r, i) => Sq(r.X - tx[i])).Average());
        Assert.That(rmse, Is.LessThan(0.06));
    }

    [Test]
    public void ResultsDoNotDependOnThreadCount()
    {
        var batch = FitTestData.Isolated(1003, 7, 1000, 10, 1.3, 9, out _, out _);
        var a = new FitResult[1003]; var b = new FitResult[1003];
        new CpuFitBackend(1).Fit(batch, Opts(), a);
        new CpuFitBackend(2).Fit(batch, Opts(), b);
        Assert.That(b, Is.EqualTo(a));
    }

    [Test]
    public void EmptyRoiFailsOrLeavesInsteadOfReturningGarbage()
    {
        var batch = new RoiBatch(7);
        batch.Add(new float[49]);               // all zero: no molecule
        var flat = Enumerable.Repeat(float.NaN, 49).ToArray();
        batch.Add(flat);
        var res = new FitResult[2];
        new CpuFitBackend().Fit(batch, Opts(), res);
        Assert.That(res[1].Status, Is.EqualTo(FitStatus.Failed));
        Assert.That(res[0].Kept && (!float.IsFinite(res[0].X) || res[0].Photons > 1e3), Is.False);
    }
}
