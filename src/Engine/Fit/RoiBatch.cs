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
    /// <paramref name="readNoiseMap"/>: the frame-sized read-noise variance (photons^2, <see cref="Camera.CameraModel.ReadNoiseMap"/>), if any.</summary>
    public void Add(ReadOnlySpan<float> frame, int width, int frameIndex, int left, int top, ReadOnlySpan<float> readNoiseMap = default)
    {
        Reserve(Count + 1);
        int n = RoiSize;
        var dst = Pixels.AsSpan(Count * n * n, n * n);
        for (int r = 0; r < n; r++) frame.Slice((top + r) * width + left, n).CopyTo(dst.Slice(r * n, n));
        var gamma = ReadNoiseSlot(!readNoiseMap.IsEmpty);
        if (!readNoiseMap.IsEmpty)
            for (int r = 0; r < n; r++) readNoiseMap.Slice((top + r) * width + left, n).CopyTo(gamma.Slice(r * n, n));
        Frame[Count] = frameIndex; Left[Count] = left; Top[Count] = top;
        Count++;
    }

    /// <summary>Appends a ROI given directly (simulations, tests, benchmarks), with its read-noise variance plane (photons^2) if any.</summary>
    public void Add(ReadOnlySpan<float> roiPixels, int frameIndex = 0, int left = 0, int top = 0, ReadOnlySpan<float> roiReadNoise = default)
    {
        if (roiPixels.Length != PixelsPerRoi) throw new ArgumentException($"ROI needs {PixelsPerRoi} pixels, got {roiPixels.Length}");
        if (!roiReadNoise.IsEmpty && roiReadNoise.Length != PixelsPerRoi) throw new ArgumentException($"ROI read noise needs {PixelsPerRoi} pixels, got {roiReadNoise.Length}");
        Reserve(Count + 1);
        roiPixels.CopyTo(Pixels.AsSpan(Count * PixelsPerRoi, PixelsPerRoi));
        var gamma = ReadNoiseSlot(!roiReadNoise.IsEmpty);
        if (!roiReadNoise.IsEmpty) roiReadNoise.CopyTo(gamma);
        Frame[Count] = frameIndex; Left[Count] = left; Top[Count] = top;
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
    /// <summary>The centre ended within 1 px of the ROI's edge (x or y outside [1, n - 1]): dropped.</summary>
    LeftRoi = 3,
}

/// <summary>One fit's estimate in ROI coordinates (pixels, photons) and the square roots of its CRLB.</summary>
public struct FitResult
{
    public float X, Y, Photons, Background, Sigma;
    public float CrlbX, CrlbY, CrlbPhotons, CrlbBackground, CrlbSigma;   // square roots of the CRLB diagonal
    public float LogLikelihood, Llr;
    public int Iterations;
    public FitStatus Status;
    public readonly bool Kept => Status is FitStatus.Converged or FitStatus.MaxIterations;
}

/// <summary>The fit's settings, as every backend needs them.</summary>
public readonly record struct FitOptions(float PsfSigmaPx, bool FixedSigma, int MaxIterations, bool UseTolerance, float Tolerance)
{
    public static FitOptions From(LocalizerSettings s) => new((float)s.PsfSigmaPx, s.FixedSigma, s.Iterations, s.UseTolerance, (float)s.Tolerance);
}

/// <summary>A fitter: CPU SIMD, OpenCL or CUDA. Same math, same stopping rule (DESIGN.md "The fit, in formulas").</summary>
public interface IFitBackend : IDisposable
{
    /// <summary>"cpu", "opencl:DEVICE", "cuda:DEVICE".</summary>
    string Name { get; }
    /// <summary>Fits ROIs [0, batch.Count) into results[0..Count). Thread-safe for distinct batches.</summary>
    void Fit(RoiBatch batch, in FitOptions options, Span<FitResult> results);
}
