using MaLiang.Engine.Denoise;

namespace MaLiang.Engine.Detect;

/// <summary>
/// The detection threshold with an sCMOS read-noise map. The robust noise of the filtered frame (MAD) is the noise of a
/// typical pixel, read noise of the median pixel included; a pixel with more read-noise variance than the median makes
/// the filtered frame noisier wherever the filter's kernel reaches it, and would otherwise pass the threshold as a false
/// maximum. The filters are linear and shift-invariant, so the filtered frame's extra variance at pixel i is
/// sum_k K_k^2 (gamma_(i-k) - median gamma), K the filter's impulse response (taken by filtering a delta image with the
/// filter itself, so it holds for any of them). A candidate is kept when its filtered value exceeds
/// threshold x sqrt(noise^2 + excess_i) (the total variance floored at a quarter of noise^2 where the map is quieter
/// than the median). Computed once per frame size; the per-frame cost is one lookup per candidate.
/// </summary>
public static class ReadNoiseThreshold
{
    /// <summary>Half-width of the delta image the impulse response is taken from (wider than any filter's reach).</summary>
    private const int Reach = 12;

    /// <summary>The filter's impulse response, taken by filtering a delta image with the filter itself (so it holds for
    /// every linear filter): the taps whose squared weight is above 1e-6 of the largest, with their weights.</summary>
    public static List<(int Dx, int Dy, float W, float W2)> Taps(IFrameFilter filter)
    {
        int side = 2 * Reach + 1;
        var delta = new float[side * side];
        var resp = new float[side * side];
        delta[Reach * side + Reach] = 1f;
        filter.Apply(delta, resp, side, side);
        float max = 0;
        foreach (var v in resp) max = Math.Max(max, v * v);
        var taps = new List<(int, int, float, float)>();
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                float w = resp[y * side + x], w2 = w * w;
                if (w2 > 1e-6f * max) taps.Add((x - Reach, y - Reach, w, w2));
            }
        return taps;
    }

    /// <summary>The filtered frame's read-noise variance above the median pixel's, per pixel (photons^2 after the filter).</summary>
    public static float[] Excess(IFrameFilter filter, ReadOnlySpan<float> readNoise, int width, int height)
    {
        int n = width * height;
        if (readNoise.Length < n) throw new ArgumentException($"read-noise map holds {readNoise.Length} pixels, the frame {n}", nameof(readNoise));
        var taps = Taps(filter);
        var sorted = readNoise[..n].ToArray();
        Array.Sort(sorted);
        float median = sorted[(n - 1) / 2];
        var excess = new float[n];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                double acc = 0;
                // Response at (x, y) of the noise at (x - dx, y - dy): pixel i's filtered value gets K(dx, dy) of it.
                foreach (var (dx, dy, _, w2) in taps)
                {
                    int xx = x - dx, yy = y - dy;
                    if ((uint)xx >= (uint)width || (uint)yy >= (uint)height) continue;
                    acc += w2 * (readNoise[yy * width + xx] - median);
                }
                excess[y * width + x] = (float)acc;
            }
        return excess;
    }

    /// <summary>Drops the candidates below their pixel's threshold (see the class remarks) from <paramref name="candidates"/>;
    /// returns how many were dropped.</summary>
    public static int Apply(List<Candidate> candidates, ReadOnlySpan<float> excess, int width, float thresholdFactor, float noiseStd)
    {
        float noise2 = noiseStd * noiseStd;
        int kept = 0;
        for (int i = 0; i < candidates.Count; i++)
        {
            var c = candidates[i];
            float variance = Math.Max(noise2 + excess[c.Y * width + c.X], 0.25f * noise2);
            if (c.Value > thresholdFactor * MathF.Sqrt(variance)) candidates[kept++] = c;
        }
        int dropped = candidates.Count - kept;
        candidates.RemoveRange(kept, dropped);
        return dropped;
    }
}
