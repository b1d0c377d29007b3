using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Denoise;

/// <summary>
/// The paper's de-noising filter (Quan, Li et al. 2010): the mean over an a x a box minus the mean of the
/// annulus between that box and the concentric (a + 4) x (a + 4) box,
/// <c>F = S_a / a^2 - (S_{a+4} - S_a) / ((a+4)^2 - a^2)</c>, where S_w is the sum over the w x w box.
/// A flat image gives 0; a spot gives its local contrast over the surrounding background.
/// <para>Borders: coordinates are clamped to the frame (edge pixels replicated), so a flat image gives 0 at the
/// borders too. Box sums are separable. Per output row: vertical running sums of a and a + 4 rows
/// (vectorised across x, two adds per pixel and box whatever a is; restarted every <see cref="RestartRows"/>
/// rows so float rounding cannot drift), combined into D = c_a V_a - c_b V_b; then one horizontal pass
/// F = sum over a taps of D - c_b x (the 4 outer taps of V_{a+4}) (vectorised direct sums). With
/// c_a = 1/a^2 + 1/annulus, c_b = 1/annulus this is exactly the formula above.</para>
/// Allocation-free once the scratch fits; one instance per thread.
/// </summary>
public sealed class MaliangFilter : IFrameFilter
{
    /// <summary>Vertical running sums are recomputed from scratch every this many rows (bounds rounding drift).</summary>
    public const int RestartRows = 32;

    public int BoxPx { get; }
    private readonly int _ra, _rb;
    private readonly float _ca, _cb;
    // Va: vertical a-row sums; Vb, D: padded rows (rb replicated pixels each side), data at [rb, rb + w)
    private float[] _va = Array.Empty<float>(), _vb = Array.Empty<float>(), _d = Array.Empty<float>();

    public MaliangFilter(int boxPx = 3)
    {
        if (boxPx < 1 || boxPx % 2 == 0 || boxPx > 15) throw new InvalidParameterException("filter-box", $"must be odd, 1 to 15 px, got {boxPx}");
        BoxPx = boxPx;
        _ra = boxPx / 2;
        _rb = _ra + 2;
        int a2 = boxPx * boxPx, b2 = (boxPx + 4) * (boxPx + 4), ann = b2 - a2;
        // F = S_a / a^2 - (S_b - S_a) / ann = S_a (1/a^2 + 1/ann) - S_b / ann
        _ca = (float)(1.0 / a2 + 1.0 / ann);
        _cb = (float)(1.0 / ann);
    }

    public void Apply(ReadOnlySpan<float> photons, Span<float> filtered, int width, int height)
    {
        FrameFilters.CheckArgs(photons, filtered, width, height);
        int w = width, h = height, rb = _rb, ra = _ra, wp = w + 2 * rb;
        FrameFilters.Grow(ref _va, w);
        FrameFilters.Grow(ref _vb, wp);
        FrameFilters.Grow(ref _d, wp);
        var va = _va.AsSpan(0, w);
        var vbPad = _vb.AsSpan(0, wp);
        var vb = vbPad.Slice(rb, w);
        var dPad = _d.AsSpan(0, wp);
        var d = dPad.Slice(rb, w);

        for (int y = 0; y < h; y++)
        {
            if (y % RestartRows == 0)
            {
                va.Clear(); vb.Clear();
                for (int k = -ra; k <= ra; k++) AddRow(va, Row(photons, Math.Clamp(y + k, 0, h - 1), w));
                for (int k = -rb; k <= rb; k++) AddRow(vb, Row(photons, Math.Clamp(y + k, 0, h - 1), w));
                Combine(va, vb, d);
            }
            else
            {
                SlideAndCombine(va, Row(photons, Math.Min(y + ra, h - 1), w), Row(photons, Math.Max(y - ra - 1, 0), w),
                                vb, Row(photons, Math.Min(y + rb, h - 1), w), Row(photons, Math.Max(y - rb - 1, 0), w), d);
            }
            float dl = d[0], dr = d[w - 1], bl = vb[0], br = vb[w - 1];
            for (int k = 0; k < rb; k++)
            {
                dPad[k] = dl; dPad[rb + w + k] = dr;
                vbPad[k] = bl; vbPad[rb + w + k] = br;
            }
            Horizontal(dPad, vbPad, filtered.Slice(y * w, w));
        }
    }

    private static ReadOnlySpan<float> Row(ReadOnlySpan<float> img, int y, int w) => img.Slice(y * w, w);

    /// <summary>out[x] = sum_{|k| &lt;= ra} D[x+k] - c_b (Vb[x-rb] + Vb[x-rb+1] + Vb[x+rb-1] + Vb[x+rb]) on padded rows.</summary>
    private void Horizontal(ReadOnlySpan<float> dPad, ReadOnlySpan<float> vbPad, Span<float> dst)
    {
        int w = dst.Length, a = BoxPx;
        ref float p = ref MemoryMarshal.GetReference(dPad);
        ref float q = ref MemoryMarshal.GetReference(vbPad);
        ref float o = ref MemoryMarshal.GetReference(dst);
        var cb = new Vector<float>(_cb);
        int vc = Vector<float>.Count, x = 0;
        // output x reads D at padded [x+2, x+2+a) and Vb at padded x, x+1, x+a+2, x+a+3
        if (a == 3)   // the default: taps unrolled
        {
            for (; x <= w - vc; x += vc)
            {
                nuint ux = (nuint)x;
                var s = Vector.LoadUnsafe(ref p, ux + 2) + Vector.LoadUnsafe(ref p, ux + 3) + Vector.LoadUnsafe(ref p, ux + 4);
                var t = (Vector.LoadUnsafe(ref q, ux) + Vector.LoadUnsafe(ref q, ux + 1)) + (Vector.LoadUnsafe(ref q, ux + 5) + Vector.LoadUnsafe(ref q, ux + 6));
                (s - t * cb).StoreUnsafe(ref o, ux);
            }
        }
        for (; x <= w - vc; x += vc)
        {
            nuint ux = (nuint)x;
            var s = Vector.LoadUnsafe(ref p, ux + 2);
            for (int k = 1; k < a; k++) s += Vector.LoadUnsafe(ref p, ux + 2 + (nuint)k);
            var t = Vector.LoadUnsafe(ref q, ux) + Vector.LoadUnsafe(ref q, ux + 1)
                  + Vector.LoadUnsafe(ref q, ux + (nuint)a + 2) + Vector.LoadUnsafe(ref q, ux + (nuint)a + 3);
            (s - t * cb).StoreUnsafe(ref o, ux);
        }
        for (; x < w; x++)
        {
            float s = 0;
            for (int k = 0; k < a; k++) s += dPad[x + 2 + k];
            dst[x] = s - _cb * (vbPad[x] + vbPad[x + 1] + vbPad[x + a + 2] + vbPad[x + a + 3]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(Span<float> acc, ReadOnlySpan<float> row)
    {
        var va = MemoryMarshal.Cast<float, Vector<float>>(acc);
        var vr = MemoryMarshal.Cast<float, Vector<float>>(row);
        for (int i = 0; i < va.Length; i++) va[i] += vr[i];
        for (int i = va.Length * Vector<float>.Count; i < acc.Length; i++) acc[i] += row[i];
    }

    /// <summary>va += addA - subA; vb += addB - subB; d = va c_a - vb c_b (one pass over the row).</summary>
    private void SlideAndCombine(Span<float> va, ReadOnlySpan<float> addA, ReadOnlySpan<float> subA,
                                 Span<float> vb, ReadOnlySpan<float> addB, ReadOnlySpan<float> subB, Span<float> d)
    {
        ref float a = ref MemoryMarshal.GetReference(va);
        ref float pa = ref MemoryMarshal.GetReference(addA);
        ref float ma = ref MemoryMarshal.GetReference(subA);
        ref float b = ref MemoryMarshal.GetReference(vb);
        ref float pb = ref MemoryMarshal.GetReference(addB);
        ref float mb = ref MemoryMarshal.GetReference(subB);
        ref float o = ref MemoryMarshal.GetReference(d);
        var ca = new Vector<float>(_ca);
        var cb = new Vector<float>(_cb);
        int n = d.Length, vc = Vector<float>.Count, i = 0;
        for (; i <= n - vc; i += vc)
        {
            nuint u = (nuint)i;
            var sa = Vector.LoadUnsafe(ref a, u) + (Vector.LoadUnsafe(ref pa, u) - Vector.LoadUnsafe(ref ma, u));
            var sb = Vector.LoadUnsafe(ref b, u) + (Vector.LoadUnsafe(ref pb, u) - Vector.LoadUnsafe(ref mb, u));
            sa.StoreUnsafe(ref a, u);
            sb.StoreUnsafe(ref b, u);
            (sa * ca - sb * cb).StoreUnsafe(ref o, u);
        }
        for (; i < n; i++)
        {
            va[i] += addA[i] - subA[i];
            vb[i] += addB[i] - subB[i];
            d[i] = va[i] * _ca - vb[i] * _cb;
        }
    }

    private void Combine(ReadOnlySpan<float> va, ReadOnlySpan<float> vb, Span<float> d)
    {
        for (int i = 0; i < d.Length; i++) d[i] = va[i] * _ca - vb[i] * _cb;
    }
}
