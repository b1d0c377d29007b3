using System.CommandLine;
using MaLiang.Engine;
using MaLiang.Engine.IO;
using MaLiang.Engine.Render;

namespace MaLiang.Cli;

/// <summary><c>maliang render LOCS.csv -o OUT.png|tif</c>: the super-resolution image of a localization table.</summary>
internal static class RenderCommand
{
    public static Command Build()
    {
        var input = new Argument<string>("locs") { Description = "localizations CSV (MaLiang or ThunderSTORM)" };
        var output = new Option<string>("--output", "-o") { Description = "image to write: .png (8-bit) or .tif (32-bit float, nm calibration)", Required = true };
        var mag = new Option<double>("--magnification") { DefaultValueFactory = _ => 10, Description = "super-resolution pixels per camera pixel" };
        var method = new Option<string>("--method") { DefaultValueFactory = _ => "gaussian", Description = "gaussian|histogram|jitter|ash" };
        var sigma = new Option<double>("--sigma") { DefaultValueFactory = _ => 0, Description = "Gaussian sigma in camera px (0 = each localization's uncertainty)" };
        var pixel = new Option<double>("--pixel-size") { DefaultValueFactory = _ => 100, Description = "camera pixel size, nm" };
        var width = new Option<int>("--width") { DefaultValueFactory = _ => 0, Description = "camera frame width, px (0 = from the data)" };
        var height = new Option<int>("--height") { DefaultValueFactory = _ => 0, Description = "camera frame height, px (0 = from the data)" };
        var colorBy = new Option<string?>("--color-by") { Description = "colour a PNG by a column (e.g. frame): RGB output" };
        var scaleBar = new Option<double>("--scale-bar") { DefaultValueFactory = _ => 0, Description = "scale bar length in nm (PNG; 0 = none)" };
        var colorBar = new Option<bool>("--color-bar") { Description = "with --color-by: draw the colour bar (always drawn, in nm, for --color-by z)" };
        var colorRange = new Option<string?>("--color-range") { Description = "MIN,MAX of the --color-by column for the colormap's ends (default: the data's range)" };
        var sideView = new Option<string?>("--side-view") { Description = "3D: render the x-z side view of the region X0,Y0,X1,Y1 (nm) instead: x across, z down" };
        var zRange = new Option<string?>("--z-range-nm") { Description = "MIN,MAX: the z range of --side-view, nm (default: the data's)" };
        var cmd = new Command("render", "Render a localization table as a super-resolution image.") { input, output, mag, method, sigma, pixel, width, height, colorBy, scaleBar, colorBar, colorRange, sideView, zRange };
        cmd.SetAction(r =>
        {
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            CheckOutputKind(outPath);
            double px = r.GetValue(pixel);
            if (!(px > 0)) throw new InvalidParameterException("pixel-size", $"must be > 0, got {px}");
            var table = LocalizationCsv.Read(inPath, px);
            int w = r.GetValue(width), h = r.GetValue(height);
            if (w <= 0 || h <= 0)
            {
                float mx = 1, my = 1;
                foreach (var l in table.Localizations) { mx = Math.Max(mx, l.X); my = Math.Max(my, l.Y); }
                if (w <= 0) w = (int)Math.Ceiling(mx) + 1;
                if (h <= 0) h = (int)Math.Ceiling(my) + 1;
            }
            var rs = new RenderSettings
            {
                Width = w, Height = h, Magnification = r.GetValue(mag), SigmaPx = r.GetValue(sigma),
                Method = r.GetValue(method)!.ToLowerInvariant() switch
                {
                    "gaussian" => RenderMethod.Gaussian, "histogram" => RenderMethod.Histogram,
                    "jitter" => RenderMethod.HistogramJitter, "ash" => RenderMethod.AverageShiftedHistogram,
                    var m => throw new InvalidParameterException("method", $"'{m}' is not one of gaussian, histogram, jitter, ash"),
                },
            };
            rs.Validate();
            string? col = r.GetValue(colorBy);
            double bar = r.GetValue(scaleBar);
            if (r.GetValue(sideView) is { } region)
            {
                var xy = Pair(region, "side-view", 4);
                var zs = table.Localizations.Where(l => (l.Flags & Localization.FlagHasZ) != 0).Select(l => (double)l.Z).ToArray();
                if (zs.Length == 0) throw new MaLiangException($"{inPath}: no z column: the side view needs 3D localizations");
                var zr = r.GetValue(zRange) is { } zText ? Pair(zText, "z-range-nm", 2) : [zs.Min(), zs.Max()];
                var reg = new Engine.Post.RegionPx(xy[0] / px, xy[1] / px, xy[2] / px, xy[3] / px);
                if (!(reg.X1 > reg.X0 && reg.Y1 > reg.Y0)) throw new InvalidParameterException("side-view", "needs X0 < X1 and Y0 < Y1");
                var img = SideView.Render(table.Localizations, reg, zr[0], zr[1], px, rs, out int inside);
                Write(outPath, img, px / rs.Magnification, bar);
                Console.WriteLine($"wrote {outPath} (x-z side view, {img.Width}x{img.Height} px, {inside} localizations, z {zr[0]:0.#}..{zr[1]:0.#} nm, {px / rs.Magnification:G4} nm/px)");
                return Commands.ExitOk;
            }
            if (col != null)
            {
                if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new InvalidParameterException("color-by", "colour rendering writes PNG only");
                var values = Array.ConvertAll(table.Column(col), v => (float)v);
                double vmin = double.NaN, vmax = double.NaN;
                if (r.GetValue(colorRange) is { } cr) { var v = Pair(cr, "color-range", 2); vmin = v[0]; vmax = v[1]; }
                if (double.IsNaN(vmin))
                {
                    vmin = values.Where(float.IsFinite).DefaultIfEmpty(0).Min(); vmax = values.Where(float.IsFinite).DefaultIfEmpty(1).Max();
                }
                var rgb = Renderer.RenderColored(table.Localizations, values, rs, vmin, vmax);
                bool isZ = col.Trim().Trim('"').StartsWith("z", StringComparison.OrdinalIgnoreCase) && (col.Trim().Trim('"').Length == 1 || col.Contains('['));
                if (isZ || r.GetValue(colorBar)) ColorBar.Draw(rgb, rs.OutputWidth, rs.OutputHeight, vmin, vmax, isZ ? "nm" : "");
                if (bar > 0) ScaleBar.Draw(rgb, rs.OutputWidth, rs.OutputHeight, 3, bar, px / rs.Magnification);
                PngWriter.WriteRgb(outPath, rgb, rs.OutputWidth, rs.OutputHeight);
            }
            else Write(outPath, Renderer.Render(table.Localizations, rs), px / rs.Magnification, bar);
            Console.WriteLine($"wrote {outPath} ({rs.OutputWidth}x{rs.OutputHeight} px, {table.Count} localizations, {px / rs.Magnification:G4} nm/px)");
            return Commands.ExitOk;
        });
        return cmd;
    }

    /// <summary>Comma-separated numbers (nm), exactly <paramref name="count"/> of them, finite.</summary>
    private static double[] Pair(string text, string name, int count)
    {
        var parts = text.Split(',');
        var v = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out v[i]) || !double.IsFinite(v[i]))
                throw new InvalidParameterException(name, $"'{text}' is not {count} comma-separated numbers");
        if (v.Length != count) throw new InvalidParameterException(name, $"'{text}' is not {count} comma-separated numbers");
        if (count == 2 && !(v[1] > v[0])) throw new InvalidParameterException(name, $"needs MIN < MAX, got '{text}'");
        return v;
    }

    public static void CheckOutputKind(string path)
    {
        if (!path.EndsWith(".png", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".tif", StringComparison.OrdinalIgnoreCase) && !path.EndsWith(".tiff", StringComparison.OrdinalIgnoreCase))
            throw new InvalidParameterException("render", $"{path}: the image must be .png or .tif");
    }

    /// <summary>Renders localizations (normalized Gaussian, each one's uncertainty) and writes PNG or calibrated 32-bit TIFF.</summary>
    public static void RenderTo(string path, IReadOnlyList<Localization> locs, int width, int height, double magnification, double pixelSizeNm)
    {
        var arr = locs is List<Localization> list ? System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list) : locs.ToArray();
        var rs = new RenderSettings { Width = width, Height = height, Magnification = magnification };
        rs.Validate();
        Write(path, Renderer.Render(arr, rs), pixelSizeNm / magnification, 0);
    }

    private static void Write(string path, RenderedImage img, double nmPerPixel, double scaleBarNm)
    {
        if (path.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            var gray = Renderer.ToGray8(img.Pixels);
            if (scaleBarNm > 0) ScaleBar.Draw(gray, img.Width, img.Height, 1, scaleBarNm, nmPerPixel);
            PngWriter.WriteGray(path, gray, img.Width, img.Height);
        }
        else TiffWriter.Write(path, img.Pixels, img.Width, img.Height, 1, new TiffWriteOptions { PixelSize = nmPerPixel, Unit = "nm" });
    }
}
