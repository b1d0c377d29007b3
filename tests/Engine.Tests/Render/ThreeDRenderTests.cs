using MaLiang.Engine.Post;
using MaLiang.Engine.Render;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Render;

public class ThreeDRenderTests
{
    private static Localization L(float x, float y, float z) => new()
    {
        X = x, Y = y, Z = z, Photons = 1000, UncertaintyX = 0.1f, UncertaintyY = 0.1f, UncertaintyZ = 10, Flags = Localization.FlagHasZ,
    };

    [Test]
    public void SideViewPutsZDownFromTheTop()
    {
        // Region x 2..6, y 0..10 px; z range -500..500 nm at 100 nm pixels: 4 x 10 camera px, magnification 1.
        Localization[] locs = [L(3.5f, 5, 250), L(5.5f, 5, -450), L(3.5f, 20, 0), L(3.5f, 5, 900)];
        var img = SideView.Render(locs, new RegionPx(2, 0, 6, 10), -500, 500, 100, new RenderSettings { Magnification = 1, SigmaPx = 0.3 }, out int n);
        Assert.That(n, Is.EqualTo(2), "one outside the region in y, one outside the z range");
        Assert.That((img.Width, img.Height), Is.EqualTo((4, 10)));
        int Brightest() { int b = 0; for (int i = 1; i < img.Pixels.Length; i++) if (img.Pixels[i] > img.Pixels[b]) b = i; return b; }
        // z = 250 nm lies 2.5 px below the top (z = 500), x = 3.5 px is column 1 of the region.
        int top = Brightest();
        Assert.That(top % 4 == 1 && top / 4 == 2 || top % 4 == 3 && top / 4 == 9, Is.True, $"pixel {top}");
        Assert.That(img.Pixels[2 * 4 + 1], Is.GreaterThan(0.3f * img.Pixels[top]));
        Assert.That(img.Pixels[9 * 4 + 3], Is.GreaterThan(0.3f * img.Pixels[top]), "z = -450 nm near the bottom, column 3");
    }

    [Test]
    public void ColorBarRunsThroughTheColormapWithLabels()
    {
        int w = 400, h = 300;
        var rgb = new byte[w * h * 3];
        ColorBar.Draw(rgb, w, h, -500, 500, "nm");
        int margin = Math.Max(2, Math.Min(w, h) / 40), barW = w / 4;
        var (r0, g0, b0) = Colormap.MapBytes(ColormapKind.Viridis, 0);
        var (r1, g1, b1) = Colormap.MapBytes(ColormapKind.Viridis, 1);
        int i0 = (margin * w + margin) * 3, i1 = (margin * w + margin + barW - 1) * 3;
        Assert.That((rgb[i0], rgb[i0 + 1], rgb[i0 + 2]), Is.EqualTo((r0, g0, b0)));
        Assert.That((rgb[i1], rgb[i1 + 1], rgb[i1 + 2]), Is.EqualTo((r1, g1, b1)));
        int white = 0;
        for (int i = 0; i < rgb.Length; i += 3) if (rgb[i] == 255 && rgb[i + 1] == 255 && rgb[i + 2] == 255) white++;
        Assert.That(white, Is.GreaterThan(20), "labels drawn in white");
    }
}
