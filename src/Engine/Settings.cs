namespace MaLiang.Engine;

/// <summary>De-noising filter applied before detection.</summary>
public enum FilterKind
{
    /// <summary>The paper's filter: box average of width a minus the mean of the annulus to a box a + 4 px wide.</summary>
    Maliang = 0,
    /// <summary>ThunderSTORM's wavelet filter: first wavelet level of an a-trous B-spline (order 3, scale 2).</summary>
    Wavelet = 1,
    /// <summary>No filter; detection on the (background-free) photon image.</summary>
    None = 2,
}

/// <summary>Which fitter runs the MLE.</summary>
public enum BackendKind { Auto = 0, Cpu = 1, OpenCL = 2, Cuda = 3 }

/// <summary>The localization settings: every option of <c>maliang localize</c>, plus the filter box width and the fit tolerance. Units are in the names; defaults follow the paper.</summary>
public sealed class LocalizerSettings
{
    public double PixelSizeNm { get; set; } = 100.0;
    /// <summary>Gaussian PSF standard deviation, in camera pixels: the fit's start value (and fixed value with <see cref="FixedSigma"/>).</summary>
    public double PsfSigmaPx { get; set; } = 1.3;
    /// <summary>Estimate the PSF sigma from isolated spots of the first frames (free-sigma fits) before localizing, and use
    /// it instead of <see cref="PsfSigmaPx"/> (the CLI does when <c>--psf-sigma</c> is not given; DESIGN.md "Crowded frames").</summary>
    public bool EstimatePsfSigma { get; set; }
    public double OffsetAdu { get; set; } = 0.0;
    /// <summary>Photoelectrons per A/D count (ThunderSTORM's name).</summary>
    public double PhotonsPerAdu { get; set; } = 1.0;
    public double EmGain { get; set; } = 1.0;
    /// <summary>Detection threshold as a multiple of the filtered frame's robust noise (MAD x 1.4826).</summary>
    public double Threshold { get; set; } = 5.0;
    /// <summary>Odd ROI edge length in pixels.</summary>
    public int RoiSize { get; set; } = 7;
    public FilterKind Filter { get; set; } = FilterKind.Maliang;
    /// <summary>Width a of the paper's averaging box, in pixels (odd).</summary>
    public int FilterBoxPx { get; set; } = 3;
    public bool FixedSigma { get; set; }
    /// <summary>Maximum number of fit iterations.</summary>
    public int Iterations { get; set; } = 20;
    /// <summary>Stop early when every parameter's step is below <see cref="Tolerance"/> relative to its value.
    /// Off with <c>--no-tolerance</c> (the paper's fixed number of steps).</summary>
    public bool UseTolerance { get; set; } = true;
    public double Tolerance { get; set; } = 1e-4;
    /// <summary>Reject candidates within the ROI radius (Euclidean, &lt;= r) of a brighter one (the paper does; <c>--reject-overlapping</c>).
    /// Off (default): they are kept, and every ROI with another candidate in it is refitted after subtracting its
    /// neighbours' fitted PSFs, which separates close emitters (better on simulated stacks at every density measured).</summary>
    public bool RejectOverlapping { get; set; }
    /// <summary>Keep a localization only when its photons are at least this many times their uncertainty (square root of
    /// the CRLB): the fitted amplitude's signal-to-noise ratio, judged against the local background the fit found, where the
    /// detection threshold is one number for the whole frame. 0 keeps every fit.</summary>
    public double MinPhotonSnr { get; set; } = 5.0;
    /// <summary>Noise estimate for the detection threshold: the MAD of the filtered frame, then once more within 3 such
    /// deviations of the median (default), so that a crowded frame's emitters do not raise it. False: the MAD alone
    /// (<c>--no-noise-clip</c>, the estimate before).</summary>
    public bool NoiseClip { get; set; } = true;
    /// <summary>Drop candidates whose ROI would cross the frame edge (the behaviour before edge fitting; <c>--drop-edge</c>).
    /// Off (default): their ROI is shifted to lie inside the frame and the emitter is fitted off-centre in it.</summary>
    public bool DropAtEdge { get; set; }
    /// <summary>Crowded frames: groups of close or poorly fitted emitters are fitted jointly and the residual is searched for
    /// emitters the detection merged (DESIGN.md "Crowded frames"; default). False: the single-emitter neighbour refit
    /// (<c>--single-emitter</c>). Only with overlapping candidates kept (not with <see cref="RejectOverlapping"/>).</summary>
    public bool MultiEmitter { get; set; } = true;
    /// <summary>The data's noise variance over the camera model's (1: the camera settings are right). The localizer measures
    /// it on the first frames (<see cref="Pipeline.StackCalibration"/>) unless it is set above 1 here; it scales the
    /// camera-noise detection test and the multi-emitter stage's likelihood-ratio tests.</summary>
    public double NoiseScale { get; set; } = 1;
    /// <summary>Detection against the noise the camera model predicts at each maximum's local background (default), not the
    /// filtered frame's robust spread, which emitter light raises in crowded frames. False: <c>--spread-threshold</c>.</summary>
    public bool CameraNoiseDetection { get; set; } = true;
    /// <summary>With <see cref="CameraNoiseDetection"/>: let the first frames choose (default): a sparse stack (fewer than
    /// 0.3 candidates per um^2 by the spread test) is detected with the spread test, which needs no camera model; a
    /// crowded one with the camera model's noise. False: the camera model's noise always.</summary>
    public bool AutoDetectionTest { get; set; } = true;
    /// <summary>Most emitters in one joint fit (<c>--max-emitters</c>), 1 to 12.</summary>
    public int MaxEmittersPerGroup { get; set; } = 8;
    /// <summary>An emitter is added to (or kept in) a group when the likelihood ratio's p-value is below this (<c>--multi-p-value</c>;
    /// ThunderSTORM's default). Measured on the density sweep (1-6 per um^2, two passes): 1e-6 beat 1e-4, 1e-10 and 1e-14.</summary>
    public double MultiEmitterPValue { get; set; } = 1e-6;
    /// <summary>With <see cref="MultiEmitter"/>: after the joint fits, subtract every fitted emitter from the frame, search the
    /// residual with the detection's test and fit what it finds with the emitters near it, until a pass adds none (DESIGN.md
    /// "Crowded frames"; <c>--residual-search</c>). Off by default: measured on the density sweep it finds 1-3 emitters per
    /// 40 frames that the multi-emitter stage missed (Jaccard +0.0002 to +0.0012 at 0.5-6 per um^2) and at 8 per um^2 adds
    /// as many false ones (Jaccard -0.0001 to -0.0003).</summary>
    public bool ResidualSearch { get; set; }
    public BackendKind Backend { get; set; } = BackendKind.Auto;
    /// <summary>Per-pixel sCMOS offset, read-noise variance and gain maps of the sensor, with the stack's origin on it
    /// (null: the scalar camera settings, pure Poisson likelihood). With a variance map the fit uses the sCMOS likelihood.</summary>
    public Camera.CameraMaps? CameraMaps { get; set; }
    /// <summary>Worker threads; 0 = all cores.</summary>
    public int Threads { get; set; }
    /// <summary>3D astigmatic fitting with this calibration (z in every output); null: the 2D round Gaussian.</summary>
    public Calibration.ZCalibration? ZCalibration { get; set; }

    public int RoiRadius => RoiSize / 2;

    public LocalizerSettings Clone() => (LocalizerSettings)MemberwiseClone();

    /// <summary>Throws <see cref="InvalidParameterException"/> naming the first bad parameter.</summary>
    public void Validate()
    {
        Positive(PixelSizeNm, "pixel-size");
        Positive(PsfSigmaPx, "psf-sigma");
        if (!double.IsFinite(PsfSigmaPx) || PsfSigmaPx > 20) throw new InvalidParameterException("psf-sigma", $"{PsfSigmaPx} px is not a PSF width (expected 0 < sigma <= 20 px)");
        if (!double.IsFinite(OffsetAdu) || OffsetAdu < 0) throw new InvalidParameterException("offset", $"must be a finite number >= 0 ADU, got {OffsetAdu}");
        Positive(PhotonsPerAdu, "photons-per-adu");
        Positive(EmGain, "em-gain");
        Positive(Threshold, "threshold");
        if (RoiSize < 3 || RoiSize > 31 || RoiSize % 2 == 0) throw new InvalidParameterException("roi", $"must be an odd size from 3 to 31 px, got {RoiSize}");
        if (FilterBoxPx < 1 || FilterBoxPx > 15 || FilterBoxPx % 2 == 0) throw new InvalidParameterException("filter-box", $"must be odd, 1 to 15 px, got {FilterBoxPx}");
        if (!Enum.IsDefined(Filter)) throw new InvalidParameterException("filter", $"unknown filter {(int)Filter}");
        if (!Enum.IsDefined(Backend)) throw new InvalidParameterException("backend", $"unknown backend {(int)Backend}");
        if (Iterations < 1 || Iterations > 1000) throw new InvalidParameterException("iterations", $"must be 1 to 1000, got {Iterations}");
        Positive(Tolerance, "tolerance");
        if (!(MinPhotonSnr >= 0) || !double.IsFinite(MinPhotonSnr)) throw new InvalidParameterException("min-snr", $"must be a finite number >= 0, got {MinPhotonSnr}");
        if (!(NoiseScale >= 1) || !double.IsFinite(NoiseScale)) throw new InvalidParameterException("noise-scale", $"must be a finite number >= 1, got {NoiseScale}");
        if (MaxEmittersPerGroup < 1 || MaxEmittersPerGroup > Fit.MultiEmitter.GroupFit.MaxEmitters) throw new InvalidParameterException("max-emitters", $"must be 1 to {Fit.MultiEmitter.GroupFit.MaxEmitters}, got {MaxEmittersPerGroup}");
        if (!(MultiEmitterPValue > 0 && MultiEmitterPValue < 1)) throw new InvalidParameterException("multi-p-value", $"must be a p-value in (0, 1), got {MultiEmitterPValue}");
        if (Threads < 0 || Threads > 1024) throw new InvalidParameterException("threads", $"must be 0 (all cores) to 1024, got {Threads}");
    }

    private static void Positive(double v, string name)
    {
        if (double.IsNaN(v)) throw new InvalidParameterException(name, "is NaN");
        if (!double.IsFinite(v) || v <= 0) throw new InvalidParameterException(name, $"must be a finite number > 0, got {v}");
    }
}
