using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Engine.Tests.Fit;

internal static class FitTestData
{
    /// <summary>Isolated single emitters, true centre uniform within +-0.5 px of the ROI's central pixel centre, Poisson noise.</summary>
    public static RoiBatch Isolated(int count, int n, double photons, double background, double sigma, int seed, out double[] tx, out double[] ty)
    {
        var rnd = new TestRandom(seed);
        var batch = new RoiBatch(n, count);
        tx = new double[count]; ty = new double[count];
        Span<float> mu = stackalloc float[n * n];
        Span<float> roi = stackalloc float[n * n];
        for (int m = 0; m < count; m++)
        {
            tx[m] = n / 2 + 0.5 + rnd.Uniform(-0.5, 0.5);
            ty[m] = n / 2 + 0.5 + rnd.Uniform(-0.5, 0.5);
            CpuFitBackend.Model(n, (float)tx[m], (float)ty[m], (float)photons, (float)background, (float)sigma, mu);
            for (int p = 0; p < n * n; p++) roi[p] = rnd.Poisson(mu[p]);
            batch.Add(roi, m, 0, 0);
        }
        return batch;
    }
}
