using MaLiang.Engine.Camera;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.MultiEmitter;
using MaLiang.Engine.IO;

namespace MaLiang.Engine.Pipeline;

/// <summary>What the first frames say about the PSF and the noise (DESIGN.md "Crowded frames").</summary>
/// <param name="PsfSigmaPx">Median free-sigma width of the isolated spots (NaN when too few were found).</param>
/// <param name="NoiseScale">The data's variance over the camera model's, from the isolated fits' goodness of fit (1 when
/// the camera settings are right; at least 1).</param>
/// <param name="Spots">Isolated spots measured.</param>
/// <param name="CandidatesPerUm2">Candidates per square micrometre per frame that the spread test found (the detection that
/// needs no camera model).</param>
/// <param name="SpreadOverCamera">The filtered frames' robust spread over the noise the camera model predicts at their
/// lower background (median over the frames read): about 1 in a sparse frame with the right camera settings, raised by
/// crowding and by a wrong gain.</param>
public readonly record struct StackCalibrationResult(double PsfSigmaPx, double NoiseScale, int Spots, double CandidatesPerUm2 = double.NaN,
                                                     double SpreadOverCamera = double.NaN);

/// <summary>
/// A look at the first frames before localizing: isolated candidates (detected with the spread threshold, which needs no
/// camera model; no other candidate within a ROI width) are fitted with a free sigma. Their median sigma is the PSF
/// width when the user gave none. Their goodness of fit measures the camera model: with the right gain the LLR of an
/// n x n fit follows chi-square with n^2 - 5 degrees of freedom; data k times noisier than the model (a wrong
/// --photons-per-adu or --em-gain) give k times that. The median is used where most candidates are isolated, the lower
/// quartile elsewhere (robust to spots with an undetected neighbour), against chi-square's. The camera-noise detection test and the likelihood-ratio
/// tests of the multi-emitter stage are then scaled by that factor (quasi-likelihood), so a wrong gain costs precision
/// but does not flood the output with noise.
/// </summary>
public static class StackCalibration
{
    /// <summary>Spots wanted; at most <see cref="MaxFrames"/> frames are read for them.</summary>
    public const int WantedSpots = 200, MaxFrames = 50, MinSpots = 8;

    public static StackCalibrationResult Measure(IFrameSource source, int first, int count, LocalizerSettings settings, CameraModel camera)
    {
        var s = settings.Clone();
        s.CameraNoiseDetection = false;
        s.FixedSigma = false;
        int n = s.RoiSize, w = source.Width, h = source.Height, px = w * h;
        var detector = new FrameDetector(s, camera);
        // Spots are found with the camera-noise test where it is on: in a crowded frame it finds the neighbours that make
        // a spot not isolated, which the spread test misses.
        var spotSettings = settings.Clone();
        spotSettings.FixedSigma = false;
        var spotDetector = settings.CameraNoiseDetection ? new FrameDetector(spotSettings, camera) : detector;
        var spots = new List<Candidate>();
        var fitter = new CpuFitBackend(1);
        var options = FitOptions.From(s);
        var photons = new float[px];
        var candidates = new List<Candidate>();
        var batch = new RoiBatch(n, 64);
        var results = new FitResult[64];
        var sigmas = new List<float>();
        long allCandidates = 0;
        var cam = new CameraNoiseThreshold(Denoise.FrameFilters.Create(s), s.PsfSigmaPx, s.EmGain);
        var work = new float[NoiseEstimator.ScratchLength(w, h)];
        var ratios = new List<double>();
        var scratch = new CpuFitBackend.FitScratch(n);
        var model = new float[n * n];
        var llrs = new List<float>();
        float poor = ModelSelection.PoorFitLlr(n);
        int framesRead = 0;
        for (int f = first; f < first + Math.Min(count, MaxFrames) && sigmas.Count < WantedSpots; f++)
        {
            // A frame that cannot be read ends the look here; the pipeline reports it in frame order, after the frames
            // before it were localized.
            try { source.ReadFrame(f, photons); }
            catch (Exception e) when (e is MaLiangException or IOException) { break; }
            framesRead++;
            if (!(camera.ToPhotons(photons) > 0)) continue;
            var det = detector.Detect(photons, w, h, candidates);
            allCandidates += candidates.Count;
            if (cam.Applies)
            {
                float floor = cam.Floor(float.MaxValue, NoiseEstimator.Quantile(photons, w, h, work, 0.1), 1f, 0f);
                if (floor > 0) ratios.Add(det.NoiseStd / (floor / 0.8f));
            }
            batch.Clear();
            if (spotDetector != detector) spotDetector.Detect(photons, w, h, spots);
            else { spots.Clear(); spots.AddRange(candidates); }
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
                // Pearson's chi-square sum((d - mu)^2 / mu): the variance ratio itself, where the deviance (LLR) of
                // overdispersed low counts grows less than the variance does.
                CpuFitBackend.Model(scratch, r.X, r.Y, r.Photons, r.Background, r.Sigma, model);
                var roi = batch.Roi(i);
                double pearson = 0;
                for (int q = 0; q < n * n; q++) pearson += (roi[q] - model[q]) * (roi[q] - model[q]) / Math.Max(model[q], 1e-6f);
                llrs.Add((float)pearson);
                if (r.Llr <= poor) sigmas.Add(r.Sigma);
            }
        }
        double um2 = (double)w * h * s.PixelSizeNm * s.PixelSizeNm * 1e-6;
        double density = framesRead == 0 ? double.NaN : allCandidates / (framesRead * um2);
        ratios.Sort();
        double ratio = ratios.Count == 0 ? double.NaN : ratios[(ratios.Count - 1) / 2];
        if (llrs.Count < MinSpots) return new(double.NaN, 1, llrs.Count, density, ratio);
        llrs.Sort();
        // Only where most candidates are isolated (a sparse frame) is the median spot alone, and the measure trusted; in a
        // crowded frame an "isolated" candidate often has an undetected neighbour that raises its chi-square (measured:
        // 7x at 4 emitters per um^2 with the right camera model), so the camera model is taken as it is.
        double dof = n * n - 5, stat = llrs[(llrs.Count - 1) / 2];
        bool sparse = allCandidates > 0 && llrs.Count >= 0.5 * allCandidates;
        double scale = sparse ? Math.Max(1, stat / ModelSelection.ChiSquareUpper(0.5, dof)) : 1;
        double sigma = double.NaN;
        if (sigmas.Count >= MinSpots) { sigmas.Sort(); sigma = sigmas[(sigmas.Count - 1) / 2]; }
        return new(sigma, scale, llrs.Count, density, ratio);
    }
}
