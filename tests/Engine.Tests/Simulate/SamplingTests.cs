using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Simulate;

public class SamplingTests
{
    [TestCase(0.1, 400_000)]
    [TestCase(0.5, 400_000)]
    [TestCase(9.99, 200_000)]
    [TestCase(10, 200_000)]
    [TestCase(1000, 200_000)]
    [TestCase(1e5, 200_000)]
    public void PoissonMeanAndVarianceEqualTheMean(double mu, int n)
    {
        var s = new Sampling(17);
        double sum = 0, sum2 = 0;
        for (int i = 0; i < n; i++)
        {
            double k = s.Poisson(mu);
            sum += k; sum2 += k * k;
        }
        double mean = sum / n, variance = sum2 / n - mean * mean;
        Assert.That(mean, Is.EqualTo(mu).Within(2).Percent, "mean");
        Assert.That(variance, Is.EqualTo(mu).Within(2).Percent, "variance");
    }

    [TestCase(0.5)]
    [TestCase(3)]
    [TestCase(10)]
    [TestCase(40)]
    [TestCase(1000)]
    public void PoissonProbabilitiesMatchThePmf(double mu)
    {
        // Frequencies of the values around the mean against exp(k ln mu - mu - ln k!), within 5 standard errors
        const int n = 400_000;
        var s = new Sampling(3);
        var counts = new Dictionary<long, int>();
        for (int i = 0; i < n; i++)
        {
            long k = s.Poisson(mu);
            counts[k] = counts.GetValueOrDefault(k) + 1;
        }
        long mode = (long)Math.Floor(mu);
        long sd = (long)Math.Ceiling(Math.Sqrt(mu));
        foreach (long k in new[] { mode, mode + sd, Math.Max(0, mode - sd), mode + 2 * sd })
        {
            double p = Math.Exp(k * Math.Log(mu) - mu - Sampling.LogFactorial(k));
            double se = Math.Sqrt(p * (1 - p) / n);
            Assert.That(counts.GetValueOrDefault(k) / (double)n, Is.EqualTo(p).Within(5 * se + 1e-9), $"P(k={k})");
        }
    }

    [Test]
    public void PoissonOfZeroMeanIsZero() => Assert.That(new Sampling(1).Poisson(0), Is.EqualTo(0));

    [TestCase(0)]
    [TestCase(5)]
    [TestCase(31)]
    [TestCase(32)]
    [TestCase(170)]
    public void LogFactorialIsExact(int k)
    {
        double exact = 0;
        for (int i = 2; i <= k; i++) exact += Math.Log(i);
        Assert.That(Sampling.LogFactorial(k), Is.EqualTo(exact).Within(1e-12 * Math.Max(1, exact)));
    }

    [TestCase(1.0, 100.0)]
    [TestCase(20.0, 50.0)]
    [TestCase(0.5, 2.0)]
    public void GammaMeanAndVariance(double shape, double scale)
    {
        var s = new Sampling(9);
        const int n = 200_000;
        double sum = 0, sum2 = 0;
        for (int i = 0; i < n; i++) { double g = s.Gamma(shape, scale); sum += g; sum2 += g * g; }
        double mean = sum / n, variance = sum2 / n - mean * mean;
        Assert.That(mean, Is.EqualTo(shape * scale).Within(2).Percent);
        Assert.That(variance, Is.EqualTo(shape * scale * scale).Within(4).Percent);
    }

    [Test]
    public void NormalHasZeroMeanUnitVariance()
    {
        var s = new Sampling(4);
        const int n = 200_000;
        double sum = 0, sum2 = 0;
        for (int i = 0; i < n; i++) { double g = s.Normal(); sum += g; sum2 += g * g; }
        Assert.That(sum / n, Is.EqualTo(0).Within(0.01));
        Assert.That(sum2 / n, Is.EqualTo(1).Within(0.015));
    }
}
