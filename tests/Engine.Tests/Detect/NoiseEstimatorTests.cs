using MaLiang.Engine.Detect;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Detect;

public class NoiseEstimatorTests
{
    private static float Gauss(Random r) => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    [TestCase(512, 512)]
    [TestCase(256, 128)]
    [TestCase(100, 37)]   // fewer pixels than the target: every pixel
    public void RobustStdOfGaussianNoiseIsItsStd(int w, int h)
    {
        var r = new Random(42);
        var img = new float[w * h];
        for (int i = 0; i < img.Length; i++) img[i] = 50 + 3 * Gauss(r);
        var scratch = new float[NoiseEstimator.ScratchLength(w, h)];
        float std = NoiseEstimator.RobustStd(img, w, h, scratch);
        Assert.That(std, Is.EqualTo(3f).Within(5).Percent);
    }

    [Test]
    public void OneClippingStepIgnoresACrowdOfSpotsTheMadAloneDoesNot()
    {
        // A crowded frame: 25% of the pixels carry emitter light (well above the noise), the rest noise of std 3.
        const int w = 256, h = 256;
        var r = new Random(11);
        var img = new float[w * h];
        for (int i = 0; i < img.Length; i++) img[i] = 3 * Gauss(r) + (i % 4 == 1 ? 40 + 20 * (float)r.NextDouble() : 0);
        var scratch = new float[NoiseEstimator.ScratchLength(w, h)];
        float mad = NoiseEstimator.RobustStd(img, w, h, scratch, clip: false);
        float clipped = NoiseEstimator.RobustStd(img, w, h, scratch);
        TestContext.Out.WriteLine($"MAD {mad:F3}, one clipping step {clipped:F3} (true 3)");
        Assert.That(mad, Is.GreaterThan(3.6f), "the MAD alone is raised by the spots");
        Assert.That(clipped, Is.EqualTo(3f).Within(5).Percent);
        // on noise alone the step changes (almost) nothing
        for (int i = 0; i < img.Length; i++) img[i] = 3 * Gauss(r);
        Assert.That(NoiseEstimator.RobustStd(img, w, h, scratch), Is.EqualTo(NoiseEstimator.RobustStd(img, w, h, scratch, clip: false)).Within(1).Percent);
    }

    [Test]
    public void RobustStdIgnoresBrightSpots()
    {
        const int w = 512, h = 512;
        var r = new Random(7);
        var img = new float[w * h];
        for (int i = 0; i < img.Length; i++) img[i] = 3 * Gauss(r);
        for (int i = 0; i < img.Length; i += 97) img[i] += 1000;   // 1% outliers
        var scratch = new float[NoiseEstimator.ScratchLength(w, h)];
        Assert.That(NoiseEstimator.RobustStd(img, w, h, scratch), Is.EqualTo(3f).Within(5).Percent);
    }

    [Test]
    public void StrideIsCoprimeWithWidthAndGivesAboutTheTargetCount()
    {
        Assert.That(NoiseEstimator.Stride(512, 512), Is.EqualTo(17));
        Assert.That(NoiseEstimator.SampleCount(512, 512), Is.EqualTo((512 * 512 + 16) / 17));
        Assert.That(NoiseEstimator.Stride(100, 100), Is.EqualTo(1));
        Assert.That(NoiseEstimator.SampleCount(100, 100), Is.EqualTo(10000));
    }

    [Test]
    public void RobustStdOfKnownSampleIsExact()
    {
        // 9 values: median 5, |deviations| = 4 3 2 1 0 1 2 3 40 -> median 2 -> 1.4826 x 2
        float[] v = { 1, 2, 3, 4, 5, 6, 7, 8, 45 };
        var scratch = new float[18];
        Assert.That(NoiseEstimator.RobustStd(v, 9, 1, scratch), Is.EqualTo(2 * 1.4826f).Within(1e-6f));
        Assert.That(v, Is.EqualTo(new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 45 }), "input untouched");
    }

    [Test]
    public void TooSmallScratchIsRejected()
        => Assert.Throws<ArgumentException>(() => NoiseEstimator.RobustStd(new float[100], 10, 10, new float[199]));

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(601)]
    [TestCase(5000)]
    [TestCase(16384)]
    public void SelectionMatchesSort(int n)
    {
        var r = new Random(n);
        for (int trial = 0; trial < 5; trial++)
        {
            // include many duplicates in some trials
            // uniform, small integers (many ties), and signed values spanning many octaves (negative keys, -0 and +0)
            var a = Enumerable.Range(0, n).Select(_ => trial switch
            {
                0 or 2 => (float)r.NextDouble(),
                1 or 3 => r.Next(10),
                _ => (float)((r.NextDouble() - 0.5) * Math.Pow(10, r.Next(-30, 30))) * (r.Next(50) == 0 ? -0f : 1f),
            }).ToArray();
            var sorted = a.OrderBy(x => x).ToArray();
            foreach (int k in new[] { 0, (n - 1) / 2, n - 1, n / 3 })
            {
                var copy = (float[])a.Clone();
                Assert.That(Selection.Select(copy, k), Is.EqualTo(sorted[k]), $"Floyd-Rivest n={n} k={k}");
                Assert.That(Selection.RadixSelect(a, k, new uint[n]), Is.EqualTo(sorted[k]), $"radix n={n} k={k}");
            }
        }
    }
}
