using MaLiang.Engine.Camera;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;

namespace MaLiang.Engine.Evaluate;

/// <summary>One fit's accuracy on the sCMOS benchmark stack: matched localizations, RMSE and the mean CRLB it reported (px).</summary>
public readonly record struct ScmosFitAccuracy(int Localizations, int Matched, double RmsePx, double CrlbPx)
{
    public double RmseOverCrlb => RmsePx / CrlbPx;
}

/// <summary>The sCMOS likelihood against the plain Poisson one on the same simulated sCMOS stack.</summary>
public sealed record ScmosComparisonResult(int Frames, int Truths, ScmosFitAccuracy Scmos, ScmosFitAccuracy Poisson);

/// <summary>
/// The sCMOS benchmark (issue 14, Huang et al. 2013): a stack simulated from per-pixel maps with
/// <see cref="HotFraction"/> of the pixels at <see cref="HotFactor"/> x the median read-noise variance, localized twice
/// with the same offset and gain maps: with the variance map (sCMOS likelihood) and without (plain Poisson). Isolated
/// emitters on a 12 px grid, shifted by a random sub-pixel amount each frame so that they meet the noisy pixels at every
/// phase. RMSE = sqrt((rmse_x^2 + rmse_y^2) / 2) of the matched localizations (within 1.5 px), CRLB = sqrt of the mean
/// reported CRLB (x and y) over the same ones: the error the fit promises against the error it makes.
/// `maliang bench --scmos-likelihood` prints it; a test asserts it.
/// </summary>
public static class ScmosComparison
{
    public const double HotFraction = 0.05, HotFactor = 10;
    /// <summary>Median read-noise variance (ADU^2) and gain (photons per ADU): 4 ADU rms = 2 photoelectrons rms.</summary>
    public const double MedianVarianceAdu2 = 16, GainPhotonsPerAdu = 0.5, OffsetAdu = 100;
    public const double Photons = 1000, BackgroundPhotons = 10, PsfSigmaPx = 1.3;

    /// <summary>Sensor maps: offset 100 +- 2 ADU, gain 0.5 +- 2.5% photons/ADU, variance 16 ADU^2 +- 20% with a random
    /// <paramref name="hotFraction"/> of the pixels at <paramref name="hotFactor"/> x that median.</summary>
    public static CameraMaps Maps(int width, int height, int seed, double hotFraction = HotFraction, double hotFactor = HotFactor,
                                  double medianVarianceAdu2 = MedianVarianceAdu2)
    {
        var rng = new Sampling(seed);
        int n = width * height;
        var offset = new float[n]; var variance = new float[n]; var gain = new float[n];
        for (int i = 0; i < n; i++)
        {
            offset[i] = (float)(OffsetAdu + 2 * rng.Normal());
            gain[i] = (float)(GainPhotonsPerAdu * (1 + 0.025 * rng.Normal()));
            variance[i] = (float)(medianVarianceAdu2 * (0.8 + 0.4 * rng.Uniform()));
        }
        // Exactly round(hotFraction x n) hot pixels, at distinct random places.
        int hot = (int)Math.Round(hotFraction * n), placed = 0;
        while (placed < hot)
        {
            int i = Math.Min(n - 1, (int)(rng.Uniform() * n));
            if (variance[i] > 2 * medianVarianceAdu2) continue;
            variance[i] = (float)(hotFactor * medianVarianceAdu2);
            placed++;
        }
        return new CameraMaps(width, height, offset, variance, gain);
    }

    /// <summary>Simulates the stack (64 x 64 px, 25 emitters a frame) and localizes it both ways.</summary>
    public static ScmosComparisonResult Run(int frames, int seed, BackendKind backend = BackendKind.Cpu, int threads = 0)
    {
        const int size = 64, pitch = 12;
        var maps = Maps(size, size, seed);
        var positions = new List<EmitterPosition>();
        for (int y = 8; y < size - 6; y += pitch)
            for (int x = 8; x < size - 6; x += pitch) positions.Add(new EmitterPosition(x + 0.5, y + 0.5));
        var jitter = new Sampling(seed + 1);
        var shifts = new (double, double)[frames];
        for (int f = 0; f < frames; f++) shifts[f] = (jitter.Uniform() - 0.5, jitter.Uniform() - 0.5);
        var sim = Simulator.Run(new SimulationSettings
        {
            Width = size, Height = size, Frames = frames, Positions = positions, Drift = f => shifts[f],
            Photons = Photons, BackgroundPhotons = BackgroundPhotons, PsfSigmaPx = PsfSigmaPx,
            OffsetAdu = OffsetAdu, PhotonsPerAdu = GainPhotonsPerAdu, Maps = maps, Seed = seed,
        });
        var truth = sim.Truth.ConvertAll(t => new TruePosition(t.Frame, t.X, t.Y, t.Photons));
        var source = new IO.MemoryFrameSource(sim.Frames, size, size, frames, "scmos-benchmark");
        var withVariance = Localize(source, maps, backend, threads);
        var poissonMaps = new CameraMaps(size, size, maps.OffsetAdu, null, maps.GainPhotonsPerAdu);
        var poisson = Localize(source, poissonMaps, backend, threads);
        return new ScmosComparisonResult(frames, truth.Count, Accuracy(withVariance, truth), Accuracy(poisson, truth));
    }

    private static Localization[] Localize(IO.IFrameSource source, CameraMaps maps, BackendKind backend, int threads)
    {
        var s = new LocalizerSettings
        {
            OffsetAdu = OffsetAdu, PhotonsPerAdu = GainPhotonsPerAdu, PsfSigmaPx = PsfSigmaPx, CameraMaps = maps,
            Backend = backend, Threads = threads,
        };
        using var loc = new Localizer(s);
        loc.Run(source);
        return loc.Results.ToArray();
    }

    private static ScmosFitAccuracy Accuracy(Localization[] locs, List<TruePosition> truth)
    {
        var m = GroundTruth.Match(locs, truth, 1.5);
        double crlb2 = 0;
        foreach (var (l, _) in m.Pairs) crlb2 += (locs[l].UncertaintyX * (double)locs[l].UncertaintyX + locs[l].UncertaintyY * (double)locs[l].UncertaintyY) / 2;
        double crlb = m.Matched == 0 ? double.NaN : Math.Sqrt(crlb2 / m.Matched);
        double rmse = Math.Sqrt((m.RmseX * m.RmseX + m.RmseY * m.RmseY) / 2);
        return new ScmosFitAccuracy(locs.Length, m.Matched, rmse, crlb);
    }
}
