using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.OpenCL;
using MaLiang.Engine.Fit.MultiEmitter;
using MaLiang.Engine.Tests.Fit;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>The joint multi-emitter fit kernel (Kernels/group_fit.cl) against the CPU's SIMD fitter on the same batch: the
/// same operations in the same order, so positions, photons and CRLBs agree to rounding (the device's double log may
/// differ from .NET's in the last bits, which only the likelihood reads).</summary>
public class GroupFitGpuTests
{
    /// <param name="scratchLimit">Bytes of scratch per launch: small, the batch goes in several launches.</param>
    private static void Compare(IGpuFitBackend backend, bool scmos, long scratchLimit = MaLiang.Engine.Fit.Backends.Gpu.GpuGroupFit.MaxScratchBytes)
    {
        var (cpu, _) = GroupFitTests.MixedBatch(scmos, seed: 9);
        var (dev, _) = GroupFitTests.MixedBatch(scmos, seed: 9);
        new CpuGroupFitter(1.3f, 30, 1e-4f).FitAll(cpu);
        var fitter = (MaLiang.Engine.Fit.Backends.Gpu.GpuGroupFit)backend.CreateGroupFitter(1.3f, 30, 1e-4f);
        fitter.ScratchLimitBytes = scratchLimit;
        fitter.FitAll(dev);
        Assert.That(fitter.DeviceBatches, Is.EqualTo(1), "fitted on the device, not the CPU fallback");
        if (scratchLimit < 1 << 16) Assert.That(fitter.LastLaunches, Is.GreaterThan(3), "sliced into several launches");
        for (int j = 0; j < cpu.Count; j++)
        {
            Assert.That(dev.Status[j], Is.EqualTo(cpu.Status[j]), $"status of job {j}");
            Assert.That(dev.Iterations[j], Is.EqualTo(cpu.Iterations[j]), $"iterations of job {j}");
            var a = cpu.ThetaOf(j); var b = dev.ThetaOf(j); var ca = cpu.SqrtCrlbOf(j); var cb = dev.SqrtCrlbOf(j);
            for (int i = 0; i < a.Length; i++)
            {
                Assert.That(b[i], Is.EqualTo(a[i]).Within(1e-9 * Math.Max(1, Math.Abs(a[i]))), $"theta[{i}] of job {j}");
                Assert.That(cb[i], Is.EqualTo(ca[i]).Within(1e-9 * Math.Max(1, Math.Abs(ca[i]))), $"CRLB[{i}] of job {j}");
            }
            Assert.That(dev.LogLikelihood[j], Is.EqualTo(cpu.LogLikelihood[j]).Within(1e-9 * Math.Abs(cpu.LogLikelihood[j])), $"logL of job {j}");
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void OpenClGroupFitsEqualTheCpu(bool scmos)
    {
        using var backend = new OpenClFitBackend(OpenClTests.DeviceOrIgnore());
        Compare(backend, scmos);
        Compare(backend, scmos, scratchLimit: 8 << 10);
    }

    [Test, Category("Cuda")]
    public void CudaGroupFitsEqualTheCpu()
    {
        CudaDriver.Require();
        using var backend = new CudaFitBackend();
        Compare(backend, false);
        Compare(backend, true, scratchLimit: 8 << 10);
    }
}
