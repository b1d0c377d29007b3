namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>
/// The statistics that decide how many emitters a group holds (DESIGN.md "Crowded frames"): a fitted emitter is added
/// when the log-likelihood ratio of the nested models, 2 (L_{K+1} - L_K), exceeds chi-square's (1 - p) point with 3
/// degrees of freedom (x, y, photons of the new emitter; the PSF sigma is fixed), as ThunderSTORM's multi-emitter
/// fitting does; a single fit is poor when its goodness of fit exceeds chi-square's 99.9% point with n^2 - 5 degrees
/// of freedom. Quantiles by bisection on the exact chi-square tail (regularized incomplete gamma).
/// </summary>
public static class ModelSelection
{
    /// <summary>Chi-square's upper point: P(X > q) = <paramref name="pValue"/> for <paramref name="dof"/> degrees of freedom.</summary>
    public static double ChiSquareUpper(double pValue, double dof)
    {
        if (!(pValue > 0 && pValue < 1)) throw new ArgumentOutOfRangeException(nameof(pValue), $"a p-value is in (0, 1), got {pValue}");
        if (!(dof > 0)) throw new ArgumentOutOfRangeException(nameof(dof));
        // Wilson-Hilferty's start, then bisection on the exact tail Q(dof/2, x/2): Wilson-Hilferty alone is 7% high at
        // 3 dof and p = 1e-6.
        double z = NormalUpper(pValue), c = 2 / (9 * dof), t = 1 - c + z * Math.Sqrt(c);
        double guess = Math.Max(dof * t * t * t, 1e-9), lo = 0, hi = Math.Max(2 * guess, dof + 10);
        while (UpperTail(dof, hi) > pValue) hi *= 2;
        for (int i = 0; i < 200 && hi - lo > 1e-10 * hi; i++)
        {
            double mid = 0.5 * (lo + hi);
            if (UpperTail(dof, mid) > pValue) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }

    /// <summary>P(X &gt; x) for chi-square with <paramref name="dof"/> degrees of freedom: the regularized upper incomplete
    /// gamma Q(dof/2, x/2), by its series below a + 1 and its continued fraction above (Numerical Recipes 6.2).</summary>
    public static double UpperTail(double dof, double x)
    {
        double a = dof / 2, y = x / 2;
        if (y <= 0) return 1;
        double lnPre = -y + a * Math.Log(y) - LogGamma(a);
        if (y < a + 1)
        {
            double sum = 1 / a, term = sum;
            for (int n = 1; n < 1000; n++) { term *= y / (a + n); sum += term; if (Math.Abs(term) < Math.Abs(sum) * 1e-16) break; }
            return 1 - sum * Math.Exp(lnPre);
        }
        double b = y + 1 - a, cc = 1e300, d = 1 / b, h = d;
        for (int i = 1; i < 1000; i++)
        {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b; if (Math.Abs(d) < 1e-300) d = 1e-300;
            cc = b + an / cc; if (Math.Abs(cc) < 1e-300) cc = 1e-300;
            d = 1 / d;
            double del = d * cc;
            h *= del;
            if (Math.Abs(del - 1) < 1e-16) break;
        }
        return Math.Exp(lnPre) * h;
    }

    /// <summary>ln Gamma(x), Lanczos (g = 7, 9 terms; relative error about 1e-15).</summary>
    private static double LogGamma(double x)
    {
        double[] g = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
                      12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        double s = g[0], t = x + 7.5;
        for (int i = 1; i < 9; i++) s += g[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(s);
    }

    /// <summary>The standard normal's upper point z: P(Z > z) = p (Acklam's rational approximation, relative error
    /// below 1.2e-9, then one Newton step would not change what it decides here).</summary>
    public static double NormalUpper(double p)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p));
        double q = 1 - p;   // the lower tail probability of -z: Acklam gives the lower quantile
        double[] a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
        double[] b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
        double[] c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
        double[] d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
        const double low = 0.02425;
        double x;
        if (q < low)
        {
            double r = Math.Sqrt(-2 * Math.Log(q));
            x = (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1);
        }
        else if (q <= 1 - low)
        {
            double r = q - 0.5, s = r * r;
            x = (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r / (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1);
        }
        else
        {
            double r = Math.Sqrt(-2 * Math.Log(p));
            x = -(((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1);
        }
        return x;
    }

    /// <summary>The goodness-of-fit limit of a single n x n fit with five parameters (chi-square's 99.9% point, n^2 - 5 dof).</summary>
    public static float PoorFitLlr(int roiSize) => (float)ChiSquareUpper(1e-3, roiSize * roiSize - 5);
}
