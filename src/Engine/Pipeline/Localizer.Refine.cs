using System.Diagnostics;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.MultiEmitter;

namespace MaLiang.Engine.Pipeline;

/// <summary>
/// The multi-emitter stage over a chunk's frames (DESIGN.md "Crowded frames"): each frame's <see cref="MultiEmitterRefiner"/>
/// starts right after its single fits (<see cref="BeginRefine"/>: a frame with no group to fit is done there), then the
/// chunk's frames still refining run in rounds (<see cref="RefineChunk"/>): every round the pending joint fits of all of
/// them go to one batch fitter, the device's (<see cref="IGpuFitBackend.CreateGroupFitter"/>) or the CPU's, SIMD across
/// the groups (<see cref="ParallelCpuGroupFitter"/>), and each frame's grouping and model selection go on on the CPU
/// threads. A frame's results do not depend on which frames share its batches, so every path agrees with
/// <see cref="MultiEmitterRefiner.Refine"/>.
/// </summary>
public sealed partial class Localizer
{
    /// <summary>Starts frame <paramref name="o"/>'s multi-emitter stage on its single fits (ROIs in o.Batch). A frame
    /// done already (nothing to fit jointly) is collected now; otherwise, with <paramref name="keepPhotons"/>, its
    /// photons are kept in o.Photons for the rounds (the caller's buffer is reused).</summary>
    /// <remarks>With <paramref name="local"/> (the CPU path), a frame with fewer than <see cref="LocalGroups"/> groups is
    /// refined at once on this thread: its rounds would hardly fill a SIMD bundle and are not worth a copy of the frame
    /// and the chunk's round trips (a sparse frame). Same results either way.</remarks>
    private void BeginRefine(FrameOutput o, ReadOnlySpan<float> photons, int w, int h, ReadOnlySpan<FitResult> fits, bool keepPhotons,
                             IGroupFitter? local = null)
    {
        var mo = MultiEmitterOptions.From(_s);
        var r = o.Refiner;
        if (r is null || r.PsfSigmaPx != mo.PsfSigmaPx) { o.Refiner = r = new MultiEmitterRefiner(mo, _s.RoiSize); o.Residual = null; }
        int n = o.Batch.Count;
        r.Begin(photons, _camera.ReadNoiseMap ?? [], w, h, o.Batch.RoiSize, fits[..n], o.Batch.Left.AsSpan(0, n), o.Batch.Top.AsSpan(0, n), o.Batch.Peak.AsSpan(0, n));
        (o.Width, o.Height) = (w, h);
        if (!r.Done && local is not null && r.GroupsInPass < LocalGroups) r.Finish(local, photons, _camera.ReadNoiseMap ?? []);
        if (r.Done) { FinishRefine(o, photons); return; }
        o.Refining = true;
        if (keepPhotons)
        {
            if (o.Photons.Length < w * h) o.Photons = new float[w * h];
            photons.CopyTo(o.Photons);
        }
    }

    /// <summary>The frame's refined emitters, after the whole-frame residual passes when they are on, into localizations.</summary>
    private void FinishRefine(FrameOutput o, ReadOnlySpan<float> photons)
    {
        var r = o.Refiner!;
        o.Refining = false;
        var res = r.Result;
        int added = r.Added;
        var groups = r.GroupsBySize;
        if (_s.ResidualSearch)
        {
            var rp = o.Residual ??= new ResidualPasses(_s);
            // The passes refit with the frame's refiner, one frame at a time on the CPU (measured: they add a few emitters
            // per thousand, so they are off by default; DESIGN.md).
            res = rp.Run(r, res, photons, _camera.ReadNoiseMap ?? [], o.Width, o.Height, o.Batch.RoiSize, o.Threshold, o.SpreadTest, _readNoiseMedian, _readNoiseExcess);
            added += rp.Added;
            groups = rp.GroupsBySize;
        }
        o.Stats.Candidates += added;
        for (int k = 0; k < o.GroupsBySize.Length; k++) o.GroupsBySize[k] += groups[k];
        o.Collect(res, default, default, MinSnr);
    }

    /// <summary>Runs the rounds of the chunk's frames still refining after <see cref="BeginRefine"/> (frame i's photons
    /// from <paramref name="photonsOf"/>), then collects them.</summary>
    private void RefineChunk(FrameOutput[] slots, int count, Func<int, Memory<float>> photonsOf, IGroupFitter fitter, ParallelOptions options)
    {
        if (_pending.Length < count) _pending = new int[Math.Max(count, 2 * _pending.Length)];
        int m = 0;
        for (int i = 0; i < count; i++) if (slots[i].Refining) _pending[m++] = i;
        if (m == 0) return;
        var pending = _pending;
        var gamma = _camera.ReadNoiseMap ?? [];
        var jobs = _chunkJobs;
        bool device = fitter is not ParallelCpuGroupFitter;
        long t0 = Stopwatch.GetTimestamp();
        while (true)
        {
            jobs.Clear(gamma.Length > 0);
            int left = 0;
            for (int q = 0; q < m; q++)
            {
                var r = slots[pending[q]].Refiner!;
                if (!r.Done) { r.Collect(jobs); left++; }
            }
            if (left == 0) break;
            if (jobs.Count == 0) throw new MaLiangException("multi-emitter stage: frames still refining but no fit pending (internal error)");
            long d0 = Stopwatch.GetTimestamp();
            fitter.FitAll(jobs);
            long d1 = Stopwatch.GetTimestamp();
            if (device) _summary.GroupFitDeviceSeconds += (d1 - d0) / (double)Stopwatch.Frequency;
            else _summary.GroupFitCpuSeconds += (d1 - d0) / (double)Stopwatch.Frequency;
            RunParallel(() => Parallel.For(0, m, options, q =>
            {
                int i = pending[q];
                var r = slots[i].Refiner!;
                if (!r.Done) r.Deliver(jobs, photonsOf(i).Span, gamma);
            }));
        }
        _summary.RefineRoundsSeconds += (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        long perFrame = (Stopwatch.GetTimestamp() - t0) * _threads / m;
        RunParallel(() => Parallel.For(0, m, options, q =>
        {
            int i = pending[q];
            long f0 = Stopwatch.GetTimestamp();
            FinishRefine(slots[i], photonsOf(i).Span);
            slots[i].FitTicks += perFrame + Stopwatch.GetTimestamp() - f0;
        }));
    }
    private int[] _pending = [];

    /// <summary>CPU path: frames with fewer groups than this in their first pass are refined on their own thread at once
    /// (measured on maliang bench's sparse frames and the density sweep: DESIGN.md).</summary>
    public const int LocalGroups = 16;
    private readonly GroupFitJobs _chunkJobs = new();

    private IGroupFitter DeviceGroupFitter()
    {
        var mo = MultiEmitterOptions.From(_s);
        return _deviceGroupFit ??= _gpu!.CreateGroupFitter(mo.PsfSigmaPx, mo.MaxIterations, mo.Tolerance);
    }
    private IGroupFitter? _deviceGroupFit;

    private IGroupFitter CpuGroupFitter()
    {
        var mo = MultiEmitterOptions.From(_s);
        return _cpuGroupFit ??= new ParallelCpuGroupFitter(mo.PsfSigmaPx, mo.MaxIterations, mo.Tolerance, _threads);
    }
    private IGroupFitter? _cpuGroupFit;
}
