using System.Globalization;
using System.Text;
using MaLiang.Engine.IO;

namespace MaLiang.Engine.Calibration;

/// <summary>
/// Reads and writes z calibration files (DESIGN.md "3D astigmatism", the YAML format). Our own format is a small YAML
/// subset (top-level "key: value", the two curves as indented blocks, a two-number list for the range) written and
/// read here without a YAML library; ThunderSTORM's DAOSTORM calibration YAML (w01, a1, b1, c1, d1, w02, ...) and
/// Picasso's 3d_calib.yaml (X/Y Coefficients) are recognised by their keys and converted.
/// </summary>
public static class ZCalibrationFile
{
    public const string FormatTag = "maliang-z-calibration 1";

    /// <summary>Writes <paramref name="c"/> atomically (temp file + rename).</summary>
    public static void Write(string path, ZCalibration c, string? comment = null)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.Append("# MaLiang 3D astigmatic z calibration (docs/DESIGN.md, \"3D astigmatism\")\n");
        if (comment != null) foreach (var line in comment.Split('\n')) sb.Append("# ").Append(line).Append('\n');
        sb.Append("format: ").Append(FormatTag).Append('\n');
        sb.Append("model: sigma(z) = sigma0_px * sqrt(1 + u^2 + a u^3 + b u^4), u = (z - c_nm) / d_nm\n");
        sb.Append("units: sigma in camera pixels, z in nm of stage z\n");
        sb.Append("z_convention: z grows with the bead stack's frame number\n");
        sb.Append("pixel_size_nm: ").Append(F(c.PixelSizeNm)).Append('\n');
        sb.Append("z_range_nm: [").Append(F(c.ZMinNm)).Append(", ").Append(F(c.ZMaxNm)).Append("]\n");
        sb.Append("refractive_index_factor: ").Append(F(c.RefractiveIndexFactor)).Append('\n');
        foreach (var (curve, axis) in new[] { (c.X, "x"), (c.Y, "y") })
        {
            sb.Append(axis).Append(":\n");
            sb.Append("  sigma0_px: ").Append(F(curve.S0Px)).Append('\n');
            sb.Append("  a: ").Append(F(curve.A)).Append('\n');
            sb.Append("  b: ").Append(F(curve.B)).Append('\n');
            sb.Append("  c_nm: ").Append(F(curve.CNm)).Append('\n');
            sb.Append("  d_nm: ").Append(F(curve.DNm)).Append('\n');
        }
        using var f = AtomicFile.Create(path);
        var bytes = new UTF8Encoding(false).GetBytes(sb.ToString());
        f.Stream.Write(bytes);
        f.Commit();
    }

    /// <summary>
    /// Reads a MaLiang, ThunderSTORM or Picasso calibration. <paramref name="pixelSizeNm"/> is used where the file has
    /// none (ThunderSTORM, Picasso: widths in pixels). Errors name the file and the field; the result is validated.
    /// </summary>
    public static ZCalibration Read(string path, double pixelSizeNm)
    {
        string name = System.IO.Path.GetFileName(path);
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new MaLiangException(e is FileNotFoundException or DirectoryNotFoundException ? $"{path}: file not found" : $"{path}: cannot read ({e.Message})", e);
        }
        var map = Parse(text);
        ZCalibration c;
        if (map.ContainsKey("format") || map.ContainsKey("x.sigma0_px")) c = ReadOwn(map, name);
        else if (map.ContainsKey("w01")) c = ReadThunderStorm(map, name, pixelSizeNm);
        else if (map.ContainsKey("x coefficients")) c = ReadPicasso(map, name, pixelSizeNm);
        else throw new MaLiangException($"{name}: not a z calibration (no field format, w01 or \"X Coefficients\")");
        c.Validate();
        return c;
    }

    /// <summary>Flattens the YAML subset: "key: value" lines; an indented block under "key:" gives "key.sub". Keys lower case.</summary>
    private static Dictionary<string, string> Parse(string text)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        string? block = null;
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            int hash = line.IndexOf('#');
            if (hash >= 0 && (hash == 0 || char.IsWhiteSpace(line[hash - 1]))) line = line[..hash];
            if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith("!!", StringComparison.Ordinal) || line.Trim() == "---") continue;
            bool indented = char.IsWhiteSpace(line[0]);
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            string key = line[..colon].Trim().Trim('"', '\'').ToLowerInvariant();
            string value = line[(colon + 1)..].Trim();
            if (!indented) block = value.Length == 0 ? key : null;
            if (value.Length == 0) continue;
            map[indented && block != null ? $"{block}.{key}" : key] = value;
        }
        return map;
    }

    private static double Num(Dictionary<string, string> map, string key, string file, string? field = null)
    {
        if (!map.TryGetValue(key, out var s)) throw new MaLiangException($"{file}: field {field ?? key}: missing");
        if (!double.TryParse(s.Trim('"', '\''), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
            throw new MaLiangException($"{file}: field {field ?? key}: \"{s}\" is not a finite number");
        return v;
    }

    private static double[] List(Dictionary<string, string> map, string key, string file, int? count = null)
    {
        if (!map.TryGetValue(key, out var s)) throw new MaLiangException($"{file}: field {key}: missing");
        string inner = s.Trim();
        if (!inner.StartsWith('[') || !inner.EndsWith(']')) throw new MaLiangException($"{file}: field {key}: expected a list [..], got \"{s}\"");
        var parts = inner[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var v = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]) || !double.IsFinite(v[i]))
                throw new MaLiangException($"{file}: field {key}: \"{parts[i]}\" is not a finite number");
        if (count is int n && v.Length != n) throw new MaLiangException($"{file}: field {key}: expected {n} numbers, got {v.Length}");
        return v;
    }

    private static ZCalibration ReadOwn(Dictionary<string, string> map, string file)
    {
        if (map.TryGetValue("format", out var fmt) && fmt != FormatTag)
            throw new MaLiangException($"{file}: field format: \"{fmt}\" is not \"{FormatTag}\"");
        DefocusCurve Curve(string a) => new(Num(map, $"{a}.sigma0_px", file), Num(map, $"{a}.a", file), Num(map, $"{a}.b", file),
                                             Num(map, $"{a}.c_nm", file), Num(map, $"{a}.d_nm", file));
        var range = List(map, "z_range_nm", file, 2);
        return new ZCalibration
        {
            X = Curve("x"), Y = Curve("y"), PixelSizeNm = Num(map, "pixel_size_nm", file),
            ZMinNm = range[0], ZMaxNm = range[1], RefractiveIndexFactor = Num(map, "refractive_index_factor", file), Source = file,
        };
    }

    /// <summary>ThunderSTORM's DaostormCalibration: sigma = w0 / 2 sqrt(1 + u^2 + a u^3 + b u^4), u = (z - c) / d, w0 in px, z in nm,
    /// later frames +z (our convention). No range or pixel size in the file: the range is [min c - max d, max c + max d]
    /// and the pixel size that of the localization. A rotation angle beyond 5 degrees is refused (our model is not rotated).</summary>
    private static ZCalibration ReadThunderStorm(Dictionary<string, string> map, string file, double pixelSizeNm)
    {
        double angle = map.ContainsKey("angle") ? Num(map, "angle", file) : 0;
        if (Math.Abs(angle) > 5 * Math.PI / 180)
            throw new MaLiangException($"{file}: field angle: {angle} rad; the astigmatic model here is not rotated (at most 5 degrees, 0.087 rad)");
        DefocusCurve Curve(string k) => new(Num(map, $"w0{k}", file) / 2, Num(map, $"a{k}", file), Num(map, $"b{k}", file),
                                             Num(map, $"c{k}", file), Num(map, $"d{k}", file));
        var x = Curve("1"); var y = Curve("2");
        double d = Math.Max(Math.Abs(x.DNm), Math.Abs(y.DNm));
        return new ZCalibration
        {
            X = x, Y = y, PixelSizeNm = pixelSizeNm, ZMinNm = Math.Min(x.CNm, y.CNm) - d, ZMaxNm = Math.Max(x.CNm, y.CNm) + d,
            RefractiveIndexFactor = 1, Source = file,
        };
    }

    /// <summary>Picasso's 3d_calib.yaml: widths sx(z), sy(z) (px) as polynomials (highest power first) of z in nm, over
    /// +-(frames - 1) / 2 x step; Picasso's z runs against the frame number, so z is negated into ours; its magnification
    /// factor becomes the refractive-index factor. The polynomials are sampled over the range and the defocus curves
    /// fitted to them (<see cref="DefocusFit"/>).</summary>
    private static ZCalibration ReadPicasso(Dictionary<string, string> map, string file, double pixelSizeNm)
    {
        var cx = List(map, "x coefficients", file); var cy = List(map, "y coefficients", file);
        double frames = Num(map, "number of frames", file, "Number of frames"), step = Num(map, "step size in nm", file, "Step size in nm");
        double mag = map.ContainsKey("magnification factor") ? Num(map, "magnification factor", file, "Magnification factor") : 1;
        if (!(frames >= 3) || !(step > 0)) throw new MaLiangException($"{file}: field Number of frames / Step size in nm: need >= 3 frames and a step > 0");
        double half = (frames - 1) / 2 * step;
        static double Poly(double[] c, double z) { double v = 0; foreach (var k in c) v = v * z + k; return v; }
        int m = 201;
        var z = new double[m]; var sx = new double[m]; var sy = new double[m];
        for (int i = 0; i < m; i++)
        {
            z[i] = -half + 2 * half * i / (m - 1);
            sx[i] = Poly(cx, -z[i]); sy[i] = Poly(cy, -z[i]);
        }
        var x = DefocusFit.Fit(z, sx, null, file + ": X Coefficients");
        var y = DefocusFit.Fit(z, sy, null, file + ": Y Coefficients");
        return new ZCalibration { X = x, Y = y, PixelSizeNm = pixelSizeNm, ZMinNm = -half, ZMaxNm = half, RefractiveIndexFactor = mag, Source = file };
    }
}
