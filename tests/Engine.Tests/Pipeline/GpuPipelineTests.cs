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

    /// <summary>Issue 17: the density sweep's stacks (crowded, emitters anywhere) through the whole GPU pipeline equal the
    /// CPU's: the device detection with the camera-noise test and its sparse-frame rule, the device single fits, and the
    /// multi-emitter stage's grouping and model selection on the host, its joint fits in device batches (and its
    /// residual passes, host code, with the frame's device threshold).</summary>
    [TestCase("opencl", 1.0, false)]
    [TestCase("opencl", 4.0, false)]
    [TestCase("opencl", 4.0, true)]
    [TestCase("cuda", 4.0, false, Category = "Cuda")]
    public void CrowdedSweepStacksOnTheGpuEqualTheCpu(string api, double perUm2, bool residualSearch)
    {
        using var backend = Backend(api);
        var sim = DensitySweepTests.Stack(perUm2, 6, (int)(perUm2 * 100) + 13);
        var s = new LocalizerSettings { OffsetAdu = 100, Threads = 2, ResidualSearch = residualSearch };
        var (cpu, cs) = Run(sim, s, new CpuFitBackend(2));
        var (gpu, gs) = Run(sim, s, backend, l => l.GpuChunkFrames = 4);
        Assert.That(gs.DeviceDetection, Is.True);
        Assert.That(gs.GroupFitDeviceSeconds, Is.GreaterThan(0), "the joint fits ran in device batches");
        AssertSame(cpu, gpu, cs, gs);
        Assert.That(gs.GroupsBySize, Is.EqualTo(cs.GroupsBySize), "groups by size");
        Assert.That(gs.SpreadTestFrames, Is.EqualTo(cs.SpreadTestFrames), "sparse frames");
        for (int i = 0; i < cpu.Length; i++) Assert.That(gpu[i].FittedTogether, Is.EqualTo(cpu[i].FittedTogether), $"fitted_together of {i}");
        Assert.That(cpu.Count(l => l.FittedTogether > 1), Is.GreaterThan(0), "the stack has joint fits");
        // CPU detection, device fits (single and joint).
        var (hostDet, hs) = Run(sim, s, backend, l => { l.GpuChunkFrames = 4; l.DeviceDetection = false; });
        Assert.That(hs.GroupFitDeviceSeconds, Is.GreaterThan(0), "the joint fits ran in device batches (CPU detection)");
        AssertSame(cpu, hostDet, cs, hs);
        Assert.That(hs.GroupsBySize, Is.EqualTo(cs.GroupsBySize), "groups by size (CPU detection)");
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
        // Host detection: the multi-emitter stage keeps about 4 Mpx of frames per chunk for its batches (8 to 32 frames).
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo(16));
        Assert.That(loc.ChunkFramesFor(2048, 2048), Is.EqualTo(loc.ChunkFrames));
        Assert.That(loc.ChunkFramesFor(64, 64), Is.EqualTo(32));
        Assert.Throws<InvalidParameterException>(() => loc.GpuChunkFrames = -1);
        using var cpu = new Localizer(new LocalizerSettings { Threads = 2 }, new CpuFitBackend(2));
        Assert.That(cpu.ChunkFramesFor(512, 512), Is.EqualTo(16));
        using var single = new Localizer(new LocalizerSettings { Threads = 2, MultiEmitter = false }, new CpuFitBackend(2));
        Assert.That(single.ChunkFramesFor(512, 512), Is.EqualTo(single.ChunkFrames));
    }

    /// <summary>A source that fails on one frame and records which frames were read (by any thread) and whether a read
    /// was still running when the localizer returned.</summary>
    private sealed class FailingSource(IFrameSource inner, int badIndex) : IFrameSource
    {
        public readonly System.Collections.Concurrent.ConcurrentBag<int> Read = new();
        private int _active;
        public int ActiveReads => Volatile.Read(ref _active);
        public string Name => "failing.tif";
        public int Width => inner.Width;
        public int Height => inner.Height;
        public int FrameCount => inner.FrameCount;
        public PixelType PixelType => inner.PixelType;
        public void ReadFrame(int index, Span<float> destination)
        {
            Interlocked.Increment(ref _active);
            try
            {
                Thread.Sleep(2);   // slow enough that the read-ahead is still going when the device chunk ends
                Read.Add(index);
                if (index == badIndex) throw new MaLiangException($"{Name}: frame {index + 1}: truncated");
                inner.ReadFrame(index, destination);
            }
            finally { Interlocked.Decrement(ref _active); }
        }
        public void Dispose() => inner.Dispose();
    }

    [TestCase("opencl")]
    [TestCase("cuda", Category = "Cuda")]
    public void ABadFrameInALaterChunkKeepsTheEarlierChunksAndStopsTheReadAhead(string api)
    {
        using var backend = Backend(api);
        var sim = Stack(12, 30, 6, 34);
        using var src = new FailingSource(new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount), badIndex: 9);
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, Threads = 2 }, backend) { GpuChunkFrames = 4 };
        var delivered = new List<int>();
        var ex = Assert.Throws<MaLiangException>(() => loc.Run(src, locs => { foreach (var l in locs) delivered.Add(l.Frame); }))!;
        Assert.That(ex.Message, Is.EqualTo("failing.tif: frame 10: truncated"));
        Assert.That(src.ActiveReads, Is.Zero, "no read-ahead still running after Run returned");
        Assert.That(loc.FramesProcessed, Is.EqualTo(8), "chunks [0,4) and [4,8) were processed and delivered");
        Assert.That(delivered.Distinct().Order(), Is.EqualTo(Enumerable.Range(0, 8)));
    }

    [TestCase("opencl")]
    [TestCase("cuda", Category = "Cuda")]
    public void BlankFramesAcrossChunksAreCountedOnceAndCancelStops(string api)
    {
        using var backend = Backend(api);
        var sim = Stack(10, 30, 6, 35);
        int px = sim.Width * sim.Height;
        var frames = (ushort[])sim.Frames.Clone();
        Array.Clear(frames, 3 * px, px);   // a dropped camera frame in the first chunk
        Array.Clear(frames, 8 * px, px);   // and one in the read-ahead of the third
        var s = new LocalizerSettings { OffsetAdu = 100, Threads = 2 };
        using (var src = new MemoryFrameSource(frames, sim.Width, sim.Height, sim.FrameCount, "gaps"))
        using (var cpu = new Localizer(s, new CpuFitBackend(2)))
        using (var gpu = new Localizer(s, backend) { GpuChunkFrames = 3 })
        {
            cpu.Run(src);
            gpu.Run(src);
            Assert.That(gpu.Summary.BlankFrames, Is.EqualTo(2));
            Assert.That(cpu.Summary.BlankFrames, Is.EqualTo(2));
            AssertSame(cpu.Results.ToArray(), gpu.Results.ToArray(), cpu.Summary, gpu.Summary);
        }
        using (var src = new MemoryFrameSource(frames, sim.Width, sim.Height, sim.FrameCount, "gaps"))
        using (var gpu = new Localizer(s, backend) { GpuChunkFrames = 3 })
        using (var cts = new CancellationTokenSource())
        {
            var progress = new SyncProgress(p => { if (p.FramesDone >= 3) cts.Cancel(); });
            Assert.That(() => gpu.Run(src, null, progress, cts.Token), Throws.InstanceOf<OperationCanceledException>());
            Assert.That(gpu.FramesProcessed, Is.EqualTo(3));
        }
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
