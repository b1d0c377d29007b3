using MaLiang.Engine.Fit;
using MaLiang.Engine.Simulate;

namespace MaLiang.Engine.Tests.Fit;

internal static class FitTestData
{
    /// <summary>
    /// Isolated single emitters from the simulator (double-precision erf PSF and Poisson noise, independent of the fit's
    /// own float model), true centre uniform within +-0.5 px of the ROI's central pixel centre.
    /// </summary>
    public static RoiBatch Isolated(int count, int n, double photons, double background, double sigma, int seed, out double[] tx, out double[] ty)
    {
        var pixels = Simulator.IsolatedRois(count, n, photons, background, sigma, seed, out tx, out ty);
        var batch = new RoiBatch(n, count);
        for (int m = 0; m < count; m++) batch.Add(pixels.AsSpan(m * n * n, n * n), m, 0, 0);
        return batch;
    }
}
