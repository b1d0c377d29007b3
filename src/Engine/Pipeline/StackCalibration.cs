using MaLiang.Engine.Camera;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.MultiEmitter;
using MaLiang.Engine.IO;

namespace MaLiang.Engine.Pipeline;

/// <summary>What the first frames say about the PSF (DESIGN.md "Crowded frames").</summary>
/// <param name="PsfSigmaPx">Median free-sigma width of the isolated spots (NaN when too few were found).</param>
/// <param name="Spots">Isolated spots measured.</param>
public readonly record struct StackCalibrationResult(double PsfSigmaPx, int Spots);

/// <summary>
/// A look at the first frames before localizing, for the PSF width when the user gave none: isolated candidates (no
/// other candidate within a ROI width, or the ROI radius + 1 where spots are dense) are fitted with a free sigma, and
/// the median sigma of the converged, significant, well-fitting ones is the width (DESIGN.md "Crowded frames").
/// </summary>
public static class StackCalibration
{
    /// <summary>Spots wanted; at most <see cref="MaxFrames"/> frames are read for them.</summary>
    public const int WantedSpots = 200, MaxFrames = 50, MinSpots = 8;

    public static StackCalibrationResult Measure(IFrameSource source, int first, int count, LocalizerSettings settings, CameraModel camera)
    {
        var s = settings.Clone();
        s.FixedSigma = false;
        int n = s.RoiSize, w = source.Width, h = source.Height, px = w * h;
        // Spots are found by the detection in use: with the camera-noise test, in a crowded frame, it also finds the
        // neighbours that make a spot not isolated, which the spread test misses.
        var detector = new FrameDetector(s, camera);
        var spots = new List<Candidate>();
        var fitter = new CpuFitBackend(1);
        var options = FitOptions.From(s);
        var photons = new float[px];
        var batch = new RoiBatch(n, 64);
        var results = new FitResult[64];
        var sigmas = new List<float>();
        int measured = 0;
        float poor = ModelSelection.PoorFitLlr(n);
        for (int f = first; f < first + Math.Min(count, MaxFrames) && sigmas.Count < WantedSpots; f++)
        {
            // A frame that cannot be read ends the look here; the pipeline reports it in frame order, after the frames
            // before it were localized.
            try { source.ReadFrame(f, photons); }
            catch (Exception e) when (e is MaLiangException or IOException) { break; }
            if (!(camera.ToPhotons(photons) > 0)) continue;
            detector.Detect(photons, w, h, spots);
            batch.Clear();
            // Alone: no other candidate within a ROI width; in crowded frames (where few are) within the ROI radius + 1,
            // and the fits that a hidden neighbour spoils are left out by their goodness of fit below.
            int isolation = spots.Count * (double)(n + 1) * (n + 1) > 0.25 * px ? n / 2 + 1 : n;
            for (int i = 0; i < spots.Count; i++)
            {
                var c = spots[i];
                bool alone = true;
                for (int j = 0; j < spots.Count && alone; j++)
                    alone = j == i || Math.Max(Math.Abs(spots[j].X - c.X), Math.Abs(spots[j].Y - c.Y)) > isolation;
                if (alone && c.X >= n / 2 && c.Y >= n / 2 && c.X < w - n / 2 && c.Y < h - n / 2) batch.AddAround(photons, w, h, f, c.X, c.Y);
            }
            if (batch.Count == 0) continue;
            if (results.Length < batch.Count) results = new FitResult[batch.Count * 2];
            fitter.Fit(batch, options, results);
            for (int i = 0; i < batch.Count; i++)
            {
                var r = results[i];
                if (r.Status != FitStatus.Converged || !(r.Photons >= 5 * r.CrlbPhotons)) continue;
                measured++;
                if (r.Llr <= poor) sigmas.Add(r.Sigma);
            }
        }
        double sigma = double.NaN;
        if (sigmas.Count >= MinSpots) { sigmas.Sort(); sigma = sigmas[(sigmas.Count - 1) / 2]; }
        return new(sigma, measured);
    }
}
