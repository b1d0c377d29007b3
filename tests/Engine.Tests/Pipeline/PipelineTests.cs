using System.Globalization;
using MaLiang.Engine.Evaluate;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Pipeline;

public class PipelineTests
{
    private static string Data(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "data", name);

    private static SimulationResult Sparse(int frames, int emitters, double photons, double background, int seed) => Simulator.Run(new SimulationSettings
    {
        Width = 256, Height = 256, Frames = frames, EmitterCount = emitters, Photons = photons, BackgroundPhotons = background,
        PsfSigmaPx = 1.3, OffsetAdu = 100, Seed = seed, MinSeparationPx = 9, EdgeMarginPx = 5,
        OffToOn = 0.5, OnToOff = 0.5, // each emitter blinks: different subsets per frame
    });

    private static Localization[] Localize(SimulationResult sim, LocalizerSettings s)
    {
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(s);
        loc.Run(src);
        return loc.Results.ToArray();
    }

    private static List<TruePosition> Truth(SimulationResult sim) => sim.Truth.Select(t => new TruePosition(t.Frame, t.X, t.Y, t.Photons)).ToList();

    [Test]
    public void RecallAndPrecisionAt1000Photons()
    {
        var sim = Sparse(40, 120, 1000, 10, 11);
        var locs = Localize(sim, new LocalizerSettings { OffsetAdu = 100 });
        var m = GroundTruth.Match(locs, Truth(sim), 1.0);
        TestContext.Out.WriteLine($"recall {m.Recall:F4} precision {m.Precision:F4} of {m.Truths} truths, rmse {m.RmseX:F4}/{m.RmseY:F4} px");
        Assert.That(m.Truths, Is.GreaterThan(2000));
        Assert.That(m.Recall, Is.GreaterThanOrEqualTo(0.98));
        Assert.That(m.Precision, Is.GreaterThanOrEqualTo(0.99));
    }

    [Test]
    public void WholePipelinePrecisionIsNearTheCrlb()
    {
        var sim = Sparse(30, 120, 2000, 10, 12);
        var locs = Localize(sim, new LocalizerSettings { OffsetAdu = 100 });
        var m = GroundTruth.Match(locs, Truth(sim), 1.0);
        double crlb = Math.Sqrt(m.Pairs.Average(p => (double)locs[p.Loc].UncertaintyX * locs[p.Loc].UncertaintyX));
        TestContext.Out.WriteLine($"rmse x {m.RmseX:F4} px, mean sqrt(CRLB) {crlb:F4} px");
        Assert.That(m.RmseX / crlb, Is.InRange(0.9, 1.1));
        Assert.That(Math.Abs(m.BiasX), Is.LessThan(0.01));
        Assert.That(Math.Abs(m.BiasY), Is.LessThan(0.01));
    }

    [Test]
    public void SameLocalizationsAtOneAndTwoThreads()
    {
        var sim = Sparse(12, 80, 1500, 10, 13);
        var a = Localize(sim, new LocalizerSettings { OffsetAdu = 100, Threads = 1 });
        var b = Localize(sim, new LocalizerSettings { OffsetAdu = 100, Threads = 2 });
        Assert.That(a.Length, Is.GreaterThan(300));
        Assert.That(b, Is.EqualTo(a));
        Assert.That(a.Select(l => l.Frame), Is.Ordered, "frame order");
    }

    [Test]
    public void PushingFrameByFrameEqualsOneRun()
    {
        var sim = Sparse(9, 60, 1500, 10, 14);
        var whole = Localize(sim, new LocalizerSettings { OffsetAdu = 100 });
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100 });
        int px = sim.Width * sim.Height;
        for (int f = 0; f < sim.FrameCount; f++)
        {
            using var one = new MemoryFrameSource(sim.Frames.AsMemory(f * px, px), sim.Width, sim.Height, 1);
            loc.Push(one, 0, 1);
        }
        Assert.That(loc.FramesProcessed, Is.EqualTo(9));
        Assert.That(loc.Results.ToArray(), Is.EqualTo(whole));
    }

    [Test]
    public void CancellationStopsTheRun()
    {
        var sim = Sparse(64, 40, 1500, 10, 15);
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100 });
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.FramesDone > 0) cts.Cancel(); });
        Assert.That(() => loc.Run(src, null, progress, cts.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(loc.FramesProcessed, Is.LessThan(64));
    }

    [Test]
    public void ABlankFrameAfterTheFirstIsCountedNotFatal()
    {
        // A dropped camera frame (all zero, below the 100 ADU offset) in the middle of a run must not end it.
        var sim = Sparse(6, 40, 1500, 10, 16);
        int px = sim.Width * sim.Height;
        var frames = (ushort[])sim.Frames.Clone();
        Array.Clear(frames, 3 * px, px);
        using var src = new MemoryFrameSource(frames, sim.Width, sim.Height, sim.FrameCount, "gap");
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100 });
        loc.Run(src);
        Assert.That(loc.Summary.BlankFrames, Is.EqualTo(1));
        Assert.That(loc.Summary.Frames, Is.EqualTo(6));
        Assert.That(loc.Results.Count(l => l.Frame == 3), Is.EqualTo(0));
        Assert.That(loc.Results.Count(l => l.Frame == 4), Is.GreaterThan(5));
        Assert.That(loc.Summary.Describe(), Does.Contain("1 blank frames"));
    }

    [Test]
    public void FramesSmallerThanTheRoiAreRejected()
    {
        using var src = new MemoryFrameSource(new ushort[5 * 5], 5, 5, 1, "tiny");
        using var loc = new Localizer(new LocalizerSettings());
        var ex = Assert.Throws<MaLiangException>(() => loc.Run(src))!;
        Assert.That(ex.Message, Does.Contain("tiny").And.Contain("smaller than the 7x7 ROI"));
    }

    [Test]
    public void PicassoSpotsAreFoundAndAgreeWithPicassoMle()
    {
        // Picasso's test movie: sigma 0.82 px, baseline 0, sensitivity 1, gain 1 (README of the data).
        using var stack = TiffStack.Open(Data("picasso_testdata.tif"));
        using var loc = new Localizer(new LocalizerSettings { PsfSigmaPx = 0.82, PixelSizeNm = 160 });
        loc.Run(stack);
        var ours = loc.Results.ToArray();
        var picasso = ReadCsv(Data("picasso_gaussmle_sigma_box7_ng5000_eps1e-3_maxit100.csv"));
        Assert.That(picasso.Count, Is.EqualTo(30));
        double worst = 0;
        foreach (var p in picasso)
        {
            // Picasso puts pixel centres at integers: ours = theirs + 0.5.
            double px = p["x"] + 0.5, py = p["y"] + 0.5;
            var near = ours.Where(l => l.Frame == (int)p["frame"]).Select(l => Math.Sqrt(Sq(l.X - px) + Sq(l.Y - py))).DefaultIfEmpty(99).Min();
            worst = Math.Max(worst, near);
        }
        TestContext.Out.WriteLine($"largest distance to Picasso's MLE: {worst:F5} px");
        Assert.That(worst, Is.LessThan(0.02));
    }

    [Test]
    public void TubulinFrameMatchesAtLeast42Of49()
    {
        // EPFL Tubulins I frame 20: offset 100 ADU, pixel 150 nm. Emitters up to 260 nm out of focus sit in clusters:
        // keep overlapping candidates (neighbour subtraction separates them) and fix sigma at the in-focus width.
        using var stack = TiffStack.Open(Data("tubulins1_00020.tif"));
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, PixelSizeNm = 150, PsfSigmaPx = 1.0, FixedSigma = true, RejectOverlapping = false });
        loc.Run(stack);
        var truth = ReadCsv(Data("tubulins1_00020.csv")).Select(r => new TruePosition(0, r["xnano"] / 150, r["ynano"] / 150)).ToList();
        Assert.That(truth.Count, Is.EqualTo(49));
        var m = GroundTruth.Match(loc.Results.ToArray(), truth, 1.0); // 150 nm
        TestContext.Out.WriteLine($"matched {m.Matched} of 49 within 150 nm; {m.Localizations} localizations");
        Assert.That(m.Matched, Is.GreaterThanOrEqualTo(42));
    }

    [Test]
    public void TubulinFrameAtDefaultSettingsFinds44Of49WithAtMost53Localizations()
    {
        // The settings a new user gives (offset, pixel size, in-focus PSF sigma); everything else default: overlapping
        // candidates refitted after neighbour subtraction (sigma fixed in crowded ROIs), the residual searched for merged
        // emitters, fits below 5x their photon uncertainty dropped (the high-background band's noise maxima).
        using var stack = TiffStack.Open(Data("tubulins1_00020.tif"));
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, PixelSizeNm = 150, PsfSigmaPx = 1.0 });
        loc.Run(stack);
        var truth = ReadCsv(Data("tubulins1_00020.csv")).Select(r => new TruePosition(0, r["xnano"] / 150, r["ynano"] / 150)).ToList();
        var m = GroundTruth.Match(loc.Results.ToArray(), truth, 1.0); // 150 nm
        TestContext.Out.WriteLine($"matched {m.Matched} of 49 within 150 nm; {m.Localizations} localizations; RMSE {m.RmseX * 150:F1}/{m.RmseY * 150:F1} nm; {loc.Summary.Describe()}");
        Assert.That(m.Matched, Is.GreaterThanOrEqualTo(44));
        Assert.That(m.Localizations, Is.LessThanOrEqualTo(53));

        // As before this change (edge candidates dropped, overlapping ones rejected, every fit kept): fewer found, more false.
        using var old = new Localizer(new LocalizerSettings { OffsetAdu = 100, PixelSizeNm = 150, PsfSigmaPx = 1.0, DropAtEdge = true, RejectOverlapping = true, MinPhotonSnr = 0, NoiseClip = false });
        old.Run(stack);
        var mo = GroundTruth.Match(old.Results.ToArray(), truth, 1.0);
        TestContext.Out.WriteLine($"before: matched {mo.Matched} of 49; {mo.Localizations} localizations");
        Assert.That(mo.Matched, Is.LessThan(m.Matched));
        Assert.That(mo.Localizations - mo.Matched, Is.GreaterThan(m.Localizations - m.Matched));
    }

    private static double Sq(double v) => v * v;

    private static List<Dictionary<string, double>> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var head = lines[0].Split(',').Select(h => h.Trim()).ToArray();
        return lines.Skip(1).Where(l => l.Trim().Length > 0).Select(l =>
        {
            var v = l.Split(',');
            var d = new Dictionary<string, double>();
            for (int i = 0; i < head.Length; i++) d[head[i]] = double.Parse(v[i].Trim(), CultureInfo.InvariantCulture);
            return d;
        }).ToList();
    }
}

/// <summary>Reports progress on the pushing thread, as it happens (System.Progress would post to the thread pool).</summary>
internal sealed class SyncProgress(Action<PipelineProgress> a) : IProgress<PipelineProgress>
{
    public void Report(PipelineProgress value) => a(value);
}
