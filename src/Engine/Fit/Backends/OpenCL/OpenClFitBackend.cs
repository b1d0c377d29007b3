using MaLiang.Engine.Fit.Backends.Gpu;

namespace MaLiang.Engine.Fit.Backends.OpenCL;

/// <summary>
/// The MLE fit on an OpenCL device (fit.cl, the CPU backend's math operation for operation; one work item per molecule).
/// Batches larger than a quarter of the device's largest allocation are fitted in chunks. Thread-safe: concurrent
/// <see cref="Fit"/> calls are serialized on the device's one queue.
/// </summary>
public sealed class OpenClFitBackend : IFitBackend
{
    private readonly OpenClGpuContext _ctx;
    private readonly object _lock = new();
    private GpuBuffer? _pix, _pixT, _res;
    private float[] _out = [];

    public string Name => _ctx.Name;
    public OpenClDevice Device => _ctx.Device;

    /// <summary>On <paramref name="device"/> (default: the first GPU, else the first OpenCL device). Builds the kernels now,
    /// so a build failure (with its log) or a missing device shows here as a <see cref="MaLiangException"/>.</summary>
    public OpenClFitBackend(OpenClDevice? device = null)
        => _ctx = new OpenClGpuContext(device ?? OpenClRuntime.DefaultDevice());

    public void Fit(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        GpuFit.CheckArgs(batch, options, results);
        int count = batch.Count;
        if (count == 0) return;
        long perMolecule = (long)batch.PixelsPerRoi * 4;
        int chunk = (int)Math.Clamp(_ctx.MaxAllocationBytes / 4 / perMolecule, 1024, 1 << 22);
        lock (_lock)
        {
            int outLen = Math.Min(count, chunk) * GpuFit.OutFloats;
            if (_out.Length < outLen) _out = new float[outLen];
            for (int first = 0; first < count; first += chunk)
            {
                int n = Math.Min(chunk, count - first);
                GpuFit.Run(_ctx, batch, first, n, options, _out, ref _pix, ref _pixT, ref _res, results);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _pix?.Dispose(); _pixT?.Dispose(); _res?.Dispose();
            _pix = _pixT = _res = null;
            _ctx.Dispose();
        }
    }
}
