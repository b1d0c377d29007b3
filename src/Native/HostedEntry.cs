#if MALIANG_HOSTED
namespace MaLiang.Native;

/// <summary>The entry point of the hosted build (make dist, platforms without a NativeAOT cross-compiler): hostfxr starts
/// a self-contained app, then the shim (src/Native/shim) asks for the [UnmanagedCallersOnly] exports by name. Never run.</summary>
public static class HostedEntry
{
    public static int Main() => 0;
}
#endif
