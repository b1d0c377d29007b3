using MaLiang.Engine.Fit.MultiEmitter;

namespace MaLiang.Engine.Fit.Backends.Gpu;

/// <summary>
/// The joint multi-emitter fits of a batch (<see cref="GroupFitJobs"/>) on a device (Kernels/group_fit.cl, ml_group_fit:
/// <see cref="CpuGroupFitter"/>'s operations, one thread per group), for the OpenCL and CUDA backends alike: upload the
/// packed boxes, the jobs and the start values, fit, read back. Grouping and model selection stay on the host
/// (MultiEmitterRefiner), which sends one batch per round. Where the device has no fp64 (the kernel is then not built)
/// or a box is wider than the kernel's private tables (ML_MAX_BOX, 128 px), the batch is fitted by the CPU fitter:
/// same results. Thread-safe: every call holds the owning backend's lock.
/// </summary>
internal sealed class GpuGroupFit : IGroupFitter, IDisposable
{
    /// <summary>Kernels/group_fit.cl's ML_MAX_BOX and ML_GP_JOB_INTS.</summary>
    public const int MaxBox = 128, JobInts = 5;
    private const int P = GroupFit.MaxParameters;

    private readonly Func<GpuContext> _context;
    private readonly object _gate;
    private readonly float _sigma;
    private readonly int _maxIterations;
    private readonly float _tolerance;
    private readonly CpuGroupFitter _cpu;
    private bool? _fp64;
    private GpuBuffer? _data, _fixed, _gamma, _jobs, _theta, _crlb, _stats, _scratch, _flag;
    private int[] _jobInts = [];
    private double[] _stat = [];

    /// <summary>Batches fitted on the device (the others went to the CPU fitter), for the tests.</summary>
    public long DeviceBatches { get; private set; }

    public GpuGroupFit(Func<GpuContext> context, object gate, float sigmaPx, int maxIterations, float tolerance)
    {
        _context = context; _gate = gate; _sigma = sigmaPx; _maxIterations = maxIterations; _tolerance = tolerance;
        _cpu = new CpuGroupFitter(sigmaPx, maxIterations, tolerance);
    }

    public void FitAll(GroupFitJobs jobs)
    {
        int n = jobs.Count;
        if (n == 0) return;
        bool fits = true;
        for (int j = 0; j < n && fits; j++) fits = jobs.Width[j] <= MaxBox && jobs.Height[j] <= MaxBox;
        lock (_gate)
        {
            var ctx = _context();
            if (fits && (_fp64 ??= HasFp64(ctx))) { Run(ctx, jobs); DeviceBatches++; return; }
        }
        _cpu.FitAll(jobs);
    }

    private bool HasFp64(GpuContext ctx)
    {
        ctx.Ensure(ref _flag, 4);
        ctx.Launch("ml_group_fit_fp64", 1, _flag!);
        Span<int> v = stackalloc int[1];
        ctx.Read(_flag!, v);
        return v[0] == 1;
    }

    /// <summary>Most scratch (bytes) one launch may use: the per-job Fisher matrices of a big batch of large groups would
    /// otherwise take hundreds of MB. Larger batches go in slices.</summary>
    public const long MaxScratchBytes = 128L << 20;
    /// <summary>The limit in use (tests set a small one to make slices).</summary>
    internal long ScratchLimitBytes { get; set; } = MaxScratchBytes;
    /// <summary>Launches in the last batch.</summary>
    internal int LastLaunches { get; private set; }

    private void Run(GpuContext ctx, GroupFitJobs jobs)
    {
        int n = jobs.Count;
        if (_jobInts.Length < n * JobInts) _jobInts = new int[Math.Max(n * JobInts, 2 * _jobInts.Length)];
        if (_stat.Length < n * 4) _stat = new double[Math.Max(n * 4, 2 * _stat.Length)];
        int px = Math.Max(jobs.PixelCount, 1);
        ctx.Ensure(ref _data, px * 4L);
        ctx.Ensure(ref _fixed, px * 4L);
        ctx.Write(_data!, jobs.Data.AsSpan(0, jobs.PixelCount));
        ctx.Write(_fixed!, jobs.Fixed.AsSpan(0, jobs.PixelCount));
        if (jobs.HasGamma)
        {
            ctx.Ensure(ref _gamma, px * 4L);
            ctx.Write(_gamma!, jobs.Gamma.AsSpan(0, jobs.PixelCount));
        }
        long limit = Math.Min(ScratchLimitBytes, Math.Max(ctx.MaxAllocationBytes / 2, 1 << 20)) / 8;
        LastLaunches = 0;
        for (int first = 0; first < n;)
        {
            // A slice: jobs first..end-1 whose scratch fits the limit (at least one job).
            long scratch = 0;
            int end = first;
            while (end < n)
            {
                int k = jobs.Emitters[end], p = 3 * k + 1;
                long need = 5L * p + 3L * p * p + 2L * k * (jobs.Width[end] + jobs.Height[end]);
                if (end > first && scratch + need > limit) break;
                var ji = _jobInts.AsSpan((end - first) * JobInts, JobInts);
                ji[0] = jobs.PixelOffset[end]; ji[1] = jobs.Width[end]; ji[2] = jobs.Height[end]; ji[3] = k; ji[4] = (int)scratch;
                scratch += need;
                end++;
            }
            int m = end - first;
            GpuFit.CheckIndexRange(m, P);
            ctx.Ensure(ref _jobs, (long)m * JobInts * 4);
            ctx.Ensure(ref _theta, (long)m * P * 8);
            ctx.Ensure(ref _crlb, (long)m * P * 8);
            ctx.Ensure(ref _stats, (long)m * 4 * 8);
            ctx.Ensure(ref _scratch, Math.Max(scratch, 1) * 8);
            ctx.Write(_jobs!, _jobInts.AsSpan(0, m * JobInts));
            ctx.Write(_theta!, jobs.Theta.AsSpan(first * P, m * P));
            LastLaunches++;
            ctx.Launch("ml_group_fit", m, _data!, _fixed!, jobs.HasGamma ? _gamma! : _data!, jobs.HasGamma ? 1 : 0, _jobs!, m, _theta!, _crlb!, _stats!,
                       _scratch!, _sigma, _maxIterations, _tolerance);
            ctx.Read(_theta!, jobs.Theta.AsSpan(first * P, m * P));
            ctx.Read(_crlb!, jobs.SqrtCrlb.AsSpan(first * P, m * P));
            ctx.Read(_stats!, _stat.AsSpan(0, m * 4));
            for (int q = 0; q < m; q++)
            {
                int j2 = first + q;
                jobs.LogLikelihood[j2] = _stat[4 * q]; jobs.Llr[j2] = _stat[4 * q + 1];
                jobs.Iterations[j2] = (int)_stat[4 * q + 2];
                jobs.Status[j2] = (GroupFitStatus)(byte)(int)_stat[4 * q + 3];
            }
            first = end;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _data?.Dispose(); _fixed?.Dispose(); _gamma?.Dispose(); _jobs?.Dispose(); _theta?.Dispose(); _crlb?.Dispose();
            _stats?.Dispose(); _scratch?.Dispose(); _flag?.Dispose();
            _data = _fixed = _gamma = _jobs = _theta = _crlb = _stats = _scratch = _flag = null;
        }
    }
}
