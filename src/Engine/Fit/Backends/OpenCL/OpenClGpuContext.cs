using MaLiang.Engine.Fit.Backends.Gpu;

namespace MaLiang.Engine.Fit.Backends.OpenCL;

/// <summary><see cref="GpuContext"/> on one OpenCL device: one in-order queue, the MaLiang program built once.</summary>
internal sealed class OpenClGpuContext : GpuContext
{
    /// <summary>Correctly rounded divide and sqrt (as on the CPU); FP contraction is off in the prelude.</summary>
    public const string BuildOptions = "-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt";

    private readonly ClContext _cl;
    private readonly ClProgram _program;
    private readonly Dictionary<string, ClKernel> _kernels = new();

    public OpenClDevice Device => _cl.Device;
    public override string Name => "opencl:" + _cl.Device.Name;
    public override long FreeMemoryBytes => (long)Math.Min(_cl.Device.GlobalMemoryBytes, long.MaxValue);
    public override long MaxAllocationBytes => (long)Math.Min(_cl.Device.MaxAllocationBytes, long.MaxValue);

    public OpenClGpuContext(OpenClDevice device, string? source = null)
    {
        _cl = new ClContext(device);
        try { _program = _cl.Build(source ?? KernelSource.Assemble(GpuApi.OpenCL, KernelSource.All), BuildOptions); }
        catch { _cl.Dispose(); throw; }
    }

    public override GpuBuffer Alloc(long bytes) => _cl.Buffer(bytes);
    protected override void WriteBytes(GpuBuffer b, ReadOnlySpan<byte> data, long offsetBytes) => _cl.Write((ClBuffer)b, data, offsetBytes);
    protected override void ReadBytes(GpuBuffer b, Span<byte> data, long offsetBytes) => _cl.Read((ClBuffer)b, data, offsetBytes);
    public override void Fill(GpuBuffer b, int value, long bytes = -1) => _cl.Fill((ClBuffer)b, value, bytes);
    public override void Finish() => _cl.Finish();

    public override void Launch(string kernel, long workItems, params ReadOnlySpan<KArg> args)
    {
        if (!_kernels.TryGetValue(kernel, out var k)) _kernels[kernel] = k = _program.Kernel(kernel);
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            switch (a.Kind)
            {
                case 0 when a.Buffer is null: k.Arg((uint)i, (nint)0); break;   // OpenCL: a NULL mem object is a NULL pointer
                case 0: k.Arg((uint)i, (ClBuffer)a.Buffer); break;
                case 1: k.Arg((uint)i, a.Int); break;
                default: k.Arg((uint)i, a.Float); break;
            }
        }
        _cl.Run(k, workItems);
    }

    public override void Dispose()
    {
        foreach (var k in _kernels.Values) k.Dispose();
        _kernels.Clear();
        _program.Dispose();
        _cl.Dispose();
    }
}
