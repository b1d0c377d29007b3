namespace MaLiang.Engine.Calibration;

/// <summary>
/// One axis's defocus curve (ThunderSTORM's and SMAP's form, DESIGN.md "3D astigmatism"):
/// sigma(z) = S0Px sqrt(1 + u^2 + A u^3 + B u^4), u = (z - CNm) / DNm; sigma in camera pixels, z in nm.
/// </summary>
public readonly record struct DefocusCurve(double S0Px, double A, double B, double CNm, double DNm)
{
    /// <summary>The polynomial under the root; floored at 1e-6 so that odd terms can never make the width imaginary.</summary>
    public double Q(double zNm)
    {
        double u = (zNm - CNm) / DNm;
        return Math.Max(1e-6, 1 + u * u + A * u * u * u + B * u * u * u * u);
    }

    public double SigmaPx(double zNm) => S0Px * Math.Sqrt(Q(zNm));

    /// <summary>d sigma / d z in px per nm.</summary>
    public double DSigmaDz(double zNm)
    {
        double u = (zNm - CNm) / DNm;
        return S0Px * (2 * u + 3 * A * u * u + 4 * B * u * u * u) / (2 * DNm * Math.Sqrt(Q(zNm)));
    }

    public bool IsFinite => double.IsFinite(S0Px) && double.IsFinite(A) && double.IsFinite(B) && double.IsFinite(CNm) && double.IsFinite(DNm);
}

/// <summary>
/// A 3D astigmatic calibration: the two width curves (x: columns, y: rows), the pixel size they were measured at, the z
/// range they cover, and the factor applied to every fitted z (refractive-index mismatch; 1 = stage z). z grows with
/// the bead stack's frame number (ThunderSTORM's convention; Picasso's files are converted on reading).
/// The fit works in the curves' z ("stage z"); reported z = <see cref="RefractiveIndexFactor"/> x stage z.
/// </summary>
public sealed class ZCalibration
{
    public DefocusCurve X { get; init; }
    public DefocusCurve Y { get; init; }
    public double PixelSizeNm { get; init; }
    /// <summary>The stage z range the curves were measured over (nm); fits whose z leaves it are dropped.</summary>
    public double ZMinNm { get; init; }
    public double ZMaxNm { get; init; }
    /// <summary>Multiplies every fitted z (and its uncertainty) on output: the sample's z per stage z.</summary>
    public double RefractiveIndexFactor { get; init; } = 1.0;
    /// <summary>Where the file came from (for messages).</summary>
    public string Source { get; init; } = "calibration";

    /// <summary>Widest sigma (px) over the calibrated range, sampled every nm-ish: sizes the ROI.</summary>
    public double MaxSigmaPx()
    {
        double m = 0;
        for (int k = 0; k <= 400; k++)
        {
            double z = ZMinNm + (ZMaxNm - ZMinNm) * k / 400.0;
            m = Math.Max(m, Math.Max(X.SigmaPx(z), Y.SigmaPx(z)));
        }
        return m;
    }

    /// <summary>The odd ROI edge that holds the widest spot in the calibrated range out to 2.5 sigma on each side of its
    /// centre pixel, at least <paramref name="minimum"/>, at most 31 (the engine's largest ROI).</summary>
    public int RoiSize(int minimum)
    {
        int r = (int)Math.Ceiling(2.5 * MaxSigmaPx());
        return Math.Clamp(Math.Max(2 * r + 1, minimum), 3, 31);
    }

    /// <summary>Throws a <see cref="MaLiangException"/> naming <see cref="Source"/> and the first bad field.</summary>
    public void Validate()
    {
        void Bad(string field, string why) => throw new MaLiangException($"{Source}: field {field}: {why}");
        foreach (var (c, axis) in new[] { (X, "x"), (Y, "y") })
        {
            if (!c.IsFinite) Bad($"{axis}", "not a finite number");
            if (!(c.S0Px > 0)) Bad($"{axis}.sigma0_px", $"must be > 0, got {c.S0Px}");
            if (!(Math.Abs(c.DNm) > 0)) Bad($"{axis}.d_nm", $"must not be 0");
        }
        if (!(PixelSizeNm > 0) || !double.IsFinite(PixelSizeNm)) Bad("pixel_size_nm", $"must be > 0, got {PixelSizeNm}");
        if (!double.IsFinite(ZMinNm) || !double.IsFinite(ZMaxNm) || !(ZMaxNm > ZMinNm)) Bad("z_range_nm", $"needs min < max, got [{ZMinNm}, {ZMaxNm}]");
        if (!(RefractiveIndexFactor > 0) || !double.IsFinite(RefractiveIndexFactor)) Bad("refractive_index_factor", $"must be > 0, got {RefractiveIndexFactor}");
        if (MaxSigmaPx() > 12) Bad("z_range_nm", $"the widths reach {MaxSigmaPx():0.#} px in the range: no 31 px ROI holds the spot");
    }

    /// <summary>Refuses a calibration measured at another pixel size than the localization's (1e-6 relative).</summary>
    public void CheckPixelSize(double pixelSizeNm)
    {
        if (Math.Abs(pixelSizeNm - PixelSizeNm) > 1e-6 * PixelSizeNm)
            throw new MaLiangException($"{Source}: field pixel_size_nm: the calibration was measured at {PixelSizeNm} nm per pixel, --pixel-size is {pixelSizeNm}");
    }

    /// <summary>The stage z where the two widths are equal nearest the middle of the range (NaN if they never cross), by bisection.</summary>
    public double CrossingNm()
    {
        double best = double.NaN, mid = 0.5 * (ZMinNm + ZMaxNm);
        const int steps = 2000;
        double z0 = ZMinNm, f0 = X.SigmaPx(z0) - Y.SigmaPx(z0);
        for (int k = 1; k <= steps; k++)
        {
            double z1 = ZMinNm + (ZMaxNm - ZMinNm) * k / steps, f1 = X.SigmaPx(z1) - Y.SigmaPx(z1);
            if (f0 == 0 || f0 * f1 < 0)
            {
                double a = z0, b = z1, fa = f0;
                for (int i = 0; i < 60 && f0 != 0; i++)
                {
                    double m = 0.5 * (a + b), fm = X.SigmaPx(m) - Y.SigmaPx(m);
                    if (fa * fm <= 0) b = m; else { a = m; fa = fm; }
                }
                double z = f0 == 0 ? z0 : 0.5 * (a + b);
                if (double.IsNaN(best) || Math.Abs(z - mid) < Math.Abs(best - mid)) best = z;
            }
            z0 = z1; f0 = f1;
        }
        return best;
    }
}
