namespace MaLiang.Engine.Denoise;

/// <summary>
/// A de-noising filter run on a photon frame before detection (DESIGN.md: Camera -> Denoise -> Detect).
/// An instance owns its scratch buffers (grown on demand, never shrunk) and is NOT thread-safe:
/// keep one per worker thread. <see cref="Apply"/> allocates nothing once the scratch fits the frame.
/// </summary>
public interface IFrameFilter
{
    /// <summary>Filters <paramref name="photons"/> (row-major, width x height) into <paramref name="filtered"/>
    /// (same layout; must not overlap the input).</summary>
    void Apply(ReadOnlySpan<float> photons, Span<float> filtered, int width, int height);
}

/// <summary>Creates the filter that <see cref="LocalizerSettings.Filter"/> names.</summary>
public static class FrameFilters
{
    /// <summary>A new filter instance (one per thread).</summary>
    public static IFrameFilter Create(LocalizerSettings s) => s.Filter switch
    {
        FilterKind.Maliang => new MaliangFilter(s.FilterBoxPx),
        FilterKind.Wavelet => new WaveletFilter(),
        FilterKind.None => new NoFilter(),
        _ => throw new InvalidParameterException("filter", $"unknown filter {(int)s.Filter}"),
    };

    internal static void CheckArgs(ReadOnlySpan<float> photons, Span<float> filtered, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"frame must be at least 1x1, got {width}x{height}");
        long n = (long)width * height;
        if (photons.Length < n) throw new ArgumentException($"input holds {photons.Length} pixels, frame needs {n}", nameof(photons));
        if (filtered.Length < n) throw new ArgumentException($"output holds {filtered.Length} pixels, frame needs {n}", nameof(filtered));
    }

    internal static void Grow(ref float[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new float[length];
    }
}
