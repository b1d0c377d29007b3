using MaLiang.Engine.Camera;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Simulate;

public class ExpectedImageTests
{
    // Reference values (Abramowitz & Stegun / mpmath)
    [TestCase(0.0, 0.0)]
    [TestCase(0.1, 0.1124629160182848922)]
    [TestCase(0.5, 0.5204998778130465377)]
    [TestCase(1.0, 0.8427007929497148693)]
    [TestCase(-1.0, -0.8427007929497148693)]
    [TestCase(2.0, 0.9953222650189527342)]
    [TestCase(3.5, 0.9999992569016276586)]
    public void ErfMatchesReference(double x, double erf)
        => Assert.That(IntegratedGaussian.Erf(x), Is.EqualTo(erf).Within(2e-16 + 1e-15 * Math.Abs(erf)));

    [TestCase(0.3, 0.6713732405408726)]
    [TestCase(2.0, 4.677734981047265838e-3)]
    [TestCase(5.0, 1.5374597944280351e-12)]
    [TestCase(10.0, 2.088487583762544757e-45)]
    [TestCase(-2.0, 1.995322265018952734)]
    public void ErfcMatchesReferenceToRelativePrecision(double x, double erfc)
        => Assert.That(IntegratedGaussian.Erfc(x), Is.EqualTo(erfc).Within(1e-14 * erfc));

    // the ROI reaches at least 10 sigma from the emitter on every side (missing mass < 1e-20)
    [TestCase(20.3, 20.8, 1.3)]
    [TestCase(15.0, 15.0, 0.8)]
    [TestCase(30.77, 31.02, 2.5)]
    public void TotalExpectedPsfPhotonsOverALargeRoiIsN(double x, double y, double sigma)
    {
        const double n = 1000;
        double total = 0;
        for (int r = 0; r < 61; r++)
            for (int c = 0; c < 61; c++)
                total += IntegratedGaussian.PixelExpectation(c, r, x, y, n, 0, sigma);
        Assert.That(total, Is.EqualTo(n).Within(1e-6));
    }

    [Test]
    public void PixelFractionIsSymmetricAndCentredOnItsPixel()
    {
        // centre 10.5 lies in the middle of pixel 10 = [10, 11)
        double mid = IntegratedGaussian.PixelFraction(10, 11, 10.5, 1.3);
        Assert.That(IntegratedGaussian.PixelFraction(9, 10, 10.5, 1.3), Is.EqualTo(IntegratedGaussian.PixelFraction(11, 12, 10.5, 1.3)).Within(1e-15));
        Assert.That(mid, Is.EqualTo(IntegratedGaussian.Erf(0.5 / (Math.Sqrt(2) * 1.3))).Within(1e-15));
        Assert.That(IntegratedGaussian.PixelFraction(30, 31, 10.5, 1.3), Is.GreaterThan(0).And.LessThan(1e-40), "far tail keeps relative precision");
    }
}

public class SimulatorTests
{
    [Test]
    public void TruthCoordinatesFollowTheDesignConvention()
    {
        var s = new SimulationSettings
        {
            Width = 32, Height = 40, Positions = new[] { new EmitterPosition(10.5, 20.5) }, Photons = 1e5, BackgroundPhotons = 1, OffsetAdu = 0,
        };
        var r = Simulator.Run(s);
        var f = r.Frame(0);
        int best = 0;
        for (int i = 1; i < f.Length; i++) if (f[i] > f[best]) best = i;
        Assert.That((best % 32, best / 32), Is.EqualTo((10, 20)));
        Assert.That(r.Truth, Has.Count.EqualTo(1));
        Assert.That((r.Truth[0].X, r.Truth[0].Y, r.Truth[0].Frame, r.Truth[0].Photons), Is.EqualTo((10.5, 20.5, 0, 1e5)));
        // symmetric about the pixel: left and right neighbours agree within shot noise (1e5 * 0.2 photons -> sd ~140)
        Assert.That((double)f[20 * 32 + 9], Is.EqualTo(f[20 * 32 + 11]).Within(800));
    }

    [Test]
    public void SameSeedSameStackOtherSeedOtherStack()
    {
        var s = new SimulationSettings { Width = 40, Height = 30, Frames = 3, EmitterCount = 5, OnToOff = 0.3, OffToOn = 0.3, Seed = 11, PhotonDistribution = PhotonDistribution.LogNormal };
        var a = Simulator.Run(s);
        var b = Simulator.Run(s);
        Assert.That(b.Frames, Is.EqualTo(a.Frames));
        Assert.That(b.Truth.Select(t => (t.Frame, t.X, t.Y, t.Photons)), Is.EqualTo(a.Truth.Select(t => (t.Frame, t.X, t.Y, t.Photons))));
        s.Seed = 12;
        Assert.That(Simulator.Run(s).Frames, Is.Not.EqualTo(a.Frames));
    }

    [Test]
    public void FlatBackgroundThroughCameraModelHasPoissonStatistics()
    {
        var s = new SimulationSettings { Width = 256, Height = 256, EmitterCount = 0, BackgroundPhotons = 50, OffsetAdu = 100, PhotonsPerAdu = 0.5, Seed = 3 };
        var (mean, variance) = PhotonStats(s);
        Assert.That(mean, Is.EqualTo(50).Within(1).Percent);
        // 2 ADU per photon: whole photon counts map to whole ADU, no quantisation term
        Assert.That(variance, Is.EqualTo(50).Within(3).Percent);
    }

    [Test]
    public void EmGainDoublesTheVariance()
    {
        // EMCCD excess noise factor^2 = 2 for the Gamma(n, gain) stage: var(photons) = 2 x mean
        var s = new SimulationSettings { Width = 256, Height = 256, EmitterCount = 0, BackgroundPhotons = 20, OffsetAdu = 500, PhotonsPerAdu = 10, EmGain = 100, Seed = 8 };
        var (mean, variance) = PhotonStats(s);
        Assert.That(mean, Is.EqualTo(20).Within(1).Percent);
        Assert.That(variance, Is.EqualTo(40).Within(4).Percent);
    }

    [Test]
    public void ReadNoiseAddsItsVarianceInPhotonsSquared()
    {
        var s = new SimulationSettings { Width = 256, Height = 256, EmitterCount = 0, BackgroundPhotons = 30, OffsetAdu = 100, PhotonsPerAdu = 0.5, ReadNoiseE = 4, Seed = 9 };
        var (mean, variance) = PhotonStats(s);
        Assert.That(mean, Is.EqualTo(30).Within(1).Percent);
        Assert.That(variance, Is.EqualTo(30 + 16 + 0.25 / 12).Within(3).Percent);
    }

    private static (double mean, double variance) PhotonStats(SimulationSettings s)
    {
        var r = Simulator.Run(s);
        var photons = new float[r.Frames.Length];
        new CameraModel(s.OffsetAdu, s.PhotonsPerAdu, s.EmGain).ToPhotons(r.Frames, photons);
        double mean = photons.Average(v => (double)v);
        double variance = photons.Average(v => (v - mean) * (v - mean));
        return (mean, variance);
    }

    [Test]
    public void BlinkingOnFractionIsTheChainsStationaryValue()
    {
        var s = new SimulationSettings { Width = 16, Height = 16, Frames = 2000, EmitterCount = 20, OffToOn = 0.1, OnToOff = 0.5, Seed = 21, BackgroundPhotons = 0 };
        var r = Simulator.Run(s);
        double onFraction = r.Truth.Count / (20.0 * 2000);
        Assert.That(onFraction, Is.EqualTo(0.1 / 0.6).Within(5).Percent);
        // on-runs last 1 / OnToOff = 2 frames on average
        var runs = new List<int>();
        foreach (var g in r.Truth.GroupBy(t => t.EmitterId))
        {
            int len = 0, prev = -2;
            foreach (var t in g.OrderBy(t => t.Frame))
            {
                if (t.Frame == prev + 1) len++; else { if (len > 0) runs.Add(len); len = 1; }
                prev = t.Frame;
            }
            runs.Add(len);
        }
        Assert.That(runs.Average(), Is.EqualTo(2.0).Within(6).Percent);
    }

    [Test]
    public void BleachingStopsEmission()
    {
        var s = new SimulationSettings { Width = 16, Height = 16, Frames = 50, EmitterCount = 30, OffToOn = 0.2, OnToOff = 0, BleachPerOnFrame = 1, InitialOnProbability = 0, Seed = 2 };
        var r = Simulator.Run(s);
        Assert.That(r.Truth.GroupBy(t => t.EmitterId).All(g => g.Count() == 1), "each emitter is on exactly once");
        Assert.That(r.Truth.Select(t => t.EmitterId).Distinct().Count(), Is.GreaterThan(25));
    }

    [Test]
    public void DriftMovesTruthAndImage()
    {
        var s = new SimulationSettings
        {
            Width = 64, Height = 64, Frames = 3, Positions = new[] { new EmitterPosition(20.5, 30.5) }, Photons = 1e5, BackgroundPhotons = 0,
            OffsetAdu = 0, Drift = f => (5.0 * f, -4.0 * f),
        };
        var r = Simulator.Run(s);
        for (int f = 0; f < 3; f++)
        {
            Assert.That((r.Truth[f].X, r.Truth[f].Y), Is.EqualTo((20.5 + 5 * f, 30.5 - 4 * f)));
            var fr = r.Frame(f);
            int best = 0;
            for (int i = 1; i < fr.Length; i++) if (fr[i] > fr[best]) best = i;
            Assert.That((best % 64, best / 64), Is.EqualTo((20 + 5 * f, 30 - 4 * f)), $"frame {f}");
        }
        Assert.That(r.Emitters[0], Is.EqualTo(new EmitterPosition(20.5, 30.5)));
    }

    [Test]
    public void RandomPlacementHonoursMarginSeparationAndDensity()
    {
        var s = new SimulationSettings { Width = 200, Height = 100, PixelSizeNm = 100, DensityPerUm2 = 0.5, EdgeMarginPx = 6, MinSeparationPx = 8, Seed = 4 };
        var r = Simulator.Run(s);
        Assert.That(r.Emitters, Has.Length.EqualTo(100));   // 0.5 / um^2 x 20 um x 10 um
        foreach (var e in r.Emitters)
            Assert.That(e.X >= 6 && e.X <= 194 && e.Y >= 6 && e.Y <= 94, $"{e}");
        for (int i = 0; i < r.Emitters.Length; i++)
            for (int j = 0; j < i; j++)
            {
                double dx = r.Emitters[i].X - r.Emitters[j].X, dy = r.Emitters[i].Y - r.Emitters[j].Y;
                Assert.That(dx * dx + dy * dy, Is.GreaterThanOrEqualTo(64));
            }
    }

    [Test]
    public void ImpossibleSeparationIsReported()
    {
        var s = new SimulationSettings { Width = 10, Height = 10, EmitterCount = 50, MinSeparationPx = 5 };
        Assert.That(Assert.Throws<InvalidParameterException>(() => Simulator.Run(s))!.Parameter, Is.EqualTo("min-separation"));
    }

    [Test]
    public void IsolatedRoisAreCentredAndCarryTheExpectedPhotons()
    {
        const int count = 4000, n = 7;
        var px = Simulator.IsolatedRois(count, n, 1000, 10, 1.3, 5, out var tx, out var ty);
        Assert.That(px, Has.Length.EqualTo(count * n * n));
        Assert.That(tx.All(x => x >= 3 && x < 4) && ty.All(y => y >= 3 && y < 4));
        Assert.That(tx.Average(), Is.EqualTo(3.5).Within(0.02));
        double expected = 0, observed = 0;
        for (int m = 0; m < count; m++)
        {
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++)
                {
                    expected += IntegratedGaussian.PixelExpectation(c, r, tx[m], ty[m], 1000, 10, 1.3);
                    observed += px[m * n * n + r * n + c];
                }
        }
        Assert.That(observed, Is.EqualTo(expected).Within(0.2).Percent);
        // brightest pixel of a ROI is its centre pixel (3, 3) in most cases
        int centred = Enumerable.Range(0, count).Count(m =>
        {
            var roi = px.AsSpan(m * n * n, n * n);
            int best = 0;
            for (int i = 1; i < roi.Length; i++) if (roi[i] > roi[best]) best = i;
            return best == 3 * n + 3;
        });
        Assert.That(centred, Is.GreaterThan(count / 2));
        var again = Simulator.IsolatedRois(count, n, 1000, 10, 1.3, 5, out var tx2, out _);
        Assert.That(again, Is.EqualTo(px));
        Assert.That(tx2, Is.EqualTo(tx));
    }
}
