namespace MaLiang.Engine.Render;

public enum ColormapKind { Viridis = 0, Gray = 1 }

/// <summary>Compact perceptual colormaps: 9 anchor colours, linear interpolation in between.</summary>
public static class Colormap
{
    // viridis (matplotlib) sampled at 0, 1/8, ..., 1
    private static readonly byte[] Viridis =
    [
        68, 1, 84,   71, 44, 122,   59, 81, 139,   44, 113, 142,   33, 144, 141,
        39, 173, 129,   92, 200, 99,   170, 220, 50,   253, 231, 37,
    ];

    /// <summary>Colour of t in [0, 1] (clamped; NaN -> 0) as 0..255 components.</summary>
    public static (double R, double G, double B) Map(ColormapKind kind, double t)
    {
        if (!double.IsFinite(t)) t = 0;
        t = Math.Clamp(t, 0.0, 1.0);
        if (kind == ColormapKind.Gray) return (255 * t, 255 * t, 255 * t);
        int n = Viridis.Length / 3 - 1;
        double p = t * n;
        int i = Math.Min((int)p, n - 1);
        double f = p - i;
        double c(int k) => Viridis[3 * i + k] * (1 - f) + Viridis[3 * (i + 1) + k] * f;
        return (c(0), c(1), c(2));
    }

    public static (byte R, byte G, byte B) MapBytes(ColormapKind kind, double t)
    {
        var (r, g, b) = Map(kind, t);
        return ((byte)Math.Round(r), (byte)Math.Round(g), (byte)Math.Round(b));
    }
}

/// <summary>Draws a scale bar into an 8-bit gray (1 channel) or RGB (3 channels) image, bottom-right.</summary>
public static class ScaleBar
{
    /// <param name="image">Row-major pixels, <paramref name="channels"/> bytes each.</param>
    /// <param name="lengthNm">Bar length in nm.</param>
    /// <param name="pixelSizeNm">Size of one image pixel in nm (camera pixel size / magnification for a rendering).</param>
    /// <param name="thicknessPx">0 = automatic (about 1/100 of the height, at least 2 px).</param>
    /// <returns>The bar's length in pixels.</returns>
    public static int Draw(Span<byte> image, int width, int height, int channels, double lengthNm, double pixelSizeNm,
        int thicknessPx = 0, byte value = 255)
    {
        if (channels != 1 && channels != 3) throw new ArgumentException("channels must be 1 or 3");
        if (image.Length != width * height * channels) throw new ArgumentException("image size does not match width x height x channels");
        if (!double.IsFinite(lengthNm) || lengthNm <= 0) throw new InvalidParameterException("scale-bar", $"length must be > 0 nm, got {lengthNm}");
        if (!double.IsFinite(pixelSizeNm) || pixelSizeNm <= 0) throw new InvalidParameterException("pixel-size", $"must be > 0 nm, got {pixelSizeNm}");
        int len = (int)Math.Round(lengthNm / pixelSizeNm);
        int margin = Math.Max(2, Math.Min(width, height) / 20);
        if (thicknessPx <= 0) thicknessPx = Math.Max(2, height / 100);
        if (len < 1 || len > width - 2 * margin || thicknessPx > height - 2 * margin)
            throw new InvalidParameterException("scale-bar", $"{lengthNm} nm is {len} px, which does not fit a {width}x{height} px image");
        int x1 = width - margin, x0 = x1 - len, y1 = height - margin, y0 = y1 - thicknessPx;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                for (int c = 0; c < channels; c++) image[(y * width + x) * channels + c] = value;
        return len;
    }
}
