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

    /// <summary>Batches fitted on the device and on the CPU (the fallback), for the summary and the tests.</summary>
    public long DeviceBatches { get; private set; }
    public long CpuBatches { get; private set; }

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
        CpuBatches++;
    }

    private bool HasFp64(GpuContext ctx)
    {
        ctx.Ensure(ref _flag, 4);
        ctx.Launch("ml_group_fit_fp64", 1, _flag!);
        Span<int> v = stackalloc int[1];
        ctx.Read(_flag!, v);
        return v[0] == 1;
    }

    private void Run(GpuContext ctx, GroupFitJobs jobs)
    {
        int n = jobs.Count;
        if (_jobInts.Length < n * JobInts) _jobInts = new int[Math.Max(n * JobInts, 2 * _jobInts.Length)];
        if (_stat.Length < n * 4) _stat = new double[Math.Max(n * 4, 2 * _stat.Length)];
        long scratch = 0;
        for (int j = 0; j < n; j++)
        {
            int k = jobs.Emitters[j], p = 3 * k + 1, bw = jobs.Width[j], bh = jobs.Height[j];
            var ji = _jobInts.AsSpan(j * JobInts, JobInts);
            ji[0] = jobs.PixelOffset[j]; ji[1] = bw; ji[2] = bh; ji[3] = k;
            if (scratch > int.MaxValue) throw new MaLiangException("group fit batch too large for the device's scratch offsets");
            ji[4] = (int)scratch;
            scratch += 5L * p + 3L * p * p + 2L * k * (bw + bh);
        }
        GpuFit.CheckIndexRange(n, P);
        int px = Math.Max(jobs.PixelCount, 1);
        ctx.Ensure(ref _data, px * 4L);
        ctx.Ensure(ref _fixed, px * 4L);
        ctx.Ensure(ref _jobs, (long)n * JobInts * 4);
        ctx.Ensure(ref _theta, (long)n * P * 8);
        ctx.Ensure(ref _crlb, (long)n * P * 8);
        ctx.Ensure(ref _stats, (long)n * 4 * 8);
        ctx.Ensure(ref _scratch, Math.Max(scratch, 1) * 8);
        ctx.Write(_data!, jobs.Data.AsSpan(0, jobs.PixelCount));
        ctx.Write(_fixed!, jobs.Fixed.AsSpan(0, jobs.PixelCount));
        if (jobs.HasGamma)
        {
            ctx.Ensure(ref _gamma, px * 4L);
            ctx.Write(_gamma!, jobs.Gamma.AsSpan(0, jobs.PixelCount));
        }
        ctx.Write(_jobs!, _jobInts.AsSpan(0, n * JobInts));
        ctx.Write(_theta!, jobs.Theta.AsSpan(0, n * P));
        ctx.Launch("ml_group_fit", n, _data!, _fixed!, jobs.HasGamma ? _gamma! : _data!, jobs.HasGamma ? 1 : 0, _jobs!, n, _theta!, _crlb!, _stats!,
                   _scratch!, _sigma, _maxIterations, _tolerance);
        ctx.Read(_theta!, jobs.Theta.AsSpan(0, n * P));
        ctx.Read(_crlb!, jobs.SqrtCrlb.AsSpan(0, n * P));
        ctx.Read(_stats!, _stat.AsSpan(0, n * 4));
        for (int j = 0; j < n; j++)
        {
            jobs.LogLikelihood[j] = _stat[4 * j]; jobs.Llr[j] = _stat[4 * j + 1];
            jobs.Iterations[j] = (int)_stat[4 * j + 2];
            jobs.Status[j] = (GroupFitStatus)(byte)(int)_stat[4 * j + 3];
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
