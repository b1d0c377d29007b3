using System.Text;
using static MaLiang.Engine.Fit.Backends.Cuda.CuNative;

namespace MaLiang.Engine.Fit.Backends.Cuda;

/// <summary>One CUDA device.</summary>
public sealed class CudaDevice
{
    public int Index { get; init; }
    public string Name { get; init; } = "";
    public int ComputeMajor { get; init; }
    public int ComputeMinor { get; init; }
    public int Multiprocessors { get; init; }
    public ulong TotalMemoryBytes { get; init; }
    public string ComputeCapability => $"{ComputeMajor}.{ComputeMinor}";

    public override string ToString()
        => $"{Name} (compute capability {ComputeCapability}, {Multiprocessors} multiprocessors, {TotalMemoryBytes / (1024 * 1024)} MiB)";
}

/// <summary>CUDA availability and device enumeration (driver API).</summary>
public static unsafe class CudaRuntime
{
    /// <summary>True when libcuda loaded and cuInit succeeded.</summary>
    public static bool DriverLoaded => Loaded;

    /// <summary>Why CUDA cannot be used (driver, devices or NVRTC), or null when it can.</summary>
    public static string? UnavailableReason
    {
        get
        {
            if (!Loaded) return LoadError;
            if (Devices().Count == 0) return "CUDA: the NVIDIA driver reports no CUDA device";
            if (!NvrtcNative.Loaded) return NvrtcNative.LoadError;
            return null;
        }
    }

    public static bool Available => UnavailableReason is null;

    public static int DriverVersion
    {
        get
        {
            EnsureLoaded();
            int v;
            Check(cuDriverGetVersion(&v), "cuDriverGetVersion");
            return v;
        }
    }

    /// <summary>The CUDA devices, enumerated once per process under a lock (see <see cref="OpenCL.OpenClRuntime.Devices"/>).</summary>
    public static IReadOnlyList<CudaDevice> Devices() => s_devices.Value;

    private static readonly Lazy<IReadOnlyList<CudaDevice>> s_devices = new(Enumerate, LazyThreadSafetyMode.ExecutionAndPublication);

    private static IReadOnlyList<CudaDevice> Enumerate()
    {
        if (!Loaded) return [];
        int n;
        int st = cuDeviceGetCount(&n);
        if (st == CUDA_ERROR_NO_DEVICE) return [];
        Check(st, "cuDeviceGetCount");
        var list = new List<CudaDevice>(n);
        byte* name = stackalloc byte[256];
        for (int i = 0; i < n; i++)
        {
            int dev, major, minor, sms;
            Check(cuDeviceGet(&dev, i), "cuDeviceGet");
            new Span<byte>(name, 256).Clear();
            Check(cuDeviceGetName(name, 256, dev), "cuDeviceGetName");
            Check(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuDeviceGetAttribute");
            Check(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev), "cuDeviceGetAttribute");
            Check(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev), "cuDeviceGetAttribute");
            nuint mem;
            Check(cuDeviceTotalMem(&mem, dev), "cuDeviceTotalMem");
            list.Add(new CudaDevice
            {
                Index = i,
                Name = Encoding.UTF8.GetString(new ReadOnlySpan<byte>(name, 256).Slice(0, Math.Max(0, new ReadOnlySpan<byte>(name, 256).IndexOf((byte)0)))),
                ComputeMajor = major, ComputeMinor = minor, Multiprocessors = sms, TotalMemoryBytes = mem,
            });
        }
        return list;
    }
}
