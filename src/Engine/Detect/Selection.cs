using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Detect;

/// <summary>
/// Exact order statistics without sorting. <see cref="RadixSelect"/> (the hot path): floats mapped to
/// order-preserving uint keys, then three histogram passes over 11, 11 and 10 key bits, each narrowing to the
/// bucket holding rank k; deterministic, O(n), branch-light. <see cref="Select"/>: in-place Floyd–Rivest
/// (reference and fallback). Values must not be NaN.
/// </summary>
internal static class Selection
{
    /// <summary>Order-preserving key: uint order of keys equals float order of values (-0 sorts just below +0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Key(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        return u ^ ((uint)((int)u >> 31) | 0x80000000u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromKey(uint k)
    {
        uint u = (k & 0x80000000u) != 0 ? k ^ 0x80000000u : ~k;
        return BitConverter.UInt32BitsToSingle(u);
    }

    /// <summary>The k-th smallest (0-based) of <paramref name="values"/>, which is left untouched;
    /// <paramref name="work"/> (at least values.Length) is overwritten.</summary>
    public static float RadixSelect(ReadOnlySpan<float> values, int k, Span<uint> work)
    {
        int n = values.Length;
        if ((uint)k >= (uint)n) throw new ArgumentOutOfRangeException(nameof(k));
        if (work.Length < n) throw new ArgumentException("work too small", nameof(work));
        var keys = work[..n];
        ToKeys(values, keys);
        return FromKey(SelectKeys(keys, k));
    }

    /// <summary>As <see cref="RadixSelect"/> on values already turned into keys (overwritten).</summary>
    public static uint SelectKeys(Span<uint> keys, int k)
    {
        Span<int> hist = stackalloc int[2048];
        int n = keys.Length;
        ref uint kr = ref MemoryMarshal.GetReference(keys);

        // pass 1: top 11 bits
        for (int i = 0; i < n; i++) hist[(int)(Unsafe.Add(ref kr, i) >> 21)]++;
        int b1 = Find(hist, ref k);

        // pass 2: compact the keys in bucket b1 to the front, histogram of the next 11 bits
        hist.Clear();
        int m = 0;
        uint want1 = (uint)b1;
        for (int i = 0; i < n; i++)
        {
            uint key = Unsafe.Add(ref kr, i);
            Unsafe.Add(ref kr, m) = key;
            if ((key >> 21) == want1) { m++; hist[(int)((key >> 10) & 0x7FF)]++; }
        }
        int b2 = Find(hist, ref k);

        // pass 3: last 10 bits among the survivors
        hist[..1024].Clear();
        uint want2 = (want1 << 11) | (uint)b2;
        for (int i = 0; i < m; i++)
        {
            uint key = Unsafe.Add(ref kr, i);
            if ((key >> 10) == want2) hist[(int)(key & 0x3FF)]++;
        }
        int b3 = Find(hist[..1024], ref k);
        return (want2 << 10) | (uint)b3;
    }

    /// <summary>The bucket holding rank k; k becomes the rank within it.</summary>
    private static int Find(ReadOnlySpan<int> hist, ref int k)
    {
        for (int b = 0; b < hist.Length; b++)
        {
            if (k < hist[b]) return b;
            k -= hist[b];
        }
        throw new InvalidOperationException("rank beyond the histogram");
    }

    public static void ToKeys(ReadOnlySpan<float> values, Span<uint> keys)
    {
        var vi = MemoryMarshal.Cast<float, Vector<int>>(values);
        var vo = MemoryMarshal.Cast<uint, Vector<uint>>(keys);
        var top = new Vector<uint>(0x80000000u);
        for (int i = 0; i < vi.Length; i++)
        {
            var u = vi[i];
            vo[i] = Vector.AsVectorUInt32(u) ^ (Vector.AsVectorUInt32(Vector.ShiftRightArithmetic(u, 31)) | top);
        }
        for (int i = vi.Length * Vector<int>.Count; i < values.Length; i++) keys[i] = Key(values[i]);
    }

    /// <summary>The k-th smallest value (0-based) of <paramref name="a"/>; reorders <paramref name="a"/>.</summary>
    public static float Select(Span<float> a, int k)
    {
        if ((uint)k >= (uint)a.Length) throw new ArgumentOutOfRangeException(nameof(k));
        Select(a, 0, a.Length - 1, k);
        return a[k];
    }

    /// <summary>
    /// The p-th percentile (0..100, nearest rank) of the positive finite values of an image; 0 when there are none.
    /// Display scaling uses it: a rendered image is mostly zeros, which must not set the scale.
    /// </summary>
    public static float PositivePercentile(ReadOnlySpan<float> image, double p)
    {
        int n = 0;
        foreach (float v in image) if (v > 0 && float.IsFinite(v)) n++;
        if (n == 0) return 0;
        var pos = new float[n];
        n = 0;
        foreach (float v in image) if (v > 0 && float.IsFinite(v)) pos[n++] = v;
        int k = (int)Math.Clamp(Math.Ceiling(p / 100.0 * n) - 1, 0, n - 1);
        return Select(pos, k);
    }

    /// <summary>Lower median (element (n-1)/2 in sorted order).</summary>
    public static float Median(Span<float> a) => Select(a, (a.Length - 1) / 2);

    // Floyd–Rivest SELECT (CACM 1975, Algorithm 489): expected n + min(k, n - k) comparisons.
    private static void Select(Span<float> a, int left, int right, int k)
    {
        while (right > left)
        {
            if (right - left > 600)
            {
                int n = right - left + 1;
                int i = k - left + 1;
                double z = Math.Log(n);
                double s = 0.5 * Math.Exp(2 * z / 3);
                double sd = 0.5 * Math.Sqrt(z * s * (n - s) / n) * Math.Sign(i - n / 2.0);
                int newLeft = Math.Max(left, (int)Math.Floor(k - i * s / n + sd));
                int newRight = Math.Min(right, (int)Math.Floor(k + (n - i) * s / n + sd));
                Select(a, newLeft, newRight, k);
            }
            float t = a[k];
            int lo = left, hi = right;
            Swap(a, left, k);
            if (a[right] > t) Swap(a, right, left);
            while (lo < hi)
            {
                Swap(a, lo, hi);
                lo++; hi--;
                while (a[lo] < t) lo++;
                while (a[hi] > t) hi--;
            }
            if (a[left] == t) Swap(a, left, hi);
            else { hi++; Swap(a, hi, right); }
            if (hi <= k) left = hi + 1;
            if (k <= hi) right = hi - 1;
        }
    }

    private static void Swap(Span<float> a, int i, int j) => (a[i], a[j]) = (a[j], a[i]);
}
