using System.Globalization;
using System.Text;

namespace MaLiang.Engine.Post;

/// <summary>Plain-text CSV writers for drift trajectories and FRC curves (write to a temporary file, then rename).</summary>
public static class PostCsv
{
    /// <summary>"frame","dx [nm]","dy [nm]" with 1-based frames (CSV convention).</summary>
    public static void WriteDrift(string path, DriftResult drift, double pixelSizeNm)
    {
        if (!double.IsFinite(pixelSizeNm) || pixelSizeNm <= 0) throw new InvalidParameterException("pixel-size", $"must be > 0 nm, got {pixelSizeNm}");
        var sb = new StringBuilder();
        sb.Append("\"frame\",\"dx [nm]\",\"dy [nm]\"\n");
        for (int f = 0; f < drift.FrameCount; f++)
            sb.Append(CultureInfo.InvariantCulture, $"{f + 1},{R(drift.DxPx[f] * pixelSizeNm)},{R(drift.DyPx[f] * pixelSizeNm)}\n");
        WriteAtomic(path, sb.ToString());
    }

    /// <summary>Reads a drift CSV written by <see cref="WriteDrift"/> back (frames must be 1..n in order).</summary>
    public static DriftResult ReadDrift(string path, double pixelSizeNm)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new MaLiangException($"{path}: {e.Message}", e); }
        var dx = new List<double>(); var dy = new List<double>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var p = lines[i].Split(',');
            if (p.Length < 3 || !int.TryParse(p[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int f) || f != dx.Count + 1
                || !double.TryParse(p[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double x)
                || !double.TryParse(p[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double y))
                throw new MaLiangException($"{path}: line {i + 1} is not 'frame,dx [nm],dy [nm]' with consecutive frames");
            dx.Add(x / pixelSizeNm); dy.Add(y / pixelSizeNm);
        }
        return new DriftResult(dx.ToArray(), dy.ToArray()) { Method = "file" };
    }

    /// <summary>"spatial frequency [1/nm]","frc","frc smoothed".</summary>
    public static void WriteFrc(string path, FrcResult frc)
    {
        var sb = new StringBuilder();
        sb.Append("\"spatial frequency [1/nm]\",\"frc\",\"frc smoothed\"\n");
        for (int k = 0; k < frc.Frc.Length; k++)
            sb.Append(CultureInfo.InvariantCulture, $"{frc.FrequencyPerNm[k]:R},{R(frc.Frc[k])},{R(frc.FrcSmoothed[k])}\n");
        WriteAtomic(path, sb.ToString());
    }

    private static string R(double v) => v.ToString("0.######", CultureInfo.InvariantCulture);

    internal static void WriteAtomic(string path, string content)
    {
        string full = Path.GetFullPath(path);
        string tmp = full + ".tmp" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        try
        {
            File.WriteAllText(tmp, content, new UTF8Encoding(false));
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new MaLiangException($"{path}: cannot write ({e.Message})", e);
        }
    }
}

/// <summary>Ready-made plots of drift and FRC as RGB rasters (encode with PngWriter.WriteRgb).</summary>
public static class PostPlots
{
    /// <summary>dx (blue) and dy (red) in nm against the 1-based frame.</summary>
    public static byte[] Drift(DriftResult drift, double pixelSizeNm, int width = 640, int height = 400)
    {
        var f = new double[drift.FrameCount]; var x = new double[f.Length]; var y = new double[f.Length];
        for (int i = 0; i < f.Length; i++) { f[i] = i + 1; x[i] = drift.DxPx[i] * pixelSizeNm; y[i] = drift.DyPx[i] * pixelSizeNm; }
        return Render.LinePlot.Render(width, height, [new(f, x, 31, 119, 180), new(f, y, 214, 39, 40)]);
    }

    /// <summary>FRC (light) and smoothed FRC (dark) against spatial frequency (1/nm), with the threshold as a dashed line.</summary>
    public static byte[] Frc(FrcResult frc, int width = 640, int height = 400)
        => Render.LinePlot.Render(width, height, [new(frc.FrequencyPerNm, frc.Frc, 160, 190, 230), new(frc.FrequencyPerNm, frc.FrcSmoothed, 31, 119, 180)], [frc.Threshold, 0.0]);
}
