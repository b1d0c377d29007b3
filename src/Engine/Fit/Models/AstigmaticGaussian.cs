using System.Numerics;
using System.Runtime.CompilerServices;
using MaLiang.Engine.Calibration;
using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Engine.Fit.Models;

/// <summary>
/// The astigmatic PSF: the pixel-integrated elliptical Gaussian mu = b + N Ex(i; x0, sx) Ey(j; y0, sy) (the round
/// model's separable integrals, <see cref="CpuFitBackend"/>'s Axis, with one width per axis) in two parameterizations:
/// <list type="bullet">
/// <item><b>3D</b> (x, y, N, b, z): sx = sigma_x(z), sy = sigma_y(z) from a <see cref="ZCalibration"/>; dmu/dz =
/// N (dEx/dsx sx'(z) Ey + Ex dEy/dsy sy'(z)). z is fitted in micrometres of stage z, so that its Fisher entries are
/// of the order of the lateral ones (pixels) and the float Cholesky stays well conditioned.</item>
/// <item><b>Free widths</b> (x, y, N, b, sx, sy): the bead fit of <c>calibrate-z</c>.</item>
/// </list>
/// Poisson (or sCMOS, d + gamma and mu + gamma) MLE by Fisher scoring, SIMD across molecules like the round model;
/// CRLB = diag F^-1 at the estimate. DESIGN.md "3D astigmatism" has the formulas and the z start rule.
/// </summary>
public static class AstigmaticGaussian
{
    /// <summary>Lanes past the calibrated z range by this much (um) are held there by the projection; the final test uses the range itself.</summary>
    private const float ZMarginUm = 0.1f;
    /// <summary>Largest z step per iteration (um).</summary>
    private const float ZStepUm = 0.1f;
    /// <summary>Points of the z-start look-up table over the calibrated range.</summary>
    private const int LookupPoints = 241;

    /// <summary>A calibration's curves as floats in um, and its z-start tables (one per ROI size), built once.</summary>
    internal sealed class Prepared
    {
        public readonly float S0x, Ax, Bx, Cx, InvDx, S0y, Ay, By, Cy, InvDy, ZMin, ZMax;
        private readonly ZCalibration _cal;
        private readonly Dictionary<int, float[]> _tables = new();
        public Prepared(ZCalibration c)
        {
            _cal = c;
            S0x = (float)c.X.S0Px; Ax = (float)c.X.A; Bx = (float)c.X.B; Cx = (float)(c.X.CNm / 1000); InvDx = (float)(1000 / c.X.DNm);
            S0y = (float)c.Y.S0Px; Ay = (float)c.Y.A; By = (float)c.Y.B; Cy = (float)(c.Y.CNm / 1000); InvDy = (float)(1000 / c.Y.DNm);
            ZMin = (float)(c.ZMinNm / 1000); ZMax = (float)(c.ZMaxNm / 1000);
        }

        /// <summary>ln(Mxx / Myy) of the noiseless spot centred in an n x n ROI at each table z (see <see cref="Moments"/>).</summary>
        public float[] Table(int n)
        {
            lock (_tables)
            {
                if (_tables.TryGetValue(n, out var t)) return t;
                t = new float[LookupPoints];
                var mu = new float[n * n];
                for (int k = 0; k < LookupPoints; k++)
                {
                    double z = _cal.ZMinNm + (_cal.ZMaxNm - _cal.ZMinNm) * k / (LookupPoints - 1);
                    Model(n, n * 0.5f, n * 0.5f, 1f, 0f, (float)_cal.X.SigmaPx(z), (float)_cal.Y.SigmaPx(z), mu);
                    float sum = 0, sx = 0, sy = 0;
                    for (int j = 0; j < n; j++) for (int i = 0; i < n; i++) { float e = mu[j * n + i]; sum += e; sx += e * (i + 0.5f); sy += e * (j + 0.5f); }
                    float cx = sx / sum, cy = sy / sum, mxx = 0, myy = 0;
                    for (int j = 0; j < n; j++) for (int i = 0; i < n; i++) { float e = mu[j * n + i]; mxx += e * (i + 0.5f - cx) * (i + 0.5f - cx); myy += e * (j + 0.5f - cy) * (j + 0.5f - cy); }
                    t[k] = MathF.Log(mxx / myy);
                }
                _tables[n] = t;
                return t;
            }
        }
    }

    /// <summary>The kernel's cal[] (Kernels/astigmatic.cl): S0x Ax Bx Cx InvDx S0y Ay By Cy InvDy ZMin ZMax, then the z-start
    /// table for ROIs of size n: the same floats the CPU fit uses.</summary>
    internal static float[] DeviceParams(ZCalibration c, int n)
    {
        var p = Prepare(c);
        var t = p.Table(n);
        var a = new float[12 + t.Length];
        float[] head = [p.S0x, p.Ax, p.Bx, p.Cx, p.InvDx, p.S0y, p.Ay, p.By, p.Cy, p.InvDy, p.ZMin, p.ZMax];
        head.CopyTo(a, 0);
        t.CopyTo(a, 12);
        return a;
    }

    private static readonly ConditionalWeakTable<ZCalibration, Prepared> s_prepared = new();
    internal static Prepared Prepare(ZCalibration c) => s_prepared.GetValue(c, k => new Prepared(k));

    /// <summary>sigma(z) and d sigma / dz for the lanes (z in um): s0 sqrt(q), q = 1 + u^2 + A u^3 + B u^4 (floored), u = (z - c) / d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Width(Vector<float> z, float s0, float a, float b, float c, float invD, out Vector<float> s, out Vector<float> dsdz)
    {
        var u = (z - new Vector<float>(c)) * new Vector<float>(invD);
        var u2 = u * u;
        var q = Vector.Max(Vector<float>.One + u2 + u2 * u * new Vector<float>(a) + u2 * u2 * new Vector<float>(b), new Vector<float>(1e-6f));
        var root = Vector.SquareRoot(q);
        s = new Vector<float>(s0) * root;
        var dq = new Vector<float>(2f) * u + new Vector<float>(3f * a) * u2 + new Vector<float>(4f * b) * u2 * u;
        dsdz = new Vector<float>(0.5f * s0 * invD) * dq / root;
    }

    /// <summary>Fisher information (upper triangle of p x p) and gradient at the lanes' parameters; optionally L and LLR.
    /// p = 5 (z: the 5th derivative is N (DsEx sx' Ey + Ex DsEy sy')) or 6 (free widths: N DsEx Ey, N Ex DsEy).</summary>
    private static void Evaluate(CpuFitBackend.FitScratch w, int p, Vector<float> x, Vector<float> y, Vector<float> nPh, Vector<float> b,
        Vector<float> sx, Vector<float> sy, Vector<float> dsx, Vector<float> dsy, bool wantLikelihood, bool scmos,
        Span<Vector<float>> f, Span<Vector<float>> g, out Vector<float> logL, out Vector<float> llr)
    {
        int n = w.N;
        CpuFitBackend.Axis(n, x, sx, w.Ex, w.DxEx, w.DsEx);
        CpuFitBackend.Axis(n, y, sy, w.Ey, w.DyEy, w.DsEy);
        f[..(p * p)].Clear(); g[..p].Clear();
        logL = Vector<float>.Zero; llr = Vector<float>.Zero;
        Span<Vector<float>> d = stackalloc Vector<float>[6];
        bool free = p == 6;
        for (int j = 0; j < n; j++)
        {
            var ey = w.Ey[j];
            var nEy = nPh * ey;
            var nDyEy = nPh * w.DyEy[j];
            var nDsEy = nPh * w.DsEy[j];
            for (int i = 0; i < n; i++)
            {
                var ex = w.Ex[i];
                var e = ex * ey;
                var mu = b + nPh * e;
                if (scmos) mu += w.Gamma[j * n + i];
                d[0] = nEy * w.DxEx[i];
                d[1] = nDyEy * ex;
                d[2] = e;
                d[3] = Vector<float>.One;
                var dSx = nEy * w.DsEx[i];
                var dSy = nDsEy * ex;
                if (free) { d[4] = dSx; d[5] = dSy; }
                else d[4] = dSx * dsx + dSy * dsy;
                var inv = Vector<float>.One / mu;
                var r = w.Data[j * n + i] * inv - Vector<float>.One;
                for (int a = 0; a < p; a++)
                {
                    g[a] += r * d[a];
                    var wa = d[a] * inv;
                    for (int c = a; c < p; c++) f[a * p + c] += wa * d[c];
                }
                if (wantLikelihood)
                {
                    var dd = w.Data[j * n + i];
                    var lnMu = Vector.Log(mu);
                    logL += dd * lnMu - mu;
                    var pos = Vector.GreaterThan(dd, Vector<float>.Zero);
                    var dLn = dd * (Vector.Log(Vector.Max(dd, new Vector<float>(1e-30f))) - lnMu);
                    llr += mu - dd + Vector.ConditionalSelect(pos, dLn, Vector<float>.Zero);
                }
            }
        }
        llr *= new Vector<float>(2f);
    }

    /// <summary>Fits ROIs [first, first + lanes) of the batch with this model (3D with <see cref="FitOptions.ZCalibration"/>,
    /// free widths with <see cref="FitOptions.FreeWidths"/>); called by <see cref="CpuFitBackend"/> per group.</summary>
    internal static void FitGroup(RoiBatch batch, int first, in FitOptions o, Span<FitResult> results, CpuFitBackend.FitScratch w)
    {
        int n = batch.RoiSize, np = n * n, lanes = Vector<float>.Count;
        int valid = Math.Min(lanes, batch.Count - first);
        bool free = o.ZCalibration is null;
        int p = free ? 6 : 5;
        var cal = free ? null : Prepare(o.ZCalibration!);
        var pix = batch.Pixels;
        bool scmos = batch.HasReadNoise;
        Span<float> lane = stackalloc float[lanes];
        for (int q = 0; q < np; q++)
        {
            for (int l = 0; l < lanes; l++) lane[l] = pix[(first + Math.Min(l, valid - 1)) * np + q];
            w.Data[q] = new Vector<float>(lane);
        }
        if (scmos)
            for (int q = 0; q < np; q++)
            {
                for (int l = 0; l < lanes; l++) lane[l] = batch.ReadNoise[(first + Math.Min(l, valid - 1)) * np + q];
                w.Gamma[q] = new Vector<float>(lane);
            }

        // Start: border-mean background, photons above it, centroid of the excess (as the round model), and the
        // second moments of the background-subtracted data about it (not clipped at 0, so the noise does not widen them).
        var b = Vector<float>.Zero;
        for (int i = 0; i < n; i++)
        {
            b += w.Data[i] + w.Data[(n - 1) * n + i];
            if (i > 0 && i < n - 1) b += w.Data[i * n] + w.Data[i * n + n - 1];
        }
        b = Vector.Max(b * new Vector<float>(1f / (4 * (n - 1))), new Vector<float>(0.01f));
        Vector<float> sum = Vector<float>.Zero, sxm = Vector<float>.Zero, sym = Vector<float>.Zero;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
            {
                var ex = Vector.Max(w.Data[j * n + i] - b, Vector<float>.Zero);
                sum += ex; sxm += ex * new Vector<float>(i + 0.5f); sym += ex * new Vector<float>(j + 0.5f);
            }
        var centre = new Vector<float>(n * 0.5f);
        var hasExcess = Vector.GreaterThan(sum, Vector<float>.Zero);
        var safeSum = Vector.Max(sum, new Vector<float>(1e-30f));
        var x = Vector.ConditionalSelect(hasExcess, sxm / safeSum, centre);
        var y = Vector.ConditionalSelect(hasExcess, sym / safeSum, centre);
        var nPh = Vector.Max(sum, Vector<float>.One);
        Vector<float> mxx = Vector<float>.Zero, myy = Vector<float>.Zero;
        for (int j = 0; j < n; j++)
        {
            var dy = new Vector<float>(j + 0.5f) - y;
            for (int i = 0; i < n; i++)
            {
                var dx = new Vector<float>(i + 0.5f) - x;
                var e = w.Data[j * n + i] - b;
                mxx += e * dx * dx; myy += e * dy * dy;
            }
        }
        var floorM = new Vector<float>(0.05f) * nPh;
        mxx = Vector.Max(mxx, floorM); myy = Vector.Max(myy, floorM);
        if (scmos) for (int q = 0; q < np; q++) w.Data[q] += w.Gamma[q];

        var st = new State { X = x, Y = y, N = nPh, B = b };
        Span<Vector<float>> f = stackalloc Vector<float>[36];
        Span<Vector<float>> g = stackalloc Vector<float>[6];
        if (free)
        {
            var sLo = new Vector<float>(0.3f); var sHi = new Vector<float>(n);
            st.Sx = Vector.Min(Vector.Max(Vector.SquareRoot(mxx / nPh), sLo), sHi);
            st.Sy = Vector.Min(Vector.Max(Vector.SquareRoot(myy / nPh), sLo), sHi);
            Iterate(w, p, null, o, scmos, ref st, f, g);
        }
        else
        {
            // z starts (DESIGN.md, the z start rule): the table z whose noiseless spot has the nearest ln(Mxx / Myy), and the
            // table z of the opposite ratio (the two widths swapped, the other side of focus); the start whose fit ends
            // with the higher likelihood wins. The second start removes the fits that end in the wrong one of the two
            // minima when noise flips the measured ratio of a wide spot.
            var table = cal!.Table(n);
            var ratio = Vector.Log(mxx / myy);
            var st2 = st;
            st.Z = Lookup(cal, table, ratio);
            st2.Z = Lookup(cal, table, -ratio);
            Iterate(w, p, cal, o, scmos, ref st, f, g);
            Iterate(w, p, cal, o, scmos, ref st2, f, g);
            Evaluate(w, p, st.X, st.Y, st.N, st.B, st.Sx, st.Sy, st.Dsx, st.Dsy, true, scmos, f, g, out var l1, out _);
            Evaluate(w, p, st2.X, st2.Y, st2.N, st2.B, st2.Sx, st2.Sy, st2.Dsx, st2.Dsy, true, scmos, f, g, out var l2, out _);
            // The second wins only by more than float noise (1e-5 relative + 0.05): both starts often end at the same
            // optimum, and a tie must not be decided by rounding (the kernel's log differs from .NET's in the last bits).
            var margin = Vector.Abs(l1) * new Vector<float>(1e-5f) + new Vector<float>(0.05f);
            var second = Vector.GreaterThan(l2, l1 + margin) & ~st2.Failed | st.Failed & ~st2.Failed;
            st.Select(second, st2);
        }
        var (x1, y1, n1, b1) = (st.X, st.Y, st.N, st.B);
        var (sx, sy, dsx, dsy, z) = (st.Sx, st.Sy, st.Dsx, st.Dsy, st.Z);
        var failed = st.Failed; var converged = st.Converged; var iterations = st.Iterations;
        x = x1; y = y1; nPh = n1; b = b1;
        Evaluate(w, p, x, y, nPh, b, sx, sy, dsx, dsy, true, scmos, f, g, out var logL, out var llr);
        var okF = SmallSpd.Cholesky(f, p);
        Span<Vector<float>> crlb = stackalloc Vector<float>[6];
        SmallSpd.InverseDiagonal(f, crlb, p);
        failed |= ~okF;

        for (int l = 0; l < valid; l++)
        {
            ref var r = ref results[first + l];
            r.X = x[l]; r.Y = y[l]; r.Photons = nPh[l]; r.Background = b[l];
            r.CrlbX = MathF.Sqrt(crlb[0][l]); r.CrlbY = MathF.Sqrt(crlb[1][l]); r.CrlbPhotons = MathF.Sqrt(crlb[2][l]);
            r.CrlbBackground = MathF.Sqrt(crlb[3][l]);
            if (free)
            {
                r.Sigma = sx[l]; r.SigmaY = sy[l]; r.CrlbSigma = MathF.Sqrt(crlb[4][l]); r.CrlbSigmaY = MathF.Sqrt(crlb[5][l]);
                r.Z = float.NaN; r.CrlbZ = float.NaN;
            }
            else
            {
                // Sigma: the geometric mean width, for the round-model columns; the widths themselves follow from z.
                r.Sigma = MathF.Sqrt(sx[l] * sy[l]); r.SigmaY = sy[l]; r.CrlbSigma = 0f; r.CrlbSigmaY = 0f;
                r.Z = z[l] * 1000f; r.CrlbZ = MathF.Sqrt(crlb[4][l]) * 1000f;
            }
            r.LogLikelihood = logL[l]; r.Llr = llr[l];
            r.Iterations = iterations[l];
            bool finiteOut = float.IsFinite(r.CrlbX) && float.IsFinite(r.CrlbY) && float.IsFinite(r.LogLikelihood) && (free || float.IsFinite(r.CrlbZ));
            int pk = batch.Peak[first + l], shY = pk / n - n / 2, shX = pk - (pk / n) * n - n / 2;
            if (failed[l] != 0 || !finiteOut) r.Status = FitStatus.Failed;
            else if (r.X < 1 + shX || r.X > n - 1 + shX || r.Y < 1 + shY || r.Y > n - 1 + shY) r.Status = FitStatus.LeftRoi;
            else if (!free && (z[l] < cal!.ZMin || z[l] > cal.ZMax)) r.Status = FitStatus.OutsideZRange;
            else r.Status = converged[l] != 0 ? FitStatus.Converged : FitStatus.MaxIterations;
        }
    }

    /// <summary>One fit's parameters for the lanes, with its widths at z and their slopes (3D), and its bookkeeping.</summary>
    private struct State
    {
        public Vector<float> X, Y, N, B, Z, Sx, Sy, Dsx, Dsy;
        public Vector<int> Failed, Converged, Iterations;
        public void Select(Vector<int> take, in State o)
        {
            X = Vector.ConditionalSelect(take, o.X, X); Y = Vector.ConditionalSelect(take, o.Y, Y);
            N = Vector.ConditionalSelect(take, o.N, N); B = Vector.ConditionalSelect(take, o.B, B);
            Z = Vector.ConditionalSelect(take, o.Z, Z); Sx = Vector.ConditionalSelect(take, o.Sx, Sx); Sy = Vector.ConditionalSelect(take, o.Sy, Sy);
            Dsx = Vector.ConditionalSelect(take, o.Dsx, Dsx); Dsy = Vector.ConditionalSelect(take, o.Dsy, Dsy);
            Failed = Vector.ConditionalSelect(take, o.Failed, Failed); Converged = Vector.ConditionalSelect(take, o.Converged, Converged);
            Iterations = Vector.ConditionalSelect(take, o.Iterations, Iterations);
        }
    }

    /// <summary>The z (um) of the table entry nearest each lane's ratio.</summary>
    private static Vector<float> Lookup(Prepared cal, float[] table, Vector<float> ratio)
    {
        Span<float> zs = stackalloc float[Vector<float>.Count];
        for (int l = 0; l < zs.Length; l++)
        {
            float r = ratio[l], best = float.MaxValue; int bk = LookupPoints / 2;
            for (int k = 0; k < LookupPoints; k++) { float dd = MathF.Abs(table[k] - r); if (dd < best) { best = dd; bk = k; } }
            zs[l] = cal.ZMin + (cal.ZMax - cal.ZMin) * bk / (LookupPoints - 1);
        }
        return new Vector<float>(zs);
    }

    /// <summary>Fisher scoring from the state's start: clamped steps (1 px, 0.1 um in z, a quarter of a free width), projected
    /// onto the constraints (photons and background halve instead of crossing 0, centre in [0, n], z within the range
    /// +- 0.1 um, free widths in [0.3, n] px), stopped per lane when every step is below tolerance. Leaves the widths at the final z.</summary>
    private static void Iterate(CpuFitBackend.FitScratch w, int p, Prepared? cal, in FitOptions o, bool scmos, ref State st,
                                Span<Vector<float>> f, Span<Vector<float>> g)
    {
        int n = w.N;
        bool free = cal is null;
        var roiMax = new Vector<float>(n);
        var one = Vector<float>.One;
        var half = new Vector<float>(0.5f);
        var tol = new Vector<float>(o.Tolerance);
        var zStep = new Vector<float>(ZStepUm);
        var zLo = free ? default : new Vector<float>(cal!.ZMin - ZMarginUm);
        var zHi = free ? default : new Vector<float>(cal!.ZMax + ZMarginUm);
        var sLo = new Vector<float>(0.3f); var sHi = new Vector<float>(n);
        var active = new Vector<int>(-1);
        st.Failed = st.Converged = st.Iterations = Vector<int>.Zero;
        var (x, y, nPh, b, z, sx, sy) = (st.X, st.Y, st.N, st.B, st.Z, st.Sx, st.Sy);
        Vector<float> dsx = default, dsy = default;
        for (int it = 0; it < o.MaxIterations; it++)
        {
            if (!free)
            {
                Width(z, cal!.S0x, cal.Ax, cal.Bx, cal.Cx, cal.InvDx, out sx, out dsx);
                Width(z, cal.S0y, cal.Ay, cal.By, cal.Cy, cal.InvDy, out sy, out dsy);
            }
            Evaluate(w, p, x, y, nPh, b, sx, sy, dsx, dsy, false, scmos, f, g, out _, out _);
            var ok = SmallSpd.Cholesky(f, p);
            SmallSpd.Solve(f, g, p);
            var xN = Vector.Min(Vector.Max(x + Vector.Min(Vector.Max(g[0], -one), one), Vector<float>.Zero), roiMax);
            var yN = Vector.Min(Vector.Max(y + Vector.Min(Vector.Max(g[1], -one), one), Vector<float>.Zero), roiMax);
            var nN = nPh + g[2];
            nN = Vector.ConditionalSelect(Vector.GreaterThan(nN, Vector<float>.Zero), nN, nPh * half);
            var bN = b + g[3];
            bN = Vector.ConditionalSelect(Vector.GreaterThan(bN, Vector<float>.Zero), bN, b * half);
            Vector<float> zN = z, sxN = sx, syN = sy;
            var small = Small(xN - x, xN, tol) & Small(yN - y, yN, tol) & Small(nN - nPh, nN, tol) & Small(bN - b, bN, tol);
            var finite = Vector.Equals(xN, xN) & Vector.Equals(yN, yN) & Vector.Equals(nN, nN) & Vector.Equals(bN, bN)
                         & Vector.LessThan(Vector.Abs(nN), new Vector<float>(float.MaxValue)) & Vector.LessThan(Vector.Abs(bN), new Vector<float>(float.MaxValue));
            if (free)
            {
                var mx = sx * new Vector<float>(0.25f); var my = sy * new Vector<float>(0.25f);
                sxN = Vector.Min(Vector.Max(sx + Vector.Min(Vector.Max(g[4], -mx), mx), sLo), sHi);
                syN = Vector.Min(Vector.Max(sy + Vector.Min(Vector.Max(g[5], -my), my), sLo), sHi);
                small &= Small(sxN - sx, sxN, tol) & Small(syN - sy, syN, tol);
                finite &= Vector.Equals(sxN, sxN) & Vector.Equals(syN, syN);
            }
            else
            {
                zN = Vector.Min(Vector.Max(z + Vector.Min(Vector.Max(g[4], -zStep), zStep), zLo), zHi);
                small &= Small(zN - z, zN, tol);
                finite &= Vector.Equals(zN, zN);
            }
            var bad = active & ~(ok & finite);
            st.Failed |= bad;
            var step = active & ~bad;
            x = Vector.ConditionalSelect(step, xN, x);
            y = Vector.ConditionalSelect(step, yN, y);
            nPh = Vector.ConditionalSelect(step, nN, nPh);
            b = Vector.ConditionalSelect(step, bN, b);
            if (free) { sx = Vector.ConditionalSelect(step, sxN, sx); sy = Vector.ConditionalSelect(step, syN, sy); }
            else z = Vector.ConditionalSelect(step, zN, z);
            st.Iterations -= step;
            st.Converged = (st.Converged & ~step) | (step & small);
            active = step;
            if (o.UseTolerance) active &= ~small;
            if (Vector.EqualsAll(active, Vector<int>.Zero)) break;
        }
        if (!free)
        {
            Width(z, cal!.S0x, cal.Ax, cal.Bx, cal.Cx, cal.InvDx, out sx, out dsx);
            Width(z, cal.S0y, cal.Ay, cal.By, cal.Cy, cal.InvDy, out sy, out dsy);
        }
        (st.X, st.Y, st.N, st.B, st.Z, st.Sx, st.Sy, st.Dsx, st.Dsy) = (x, y, nPh, b, z, sx, sy, dsx, dsy);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<int> Small(Vector<float> delta, Vector<float> value, Vector<float> tol)
        => Vector.LessThanOrEqual(Vector.Abs(delta), tol * Vector.Max(Vector.Abs(value), Vector<float>.One));

    /// <summary>The elliptical model at given widths (ROI coordinates, row-major n x n), through the fit's own Axis code:
    /// for the simulator's tests, the z-start table and the CRLB.</summary>
    public static void Model(int n, float x, float y, float photons, float background, float sigmaX, float sigmaY, Span<float> mu)
    {
        var w = new CpuFitBackend.FitScratch(n);
        CpuFitBackend.Axis(n, new Vector<float>(x), new Vector<float>(sigmaX), w.Ex, w.DxEx, w.DsEx);
        CpuFitBackend.Axis(n, new Vector<float>(y), new Vector<float>(sigmaY), w.Ey, w.DyEy, w.DsEy);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) mu[j * n + i] = background + photons * w.Ex[i][0] * w.Ey[j][0];
    }

    /// <summary>
    /// Square roots of the CRLB of (x, y, photons, background, z) for the 3D model at the given parameters (z in nm of
    /// stage z; the result's z entry in nm): the same Fisher information the fit reports with.
    /// </summary>
    public static void Crlb(ZCalibration calibration, int n, float x, float y, float photons, float background, float zNm, Span<float> sqrtCrlb)
    {
        var cal = Prepare(calibration);
        var w = new CpuFitBackend.FitScratch(n);
        var z = new Vector<float>(zNm / 1000f);
        Width(z, cal.S0x, cal.Ax, cal.Bx, cal.Cx, cal.InvDx, out var sx, out var dsx);
        Width(z, cal.S0y, cal.Ay, cal.By, cal.Cy, cal.InvDy, out var sy, out var dsy);
        Span<float> mu = stackalloc float[n * n];
        Model(n, x, y, photons, background, sx[0], sy[0], mu);
        for (int q = 0; q < n * n; q++) w.Data[q] = new Vector<float>(mu[q]);
        Span<Vector<float>> f = stackalloc Vector<float>[25];
        Span<Vector<float>> g = stackalloc Vector<float>[5];
        Span<Vector<float>> diag = stackalloc Vector<float>[5];
        Evaluate(w, 5, new Vector<float>(x), new Vector<float>(y), new Vector<float>(photons), new Vector<float>(background), sx, sy, dsx, dsy,
            false, false, f, g, out _, out _);
        SmallSpd.Cholesky(f, 5);
        SmallSpd.InverseDiagonal(f, diag, 5);
        for (int q = 0; q < 5; q++) sqrtCrlb[q] = MathF.Sqrt(diag[q][0]);
        sqrtCrlb[4] *= 1000f;
    }
}
