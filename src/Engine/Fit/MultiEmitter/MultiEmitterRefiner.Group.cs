using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>
/// One group's model selection (DESIGN.md "Crowded frames"), as a sequence of joint fits that a batch runs for many groups
/// at once: the first fit; members below the SNR or on a brighter one dropped, one at a time, refitting after each; an
/// emitter added at the residual's strongest 3x3 sum while the likelihood ratio says the data need it; every member
/// tested for whether the data need it (faintest first); the final fit with the CRLB. Each step ends by asking for a fit
/// (<see cref="Request"/>) and goes on when its result comes (<see cref="Advance"/>), so the decisions are the host's and
/// the fits the batch fitter's (CPU SIMD or a device kernel).
/// </summary>
public sealed partial class MultiEmitterRefiner
{
    private enum Step : byte { FirstFit, AfterDrop, AfterAdd, AfterRestore, AfterPrune, AfterFinal, Finished }

    /// <summary>A group in flight: its box (data, the fixed model of everyone else, read noise), members, theta and where
    /// its model selection stands. Pooled per refiner.</summary>
    private sealed class GroupTask
    {
        public readonly int[] Piece = new int[GroupFit.MaxEmitters], Members = new int[GroupFit.MaxEmitters], ByPhotons = new int[GroupFit.MaxEmitters];
        public int PieceLength, K, X0, Y0, Bw, Bh, Added, PrunePass, PruneNext;
        public float[] Data = [], Fixed = [], Gamma = [];
        /// <summary>The wave of its pass it starts in: after every group before it (in the pass's order) whose emitters can
        /// reach its box has finished, so it sees their new values as a sequential Gauss-Seidel sweep would.</summary>
        public int Wave;
        public readonly double[] Theta = new double[GroupFit.MaxParameters], Saved = new double[GroupFit.MaxParameters], Without = new double[GroupFit.MaxParameters];
        public double LogL;
        public Step Step;
        /// <summary>The fit asked for: which theta, how many emitters; and its index in the batch once collected (-1: none).</summary>
        public double[] RequestTheta = [];
        public int RequestK, Job = -1;
        public bool Pending;
        public bool Finished => Step == Step.Finished;
    }

    private void Request(GroupTask t, double[] theta, int k, Step next)
    {
        t.RequestTheta = theta; t.RequestK = k; t.Step = next; t.Pending = true; t.Job = -1;
    }

    private static void Submit(GroupTask t, GroupFitJobs jobs)
    {
        if (!t.Pending) { t.Job = -1; return; }
        int bp = t.Bw * t.Bh;
        t.Job = jobs.Add(t.Data.AsSpan(0, bp), t.Fixed.AsSpan(0, bp), jobs.HasGamma ? t.Gamma.AsSpan(0, bp) : default, t.Bw, t.Bh, t.RequestK, t.RequestTheta);
        t.Pending = false;
    }

    /// <summary>Takes a piece of a group and its box (the members' centres plus 3 sigma) for this pass.</summary>
    private void PlanGroup(GroupTask t, ReadOnlySpan<int> piece)
    {
        int k = piece.Length, w = _w, h = _h;
        piece.CopyTo(t.Piece); t.PieceLength = k;
        // Members from left to right: then emitter j of every group in a SIMD bundle lies in about the same part of its box,
        // and the CPU fitter's per-emitter rectangles (the sums skip where a PSF is zero in every lane) stay small.
        for (int a = 1; a < k; a++)
            for (int b = a; b > 0 && _x[t.Piece[b]] < _x[t.Piece[b - 1]]; b--) (t.Piece[b], t.Piece[b - 1]) = (t.Piece[b - 1], t.Piece[b]);
        float xMin = float.MaxValue, xMax = float.MinValue, yMin = float.MaxValue, yMax = float.MinValue;
        foreach (int i in piece) { xMin = Math.Min(xMin, _x[i]); xMax = Math.Max(xMax, _x[i]); yMin = Math.Min(yMin, _y[i]); yMax = Math.Max(yMax, _y[i]); }
        int x0 = Math.Max(0, (int)MathF.Floor(xMin) - _boxReach), x1 = Math.Min(w, (int)MathF.Floor(xMax) + _boxReach + 1);
        int y0 = Math.Max(0, (int)MathF.Floor(yMin) - _boxReach), y1 = Math.Min(h, (int)MathF.Floor(yMax) + _boxReach + 1);
        (t.X0, t.Y0, t.Bw, t.Bh, t.Added) = (x0, y0, x1 - x0, y1 - y0, 0);
        t.Step = Step.Finished; t.Pending = false; t.Job = -1;
    }

    /// <summary>Cuts the group's box, renders the others into its fixed model and asks for the first fit.</summary>
    private void StartGroup(GroupTask t, ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma)
    {
        int k = t.PieceLength, w = _w, x0 = t.X0, y0 = t.Y0, bw = t.Bw, bh = t.Bh, bp = bw * bh;
        var piece = t.Piece.AsSpan(0, k);
        if (t.Data.Length < bp) { int c = Math.Max(bp, 2 * t.Data.Length); t.Data = new float[c]; t.Fixed = new float[c]; t.Gamma = new float[c]; }
        var data = t.Data.AsSpan(0, bp); var fixedModel = t.Fixed.AsSpan(0, bp);
        for (int r = 0; r < bh; r++)
        {
            photons.Slice((y0 + r) * w + x0, bw).CopyTo(data.Slice(r * bw, bw));
            if (!gamma.IsEmpty) gamma.Slice((y0 + r) * w + x0, bw).CopyTo(t.Gamma.AsSpan(r * bw, bw));
        }
        // The others' model in the box, from their current estimates (so the groups started before it count with their
        // new values: Gauss-Seidel between groups): every kept emitter outside this group whose PSF (4 sigma) reaches the
        // box. Rendered per box rather than kept as a frame-sized model image, so a sparse frame with a few groups does not
        // clear and fill the whole frame.
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
        var theta = t.Theta;
        for (int j = 0; j < k; j++) t.Members[j] = piece[j];
        Span<float> bgs = stackalloc float[k];
        for (int j = 0; j < k; j++) bgs[j] = _res[t.Members[j]].Background;
        bgs.Sort();
        theta[0] = Math.Max(bgs[k / 2], 0.01f);
        // Start photons at most the box's light above the start background (a poor single fit can claim far more).
        double light = 0;
        for (int q = 0; q < bp; q++) light += Math.Max(data[q] - fixedModel[q] - theta[0], 0);
        for (int j = 0; j < k; j++)
        {
            ref readonly var f = ref _res[t.Members[j]];
            theta[1 + 3 * j] = Math.Clamp(f.X - x0, 0, bw); theta[2 + 3 * j] = Math.Clamp(f.Y - y0, 0, bh);
            theta[3 + 3 * j] = Math.Clamp(f.Photons, 1, Math.Max(light, 1));
        }
        t.K = k;
        Request(t, theta, k, Step.FirstFit);
    }

    /// <summary>The piece's members go (the group could not be fitted).</summary>
    private void Drop(GroupTask t)
    {
        for (int q = 0; q < t.PieceLength; q++) _alive[t.Piece[q]] = false;
        t.Step = Step.Finished;
    }

    /// <summary>Takes the result of the group's last fit and runs its model selection on to the next fit it needs.</summary>
    private void Advance(GroupTask t, GroupFitJobs jobs)
    {
        int job = t.Job;
        t.Job = -1;
        var status = jobs.Status[job];
        bool ok = status != GroupFitStatus.Failed;
        double logL = jobs.LogLikelihood[job];
        if (ok) jobs.ThetaOf(job).CopyTo(t.RequestTheta);
        var theta = t.Theta;
        switch (t.Step)
        {
            case Step.FirstFit:
                if (!ok)
                {
                    // The joint fit failed: the members keep their single fits (seeds go).
                    for (int q = 0; q < t.PieceLength; q++) if (!_res[t.Piece[q]].Kept) _alive[t.Piece[q]] = false;
                    t.Step = Step.Finished;
                    return;
                }
                if (DropWorst(t)) return;
                t.LogL = logL;
                if (TryAdd(t)) return;
                StartPrune(t);
                return;
            case Step.AfterDrop:
                if (!ok) { Drop(t); return; }
                if (DropWorst(t)) return;
                t.LogL = logL;
                if (TryAdd(t)) return;
                StartPrune(t);
                return;
            case Step.AfterAdd:
                if (ok && 2 * (logL - t.LogL) > _addLlr && WorstMember(t.K + 1, theta) < 0)
                {
                    t.K++; t.Added++;
                    t.LogL = logL;
                    t.Members[t.K - 1] = -1;   // a new emitter, not in the frame's list yet
                    if (TryAdd(t)) return;
                    StartPrune(t);
                    return;
                }
                t.Saved.AsSpan(0, 3 * t.K + 1).CopyTo(theta);
                Request(t, theta, t.K, Step.AfterRestore);
                return;
            case Step.AfterRestore:
                if (!ok) { Drop(t); return; }
                StartPrune(t);
                return;
            case Step.AfterPrune:
                if (ok && !(2 * (t.LogL - logL) > _addLlr))
                {
                    // Not needed: drop it.
                    int k = t.K, j = t.ByPhotons[t.PruneNext];
                    t.Without.AsSpan(0, 3 * k - 2).CopyTo(theta);
                    for (int e = j; e < k - 1; e++) t.Members[e] = t.Members[e + 1];
                    t.K--;
                    t.LogL = logL;
                    t.PrunePass++;
                    PrunePass(t);
                    return;
                }
                t.PruneNext++;
                PruneTry(t);
                return;
            case Step.AfterFinal:
                if (!ok || status == GroupFitStatus.NoCrlb) { Drop(t); return; }
                WriteBack(t, jobs, job);
                return;
        }
    }

    /// <summary>Drops the member that is insignificant or sits on a brighter one and asks for the refit; false when every
    /// member stays. With no member left the group goes.</summary>
    private bool DropWorst(GroupTask t)
    {
        int worst = WorstMember(t.K, t.Theta);
        if (worst < 0) return false;
        RemoveAt(t.Members, t.Theta, ref t.K, worst);
        if (t.K == 0) { Drop(t); return true; }
        Request(t, t.Theta, t.K, Step.AfterDrop);
        return true;
    }

    /// <summary>Residual search: asks for the fit with one more emitter at the residual's peak; false when the group is
    /// full or the residual has no peak worth a fit.</summary>
    private bool TryAdd(GroupTask t)
    {
        int k = t.K, bp = t.Bw * t.Bh;
        var theta = t.Theta;
        if (k >= Math.Min(_o.MaxPerGroup, GroupFit.MaxEmitters)) return false;
        var gam = _hasGamma ? t.Gamma.AsSpan(0, bp) : default;
        if (!ResidualPeak(t.Data.AsSpan(0, bp), t.Fixed.AsSpan(0, bp), gam, t.Bw, t.Bh, k, theta,
                          out float cx, out float cy, out float excess)) return false;
        int p = 3 * k + 1;
        theta.AsSpan(0, p).CopyTo(t.Saved);
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
            theta[1 + 3 * near] = Math.Clamp(theta[1 + 3 * near] - (cx - theta[1 + 3 * near]) * share, 0, t.Bw);
            theta[2 + 3 * near] = Math.Clamp(theta[2 + 3 * near] - (cy - theta[2 + 3 * near]) * share, 0, t.Bh);
        }
        Request(t, theta, k + 1, Step.AfterAdd);
        return true;
    }

    /// <summary>Every member must be needed, not only the added ones: members that came from detection (several maxima on
    /// one emitter, a noise maximum beside it) are tested the same way, faintest first: without it, does the likelihood
    /// fall by more than the p-value's chi-square point? If not, it goes.</summary>
    private void StartPrune(GroupTask t)
    {
        t.PrunePass = 0;
        PrunePass(t);
    }

    private void PrunePass(GroupTask t)
    {
        if (t.PrunePass >= GroupFit.MaxEmitters || t.K <= 1) { Final(t); return; }
        int k = t.K;
        var theta = t.Theta;
        for (int j = 0; j < k; j++) t.ByPhotons[j] = j;
        for (int a = 1; a < k; a++)
            for (int b = a; b > 0 && theta[3 + 3 * t.ByPhotons[b]] < theta[3 + 3 * t.ByPhotons[b - 1]]; b--)
                (t.ByPhotons[b], t.ByPhotons[b - 1]) = (t.ByPhotons[b - 1], t.ByPhotons[b]);
        t.PruneNext = 0;
        PruneTry(t);
    }

    private void PruneTry(GroupTask t)
    {
        int k = t.K;
        if (t.PruneNext >= k) { Final(t); return; }   // a pass that removed nothing: done
        int j = t.ByPhotons[t.PruneNext];
        var theta = t.Theta; var without = t.Without;
        // theta without member j; its photons go to its nearest member, so the start explains the same light.
        int q = 0, nearest = -1; double best = double.MaxValue;
        without[q++] = theta[0];
        for (int e = 0; e < k; e++)
        {
            if (e == j) continue;
            without[q++] = theta[1 + 3 * e]; without[q++] = theta[2 + 3 * e]; without[q++] = theta[3 + 3 * e];
            double dx = theta[1 + 3 * e] - theta[1 + 3 * j], dy = theta[2 + 3 * e] - theta[2 + 3 * j], d2 = dx * dx + dy * dy;
            if (d2 < best) { best = d2; nearest = e < j ? e : e - 1; }
        }
        if (best < 4.0 * _o.PsfSigmaPx * _o.PsfSigmaPx) without[3 + 3 * nearest] += theta[3 + 3 * j];
        Request(t, without, k - 1, Step.AfterPrune);
    }

    private void Final(GroupTask t) => Request(t, t.Theta, t.K, Step.AfterFinal);

    /// <summary>Members in place, new emitters appended.</summary>
    private void WriteBack(GroupTask t, GroupFitJobs jobs, int job)
    {
        int k = t.K;
        var theta = t.Theta;
        var crlb = jobs.SqrtCrlbOf(job);
        for (int q = 0; q < t.PieceLength; q++) _alive[t.Piece[q]] = false;
        for (int j = 0; j < k; j++)
        {
            int i = t.Members[j];
            if (i < 0) { Grow(_count + 1); i = _count++; Added++; }
            var f = new FitResult
            {
                X = t.X0 + (float)theta[1 + 3 * j], Y = t.Y0 + (float)theta[2 + 3 * j], Photons = (float)theta[3 + 3 * j],
                Background = (float)theta[0], Sigma = _o.PsfSigmaPx,
                CrlbX = (float)crlb[1 + 3 * j], CrlbY = (float)crlb[2 + 3 * j], CrlbPhotons = (float)crlb[3 + 3 * j],
                CrlbBackground = (float)crlb[0], CrlbSigma = 0,
                LogLikelihood = (float)jobs.LogLikelihood[job], Llr = (float)jobs.Llr[job], Iterations = jobs.Iterations[job],
                Status = jobs.Status[job] == GroupFitStatus.Converged ? FitStatus.Converged : FitStatus.MaxIterations, GroupSize = k,
            };
            _res[i] = f; _x[i] = f.X; _y[i] = f.Y; _alive[i] = true; _refitted[i] = t.Added > 0;
        }
        t.Step = Step.Finished;
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
}
