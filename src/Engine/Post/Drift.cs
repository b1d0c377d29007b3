namespace MaLiang.Engine.Post;

/// <summary>Estimated drift per frame (0-based), in camera px, relative to the start of the acquisition.
/// A localization at frame f is corrected by subtracting (DxPx[f], DyPx[f]).</summary>
public sealed class DriftResult
{
    public DriftResult(double[] dxPx, double[] dyPx)
    {
        if (dxPx.Length != dyPx.Length) throw new ArgumentException("dx and dy must have one value per frame");
        DxPx = dxPx; DyPx = dyPx;
    }
    public double[] DxPx { get; }
    public double[] DyPx { get; }
    public int FrameCount => DxPx.Length;
    /// <summary>How it was estimated: "fiducial" or "rcc".</summary>
    public string Method { get; init; } = "";
    /// <summary>RCC: the segments' centre frames and their solved shifts (px); fiducial: empty.</summary>
    public double[] SegmentCentres { get; init; } = [];
    public double[] SegmentDxPx { get; init; } = [];
    public double[] SegmentDyPx { get; init; } = [];
    /// <summary>RCC: segment pairs kept after residual rejection, and all pairs.</summary>
    public int PairsUsed { get; init; }
    public int PairsTotal { get; init; }
    /// <summary>Fiducial: centre of the bead that was used (px, first frames); NaN for RCC.</summary>
    public double FiducialX { get; init; } = double.NaN;
    public double FiducialY { get; init; } = double.NaN;

    /// <summary>Corrected copy. Frames outside 0..FrameCount-1 use the nearest frame's drift.</summary>
    public Localization[] Apply(ReadOnlySpan<Localization> locs)
    {
        var r = locs.ToArray();
        if (FrameCount == 0) return r;
        for (int i = 0; i < r.Length; i++)
        {
            int f = Math.Clamp(r[i].Frame, 0, FrameCount - 1);
            r[i].X = (float)(r[i].X - DxPx[f]);
            r[i].Y = (float)(r[i].Y - DyPx[f]);
        }
        return r;
    }
}

/// <summary>Options of <c>maliang drift --method fiducial</c>.</summary>
public sealed class FiducialDriftSettings
{
    /// <summary>Frames in the acquisition; 0 = last localization's frame + 1.</summary>
    public int FrameCount { get; set; }
    /// <summary>Look for the bead only here (px); null = whole field.</summary>
    public RegionPx? Region { get; set; }
    /// <summary>Linking radius between the bead's positions in successive frames (px).</summary>
    public double LinkRadiusPx { get; set; } = 0.5;
    /// <summary>Frames the bead may be missing and still be the same track.</summary>
    public int MaxGapFrames { get; set; } = 20;
    /// <summary>A bead must be found in at least this fraction of the frames.</summary>
    public double MinFrameFraction { get; set; } = 0.5;
    /// <summary>Width of the local linear regression that smooths the bead's trajectory (frames).</summary>
    public int SmoothWindowFrames { get; set; } = 200;
    /// <summary>The drift is zero on average over this many first frames.</summary>
    public int ReferenceFrames { get; set; } = 10;

    public void Validate()
    {
        if (FrameCount < 0) throw new InvalidParameterException("frames", $"must be >= 0, got {FrameCount}");
        Region?.Validate("region");
        if (!double.IsFinite(LinkRadiusPx) || LinkRadiusPx <= 0) throw new InvalidParameterException("link-radius", $"must be > 0 px, got {LinkRadiusPx}");
        if (MaxGapFrames < 0) throw new InvalidParameterException("gap", $"must be >= 0, got {MaxGapFrames}");
        if (!(MinFrameFraction > 0 && MinFrameFraction <= 1)) throw new InvalidParameterException("min-fraction", $"must be in (0, 1], got {MinFrameFraction}");
        if (SmoothWindowFrames < 3) throw new InvalidParameterException("smooth", $"must be >= 3 frames, got {SmoothWindowFrames}");
        if (ReferenceFrames < 1) throw new InvalidParameterException("reference-frames", $"must be >= 1, got {ReferenceFrames}");
    }
}

/// <summary>Options of <c>maliang drift --method rcc</c> (redundant cross-correlation, Wang et al. 2014).</summary>
public sealed class RccSettings
{
    public int FrameCount { get; set; }
    /// <summary>Number of time segments N (N(N-1)/2 pairs are correlated).</summary>
    public int Segments { get; set; } = 10;
    /// <summary>Histogram super-pixels per camera px for the segment images.</summary>
    public double Magnification { get; set; } = 5.0;
    /// <summary>Largest drift searched between two segments (camera px).</summary>
    public double MaxShiftPx { get; set; } = 20.0;
    /// <summary>Pairs whose residual after the least-squares solution exceeds this (camera px) are dropped and the system re-solved
    /// (Wang's r_max; 0.2 px = 20 nm at 100 nm pixels).</summary>
    public double ResidualThresholdPx { get; set; } = 0.2;
    /// <summary>Gaussian smoothing (super-pixels) of the correlation before the sub-pixel peak fit.</summary>
    public double PeakSmoothing { get; set; } = 1.0;
    /// <summary>Largest FFT edge; the segment images are cropped to the localizations' extent first.</summary>
    public int MaxFftSize { get; set; } = 4096;

    public void Validate()
    {
        if (FrameCount < 0) throw new InvalidParameterException("frames", $"must be >= 0, got {FrameCount}");
        if (Segments < 2 || Segments > 200) throw new InvalidParameterException("segments", $"must be in 2..200, got {Segments}");
        if (!double.IsFinite(Magnification) || Magnification <= 0 || Magnification > 50) throw new InvalidParameterException("magnification", $"must be in (0, 50], got {Magnification}");
        if (!double.IsFinite(MaxShiftPx) || MaxShiftPx <= 0) throw new InvalidParameterException("max-shift", $"must be > 0 px, got {MaxShiftPx}");
        if (!double.IsFinite(ResidualThresholdPx) || ResidualThresholdPx <= 0) throw new InvalidParameterException("rmax", $"must be > 0 px, got {ResidualThresholdPx}");
        if (!double.IsFinite(PeakSmoothing) || PeakSmoothing < 0) throw new InvalidParameterException("peak-smoothing", $"must be >= 0, got {PeakSmoothing}");
    }
}

public static class DriftCorrection
{
    // ---------------------------------------------------------------- fiducial

    /// <summary>
    /// Fiducial drift: links localizations into tracks (<see cref="Linker"/>), takes the tracks present in at least
    /// MinFrameFraction of the frames and among them the one with the highest mean photons (the bead), smooths its per-frame
    /// position by a local linear regression (window SmoothWindowFrames, one pass of 4-sigma outlier rejection), fills
    /// frames without the bead by linear interpolation (nearest value at the ends), and subtracts the mean of the first
    /// ReferenceFrames frames.
    /// </summary>
    public static DriftResult Fiducial(ReadOnlySpan<Localization> locs, FiducialDriftSettings settings)
    {
        settings.Validate();
        int frames = settings.FrameCount > 0 ? settings.FrameCount : MaxFrame(locs) + 1;
        if (frames <= 0) throw new MaLiangException("drift: no localizations");
        Localization[] cand;
        if (settings.Region is { } reg)
        {
            var l = new List<Localization>();
            foreach (var x in locs) if (reg.Contains(x.X, x.Y)) l.Add(x);
            cand = l.ToArray();
            if (cand.Length == 0) throw new MaLiangException($"drift: no localizations in region {reg}");
        }
        else cand = locs.ToArray();

        var ids = Linker.Link(cand, settings.LinkRadiusPx, settings.MaxGapFrames, 0, out int count);
        var n = new int[count];
        var ph = new double[count];
        for (int i = 0; i < cand.Length; i++) { n[ids[i]]++; ph[ids[i]] += cand[i].Photons; }
        int best = -1;
        int need = (int)Math.Ceiling(settings.MinFrameFraction * frames);
        int longest = 0;
        for (int t = 0; t < count; t++)
        {
            longest = Math.Max(longest, n[t]);
            if (n[t] >= need && (best < 0 || ph[t] / n[t] > ph[best] / n[best])) best = t;
        }
        if (best < 0)
            throw new MaLiangException($"drift: no fiducial found in at least {settings.MinFrameFraction:P0} of {frames} frames (longest track: {longest} frames); give --region around a bead or use --method rcc");

        // one position per frame (the track has at most one per frame)
        var xs = new double[frames]; var ys = new double[frames]; var has = new bool[frames];
        for (int i = 0; i < cand.Length; i++)
            if (ids[i] == best && cand[i].Frame >= 0 && cand[i].Frame < frames)
            { xs[cand[i].Frame] = cand[i].X; ys[cand[i].Frame] = cand[i].Y; has[cand[i].Frame] = true; }

        var sx = SmoothTrajectory(xs, ys, has, settings.SmoothWindowFrames, out var sy);
        int refN = Math.Min(settings.ReferenceFrames, frames);
        double rx = 0, ry = 0;
        for (int f = 0; f < refN; f++) { rx += sx[f]; ry += sy[f]; }
        rx /= refN; ry /= refN;
        for (int f = 0; f < frames; f++) { sx[f] -= rx; sy[f] -= ry; }
        return new DriftResult(sx, sy) { Method = "fiducial", FiducialX = rx, FiducialY = ry };
    }

    /// <summary>Local linear regression of x(f), y(f) over a window of <paramref name="window"/> frames (prefix sums: O(frames)),
    /// then one more pass without points further than 4 robust standard deviations from the first fit.</summary>
    internal static double[] SmoothTrajectory(double[] xs, double[] ys, bool[] has, int window, out double[] sy)
    {
        int frames = xs.Length;
        var use = (bool[])has.Clone();
        double[] fx = LocalLinear(xs, use, window), fy = LocalLinear(ys, use, window);
        var res = new List<double>();
        for (int f = 0; f < frames; f++)
            if (use[f] && !double.IsNaN(fx[f])) res.Add(Math.Sqrt(Sq(xs[f] - fx[f]) + Sq(ys[f] - fy[f])));
        if (res.Count > 3)
        {
            res.Sort();
            double med = res[res.Count / 2];
            // for a 2-D Gaussian the radial distance has median sigma*sqrt(2 ln 2)
            double sigma = med / Math.Sqrt(2 * Math.Log(2));
            for (int f = 0; f < frames; f++)
                if (use[f] && !double.IsNaN(fx[f]) && Math.Sqrt(Sq(xs[f] - fx[f]) + Sq(ys[f] - fy[f])) > 4 * sigma) use[f] = false;
            fx = LocalLinear(xs, use, window); fy = LocalLinear(ys, use, window);
        }
        FillGaps(fx); FillGaps(fy);
        sy = fy;
        return fx;
    }

    private static double Sq(double v) => v * v;

    private static double[] LocalLinear(double[] v, bool[] use, int window)
    {
        int n = v.Length, h = window / 2;
        // prefix sums of 1, t, t^2, v, t v (t centred on the evaluation frame below, so use raw t and shift)
        var c = new double[n + 1]; var st = new double[n + 1]; var stt = new double[n + 1]; var sv = new double[n + 1]; var stv = new double[n + 1];
        for (int i = 0; i < n; i++)
        {
            double u = use[i] ? 1 : 0, t = i;
            c[i + 1] = c[i] + u; st[i + 1] = st[i] + u * t; stt[i + 1] = stt[i] + u * t * t;
            sv[i + 1] = sv[i] + u * v[i]; stv[i + 1] = stv[i] + u * t * v[i];
        }
        var r = new double[n];
        for (int f = 0; f < n; f++)
        {
            int a = Math.Max(0, f - h), b = Math.Min(n, f + h + 1);
            double N = c[b] - c[a];
            if (N < 3) { r[f] = double.NaN; continue; }
            // centre t on f: t' = t - f
            double S1 = st[b] - st[a] - f * N;
            double S2 = stt[b] - stt[a] - 2 * f * (st[b] - st[a]) + (double)f * f * N;
            double V = sv[b] - sv[a];
            double TV = stv[b] - stv[a] - f * V;
            double det = N * S2 - S1 * S1;
            r[f] = det > 1e-9 * N * S2 ? (S2 * V - S1 * TV) / det : V / N;
        }
        return r;
    }

    /// <summary>Replaces NaN by linear interpolation between the nearest finite neighbours (nearest value at the ends).</summary>
    internal static void FillGaps(double[] v)
    {
        int n = v.Length, last = -1;
        for (int i = 0; i < n; i++)
        {
            if (double.IsNaN(v[i])) continue;
            if (last < 0) for (int j = 0; j < i; j++) v[j] = v[i];
            else for (int j = last + 1; j < i; j++) v[j] = v[last] + (v[i] - v[last]) * (j - last) / (i - last);
            last = i;
        }
        if (last < 0) throw new MaLiangException("drift: the fiducial has too few positions to estimate the drift");
        for (int j = last + 1; j < n; j++) v[j] = v[last];
    }

    private static int MaxFrame(ReadOnlySpan<Localization> locs)
    {
        int m = -1;
        foreach (var l in locs) m = Math.Max(m, l.Frame);
        return m;
    }

    // ---------------------------------------------------------------- RCC

    /// <summary>
    /// Redundant cross-correlation (Wang et al., Opt. Express 22:15982, 2014): the frames are split into N equal segments, each
    /// rendered as a histogram (Magnification super-pixels per px); every pair (i, j) is cross-correlated by FFT and the sub-pixel
    /// peak (Gaussian 3-point fit after light smoothing) gives r_ij = d_j - d_i. The overdetermined system is solved by least
    /// squares with d_0 = 0; pairs with residual above ResidualThresholdPx are dropped (keeping each segment connected) and it is
    /// re-solved. The segments' shifts, placed at their centre frames, are interpolated per frame by a natural cubic spline
    /// (linear beyond the first/last centre), relative to frame 0.
    /// </summary>
    public static DriftResult Rcc(ReadOnlySpan<Localization> locs, RccSettings settings)
    {
        settings.Validate();
        int frames = settings.FrameCount > 0 ? settings.FrameCount : MaxFrame(locs) + 1;
        int nseg = settings.Segments;
        if (frames < nseg) throw new InvalidParameterException("segments", $"{nseg} segments need at least as many frames, got {frames}");
        double minX = double.PositiveInfinity, minY = double.PositiveInfinity, maxX = double.NegativeInfinity, maxY = double.NegativeInfinity;
        foreach (var l in locs)
        {
            if (!float.IsFinite(l.X) || !float.IsFinite(l.Y)) continue;
            minX = Math.Min(minX, l.X); maxX = Math.Max(maxX, l.X); minY = Math.Min(minY, l.Y); maxY = Math.Max(maxY, l.Y);
        }
        if (!double.IsFinite(minX)) throw new MaLiangException("drift: no localizations");
        double mag = settings.Magnification;
        int w = (int)Math.Ceiling((maxX - minX) * mag) + 1, h = (int)Math.Ceiling((maxY - minY) * mag) + 1;
        int maxShift = (int)Math.Ceiling(settings.MaxShiftPx * mag);
        int size = Fft.NextPowerOfTwo(Math.Max(w, h) + maxShift + 2);
        if (size > settings.MaxFftSize)
            throw new InvalidParameterException("magnification", $"segment images would need a {size}x{size} FFT (> {settings.MaxFftSize}); lower the magnification or max shift");

        // segment images (histograms), transformed
        var segLen = (double)frames / nseg;
        var counts = new int[nseg];
        var images = new float[nseg][];
        for (int s = 0; s < nseg; s++) images[s] = new float[2 * size * size];
        foreach (var l in locs)
        {
            if (!float.IsFinite(l.X) || !float.IsFinite(l.Y) || l.Frame < 0 || l.Frame >= frames) continue;
            int s = Math.Min(nseg - 1, (int)(l.Frame / segLen));
            int u = (int)((l.X - minX) * mag), v = (int)((l.Y - minY) * mag);
            images[s][2 * (v * size + u)] += 1f;
            counts[s]++;
        }
        for (int s = 0; s < nseg; s++)
            if (counts[s] == 0) throw new MaLiangException($"drift: RCC segment {s + 1} of {nseg} (frames {(int)(s * segLen) + 1}-{(int)((s + 1) * segLen)}) has no localizations; use fewer segments");
        for (int s = 0; s < nseg; s++) Fft.Transform2D(images[s], size, inverse: false);

        // Gaussian smoothing of the correlation, applied in Fourier space
        var smooth = new double[size];
        for (int k = 0; k < size; k++)
        {
            double q = (k < size / 2 ? k : k - size) / (double)size;
            smooth[k] = Math.Exp(-2 * Math.PI * Math.PI * settings.PeakSmoothing * settings.PeakSmoothing * q * q);
        }

        var pairs = new List<(int i, int j, double dx, double dy)>();
        var buf = new float[2 * size * size];
        for (int i = 0; i < nseg; i++)
            for (int j = i + 1; j < nseg; j++)
            {
                float[] a = images[i], b = images[j];
                Parallel.For(0, size, row =>
                {
                    double sr = smooth[row];
                    for (int c = 0; c < size; c++)
                    {
                        int o = 2 * (row * size + c);
                        double ar = a[o], ai = -a[o + 1], br = b[o], bi = b[o + 1], g = sr * smooth[c];
                        buf[o] = (float)((ar * br - ai * bi) * g);
                        buf[o + 1] = (float)((ar * bi + ai * br) * g);
                    }
                });
                Fft.Transform2D(buf, size, inverse: true);
                var (dx, dy) = Peak(buf, size, maxShift);
                pairs.Add((i, j, dx / mag, dy / mag));
            }

        var (sx, sy, kept) = SolveShifts(nseg, pairs, settings.ResidualThresholdPx);
        var centres = new double[nseg];
        for (int s = 0; s < nseg; s++) centres[s] = (s + 0.5) * segLen - 0.5;
        var dxF = Spline(centres, sx, frames);
        var dyF = Spline(centres, sy, frames);
        double x0 = dxF[0], y0 = dyF[0];
        for (int f = 0; f < frames; f++) { dxF[f] -= x0; dyF[f] -= y0; }
        return new DriftResult(dxF, dyF) { Method = "rcc", PairsUsed = kept, PairsTotal = pairs.Count, SegmentCentres = centres, SegmentDxPx = sx, SegmentDyPx = sy };
    }

    /// <summary>Position of the correlation maximum within +-maxShift (wrapped), refined by a 3-point Gaussian fit per axis
    /// (parabolic where a neighbour is not positive).</summary>
    private static (double dx, double dy) Peak(float[] c, int size, int maxShift)
    {
        maxShift = Math.Min(maxShift, size / 2 - 2);
        double best = double.NegativeInfinity; int bx = 0, by = 0;
        for (int y = -maxShift; y <= maxShift; y++)
            for (int x = -maxShift; x <= maxShift; x++)
            {
                double v = c[2 * (Wrap(y, size) * size + Wrap(x, size))];
                if (v > best) { best = v; bx = x; by = y; }
            }
        double At(int x, int y) => c[2 * (Wrap(y, size) * size + Wrap(x, size))];
        return (bx + Refine(At(bx - 1, by), best, At(bx + 1, by)), by + Refine(At(bx, by - 1), best, At(bx, by + 1)));
    }

    private static int Wrap(int k, int size) => k < 0 ? k + size : k;

    private static double Refine(double m, double c, double p)
    {
        double d;
        if (m > 0 && c > 0 && p > 0)
        {
            double lm = Math.Log(m), lc = Math.Log(c), lp = Math.Log(p);
            double den = lm - 2 * lc + lp;
            d = den < 0 ? 0.5 * (lm - lp) / den : 0;
        }
        else
        {
            double den = m - 2 * c + p;
            d = den < 0 ? 0.5 * (m - p) / den : 0;
        }
        return Math.Clamp(d, -0.5, 0.5);
    }

    /// <summary>Least squares for d (d_0 = 0) from r_ij = d_j - d_i. While the worst used pair's residual exceeds the threshold,
    /// it is dropped (unless that disconnects the segments) and the system re-solved (Wang et al.'s rejection, one pair at a time
    /// so that one bad pair does not take good ones with it).</summary>
    internal static (double[] dx, double[] dy, int kept) SolveShifts(int n, List<(int i, int j, double dx, double dy)> pairs, double threshold)
    {
        var use = new bool[pairs.Count];
        Array.Fill(use, true);
        int kept = pairs.Count;
        var d = Solve(n, pairs, p => p.dx, use);
        var e = Solve(n, pairs, p => p.dy, use);
        var skip = new bool[pairs.Count]; // pairs whose removal would disconnect
        while (true)
        {
            int worst = -1; double wr = threshold;
            for (int k = 0; k < pairs.Count; k++)
            {
                if (!use[k] || skip[k]) continue;
                var p = pairs[k];
                double r = Math.Sqrt(Sq(d[p.j] - d[p.i] - p.dx) + Sq(e[p.j] - e[p.i] - p.dy));
                if (r > wr) { wr = r; worst = k; }
            }
            if (worst < 0) break;
            use[worst] = false;
            if (!Connected(n, pairs, use)) { use[worst] = true; skip[worst] = true; continue; }
            kept--;
            d = Solve(n, pairs, p => p.dx, use);
            e = Solve(n, pairs, p => p.dy, use);
        }
        return (d, e, kept);
    }

    private static bool Connected(int n, List<(int i, int j, double dx, double dy)> pairs, bool[] use)
    {
        var parent = new int[n];
        for (int i = 0; i < n; i++) parent[i] = i;
        int Find(int x) { while (parent[x] != x) x = parent[x] = parent[parent[x]]; return x; }
        for (int k = 0; k < pairs.Count; k++) if (use[k]) parent[Find(pairs[k].i)] = Find(pairs[k].j);
        int root = Find(0);
        for (int i = 1; i < n; i++) if (Find(i) != root) return false;
        return true;
    }

    private static double[] Solve(int n, List<(int i, int j, double dx, double dy)> pairs,
        Func<(int i, int j, double dx, double dy), double> sel, bool[] use)
    {
        // normal equations in d_1..d_{n-1}
        int m = n - 1;
        var A = new double[m, m];
        var b = new double[m];
        for (int k = 0; k < pairs.Count; k++)
        {
            if (!use[k]) continue;
            var p = pairs[k];
            double r = sel(p);
            int a = p.i - 1, c = p.j - 1; // coefficient -1 on d_i, +1 on d_j
            if (a >= 0) { A[a, a] += 1; b[a] -= r; }
            if (c >= 0) { A[c, c] += 1; b[c] += r; }
            if (a >= 0 && c >= 0) { A[a, c] -= 1; A[c, a] -= 1; }
        }
        // Gaussian elimination with partial pivoting
        for (int col = 0; col < m; col++)
        {
            int piv = col;
            for (int r = col + 1; r < m; r++) if (Math.Abs(A[r, col]) > Math.Abs(A[piv, col])) piv = r;
            if (Math.Abs(A[piv, col]) < 1e-12) throw new MaLiangException("drift: RCC shift system is singular (segments not connected)");
            if (piv != col)
            {
                for (int k = 0; k < m; k++) (A[col, k], A[piv, k]) = (A[piv, k], A[col, k]);
                (b[col], b[piv]) = (b[piv], b[col]);
            }
            for (int r = col + 1; r < m; r++)
            {
                double f = A[r, col] / A[col, col];
                if (f == 0) continue;
                for (int k = col; k < m; k++) A[r, k] -= f * A[col, k];
                b[r] -= f * b[col];
            }
        }
        var x = new double[m];
        for (int r = m - 1; r >= 0; r--)
        {
            double s = b[r];
            for (int k = r + 1; k < m; k++) s -= A[r, k] * x[k];
            x[r] = s / A[r, r];
        }
        var d = new double[n];
        for (int i = 1; i < n; i++) d[i] = x[i - 1];
        return d;
    }

    /// <summary>Natural cubic spline through (t, v) evaluated at frames 0..frames-1; linear extrapolation with the end slopes.</summary>
    internal static double[] Spline(double[] t, double[] v, int frames)
    {
        int n = t.Length;
        var r = new double[frames];
        if (n == 1) { Array.Fill(r, v[0]); return r; }
        var m = new double[n]; // second derivatives
        if (n > 2)
        {
            var a = new double[n]; var b = new double[n]; var c = new double[n]; var d = new double[n];
            for (int i = 1; i < n - 1; i++)
            {
                double h0 = t[i] - t[i - 1], h1 = t[i + 1] - t[i];
                a[i] = h0; b[i] = 2 * (h0 + h1); c[i] = h1;
                d[i] = 6 * ((v[i + 1] - v[i]) / h1 - (v[i] - v[i - 1]) / h0);
            }
            for (int i = 2; i < n - 1; i++)
            {
                double f = a[i] / b[i - 1];
                b[i] -= f * c[i - 1]; d[i] -= f * d[i - 1];
            }
            for (int i = n - 2; i >= 1; i--) m[i] = (d[i] - c[i] * m[i + 1]) / b[i];
        }
        for (int f = 0; f < frames; f++)
        {
            double x = f;
            if (x <= t[0])
            {
                double h = t[1] - t[0];
                double slope = (v[1] - v[0]) / h - h * (2 * m[0] + m[1]) / 6;
                r[f] = v[0] + slope * (x - t[0]);
            }
            else if (x >= t[n - 1])
            {
                double h = t[n - 1] - t[n - 2];
                double slope = (v[n - 1] - v[n - 2]) / h + h * (m[n - 2] + 2 * m[n - 1]) / 6;
                r[f] = v[n - 1] + slope * (x - t[n - 1]);
            }
            else
            {
                int i = Array.BinarySearch(t, x);
                if (i < 0) i = ~i - 1;
                i = Math.Min(i, n - 2);
                double h = t[i + 1] - t[i], A = (t[i + 1] - x) / h, B = (x - t[i]) / h;
                r[f] = A * v[i] + B * v[i + 1] + ((A * A * A - A) * m[i] + (B * B * B - B) * m[i + 1]) * h * h / 6;
            }
        }
        return r;
    }
}
