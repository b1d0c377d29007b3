using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Tests.Fit;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Detect;

public class ResidualSearchTests
{
    private const float Sigma = 1.3f, Background = 10;

    /// <summary>Frames of 32 x 32 px, one pair each: a bright emitter near the centre and a faint one
    /// <paramref name="distance"/> PSF sigmas from it in a random direction (sub-pixel positions random too).</summary>
    private static (float[] Frames, (float X, float Y, float N)[][] Truth) Pairs(int frames, float bright, float faint, float distance, int seed)
    {
        const int size = 32;
        var rng = new Random(seed);
        var all = new float[frames * size * size];
        var truth = new (float X, float Y, float N)[frames][];
        for (int f = 0; f < frames; f++)
        {
            float ax = 15 + (float)rng.NextDouble(), ay = 15 + (float)rng.NextDouble(), phi = (float)(2 * Math.PI * rng.NextDouble());
            truth[f] = [(ax, ay, bright), (ax + distance * Sigma * MathF.Cos(phi), ay + distance * Sigma * MathF.Sin(phi), faint)];
            GroupFitTests.Box(size, size, Background, truth[f], Sigma, seed * 1000 + f).CopyTo(all, f * size * size);
        }
        return (all, truth);
    }

    private static Localization[] Run(float[] frames, int count, bool residual)
    {
        using var src = new MemoryFrameSource(frames, 32, 32, count);
        using var loc = new Localizer(new LocalizerSettings { PsfSigmaPx = Sigma, Backend = BackendKind.Cpu, Threads = 1, ResidualSearch = residual });
        loc.Run(src);
        return loc.Results.ToArray();
    }

    private static bool Near(Localization[] locs, int frame, float x, float y, float tol) =>
        locs.Any(l => l.Frame == frame && Math.Abs(l.X - x) <= tol && Math.Abs(l.Y - y) <= tol);

    /// <summary>Frames of the sparse kind: isolated emitters, every one's fit good.</summary>
    private static FitResult Emitter(float x, float y, float n, int groupSize = 2) =>
        new() { X = x, Y = y, Photons = n, Background = Background, Sigma = Sigma, Status = FitStatus.Converged, GroupSize = groupSize };

    [Test]
    public void FaintEmitterBesideABrightOneThatDetectionMissesIsFoundByTheResidualPass()
    {
        // 8000 and 500 photons, 2 sigma apart: the detection finds one maximum for the pair in every frame. The
        // multi-emitter stage finds the faint one in most frames by itself (measured 22 of 30); the residual pass, which
        // searches the frame minus the fitted bright one, in 28.
        const int n = 30;
        var (frames, truth) = Pairs(n, 8000, 500, 2, 7);
        var det = new FrameDetector(new LocalizerSettings { PsfSigmaPx = Sigma });
        var cands = new List<Candidate>();
        int missed = 0;
        for (int f = 0; f < n; f++)
        {
            det.Detect(frames.AsSpan(f * 1024, 1024), 32, 32, cands);
            if (!cands.Any(c => Dist(c.X + 0.5f, c.Y + 0.5f, truth[f][1]) <= 1.5f)) missed++;
        }
        var on = Run(frames, n, residual: true);
        var off = Run(frames, n, residual: false);
        int foundOn = 0, foundOff = 0, otherOn = 0, otherOff = 0;
        double err2 = 0;
        for (int f = 0; f < n; f++)
        {
            var b = truth[f][1];
            var near = on.Where(l => l.Frame == f && Dist(l.X, l.Y, b) <= 1).ToList();
            if (near.Count > 0) { foundOn++; err2 += near.Min(l => Dist(l.X, l.Y, b) * Dist(l.X, l.Y, b)); }
            if (off.Any(l => l.Frame == f && Dist(l.X, l.Y, b) <= 1)) foundOff++;
            otherOn += on.Count(l => l.Frame == f && Dist(l.X, l.Y, b) > 1 && Dist(l.X, l.Y, truth[f][0]) > 1);
            otherOff += off.Count(l => l.Frame == f && Dist(l.X, l.Y, b) > 1 && Dist(l.X, l.Y, truth[f][0]) > 1);
        }
        double rms = Math.Sqrt(err2 / Math.Max(foundOn, 1));
        TestContext.Out.WriteLine($"detection missed the faint one in {missed}/{n}; found without the pass {foundOff}, with it {foundOn} " +
            $"(RMS distance {rms:F3} px); other localizations {otherOff} / {otherOn}");
        Assert.That(missed, Is.GreaterThanOrEqualTo(27));
        Assert.That(foundOn, Is.GreaterThanOrEqualTo(foundOff + 4));
        Assert.That(foundOn, Is.GreaterThanOrEqualTo(27));
        Assert.That(rms, Is.LessThan(0.5));   // a 500-photon emitter beside an 8000-photon one: a position, not just a detection
        Assert.That(otherOn, Is.LessThanOrEqualTo(otherOff));
    }

    [Test]
    public void SearchGivenTheBrightEmitterFindsTheFaintOneAndTilesEqualTheWholeFrame()
    {
        // Four pairs in a 64 x 64 frame; the search is given the bright ones (their true parameters) and must find every
        // faint one, within a pixel. The same emitters plus four empty ones far away make the zones cover more than half
        // the frame, so the whole frame is filtered instead of tiles: the seeds near the pairs must be the same.
        const int size = 64;
        var rng = new Random(3);
        var centres = new[] { (12f, 12f), (50f, 14f), (14f, 48f), (45f, 45f) };
        var pairs = new List<(float X, float Y, float N)>();
        foreach (var (cx, cy) in centres)
        {
            float phi = (float)(2 * Math.PI * rng.NextDouble());
            pairs.Add((cx + (float)rng.NextDouble(), cy + (float)rng.NextDouble(), 8000));
            pairs.Add((pairs[^1].X + 2 * Sigma * MathF.Cos(phi), pairs[^1].Y + 2 * Sigma * MathF.Sin(phi), 800));
        }
        var frame = GroupFitTests.Box(size, size, Background, pairs.ToArray(), Sigma, 11);
        var bright = Enumerable.Range(0, 4).Select(i => Emitter(pairs[2 * i].X, pairs[2 * i].Y, pairs[2 * i].N)).ToArray();
        var search = new ResidualSearch(new LocalizerSettings { PsfSigmaPx = Sigma });
        // The frame's maxima floor of the camera-noise test, as the detection sets it.
        float floor = new FrameDetector(new LocalizerSettings { PsfSigmaPx = Sigma, AutoDetectionTest = false }).Detect(frame, size, size, new List<Candidate>()).Threshold;
        var tiles = new List<Candidate>();
        search.Find(frame, size, size, bright, floor, false, 0, default, tiles);
        var padded = bright.Concat(new[] { (30f, 2f), (2f, 30f), (62f, 30f), (30f, 62f) }.Select(p => Emitter(p.Item1, p.Item2, 0))).ToArray();
        var whole = new List<Candidate>();
        search.Find(frame, size, size, padded, floor, false, 0, default, whole);
        TestContext.Out.WriteLine($"tiles: {string.Join("; ", tiles)}\nwhole frame: {string.Join("; ", whole)}");
        for (int i = 0; i < 4; i++)
        {
            var b = pairs[2 * i + 1];
            Assert.That(tiles.Count(c => Dist(c.X + 0.5f, c.Y + 0.5f, b) <= 1), Is.EqualTo(1), $"faint emitter {i} at ({b.X:F2}, {b.Y:F2})");
        }
        Assert.That(tiles.Count, Is.EqualTo(4), "nothing else");
        var nearPairs = whole.Where(c => centres.Any(p => Math.Abs(c.X - p.Item1) < 8 && Math.Abs(c.Y - p.Item2) < 8)).ToList();
        Assert.That(nearPairs.Select(c => (c.X, c.Y)), Is.EquivalentTo(tiles.Select(c => (c.X, c.Y))));
        for (int i = 0; i < 4; i++)
            Assert.That(nearPairs.Single(c => c.X == tiles[i].X && c.Y == tiles[i].Y).Value, Is.EqualTo(tiles[i].Value).Within(1e-3).Percent);
    }

    [Test]
    public void IsolatedEmittersLeaveNoSignificantResidual()
    {
        // 200 frames of 5 isolated 1000-photon emitters (anywhere, edges included), every zone searched (the emitters are
        // given as joint-fit members at their true parameters): the test at the detection's threshold finds nothing.
        var sim = Pipeline.EdgeTests.Isolated(200, 900);
        var settings = new LocalizerSettings { PsfSigmaPx = Sigma, OffsetAdu = 100 };
        var camera = Camera.CameraModel.From(settings);
        var search = new ResidualSearch(settings);
        var photons = new float[32 * 32];
        var seeds = new List<Candidate>();
        var det = new FrameDetector(settings);
        var cands = new List<Candidate>();
        int total = 0;
        for (int f = 0; f < 200; f++)
        {
            var d = det.Detect(sim.Frames.AsSpan(f * 1024, 1024), 32, 32, cands);
            det.Photons.CopyTo(photons);
            var emitters = sim.Truth.Where(t => t.Frame == f).Select(t => Emitter((float)t.X, (float)t.Y, (float)t.Photons)).ToArray();
            total += search.Find(photons, 32, 32, emitters, d.Threshold, d.Stats.SpreadTestFrames > 0, 0, default, seeds);
        }
        TestContext.Out.WriteLine($"{total} seeds in 200 frames");
        Assert.That(total, Is.EqualTo(0));
    }

    [Test]
    public void SparseStackIsLocalizedTheSameWithTheResidualPass()
    {
        // The pass may only add where the residual is significant: on isolated emitters the output is the same.
        var sim = Pipeline.EdgeTests.Isolated(100, 700);
        Localization[] Locs(bool residual)
        {
            using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
            using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, PsfSigmaPx = Sigma, Backend = BackendKind.Cpu, ResidualSearch = residual });
            loc.Run(src);
            return loc.Results.ToArray();
        }
        var on = Locs(true); var off = Locs(false);
        Assert.That(on.Length, Is.EqualTo(off.Length));
        Assert.That(on.Select(l => (l.Frame, l.X, l.Y, l.Photons)), Is.EqualTo(off.Select(l => (l.Frame, l.X, l.Y, l.Photons))));
    }

    private static float Dist(float x, float y, (float X, float Y, float N) t) => MathF.Sqrt((x - t.X) * (x - t.X) + (y - t.Y) * (y - t.Y));
}
