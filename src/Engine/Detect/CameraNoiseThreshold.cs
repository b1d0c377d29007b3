using MaLiang.Engine.Denoise;

namespace MaLiang.Engine.Detect;

/// <summary>
/// The detection test against the noise the camera model predicts (DESIGN.md "Detection"), not against the frame's
/// spread, which emitter light inflates in crowded frames: a local maximum of the filtered frame F is a candidate when
/// F &gt; threshold x sqrt(sum_k K_k^2 (E b + gamma_med) + e), with K the filter's impulse response (sum K = 0: the
/// filter removes a flat background), b the local background in photons, E the excess noise factor squared (2 for an
/// EM gain above 1, else 1), gamma_med the median read-noise variance of an sCMOS map (photons^2, 0 without) and e
/// that pixel's excess read-noise variance after the filter (<see cref="ReadNoiseThreshold"/>). The local background
/// is the lower quartile of the photons on the square ring of Chebyshev radius ceil(3 sigma) around the maximum (its
/// emitter's light has fallen below 1% of the peak there; neighbours raise few of the ring's pixels), corrected for the
/// quartile's offset below the mean (0.674 standard deviations). Filters with a non-zero DC response (<c>none</c>)
/// keep the robust-spread threshold.
/// </summary>
public sealed class CameraNoiseThreshold
{
    /// <summary>sum_k K_k^2 of the filter's impulse response.</summary>
    public float KernelSumSquares { get; }
    /// <summary>False for a filter that passes a flat background (the test needs a background-free filtered frame).</summary>
    public bool Applies { get; }
    public int RingRadius { get; }
    public float ExcessFactor { get; }
    private readonly float[] _ring;

    /// <summary>The data's variance over the camera model's (<see cref="LocalizerSettings.NoiseScale"/>).</summary>
    public float NoiseScale { get; }

    public CameraNoiseThreshold(IFrameFilter filter, double psfSigmaPx, double emGain, double noiseScale = 1)
    {
        NoiseScale = (float)noiseScale;
        var taps = ReadNoiseThreshold.Taps(filter);
        double s2 = 0, s1 = 0, peak = 0;
        foreach (var t in taps) { s2 += t.W2; s1 += t.W; peak = Math.Max(peak, Math.Abs(t.W)); }
        KernelSumSquares = (float)s2;
        Applies = Math.Abs(s1) < 1e-3 * Math.Max(peak, 1e-30);
        RingRadius = Math.Max(2, (int)Math.Ceiling(3 * psfSigmaPx));
        ExcessFactor = emGain > 1 ? 2f : 1f;
        _ring = new float[8 * RingRadius];
    }

    /// <summary>The local background (photons/px) around pixel (x, y): see the class remarks.</summary>
    public float LocalBackground(ReadOnlySpan<float> photons, int width, int height, int x, int y, float readNoiseMedian)
    {
        int r = RingRadius, m = 0;
        for (int d = -r; d < r; d++)
        {
            Add(photons, width, height, x + d, y - r, ref m);
            Add(photons, width, height, x + r, y + d, ref m);
            Add(photons, width, height, x - d, y + r, ref m);
            Add(photons, width, height, x - r, y - d, ref m);
        }
        if (m == 0) return 0;
        var ring = _ring.AsSpan(0, m);
        ring.Sort();
        float q = ring[(m - 1) / 4];
        return Math.Max(0, q + 0.674f * MathF.Sqrt(Math.Max(ExcessFactor * q + readNoiseMedian, 0)));
    }

    private void Add(ReadOnlySpan<float> photons, int width, int height, int x, int y, ref int m)
    {
        if ((uint)x < (uint)width && (uint)y < (uint)height) _ring[m++] = photons[y * width + x];
    }

    /// <summary>
    /// The threshold for the maxima search of a frame whose photons' 10% quantile is <paramref name="quantile10"/>: the
    /// camera noise at that lower background (corrected to the mean by 1.28 of its standard deviation) x 0.8, or the
    /// spread's threshold where that is lower. Each maximum is then judged at its own background (<see cref="Apply"/>).
    /// The same on the CPU and GPU paths (they gather the same subsample).
    /// </summary>
    public float Floor(float spreadThreshold, float quantile10, float thresholdFactor, float readNoiseMedian) =>
        Math.Min(spreadThreshold, 0.8f * thresholdFactor * LowerNoise(quantile10, readNoiseMedian));

    /// <summary>Below this many spread-test candidates per um^2 a frame is sparse ...</summary>
    public const double SparseCandidatesPerUm2 = 0.3;
    /// <summary>... when its filtered spread is also within this many times the camera model's noise.</summary>
    public const double SparseSpreadOverCamera = 8;

    /// <summary>
    /// Whether a frame is sparse, so that its candidates are judged by the spread test, which needs no camera model (a
    /// wrong gain, not given, does not flood the output): fewer than <see cref="SparseCandidatesPerUm2"/> maxima per um^2
    /// above the spread threshold and a spread within <see cref="SparseSpreadOverCamera"/> x the camera noise at the
    /// frame's lower background. Crowding raises both. Measured spread / camera noise with the right camera model: 1.14 at
    /// 0.2 emitters per um^2, 1.47 at 0.5, 4.5 at 1, 8.8 at 2, 18 at 4, 24 at 6; the tubulin frame (gain not known): 3.8,
    /// with 0.045 candidates per um^2. Decided per frame, so every binding and push size gives the same results.
    /// </summary>
    public bool Sparse(float spreadStd, float floorStd, int spreadCandidates, double frameUm2) =>
        AutoSparse && spreadCandidates < SparseCandidatesPerUm2 * frameUm2 && spreadStd < SparseSpreadOverCamera * floorStd;

    /// <summary>False: the camera model's test in every frame (<see cref="LocalizerSettings.AutoDetectionTest"/>).</summary>
    public bool AutoSparse { get; init; } = true;

    /// <summary>The camera noise (standard deviation of the filtered frame) at the lower background of a frame whose
    /// photons' 10% quantile is <paramref name="quantile10"/>.</summary>
    public float LowerNoise(float quantile10, float readNoiseMedian)
    {
        float q = quantile10;
        float bLo = float.IsFinite(q) ? Math.Max(0, q + 1.28f * MathF.Sqrt(Math.Max(ExcessFactor * q + readNoiseMedian, 0))) : 0;
        return MathF.Sqrt(Variance(bLo, readNoiseMedian, 0));
    }

    /// <summary>True when the candidate with filtered value <paramref name="value"/> at pixel (x, y) passes its own threshold.</summary>
    public bool Passes(float value, ReadOnlySpan<float> photons, int width, int height, int x, int y, float thresholdFactor,
                       float readNoiseMedian, float excess)
    {
        float b = LocalBackground(photons, width, height, x, y, readNoiseMedian);
        return value > thresholdFactor * MathF.Sqrt(Variance(b, readNoiseMedian, excess));
    }

    /// <summary>The filtered frame's noise variance at a pixel whose local background is <paramref name="background"/>.</summary>
    public float Variance(float background, float readNoiseMedian, float excess) =>
        Math.Max(NoiseScale * (KernelSumSquares * (ExcessFactor * background + readNoiseMedian) + excess), 1e-12f);

    /// <summary>Keeps the candidates above their own threshold (the class remarks); returns how many were dropped.</summary>
    public int Apply(List<Candidate> candidates, ReadOnlySpan<float> photons, int width, int height, float thresholdFactor,
                     float readNoiseMedian, ReadOnlySpan<float> excess)
    {
        int kept = 0;
        for (int i = 0; i < candidates.Count; i++)
        {
            var c = candidates[i];
            if (Passes(c.Value, photons, width, height, c.X, c.Y, thresholdFactor, readNoiseMedian, excess.IsEmpty ? 0 : excess[c.Y * width + c.X]))
                candidates[kept++] = c;
        }
        int dropped = candidates.Count - kept;
        candidates.RemoveRange(kept, dropped);
        return dropped;
    }
}
