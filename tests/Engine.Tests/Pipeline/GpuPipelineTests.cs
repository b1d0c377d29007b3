using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.OpenCL;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using MaLiang.Engine.Tests.Gpu;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Pipeline;

/// <summary>
/// The whole pipeline on an OpenCL device (de-noise, noise, detection, ROI cut-out and fit on the device; neighbour
/// refinement on the CPU) against the CPU pipeline on the same stacks, on each GPU API: OpenCL (PoCL in CI) and CUDA (an
/// NVIDIA GPU, or tests/cuda-emulator in CI's second pass over the "Cuda" category).
/// </summary>
public class GpuPipelineTests
{
    /// <summary>A backend of that API, or the test is skipped with the reason there is none.</summary>
    private static IGpuFitBackend Backend(string api)
    {
        if (api == "opencl") return new OpenClFitBackend(OpenClTests.DeviceOrIgnore());
        CudaDriver.Require();
        return new CudaFitBackend();
    }

    internal static SimulationResult Stack(int frames, int emitters, double minSeparation, int seed) => Simulator.Run(new SimulationSettings
    {
        Width = 160, Height = 128, Frames = frames, EmitterCount = emitters, Photons = 1500, BackgroundPhotons = 10,
        PsfSigmaPx = 1.3, OffsetAdu = 100, Seed = seed, MinSeparationPx = minSeparation, EdgeMarginPx = 1,
        OffToOn = 0.5, OnToOff = 0.5,
    });

    internal static (Localization[] Locs, PipelineSummary Summary) Run(SimulationResult sim, LocalizerSettings s, IFitBackend? backend,
                                                                     Action<Localizer>? setup = null)
    {
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(s, backend);
        setup?.Invoke(loc);
        loc.Run(src);
        return (loc.Results.ToArray(), loc.Summary);
    }

    internal static void AssertSame(Localization[] cpu, Localization[] gpu, PipelineSummary cs, PipelineSummary gs)
    {
        Assert.That(gs.Frames, Is.EqualTo(cs.Frames));
        Assert.That(gs.Candidates, Is.EqualTo(cs.Candidates), "candidates");
        Assert.That(gs.DroppedAtEdge, Is.EqualTo(cs.DroppedAtEdge), "dropped at the edge");
        Assert.That(gs.DroppedOverlap, Is.EqualTo(cs.DroppedOverlap), "dropped overlapping");
        Assert.That(gs.DroppedFitFailed, Is.EqualTo(cs.DroppedFitFailed), "failed fits");
        Assert.That(gs.DroppedLeftRoi, Is.EqualTo(cs.DroppedLeftRoi), "left the ROI");
        Assert.That(gpu.Length, Is.EqualTo(cpu.Length), "localizations");
        double maxDx = 0;
        for (int i = 0; i < cpu.Length; i++)
        {
            Assert.That(gpu[i].Frame, Is.EqualTo(cpu[i].Frame), $"frame of localization {i}");
            Assert.That(gpu[i].X, Is.EqualTo(cpu[i].X).Within(1e-4), $"x of localization {i}");
            Assert.That(gpu[i].Y, Is.EqualTo(cpu[i].Y).Within(1e-4), $"y of localization {i}");
            Assert.That(gpu[i].Photons, Is.EqualTo(cpu[i].Photons).Within(1e-3 * Math.Max(1, cpu[i].Photons)), $"photons of localization {i}");
            Assert.That(gpu[i].Sigma, Is.EqualTo(cpu[i].Sigma).Within(1e-4), $"sigma of localization {i}");
            Assert.That(gpu[i].Flags, Is.EqualTo(cpu[i].Flags), $"flags of localization {i}");
            maxDx = Math.Max(maxDx, Math.Max(Math.Abs(gpu[i].X - cpu[i].X), Math.Abs(gpu[i].Y - cpu[i].Y)));
        }
        TestContext.Out.WriteLine($"{cpu.Length} localizations, {cs.Candidates} candidates, max |dx|,|dy| = {maxDx:G3} px");
    }

    [TestCase("opencl", FilterKind.Maliang, true)]
    [TestCase("opencl", FilterKind.Wavelet, true)]
    [TestCase("opencl", FilterKind.Maliang, false)]   // overlapping candidates kept: neighbour refinement on the CPU after the device fit
    [TestCase("opencl", FilterKind.Wavelet, false)]
    [TestCase("cuda", FilterKind.Maliang, true, Category = "Cuda")]
    [TestCase("cuda", FilterKind.Wavelet, true, Category = "Cuda")]
    [TestCase("cuda", FilterKind.Maliang, false, Category = "Cuda")]
    [TestCase("cuda", FilterKind.Wavelet, false, Category = "Cuda")]
    public void WholePipelineOnTheGpuEqualsTheCpuPipeline(string api, FilterKind filter, bool rejectOverlapping)
    {
        using var backend = Backend(api);
        var sim = Stack(11, 70, rejectOverlapping ? 6 : 3, 31);
        var s = new LocalizerSettings { OffsetAdu = 100, Filter = filter, RejectOverlapping = rejectOverlapping, Threads = 2 };
        var (cpu, cs) = Run(sim, s, new CpuFitBackend(2));
        // 4 frames per chunk: chunks of 4, 4, 3 frames, so frame numbering across chunks is checked too.
        var (gpu, gs) = Run(sim, s, backend, l => l.GpuChunkFrames = 4);
        Assert.That(gs.DeviceDetection, Is.True);
        Assert.That(cs.DeviceDetection, Is.False);
        if (!rejectOverlapping) Assert.That(cs.DroppedOverlap, Is.Zero);
        AssertSame(cpu, gpu, cs, gs);
        Assert.That(gs.ReadSeconds, Is.GreaterThan(0));
        Assert.That(gs.DenoiseSeconds, Is.GreaterThan(0));
        Assert.That(gs.DetectSeconds, Is.GreaterThan(0));
        Assert.That(gs.FitSeconds, Is.GreaterThan(0));
        Assert.That(gs.FitKernelSeconds, Is.GreaterThan(0).And.LessThanOrEqualTo(gs.FitSeconds));
    }

    [TestCase("opencl")]
    [TestCase("cuda", Category = "Cuda")]
    public void RoisThroughTheHostGiveTheSameResultsAsRoisKeptOnTheDevice(string api)
    {
        using var backend = Backend(api);
        var sim = Stack(6, 60, 3, 32);
        var s = new LocalizerSettings { OffsetAdu = 100, RejectOverlapping = false, Threads = 2 };
        var (a, sa) = Run(sim, s, backend);
        var (b, sb) = Run(sim, s, backend, l => l.KeepRoisOnDevice = false);
        var (c, sc) = Run(sim, s, backend, l => l.DeviceDetection = false);   // CPU detection, device fit
        Assert.That(sb.FitKernelSeconds, Is.Zero);
        Assert.That(sc.DeviceDetection, Is.False);
        Assert.That(b.Length, Is.EqualTo(a.Length));
        Assert.That(c.Length, Is.EqualTo(a.Length));
        for (int i = 0; i < a.Length; i++)
        {
            Assert.That(b[i], Is.EqualTo(a[i]), $"localization {i} (host ROIs)");
            Assert.That(c[i], Is.EqualTo(a[i]), $"localization {i} (CPU detection)");
        }
    }

    [Test]
    public void ChunkSizeForGpuBackendsIsBoundedAndSettable()
    {
        var device = OpenClTests.DeviceOrIgnore();
        using var backend = new OpenClFitBackend(device);
        using var loc = new Localizer(new LocalizerSettings { Threads = 2 }, backend);
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo(128));
        Assert.That(loc.ChunkFramesFor(2048, 2048), Is.EqualTo(8));
        Assert.That(loc.ChunkFramesFor(64, 64), Is.EqualTo(Localizer.MaxGpuChunkFrames));
        loc.GpuChunkFrames = 64;
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo(64));
        loc.DeviceDetection = false;
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo(loc.ChunkFrames));
        Assert.Throws<InvalidParameterException>(() => loc.GpuChunkFrames = -1);
        using var cpu = new Localizer(new LocalizerSettings { Threads = 2 }, new CpuFitBackend(2));
        Assert.That(cpu.ChunkFramesFor(512, 512), Is.EqualTo(cpu.ChunkFrames));
    }

    [TestCase("opencl")]
    [TestCase("cuda", Category = "Cuda")]
    public void OffsetAboveEveryPixelIsReportedFromTheDevicePath(string api)
    {
        using var backend = Backend(api);
        var sim = Stack(3, 10, 6, 33);
        var ex = Assert.Throws<MaLiangException>(() => Run(sim, new LocalizerSettings { OffsetAdu = 60000, Threads = 2 }, backend))!;
        Assert.That(ex.Message, Does.Contain("offset"));
    }
}
