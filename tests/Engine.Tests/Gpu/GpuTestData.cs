using MaLiang.Engine.Fit;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>Deterministic simulated frames and ROIs (DESIGN.md "The fit, in formulas" + a Poisson sampler).</summary>
internal static class GpuTestData
{
    public static double Erf(double x)
    {
        // Abramowitz & Stegun 7.1.26 refined by one Newton step on erfc' is overkill here: 1.5e-7 is plenty for simulation.
        double s = Math.Sign(x); x = Math.Abs(x);
        double t = 1.0 / (1.0 + 0.3275911 * x);
        double y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return s * y;
    }

    /// <summary>Integrated Gaussian over pixel [i, i+1) for centre x0, width s.</summary>
    public static double E(int i, double x0, double s)
        => 0.5 * (Erf((i + 1 - x0) / (Math.Sqrt(2) * s)) - Erf((i - x0) / (Math.Sqrt(2) * s)));

    public static int Poisson(Random rng, double lambda)
    {
        if (lambda <= 0) return 0;
        if (lambda > 50)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double z = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            return Math.Max(0, (int)Math.Round(lambda + Math.Sqrt(lambda) * z));
        }
        double l = Math.Exp(-lambda), p = 1; int k = 0;
        do { k++; p *= rng.NextDouble(); } while (p > l);
        return k - 1;
    }

    /// <summary>A stack of frames with molecules at random positions (photons), background <paramref name="bg"/> photons/px.</summary>
    public static float[] Frames(int w, int h, int nf, int moleculesPerFrame, int seed, double photons = 1500, double bg = 10, double s = 1.3)
    {
        var rng = new Random(seed);
        var img = new float[w * h * nf];
        var mu = new double[w * h];
        for (int f = 0; f < nf; f++)
        {
            Array.Fill(mu, bg);
            for (int m = 0; m < moleculesPerFrame; m++)
            {
                double x0 = rng.NextDouble() * w, y0 = rng.NextDouble() * h;
                int cx = (int)x0, cy = (int)y0;
                for (int y = Math.Max(0, cy - 6); y < Math.Min(h, cy + 7); y++)
                {
                    double ey = E(y, y0, s);
                    for (int x = Math.Max(0, cx - 6); x < Math.Min(w, cx + 7); x++) mu[y * w + x] += photons * E(x, x0, s) * ey;
                }
            }
            for (int i = 0; i < w * h; i++) img[f * w * h + i] = Poisson(rng, mu[i]);
        }
        return img;
    }

    /// <summary>ROIs of size n with one molecule near the centre each.</summary>
    public static RoiBatch Rois(int count, int n, int seed, double photons = 1000, double bg = 10, double s = 1.3, double jitter = 0.5)
    {
        var rng = new Random(seed);
        var batch = new RoiBatch(n, count);
        var roi = new float[n * n];
        for (int m = 0; m < count; m++)
        {
            double x0 = n / 2.0 + (rng.NextDouble() * 2 - 1) * jitter, y0 = n / 2.0 + (rng.NextDouble() * 2 - 1) * jitter;
            double N = photons * (0.5 + rng.NextDouble()), b = bg * (0.5 + rng.NextDouble());
            for (int y = 0; y < n; y++)
            {
                double ey = E(y, y0, s);
                for (int x = 0; x < n; x++) roi[y * n + x] = Poisson(rng, b + N * E(x, x0, s) * ey);
            }
            batch.Add(roi, m);
        }
        return batch;
    }
}
