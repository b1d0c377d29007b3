using MaLiang.Engine.Render;

namespace MaLiang.Engine.Calibration;

/// <summary>calibrate-z's plot (CLI, C ABI, Python, Fiji): RGB bytes, encode with IO.PngWriter.WriteRgb.</summary>
public static class ZCalibrationPlot
{
    public const int Width = 640, Height = 400;

    /// <summary>The calibration plot: measured median widths (x red, y blue; dots) and the fitted curves (lines) against z (nm).</summary>
    public static byte[] Render(ZCalibrationRun run)
    {
        var c = run.Calibration;
        int m = 200;
        var z = new double[m];
        var fx = new double[m]; var fy = new double[m];
        for (int i = 0; i < m; i++)
        {
            z[i] = c.ZMinNm + (c.ZMaxNm - c.ZMinNm) * i / (m - 1);
            fx[i] = c.X.SigmaPx(z[i]); fy[i] = c.Y.SigmaPx(z[i]);
        }
        // Measured points as short vertical ticks: one two-point series per frame (NaN breaks the line between them).
        PlotSeries Dots(double[] s, bool[] kept, byte r, byte g, byte b)
        {
            var xs = new List<double>(); var ys = new List<double>();
            for (int k = 0; k < s.Length; k++)
            {
                if (!double.IsFinite(s[k])) continue;
                double d = kept[k] ? 0.02 : 0.06;
                xs.Add(run.FrameZNm[k]); ys.Add(s[k] - d); xs.Add(run.FrameZNm[k]); ys.Add(s[k] + d); xs.Add(double.NaN); ys.Add(double.NaN);
            }
            return new PlotSeries(xs.ToArray(), ys.ToArray(), r, g, b);
        }
        return LinePlot.Render(Width, Height,
        [
            Dots(run.SigmaXPx, run.KeptX, 230, 120, 120), Dots(run.SigmaYPx, run.KeptY, 120, 120, 230),
            new PlotSeries(z, fx, 200, 0, 0), new PlotSeries((double[])z.Clone(), fy, 0, 0, 200),
        ]);
    }
}
