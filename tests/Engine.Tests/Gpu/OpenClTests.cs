using MaLiang.Engine.Denoise;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends.Gpu;
using MaLiang.Engine.Fit.Backends.OpenCL;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>OpenCL plumbing and detection kernels; runs on PoCL in CI.</summary>
public class OpenClTests
{
    internal static OpenClDevice DeviceOrIgnore()
    {
        if (!OpenClRuntime.LibraryLoaded) Assert.Ignore(OpenClRuntime.LibraryError!);
        var all = OpenClRuntime.Devices();
        if (all.Count == 0) Assert.Ignore("OpenCL: no device (install pocl-opencl-icd)");
        return OpenClRuntime.DefaultDevice();
    }

    [Test]
    public void DevicesAreListedWithDetails()
    {
        var d = DeviceOrIgnore();
        Assert.That(d.Name, Is.Not.Empty);
        Assert.That(d.Platform, Is.Not.Empty);
        Assert.That(d.ComputeUnits, Is.GreaterThan(0));
        Assert.That(d.GlobalMemoryBytes, Is.GreaterThan(0UL));
        Assert.That(d.Type, Is.AnyOf("GPU", "CPU", "accelerator", "other"));
        TestContext.Out.WriteLine(d.ToString());
    }

    [Test]
    public void BrokenKernelReportsTheBuildLog()
    {
        var d = DeviceOrIgnore();
        using var ctx = new ClContext(d);
        var ex = Assert.Throws<OpenClBuildException>(() => ctx.Build("__kernel void broken(__global float* a) { a[0] = no_such_symbol; }", ""))!;
        Assert.That(ex.Message, Does.Contain("clBuildProgram"));
        Assert.That(ex.Message, Does.Contain("CL_BUILD_PROGRAM_FAILURE"));
        Assert.That(ex.Message, Does.Contain("no_such_symbol"));
        Assert.That(ex.BuildLog, Does.Contain("no_such_symbol"));
        Assert.That(ex, Is.InstanceOf<MaLiangException>());
    }

    [Test]
    public void FailedCallIsNamedWithTheClError()
    {
        var d = DeviceOrIgnore();
        using var ctx = new OpenClGpuContext(d);
        using var buf = ctx.Alloc(64);
        var ex = Assert.Throws<OpenClException>(() => ctx.Launch("ml_subtract", 16, buf, buf, buf, 16, 17))!;   // 5 args, kernel has 4
        Assert.That(ex.Message, Does.Contain("clSetKernelArg(ml_subtract, 4)"));
        Assert.That(ex.Message, Does.Contain("CL_INVALID_ARG_INDEX"));
        var ex2 = Assert.Throws<OpenClException>(() => ctx.Launch("no_such_kernel", 1))!;
        Assert.That(ex2.Message, Does.Contain("CL_INVALID_KERNEL_NAME"));
        Assert.That(ClNative.ErrorName(-61), Is.EqualTo("CL_INVALID_BUFFER_SIZE"));
    }

    [Test]
    public void BuffersKernelsAndReadBack()
    {
        var d = DeviceOrIgnore();
        using var ctx = new OpenClGpuContext(d);
        int n = 1000;
        var a = Enumerable.Range(0, n).Select(i => i * 1.5f).ToArray();
        var b = Enumerable.Range(0, n).Select(i => i * 0.25f).ToArray();
        using var ba = ctx.Alloc(n * 4); using var bb = ctx.Alloc(n * 4); using var bo = ctx.Alloc(n * 4);
        ctx.Write(ba, a.AsSpan()); ctx.Write(bb, b.AsSpan());
        ctx.Launch("ml_subtract", n, ba, bb, bo, n);
        var o = new float[n];
        ctx.Read(bo, o.AsSpan());
        for (int i = 0; i < n; i++) Assert.That(o[i], Is.EqualTo(a[i] - b[i]));
        ctx.Fill(bo, 0);
        ctx.Read(bo, o.AsSpan());
        Assert.That(o.All(v => v == 0f));
    }

    [Test]
    public void KernelSourceIsPreludePlusCommon()
    {
        var cl = KernelSource.Assemble(GpuApi.OpenCL, KernelSource.All);
        var cu = KernelSource.Assemble(GpuApi.Cuda, KernelSource.All);
        Assert.That(cl, Does.Contain("#pragma OPENCL FP_CONTRACT OFF"));
        Assert.That(cu, Does.Contain("extern \"C\" __global__"));
        var common = KernelSource.Load("detect.cl");
        Assert.That(cl, Does.EndWith(common + "\n" + "/* ---- fit.cl ---- */\n" + KernelSource.Load("fit.cl") + "\n"
                                     + "/* ---- astigmatic.cl ---- */\n" + KernelSource.Load("astigmatic.cl") + "\n"
                                     + "/* ---- group_fit.cl ---- */\n" + KernelSource.Load("group_fit.cl") + "\n"));
        Assert.That(cu, Does.Contain(common));
    }

    internal static IFrameFilter CpuFilter(FilterKind kind, int box) => kind switch
    {
        FilterKind.Maliang => new MaliangFilter(box),
        FilterKind.Wavelet => new WaveletFilter(),
        _ => new NoFilter(),
    };

    [TestCase(FilterKind.Maliang, 3, 61, 47)]
    [TestCase(FilterKind.Maliang, 5, 61, 47)]
    [TestCase(FilterKind.Maliang, 1, 13, 9)]
    [TestCase(FilterKind.Maliang, 3, 300, 100)]   // > 32 rows: running sums restart
    [TestCase(FilterKind.Maliang, 5, 301, 70)]    // SIMD body and scalar tail, a != 3
    [TestCase(FilterKind.Wavelet, 3, 61, 47)]
    [TestCase(FilterKind.Wavelet, 3, 7, 5)]       // narrower than the taps with holes: repeated mirroring
    [TestCase(FilterKind.None, 3, 61, 47)]
    public void FiltersEqualTheCpuFilters(FilterKind kind, int box, int w, int h)
    {
        var d = DeviceOrIgnore();
        int nf = 3;
        var frames = GpuTestData.Frames(w, h, nf, 10, seed: 1);
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var gpu = new float[frames.Length];
        det.Filter(frames, w, h, nf, kind, box, gpu);
        var cpu = new float[frames.Length];
        var filter = CpuFilter(kind, box);
        for (int f = 0; f < nf; f++) filter.Apply(frames.AsSpan(f * w * h, w * h), cpu.AsSpan(f * w * h, w * h), w, h);
        Assert.That(gpu, Is.EqualTo(cpu), "bit-identical filtered frames");
    }

    [TestCase(300, 260)]
    [TestCase(40, 30)]
    public void NoiseEqualsTheNoiseEstimator(int w, int h)
    {
        var d = DeviceOrIgnore();
        int nf = 2;
        var frames = GpuTestData.Frames(w, h, nf, 30, seed: 2);
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var noise = det.Noise(frames, w, h, nf);
        var scratch = new float[NoiseEstimator.ScratchLength(w, h)];
        for (int f = 0; f < nf; f++)
        {
            Assert.That(noise[f], Is.EqualTo(NoiseEstimator.RobustStd(frames.AsSpan(f * w * h, w * h), w, h, scratch)));
            Assert.That(noise[f], Is.GreaterThan(0f));
        }
    }

    [TestCase(FilterKind.Maliang, true, false)]
    [TestCase(FilterKind.Wavelet, true, false)]
    [TestCase(FilterKind.None, true, false)]
    [TestCase(FilterKind.Maliang, false, false)]
    [TestCase(FilterKind.Maliang, true, true)]
    public void DetectionEqualsTheCpuDetector(FilterKind kind, bool reject, bool dropAtEdge)
    {
        var d = DeviceOrIgnore();
        int w = 128, h = 96, nf = 5;
        var frames = GpuTestData.Frames(w, h, nf, 40, seed: 3);
        var settings = new LocalizerSettings { Filter = kind, FilterBoxPx = 3, Threshold = 4, RoiSize = 7, RejectOverlapping = reject, DropAtEdge = dropAtEdge };
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var batch = new RoiBatch(7);
        batch.Add(new float[49], 99, 0, 0);   // Detect appends after what is there
        var gpu = det.Detect(frames, w, h, nf, 10, GpuDetectOptions.From(settings), batch);

        var cpuDet = new FrameDetector(settings);
        var cands = new List<Candidate>();
        int k = 1, total = 0, overlapping = 0, shifted = 0;
        for (int f = 0; f < nf; f++)
        {
            var cpu = cpuDet.Detect(frames.AsSpan(f * w * h, w * h), w, h, cands);
            Assert.That(gpu[f].NoiseStd, Is.EqualTo(cpu.NoiseStd), $"noise of frame {f}");
            Assert.That(gpu[f].Threshold, Is.EqualTo(cpu.Threshold), $"threshold of frame {f}");
            Assert.That(gpu[f].Stats, Is.EqualTo(cpu.Stats), $"stats of frame {f}");
            total += cands.Count;
            overlapping += cpu.Stats.Overlapping;
            foreach (var c in cands)
            {
                var (left, top, peak) = RoiBatch.Place(c.X, c.Y, w, h, 7);
                if (left != c.X - 3 || top != c.Y - 3) shifted++;
                Assert.That((batch.Frame[k], batch.Left[k], batch.Top[k], batch.Peak[k]), Is.EqualTo((f + 10, left, top, peak)), $"ROI {k}");
                var roi = batch.Roi(k);
                for (int r = 0; r < 7; r++)
                    for (int col = 0; col < 7; col++)
                        Assert.That(roi[r * 7 + col], Is.EqualTo(frames[f * w * h + (top + r) * w + left + col]));
                k++;
            }
        }
        Assert.That(batch.Count, Is.EqualTo(total + 1));
        Assert.That(total, Is.GreaterThan(50), "the simulation should give many molecules");
        Assert.That(overlapping, Is.GreaterThan(0), "40 molecules per frame should overlap sometimes");
        if (dropAtEdge) Assert.That(shifted, Is.EqualTo(0));
        else Assert.That(shifted, Is.GreaterThan(0), "some molecules are at the frame edge: their ROIs are shifted inside");
    }

    [Test]
    public void PlateauGivesOneMaximumAndManyCandidatesGrowTheList()
    {
        var d = DeviceOrIgnore();
        int w = 200, h = 200;
        var img = new float[w * h];
        // a 2 x 2 plateau: only its first pixel in raster order is a maximum
        img[50 * w + 50] = img[50 * w + 51] = img[51 * w + 50] = img[51 * w + 51] = 100;
        // 600 isolated peaks (grid every 6 px) to overflow the initial candidate capacity (256)
        for (int y = 70; y < 190; y += 6) for (int x = 10; x < 190; x += 6) img[y * w + x] = 50;
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var batch = new RoiBatch(5);
        var res = det.Detect(img, w, h, 1, 0, new GpuDetectOptions(FilterKind.None, 3, 1f, 5, false), batch);
        // noise of a mostly-zero frame is 0: threshold 0, every positive isolated pixel is a maximum
        Assert.That(res[0].Threshold, Is.EqualTo(0f));
        Assert.That(res[0].Stats.Candidates, Is.EqualTo(1 + 20 * 30));
        Assert.That((batch.Left[0] + 2, batch.Top[0] + 2), Is.EqualTo((50, 50)));
        for (int i = 1; i < batch.Count; i++)
            Assert.That(batch.Top[i] * w + batch.Left[i], Is.GreaterThan(batch.Top[i - 1] * w + batch.Left[i - 1]), "raster order");
    }
}
