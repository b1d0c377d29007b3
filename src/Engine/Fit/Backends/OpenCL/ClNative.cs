using System.Runtime.InteropServices;

namespace MaLiang.Engine.Fit.Backends.OpenCL;

/// <summary>
/// The OpenCL 1.2 entry points MaLiang uses, bound at run time from the ICD loader (libOpenCL.so.1) with
/// <see cref="NativeLibrary.TryLoad(string, out nint)"/> and <see cref="NativeLibrary.GetExport"/>: no DllImport
/// resolution at type load, so a machine without OpenCL still runs (the CPU backend), and NativeAOT needs no reflection.
/// All signatures are blittable (handles are nint, size_t is nuint, cl_bool / cl_uint are uint).
/// </summary>
internal static unsafe class ClNative
{
    public const uint CL_PLATFORM_VERSION = 0x0901, CL_PLATFORM_NAME = 0x0902, CL_PLATFORM_VENDOR = 0x0903;
    public const ulong CL_DEVICE_TYPE_CPU = 2, CL_DEVICE_TYPE_GPU = 4, CL_DEVICE_TYPE_ACCELERATOR = 8, CL_DEVICE_TYPE_ALL = 0xFFFFFFFF;
    public const uint CL_DEVICE_TYPE = 0x1000, CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002, CL_DEVICE_MAX_WORK_GROUP_SIZE = 0x1004,
        CL_DEVICE_MAX_MEM_ALLOC_SIZE = 0x1010, CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F, CL_DEVICE_NAME = 0x102B,
        CL_DEVICE_VENDOR = 0x102C, CL_DRIVER_VERSION = 0x102D, CL_DEVICE_VERSION = 0x102F;
    public const uint CL_PROGRAM_BUILD_LOG = 0x1183;
    public const ulong CL_MEM_READ_WRITE = 1, CL_MEM_WRITE_ONLY = 2, CL_MEM_READ_ONLY = 4;
    public const int CL_SUCCESS = 0, CL_DEVICE_NOT_FOUND = -1, CL_BUILD_PROGRAM_FAILURE = -11, CL_PLATFORM_NOT_FOUND_KHR = -1001;

    public static readonly bool Loaded;
    /// <summary>Why OpenCL cannot be used, when <see cref="Loaded"/> is false.</summary>
    public static readonly string? LoadError;

    public static readonly delegate* unmanaged<uint, nint*, uint*, int> clGetPlatformIDs;
    public static readonly delegate* unmanaged<nint, uint, nuint, void*, nuint*, int> clGetPlatformInfo;
    public static readonly delegate* unmanaged<nint, ulong, uint, nint*, uint*, int> clGetDeviceIDs;
    public static readonly delegate* unmanaged<nint, uint, nuint, void*, nuint*, int> clGetDeviceInfo;
    public static readonly delegate* unmanaged<nint*, uint, nint*, nint, nint, int*, nint> clCreateContext;
    public static readonly delegate* unmanaged<nint, nint, ulong, int*, nint> clCreateCommandQueue;
    public static readonly delegate* unmanaged<nint, uint, byte**, nuint*, int*, nint> clCreateProgramWithSource;
    public static readonly delegate* unmanaged<nint, uint, nint*, byte*, nint, nint, int> clBuildProgram;
    public static readonly delegate* unmanaged<nint, nint, uint, nuint, void*, nuint*, int> clGetProgramBuildInfo;
    public static readonly delegate* unmanaged<nint, byte*, int*, nint> clCreateKernel;
    public static readonly delegate* unmanaged<nint, uint, nuint, void*, int> clSetKernelArg;
    public static readonly delegate* unmanaged<nint, ulong, nuint, void*, int*, nint> clCreateBuffer;
    public static readonly delegate* unmanaged<nint, nint, uint, nuint, nuint, void*, uint, nint*, nint*, int> clEnqueueWriteBuffer;
    public static readonly delegate* unmanaged<nint, nint, uint, nuint, nuint, void*, uint, nint*, nint*, int> clEnqueueReadBuffer;
    public static readonly delegate* unmanaged<nint, nint, void*, nuint, nuint, nuint, uint, nint*, nint*, int> clEnqueueFillBuffer;
    public static readonly delegate* unmanaged<nint, nint, uint, nuint*, nuint*, nuint*, uint, nint*, nint*, int> clEnqueueNDRangeKernel;
    public static readonly delegate* unmanaged<nint, int> clFinish;
    public static readonly delegate* unmanaged<nint, int> clReleaseMemObject;
    public static readonly delegate* unmanaged<nint, int> clReleaseKernel;
    public static readonly delegate* unmanaged<nint, int> clReleaseProgram;
    public static readonly delegate* unmanaged<nint, int> clReleaseCommandQueue;
    public static readonly delegate* unmanaged<nint, int> clReleaseContext;

    static ClNative()
    {
        string[] names = OperatingSystem.IsWindows() ? ["OpenCL.dll"]
            : OperatingSystem.IsMacOS() ? ["/System/Library/Frameworks/OpenCL.framework/OpenCL"]
            : ["libOpenCL.so.1", "libOpenCL.so"];
        nint lib = 0;
        foreach (var n in names) if (NativeLibrary.TryLoad(n, out lib)) break;
        if (lib == 0) { LoadError = $"OpenCL: {names[0]} not found — no OpenCL ICD loader installed (Debian: ocl-icd-libopencl1 plus a driver such as pocl-opencl-icd)"; return; }
        try
        {
            clGetPlatformIDs = (delegate* unmanaged<uint, nint*, uint*, int>)Sym(lib, "clGetPlatformIDs");
            clGetPlatformInfo = (delegate* unmanaged<nint, uint, nuint, void*, nuint*, int>)Sym(lib, "clGetPlatformInfo");
            clGetDeviceIDs = (delegate* unmanaged<nint, ulong, uint, nint*, uint*, int>)Sym(lib, "clGetDeviceIDs");
            clGetDeviceInfo = (delegate* unmanaged<nint, uint, nuint, void*, nuint*, int>)Sym(lib, "clGetDeviceInfo");
            clCreateContext = (delegate* unmanaged<nint*, uint, nint*, nint, nint, int*, nint>)Sym(lib, "clCreateContext");
            clCreateCommandQueue = (delegate* unmanaged<nint, nint, ulong, int*, nint>)Sym(lib, "clCreateCommandQueue");
            clCreateProgramWithSource = (delegate* unmanaged<nint, uint, byte**, nuint*, int*, nint>)Sym(lib, "clCreateProgramWithSource");
            clBuildProgram = (delegate* unmanaged<nint, uint, nint*, byte*, nint, nint, int>)Sym(lib, "clBuildProgram");
            clGetProgramBuildInfo = (delegate* unmanaged<nint, nint, uint, nuint, void*, nuint*, int>)Sym(lib, "clGetProgramBuildInfo");
            clCreateKernel = (delegate* unmanaged<nint, byte*, int*, nint>)Sym(lib, "clCreateKernel");
            clSetKernelArg = (delegate* unmanaged<nint, uint, nuint, void*, int>)Sym(lib, "clSetKernelArg");
            clCreateBuffer = (delegate* unmanaged<nint, ulong, nuint, void*, int*, nint>)Sym(lib, "clCreateBuffer");
            clEnqueueWriteBuffer = (delegate* unmanaged<nint, nint, uint, nuint, nuint, void*, uint, nint*, nint*, int>)Sym(lib, "clEnqueueWriteBuffer");
            clEnqueueReadBuffer = (delegate* unmanaged<nint, nint, uint, nuint, nuint, void*, uint, nint*, nint*, int>)Sym(lib, "clEnqueueReadBuffer");
            clEnqueueFillBuffer = (delegate* unmanaged<nint, nint, void*, nuint, nuint, nuint, uint, nint*, nint*, int>)Sym(lib, "clEnqueueFillBuffer");
            clEnqueueNDRangeKernel = (delegate* unmanaged<nint, nint, uint, nuint*, nuint*, nuint*, uint, nint*, nint*, int>)Sym(lib, "clEnqueueNDRangeKernel");
            clFinish = (delegate* unmanaged<nint, int>)Sym(lib, "clFinish");
            clReleaseMemObject = (delegate* unmanaged<nint, int>)Sym(lib, "clReleaseMemObject");
            clReleaseKernel = (delegate* unmanaged<nint, int>)Sym(lib, "clReleaseKernel");
            clReleaseProgram = (delegate* unmanaged<nint, int>)Sym(lib, "clReleaseProgram");
            clReleaseCommandQueue = (delegate* unmanaged<nint, int>)Sym(lib, "clReleaseCommandQueue");
            clReleaseContext = (delegate* unmanaged<nint, int>)Sym(lib, "clReleaseContext");
            Loaded = true;
        }
        catch (EntryPointNotFoundException e)
        {
            LoadError = $"OpenCL: the ICD loader lacks {e.Message} (OpenCL 1.2 is needed)";
        }
    }

    private static nint Sym(nint lib, string name)
        => NativeLibrary.TryGetExport(lib, name, out var p) ? p : throw new EntryPointNotFoundException(name);

    /// <summary>Throws <see cref="OpenClException"/> naming the call and the CL error unless status is CL_SUCCESS.</summary>
    public static void Check(int status, string call)
    {
        if (status != CL_SUCCESS) throw new OpenClException(call, status);
    }

    public static void EnsureLoaded()
    {
        if (!Loaded) throw new MaLiangException(LoadError ?? "OpenCL: not available");
    }

    public static string ErrorName(int status) => status switch
    {
        0 => "CL_SUCCESS",
        -1 => "CL_DEVICE_NOT_FOUND", -2 => "CL_DEVICE_NOT_AVAILABLE", -3 => "CL_COMPILER_NOT_AVAILABLE",
        -4 => "CL_MEM_OBJECT_ALLOCATION_FAILURE", -5 => "CL_OUT_OF_RESOURCES", -6 => "CL_OUT_OF_HOST_MEMORY",
        -7 => "CL_PROFILING_INFO_NOT_AVAILABLE", -8 => "CL_MEM_COPY_OVERLAP", -9 => "CL_IMAGE_FORMAT_MISMATCH",
        -10 => "CL_IMAGE_FORMAT_NOT_SUPPORTED", -11 => "CL_BUILD_PROGRAM_FAILURE", -12 => "CL_MAP_FAILURE",
        -13 => "CL_MISALIGNED_SUB_BUFFER_OFFSET", -14 => "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
        -15 => "CL_COMPILE_PROGRAM_FAILURE", -16 => "CL_LINKER_NOT_AVAILABLE", -17 => "CL_LINK_PROGRAM_FAILURE",
        -18 => "CL_DEVICE_PARTITION_FAILED", -19 => "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
        -30 => "CL_INVALID_VALUE", -31 => "CL_INVALID_DEVICE_TYPE", -32 => "CL_INVALID_PLATFORM", -33 => "CL_INVALID_DEVICE",
        -34 => "CL_INVALID_CONTEXT", -35 => "CL_INVALID_QUEUE_PROPERTIES", -36 => "CL_INVALID_COMMAND_QUEUE",
        -37 => "CL_INVALID_HOST_PTR", -38 => "CL_INVALID_MEM_OBJECT", -39 => "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
        -40 => "CL_INVALID_IMAGE_SIZE", -41 => "CL_INVALID_SAMPLER", -42 => "CL_INVALID_BINARY",
        -43 => "CL_INVALID_BUILD_OPTIONS", -44 => "CL_INVALID_PROGRAM", -45 => "CL_INVALID_PROGRAM_EXECUTABLE",
        -46 => "CL_INVALID_KERNEL_NAME", -47 => "CL_INVALID_KERNEL_DEFINITION", -48 => "CL_INVALID_KERNEL",
        -49 => "CL_INVALID_ARG_INDEX", -50 => "CL_INVALID_ARG_VALUE", -51 => "CL_INVALID_ARG_SIZE",
        -52 => "CL_INVALID_KERNEL_ARGS", -53 => "CL_INVALID_WORK_DIMENSION", -54 => "CL_INVALID_WORK_GROUP_SIZE",
        -55 => "CL_INVALID_WORK_ITEM_SIZE", -56 => "CL_INVALID_GLOBAL_OFFSET", -57 => "CL_INVALID_EVENT_WAIT_LIST",
        -58 => "CL_INVALID_EVENT", -59 => "CL_INVALID_OPERATION", -60 => "CL_INVALID_GL_OBJECT",
        -61 => "CL_INVALID_BUFFER_SIZE", -62 => "CL_INVALID_MIP_LEVEL", -63 => "CL_INVALID_GLOBAL_WORK_SIZE",
        -64 => "CL_INVALID_PROPERTY", -65 => "CL_INVALID_IMAGE_DESCRIPTOR", -66 => "CL_INVALID_COMPILER_OPTIONS",
        -67 => "CL_INVALID_LINKER_OPTIONS", -68 => "CL_INVALID_DEVICE_PARTITION_COUNT", -69 => "CL_INVALID_PIPE_SIZE",
        -70 => "CL_INVALID_DEVICE_QUEUE", -71 => "CL_INVALID_SPEC_ID", -72 => "CL_MAX_SIZE_RESTRICTION_EXCEEDED",
        -1001 => "CL_PLATFORM_NOT_FOUND_KHR",
        _ => $"CL error {status}",
    };
}

/// <summary>An OpenCL call failed: names the call and the CL error, e.g. "OpenCL: clCreateBuffer failed with CL_INVALID_BUFFER_SIZE (-61)".</summary>
public class OpenClException : MaLiangException
{
    public string Call { get; }
    public int Status { get; }
    public string ErrorName => ClNative.ErrorName(Status);

    public OpenClException(string call, int status, string? detail = null)
        : base($"OpenCL: {call} failed with {ClNative.ErrorName(status)} ({status}){(detail is null ? "" : ": " + detail)}")
    {
        Call = call;
        Status = status;
    }
}

/// <summary>A kernel did not compile; <see cref="BuildLog"/> is the compiler's log, which the message includes too.</summary>
public sealed class OpenClBuildException : OpenClException
{
    public string BuildLog { get; }
    public OpenClBuildException(int status, string device, string log)
        : base("clBuildProgram", status, $"kernel build for {device} failed; build log:\n{log.TrimEnd()}")
        => BuildLog = log;
}
