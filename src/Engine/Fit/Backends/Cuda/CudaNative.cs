using System.Runtime.InteropServices;

namespace MaLiang.Engine.Fit.Backends.Cuda;

/// <summary>
/// The CUDA driver API entry points MaLiang uses, bound at run time from libcuda.so.1 (nvcuda.dll) with
/// <see cref="NativeLibrary.TryLoad(string, out nint)"/>: a machine without the NVIDIA driver loads the engine fine and
/// gets <see cref="LoadError"/>. Blittable signatures only (CUdeviceptr = ulong, handles = nint, size_t = nuint).
/// </summary>
internal static unsafe class CuNative
{
    public const int CUDA_SUCCESS = 0, CUDA_ERROR_OUT_OF_MEMORY = 2, CUDA_ERROR_NO_DEVICE = 100;
    public const int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public const uint CU_STREAM_NON_BLOCKING = 1, CU_MEMHOSTALLOC_PORTABLE = 1;

    public static readonly bool Loaded;
    public static readonly string? LoadError;

    public static readonly delegate* unmanaged<uint, int> cuInit;
    public static readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public static readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public static readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public static readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public static readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public static readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    public static readonly delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    public static readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease;
    public static readonly delegate* unmanaged<nint, int> cuCtxPushCurrent;
    public static readonly delegate* unmanaged<nint*, int> cuCtxPopCurrent;
    public static readonly delegate* unmanaged<nint*, int> cuCtxGetCurrent;
    public static readonly delegate* unmanaged<int> cuCtxSynchronize;
    public static readonly delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    public static readonly delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    public static readonly delegate* unmanaged<nint, int> cuModuleUnload;
    public static readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc;
    public static readonly delegate* unmanaged<ulong, int> cuMemFree;
    public static readonly delegate* unmanaged<void**, nuint, uint, int> cuMemHostAlloc;
    public static readonly delegate* unmanaged<void*, int> cuMemFreeHost;
    public static readonly delegate* unmanaged<void*, nuint, uint, int> cuMemHostRegister;
    public static readonly delegate* unmanaged<void*, int> cuMemHostUnregister;
    public static readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    public static readonly delegate* unmanaged<ulong, void*, nuint, nint, int> cuMemcpyHtoDAsync;
    public static readonly delegate* unmanaged<void*, ulong, nuint, nint, int> cuMemcpyDtoHAsync;
    public static readonly delegate* unmanaged<ulong, uint, nuint, nint, int> cuMemsetD32Async;
    public static readonly delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    public static readonly delegate* unmanaged<nint, int> cuStreamSynchronize;
    public static readonly delegate* unmanaged<nint, int> cuStreamDestroy;
    public static readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    public static readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;
    public static readonly delegate* unmanaged<int, byte**, int> cuGetErrorString;

    /// <summary>The library name probed first (the message names it).</summary>
    public static string LibraryName => OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1";

    static CuNative()
    {
        string[] names = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];
        nint lib = 0;
        foreach (var n in names) if (NativeLibrary.TryLoad(n, out lib)) break;
        if (lib == 0) { LoadError = $"CUDA: {LibraryName} not found — no NVIDIA driver"; return; }
        try
        {
            cuInit = (delegate* unmanaged<uint, int>)Sym(lib, "cuInit");
            cuDriverGetVersion = (delegate* unmanaged<int*, int>)Sym(lib, "cuDriverGetVersion");
            cuDeviceGetCount = (delegate* unmanaged<int*, int>)Sym(lib, "cuDeviceGetCount");
            cuDeviceGet = (delegate* unmanaged<int*, int, int>)Sym(lib, "cuDeviceGet");
            cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Sym(lib, "cuDeviceGetName");
            cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Sym(lib, "cuDeviceGetAttribute");
            cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Sym(lib, "cuDeviceTotalMem_v2");
            cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)Sym(lib, "cuDevicePrimaryCtxRetain");
            cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)(NativeLibrary.TryGetExport(lib, "cuDevicePrimaryCtxRelease_v2", out var rel) ? rel : Sym(lib, "cuDevicePrimaryCtxRelease"));
            cuCtxPushCurrent = (delegate* unmanaged<nint, int>)Sym(lib, "cuCtxPushCurrent_v2");
            cuCtxPopCurrent = (delegate* unmanaged<nint*, int>)Sym(lib, "cuCtxPopCurrent_v2");
            cuCtxGetCurrent = (delegate* unmanaged<nint*, int>)Sym(lib, "cuCtxGetCurrent");
            cuCtxSynchronize = (delegate* unmanaged<int>)Sym(lib, "cuCtxSynchronize");
            cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)Sym(lib, "cuModuleLoadData");
            cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)Sym(lib, "cuModuleGetFunction");
            cuModuleUnload = (delegate* unmanaged<nint, int>)Sym(lib, "cuModuleUnload");
            cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)Sym(lib, "cuMemAlloc_v2");
            cuMemFree = (delegate* unmanaged<ulong, int>)Sym(lib, "cuMemFree_v2");
            cuMemHostAlloc = (delegate* unmanaged<void**, nuint, uint, int>)Sym(lib, "cuMemHostAlloc");
            cuMemFreeHost = (delegate* unmanaged<void*, int>)Sym(lib, "cuMemFreeHost");
            cuMemHostRegister = (delegate* unmanaged<void*, nuint, uint, int>)Sym(lib, "cuMemHostRegister_v2");
            cuMemHostUnregister = (delegate* unmanaged<void*, int>)Sym(lib, "cuMemHostUnregister");
            cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)Sym(lib, "cuMemGetInfo_v2");
            cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)Sym(lib, "cuMemcpyHtoDAsync_v2");
            cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)Sym(lib, "cuMemcpyDtoHAsync_v2");
            cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, nint, int>)Sym(lib, "cuMemsetD32Async");
            cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)Sym(lib, "cuStreamCreate");
            cuStreamSynchronize = (delegate* unmanaged<nint, int>)Sym(lib, "cuStreamSynchronize");
            cuStreamDestroy = (delegate* unmanaged<nint, int>)Sym(lib, "cuStreamDestroy_v2");
            cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)Sym(lib, "cuLaunchKernel");
            cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Sym(lib, "cuGetErrorName");
            cuGetErrorString = (delegate* unmanaged<int, byte**, int>)Sym(lib, "cuGetErrorString");
        }
        catch (EntryPointNotFoundException e)
        {
            LoadError = $"CUDA: the NVIDIA driver's {LibraryName} lacks {e.Message} (driver too old; CUDA 11 or newer is needed)";
            return;
        }
        int st = cuInit(0);
        if (st != CUDA_SUCCESS)
        {
            LoadError = st == CUDA_ERROR_NO_DEVICE ? "CUDA: the NVIDIA driver is installed but reports no CUDA device"
                : $"CUDA: cuInit failed with {ErrorName(st)} ({st})";
            return;
        }
        Loaded = true;
    }

    private static nint Sym(nint lib, string name)
        => NativeLibrary.TryGetExport(lib, name, out var p) ? p : throw new EntryPointNotFoundException(name);

    public static void EnsureLoaded()
    {
        if (!Loaded) throw new MaLiangException(LoadError ?? "CUDA: not available");
    }

    public static void Check(int status, string call)
    {
        if (status != CUDA_SUCCESS) throw new CudaException(call, status);
    }

    public static string ErrorName(int status)
    {
        if (cuGetErrorName != null)
        {
            byte* s = null;
            if (cuGetErrorName(status, &s) == CUDA_SUCCESS && s != null) return Marshal.PtrToStringUTF8((nint)s) ?? $"CUDA error {status}";
        }
        return status switch
        {
            0 => "CUDA_SUCCESS", 1 => "CUDA_ERROR_INVALID_VALUE", 2 => "CUDA_ERROR_OUT_OF_MEMORY", 3 => "CUDA_ERROR_NOT_INITIALIZED",
            4 => "CUDA_ERROR_DEINITIALIZED", 34 => "CUDA_ERROR_STUB_LIBRARY", 35 => "CUDA_ERROR_DEVICE_UNAVAILABLE",
            100 => "CUDA_ERROR_NO_DEVICE", 101 => "CUDA_ERROR_INVALID_DEVICE", 200 => "CUDA_ERROR_INVALID_IMAGE",
            201 => "CUDA_ERROR_INVALID_CONTEXT", 209 => "CUDA_ERROR_NO_BINARY_FOR_GPU", 218 => "CUDA_ERROR_INVALID_PTX",
            222 => "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", 300 => "CUDA_ERROR_INVALID_SOURCE", 400 => "CUDA_ERROR_INVALID_HANDLE",
            500 => "CUDA_ERROR_NOT_FOUND", 700 => "CUDA_ERROR_ILLEGAL_ADDRESS", 701 => "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
            702 => "CUDA_ERROR_LAUNCH_TIMEOUT", 719 => "CUDA_ERROR_LAUNCH_FAILED", 803 => "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
            999 => "CUDA_ERROR_UNKNOWN", _ => $"CUDA error {status}",
        };
    }
}

/// <summary>A CUDA driver call failed: names the call and the CUDA error.</summary>
public class CudaException : MaLiangException
{
    public string Call { get; }
    public int Status { get; }
    public bool OutOfMemory => Status == CuNative.CUDA_ERROR_OUT_OF_MEMORY;
    public CudaException(string call, int status, string? detail = null)
        : base($"CUDA: {call} failed with {CuNative.ErrorName(status)} ({status}){(detail is null ? "" : ": " + detail)}")
    {
        Call = call;
        Status = status;
    }
}

/// <summary>NVRTC did not compile the kernel source; <see cref="Log"/> is its log, which the message includes.</summary>
public sealed class NvrtcException : MaLiangException
{
    public string Log { get; }
    public NvrtcException(string call, string error, string log)
        : base($"CUDA: {call} failed with {error}{(log.Length == 0 ? "" : "; NVRTC log:\n" + log.TrimEnd())}") => Log = log;
}

/// <summary>
/// NVRTC (libnvrtc), found on the usual CUDA paths: $CUDA_PATH, $CUDA_HOME, /usr/local/cuda*, the loader's path.
/// </summary>
internal static unsafe class NvrtcNative
{
    public const int NVRTC_SUCCESS = 0;
    public static readonly bool Loaded;
    public static readonly string? LoadError;
    public static readonly string? LibraryPath;

    public static readonly delegate* unmanaged<int*, int*, int> nvrtcVersion;
    public static readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public static readonly delegate* unmanaged<nint, int, byte**, int> nvrtcCompileProgram;
    public static readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetProgramLogSize;
    public static readonly delegate* unmanaged<nint, byte*, int> nvrtcGetProgramLog;
    public static readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetPTXSize;
    public static readonly delegate* unmanaged<nint, byte*, int> nvrtcGetPTX;
    public static readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetCUBINSize;   // null before CUDA 11.1
    public static readonly delegate* unmanaged<nint, byte*, int> nvrtcGetCUBIN;
    public static readonly delegate* unmanaged<nint*, int> nvrtcDestroyProgram;
    public static readonly delegate* unmanaged<int, byte*> nvrtcGetErrorString;
    public static readonly delegate* unmanaged<int*, int> nvrtcGetNumSupportedArchs; // null before CUDA 11.2
    public static readonly delegate* unmanaged<int*, int> nvrtcGetSupportedArchs;

    /// <summary>Candidate library files, most specific first.</summary>
    public static IEnumerable<string> Candidates()
    {
        if (OperatingSystem.IsWindows())
        {
            foreach (var dir in new[] { Environment.GetEnvironmentVariable("CUDA_PATH") }.Where(d => !string.IsNullOrEmpty(d)))
                foreach (var f in SafeGlob(Path.Combine(dir!, "bin"), "nvrtc64_*.dll").OrderDescending()) yield return f;
            foreach (var v in new[] { "nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll" }) yield return v;
            yield break;
        }
        var dirs = new List<string>();
        foreach (var env in new[] { "CUDA_PATH", "CUDA_HOME", "CUDA_ROOT" })
        {
            var d = Environment.GetEnvironmentVariable(env);
            if (!string.IsNullOrEmpty(d)) { dirs.Add(Path.Combine(d, "lib64")); dirs.Add(Path.Combine(d, "lib")); dirs.Add(Path.Combine(d, "targets", "x86_64-linux", "lib")); }
        }
        dirs.Add("/usr/local/cuda/lib64");
        dirs.Add("/usr/local/cuda/targets/x86_64-linux/lib");
        foreach (var d in SafeGlob("/usr/local", "cuda-*").OrderDescending()) dirs.Add(Path.Combine(d, "lib64"));
        dirs.Add("/usr/lib/x86_64-linux-gnu");
        dirs.Add("/usr/lib64");
        dirs.Add("/opt/cuda/lib64");
        foreach (var d in dirs)
            foreach (var f in SafeGlob(d, "libnvrtc.so*").Where(f => !f.Contains("builtins")).OrderBy(f => f.Length)) yield return f;
        foreach (var n in new[] { "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so.11.0" })
            yield return n;   // LD_LIBRARY_PATH and the loader cache
    }

    private static IEnumerable<string> SafeGlob(string dir, string pattern)
    {
        try { return Directory.Exists(dir) ? Directory.GetFileSystemEntries(dir, pattern) : []; }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    static NvrtcNative()
    {
        nint lib = 0;
        foreach (var c in Candidates())
            if (NativeLibrary.TryLoad(c, out lib)) { LibraryPath = c; break; }
        if (lib == 0) { LoadError = "CUDA: NVRTC (libnvrtc.so) not found on $CUDA_PATH, $CUDA_HOME, /usr/local/cuda*/lib64 or the loader path — install the CUDA toolkit's NVRTC or set CUDA_PATH"; return; }
        try
        {
            nvrtcVersion = (delegate* unmanaged<int*, int*, int>)Sym(lib, "nvrtcVersion");
            nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)Sym(lib, "nvrtcCreateProgram");
            nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, int>)Sym(lib, "nvrtcCompileProgram");
            nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)Sym(lib, "nvrtcGetProgramLogSize");
            nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, int>)Sym(lib, "nvrtcGetProgramLog");
            nvrtcGetPTXSize = (delegate* unmanaged<nint, nuint*, int>)Sym(lib, "nvrtcGetPTXSize");
            nvrtcGetPTX = (delegate* unmanaged<nint, byte*, int>)Sym(lib, "nvrtcGetPTX");
            nvrtcDestroyProgram = (delegate* unmanaged<nint*, int>)Sym(lib, "nvrtcDestroyProgram");
            nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)Sym(lib, "nvrtcGetErrorString");
            if (NativeLibrary.TryGetExport(lib, "nvrtcGetCUBINSize", out var a) && NativeLibrary.TryGetExport(lib, "nvrtcGetCUBIN", out var b))
            { nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, int>)a; nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, int>)b; }
            if (NativeLibrary.TryGetExport(lib, "nvrtcGetNumSupportedArchs", out var c) && NativeLibrary.TryGetExport(lib, "nvrtcGetSupportedArchs", out var d))
            { nvrtcGetNumSupportedArchs = (delegate* unmanaged<int*, int>)c; nvrtcGetSupportedArchs = (delegate* unmanaged<int*, int>)d; }
            Loaded = true;
        }
        catch (EntryPointNotFoundException e)
        {
            LoadError = $"CUDA: {LibraryPath} lacks {e.Message}";
        }
    }

    private static nint Sym(nint lib, string name)
        => NativeLibrary.TryGetExport(lib, name, out var p) ? p : throw new EntryPointNotFoundException(name);

    public static string ErrorString(int status)
        => nvrtcGetErrorString != null ? Marshal.PtrToStringUTF8((nint)nvrtcGetErrorString(status)) ?? $"NVRTC error {status}" : $"NVRTC error {status}";

    public static void EnsureLoaded()
    {
        if (!Loaded) throw new MaLiangException(LoadError ?? "CUDA: NVRTC not available");
    }
}
