using System.Diagnostics;
using MaLiang.Engine.Camera;
using MaLiang.Engine.Denoise;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
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
    public double WallSeconds { get; internal set; }
    /// <summary>Per-stage time summed over worker threads (seconds of CPU): read + camera, de-noise, detection + ROI cut-out, fit.</summary>
    public double ReadSeconds { get; internal set; }
    public double DenoiseSeconds { get; internal set; }
    public double DetectSeconds { get; internal set; }
    public double FitSeconds { get; internal set; }
    public int Threads { get; internal set; }
    public string Backend { get; internal set; } = "cpu";

    public double MsPerFrame => Frames == 0 ? 0 : WallSeconds * 1e3 / Frames;
    /// <summary>A stage's share of the wall time per frame: its CPU time per frame divided by the worker threads.</summary>
    public double StageMsPerFrame(double stageSeconds) => Frames == 0 ? 0 : stageSeconds * 1e3 / Frames / Math.Max(1, Threads);

    public string Describe() =>
        $"{Frames} frames, {Localizations} localizations ({Candidates} candidates; dropped: {DroppedAtEdge} at the frame edge, " +
        $"{DroppedOverlap} overlapping, {DroppedFitFailed} failed fits, {DroppedLeftRoi} left the ROI), {MsPerFrame:F3} ms/frame " +
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
    private readonly CameraModel _camera;
    private readonly FitOptions _fitOptions;
    private readonly int _threads;
    private readonly Stack<Worker> _workers = new();
    private readonly List<Localization> _results = new();
    private readonly PipelineSummary _summary = new();
    private FrameOutput[] _slots = Array.Empty<FrameOutput>();

    /// <summary>Frames per chunk: enough to keep every thread busy, few enough that memory stays bounded.</summary>
    public int ChunkFrames { get; }
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
        _threads = _s.Threads > 0 ? _s.Threads : Environment.ProcessorCount;
        _camera = CameraModel.From(_s);
        _fitOptions = FitOptions.From(_s);
        if (backend == null) { _backend = FitBackends.Create(_s.Backend, _threads, out _); _ownsBackend = true; }
        else _backend = backend;
        _cpuFit = _backend is CpuFitBackend;
        ChunkFrames = Math.Max(8, 4 * _threads);
        _summary.Threads = _threads;
        _summary.Backend = _backend.Name;
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
        var sw = Stopwatch.StartNew();
        int total = progress == null ? 0 : _summary.Frames + count;
        for (int c = 0; c < count; c += ChunkFrames)
        {
            cancel.ThrowIfCancellationRequested();
            int m = Math.Min(ChunkFrames, count - c);
            ProcessChunk(source, first + c, m, sink, cancel);
            progress?.Report(new PipelineProgress(_summary.Frames, total, _summary.Localizations));
        }
        _summary.WallSeconds += sw.Elapsed.TotalSeconds;
    }

    private void ProcessChunk(IFrameSource source, int first, int count, Action<ReadOnlySpan<Localization>>? sink, CancellationToken cancel)
    {
        int frameBase = _summary.Frames;
        if (_slots.Length < count) _slots = new FrameOutput[count];
        var slots = _slots;
        // Each frame's work (and, for the CPU backend, its fit) runs on one thread; outputs stay per frame until merged in order.
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _threads, CancellationToken = cancel },
                () => Rent(source.Width, source.Height),
                (i, _, w) =>
                {
                    slots[i] = w.Frame(source, first + i, frameBase + i, this);
                    return w;
                },
                Return);
        }
        catch (AggregateException e)
        {
            // Report the first frame's error as it was thrown (a MaLiangException names the file and frame).
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw();
        }

        if (!_cpuFit) FitOnDevice(slots, count);

        for (int i = 0; i < count; i++)
        {
            var o = slots[i];
            _summary.Candidates += o.Stats.Candidates;
            _summary.DroppedAtEdge += o.Stats.DroppedAtEdge;
            _summary.DroppedOverlap += o.Stats.DroppedOverlap;
            _summary.DroppedFitFailed += o.FitFailed;
            _summary.DroppedLeftRoi += o.LeftRoi;
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
            for (int k = 0; k < b.Count; k++) big.Add(b.Roi(k), b.Frame[k], b.Left[k], b.Top[k]);
        }
        if (_deviceResults.Length < total) _deviceResults = new FitResult[total];
        long t0 = Stopwatch.GetTimestamp();
        _backend.Fit(big, _fitOptions, _deviceResults);
        long ticks = Stopwatch.GetTimestamp() - t0;
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            var w = slots[i];
            w.FitTicks += ticks * _threads / Math.Max(1, count);
            w.Collect(_deviceResults.AsSpan(at, w.Batch.Count));
            at += w.Batch.Count;
        }
    }
    private RoiBatch? _deviceBatch;
    private FitResult[] _deviceResults = Array.Empty<FitResult>();

    private Worker Rent(int width, int height)
    {
        lock (_workers)
        {
            if (_workers.Count > 0) { var w = _workers.Pop(); w.Ensure(width, height); return w; }
        }
        var nw = new Worker(_s, _camera);
        nw.Ensure(width, height);
        return nw;
    }

    private void Return(Worker w) { lock (_workers) _workers.Push(w); }

    // Per-frame outputs are pooled: they own the buffers a frame's ROIs and results live in until merged.
    private readonly Stack<FrameOutput> _outputs = new();
    private FrameOutput NewOutput() { lock (_outputs) return _outputs.Count > 0 ? _outputs.Pop() : new FrameOutput(_s.RoiSize); }
    private void ReturnOutput(FrameOutput o) { o.Reset(); lock (_outputs) _outputs.Push(o); }

    public void Dispose()
    {
        if (_ownsBackend) _backend.Dispose();
    }

    /// <summary>One frame's ROIs, localizations and counts.</summary>
    private sealed class FrameOutput(int roiSize)
    {
        public readonly RoiBatch Batch = new(roiSize, 128);
        public Localization[] Locs = new Localization[64];
        public int LocCount, FrameIndex;
        public DetectionStats Stats;
        public long FitFailed, LeftRoi, ReadTicks, DenoiseTicks, DetectTicks, FitTicks;

        public void Reset()
        {
            Batch.Clear(); LocCount = 0; Stats = default; FitFailed = LeftRoi = ReadTicks = DenoiseTicks = DetectTicks = FitTicks = 0;
        }

        /// <summary>Turns kept fits into localizations in frame coordinates; counts the dropped ones.</summary>
        public void Collect(ReadOnlySpan<FitResult> results)
        {
            if (Locs.Length < results.Length) Locs = new Localization[Math.Max(results.Length, 2 * Locs.Length)];
            int k = 0;
            for (int i = 0; i < results.Length; i++)
            {
                ref readonly var f = ref results[i];
                if (f.Status == FitStatus.Failed) { FitFailed++; continue; }
                if (f.Status == FitStatus.LeftRoi) { LeftRoi++; continue; }
                Locs[k++] = new Localization
                {
                    Frame = FrameIndex,
                    X = Batch.Left[i] + f.X, Y = Batch.Top[i] + f.Y,
                    Photons = f.Photons, Background = f.Background, Sigma = f.Sigma,
                    UncertaintyX = f.CrlbX, UncertaintyY = f.CrlbY, UncertaintyPhotons = f.CrlbPhotons,
                    UncertaintyBackground = f.CrlbBackground, UncertaintySigma = f.CrlbSigma,
                    LogLikelihood = f.LogLikelihood, Llr = f.Llr, Iterations = f.Iterations, Detections = 1,
                    Flags = f.Status == FitStatus.Converged ? Localization.FlagConverged : 0,
                };
            }
            LocCount = k;
        }
    }

    /// <summary>One thread's frame buffers, filter, detector and fitter. No allocation per frame once warmed up.</summary>
    private sealed class Worker
    {
        private readonly LocalizerSettings _s;
        private readonly CameraModel _camera;
        private readonly IFrameFilter _filter;
        private readonly Detector _detector = new();
        private readonly List<Candidate> _candidates = new();
        private readonly CpuFitBackend _fit = new(1);
        private float[] _photons = Array.Empty<float>(), _filtered = Array.Empty<float>(), _scratch = Array.Empty<float>();
        private FitResult[] _fitResults = Array.Empty<FitResult>();
        private RoiBatch? _refine;
        private FitResult[] _refineResults = Array.Empty<FitResult>();
        private int[] _refineIndex = Array.Empty<int>();
        private CpuFitBackend.FitScratch? _modelScratch;
        private float[] _model = Array.Empty<float>();

        /// <summary>Passes of neighbour subtraction for candidates whose ROIs overlap (kept with RejectOverlapping off).</summary>
        private const int NeighbourPasses = 2;

        /// <summary>
        /// Emitters closer than a ROI pull each other's single-emitter fits together. When overlapping candidates are
        /// kept, refit each such ROI after subtracting its neighbours' fitted PSFs (photons x PSF, no background), twice,
        /// so close pairs separate. ROIs without neighbours keep their first fit.
        /// </summary>
        private void RefineNeighbours(RoiBatch batch, ReadOnlySpan<float> photons, int width, in FitOptions options)
        {
            int n = batch.RoiSize, np = n * n, count = batch.Count;
            _refine ??= new RoiBatch(n, 64);
            _modelScratch ??= new CpuFitBackend.FitScratch(n);
            if (_model.Length < np) _model = new float[np];
            if (_refineIndex.Length < count) _refineIndex = new int[count];
            Span<float> roi = stackalloc float[np];
            var model = _model.AsSpan(0, np);
            for (int pass = 0; pass < NeighbourPasses; pass++)
            {
                _refine.Clear();
                for (int i = 0; i < count; i++)
                {
                    bool any = false;
                    batch.Roi(i).CopyTo(roi);
                    for (int j = 0; j < count; j++)
                    {
                        if (j == i || !_fitResults[j].Kept) continue;
                        int dl = batch.Left[j] - batch.Left[i], dt = batch.Top[j] - batch.Top[i];
                        if (Math.Abs(dl) >= n || Math.Abs(dt) >= n) continue;
                        ref readonly var f = ref _fitResults[j];
                        CpuFitBackend.Model(_modelScratch, dl + f.X, dt + f.Y, f.Photons, 0f, f.Sigma, model);
                        for (int p = 0; p < np; p++) roi[p] -= model[p];
                        any = true;
                    }
                    if (!any) continue;
                    _refineIndex[_refine.Count] = i;
                    _refine.Add(roi, batch.Frame[i], batch.Left[i], batch.Top[i]);
                }
                if (_refine.Count == 0) return;
                if (_refineResults.Length < _refine.Count) _refineResults = new FitResult[Math.Max(_refine.Count, 2 * _refineResults.Length)];
                _fit.Fit(_refine, options, _refineResults);
                for (int k = 0; k < _refine.Count; k++) _fitResults[_refineIndex[k]] = _refineResults[k];
            }
        }

        public Worker(LocalizerSettings s, CameraModel camera)
        {
            _s = s; _camera = camera;
            _filter = FrameFilters.Create(s);
        }

        public void Ensure(int width, int height)
        {
            int px = width * height;
            if (_photons.Length < px) { _photons = new float[px]; _filtered = new float[px]; _scratch = new float[px]; }
        }

        public FrameOutput Frame(IFrameSource source, int sourceIndex, int frameIndex, Localizer owner)
        {
            var o = owner.NewOutput();
            o.FrameIndex = frameIndex;
            int w = source.Width, h = source.Height, px = w * h;
            var photons = _photons.AsSpan(0, px);
            var filtered = _filtered.AsSpan(0, px);
            long t0 = Stopwatch.GetTimestamp();
            source.ReadFrame(sourceIndex, photons);
            if (_camera.ToPhotons(photons) <= 0)
                throw new MaLiangException($"{source.Name}: frame {sourceIndex + 1}: the offset {_s.OffsetAdu} ADU is at or above every pixel; check --offset (the camera baseline)");
            long t1 = Stopwatch.GetTimestamp();
            _filter.Apply(photons, filtered, w, h);
            long t2 = Stopwatch.GetTimestamp();
            float noise = NoiseEstimator.RobustStd(filtered, w, h, _scratch);
            float threshold = (float)(_s.Threshold * noise);
            _candidates.Clear();
            o.Stats = _detector.Detect(filtered, w, h, threshold, _s.RoiRadius, _s.RejectOverlapping, _candidates);
            int r = _s.RoiRadius;
            foreach (var c in _candidates) o.Batch.Add(photons, w, frameIndex, c.X - r, c.Y - r);
            long t3 = Stopwatch.GetTimestamp();
            o.ReadTicks = t1 - t0; o.DenoiseTicks = t2 - t1; o.DetectTicks = t3 - t2;
            if (owner._cpuFit)
            {
                if (_fitResults.Length < o.Batch.Count) _fitResults = new FitResult[Math.Max(o.Batch.Count, 2 * _fitResults.Length)];
                _fit.Fit(o.Batch, owner._fitOptions, _fitResults);
                if (!_s.RejectOverlapping && o.Batch.Count > 1) RefineNeighbours(o.Batch, photons, w, owner._fitOptions);
                o.Collect(_fitResults.AsSpan(0, o.Batch.Count));
                o.FitTicks = Stopwatch.GetTimestamp() - t3;
            }
            return o;
        }
    }
}
