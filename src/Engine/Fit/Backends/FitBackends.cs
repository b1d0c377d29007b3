using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.OpenCL;

namespace MaLiang.Engine.Fit.Backends;

/// <summary>One GPU device for <c>maliang devices</c>, or (Index -1) a line saying why a backend has none.</summary>
public sealed record GpuDeviceInfo(string Backend, int Index, string Name, string Details, string? UnavailableReason = null)
{
    public bool Available => UnavailableReason is null;
    public override string ToString() => Available ? $"{Backend} {Index}: {Name} ({Details})" : $"{Backend}: unavailable — {UnavailableReason}";
}

/// <summary>GPU devices of both backends.</summary>
public static class GpuDevices
{
    /// <summary>CUDA devices, then OpenCL devices; a backend without devices contributes one line with its reason.</summary>
    public static IReadOnlyList<GpuDeviceInfo> List()
    {
        var list = new List<GpuDeviceInfo>();
        string? cudaWhy = null;
        try
        {
            cudaWhy = CudaRuntime.UnavailableReason;
            foreach (var d in CudaRuntime.Devices())
                list.Add(new GpuDeviceInfo("cuda", d.Index, d.Name,
                    $"compute capability {d.ComputeCapability}, {d.Multiprocessors} multiprocessors, {d.TotalMemoryBytes / (1024 * 1024)} MiB", cudaWhy));
        }
        catch (MaLiangException e) { cudaWhy = e.Message; }
        if (!list.Any(d => d.Backend == "cuda")) list.Add(new GpuDeviceInfo("cuda", -1, "", "", cudaWhy ?? "CUDA: no device"));

        try
        {
            foreach (var d in OpenClRuntime.Devices())
                list.Add(new GpuDeviceInfo("opencl", d.Index, d.Name,
                    $"{d.Type}, {d.Vendor}, {d.ComputeUnits} compute units, {d.GlobalMemoryBytes / (1024 * 1024)} MiB, {d.Version}, platform {d.Platform}"));
            if (!list.Any(d => d.Backend == "opencl"))
                list.Add(new GpuDeviceInfo("opencl", -1, "", "", OpenClRuntime.LibraryError ?? "OpenCL: no platform with a device (install a driver, e.g. pocl-opencl-icd)"));
        }
        catch (MaLiangException e) { list.Add(new GpuDeviceInfo("opencl", -1, "", "", e.Message)); }
        return list;
    }

    /// <summary>One line per entry of <see cref="List"/>, for error messages.</summary>
    public static string Describe() => string.Join("; ", List().Select(d => d.ToString()));
}

/// <summary>
/// Creates the fit backend <see cref="LocalizerSettings.Backend"/> names: CPU, OpenCL or CUDA.
/// </summary>
public static class FitBackends
{
    /// <summary>The backend for <paramref name="kind"/> with <paramref name="threads"/> CPU threads (0 = all cores).</summary>
    public static IFitBackend Create(BackendKind kind, int threads, out string description)
        => Create(kind, out description, threads);

    /// <summary>
    /// Auto: CUDA when a device and NVRTC are there, else an OpenCL GPU device, else the CPU (SIMD, all cores).
    /// Cpu / OpenCL / Cuda: that backend (OpenCL takes the first GPU, else the first device of any type, e.g. PoCL;
    /// <paramref name="device"/> picks another), or a <see cref="MaLiangException"/> naming why it is unavailable and
    /// listing the devices found. <paramref name="description"/> says what was chosen, and for Auto why the others were not.
    /// </summary>
    public static IFitBackend Create(BackendKind kind, out string description, int threads = 0, int device = -1)
    {
        switch (kind)
        {
            case BackendKind.Cpu:
                description = Cpu(threads);
                return new CpuFitBackend(threads);
            case BackendKind.Cuda:
            {
                var why = CudaRuntime.UnavailableReason;
                if (why is not null) throw new BackendUnavailableException($"backend cuda: {why}. Devices found: {GpuDevices.Describe()}");
                var b = new CudaFitBackend(Math.Max(device, 0));
                description = $"{b.Name} (compute capability {b.Device.ComputeCapability})";
                return b;
            }
            case BackendKind.OpenCL:
            {
                var devs = OpenClRuntime.Devices();
                if (devs.Count == 0)
                    throw new BackendUnavailableException($"backend opencl: {OpenClRuntime.LibraryError ?? "no OpenCL device"}. Devices found: {GpuDevices.Describe()}");
                OpenClDevice d;
                if (device >= 0)
                    d = device < devs.Count ? devs[device] : throw new BackendUnavailableException($"backend opencl: no device {device}. Devices found: {GpuDevices.Describe()}");
                else d = devs.FirstOrDefault(x => x.IsGpu) ?? devs[0];
                var b = new OpenClFitBackend(d);
                description = $"{b.Name} ({d.Type}, {d.Platform})";
                return b;
            }
            case BackendKind.Auto:
            {
                var notes = new List<string>();
                var cudaWhy = CudaRuntime.UnavailableReason;
                if (cudaWhy is null)
                {
                    try
                    {
                        var b = new CudaFitBackend(Math.Max(device, 0));
                        description = $"{b.Name} (auto)";
                        return b;
                    }
                    catch (MaLiangException e) { notes.Add(e.Message); }
                }
                else notes.Add(cudaWhy);
                try
                {
                    var gpu = OpenClRuntime.Devices().FirstOrDefault(x => x.IsGpu);
                    if (gpu is not null)
                    {
                        var b = new OpenClFitBackend(gpu);
                        description = $"{b.Name} (auto; {string.Join("; ", notes)})";
                        return b;
                    }
                    notes.Add(OpenClRuntime.LibraryError ?? "OpenCL: no GPU device");
                }
                catch (MaLiangException e) { notes.Add(e.Message); }
                description = $"{Cpu(threads)} (auto; {string.Join("; ", notes)})";
                return new CpuFitBackend(threads);
            }
            default:
                throw new InvalidParameterException("backend", $"unknown backend {(int)kind}");
        }
    }

    private static string Cpu(int threads)
        => $"cpu ({(threads <= 0 ? Environment.ProcessorCount : threads)} threads, {CpuFitBackend.Lanes} SIMD lanes)";
}
