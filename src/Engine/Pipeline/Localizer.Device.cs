using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MaLiang.Engine.Camera;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Gpu;
using MaLiang.Engine.IO;

namespace MaLiang.Engine.Pipeline;
/// <summary>The GPU backends' half of the pipeline: chunks staged on the CPU threads while the device detects and fits the
/// previous one (<see cref="PushOnDevice"/>), and the device fit of CPU-detected ROIs (<see cref="FitOnDevice"/>); the fit
/// stage after the single fits runs per frame on the CPU threads as on the CPU backend.</summary>
public sealed partial class Localizer
{
    /// <summary>
    /// A chunk of frames read and converted to photons on the CPU threads, ready for the device. Two of them: the CPU
    /// reads chunk k+1 into one while the device works on chunk k from the other (and the threads refine and collect
    /// its results), so that reading does not wait for the device nor the device for reading.
    /// </summary>
    private sealed class StagedChunk
    {
        public float[] Photons = [];
        public long[] ReadTicks = [];
        public bool[] Blank = [];
        public int Count;
        public Exception? Error;       // the lowest frame's read error, thrown when the chunk's turn comes
        public int ErrorIndex;
        public Task? Reading;
        public IDisposable? Pin;       // the backend's page-lock of Photons (IGpuFitBackend.PinHost)
    }
    private readonly StagedChunk[] _staged = [new(), new()];

    /// <summary>Reads frames [first, first + count) of the source (numbered from <paramref name="frameBase"/>) into
    /// <paramref name="sc"/> on the threads. A frame's error is kept in the chunk, not thrown.</summary>
    private void Stage(StagedChunk sc, IFrameSource source, int first, int count, int frameBase, CancellationToken cancel)
    {
        int px = source.Width * source.Height;
        if (sc.Photons.Length < (long)count * px)
        {
            sc.Pin?.Dispose();
            sc.Pin = null;
            sc.Photons = []; // drop the old buffer before allocating the larger one
            // Pinned (it never moves) and page-locked by the backend, so the upload to the device runs at full speed.
            sc.Photons = GC.AllocateUninitializedArray<float>((int)((long)count * px), pinned: true);
            sc.Pin = _gpu?.PinHost(sc.Photons);
        }
        if (sc.ReadTicks.Length < count) { sc.ReadTicks = new long[count]; sc.Blank = new bool[count]; }
        sc.Count = count;
        sc.Error = null;
        var photons = sc.Photons; var ticks = sc.ReadTicks; var blank = sc.Blank;
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _threads, CancellationToken = cancel }, i =>
        {
            long t0 = Stopwatch.GetTimestamp();
            try { blank[i] = ReadPhotons(source, first + i, frameBase + i, photons.AsSpan(i * px, px)); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                lock (sc) if (sc.Error is null || i < sc.ErrorIndex) { sc.Error = e; sc.ErrorIndex = i; }
            }
            ticks[i] = Stopwatch.GetTimestamp() - t0;
        });
    }

    private static void WaitQuietly(StagedChunk? sc)
    {
        try { sc?.Reading?.Wait(); }
        catch (AggregateException) { }   // a cancelled or failed read-ahead of frames that will not be used
    }

    /// <summary>The device path of <see cref="Push"/>: chunks of <paramref name="chunk"/> frames, each read ahead while the
    /// previous one is on the device. On out-of-memory the chunk is halved (the frames already staged are kept).</summary>
    private void PushOnDevice(IFrameSource source, int first, int count, int chunk, Action<ReadOnlySpan<Localization>>? sink,
                              IProgress<PipelineProgress>? progress, int total, CancellationToken cancel)
    {
        if (count == 0) return;
        int which = 0;
        var cur = _staged[0];
        Stage(cur, source, first, Math.Min(chunk, count), _summary.Frames, cancel);
        StagedChunk? next = null;
        CancellationTokenSource? readAhead = null;
        try
        {
            for (int c = 0; c < count;)
            {
                cancel.ThrowIfCancellationRequested();
                // (After an out-of-memory halving, an error past the shortened chunk comes back when its frame is staged again.)
                if (cur.Error is { } error && cur.ErrorIndex < cur.Count) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
                int m = cur.Count, after = c + m;
                if (after < count)
                {
                    var n = next = _staged[1 - which];
                    int nm = Math.Min(chunk, count - after), nBase = _summary.Frames + m;
                    readAhead?.Dispose();
                    readAhead = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                    var token = readAhead.Token;
                    n.Reading = Task.Run(() => Stage(n, source, first + after, nm, nBase, token), CancellationToken.None);
                }
                try { ProcessChunkOnDevice(source, cur, cancel); }
                catch (Exception e) when (m > 1 && GpuMemory.IsOutOfMemory(e))
                {
                    // The device is short of memory for this many frames (a smaller GPU, another process): free the
                    // detector's buffers, halve the chunk and redo it. Nothing of the chunk was merged yet; its first
                    // half is staged already, the read-ahead (which started after the whole chunk) is dropped.
                    readAhead?.Cancel();
                    WaitQuietly(next);
                    next = null;
                    _detector?.Dispose();
                    _detector = null;
                    chunk = _gpuChunkFramesInUse = _oomChunkFrames = Math.Max(1, m / 2);
                    _oomFramePixels = (long)source.Width * source.Height;
                    cur.Count = chunk;
                    continue;
                }
                for (int i = 0; i < m; i++) if (cur.Blank[i]) Interlocked.Increment(ref _blankFrames);
                Merge(m, sink);
                c += m;
                progress?.Report(new PipelineProgress(_summary.Frames, total, _summary.Localizations));
                if (next is not null)
                {
                    try { next.Reading!.GetAwaiter().GetResult(); }   // only cancellation escapes Stage
                    catch (OperationCanceledException) { cancel.ThrowIfCancellationRequested(); throw; }
                    next.Reading = null;
                    cur = next;
                    next = null;
                    which = 1 - which;
                }
            }
        }
        finally
        {
            // Never return while a read-ahead still uses the source or the buffers; on a failure, stop it first.
            if (next is not null) readAhead?.Cancel();
            WaitQuietly(next);
            if (next is not null) next.Reading = null;
            readAhead?.Dispose();
        }
    }

    /// <summary>
    /// The whole chunk on the GPU: read + camera on the CPU threads into one chunk buffer, one
    /// <see cref="GpuDetector.DetectOnDevice"/> call (de-noise, noise, threshold, maxima, ROI cut-out), one device fit of
    /// all the chunk's ROIs (in place unless <see cref="KeepRoisOnDevice"/> is off), then per frame on the CPU threads:
    /// neighbour refinement (when overlapping candidates are kept; it needs the photon frames, hence the chunk buffer)
    /// and the conversion to localizations.
    /// </summary>
    private void ProcessChunkOnDevice(IFrameSource source, StagedChunk staged, CancellationToken cancel)
    {
        int count = staged.Count, frameBase = _summary.Frames, w = source.Width, h = source.Height, px = w * h;
        if (_roiStart.Length < count + 1) _roiStart = new int[count + 1];
        if (_slots.Length < count) _slots = new FrameOutput[count];
        var chunk = staged.Photons; var readTicks = staged.ReadTicks; var slots = _slots;
        var options = new ParallelOptions { MaxDegreeOfParallelism = _threads, CancellationToken = cancel };

        var det = _detector ??= _gpu!.CreateDetector();
        var found = det.DetectOnDevice(chunk.AsSpan(0, count * px), w, h, count, _gpuDetectOptions);
        int total = det.DetectedCount;
        var start = _roiStart;
        start[0] = 0;
        for (int i = 0; i < count; i++) start[i + 1] = start[i] + found[i].Stats.Candidates;
        if (start[count] != total) throw new MaLiangException($"GPU detection: {total} ROIs but the frames count {start[count]} (device error)");

        if (_deviceResults.Length < total) _deviceResults = new FitResult[Math.Max(total, 2 * _deviceResults.Length)];
        long f0 = Stopwatch.GetTimestamp();
        if (total > 0)
        {
            if (KeepRoisOnDevice)
            {
                _gpu!.FitDetected(det, _fitOptions, _deviceResults);
                _summary.FitKernelSeconds += _gpu.LastKernelSeconds;
            }
            else
            {
                var big = _deviceBatch ??= new RoiBatch(_s.RoiSize, Math.Max(total, 256));
                big.Clear();
                big.Reserve(total);
                var left = det.DetectedLeft; var top = det.DetectedTop; var fr = det.DetectedFrame;
                var peak = det.DetectedPeak;
                for (int k = 0; k < total; k++) big.Add(chunk.AsSpan(fr[k] * px, px), w, frameBase + fr[k], left[k], top[k], peak[k]);
                _backend.Fit(big, _fitOptions, _deviceResults);
            }
        }
        double fitWall = (Stopwatch.GetTimestamp() - f0) / (double)Stopwatch.Frequency;
        _summary.ReadSeconds += det.LastUploadSeconds * _threads;
        _summary.DenoiseSeconds += det.LastFilterSeconds * _threads;
        _summary.DetectSeconds += det.LastDetectSeconds * _threads;
        _summary.FitSeconds += fitWall * _threads;

        bool refine = !_s.RejectOverlapping;
        var results = _deviceResults;
        int[] lefts = det.DetectedLeft.ToArray(), tops = det.DetectedTop.ToArray(), peaks = det.DetectedPeak.ToArray();
        // The multi-emitter stage starts per frame here and runs its joint fits on the device over the whole chunk
        // (RefineChunk); the single-emitter neighbour refit (--single-emitter) runs per frame on the threads.
        bool multi = refine && _s.MultiEmitter;
        RunParallel(() => Parallel.For(0, count, options,
            () => Rent(1, 1),
            (i, _, wk) =>
            {
                var o = NewOutput();
                o.FrameIndex = frameBase + i;
                o.Stats = found[i].Stats;
                o.ReadTicks = readTicks[i];
                int s0 = start[i], k = start[i + 1] - s0;
                var fits = results.AsSpan(s0, k);
                var photons = chunk.AsSpan(i * px, px);
                if (refine) for (int j = 0; j < k; j++) o.Batch.Add(photons, w, frameBase + i, lefts[s0 + j], tops[s0 + j], peaks[s0 + j]);
                if (multi)
                {
                    (o.Threshold, o.SpreadTest) = (found[i].Threshold, wk.SpreadTest(found[i].Stats));
                    BeginRefine(o, photons, w, h, fits, keepPhotons: false);
                }
                else if (refine && k > 0)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    var all = wk.AfterSingleFits(photons, _camera.ReadNoiseMap, w, h, found[i].Threshold, o.Batch, fits, _fitOptions, out int added);
                    o.Stats.Candidates += added;
                    o.FitTicks = Stopwatch.GetTimestamp() - t0;
                    o.Collect(all, o.Batch.Left, o.Batch.Top, MinSnr);
                }
                else o.Collect(fits, lefts.AsSpan(s0, k), tops.AsSpan(s0, k), MinSnr);
                slots[i] = o;
                return wk;
            },
            Return));
        if (multi) RefineChunk(slots, count, i => chunk.AsMemory(i * px, px), DeviceGroupFitter(), options);
    }

    /// <summary>GPU backends want big batches: fit the whole chunk's ROIs in one call.</summary>
    private void FitOnDevice(FrameOutput[] slots, int count)
    {
        int total = 0;
        for (int i = 0; i < count; i++) total += slots[i].Batch.Count;
        var big = _deviceBatch ??= new RoiBatch(_s.RoiSize, Math.Max(total, 256));
        big.Clear();
        for (int i = 0; i < count; i++)
        {
            var b = slots[i].Batch;
            for (int k = 0; k < b.Count; k++) big.Add(b.Roi(k), b.Frame[k], b.Left[k], b.Top[k], b.Peak[k], b.RoiReadNoise(k));
        }
        if (_deviceResults.Length < total) _deviceResults = new FitResult[total];
        long t0 = Stopwatch.GetTimestamp();
        _backend.Fit(big, _fitOptions, _deviceResults);
        long ticks = Stopwatch.GetTimestamp() - t0;
        var start = _roiStart.Length > count ? _roiStart : (_roiStart = new int[count + 1]);
        start[0] = 0;
        for (int i = 0; i < count; i++) start[i + 1] = start[i] + slots[i].Batch.Count;
        var results = _deviceResults;
        bool refine = !_s.RejectOverlapping;
        // The multi-emitter stage starts per frame and runs its joint fits on the device over the chunk (RefineChunk);
        // single-emitter mode refines neighbours (CPU, as in the CPU path); then the conversion to localizations.
        bool multi = refine && _s.MultiEmitter;
        var opt = new ParallelOptions { MaxDegreeOfParallelism = _threads };
        RunParallel(() => Parallel.For(0, count, opt,
            () => Rent(1, 1),
            (i, _, wk) =>
            {
                var o = slots[i];
                ReadOnlySpan<FitResult> fits = results.AsSpan(start[i], o.Batch.Count);
                long r0 = Stopwatch.GetTimestamp();
                if (multi) BeginRefine(o, o.Photons.AsSpan(0, o.Width * o.Height), o.Width, o.Height, fits, keepPhotons: false);
                else
                {
                    if (refine && o.Batch.Count > 0)
                    {
                        fits = wk.AfterSingleFits(o.Photons.AsSpan(0, o.Width * o.Height), _camera.ReadNoiseMap, o.Width, o.Height, o.Threshold, o.Batch, fits,
                                                  _fitOptions, out int added);
                        o.Stats.Candidates += added;
                    }
                    o.Collect(fits, o.Batch.Left, o.Batch.Top, MinSnr);
                }
                o.FitTicks += ticks * _threads / Math.Max(1, count) + (Stopwatch.GetTimestamp() - r0);
                return wk;
            },
            Return));
        if (multi) RefineChunk(slots, count, i => slots[i].Photons.AsMemory(0, slots[i].Width * slots[i].Height), DeviceGroupFitter(), opt);
    }
    private RoiBatch? _deviceBatch;
    private FitResult[] _deviceResults = Array.Empty<FitResult>();
}
