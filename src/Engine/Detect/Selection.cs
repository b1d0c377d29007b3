namespace MaLiang.Engine.Detect;

/// <summary>In-place order statistics (Floyd–Rivest SELECT): expected n + min(k, n - k) comparisons, no sort,
/// no allocation, deterministic (no random pivots). Values must not be NaN.</summary>
internal static class Selection
{
    /// <summary>The k-th smallest value (0-based) of <paramref name="a"/>; reorders <paramref name="a"/>.</summary>
    public static float Select(Span<float> a, int k)
    {
        if ((uint)k >= (uint)a.Length) throw new ArgumentOutOfRangeException(nameof(k));
        Select(a, 0, a.Length - 1, k);
        return a[k];
    }

    /// <summary>Lower median (element (n-1)/2 in sorted order).</summary>
    public static float Median(Span<float> a) => Select(a, (a.Length - 1) / 2);

    private static void Select(Span<float> a, int left, int right, int k)
    {
        while (right > left)
        {
            if (right - left > 600)
            {
                // Recurse on a sample to bring a near-exact pivot to position k.
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
