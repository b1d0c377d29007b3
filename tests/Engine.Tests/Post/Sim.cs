using MaLiang.Engine;

namespace MaLiang.Engine.Tests.Post;

/// <summary>Small ground-truth generators for the post-processing tests (no dependency on the simulator project).</summary>
internal static class Sim
{
    public static double Gauss(Random r)
    {
        double u1 = 1.0 - r.NextDouble(), u2 = r.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    public static Localization Loc(int frame, double x, double y, double photons = 1000, double unc = 0.1) => new()
    {
        Frame = frame, X = (float)x, Y = (float)y, Photons = (float)photons, Background = 10, Sigma = 1.3f,
        UncertaintyX = (float)unc, UncertaintyY = (float)unc, Detections = 1, Flags = Localization.FlagConverged,
    };

    /// <summary>Smooth drift in px: 1 um total at 100 nm/px (8 px in x, 6 px in y, linear) plus a 0.5 px sine in x and a
    /// 0.3 px cosine bump in y over the acquisition.</summary>
    public static (double dx, double dy) Drift(int frame, int frames)
    {
        double t = frame / (double)(frames - 1);
        return (8.0 * t + 0.5 * Math.Sin(2 * Math.PI * t), 6.0 * t + 0.3 * (1 - Math.Cos(2 * Math.PI * t)));
    }

    /// <summary>Line segments (x0, y0, x1, y1) in px, random in a field of the given size.</summary>
    public static (double x0, double y0, double x1, double y1)[] Filaments(Random r, int count, double field)
    {
        var f = new (double, double, double, double)[count];
        for (int i = 0; i < count; i++)
        {
            double cx = field * (0.2 + 0.6 * r.NextDouble()), cy = field * (0.2 + 0.6 * r.NextDouble());
            double a = Math.PI * r.NextDouble(), len = field * (0.4 + 0.4 * r.NextDouble());
            f[i] = (cx - 0.5 * len * Math.Cos(a), cy - 0.5 * len * Math.Sin(a), cx + 0.5 * len * Math.Cos(a), cy + 0.5 * len * Math.Sin(a));
        }
        return f;
    }

    /// <summary>RMS of (estimate - truth) after removing the constant offset (drift is defined up to a constant),
    /// and that offset's size; both in px, over both axes.</summary>
    public static (double rms, double offset) Residual(double[] ex, double[] ey, Func<int, (double, double)> truth)
    {
        int n = ex.Length;
        var rx = new double[n]; var ry = new double[n];
        double mx = 0, my = 0;
        for (int f = 0; f < n; f++)
        {
            var (tx, ty) = truth(f);
            rx[f] = ex[f] - tx; ry[f] = ey[f] - ty; mx += rx[f]; my += ry[f];
        }
        mx /= n; my /= n;
        double s = 0;
        for (int f = 0; f < n; f++) s += (rx[f] - mx) * (rx[f] - mx) + (ry[f] - my) * (ry[f] - my);
        return (Math.Sqrt(s / n), Math.Sqrt(mx * mx + my * my));
    }
}
