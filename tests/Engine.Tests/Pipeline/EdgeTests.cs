using MaLiang.Engine.Evaluate;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Pipeline;

/// <summary>Emitters at the frame edge are fitted in a ROI shifted inside the frame (RoiBatch.Place), not dropped.</summary>
public class EdgeTests
{
    /// <summary>Small 32x32 frames (as benchmark sets and cropped regions) with 5 isolated emitters each, anywhere in the
    /// frame (no edge margin): a new layout every frame.</summary>
    internal static SimulationResult Isolated(int frames, int seed, int size = 32)
    {
        var all = new ushort[frames * size * size];
        var truth = new List<TruthEmitter>();
        for (int f = 0; f < frames; f++)
        {
            var one = Simulator.Run(new SimulationSettings
            {
                Width = size, Height = size, Frames = 1, EmitterCount = 5, EdgeMarginPx = 0, MinSeparationPx = 8,
                Photons = 1000, BackgroundPhotons = 10, PsfSigmaPx = 1.3, OffsetAdu = 100, OffToOn = 1, OnToOff = 0, Seed = seed + f,
            });
            one.Frames.CopyTo(all, f * size * size);
            foreach (var t in one.Truth) truth.Add(t with { Frame = f });
        }
        return new SimulationResult { Frames = all, Width = size, Height = size, FrameCount = frames, Truth = truth, Emitters = [] };
    }

    private static (MatchResult M, Localization[] Locs, List<TruePosition> Truth, PipelineSummary S) Run(SimulationResult sim, bool dropAtEdge)
    {
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, DropAtEdge = dropAtEdge, Backend = BackendKind.Cpu });
        loc.Run(src);
        var truth = sim.Truth.Select(t => new TruePosition(t.Frame, t.X, t.Y, t.Photons)).ToList();
        var locs = loc.Results.ToArray();
        return (GroundTruth.Match(locs, truth, 1.0), locs, truth, loc.Summary);
    }

    private static double EdgeDistance(TruePosition t, int size) => Math.Min(Math.Min(t.X, size - t.X), Math.Min(t.Y, size - t.Y));

    [Test]
    public void IsolatedEmittersAnywhereInTheFrameAreFoundAtTheCrlb()
    {
        var sim = Isolated(300, 500);
        var (m, locs, truth, summary) = Run(sim, dropAtEdge: false);
        TestContext.Out.WriteLine(summary.Describe());
        Assert.That(m.Truths, Is.EqualTo(1500));
        Assert.That(m.Recall, Is.GreaterThanOrEqualTo(0.97), "all emitters");
        Assert.That(m.Precision, Is.GreaterThanOrEqualTo(0.99));
        Assert.That(summary.DroppedAtEdge, Is.EqualTo(0));

        // Emitters within 1 px of an edge: found, and as precise as the CRLB of the ROI they are fitted in (shifted).
        var edge = Enumerable.Range(0, truth.Count).Where(i => EdgeDistance(truth[i], 32) < 1).ToHashSet();
        var pairs = m.Pairs.Where(p => edge.Contains(p.Truth)).ToList();
        double se = 0, crlb = 0;
        Span<float> c = stackalloc float[5];
        foreach (var (l, t) in pairs)
        {
            var tp = truth[t];
            se += (Sq(locs[l].X - tp.X) + Sq(locs[l].Y - tp.Y)) / 2;
            var (left, top, _) = RoiBatch.Place((int)tp.X, (int)tp.Y, 32, 32, 7);
            CpuFitBackend.Crlb(7, (float)(tp.X - left), (float)(tp.Y - top), 1000, 10, 1.3f, false, c);
            crlb += (c[0] * c[0] + c[1] * c[1]) / 2;
        }
        double ratio = Math.Sqrt(se / pairs.Count) / Math.Sqrt(crlb / pairs.Count);
        TestContext.Out.WriteLine($"recall {m.Recall:F4}; within 1 px of an edge: {edge.Count} emitters, recall {pairs.Count / (double)edge.Count:F4}, RMSE / sqrt(CRLB) {ratio:F3}");
        Assert.That(edge.Count, Is.GreaterThan(150));
        Assert.That(pairs.Count / (double)edge.Count, Is.GreaterThanOrEqualTo(0.97), "edge emitters");
        Assert.That(ratio, Is.LessThanOrEqualTo(1.15));
    }

    [Test]
    public void DropAtEdgeRestoresTheOldBehaviour()
    {
        var sim = Isolated(100, 900);
        var (m, _, truth, summary) = Run(sim, dropAtEdge: true);
        // A 3 px band on every side of a 32 px frame: about 1 - (26/32)^2 = 34% of the emitters are lost.
        int inside = truth.Count(t => t.X >= 3 && t.X < 29 && t.Y >= 3 && t.Y < 29);
        TestContext.Out.WriteLine($"{summary.Describe()}; recall {m.Recall:F4}, {inside} of {truth.Count} emitters 3 px from the edges");
        Assert.That(summary.DroppedAtEdge, Is.GreaterThan(100));
        Assert.That(m.Recall, Is.LessThan(0.8));
        // (a maximum can land one pixel further in than its emitter, which keeps a few from the band)
        Assert.That(m.Matched, Is.InRange(inside - 5, inside + 30));
    }

    private static double Sq(double v) => v * v;
}
