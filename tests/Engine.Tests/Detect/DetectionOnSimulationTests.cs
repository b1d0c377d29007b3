using System.Diagnostics;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Detect;

public class DetectionOnSimulationTests
{
    /// <summary>One-to-one greedy matching of candidate pixel centres to truth within maxDist px (closest pairs first).</summary>
    internal static int Matches(IEnumerable<TruthEmitter> truth, List<Candidate> found, double maxDist)
    {
        var t = truth.ToList();
        var pairs = new List<(double d, int ti, int ci)>();
        for (int i = 0; i < t.Count; i++)
            for (int j = 0; j < found.Count; j++)
            {
                double dx = found[j].X + 0.5 - t[i].X, dy = found[j].Y + 0.5 - t[i].Y;
                double d = Math.Sqrt(dx * dx + dy * dy);
                if (d <= maxDist) pairs.Add((d, i, j));
            }
        var usedT = new bool[t.Count];
        var usedC = new bool[found.Count];
        int m = 0;
        foreach (var (_, ti, ci) in pairs.OrderBy(p => p.d))
        {
            if (usedT[ti] || usedC[ci]) continue;
            usedT[ti] = usedC[ci] = true;
            m++;
        }
        return m;
    }

    [TestCase(FilterKind.Maliang)]
    [TestCase(FilterKind.Wavelet)]
    public void RecallAndPrecisionOnSimulatedFrames(FilterKind filter)
    {
        var sim = new SimulationSettings
        {
            Width = 256, Height = 256, Frames = 8, EmitterCount = 50, Photons = 1000, BackgroundPhotons = 10, PsfSigmaPx = 1.3,
            MinSeparationPx = 12, EdgeMarginPx = 8, OffToOn = 1, OnToOff = 0, OffsetAdu = 100, PhotonsPerAdu = 1, Seed = 2024,
        };
        var r = Simulator.Run(sim);
        var settings = new LocalizerSettings { Filter = filter, Threshold = 5, OffsetAdu = 100, RoiSize = 7 };
        var fd = new FrameDetector(settings);
        var found = new List<Candidate>();
        int truthTotal = 0, foundTotal = 0, matched = 0;
        for (int f = 0; f < r.FrameCount; f++)
        {
            fd.Detect(r.Frame(f), r.Width, r.Height, found);
            var truth = r.Truth.Where(t => t.Frame == f).ToList();
            truthTotal += truth.Count; foundTotal += found.Count;
            matched += Matches(truth, found, 1.5);
        }
        Assert.That(truthTotal, Is.EqualTo(50 * 8));
        double recall = (double)matched / truthTotal, precision = (double)matched / foundTotal;
        TestContext.Out.WriteLine($"{filter}: recall {recall:F4}, precision {precision:F4} ({matched}/{truthTotal} true, {foundTotal} found)");
        Assert.That(recall, Is.GreaterThanOrEqualTo(0.98));
        Assert.That(precision, Is.GreaterThanOrEqualTo(0.99));
    }

    /// <summary>Prints single-thread ms per 512x512 frame (100 molecules) for each stage; asserts the detections are right
    /// (timings are reported, not asserted).</summary>
    [Test]
    public void StageTimingsOn512Frames()
    {
        var sim = new SimulationSettings
        {
            Width = 512, Height = 512, Frames = 4, EmitterCount = 100, Photons = 1000, BackgroundPhotons = 10,
            MinSeparationPx = 10, EdgeMarginPx = 8, OffsetAdu = 100, Seed = 5,
        };
        var r = Simulator.Run(sim);
        var fd = new FrameDetector(new LocalizerSettings { OffsetAdu = 100 });
        var found = new List<Candidate>(256);
        var warm = Stopwatch.StartNew();
        for (int i = 0; warm.ElapsedMilliseconds < 500; i++) fd.Detect(r.Frame(i % 4), 512, 512, found);   // warm-up (tiered JIT)
        fd.ResetTimes();
        int matched = 0;
        var sw = Stopwatch.StartNew();
        const int reps = 400;
        for (int i = 0; i < reps; i++)
        {
            fd.Detect(r.Frame(i % 4), 512, 512, found);
            if (i < 4) matched += Matches(r.Truth.Where(t => t.Frame == i), found, 1.5);
        }
        sw.Stop();
        TestContext.Out.WriteLine(fd.Times.ToString());
        TestContext.Out.WriteLine($"filter+noise+detect: {fd.Times.MsPerFrame(fd.Times.FilterTicks + fd.Times.NoiseTicks + fd.Times.DetectTicks):F4} ms/frame; wall {sw.Elapsed.TotalMilliseconds / reps:F4} ms/frame");
        Assert.That(matched, Is.GreaterThanOrEqualTo(392), "recall over 4 frames x 100 molecules");
        Assert.That(fd.Times.Frames, Is.EqualTo(reps));
    }
}
