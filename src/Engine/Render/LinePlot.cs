using System.Globalization;

namespace MaLiang.Engine.Render;

/// <summary>One polyline of a plot. NaN points break the line.</summary>
public sealed record PlotSeries(double[] X, double[] Y, byte R, byte G, byte B);

/// <summary>A minimal line-plot rasterizer (axes, ticks with numeric labels, polylines, optional horizontal guide lines)
/// into RGB bytes on a white background. Encode with MaLiang.Engine.IO.PngWriter.WriteRgb.</summary>
public static class LinePlot
{
    private const int Left = 44, Right = 10, Top = 10, Bottom = 22;

    public static byte[] Render(int width, int height, IReadOnlyList<PlotSeries> series, IReadOnlyList<double>? horizontalLines = null)
    {
        if (width < Left + Right + 20 || height < Top + Bottom + 20)
            throw new InvalidParameterException("plot-size", $"{width}x{height} px is too small for a plot");
        var img = new byte[width * height * 3];
        Array.Fill(img, (byte)255);
        double xmin = double.PositiveInfinity, xmax = double.NegativeInfinity, ymin = double.PositiveInfinity, ymax = double.NegativeInfinity;
        foreach (var s in series)
        {
            if (s.X.Length != s.Y.Length) throw new ArgumentException("series X and Y lengths differ");
            for (int i = 0; i < s.X.Length; i++)
            {
                if (!double.IsFinite(s.X[i]) || !double.IsFinite(s.Y[i])) continue;
                xmin = Math.Min(xmin, s.X[i]); xmax = Math.Max(xmax, s.X[i]);
                ymin = Math.Min(ymin, s.Y[i]); ymax = Math.Max(ymax, s.Y[i]);
            }
        }
        if (horizontalLines is not null)
            foreach (var h in horizontalLines) { ymin = Math.Min(ymin, h); ymax = Math.Max(ymax, h); }
        if (!double.IsFinite(xmin)) { xmin = 0; xmax = 1; ymin = 0; ymax = 1; }
        if (xmax <= xmin) { xmin -= 0.5; xmax += 0.5; }
        if (ymax <= ymin) { ymin -= 0.5; ymax += 0.5; }
        double pad = 0.05 * (ymax - ymin);
        ymin -= pad; ymax += pad;
        int pw = width - Left - Right, ph = height - Top - Bottom;
        double Px(double x) => Left + (x - xmin) / (xmax - xmin) * (pw - 1);
        double Py(double y) => Top + (ymax - y) / (ymax - ymin) * (ph - 1);

        // axes
        Line(img, width, height, Left, Top + ph - 1, Left + pw - 1, Top + ph - 1, 0, 0, 0);
        Line(img, width, height, Left, Top, Left, Top + ph - 1, 0, 0, 0);
        foreach (var t in Ticks(xmin, xmax))
        {
            int x = (int)Math.Round(Px(t));
            Line(img, width, height, x, Top + ph - 1, x, Top + ph + 2, 0, 0, 0);
            string label = Label(t);
            Text(img, width, height, x - label.Length * 2, Top + ph + 5, label);
        }
        foreach (var t in Ticks(ymin, ymax))
        {
            int y = (int)Math.Round(Py(t));
            Line(img, width, height, Left - 3, y, Left, y, 0, 0, 0);
            string label = Label(t);
            Text(img, width, height, Left - 5 - label.Length * 4, y - 2, label);
        }
        if (horizontalLines is not null)
            foreach (var hl in horizontalLines)
            {
                int y = (int)Math.Round(Py(hl));
                for (int x = Left + 1; x < Left + pw; x += 4) Line(img, width, height, x, y, Math.Min(x + 1, Left + pw - 1), y, 128, 128, 128);
            }
        foreach (var s in series)
        {
            bool has = false; double px = 0, py = 0;
            for (int i = 0; i < s.X.Length; i++)
            {
                if (!double.IsFinite(s.X[i]) || !double.IsFinite(s.Y[i])) { has = false; continue; }
                double x = Px(s.X[i]), y = Py(s.Y[i]);
                if (has) Line(img, width, height, (int)Math.Round(px), (int)Math.Round(py), (int)Math.Round(x), (int)Math.Round(y), s.R, s.G, s.B);
                else Line(img, width, height, (int)Math.Round(x), (int)Math.Round(y), (int)Math.Round(x), (int)Math.Round(y), s.R, s.G, s.B);
                px = x; py = y; has = true;
            }
        }
        return img;
    }

    /// <summary>"Nice" tick positions (1, 2, 5 x 10^k steps), about 5 of them.</summary>
    public static List<double> Ticks(double lo, double hi)
    {
        var ticks = new List<double>();
        double raw = (hi - lo) / 5.0;
        if (!(raw > 0) || !double.IsFinite(raw)) return ticks;
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double f = raw / mag;
        double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + 1e-9 * step; t += step)
            ticks.Add(Math.Abs(t) < 1e-12 * step ? 0.0 : t);
        return ticks;
    }

    private static string Label(double v)
    {
        double a = Math.Abs(v);
        if (a != 0 && (a >= 1e5 || a < 1e-3)) return v.ToString("0.#E+0", CultureInfo.InvariantCulture);
        return v.ToString("0.###", CultureInfo.InvariantCulture);
    }

    private static void Put(byte[] img, int w, int h, int x, int y, byte r, byte g, byte b)
    {
        if ((uint)x >= (uint)w || (uint)y >= (uint)h) return;
        int o = 3 * (y * w + x);
        img[o] = r; img[o + 1] = g; img[o + 2] = b;
    }

    private static void Line(byte[] img, int w, int h, int x0, int y0, int x1, int y1, byte r, byte g, byte b)
    {
        int dx = Math.Abs(x1 - x0), dy = -Math.Abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
        while (true)
        {
            Put(img, w, h, x0, y0, r, g, b);
            if (x0 == x1 && y0 == y1) break;
            int e2 = 2 * err;
            if (e2 >= dy) { err += dy; x0 += sx; }
            if (e2 <= dx) { err += dx; y0 += sy; }
        }
    }

    // 3x5 glyphs, rows top to bottom, 3 bits each (MSB = left).
    private static ReadOnlySpan<byte> Glyph(char c) => c switch
    {
        '0' => [7, 5, 5, 5, 7], '1' => [2, 6, 2, 2, 7], '2' => [7, 1, 7, 4, 7], '3' => [7, 1, 7, 1, 7], '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7], '6' => [7, 4, 7, 5, 7], '7' => [7, 1, 1, 1, 1], '8' => [7, 5, 7, 5, 7], '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2], '-' => [0, 0, 7, 0, 0], '+' => [0, 2, 7, 2, 0], 'E' => [7, 4, 7, 4, 7],
        'n' => [0, 0, 6, 5, 5], 'm' => [0, 0, 7, 7, 5], 'z' => [0, 7, 1, 2, 7], 'p' => [0, 6, 5, 6, 4], 'x' => [0, 5, 2, 2, 5],
        _ => [0, 0, 0, 0, 0],
    };

    private static void Text(byte[] img, int w, int h, int x, int y, string s) => Text(img, w, h, x, y, s, 0, 0, 0, 1);

    /// <summary>3x5 glyph text in RGB, each glyph pixel drawn as a <paramref name="scale"/> x <paramref name="scale"/> block.</summary>
    internal static void Text(byte[] img, int w, int h, int x, int y, string s, byte r, byte g, byte b, int scale)
    {
        foreach (char c in s)
        {
            var gl = Glyph(c);
            for (int row = 0; row < 5; row++)
                for (int col = 0; col < 3; col++)
                    if ((gl[row] & (4 >> col)) != 0)
                        for (int dy = 0; dy < scale; dy++)
                            for (int dx = 0; dx < scale; dx++) Put(img, w, h, x + col * scale + dx, y + row * scale + dy, r, g, b);
            x += 4 * scale;
        }
    }

    /// <summary>A tick label as the plot writes it.</summary>
    internal static string LabelOf(double v) => Label(v);
}
