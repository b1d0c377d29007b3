namespace MaLiang.Engine.Render;

/// <summary>
/// A colour bar drawn into an RGB rendering (<see cref="Renderer.RenderColored"/>): the colormap from vmin (left) to vmax
/// (right) in the top-left corner, with both ends labelled and the unit after the right label (e.g. "-500" ... "500 nm").
/// </summary>
public static class ColorBar
{
    public static void Draw(byte[] rgb, int width, int height, double vmin, double vmax, string unit, ColormapKind colormap = ColormapKind.Viridis)
    {
        if (rgb.Length != width * height * 3) throw new ArgumentException("image size does not match width x height x 3");
        int scale = Math.Clamp(Math.Min(width, height) / 300, 1, 4);
        int margin = Math.Max(2, Math.Min(width, height) / 40);
        int barW = Math.Max(16, width / 4), barH = 4 * scale + 2;
        if (barW + 2 * margin > width || barH + 10 * scale + 2 * margin > height) return; // too small an image for a bar
        for (int x = 0; x < barW; x++)
        {
            var (r, g, b) = Colormap.MapBytes(colormap, barW == 1 ? 0 : x / (double)(barW - 1));
            for (int y = 0; y < barH; y++)
            {
                int i = ((margin + y) * width + margin + x) * 3;
                rgb[i] = r; rgb[i + 1] = g; rgb[i + 2] = b;
            }
        }
        int ty = margin + barH + 2 * scale;
        LinePlot.Text(rgb, width, height, margin, ty, LinePlot.LabelOf(vmin), 255, 255, 255, scale);
        string right = LinePlot.LabelOf(vmax) + (unit.Length > 0 ? " " + unit : "");
        LinePlot.Text(rgb, width, height, margin + barW - 4 * scale * right.Length, ty, right, 255, 255, 255, scale);
    }
}
