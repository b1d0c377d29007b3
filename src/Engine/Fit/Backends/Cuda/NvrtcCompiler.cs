using System.Security.Cryptography;
using System.Text;
using static MaLiang.Engine.Fit.Backends.Cuda.NvrtcNative;

namespace MaLiang.Engine.Fit.Backends.Cuda;

/// <summary>Compiled kernel image for cuModuleLoadData: a CUBIN for the device's own architecture, or PTX the driver JITs.</summary>
internal sealed record CudaImage(byte[] Bytes, bool IsCubin, string Architecture, bool FromCache);

/// <summary>
/// Compiles the kernel source with NVRTC for one compute capability and caches the result on disk under
/// $XDG_CACHE_HOME/maliang (else ~/.cache/maliang), keyed by SHA-256 of source, architecture, options and NVRTC version.
/// </summary>
internal static unsafe class NvrtcCompiler
{
    /// <summary>Bit-for-bit float semantics of the CPU: no fused multiply-add, IEEE divide and sqrt, denormals kept.</summary>
    public static readonly string[] BaseOptions = ["--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false", "--std=c++14"];

    public static string CacheDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg)) return Path.Combine(xdg, "maliang");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) home = Environment.GetEnvironmentVariable("HOME") ?? Path.GetTempPath();
        return Path.Combine(home, ".cache", "maliang");
    }

    /// <summary>Hex SHA-256 of everything the compiled image depends on.</summary>
    public static string CacheKey(string source, string arch, IEnumerable<string> options, string compilerVersion)
    {
        var text = string.Join("\n\u0000", new[] { source, arch, string.Join(" ", options), compilerVersion });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>The architecture to compile for: sm_XY when NVRTC knows the device's compute capability (a CUBIN), else the
    /// newest compute_XY it supports below it (PTX; the driver JIT-compiles it for the device).</summary>
    public static (string Arch, bool Cubin) PickArchitecture(int major, int minor, IReadOnlyList<int>? supported, bool cubinSupported)
    {
        int cc = major * 10 + minor;
        if (supported is null || supported.Count == 0)
            return cubinSupported ? ($"sm_{cc}", true) : ($"compute_{cc}", false);
        if (supported.Contains(cc) && cubinSupported) return ($"sm_{cc}", true);
        var below = supported.Where(a => a <= cc).DefaultIfEmpty(supported.Min()).Max();
        return ($"compute_{below}", false);
    }

    public static string Version()
    {
        EnsureLoaded();
        int ma, mi;
        nvrtcVersion(&ma, &mi);
        return $"{ma}.{mi}";
    }

    private static int[]? SupportedArchs()
    {
        if (nvrtcGetNumSupportedArchs == null) return null;
        int n;
        if (nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0) return null;
        var a = new int[n];
        fixed (int* p = a) if (nvrtcGetSupportedArchs(p) != NVRTC_SUCCESS) return null;
        return a;
    }

    public static CudaImage Compile(string source, int major, int minor)
    {
        EnsureLoaded();
        string version = Version();
        var (arch, cubin) = PickArchitecture(major, minor, SupportedArchs(), nvrtcGetCUBIN != null);
        var options = BaseOptions.Append($"--gpu-architecture={arch}").ToArray();
        string key = CacheKey(source, arch, options, version);
        string dir = CacheDirectory();
        string file = Path.Combine(dir, $"kernels-{key}.{(cubin ? "cubin" : "ptx")}");
        try
        {
            if (File.Exists(file)) return new CudaImage(File.ReadAllBytes(file), cubin, arch, true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }

        var image = CompileNow(source, options, cubin);
        try
        {
            Directory.CreateDirectory(dir);
            string tmp = file + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(tmp, image);
            File.Move(tmp, file, overwrite: true);   // atomic: concurrent processes never read half a file
        }
        catch (IOException) { }                     // the cache is an optimization: a read-only home still works
        catch (UnauthorizedAccessException) { }
        return new CudaImage(image, cubin, arch, false);
    }

    private static byte[] CompileNow(string source, string[] options, bool cubin)
    {
        nint prog;
        var src = Encoding.UTF8.GetBytes(source + "\0");
        var name = "maliang_kernels.cu\0"u8.ToArray();
        int st;
        fixed (byte* s = src) fixed (byte* n = name) st = nvrtcCreateProgram(&prog, s, n, 0, null, null);
        if (st != NVRTC_SUCCESS) throw new NvrtcException("nvrtcCreateProgram", ErrorString(st), "");
        try
        {
            var opts = options.Select(o => Encoding.UTF8.GetBytes(o + "\0")).ToArray();
            var handles = new System.Runtime.InteropServices.GCHandle[opts.Length];
            var ptrs = new byte*[opts.Length];
            try
            {
                for (int i = 0; i < opts.Length; i++)
                {
                    handles[i] = System.Runtime.InteropServices.GCHandle.Alloc(opts[i], System.Runtime.InteropServices.GCHandleType.Pinned);
                    ptrs[i] = (byte*)handles[i].AddrOfPinnedObject();
                }
                fixed (byte** pp = ptrs) st = nvrtcCompileProgram(prog, opts.Length, pp);
            }
            finally
            {
                foreach (var h in handles) if (h.IsAllocated) h.Free();
            }
            if (st != NVRTC_SUCCESS) throw new NvrtcException("nvrtcCompileProgram", ErrorString(st), Log(prog));
            nuint size;
            if (cubin)
            {
                Check(nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize", prog);
                var img = new byte[(int)size];
                fixed (byte* p = img) Check(nvrtcGetCUBIN(prog, p), "nvrtcGetCUBIN", prog);
                return img;
            }
            Check(nvrtcGetPTXSize(prog, &size), "nvrtcGetPTXSize", prog);
            var ptx = new byte[(int)size];          // includes the terminating NUL cuModuleLoadData needs
            fixed (byte* p = ptx) Check(nvrtcGetPTX(prog, p), "nvrtcGetPTX", prog);
            return ptx;
        }
        finally
        {
            nvrtcDestroyProgram(&prog);
        }
    }

    private static void Check(int st, string call, nint prog)
    {
        if (st != NVRTC_SUCCESS) throw new NvrtcException(call, ErrorString(st), Log(prog));
    }

    private static string Log(nint prog)
    {
        nuint size;
        if (nvrtcGetProgramLogSize(prog, &size) != NVRTC_SUCCESS || size <= 1) return "";
        var buf = new byte[(int)size];
        fixed (byte* b = buf) if (nvrtcGetProgramLog(prog, b) != NVRTC_SUCCESS) return "";
        return Encoding.UTF8.GetString(buf, 0, Math.Max(0, buf.Length - 1));
    }
}
