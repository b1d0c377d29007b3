using MaLiang.Engine.Evaluate;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Pipeline;

/// <summary>The small version of bench/density/sweep.sh: the same stacks localized as before edge fitting, the neighbour
/// refit, the SNR filter and the clipped noise estimate, and with today's defaults, scored against the ground truth
/// within 100 nm.</summary>
public class DensitySweepTests
{
    /// <summary>64 x 64 px of 100 nm, emitters anywhere (edges included), <paramref name="perUm2"/> of them on per frame
    /// on average (5% on-fraction, one-frame blinks: a new subset each frame), 1500 photons, 10 background photons/px.</summary>
    internal static SimulationResult Stack(double perUm2, int frames, int seed) => Simulator.Run(new SimulationSettings
    {
        Width = 64, Height = 64, Frames = frames, PixelSizeNm = 100, DensityPerUm2 = perUm2 / 0.05, EdgeMarginPx = 0,
        Photons = 1500, BackgroundPhotons = 10, PsfSigmaPx = 1.3, OffsetAdu = 100, OffToOn = 0.05 / 0.95, OnToOff = 1, Seed = seed,
    });

    internal static LocalizerSettings Before() => new() { OffsetAdu = 100, DropAtEdge = true, RejectOverlapping = true, MinPhotonSnr = 0, NoiseClip = false, Backend = BackendKind.Cpu };
    internal static LocalizerSettings Now() => new() { OffsetAdu = 100, Backend = BackendKind.Cpu };

    private static MatchResult Score(SimulationResult sim, LocalizerSettings s)
    {
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(s);
        loc.Run(src);
        return GroundTruth.Match(loc.Results.ToArray(), sim.Truth.Select(t => new TruePosition(t.Frame, t.X, t.Y)).ToList(), 1.0);
    }

    [TestCase(0.5, 0.10)]   // the Jaccard gain asked for at each density: edge emitters and close pairs count most here
    [TestCase(1.0, 0.10)]
    [TestCase(2.0, 0.10)]   // and at 2-4 per um2 the noise estimate's clipping step (the MAD alone is raised by the emitters)
    [TestCase(4.0, 0.01)]
    public void JaccardIsBetterThanBeforeAtEveryDensity(double perUm2, double minGain)
    {
        var sim = Stack(perUm2, 40, (int)(perUm2 * 100) + 7);
        var before = Score(sim, Before());
        var now = Score(sim, Now());
        TestContext.Out.WriteLine($"{perUm2}/um2, {now.Truths} emitter-frames: before recall {before.Recall:F3} precision {before.Precision:F3} " +
            $"Jaccard {before.Jaccard:F3}; now recall {now.Recall:F3} precision {now.Precision:F3} Jaccard {now.Jaccard:F3}, " +
            $"RMSE {100 * now.RmseX:F1}/{100 * now.RmseY:F1} nm (before {100 * before.RmseX:F1}/{100 * before.RmseY:F1})");
        Assert.That(now.Truths, Is.GreaterThan(perUm2 * 40 * 40 * 0.8));
        Assert.That(now.Jaccard, Is.GreaterThanOrEqualTo(before.Jaccard + minGain));
        Assert.That(now.Recall, Is.GreaterThan(before.Recall));
        Assert.That(Math.Max(now.RmseX, now.RmseY), Is.LessThanOrEqualTo(Math.Max(before.RmseX, before.RmseY) * 1.05));
    }
}

/// <summary>Issue 17's bar on small stacks of the sweep (64 x 64 px, 1500 photons, 10 background photons/px, sigma 1.3 px,
/// emitters anywhere): the multi-emitter defaults against ground truth within 100 nm, and the single-emitter fitter
/// with the spread test (the defaults before) on the same stacks.</summary>
public class CrowdedFrameTests
{
    private static MatchResult Score(SimulationResult sim, LocalizerSettings s)
    {
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(s);
        loc.Run(src);
        return GroundTruth.Match(loc.Results.ToArray(), sim.Truth.Select(t => new TruePosition(t.Frame, t.X, t.Y)).ToList(), 1.0);
    }

    // The bars are issue 17's; measured on these 30-frame stacks 0.970 / 0.927 / 0.803 / 0.700
    // (on the 100-frame stacks of bench/density/sweep.sh: 0.971 / 0.922 / 0.811 / 0.692).
    [TestCase(1.0, 0.92)]
    [TestCase(2.0, 0.87)]
    [TestCase(4.0, 0.78)]
    [TestCase(6.0, 0.65)]
    public void JaccardMeetsTheBarAtEachDensity(double perUm2, double bar)
    {
        var sim = DensitySweepTests.Stack(perUm2, 30, (int)(perUm2 * 100) + 11);
        var now = Score(sim, new LocalizerSettings { OffsetAdu = 100, Backend = BackendKind.Cpu });
        var single = Score(sim, new LocalizerSettings { OffsetAdu = 100, Backend = BackendKind.Cpu, MultiEmitter = false, CameraNoiseDetection = false });
        TestContext.Out.WriteLine($"{perUm2}/um2, {now.Truths} emitter-frames: multi-emitter recall {now.Recall:F3} precision {now.Precision:F3} " +
            $"Jaccard {now.Jaccard:F3} RMSE {100 * now.RmseX:F1}/{100 * now.RmseY:F1} nm; single-emitter Jaccard {single.Jaccard:F3}");
        Assert.That(now.Jaccard, Is.GreaterThanOrEqualTo(bar));
        Assert.That(now.Jaccard, Is.GreaterThan(single.Jaccard));
    }

    [TestCase(0.9)]
    [TestCase(1.3)]
    [TestCase(1.8)]
    public void PsfSigmaIsEstimatedFromTheFirstFramesWithin3Percent(double sigma)
    {
        var sim = Simulator.Run(new SimulationSettings
        {
            Width = 64, Height = 64, Frames = 30, PixelSizeNm = 100, DensityPerUm2 = 1.0 / 0.05, EdgeMarginPx = 0,
            Photons = 1500, BackgroundPhotons = 10, PsfSigmaPx = sigma, OffsetAdu = 100, OffToOn = 0.05 / 0.95, OnToOff = 1, Seed = 5,
        });
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, Backend = BackendKind.Cpu, EstimatePsfSigma = true });
        loc.Run(src);
        TestContext.Out.WriteLine(loc.Summary.Describe());
        Assert.That(loc.Summary.EstimatedPsfSigmaPx, Is.EqualTo(sigma).Within(3).Percent);
        Assert.That(loc.Settings.PsfSigmaPx, Is.EqualTo(loc.Summary.EstimatedPsfSigmaPx));
    }

    [Test]
    public void SparseStacksKeepTheSpreadTestAndCrowdedOnesTheCameraNoise()
    {
        static PipelineSummary Run(double perUm2)
        {
            var sim = DensitySweepTests.Stack(perUm2, 10, 3);
            using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
            using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, Backend = BackendKind.Cpu });
            loc.Run(src);
            return loc.Summary;
        }
        var sparse = Run(0.1);
        var crowded = Run(4);
        TestContext.Out.WriteLine($"sparse: {sparse.Describe()}\ncrowded: {crowded.Describe()}");
        Assert.That(sparse.SpreadTestFrames, Is.EqualTo(10));
        Assert.That(crowded.SpreadTestFrames, Is.EqualTo(0));
    }
}
