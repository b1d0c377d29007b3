using MaLiang.Engine.Simulate;
using MaLiang.Engine.Post;

namespace MaLiang.Engine.Render;

public enum RenderMethod
{
    /// <summary>Each localization adds a unit-integral, pixel-integrated (erf) Gaussian: the image sum is the count inside.</summary>
    Gaussian = 0,
    /// <summary>Counts per super-pixel.</summary>
    Histogram = 1,
    /// <summary>Counts per super-pixel after adding Gaussian noise of the localization's sigma to its position (seeded).</summary>
    HistogramJitter = 2,
    /// <summary>Average of Shifts x Shifts histograms shifted by 1/Shifts super-pixel (Scott's ASH).</summary>
    AverageShiftedHistogram = 3,
}

/// <summary>Options of <c>maliang render</c>. Units are in the names; the output has Width*Magnification x Height*Magnification pixels
/// (or the region's size times Magnification).</summary>
public sealed class RenderSettings
{
    /// <summary>Super-resolution pixels per camera pixel (e.g. 10: 100 nm camera pixels -> 10 nm).</summary>
    public double Magnification { get; set; } = 10.0;
    public RenderMethod Method { get; set; } = RenderMethod.Gaussian;
    /// <summary>Shifts per axis of the average shifted histogram.</summary>
    public int Shifts { get; set; } = 2;
    /// <summary>Fixed Gaussian sigma in camera px; 0 = each localization's own uncertainty (per axis), clamped to <see cref="MinSigmaPx"/>.</summary>
    public double SigmaPx { get; set; }
    public double MinSigmaPx { get; set; } = 0.05;
    /// <summary>Camera image size in px (the field to render when no region is given).</summary>
    public int Width { get; set; }
    public int Height { get; set; }
    /// <summary>Optional sub-field in camera px; the output then covers just this rectangle.</summary>
    public RegionPx? Region { get; set; }
    /// <summary>Seed of the jitter noise (HistogramJitter).</summary>
    public int Seed { get; set; }
    /// <summary>Upper bound on output pixels (guards against a typo in the magnification).</summary>
    public long MaxPixels { get; set; } = 1L << 28;

    public double OriginX => Region?.X0 ?? 0.0;
    public double OriginY => Region?.Y0 ?? 0.0;
    public int OutputWidth => (int)Math.Ceiling((Region?.Width ?? Width) * Magnification - 1e-9);
    public int OutputHeight => (int)Math.Ceiling((Region?.Height ?? Height) * Magnification - 1e-9);

    public void Validate()
    {
        if (!double.IsFinite(Magnification) || Magnification <= 0 || Magnification > 1000)
            throw new InvalidParameterException("magnification", $"must be in (0, 1000], got {Magnification}");
        if (Method == RenderMethod.AverageShiftedHistogram && (Shifts < 1 || Shifts > 16))
            throw new InvalidParameterException("shifts", $"must be in 1..16, got {Shifts}");
        if (!double.IsFinite(SigmaPx) || SigmaPx < 0) throw new InvalidParameterException("sigma", $"must be >= 0 px (0 = per-localization uncertainty), got {SigmaPx}");
        if (!double.IsFinite(MinSigmaPx) || MinSigmaPx <= 0) throw new InvalidParameterException("min-sigma", $"must be > 0 px, got {MinSigmaPx}");
        if (Region is { } r) r.Validate("region");
        else if (Width <= 0 || Height <= 0) throw new InvalidParameterException("size", $"image size {Width}x{Height} px must be positive (or give a region)");
        long n = (long)OutputWidth * OutputHeight;
        if (OutputWidth <= 0 || OutputHeight <= 0 || n > MaxPixels)
            throw new InvalidParameterException("magnification", $"output {OutputWidth}x{OutputHeight} px is empty or larger than {MaxPixels} pixels");
    }
}

/// <summary>A rendered float image, row-major.</summary>
public sealed class RenderedImage
{
    public RenderedImage(float[] pixels, int width, int height)
    {
        if (pixels.Length != (long)width * height) throw new ArgumentException("pixel count does not match width x height");
        Pixels = pixels; Width = width; Height = height;
    }
    public float[] Pixels { get; }
    public int Width { get; }
    public int Height { get; }
    public double Sum()
    {
        double s = 0;
        foreach (var v in Pixels) s += v;
        return s;
    }
}

/// <summary>Super-resolution image reconstruction from localizations. Deterministic: Gaussian rendering runs in parallel
/// over bands of output rows, each band adding its localizations in input order.</summary>
public static class Renderer
{
    private const double SigmaExtent = 5.0; // Gaussian support +-5 sigma: the lost tail is < 6e-7 per axis
    private const int BandRows = 16;

    public static RenderedImage Render(ReadOnlySpan<Localization> locs, RenderSettings settings)
        => new(Accumulate(locs, null, settings), settings.OutputWidth, settings.OutputHeight);

    /// <summary>Renders with each localization weighted by <paramref name="weights"/> (same length), e.g. for colour coding.</summary>
    public static RenderedImage RenderWeighted(ReadOnlySpan<Localization> locs, ReadOnlySpan<float> weights, RenderSettings settings)
    {
        if (weights.Length != locs.Length) throw new ArgumentException("one weight per localization is needed");
        return new(Accumulate(locs, weights.ToArray(), settings), settings.OutputWidth, settings.OutputHeight);
    }

    /// <summary>
    /// Colour-coded rendering: hue from <paramref name="values"/> (per localization, e.g. frame number or any column) mapped
    /// linearly from [vmin, vmax] through <paramref name="colormap"/>; brightness from the density image, saturated at its
    /// <paramref name="saturatePercentile"/> percentile of non-zero pixels. vmin/vmax NaN = the values' range. Returns RGB bytes.
    /// </summary>
    public static byte[] RenderColored(ReadOnlySpan<Localization> locs, ReadOnlySpan<float> values, RenderSettings settings,
        double vmin = double.NaN, double vmax = double.NaN, ColormapKind colormap = ColormapKind.Viridis, double saturatePercentile = 99.5)
    {
        if (values.Length != locs.Length) throw new InvalidParameterException("color-by", $"{values.Length} values for {locs.Length} localizations");
        if (double.IsNaN(vmin) || double.IsNaN(vmax))
        {
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            foreach (var v in values) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
            if (double.IsNaN(vmin)) vmin = double.IsFinite(lo) ? lo : 0;
            if (double.IsNaN(vmax)) vmax = double.IsFinite(hi) ? hi : 1;
        }
        double span = vmax > vmin ? vmax - vmin : 1.0;
        var w = new float[values.Length];
        for (int i = 0; i < w.Length; i++) w[i] = (float)Math.Clamp((values[i] - vmin) / span, 0.0, 1.0);
        var density = Accumulate(locs, null, settings);
        var weighted = Accumulate(locs, w, settings);
        double sat = Percentile(density, saturatePercentile);
        var rgb = new byte[density.Length * 3];
        for (int i = 0; i < density.Length; i++)
        {
            float d = density[i];
            if (d <= 0) continue;
            double b = Math.Min(1.0, d / sat);
            var (r, g, bl) = Colormap.Map(colormap, weighted[i] / d);
            rgb[3 * i] = (byte)Math.Round(r * b);
            rgb[3 * i + 1] = (byte)Math.Round(g * b);
            rgb[3 * i + 2] = (byte)Math.Round(bl * b);
        }
        return rgb;
    }

    /// <summary>8-bit gray image, linear from 0 to the <paramref name="saturatePercentile"/> percentile of the positive pixels.</summary>
    public static byte[] ToGray8(ReadOnlySpan<float> image, double saturatePercentile = 99.5)
        => IO.PngWriter.ToGray8(image, (float)Percentile(image, saturatePercentile));

    /// <summary>Gray (1 byte/px) to RGB (3 bytes/px).</summary>
    public static byte[] GrayToRgb(ReadOnlySpan<byte> gray)
    {
        var rgb = new byte[gray.Length * 3];
        for (int i = 0; i < gray.Length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
        return rgb;
    }

    /// <summary>The p-th percentile (0..100) of the positive pixels; 1 when there are none.</summary>
    public static double Percentile(ReadOnlySpan<float> image, double p)
    {
        float v = Detect.Selection.PositivePercentile(image, p);
        return v > 0 ? v : 1.0;
    }

    private static float[] Accumulate(ReadOnlySpan<Localization> locs, float[]? weights, RenderSettings s)
    {
        s.Validate();
        return s.Method switch
        {
            RenderMethod.Gaussian => Gaussian(locs, weights, s),
            RenderMethod.Histogram => Histogram(locs, weights, s, 1, null),
            RenderMethod.HistogramJitter => Histogram(locs, weights, s, 1, new Random(s.Seed)),
            RenderMethod.AverageShiftedHistogram => Ash(locs, weights, s),
            _ => throw new InvalidParameterException("method", $"unknown render method {s.Method}"),
        };
    }

    private static (double sx, double sy) SigmaOf(in Localization l, RenderSettings s)
    {
        if (s.SigmaPx > 0) return (s.SigmaPx, s.SigmaPx);
        double sx = float.IsFinite(l.UncertaintyX) ? l.UncertaintyX : 0, sy = float.IsFinite(l.UncertaintyY) ? l.UncertaintyY : 0;
        return (Math.Max(sx, s.MinSigmaPx), Math.Max(sy, s.MinSigmaPx));
    }

    private static float[] Histogram(ReadOnlySpan<Localization> locs, float[]? weights, RenderSettings s, int sub, Random? jitter)
    {
        double mag = s.Magnification * sub;
        int w = s.OutputWidth * sub, h = s.OutputHeight * sub;
        var img = new float[(long)w * h];
        for (int i = 0; i < locs.Length; i++)
        {
            ref readonly var l = ref locs[i];
            double x = l.X, y = l.Y;
            if (jitter is not null)
            {
                var (sx, sy) = SigmaOf(l, s);
                x += sx * Gauss(jitter);
                y += sy * Gauss(jitter);
            }
            double u = (x - s.OriginX) * mag, v = (y - s.OriginY) * mag;
            if (!(u >= 0 && v >= 0 && u < w && v < h)) continue;
            img[(int)v * w + (int)u] += weights is null ? 1f : weights[i];
        }
        return img;
    }

    private static double Gauss(Random r)
    {
        double u1 = 1.0 - r.NextDouble(), u2 = r.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    private static float[] Ash(ReadOnlySpan<Localization> locs, float[]? weights, RenderSettings s)
    {
        int n = s.Shifts;
        var fine = Histogram(locs, weights, s, n, null);
        if (n == 1) return fine;
        int fw = s.OutputWidth * n, fh = s.OutputHeight * n;
        // Triangular weights (n - |k|) / n^2, k = -(n-1)..(n-1): averaging n shifted histograms equals this separable smoothing of the fine one.
        var k = new double[2 * n - 1];
        for (int i = 0; i < k.Length; i++) k[i] = (n - Math.Abs(i - (n - 1))) / (double)(n * n);
        var tmp = new float[fine.Length];
        for (int y = 0; y < fh; y++)
            for (int x = 0; x < fw; x++)
            {
                double acc = 0;
                for (int j = 0; j < k.Length; j++)
                {
                    int xx = x + j - (n - 1);
                    if (xx >= 0 && xx < fw) acc += k[j] * fine[y * fw + xx];
                }
                tmp[y * fw + x] = (float)acc;
            }
        var sm = new float[fine.Length];
        for (int y = 0; y < fh; y++)
            for (int x = 0; x < fw; x++)
            {
                double acc = 0;
                for (int j = 0; j < k.Length; j++)
                {
                    int yy = y + j - (n - 1);
                    if (yy >= 0 && yy < fh) acc += k[j] * tmp[yy * fw + x];
                }
                sm[y * fw + x] = (float)acc;
            }
        // Bin n x n fine pixels into one output pixel (keeps the total count).
        int w = s.OutputWidth, h = s.OutputHeight;
        var img = new float[(long)w * h];
        for (int y = 0; y < fh; y++)
            for (int x = 0; x < fw; x++)
                img[(y / n) * w + x / n] += sm[y * fw + x];
        return img;
    }

    private static float[] Gaussian(ReadOnlySpan<Localization> locs, float[]? weights, RenderSettings s)
    {
        int w = s.OutputWidth, h = s.OutputHeight;
        double mag = s.Magnification;
        var img = new float[(long)w * h];
        int nb = (h + BandRows - 1) / BandRows;
        var bands = new List<int>[nb];
        for (int b = 0; b < nb; b++) bands[b] = new List<int>();
        var local = locs.ToArray();
        for (int i = 0; i < local.Length; i++)
        {
            var (_, sy) = SigmaOf(local[i], s);
            double v = (local[i].Y - s.OriginY) * mag, r = SigmaExtent * sy * mag;
            if (!double.IsFinite(v)) continue;
            int y0 = (int)Math.Max(0, Math.Floor(v - r)), y1 = (int)Math.Min(h - 1, Math.Floor(v + r));
            if (y1 < y0) continue;
            for (int b = y0 / BandRows; b <= y1 / BandRows; b++) bands[b].Add(i);
        }
        Parallel.For(0, nb, () => (new double[64], new double[64]), (b, _, buf) =>
        {
            var (ex, ey) = buf;
            int by0 = b * BandRows, by1 = Math.Min(h, by0 + BandRows) - 1;
            foreach (int i in bands[b])
            {
                ref readonly var l = ref local[i];
                var (sx, sy) = SigmaOf(l, s);
                double u = (l.X - s.OriginX) * mag, v = (l.Y - s.OriginY) * mag;
                if (!double.IsFinite(u)) continue;
                sx *= mag; sy *= mag;
                int x0 = (int)Math.Max(0, Math.Floor(u - SigmaExtent * sx)), x1 = (int)Math.Min(w - 1, Math.Floor(u + SigmaExtent * sx));
                int y0 = (int)Math.Max(by0, Math.Floor(v - SigmaExtent * sy)), y1 = (int)Math.Min(by1, Math.Floor(v + SigmaExtent * sy));
                if (x1 < x0 || y1 < y0) continue;
                if (ex.Length < x1 - x0 + 1) ex = new double[2 * (x1 - x0 + 1)];
                if (ey.Length < y1 - y0 + 1) ey = new double[2 * (y1 - y0 + 1)];
                // The one pixel-integrated Gaussian (Simulate/ExpectedImage.cs), unit integral.
                IntegratedGaussian.PixelFractions(x0, u, sx, ex.AsSpan(0, x1 - x0 + 1));
                IntegratedGaussian.PixelFractions(y0, v, sy, ey.AsSpan(0, y1 - y0 + 1));
                double wt = weights is null ? 1.0 : weights[i];
                for (int y = y0; y <= y1; y++)
                {
                    double fy = wt * ey[y - y0];
                    if (fy == 0) continue;
                    int o = y * w;
                    for (int x = x0; x <= x1; x++) img[o + x] += (float)(fy * ex[x - x0]);
                }
            }
            return (ex, ey);
        }, _ => { });
        return img;
    }
}
