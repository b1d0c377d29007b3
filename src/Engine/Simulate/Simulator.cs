using MaLiang.Engine.Camera;

namespace MaLiang.Engine.Simulate;

/// <summary>How the photon count of an emitter's on-frame is drawn.</summary>
public enum PhotonDistribution
{
    /// <summary>Every on-frame emits <see cref="SimulationSettings.Photons"/>.</summary>
    Fixed = 0,
    /// <summary>Exponential with mean <see cref="SimulationSettings.Photons"/>.</summary>
    Exponential = 1,
    /// <summary>Log-normal with mean <see cref="SimulationSettings.Photons"/> and log-space sigma <see cref="SimulationSettings.PhotonsLogSigma"/>.</summary>
    LogNormal = 2,
}

/// <summary>A position (px, DESIGN.md convention: pixel column c spans [c, c+1)).</summary>
public readonly record struct EmitterPosition(double X, double Y);

/// <summary>Everything <see cref="Simulator"/> needs. Units are in the names.</summary>
public sealed class SimulationSettings
{
    public int Width { get; set; } = 64;
    public int Height { get; set; } = 64;
    public int Frames { get; set; } = 1;
    public double PixelSizeNm { get; set; } = 100;

    /// <summary>Number of emitters placed at random (ignored when <see cref="DensityPerUm2"/> &gt; 0 or <see cref="Positions"/> is set).</summary>
    public int EmitterCount { get; set; } = 10;
    /// <summary>Emitters per square micrometre of the frame (when &gt; 0, overrides <see cref="EmitterCount"/>).</summary>
    public double DensityPerUm2 { get; set; }
    /// <summary>Fixed emitter positions (structures: filaments, grids...); when set, nothing is placed at random.</summary>
    public IReadOnlyList<EmitterPosition>? Positions { get; set; }
    /// <summary>Random positions keep this far from the frame's edges (px).</summary>
    public double EdgeMarginPx { get; set; }
    /// <summary>Random positions keep at least this far apart (px); 0 = no constraint.</summary>
    public double MinSeparationPx { get; set; }

    /// <summary>Photons per on-frame (mean for the random distributions).</summary>
    public double Photons { get; set; } = 1000;
    public PhotonDistribution PhotonDistribution { get; set; } = PhotonDistribution.Fixed;
    public double PhotonsLogSigma { get; set; } = 0.3;
    /// <summary>Background photons per pixel per frame.</summary>
    public double BackgroundPhotons { get; set; } = 10;
    public double PsfSigmaPx { get; set; } = 1.3;

    /// <summary>Per-frame probability that an off emitter switches on (2-state Markov chain).</summary>
    public double OffToOn { get; set; } = 1;
    /// <summary>Per-frame probability that an on emitter switches off.</summary>
    public double OnToOff { get; set; }
    /// <summary>Per on-frame probability that an emitter bleaches (never emits again); 0 = no bleaching.</summary>
    public double BleachPerOnFrame { get; set; }
    /// <summary>Probability that an emitter is on in frame 0; null = the chain's stationary on-fraction
    /// OffToOn / (OffToOn + OnToOff) (1 when both are 0).</summary>
    public double? InitialOnProbability { get; set; }

    /// <summary>Sample drift: (dx, dy) px added to every emitter in a frame (0-based frame index). Null = none.</summary>
    public Func<int, (double Dx, double Dy)>? Drift { get; set; }

    // Camera
    public double OffsetAdu { get; set; } = 100;
    /// <summary>Photoelectrons per A/D count (ThunderSTORM's name, <see cref="CameraModel.PhotonsPerAdu"/>).</summary>
    public double PhotonsPerAdu { get; set; } = 1;
    /// <summary>EM gain; &gt; 1 draws the gain register's output as Gamma(shape = photoelectrons, scale = gain) (EMCCD excess noise).</summary>
    public double EmGain { get; set; } = 1;
    /// <summary>Gaussian read noise, electrons rms at the output (after the EM gain).</summary>
    public double ReadNoiseE { get; set; }

    /// <summary>sCMOS: per-pixel offset (ADU), read-noise variance (ADU^2) and gain (photons per ADU) of the sensor, the
    /// stack at their origin. Where a map is given it replaces <see cref="OffsetAdu"/>, <see cref="ReadNoiseE"/> or
    /// <see cref="PhotonsPerAdu"/> for that pixel: ADU = offset_i + electrons / gain_i + N(0, variance_i).</summary>
    public CameraMaps? Maps { get; set; }

    public int Seed { get; set; } = 1;

    /// <summary>3D: astigmatic spots whose widths follow this calibration's curves at each emitter's z (stage z, nm),
    /// drawn uniform in [<see cref="ZMinNm"/>, <see cref="ZMaxNm"/>] once per emitter. Null: round spots of <see cref="PsfSigmaPx"/>.</summary>
    public Calibration.ZCalibration? ZCalibration { get; set; }
    public double ZMinNm { get; set; } = -500;
    public double ZMaxNm { get; set; } = 500;
    /// <summary>With a calibration and a step &gt; 0: a bead z-stack, every emitter on in every frame at z = <see cref="BeadZFirstNm"/> + frame x step.</summary>
    public double BeadZStepNm { get; set; }
    public double BeadZFirstNm { get; set; }
    /// <summary>With a calibration: draw each emitter's z anew in every frame it is on (precision across z from a few fixed
    /// positions, e.g. a grid of isolated emitters) instead of once per emitter.</summary>
    public bool ZPerFrame { get; set; }

    /// <summary>The camera model the localizer should use to undo this simulation's conversion.</summary>
    public CameraModel Camera() => new(OffsetAdu, PhotonsPerAdu, EmGain);

    public void Validate()
    {
        if (Width < 1 || Height < 1 || Frames < 1) throw new InvalidParameterException("size", $"need width, height, frames >= 1, got {Width}x{Height}x{Frames}");
        if ((long)Width * Height * Frames > int.MaxValue) throw new InvalidParameterException("size", "stack too large for one array");
        if (!(PsfSigmaPx > 0)) throw new InvalidParameterException("psf-sigma", $"must be > 0, got {PsfSigmaPx}");
        if (!(Photons >= 0) || !(BackgroundPhotons >= 0)) throw new InvalidParameterException("photons", "photons and background must be >= 0");
        if (!(PhotonsPerAdu > 0) || !(EmGain >= 1)) throw new InvalidParameterException("camera", "photons-per-adu must be > 0 and em-gain >= 1");
        if (!(ReadNoiseE >= 0)) throw new InvalidParameterException("read-noise", $"must be >= 0, got {ReadNoiseE}");
        foreach (var (p, name) in new[] { (OffToOn, "off-to-on"), (OnToOff, "on-to-off"), (BleachPerOnFrame, "bleach") })
            if (!(p >= 0 && p <= 1)) throw new InvalidParameterException(name, $"probability must be in [0, 1], got {p}");
        Maps?.CheckCovers(Width, Height, "the simulated stack");
        if (ZCalibration is not null && !(ZMaxNm >= ZMinNm)) throw new InvalidParameterException("z-range", $"needs min <= max, got {ZMinNm}..{ZMaxNm}");
        if (!(BeadZStepNm >= 0) || !double.IsFinite(BeadZStepNm)) throw new InvalidParameterException("z-step-nm", $"must be >= 0, got {BeadZStepNm}");
        if (Width - 2 * EdgeMarginPx <= 0 || Height - 2 * EdgeMarginPx <= 0) throw new InvalidParameterException("edge-margin", $"{EdgeMarginPx} px leaves no room");
    }
}

/// <summary>One emitter in one frame in which it was on.</summary>
public struct TruthEmitter
{
    /// <summary>0-based frame.</summary>
    public int Frame;
    /// <summary>Where it was drawn in that frame (px, DESIGN.md convention, drift included: subtract
    /// <see cref="SimulationSettings.Drift"/>(Frame) for the sample position).</summary>
    public double X, Y;
    /// <summary>Expected photons this frame (before shot noise).</summary>
    public double Photons;
    public int EmitterId;
    /// <summary>3D simulations: stage z (nm) of the emitter in this frame; 0 otherwise.</summary>
    public double Z;
}

public sealed class SimulationResult
{
    /// <summary>Raw camera frames (ADU), frame-major, row-major.</summary>
    public required ushort[] Frames { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int FrameCount { get; init; }
    /// <summary>Every (emitter, on-frame), ordered by frame then emitter id.</summary>
    public required List<TruthEmitter> Truth { get; init; }
    /// <summary>Sample positions of all emitters (drift not included), index = EmitterId.</summary>
    public required EmitterPosition[] Emitters { get; init; }

    public ReadOnlySpan<ushort> Frame(int f) => Frames.AsSpan(f * Width * Height, Width * Height);
}

/// <summary>
/// Simulates PALM/STORM stacks: expected photons per pixel = background + N x integrated Gaussian
/// (<see cref="IntegratedGaussian"/>, DESIGN.md PSF), Poisson shot noise (quantum efficiency 1: photons =
/// photoelectrons), then the camera: EM gain
/// (Gamma(n, gain)), Gaussian read noise (e-), conversion to ADU by <see cref="CameraModel.ToAdu"/>, rounded and
/// clamped to uint16. Emitters blink as a 2-state Markov chain with optional bleaching. Deterministic for a seed.
/// </summary>
public static class Simulator
{
    /// <summary>The PSF is evaluated out to this many sigma (plus one pixel) around each emitter; the mass beyond is &lt; 1e-6.</summary>
    public const double PsfExtentSigma = 5;

    public static SimulationResult Run(SimulationSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        s.Validate();
        var rng = new Sampling(s.Seed);
        var emitters = PlaceEmitters(s, rng);
        int w = s.Width, h = s.Height, n = w * h;
        var frames = new ushort[(long)n * s.Frames];
        var truth = new List<TruthEmitter>();
        var expected = new double[n];
        var on = new bool[emitters.Length];
        var bleached = new bool[emitters.Length];
        double pOn0 = s.InitialOnProbability ?? (s.OffToOn + s.OnToOff > 0 ? s.OffToOn / (s.OffToOn + s.OnToOff) : 1);
        for (int e = 0; e < on.Length; e++) on[e] = rng.Uniform() < pOn0;
        var camera = s.Camera();
        var mapOffset = s.Maps?.Crop(s.Maps.OffsetAdu, w, h);
        var mapVariance = s.Maps?.Crop(s.Maps.VarianceAdu2, w, h);
        var mapGain = s.Maps?.Crop(s.Maps.GainPhotonsPerAdu, w, h);
        var cal = s.ZCalibration;
        bool beads = cal is not null && s.BeadZStepNm > 0;
        // z per emitter drawn after the placement and the blinking start, so a 2D simulation's random stream is unchanged.
        double[]? zEmitter = cal is null || beads ? null : new double[emitters.Length];
        if (zEmitter is not null) for (int e = 0; e < zEmitter.Length; e++) zEmitter[e] = s.ZMinNm + rng.Uniform() * (s.ZMaxNm - s.ZMinNm);
        double maxSigma = cal is null ? s.PsfSigmaPx : Math.Max(cal.MaxSigmaPx(), Math.Max(
            Math.Max(cal.X.SigmaPx(s.ZMinNm), cal.X.SigmaPx(s.ZMaxNm)), Math.Max(cal.Y.SigmaPx(s.ZMinNm), cal.Y.SigmaPx(s.ZMaxNm))));
        if (beads) maxSigma = Math.Max(maxSigma, Math.Max(Math.Max(cal!.X.SigmaPx(s.BeadZFirstNm), cal.Y.SigmaPx(s.BeadZFirstNm)),
            Math.Max(cal.X.SigmaPx(s.BeadZFirstNm + (s.Frames - 1) * s.BeadZStepNm), cal.Y.SigmaPx(s.BeadZFirstNm + (s.Frames - 1) * s.BeadZStepNm))));
        int ext = (int)Math.Ceiling(PsfExtentSigma * maxSigma) + 1;
        var ex = new double[2 * ext + 2];
        var ey = new double[2 * ext + 2];

        for (int f = 0; f < s.Frames; f++)
        {
            if (f > 0)
            {
                for (int e = 0; e < on.Length; e++)
                {
                    if (bleached[e]) continue;
                    on[e] = on[e] ? rng.Uniform() >= s.OnToOff : rng.Uniform() < s.OffToOn;
                }
            }
            var (dx, dy) = s.Drift?.Invoke(f) ?? (0.0, 0.0);
            Array.Fill(expected, s.BackgroundPhotons);
            for (int e = 0; e < emitters.Length; e++)
            {
                if (!on[e] || bleached[e]) continue;
                double photons = s.PhotonDistribution switch
                {
                    PhotonDistribution.Exponential => rng.Exponential(s.Photons),
                    PhotonDistribution.LogNormal => rng.LogNormal(s.Photons, s.PhotonsLogSigma),
                    _ => s.Photons,
                };
                double x = emitters[e].X + dx, y = emitters[e].Y + dy;
                if (s.ZPerFrame && zEmitter is not null) zEmitter[e] = s.ZMinNm + rng.Uniform() * (s.ZMaxNm - s.ZMinNm);
                double z = beads ? s.BeadZFirstNm + f * s.BeadZStepNm : zEmitter?[e] ?? 0;
                truth.Add(new TruthEmitter { Frame = f, X = x, Y = y, Photons = photons, EmitterId = e, Z = z });
                if (cal is null) AddSpot(expected, w, h, x, y, photons, s.PsfSigmaPx, s.PsfSigmaPx, ext, ex, ey);
                else AddSpot(expected, w, h, x, y, photons, cal.X.SigmaPx(z), cal.Y.SigmaPx(z), ext, ex, ey);
                if (s.BleachPerOnFrame > 0 && rng.Uniform() < s.BleachPerOnFrame) bleached[e] = true;
            }
            var dst = frames.AsSpan(f * n, n);
            for (int i = 0; i < n; i++)
            {
                double electrons = rng.Poisson(expected[i]);
                if (s.EmGain > 1 && electrons > 0) electrons = rng.Gamma(electrons, s.EmGain);
                double adu;
                if (s.Maps is null)
                {
                    if (s.ReadNoiseE > 0) electrons += s.ReadNoiseE * rng.Normal();
                    // back to the photon scale of CameraModel: photons = electrons out / gain
                    adu = camera.ToAdu((float)(electrons / s.EmGain));
                }
                else
                {
                    // sCMOS: each pixel its own offset, gain and Gaussian read noise (in ADU, the maps' unit).
                    double gain = mapGain?[i] ?? s.PhotonsPerAdu;
                    adu = (mapOffset?[i] ?? s.OffsetAdu) + electrons / gain;
                    if (mapVariance is not null) adu += Math.Sqrt(mapVariance[i]) * rng.Normal();
                    else if (s.ReadNoiseE > 0) adu += s.ReadNoiseE / gain * rng.Normal();
                }
                dst[i] = (ushort)Math.Clamp(Math.Floor(adu + 0.5), 0, ushort.MaxValue);
            }
        }
        return new SimulationResult { Frames = frames, Width = w, Height = h, FrameCount = s.Frames, Truth = truth, Emitters = emitters };
    }

    /// <summary>Adds photons x integrated Gaussian at (x, y) into a frame of expected photons (pixels within
    /// <paramref name="ext"/> px of the centre pixel; outside the frame is lost, as on a camera).</summary>
    private static void AddSpot(double[] expected, int w, int h, double x, double y, double photons, double sigma, double sigmaY, int ext,
                                Span<double> ex, Span<double> ey)
    {
        int cx = (int)Math.Floor(x), cy = (int)Math.Floor(y);
        int x0 = Math.Max(0, cx - ext), x1 = Math.Min(w - 1, cx + ext);
        int y0 = Math.Max(0, cy - ext), y1 = Math.Min(h - 1, cy + ext);
        if (x0 > x1 || y0 > y1) return;
        var fx = ex[..(x1 - x0 + 1)];
        var fy = ey[..(y1 - y0 + 1)];
        IntegratedGaussian.PixelFractions(x0, x, sigma, fx);
        IntegratedGaussian.PixelFractions(y0, y, sigmaY, fy);
        for (int r = 0; r < fy.Length; r++)
        {
            double py = photons * fy[r];
            int row = (y0 + r) * w + x0;
            for (int c = 0; c < fx.Length; c++) expected[row + c] += py * fx[c];
        }
    }

    private static EmitterPosition[] PlaceEmitters(SimulationSettings s, Sampling rng)
    {
        if (s.Positions != null) return s.Positions.ToArray();
        int count = s.DensityPerUm2 > 0
            ? (int)Math.Round(s.DensityPerUm2 * s.Width * s.Height * Math.Pow(s.PixelSizeNm / 1000.0, 2))
            : s.EmitterCount;
        var list = new EmitterPosition[count];
        double m = s.EdgeMarginPx, minSep2 = s.MinSeparationPx * s.MinSeparationPx;
        for (int i = 0; i < count; i++)
        {
            int tries = 0;
            while (true)
            {
                var p = new EmitterPosition(m + rng.Uniform() * (s.Width - 2 * m), m + rng.Uniform() * (s.Height - 2 * m));
                bool ok = true;
                if (minSep2 > 0)
                    for (int j = 0; j < i && ok; j++)
                    {
                        double ddx = list[j].X - p.X, ddy = list[j].Y - p.Y;
                        ok = ddx * ddx + ddy * ddy >= minSep2;
                    }
                if (ok) { list[i] = p; break; }
                if (++tries > 10000)
                    throw new InvalidParameterException("min-separation", $"could not place emitter {i + 1} of {count} at least {s.MinSeparationPx} px from the others");
            }
        }
        return list;
    }

    /// <summary>
    /// Isolated single-emitter ROIs for fit benchmarks and tests: Poisson-sampled photons (no camera),
    /// molecule-major (<c>count x roiSize x roiSize</c>, the <see cref="Fit.RoiBatch"/> layout). True positions are
    /// in ROI coordinates, uniform within +-0.5 px of the central pixel's centre (roiSize/2 + 0.5).
    /// </summary>
    public static float[] IsolatedRois(int count, int roiSize, double photons, double background, double sigma, int seed,
                                       out double[] trueX, out double[] trueY)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (roiSize < 1) throw new ArgumentOutOfRangeException(nameof(roiSize));
        if (!(sigma > 0)) throw new ArgumentOutOfRangeException(nameof(sigma));
        var rng = new Sampling(seed);
        int n2 = roiSize * roiSize;
        var pixels = new float[(long)count * n2];
        trueX = new double[count];
        trueY = new double[count];
        var fx = new double[roiSize];
        var fy = new double[roiSize];
        double c = roiSize / 2 + 0.5;
        for (int m = 0; m < count; m++)
        {
            double x = c + rng.Uniform() - 0.5, y = c + rng.Uniform() - 0.5;
            trueX[m] = x; trueY[m] = y;
            IntegratedGaussian.PixelFractions(0, x, sigma, fx);
            IntegratedGaussian.PixelFractions(0, y, sigma, fy);
            for (int r = 0; r < roiSize; r++)
                for (int col = 0; col < roiSize; col++)
                    pixels[m * n2 + r * roiSize + col] = rng.Poisson(background + photons * fx[col] * fy[r]);
        }
        return pixels;
    }

    /// <summary>
    /// <see cref="IsolatedRois"/> for the astigmatic model: z uniform in [zMinNm, zMaxNm] (stage z), widths from the
    /// calibration's curves (double precision, <see cref="IntegratedGaussian"/>), Poisson photons.
    /// </summary>
    public static float[] IsolatedAstigmaticRois(int count, int roiSize, double photons, double background, Calibration.ZCalibration calibration,
                                                 double zMinNm, double zMaxNm, int seed, out double[] trueX, out double[] trueY, out double[] trueZ)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        var rng = new Sampling(seed);
        int n2 = roiSize * roiSize;
        var pixels = new float[(long)count * n2];
        trueX = new double[count]; trueY = new double[count]; trueZ = new double[count];
        var fx = new double[roiSize];
        var fy = new double[roiSize];
        double c = roiSize / 2 + 0.5;
        for (int m = 0; m < count; m++)
        {
            double x = c + rng.Uniform() - 0.5, y = c + rng.Uniform() - 0.5, z = zMinNm + rng.Uniform() * (zMaxNm - zMinNm);
            trueX[m] = x; trueY[m] = y; trueZ[m] = z;
            IntegratedGaussian.PixelFractions(0, x, calibration.X.SigmaPx(z), fx);
            IntegratedGaussian.PixelFractions(0, y, calibration.Y.SigmaPx(z), fy);
            for (int r = 0; r < roiSize; r++)
                for (int col = 0; col < roiSize; col++)
                    pixels[m * n2 + r * roiSize + col] = rng.Poisson(background + photons * fx[col] * fy[r]);
        }
        return pixels;
    }
}
