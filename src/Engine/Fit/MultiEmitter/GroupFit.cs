using System.Numerics;
using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>
/// Joint Poisson MLE of K emitters with one background in a rectangular box of the frame (DESIGN.md "Crowded frames"):
/// mu_i = b + f_i + sum_k N_k Ex_k(col) Ey_k(row), with f the fixed model of emitters outside the group that reach into
/// the box, the pixel-integrated Gaussian of <see cref="CpuFitBackend.Axis"/> (the one PSF implementation) at the PSF
/// sigma, which is fixed. Parameters theta = [b, x_0, y_0, N_0, x_1, ...] (3K + 1), positions in box pixels. With a
/// read-noise plane the sCMOS likelihood (d + gamma against mu + gamma) is used, as in the single-emitter fit.
/// Levenberg-Marquardt on the Fisher information (Fisher scoring, damped only when a step lowers the likelihood), the
/// same projection as the single fit (positions clamped to the box, |dx|, |dy| &lt;= 1 px per step, photons and
/// background halve instead of crossing 0). The CRLB of every parameter is the diagonal of the inverse joint Fisher
/// information, so an emitter beside a neighbour reports its larger uncertainty. Double precision: the joint system has
/// up to 3 x <see cref="MaxEmitters"/> + 1 unknowns. One instance per thread; no allocation per fit.
/// </summary>
public sealed class GroupFit
{
    /// <summary>Most emitters fitted together (3 x 12 + 1 = 37 parameters: what the scratch holds).</summary>
    public const int MaxEmitters = 12;
    public const int MaxParameters = 3 * MaxEmitters + 1;

    public float SigmaPx { get; }
    public int MaxIterations { get; }
    public float Tolerance { get; }

    // Per emitter k and box column/row: Ex[k * bw + c], dEx (by the centre), Ey[k * bh + r], dEy.
    private float[] _ex = [], _dex = [], _ey = [], _dey = [];
    private Vector<float>[] _ve = [], _vdc = [], _vds = [];
    private readonly double[] _g = new double[MaxParameters], _f = new double[MaxParameters * MaxParameters];
    private readonly double[] _g1 = new double[MaxParameters], _f1 = new double[MaxParameters * MaxParameters];
    private readonly double[] _a = new double[MaxParameters * MaxParameters], _step = new double[MaxParameters], _trial = new double[MaxParameters];
    private readonly double[] _jac = new double[MaxParameters];
    private readonly int[] _active = new int[MaxParameters];

    /// <summary>After <see cref="Fit"/>: the log-likelihood sum(d ln mu - mu) over the box, the goodness of fit
    /// 2 sum(mu - d + d ln(d / mu)), the iterations run, and whether it converged before the limit.</summary>
    public double LogLikelihood { get; private set; }
    public double Llr { get; private set; }
    public int Iterations { get; private set; }
    public bool Converged { get; private set; }

    public GroupFit(float sigmaPx, int maxIterations = 30, float tolerance = 1e-4f)
    {
        if (!(sigmaPx > 0)) throw new ArgumentOutOfRangeException(nameof(sigmaPx));
        SigmaPx = sigmaPx; MaxIterations = maxIterations; Tolerance = tolerance;
    }

    /// <summary>
    /// Fits <paramref name="k"/> emitters jointly, starting from <paramref name="theta"/> (3k + 1 values, updated in place).
    /// <paramref name="data"/>, <paramref name="fixedModel"/> and <paramref name="gamma"/> (empty: Poisson) are bw x bh,
    /// row-major. Returns false when the fit failed (non-finite values or a singular Fisher matrix).
    /// </summary>
    public bool Fit(ReadOnlySpan<float> data, ReadOnlySpan<float> fixedModel, ReadOnlySpan<float> gamma, int bw, int bh, int k, Span<double> theta)
    {
        if (k < 0 || k > MaxEmitters) throw new ArgumentOutOfRangeException(nameof(k), $"1 to {MaxEmitters} emitters, got {k}");
        int p = 3 * k + 1;
        Iterations = 0; Converged = false;
        if (!Evaluate(data, fixedModel, gamma, bw, bh, k, theta, _g, _f, out double logL, out _)) return false;
        double lambda = 1e-4;
        var trial = _trial.AsSpan(0, p);
        for (int it = 0; it < MaxIterations; it++)
        {
            Iterations = it + 1;
            bool accepted = false;
            for (int tries = 0; tries < 12 && !accepted; tries++)
            {
                // (F + lambda diag F) step = g, then the projection.
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++) _a[i * p + j] = _f[i * MaxParameters + j] * (i == j ? 1 + lambda : 1);
                if (!CholeskySolve(_a, p, _g, _step)) return false;
                for (int i = 0; i < p; i++) trial[i] = theta[i];
                Project(trial, _step, k, bw, bh);
                if (!Evaluate(data, fixedModel, gamma, bw, bh, k, trial, _g1, _f1, out double logL1, out _)) { lambda *= 10; continue; }
                if (logL1 >= logL - 1e-9 * Math.Abs(logL))
                {
                    bool small = true;
                    for (int i = 0; i < p; i++) small &= Math.Abs(trial[i] - theta[i]) <= Tolerance * Math.Max(Math.Abs(trial[i]), 1.0);
                    trial.CopyTo(theta);
                    Array.Copy(_g1, _g, p);
                    for (int i = 0; i < p; i++) Array.Copy(_f1, i * MaxParameters, _f, i * MaxParameters, p);
                    // Converged when every step is small, or the likelihood no longer moves (a ridge between two
                    // close emitters creeps in small steps; model selection only needs L to 1e-3).
                    small |= logL1 - logL < 1e-4;
                    logL = logL1;
                    lambda = Math.Max(lambda * 0.1, 1e-7);
                    accepted = true;
                    if (small) { Converged = true; break; }
                }
                else lambda *= 10;
            }
            if (Converged || !accepted) { Converged |= !accepted; break; }   // no step raises L: at the maximum (to float precision)
        }
        Evaluate(data, fixedModel, gamma, bw, bh, k, theta, _g, _f, out logL, out double llr);
        LogLikelihood = logL; Llr = llr;
        return true;
    }

    /// <summary>Square roots of the CRLB diagonal at the last <see cref="Fit"/>'s estimate, in theta's order; false when the
    /// Fisher information is singular.</summary>
    public bool SqrtCrlb(int k, Span<double> sqrtCrlb)
    {
        int p = 3 * k + 1;
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++) _a[i * p + j] = _f[i * MaxParameters + j];
        if (!Cholesky(_a, p)) return false;
        Span<double> e = stackalloc double[p];
        for (int c = 0; c < p; c++)
        {
            e.Clear(); e[c] = 1;
            SolveFactored(_a, p, e, e);
            sqrtCrlb[c] = e[c] > 0 ? Math.Sqrt(e[c]) : double.NaN;
        }
        return true;
    }

    private static void Project(Span<double> t, ReadOnlySpan<double> step, int k, int bw, int bh)
    {
        double b = t[0] + step[0];
        t[0] = b > 0 ? b : t[0] * 0.5;
        for (int e = 0; e < k; e++)
        {
            int o = 1 + 3 * e;
            t[o] = Math.Clamp(t[o] + Math.Clamp(step[o], -1, 1), 0, bw);
            t[o + 1] = Math.Clamp(t[o + 1] + Math.Clamp(step[o + 1], -1, 1), 0, bh);
            double n = t[o + 2] + step[o + 2];
            t[o + 2] = n > 0 ? n : t[o + 2] * 0.5;
        }
    }

    private void Ensure(int k, int bw, int bh)
    {
        int m = Math.Max(bw, bh);
        if (_ex.Length < MaxEmitters * bw) { _ex = new float[MaxEmitters * bw]; _dex = new float[MaxEmitters * bw]; }
        if (_ey.Length < MaxEmitters * bh) { _ey = new float[MaxEmitters * bh]; _dey = new float[MaxEmitters * bh]; }
        if (_ve.Length < m) { _ve = new Vector<float>[m]; _vdc = new Vector<float>[m]; _vds = new Vector<float>[m]; }
    }

    /// <summary>The per-axis integrated PSF of every emitter, through <see cref="CpuFitBackend.Axis"/>, emitters across lanes.</summary>
    private void Axes(int k, int bw, int bh, ReadOnlySpan<double> theta)
    {
        Ensure(k, bw, bh);
        int lanes = Vector<float>.Count;
        Span<float> cx = stackalloc float[lanes];
        Span<float> cy = stackalloc float[lanes];
        var s = new Vector<float>(SigmaPx);
        for (int k0 = 0; k0 < k; k0 += lanes)
        {
            int m = Math.Min(lanes, k - k0);
            for (int l = 0; l < lanes; l++)
            {
                int e = k0 + Math.Min(l, m - 1);
                cx[l] = (float)theta[1 + 3 * e]; cy[l] = (float)theta[2 + 3 * e];
            }
            CpuFitBackend.Axis(bw, new Vector<float>(cx), s, _ve, _vdc, _vds);
            for (int c = 0; c < bw; c++)
                for (int l = 0; l < m; l++) { _ex[(k0 + l) * bw + c] = _ve[c][l]; _dex[(k0 + l) * bw + c] = _vdc[c][l]; }
            CpuFitBackend.Axis(bh, new Vector<float>(cy), s, _ve, _vdc, _vds);
            for (int r = 0; r < bh; r++)
                for (int l = 0; l < m; l++) { _ey[(k0 + l) * bh + r] = _ve[r][l]; _dey[(k0 + l) * bh + r] = _vdc[r][l]; }
        }
    }

    /// <summary>Gradient g, Fisher information F (full, stride <see cref="MaxParameters"/>), log-likelihood and LLR at theta.
    /// An emitter enters a pixel's sums only where its PSF is above 1e-7 of the pixel's area along both axes.</summary>
    private bool Evaluate(ReadOnlySpan<float> data, ReadOnlySpan<float> fixedModel, ReadOnlySpan<float> gamma, int bw, int bh, int k,
                          ReadOnlySpan<double> theta, double[] g, double[] f, out double logL, out double llr)
    {
        int p = 3 * k + 1;
        Axes(k, bw, bh, theta);
        Array.Clear(g, 0, p);
        for (int i = 0; i < p; i++) Array.Clear(f, i * MaxParameters, p);
        double b = theta[0];
        logL = 0; llr = 0;
        bool scmos = !gamma.IsEmpty;
        const float tiny = 1e-7f;
        for (int r = 0; r < bh; r++)
            for (int c = 0; c < bw; c++)
            {
                int px = r * bw + c;
                double mu = b + fixedModel[px];
                int na = 1;
                _active[0] = 0; _jac[0] = 1;
                for (int e = 0; e < k; e++)
                {
                    float ex = _ex[e * bw + c], ey = _ey[e * bh + r];
                    if (ex < tiny || ey < tiny) continue;
                    double n = theta[3 + 3 * e], ee = (double)ex * ey;
                    mu += n * ee;
                    int o = 1 + 3 * e;
                    _active[na] = o; _jac[na++] = n * _dex[e * bw + c] * ey;
                    _active[na] = o + 1; _jac[na++] = n * ex * _dey[e * bh + r];
                    _active[na] = o + 2; _jac[na++] = ee;
                }
                double d = data[px];
                if (scmos) { mu += gamma[px]; d += gamma[px]; }
                if (!(mu > 0) || !double.IsFinite(mu)) return false;
                double inv = 1 / mu, rr = d * inv - 1, lnMu = Math.Log(mu);
                logL += d * lnMu - mu;
                llr += mu - d + (d > 0 ? d * (Math.Log(d) - lnMu) : 0);
                for (int i = 0; i < na; i++)
                {
                    double ji = _jac[i], wi = ji * inv;
                    int ai = _active[i];
                    g[ai] += rr * ji;
                    int row = ai * MaxParameters;
                    for (int j = i; j < na; j++) f[row + _active[j]] += wi * _jac[j];
                }
            }
        // Symmetrize (the active lists are in parameter order, so the upper triangle was filled).
        for (int i = 0; i < p; i++)
            for (int j = i + 1; j < p; j++) f[j * MaxParameters + i] = f[i * MaxParameters + j];
        llr *= 2;
        return double.IsFinite(logL);
    }

    /// <summary>Adds emitter models N Ex Ey into <paramref name="image"/> (width x height) over the
    /// (2R+1)-pixel square around each; R = ceil(4 sigma). Positions in image pixels.</summary>
    public void Render(Span<float> image, int width, int height, float x, float y, float photons, float sign = 1f)
    {
        int r = (int)MathF.Ceiling(4 * SigmaPx);
        int x0 = Math.Max(0, (int)MathF.Floor(x) - r), x1 = Math.Min(width, (int)MathF.Floor(x) + r + 1);
        int y0 = Math.Max(0, (int)MathF.Floor(y) - r), y1 = Math.Min(height, (int)MathF.Floor(y) + r + 1);
        int bw = x1 - x0, bh = y1 - y0;
        if (bw <= 0 || bh <= 0) return;
        Ensure(1, bw, bh);
        var s = new Vector<float>(SigmaPx);
        CpuFitBackend.Axis(bw, new Vector<float>(x - x0), s, _ve, _vdc, _vds);
        for (int c = 0; c < bw; c++) _ex[c] = _ve[c][0];
        CpuFitBackend.Axis(bh, new Vector<float>(y - y0), s, _ve, _vdc, _vds);
        float a = sign * photons;
        for (int row = 0; row < bh; row++)
        {
            float ey = a * _ve[row][0];
            var line = image.Slice((y0 + row) * width + x0, bw);
            for (int c = 0; c < bw; c++) line[c] += ey * _ex[c];
        }
    }

    /// <summary>In-place Cholesky (lower, row-major, stride p) of a symmetric positive definite p x p matrix.</summary>
    private static bool Cholesky(double[] a, int p)
    {
        for (int i = 0; i < p; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double s = a[i * p + j];
                for (int q = 0; q < j; q++) s -= a[i * p + q] * a[j * p + q];
                if (i == j)
                {
                    if (!(s > 1e-300)) return false;
                    a[i * p + i] = Math.Sqrt(s);
                }
                else a[i * p + j] = s / a[j * p + j];
            }
        }
        return true;
    }

    private static void SolveFactored(double[] l, int p, ReadOnlySpan<double> rhs, Span<double> x)
    {
        for (int i = 0; i < p; i++)
        {
            double s = rhs[i];
            for (int q = 0; q < i; q++) s -= l[i * p + q] * x[q];
            x[i] = s / l[i * p + i];
        }
        for (int i = p - 1; i >= 0; i--)
        {
            double s = x[i];
            for (int q = i + 1; q < p; q++) s -= l[q * p + i] * x[q];
            x[i] = s / l[i * p + i];
        }
    }

    private static bool CholeskySolve(double[] a, int p, double[] rhs, double[] x)
    {
        if (!Cholesky(a, p)) return false;
        SolveFactored(a, p, rhs.AsSpan(0, p), x.AsSpan(0, p));
        return true;
    }
}
