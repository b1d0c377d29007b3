using MaLiang.Engine;
using MaLiang.Engine.Post;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Post;

public class DriftTests
{
    private const int Frames = 5000;

    [Test]
    public void FiducialDriftLeavesUnder2NmRms()
    {
        // 1 um of smooth drift over 5000 frames, pixel 100 nm; a bright bead (5 nm precision) in 95% of frames
        // plus 400 blinking molecules (1000 photons, 10 nm) on for a few frames each.
        var r = new Random(1);
        var locs = new List<Localization>();
        for (int f = 0; f < Frames; f++)
        {
            if (r.NextDouble() < 0.05) continue;
            var (dx, dy) = Sim.Drift(f, Frames);
            locs.Add(Sim.Loc(f, 20.3 + dx + 0.05 * Sim.Gauss(r), 21.7 + dy + 0.05 * Sim.Gauss(r), 8000, 0.05));
        }
        for (int m = 0; m < 400; m++)
        {
            double x = 40 * r.NextDouble(), y = 40 * r.NextDouble();
            int start = r.Next(Frames - 10), len = 1 + r.Next(5);
            for (int f = start; f < start + len; f++)
            {
                var (dx, dy) = Sim.Drift(f, Frames);
                locs.Add(Sim.Loc(f, x + dx + 0.1 * Sim.Gauss(r), y + dy + 0.1 * Sim.Gauss(r), 1000, 0.1));
            }
        }
        var arr = locs.OrderBy(l => l.Frame).ToArray();
        var drift = DriftCorrection.Fiducial(arr, new FiducialDriftSettings { FrameCount = Frames });

        Assert.That(drift.FrameCount, Is.EqualTo(Frames));
        Assert.That(drift.FiducialX, Is.EqualTo(20.3).Within(0.1), "the bead, not a blinking molecule, was used");
        // the fiducial drift is zero on average over the first 10 frames: compare with the truth on the same reference
        double rx = 0, ry = 0;
        for (int f = 0; f < 10; f++) { rx += Sim.Drift(f, Frames).dx / 10; ry += Sim.Drift(f, Frames).dy / 10; }
        var (rms, offset) = Sim.Residual(drift.DxPx, drift.DyPx, f => (Sim.Drift(f, Frames).dx - rx, Sim.Drift(f, Frames).dy - ry));
        TestContext.Out.WriteLine($"fiducial residual rms {rms * 100:F2} nm, offset {offset * 100:F2} nm");
        Assert.That(rms * 100, Is.LessThan(2.0), "RMS residual drift in nm");
        // the one-sided local fit at frame 0 has sd ~ 2 sigma / sqrt(100) ~ 1 nm per axis
        Assert.That(offset * 100, Is.LessThan(4.0), "drift is relative to the first frames");

        var corrected = drift.Apply(arr);
        Assert.That(corrected, Has.Length.EqualTo(arr.Length));
        var beadLast = corrected.Last(l => l.Photons == 8000);
        Assert.That(beadLast.X, Is.EqualTo(20.3).Within(0.2));
        Assert.That(beadLast.Y, Is.EqualTo(21.7).Within(0.2));
    }

    [Test]
    public void FiducialWithoutBeadIsAnError()
    {
        var r = new Random(2);
        var locs = Enumerable.Range(0, 1000).Select(i => Sim.Loc(i, 40 * r.NextDouble(), 40 * r.NextDouble())).ToArray();
        var ex = Assert.Throws<MaLiangException>(() => DriftCorrection.Fiducial(locs, new FiducialDriftSettings()))!;
        Assert.That(ex.Message, Does.Contain("no fiducial"));
    }

    [Test]
    public void RccOnFilamentsLeavesUnder5NmRms()
    {
        // 8 filaments in a 32 x 32 px field (3.2 um), 50 000 localizations with 10 nm precision over 5000 frames, no fiducials.
        var r = new Random(3);
        var fil = Sim.Filaments(r, 8, 32);
        var locs = new Localization[50_000];
        for (int i = 0; i < locs.Length; i++)
        {
            int f = i * Frames / locs.Length;
            var (x0, y0, x1, y1) = fil[r.Next(fil.Length)];
            double t = r.NextDouble();
            var (dx, dy) = Sim.Drift(f, Frames);
            locs[i] = Sim.Loc(f, x0 + t * (x1 - x0) + dx + 0.1 * Sim.Gauss(r), y0 + t * (y1 - y0) + dy + 0.1 * Sim.Gauss(r));
        }
        var drift = DriftCorrection.Rcc(locs, new RccSettings { FrameCount = Frames, Segments = 20, Magnification = 4, MaxShiftPx = 12 });
        var (rms, offset) = Sim.Residual(drift.DxPx, drift.DyPx, f => Sim.Drift(f, Frames));
        TestContext.Out.WriteLine($"rcc residual rms {rms * 100:F2} nm, offset {offset * 100:F2} nm");
        Assert.That(rms * 100, Is.LessThan(5.0), "RMS residual drift in nm");
        Assert.That(drift.SegmentCentres, Has.Length.EqualTo(20));
    }

    [Test]
    public void SplineInterpolatesACubicExactlyInside()
    {
        // a natural spline reproduces a straight line exactly, including the linear extrapolation
        double[] t = [10, 30, 50, 70, 90];
        double[] v = t.Select(x => 2 + 0.5 * x).ToArray();
        var s = DriftCorrection.Spline(t, v, 100);
        for (int f = 0; f < 100; f++) Assert.That(s[f], Is.EqualTo(2 + 0.5 * f).Within(1e-9));
    }

    [Test]
    public void LeastSquaresRejectsAnOutlierPair()
    {
        double[] d = [0, 1, 2.5, 3, 5];
        var pairs = new List<(int i, int j, double dx, double dy)>();
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++) pairs.Add((i, j, d[j] - d[i] + (i == 1 && j == 3 ? 4.0 : 0.0), 0));
        var (sol, soly, kept) = DriftCorrection.SolveShifts(5, pairs, 0.2);
        Assert.That(kept, Is.EqualTo(pairs.Count - 1), "only the bad pair is dropped");
        for (int i = 0; i < 5; i++) Assert.That(sol[i], Is.EqualTo(d[i]).Within(1e-9));
        Assert.That(soly, Is.All.EqualTo(0.0).Within(1e-12));
    }

    [Test]
    public void DriftCsvRoundTrips()
    {
        var d = new DriftResult([0, 0.5, 1.25], [0, -0.1, 0.2]);
        string path = Path.Combine(Path.GetTempPath(), $"maliang-drift-{Guid.NewGuid():N}.csv");
        try
        {
            PostCsv.WriteDrift(path, d, 100);
            var lines = File.ReadAllLines(path);
            Assert.That(lines[0], Is.EqualTo("\"frame\",\"dx [nm]\",\"dy [nm]\""));
            Assert.That(lines[2], Is.EqualTo("2,50,-10"));
            var back = PostCsv.ReadDrift(path, 100);
            Assert.That(back.DxPx, Is.EqualTo(d.DxPx).Within(1e-9));
            Assert.That(back.DyPx, Is.EqualTo(d.DyPx).Within(1e-9));
            var plot = PostPlots.Drift(d, 100, 320, 200);
            Assert.That(plot, Has.Length.EqualTo(320 * 200 * 3));
            Assert.That(plot.Any(b => b != 255), Is.True);
        }
        finally { File.Delete(path); }
    }
}
