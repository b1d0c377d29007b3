using System.Runtime.InteropServices;
using MaLiang.Engine.Fit.Backends.Cuda;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>
/// Direct driver calls the tests make themselves (a caller's own context), and the fault-injection controls of
/// tests/cuda-emulator when that is the libcuda.so.1 loaded (scripts/run-tests.sh runs the "Cuda" category a second
/// time with it). On a real NVIDIA driver the emulator-only tests skip with that reason.
/// </summary>
internal static unsafe class CudaDriver
{
    private static readonly nint Lib = NativeLibrary.TryLoad(CuNative.LibraryName, out var h) ? h : 0;

    private static nint Export(string name)
        => Lib != 0 && NativeLibrary.TryGetExport(Lib, name, out var p) ? p : throw new InvalidOperationException($"{name} not in {CuNative.LibraryName}");

    /// <summary>Skips unless CUDA (a driver or the emulator) is usable here.</summary>
    public static void Require()
    {
        if (CudaRuntime.UnavailableReason is { } why) Assert.Ignore(why);
    }

    public static bool IsEmulator => Lib != 0 && NativeLibrary.TryGetExport(Lib, "mlemu_bytes_in_use", out _);

    /// <summary>Skips unless the CUDA emulator (with its fault injection) is the driver loaded.</summary>
    public static void RequireEmulator()
    {
        Require();
        if (!IsEmulator) Assert.Ignore("needs tests/cuda-emulator's fault injection (out-of-memory, failed launches); a real driver is loaded");
    }

    public static void SetMemoryLimit(ulong bytes) => ((delegate* unmanaged<nuint, void>)Export("mlemu_set_memory_limit"))((nuint)bytes);
    /// <summary>The launch after <paramref name="pass"/> more launches fails with <paramref name="status"/>; -1: off.</summary>
    public static void FailLaunch(long pass, int status) => ((delegate* unmanaged<nint, int, void>)Export("mlemu_fail_launch"))((nint)pass, status);
    public static void ResetError() => ((delegate* unmanaged<void>)Export("mlemu_reset_error"))();
    public static ulong DeviceBytesInUse => ((delegate* unmanaged<nuint>)Export("mlemu_bytes_in_use"))();
    /// <summary>Most device memory in use at once since the last reset (<paramref name="reset"/>: start counting now).</summary>
    public static ulong PeakDeviceBytes(bool reset = false) => ((delegate* unmanaged<int, nuint>)Export("mlemu_peak_bytes"))(reset ? 1 : 0);
    public static ulong PinnedBytesInUse => ((delegate* unmanaged<nuint>)Export("mlemu_pinned_in_use"))();
    /// <summary>Host memory page-locked with cuMemHostRegister.</summary>
    public static ulong RegisteredBytesInUse => ((delegate* unmanaged<nuint>)Export("mlemu_registered_in_use"))();
    public static int StreamsLive => ((delegate* unmanaged<int>)Export("mlemu_streams_live"))();
    public static int PrimaryContextRefs => ((delegate* unmanaged<int>)Export("mlemu_primary_refs"))();
    public const ulong DefaultMemoryLimit = 4UL << 30;

    /// <summary>Creates a context of the caller's own (made current on this thread, as cuCtxCreate does).</summary>
    public static nint CreateContext()
    {
        nint c;
        int st = ((delegate* unmanaged<nint*, uint, int, int>)Export("cuCtxCreate_v2"))(&c, 0, 0);
        Assert.That(st, Is.Zero, "cuCtxCreate");
        return c;
    }

    public static void DestroyContext(nint c) => Assert.That(((delegate* unmanaged<nint, int>)Export("cuCtxDestroy_v2"))(c), Is.Zero, "cuCtxDestroy");

    public static nint Current()
    {
        nint c;
        Assert.That(((delegate* unmanaged<nint*, int>)Export("cuCtxGetCurrent"))(&c), Is.Zero, "cuCtxGetCurrent");
        return c;
    }
}
