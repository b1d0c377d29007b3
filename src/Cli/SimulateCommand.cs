using System.CommandLine;
using MaLiang.Engine;
using MaLiang.Engine.IO;
using MaLiang.Engine.Simulate;

namespace MaLiang.Cli;

/// <summary><c>maliang simulate OUT.tif --truth TRUTH.csv [options]</c>: a blinking-emitter stack and its ground truth.</summary>
internal static class SimulateCommand
{
    public static Command Build()
    {
        var output = new Argument<string>("output") { Description = "TIFF stack to write (16-bit)" };
        var truth = new Option<string>("--truth") { Description = "ground-truth CSV (same columns and convention as localize's output)", Required = true };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 128, Description = "frame width, px" };
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 128, Description = "frame height, px" };
        var frames = new Option<int>("--frames") { DefaultValueFactory = _ => 100, Description = "number of frames" };
        var pattern = new Option<string>("--pattern") { DefaultValueFactory = _ => "random", Description = "emitter layout: random|filaments|grid" };
        var emitters = new Option<int>("--emitters") { DefaultValueFactory = _ => 0, Description = "emitters in the sample (0 = from --emitters-per-frame and blinking)" };
        var perFrame = new Option<double>("--emitters-per-frame") { DefaultValueFactory = _ => 20, Description = "mean emitters on per frame" };
        var density = new Option<double>("--density") { DefaultValueFactory = _ => 0, Description = "emitters per um^2 (overrides --emitters)" };
        var photons = new Option<double>("--photons") { DefaultValueFactory = _ => 1000, Description = "photons per emitter per on-frame" };
        var photonDist = new Option<string>("--photon-distribution") { DefaultValueFactory = _ => "fixed", Description = "fixed|exponential|lognormal" };
        var background = new Option<double>("--background") { DefaultValueFactory = _ => 10, Description = "background photons per pixel" };
        var sigma = new Option<double>("--psf-sigma") { DefaultValueFactory = _ => 1.3, Description = "PSF sigma, px" };
        var pixel = new Option<double>("--pixel-size") { DefaultValueFactory = _ => 100, Description = "pixel size, nm" };
        var onFraction = new Option<double>("--on-fraction") { DefaultValueFactory = _ => 0, Description = "stationary on-fraction of the blinking (0 = chosen from --emitters-per-frame)" };
        var onFrames = new Option<double>("--on-frames") { DefaultValueFactory = _ => 3, Description = "mean frames an emitter stays on" };
        var offset = new Option<double>("--offset") { DefaultValueFactory = _ => 100, Description = "camera offset, ADU" };
        var ppa = new Option<double>("--photons-per-adu") { DefaultValueFactory = _ => 1, Description = "photoelectrons per A/D count" };
        var gain = new Option<double>("--em-gain") { DefaultValueFactory = _ => 1, Description = "EM gain (> 1 adds EMCCD excess noise)" };
        var readNoise = new Option<double>("--read-noise") { DefaultValueFactory = _ => 0, Description = "read noise, e- rms" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1, Description = "random seed" };
        var driftX = new Option<double>("--drift-x-nm") { DefaultValueFactory = _ => 0, Description = "linear sample drift in x over the whole stack, nm" };
        var edgeMargin = new Option<double>("--edge-margin") { DefaultValueFactory = _ => 4, Description = "random emitters keep this far from the frame's edges, px (0: anywhere, edge emitters included)" };
        var minSep = new Option<double>("--min-separation") { DefaultValueFactory = _ => 0, Description = "random emitters keep at least this far apart, px (0: no constraint)" };
        var driftY = new Option<double>("--drift-y-nm") { DefaultValueFactory = _ => 0, Description = "linear sample drift in y over the whole stack, nm" };
        var offsetMap = new Option<string?>("--camera-offset-map") { Description = "sCMOS: TIFF of each sensor pixel's offset, ADU (replaces --offset)" };
        var varianceMap = new Option<string?>("--camera-variance-map") { Description = "sCMOS: TIFF of each sensor pixel's Gaussian read-noise variance, ADU^2 (replaces --read-noise)" };
        var gainMap = new Option<string?>("--camera-gain-map") { Description = "sCMOS: TIFF of each sensor pixel's gain, photons per ADU (replaces --photons-per-adu)" };
        var origin = new Option<string?>("--camera-origin") { Description = "X,Y: the simulated stack's top-left pixel on the maps' sensor, default 0,0" };
        var calibration = new Option<string?>("--calibration") { Description = "3D: astigmatic spots whose widths follow this z calibration (YAML) at each emitter's z" };
        var zRange = new Option<string>("--z-range-nm") { DefaultValueFactory = _ => "-500,500", Description = "MIN,MAX: emitters' stage z drawn uniform in this range, nm (with --calibration)" };
        var beadStep = new Option<double>("--bead-z-step-nm") { DefaultValueFactory = _ => 0, Description = "with --calibration: a bead z-stack instead, every emitter on in every frame at z = --bead-z-first-nm + frame x step" };
        var zPerFrame = new Option<bool>("--z-per-frame") { Description = "with --calibration: draw each emitter's z anew in every frame it is on" };
        var beadFirst = new Option<double>("--bead-z-first-nm") { DefaultValueFactory = _ => 0, Description = "stage z of a bead stack's first frame, nm" };
        var cmd = new Command("simulate", "Simulate a PALM/STORM stack with ground truth.")
        { output, truth, width, height, frames, pattern, emitters, perFrame, density, photons, photonDist, background, sigma, pixel, onFraction, onFrames, offset, ppa, gain, readNoise, seed, driftX, driftY, edgeMargin, minSep,
          offsetMap, varianceMap, gainMap, origin, calibration, zRange, beadStep, beadFirst, zPerFrame };
        cmd.SetAction(r =>
        {
            int w = r.GetValue(width), h = r.GetValue(height);
            double meanOn = r.GetValue(onFrames);
            if (!(meanOn >= 1)) throw new InvalidParameterException("on-frames", $"must be >= 1, got {meanOn}");
            double perF = r.GetValue(perFrame);
            int nEm = r.GetValue(emitters);
            double onFrac = r.GetValue(onFraction);
            if (nEm <= 0) nEm = Math.Max(1, (int)Math.Round(perF / (onFrac > 0 ? onFrac : 0.1)));
            if (onFrac <= 0) onFrac = Math.Min(1, perF / nEm);
            if (!(onFrac > 0 && onFrac <= 1)) throw new InvalidParameterException("on-fraction", $"must be in (0, 1], got {onFrac}");
            // A 2-state chain with mean on-time T has P(on->off) = 1/T; the on-fraction fixes P(off->on).
            double onToOff = onFrac >= 1 ? 0 : 1.0 / meanOn;
            double offToOn = onFrac >= 1 ? 1 : onToOff * onFrac / (1 - onFrac);
            var s = new SimulationSettings
            {
                Width = w, Height = h, Frames = r.GetValue(frames), PixelSizeNm = r.GetValue(pixel),
                EmitterCount = nEm, DensityPerUm2 = r.GetValue(density),
                Photons = r.GetValue(photons), PhotonDistribution = ParseDist(r.GetValue(photonDist)),
                BackgroundPhotons = r.GetValue(background), PsfSigmaPx = r.GetValue(sigma),
                OffToOn = Math.Min(1, offToOn), OnToOff = onToOff,
                OffsetAdu = r.GetValue(offset), PhotonsPerAdu = r.GetValue(ppa), EmGain = r.GetValue(gain), ReadNoiseE = r.GetValue(readNoise),
                Seed = r.GetValue(seed), EdgeMarginPx = r.GetValue(edgeMargin), MinSeparationPx = r.GetValue(minSep),
                Maps = SettingsOptions.ReadMaps(r, offsetMap, varianceMap, gainMap, origin),
            };
            if (r.GetValue(calibration) is { } calPath)
            {
                s.ZCalibration = Engine.Calibration.ZCalibrationFile.Read(calPath, s.PixelSizeNm);
                s.ZCalibration.CheckPixelSize(s.PixelSizeNm);
                var parts = r.GetValue(zRange)!.Split(',');
                if (parts.Length != 2 || !double.TryParse(parts[0], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double z0)
                    || !double.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double z1) || !(z1 >= z0))
                    throw new InvalidParameterException("z-range-nm", $"expected MIN,MAX in nm with MIN <= MAX, got '{r.GetValue(zRange)}'");
                s.ZMinNm = z0; s.ZMaxNm = z1;
                s.BeadZStepNm = r.GetValue(beadStep); s.BeadZFirstNm = r.GetValue(beadFirst); s.ZPerFrame = r.GetValue(zPerFrame);
                if (s.BeadZStepNm > 0) { s.OffToOn = 1; s.OnToOff = 0; s.InitialOnProbability = 1; }
            }
            else if (r.GetValue(beadStep) != 0) throw new InvalidParameterException("bead-z-step-nm", "needs --calibration");
            if (w < 16 || h < 16) throw new InvalidParameterException("width/height", $"simulated frames must be at least 16x16 px, got {w}x{h}");
            s.Validate(); // photons, pixel size... before anything is derived from them
            string pat = r.GetValue(pattern)!.ToLowerInvariant();
            s.Positions = pat switch
            {
                "random" => null,
                "filaments" => Patterns.Filaments(w, h, nEm, s.Seed),
                "grid" => Patterns.Grid(w, h, nEm),
                _ => throw new InvalidParameterException("pattern", $"'{pat}' is not one of random, filaments, grid"),
            };
            double dxPx = r.GetValue(driftX) / s.PixelSizeNm, dyPx = r.GetValue(driftY) / s.PixelSizeNm;
            if (!double.IsFinite(dxPx) || !double.IsFinite(dyPx)) throw new InvalidParameterException("drift", "must be finite");
            int nFrames = Math.Max(1, s.Frames - 1);
            if (dxPx != 0 || dyPx != 0) s.Drift = f => (dxPx * f / nFrames, dyPx * f / nFrames);
            s.Validate();
            var sim = Simulator.Run(s);
            string outPath = r.GetValue(output)!, truthPath = r.GetValue(truth)!;
            TiffWriter.Write(outPath, sim.Frames, sim.Width, sim.Height, sim.FrameCount);
            var locs = new Localization[sim.Truth.Count];
            for (int i = 0; i < locs.Length; i++)
            {
                var t = sim.Truth[i];
                locs[i] = new Localization { Frame = t.Frame, X = (float)t.X, Y = (float)t.Y, Photons = (float)t.Photons,
                    Background = (float)s.BackgroundPhotons, Sigma = (float)s.PsfSigmaPx, Detections = 1,
                    // 3D truth: reported z (the calibration's refractive-index factor applied, as localize reports it).
                    Z = s.ZCalibration is { } zc ? (float)(t.Z * zc.RefractiveIndexFactor) : 0f, UncertaintyZ = 0f,
                    Flags = s.ZCalibration is null ? 0 : Localization.FlagHasZ };
            }
            LocalizationCsv.Write(truthPath, locs, s.PixelSizeNm);
            Console.WriteLine($"wrote {outPath} ({sim.Width}x{sim.Height} px, {sim.FrameCount} frames) and {truthPath} ({locs.Length} emitter-frames of {nEm} emitters)");
            return Commands.ExitOk;
        });
        return cmd;
    }

    private static PhotonDistribution ParseDist(string? v) => v?.ToLowerInvariant() switch
    {
        "fixed" => PhotonDistribution.Fixed, "exponential" => PhotonDistribution.Exponential, "lognormal" => PhotonDistribution.LogNormal,
        _ => throw new InvalidParameterException("photon-distribution", $"'{v}' is not one of fixed, exponential, lognormal"),
    };
}

/// <summary>Emitter layouts for simulations.</summary>
internal static class Patterns
{
    /// <summary>Emitters along a few smooth random curves (microtubule-like).</summary>
    public static List<EmitterPosition> Filaments(int w, int h, int count, int seed)
    {
        var rnd = new Random(seed);
        int nFil = Math.Max(1, Math.Min(8, count / 20));
        var pts = new List<EmitterPosition>(count);
        var curves = new (double X0, double Y0, double Angle, double Bend, double Phase)[nFil];
        for (int f = 0; f < nFil; f++)
            curves[f] = (w * (0.2 + 0.6 * rnd.NextDouble()), h * (0.2 + 0.6 * rnd.NextDouble()), Math.PI * rnd.NextDouble(), 0.15 + 0.2 * rnd.NextDouble(), rnd.NextDouble() * 6.28);
        double len = Math.Max(w, h) * 1.5;
        // Rejection sampling inside the frame; frames are >= 16 px, so a sample lands inside often, but bound it anyway.
        for (long attempt = 0; pts.Count < count; attempt++)
        {
            if (attempt > 1000L * count + 100000) throw new MaLiangException($"simulate: could not place {count} emitters on filaments in a {w}x{h} frame");
            var c = curves[pts.Count % nFil];
            double t = (rnd.NextDouble() - 0.5) * len;
            double ang = c.Angle + c.Bend * Math.Sin(t / (0.25 * len) + c.Phase);
            double x = c.X0 + t * Math.Cos(c.Angle) - 6 * Math.Sin(t / (0.2 * len) + c.Phase) * Math.Sin(ang);
            double y = c.Y0 + t * Math.Sin(c.Angle) + 6 * Math.Sin(t / (0.2 * len) + c.Phase) * Math.Cos(ang);
            if (x < 4 || y < 4 || x > w - 4 || y > h - 4) continue;
            pts.Add(new EmitterPosition(x, y));
        }
        return pts;
    }

    /// <summary>A regular grid of emitters, at least 8 px apart, inside the frame.</summary>
    public static List<EmitterPosition> Grid(int w, int h, int count)
    {
        var pts = new List<EmitterPosition>();
        int side = Math.Max(1, (int)Math.Ceiling(Math.Sqrt(count)));
        double step = Math.Max(8, Math.Min((w - 8) / (double)side, (h - 8) / (double)side));
        for (int j = 0; j < side && pts.Count < count; j++)
            for (int i = 0; i < side && pts.Count < count; i++)
            {
                double x = 4 + step * (i + 0.5) + 0.37 * i % 1, y = 4 + step * (j + 0.5) + 0.21 * j % 1;
                if (x < w - 4 && y < h - 4) pts.Add(new EmitterPosition(x, y));
            }
        return pts;
    }
}
