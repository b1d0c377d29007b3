namespace MaLiang.Engine.Pipeline;

/// <summary>Frames done out of the total (0 when the total is open-ended, as in live acquisition) and localizations so far.</summary>
public readonly record struct PipelineProgress(int FramesDone, int FramesTotal, long Localizations);

/// <summary>What a run did: counts, drops and their reasons, timing.</summary>
public sealed class PipelineSummary
{
    public int Frames { get; internal set; }
    public long Localizations { get; internal set; }
    public long Candidates { get; internal set; }
    public long DroppedAtEdge { get; internal set; }
    public long DroppedOverlap { get; internal set; }
    public long DroppedFitFailed { get; internal set; }
    public long DroppedLeftRoi { get; internal set; }
    /// <summary>Fits whose photons were below <see cref="LocalizerSettings.MinPhotonSnr"/> times their uncertainty.</summary>
    public long DroppedLowSnr { get; internal set; }
    /// <summary>3D: fits whose z left the calibration's z range.</summary>
    public long DroppedOutsideZRange { get; internal set; }
    /// <summary>True for a 3D (astigmatic) run; the description then names the z drops.</summary>
    public bool ThreeD { get; internal set; }
    /// <summary>Multi-emitter stage: fits by the number of emitters fitted together (index 1..12; 1 = single fits).</summary>
    public long[] GroupsBySize { get; } = new long[MaLiang.Engine.Fit.MultiEmitter.GroupFit.MaxEmitters + 1];
    /// <summary>The PSF sigma estimated from the first frames (px), or NaN when it was given.</summary>
    public double EstimatedPsfSigmaPx { get; internal set; } = double.NaN;
    /// <summary>The data's noise variance over the camera model's, measured on the first frames (1: as the model says).</summary>
    public double NoiseScale { get; internal set; } = 1;
    /// <summary>True when the PSF sigma was to be estimated but the first frames had too few isolated spots: the default was used.</summary>
    public bool PsfSigmaNotEstimated { get; internal set; }
    /// <summary>Frames judged sparse, whose candidates passed the spread test (<see cref="Detect.CameraNoiseThreshold.Sparse"/>).</summary>
    public long SpreadTestFrames { get; internal set; }
    /// <summary>Isolated spots the first-frames calibration measured.</summary>
    public int CalibrationSpots { get; internal set; }
    public double WallSeconds { get; internal set; }
    /// <summary>GPU backends: wall seconds of the multi-emitter stage's joint-fit batches on the device (uploads, kernel,
    /// read-backs), part of the fit stage's time.</summary>
    public double GroupFitDeviceSeconds { get; internal set; }
    /// <summary>The multi-emitter stage's rounds over chunks of frames (<c>Localizer.RefineChunk</c>): wall seconds in
    /// all, and of those the CPU batch fits' (<see cref="GroupFitDeviceSeconds"/> holds the device's); the rest is the
    /// host's grouping, model selection and hand-over. Frames refined at once on their own thread are not in these.</summary>
    public double RefineRoundsSeconds { get; internal set; }
    public double GroupFitCpuSeconds { get; internal set; }
    /// <summary>Per-stage time summed over worker threads (seconds of CPU): read + camera, de-noise, detection + ROI cut-out, fit.
    /// With device detection (GPU backends) the device stages are wall seconds x <see cref="Threads"/>, so that
    /// <see cref="StageMsPerFrame"/> gives their wall time per frame: de-noise = the filter kernels; detection = noise
    /// estimate, threshold, maxima, classification, ROI cut-out and their small read-backs; fit = the device fit with its
    /// transfers plus the CPU time of the neighbour refinement (over the threads); read = read + camera on the CPU threads
    /// plus the upload of the chunk to the device (x threads).</summary>
    public double ReadSeconds { get; internal set; }
    public double DenoiseSeconds { get; internal set; }
    public double DetectSeconds { get; internal set; }
    public double FitSeconds { get; internal set; }
    /// <summary>GPU backends with device detection: wall seconds of the fit kernels alone (transpose + fit, no transfers),
    /// not scaled by the threads; 0 otherwise.</summary>
    public double FitKernelSeconds { get; internal set; }
    /// <summary>Frames after the first whose every pixel was at or below the offset (no localizations).</summary>
    public long BlankFrames { get; internal set; }
    public int Threads { get; internal set; }
    public string Backend { get; internal set; } = "cpu";
    /// <summary>True when de-noise, noise estimate, detection and ROI cut-out ran on the GPU device.</summary>
    public bool DeviceDetection { get; internal set; }

    public double MsPerFrame => Frames == 0 ? 0 : WallSeconds * 1e3 / Frames;
    /// <summary>A stage's share of the wall time per frame: its CPU time per frame divided by the worker threads.</summary>
    public double StageMsPerFrame(double stageSeconds) => Frames == 0 ? 0 : stageSeconds * 1e3 / Frames / Math.Max(1, Threads);

    /// <summary>", groups of 1/2/3.. emitters: a/b/c.." when the multi-emitter stage fitted any group of two or more.</summary>
    private string GroupsText()
    {
        int last = 0;
        for (int g = 2; g < GroupsBySize.Length; g++) if (GroupsBySize[g] > 0) last = g;
        if (last == 0) return "";
        return $", groups of 1/{string.Join("/", Enumerable.Range(2, last - 1))} emitters: {string.Join("/", GroupsBySize.Skip(1).Take(last))}";
    }

    private string CalibrationText() =>
        (double.IsNaN(EstimatedPsfSigmaPx) ? "" : $", PSF sigma {EstimatedPsfSigmaPx:F3} px estimated from {CalibrationSpots} isolated spots") +
        (PsfSigmaNotEstimated ? $", PSF sigma not estimated (too few isolated spots, {CalibrationSpots}): the default used, give --psf-sigma" : "") +
        (SpreadTestFrames > 0 ? $", {SpreadTestFrames} sparse frames (spread test)" : "") +
        (NoiseScale > 1.5 ? $", noise {NoiseScale:F1}x the camera model's (check --photons-per-adu and --em-gain; detection and model selection allow for it)" : "");

    public string Describe() =>
        $"{Frames} frames, {Localizations} localizations ({Candidates} candidates; dropped: {DroppedAtEdge} at the frame edge, " +
        $"{DroppedOverlap} overlapping, {DroppedFitFailed} failed fits, {DroppedLowSnr} below the SNR, {DroppedLeftRoi} left the ROI" +
        (ThreeD ? $", {DroppedOutsideZRange} outside the calibrated z range" : "") + ")" +
        GroupsText() + CalibrationText() + (BlankFrames > 0 ? $", {BlankFrames} blank frames (every pixel at or below the offset)" : "") + $", {MsPerFrame:F3} ms/frame " +
        $"on {Backend} x {Threads} threads";
}
