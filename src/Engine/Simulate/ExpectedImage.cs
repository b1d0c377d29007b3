namespace MaLiang.Engine.Simulate;

/// <summary>
/// The scalar double-precision reference of the integrated Gaussian PSF (DESIGN.md "The fit, in formulas"):
/// the fraction of a unit-sum Gaussian of standard deviation sigma centred at <c>centre</c> that falls in
/// [edgeLo, edgeHi): <c>E = 1/2 [erf((hi - c) / (sqrt 2 s)) - erf((lo - c) / (sqrt 2 s))]</c>.
/// This is the one place the simulator (and tests of the fitters) take the expected value from.
/// erf/erfc are W. J. Cody's rational Chebyshev approximations (CALERF, ACM TOMS 1969/1993), ~1e-16 relative.
/// </summary>
public static class IntegratedGaussian
{
    private const double InvSqrt2 = 0.70710678118654752440;

    /// <summary>Fraction of the Gaussian (centre, sigma) inside [edgeLo, edgeHi). Uses erfc differences in the
    /// tails so far-off pixels keep their relative precision.</summary>
    public static double PixelFraction(double edgeLo, double edgeHi, double centre, double sigma)
    {
        double k = InvSqrt2 / sigma;
        double a = (edgeLo - centre) * k, b = (edgeHi - centre) * k;
        if (a >= 0) return 0.5 * (Erfc(a) - Erfc(b));
        if (b <= 0) return 0.5 * (Erfc(-b) - Erfc(-a));
        return 0.5 * (Erf(b) - Erf(a));
    }

    /// <summary>Expected photons of pixel (col, row) (spanning [col, col+1) x [row, row+1)) for an emitter of
    /// <paramref name="photons"/> at (x, y) on a flat <paramref name="background"/>.</summary>
    public static double PixelExpectation(int col, int row, double x, double y, double photons, double background, double sigma)
        => background + photons * PixelFraction(col, col + 1, x, sigma) * PixelFraction(row, row + 1, y, sigma);

    /// <summary>Fractions of the Gaussian in the unit pixels [first + i, first + i + 1), i = 0 .. dst.Length-1.</summary>
    public static void PixelFractions(int first, double centre, double sigma, Span<double> dst)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = PixelFraction(first + i, first + i + 1, centre, sigma);
    }

    public static double Erf(double x)
    {
        double y = Math.Abs(x);
        if (y <= Thresh) return x * SmallErf(y);
        double r = ErfcPositive(y);
        double e = (0.5 - r) + 0.5;
        return x < 0 ? -e : e;
    }

    public static double Erfc(double x)
    {
        double y = Math.Abs(x);
        if (y <= Thresh) return 1.0 - x * SmallErf(y);
        double r = ErfcPositive(y);
        return x < 0 ? 2.0 - r : r;
    }

    private const double Thresh = 0.46875, XBig = 26.543, RSqrtPi = 0.56418958354775628695;
    private static readonly double[] A = { 3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03, 1.85777706184603153e-1 };
    private static readonly double[] B = { 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03 };
    private static readonly double[] C = { 5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
                                           8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
                                           2.15311535474403846e-8 };
    private static readonly double[] D = { 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
                                           3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03 };
    private static readonly double[] P = { 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
                                           6.58749161529837803e-4, 1.63153871373020978e-2 };
    private static readonly double[] Q = { 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
                                           2.33520497626869185e-3 };

    /// <summary>erf(y) / y for 0 &lt;= y &lt;= 0.46875.</summary>
    private static double SmallErf(double y)
    {
        double ysq = y > 1.11e-16 ? y * y : 0;
        double xnum = A[4] * ysq, xden = ysq;
        for (int i = 0; i < 3; i++) { xnum = (xnum + A[i]) * ysq; xden = (xden + B[i]) * ysq; }
        return (xnum + A[3]) / (xden + B[3]);
    }

    /// <summary>erfc(y) for y &gt; 0.46875.</summary>
    private static double ErfcPositive(double y)
    {
        double r;
        if (y <= 4.0)
        {
            double xnum = C[8] * y, xden = y;
            for (int i = 0; i < 7; i++) { xnum = (xnum + C[i]) * y; xden = (xden + D[i]) * y; }
            r = (xnum + C[7]) / (xden + D[7]);
        }
        else
        {
            if (y >= XBig) return 0.0;
            double ysq = 1.0 / (y * y);
            double xnum = P[5] * ysq, xden = ysq;
            for (int i = 0; i < 4; i++) { xnum = (xnum + P[i]) * ysq; xden = (xden + Q[i]) * ysq; }
            r = ysq * (xnum + P[4]) / (xden + Q[4]);
            r = (RSqrtPi - r) / y;
        }
        // exp(-y^2) split as exp(-t^2) exp(-(y - t)(y + t)) with t = y rounded down to 1/16 (Cody's accuracy trick)
        double t = Math.Truncate(y * 16.0) / 16.0;
        double del = (y - t) * (y + t);
        return Math.Exp(-t * t) * Math.Exp(-del) * r;
    }
}
