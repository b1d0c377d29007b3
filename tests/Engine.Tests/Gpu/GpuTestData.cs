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

/// <summary>Plain C# statements of the detection rules (the GPU must reproduce these exactly).</summary>
internal static class DetectReference
{
    public static float[] Box(float[] img, int w, int h, int nf, int a)
    {
        var o = new float[img.Length];
        int ri = a / 2, ro = ri + 2;
        for (int f = 0; f < nf; f++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float inner = 0, outer = 0;
                    for (int dy = -ro; dy <= ro; dy++)
                    {
                        int yy = Math.Clamp(y + dy, 0, h - 1);
                        for (int dx = -ro; dx <= ro; dx++)
                        {
                            int xx = Math.Clamp(x + dx, 0, w - 1);
                            float v = img[f * w * h + yy * w + xx];
                            if (Math.Abs(dx) <= ri && Math.Abs(dy) <= ri) inner += v; else outer += v;
                        }
                    }
                    o[f * w * h + y * w + x] = inner / (float)(a * a) - outer / (float)((a + 4) * (a + 4) - a * a);
                }
        return o;
    }

    static int Mirror(int i, int n)
    {
        if (n == 1) return 0;
        int p = 2 * n - 2;
        i %= p; if (i < 0) i += p;
        return i < n ? i : p - i;
    }

    static float[] Conv(float[] img, int w, int h, int nf, int step, bool rows)
    {
        var o = new float[img.Length];
        float[] k = [0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f];
        for (int f = 0; f < nf; f++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float s = 0;
                    for (int t = -2; t <= 2; t++)
                    {
                        int xx = rows ? Mirror(x + t * step, w) : x, yy = rows ? y : Mirror(y + t * step, h);
                        float term = k[t + 2] * img[f * w * h + yy * w + xx];
                        s = t == -2 ? term : s + term;
                    }
                    o[f * w * h + y * w + x] = s;
                }
        return o;
    }

    public static float[] Wavelet(float[] img, int w, int h, int nf)
    {
        var v1 = Conv(Conv(img, w, h, nf, 1, true), w, h, nf, 1, false);
        var v2 = Conv(Conv(v1, w, h, nf, 2, true), w, h, nf, 2, false);
        var o = new float[img.Length];
        for (int i = 0; i < o.Length; i++) o[i] = v1[i] - v2[i];
        return o;
    }

    /// <summary>(frame, x, y) of kept candidates in (frame, raster) order, and the per-frame border drops.</summary>
    public static (List<(int F, int X, int Y)> Kept, int[] Border) Maxima(float[] filt, int w, int h, int nf, float[] thr, int r, bool reject)
    {
        var kept = new List<(int, int, int)>();
        var border = new int[nf];
        for (int f = 0; f < nf; f++)
        {
            var cands = new List<(int X, int Y)>();
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    float v = filt[f * w * h + y * w + x];
                    if (!(v > thr[f])) continue;
                    bool max = true;
                    for (int dy = -1; dy <= 1 && max; dy++)
                        for (int dx = -1; dx <= 1 && max; dx++)
                        {
                            if (dx == 0 && dy == 0) continue;
                            int xx = x + dx, yy = y + dy;
                            if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
                            float nv = filt[f * w * h + yy * w + xx];
                            bool earlier = dy < 0 || (dy == 0 && dx < 0);
                            if (earlier ? !(v > nv) : !(v >= nv)) max = false;
                        }
                    if (!max) continue;
                    if (x - r < 0 || y - r < 0 || x + r >= w || y + r >= h) { border[f]++; continue; }
                    cands.Add((x, y));
                }
            foreach (var c in cands)
            {
                float v = filt[f * w * h + c.Y * w + c.X];
                bool drop = reject && cands.Any(o => (o.X - c.X) * (o.X - c.X) + (o.Y - c.Y) * (o.Y - c.Y) <= r * r
                                                     && filt[f * w * h + o.Y * w + o.X] > v);
                if (!drop) kept.Add((f, c.X, c.Y));
            }
        }
        return (kept, border);
    }
}
