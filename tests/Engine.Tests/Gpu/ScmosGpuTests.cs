using MaLiang.Engine.Evaluate;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.OpenCL;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Gpu;

/// <summary>The sCMOS likelihood in fit.cl equals the CPU backend's (PoCL; the CUDA emulator or a real driver).</summary>
public class ScmosGpuTests
{
    /// <summary><see cref="OpenClFitTests.MixedRois"/> with read-noise planes: 4 photons^2 on most pixels, 40 on about 5%,
    /// the pixels given the matching Gaussian read noise.</summary>
    internal static RoiBatch MixedScmosRois(int n, int seed)
    {
        var plain = OpenClFitTests.MixedRois(n, seed);
        var rng = new Sampling(seed + 100);
        var batch = new RoiBatch(n, plain.Count);
        var roi = new float[n * n]; var gamma = new float[n * n];
        for (int m = 0; m < plain.Count; m++)
        {
            for (int p = 0; p < n * n; p++)
            {
                gamma[p] = rng.Uniform() < 0.05 ? 40f : (float)(4 * (0.8 + 0.4 * rng.Uniform()));
                roi[p] = plain.Roi(m)[p] + (float)(Math.Sqrt(gamma[p]) * rng.Normal());
            }
            batch.Add(roi, m, 0, 0, roiReadNoise: gamma);
        }
        return batch;
    }

    private static void AssertBitIdentical(FitResult[] cpu, FitResult[] gpu)
    {
        for (int i = 0; i < cpu.Length; i++)
        {
            Assert.That((gpu[i].X, gpu[i].Y, gpu[i].Photons, gpu[i].Background, gpu[i].Sigma),
                Is.EqualTo((cpu[i].X, cpu[i].Y, cpu[i].Photons, cpu[i].Background, cpu[i].Sigma)), $"bit-identical estimate of ROI {i}");
            Assert.That((gpu[i].CrlbX, gpu[i].CrlbY, gpu[i].CrlbPhotons, gpu[i].CrlbBackground, gpu[i].CrlbSigma),
                Is.EqualTo((cpu[i].CrlbX, cpu[i].CrlbY, cpu[i].CrlbPhotons, cpu[i].CrlbBackground, cpu[i].CrlbSigma)), $"bit-identical CRLB of ROI {i}");
        }
    }

    [TestCase(7, false)]
    [TestCase(7, true)]
    [TestCase(9, false)]
    public void OpenClScmosFitsEqualTheCpuBackend(int n, bool fixedSigma)
    {
        var dev = OpenClTests.DeviceOrIgnore();
        var batch = MixedScmosRois(n, seed: 30 + n);
        var opt = new FitOptions(1.3f, fixedSigma, 20, true, 1e-4f);
        var cpu = new FitResult[batch.Count];
        var gpu = new FitResult[batch.Count];
        var timed = new FitResult[batch.Count];
        var plain = new FitResult[batch.Count];
        using (var c = new CpuFitBackend()) c.Fit(batch, opt, cpu);
        using (var g = new OpenClFitBackend(dev))
        {
            g.Fit(batch, opt, gpu);
            g.FitTimed(batch, opt, timed);
            // The same pixels without their planes: the Poisson fit, which must differ (the planes were used).
            var noPlanes = new RoiBatch(n, batch.Count);
            for (int m = 0; m < batch.Count; m++) noPlanes.Add(batch.Roi(m), m, 0, 0, batch.Peak[m]);
            g.Fit(noPlanes, opt, plain);
        }
        OpenClFitTests.AssertSame(cpu, gpu, $"sCMOS n={n} fixedSigma={fixedSigma}");
        AssertBitIdentical(cpu, gpu);
        AssertBitIdentical(cpu, timed);
        Assert.That(Enumerable.Range(0, cpu.Length).Count(i => cpu[i].X != plain[i].X), Is.GreaterThan(cpu.Length / 2));
    }

    [Test]
    public void OpenClZeroReadNoisePlanesGiveTheSameFitBitForBit()
    {
        var dev = OpenClTests.DeviceOrIgnore();
        var plain = OpenClFitTests.MixedRois(7, seed: 50);
        var zeros = new RoiBatch(7, plain.Count);
        var z = new float[49];
        for (int m = 0; m < plain.Count; m++) zeros.Add(plain.Roi(m), m, 0, 0, plain.Peak[m], roiReadNoise: z);
        var opt = new FitOptions(1.3f, false, 20, true, 1e-4f);
        var a = new FitResult[plain.Count]; var b = new FitResult[plain.Count];
        using var g = new OpenClFitBackend(dev);
        g.Fit(plain, opt, a);
        g.Fit(zeros, opt, b);
        for (int i = 0; i < a.Length; i++) Assert.That(b[i], Is.EqualTo(a[i]), $"ROI {i}");
    }

    [Test]
    public void OpenClPipelineWithCameraMapsEqualsTheCpuPipeline()
    {
        var dev = OpenClTests.DeviceOrIgnore();
        const int size = 64, frames = 12;
        var maps = ScmosComparison.Maps(size, size, 5);
        var sim = Simulator.Run(new SimulationSettings
        {
            Width = size, Height = size, Frames = frames, EmitterCount = 20, EdgeMarginPx = 5, MinSeparationPx = 8,
            OffsetAdu = 100, PhotonsPerAdu = 0.5, Maps = maps, Seed = 6,
        });
        var src = new MemoryFrameSource(sim.Frames, size, size, frames, "scmos.tif");
        Localization[] Run(IFitBackend backend)
        {
            var s = new LocalizerSettings { OffsetAdu = 100, PhotonsPerAdu = 0.5, CameraMaps = maps, Threads = 2 };
            using var loc = new Localizer(s, backend);
            var summary = loc.Run(src);
            Assert.That(summary.DeviceDetection, Is.False, "with a variance map detection stays on the CPU threads");
            return loc.Results.ToArray();
        }
        Localization[] cpu, gpu;
        using (var c = new CpuFitBackend(2)) cpu = Run(c);
        using (var g = new OpenClFitBackend(dev)) gpu = Run(g);
        Assert.That(cpu.Length, Is.GreaterThan(frames * 15));
        Assert.That(gpu.Length, Is.EqualTo(cpu.Length));
        for (int i = 0; i < cpu.Length; i++)
            Assert.That((gpu[i].Frame, gpu[i].X, gpu[i].Y, gpu[i].Photons, gpu[i].UncertaintyX),
                Is.EqualTo((cpu[i].Frame, cpu[i].X, cpu[i].Y, cpu[i].Photons, cpu[i].UncertaintyX)), $"localization {i}");
    }

    [Test, Category("Cuda")]
    public void CudaScmosFitsEqualTheCpuBackend()
    {
        CudaDriver.Require();
        var batch = MixedScmosRois(7, seed: 41);
        var opt = new FitOptions(1.3f, false, 20, true, 1e-4f);
        var cpu = new FitResult[batch.Count];
        var gpu = new FitResult[batch.Count];
        var timed = new FitResult[batch.Count];
        using (var c = new CpuFitBackend()) c.Fit(batch, opt, cpu);
        using (var g = new CudaFitBackend())
        {
            g.Fit(batch, opt, gpu);
            g.FitTimed(batch, opt, timed);
        }
        OpenClFitTests.AssertSame(cpu, gpu, "cuda sCMOS");
        OpenClFitTests.AssertSame(cpu, timed, "cuda sCMOS, resident");
    }
}
