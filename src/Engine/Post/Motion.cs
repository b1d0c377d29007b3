using System.Globalization;

namespace MaLiang.Engine.Post;

/// <summary>A range of frames, 0-based, both ends included.</summary>
public readonly record struct FrameWindow(int First, int Last)
{
    public bool Contains(int frame) => frame >= First && frame <= Last;

    /// <summary>Parses "a-b" with 1-based frames (CLI/CSV convention), e.g. "1-1000" -> First 0, Last 999.</summary>
    public static FrameWindow Parse1Based(string text, string parameter = "windows")
    {
        var parts = text.Split('-');
        if (parts.Length != 2 || !int.TryParse(parts[0].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int a)
            || !int.TryParse(parts[1].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int b))
            throw new InvalidParameterException(parameter, $"'{text}' is not a frame range like 1-1000");
        if (a < 1 || b < a) throw new InvalidParameterException(parameter, $"frame range '{text}' is empty or starts before frame 1");
        return new FrameWindow(a - 1, b - 1);
    }

    public override string ToString() => $"{First + 1}-{Last + 1}";
}

/// <summary>Result of <see cref="MotionStatistics.Compute"/>. Means are positions along the line's unit normal (nm), relative
/// to the fitted line.</summary>
public sealed class MotionResult
{
    /// <summary>A point on the fitted line (px) and its unit direction and normal.</summary>
    public double LineX { get; init; }
    public double LineY { get; init; }
    public double DirectionX { get; init; }
    public double DirectionY { get; init; }
    public double NormalX { get; init; }
    public double NormalY { get; init; }
    /// <summary>Localizations in the region, and those kept by the iterative 4-sigma rejection.</summary>
    public int InRegion { get; init; }
    public int Inliers { get; init; }
    public int N1 { get; init; }
    public int N2 { get; init; }
    public double Mean1Nm { get; init; }
    public double StdErr1Nm { get; init; }
    public double Mean2Nm { get; init; }
    public double StdErr2Nm { get; init; }
    /// <summary>Mean2 - Mean1 along the normal (nm).</summary>
    public double DisplacementNm { get; init; }
    /// <summary>(Mean2 - Mean1) / sqrt(se1^2 + se2^2).</summary>
    public double Z { get; init; }
}

/// <summary>Motion of a linear structure between two frame windows (MaLiang paper sections 2.5, 3.3).</summary>
public static class MotionStatistics
{
    /// <summary>
    /// Fits the mean contour line to the localizations in <paramref name="region"/> (orthogonal least squares, which is linear
    /// regression that works for any orientation), iteratively dropping points further than <paramref name="rejectSigmas"/>
    /// standard deviations from the line until none is dropped; projects the remaining localizations of each window onto the
    /// line's normal (oriented with a positive y component, or positive x for a horizontal normal) and compares the means.
    /// </summary>
    public static MotionResult Compute(ReadOnlySpan<Localization> locs, RegionPx region, FrameWindow window1, FrameWindow window2,
        double pixelSizeNm, double rejectSigmas = 4.0)
    {
        region.Validate("region");
        if (!double.IsFinite(pixelSizeNm) || pixelSizeNm <= 0) throw new InvalidParameterException("pixel-size", $"must be > 0 nm, got {pixelSizeNm}");
        if (!(rejectSigmas > 0)) throw new InvalidParameterException("reject", $"must be > 0, got {rejectSigmas}");
        if (window1.Last < window1.First) throw new InvalidParameterException("windows", $"window 1 ({window1}) is empty");
        if (window2.Last < window2.First) throw new InvalidParameterException("windows", $"window 2 ({window2}) is empty");
        var xs = new List<double>(); var ys = new List<double>(); var fr = new List<int>();
        foreach (var l in locs)
            if (float.IsFinite(l.X) && float.IsFinite(l.Y) && region.Contains(l.X, l.Y)) { xs.Add(l.X); ys.Add(l.Y); fr.Add(l.Frame); }
        int n = xs.Count;
        if (n == 0) throw new MaLiangException($"motion: no localizations in region {region}");
        if (n < 3) throw new MaLiangException($"motion: only {n} localizations in region {region}; a line needs at least 3");
        var use = new bool[n];
        Array.Fill(use, true);
        double cx = 0, cy = 0, dx = 1, dy = 0;
        for (int iter = 0; iter < 100; iter++)
        {
            (cx, cy, dx, dy) = FitLine(xs, ys, use);
            double ss = 0; int m = 0;
            for (int i = 0; i < n; i++) if (use[i]) { double d = (xs[i] - cx) * -dy + (ys[i] - cy) * dx; ss += d * d; m++; }
            double sd = Math.Sqrt(ss / Math.Max(1, m - 2));
            bool changed = false;
            for (int i = 0; i < n; i++)
            {
                if (!use[i]) continue;
                double d = (xs[i] - cx) * -dy + (ys[i] - cy) * dx;
                if (Math.Abs(d) > rejectSigmas * sd) { use[i] = false; changed = true; }
            }
            int left = 0; foreach (var u in use) if (u) left++;
            if (!changed || left < 3) { if (left < 3) Array.Fill(use, true); break; }
        }
        (cx, cy, dx, dy) = FitLine(xs, ys, use);
        double nx = -dy, ny = dx;
        if (ny < -1e-12 || (Math.Abs(ny) <= 1e-12 && nx < 0)) { nx = -nx; ny = -ny; }
        int inliers = 0; foreach (var u in use) if (u) inliers++;
        var (m1, se1, k1) = Window(xs, ys, fr, use, window1, cx, cy, nx, ny, pixelSizeNm, 1, region);
        var (m2, se2, k2) = Window(xs, ys, fr, use, window2, cx, cy, nx, ny, pixelSizeNm, 2, region);
        double se = Math.Sqrt(se1 * se1 + se2 * se2);
        return new MotionResult
        {
            LineX = cx, LineY = cy, DirectionX = dx, DirectionY = dy, NormalX = nx, NormalY = ny,
            InRegion = n, Inliers = inliers, N1 = k1, N2 = k2,
            Mean1Nm = m1, StdErr1Nm = se1, Mean2Nm = m2, StdErr2Nm = se2,
            DisplacementNm = m2 - m1, Z = se > 0 ? (m2 - m1) / se : double.NaN,
        };
    }

    private static (double m, double se, int n) Window(List<double> xs, List<double> ys, List<int> fr, bool[] use, FrameWindow w,
        double cx, double cy, double nx, double ny, double px, int which, RegionPx region)
    {
        double s = 0, s2 = 0; int k = 0;
        for (int i = 0; i < xs.Count; i++)
        {
            if (!use[i] || !w.Contains(fr[i])) continue;
            double d = ((xs[i] - cx) * nx + (ys[i] - cy) * ny) * px;
            s += d; s2 += d * d; k++;
        }
        if (k < 2) throw new MaLiangException($"motion: window {which} (frames {w}) has {k} localization{(k == 1 ? "" : "s")} on the line in region {region}; need at least 2");
        double m = s / k;
        double var = Math.Max(0, (s2 - k * m * m) / (k - 1));
        return (m, Math.Sqrt(var / k), k);
    }

    /// <summary>Centroid and principal direction (unit) of the used points.</summary>
    private static (double cx, double cy, double dx, double dy) FitLine(List<double> xs, List<double> ys, bool[] use)
    {
        double sx = 0, sy = 0; int n = 0;
        for (int i = 0; i < xs.Count; i++) if (use[i]) { sx += xs[i]; sy += ys[i]; n++; }
        double cx = sx / n, cy = sy / n, sxx = 0, syy = 0, sxy = 0;
        for (int i = 0; i < xs.Count; i++)
            if (use[i]) { double a = xs[i] - cx, b = ys[i] - cy; sxx += a * a; syy += b * b; sxy += a * b; }
        double theta = 0.5 * Math.Atan2(2 * sxy, sxx - syy);
        return (cx, cy, Math.Cos(theta), Math.Sin(theta));
    }
}
