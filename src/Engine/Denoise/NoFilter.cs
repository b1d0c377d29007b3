using System.Numerics;
using System.Runtime.InteropServices;
using MaLiang.Engine.Detect;

namespace MaLiang.Engine.Denoise;

/// <summary>
/// "No filter": detection on the photon image with its background level removed,
/// <c>F = CopyScale x (I - median(I))</c>, the median taken over the same deterministic subsample as
/// <see cref="NoiseEstimator"/> (a robust, flat background estimate: fine for the even illumination of
/// single-molecule frames; use a real filter for uneven backgrounds). With the threshold set as a multiple of
/// the robust noise this behaves like the other filters: a flat image gives 0 and the noise is the
/// raw pixel noise. <see cref="CopyScale"/> (default 1) scales the output, e.g. to put it on the same
/// scale as another filter's response for a fixed absolute threshold.
/// </summary>
public sealed class NoFilter : IFrameFilter
{
    public float CopyScale { get; init; } = 1f;
    private float[] _scratch = Array.Empty<float>();

    /// <summary>The background (median) the last <see cref="Apply"/> removed, in photons.</summary>
    public float LastMedian { get; private set; }

    public void Apply(ReadOnlySpan<float> photons, Span<float> filtered, int width, int height)
    {
        FrameFilters.CheckArgs(photons, filtered, width, height);
        FrameFilters.Grow(ref _scratch, NoiseEstimator.ScratchLength(width, height));
        float med = NoiseEstimator.Median(photons, width, height, _scratch);
        if (float.IsNaN(med)) med = 0f;
        LastMedian = med;
        int n = width * height;
        var src = photons[..n];
        var dst = filtered[..n];
        float sc = CopyScale;
        var vm = new Vector<float>(med);
        var vs = new Vector<float>(sc);
        var vsrc = MemoryMarshal.Cast<float, Vector<float>>(src);
        var vdst = MemoryMarshal.Cast<float, Vector<float>>(dst);
        for (int i = 0; i < vsrc.Length; i++) vdst[i] = (vsrc[i] - vm) * vs;
        for (int i = vsrc.Length * Vector<float>.Count; i < n; i++) dst[i] = (src[i] - med) * sc;
    }
}
