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
        Assert.That(cl, Does.EndWith(common + "\n" + "/* ---- fit.cl ---- */\n" + KernelSource.Load("fit.cl") + "\n"));
        Assert.That(cu, Does.Contain(common));
    }

    [TestCase(FilterKind.Maliang, 3)]
    [TestCase(FilterKind.Maliang, 5)]
    [TestCase(FilterKind.Wavelet, 3)]
    public void FiltersEqualTheReference(FilterKind kind, int box)
    {
        var d = DeviceOrIgnore();
        int w = 61, h = 47, nf = 3;
        var frames = GpuTestData.Frames(w, h, nf, 10, seed: 1);
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var gpu = new float[frames.Length];
        det.Filter(frames, w, h, nf, kind, box, gpu);
        var cpu = kind == FilterKind.Maliang ? DetectReference.Box(frames, w, h, nf, box) : DetectReference.Wavelet(frames, w, h, nf);
        Assert.That(gpu, Is.EqualTo(cpu));
    }

    [Test]
    public void NoiseIsMadOfTheSubsample()
    {
        var d = DeviceOrIgnore();
        int w = 300, h = 260, nf = 2;   // 78000 px > MaxNoiseSamples: stride 2
        var frames = GpuTestData.Frames(w, h, nf, 30, seed: 2);
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var noise = det.Noise(frames, w, h, nf);
        var (ns, stride) = GpuDetector.NoiseSubsample(w * h);
        Assert.That(stride, Is.EqualTo(2));
        for (int f = 0; f < nf; f++)
        {
            var s = Enumerable.Range(0, ns).Select(i => frames[f * w * h + i * stride]).ToArray();
            Assert.That(noise[f], Is.EqualTo(GpuDetector.RobustNoise(s)));
            Assert.That(noise[f], Is.GreaterThan(0f));
        }
        Assert.That(GpuDetector.RobustNoise(new float[] { 1, 2, 3, 4, 100 }), Is.EqualTo(1.4826f * 1f));
    }

    [TestCase(FilterKind.Maliang, true)]
    [TestCase(FilterKind.Wavelet, true)]
    [TestCase(FilterKind.Maliang, false)]
    public void DetectionEqualsTheReference(FilterKind kind, bool reject)
    {
        var d = DeviceOrIgnore();
        int w = 128, h = 96, nf = 5;
        var frames = GpuTestData.Frames(w, h, nf, 40, seed: 3);
        var opt = new GpuDetectOptions(kind, 3, 4f, 7, reject);
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var batch = new RoiBatch(7);
        batch.Add(new float[49], 99, 0, 0);   // appends after what is there
        var stats = det.Detect(frames, w, h, nf, 10, opt, batch);

        var filt = kind == FilterKind.Maliang ? DetectReference.Box(frames, w, h, nf, 3) : DetectReference.Wavelet(frames, w, h, nf);
        var thr = stats.Select(s => s.Threshold).ToArray();
        for (int f = 0; f < nf; f++)
        {
            var (ns, stride) = GpuDetector.NoiseSubsample(w * h);
            var sub = Enumerable.Range(0, ns).Select(i => filt[f * w * h + i * stride]).ToArray();
            Assert.That(stats[f].Noise, Is.EqualTo(GpuDetector.RobustNoise(sub)));
            Assert.That(thr[f], Is.EqualTo(4f * stats[f].Noise));
        }
        var (kept, border) = DetectReference.Maxima(filt, w, h, nf, thr, 3, reject);
        Assert.That(kept.Count, Is.GreaterThan(50), "the simulation should give many molecules");
        Assert.That(stats.Select(s => s.DroppedAtBorder), Is.EqualTo(border));
        Assert.That(stats.Sum(s => s.Kept), Is.EqualTo(kept.Count));
        Assert.That(batch.Count, Is.EqualTo(kept.Count + 1));
        if (reject) Assert.That(stats.Sum(s => s.DroppedOverlapping), Is.GreaterThan(0), "40 molecules per frame should overlap sometimes");
        for (int i = 0; i < kept.Count; i++)
        {
            var (f, x, y) = kept[i];
            Assert.That((batch.Frame[i + 1], batch.Left[i + 1], batch.Top[i + 1]), Is.EqualTo((f + 10, x - 3, y - 3)), $"ROI {i}");
            var roi = batch.Roi(i + 1);
            for (int r = 0; r < 7; r++)
                for (int c = 0; c < 7; c++)
                    Assert.That(roi[r * 7 + c], Is.EqualTo(frames[f * w * h + (y - 3 + r) * w + x - 3 + c]));
        }
    }

    [Test]
    public void PlateauGivesOneMaximumAndManyCandidatesGrowTheList()
    {
        var d = DeviceOrIgnore();
        int w = 200, h = 200;
        var img = new float[w * h];
        // a 2 x 2 plateau: only its first pixel in raster order is a maximum
        img[50 * w + 50] = img[50 * w + 51] = img[51 * w + 50] = img[51 * w + 51] = 100;
        // > 256 isolated peaks (grid every 6 px) to overflow the initial candidate capacity
        for (int y = 70; y < 190; y += 6) for (int x = 10; x < 190; x += 6) img[y * w + x] = 50;
        using var det = new GpuDetector(new OpenClGpuContext(d), true);
        var batch = new RoiBatch(5);
        var stats = det.Detect(img, w, h, 1, 0, new GpuDetectOptions(FilterKind.None, 3, 1f, 5, false), batch);
        // noise of a mostly-zero frame is 0: threshold 0, every positive isolated pixel is a maximum
        Assert.That(stats[0].Threshold, Is.EqualTo(0f));
        int grid = Enumerable.Range(0, 20).Count() * Enumerable.Range(0, 30).Count();
        Assert.That(stats[0].Kept, Is.EqualTo(1 + grid));
        Assert.That((batch.Left[0] + 2, batch.Top[0] + 2), Is.EqualTo((50, 50)));
        for (int i = 1; i < batch.Count; i++)
            Assert.That(batch.Top[i] * w + batch.Left[i], Is.GreaterThan(batch.Top[i - 1] * w + batch.Left[i - 1]), "raster order");
    }
}
