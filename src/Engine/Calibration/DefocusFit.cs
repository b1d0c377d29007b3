namespace MaLiang.Engine.Calibration;

/// <summary>
/// Least-squares fit of one defocus curve sigma(z) = s0 sqrt(1 + u^2 + A u^3 + B u^4), u = (z - c) / d, to measured
/// widths, by Levenberg-Marquardt in double with the analytic Jacobian; then one round of outlier rejection (points
/// more than 4 x 1.4826 MAD of the residuals off, at least 1% of the width) and a refit.
/// </summary>
public static class DefocusFit
{
    /// <summary>Fits the curve; <paramref name="keep"/> (optional, same length) is set false for rejected points.</summary>
    public static DefocusCurve Fit(double[] z, double[] sigma, bool[]? keep, string what)
    {
        int m = z.Length;
        keep ??= new bool[m];
        for (int i = 0; i < m; i++) keep[i] = double.IsFinite(z[i]) && double.IsFinite(sigma[i]) && sigma[i] > 0;
        if (keep.Count(k => k) < 8) throw new MaLiangException($"{what}: fewer than 8 usable widths to fit a defocus curve");
        var p = Start(z, sigma, keep);
        p = Lm(z, sigma, keep, p);
        var res = new List<double>();
        for (int i = 0; i < m; i++) if (keep[i]) res.Add(Math.Abs(sigma[i] - Eval(p, z[i])));
        res.Sort();
        double mad = 1.4826 * res[res.Count / 2];
        double limit = Math.Max(4 * mad, 0.01 * p[0]);
        int dropped = 0;
        for (int i = 0; i < m; i++)
            if (keep[i] && Math.Abs(sigma[i] - Eval(p, z[i])) > limit) { keep[i] = false; dropped++; }
        if (dropped > 0) p = Lm(z, sigma, keep, p);
        if (!p.All(double.IsFinite)) throw new MaLiangException($"{what}: the defocus curve fit did not converge");
        return new DefocusCurve(p[0], p[1], p[2], p[3], p[4]);
    }

    private static double Eval(double[] p, double z)
    {
        double u = (z - p[3]) / p[4];
        return p[0] * Math.Sqrt(Math.Max(1e-6, 1 + u * u + p[1] * u * u * u + p[2] * u * u * u * u));
    }

    /// <summary>Start: c at the smallest width, s0 that width, d where the width reaches sqrt(2) s0 (mean of both sides), A = B = 0.</summary>
    private static double[] Start(double[] z, double[] s, bool[] keep)
    {
        int best = -1;
        for (int i = 0; i < z.Length; i++) if (keep[i] && (best < 0 || s[i] < s[best])) best = i;
        double s0 = s[best], c = z[best], target = Math.Sqrt(2) * s0;
        double dl = double.NaN, dr = double.NaN;
        for (int i = 0; i < z.Length; i++)
        {
            if (!keep[i] || s[i] < target) continue;
            double d = z[i] - c;
            if (d > 0 && !(d >= dr)) dr = d;
            if (d < 0 && !(-d >= dl)) dl = -d;
        }
        double span = z.Where((_, i) => keep[i]).Max() - z.Where((_, i) => keep[i]).Min();
        double d0 = double.IsNaN(dl) ? (double.IsNaN(dr) ? span / 4 : dr) : double.IsNaN(dr) ? dl : 0.5 * (dl + dr);
        return [s0, 0, 0, c, Math.Max(d0, 1e-3 * span)];
    }

    private static double[] Lm(double[] z, double[] s, bool[] keep, double[] p0)
    {
        var p = (double[])p0.Clone();
        double lambda = 1e-3;
        double Cost(double[] q) { double c = 0; for (int i = 0; i < z.Length; i++) if (keep[i]) { double r = s[i] - Eval(q, z[i]); c += r * r; } return c; }
        double cost = Cost(p);
        var jtj = new double[5, 5]; var jtr = new double[5]; var j = new double[5];
        for (int it = 0; it < 500; it++)
        {
            Array.Clear(jtj); Array.Clear(jtr);
            for (int i = 0; i < z.Length; i++)
            {
                if (!keep[i]) continue;
                double u = (z[i] - p[3]) / p[4], q = Math.Max(1e-6, 1 + u * u + p[1] * u * u * u + p[2] * u * u * u * u), rq = Math.Sqrt(q);
                double dqdu = 2 * u + 3 * p[1] * u * u + 4 * p[2] * u * u * u;
                j[0] = rq;
                j[1] = p[0] * u * u * u / (2 * rq);
                j[2] = p[0] * u * u * u * u / (2 * rq);
                j[3] = -p[0] * dqdu / (2 * rq * p[4]);
                j[4] = -p[0] * dqdu * u / (2 * rq * p[4]);
                double r = s[i] - p[0] * rq;
                for (int a = 0; a < 5; a++) { jtr[a] += j[a] * r; for (int b = 0; b < 5; b++) jtj[a, b] += j[a] * j[b]; }
            }
            bool improved = false;
            for (int tries = 0; tries < 30 && !improved; tries++)
            {
                var a = new double[5, 5];
                for (int r = 0; r < 5; r++) for (int c = 0; c < 5; c++) a[r, c] = jtj[r, c] + (r == c ? lambda * (jtj[r, r] + 1e-12) : 0);
                var step = SolveDense(a, jtr);
                var q = new double[5];
                for (int k = 0; k < 5; k++) q[k] = p[k] + step[k];
                if (q[0] <= 0 || q[4] == 0 || !q.All(double.IsFinite)) { lambda *= 10; continue; }
                double c2 = Cost(q);
                if (c2 < cost)
                {
                    bool done = cost - c2 <= 1e-12 * Math.Max(cost, 1e-300);
                    p = q; cost = c2; lambda = Math.Max(lambda / 10, 1e-12); improved = true;
                    if (done) return p;
                }
                else lambda *= 10;
            }
            if (!improved) break;
        }
        return p;
    }

    private static double[] SolveDense(double[,] a, double[] b)
    {
        int n = b.Length;
        var m = (double[,])a.Clone(); var x = (double[])b.Clone();
        for (int c = 0; c < n; c++)
        {
            int piv = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(m[r, c]) > Math.Abs(m[piv, c])) piv = r;
            if (piv != c) { for (int k = 0; k < n; k++) (m[c, k], m[piv, k]) = (m[piv, k], m[c, k]); (x[c], x[piv]) = (x[piv], x[c]); }
            double d = m[c, c];
            if (d == 0) return new double[n].Select(_ => double.NaN).ToArray();
            for (int r = c + 1; r < n; r++)
            {
                double f = m[r, c] / d;
                for (int k = c; k < n; k++) m[r, k] -= f * m[c, k];
                x[r] -= f * x[c];
            }
        }
        for (int r = n - 1; r >= 0; r--)
        {
            double v = x[r];
            for (int k = r + 1; k < n; k++) v -= m[r, k] * x[k];
            x[r] = v / m[r, r];
        }
        return x;
    }
}
