using System.Runtime.InteropServices;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.Gpu;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>CUDA: run where an NVIDIA driver, a device and NVRTC are present (or tests/cuda-emulator, in CI's second pass
/// over the "Cuda" category); elsewhere they skip with the reason.</summary>
[Category("Cuda")]
public class CudaTests
{
    [Test]
    public void MissingDriverGivesAClearMessage()
    {
        if (NativeLibrary.TryLoad(CuNative.LibraryName, out var h)) { NativeLibrary.Free(h); Assert.Ignore($"a CUDA driver ({CuNative.LibraryName}) is loadable here"); }
        Assert.That(CudaRuntime.DriverLoaded, Is.False);
        Assert.That(CudaRuntime.UnavailableReason, Is.EqualTo("CUDA: libcuda.so.1 not found — no NVIDIA driver"));
        Assert.That(CudaRuntime.Devices(), Is.Empty);
        var ex = Assert.Throws<MaLiangException>(() => new CudaFitBackend())!;
        Assert.That(ex.Message, Is.EqualTo("CUDA: libcuda.so.1 not found — no NVIDIA driver"));
        var ex2 = Assert.Throws<BackendUnavailableException>(() => FitBackends.Create(BackendKind.Cuda, out _))!;
        Assert.That(ex2.Message, Does.Contain("libcuda.so.1 not found"));
        Assert.That(ex2.Message, Does.Contain("Devices found:"));
    }

    [Test]
    public void CacheKeyDependsOnSourceArchitectureOptionsAndCompiler()
    {
        var o = NvrtcCompiler.BaseOptions;
        string k = NvrtcCompiler.CacheKey("src", "sm_86", o, "12.4");
        Assert.That(k, Has.Length.EqualTo(64));
        Assert.That(NvrtcCompiler.CacheKey("src", "sm_86", o, "12.4"), Is.EqualTo(k));
        Assert.That(NvrtcCompiler.CacheKey("src2", "sm_86", o, "12.4"), Is.Not.EqualTo(k));
        Assert.That(NvrtcCompiler.CacheKey("src", "sm_89", o, "12.4"), Is.Not.EqualTo(k));
        Assert.That(NvrtcCompiler.CacheKey("src", "sm_86", o.Append("-G"), "12.4"), Is.Not.EqualTo(k));
        Assert.That(NvrtcCompiler.CacheKey("src", "sm_86", o, "12.5"), Is.Not.EqualTo(k));
        Assert.That(o, Does.Contain("--fmad=false"));
    }

    [Test]
    public void CacheDirectoryFollowsXdg()
    {
        var old = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/tmp/xdg-test");
            Assert.That(NvrtcCompiler.CacheDirectory(), Is.EqualTo("/tmp/xdg-test/maliang"));
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", null);
            Assert.That(NvrtcCompiler.CacheDirectory(), Does.EndWith(Path.Combine(".cache", "maliang")));
        }
        finally { Environment.SetEnvironmentVariable("XDG_CACHE_HOME", old); }
    }

    [Test]
    public void ArchitectureIsTheDevicesOwnWhenNvrtcKnowsIt()
    {
        int[] supported = [50, 60, 70, 75, 80, 86, 89, 90];
        Assert.That(NvrtcCompiler.PickArchitecture(8, 6, supported, true), Is.EqualTo(("sm_86", true)));
        Assert.That(NvrtcCompiler.PickArchitecture(12, 0, supported, true), Is.EqualTo(("compute_90", false)));   // newer GPU: PTX, driver JIT
        Assert.That(NvrtcCompiler.PickArchitecture(8, 6, supported, false), Is.EqualTo(("compute_86", false))); // NVRTC without CUBIN output
        Assert.That(NvrtcCompiler.PickArchitecture(7, 5, null, true), Is.EqualTo(("sm_75", true)));
    }

    [Test]
    public void ChunksFollowFreeMemory()
    {
        Assert.That(CudaFitBackend.ChunkFromFreeMemory(8L << 30, 49), Is.EqualTo(CudaFitBackend.MaxChunk));
        Assert.That(CudaFitBackend.ChunkFromFreeMemory(64L << 20, 49), Is.EqualTo((64L << 20) / 4 / 2 / ((2 * 49 + 14 + 1) * 4)));   // + the peak index
        Assert.That(CudaFitBackend.ChunkFromFreeMemory(0, 49), Is.EqualTo(CudaFitBackend.MinChunk));
    }

    [Test]
    public void NvrtcCompileErrorCarriesTheLog()
    {
        if (!NvrtcNative.Loaded) Assert.Ignore(NvrtcNative.LoadError!);
        var ex = Assert.Throws<NvrtcException>(() => NvrtcCompiler.Compile("extern \"C\" __global__ void k(float* a) { a[0] = no_such_symbol; }", 7, 5))!;
        Assert.That(ex.Message, Does.Contain("nvrtcCompileProgram"));
        Assert.That(ex.Log, Does.Contain("no_such_symbol"));
    }

    [Test]
    public void KernelSourceCompilesWithNvrtc()
    {
        if (!NvrtcNative.Loaded) Assert.Ignore(NvrtcNative.LoadError!);
        var img = NvrtcCompiler.Compile(KernelSource.Assemble(GpuApi.Cuda, KernelSource.All), 7, 5);
        Assert.That(img.Bytes, Is.Not.Empty);
    }

    [Test]
    public void DevicesAreListed()
    {
        CudaDriver.Require();
        var d = CudaRuntime.Devices()[0];
        Assert.That(d.Name, Is.Not.Empty);
        Assert.That(d.ComputeMajor, Is.GreaterThanOrEqualTo(3));
        Assert.That(d.TotalMemoryBytes, Is.GreaterThan(0UL));
    }

    [TestCase(7, false, true, 20)]
    [TestCase(7, true, true, 20)]
    [TestCase(9, false, false, 10)]
    public void FitsEqualTheCpuBackend(int n, bool fixedSigma, bool useTolerance, int iterations)
    {
        CudaDriver.Require();
        var batch = OpenClFitTests.MixedRois(n, seed: 10 + n);
        var opt = new FitOptions(1.3f, fixedSigma, iterations, useTolerance, 1e-4f);
        var cpu = new FitResult[batch.Count];
        var gpu = new FitResult[batch.Count];
        using (var c = new CpuFitBackend()) c.Fit(batch, opt, cpu);
        using (var g = new CudaFitBackend()) g.Fit(batch, opt, gpu);
        OpenClFitTests.AssertSame(cpu, gpu, $"cuda n={n}");
    }

    [Test]
    public void DetectionEqualsOpenClAndCpu()
    {
        CudaDriver.Require();
        int w = 128, h = 96, nf = 4;
        var frames = GpuTestData.Frames(w, h, nf, 40, seed: 3);
        var settings = new LocalizerSettings { Threshold = 4, RoiSize = 7, RejectOverlapping = true };
        var opt = GpuDetectOptions.From(settings);   // the camera-noise test and its sparse-frame rule too
        using var cuda = GpuDetector.OnCuda();
        var a = new RoiBatch(7);
        var ra = cuda.Detect(frames, w, h, nf, 0, opt, a);
        var cpu = new MaLiang.Engine.Detect.FrameDetector(settings);
        var cands = new List<MaLiang.Engine.Detect.Candidate>();
        int k = 0;
        for (int f = 0; f < nf; f++)
        {
            var st = cpu.Detect(frames.AsSpan(f * w * h, w * h), w, h, cands);
            Assert.That(ra[f].Stats, Is.EqualTo(st.Stats));
            foreach (var c in cands) { Assert.That((a.Left[k], a.Top[k], a.Peak[k]), Is.EqualTo(RoiBatch.Place(c.X, c.Y, w, h, 7))); k++; }
        }
    }
}

/// <summary>Backend selection (runs everywhere; again with CUDA present in the "Cuda" pass).</summary>
[Category("Cuda")]
public class FitBackendsTests
{
    [Test]
    public void DevicesListEveryBackendOrSaysWhyNot()
    {
        var list = GpuDevices.List();
        Assert.That(list.Any(d => d.Backend == "cuda"));
        Assert.That(list.Any(d => d.Backend == "opencl"));
        foreach (var d in list) TestContext.Out.WriteLine(d.ToString());
        if (CudaRuntime.UnavailableReason is { } why)
            Assert.That(list.Single(d => d.Backend == "cuda").UnavailableReason, Is.EqualTo(why));
    }

    [Test]
    public void CpuAndAuto()
    {
        using (var b = FitBackends.Create(BackendKind.Cpu, out var desc, threads: 2))
        {
            Assert.That(b, Is.InstanceOf<CpuFitBackend>());
            Assert.That(desc, Does.StartWith("cpu (2 threads"));
        }
        using (var b = FitBackends.Create(BackendKind.Auto, out var desc))
        {
            TestContext.Out.WriteLine(desc);
            if (CudaRuntime.Available) Assert.That(b, Is.InstanceOf<CudaFitBackend>());
            else
            {
                Assert.That(desc, Does.Contain(CudaRuntime.UnavailableReason!));
                bool openClGpu = MaLiang.Engine.Fit.Backends.OpenCL.OpenClRuntime.Devices().Any(d => d.IsGpu);
                Assert.That(b, openClGpu ? Is.InstanceOf<MaLiang.Engine.Fit.Backends.OpenCL.OpenClFitBackend>() : Is.InstanceOf<CpuFitBackend>());
            }
        }
    }

    [Test]
    public void ExplicitOpenClTakesAnyDeviceOrListsWhatWasFound()
    {
        if (MaLiang.Engine.Fit.Backends.OpenCL.OpenClRuntime.Devices().Count == 0)
        {
            var ex = Assert.Throws<BackendUnavailableException>(() => FitBackends.Create(BackendKind.OpenCL, out _))!;
            Assert.That(ex.Message, Does.Contain("Devices found:"));
            return;
        }
        using var b = FitBackends.Create(BackendKind.OpenCL, out var desc);
        Assert.That(b.Name, Does.StartWith("opencl:"));
        Assert.That(desc, Does.StartWith("opencl:"));
        var ex2 = Assert.Throws<BackendUnavailableException>(() => FitBackends.Create(BackendKind.OpenCL, out _, device: 99))!;
        Assert.That(ex2.Message, Does.Contain("no device 99"));
        Assert.That(ex2.Message, Does.Contain("opencl 0:"));
    }
}
