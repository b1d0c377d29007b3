using MaLiang.Engine;
using MaLiang.Engine.Post;
using MaLiang.Engine.Render;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Render;

public class RendererTests
{
    private static Localization L(int frame, double x, double y, double unc = 0.1) => new()
    {
        Frame = frame, X = (float)x, Y = (float)y, Photons = 1000, UncertaintyX = (float)unc, UncertaintyY = (float)(unc * 1.5), Detections = 1,
    };

    private static Localization[] Random(int n, int seed, double lo, double hi)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(i => L(i, lo + (hi - lo) * r.NextDouble(), lo + (hi - lo) * r.NextDouble(), 0.05 + 0.2 * r.NextDouble())).ToArray();
    }

    [TestCase(0.0)]
    [TestCase(0.3)]
    public void GaussianImageSumsToTheCount(double sigma)
    {
        var locs = Random(5000, 1, 5, 27); // away from the 32 x 32 px edges
        var s = new RenderSettings { Width = 32, Height = 32, Magnification = 8, SigmaPx = sigma };
        var img = Renderer.Render(locs, s);
        Assert.That(img.Width, Is.EqualTo(256));
        Assert.That(img.Height, Is.EqualTo(256));
        Assert.That(img.Sum(), Is.EqualTo(5000).Within(1e-3).Percent);
        // deterministic despite the parallel bands
        Assert.That(Renderer.Render(locs, s).Pixels, Is.EqualTo(img.Pixels));
    }

    [Test]
    public void GaussianIsCentredOnTheLocalization()
    {
        var img = Renderer.Render([L(0, 4.55, 3.25)], new RenderSettings { Width = 8, Height = 8, Magnification = 10, SigmaPx = 0.2 });
        double sx = 0, sy = 0, sw = 0;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++) { double v = img.Pixels[y * img.Width + x]; sx += v * (x + 0.5); sy += v * (y + 0.5); sw += v; }
        Assert.That(sx / sw / 10, Is.EqualTo(4.55).Within(1e-4));
        Assert.That(sy / sw / 10, Is.EqualTo(3.25).Within(1e-4));
    }

    [Test]
    public void HistogramCountsAreExact()
    {
        Localization[] locs = [L(0, 0.05, 0.05), L(1, 0.09, 0.01), L(2, 1.25, 0.5), L(3, 3.99, 1.99), L(4, 4.0, 1.0), L(5, -0.01, 1)];
        var img = Renderer.Render(locs, new RenderSettings { Width = 4, Height = 2, Magnification = 2, Method = RenderMethod.Histogram });
        Assert.That(img.Width, Is.EqualTo(8));
        var expected = new float[32];
        expected[0] = 2;          // (0.05, 0.05), (0.09, 0.01) -> super-pixel (0, 0)
        expected[1 * 8 + 2] = 1;  // (1.25, 0.5) -> (2, 1)
        expected[3 * 8 + 7] = 1;  // (3.99, 1.99) -> (7, 3); x = 4.0 and x < 0 are outside
        Assert.That(img.Pixels, Is.EqualTo(expected));
    }

    [Test]
    public void RegionRendersASubField()
    {
        Localization[] locs = [L(0, 10.5, 20.5), L(0, 2, 2)];
        var img = Renderer.Render(locs, new RenderSettings { Region = new RegionPx(10, 20, 12, 22), Magnification = 2, Method = RenderMethod.Histogram });
        Assert.That(img.Width, Is.EqualTo(4));
        Assert.That(img.Pixels[1 * 4 + 1], Is.EqualTo(1f));
        Assert.That(img.Sum(), Is.EqualTo(1.0));
    }

    [Test]
    public void AshAndJitterKeepTheCount()
    {
        var locs = Random(2000, 2, 5, 27);
        var ash = Renderer.Render(locs, new RenderSettings { Width = 32, Height = 32, Magnification = 4, Method = RenderMethod.AverageShiftedHistogram, Shifts = 3 });
        Assert.That(ash.Sum(), Is.EqualTo(2000).Within(1e-3).Percent);
        var s = new RenderSettings { Width = 32, Height = 32, Magnification = 4, Method = RenderMethod.HistogramJitter, Seed = 3 };
        var j = Renderer.Render(locs, s);
        Assert.That(j.Sum(), Is.EqualTo(2000));
        Assert.That(Renderer.Render(locs, s).Pixels, Is.EqualTo(j.Pixels));
        var h = Renderer.Render(locs, new RenderSettings { Width = 32, Height = 32, Magnification = 4, Method = RenderMethod.Histogram });
        Assert.That(j.Pixels, Is.Not.EqualTo(h.Pixels));
    }

    [Test]
    public void ColorByFrameUsesTheColormapEnds()
    {
        Localization[] locs = [L(0, 2.5, 2.5), L(100, 6.5, 6.5)];
        var s = new RenderSettings { Width = 8, Height = 8, Magnification = 1, Method = RenderMethod.Histogram };
        var rgb = Renderer.RenderColored(locs, [0f, 100f], s);
        Assert.That(rgb, Has.Length.EqualTo(8 * 8 * 3));
        int a = 3 * (2 * 8 + 2), b = 3 * (6 * 8 + 6);
        Assert.That(new[] { rgb[a], rgb[a + 1], rgb[a + 2] }, Is.EqualTo(new byte[] { 68, 1, 84 }));
        Assert.That(new[] { rgb[b], rgb[b + 1], rgb[b + 2] }, Is.EqualTo(new byte[] { 253, 231, 37 }));
        Assert.That(rgb.Count(v => v != 0), Is.EqualTo(6));
    }

    [Test]
    public void ScaleBarHasTheRequestedLength()
    {
        var gray = new byte[200 * 100];
        int len = ScaleBar.Draw(gray, 200, 100, 1, 1000, 10); // 1 um at 10 nm/px
        Assert.That(len, Is.EqualTo(100));
        int row = Array.FindLastIndex(gray, v => v == 255) / 200;
        Assert.That(Enumerable.Range(0, 200).Count(x => gray[row * 200 + x] == 255), Is.EqualTo(100));
        var rgb = new byte[200 * 100 * 3];
        ScaleBar.Draw(rgb, 200, 100, 3, 500, 10);
        Assert.That(rgb.Count(v => v == 255), Is.EqualTo(50 * 2 * 3));
        Assert.That(Assert.Throws<InvalidParameterException>(() => ScaleBar.Draw(gray, 200, 100, 1, 5000, 10))!.Parameter, Is.EqualTo("scale-bar"));
    }

    [Test]
    public void BadSettingsAreNamed()
    {
        Assert.That(Assert.Throws<InvalidParameterException>(() => Renderer.Render([], new RenderSettings { Width = 0, Height = 10 }))!.Parameter, Is.EqualTo("size"));
        Assert.That(Assert.Throws<InvalidParameterException>(() => Renderer.Render([], new RenderSettings { Width = 10, Height = 10, Magnification = -1 }))!.Parameter, Is.EqualTo("magnification"));
    }

    [Test]
    public void LinePlotDrawsTheSeries()
    {
        double[] x = [0, 1, 2, 3], y = [0, 1, 4, 9];
        var img = LinePlot.Render(200, 150, [new PlotSeries(x, y, 255, 0, 0)], [5.0]);
        Assert.That(img, Has.Length.EqualTo(200 * 150 * 3));
        int red = 0;
        for (int i = 0; i < img.Length; i += 3) if (img[i] == 255 && img[i + 1] == 0 && img[i + 2] == 0) red++;
        Assert.That(red, Is.GreaterThan(100));
        Assert.That(LinePlot.Ticks(0, 9), Is.EqualTo(new[] { 0.0, 2, 4, 6, 8 }));
    }
}
