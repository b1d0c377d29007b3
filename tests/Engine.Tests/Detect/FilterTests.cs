using MaLiang.Engine.Denoise;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Detect;

public class FilterTests
{
    private static float[] Random(int w, int h, int seed, float scale = 20f)
    {
        var r = new Random(seed);
        var a = new float[w * h];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(r.NextDouble() * scale);
        return a;
    }

    private static float[] Flat(int w, int h, float v) => Enumerable.Repeat(v, w * h).ToArray();

    /// <summary>Brute force: mean of the a x a box minus the mean of the annulus to the (a+4) box, coordinates clamped.</summary>
    private static double[] MaliangReference(float[] img, int w, int h, int a)
    {
        var o = new double[w * h];
        int ra = a / 2, rb = ra + 2, b = a + 4;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double sa = 0, sb = 0;
                for (int dy = -rb; dy <= rb; dy++)
                    for (int dx = -rb; dx <= rb; dx++)
                    {
                        double v = img[Math.Clamp(y + dy, 0, h - 1) * w + Math.Clamp(x + dx, 0, w - 1)];
                        sb += v;
                        if (Math.Abs(dx) <= ra && Math.Abs(dy) <= ra) sa += v;
                    }
                o[y * w + x] = sa / (a * a) - (sb - sa) / (b * b - a * a);
            }
        return o;
    }

    private static int Reflect(int i, int n) => i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;

    /// <summary>Brute force 2-D a-trous: V1 = I * (g1 x g1), V2 = V1 * (g2 x g2), F = V1 - V2, reflect-101 borders.</summary>
    private static double[] WaveletReference(float[] img, int w, int h)
    {
        double[] g = { 1 / 16.0, 1 / 4.0, 3 / 8.0, 1 / 4.0, 1 / 16.0 };
        double[] Conv(Func<int, int, double> src, int d)
        {
            var o = new double[w * h];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    double s = 0;
                    for (int i = -2; i <= 2; i++)
                        for (int j = -2; j <= 2; j++)
                            s += g[i + 2] * g[j + 2] * src(Reflect(x + d * j, w), Reflect(y + d * i, h));
                    o[y * w + x] = s;
                }
            return o;
        }
        var v1 = Conv((x, y) => img[y * w + x], 1);
        var v2 = Conv((x, y) => v1[y * w + x], 2);
        return v1.Select((v, i) => v - v2[i]).ToArray();
    }

    private static float[] Run(IFrameFilter f, float[] img, int w, int h)
    {
        var o = new float[w * h];
        f.Apply(img, o, w, h);
        return o;
    }

    [TestCase(FilterKind.Maliang, 3)]
    [TestCase(FilterKind.Maliang, 5)]
    [TestCase(FilterKind.Wavelet, 3)]
    [TestCase(FilterKind.None, 3)]
    public void FlatImageGivesZeroEverywhereIncludingBorders(FilterKind kind, int box)
    {
        const int w = 45, h = 33;   // width not a multiple of the vector length
        var f = FrameFilters.Create(new LocalizerSettings { Filter = kind, FilterBoxPx = box });
        var o = Run(f, Flat(w, h, 137.5f), w, h);
        Assert.That(o.Max(v => Math.Abs(v)), Is.LessThan(1e-4f));
        Assert.That(o[0], Is.EqualTo(0f).Within(1e-4f), "corner");
        Assert.That(o[w * h - 1], Is.EqualTo(0f).Within(1e-4f), "corner");
    }

    [TestCase(64, 48, 3)]
    [TestCase(37, 29, 3)]
    [TestCase(23, 70, 5)]
    [TestCase(5, 4, 1)]     // narrower than a vector: scalar path
    [TestCase(200, 130, 7)] // more rows than the running-sum restart period
    public void MaliangMatchesBruteForce(int w, int h, int box)
    {
        var img = Random(w, h, w * 1000 + h);
        var reference = MaliangReference(img, w, h, box);
        var o = Run(new MaliangFilter(box), img, w, h);
        for (int i = 0; i < o.Length; i++)
            Assert.That(o[i], Is.EqualTo(reference[i]).Within(1e-4), $"pixel ({i % w}, {i / w})");
    }

    [Test]
    public void MaliangImpulseResponseIsBoxMeanMinusAnnulusMean()
    {
        const int w = 41, h = 41;
        var img = new float[w * h];
        img[20 * w + 20] = 1f;
        var o = Run(new MaliangFilter(3), img, w, h);
        Assert.That(o[20 * w + 20], Is.EqualTo(1.0 / 9).Within(1e-7), "inside the 3x3 box");
        Assert.That(o[21 * w + 21], Is.EqualTo(1.0 / 9).Within(1e-7), "box corner");
        Assert.That(o[20 * w + 22], Is.EqualTo(-1.0 / 40).Within(1e-7), "in the annulus (49 - 9 = 40 px)");
        Assert.That(o[23 * w + 23], Is.EqualTo(-1.0 / 40).Within(1e-7), "annulus corner");
        Assert.That(o[20 * w + 24], Is.EqualTo(0).Within(1e-7), "outside the 7x7 box");
    }

    [TestCase(64, 48)]
    [TestCase(37, 29)]
    [TestCase(9, 12)]
    public void WaveletMatchesBruteForce(int w, int h)
    {
        var img = Random(w, h, w * 7 + h);
        var reference = WaveletReference(img, w, h);
        var o = Run(new WaveletFilter(), img, w, h);
        for (int i = 0; i < o.Length; i++)
            Assert.That(o[i], Is.EqualTo(reference[i]).Within(1e-4), $"pixel ({i % w}, {i / w})");
    }

    [Test]
    public void WaveletImpulseResponseAtCentre()
    {
        // V1(0) = (3/8)^2; V2(0) = (sum_i g(i) g1(2i))^2 = (9/64 + 2/64)^2; F = 9/64 - 121/4096 = 455/4096
        const int w = 31, h = 31;
        var img = new float[w * h];
        img[15 * w + 15] = 1f;
        var o = Run(new WaveletFilter(), img, w, h);
        Assert.That(o[15 * w + 15], Is.EqualTo(455.0 / 4096).Within(1e-7));
    }

    [Test]
    public void NoFilterSubtractsTheMedianAndScales()
    {
        const int w = 20, h = 10;
        var img = Flat(w, h, 10f);
        img[55] = 110f;
        var f = new NoFilter { CopyScale = 2f };
        var o = Run(f, img, w, h);
        Assert.That(f.LastMedian, Is.EqualTo(10f));
        Assert.That(o[55], Is.EqualTo(200f));
        Assert.That(o[0], Is.EqualTo(0f));
    }

    [Test]
    public void ReusedInstanceGivesSameResultForAnyFrameSizeOrder()
    {
        var f = new MaliangFilter(3);
        var small = Random(16, 16, 1);
        var big = Random(100, 90, 2);
        var first = Run(f, small, 16, 16);
        Run(f, big, 100, 90);
        var again = Run(f, small, 16, 16);
        Assert.That(again, Is.EqualTo(first));
    }

    [Test]
    public void FactoryHonoursSettings()
    {
        Assert.That(FrameFilters.Create(new LocalizerSettings { Filter = FilterKind.Maliang, FilterBoxPx = 5 }), Is.TypeOf<MaliangFilter>()
            .With.Property(nameof(MaliangFilter.BoxPx)).EqualTo(5));
        Assert.That(FrameFilters.Create(new LocalizerSettings { Filter = FilterKind.Wavelet }), Is.TypeOf<WaveletFilter>());
        Assert.That(FrameFilters.Create(new LocalizerSettings { Filter = FilterKind.None }), Is.TypeOf<NoFilter>());
    }
}
