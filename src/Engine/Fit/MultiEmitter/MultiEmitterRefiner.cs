using MaLiang.Engine.Fit.Backends;

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
/// <item>each such group is fitted jointly (sigma fixed, one background) in a box around it, with every other emitter's
///   model in the box held fixed (from their current estimates, so groups fitted earlier count with their new values:
///   Gauss-Seidel between groups, kept exactly by starting the groups in waves); members that are insignificant (photons
///   below the SNR) or closer than 0.7 sigma to a brighter member are dropped and the group refitted;</item>
/// <item>the residual is searched: at its strongest 3x3 sum away from the members a new emitter is tried, and kept when
///   the likelihood ratio 2 (L_{K+1} - L_K) exceeds chi-square's (1 - p) point with 3 dof (<see cref="ModelSelection"/>);
///   repeated until one is refused or the group holds <see cref="MultiEmitterOptions.MaxPerGroup"/>; then every member
///   must pass the same test (MultiEmitterRefiner.Group.cs).</item>
/// </list>
/// The joint fits are requested, not run here: <see cref="Refine"/> runs them on the CPU (<see cref="CpuGroupFitter"/>);
/// <see cref="Begin"/>, <see cref="Collect"/> and <see cref="Deliver"/> let a caller batch the fits of many frames for one
/// fitter (the pipeline's chunks, a device). One instance per frame in flight; buffers are reused, no allocation per frame
/// once warmed up.
/// </summary>
public sealed partial class MultiEmitterRefiner
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
    private int[] _region = [];
    // The frame being refined (Begin .. Done): its size, the pass, and the groups in flight.
    private int _w, _h, _pass, _wave, _waves;
    private bool _hasGamma;
    private GroupTask[] _tasks = [];
    private int _taskCount;
    private IGroupFitter? _cpu;
    private readonly GroupFitJobs _jobs = new();

    /// <summary>Groups fitted in the last frame, by size (index = emitters fitted together, 1..MaxEmitters).</summary>
    public long[] GroupsBySize { get; } = new long[GroupFit.MaxEmitters + 1];
    /// <summary>Emitters added from the residual in the last call.</summary>
    public int Added { get; private set; }

    public MultiEmitterRefiner(MultiEmitterOptions options, int roiSize)
    {
        _o = options;
        _fit = new GroupFit(options.PsfSigmaPx, options.MaxIterations, options.Tolerance);
        PsfSigmaPx = options.PsfSigmaPx; MaxIterations = options.MaxIterations; Tolerance = options.Tolerance;
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

    /// <summary>What a fitter for this refiner's jobs must be built with (<see cref="CpuGroupFitter"/>, the device's).</summary>
    public float PsfSigmaPx { get; }
    public int MaxIterations { get; }
    public float Tolerance { get; }

    /// <summary>
    /// Refines one frame's single fits, its joint fits on the CPU (<see cref="CpuGroupFitter"/>, SIMD across the frame's
    /// groups). <paramref name="fits"/> are in the ROIs' coordinates (ROI i at <paramref name="left"/>[i],
    /// <paramref name="top"/>[i], its detected maximum at <paramref name="peak"/>[i]); the result (this instance's buffer,
    /// valid until the next call) holds one entry per emitter in frame coordinates with <see cref="FitResult.GroupSize"/>
    /// set. <paramref name="gamma"/>: the frame's sCMOS read-noise variance, or empty.
    /// </summary>
    public ReadOnlySpan<FitResult> Refine(ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma, int w, int h, int roiSize,
        ReadOnlySpan<FitResult> fits, ReadOnlySpan<int> left, ReadOnlySpan<int> top, ReadOnlySpan<int> peak)
    {
        _cpu ??= new CpuGroupFitter(PsfSigmaPx, MaxIterations, Tolerance);
        Begin(photons, gamma, w, h, roiSize, fits, left, top, peak);
        Finish(_cpu, photons, gamma);
        return Result;
    }

    /// <summary>After <see cref="Begin"/>: runs the frame's remaining rounds alone with <paramref name="fitter"/>.</summary>
    public void Finish(IGroupFitter fitter, ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma)
    {
        while (!Done)
        {
            _jobs.Clear(!gamma.IsEmpty);
            Collect(_jobs);
            fitter.FitAll(_jobs);
            Deliver(_jobs, photons, gamma);
        }
    }

    /// <summary>Groups the current pass fits (after <see cref="Begin"/>: the first pass's).</summary>
    public int GroupsInPass => Done ? 0 : _taskCount;

    /// <summary>True when the frame given to <see cref="Begin"/> is refined (<see cref="Result"/> holds it).</summary>
    public bool Done { get; private set; } = true;

    /// <summary>After <see cref="Done"/>: one entry per emitter in frame coordinates (this instance's buffer).</summary>
    public ReadOnlySpan<FitResult> Result => Done ? _res.AsSpan(0, _count) : throw new InvalidOperationException("the frame is still being refined");

    /// <summary>
    /// Starts refining a frame (as <see cref="Refine"/>), for callers that run the joint fits of many frames in one batch
    /// (a device): then, until <see cref="Done"/>, <see cref="Collect"/> the frame's pending fits into a batch, fit it and
    /// <see cref="Deliver"/> the results with the same frame. Every step but the fits is this instance's, so results equal
    /// <see cref="Refine"/>'s when the fitter computes as the CPU's.
    /// </summary>
    public void Begin(ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma, int w, int h, int roiSize,
        ReadOnlySpan<FitResult> fits, ReadOnlySpan<int> left, ReadOnlySpan<int> top, ReadOnlySpan<int> peak)
    {
        Array.Clear(GroupsBySize);
        Added = 0;
        _taskCount = 0;
        _count = 0;
        (_w, _h, _hasGamma) = (w, h, !gamma.IsEmpty);
        Done = true;
        int m = fits.Length;
        if (m == 0) return;
        Grow(m + 16);
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
        if (!anyFlag) { GroupsBySize[1] += _count; return; }
        Done = false;
        _pass = 0;
        StartPass(photons, gamma);
    }

    /// <summary>Adds the frame's pending joint fits to <paramref name="jobs"/> (whose read-noise setting must be the frame's).</summary>
    public void Collect(GroupFitJobs jobs)
    {
        if (jobs.HasGamma != _hasGamma) throw new ArgumentException("the batch's read-noise setting differs from the frame's");
        for (int t = 0; t < _taskCount; t++) Submit(_tasks[t], jobs);
    }

    /// <summary>Takes the results of the fits <see cref="Collect"/> added, and moves every group on to its next fit (or
    /// the frame to its next pass, or to <see cref="Done"/>). <paramref name="photons"/> and <paramref name="gamma"/>: the
    /// frame given to <see cref="Begin"/>.</summary>
    public void Deliver(GroupFitJobs jobs, ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma)
    {
        bool all = true;
        for (int t = 0; t < _taskCount; t++)
        {
            var task = _tasks[t];
            if (task.Job >= 0) Advance(task, jobs);
            all &= task.Finished;
        }
        if (!all) return;
        // The wave is done: the next wave of this pass, else the next pass.
        if (StartWave(photons, gamma)) return;
        _pass++;
        StartPass(photons, gamma);
    }

    /// <summary>Plans the groups of the current pass and starts its first wave; passes without a group to fit are skipped;
    /// after the last, the frame's result is put together.</summary>
    private void StartPass(ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma)
    {
        for (; _pass < Passes; _pass++)
        {
            _taskCount = 0;
            if (_pass > 0)
            {
                // Again: the groups fitted first saw their neighbours' single fits. The groups are found anew (emitters
                // moved, were added or dropped) and every group with a member fitted jointly last pass is refitted.
                Compact(_pass);
                _groups.Build(_x.AsSpan(0, _count), _y.AsSpan(0, _count), _linkPx);
            }
            int groups = _groups.Count;
            for (int g = 0; g < groups; g++)
            {
                var all = _groups.Members(g);
                bool refit = _pass == 0 && all.Length > 1;
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
                    PlanGroup(NewTask(), left0.Slice(remaining - take, take));
                    remaining -= take;
                }
            }
            if (_taskCount == 0) continue;
            AssignWaves();
            _wave = -1;
            if (StartWave(photons, gamma)) return;
        }
        Compact(Passes);
        CountGroups(_res.AsSpan(0, _count), GroupsBySize);
        _taskCount = 0;
        Done = true;
    }

    /// <summary>
    /// Waves within a pass: a group starts after every group before it (in the pass's order) whose fitted emitters can
    /// reach its box, so each group sees exactly what a sequential sweep over the groups would show it (the fitted values
    /// of the groups before it, the start values of those after) while the groups of one wave are fitted at once. A
    /// group's emitters stay in its box, and a box takes in every emitter within 4 sigma + 1 px of it, so two groups
    /// interact when one's box comes that near the other's. O(groups^2) per pass, on boxes only.
    /// </summary>
    private void AssignWaves()
    {
        int reach = (int)MathF.Ceiling(4 * _o.PsfSigmaPx + 1);
        _waves = 0;
        for (int h = 0; h < _taskCount; h++)
        {
            var b = _tasks[h];
            int wave = 0;
            for (int g = 0; g < h; g++)
            {
                var a = _tasks[g];
                if (a.Wave + 1 <= wave) continue;
                bool near = a.X0 <= b.X0 + b.Bw + reach && b.X0 - reach <= a.X0 + a.Bw
                         && a.Y0 <= b.Y0 + b.Bh + reach && b.Y0 - reach <= a.Y0 + a.Bh;
                if (near) wave = a.Wave + 1;
            }
            b.Wave = wave;
            _waves = Math.Max(_waves, wave + 1);
        }
    }

    /// <summary>Starts the next wave's groups; false when the pass has no wave left.</summary>
    private bool StartWave(ReadOnlySpan<float> photons, ReadOnlySpan<float> gamma)
    {
        while (++_wave < _waves)
        {
            bool any = false;
            for (int t = 0; t < _taskCount; t++)
                if (_tasks[t].Wave == _wave) { StartGroup(_tasks[t], photons, gamma); any = true; }
            if (any) return true;
        }
        return false;
    }

    private GroupTask NewTask()
    {
        if (_taskCount == _tasks.Length) Array.Resize(ref _tasks, Math.Max(16, 2 * _tasks.Length));
        return _tasks[_taskCount++] ??= new GroupTask();
    }

    /// <summary>Adds the groups of <paramref name="emitters"/> by size to <paramref name="groupsBySize"/>, from their group
    /// sizes: each group of k left k members (rounded up, where a member went).</summary>
    internal static void CountGroups(ReadOnlySpan<FitResult> emitters, long[] groupsBySize)
    {
        Span<int> bySize = stackalloc int[GroupFit.MaxEmitters + 1];
        foreach (ref readonly var f in emitters) bySize[Math.Clamp(f.GroupSize, 1, GroupFit.MaxEmitters)]++;
        for (int k = 1; k <= GroupFit.MaxEmitters; k++) groupsBySize[k] += (bySize[k] + k - 1) / k;
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

    private void Grow(int n)
    {
        if (_res.Length >= n) return;
        int c = Math.Max(n, 2 * _res.Length);
        Array.Resize(ref _res, c); Array.Resize(ref _x, c); Array.Resize(ref _y, c);
        Array.Resize(ref _flag, c); Array.Resize(ref _alive, c); Array.Resize(ref _refitted, c); Array.Resize(ref _inPiece, c);
    }
}
