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
/// borders too. Box sums are separable: per row, horizontal sums of widths a and a + 4 (vectorised direct
/// sums, a + 4 taps at most 19); then vertical running sums over a ring of those rows (two adds per pixel
/// and box, whatever a is), restarted every <see cref="RestartRows"/> rows so float rounding cannot drift.</para>
/// Allocation-free once the scratch fits; one instance per thread.
/// </summary>
public sealed class MaliangFilter : IFrameFilter
{
    /// <summary>Vertical running sums are recomputed from scratch every this many rows (bounds rounding drift).</summary>
    public const int RestartRows = 32;

    public int BoxPx { get; }
    private readonly int _ra, _rb, _ring;
    private readonly float _ca, _cb;
    private float[] _pad = Array.Empty<float>(), _ringA = Array.Empty<float>(), _ringB = Array.Empty<float>();
    private float[] _sa = Array.Empty<float>(), _sb = Array.Empty<float>();

    public MaliangFilter(int boxPx = 3)
    {
        if (boxPx < 1 || boxPx % 2 == 0 || boxPx > 15) throw new InvalidParameterException("filter-box", $"must be odd, 1 to 15 px, got {boxPx}");
        BoxPx = boxPx;
        _ra = boxPx / 2;
        _rb = _ra + 2;
        _ring = 2 * _rb + 2;
        int a2 = boxPx * boxPx, b2 = (boxPx + 4) * (boxPx + 4), ann = b2 - a2;
        // F = S_a / a^2 - (S_b - S_a) / ann = S_a (1/a^2 + 1/ann) - S_b / ann
        _ca = (float)(1.0 / a2 + 1.0 / ann);
        _cb = (float)(1.0 / ann);
    }

    public void Apply(ReadOnlySpan<float> photons, Span<float> filtered, int width, int height)
    {
        FrameFilters.CheckArgs(photons, filtered, width, height);
        int w = width, rb = _rb, ra = _ra;
        FrameFilters.Grow(ref _pad, w + 2 * rb);
        FrameFilters.Grow(ref _ringA, _ring * w);
        FrameFilters.Grow(ref _ringB, _ring * w);
        FrameFilters.Grow(ref _sa, w);
        FrameFilters.Grow(ref _sb, w);
        var sa = _sa.AsSpan(0, w);
        var sb = _sb.AsSpan(0, w);

        int computed = -1;
        for (int y = 0; y < height; y++)
        {
            int newest = Math.Min(y + rb, height - 1);
            while (computed < newest)
            {
                computed++;
                Horizontal(photons.Slice(computed * w, w), RingA(computed, w), RingB(computed, w));
            }
            if (y % RestartRows == 0)
            {
                sa.Clear(); sb.Clear();
                for (int k = -ra; k <= ra; k++) AddRow(sa, RingA(Math.Clamp(y + k, 0, height - 1), w));
                for (int k = -rb; k <= rb; k++) AddRow(sb, RingB(Math.Clamp(y + k, 0, height - 1), w));
            }
            else
            {
                Slide(sa, RingA(Math.Min(y + ra, height - 1), w), RingA(Math.Max(y - ra - 1, 0), w));
                Slide(sb, RingB(Math.Min(y + rb, height - 1), w), RingB(Math.Max(y - rb - 1, 0), w));
            }
            Combine(sa, sb, filtered.Slice(y * w, w));
        }
    }

    private Span<float> RingA(int row, int w) => _ringA.AsSpan(row % _ring * w, w);
    private Span<float> RingB(int row, int w) => _ringB.AsSpan(row % _ring * w, w);

    /// <summary>Horizontal box sums of widths a and a + 4 of one row, edges replicated.</summary>
    private void Horizontal(ReadOnlySpan<float> row, Span<float> ha, Span<float> hb)
    {
        int w = row.Length, rb = _rb, a = BoxPx;
        var pad = _pad.AsSpan(0, w + 2 * rb);
        pad[..rb].Fill(row[0]);
        row.CopyTo(pad.Slice(rb, w));
        pad.Slice(rb + w, rb).Fill(row[w - 1]);

        ref float p = ref MemoryMarshal.GetReference(pad);
        ref float oa = ref MemoryMarshal.GetReference(ha);
        ref float ob = ref MemoryMarshal.GetReference(hb);
        int vc = Vector<float>.Count;
        int x = 0;
        if (w >= vc)
        {
            for (; ; x += vc)
            {
                if (x > w - vc) x = w - vc;   // last, possibly overlapping, vector
                nuint ux = (nuint)x;
                // h_a[x] = pad[x+2 .. x+2+a), h_b[x] = h_a[x] + pad[x] + pad[x+1] + pad[x+a+2] + pad[x+a+3]
                var s = Vector.LoadUnsafe(ref p, ux + 2);
                for (int k = 1; k < a; k++) s += Vector.LoadUnsafe(ref p, ux + 2 + (nuint)k);
                s.StoreUnsafe(ref oa, ux);
                var t = s + Vector.LoadUnsafe(ref p, ux) + Vector.LoadUnsafe(ref p, ux + 1)
                          + Vector.LoadUnsafe(ref p, ux + (nuint)a + 2) + Vector.LoadUnsafe(ref p, ux + (nuint)a + 3);
                t.StoreUnsafe(ref ob, ux);
                if (x == w - vc) break;
            }
            return;
        }
        for (; x < w; x++)
        {
            float s = 0;
            for (int k = 0; k < a; k++) s += pad[x + 2 + k];
            ha[x] = s;
            hb[x] = s + pad[x] + pad[x + 1] + pad[x + a + 2] + pad[x + a + 3];
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

    /// <summary>acc += add - sub.</summary>
    private static void Slide(Span<float> acc, ReadOnlySpan<float> add, ReadOnlySpan<float> sub)
    {
        ref float a = ref MemoryMarshal.GetReference(acc);
        ref float p = ref MemoryMarshal.GetReference(add);
        ref float m = ref MemoryMarshal.GetReference(sub);
        int n = acc.Length, vc = Vector<float>.Count, i = 0;
        for (; i <= n - vc; i += vc)
        {
            nuint u = (nuint)i;
            (Vector.LoadUnsafe(ref a, u) + (Vector.LoadUnsafe(ref p, u) - Vector.LoadUnsafe(ref m, u))).StoreUnsafe(ref a, u);
        }
        for (; i < n; i++) acc[i] += add[i] - sub[i];
    }

    private void Combine(ReadOnlySpan<float> sa, ReadOnlySpan<float> sb, Span<float> dst)
    {
        ref float a = ref MemoryMarshal.GetReference(sa);
        ref float b = ref MemoryMarshal.GetReference(sb);
        ref float d = ref MemoryMarshal.GetReference(dst);
        var ca = new Vector<float>(_ca);
        var cb = new Vector<float>(_cb);
        int n = dst.Length, vc = Vector<float>.Count, i = 0;
        for (; i <= n - vc; i += vc)
        {
            nuint u = (nuint)i;
            (Vector.LoadUnsafe(ref a, u) * ca - Vector.LoadUnsafe(ref b, u) * cb).StoreUnsafe(ref d, u);
        }
        for (; i < n; i++) dst[i] = sa[i] * _ca - sb[i] * _cb;
    }
}
