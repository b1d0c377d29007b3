using MaLiang.Engine.Fit.Backends.Gpu;

namespace MaLiang.Engine.Fit.Backends.OpenCL;

/// <summary>
/// The MLE fit on an OpenCL device (fit.cl, the CPU backend's math operation for operation; one work item per molecule).
/// Batches larger than a quarter of the device's largest allocation are fitted in chunks. Thread-safe: concurrent
/// <see cref="Fit"/> calls are serialized on the device's one queue.
/// </summary>
public sealed class OpenClFitBackend : IGpuFitBackend
{
    private readonly OpenClGpuContext _ctx;
    private readonly object _lock = new();
    private GpuBuffer? _pix, _pixT, _res, _peak, _gam, _gamT;
    private float[] _out = [];
    private readonly GpuResidentFit _resident = new();
    private readonly GpuAstigmaticFit _astig = new();

    public string Name => _ctx.Name;
    public OpenClDevice Device => _ctx.Device;
    public string DeviceName => _ctx.Device.Name;
    public long FreeMemoryBytes => _ctx.FreeMemoryBytes;
    public double LastKernelSeconds => _resident.LastKernelSeconds;

    /// <summary>A detector on this backend's context and queue.</summary>
    public GpuDetector CreateDetector() => new(_ctx, false);

    private readonly List<GpuGroupFit> _groupFits = new();
    public MaLiang.Engine.Fit.MultiEmitter.IGroupFitter CreateGroupFitter(float sigmaPx, int maxIterations, float tolerance)
    {
        var f = new GpuGroupFit(() => _ctx, _lock, sigmaPx, maxIterations, tolerance);
        lock (_lock) _groupFits.Add(f);
        return f;
    }

    public void FitDetected(GpuDetector detector, in FitOptions options, Span<FitResult> results)
    {
        ArgumentNullException.ThrowIfNull(detector);
        if (!ReferenceEquals(detector.Context, _ctx)) throw new ArgumentException("the detector is not on this backend's context (use CreateDetector)");
        int count = detector.DetectedCount;
        if (count == 0) return;
        lock (_lock) _resident.Run(_ctx, detector.DetectedRois!, detector.DetectedPeaks!, detector.DetectedRoiSize, count, options, results);
    }

    public void FitTimed(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        GpuFit.CheckArgs(batch, options, results);
        if (batch.Count == 0) return;
        lock (_lock)
        {
            var (rois, peaks) = _resident.Upload(_ctx, batch);
            _resident.Run(_ctx, rois, peaks, batch.RoiSize, batch.Count, options, results, _resident.UploadReadNoise(_ctx, batch));
        }
    }

    /// <summary>On <paramref name="device"/> (default: the first GPU, else the first OpenCL device). Builds the kernels now,
    /// so a build failure (with its log) or a missing device shows here as a <see cref="MaLiangException"/>.</summary>
    public OpenClFitBackend(OpenClDevice? device = null)
        => _ctx = new OpenClGpuContext(device ?? OpenClRuntime.DefaultDevice());

    public void Fit(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        GpuFit.CheckArgs(batch, options, results);
        int count = batch.Count;
        if (count == 0) return;
        if (options.ZCalibration is not null) { lock (_lock) _astig.Run(_ctx, batch, options, results); return; } // 3D: astigmatic.cl
        long perMolecule = (long)batch.PixelsPerRoi * 4;
        int chunk = (int)Math.Clamp(_ctx.MaxAllocationBytes / 4 / perMolecule, 1024, 1 << 22);
        lock (_lock)
        {
            int outLen = Math.Min(count, chunk) * GpuFit.OutFloats;
            if (_out.Length < outLen) _out = new float[outLen];
            for (int first = 0; first < count; first += chunk)
            {
                int n = Math.Min(chunk, count - first);
                GpuFit.Run(_ctx, batch, first, n, options, _out, ref _pix, ref _pixT, ref _res, ref _peak, results, ref _gam, ref _gamT);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _pix?.Dispose(); _pixT?.Dispose(); _res?.Dispose(); _peak?.Dispose(); _gam?.Dispose(); _gamT?.Dispose();
            _pix = _pixT = _res = _peak = _gam = _gamT = null;
            _resident.Dispose();
            _astig.Dispose();
            foreach (var f in _groupFits) f.Dispose();
            _groupFits.Clear();
            _ctx.Dispose();
        }
    }
}
