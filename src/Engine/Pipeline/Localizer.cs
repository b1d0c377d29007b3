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

/// <summary>
/// The engine's one entry point: camera -> de-noise -> threshold -> detect -> ROI cut -> MLE fit -> localizations,
/// frame by frame, in bounded memory. Push frames as they come (live acquisition, C ABI, Python, Java) or run a whole
/// source with <see cref="Run"/>. Frames are processed in chunks across threads; results come out in frame order and
/// do not depend on the thread count. Not thread-safe: one caller pushes at a time.
/// </summary>
public sealed partial class Localizer : IDisposable
{
    private readonly LocalizerSettings _s;
    private readonly IFitBackend _backend;
    private readonly bool _ownsBackend;
    private readonly bool _cpuFit;
    private CameraModel _camera;
    private int _cameraWidth, _cameraHeight;
    private float[]? _readNoiseExcess;
    private float _readNoiseMedian;
    private FitOptions _fitOptions;
    private readonly int _threads;
    private readonly Stack<Worker> _workers = new();
    private readonly List<Localization> _results = new();
    private readonly PipelineSummary _summary = new();
    private FrameOutput[] _slots = Array.Empty<FrameOutput>();
    private readonly IGpuFitBackend? _gpu;
    private GpuDetectOptions _gpuDetectOptions;
    private bool _calibrated;
    private GpuDetector? _detector;
    private int[] _roiStart = Array.Empty<int>();

    /// <summary>Pixels per chunk when <see cref="GpuChunkFrames"/> is 0 (auto): 32 Mpx = 128 frames of 512x512
    /// (128 MiB of photons on the host, about 4x that on the device), 8 frames of 2048x2048.</summary>
    public const long GpuChunkPixels = 32L << 20;
    /// <summary>Most frames per chunk on a GPU backend.</summary>
    public const int MaxGpuChunkFrames = 256;
    /// <summary>CPU path with the multi-emitter stage: pixels of the frames a chunk keeps for it (4 Mpx).</summary>
    public const long CpuRefineChunkPixels = 4L << 20;
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
        long px = Math.Max(1L, (long)width * height);
        // The multi-emitter stage batches its joint fits over a chunk's frames (RefineChunk): more frames fill more SIMD
        // lanes (a crowded 64x64 frame has one or two fits per round), up to about 4 Mpx of frames kept for it and 32
        // frames (progress and cancellation come per chunk).
        if (!UsesDeviceDetection) return RefinesInChunks ? (int)Math.Clamp(CpuRefineChunkPixels / px, ChunkFrames, Math.Max(ChunkFrames, 32)) : ChunkFrames;
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
    /// read-noise planes, and the threshold is per pixel) and only the fit runs on the device.
    /// </summary>
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
        _summary.NoiseScale = _s.NoiseScale;
    }

    /// <summary>3D (DESIGN.md "3D astigmatism"): the calibration must be at this pixel size; the ROI grows to hold the widest
    /// spot in its z range; the neighbour refit and the multi-emitter stage are round-Gaussian steps, so close candidates
    /// are dropped as with --reject-overlapping; on a GPU backend the ROIs are cut on the CPU threads and fitted on the
    /// device (astigmatic.cl).</summary>
    private void Use3D(IFitBackend? backend)
    {
        var zc = _s.ZCalibration!;
        zc.Validate();
        zc.CheckPixelSize(_s.PixelSizeNm);
        _s.RoiSize = zc.RoiSize(_s.RoiSize);
        _s.RejectOverlapping = true;
        _s.EstimatePsfSigma = false;   // the calibration gives the widths
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
        if (!_calibrated && count > 0) Calibrate(source, first, count);
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

    /// <summary>The SNR filter: photons &gt;= min-snr x their CRLB, the CRLB scaled by the measured noise over the camera
    /// model's (quasi-likelihood: the variance of the estimates grows with the data's).</summary>
    private float MinSnr => (float)(_s.MinPhotonSnr * Math.Sqrt(_s.NoiseScale));

    /// <summary>
    /// Before the first frames are localized: the PSF width (when <see cref="LocalizerSettings.EstimatePsfSigma"/>) from
    /// isolated spots of the first frames (<see cref="StackCalibration"/>). Once per localizer, on the first push.
    /// </summary>
    private void Calibrate(IFrameSource source, int first, int count)
    {
        _calibrated = true;
        if (!_s.EstimatePsfSigma) return;
        var c = StackCalibration.Measure(source, first, count, _s, _camera);
        _summary.CalibrationSpots = c.Spots;
        // Too few isolated spots (a short or empty stack): the default width, and the summary says so.
        if (double.IsNaN(c.PsfSigmaPx)) _summary.PsfSigmaNotEstimated = true;
        else { _s.PsfSigmaPx = c.PsfSigmaPx; _summary.EstimatedPsfSigmaPx = c.PsfSigmaPx; }
        _fitOptions = FitOptions.From(_s);
        _gpuDetectOptions = GpuDetectOptions.From(_s);
        lock (_workers) _workers.Clear();   // workers made before (none on the first push) hold the old settings
    }

    /// <summary>The camera for this source's frame size: with maps, their crops at the origin (once per frame size).</summary>
    private void UseCameraFor(IFrameSource source)
    {
        var maps = _s.CameraMaps;
        if (maps is null || (source.Width == _cameraWidth && source.Height == _cameraHeight)) return;
        maps.CheckCovers(source.Width, source.Height, source.Name);
        _camera = CameraModel.From(_s, source.Width, source.Height);
        _readNoiseExcess = _camera.ReadNoiseMap is { } g ? ReadNoiseThreshold.Excess(Denoise.FrameFilters.Create(_s), g, source.Width, source.Height) : null;
        _readNoiseMedian = 0;
        if (_camera.ReadNoiseMap is { } gm)
        {
            var sorted = gm.AsSpan(0, source.Width * source.Height).ToArray();
            Array.Sort(sorted);
            _readNoiseMedian = sorted[(sorted.Length - 1) / 2];
        }
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
        else if (RefinesInChunks)
            RefineChunk(slots, count, i => slots[i].Photons.AsMemory(0, source.Width * source.Height), CpuGroupFitter(),
                        new ParallelOptions { MaxDegreeOfParallelism = _threads, CancellationToken = cancel });
    }

    /// <summary>CPU path: the multi-emitter stage runs over each chunk's frames together (<see cref="RefineChunk"/>), so
    /// its joint fits fill the SIMD lanes.</summary>
    private bool RefinesInChunks => _s.MultiEmitter && !_s.RejectOverlapping;

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
            _summary.SpreadTestFrames += o.Stats.SpreadTestFrames;
            _summary.DroppedFitFailed += o.FitFailed;
            _summary.DroppedLeftRoi += o.LeftRoi;
            _summary.DroppedLowSnr += o.LowSnr;
            _summary.DroppedOutsideZRange += o.OutsideZ;
            for (int g = 0; g < o.GroupsBySize.Length; g++) _summary.GroupsBySize[g] += o.GroupsBySize[g];
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

}
