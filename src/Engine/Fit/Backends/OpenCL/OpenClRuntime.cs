using System.Runtime.InteropServices;
using System.Text;
using static MaLiang.Engine.Fit.Backends.OpenCL.ClNative;

namespace MaLiang.Engine.Fit.Backends.OpenCL;

/// <summary>One OpenCL device as the ICD loader reports it. <see cref="Index"/> counts devices over all platforms.</summary>
public sealed class OpenClDevice
{
    public int Index { get; init; }
    public string Platform { get; init; } = "";
    public string Name { get; init; } = "";
    public string Vendor { get; init; } = "";
    /// <summary>"GPU", "CPU", "accelerator" or "other".</summary>
    public string Type { get; init; } = "";
    public bool IsGpu { get; init; }
    public int ComputeUnits { get; init; }
    public ulong GlobalMemoryBytes { get; init; }
    public ulong MaxAllocationBytes { get; init; }
    public string Version { get; init; } = "";
    public string DriverVersion { get; init; } = "";
    internal nint PlatformHandle { get; init; }
    internal nint Handle { get; init; }

    public override string ToString()
        => $"{Name} ({Vendor}; {Type}, {ComputeUnits} compute units, {GlobalMemoryBytes / (1024 * 1024)} MiB; {Version}; platform {Platform})";
}

/// <summary>Platform and device enumeration.</summary>
public static unsafe class OpenClRuntime
{
    /// <summary>True when libOpenCL could be loaded (devices may still be zero).</summary>
    public static bool LibraryLoaded => Loaded;
    public static string? LibraryError => LoadError;

    /// <summary>All devices of all platforms; empty when there is no ICD loader or no driver. Enumerated once per
    /// process, under a lock: several threads creating localizers at once (dask workers) must not initialise the
    /// OpenCL drivers concurrently (PoCL crashed so), and probing once keeps <c>auto</c> cheap.</summary>
    public static IReadOnlyList<OpenClDevice> Devices() => s_devices.Value;

    private static readonly Lazy<IReadOnlyList<OpenClDevice>> s_devices = new(Enumerate, LazyThreadSafetyMode.ExecutionAndPublication);

    private static IReadOnlyList<OpenClDevice> Enumerate()
    {
        if (!Loaded) return [];
        uint np = 0;
        int st = clGetPlatformIDs(0, null, &np);
        if (st == CL_PLATFORM_NOT_FOUND_KHR || np == 0) return [];
        Check(st, "clGetPlatformIDs");
        var platforms = new nint[np];
        fixed (nint* pp = platforms) Check(clGetPlatformIDs(np, pp, null), "clGetPlatformIDs");
        var list = new List<OpenClDevice>();
        foreach (var p in platforms)
        {
            string pname = PlatformString(p, CL_PLATFORM_NAME);
            uint nd = 0;
            st = clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, null, &nd);
            if (st == CL_DEVICE_NOT_FOUND || nd == 0) continue;
            Check(st, "clGetDeviceIDs");
            var devs = new nint[nd];
            fixed (nint* pd = devs) Check(clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, pd, null), "clGetDeviceIDs");
            foreach (var d in devs)
            {
                ulong type = DeviceValue<ulong>(d, CL_DEVICE_TYPE);
                list.Add(new OpenClDevice
                {
                    Index = list.Count,
                    Platform = pname,
                    Name = DeviceString(d, CL_DEVICE_NAME),
                    Vendor = DeviceString(d, CL_DEVICE_VENDOR),
                    Type = (type & CL_DEVICE_TYPE_GPU) != 0 ? "GPU" : (type & CL_DEVICE_TYPE_CPU) != 0 ? "CPU"
                         : (type & CL_DEVICE_TYPE_ACCELERATOR) != 0 ? "accelerator" : "other",
                    IsGpu = (type & CL_DEVICE_TYPE_GPU) != 0,
                    ComputeUnits = (int)DeviceValue<uint>(d, CL_DEVICE_MAX_COMPUTE_UNITS),
                    GlobalMemoryBytes = DeviceValue<ulong>(d, CL_DEVICE_GLOBAL_MEM_SIZE),
                    MaxAllocationBytes = DeviceValue<ulong>(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE),
                    Version = DeviceString(d, CL_DEVICE_VERSION),
                    DriverVersion = DeviceString(d, CL_DRIVER_VERSION),
                    PlatformHandle = p,
                    Handle = d,
                });
            }
        }
        return list;
    }

    /// <summary>The first GPU device, else the first device; throws a <see cref="MaLiangException"/> when there is none.</summary>
    public static OpenClDevice DefaultDevice(bool gpuOnly = false)
    {
        EnsureLoaded();
        var all = Devices();
        var gpu = all.FirstOrDefault(d => d.IsGpu);
        if (gpu is not null) return gpu;
        if (!gpuOnly && all.Count > 0) return all[0];
        throw new MaLiangException(all.Count == 0
            ? "OpenCL: no OpenCL device found (the ICD loader found no platform with a device; install a driver, e.g. pocl-opencl-icd)"
            : $"OpenCL: no GPU device; found: {string.Join("; ", all)}");
    }

    internal static string PlatformString(nint p, uint param) => InfoString(clGetPlatformInfo, "clGetPlatformInfo", p, param);

    internal static string DeviceString(nint d, uint param) => InfoString(clGetDeviceInfo, "clGetDeviceInfo", d, param);

    /// <summary>A string property through a clGet*Info call: its size first, then the bytes.</summary>
    private static string InfoString(delegate* unmanaged<nint, uint, nuint, void*, nuint*, int> get, string call, nint handle, uint param)
    {
        nuint size = 0;
        Check(get(handle, param, 0, null, &size), call);
        var buf = new byte[(int)size];
        fixed (byte* b = buf) Check(get(handle, param, size, b, null), call);
        return Z(buf);
    }

    internal static T DeviceValue<T>(nint d, uint param) where T : unmanaged
    {
        T v = default;
        Check(clGetDeviceInfo(d, param, (nuint)sizeof(T), &v, null), "clGetDeviceInfo");
        return v;
    }

    internal static string Z(ReadOnlySpan<byte> s)
    {
        int n = s.IndexOf((byte)0);
        return Encoding.UTF8.GetString(n >= 0 ? s[..n] : s).Trim();
    }
}

/// <summary>A context and one in-order command queue on one device. Not thread-safe: callers serialize.</summary>
internal sealed unsafe class ClContext : IDisposable
{
    public OpenClDevice Device { get; }
    public nint Context { get; private set; }
    public nint Queue { get; private set; }

    public ClContext(OpenClDevice device)
    {
        EnsureLoaded();
        Device = device;
        int err;
        nint d = device.Handle;
        nint* props = stackalloc nint[3] { 0x1084 /* CL_CONTEXT_PLATFORM */, device.PlatformHandle, 0 };
        Context = clCreateContext(props, 1, &d, 0, 0, &err);
        Check(err, "clCreateContext");
        Queue = clCreateCommandQueue(Context, d, 0, &err);
        if (err != CL_SUCCESS) { clReleaseContext(Context); Context = 0; Check(err, "clCreateCommandQueue"); }
    }

    /// <summary>Compiles OpenCL C; on failure the exception carries the build log.</summary>
    public ClProgram Build(string source, string options)
    {
        int err;
        var src = Encoding.UTF8.GetBytes(source);
        var opt = Encoding.UTF8.GetBytes(options + "\0");
        nint prog;
        fixed (byte* s = src)
        {
            byte* sp = s;
            nuint len = (nuint)src.Length;
            prog = clCreateProgramWithSource(Context, 1, &sp, &len, &err);
        }
        Check(err, "clCreateProgramWithSource");
        nint d = Device.Handle;
        fixed (byte* o = opt) err = clBuildProgram(prog, 1, &d, o, 0, 0);
        if (err != CL_SUCCESS)
        {
            string log;
            try { log = BuildLog(prog, d); } catch (OpenClException e) { log = "(no build log: " + e.Message + ")"; }
            clReleaseProgram(prog);
            throw new OpenClBuildException(err, Device.Name, log);
        }
        return new ClProgram(prog);
    }

    private static string BuildLog(nint prog, nint dev)
    {
        nuint size = 0;
        Check(clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, null, &size), "clGetProgramBuildInfo");
        var buf = new byte[(int)size];
        fixed (byte* b = buf) Check(clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, size, b, null), "clGetProgramBuildInfo");
        return OpenClRuntime.Z(buf);
    }

    public ClBuffer Buffer(long bytes, ulong flags = CL_MEM_READ_WRITE)
    {
        int err;
        nint m = clCreateBuffer(Context, flags, (nuint)Math.Max(bytes, 4), null, &err);
        Check(err, "clCreateBuffer");
        return new ClBuffer(m, Math.Max(bytes, 4));
    }

    public void Write<T>(ClBuffer buf, ReadOnlySpan<T> data, long offsetElements = 0) where T : unmanaged
    {
        if (data.IsEmpty) return;
        long bytes = (long)data.Length * sizeof(T), off = offsetElements * sizeof(T);
        if (off + bytes > buf.Bytes) throw new ArgumentOutOfRangeException(nameof(data), $"write of {bytes} B at {off} into a {buf.Bytes} B buffer");
        fixed (T* p = data) Check(clEnqueueWriteBuffer(Queue, buf.Handle, 1, (nuint)off, (nuint)bytes, p, 0, null, null), "clEnqueueWriteBuffer");
    }

    public void Read<T>(ClBuffer buf, Span<T> data, long offsetElements = 0) where T : unmanaged
    {
        if (data.IsEmpty) return;
        long bytes = (long)data.Length * sizeof(T), off = offsetElements * sizeof(T);
        if (off + bytes > buf.Bytes) throw new ArgumentOutOfRangeException(nameof(data), $"read of {bytes} B at {off} from a {buf.Bytes} B buffer");
        fixed (T* p = data) Check(clEnqueueReadBuffer(Queue, buf.Handle, 1, (nuint)off, (nuint)bytes, p, 0, null, null), "clEnqueueReadBuffer");
    }

    /// <summary>Sets every byte range of the buffer to the 4-byte pattern (ints or floats).</summary>
    public void Fill(ClBuffer buf, int value, long bytes = -1)
    {
        if (bytes < 0) bytes = buf.Bytes;
        bytes &= ~3L;
        if (bytes == 0) return;
        Check(clEnqueueFillBuffer(Queue, buf.Handle, &value, 4, 0, (nuint)bytes, 0, null, null), "clEnqueueFillBuffer");
    }

    /// <summary>1-D launch of <paramref name="n"/> work items (rounded up to the local size; kernels check their index).</summary>
    public void Run(ClKernel k, long n, int local = 64)
    {
        if (n <= 0) return;
        nuint l = (nuint)local;
        nuint g = (nuint)((n + local - 1) / local * local);
        Check(clEnqueueNDRangeKernel(Queue, k.Handle, 1, null, &g, &l, 0, null, null), $"clEnqueueNDRangeKernel({k.Name})");
    }

    public void Finish() => Check(clFinish(Queue), "clFinish");

    public void Dispose()
    {
        if (Queue != 0) { clReleaseCommandQueue(Queue); Queue = 0; }
        if (Context != 0) { clReleaseContext(Context); Context = 0; }
    }
}

internal sealed unsafe class ClProgram : IDisposable
{
    public nint Handle { get; private set; }
    public ClProgram(nint h) => Handle = h;

    public ClKernel Kernel(string name)
    {
        int err;
        var n = Encoding.ASCII.GetBytes(name + "\0");
        nint k;
        fixed (byte* p = n) k = clCreateKernel(Handle, p, &err);
        Check(err, $"clCreateKernel({name})");
        return new ClKernel(k, name);
    }

    public void Dispose() { if (Handle != 0) { clReleaseProgram(Handle); Handle = 0; } }
}

internal sealed unsafe class ClKernel : IDisposable
{
    public nint Handle { get; private set; }
    public string Name { get; }
    public ClKernel(nint h, string name) { Handle = h; Name = name; }

    public ClKernel Arg(uint index, ClBuffer buf)
    {
        nint m = buf.Handle;
        Check(clSetKernelArg(Handle, index, (nuint)sizeof(nint), &m), $"clSetKernelArg({Name}, {index})");
        return this;
    }

    public ClKernel Arg<T>(uint index, T value) where T : unmanaged
    {
        Check(clSetKernelArg(Handle, index, (nuint)sizeof(T), &value), $"clSetKernelArg({Name}, {index})");
        return this;
    }

    public void Dispose() { if (Handle != 0) { clReleaseKernel(Handle); Handle = 0; } }
}

internal sealed unsafe class ClBuffer : Gpu.GpuBuffer
{
    public nint Handle { get; private set; }
    public ClBuffer(nint h, long bytes) { Handle = h; Bytes = bytes; }
    public override void Dispose() { if (Handle != 0) { ClNative.clReleaseMemObject(Handle); Handle = 0; } }
}
