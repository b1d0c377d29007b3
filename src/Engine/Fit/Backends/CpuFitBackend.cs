using System.Numerics;
using System.Runtime.CompilerServices;

namespace MaLiang.Engine.Fit.Backends;

/// <summary>
/// The MLE fit on the CPU: SIMD across molecules (one <see cref="Vector{T}"/> lane per molecule, structure of arrays),
/// groups of <see cref="Vector{T}.Count"/> molecules spread over all cores. No allocation per fit.
/// The math is DESIGN.md's "The fit, in formulas"; the OpenCL/CUDA kernel (Kernels/fit.cl) follows this file
/// operation for operation, so change both together.
/// </summary>
/// <remarks>
/// Algorithm, per molecule: start from the background-subtracted centroid, border-mean background, photons above it,
/// sigma = PSF sigma. Each iteration evaluates the Poisson gradient g and Fisher information F, solves F d = g
/// (Fisher scoring; a Cholesky 5x5), clamps the step (|dx|,|dy| &lt;= 1 px, |ds| &lt;= 0.25 s), projects onto the constraints
/// (photons and background halve instead of crossing 0, sigma in [0.5, 3] x initial, centre in [0, n]) and stops when
/// every applied step is below tolerance x max(|value|, 1). Fixed sigma: the sigma row of F is replaced by the identity,
/// which leaves the other four parameters' solution and CRLB exactly those of the 4x4 problem.
/// Lanes are independent and groups are fixed by molecule index, so results do not depend on the thread count.
/// </remarks>
public sealed class CpuFitBackend : IFitBackend
{
    private readonly int _threads;
    public string Name => "cpu";
    public static int Lanes => Vector<float>.Count;

    public CpuFitBackend(int threads = 0) => _threads = threads <= 0 ? Environment.ProcessorCount : threads;

    public void Dispose() { }

    public void Fit(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        int count = batch.Count;
        if (results.Length < count) throw new ArgumentException("results span is shorter than the batch", nameof(results));
        if (count == 0) return;
        int groups = (count + Lanes - 1) / Lanes;
        var opts = options;
        if (_threads == 1 || groups < 4)
        {
            var scratch = Scratch(batch.RoiSize);
            for (int g = 0; g < groups; g++) FitGroup(batch, g * Lanes, opts, results, scratch);
            return;
        }
        int perChunk = Math.Max(1, Math.Min(64, groups / (_threads * 4)));
        int chunks = (groups + perChunk - 1) / perChunk;
        unsafe
        {
            // Spans cannot be captured by the parallel loop: pin the results and hand the workers the address.
            fixed (FitResult* pinned = results)
            {
                FitResult* res = pinned;
                Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = _threads },
                    () => Scratch(batch.RoiSize),
                    (c, _, scratch) =>
                    {
                        var all = new Span<FitResult>(res, count);
                        int g1 = Math.Min(groups, (c + 1) * perChunk);
                        for (int g = c * perChunk; g < g1; g++) FitGroup(batch, g * Lanes, opts, all, scratch);
                        return scratch;
                    }, _ => { });
            }
        }
    }

    [ThreadStatic] private static FitScratch? t_scratch;

    /// <summary>This thread's scratch for ROIs of size n: allocated once per thread (and ROI size), not per call.</summary>
    private static FitScratch Scratch(int n) => t_scratch is { } s && s.N == n ? s : (t_scratch = new FitScratch(n));

    /// <summary>Per-thread buffers for one group of molecules.</summary>
    internal sealed class FitScratch
    {
        public readonly int N;
        public readonly Vector<float>[] Data;                       // [pixel] -> lanes
        public readonly Vector<float>[] Gamma;                      // [pixel] -> lanes: sCMOS read-noise variance (photons^2)
        public readonly Vector<float>[] Ex, Ey, DxEx, DyEy, DsEx, DsEy; // [n] per axis
        public FitScratch(int n)
        {
            N = n;
            Data = new Vector<float>[n * n];
            Gamma = new Vector<float>[n * n];
            Ex = new Vector<float>[n]; Ey = new Vector<float>[n];
            DxEx = new Vector<float>[n]; DyEy = new Vector<float>[n];
            DsEx = new Vector<float>[n]; DsEy = new Vector<float>[n];
        }
    }

    // 1/sqrt(2), 1/sqrt(2 pi)
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>erf(z) from exp(-z^2) already computed (Abramowitz &amp; Stegun 7.1.26, |error| &lt;= 1.5e-7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<float> Erf(Vector<float> z, Vector<float> expMinusZ2)
    {
        var a = Vector.Abs(z);
        var t = Vector<float>.One / (Vector<float>.One + new Vector<float>(0.3275911f) * a);
        var poly = new Vector<float>(1.061405429f);
        poly = poly * t + new Vector<float>(-1.453152027f);
        poly = poly * t + new Vector<float>(1.421413741f);
        poly = poly * t + new Vector<float>(-0.284496736f);
        poly = poly * t + new Vector<float>(0.254829592f);
        var y = Vector<float>.One - poly * t * expMinusZ2;
        return Vector.ConditionalSelect(Vector.LessThan(z, Vector<float>.Zero), -y, y);
    }

    /// <summary>
    /// Integrated PSF along one axis for all n pixels, and its derivatives by the centre and sigma, for the lanes:
    /// E[i] = 1/2 [erf((i+1-c)/(sqrt2 s)) - erf((i-c)/(sqrt2 s))], dE/dc = G(u0) - G(u1), dE/ds = (u0 G(u0) - u1 G(u1)) / s.
    /// One exp per pixel edge serves both erf and G.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Axis(int n, Vector<float> c, Vector<float> s, Span<Vector<float>> e, Span<Vector<float>> dc, Span<Vector<float>> ds)
    {
        var invS = Vector<float>.One / s;
        var zScale = invS * new Vector<float>(InvSqrt2);
        var gScale = invS * new Vector<float>(InvSqrt2Pi);
        var half = new Vector<float>(0.5f);
        var u = -c;
        var z = u * zScale;
        var ex = Vector.Exp(-(z * z));
        var erfPrev = Erf(z, ex);
        var gPrev = ex * gScale;
        var ugPrev = u * gPrev;
        for (int i = 0; i < n; i++)
        {
            u = new Vector<float>(i + 1) - c;
            z = u * zScale;
            ex = Vector.Exp(-(z * z));
            var erfNext = Erf(z, ex);
            var gNext = ex * gScale;
            var ugNext = u * gNext;
            e[i] = half * (erfNext - erfPrev);
            dc[i] = gPrev - gNext;
            ds[i] = (ugPrev - ugNext) * invS;
            erfPrev = erfNext; gPrev = gNext; ugPrev = ugNext;
        }
    }

    /// <summary>Fisher information (upper triangle, 15 entries) and gradient (5) at the lanes' parameters; optionally L and LLR.</summary>
    private struct Sums
    {
        public Vector<float> Fxx, Fxy, FxN, Fxb, Fxs, Fyy, FyN, Fyb, Fys, FNN, FNb, FNs, Fbb, Fbs, Fss;
        public Vector<float> Gx, Gy, GN, Gb, Gs;
    }

    /// <remarks>sCMOS (<paramref name="scmos"/>): w.Data holds d + gamma and the model is mu + gamma, per pixel (Huang et al. 2013,
    /// DESIGN.md); the derivatives of mu are unchanged. Without, not one operation differs from the pure Poisson fit.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Evaluate(FitScratch w, Vector<float> x, Vector<float> y, Vector<float> nPh, Vector<float> b, Vector<float> s,
        bool wantLikelihood, bool scmos, out Sums sums, out Vector<float> logL, out Vector<float> llr)
    {
        int n = w.N;
        Axis(n, x, s, w.Ex, w.DxEx, w.DsEx);
        Axis(n, y, s, w.Ey, w.DyEy, w.DsEy);
        sums = default;
        logL = Vector<float>.Zero; llr = Vector<float>.Zero;
        var data = w.Data;
        for (int j = 0; j < n; j++)
        {
            var ey = w.Ey[j];
            var nEy = nPh * ey;
            var nDyEy = nPh * w.DyEy[j];
            var dsEy = w.DsEy[j];
            for (int i = 0; i < n; i++)
            {
                var ex = w.Ex[i];
                var e = ex * ey;
                var mu = b + nPh * e;
                if (scmos) mu += w.Gamma[j * n + i];
                var dX = nEy * w.DxEx[i];
                var dY = nDyEy * ex;
                var dS = nPh * (w.DsEx[i] * ey + ex * dsEy);
                var d = data[j * n + i];
                var inv = Vector<float>.One / mu;
                var r = d * inv - Vector<float>.One;
                sums.Gx += r * dX; sums.Gy += r * dY; sums.GN += r * e; sums.Gb += r; sums.Gs += r * dS;
                var wX = dX * inv; var wY = dY * inv; var wN = e * inv; var wS = dS * inv;
                sums.Fxx += wX * dX; sums.Fxy += wX * dY; sums.FxN += wX * e; sums.Fxb += wX; sums.Fxs += wX * dS;
                sums.Fyy += wY * dY; sums.FyN += wY * e; sums.Fyb += wY; sums.Fys += wY * dS;
                sums.FNN += wN * e; sums.FNb += wN; sums.FNs += wN * dS;
                sums.Fbb += inv; sums.Fbs += wS;
                sums.Fss += wS * dS;
                if (wantLikelihood)
                {
                    var lnMu = Vector.Log(mu);
                    logL += d * lnMu - mu;
                    // d ln(d/mu) is 0 where d <= 0 (DESIGN.md); max() keeps Log's argument positive in the masked lanes.
                    var pos = Vector.GreaterThan(d, Vector<float>.Zero);
                    var dLn = d * (Vector.Log(Vector.Max(d, new Vector<float>(1e-30f))) - lnMu);
                    llr += mu - d + Vector.ConditionalSelect(pos, dLn, Vector<float>.Zero);
                }
            }
        }
        llr *= new Vector<float>(2f);
    }

    /// <summary>
    /// In-place Cholesky of the symmetric 5x5 F (upper triangle given, row-major a[p*5+q], q &gt;= p) into L (lower, a[p*5+q], q &lt;= p).
    /// Returns the lanes whose pivots were all positive.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<int> Cholesky(Span<Vector<float>> a)
    {
        var ok = new Vector<int>(-1);
        var tiny = new Vector<float>(1e-30f);
        for (int p = 0; p < 5; p++)
        {
            var diag = a[p * 5 + p];
            for (int k = 0; k < p; k++) diag -= a[p * 5 + k] * a[p * 5 + k];
            ok &= Vector.GreaterThan(diag, tiny);
            var l = Vector.SquareRoot(Vector.Max(diag, tiny));
            a[p * 5 + p] = l;
            var invL = Vector<float>.One / l;
            for (int q = p + 1; q < 5; q++)
            {
                var v = a[p * 5 + q]; // F[p][q] from the upper triangle
                for (int k = 0; k < p; k++) v -= a[q * 5 + k] * a[p * 5 + k];
                a[q * 5 + p] = v * invL;
            }
        }
        return ok;
    }

    private static void Fill(Span<Vector<float>> a, in Sums s, bool fixedSigma)
    {
        a[0] = s.Fxx; a[1] = s.Fxy; a[2] = s.FxN; a[3] = s.Fxb; a[4] = s.Fxs;
        a[6] = s.Fyy; a[7] = s.FyN; a[8] = s.Fyb; a[9] = s.Fys;
        a[12] = s.FNN; a[13] = s.FNb; a[14] = s.FNs;
        a[18] = s.Fbb; a[19] = s.Fbs;
        a[24] = s.Fss;
        if (fixedSigma) { a[4] = a[9] = a[14] = a[19] = Vector<float>.Zero; a[24] = Vector<float>.One; }
    }

    private static void FitGroup(RoiBatch batch, int first, in FitOptions o, Span<FitResult> results, FitScratch w)
    {
        // Other PSF models live in Fit/Models, one file each.
        if (o.ZCalibration is not null || o.FreeWidths) { Models.AstigmaticGaussian.FitGroup(batch, first, o, results, w); return; }
        int n = batch.RoiSize, np = n * n, lanes = Lanes;
        int valid = Math.Min(lanes, batch.Count - first);
        var pix = batch.Pixels;
        bool scmos = batch.HasReadNoise;
        // Transpose to structure of arrays; lanes past the end repeat the last molecule (results discarded).
        Span<float> lane = stackalloc float[lanes];
        for (int p = 0; p < np; p++)
        {
            for (int l = 0; l < lanes; l++) lane[l] = pix[(first + Math.Min(l, valid - 1)) * np + p];
            w.Data[p] = new Vector<float>(lane);
        }
        if (scmos)
            for (int p = 0; p < np; p++)
            {
                for (int l = 0; l < lanes; l++) lane[l] = batch.ReadNoise[(first + Math.Min(l, valid - 1)) * np + p];
                w.Gamma[p] = new Vector<float>(lane);
            }

        // Start values: border mean, photons above it, centroid of the excess.
        var b = Vector<float>.Zero;
        int borderCount = 4 * (n - 1);
        for (int i = 0; i < n; i++)
        {
            b += w.Data[i] + w.Data[(n - 1) * n + i];
            if (i > 0 && i < n - 1) b += w.Data[i * n] + w.Data[i * n + n - 1];
        }
        b *= new Vector<float>(1f / borderCount);
        var minB = new Vector<float>(0.01f);
        b = Vector.Max(b, minB);
        Vector<float> sum = Vector<float>.Zero, sx = Vector<float>.Zero, sy = Vector<float>.Zero;
        for (int j = 0; j < n; j++)
        {
            var cy = new Vector<float>(j + 0.5f);
            for (int i = 0; i < n; i++)
            {
                var ex = Vector.Max(w.Data[j * n + i] - b, Vector<float>.Zero);
                sum += ex; sx += ex * new Vector<float>(i + 0.5f); sy += ex * cy;
            }
        }
        var centre = new Vector<float>(n * 0.5f);
        var hasExcess = Vector.GreaterThan(sum, Vector<float>.Zero);
        var safeSum = Vector.Max(sum, new Vector<float>(1e-30f));
        var x = Vector.ConditionalSelect(hasExcess, sx / safeSum, centre);
        var y = Vector.ConditionalSelect(hasExcess, sy / safeSum, centre);
        var nPh = Vector.Max(sum, Vector<float>.One);
        var s0 = new Vector<float>(o.PsfSigmaPx);
        var s = s0;
        // sCMOS: the start values above come from the data as measured; the likelihood sees d + gamma (DESIGN.md).
        if (scmos) for (int p = 0; p < np; p++) w.Data[p] += w.Gamma[p];

        var sMin = s0 * new Vector<float>(0.5f);
        var sMax = s0 * new Vector<float>(3f);
        var roiMax = new Vector<float>(n);
        var one = Vector<float>.One;
        var half = new Vector<float>(0.5f);
        var tol = new Vector<float>(o.Tolerance);
        var active = new Vector<int>(-1);
        var failed = Vector<int>.Zero;
        var converged = Vector<int>.Zero;
        var iterations = Vector<int>.Zero;
        Span<Vector<float>> a = stackalloc Vector<float>[25];
        Span<Vector<float>> rhs = stackalloc Vector<float>[5];

        for (int it = 0; it < o.MaxIterations; it++)
        {
            Evaluate(w, x, y, nPh, b, s, false, scmos, out var sums, out _, out _);
            Fill(a, sums, o.FixedSigma);
            var ok = Cholesky(a);
            rhs[0] = sums.Gx; rhs[1] = sums.Gy; rhs[2] = sums.GN; rhs[3] = sums.Gb; rhs[4] = o.FixedSigma ? Vector<float>.Zero : sums.Gs;
            Solve(a, rhs);
            // Clamp the step, then project onto the constraints.
            var dx = Vector.Min(Vector.Max(rhs[0], -one), one);
            var dy = Vector.Min(Vector.Max(rhs[1], -one), one);
            var dsMax = s * new Vector<float>(0.25f);
            var ds = Vector.Min(Vector.Max(rhs[4], -dsMax), dsMax);
            var xN = Vector.Min(Vector.Max(x + dx, Vector<float>.Zero), roiMax);
            var yN = Vector.Min(Vector.Max(y + dy, Vector<float>.Zero), roiMax);
            var nN = nPh + rhs[2];
            nN = Vector.ConditionalSelect(Vector.GreaterThan(nN, Vector<float>.Zero), nN, nPh * half);
            var bN = b + rhs[3];
            bN = Vector.ConditionalSelect(Vector.GreaterThan(bN, Vector<float>.Zero), bN, b * half);
            var sN = Vector.Min(Vector.Max(s + ds, sMin), sMax);

            var finite = Vector.Equals(xN, xN) & Vector.Equals(yN, yN) & Vector.Equals(nN, nN) & Vector.Equals(bN, bN) & Vector.Equals(sN, sN)
                         & Vector.LessThan(Vector.Abs(nN), new Vector<float>(float.MaxValue)) & Vector.LessThan(Vector.Abs(bN), new Vector<float>(float.MaxValue));
            var bad = active & ~(ok & finite);
            failed |= bad;
            var step = active & ~bad;
            // Relative step of each parameter, against max(|value|, 1).
            var small = Small(xN - x, xN, tol) & Small(yN - y, yN, tol) & Small(nN - nPh, nN, tol) & Small(bN - b, bN, tol) & Small(sN - s, sN, tol);
            x = Vector.ConditionalSelect(step, xN, x);
            y = Vector.ConditionalSelect(step, yN, y);
            nPh = Vector.ConditionalSelect(step, nN, nPh);
            b = Vector.ConditionalSelect(step, bN, b);
            s = Vector.ConditionalSelect(step, sN, s);
            iterations -= step; // true lanes are -1
            converged = (converged & ~step) | (step & small);
            active = step;
            if (o.UseTolerance) active &= ~small;
            if (Vector.EqualsAll(active, Vector<int>.Zero)) break;
        }

        // Final evaluation at the estimate: CRLB from F^-1, log-likelihood and LLR.
        Evaluate(w, x, y, nPh, b, s, true, scmos, out var fin, out var logL, out var llr);
        Fill(a, fin, o.FixedSigma);
        var okF = Cholesky(a);
        Span<Vector<float>> crlb = stackalloc Vector<float>[5];
        InverseDiagonal(a, crlb);
        failed |= ~okF;

        for (int l = 0; l < valid; l++)
        {
            ref var r = ref results[first + l];
            r.X = x[l]; r.Y = y[l]; r.Photons = nPh[l]; r.Background = b[l]; r.Sigma = s[l];
            r.CrlbX = MathF.Sqrt(crlb[0][l]); r.CrlbY = MathF.Sqrt(crlb[1][l]); r.CrlbPhotons = MathF.Sqrt(crlb[2][l]);
            r.CrlbBackground = MathF.Sqrt(crlb[3][l]); r.CrlbSigma = o.FixedSigma ? 0f : MathF.Sqrt(crlb[4][l]);
            r.LogLikelihood = logL[l]; r.Llr = llr[l];
            r.Iterations = iterations[l];
            bool finiteOut = float.IsFinite(r.CrlbX) && float.IsFinite(r.CrlbY) && float.IsFinite(r.LogLikelihood);
            // Kept near the detected maximum: within r - 1/2 px of its pixel centre, i.e. [1, n - 1] + its shift from the
            // centre (a ROI shifted inside the frame, where the side on the frame's edge keeps down to 0 or up to n).
            int pk = batch.Peak[first + l], shY = pk / n - n / 2, shX = pk - (pk / n) * n - n / 2;
            if (failed[l] != 0 || !finiteOut) r.Status = FitStatus.Failed;
            else if (r.X < 1 + shX || r.X > n - 1 + shX || r.Y < 1 + shY || r.Y > n - 1 + shY) r.Status = FitStatus.LeftRoi;
            else r.Status = converged[l] != 0 ? FitStatus.Converged : FitStatus.MaxIterations;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<int> Small(Vector<float> delta, Vector<float> value, Vector<float> tol)
        => Vector.LessThanOrEqual(Vector.Abs(delta), tol * Vector.Max(Vector.Abs(value), Vector<float>.One));

    /// <summary>Solves L L^T d = g in place (L from <see cref="Cholesky"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Solve(ReadOnlySpan<Vector<float>> l, Span<Vector<float>> g)
    {
        for (int p = 0; p < 5; p++)
        {
            var v = g[p];
            for (int k = 0; k < p; k++) v -= l[p * 5 + k] * g[k];
            g[p] = v / l[p * 5 + p];
        }
        for (int p = 4; p >= 0; p--)
        {
            var v = g[p];
            for (int k = p + 1; k < 5; k++) v -= l[k * 5 + p] * g[k];
            g[p] = v / l[p * 5 + p];
        }
    }

    /// <summary>diag(F^-1) = column sums of squares of L^-1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InverseDiagonal(ReadOnlySpan<Vector<float>> l, Span<Vector<float>> diag)
    {
        Span<Vector<float>> inv = stackalloc Vector<float>[25];
        // Forward substitution for each unit vector: inv = L^-1 (lower triangular).
        for (int c = 0; c < 5; c++)
        {
            for (int p = 0; p < 5; p++)
            {
                if (p < c) { inv[p * 5 + c] = Vector<float>.Zero; continue; }
                var v = p == c ? Vector<float>.One : Vector<float>.Zero;
                for (int k = c; k < p; k++) v -= l[p * 5 + k] * inv[k * 5 + c];
                inv[p * 5 + c] = v / l[p * 5 + p];
            }
        }
        for (int c = 0; c < 5; c++)
        {
            var acc = Vector<float>.Zero;
            for (int p = c; p < 5; p++) acc += inv[p * 5 + c] * inv[p * 5 + c];
            diag[c] = acc;
        }
    }

    /// <summary>
    /// The model at given parameters (ROI coordinates), through the same code the fit uses: expected photons per pixel
    /// (row-major n x n) and, if asked, d mu / d(x, y, N, b, s) as five n x n planes. For tests, simulators and the CRLB.
    /// </summary>
    public static void Model(int n, float x, float y, float photons, float background, float sigma, Span<float> mu, Span<float> derivatives = default)
        => Model(new FitScratch(n), x, y, photons, background, sigma, mu, derivatives);

    /// <summary><see cref="Model(int, float, float, float, float, float, Span{float}, Span{float})"/> with caller-owned scratch (no allocation).</summary>
    internal static void Model(FitScratch w, float x, float y, float photons, float background, float sigma, Span<float> mu, Span<float> derivatives = default)
    {
        int n = w.N;
        Axis(n, new Vector<float>(x), new Vector<float>(sigma), w.Ex, w.DxEx, w.DsEx);
        Axis(n, new Vector<float>(y), new Vector<float>(sigma), w.Ey, w.DyEy, w.DsEy);
        int np = n * n;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
            {
                float ex = w.Ex[i][0], ey = w.Ey[j][0], e = ex * ey;
                mu[j * n + i] = background + photons * e;
                if (derivatives.IsEmpty) continue;
                derivatives[j * n + i] = photons * ey * w.DxEx[i][0];
                derivatives[np + j * n + i] = photons * ex * w.DyEy[j][0];
                derivatives[2 * np + j * n + i] = e;
                derivatives[3 * np + j * n + i] = 1f;
                derivatives[4 * np + j * n + i] = photons * (w.DsEx[i][0] * ey + ex * w.DsEy[j][0]);
            }
    }

    /// <summary>
    /// Square roots of the Cramer-Rao lower bound for (x, y, photons, background, sigma) at the given parameters:
    /// the diagonal of the inverse Poisson Fisher information, the same code the fit reports with. With
    /// <paramref name="readNoise"/> (n x n, photons^2) the sCMOS Fisher information (mu + gamma in the denominator).
    /// </summary>
    public static void Crlb(int n, float x, float y, float photons, float background, float sigma, bool fixedSigma, Span<float> sqrtCrlb,
                            ReadOnlySpan<float> readNoise = default)
    {
        var w = new FitScratch(n);
        // The Fisher information does not depend on the data; Evaluate needs some, so give it the expectation.
        Span<float> mu = stackalloc float[n * n];
        Model(n, x, y, photons, background, sigma, mu);
        bool scmos = !readNoise.IsEmpty;
        if (scmos && readNoise.Length != n * n) throw new ArgumentException($"read noise needs {n * n} pixels, got {readNoise.Length}", nameof(readNoise));
        for (int p = 0; p < n * n; p++)
        {
            w.Data[p] = new Vector<float>(mu[p]);
            if (scmos) { w.Gamma[p] = new Vector<float>(readNoise[p]); w.Data[p] += w.Gamma[p]; }
        }
        Evaluate(w, new Vector<float>(x), new Vector<float>(y), new Vector<float>(photons), new Vector<float>(background), new Vector<float>(sigma),
            false, scmos, out var sums, out _, out _);
        Span<Vector<float>> a = stackalloc Vector<float>[25];
        Span<Vector<float>> diag = stackalloc Vector<float>[5];
        Fill(a, sums, fixedSigma);
        Cholesky(a);
        InverseDiagonal(a, diag);
        for (int p = 0; p < 5; p++) sqrtCrlb[p] = MathF.Sqrt(diag[p][0]);
        if (fixedSigma) sqrtCrlb[4] = 0f;
    }
}
