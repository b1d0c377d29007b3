using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Engine.Fit;

/// <summary>
/// The single-emitter path's fit stage for close emitters (<c>--single-emitter</c>; DESIGN.md "Detection", item 5): the
/// neighbour refit with sigma fixed after subtracting neighbours' fitted PSFs, and the residual search around poorly
/// fitted ROIs. The default is the multi-emitter stage (<see cref="MultiEmitter.MultiEmitterRefiner"/>). One instance per
/// worker thread; buffers are reused.
/// </summary>
public sealed class NeighbourRefit
{
    private readonly LocalizerSettings _s;
    private readonly CpuFitBackend _fit = new(1);
    private FitResult[] _fitResults = Array.Empty<FitResult>();
    private readonly MaLiang.Engine.Denoise.IFrameFilter _tileFilter;

    public NeighbourRefit(LocalizerSettings s)
    {
        _s = s;
        _tileFilter = MaLiang.Engine.Denoise.FrameFilters.Create(s);
    }

    private RoiBatch? _refine;
    private FitResult[] _refineResults = Array.Empty<FitResult>();
    private int[] _refineIndex = Array.Empty<int>();
    private CpuFitBackend.FitScratch? _modelScratch;
    private float[] _model = Array.Empty<float>();

    /// <summary>Passes of neighbour subtraction for candidates whose ROIs overlap (kept with RejectOverlapping off).</summary>
    private const int NeighbourPasses = 2;

    /// <summary>
    /// Emitters closer than a ROI pull each other's single-emitter fits together: a free sigma widens to take in the
    /// neighbour's light, and its photons with it. When overlapping candidates are kept, each ROI with another
    /// candidate in it is refitted with sigma fixed at the PSF sigma: first on its own pixels (so that the neighbour
    /// cannot inflate it), then <see cref="NeighbourPasses"/> times after subtracting its neighbours' fitted PSFs
    /// (photons x PSF, no background), so close pairs separate. Sigma stays fixed in such ROIs: a single-emitter
    /// model with a free width is not identifiable next to a neighbour (it widens into the neighbour's residual or
    /// an undetected third emitter; measured on the tubulin frame and the density sweep). A refit that fails or
    /// leaves the ROI keeps the previous estimate. ROIs without neighbours keep their first fit.
    /// </summary>
    private int[] _order = [], _top = [], _nbStart = [], _nb = [], _pairs = [];

    /// <summary>For every ROI of the batch, the others whose boxes overlap it (|dLeft| and |dTop| below n), in index order:
    /// _nb[_nbStart[i] .. _nbStart[i + 1]). Found through the ROIs sorted by their top row, not all pairs. False
    /// when no ROI has a neighbour.</summary>
    private bool FindNeighbours(RoiBatch batch)
    {
        int count = batch.Count, n = batch.RoiSize, pairs = 0;
        if (_order.Length < count) { _order = new int[count]; _top = new int[count]; }
        if (_nbStart.Length < count + 1) _nbStart = new int[Math.Max(count + 1, 2 * _nbStart.Length)];
        for (int i = 0; i < count; i++) { _order[i] = i; _top[i] = batch.Top[i]; }
        Array.Sort(_top, _order, 0, count);
        for (int a = 0; a < count; a++)
            for (int b = a + 1; b < count && _top[b] - _top[a] < n; b++)
            {
                int i = _order[a], j = _order[b];
                if (Math.Abs(batch.Left[i] - batch.Left[j]) >= n) continue;
                if (_pairs.Length < 2 * pairs + 2) Array.Resize(ref _pairs, Math.Max(64, 2 * _pairs.Length));
                _pairs[2 * pairs] = i; _pairs[2 * pairs + 1] = j;
                pairs++;
            }
        Array.Clear(_nbStart, 0, count + 1);
        if (pairs == 0) return false;
        for (int p = 0; p < pairs; p++) { _nbStart[_pairs[2 * p] + 1]++; _nbStart[_pairs[2 * p + 1] + 1]++; }
        for (int i = 0; i < count; i++) _nbStart[i + 1] += _nbStart[i];
        if (_nb.Length < 2 * pairs) _nb = new int[Math.Max(2 * pairs, 2 * _nb.Length)];
        Span<int> fill = count <= 512 ? stackalloc int[count] : new int[count];
        for (int i = 0; i < count; i++) fill[i] = _nbStart[i];
        for (int p = 0; p < pairs; p++)
        {
            int i = _pairs[2 * p], j = _pairs[2 * p + 1];
            _nb[fill[i]++] = j; _nb[fill[j]++] = i;
        }
        for (int i = 0; i < count; i++) Array.Sort(_nb, _nbStart[i], _nbStart[i + 1] - _nbStart[i]);   // index order
        return true;
    }

    public void RefineNeighbours(RoiBatch batch, Span<FitResult> fitResults, in FitOptions options)
    {
        int n = batch.RoiSize, np = n * n, count = batch.Count;
        _refine ??= new RoiBatch(n, 64);
        _modelScratch ??= new CpuFitBackend.FitScratch(n);
        if (_model.Length < np) _model = new float[np];
        if (_refineIndex.Length < count) _refineIndex = new int[count];
        Span<float> roi = stackalloc float[np];
        var model = _model.AsSpan(0, np);
        var fixedSigma = options with { FixedSigma = true };
        if (!FindNeighbours(batch)) return;
        for (int pass = options.FixedSigma ? 1 : 0; pass <= NeighbourPasses; pass++)
        {
            _refine.Clear();
            for (int i = 0; i < count; i++)
            {
                int k0 = _nbStart[i], k1 = _nbStart[i + 1];
                if (k0 == k1) continue;
                bool any = pass == 0;   // pass 0 only refits crowded ROIs with sigma fixed, nothing subtracted
                batch.Roi(i).CopyTo(roi);
                for (int k = k0; k < k1 && pass > 0; k++)
                {
                    int j = _nb[k];
                    if (!fitResults[j].Kept) continue;
                    int dl = batch.Left[j] - batch.Left[i], dt = batch.Top[j] - batch.Top[i];
                    any = true;
                    ref readonly var f = ref fitResults[j];
                    CpuFitBackend.Model(_modelScratch, dl + f.X, dt + f.Y, f.Photons, 0f, f.Sigma, model);
                    for (int p = 0; p < np; p++) roi[p] -= model[p];
                }
                if (!any) continue;
                _refineIndex[_refine.Count] = i;
                _refine.Add(roi, batch.Frame[i], batch.Left[i], batch.Top[i], batch.Peak[i], batch.RoiReadNoise(i));
            }
            if (_refine.Count == 0) return;
            if (_refineResults.Length < _refine.Count) _refineResults = new FitResult[Math.Max(_refine.Count, 2 * _refineResults.Length)];
            _fit.Fit(_refine, fixedSigma, _refineResults);
            // A refit that fails or leaves the ROI keeps the previous pass's estimate.
            for (int k = 0; k < _refine.Count; k++)
            {
                ref var old = ref fitResults[_refineIndex[k]];
                if (_refineResults[k].Kept || !old.Kept) old = _refineResults[k];
            }
        }
    }

    private float[] _residual = Array.Empty<float>(), _residualFiltered = Array.Empty<float>(), _modelSum = Array.Empty<float>();
    private readonly Detector _residualDetector = new();
    private readonly List<Candidate> _residualMaxima = new();
    private bool[] _poor = Array.Empty<bool>();

    /// <summary>
    /// The neighbour refit, then a search of the residual for emitters the detection merged with a neighbour: around
    /// each poorly fitted ROI (log-likelihood ratio above chi-square's 99.9% point) every kept fit's PSF (photons x
    /// PSF, over its ROI) is subtracted from the frame, the residual is filtered as the frame was, and its local
    /// maxima in that ROI above the frame's <paramref name="threshold"/> (scaled for the subtracted emitters' shot
    /// noise), at least 2 PSF sigmas from every fitted emitter and more than 1 px (Chebyshev) from every candidate,
    /// become candidates too; then the crowded ROIs are refitted again with them. Returns the
    /// results of all the batch's ROIs (the worker's buffer; <paramref name="fits"/> is copied in first when it is
    /// not that buffer); <paramref name="added"/> counts the new candidates.
    /// </summary>
    public Span<FitResult> RefineFrame(ReadOnlySpan<float> photons, ReadOnlySpan<float> readNoiseMap, int w, int h, float threshold,
                                      RoiBatch batch, ReadOnlySpan<FitResult> fits, in FitOptions options, out int added)
    {
        int count = batch.Count;
        added = 0;
        if (count == 0) return Span<FitResult>.Empty;
        if (_fitResults.Length < count) { var grown = new FitResult[Math.Max(count, 2 * _fitResults.Length)]; fits[..count].CopyTo(grown); _fitResults = grown; }
        else if (!Unsafe.AreSame(ref MemoryMarshal.GetReference(fits), ref _fitResults[0])) fits[..count].CopyTo(_fitResults);
        var all = _fitResults.AsSpan(0, count);
        if (count > 1) RefineNeighbours(batch, all, options);

        // Only where a fit is poor is an emitter missing: a kept fit whose log-likelihood ratio is above the 99.9%
        // point of chi-square with n^2 - 5 degrees of freedom (Wilson-Hilferty) flags its ROI; a frame without one is done.
        int n = batch.RoiSize, np = n * n;
        double dof = np - 5, wh = 1 - 2 / (9 * dof) + 3.09 * Math.Sqrt(2 / (9 * dof));
        float llrLimit = (float)(dof * wh * wh * wh);
        if (_poor.Length < count) _poor = new bool[Math.Max(count, 2 * _poor.Length)];
        bool anyPoor = false;
        for (int i = 0; i < count; i++) anyPoor |= _poor[i] = all[i].Kept && all[i].Llr > llrLimit;
        if (!anyPoor) return all;

        // Per poorly fitted ROI, a tile around it (its box plus the filter's reach): the frame minus every kept fit's PSF
        // (photons x PSF over its box), filtered as the frame was, its local maxima inside the poor ROI's box.
        _modelScratch ??= new CpuFitBackend.FitScratch(n);
        if (_model.Length < np) _model = new float[np];
        var model = _model.AsSpan(0, np);
        int pad = Math.Max(6, _s.FilterBoxPx / 2 + 2) + 1;
        for (int q = 0; q < count; q++)
        {
            if (!_poor[q]) continue;
            int x0 = Math.Max(0, batch.Left[q] - pad), y0 = Math.Max(0, batch.Top[q] - pad);
            int tw = Math.Min(w, batch.Left[q] + n + pad) - x0, th = Math.Min(h, batch.Top[q] + n + pad) - y0, tp = tw * th;
            if (_residual.Length < tp) { _residual = new float[tp]; _residualFiltered = new float[tp]; _modelSum = new float[tp]; }
            var res = _residual.AsSpan(0, tp);
            var sum = _modelSum.AsSpan(0, tp);
            for (int r = 0; r < th; r++) photons.Slice((y0 + r) * w + x0, tw).CopyTo(res.Slice(r * tw, tw));
            sum.Clear();
            for (int i = 0; i < count; i++)
            {
                ref readonly var f = ref all[i];
                int l = batch.Left[i] - x0, t = batch.Top[i] - y0;
                if (!f.Kept || l >= tw || t >= th || l + n <= 0 || t + n <= 0) continue;
                CpuFitBackend.Model(_modelScratch, f.X, f.Y, f.Photons, 0f, f.Sigma, model);
                for (int r = Math.Max(0, -t); r < n && t + r < th; r++)
                    for (int c = Math.Max(0, -l); c < n && l + c < tw; c++)
                    {
                        float m = model[r * n + c];
                        res[(t + r) * tw + l + c] -= m;
                        sum[(t + r) * tw + l + c] += m;
                    }
            }
            _tileFilter.Apply(res, _residualFiltered.AsSpan(0, tp), tw, th);
            _residualDetector.Detect(_residualFiltered.AsSpan(0, tp), tw, th, threshold, _s.RoiRadius, false, _residualMaxima);
            foreach (var m in _residualMaxima)
            {
                int cx = x0 + m.X, cy = y0 + m.Y;
                if (cx < batch.Left[q] || cx >= batch.Left[q] + n || cy < batch.Top[q] || cy >= batch.Top[q] + n) continue;
                // The threshold holds for the background's shot noise; where fitted emitters were subtracted the
                // residual carries their shot noise too: variance background + model photons, so the threshold
                // scales with sqrt(1 + model / background) (the background of the nearest fit).
                float bg = 0f, best = float.MaxValue;
                for (int i = 0; i < count; i++)
                {
                    if (!all[i].Kept) continue;
                    float dx = batch.Left[i] + all[i].X - (cx + 0.5f), dy = batch.Top[i] + all[i].Y - (cy + 0.5f), d2 = dx * dx + dy * dy;
                    if (d2 < best) { best = d2; bg = all[i].Background; }
                }
                float mp = sum[m.Y * tw + m.X];
                if (bg > 0f && mp > 0f && !(m.Value > threshold * MathF.Sqrt(1f + mp / bg))) continue;
                // Closer than 2 PSF sigmas to a fitted emitter (less than about its FWHM), a residual maximum is more
                // often that emitter's own shot noise than a second one that could be resolved (density sweep).
                float exclusion = 2f * options.PsfSigmaPx;
                if (best < exclusion * exclusion) continue;
                bool near = false;
                for (int i = 0; i < batch.Count && !near; i++)
                {
                    int pk = batch.Peak[i], px0 = batch.Left[i] + pk % n, py0 = batch.Top[i] + pk / n;
                    near = Math.Abs(px0 - cx) <= 1 && Math.Abs(py0 - cy) <= 1;
                }
                if (near) continue;
                batch.AddAround(photons, w, h, batch.Frame[0], cx, cy, readNoiseMap);
                added++;
            }
        }
        if (added == 0) return all;
        int total = count + added;
        if (_fitResults.Length < total) Array.Resize(ref _fitResults, Math.Max(total, 2 * _fitResults.Length));
        for (int i = count; i < total; i++) _fitResults[i] = new FitResult { Status = FitStatus.Failed };
        all = _fitResults.AsSpan(0, total);
        RefineNeighbours(batch, all, options);
        return all;
    }
}
