namespace MaLiang.Engine.Post;

public enum FrcSplit
{
    /// <summary>Blocks of BlockFrames frames, each assigned to a half at random (seeded), as Nieuwenhuizen et al. do.</summary>
    RandomBlocks = 0,
    /// <summary>Even-numbered blocks to the first half, odd-numbered to the second.</summary>
    OddEvenBlocks = 1,
}

/// <summary>Options of <c>maliang frc</c>.</summary>
public sealed class FrcSettings
{
    public double PixelSizeNm { get; set; } = 100.0;
    /// <summary>Histogram super-pixel size (nm). It must be well below the expected resolution (about 1/4 of it or less).</summary>
    public double SuperPixelNm { get; set; } = 5.0;
    public FrcSplit Split { get; set; } = FrcSplit.RandomBlocks;
    /// <summary>Frames per block; 0 = a twentieth of the frames (at least 1).</summary>
    public int BlockFrames { get; set; }
    public int Seed { get; set; }
    /// <summary>Tukey window taper fraction (0 = none, 1 = Hann).</summary>
    public double TukeyAlpha { get; set; } = 0.25;
    /// <summary>Moving-average width of the curve smoothing, in rings (odd; 0 = about 2% of the rings, at least 3).</summary>
    public int SmoothRings { get; set; }
    public double Threshold { get; set; } = 1.0 / 7.0;
    /// <summary>Field to analyse (px); null = the localizations' bounding box.</summary>
    public RegionPx? Region { get; set; }
    public int MaxFftSize { get; set; } = 4096;

    public void Validate()
    {
        if (!double.IsFinite(PixelSizeNm) || PixelSizeNm <= 0) throw new InvalidParameterException("pixel-size", $"must be > 0 nm, got {PixelSizeNm}");
        if (!double.IsFinite(SuperPixelNm) || SuperPixelNm <= 0) throw new InvalidParameterException("super-pixel", $"must be > 0 nm, got {SuperPixelNm}");
        if (BlockFrames < 0) throw new InvalidParameterException("block-frames", $"must be >= 0, got {BlockFrames}");
        if (!(TukeyAlpha >= 0 && TukeyAlpha <= 1)) throw new InvalidParameterException("tukey", $"must be in [0, 1], got {TukeyAlpha}");
        if (SmoothRings < 0) throw new InvalidParameterException("smooth", $"must be >= 0, got {SmoothRings}");
        if (!(Threshold > 0 && Threshold < 1)) throw new InvalidParameterException("threshold", $"must be in (0, 1), got {Threshold}");
        Region?.Validate("region");
    }
}

/// <summary>FRC curve and resolution. FrequencyPerNm[k] = k / (FFT size x super-pixel nm), ring k = 0..size/2-1.</summary>
public sealed class FrcResult
{
    public required double[] FrequencyPerNm { get; init; }
    public required double[] Frc { get; init; }
    public required double[] FrcSmoothed { get; init; }
    /// <summary>1 / (spatial frequency where the smoothed curve first drops below the threshold), nm; NaN when it never does.</summary>
    public double ResolutionNm { get; init; }
    public double Threshold { get; init; }
    public int Localizations1 { get; init; }
    public int Localizations2 { get; init; }
}

/// <summary>Fourier ring correlation (Nieuwenhuizen et al., Nat Methods 10:557, 2013).</summary>
public static class FrcAnalysis
{
    /// <summary>Which half (0 or 1) each localization goes to, by its frame's block.</summary>
    public static byte[] SplitHalves(ReadOnlySpan<Localization> locs, FrcSettings settings)
    {
        int maxFrame = 0;
        foreach (var l in locs) maxFrame = Math.Max(maxFrame, l.Frame);
        int frames = maxFrame + 1;
        int block = settings.BlockFrames > 0 ? settings.BlockFrames : Math.Max(1, frames / 20);
        int nblocks = frames / block + 1;
        var half = new byte[nblocks];
        if (settings.Split == FrcSplit.RandomBlocks)
        {
            // a balanced random assignment: shuffle, first half of the blocks -> 0
            var perm = new int[nblocks];
            for (int i = 0; i < nblocks; i++) perm[i] = i;
            var rng = new Random(settings.Seed);
            for (int i = nblocks - 1; i > 0; i--) { int j = rng.Next(i + 1); (perm[i], perm[j]) = (perm[j], perm[i]); }
            for (int i = 0; i < nblocks; i++) half[perm[i]] = (byte)(i < nblocks / 2 ? 0 : 1);
        }
        else for (int i = 0; i < nblocks; i++) half[i] = (byte)(i & 1);
        var r = new byte[locs.Length];
        for (int i = 0; i < r.Length; i++) r[i] = half[Math.Max(0, locs[i].Frame) / block];
        return r;
    }

    public static FrcResult Compute(ReadOnlySpan<Localization> locs, FrcSettings settings)
    {
        settings.Validate();
        var halves = SplitHalves(locs, settings);
        return Compute(locs, halves, settings);
    }

    /// <summary>FRC of the two halves given by <paramref name="halves"/> (0/1 per localization).</summary>
    public static FrcResult Compute(ReadOnlySpan<Localization> locs, ReadOnlySpan<byte> halves, FrcSettings settings)
    {
        settings.Validate();
        if (halves.Length != locs.Length) throw new ArgumentException("one half index per localization is needed");
        RegionPx reg;
        if (settings.Region is { } r) reg = r;
        else
        {
            double x0 = double.PositiveInfinity, y0 = double.PositiveInfinity, x1 = double.NegativeInfinity, y1 = double.NegativeInfinity;
            foreach (var l in locs)
                if (float.IsFinite(l.X) && float.IsFinite(l.Y)) { x0 = Math.Min(x0, l.X); x1 = Math.Max(x1, l.X); y0 = Math.Min(y0, l.Y); y1 = Math.Max(y1, l.Y); }
            if (!double.IsFinite(x0)) throw new MaLiangException("frc: no localizations");
            reg = new RegionPx(x0, y0, x1 + 1e-6, y1 + 1e-6);
        }
        double sp = settings.SuperPixelNm / settings.PixelSizeNm; // super-pixel in camera px
        int w = Math.Max(1, (int)Math.Ceiling(reg.Width / sp)), h = Math.Max(1, (int)Math.Ceiling(reg.Height / sp));
        int size = Fft.NextPowerOfTwo(Math.Max(w, h));
        if (size > settings.MaxFftSize) throw new InvalidParameterException("super-pixel", $"{settings.SuperPixelNm} nm over this field needs a {size}x{size} FFT (> {settings.MaxFftSize}); use a larger super-pixel or a region");
        if (size < 16) throw new InvalidParameterException("super-pixel", $"{settings.SuperPixelNm} nm leaves only {Math.Max(w, h)} super-pixels across the field");
        var a = new float[2 * size * size];
        var b = new float[2 * size * size];
        int n1 = 0, n2 = 0;
        for (int i = 0; i < locs.Length; i++)
        {
            var l = locs[i];
            if (!reg.Contains(l.X, l.Y)) continue;
            int u = Math.Min(w - 1, (int)((l.X - reg.X0) / sp)), v = Math.Min(h - 1, (int)((l.Y - reg.Y0) / sp));
            if (halves[i] == 0) { a[2 * (v * size + u)] += 1; n1++; } else { b[2 * (v * size + u)] += 1; n2++; }
        }
        if (n1 == 0 || n2 == 0) throw new MaLiangException($"frc: a half is empty ({n1} and {n2} localizations); use more frames or smaller blocks");
        var wx = Tukey(w, settings.TukeyAlpha);
        var wy = Tukey(h, settings.TukeyAlpha);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = 2 * (y * size + x);
                float f = (float)(wx[x] * wy[y]);
                a[o] *= f; b[o] *= f;
            }
        Fft.Transform2D(a, size, false);
        Fft.Transform2D(b, size, false);
        int rings = size / 2;
        var num = new double[rings]; var d1 = new double[rings]; var d2 = new double[rings];
        for (int y = 0; y < size; y++)
        {
            int ky = y < size / 2 ? y : y - size;
            for (int x = 0; x < size; x++)
            {
                int kx = x < size / 2 ? x : x - size;
                int k = (int)Math.Round(Math.Sqrt(kx * kx + ky * ky));
                if (k >= rings) continue;
                int o = 2 * (y * size + x);
                double ar = a[o], ai = a[o + 1], br = b[o], bi = b[o + 1];
                num[k] += ar * br + ai * bi;
                d1[k] += ar * ar + ai * ai;
                d2[k] += br * br + bi * bi;
            }
        }
        var frc = new double[rings];
        var q = new double[rings];
        for (int k = 0; k < rings; k++)
        {
            frc[k] = d1[k] > 0 && d2[k] > 0 ? num[k] / Math.Sqrt(d1[k] * d2[k]) : 0;
            q[k] = k / (size * settings.SuperPixelNm);
        }
        int win = settings.SmoothRings > 0 ? settings.SmoothRings : Math.Max(3, rings / 50);
        if (win % 2 == 0) win++;
        var sm = new double[rings];
        for (int k = 0; k < rings; k++)
        {
            int lo = Math.Max(1, k - win / 2), hi = Math.Min(rings - 1, k + win / 2);
            if (k == 0) { sm[0] = frc[0]; continue; }
            double s = 0; for (int j = lo; j <= hi; j++) s += frc[j];
            sm[k] = s / (hi - lo + 1);
        }
        double res = double.NaN;
        for (int k = 2; k < rings; k++)
            if (sm[k] < settings.Threshold)
            {
                double t = (sm[k - 1] - settings.Threshold) / (sm[k - 1] - sm[k]);
                double qc = q[k - 1] + Math.Clamp(t, 0, 1) * (q[k] - q[k - 1]);
                res = qc > 0 ? 1.0 / qc : double.NaN;
                break;
            }
        return new FrcResult { FrequencyPerNm = q, Frc = frc, FrcSmoothed = sm, ResolutionNm = res, Threshold = settings.Threshold, Localizations1 = n1, Localizations2 = n2 };
    }

    private static double[] Tukey(int n, double alpha)
    {
        var w = new double[n];
        for (int i = 0; i < n; i++)
        {
            double x = n > 1 ? i / (double)(n - 1) : 0.5;
            w[i] = alpha <= 0 ? 1
                : x < alpha / 2 ? 0.5 * (1 + Math.Cos(Math.PI * (2 * x / alpha - 1)))
                : x > 1 - alpha / 2 ? 0.5 * (1 + Math.Cos(Math.PI * (2 * x / alpha - 2 / alpha + 1)))
                : 1;
        }
        return w;
    }
}
