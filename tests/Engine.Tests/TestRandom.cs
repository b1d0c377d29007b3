namespace MaLiang.Engine.Tests;

/// <summary>Seeded Poisson and uniform draws for tests (Knuth for small means, PTRS-free normal approximation never used).</summary>
internal sealed class TestRandom(int seed)
{
    private readonly Random _r = new(seed);
    public double Uniform() => _r.NextDouble();
    public double Uniform(double lo, double hi) => lo + (hi - lo) * _r.NextDouble();

    /// <summary>Exact Poisson draw: multiplication method in chunks (exact for any mean, fine for test sizes).</summary>
    public int Poisson(double mean)
    {
        int k = 0;
        while (mean > 30)
        {
            // Split the mean: a Poisson(m) is the sum of Poisson(30) and Poisson(m - 30).
            k += Small(30); mean -= 30;
        }
        return k + Small(mean);
    }

    private int Small(double mean)
    {
        double l = Math.Exp(-mean), p = 1; int k = -1;
        do { k++; p *= _r.NextDouble(); } while (p > l);
        return k;
    }
}
