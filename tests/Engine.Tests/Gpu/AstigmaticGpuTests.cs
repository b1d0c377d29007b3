using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.OpenCL;
using MaLiang.Engine.Simulate;
using MaLiang.Engine.Tests.Fit;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>The 3D astigmatic kernel (astigmatic.cl) against the CPU backend: on PoCL (and the CUDA emulator) every
/// estimate, CRLB, likelihood, iteration count and status is bit-identical.</summary>
public class AstigmaticGpuTests
{
    /// <summary>Astigmatic spots over -550..550 nm (some outside the calibrated range by the fit's noise), dim and bright,
    /// background-only ROIs, and sCMOS planes on a third of them.</summary>
    internal static RoiBatch Rois(int n, bool scmos, out Calibration.ZCalibration cal)
    {
        cal = TestCalibrations.Unequal;
        var bright = Simulator.IsolatedAstigmaticRois(1200, n, 3000, 10, cal, -550, 550, 31, out _, out _, out _);
        var dim = Simulator.IsolatedAstigmaticRois(400, n, 400, 10, cal, -550, 550, 32, out _, out _, out _);
        var empty = Simulator.IsolatedAstigmaticRois(100, n, 0, 5, cal, 0, 0, 33, out _, out _, out _);
        var batch = new RoiBatch(n, 1700);
        var gamma = new float[n * n];
        var rng = new Random(5);
        foreach (var (pix, count) in new[] { (bright, 1200), (dim, 400), (empty, 100) })
            for (int m = 0; m < count; m++)
            {
                var roi = pix.AsSpan(m * n * n, n * n);
                if (scmos && m % 3 == 0)
                {
                    for (int p = 0; p < gamma.Length; p++) gamma[p] = (float)(2 + 20 * rng.NextDouble());
                    batch.Add(roi, batch.Count, 0, 0, -1, gamma);
                }
                else batch.Add(roi, batch.Count);
            }
        return batch;
    }

    internal static void AssertBitIdentical(FitResult[] cpu, FitResult[] gpu, string what)
    {
        int kept = cpu.Count(r => r.Kept), outside = cpu.Count(r => r.Status == FitStatus.OutsideZRange);
        TestContext.Out.WriteLine($"{what}: {cpu.Length} fits, {kept} kept, {outside} outside the z range");
        Assert.That(kept, Is.GreaterThan(1200));
        for (int i = 0; i < cpu.Length; i++)
        {
            var c = cpu[i]; var g = gpu[i];
            Assert.That((g.Status, g.Iterations), Is.EqualTo((c.Status, c.Iterations)), $"{what}: status, iterations of ROI {i}");
            if (c.Status == FitStatus.Failed) continue;
            Assert.That((g.X, g.Y, g.Photons, g.Background, g.Z, g.Sigma, g.SigmaY), Is.EqualTo((c.X, c.Y, c.Photons, c.Background, c.Z, c.Sigma, c.SigmaY)),
                $"{what}: estimate of ROI {i}");
            Assert.That((g.CrlbX, g.CrlbY, g.CrlbPhotons, g.CrlbBackground, g.CrlbZ), Is.EqualTo((c.CrlbX, c.CrlbY, c.CrlbPhotons, c.CrlbBackground, c.CrlbZ)),
                $"{what}: CRLB of ROI {i}");
            // As for the round model: log-likelihood and LLR to 1e-4 / 1e-3 (the kernel's log of the data may differ from .NET's in the last bit).
            Assert.That(g.LogLikelihood, Is.EqualTo(c.LogLikelihood).Within(1e-4f * Math.Max(1f, Math.Abs(c.LogLikelihood))), $"{what}: logL of ROI {i}");
            Assert.That(g.Llr, Is.EqualTo(c.Llr).Within(1e-3f * Math.Max(1f, Math.Abs(c.Llr))), $"{what}: LLR of ROI {i}");
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void OpenClEqualsTheCpuBitForBit(bool scmos)
    {
        var dev = OpenClTests.DeviceOrIgnore();
        int n = TestCalibrations.Unequal.RoiSize(7);
        var batch = Rois(n, scmos, out var cal);
        var opt = new FitOptions(1.3f, false, 30, true, 1e-4f) { ZCalibration = cal };
        var cpu = new FitResult[batch.Count];
        var gpu = new FitResult[batch.Count];
        using (var c = new CpuFitBackend()) c.Fit(batch, opt, cpu);
        using (var g = new OpenClFitBackend(dev)) g.Fit(batch, opt, gpu);
        AssertBitIdentical(cpu, gpu, $"opencl n={n} scmos={scmos}");
    }

    /// <summary>The whole pipeline with a calibration on OpenCL: ROIs cut on the CPU threads, fitted by the kernel; the same
    /// localizations as the CPU backend, z included.</summary>
    [Test]
    public void PipelineOnOpenClEqualsTheCpu()
    {
        var dev = OpenClTests.DeviceOrIgnore();
        var sim = Simulator.Run(new SimulationSettings
        {
            Width = 64, Height = 64, Frames = 40, EmitterCount = 4, MinSeparationPx = 20, EdgeMarginPx = 9, Photons = 3000, OffsetAdu = 100,
            ZCalibration = TestCalibrations.Unequal, OffToOn = 0.5, OnToOff = 0.5, Seed = 4,
        });
        var s = new LocalizerSettings { OffsetAdu = 100, ZCalibration = TestCalibrations.Unequal };
        var (cpu, _) = Pipeline.GpuPipelineTests.Run(sim, s, new CpuFitBackend(2));
        var (gpu, summary) = Pipeline.GpuPipelineTests.Run(sim, s, new OpenClFitBackend(dev));
        Assert.That(summary.DeviceDetection, Is.False, "3D ROIs are cut on the CPU threads");
        Assert.That(cpu.Length, Is.GreaterThan(50));
        Assert.That(gpu.Length, Is.EqualTo(cpu.Length));
        for (int i = 0; i < cpu.Length; i++)
            Assert.That((gpu[i].Frame, gpu[i].X, gpu[i].Y, gpu[i].Z, gpu[i].UncertaintyZ, gpu[i].Flags), Is.EqualTo((cpu[i].Frame, cpu[i].X, cpu[i].Y, cpu[i].Z, cpu[i].UncertaintyZ, cpu[i].Flags)), $"localization {i}");
    }

    [Test, Category("Cuda")]
    public void CudaEqualsTheCpuBitForBit()
    {
        CudaDriver.Require();
        int n = TestCalibrations.Unequal.RoiSize(7);
        var batch = Rois(n, false, out var cal);
        var opt = new FitOptions(1.3f, false, 30, true, 1e-4f) { ZCalibration = cal };
        var cpu = new FitResult[batch.Count];
        var gpu = new FitResult[batch.Count];
        using (var c = new CpuFitBackend()) c.Fit(batch, opt, cpu);
        using (var g = new CudaFitBackend()) g.Fit(batch, opt, gpu);
        AssertBitIdentical(cpu, gpu, $"cuda n={n}");
    }
}
