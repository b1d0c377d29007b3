using System.Numerics;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Detect;

/// <summary>
/// Robust noise level of a filtered frame: 1.4826 x MAD, the median absolute deviation from the median,
/// which equals the standard deviation for Gaussian noise and ignores the few bright spots; then, by default, once more
/// on the samples within 3 such deviations of the median (one sigma-clipping step). In a frame with many emitters the
/// filter's response to them (peaks and the negative rings of its annulus) is a large share of the samples and inflates
/// the MAD, and the detection threshold with it: 2.2x a sparse frame's estimate at 0.5 emitters/um2, 4.9x at 1, 11.5x
/// at 2 (sigma 1.3 px, 1500 photons, 10/px); the clipped estimate is 1.5x, 3.7x and 9.5x, and equal to the MAD on
/// sparse frames (1.179 vs 1.185).
/// <para>Computed on a deterministic subsample: every <see cref="Stride"/>-th pixel in raster order
/// (stride ~ pixels / <see cref="TargetSamples"/>, bumped to be coprime with the width so the samples do
/// not fall on the same few columns). Medians by exact radix selection (three histogram passes), not a sort;
/// the median of an even count is the lower middle element. Non-finite pixels are skipped.</para>
/// </summary>
public static class NoiseEstimator
{
    /// <summary>About this many pixels are sampled (all of them in frames smaller than this).</summary>
    public const int TargetSamples = 16384;
    /// <summary>MAD -> standard deviation for Gaussian noise (1 / Phi^-1(3/4)).</summary>
    public const float MadToStd = 1.4826f;

    /// <summary>About this many pixels are sampled for the photon quantile of the camera-noise test (<see cref="Quantile"/>):
    /// a lower quantile needs fewer samples than a MAD, and it is taken on every frame.</summary>
    public const int QuantileSamples = 4096;

    /// <summary>Sampling stride in pixels for a frame of this size.</summary>
    public static int Stride(int width, int height) => Stride(width, height, TargetSamples);

    /// <summary>Sampling stride for about <paramref name="target"/> samples, coprime with the width (no column aliasing).</summary>
    public static int Stride(int width, int height, int target)
    {
        long n = (long)width * height;
        int k = (int)Math.Max(1, n / target);
        while (k > 1 && Gcd(k, width) != 1) k++;
        return k;
    }

    /// <summary>Pixels sampled from a frame of this size (all finite ones when fewer than <see cref="TargetSamples"/>).</summary>
    public static int SampleCount(int width, int height) => SampleCount(width, height, TargetSamples);

    /// <summary>Pixels sampled at <see cref="Stride(int, int, int)"/> for <paramref name="target"/>.</summary>
    public static int SampleCount(int width, int height, int target)
    {
        long n = (long)width * height;
        int k = Stride(width, height, target);
        return (int)((n + k - 1) / k);
    }

    /// <summary>Scratch length (floats) <see cref="RobustStd"/> and <see cref="Median"/> need: twice <see cref="SampleCount"/>.</summary>
    public static int ScratchLength(int width, int height) => 2 * SampleCount(width, height);

    /// <summary>1.4826 x median(|f - median(f)|) over the subsample, then over the samples within 3 of those of the median.
    /// <paramref name="scratch"/> needs <see cref="ScratchLength"/> floats. Returns 0 when no finite pixel was sampled.
    /// <paramref name="clip"/>: one sigma-clipping step (default; false: the MAD alone, as before it).</summary>
    public static float RobustStd(ReadOnlySpan<float> filtered, int width, int height, Span<float> scratch, bool clip = true)
    {
        var s = Gather(filtered, width, height, scratch);
        return RobustStdOfFinite(s, scratch.Slice(s.Length, s.Length), clip);
    }

    /// <summary>Lower median of the subsample (see the class remarks); NaN when no finite pixel was sampled.
    /// <paramref name="scratch"/> needs <see cref="ScratchLength"/> floats.</summary>
    public static float Median(ReadOnlySpan<float> frame, int width, int height, Span<float> scratch)
    {
        var s = Gather(frame, width, height, scratch);
        return MedianOfFinite(s, scratch.Slice(s.Length, s.Length));
    }

    /// <summary>The value below which a fraction <paramref name="q"/> of the subsampled pixels lie (a lower quantile: the
    /// background level of a crowded frame, where the median is raised by emitter light); NaN when none is finite.</summary>
    public static float Quantile(ReadOnlySpan<float> frame, int width, int height, Span<float> scratch, double q)
    {
        var s = Gather(frame, width, height, scratch, QuantileSamples);
        return QuantileOfFinite(s, scratch.Slice(s.Length, s.Length), q);
    }

    /// <summary><see cref="Quantile"/> of an already gathered subsample (reordered; the GPU detector gathers on the device).</summary>
    public static float QuantileOfSamples(Span<float> samples, Span<float> work, double q) => QuantileOfFinite(KeepFinite(samples), work, q);

    private static float QuantileOfFinite(Span<float> s, Span<float> work, double q)
    {
        int m = s.Length;
        if (m == 0) return float.NaN;
        return Selection.RadixSelect(s, (int)Math.Clamp(q * (m - 1), 0, m - 1), MemoryMarshal.Cast<float, uint>(work[..m]));
    }

    /// <summary>The formula of <see cref="RobustStd"/> on an already gathered subsample (the GPU detector gathers on the
    /// device): 1.4826 x lower-median(|v - lower-median(v)|) of the finite values. Reorders and overwrites
    /// <paramref name="samples"/>; <paramref name="work"/> needs as many floats. 0 when none is finite.</summary>
    public static float RobustStdOfSamples(Span<float> samples, Span<float> work, bool clip = true) => RobustStdOfFinite(KeepFinite(samples), work, clip);

    /// <summary>The lower median of the finite values of an already gathered subsample (reordered); NaN when none is
    /// finite. <paramref name="work"/> needs as many floats as <paramref name="samples"/>.</summary>
    public static float MedianOfSamples(Span<float> samples, Span<float> work) => MedianOfFinite(KeepFinite(samples), work);

    private static float RobustStdOfFinite(Span<float> s, Span<float> work, bool clip)
    {
        int m = s.Length;
        if (m == 0) return 0f;
        float med = Selection.RadixSelect(s, (m - 1) / 2, MemoryMarshal.Cast<float, uint>(work[..m]));
        float std = Mad(s, med, work[..m]);
        if (!clip) return std;
        // One clipping step: the samples within 3 deviations of the median, moved to the front, and their MAD.
        float lim = 3f * std;
        int k = 0;
        for (int i = 0; i < m; i++) if (MathF.Abs(s[i] - med) <= lim) s[k++] = s[i];
        if (k == m || k < 16) return std;
        var kept = s[..k];
        med = Selection.RadixSelect(kept, (k - 1) / 2, MemoryMarshal.Cast<float, uint>(work[..k]));
        return Mad(kept, med, work[..k]);
    }

    /// <summary>1.4826 x lower-median(|v - med|); <paramref name="v"/> is left as it is, <paramref name="work"/> (as long) is overwritten.</summary>
    private static float Mad(ReadOnlySpan<float> v, float med, Span<float> work)
    {
        v.CopyTo(work);
        AbsDeviation(work, med);
        var keys = MemoryMarshal.Cast<float, uint>(work);
        Selection.ToKeys(work, keys);
        return MadToStd * Selection.FromKey(Selection.SelectKeys(keys, (v.Length - 1) / 2));
    }

    private static float MedianOfFinite(Span<float> s, Span<float> work)
    {
        int m = s.Length;
        return m == 0 ? float.NaN : Selection.RadixSelect(s, (m - 1) / 2, MemoryMarshal.Cast<float, uint>(work[..m]));
    }

    /// <summary>Moves the finite values to the front (non-finite pixels are skipped, see the class remarks); the CPU path's
    /// <see cref="Gather"/> skips them while sampling.</summary>
    private static Span<float> KeepFinite(Span<float> v)
    {
        int m = 0;
        for (int i = 0; i < v.Length; i++) if (float.IsFinite(v[i])) v[m++] = v[i];
        return v[..m];
    }

    private static Span<float> Gather(ReadOnlySpan<float> frame, int width, int height, Span<float> scratch, int target = TargetSamples)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"frame must be at least 1x1, got {width}x{height}");
        int n = width * height;
        if (frame.Length < n) throw new ArgumentException($"frame holds {frame.Length} pixels, needs {n}", nameof(frame));
        int need = ScratchLength(width, height);
        if (scratch.Length < need) throw new ArgumentException($"scratch holds {scratch.Length} floats, needs {need}", nameof(scratch));
        int k = Stride(width, height, target), m = 0;
        for (int i = 0; i < n; i += k)
        {
            float v = frame[i];
            if (float.IsFinite(v)) scratch[m++] = v;
        }
        return scratch[..m];
    }

    private static void AbsDeviation(Span<float> s, float med)
    {
        var vm = new Vector<float>(med);
        var v = MemoryMarshal.Cast<float, Vector<float>>(s);
        for (int i = 0; i < v.Length; i++) v[i] = Vector.Abs(v[i] - vm);
        for (int i = v.Length * Vector<float>.Count; i < s.Length; i++) s[i] = MathF.Abs(s[i] - med);
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }
}
