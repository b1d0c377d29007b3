using System.CommandLine;
using MaLiang.Engine;

namespace MaLiang.Cli;

/// <summary>The localization options shared by <c>localize</c> and <c>bench</c>; names are the contract (ImageJ and Python use them too).</summary>
internal sealed class SettingsOptions
{
    private static readonly LocalizerSettings D = new();
    public readonly Option<double> PixelSize = new("--pixel-size") { Description = "camera pixel size in nm", DefaultValueFactory = _ => D.PixelSizeNm };
    public readonly Option<double?> PsfSigma = new("--psf-sigma") { Description = "PSF sigma in camera pixels (start value; fixed with --fixed-sigma and in joint fits); without it, estimated from isolated spots of the first frames" };
    public readonly Option<double> Offset = new("--offset") { Description = "camera offset (baseline) in ADU", DefaultValueFactory = _ => D.OffsetAdu };
    public readonly Option<double> PhotonsPerAdu = new("--photons-per-adu") { Description = "photoelectrons per A/D count", DefaultValueFactory = _ => D.PhotonsPerAdu };
    public readonly Option<double> EmGain = new("--em-gain") { Description = "EM gain (1 for sCMOS/CCD)", DefaultValueFactory = _ => D.EmGain };
    public readonly Option<double> Threshold = new("--threshold") { Description = "detection threshold, multiples of the filtered frame's noise (the camera model's at each maximum's local background; with --spread-threshold the frame's robust spread)", DefaultValueFactory = _ => D.Threshold };
    public readonly Option<int> Roi = new("--roi") { Description = "ROI size in pixels (odd)", DefaultValueFactory = _ => D.RoiSize };
    public readonly Option<string> Filter = new("--filter") { Description = "de-noising filter: maliang|wavelet|none", DefaultValueFactory = _ => "maliang" };
    public readonly Option<bool> FixedSigma = new("--fixed-sigma") { Description = "fix the PSF sigma instead of fitting it" };
    public readonly Option<int?> Iterations = new("--iterations") { Description = "maximum fit iterations (default 20)" };
    public readonly Option<bool> NoTolerance = new("--no-tolerance") { Description = "always run --iterations steps (the paper's fixed ten with --iterations 10)" };
    public readonly Option<bool> KeepOverlapping = new("--keep-overlapping") { Description = "keep candidates closer than the ROI radius to a brighter one and refit them after subtracting their neighbours (the default)" };
    public readonly Option<bool> RejectOverlapping = new("--reject-overlapping") { Description = "drop candidates closer than the ROI radius to a brighter one, no neighbour refit (the paper's rule, the default before)" };
    public readonly Option<double> MinSnr = new("--min-snr") { Description = "keep a localization only when its photons are at least this many times their uncertainty (0 keeps every fit)", DefaultValueFactory = _ => D.MinPhotonSnr };
    public readonly Option<bool> NoNoiseClip = new("--no-noise-clip") { Description = "detection noise from the filtered frame's MAD alone, without the sigma-clipping step (the estimate before; emitters in a crowded frame raise it)" };
    public readonly Option<bool> DropEdge = new("--drop-edge") { Description = "drop candidates whose ROI would cross the frame edge (as before edge fitting) instead of fitting them in a ROI shifted inside the frame" };
    public readonly Option<bool> SingleEmitter = new("--single-emitter") { Description = "fit one emitter per ROI with the neighbour refit (the default before); without it, close or poorly fitted emitters are fitted jointly in groups and the residual is searched" };
    public readonly Option<int> MaxEmitters = new("--max-emitters") { Description = "most emitters fitted together in one group (1-12)", DefaultValueFactory = _ => D.MaxEmittersPerGroup };
    public readonly Option<double> MultiPValue = new("--multi-p-value") { Description = "an emitter is added to a group when the likelihood ratio's p-value is below this", DefaultValueFactory = _ => D.MultiEmitterPValue };
    public readonly Option<bool> ResidualSearch = new("--residual-search") { Description = "with the multi-emitter stage: search the frame minus every fitted emitter for emitters the detection missed, fit them with their neighbours, and again until none is added" };
    public readonly Option<bool> SpreadThreshold = new("--spread-threshold") { Description = "judge candidates against the filtered frame's robust spread (the rule before) instead of the camera model's noise at their local background" };
    public readonly Option<string> Backend = new("--backend") { Description = "fitter: auto|cpu|opencl|cuda", DefaultValueFactory = _ => "auto" };
    public readonly Option<int> Threads = new("--threads") { Description = "worker threads (0 = all cores)", DefaultValueFactory = _ => 0 };
    public readonly Option<string?> OffsetMap = new("--camera-offset-map") { Description = "sCMOS: TIFF of each sensor pixel's offset, ADU (whole sensor; replaces --offset)" };
    public readonly Option<string?> VarianceMap = new("--camera-variance-map") { Description = "sCMOS: TIFF of each sensor pixel's read-noise variance, ADU^2 (the fit then uses the sCMOS likelihood)" };
    public readonly Option<string?> GainMap = new("--camera-gain-map") { Description = "sCMOS: TIFF of each sensor pixel's gain, photons per ADU (replaces --photons-per-adu)" };
    public readonly Option<string?> Origin = new("--camera-origin") { Description = "X,Y: the stack's top-left pixel on the sensor the maps cover (a cropped acquisition), default 0,0" };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { PixelSize, PsfSigma, Offset, PhotonsPerAdu, EmGain, Threshold, Roi, Filter, FixedSigma, Iterations, NoTolerance, KeepOverlapping, RejectOverlapping, DropEdge, MinSnr, NoNoiseClip, SingleEmitter, MaxEmitters, MultiPValue, ResidualSearch, SpreadThreshold, Backend, Threads,
                                         OffsetMap, VarianceMap, GainMap, Origin })
            c.Options.Add(o);
    }

    public LocalizerSettings Read(ParseResult r)
    {
        var s = new LocalizerSettings
        {
            PixelSizeNm = r.GetValue(PixelSize),
            PsfSigmaPx = r.GetValue(PsfSigma) ?? D.PsfSigmaPx,
            EstimatePsfSigma = r.GetValue(PsfSigma) is null,
            OffsetAdu = r.GetValue(Offset),
            PhotonsPerAdu = r.GetValue(PhotonsPerAdu),
            EmGain = r.GetValue(EmGain),
            Threshold = r.GetValue(Threshold),
            RoiSize = r.GetValue(Roi),
            Filter = ParseFilter(r.GetValue(Filter)),
            FixedSigma = r.GetValue(FixedSigma),
            Iterations = r.GetValue(Iterations) ?? D.Iterations,
            UseTolerance = !r.GetValue(NoTolerance),
            RejectOverlapping = RejectFrom(r.GetValue(KeepOverlapping), r.GetValue(RejectOverlapping)),
            DropAtEdge = r.GetValue(DropEdge),
            MinPhotonSnr = r.GetValue(MinSnr),
            NoiseClip = !r.GetValue(NoNoiseClip),
            MultiEmitter = !r.GetValue(SingleEmitter),
            MaxEmittersPerGroup = r.GetValue(MaxEmitters),
            MultiEmitterPValue = r.GetValue(MultiPValue),
            ResidualSearch = r.GetValue(ResidualSearch),
            CameraNoiseDetection = !r.GetValue(SpreadThreshold),
            Backend = ParseBackend(r.GetValue(Backend)),
            Threads = r.GetValue(Threads),
        };
        s.Validate();
        s.CameraMaps = ReadMaps(r, OffsetMap, VarianceMap, GainMap, Origin);
        return s;
    }

    /// <summary>The camera maps the options name (null when none is given); --camera-origin alone is an error.</summary>
    public static Engine.Camera.CameraMaps? ReadMaps(ParseResult r, Option<string?> offset, Option<string?> variance, Option<string?> gain, Option<string?> origin)
    {
        string? o = r.GetValue(offset), v = r.GetValue(variance), g = r.GetValue(gain), at = r.GetValue(origin);
        var (x, y) = ParseOrigin(at);
        if (o is null && v is null && g is null)
        {
            if (at is not null) throw new InvalidParameterException("camera-origin", "given without a camera map (--camera-offset-map, --camera-variance-map, --camera-gain-map)");
            return null;
        }
        foreach (var (path, name) in new[] { (o, "camera-offset-map"), (v, "camera-variance-map"), (g, "camera-gain-map") })
            if (path is not null && !File.Exists(path)) throw new InvalidParameterException(name, $"{path}: no such file");
        return Engine.Camera.CameraMaps.Load(o, v, g, x, y);
    }

    /// <summary>"X,Y" (non-negative integers, sensor pixels) to the origin; null is (0, 0).</summary>
    public static (int X, int Y) ParseOrigin(string? v)
    {
        if (v is null) return (0, 0);
        var parts = v.Split(',');
        if (parts.Length == 2 && int.TryParse(parts[0].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int x)
            && int.TryParse(parts[1].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int y))
            return (x, y);
        throw new InvalidParameterException("camera-origin", $"'{v}' is not X,Y (two integers >= 0, sensor pixels)");
    }

    private static bool RejectFrom(bool keep, bool reject)
    {
        if (keep && reject) throw new InvalidParameterException("reject-overlapping", "--keep-overlapping and --reject-overlapping contradict each other; give one");
        return reject;
    }

    public static FilterKind ParseFilter(string? v) => v?.ToLowerInvariant() switch
    {
        "maliang" => FilterKind.Maliang, "wavelet" => FilterKind.Wavelet, "none" => FilterKind.None,
        _ => throw new InvalidParameterException("filter", $"'{v}' is not one of maliang, wavelet, none"),
    };

    public static BackendKind ParseBackend(string? v) => v?.ToLowerInvariant() switch
    {
        "auto" => BackendKind.Auto, "cpu" => BackendKind.Cpu, "opencl" => BackendKind.OpenCL, "cuda" => BackendKind.Cuda,
        _ => throw new InvalidParameterException("backend", $"'{v}' is not one of auto, cpu, opencl, cuda"),
    };
}
