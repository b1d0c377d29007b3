using System.Runtime.InteropServices;

namespace MaLiang.Engine.Fit.Backends.Gpu;

/// <summary>Which compiler the common kernel source is assembled for.</summary>
internal enum GpuApi { OpenCL, Cuda }

/// <summary>
/// Assembles the one kernel source: a short per-backend prelude (prelude_opencl.cl / prelude_cuda.cl: KERNEL, GLOBAL,
/// THREAD_ID, ATOMIC_INC, float math macros) followed by the common sources, all embedded resources of MaLiang.Engine.
/// </summary>
internal static class KernelSource
{
    public static readonly string[] All = ["detect.cl", "fit.cl", "astigmatic.cl", "group_fit.cl"];

    public static string Assemble(GpuApi api, params string[] files)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append(Load(api == GpuApi.OpenCL ? "prelude_opencl.cl" : "prelude_cuda.cl")).Append('\n');
        foreach (var f in files) sb.Append("/* ---- ").Append(f).Append(" ---- */\n").Append(Load(f)).Append('\n');
        return sb.ToString();
    }

    public static string Load(string name)
    {
        using var s = typeof(KernelSource).Assembly.GetManifestResourceStream(name)
            ?? throw new MaLiangException($"kernel source {name} is not embedded in MaLiang.Engine (build problem)");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }
}

/// <summary>A device buffer of either backend.</summary>
internal abstract class GpuBuffer : IDisposable
{
    public long Bytes { get; protected init; }
    public abstract void Dispose();
}

/// <summary>A kernel argument: a buffer, an int or a float (the kernels take nothing else).</summary>
internal readonly struct KArg
{
    public readonly GpuBuffer? Buffer;
    public readonly int Int;
    public readonly float Float;
    public readonly byte Kind; // 0 buffer, 1 int, 2 float
    private KArg(GpuBuffer? b, int i, float f, byte k) { Buffer = b; Int = i; Float = f; Kind = k; }
    public static implicit operator KArg(GpuBuffer b) => new(b, 0, 0, 0);
    public static implicit operator KArg(int i) => new(null, i, 0, 1);
    public static implicit operator KArg(float f) => new(null, 0, f, 2);
    /// <summary>A null global pointer (an optional buffer the kernel is told, by another argument, not to read).</summary>
    public static KArg NullBuffer => new(null, 0, 0, 0);
}

/// <summary>
/// The little the detection and fit drivers need from a GPU API: buffers, copies, 1-D launches of the kernels compiled
/// from <see cref="KernelSource"/>. OpenCL and CUDA implement it; operations run in order on one queue/stream.
/// Not thread-safe: owners serialize.
/// </summary>
internal abstract class GpuContext : IDisposable
{
    public abstract string Name { get; }
    /// <summary>Bytes the device can still give (an estimate where the API has no query).</summary>
    public abstract long FreeMemoryBytes { get; }
    /// <summary>Largest single buffer.</summary>
    public abstract long MaxAllocationBytes { get; }
    public abstract GpuBuffer Alloc(long bytes);
    protected abstract void WriteBytes(GpuBuffer b, ReadOnlySpan<byte> data, long offsetBytes);
    protected abstract void ReadBytes(GpuBuffer b, Span<byte> data, long offsetBytes);
    /// <summary>Sets the first <paramref name="bytes"/> bytes (all when negative) to a repeated 4-byte value.</summary>
    public abstract void Fill(GpuBuffer b, int value, long bytes = -1);
    public abstract void Launch(string kernel, long workItems, params ReadOnlySpan<KArg> args);
    public abstract void Finish();
    public abstract void Dispose();

    public unsafe void Write<T>(GpuBuffer b, ReadOnlySpan<T> data, long offsetElements = 0) where T : unmanaged
        => WriteBytes(b, MemoryMarshal.AsBytes(data), offsetElements * sizeof(T));

    public unsafe void Read<T>(GpuBuffer b, Span<T> data, long offsetElements = 0) where T : unmanaged
        => ReadBytes(b, MemoryMarshal.AsBytes(data), offsetElements * sizeof(T));

    /// <summary>Grows (reallocates) a scratch buffer to at least <paramref name="bytes"/>.</summary>
    public void Ensure(ref GpuBuffer? b, long bytes)
    {
        if (b is not null && b.Bytes >= bytes) return;
        b?.Dispose();
        b = null;
        b = Alloc(Math.Max(bytes, 64));
    }
}

/// <summary>Out-of-memory on either GPU API, so callers can split their work instead of failing.</summary>
internal static class GpuMemory
{
    public static bool IsOutOfMemory(Exception e) => e switch
    {
        Cuda.CudaException c => c.OutOfMemory,
        // CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_HOST_MEMORY. Not CL_OUT_OF_RESOURCES: drivers (NVIDIA's among them)
        // also report a kernel fault with it, which no smaller chunk cures.
        OpenCL.OpenClException o => o.Status is -4 or -6,
        _ => false,
    };
}
