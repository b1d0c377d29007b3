using System.Text;
using MaLiang.Engine.Fit.Backends.Gpu;
using static MaLiang.Engine.Fit.Backends.Cuda.CuNative;

namespace MaLiang.Engine.Fit.Backends.Cuda;

/// <summary>
/// One device's primary context with the MaLiang kernels loaded (NVRTC for the device's own architecture, disk-cached).
/// Every call pushes the context on the calling thread and pops it afterwards (<see cref="Enter"/>), so any thread may
/// use it (callers serialize) and a host application's own current context (another Fiji plugin, PyTorch in the same
/// Python process) is left as it was.
/// </summary>
internal sealed unsafe class CudaModule : IDisposable
{
    public const int BlockSize = 128;
    public CudaDevice Device { get; }
    public CudaImage Image { get; }
    private readonly int _dev;
    private nint _ctx, _module;
    private readonly Dictionary<string, nint> _functions = new();

    public CudaModule(int deviceIndex, string? source = null)
    {
        EnsureLoaded();
        var devices = CudaRuntime.Devices();
        if (devices.Count == 0) throw new MaLiangException("CUDA: the NVIDIA driver reports no CUDA device");
        if (deviceIndex < 0 || deviceIndex >= devices.Count)
            throw new MaLiangException($"CUDA: no device {deviceIndex}; found: {string.Join("; ", devices.Select(d => $"{d.Index}: {d}"))}");
        NvrtcNative.EnsureLoaded();
        Device = devices[deviceIndex];
        int dev;
        Check(cuDeviceGet(&dev, deviceIndex), "cuDeviceGet");
        _dev = dev;
        nint ctx;
        Check(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
        _ctx = ctx;
        try
        {
            using (Enter())
            {
                Image = NvrtcCompiler.Compile(source ?? KernelSource.Assemble(GpuApi.Cuda, KernelSource.All), Device.ComputeMajor, Device.ComputeMinor);
                nint mod;
                int st;
                fixed (byte* p = Image.Bytes) st = cuModuleLoadData(&mod, p);
                if (st != CUDA_SUCCESS)
                    throw new CudaException($"cuModuleLoadData({(Image.IsCubin ? "CUBIN" : "PTX")} for {Image.Architecture})", st,
                        ModuleLoadHint(st, Image, NvrtcCompiler.Version(), CudaRuntime.DriverVersion));
                _module = mod;
            }
        }
        catch
        {
            cuDevicePrimaryCtxRelease(_dev);
            _ctx = 0;
            throw;
        }
    }

    /// <summary>What to do when the driver refuses the compiled kernels: almost always NVRTC newer than the driver (its
    /// PTX version is unknown to the driver) or a stale cache entry.</summary>
    internal static string? ModuleLoadHint(int status, CudaImage image, string nvrtcVersion, int driverVersion)
    {
        if (status is not (200 or 209 or 218 or 222)) return null;   // INVALID_IMAGE, NO_BINARY_FOR_GPU, INVALID_PTX, UNSUPPORTED_PTX_VERSION
        string driver = $"{driverVersion / 1000}.{driverVersion % 1000 / 10}";
        return $"the driver (CUDA {driver}) cannot load the {(image.IsCubin ? "CUBIN" : "PTX")} that NVRTC {nvrtcVersion} made for {image.Architecture}"
             + (image.FromCache ? $" (from the kernel cache {NvrtcCompiler.CacheDirectory()}: delete it and retry)" : "")
             + $". NVRTC must not be newer than the driver: update the NVIDIA driver, or set CUDA_PATH to a CUDA toolkit <= {driver}";
    }

    /// <summary>Makes this context current on the calling thread until the scope is disposed, then restores the caller's.</summary>
    public Scope Enter()
    {
        if (_ctx == 0) throw new ObjectDisposedException(nameof(CudaModule));
        Check(cuCtxPushCurrent(_ctx), "cuCtxPushCurrent");
        return new Scope(true);
    }

    /// <summary>Best effort for clean-up paths (dispose, free): never throws.</summary>
    private Scope TryEnter() => new(_ctx != 0 && cuCtxPushCurrent(_ctx) == CUDA_SUCCESS);

    public readonly struct Scope(bool pushed) : IDisposable
    {
        public void Dispose()
        {
            if (!pushed) return;
            nint popped;
            cuCtxPopCurrent(&popped);
        }
    }

    public (long Free, long Total) MemoryInfo()
    {
        using var _ = Enter();
        nuint free, total;
        Check(cuMemGetInfo(&free, &total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>Device memory; throws <see cref="CudaException"/> (OutOfMemory true) when there is not enough.</summary>
    public ulong Alloc(long bytes)
    {
        using var _ = Enter();
        ulong p;
        Check(cuMemAlloc(&p, (nuint)Math.Max(bytes, 4)), $"cuMemAlloc({bytes} B)");
        return p;
    }

    public void Free(ulong p)
    {
        if (p == 0 || _ctx == 0) return;
        using var _ = TryEnter();
        cuMemFree(p);
    }

    /// <summary>Page-locked host memory, so async copies really overlap with kernels.</summary>
    public void* AllocHost(long bytes)
    {
        using var _ = Enter();
        void* p;
        Check(cuMemHostAlloc(&p, (nuint)Math.Max(bytes, 4), CU_MEMHOSTALLOC_PORTABLE), $"cuMemHostAlloc({bytes} B)");
        return p;
    }

    public void FreeHost(void* p)
    {
        if (p == null || _ctx == 0) return;
        using var _ = TryEnter();
        cuMemFreeHost(p);
    }

    /// <summary>Page-locks existing host memory (which must not move); false when the driver refuses (then it stays pageable).</summary>
    public bool RegisterHost(void* p, long bytes)
    {
        using var _ = Enter();
        return cuMemHostRegister(p, (nuint)bytes, CU_MEMHOSTALLOC_PORTABLE) == CUDA_SUCCESS;
    }

    public void UnregisterHost(void* p)
    {
        if (p == null || _ctx == 0) return;
        using var _ = TryEnter();
        cuMemHostUnregister(p);
    }

    public nint CreateStream()
    {
        using var _ = Enter();
        nint s;
        Check(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        return s;
    }

    public void DestroyStream(nint s)
    {
        if (s == 0 || _ctx == 0) return;
        using var _ = TryEnter();
        cuStreamDestroy(s);
    }

    public void Synchronize(nint stream)
    {
        using var _ = Enter();
        Check(cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    /// <summary>Waits for a stream on a failure path: never throws (the error that got us here is the one to report).</summary>
    public void TrySynchronize(nint stream)
    {
        if (stream == 0 || _ctx == 0) return;
        using var _ = TryEnter();
        cuStreamSynchronize(stream);
    }

    public nint Function(string name)
    {
        lock (_functions)   // the backend's fit and its detector's context may launch from different threads
        {
            if (_functions.TryGetValue(name, out var f)) return f;
            var n = Encoding.ASCII.GetBytes(name + "\0");
            using (Enter())
                fixed (byte* p = n) Check(cuModuleGetFunction(&f, _module, p), $"cuModuleGetFunction({name})");
            _functions[name] = f;
            return f;
        }
    }

    /// <summary>1-D launch of <paramref name="workItems"/> threads (rounded up to the block; kernels check their index).</summary>
    public void Launch(string kernel, long workItems, nint stream, ReadOnlySpan<KArg> args)
    {
        if (workItems <= 0) return;
        nint f = Function(kernel);
        ulong* slots = stackalloc ulong[args.Length];
        void** ptrs = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            switch (a.Kind)
            {
                case 0: slots[i] = a.Buffer is null ? 0 : ((ICudaPointer)a.Buffer).Pointer; break;
                case 1: *(int*)&slots[i] = a.Int; break;
                default: *(float*)&slots[i] = a.Float; break;
            }
            ptrs[i] = &slots[i];
        }
        long blocks = (workItems + BlockSize - 1) / BlockSize;
        if (blocks > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(workItems), "launch too large");
        using var _ = Enter();
        Check(cuLaunchKernel(f, (uint)blocks, 1, 1, BlockSize, 1, 1, 0, stream, ptrs, null), $"cuLaunchKernel({kernel})");
    }

    public void Dispose()
    {
        if (_ctx == 0) return;
        using (TryEnter())
            if (_module != 0) { cuModuleUnload(_module); _module = 0; }
        cuDevicePrimaryCtxRelease(_dev);
        _ctx = 0;
    }
}

/// <summary>A device allocation a kernel argument can point to.</summary>
internal interface ICudaPointer { ulong Pointer { get; } }

internal sealed class CudaBuffer : GpuBuffer, ICudaPointer
{
    private readonly CudaModule _owner;
    public ulong Pointer { get; private set; }
    public CudaBuffer(CudaModule owner, long bytes) { _owner = owner; Pointer = owner.Alloc(bytes); Bytes = bytes; }
    public override void Dispose() { _owner.Free(Pointer); Pointer = 0; }
}

/// <summary><see cref="GpuContext"/> on a CUDA device: its own module and one non-blocking stream.</summary>
internal sealed unsafe class CudaGpuContext : GpuContext
{
    private readonly CudaModule _cu;
    private readonly bool _ownsModule;
    private nint _stream;

    public CudaModule Module => _cu;
    public override string Name => "cuda:" + _cu.Device.Name;
    public override long FreeMemoryBytes => _cu.MemoryInfo().Free;
    public override long MaxAllocationBytes => (long)_cu.Device.TotalMemoryBytes;

    public CudaGpuContext(int device) : this(new CudaModule(device), true) { }

    public CudaGpuContext(CudaModule module, bool ownsModule)
    {
        _cu = module;
        _ownsModule = ownsModule;
        try { _stream = _cu.CreateStream(); }
        catch { if (ownsModule) module.Dispose(); throw; }
    }

    public override GpuBuffer Alloc(long bytes) => new CudaBuffer(_cu, bytes);

    protected override void WriteBytes(GpuBuffer b, ReadOnlySpan<byte> data, long offsetBytes)
    {
        if (data.IsEmpty) return;
        var cb = (CudaBuffer)b;
        if (offsetBytes + data.Length > cb.Bytes) throw new ArgumentOutOfRangeException(nameof(data), $"write of {data.Length} B at {offsetBytes} into a {cb.Bytes} B buffer");
        using var _ = _cu.Enter();
        // From pageable memory: the driver stages the data before returning; the sync keeps the span's lifetime obvious.
        fixed (byte* p = data) CuNative.Check(CuNative.cuMemcpyHtoDAsync(cb.Pointer + (ulong)offsetBytes, p, (nuint)data.Length, _stream), "cuMemcpyHtoDAsync");
        _cu.Synchronize(_stream);
    }

    protected override void ReadBytes(GpuBuffer b, Span<byte> data, long offsetBytes)
    {
        if (data.IsEmpty) return;
        var cb = (CudaBuffer)b;
        if (offsetBytes + data.Length > cb.Bytes) throw new ArgumentOutOfRangeException(nameof(data), $"read of {data.Length} B at {offsetBytes} from a {cb.Bytes} B buffer");
        using var _ = _cu.Enter();
        fixed (byte* p = data)
        {
            CuNative.Check(CuNative.cuMemcpyDtoHAsync(p, cb.Pointer + (ulong)offsetBytes, (nuint)data.Length, _stream), "cuMemcpyDtoHAsync");
            _cu.Synchronize(_stream);
        }
    }

    public override void Fill(GpuBuffer b, int value, long bytes = -1)
    {
        var cb = (CudaBuffer)b;
        if (bytes < 0) bytes = cb.Bytes;
        if (bytes / 4 == 0) return;
        using var _ = _cu.Enter();
        CuNative.Check(CuNative.cuMemsetD32Async(cb.Pointer, (uint)value, (nuint)(bytes / 4), _stream), "cuMemsetD32Async");
    }

    public override void Launch(string kernel, long workItems, params ReadOnlySpan<KArg> args) => _cu.Launch(kernel, workItems, _stream, args);

    public override void Finish() => _cu.Synchronize(_stream);

    public override void Dispose()
    {
        _cu.DestroyStream(_stream);
        _stream = 0;
        if (_ownsModule) _cu.Dispose();
    }
}
