namespace MaLiang.Engine.Fit;

/// <summary>
/// Square sub-regions cut around candidates, ready to fit: pixels in photons, molecule-major
/// (<c>Pixels[m * n * n + row * n + col]</c>), plus where each ROI came from. Reused across frames: no allocation per fit.
/// </summary>
public sealed class RoiBatch
{
    public int RoiSize { get; }
    public int PixelsPerRoi => RoiSize * RoiSize;
    public int Count { get; private set; }
    public int Capacity => Frame.Length;
    public float[] Pixels = Array.Empty<float>();
    /// <summary>0-based frame of each ROI.</summary>
    public int[] Frame = Array.Empty<int>();
    /// <summary>Frame column / row of each ROI's top-left pixel.</summary>
    public int[] Left = Array.Empty<int>();
    public int[] Top = Array.Empty<int>();
    /// <summary>sCMOS read-noise variance of each ROI pixel in photons^2 (the likelihood's shift gamma, DESIGN.md), in the
    /// layout of <see cref="Pixels"/>; meaningful only when <see cref="HasReadNoise"/> (ROIs added without a map get zeros).</summary>
    public float[] ReadNoise = Array.Empty<float>();
    /// <summary>True once an ROI with a read-noise map was added since the last <see cref="Clear"/>: the fit then uses the
    /// sCMOS likelihood. False: pure Poisson, and <see cref="ReadNoise"/> is not read.</summary>
    public bool HasReadNoise { get; private set; }
    /// <summary>Where the detected maximum is in each ROI, as the pixel index row * n + col: the centre pixel
    /// (<see cref="CentrePeak"/>) unless the ROI was shifted to lie inside the frame (<see cref="AddAround"/>). The fit
    /// keeps an estimate only near it (<see cref="FitStatus.LeftRoi"/>).</summary>
    public int[] Peak = Array.Empty<int>();
    /// <summary>The centre pixel's index, (n / 2) * n + n / 2.</summary>
    public int CentrePeak => RoiSize / 2 * RoiSize + RoiSize / 2;

    public RoiBatch(int roiSize, int capacity = 256)
    {
        RoiSize = roiSize;
        Reserve(capacity);
    }

    public void Clear() { Count = 0; HasReadNoise = false; }

    public void Reserve(int capacity)
    {
        if (capacity <= Capacity) return;
        // Pixels is one array (indexed with int): at most Array.MaxLength floats, ~2.2 million 31x31 ROIs.
        long most = Array.MaxLength / PixelsPerRoi;
        if (capacity > most) throw new MaLiangException($"too many ROIs in one batch: {capacity} of {RoiSize}x{RoiSize} px (at most {most}); use smaller chunks");
        capacity = (int)Math.Min(Math.Max(capacity, 2L * Capacity), most);
        Array.Resize(ref Pixels, capacity * PixelsPerRoi);
        Array.Resize(ref Frame, capacity);
        Array.Resize(ref Left, capacity);
        Array.Resize(ref Top, capacity);
        if (ReadNoise.Length > 0) Array.Resize(ref ReadNoise, capacity * PixelsPerRoi);
        Array.Resize(ref Peak, capacity);
    }

    /// <summary>Before adding ROI number <see cref="Count"/>: with a read-noise plane for it, start the planes (zeros for the ROIs
    /// already there); without, give it zeros if the batch has planes.</summary>
    private Span<float> ReadNoiseSlot(bool given)
    {
        int np = PixelsPerRoi;
        if (given && !HasReadNoise)
        {
            if (ReadNoise.Length < Capacity * np) ReadNoise = new float[Capacity * np];
            ReadNoise.AsSpan(0, Count * np).Clear();
            HasReadNoise = true;
        }
        if (!HasReadNoise) return default;
        var slot = ReadNoise.AsSpan(Count * np, np);
        if (!given) slot.Clear();
        return slot;
    }

    /// <summary>Appends the ROI whose top-left pixel is (left, top) of a photon frame; the caller made sure it lies inside.
    /// <paramref name="readNoiseMap"/>: the frame-sized read-noise variance (photons^2, <see cref="Camera.CameraModel.ReadNoiseMap"/>), if any.
    /// <paramref name="peak"/>: the detected maximum's pixel in the ROI (row * n + col), -1 = the centre (required here, so
    /// that a call with four integers is the overload below, unambiguously).</summary>
    public void Add(ReadOnlySpan<float> frame, int width, int frameIndex, int left, int top, int peak, ReadOnlySpan<float> readNoiseMap = default)
    {
        Reserve(Count + 1);
        int n = RoiSize;
        var dst = Pixels.AsSpan(Count * n * n, n * n);
        for (int r = 0; r < n; r++) frame.Slice((top + r) * width + left, n).CopyTo(dst.Slice(r * n, n));
        var gamma = ReadNoiseSlot(!readNoiseMap.IsEmpty);
        if (!readNoiseMap.IsEmpty)
            for (int r = 0; r < n; r++) readNoiseMap.Slice((top + r) * width + left, n).CopyTo(gamma.Slice(r * n, n));
        Frame[Count] = frameIndex; Left[Count] = left; Top[Count] = top; Peak[Count] = peak < 0 ? CentrePeak : peak;
        Count++;
    }

    /// <summary>The top-left corner of the n x n ROI around pixel (x, y) of a width x height frame: centred on it, shifted
    /// just enough to lie inside the frame where it would cross the edge (frames are at least n x n). Also the pixel's
    /// index in that ROI (row * n + col). The one rule for the CPU and the GPU (detect.cl ml_emit) cut-outs.</summary>
    public static (int Left, int Top, int Peak) Place(int x, int y, int width, int height, int n)
    {
        int r = n / 2;
        int left = Math.Clamp(x - r, 0, width - n), top = Math.Clamp(y - r, 0, height - n);
        return (left, top, (y - top) * n + (x - left));
    }

    /// <summary>Appends the ROI around the detected maximum at pixel (x, y) of a photon frame (<see cref="Place"/>), with
    /// the frame-sized read-noise map if any.</summary>
    public void AddAround(ReadOnlySpan<float> frame, int width, int height, int frameIndex, int x, int y, ReadOnlySpan<float> readNoiseMap = default)
    {
        var (left, top, peak) = Place(x, y, width, height, RoiSize);
        Add(frame, width, frameIndex, left, top, peak, readNoiseMap);
    }

    /// <summary>Appends a ROI given directly (simulations, tests, benchmarks), with its read-noise variance plane (photons^2) if
    /// any; <paramref name="peak"/> as in <see cref="Add(ReadOnlySpan{float}, int, int, int, int, int, ReadOnlySpan{float})"/>.</summary>
    public void Add(ReadOnlySpan<float> roiPixels, int frameIndex = 0, int left = 0, int top = 0, int peak = -1, ReadOnlySpan<float> roiReadNoise = default)
    {
        if (roiPixels.Length != PixelsPerRoi) throw new ArgumentException($"ROI needs {PixelsPerRoi} pixels, got {roiPixels.Length}");
        if (peak >= PixelsPerRoi) throw new ArgumentOutOfRangeException(nameof(peak), $"pixel {peak} is outside a {RoiSize}x{RoiSize} ROI");
        if (!roiReadNoise.IsEmpty && roiReadNoise.Length != PixelsPerRoi) throw new ArgumentException($"ROI read noise needs {PixelsPerRoi} pixels, got {roiReadNoise.Length}");
        Reserve(Count + 1);
        roiPixels.CopyTo(Pixels.AsSpan(Count * PixelsPerRoi, PixelsPerRoi));
        var gamma = ReadNoiseSlot(!roiReadNoise.IsEmpty);
        if (!roiReadNoise.IsEmpty) roiReadNoise.CopyTo(gamma);
        Frame[Count] = frameIndex; Left[Count] = left; Top[Count] = top; Peak[Count] = peak < 0 ? CentrePeak : peak;
        Count++;
    }

    public ReadOnlySpan<float> Roi(int i) => Pixels.AsSpan(i * PixelsPerRoi, PixelsPerRoi);

    /// <summary>ROI i's read-noise plane (photons^2), or empty when the batch has none (<see cref="HasReadNoise"/>).</summary>
    public ReadOnlySpan<float> RoiReadNoise(int i) => HasReadNoise ? ReadNoise.AsSpan(i * PixelsPerRoi, PixelsPerRoi) : default;
}

/// <summary>Outcome of one fit.</summary>
public enum FitStatus : byte
{
    Converged = 0,
    /// <summary>Ran to the iteration limit (kept: the paper's fixed-step mode ends this way by design).</summary>
    MaxIterations = 1,
    /// <summary>Non-finite values or a singular Fisher matrix: dropped.</summary>
    Failed = 2,
    /// <summary>The centre ended more than r - 1/2 px (r = n / 2) from the detected maximum's pixel centre in x or y
    /// (<see cref="RoiBatch.Peak"/>; for a centred ROI: x or y outside [1, n - 1], within 1 px of the ROI's edge), where
    /// it belongs to another ROI or to none: dropped.</summary>
    LeftRoi = 3,
    /// <summary>3D: the fitted z left the calibration's z range, where the width curves were not measured: dropped.</summary>
    OutsideZRange = 4,
}

/// <summary>One fit's estimate in ROI coordinates (pixels, photons) and the square roots of its CRLB.</summary>
public struct FitResult
{
    public float X, Y, Photons, Background, Sigma;
    public float CrlbX, CrlbY, CrlbPhotons, CrlbBackground, CrlbSigma;   // square roots of the CRLB diagonal
    public float LogLikelihood, Llr;
    public int Iterations;
    public FitStatus Status;
    /// <summary>3D fits: z in nm of stage z and the square root of its CRLB; free-width fits: the y width (Sigma is x's) and its CRLB.</summary>
    public float Z, CrlbZ, SigmaY, CrlbSigmaY;
    /// <summary>Emitters fitted jointly with this one, itself included (the multi-emitter stage); 0 or 1: a single fit.</summary>
    public int GroupSize;
    public readonly bool Kept => Status is FitStatus.Converged or FitStatus.MaxIterations;
}

/// <summary>The fit's settings, as every backend needs them.</summary>
public readonly record struct FitOptions(float PsfSigmaPx, bool FixedSigma, int MaxIterations, bool UseTolerance, float Tolerance)
{
    public static FitOptions From(LocalizerSettings s) => new((float)s.PsfSigmaPx, s.FixedSigma, s.Iterations, s.UseTolerance, (float)s.Tolerance)
        { ZCalibration = s.ZCalibration };
    /// <summary>3D: fit (x, y, N, b, z) with the astigmatic model of this calibration (Fit/Models/AstigmaticGaussian.cs).</summary>
    public Calibration.ZCalibration? ZCalibration { get; init; }
    /// <summary>Fit (x, y, N, b, sigma_x, sigma_y) with free widths (the bead fit of calibrate-z); ignored with a calibration.</summary>
    public bool FreeWidths { get; init; }
}

/// <summary>A fitter: CPU SIMD, OpenCL or CUDA. Same math, same stopping rule (DESIGN.md "The fit, in formulas").</summary>
public interface IFitBackend : IDisposable
{
    /// <summary>"cpu", "opencl:DEVICE", "cuda:DEVICE".</summary>
    string Name { get; }
    /// <summary>Fits ROIs [0, batch.Count) into results[0..Count). Thread-safe for distinct batches.</summary>
    void Fit(RoiBatch batch, in FitOptions options, Span<FitResult> results);
}
