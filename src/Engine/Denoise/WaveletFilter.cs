using System.Numerics;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Denoise;

/// <summary>
/// ThunderSTORM's "Wavelet filter (B-Spline)", scale 2, order 3: the first wavelet plane of the a-trous
/// B-spline transform. V1 = I * g1 with the separable kernel g1 = [1/16, 1/4, 3/8, 1/4, 1/16];
/// V2 = V1 * g2, g2 the same kernel with holes (taps at -4, -2, 0, 2, 4); output F = V1 - V2.
/// <para>Borders: mirrored without repeating the edge pixel (index -k reads k, index n-1+k reads n-1-k,
/// "reflect-101"); a flat image gives 0 everywhere. Vectorised direct 5-tap sums in three passes, three frame-sized scratch
/// buffers, allocation-free once they fit; one instance per thread.</para>
/// </summary>
public sealed class WaveletFilter : IFrameFilter
{
    private const float W0 = 3f / 8f, W1 = 1f / 4f, W2 = 1f / 16f;
    private const int Pad = 4;
    private float[] _a = Array.Empty<float>(), _b = Array.Empty<float>(), _v1 = Array.Empty<float>(), _pad = Array.Empty<float>();

    public void Apply(ReadOnlySpan<float> photons, Span<float> filtered, int width, int height)
    {
        FrameFilters.CheckArgs(photons, filtered, width, height);
        int n = width * height;
        FrameFilters.Grow(ref _a, n);
        FrameFilters.Grow(ref _v1, n);
        FrameFilters.Grow(ref _b, n);
        FrameFilters.Grow(ref _pad, width + 2 * Pad);
        var a = _a.AsSpan(0, n);
        var v1 = _v1.AsSpan(0, n);
        var b = _b.AsSpan(0, n);

        // pass 1: A = rows * g1; pass 2: V1 = A * g1 (columns), and at once B = V1 row * g2;
        // pass 3: F = V1 - B * g2 (columns)
        for (int y = 0; y < height; y++) Horizontal(photons.Slice(y * width, width), a.Slice(y * width, width), 1);
        for (int y = 0; y < height; y++)
        {
            Vertical(a, width, height, y, 1, v1.Slice(y * width, width), default);
            Horizontal(v1.Slice(y * width, width), b.Slice(y * width, width), 2);
        }
        for (int y = 0; y < height; y++) Vertical(b, width, height, y, 2, filtered.Slice(y * width, width), v1.Slice(y * width, width));
    }

    /// <summary>Reflect-101 index into [0, n).</summary>
    internal static int Mirror(int i, int n)
    {
        if (n == 1) return 0;
        while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
        return i;
    }

    private void Horizontal(ReadOnlySpan<float> row, Span<float> dst, int d)
    {
        int w = row.Length;
        var pad = _pad.AsSpan(0, w + 2 * Pad);
        for (int k = 0; k < Pad; k++)
        {
            pad[k] = row[Mirror(k - Pad, w)];
            pad[Pad + w + k] = row[Mirror(w + k, w)];
        }
        row.CopyTo(pad.Slice(Pad, w));
        ref float p = ref MemoryMarshal.GetReference(pad);
        ref float o = ref MemoryMarshal.GetReference(dst);
        var w0 = new Vector<float>(W0); var w1 = new Vector<float>(W1); var w2 = new Vector<float>(W2);
        int vc = Vector<float>.Count, x = 0;
        nuint ud = (nuint)d;
        for (; x <= w - vc; x += vc)
        {
            nuint c = (nuint)(x + Pad);
            var r = Vector.LoadUnsafe(ref p, c) * w0
                  + (Vector.LoadUnsafe(ref p, c - ud) + Vector.LoadUnsafe(ref p, c + ud)) * w1
                  + (Vector.LoadUnsafe(ref p, c - 2 * ud) + Vector.LoadUnsafe(ref p, c + 2 * ud)) * w2;
            r.StoreUnsafe(ref o, (nuint)x);
        }
        for (; x < w; x++)
        {
            int c = x + Pad;
            dst[x] = pad[c] * W0 + (pad[c - d] + pad[c + d]) * W1 + (pad[c - 2 * d] + pad[c + 2 * d]) * W2;
        }
    }

    /// <summary>dst = (minuend.IsEmpty ? 0 : minuend) +/- vertical 5-tap sum of src rows around y with dilation d.
    /// With a minuend, dst = minuend - sum (the final F = V1 - V2 step).</summary>
    private static void Vertical(ReadOnlySpan<float> src, int w, int h, int y, int d, Span<float> dst, ReadOnlySpan<float> minuend)
    {
        var r0 = src.Slice(y * w, w);
        var m1 = src.Slice(Mirror(y - d, h) * w, w);
        var p1 = src.Slice(Mirror(y + d, h) * w, w);
        var m2 = src.Slice(Mirror(y - 2 * d, h) * w, w);
        var p2 = src.Slice(Mirror(y + 2 * d, h) * w, w);
        ref float c0 = ref MemoryMarshal.GetReference(r0);
        ref float a1 = ref MemoryMarshal.GetReference(m1);
        ref float b1 = ref MemoryMarshal.GetReference(p1);
        ref float a2 = ref MemoryMarshal.GetReference(m2);
        ref float b2 = ref MemoryMarshal.GetReference(p2);
        ref float o = ref MemoryMarshal.GetReference(dst);
        var w0 = new Vector<float>(W0); var w1 = new Vector<float>(W1); var w2 = new Vector<float>(W2);
        int vc = Vector<float>.Count, x = 0;
        bool sub = !minuend.IsEmpty;
        if (sub)
        {
            ref float mm = ref MemoryMarshal.GetReference(minuend);
            for (; x <= w - vc; x += vc)
            {
                nuint u = (nuint)x;
                var s = Vector.LoadUnsafe(ref c0, u) * w0
                      + (Vector.LoadUnsafe(ref a1, u) + Vector.LoadUnsafe(ref b1, u)) * w1
                      + (Vector.LoadUnsafe(ref a2, u) + Vector.LoadUnsafe(ref b2, u)) * w2;
                (Vector.LoadUnsafe(ref mm, u) - s).StoreUnsafe(ref o, u);
            }
        }
        else
        {
            for (; x <= w - vc; x += vc)
            {
                nuint u = (nuint)x;
                var s = Vector.LoadUnsafe(ref c0, u) * w0
                      + (Vector.LoadUnsafe(ref a1, u) + Vector.LoadUnsafe(ref b1, u)) * w1
                      + (Vector.LoadUnsafe(ref a2, u) + Vector.LoadUnsafe(ref b2, u)) * w2;
                s.StoreUnsafe(ref o, u);
            }
        }
        for (; x < w; x++)
        {
            float s = r0[x] * W0 + (m1[x] + p1[x]) * W1 + (m2[x] + p2[x]) * W2;
            dst[x] = sub ? minuend[x] - s : s;
        }
    }
}
