namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>Outcome of one joint fit.</summary>
public enum GroupFitStatus : byte
{
    /// <summary>Non-finite model or a singular Fisher matrix during the fit: nothing usable.</summary>
    Failed = 0,
    Converged = 1,
    MaxIterations = 2,
    /// <summary>The fit ended, but the Fisher information at the estimate is singular: no CRLB.</summary>
    NoCrlb = 3,
}

/// <summary>
/// A batch of joint fits (<see cref="IGroupFitter"/>), structure of arrays as the kernels read it: every job's box
/// (data, the fixed model of the emitters outside the group, the sCMOS read-noise variance when the batch has one) packed
/// one after the other, row-major; its width, height and emitter count; theta = [b, x_0, y_0, N_0, x_1, ...] in box
/// pixels (<see cref="GroupFit.MaxParameters"/> per job, updated in place); and the outputs. One instance per caller,
/// reused (cleared) between rounds; no allocation once warmed up.
/// </summary>
public sealed class GroupFitJobs
{
    public const int P = GroupFit.MaxParameters;

    public int Count { get; private set; }
    public int PixelCount { get; private set; }
    /// <summary>Whether the boxes carry a read-noise variance (sCMOS likelihood); one setting per batch.</summary>
    public bool HasGamma { get; private set; }

    public float[] Data = [], Fixed = [], Gamma = [];
    public int[] PixelOffset = [], Width = [], Height = [], Emitters = [];
    /// <summary>In: the start; out: the estimate (Count x <see cref="P"/>).</summary>
    public double[] Theta = [];
    /// <summary>Out: square roots of the CRLB diagonal in theta's order (Count x <see cref="P"/>).</summary>
    public double[] SqrtCrlb = [];
    /// <summary>Out: sum(d ln mu - mu), the goodness of fit 2 sum(mu - d + d ln(d / mu)), iterations run, status.</summary>
    public double[] LogLikelihood = [], Llr = [];
    public int[] Iterations = [];
    public GroupFitStatus[] Status = [];

    public void Clear(bool hasGamma) { Count = 0; PixelCount = 0; HasGamma = hasGamma; }

    /// <summary>Adds a job; returns its index. <paramref name="gamma"/> is read only when the batch has gamma.</summary>
    public int Add(ReadOnlySpan<float> data, ReadOnlySpan<float> fixedModel, ReadOnlySpan<float> gamma, int bw, int bh, int k, ReadOnlySpan<double> theta)
    {
        if (k < 1 || k > GroupFit.MaxEmitters) throw new ArgumentOutOfRangeException(nameof(k), $"1 to {GroupFit.MaxEmitters} emitters, got {k}");
        int bp = bw * bh;
        if (bw < 1 || bh < 1 || data.Length < bp || fixedModel.Length < bp || (HasGamma && gamma.Length < bp))
            throw new ArgumentException($"a {bw} x {bh} box needs {bp} pixels of data, fixed model{(HasGamma ? " and read noise" : "")}");
        int j = Count;
        GrowJobs(j + 1);
        GrowPixels(PixelCount + bp);
        data[..bp].CopyTo(Data.AsSpan(PixelCount));
        fixedModel[..bp].CopyTo(Fixed.AsSpan(PixelCount));
        if (HasGamma) gamma[..bp].CopyTo(Gamma.AsSpan(PixelCount));
        PixelOffset[j] = PixelCount; Width[j] = bw; Height[j] = bh; Emitters[j] = k;
        var t = Theta.AsSpan(j * P, P);
        t.Clear();
        theta[..(3 * k + 1)].CopyTo(t);
        LogLikelihood[j] = Llr[j] = 0; Iterations[j] = 0; Status[j] = GroupFitStatus.Failed;
        PixelCount += bp;
        Count++;
        return j;
    }

    public Span<double> ThetaOf(int job) => Theta.AsSpan(job * P, 3 * Emitters[job] + 1);
    public Span<double> SqrtCrlbOf(int job) => SqrtCrlb.AsSpan(job * P, 3 * Emitters[job] + 1);

    private void GrowJobs(int n)
    {
        if (PixelOffset.Length >= n) return;
        int c = Math.Max(n, Math.Max(64, 2 * PixelOffset.Length));
        Array.Resize(ref PixelOffset, c); Array.Resize(ref Width, c); Array.Resize(ref Height, c); Array.Resize(ref Emitters, c);
        Array.Resize(ref Theta, c * P); Array.Resize(ref SqrtCrlb, c * P);
        Array.Resize(ref LogLikelihood, c); Array.Resize(ref Llr, c); Array.Resize(ref Iterations, c); Array.Resize(ref Status, c);
    }

    private void GrowPixels(int n)
    {
        if (Data.Length >= n) return;
        int c = Math.Max(n, Math.Max(4096, 2 * Data.Length));
        Array.Resize(ref Data, c); Array.Resize(ref Fixed, c); Array.Resize(ref Gamma, c);
    }
}

/// <summary>Runs a batch of joint fits: the CPU (<see cref="CpuGroupFitter"/>, SIMD across groups) or a device
/// (Backends/Gpu/GpuGroupFit over Kernels/group_fit.cl). Both run the same operations in the same order.</summary>
public interface IGroupFitter
{
    void FitAll(GroupFitJobs jobs);
}
