using MaLiang.Engine;
using MaLiang.Engine.Post;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Post;

public class FrcTests
{
    [Test]
    public void FrcResolutionMatchesTheoryWithin15Percent()
    {
        // Ground truth: 1500 emitters at uniformly random positions in a 5 x 5 um field, each localized 20 times at random frames
        // (0..1999) with Gaussian localization precision sigma = 20 nm. With emitters at random positions the structure's spectrum
        // is flat, so (Nieuwenhuizen et al. 2013, Supplementary Note; derived here per frequency pixel, expectation over noise):
        //   numerator   E[F1 F2*] = sum_j n1_j n2_j T(q)
        //   denominator E|Fh|^2  = sum_j n_hj + sum_j n_hj (n_hj - 1) T(q)       (h = 1, 2)
        // where n_hj are emitter j's localizations in half h, T(q) = H(q)^2 S(q), H(q) = exp(-2 pi^2 sigma^2 q^2) is the
        // transfer of the localization noise, and S(q) the ring average of the histogram bin's transfer sinc^2(qx p) sinc^2(qy p)
        // (it multiplies only the correlated terms: binned shot noise stays white). So
        //   FRC(q) = S12 T / sqrt((A1 + B1 T)(A2 + B2 T)),  S12 = sum n1 n2, Ah = sum n_h, Bh = sum n_h (n_h - 1),
        // and the expected resolution is 1/q where this equals 1/7. For n1 = n2 = n it reduces to the closed form
        // R = 2 pi sigma / sqrt(ln(6 n + 1)), about 62 nm for n = 10. The counts come from the actual half split.
        const double px = 100, sigmaNm = 20, superPx = 5;
        var r = new Random(5);
        const int emitters = 1500, per = 20;
        var locs = new Localization[emitters * per];
        for (int j = 0; j < emitters; j++)
        {
            double x = 50 * r.NextDouble(), y = 50 * r.NextDouble();
            for (int k = 0; k < per; k++)
                locs[j * per + k] = Sim.Loc(r.Next(2000), x + sigmaNm / px * Sim.Gauss(r), y + sigmaNm / px * Sim.Gauss(r));
        }
        var settings = new FrcSettings { PixelSizeNm = px, SuperPixelNm = superPx, BlockFrames = 20, Seed = 7 };
        var halves = FrcAnalysis.SplitHalves(locs, settings);
        double s12 = 0, a1 = 0, a2 = 0, b1 = 0, b2 = 0;
        for (int j = 0; j < emitters; j++)
        {
            int n1 = 0, n2 = 0;
            for (int k = 0; k < per; k++) if (halves[j * per + k] == 0) n1++; else n2++;
            s12 += n1 * n2; a1 += n1; a2 += n2; b1 += n1 * (n1 - 1.0); b2 += n2 * (n2 - 1.0);
        }
        double Theory(double q)
        {
            double h = Math.Exp(-2 * Math.PI * Math.PI * sigmaNm * sigmaNm * q * q), s = 0;
            for (int i = 0; i < 90; i++)
            {
                double th = (i + 0.5) * Math.PI / 180;
                s += Sinc2(q * superPx * Math.Cos(th)) * Sinc2(q * superPx * Math.Sin(th));
            }
            double t = h * h * s / 90;
            return s12 * t / Math.Sqrt((a1 + b1 * t) * (a2 + b2 * t));
        }
        double lo = 1e-4, hi = 0.1;
        for (int it = 0; it < 60; it++) { double mid = 0.5 * (lo + hi); if (Theory(mid) > 1.0 / 7) lo = mid; else hi = mid; }
        double expected = 1 / lo;

        var frc = FrcAnalysis.Compute(locs, settings);
        TestContext.Out.WriteLine($"FRC resolution {frc.ResolutionNm:F1} nm, theory {expected:F1} nm, closed form n=10: {2 * Math.PI * sigmaNm / Math.Sqrt(Math.Log(61)):F1} nm");
        Assert.That(frc.Localizations1 + frc.Localizations2, Is.EqualTo(locs.Length));
        Assert.That(frc.ResolutionNm, Is.EqualTo(expected).Within(15).Percent);
        Assert.That(frc.Frc[1], Is.GreaterThan(0.5), "low frequencies correlate");
        Assert.That(frc.FrequencyPerNm[1], Is.GreaterThan(0));

        string path = Path.Combine(Path.GetTempPath(), $"maliang-frc-{Guid.NewGuid():N}.csv");
        try
        {
            PostCsv.WriteFrc(path, frc);
            var lines = File.ReadAllLines(path);
            Assert.That(lines[0], Is.EqualTo("\"spatial frequency [1/nm]\",\"frc\",\"frc smoothed\""));
            Assert.That(lines, Has.Length.EqualTo(frc.Frc.Length + 1));
        }
        finally { File.Delete(path); }
        Assert.That(PostPlots.Frc(frc, 300, 200), Has.Length.EqualTo(300 * 200 * 3));
    }

    private static double Sinc2(double x)
    {
        if (Math.Abs(x) < 1e-12) return 1;
        double s = Math.Sin(Math.PI * x) / (Math.PI * x);
        return s * s;
    }

    [Test]
    public void UncorrelatedHalvesHaveNoResolution()
    {
        // every emitter is localized once: the halves share no emitters, FRC stays near 0 and must not report a resolution
        // below a few pixels' worth of the field
        var r = new Random(6);
        var locs = Enumerable.Range(0, 20000).Select(i => Sim.Loc(i % 2000, 50 * r.NextDouble(), 50 * r.NextDouble())).ToArray();
        var frc = FrcAnalysis.Compute(locs, new FrcSettings { SuperPixelNm = 10, Split = FrcSplit.OddEvenBlocks, BlockFrames = 10 });
        Assert.That(frc.ResolutionNm, Is.NaN.Or.GreaterThan(500));
    }
}

public class MotionTests
{
    private static Localization[] Filament(double shiftNm, int seed)
    {
        // a filament from (10, 10) to (30, 20) px, 10 nm precision, 1 localization per frame over 3000 frames;
        // frames 2000..2999 displaced by shiftNm along the normal (pixel 100 nm)
        var r = new Random(seed);
        double dx = 20, dy = 10, len = Math.Sqrt(dx * dx + dy * dy);
        double nx = -dy / len, ny = dx / len;
        var locs = new Localization[3000];
        for (int f = 0; f < locs.Length; f++)
        {
            double t = r.NextDouble(), s = f >= 2000 ? shiftNm / 100 : 0;
            locs[f] = Sim.Loc(f, 10 + t * dx + s * nx + 0.1 * Sim.Gauss(r), 10 + t * dy + s * ny + 0.1 * Sim.Gauss(r));
        }
        return locs;
    }

    private static readonly RegionPx Region = new(5, 5, 35, 25);

    [Test]
    public void FiftyNmShiftIsSignificant()
    {
        var m = MotionStatistics.Compute(Filament(50, 7), Region, FrameWindow.Parse1Based("1-1000"), FrameWindow.Parse1Based("2001-3000"), 100);
        TestContext.Out.WriteLine($"shift {m.DisplacementNm:F2} nm, Z = {m.Z:F1}");
        Assert.That(m.Z, Is.GreaterThan(5));
        Assert.That(m.DisplacementNm, Is.EqualTo(50).Within(3));
        Assert.That(m.N1, Is.EqualTo(1000));
        Assert.That(m.N2, Is.EqualTo(1000));
        Assert.That(m.StdErr1Nm, Is.EqualTo(10 / Math.Sqrt(1000)).Within(0.1));
    }

    [Test]
    public void NoShiftIsNotSignificant()
    {
        var m = MotionStatistics.Compute(Filament(0, 8), Region, new FrameWindow(0, 999), new FrameWindow(2000, 2999), 100);
        TestContext.Out.WriteLine($"shift {m.DisplacementNm:F2} nm, Z = {m.Z:F2}");
        Assert.That(Math.Abs(m.Z), Is.LessThan(3));
    }

    [Test]
    public void OutliersAreRejected()
    {
        var locs = Filament(0, 9).ToList();
        locs.Add(Sim.Loc(5, 30, 12)); // far from the line (about 7 px)
        var m = MotionStatistics.Compute(locs.ToArray(), Region, new FrameWindow(0, 999), new FrameWindow(2000, 2999), 100);
        Assert.That(m.Inliers, Is.LessThan(m.InRegion));
        Assert.That(m.N1, Is.EqualTo(1000));
    }

    [Test]
    public void ErrorsNameTheProblem()
    {
        var locs = Filament(0, 10);
        Assert.That(Assert.Throws<MaLiangException>(() => MotionStatistics.Compute(locs, new RegionPx(100, 100, 110, 110), new(0, 999), new(2000, 2999), 100))!.Message,
            Does.Contain("no localizations in region"));
        Assert.That(Assert.Throws<MaLiangException>(() => MotionStatistics.Compute(locs, Region, new(0, 0), new(2000, 2999), 100))!.Message,
            Does.Contain("window 1 (frames 1-1) has 1 localization"));
        Assert.That(Assert.Throws<MaLiangException>(() => MotionStatistics.Compute(locs, Region, new(0, 999), new(5000, 5999), 100))!.Message,
            Does.Contain("window 2"));
        Assert.That(Assert.Throws<InvalidParameterException>(() => MotionStatistics.Compute(locs, Region, new(10, 5), new(2000, 2999), 100))!.Parameter,
            Is.EqualTo("windows"));
        Assert.That(Assert.Throws<InvalidParameterException>(() => FrameWindow.Parse1Based("1000-1"))!.Parameter, Is.EqualTo("windows"));
        Assert.That(RegionPx.Parse("1, 2,3.5,4"), Is.EqualTo(new RegionPx(1, 2, 3.5, 4)));
    }
}
