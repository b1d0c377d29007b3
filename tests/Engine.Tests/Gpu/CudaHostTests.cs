using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using MaLiang.Engine.Tests.Pipeline;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>
/// The CUDA host code: the caller's context left current, memory freed, the out-of-memory splits (fit batch and pipeline
/// chunk), failed launches reported with the backend still usable, concurrent backends, a 2048x2048 sCMOS stack through
/// the whole pipeline. Category "Cuda": on an NVIDIA machine they run on the GPU; in CI scripts/run-tests.sh runs them a
/// second time on tests/cuda-emulator (the tests that inject faults need it and skip on a real driver).
/// </summary>
[Category("Cuda"), NonParallelizable]
public class CudaHostTests
{
    private static FitResult[] Cpu(RoiBatch batch, FitOptions opt)
    {
        var r = new FitResult[batch.Count];
        using var c = new CpuFitBackend(2);
        c.Fit(batch, opt, r);
        return r;
    }

    private static readonly FitOptions Opt = new(1.3f, false, 20, true, 1e-4f);

    [TearDown]
    public void RestoreEmulator()
    {
        if (!CudaDriver.IsEmulator) return;
        CudaDriver.SetMemoryLimit(CudaDriver.DefaultMemoryLimit);
        CudaDriver.FailLaunch(-1, 0);
        CudaDriver.ResetError();
    }

    [Test]
    public void TheCallersContextStaysCurrent()
    {
        CudaDriver.Require();
        Exception? error = null;
        nint seen = -1, seenAfterOwn = -1, own = 0;
        // A fresh thread: its context stack starts empty, as in a host application's worker thread.
        var t = new Thread(() =>
        {
            try
            {
                var batch = OpenClFitTests.MixedRois(7, 5);
                var expect = Cpu(batch, Opt);
                var got = new FitResult[batch.Count];
                using (var b = new CudaFitBackend()) b.Fit(batch, Opt, got);
                OpenClFitTests.AssertSame(expect, got, "no caller context");
                seen = CudaDriver.Current();                 // nothing left on the thread

                own = CudaDriver.CreateContext();            // e.g. another plugin's context, current on this thread
                using (var b = new CudaFitBackend())
                {
                    Array.Clear(got);
                    b.Fit(batch, Opt, got);
                    using var det = b.CreateDetector();
                    var frames = GpuTestData.Frames(64, 48, 2, 10, seed: 4);
                    det.DetectOnDevice(frames, 64, 48, 2, new MaLiang.Engine.Fit.Backends.Gpu.GpuDetectOptions(FilterKind.Maliang, 3, 4f, 7, true));
                }
                OpenClFitTests.AssertSame(expect, got, "caller context");
                seenAfterOwn = CudaDriver.Current();
                CudaDriver.DestroyContext(own);
            }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        if (error is not null) throw new AssertionException("on the worker thread: " + error);
        Assert.That(seen, Is.EqualTo((nint)0), "the backend left its context current on a thread that had none");
        Assert.That(seenAfterOwn, Is.EqualTo(own), "the caller's own context is current again");
    }

    [Test]
    public void DisposeFreesDeviceMemoryPinnedMemoryAndStreams()
    {
        CudaDriver.RequireEmulator();
        ulong dev0 = CudaDriver.DeviceBytesInUse, pin0 = CudaDriver.PinnedBytesInUse;
        int streams0 = CudaDriver.StreamsLive, refs0 = CudaDriver.PrimaryContextRefs;
        var sim = GpuPipelineTests.Stack(4, 40, 6, 41);
        using (var backend = new CudaFitBackend())
        {
            var batch = OpenClFitTests.MixedRois(7, 6);
            backend.Fit(batch, Opt, new FitResult[batch.Count]);
            GpuPipelineTests.Run(sim, new LocalizerSettings { OffsetAdu = 100, Threads = 2 }, backend);
            Assert.That(CudaDriver.DeviceBytesInUse, Is.GreaterThan(dev0));
            Assert.That(CudaDriver.PinnedBytesInUse, Is.GreaterThan(pin0));
        }
        Assert.That(CudaDriver.DeviceBytesInUse, Is.EqualTo(dev0), "device memory");
        Assert.That(CudaDriver.PinnedBytesInUse, Is.EqualTo(pin0), "pinned host memory");
        Assert.That(CudaDriver.StreamsLive, Is.EqualTo(streams0), "streams");
        Assert.That(CudaDriver.PrimaryContextRefs, Is.EqualTo(refs0), "primary context references");
    }

    [Test]
    public void PipelineStagingBuffersArePageLockedWhileInUse()
    {
        CudaDriver.RequireEmulator();
        ulong reg0 = CudaDriver.RegisteredBytesInUse;
        var sim = GpuPipelineTests.Stack(9, 40, 6, 44);
        int px = sim.Width * sim.Height;
        using var backend = new CudaFitBackend();
        ulong during = 0;
        var s = new LocalizerSettings { OffsetAdu = 100, Threads = 2 };
        var (cpu, cs) = GpuPipelineTests.Run(sim, s, new CpuFitBackend(2));
        using (var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount))
        using (var loc = new Localizer(s, backend) { GpuChunkFrames = 3 })
        {
            loc.Run(src, null, new SyncProgress(_ => during = Math.Max(during, CudaDriver.RegisteredBytesInUse)));
            GpuPipelineTests.AssertSame(cpu, loc.Results.ToArray(), cs, loc.Summary);
        }
        Assert.That(during - reg0, Is.EqualTo(2UL * 3 * (ulong)px * 4), "both staging buffers of 3 frames, registered");
        Assert.That(CudaDriver.RegisteredBytesInUse, Is.EqualTo(reg0), "unregistered when the localizer is disposed");
    }

    [Test]
    public void ASmallBatchDoesNotReserveAWholeChunk()
    {
        CudaDriver.RequireEmulator();
        ulong dev0 = CudaDriver.DeviceBytesInUse;
        using var backend = new CudaFitBackend();
        var batch = GpuTestData.Rois(100, 7, 8, photons: 1000, bg: 10, jitter: 0.5);
        var got = new FitResult[batch.Count];
        backend.Fit(batch, Opt, got);
        OpenClFitTests.AssertSame(Cpu(batch, Opt), got, "100 ROIs");
        Assert.That(backend.ChunkSize, Is.EqualTo(CudaFitBackend.MaxChunk), "4 GiB free: the largest chunk");
        // One stream's slot (the batch is one chunk): 2 pixel copies + results + peak indices for 128 molecules, not for a 1M-molecule
        // chunk (450 MB).
        Assert.That(CudaDriver.DeviceBytesInUse - dev0, Is.EqualTo(128UL * (2 * 49 + 14 + 1) * 4));   // pixels twice, results, peak index
    }

    [Test]
    public void OutOfMemoryHalvesTheFitChunk()
    {
        CudaDriver.RequireEmulator();
        var batch = OpenClFitTests.MixedRois(7, 9);
        var expect = Cpu(batch, Opt);
        using var backend = new CudaFitBackend();
        var small = GpuTestData.Rois(300, 7, 10, photons: 1000, bg: 10, jitter: 0.5);
        backend.Fit(small, Opt, new FitResult[small.Count]);   // chunk sized from 4 GiB free: 1M molecules
        Assert.That(backend.ChunkSize, Is.EqualTo(CudaFitBackend.MaxChunk));
        // Now only 400 kB more may be allocated: 3000 ROIs in one chunk per stream need 1.3 MB.
        CudaDriver.SetMemoryLimit(CudaDriver.DeviceBytesInUse + 400_000);
        var got = new FitResult[batch.Count];
        backend.Fit(batch, Opt, got);
        OpenClFitTests.AssertSame(expect, got, "after out-of-memory");
        Assert.That(backend.ChunkSize, Is.LessThan(3000).And.GreaterThanOrEqualTo(CudaFitBackend.MinChunk));
        TestContext.Out.WriteLine($"chunk after the out-of-memory: {backend.ChunkSize} molecules");
        // Below the smallest chunk it is an error that says so.
        CudaDriver.SetMemoryLimit(CudaDriver.DeviceBytesInUse);
        using var other = new CudaFitBackend();
        var ex = Assert.Throws<CudaException>(() => other.Fit(batch, Opt, got))!;
        Assert.That(ex.OutOfMemory, Is.True);
        Assert.That(ex.Message, Does.Contain("cuMemAlloc").And.Contain("CUDA_ERROR_OUT_OF_MEMORY"));
    }

    [Test]
    public void OutOfMemoryHalvesThePipelineChunk()
    {
        CudaDriver.RequireEmulator();
        var sim = GpuPipelineTests.Stack(8, 50, 6, 42);
        var s = new LocalizerSettings { OffsetAdu = 100, Threads = 2 };
        var (cpu, cs) = GpuPipelineTests.Run(sim, s, new CpuFitBackend(2));
        // What 2-frame chunks take at most, measured on a fresh backend; then allow only that for 8-frame chunks.
        ulong dev0 = CudaDriver.DeviceBytesInUse;
        ulong need;
        CudaDriver.PeakDeviceBytes(reset: true);
        using (var probe = new CudaFitBackend())
        {
            GpuPipelineTests.Run(sim, s, probe, l => l.GpuChunkFrames = 2);
            need = CudaDriver.PeakDeviceBytes() - dev0;
        }
        using var backend = new CudaFitBackend();
        CudaDriver.SetMemoryLimit(CudaDriver.DeviceBytesInUse + need + need / 4);
        Localizer? seen = null;
        var (gpu, gs) = GpuPipelineTests.Run(sim, s, backend, l => { l.GpuChunkFrames = 8; seen = l; });
        Assert.That(seen!.ChunkFramesInUse, Is.LessThan(8).And.GreaterThanOrEqualTo(1));
        TestContext.Out.WriteLine($"8-frame chunk fell back to {seen.ChunkFramesInUse} frames");
        GpuPipelineTests.AssertSame(cpu, gpu, cs, gs);
    }

    [Test]
    public void PipelineChunksFollowFreeDeviceMemory()
    {
        CudaDriver.RequireEmulator();
        using var backend = new CudaFitBackend();
        using var loc = new Localizer(new LocalizerSettings { Threads = 2 }, backend);
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo(128), "4 GiB free: the 32 Mpx default");
        CudaDriver.SetMemoryLimit(CudaDriver.DeviceBytesInUse + (40UL << 20));
        // 40 MiB free: half of it at 20 B per pixel of 512x512 frames = 4 frames
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo((int)((40L << 20) / 2 / (Localizer.DeviceBytesPerPixel * 512 * 512))));
        Assert.That(loc.ChunkFramesFor(2048, 2048), Is.EqualTo(1), "never below one frame");
        loc.GpuChunkFrames = 64;
        Assert.That(loc.ChunkFramesFor(512, 512), Is.EqualTo(64), "an explicit chunk is kept (an out-of-memory still halves it)");
    }

    [Test]
    public void TheChunkFromFreeMemoryStaysTheSameOnTheNextPush()
    {
        CudaDriver.RequireEmulator();
        var sim = GpuPipelineTests.Stack(10, 30, 6, 45);
        long perFrame = Localizer.DeviceBytesPerPixel * sim.Width * sim.Height;
        using var backend = new CudaFitBackend();
        using var src = new MemoryFrameSource(sim.Frames, sim.Width, sim.Height, sim.FrameCount);
        using var loc = new Localizer(new LocalizerSettings { OffsetAdu = 100, Threads = 2 }, backend);
        CudaDriver.SetMemoryLimit(CudaDriver.DeviceBytesInUse + (ulong)(2 * perFrame * 30.5));   // room for 30 frames
        loc.Push(src, 0, 10);
        Assert.That(loc.ChunkFramesInUse, Is.EqualTo(30));
        // The detector now holds its buffers for the next push: they count as free for it, so the chunk is not cut.
        loc.Push(src, 0, 10);
        Assert.That(loc.ChunkFramesInUse, Is.EqualTo(30));
        Assert.That(loc.FramesProcessed, Is.EqualTo(20));
    }

    [Test]
    public void ARefusedLaunchIsReportedAndTheBackendStaysUsable()
    {
        CudaDriver.RequireEmulator();
        var batch = OpenClFitTests.MixedRois(7, 11);
        var expect = Cpu(batch, Opt);
        using var backend = new CudaFitBackend();
        // ~1 MB free: chunks of a few hundred molecules, so the failure comes in the middle of the batch, with the other
        // stream's chunk still queued on its pinned buffers.
        CudaDriver.SetMemoryLimit(CudaDriver.DeviceBytesInUse + 1_000_000);
        CudaDriver.FailLaunch(5, 701);   // CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, refused at launch (not sticky)
        var got = new FitResult[batch.Count];
        var ex = Assert.Throws<CudaException>(() => backend.Fit(batch, Opt, got))!;
        Assert.That(ex.Message, Does.Contain("cuLaunchKernel(ml_").And.Contain("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"));
        Assert.That(backend.ChunkSize, Is.LessThan(batch.Count), "several chunks");
        Array.Clear(got);
        backend.Fit(batch, Opt, got);
        OpenClFitTests.AssertSame(expect, got, "after a refused launch");
    }

    [Test]
    public void AKernelFaultIsReportedAtTheNextSynchronisation()
    {
        CudaDriver.RequireEmulator();
        var batch = OpenClFitTests.MixedRois(7, 12);
        ulong dev0 = CudaDriver.DeviceBytesInUse, pin0 = CudaDriver.PinnedBytesInUse;
        using (var backend = new CudaFitBackend())
        {
            CudaDriver.FailLaunch(1, 719);   // the fit kernel faults on the device (sticky, like a real fault)
            var ex = Assert.Throws<CudaException>(() => backend.Fit(batch, Opt, new FitResult[batch.Count]))!;
            Assert.That(ex.Message, Does.Contain("cuStreamSynchronize").And.Contain("CUDA_ERROR_LAUNCH_FAILED"));
            CudaDriver.ResetError();
        }
        Assert.That(CudaDriver.DeviceBytesInUse, Is.EqualTo(dev0), "device memory freed after the failure");
        Assert.That(CudaDriver.PinnedBytesInUse, Is.EqualTo(pin0), "pinned memory freed after the failure");
    }

    [Test]
    public void TwoBackendsOnTwoThreadsAtOnce()
    {
        CudaDriver.Require();
        var a = OpenClFitTests.MixedRois(7, 13);
        var b = OpenClFitTests.MixedRois(9, 14);
        var ea = Cpu(a, Opt);
        var eb = Cpu(b, Opt);
        var ga = new FitResult[a.Count];
        var gb = new FitResult[b.Count];
        using var ba = new CudaFitBackend();
        using var bb = new CudaFitBackend();
        Parallel.Invoke(new ParallelOptions { MaxDegreeOfParallelism = 2 },
            () => { for (int i = 0; i < 3; i++) ba.Fit(a, Opt, ga); },
            () => { for (int i = 0; i < 3; i++) bb.Fit(b, Opt, gb); });
        OpenClFitTests.AssertSame(ea, ga, "thread 1");
        OpenClFitTests.AssertSame(eb, gb, "thread 2");
    }

    [Test]
    public void WholePipelineOnA2048SquareScmosStack()
    {
        CudaDriver.Require();
        var sim = Simulator.Run(new SimulationSettings
        {
            Width = 2048, Height = 2048, Frames = 3, EmitterCount = 3000, OffToOn = 0.5, OnToOff = 0.5, Photons = 1500,
            BackgroundPhotons = 10, PsfSigmaPx = 1.3, OffsetAdu = 100, PhotonsPerAdu = 0.46, ReadNoiseE = 1.6,
            MinSeparationPx = 6, EdgeMarginPx = 4, Seed = 43,
        });
        var s = new LocalizerSettings { OffsetAdu = 100, PhotonsPerAdu = 0.46, Threads = 2 };
        var (cpu, cs) = GpuPipelineTests.Run(sim, s, new CpuFitBackend(2));
        using var backend = new CudaFitBackend();
        var (gpu, gs) = GpuPipelineTests.Run(sim, s, backend);
        Assert.That(gs.DeviceDetection, Is.True);
        Assert.That(cpu.Length, Is.GreaterThan(3 * 1000), "about 1,500 molecules per frame");
        GpuPipelineTests.AssertSame(cpu, gpu, cs, gs);
    }
}

/// <summary>Pure helpers of the CUDA backend (run everywhere).</summary>
public class CudaMessageTests
{
    [Test]
    public void ARefusedModuleSaysNvrtcMustNotBeNewerThanTheDriver()
    {
        var img = new CudaImage([1], false, "compute_90", FromCache: false);
        string? hint = CudaModule.ModuleLoadHint(222, img, "12.8", 12040);
        Assert.That(hint, Is.EqualTo("the driver (CUDA 12.4) cannot load the PTX that NVRTC 12.8 made for compute_90. "
                                   + "NVRTC must not be newer than the driver: update the NVIDIA driver, or set CUDA_PATH to a CUDA toolkit <= 12.4"));
        var cached = CudaModule.ModuleLoadHint(218, img with { FromCache = true, IsCubin = true, Architecture = "sm_90" }, "12.4", 12040)!;
        Assert.That(cached, Does.Contain("CUBIN").And.Contain("sm_90").And.Contain("from the kernel cache").And.Contain("delete it"));
        Assert.That(CudaModule.ModuleLoadHint(2, img, "12.4", 12040), Is.Null, "out of memory is not a version problem");
    }
}
