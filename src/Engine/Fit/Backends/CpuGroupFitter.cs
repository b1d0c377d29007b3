using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MaLiang.Engine.Fit.MultiEmitter;

namespace MaLiang.Engine.Fit.Backends;

/// <summary>
/// The joint multi-emitter fit (DESIGN.md "Crowded frames") on the CPU, SIMD across groups: jobs sorted by emitter count
/// are fitted together, one per <see cref="Vector{Double}"/> lane (4 with AVX2, 8 with AVX-512), boxes padded to the
/// largest in the bundle and masked per lane. The model per pixel: mu = b + f + sum_k N_k Ex_k(col) Ey_k(row), with f the
/// fixed model of the emitters outside the group and Ex, Ey the pixel-integrated Gaussian of
/// <see cref="CpuFitBackend.Axis"/> (the one PSF implementation) at the fixed PSF sigma; an emitter enters a pixel's sums
/// only where its PSF is at least 1e-7 of the pixel along both axes (zeroed here, skipped in the kernel: the same sums).
/// Levenberg-Marquardt on the Fisher information, per lane: (F + lambda diag F) step = g by Cholesky, positions clamped to
/// the box and |dx|, |dy| &lt;= 1 px per step, photons and background halve instead of crossing 0; lambda / 10 after a
/// step that does not lower L, x 10 and retry (12 tries) after one that does; converged when every step is below the
/// tolerance or L rises by less than 1e-4. The CRLB is the diagonal of the inverse joint Fisher information at the end.
/// Kernels/group_fit.cl is this file's operation-for-operation port (one thread per job): change both together.
/// Double precision: a group has up to 3 x 12 + 1 unknowns. One instance per thread; no allocation once warmed up.
/// </summary>
public sealed class CpuGroupFitter : IGroupFitter
{
    private const int P = GroupFit.MaxParameters;
    private const float Tiny = 1e-7f;
    private const int MaxTries = 12;
    private static readonly int L = Vector<double>.Count;

    public float SigmaPx { get; }
    public int MaxIterations { get; }
    public float Tolerance { get; }

    public CpuGroupFitter(float sigmaPx, int maxIterations, float tolerance)
    {
        if (!(sigmaPx > 0)) throw new ArgumentOutOfRangeException(nameof(sigmaPx));
        SigmaPx = sigmaPx; MaxIterations = maxIterations; Tolerance = tolerance;
    }

    private int[] _order = [];
    private long[] _keys = [];
    // A bundle's boxes, lanes interleaved: element (pixel, lane) at pixel * L + lane.
    private Vector<double>[] _data = [], _fixed = [], _gamma = [];
    private Vector<double>[] _ex = [], _dex = [], _ey = [], _dey = [];
    private Vector<long>[] _colIn = [], _rowIn = [];
    private Vector<float>[] _ve = [], _vdc = [], _vds = [];
    private Vector<double>[] _jacs = [], _w = [], _rr = [];
    private readonly Vector<double>[] _gV = new Vector<double>[P], _fV = new Vector<double>[P * P], _jac = new Vector<double>[P], _n = new Vector<double>[GroupFit.MaxEmitters];
    // Per lane.
    private readonly double[] _theta = new double[L * P], _trial = new double[L * P], _g = new double[L * P], _f = new double[L * P * P];
    private readonly double[] _a = new double[P * P], _step = new double[P], _lambda = new double[L], _logL = new double[L];
    private readonly double[] _logLV = new double[L], _llrV = new double[L], _dataLogTerm = new double[L];
    private readonly int[] _it = new int[L], _tries = new int[L], _bw = new int[L], _bh = new int[L], _k = new int[L];
    private readonly bool[] _bad = new bool[L], _active = new bool[L];
    private readonly GroupFitStatus[] _status = new GroupFitStatus[L];

    public void FitAll(GroupFitJobs jobs)
    {
        int n = jobs.Count;
        if (n == 0) return;
        if (_order.Length < n) { _order = new int[Math.Max(n, 2 * _order.Length)]; _keys = new long[_order.Length]; }
        int bundles = Bundles(jobs, _order, _keys, ref _bundleStart);
        for (int b = 0; b < bundles; b++) FitBundle(jobs, _order, _bundleStart[b], _bundleStart[b + 1]);
    }
    private int[] _bundleStart = [];

    /// <summary>Sorts the jobs into bundles of similar emitter counts and boxes (by k, height, width), one job per lane: <paramref name="order"/> holds the job indices, bundle b is order[start[b] .. start[b + 1]).</summary>
    internal static int Bundles(GroupFitJobs jobs, int[] order, long[] keys, ref int[] start)
    {
        int n = jobs.Count;
        for (int j = 0; j < n; j++)
        {
            order[j] = j;
            keys[j] = ((long)jobs.Emitters[j] << 40) | ((long)jobs.Height[j] << 20) | (long)jobs.Width[j];
        }
        Array.Sort(keys, order, 0, n);
        if (start.Length < n + 1) start = new int[Math.Max(n + 1, 2 * start.Length)];
        int b = 0;
        for (int i = 0; i < n; i += L) start[b++] = i;
        start[b] = n;
        return b;
    }

    /// <summary>Fits the bundle order[from .. to) (at most one job per lane).</summary>
    internal void FitBundle(GroupFitJobs jobs, int[] order, int from, int to) => FitBundle(jobs, order.AsSpan(from, to - from));

    /// <summary>
    /// One job per lane. Lanes with fewer emitters than the bundle's most carry the missing ones with zero photons and
    /// position: they add exact zeros to the model, and a lane's gradient and Fisher block are the first 3k + 1 entries of
    /// the bundle's, so every lane gets what it would alone.
    /// </summary>
    private void FitBundle(GroupFitJobs jobs, ReadOnlySpan<int> lanes)
    {
        int m = lanes.Length, k = 0, bwMax = 0, bhMax = 0;
        for (int l = 0; l < L; l++)
        {
            _bw[l] = l < m ? jobs.Width[lanes[l]] : 0; _bh[l] = l < m ? jobs.Height[lanes[l]] : 0;
            _k[l] = l < m ? jobs.Emitters[lanes[l]] : 0;
            bwMax = Math.Max(bwMax, _bw[l]); bhMax = Math.Max(bhMax, _bh[l]); k = Math.Max(k, _k[l]);
        }
        int pk = 3 * k + 1;
        Ensure(k, bwMax, bhMax);
        bool scmos = jobs.HasGamma;
        // Pack the boxes lane-interleaved (zeros outside a lane's box; those pixels are masked).
        var d = MemoryMarshal.Cast<Vector<double>, double>(_data.AsSpan(0, bwMax * bhMax));
        var f = MemoryMarshal.Cast<Vector<double>, double>(_fixed.AsSpan(0, bwMax * bhMax));
        var gm = MemoryMarshal.Cast<Vector<double>, double>(_gamma.AsSpan(0, bwMax * bhMax));
        d.Clear(); f.Clear(); if (scmos) gm.Clear();
        for (int l = 0; l < m; l++)
        {
            int job = lanes[l], bw = _bw[l], off = jobs.PixelOffset[job];
            for (int r = 0; r < _bh[l]; r++)
                for (int c = 0; c < bw; c++)
                {
                    int q = (r * bwMax + c) * L + l, s = off + r * bw + c;
                    d[q] = jobs.Data[s]; f[q] = jobs.Fixed[s];
                    if (scmos) gm[q] = jobs.Gamma[s];
                }
            _theta.AsSpan(l * P, pk).Clear();
            jobs.Theta.AsSpan(job * P, 3 * _k[l] + 1).CopyTo(_theta.AsSpan(l * P));
        }
        for (int l = m; l < L; l++) _theta.AsSpan(l * P, pk).Clear();
        Span<double> bwL = stackalloc double[L], bhL = stackalloc double[L];
        for (int l = 0; l < L; l++) { bwL[l] = _bw[l]; bhL[l] = _bh[l]; }
        var bwV = new Vector<double>(bwL); var bhV = new Vector<double>(bhL);
        for (int c = 0; c < bwMax; c++) _colIn[c] = Vector.LessThan(new Vector<double>(c), bwV);
        for (int r = 0; r < bhMax; r++) _rowIn[r] = Vector.LessThan(new Vector<double>(r), bhV);

        DataLogTerm(m, bwMax, bhMax, scmos);
        // Start.
        Evaluate(_theta, k, bwMax, bhMax, scmos);
        for (int l = 0; l < L; l++)
        {
            _active[l] = l < m && !_bad[l];
            _status[l] = GroupFitStatus.Failed;
            _it[l] = 0; _tries[l] = 0; _lambda[l] = 1e-4; _logL[l] = _logLV[l];
            if (_active[l]) Take(l, 3 * _k[l] + 1, pk);
            if (_active[l] && MaxIterations <= 0) { _active[l] = false; _status[l] = GroupFitStatus.MaxIterations; }
        }
        bool any = AnyActive();
        while (any)
        {
            for (int l = 0; l < L; l++)
            {
                _theta.AsSpan(l * P, pk).CopyTo(_trial.AsSpan(l * P, pk));
                if (!_active[l]) continue;
                int p = 3 * _k[l] + 1;
                var tr = _trial.AsSpan(l * P, p);
                // (F + lambda diag F) step = g, then the projection.
                var fl = _f.AsSpan(l * P * P, p * p);
                double lam = _lambda[l];
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++) _a[i * p + j] = fl[i * p + j] * (i == j ? 1 + lam : 1);
                if (!Cholesky(_a, p)) { _active[l] = false; _status[l] = GroupFitStatus.Failed; continue; }
                SolveFactored(_a, p, _g.AsSpan(l * P, p), _step);
                Project(tr, _step, _k[l], _bw[l], _bh[l]);
            }
            Evaluate(_trial, k, bwMax, bhMax, scmos);
            for (int l = 0; l < L; l++)
            {
                if (!_active[l]) continue;
                double logL = _logL[l], logL1 = _logLV[l];
                int p = 3 * _k[l] + 1;
                if (!_bad[l] && logL1 >= logL - 1e-9 * Math.Abs(logL))
                {
                    var th = _theta.AsSpan(l * P, p); var tr = _trial.AsSpan(l * P, p);
                    bool small = true;
                    for (int i = 0; i < p; i++) small &= Math.Abs(tr[i] - th[i]) <= Tolerance * Math.Max(Math.Abs(tr[i]), 1.0);
                    tr.CopyTo(th);
                    Take(l, p, pk);
                    // Converged when every step is small, or the likelihood no longer moves (a ridge between two close
                    // emitters creeps in small steps; model selection only needs L to 1e-3).
                    small |= logL1 - logL < 1e-4;
                    _logL[l] = logL1;
                    _lambda[l] = Math.Max(_lambda[l] * 0.1, 1e-7);
                    _tries[l] = 0;
                    if (small) { _active[l] = false; _status[l] = GroupFitStatus.Converged; continue; }
                    if (++_it[l] >= MaxIterations) { _active[l] = false; _status[l] = GroupFitStatus.MaxIterations; }
                }
                else
                {
                    _lambda[l] *= 10;
                    // No step raises L: at the maximum (to double precision).
                    if (++_tries[l] >= MaxTries) { _active[l] = false; _status[l] = GroupFitStatus.Converged; }
                }
            }
            any = AnyActive();
        }
        // The likelihood, goodness of fit and Fisher information at the estimates; the CRLB from the last.
        Evaluate(_theta, k, bwMax, bhMax, scmos);
        for (int l = 0; l < m; l++)
        {
            int job = lanes[l], p = 3 * _k[l] + 1;
            _theta.AsSpan(l * P, p).CopyTo(jobs.Theta.AsSpan(job * P, p));
            jobs.LogLikelihood[job] = _logLV[l]; jobs.Llr[job] = _llrV[l];
            jobs.Iterations[job] = Math.Min(_it[l] + 1, Math.Max(MaxIterations, 0));
            var status = _status[l];
            if (status != GroupFitStatus.Failed)
            {
                Take(l, p, pk);
                if (!SqrtCrlbOf(_f.AsSpan(l * P * P, p * p), p, jobs.SqrtCrlb.AsSpan(job * P, p))) status = GroupFitStatus.NoCrlb;
            }
            jobs.Status[job] = status;
        }
    }

    private bool AnyActive()
    {
        for (int l = 0; l < L; l++) if (_active[l]) return true;
        return false;
    }

    /// <summary>Copies lane <paramref name="l"/>'s gradient and Fisher information (upper triangle, mirrored) from the last
    /// <see cref="Evaluate"/>.</summary>
    private void Take(int l, int p, int stride)
    {
        var gv = MemoryMarshal.Cast<Vector<double>, double>(_gV.AsSpan(0, stride));
        var fv = MemoryMarshal.Cast<Vector<double>, double>(_fV.AsSpan(0, stride * stride));
        var g = _g.AsSpan(l * P, p); var f = _f.AsSpan(l * P * P, p * p);
        for (int i = 0; i < p; i++)
        {
            g[i] = gv[i * L + l];
            for (int j = i; j < p; j++) f[i * p + j] = f[j * p + i] = fv[(i * stride + j) * L + l];
        }
    }

    private void Ensure(int k, int bw, int bh)
    {
        int px = bw * bh, mx = Math.Max(bw, bh);
        if (_data.Length < px) { int c = Math.Max(px, 2 * _data.Length); _data = new Vector<double>[c]; _fixed = new Vector<double>[c]; _gamma = new Vector<double>[c]; }
        if (_ex.Length < GroupFit.MaxEmitters * bw) { int c = GroupFit.MaxEmitters * Math.Max(bw, 32); _ex = new Vector<double>[c]; _dex = new Vector<double>[c]; }
        if (_ey.Length < GroupFit.MaxEmitters * bh) { int c = GroupFit.MaxEmitters * Math.Max(bh, 32); _ey = new Vector<double>[c]; _dey = new Vector<double>[c]; }
        if (_ve.Length < mx) { int c = Math.Max(mx, 32); _ve = new Vector<float>[c]; _vdc = new Vector<float>[c]; _vds = new Vector<float>[c]; }
        if (_colIn.Length < mx) { int c = Math.Max(mx, 32); _colIn = new Vector<long>[c]; _rowIn = new Vector<long>[c]; }
    }

    /// <summary>The per-axis integrated PSF of emitter e of every lane (float, as the single fit and the kernels), widened
    /// to double; zero (with its derivative) where below 1e-7, so the emitter drops out of that column's or row's sums.</summary>
    private void Axes(double[] theta, int k, int bw, int bh)
    {
        Span<float> cx = stackalloc float[Vector<float>.Count], cy = stackalloc float[Vector<float>.Count];
        Span<long> has = stackalloc long[L];
        cx.Clear(); cy.Clear();
        var s = new Vector<float>(SigmaPx);
        for (int e = 0; e < k; e++)
        {
            for (int l = 0; l < L; l++)
            {
                cx[l] = (float)theta[l * P + 1 + 3 * e]; cy[l] = (float)theta[l * P + 2 + 3 * e];
                has[l] = e < _k[l] ? -1L : 0L;
            }
            // Zero also outside each lane's own box and for a lane's missing emitters: those pixels and parameters add
            // nothing to that lane, and then every emitter's light covers a small rectangle of the bundle's box.
            var present = new Vector<long>(has);
            AxisTable(bw, new Vector<float>(cx), s, _colIn, present, _ex.AsSpan(e * bw, bw), _dex.AsSpan(e * bw, bw), out int c0, out int c1);
            AxisTable(bh, new Vector<float>(cy), s, _rowIn, present, _ey.AsSpan(e * bh, bh), _dey.AsSpan(e * bh, bh), out int r0, out int r1);
            if (c0 >= c1 || r0 >= r1) { c0 = c1 = r0 = r1 = 0; }
            _rect[4 * e] = c0; _rect[4 * e + 1] = c1; _rect[4 * e + 2] = r0; _rect[4 * e + 3] = r1;
        }
    }
    /// <summary>One axis of one emitter in every lane: the integrated PSF and its derivative by the centre (float, as the
    /// single fit and the kernels compute them) widened to double, zeroed below 1e-7 and where <paramref name="inBox"/> or
    /// <paramref name="present"/> masks the lane out; [lo, hi) = the pixels where some lane kept a value.</summary>
    private void AxisTable(int n, Vector<float> centre, Vector<float> sigma, Vector<long>[] inBox, Vector<long> present,
                           Span<Vector<double>> e, Span<Vector<double>> de, out int lo, out int hi)
    {
        CpuFitBackend.Axis(n, centre, sigma, _ve, _vdc, _vds);
        var tiny = new Vector<double>(Tiny);
        lo = n; hi = 0;
        for (int i = 0; i < n; i++)
        {
            Vector.Widen(_ve[i], out var ev, out _); Vector.Widen(_vdc[i], out var dv, out _);
            var ok = Vector.GreaterThanOrEqual(ev, tiny) & inBox[i] & present;
            e[i] = Vector.ConditionalSelect(ok, ev, Vector<double>.Zero);
            de[i] = Vector.ConditionalSelect(ok, dv, Vector<double>.Zero);
            if (ok != Vector<long>.Zero) { lo = Math.Min(lo, i); hi = i + 1; }
        }
    }

    /// <summary>Per emitter: the columns [c0, c1) and rows [r0, r1) where some lane's PSF is not zeroed (the rest of the
    /// box adds exact zeros to its sums, so they are skipped: the same sums, in the same order).</summary>
    private readonly int[] _rect = new int[4 * GroupFit.MaxEmitters];

    /// <summary>Gradient, Fisher information (upper triangle, stride p), log-likelihood and LLR of every lane at
    /// <paramref name="theta"/>; <see cref="_bad"/> marks lanes whose model is not positive and finite in their box.</summary>
    private void Evaluate(double[] theta, int k, int bw, int bh, bool scmos)
    {
        int p = 3 * k + 1;
        Axes(theta, k, bw, bh);
        Span<double> lane = stackalloc double[L];
        for (int l = 0; l < L; l++) lane[l] = theta[l * P];
        var b = new Vector<double>(lane);
        for (int e = 0; e < k; e++)
        {
            for (int l = 0; l < L; l++) lane[l] = theta[l * P + 3 + 3 * e];
            _n[e] = new Vector<double>(lane);
        }
        int np = bw * bh;
        if (_jacs.Length < np * p) _jacs = new Vector<double>[Math.Max(np * p, 2 * _jacs.Length)];
        if (_w.Length < np) { _w = new Vector<double>[Math.Max(np, 2 * _w.Length)]; _rr = new Vector<double>[_w.Length]; }
        // Pass 1, per pixel: the model, its derivatives (pixel-major rows of p), the weight 1/mu and the residual d/mu - 1.
        ref var jac0 = ref MemoryMarshal.GetArrayDataReference(_jacs);
        var logL = Vector<double>.Zero; var bad = Vector<long>.Zero;
        var one = Vector<double>.One;
        var inf = new Vector<double>(double.PositiveInfinity);
        for (int r = 0; r < bh; r++)
        {
            var rowIn = _rowIn[r];
            for (int c = 0; c < bw; c++)
            {
                var inBox = rowIn & _colIn[c];
                int px = r * bw + c;
                ref var jac = ref Unsafe.Add(ref jac0, px * p);
                jac = one;
                var mu = b + _fixed[px];
                for (int e = 0; e < k; e++)
                {
                    if (c < _rect[4 * e] || c >= _rect[4 * e + 1] || r < _rect[4 * e + 2] || r >= _rect[4 * e + 3]) continue;
                    var ex = _ex[e * bw + c]; var ey = _ey[e * bh + r]; var n = _n[e];
                    var ee = ex * ey;
                    mu += n * ee;
                    Unsafe.Add(ref jac, 1 + 3 * e) = n * _dex[e * bw + c] * ey;
                    Unsafe.Add(ref jac, 2 + 3 * e) = n * ex * _dey[e * bh + r];
                    Unsafe.Add(ref jac, 3 + 3 * e) = ee;
                }
                var d = _data[px];
                if (scmos) { mu += _gamma[px]; d += _gamma[px]; }
                var okMu = Vector.GreaterThan(mu, Vector<double>.Zero) & Vector.LessThan(mu, inf);
                bad |= inBox & ~okMu;
                mu = Vector.ConditionalSelect(inBox & okMu, mu, one);
                var inv = Vector.ConditionalSelect(inBox, one / mu, Vector<double>.Zero);
                _w[px] = inv;
                _rr[px] = Vector.ConditionalSelect(inBox, d * inv - one, Vector<double>.Zero);
                logL += Vector.ConditionalSelect(inBox, d * Vector.Log(mu) - mu, Vector<double>.Zero);
            }
        }
        // Pass 2: g_i = sum rr J_i and F_ij = sum (J_i / mu) J_j, pixel by pixel in the same order as a running sum per
        // pixel would add them (so the kernel's per-pixel loop gives the same bits), over the rectangle where both can be
        // non-zero (an emitter's parameters are zero outside its rectangle in every lane), up to three columns j (one
        // emitter's) at a time so the sums stay in registers.
        ref var w0 = ref MemoryMarshal.GetArrayDataReference(_w);
        ref var rr0 = ref MemoryMarshal.GetArrayDataReference(_rr);
        for (int i = 0; i < p; i++)
        {
            int ei = i == 0 ? -1 : (i - 1) / 3;
            int ic0 = ei < 0 ? 0 : _rect[4 * ei], ic1 = ei < 0 ? bw : _rect[4 * ei + 1];
            int ir0 = ei < 0 ? 0 : _rect[4 * ei + 2], ir1 = ei < 0 ? bh : _rect[4 * ei + 3];
            var gi = Vector<double>.Zero;
            for (int r = ir0; r < ir1; r++)
                for (int c = ic0; c < ic1; c++) { int px = r * bw + c; gi += Unsafe.Add(ref rr0, px) * Unsafe.Add(ref jac0, px * p + i); }
            _gV[i] = gi;
            if (i == 0)
            {
                var s00 = Vector<double>.Zero;
                for (int px = 0; px < np; px++) s00 += Unsafe.Add(ref w0, px);   // J_0 = 1: (1 / mu) x 1
                _fV[0] = s00;
            }
            // Columns j > i (and j = i), one emitter's block at a time.
            for (int ej = Math.Max(ei, 0); ej < k; ej++)
            {
                int jFrom = Math.Max(i, 1 + 3 * ej), jTo = 1 + 3 * ej + 3;
                if (jFrom >= jTo) continue;
                int c0 = Math.Max(ic0, _rect[4 * ej]), c1 = Math.Min(ic1, _rect[4 * ej + 1]);
                int r0 = Math.Max(ir0, _rect[4 * ej + 2]), r1 = Math.Min(ir1, _rect[4 * ej + 3]);
                Vector<double> s0 = default, s1 = default, s2 = default;
                int nj = jTo - jFrom;
                if (nj == 3)
                    for (int r = r0; r < r1; r++)
                    {
                        ref var row = ref Unsafe.Add(ref jac0, (r * bw + c0) * p);
                        ref var wr = ref Unsafe.Add(ref w0, r * bw + c0);
                        for (int c = c0; c < c1; c++)
                        {
                            var wi = Unsafe.Add(ref row, i) * wr;
                            s0 += wi * Unsafe.Add(ref row, jFrom);
                            s1 += wi * Unsafe.Add(ref row, jFrom + 1);
                            s2 += wi * Unsafe.Add(ref row, jFrom + 2);
                            row = ref Unsafe.Add(ref row, p);
                            wr = ref Unsafe.Add(ref wr, 1);
                        }
                    }
                else
                    for (int r = r0; r < r1; r++)
                        for (int c = c0; c < c1; c++)
                        {
                            int px = r * bw + c;
                            ref var row = ref Unsafe.Add(ref jac0, px * p);
                            var wi = Unsafe.Add(ref row, i) * Unsafe.Add(ref w0, px);
                            s0 += wi * Unsafe.Add(ref row, jFrom);
                            if (nj > 1) s1 += wi * Unsafe.Add(ref row, jFrom + 1);
                        }
                _fV[i * p + jFrom] = s0;
                if (nj > 1) _fV[i * p + jFrom + 1] = s1;
                if (nj > 2) _fV[i * p + jFrom + 2] = s2;
            }
        }
        for (int l = 0; l < L; l++)
        {
            // LLR = 2 sum(mu - d + d ln(d / mu)) = 2 (sum d ln d - sum d - logL): the data's part is the bundle's constant.
            _logLV[l] = logL[l]; _llrV[l] = 2 * (_dataLogTerm[l] - logL[l]);
            _bad[l] = bad[l] != 0 || !double.IsFinite(logL[l]);
        }
    }

    /// <summary>Per lane: sum over its box of d ln d (d &gt; 0) - d, with d the data (+ gamma for sCMOS).</summary>
    private void DataLogTerm(int m, int bw, int bh, bool scmos)
    {
        var d = MemoryMarshal.Cast<Vector<double>, double>(_data.AsSpan(0, bw * bh));
        var gm = MemoryMarshal.Cast<Vector<double>, double>(_gamma.AsSpan(0, bw * bh));
        for (int l = 0; l < L; l++)
        {
            double sum = 0;
            if (l < m)
                for (int r = 0; r < _bh[l]; r++)
                    for (int c = 0; c < _bw[l]; c++)
                    {
                        int q = (r * bw + c) * L + l;
                        double v = scmos ? d[q] + gm[q] : d[q];
                        sum += (v > 0 ? v * Math.Log(v) : 0) - v;
                    }
            _dataLogTerm[l] = sum;
        }
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

    /// <summary>Square roots of the diagonal of the inverse of <paramref name="fisher"/> (p x p, symmetric); false when it is
    /// not positive definite.</summary>
    internal bool SqrtCrlbOf(ReadOnlySpan<double> fisher, int p, Span<double> sqrtCrlb)
    {
        fisher[..(p * p)].CopyTo(_a);
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
}

/// <summary>
/// <see cref="CpuGroupFitter"/> over several threads: a batch's bundles (one job per SIMD lane) are shared out, each
/// thread with its own fitter (scratch). The pipeline sends it the pending fits of a whole chunk of frames at once, so
/// the lanes fill: one frame alone has only a job or two per round in crowded frames (its groups wait on their
/// neighbours, DESIGN.md "Crowded frames").
/// </summary>
public sealed class ParallelCpuGroupFitter : IGroupFitter
{
    private readonly CpuGroupFitter[] _fitters;
    private int[] _order = [], _start = [];
    private long[] _keys = [];

    public ParallelCpuGroupFitter(float sigmaPx, int maxIterations, float tolerance, int threads)
    {
        _fitters = new CpuGroupFitter[Math.Max(1, threads)];
        for (int t = 0; t < _fitters.Length; t++) _fitters[t] = new CpuGroupFitter(sigmaPx, maxIterations, tolerance);
    }

    public void FitAll(GroupFitJobs jobs)
    {
        int n = jobs.Count;
        if (n == 0) return;
        if (_order.Length < n) { _order = new int[Math.Max(n, 2 * _order.Length)]; _keys = new long[_order.Length]; }
        int bundles = CpuGroupFitter.Bundles(jobs, _order, _keys, ref _start);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        try { FitBundles(jobs, bundles); }
        finally { DebugTicks += System.Diagnostics.Stopwatch.GetTimestamp() - t0; }
    }
    public static long DebugTicks;
    private void FitBundles(GroupFitJobs jobs, int bundles)
    {
        int threads = Math.Min(_fitters.Length, bundles);
        if (threads <= 1)
        {
            for (int b = 0; b < bundles; b++) _fitters[0].FitBundle(jobs, _order, _start[b], _start[b + 1]);
            return;
        }
        // Bundles dealt out round-robin: neighbours in the sorted order have similar cost.
        var order = _order; var start = _start;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var f = _fitters[t];
            for (int b = t; b < bundles; b += threads) f.FitBundle(jobs, order, start[b], start[b + 1]);
        });
    }
}
