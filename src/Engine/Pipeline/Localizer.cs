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

/// <summary>Frames done out of the total (0 when the total is open-ended, as in live acquisition) and localizations so far.</summary>
public readonly record struct PipelineProgress(int FramesDone, int FramesTotal, long Localizations);

/// <summary>What a run did: counts, drops and their reasons, timing.</summary>
public sealed class PipelineSummary
{
    public int Frames { get; internal set; }
    public long Localizations { get; internal set; }
    public long Candidates { get; internal set; }
    public long DroppedAtEdge { get; internal set; }
    public long DroppedOverlap { get; internal set; }
    public long DroppedFitFailed { get; internal set; }
    public long DroppedLeftRoi { get; internal set; }
    /// <summary>Fits whose photons were below <see cref="LocalizerSettings.MinPhotonSnr"/> times their uncertainty.</summary>
    public long DroppedLowSnr { get; internal set; }
    /// <summary>3D: fits whose z left the calibration's z range.</summary>
    public long DroppedOutsideZRange { get; internal set; }
    /// <summary>True for a 3D (astigmatic) run; the description then names the z drops.</summary>
    public bool ThreeD { get; internal set; }
    public double WallSeconds { get; internal set; }
    /// <summary>Per-stage time summed over worker threads (seconds of CPU): read + camera, de-noise, detection + ROI cut-out, fit.
    /// With device detection (GPU backends) the device stages are wall seconds x <see cref="Threads"/>, so that
    /// <see cref="StageMsPerFrame"/> gives their wall time per frame: de-noise = the filter kernels; detection = noise
    /// estimate, threshold, maxima, classification, ROI cut-out and their small read-backs; fit = the device fit with its
    /// transfers plus the CPU time of the neighbour refinement (over the threads); read = read + camera on the CPU threads
    /// plus the upload of the chunk to the device (x threads).</summary>
    public double ReadSeconds { get; internal set; }
    public double DenoiseSeconds { get; internal set; }
    public double DetectSeconds { get; internal set; }
    public double FitSeconds { get; internal set; }
    /// <summary>GPU backends with device detection: wall seconds of the fit kernels alone (transpose + fit, no transfers),
    /// not scaled by the threads; 0 otherwise.</summary>
    public double FitKernelSeconds { get; internal set; }
    /// <summary>Frames after the first whose every pixel was at or below the offset (no localizations).</summary>
    public long BlankFrames { get; internal set; }
    public int Threads { get; internal set; }
    public string Backend { get; internal set; } = "cpu";
    /// <summary>True when de-noise, noise estimate, detection and ROI cut-out ran on the GPU device.</summary>
    public bool DeviceDetection { get; internal set; }

    public double MsPerFrame => Frames == 0 ? 0 : WallSeconds * 1e3 / Frames;
    /// <summary>A stage's share of the wall time per frame: its CPU time per frame divided by the worker threads.</summary>
    public double StageMsPerFrame(double stageSeconds) => Frames == 0 ? 0 : stageSeconds * 1e3 / Frames / Math.Max(1, Threads);

    public string Describe() =>
        $"{Frames} frames, {Localizations} localizations ({Candidates} candidates; dropped: {DroppedAtEdge} at the frame edge, " +
        $"{DroppedOverlap} overlapping, {DroppedFitFailed} failed fits, {DroppedLowSnr} below the SNR, {DroppedLeftRoi} left the ROI" +
        (ThreeD ? $", {DroppedOutsideZRange} outside the calibrated z range" : "") + ")" +
        (BlankFrames > 0 ? $", {BlankFrames} blank frames (every pixel at or below the offset)" : "") + $", {MsPerFrame:F3} ms/frame " +
        $"on {Backend} x {Threads} threads";
}

/// <summary>
/// The engine's one entry point: camera -> de-noise -> threshold -> detect -> ROI cut -> MLE fit -> localizations,
/// frame by frame, in bounded memory. Push frames as they come (live acquisition, C ABI, Python, Java) or run a whole
/// source with <see cref="Run"/>. Frames are processed in chunks across threads; results come out in frame order and
/// do not depend on the thread count. Not thread-safe: one caller pushes at a time.
/// </summary>
public sealed class Localizer : IDisposable
{
    private readonly LocalizerSettings _s;
    private readonly IFitBackend _backend;
    private readonly bool _ownsBackend;
    private readonly bool _cpuFit;
    private CameraModel _camera;
    private int _cameraWidth, _cameraHeight;
    private float[]? _readNoiseExcess;
    private readonly FitOptions _fitOptions;
    private readonly int _threads;
    private readonly Stack<Worker> _workers = new();
    private readonly List<Localization> _results = new();
    private readonly PipelineSummary _summary = new();
    private FrameOutput[] _slots = Array.Empty<FrameOutput>();
    private readonly IGpuFitBackend? _gpu;
    private readonly GpuDetectOptions _gpuDetectOptions;
    private GpuDetector? _detector;
    private int[] _roiStart = Array.Empty<int>();

    /// <summary>Pixels per chunk when <see cref="GpuChunkFrames"/> is 0 (auto): 32 Mpx = 128 frames of 512x512
    /// (128 MiB of photons on the host, about 4x that on the device), 8 frames of 2048x2048.</summary>
    public const long GpuChunkPixels = 32L << 20;
    /// <summary>Most frames per chunk on a GPU backend.</summary>
    public const int MaxGpuChunkFrames = 256;
    /// <summary>Device bytes per frame pixel of a chunk: frames, filtered, two filter temporaries (4 floats) and room
    /// for the ROIs, their pixel-major copy and the fit results.</summary>
    public const long DeviceBytesPerPixel = 20;

    /// <summary>Frames per chunk: enough to keep every thread busy, few enough that memory stays bounded.</summary>
    public int ChunkFrames { get; }
    /// <summary>
    /// Frames per chunk on a GPU backend with <see cref="DeviceDetection"/>: one upload, one detection and one fit call
    /// per chunk. 0 (default) = auto: about <see cref="GpuChunkPixels"/> pixels, 1 to <see cref="MaxGpuChunkFrames"/>
    /// frames. Host memory: one float per pixel of the chunk; device memory: about 4 floats per pixel plus the ROIs.
    /// </summary>
    public int GpuChunkFrames
    {
        get => _gpuChunkFrames;
        set => _gpuChunkFrames = value >= 0 ? value : throw new InvalidParameterException("gpu-chunk-frames", $"must be >= 0, got {value}");
    }
    private int _gpuChunkFrames;
    /// <summary>GPU backends (<see cref="IGpuFitBackend"/>): run de-noise, noise estimate, detection and ROI cut-out on the
    /// device too, a chunk of frames per call (default). When false, detection runs on the CPU threads and only the fit
    /// runs on the device. No effect on the CPU backend.</summary>
    public bool DeviceDetection { get; set; } = true;
    /// <summary>With <see cref="DeviceDetection"/>: fit the ROIs where the detector cut them, on the device (default). When
    /// false, the ROIs are cut again on the host from the chunk and uploaded for the fit (same pixels, same results).</summary>
    public bool KeepRoisOnDevice { get; set; } = true;

    /// <summary>Frames per chunk for frames of <paramref name="width"/> x <paramref name="height"/> on this backend.</summary>
    public int ChunkFramesFor(int width, int height)
    {
        if (!UsesDeviceDetection) return ChunkFrames;
        long px = Math.Max(1L, (long)width * height);
        int frames = _gpuChunkFrames > 0 ? _gpuChunkFrames : (int)Math.Clamp(GpuChunkPixels / px, 1, MaxGpuChunkFrames);
        // And what half the device's free memory holds (a small or shared GPU): the detector keeps about
        // DeviceBytesPerPixel per chunk pixel. An out-of-memory later still halves the chunk (Push).
        if (_gpuChunkFrames == 0)
        {
            long free = _gpu!.FreeMemoryBytes + (_detector?.DeviceBytes ?? 0);   // its buffers are reused for the next chunk
            frames = (int)Math.Max(1, Math.Min(frames, free / 2 / (DeviceBytesPerPixel * px)));
        }
        return (int)Math.Max(1, Math.Min(frames, (int.MaxValue / 2) / px));   // the detector's limit per call
    }

    /// <summary>With a read-noise (variance) map, detection and ROI cut-out stay on the CPU threads (the ROIs carry their
    /// read-noise planes, and the threshold is per pixel) and only the fit runs on the device.</summary>
    private bool UsesDeviceDetection => _gpu is not null && DeviceDetection && _s.CameraMaps?.VarianceAdu2 is null && _s.ZCalibration is null;

    /// <summary>Frames per chunk of the last <see cref="Push"/>: <see cref="ChunkFramesFor"/>, or fewer after the device
    /// ran out of memory (the chunk is halved and redone, and later pushes of the same frame size keep the smaller chunk).</summary>
    public int ChunkFramesInUse => _gpuChunkFramesInUse;
    private int _gpuChunkFramesInUse;
    private int _oomChunkFrames;     // the chunk an out-of-memory came down to, for frames of _oomFramePixels
    private long _oomFramePixels;
    public LocalizerSettings Settings => _s;
    public PipelineSummary Summary => _summary;
    /// <summary>Frames pushed so far; the next frame pushed gets this 0-based index.</summary>
    public int FramesProcessed => _summary.Frames;
    /// <summary>When false, localizations go only to the sink of each call and are not kept (streaming to a file).</summary>
    public bool KeepResults { get; set; } = true;
    public IReadOnlyList<Localization> Results => _results;

    public Localizer(LocalizerSettings settings, IFitBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _s = settings.Clone();
        if (_s.ZCalibration is not null) Use3D(backend);
        _threads = _s.Threads > 0 ? _s.Threads : Environment.ProcessorCount;
        _camera = CameraModel.From(_s);
        _fitOptions = FitOptions.From(_s);
        if (backend == null) { _backend = FitBackends.Create(_s.Backend, _threads, out _); _ownsBackend = true; }
        else _backend = backend;
        _cpuFit = _backend is CpuFitBackend;
        _gpu = _backend as IGpuFitBackend;
        _gpuDetectOptions = GpuDetectOptions.From(_s);
        ChunkFrames = Math.Max(8, 4 * _threads);
        _summary.Threads = _threads;
        _summary.Backend = _backend.Name;
    }

    /// <summary>3D (DESIGN.md "3D astigmatism"): the calibration must be at this pixel size; the ROI grows to hold the widest
    /// spot in its z range; the neighbour refit is a round-Gaussian step, so close candidates are dropped as with
    /// --reject-overlapping; on a GPU backend the ROIs are cut on the CPU threads and fitted on the device (astigmatic.cl).</summary>
    private void Use3D(IFitBackend? backend)
    {
        var zc = _s.ZCalibration!;
        zc.Validate();
        zc.CheckPixelSize(_s.PixelSizeNm);
        _s.RoiSize = zc.RoiSize(_s.RoiSize);
        _s.RejectOverlapping = true;
        _summary.ThreeD = true;
    }

    /// <summary>Sets (or, with null, removes) the sCMOS camera maps for the frames pushed from now on
    /// (<see cref="LocalizerSettings.CameraMaps"/>); not while a push runs.</summary>
    public void SetCameraMaps(CameraMaps? maps)
    {
        _s.CameraMaps = maps;
        _camera = CameraModel.From(_s);
        _readNoiseExcess = null;
        _cameraWidth = _cameraHeight = 0;
    }

    /// <summary>Forgets the results kept so far (frame numbering goes on).</summary>
    public void ClearResults() => _results.Clear();

    /// <summary>Localizes every frame of <paramref name="source"/>; returns the summary of this localizer so far.</summary>
    public PipelineSummary Run(IFrameSource source, Action<ReadOnlySpan<Localization>>? sink = null,
        IProgress<PipelineProgress>? progress = null, CancellationToken cancel = default)
    {
        Push(source, 0, source.FrameCount, sink, progress, cancel);
        return _summary;
    }

    /// <summary>Localizes frames [first, first + count) of a source; they are numbered after the frames pushed before.</summary>
    public void Push(IFrameSource source, int first, int count, Action<ReadOnlySpan<Localization>>? sink = null,
        IProgress<PipelineProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (first < 0 || count < 0 || first + (long)count > source.FrameCount)
            throw new InvalidParameterException("frames", $"frames {first}..{first + count} are outside {source.Name}'s {source.FrameCount} frames");
        int n = _s.RoiSize;
        if (source.Width < n || source.Height < n)
            throw new MaLiangException($"{source.Name}: frames of {source.Width}x{source.Height} px are smaller than the {n}x{n} ROI");
        UseCameraFor(source);
        var sw = Stopwatch.StartNew();
        int total = progress == null ? 0 : _summary.Frames + count;
        int chunk = ChunkFramesFor(source.Width, source.Height);
        long framePixels = (long)source.Width * source.Height;
        if (_oomFramePixels != framePixels) _oomChunkFrames = 0;   // an out-of-memory only bounds the same frame size
        if (UsesDeviceDetection && _oomChunkFrames > 0) chunk = Math.Min(chunk, _oomChunkFrames);
        _gpuChunkFramesInUse = chunk;
        _summary.DeviceDetection = UsesDeviceDetection;
        if (UsesDeviceDetection) PushOnDevice(source, first, count, chunk, sink, progress, total, cancel);
        else
            for (int c = 0; c < count; c += chunk)
            {
                cancel.ThrowIfCancellationRequested();
                int m = Math.Min(chunk, count - c);
                ProcessChunk(source, first + c, m, cancel);
                Merge(m, sink);
                progress?.Report(new PipelineProgress(_summary.Frames, total, _summary.Localizations));
            }
        _summary.WallSeconds += sw.Elapsed.TotalSeconds;
    }

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

    /// <summary>The camera for this source's frame size: with maps, their crops at the origin (once per frame size).</summary>
    private void UseCameraFor(IFrameSource source)
    {
        var maps = _s.CameraMaps;
        if (maps is null || (source.Width == _cameraWidth && source.Height == _cameraHeight)) return;
        maps.CheckCovers(source.Width, source.Height, source.Name);
        _camera = CameraModel.From(_s, source.Width, source.Height);
        _readNoiseExcess = _camera.ReadNoiseMap is { } g ? ReadNoiseThreshold.Excess(Denoise.FrameFilters.Create(_s), g, source.Width, source.Height) : null;
        _cameraWidth = source.Width; _cameraHeight = source.Height;
    }

    private void ProcessChunk(IFrameSource source, int first, int count, CancellationToken cancel)
    {
        int frameBase = _summary.Frames;
        if (_slots.Length < count) _slots = new FrameOutput[count];
        var slots = _slots;
        // Each frame's work (and, for the CPU backend, its fit) runs on one thread; outputs stay per frame until merged in order.
        RunParallel(() => Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _threads, CancellationToken = cancel },
            () => Rent(source.Width, source.Height),
            (i, _, w) =>
            {
                try { slots[i] = w.Frame(source, first + i, frameBase + i, this); }
                catch (Exception e) when (e is not OperationCanceledException) { Failed(i, e); }
                return w;
            },
            Return));

        if (!_cpuFit) FitOnDevice(slots, count);
    }

    /// <summary>Merges a chunk's per-frame outputs in frame order: counts, timings, results, the sink.</summary>
    private void Merge(int count, Action<ReadOnlySpan<Localization>>? sink)
    {
        var slots = _slots;
        for (int i = 0; i < count; i++)
        {
            var o = slots[i];
            _summary.Candidates += o.Stats.Candidates;
            _summary.DroppedAtEdge += o.Stats.DroppedAtEdge;
            _summary.DroppedOverlap += o.Stats.DroppedOverlap;
            _summary.DroppedFitFailed += o.FitFailed;
            _summary.DroppedLeftRoi += o.LeftRoi;
            _summary.DroppedLowSnr += o.LowSnr;
            _summary.DroppedOutsideZRange += o.OutsideZ;
            _summary.ReadSeconds += o.ReadTicks / (double)Stopwatch.Frequency;
            _summary.DenoiseSeconds += o.DenoiseTicks / (double)Stopwatch.Frequency;
            _summary.DetectSeconds += o.DetectTicks / (double)Stopwatch.Frequency;
            _summary.FitSeconds += o.FitTicks / (double)Stopwatch.Frequency;
            var locs = o.Locs.AsSpan(0, o.LocCount);
            _summary.Localizations += locs.Length;
            if (KeepResults) _results.AddRange(locs);
            if (sink != null && locs.Length > 0) sink(locs);
            ReturnOutput(o);
            slots[i] = null!;
        }
        _summary.Frames += count;
        _summary.BlankFrames = Interlocked.Read(ref _blankFrames);
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
                if (refine && k > 0)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    var photons = chunk.AsSpan(i * px, px);
                    for (int j = 0; j < k; j++) o.Batch.Add(photons, w, frameBase + i, lefts[s0 + j], tops[s0 + j], peaks[s0 + j]);
                    var all = wk.RefineFrame(photons, _camera.ReadNoiseMap, w, h, found[i].Threshold, o.Batch, fits, _fitOptions, out int added);
                    o.Stats.Candidates += added;
                    o.FitTicks = Stopwatch.GetTimestamp() - t0;
                    o.Collect(all, o.Batch.Left, o.Batch.Top, (float)_s.MinPhotonSnr);
                }
                else o.Collect(fits, lefts.AsSpan(s0, k), tops.AsSpan(s0, k), (float)_s.MinPhotonSnr);
                slots[i] = o;
                return wk;
            },
            Return));
    }

    /// <summary>
    /// Reads a frame and converts it to photons. A first frame with every pixel at or below the offset means a wrong
    /// offset: a user error, named. A later blank frame (a dropped camera frame, a closed shutter) is only counted: it
    /// has no maxima, and one bad frame must not end a long run.
    /// </summary>
    /// <returns>True for a blank frame after the first (the caller counts it when the frame is merged).</returns>
    private bool ReadPhotons(IFrameSource source, int index, int frameIndex, Span<float> photons)
    {
        source.ReadFrame(index, photons);
        if (_camera.ToPhotons(photons) > 0) return false;
        if (frameIndex == 0)
            throw new MaLiangException($"{source.Name}: frame {index + 1}: the offset {_s.OffsetAdu} ADU is at or above every pixel; check --offset (the camera baseline)");
        return true;
    }
    private long _blankFrames;

    /// <summary>
    /// Runs a parallel loop over a chunk's frames. A frame's error is recorded by <see cref="Failed"/> while the other
    /// frames finish, then the lowest frame's error is thrown as it was (a MaLiangException names the file and frame):
    /// the same error whatever the thread timing.
    /// </summary>
    private void RunParallel(Action body)
    {
        _error = null;
        try { body(); }
        catch (AggregateException e)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();
        }
        if (_error is { } first) { _error = null; System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw(); }
    }

    private readonly object _errorLock = new();
    private Exception? _error;
    private int _errorIndex;

    /// <summary>Records frame <paramref name="index"/>'s error (of the chunk), keeping the lowest frame's.</summary>
    private void Failed(int index, Exception e)
    {
        lock (_errorLock)
            if (_error is null || index < _errorIndex) { _error = e; _errorIndex = index; }
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
        // Neighbour refinement (CPU, as in the CPU path) and the conversion to localizations, per frame on the threads.
        RunParallel(() => Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _threads },
            () => Rent(1, 1),
            (i, _, wk) =>
            {
                var o = slots[i];
                var fits = results.AsSpan(start[i], o.Batch.Count);
                long r0 = Stopwatch.GetTimestamp();
                if (refine && o.Batch.Count > 0)
                {
                    fits = wk.RefineFrame(o.Photons.AsSpan(0, o.Width * o.Height), _camera.ReadNoiseMap, o.Width, o.Height, o.Threshold, o.Batch, fits, _fitOptions, out int added);
                    o.Stats.Candidates += added;
                }
                o.FitTicks += ticks * _threads / Math.Max(1, count) + (Stopwatch.GetTimestamp() - r0);
                o.Collect(fits, o.Batch.Left, o.Batch.Top, (float)_s.MinPhotonSnr);
                return wk;
            },
            Return));
    }
    private RoiBatch? _deviceBatch;
    private FitResult[] _deviceResults = Array.Empty<FitResult>();

    private Worker Rent(int width, int height)
    {
        lock (_workers)
        {
            if (_workers.Count > 0) { var w = _workers.Pop(); w.Ensure(width, height); return w; }
        }
        var nw = new Worker(_s);
        nw.Ensure(width, height);
        return nw;
    }

    private void Return(Worker w) { lock (_workers) _workers.Push(w); }

    // Per-frame outputs are pooled: they own the buffers a frame's ROIs and results live in until merged.
    private readonly Stack<FrameOutput> _outputs = new();
    private FrameOutput NewOutput() { lock (_outputs) return _outputs.Count > 0 ? _outputs.Pop() : new FrameOutput(_s.RoiSize) { ZFactor = _s.ZCalibration is { } zc ? (float)zc.RefractiveIndexFactor : float.NaN }; }
    private void ReturnOutput(FrameOutput o) { o.Reset(); lock (_outputs) _outputs.Push(o); }

    public void Dispose()
    {
        _detector?.Dispose();
        _detector = null;
        foreach (var sc in _staged) { sc.Pin?.Dispose(); sc.Pin = null; }
        if (_ownsBackend) _backend.Dispose();
    }

    /// <summary>One frame's ROIs, localizations and counts.</summary>
    private sealed class FrameOutput(int roiSize)
    {
        public readonly RoiBatch Batch = new(roiSize, 128);
        public Localization[] Locs = new Localization[64];
        public int LocCount, FrameIndex;
        public DetectionStats Stats;
        /// <summary>With a device fit after CPU detection and the neighbour refit on: the frame in photons and its
        /// detection threshold, kept for the refit's residual search (the worker's frame buffer is reused meanwhile).</summary>
        public float[] Photons = [];
        public int Width, Height;
        public float Threshold;
        /// <summary>3D: the calibration's refractive-index factor (reported z per stage z); NaN in 2D (z = 0, flag bit 1 clear).</summary>
        public float ZFactor = float.NaN;
        public long OutsideZ;
        public long FitFailed, LeftRoi, LowSnr, ReadTicks, DenoiseTicks, DetectTicks, FitTicks;

        public void Reset()
        {
            Batch.Clear(); LocCount = 0; Stats = default; OutsideZ = 0; FitFailed = LeftRoi = LowSnr = ReadTicks = DenoiseTicks = DetectTicks = FitTicks = 0;
        }

        /// <summary>Turns kept fits into localizations in frame coordinates; counts the dropped ones.</summary>
        public void Collect(ReadOnlySpan<FitResult> results, ReadOnlySpan<int> left, ReadOnlySpan<int> top, float minSnr)
        {
            if (Locs.Length < results.Length) Locs = new Localization[Math.Max(results.Length, 2 * Locs.Length)];
            int k = 0;
            for (int i = 0; i < results.Length; i++)
            {
                ref readonly var f = ref results[i];
                if (f.Status == FitStatus.Failed) { FitFailed++; continue; }
                if (f.Status == FitStatus.LeftRoi) { LeftRoi++; continue; }
                if (f.Status == FitStatus.OutsideZRange) { OutsideZ++; continue; }
                if (!(f.Photons >= minSnr * f.CrlbPhotons)) { LowSnr++; continue; }
                Locs[k++] = new Localization
                {
                    Frame = FrameIndex,
                    X = left[i] + f.X, Y = top[i] + f.Y,
                    Photons = f.Photons, Background = f.Background, Sigma = f.Sigma,
                    UncertaintyX = f.CrlbX, UncertaintyY = f.CrlbY, UncertaintyPhotons = f.CrlbPhotons,
                    UncertaintyBackground = f.CrlbBackground, UncertaintySigma = f.CrlbSigma,
                    LogLikelihood = f.LogLikelihood, Llr = f.Llr, Iterations = f.Iterations, Detections = 1,
                    Flags = (f.Status == FitStatus.Converged ? Localization.FlagConverged : 0) | (float.IsNaN(ZFactor) ? 0 : Localization.FlagHasZ),
                    Z = float.IsNaN(ZFactor) ? 0f : f.Z * ZFactor, UncertaintyZ = float.IsNaN(ZFactor) ? 0f : f.CrlbZ * ZFactor,
                };
            }
            LocCount = k;
        }
    }

    /// <summary>One thread's frame buffers, filter, detector and fitter. No allocation per frame once warmed up.</summary>
    private sealed class Worker
    {
        private readonly LocalizerSettings _s;
        private readonly FrameDetector _detect;
        private readonly List<Candidate> _candidates = new();
        private readonly CpuFitBackend _fit = new(1);
        private float[] _photons = Array.Empty<float>();
        private FitResult[] _fitResults = Array.Empty<FitResult>();
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
        private readonly MaLiang.Engine.Denoise.IFrameFilter _tileFilter;
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

        public Worker(LocalizerSettings s)
        {
            _s = s;
            _detect = new FrameDetector(s);
            _tileFilter = MaLiang.Engine.Denoise.FrameFilters.Create(s);
        }

        public void Ensure(int width, int height)
        {
            int px = width * height;
            if (_photons.Length < px) _photons = new float[px];
        }

        public FrameOutput Frame(IFrameSource source, int sourceIndex, int frameIndex, Localizer owner)
        {
            var o = owner.NewOutput();
            o.FrameIndex = frameIndex;
            int w = source.Width, h = source.Height, px = w * h;
            var photons = _photons.AsSpan(0, px);
            long t0 = Stopwatch.GetTimestamp();
            if (owner.ReadPhotons(source, sourceIndex, frameIndex, photons)) Interlocked.Increment(ref owner._blankFrames);
            long t1 = Stopwatch.GetTimestamp();
            // Filter, robust noise, threshold and maxima: the one FrameDetector (the tests' reference too).
            var before = _detect.Times;
            _detect.ReadNoiseExcess = owner._readNoiseExcess;
            var det = _detect.Detect(photons, w, h, _candidates);
            o.Stats = det.Stats;
            var after = _detect.Times;
            var readNoise = owner._camera.ReadNoiseMap.AsSpan();
            foreach (var c in _candidates) o.Batch.AddAround(photons, w, h, frameIndex, c.X, c.Y, readNoise);
            long t3 = Stopwatch.GetTimestamp();
            o.ReadTicks = t1 - t0;
            o.DenoiseTicks = after.FilterTicks - before.FilterTicks;
            o.DetectTicks = (t3 - t1) - o.DenoiseTicks;
            if (!owner._cpuFit && !_s.RejectOverlapping)
            {
                if (o.Photons.Length < px) o.Photons = new float[px];
                photons.CopyTo(o.Photons);
                (o.Width, o.Height, o.Threshold) = (w, h, det.Threshold);
            }
            if (owner._cpuFit)
            {
                if (_fitResults.Length < o.Batch.Count) _fitResults = new FitResult[Math.Max(o.Batch.Count, 2 * _fitResults.Length)];
                _fit.Fit(o.Batch, owner._fitOptions, _fitResults);
                var fits = _fitResults.AsSpan(0, o.Batch.Count);
                if (!_s.RejectOverlapping)
                {
                    fits = RefineFrame(photons, readNoise, w, h, det.Threshold, o.Batch, fits, owner._fitOptions, out int added);
                    o.Stats.Candidates += added;
                }
                o.Collect(fits, o.Batch.Left, o.Batch.Top, (float)_s.MinPhotonSnr);
                o.FitTicks = Stopwatch.GetTimestamp() - t3;
            }
            return o;
        }
    }
}
