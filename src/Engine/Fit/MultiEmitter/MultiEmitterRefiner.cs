namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>What the multi-emitter stage needs to know (from <see cref="LocalizerSettings"/>).</summary>
public readonly record struct MultiEmitterOptions(float PsfSigmaPx, int MaxPerGroup, double AddPValue, float MinPhotonSnr, int MaxIterations, float Tolerance,
                                                  double NoiseScale = 1)
{
    public static MultiEmitterOptions From(LocalizerSettings s) =>
        new((float)s.PsfSigmaPx, s.MaxEmittersPerGroup, s.MultiEmitterPValue, (float)Math.Max(s.MinPhotonSnr, 3),
            s.UseTolerance ? Math.Max(s.Iterations, 30) : s.Iterations, (float)s.Tolerance, s.NoiseScale);   // --no-tolerance: exactly the steps asked for
}

/// <summary>
/// The fit stage for crowded frames (DESIGN.md "Crowded frames"), after the single-emitter fits of a frame's ROIs:
/// <list type="number">
/// <item>every kept single fit becomes an emitter, every failed one a seed at its detected maximum;</item>
/// <item>emitters closer than the link distance (2.5 PSF sigmas) form groups (<see cref="EmitterGroups"/>); a group is
///   refitted when it has more than one member or holds a poor fit (goodness of fit above chi-square's 99.9% point, a
///   width significantly above the PSF's, or a seed); isolated good fits keep their single fit untouched, so sparse
///   frames cost one grouping pass;</item>
/// <item>each such group is fitted jointly (<see cref="GroupFit"/>, sigma fixed, one background) in a box around it,
///   with every other emitter's model in the box held fixed (from their current estimates, so groups fitted earlier
///   count with their new values: Gauss-Seidel between groups); members that are insignificant (photons below the SNR) or closer than
///   one sigma to a brighter member are dropped and the group refitted;</item>
/// <item>the residual is searched: at its strongest 3x3 sum away from the members a new emitter is tried, and kept when
///   the likelihood ratio 2 (L_{K+1} - L_K) exceeds chi-square's (1 - p) point with 3 dof (<see cref="ModelSelection"/>);
///   repeated until one is refused or the group holds <see cref="MultiEmitterOptions.MaxPerGroup"/>.</item>
/// </list>
/// One instance per worker thread; buffers are reused, no allocation per frame once warmed up.
/// </summary>
public sealed class MultiEmitterRefiner
{
    private readonly MultiEmitterOptions _o;
    private readonly GroupFit _fit;
    private readonly EmitterGroups _groups = new();
    private readonly float _linkPx, _minSepPx, _addLlr, _poorLlr;
    private readonly int _boxReach;

    // Emitters of the frame (frame pixels), structure of arrays.
    private int _count;
    private float[] _x = [], _y = [];
    private FitResult[] _res = [];
    private bool[] _flag = [], _alive = [], _refitted = [], _inPiece = [];
    private float[] _data = [], _fixed = [], _gamma = [];
    private readonly double[] _theta = new double[GroupFit.MaxParameters], _saved = new double[GroupFit.MaxParameters], _crlb = new double[GroupFit.MaxParameters];
    private readonly int[] _members = new int[GroupFit.MaxEmitters];
    private int[] _region = [];

    /// <summary>Groups fitted in the last frame, by size (index = emitters fitted together, 1..MaxEmitters).</summary>
    public long[] GroupsBySize { get; } = new long[GroupFit.MaxEmitters + 1];
    /// <summary>Emitters added from the residual in the last call.</summary>
    public int Added { get; private set; }

    public MultiEmitterRefiner(MultiEmitterOptions options, int roiSize)
    {
        _o = options;
        _fit = new GroupFit(options.PsfSigmaPx, options.MaxIterations, options.Tolerance);
        float s = options.PsfSigmaPx;
        _linkPx = 2.5f * s;
        // Closer than 0.7 sigma, two fitted emitters are one (measured on the density sweep: 0.5 and 1.0 sigma did no better).
        _minSepPx = 0.7f * s;
        _boxReach = (int)MathF.Ceiling(3 * s);
        // Quasi-likelihood: with data noisier than the camera model by a factor, 2 dL and the LLR grow by it too.
        _addLlr = (float)(options.NoiseScale * ModelSelection.ChiSquareUpper(options.AddPValue, 3));
        _poorLlr = (float)(options.NoiseScale * ModelSelection.PoorFitLlr(roiSize));
        Span<float> unit = stackalloc float[9];
        _fit.Render(unit, 3, 3, 1.5f, 1.5f, 1f);
        float sum = 0;
        foreach (float v in unit) sum += v;
        _centre3x3 = Math.Max(sum, 0.05f);
    }
    /// <summary>The share of a PSF's photons in the 3x3 pixels around its centre pixel.</summary>
    private readonly float _centre3x3;

    /// <summary>
    /// Refines one frame's single fits. <paramref name="fits"/> are in the ROIs' coordinates (ROI i at
    /// <paramref name="left"/>[i], <paramref name="top"/>[i], its detected maximum at <paramref name="peak"/>[i]); the
    /// result (this instance's buffer, valid until the next call) holds one entry per emitter in frame coordinates with
    /// <see cref="FitResult.GroupSize"/> set. <paramref name="gamma"/>: the frame's sCMOS read-noise variance, or empty.
    /// </summary>
    public ReadOnlySpan<FitResult> Refine(ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma, int w, int h, int roiSize,
        ReadOnlySpan<FitResult> fits, ReadOnlySpan<int> left, ReadOnlySpan<int> top, ReadOnlySpan<int> peak)
    {
        Array.Clear(GroupsBySize);
        Added = 0;
        int m = fits.Length;
        if (m == 0) return default;
        Grow(m + 16);
        _count = 0;
        float psf = _o.PsfSigmaPx;
        bool anyFlag = false;
        for (int i = 0; i < m; i++)
        {
            var f = fits[i];
            int k = _count++;
            if (f.Kept)
            {
                f.X += left[i]; f.Y += top[i];
                _flag[k] = f.Llr > _poorLlr || (f.CrlbSigma > 0 && f.Sigma - psf > 3 * f.CrlbSigma);
            }
            else
            {
                // A seed where the single fit failed or left its ROI: the detected maximum, photons above the ROI's border mean.
                int px = left[i] + peak[i] % roiSize, py = top[i] + peak[i] / roiSize;
                f = new FitResult { X = px + 0.5f, Y = py + 0.5f, Photons = SeedPhotons(photons, w, left[i], top[i], roiSize, out float b), Background = b, Status = FitStatus.Failed };
                _flag[k] = true;
            }
            f.GroupSize = 1;
            _res[k] = f; _x[k] = f.X; _y[k] = f.Y; _alive[k] = true; _refitted[k] = false;
            anyFlag |= _flag[k];
        }
        _groups.Build(_x.AsSpan(0, _count), _y.AsSpan(0, _count), _linkPx);
        for (int g = 0; g < _groups.Count && !anyFlag; g++) anyFlag = _groups.Size(g) > 1;
        if (!anyFlag) { GroupsBySize[1] += _count; return _res.AsSpan(0, _count); }

        for (int pass = 0; pass < Passes; pass++)
        {
            if (pass > 0)
            {
                // Gauss-Seidel again: the groups fitted first saw their neighbours' single fits. The groups are found anew
                // (emitters moved, were added or dropped) and every group with a member fitted jointly last pass is refitted.
                Compact(pass);
                _groups.Build(_x.AsSpan(0, _count), _y.AsSpan(0, _count), _linkPx);
            }
            int groups = _groups.Count;
            for (int g = 0; g < groups; g++)
            {
                var all = _groups.Members(g);
                bool refit = pass == 0 && all.Length > 1;
                foreach (int i in all) refit |= _flag[i];
                if (!refit) continue;
                // Split a large group into pieces of at most MaxPerGroup around its brightest members.
                if (_region.Length < all.Length) _region = new int[Math.Max(all.Length, 2 * _region.Length)];
                var left0 = _region.AsSpan(0, all.Length);
                all.CopyTo(left0);
                int remaining = all.Length;
                while (remaining > 0)
                {
                    int take = Math.Min(remaining, Math.Max(1, _o.MaxPerGroup - 1));   // room for one added emitter
                    TakeNearestToBrightest(left0[..remaining], take);
                    var piece = left0.Slice(remaining - take, take);
                    FitGroup(photons, gamma, w, h, piece);
                    remaining -= take;
                }
            }
        }
        Compact(Passes);
        // Groups by size, from the emitters' group sizes (each group of k left k members).
        Span<int> bySize = stackalloc int[GroupFit.MaxEmitters + 1];
        for (int i = 0; i < _count; i++) bySize[Math.Clamp(_res[i].GroupSize, 1, GroupFit.MaxEmitters)]++;
        for (int k = 1; k <= GroupFit.MaxEmitters; k++) GroupsBySize[k] += (bySize[k] + k - 1) / k;
        return _res.AsSpan(0, _count);
    }

    /// <summary>Fitting passes over the groups (measured on the density sweep: a second pass gains, a third little).</summary>
    public const int Passes = 2;

    /// <summary>Survivors to the front of the lists; each is flagged for the next pass when it was fitted in a group.</summary>
    private void Compact(int pass)
    {
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            if (!_alive[i]) continue;
            _res[kept] = _res[i]; _x[kept] = _res[i].X; _y[kept] = _res[i].Y; _alive[kept] = true;
            _flag[kept] = _res[i].GroupSize > 1 || _refitted[i];
            _refitted[kept] = false;
            kept++;
        }
        for (int i = kept; i < _count; i++) _refitted[i] = false;
        _count = kept;
    }

    /// <summary>Moves the brightest member and the take - 1 members nearest to it to the end of <paramref name="span"/>.</summary>
    private void TakeNearestToBrightest(Span<int> span, int take)
    {
        int n = span.Length;
        if (take >= n) return;
        int best = 0;
        for (int i = 1; i < n; i++) if (_res[span[i]].Photons > _res[span[best]].Photons) best = i;
        (span[best], span[n - 1]) = (span[n - 1], span[best]);
        float cx = _x[span[n - 1]], cy = _y[span[n - 1]];
        for (int t = 1; t < take; t++)
        {
            int pick = 0; float bestD = float.MaxValue;
            for (int i = 0; i < n - t; i++)
            {
                float dx = _x[span[i]] - cx, dy = _y[span[i]] - cy, d2 = dx * dx + dy * dy;
                if (d2 < bestD) { bestD = d2; pick = i; }
            }
            (span[pick], span[n - 1 - t]) = (span[n - 1 - t], span[pick]);
        }
    }

    private float SeedPhotons(ReadOnlySpan<float> photons, int w, int left, int top, int n, out float background)
    {
        double border = 0, sum = 0;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                float v = photons[(top + r) * w + left + c];
                sum += v;
                if (r == 0 || c == 0 || r == n - 1 || c == n - 1) border += v;
            }
        background = (float)Math.Max(border / (4 * (n - 1)), 0.01);
        return (float)Math.Max(sum - background * n * n, 10);
    }

    private void FitGroup(ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma, int w, int h, ReadOnlySpan<int> piece)
    {
        int k = piece.Length;
        float psf = _o.PsfSigmaPx;
        // The box: the members' centres plus 3 sigma.
        float xMin = float.MaxValue, xMax = float.MinValue, yMin = float.MaxValue, yMax = float.MinValue;
        foreach (int i in piece) { xMin = Math.Min(xMin, _x[i]); xMax = Math.Max(xMax, _x[i]); yMin = Math.Min(yMin, _y[i]); yMax = Math.Max(yMax, _y[i]); }
        int x0 = Math.Max(0, (int)MathF.Floor(xMin) - _boxReach), x1 = Math.Min(w, (int)MathF.Floor(xMax) + _boxReach + 1);
        int y0 = Math.Max(0, (int)MathF.Floor(yMin) - _boxReach), y1 = Math.Min(h, (int)MathF.Floor(yMax) + _boxReach + 1);
        int bw = x1 - x0, bh = y1 - y0, bp = bw * bh;
        if (_data.Length < bp) { _data = new float[bp]; _fixed = new float[bp]; _gamma = new float[bp]; }
        var data = _data.AsSpan(0, bp); var fixedModel = _fixed.AsSpan(0, bp);
        var gam = gamma.IsEmpty ? default : _gamma.AsSpan(0, bp);
        for (int r = 0; r < bh; r++)
        {
            photons.Slice((y0 + r) * w + x0, bw).CopyTo(data.Slice(r * bw, bw));
            if (!gamma.IsEmpty) gamma.Slice((y0 + r) * w + x0, bw).CopyTo(gam.Slice(r * bw, bw));
        }
        // The others' model in the box, from their current estimates (Gauss-Seidel between groups): every kept emitter
        // outside this group whose PSF (4 sigma) reaches the box. Rendered per box rather than kept as a frame-sized model
        // image, so a sparse frame with a few groups does not clear and fill the whole frame.
        fixedModel.Clear();
        foreach (int i in piece) _inPiece[i] = true;
        float reach = 4 * _o.PsfSigmaPx + 1;
        for (int i = 0; i < _count; i++)
        {
            if (_inPiece[i] || !_alive[i] || !_res[i].Kept) continue;
            float ex = _res[i].X - x0, ey = _res[i].Y - y0;
            if (ex < -reach || ey < -reach || ex > bw + reach || ey > bh + reach) continue;
            _fit.Render(fixedModel, bw, bh, ex, ey, _res[i].Photons);
        }
        foreach (int i in piece) _inPiece[i] = false;

        // Start: the members' estimates, the median of their backgrounds.
        Span<int> members = _members;
        for (int j = 0; j < k; j++) members[j] = piece[j];
        var theta = _theta.AsSpan();
        Span<float> bgs = stackalloc float[k];
        for (int j = 0; j < k; j++) bgs[j] = _res[members[j]].Background;
        bgs.Sort();
        theta[0] = Math.Max(bgs[k / 2], 0.01f);
        // Start photons at most the box's light above the start background (a poor single fit can claim far more).
        double light = 0;
        for (int q = 0; q < bp; q++) light += Math.Max(data[q] - fixedModel[q] - theta[0], 0);
        for (int j = 0; j < k; j++)
        {
            ref readonly var f = ref _res[members[j]];
            theta[1 + 3 * j] = Math.Clamp(f.X - x0, 0, bw); theta[2 + 3 * j] = Math.Clamp(f.Y - y0, 0, bh);
            theta[3 + 3 * j] = Math.Clamp(f.Photons, 1, Math.Max(light, 1));
        }

        bool ok = _fit.Fit(data, fixedModel, gam, bw, bh, k, theta);
        if (!ok)
        {
            // The joint fit failed: the members keep their single fits (seeds go).
            foreach (int i in piece) if (!_res[i].Kept) _alive[i] = false;
            return;
        }
        // Drop members that are insignificant or sit on a brighter one, one at a time, refitting after each.
        while (ok && k > 0)
        {
            int worst = WorstMember(k, theta);
            if (worst < 0) break;
            RemoveAt(members, theta, ref k, worst);
            ok = k == 0 || _fit.Fit(data, fixedModel, gam, bw, bh, k, theta);
        }
        if (!ok || k == 0)
        {
            // The group's members go.
            foreach (int i in piece) { _alive[i] = false; }
            return;
        }
        // Residual search: add emitters while the likelihood ratio says the data need them.
        int added = 0;
        double logL = _fit.LogLikelihood;
        while (k < Math.Min(_o.MaxPerGroup, GroupFit.MaxEmitters))
        {
            if (!ResidualPeak(data, fixedModel, gam, bw, bh, k, theta, out float cx, out float cy, out float excess)) break;
            int p = 3 * k + 1;
            theta[..p].CopyTo(_saved);
            theta[p] = cx; theta[p + 1] = cy; theta[p + 2] = Math.Max(excess, 1);
            // As ThunderSTORM starts model K + 1 from model K: where the residual peak sits beside a member (within
            // 2 sigma), that member was likely fitted between two emitters; split its photons with the new one and move
            // it back by as much as keeps their centroid, so the fit starts near both.
            int near = -1; double nearD2 = 4.0 * _o.PsfSigmaPx * _o.PsfSigmaPx;
            for (int j = 0; j < k; j++)
            {
                double dx = theta[1 + 3 * j] - cx, dy = theta[2 + 3 * j] - cy, d2 = dx * dx + dy * dy;
                if (d2 < nearD2) { nearD2 = d2; near = j; }
            }
            if (near >= 0)
            {
                double nj = theta[3 + 3 * near], nNew = Math.Min(theta[p + 2], 0.5 * nj), rest = nj - nNew, share = nNew / rest;
                theta[p + 2] = nNew; theta[3 + 3 * near] = rest;
                theta[1 + 3 * near] = Math.Clamp(theta[1 + 3 * near] - (cx - theta[1 + 3 * near]) * share, 0, bw);
                theta[2 + 3 * near] = Math.Clamp(theta[2 + 3 * near] - (cy - theta[2 + 3 * near]) * share, 0, bh);
            }
            bool fitOk = _fit.Fit(data, fixedModel, gam, bw, bh, k + 1, theta);
            if (fitOk && 2 * (_fit.LogLikelihood - logL) > _addLlr && WorstMember(k + 1, theta) < 0)
            {
                k++; added++;
                logL = _fit.LogLikelihood;
                members[k - 1] = -1;   // a new emitter, not in the frame's list yet
            }
            else
            {
                _saved.AsSpan(0, p).CopyTo(theta);
                if (!_fit.Fit(data, fixedModel, gam, bw, bh, k, theta)) { foreach (int i in piece) _alive[i] = false; return; }
                break;
            }
        }
        // Every member must be needed, not only the added ones: members that came from detection (several maxima on one
        // emitter, a noise maximum beside it) are tested the same way, faintest first: without it, does the likelihood
        // fall by more than the p-value's chi-square point? If not, it goes.
        if (k > 1) k = PruneByLikelihood(data, fixedModel, gam, bw, bh, members, theta, k, ref logL);
        if (!_fit.Fit(data, fixedModel, gam, bw, bh, k, theta) || !_fit.SqrtCrlb(k, _crlb)) { foreach (int i in piece) _alive[i] = false; return; }

        // Write back: members in place, new emitters appended; the kept ones go back into the model image.
        foreach (int i in piece) _alive[i] = false;
        for (int j = 0; j < k; j++)
        {
            int i = members[j];
            if (i < 0) { Grow(_count + 1); i = _count++; Added++; }
            var f = new FitResult
            {
                X = x0 + (float)theta[1 + 3 * j], Y = y0 + (float)theta[2 + 3 * j], Photons = (float)theta[3 + 3 * j],
                Background = (float)theta[0], Sigma = psf,
                CrlbX = (float)_crlb[1 + 3 * j], CrlbY = (float)_crlb[2 + 3 * j], CrlbPhotons = (float)_crlb[3 + 3 * j],
                CrlbBackground = (float)_crlb[0], CrlbSigma = 0,
                LogLikelihood = (float)_fit.LogLikelihood, Llr = (float)_fit.Llr, Iterations = _fit.Iterations,
                Status = _fit.Converged ? FitStatus.Converged : FitStatus.MaxIterations, GroupSize = k,
            };
            _res[i] = f; _x[i] = f.X; _y[i] = f.Y; _alive[i] = true; _refitted[i] = added > 0;
        }
    }

    private readonly double[] _without = new double[GroupFit.MaxParameters];
    private readonly int[] _byPhotons = new int[GroupFit.MaxEmitters];

    private int PruneByLikelihood(ReadOnlySpan<float> data, ReadOnlySpan<float> fixedModel, ReadOnlySpan<float> gam, int bw, int bh,
                                  Span<int> members, Span<double> theta, int k, ref double logL)
    {
        for (int pass = 0; pass < GroupFit.MaxEmitters && k > 1; pass++)
        {
            bool removed = false;
            // Faintest first.
            for (int j = 0; j < k; j++) _byPhotons[j] = j;
            for (int a = 1; a < k; a++)
                for (int b = a; b > 0 && theta[3 + 3 * _byPhotons[b]] < theta[3 + 3 * _byPhotons[b - 1]]; b--)
                    (_byPhotons[b], _byPhotons[b - 1]) = (_byPhotons[b - 1], _byPhotons[b]);
            for (int t = 0; t < k && !removed; t++)
            {
                int j = _byPhotons[t];
                // theta without member j; its photons go to its nearest member, so the start explains the same light.
                int q = 0, nearest = -1; double best = double.MaxValue;
                _without[q++] = theta[0];
                for (int e = 0; e < k; e++)
                {
                    if (e == j) continue;
                    _without[q++] = theta[1 + 3 * e]; _without[q++] = theta[2 + 3 * e]; _without[q++] = theta[3 + 3 * e];
                    double dx = theta[1 + 3 * e] - theta[1 + 3 * j], dy = theta[2 + 3 * e] - theta[2 + 3 * j], d2 = dx * dx + dy * dy;
                    if (d2 < best) { best = d2; nearest = e < j ? e : e - 1; }
                }
                if (best < 4.0 * _o.PsfSigmaPx * _o.PsfSigmaPx) _without[3 + 3 * nearest] += theta[3 + 3 * j];
                if (!_fit.Fit(data, fixedModel, gam, bw, bh, k - 1, _without)) continue;
                if (2 * (logL - _fit.LogLikelihood) > _addLlr) continue;
                // Not needed: drop it.
                _without.AsSpan(0, 3 * k - 2).CopyTo(theta);
                for (int e = j; e < k - 1; e++) members[e] = members[e + 1];
                k--;
                logL = _fit.LogLikelihood;
                removed = true;
            }
            if (!removed) break;
        }
        return k;
    }

    /// <summary>The member to drop: the one with photons below the SNR (the faintest such), else the fainter of the closest
    /// pair nearer than the minimum separation; -1 when every member stays.</summary>
    private int WorstMember(int k, ReadOnlySpan<double> theta)
    {
        int worst = -1; double worstN = double.MaxValue;
        for (int j = 0; j < k; j++)
        {
            double n = theta[3 + 3 * j];
            // The SNR an emitter of these photons would have alone on this background: N / sqrt(N + 4 pi sigma^2 b)
            // approximates N / sqrt(CRLB_N) of an isolated fit. Beside a neighbour the joint CRLB of the photons is far
            // larger (their photons trade off), which says nothing about whether the emitter is there: the likelihood
            // ratio decided that. So group members are judged by this, not by the output's SNR filter.
            double alone = _o.NoiseScale * (n + 4 * Math.PI * _o.PsfSigmaPx * _o.PsfSigmaPx * theta[0]);
            if (n < _o.MinPhotonSnr * Math.Sqrt(alone) && n < worstN) { worst = j; worstN = n; }
        }
        if (worst >= 0) return worst;
        double best = _minSepPx * _minSepPx;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
            {
                double dx = theta[1 + 3 * a] - theta[1 + 3 * b], dy = theta[2 + 3 * a] - theta[2 + 3 * b], d2 = dx * dx + dy * dy;
                if (d2 < best) { best = d2; worst = theta[3 + 3 * a] < theta[3 + 3 * b] ? a : b; }
            }
        return worst;
    }

    private static void RemoveAt(Span<int> members, Span<double> theta, ref int k, int j)
    {
        for (int q = j; q < k - 1; q++)
        {
            members[q] = members[q + 1];
            theta[1 + 3 * q] = theta[1 + 3 * (q + 1)]; theta[2 + 3 * q] = theta[2 + 3 * (q + 1)]; theta[3 + 3 * q] = theta[3 + 3 * (q + 1)];
        }
        k--;
    }

    /// <summary>
    /// The residual's strongest 3x3 sum, more than one sigma from every member and not on the box's rim (unless the rim is
    /// the frame edge... the box is clamped there), as the start of a new emitter: its pixel centre and photons (the 3x3
    /// excess over the fraction of a PSF that a centred 3x3 holds). False when no 3x3 sum exceeds 3 x its shot noise
    /// under the model (mu + gamma), so hopeless fits are not tried.
    /// </summary>
    private bool ResidualPeak(ReadOnlySpan<float> data, ReadOnlySpan<float> fixedModel, ReadOnlySpan<float> gamma, int bw, int bh, int k,
                              ReadOnlySpan<double> theta, out float cx, out float cy, out float excess)
    {
        cx = cy = excess = 0;
        int bp = bw * bh;
        Span<float> mu = bp <= 4096 ? stackalloc float[bp] : new float[bp];
        mu.Fill((float)theta[0]);
        for (int i = 0; i < bp; i++) mu[i] += fixedModel[i];
        for (int j = 0; j < k; j++) _fit.Render(mu, bw, bh, (float)theta[1 + 3 * j], (float)theta[2 + 3 * j], (float)theta[3 + 3 * j]);
        const float scoreFloor = 3f;
        float bestExcess = 0;
        float minSep2 = _minSepPx * _minSepPx;
        bool found = false;
        for (int r = 1; r < bh - 1; r++)
            for (int c = 1; c < bw - 1; c++)
            {
                float res = 0, var = 0;
                for (int dr = -1; dr <= 1; dr++)
                    for (int dc = -1; dc <= 1; dc++)
                    {
                        int q = (r + dr) * bw + c + dc;
                        res += data[q] - mu[q];
                        var += mu[q] + (gamma.IsEmpty ? 0 : gamma[q]);
                    }
                // Located at the largest 3x3 excess; tried only where it is above the shot noise's floor.
                if (res <= bestExcess || res <= scoreFloor * MathF.Sqrt(Math.Max(var, 1e-3f))) continue;
                float px = c + 0.5f, py = r + 0.5f;
                bool near = false;
                for (int j = 0; j < k && !near; j++)
                {
                    double dx = theta[1 + 3 * j] - px, dy = theta[2 + 3 * j] - py;
                    near = dx * dx + dy * dy < minSep2;
                }
                if (near) continue;
                bestExcess = res; cx = px; cy = py; excess = res; found = true;
            }
        if (!found) return false;
        excess /= _centre3x3;
        return true;
    }

    private void Grow(int n)
    {
        if (_res.Length >= n) return;
        int c = Math.Max(n, 2 * _res.Length);
        Array.Resize(ref _res, c); Array.Resize(ref _x, c); Array.Resize(ref _y, c);
        Array.Resize(ref _flag, c); Array.Resize(ref _alive, c); Array.Resize(ref _refitted, c); Array.Resize(ref _inPiece, c);
    }
}
