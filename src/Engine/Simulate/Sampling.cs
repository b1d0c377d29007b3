namespace MaLiang.Engine.Simulate;

/// <summary>
/// Random variates for the simulator on top of a seeded <see cref="System.Random"/> (deterministic for a seed):
/// Poisson (inversion below mean 10, Hörmann's PTRS transformed rejection above: exact for any mean),
/// normal (Marsaglia polar), gamma (Marsaglia–Tsang), exponential and log-normal.
/// </summary>
public sealed class Sampling
{
    private readonly Random _rng;
    private double _spareNormal;
    private bool _hasSpare;

    public Sampling(int seed) => _rng = new Random(seed);
    public Sampling(Random rng) => _rng = rng;

    public Random Random => _rng;
    public double Uniform() => _rng.NextDouble();
    /// <summary>Uniform in (0, 1].</summary>
    private double UniformPositive() => 1.0 - _rng.NextDouble();

    public double Normal()
    {
        if (_hasSpare) { _hasSpare = false; return _spareNormal; }
        double u, v, s;
        do
        {
            u = 2 * _rng.NextDouble() - 1;
            v = 2 * _rng.NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double m = Math.Sqrt(-2 * Math.Log(s) / s);
        _spareNormal = v * m; _hasSpare = true;
        return u * m;
    }

    public double Exponential(double mean) => -mean * Math.Log(UniformPositive());

    /// <summary>Log-normal with the given mean and standard deviation of the underlying normal (log-space) sigma.</summary>
    public double LogNormal(double mean, double logSigma) => mean * Math.Exp(logSigma * Normal() - 0.5 * logSigma * logSigma);

    /// <summary>Gamma(shape, scale) (mean shape x scale), Marsaglia–Tsang; shape &lt; 1 by the boost U^(1/shape).</summary>
    public double Gamma(double shape, double scale)
    {
        if (shape <= 0) return 0;
        if (shape < 1) return Gamma(shape + 1, scale) * Math.Pow(UniformPositive(), 1.0 / shape);
        double d = shape - 1.0 / 3.0, c = 1.0 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do { x = Normal(); v = 1 + c * x; } while (v <= 0);
            v = v * v * v;
            double u = UniformPositive();
            if (u < 1 - 0.0331 * x * x * x * x) return d * v * scale;
            if (Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v * scale;
        }
    }

    /// <summary>A Poisson variate of the given mean (0 for mean &lt;= 0).</summary>
    public long Poisson(double mean)
    {
        if (!(mean > 0)) return 0;
        if (mean < 10) return PoissonInversion(mean);
        return PoissonPtrs(mean);
    }

    private long PoissonInversion(double mean)
    {
        double p = Math.Exp(-mean), u = _rng.NextDouble();
        long k = 0;
        // sequential search; stops at a cumulative mass within rounding of 1
        while (u > p && k < 1000)
        {
            u -= p;
            k++;
            p *= mean / k;
        }
        return k;
    }

    /// <summary>PTRS, W. Hörmann, "The transformed rejection method for generating Poisson random variables",
    /// Insurance: Mathematics and Economics 12 (1993); valid for mean &gt;= 10.</summary>
    private long PoissonPtrs(double mean)
    {
        double slam = Math.Sqrt(mean), loglam = Math.Log(mean);
        double b = 0.931 + 2.53 * slam;
        double a = -0.059 + 0.02483 * b;
        double invalpha = 1.1239 + 1.1328 / (b - 3.4);
        double vr = 0.9277 - 3.6224 / (b - 2);
        while (true)
        {
            double u = _rng.NextDouble() - 0.5;
            double v = _rng.NextDouble();
            double us = 0.5 - Math.Abs(u);
            long k = (long)Math.Floor((2 * a / us + b) * u + mean + 0.43);
            if (us >= 0.07 && v <= vr) return k;
            if (k < 0 || (us < 0.013 && v > us)) continue;
            if (Math.Log(v) + Math.Log(invalpha) - Math.Log(a / (us * us) + b) <= -mean + k * loglam - LogFactorial(k))
                return k;
        }
    }

    private static readonly double[] SmallLogFactorial = BuildLogFactorials(32);

    private static double[] BuildLogFactorials(int n)
    {
        var t = new double[n];
        double acc = 0;
        for (int i = 1; i < n; i++) { acc += Math.Log(i); t[i] = acc; }
        return t;
    }

    /// <summary>ln k! (table below 32, Stirling series above: error &lt; 1e-14).</summary>
    public static double LogFactorial(long k)
    {
        if (k < SmallLogFactorial.Length) return SmallLogFactorial[k];
        double x = k + 1.0;   // ln Gamma(x)
        double ix = 1.0 / x, ix2 = ix * ix;
        return (x - 0.5) * Math.Log(x) - x + 0.91893853320467274178
             + ix * (1.0 / 12 - ix2 * (1.0 / 360 - ix2 * (1.0 / 1260 - ix2 / 1680)));
    }
}
