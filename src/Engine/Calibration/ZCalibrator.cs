using MaLiang.Engine.Camera;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;

namespace MaLiang.Engine.Calibration;

/// <summary>What <see cref="ZCalibrator.Calibrate"/> measured: the calibration and the widths behind it (for the plot).</summary>
public sealed class ZCalibrationRun
{
    public required ZCalibration Calibration { get; init; }
    /// <summary>Stage z of each frame (nm), in the calibration's frame (shifted when z = 0 is the equal-width plane).</summary>
    public required double[] FrameZNm { get; init; }
    /// <summary>Median width over the beads per frame (px; NaN where no bead was fitted), and whether the curve fit kept it.</summary>
    public required double[] SigmaXPx { get; init; }
    public required double[] SigmaYPx { get; init; }
    public required bool[] KeptX { get; init; }
    public required bool[] KeptY { get; init; }
    /// <summary>Beads found, and bead fits dropped (failed, left the ROI, or a width at its bound).</summary>
    public required int Beads { get; init; }
    public required int RejectedFits { get; init; }
}

/// <summary>
/// Calibration from a bead z-stack (DESIGN.md "3D astigmatism"): beads are found once on the stack's mean image (the
/// localization's camera, filter and threshold; beads closer than the ROI radius to a brighter one, or fainter than a
/// tenth of the brightest, are left out); in every frame each bead's ROI is fitted with free sigma_x and sigma_y
/// (<see cref="FitOptions.FreeWidths"/>); per frame the median width over the beads is taken per axis; each axis gets
/// its defocus curve (<see cref="DefocusFit"/>, which rejects outlying frames). Frame k is at z = first + k x step.
/// </summary>
public static class ZCalibrator
{
    /// <summary>Bead ROIs are at least this wide: defocused beads are several pixels wide.</summary>
    public const int MinRoiSize = 17;

    public static ZCalibrationRun Calibrate(IFrameSource stack, LocalizerSettings settings, double zStepNm, double? zFirstNm,
                                            double refractiveIndexFactor = 1.0)
    {
        settings.Validate();
        if (!(zStepNm > 0) || !double.IsFinite(zStepNm)) throw new InvalidParameterException("z-step-nm", $"must be a finite number > 0, got {zStepNm}");
        if (zFirstNm is double zf && !double.IsFinite(zf)) throw new InvalidParameterException("z-first-nm", $"must be finite, got {zf}");
        if (!(refractiveIndexFactor > 0) || !double.IsFinite(refractiveIndexFactor))
            throw new InvalidParameterException("refractive-index-factor", $"must be a finite number > 0, got {refractiveIndexFactor}");
        int w = stack.Width, h = stack.Height, frames = stack.FrameCount, n = Math.Max(settings.RoiSize, MinRoiSize);
        if (frames < 8) throw new MaLiangException($"{stack.Name}: {frames} frames; a bead z-stack needs at least 8");
        if (w < n || h < n) throw new MaLiangException($"{stack.Name}: {w}x{h} px is smaller than the {n} px bead ROI");

        var det = settings.Clone();
        det.RoiSize = n; det.RejectOverlapping = true; det.DropAtEdge = true;
        var camera = CameraModel.From(det, w, h);
        var frame = new float[w * h];
        var mean = new float[w * h];
        for (int k = 0; k < frames; k++)
        {
            stack.ReadFrame(k, frame);
            camera.ToPhotons(frame);
            for (int i = 0; i < frame.Length; i++) mean[i] += frame[i];
        }
        for (int i = 0; i < mean.Length; i++) mean[i] /= frames;
        var found = new List<Candidate>();
        new FrameDetector(det, camera).Detect(mean, w, h, found);
        float brightest = found.Count == 0 ? 0 : found.Max(c => c.Value);
        var beads = found.Where(c => !c.Overlapping && c.Value >= 0.1f * brightest).ToList();
        if (beads.Count == 0)
            throw new MaLiangException($"{stack.Name}: no bead found (threshold {settings.Threshold} x the noise of the stack's mean image, {n} px from the edges)");

        var batch = new RoiBatch(n, beads.Count);
        var fits = new FitResult[beads.Count];
        using var fitter = new CpuFitBackend(settings.Threads);
        var opts = new FitOptions((float)settings.PsfSigmaPx, false, Math.Max(settings.Iterations, 50), true, (float)settings.Tolerance) { FreeWidths = true };
        var sx = new double[frames]; var sy = new double[frames]; var z = new double[frames];
        int rejected = 0;
        var bx = new List<double>(); var by = new List<double>();
        for (int k = 0; k < frames; k++)
        {
            stack.ReadFrame(k, frame);
            camera.ToPhotons(frame);
            batch.Clear();
            foreach (var b in beads) batch.AddAround(frame, w, h, k, b.X, b.Y);
            fitter.Fit(batch, opts, fits);
            bx.Clear(); by.Clear();
            for (int i = 0; i < beads.Count; i++)
            {
                var f = fits[i];
                bool atBound = f.Sigma <= 0.31f || f.SigmaY <= 0.31f || f.Sigma >= n - 0.01f || f.SigmaY >= n - 0.01f;
                if (!f.Kept || atBound || !(f.Photons > 0)) { rejected++; continue; }
                bx.Add(f.Sigma); by.Add(f.SigmaY);
            }
            sx[k] = Median(bx); sy[k] = Median(by);
            z[k] = (zFirstNm ?? 0) + k * zStepNm;
        }
        var keepX = new bool[frames]; var keepY = new bool[frames];
        var cx = DefocusFit.Fit(z, sx, keepX, $"{stack.Name}: sigma_x");
        var cy = DefocusFit.Fit(z, sy, keepY, $"{stack.Name}: sigma_y");
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        for (int k = 0; k < frames; k++) if (keepX[k] && keepY[k]) { lo = Math.Min(lo, z[k]); hi = Math.Max(hi, z[k]); }
        if (!(hi > lo)) throw new MaLiangException($"{stack.Name}: no frame range where both widths were measured");
        var cal = new ZCalibration { X = cx, Y = cy, PixelSizeNm = settings.PixelSizeNm, ZMinNm = lo, ZMaxNm = hi, RefractiveIndexFactor = refractiveIndexFactor, Source = stack.Name };
        if (zFirstNm is null)
        {
            // z = 0 where the two widths are equal (between the two in-focus planes).
            double zc = cal.CrossingNm();
            if (double.IsNaN(zc)) throw new MaLiangException($"{stack.Name}: the two width curves never cross in the measured range; give --z-first-nm");
            cal = new ZCalibration
            {
                X = cx with { CNm = cx.CNm - zc }, Y = cy with { CNm = cy.CNm - zc }, PixelSizeNm = cal.PixelSizeNm,
                ZMinNm = lo - zc, ZMaxNm = hi - zc, RefractiveIndexFactor = refractiveIndexFactor, Source = stack.Name,
            };
            for (int k = 0; k < frames; k++) z[k] -= zc;
        }
        cal.Validate();
        return new ZCalibrationRun { Calibration = cal, FrameZNm = z, SigmaXPx = sx, SigmaYPx = sy, KeptX = keepX, KeptY = keepY, Beads = beads.Count, RejectedFits = rejected };
    }

    private static double Median(List<double> v)
    {
        if (v.Count == 0) return double.NaN;
        v.Sort();
        int m = v.Count / 2;
        return v.Count % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
    }
}
