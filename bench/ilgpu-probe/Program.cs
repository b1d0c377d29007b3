// ILGPU probe (issue 11): one of the fit's steps, the Poisson sums of one Fisher-scoring iteration (gradient, 15 Fisher
// entries and the log-likelihood of a 7x7 ROI at given x, y, photons, background, sigma; DESIGN.md "The fit"), as an
// ILGPU kernel on ILGPU's CPU accelerator and on OpenCL (PoCL here), checked against the same method called directly
// from C#, and timed. `run.sh` also tries to publish it with NativeAOT. Not part of the engine or of make test.
using System.Diagnostics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.OpenCL;

const int N = 7, Pix = N * N, Out = 21;
int rois = args.Length > 0 ? int.Parse(args[0]) : 200_000;

// ROIs: the expected image of a molecule at a random sub-pixel position (1000 photons, 10/px, sigma 1.3), as data.
var rng = new Random(1);
var data = new float[rois * Pix];
var pars = new float[rois * 5];
for (int r = 0; r < rois; r++)
{
    float x = 3 + (float)rng.NextDouble(), y = 3 + (float)rng.NextDouble();
    for (int j = 0; j < N; j++)
        for (int i = 0; i < N; i++)
            data[r * Pix + j * N + i] = 10 + 1000 * Probe.E(i, x, 1.3f) * Probe.E(j, y, 1.3f);
    // parameters slightly off the truth, as in the middle of a fit
    pars[r * 5 + 0] = x + 0.1f; pars[r * 5 + 1] = y - 0.1f; pars[r * 5 + 2] = 900; pars[r * 5 + 3] = 11; pars[r * 5 + 4] = 1.4f;
}

// every OpenCL device, also those ILGPU would filter out by default (PoCL is a CPU OpenCL driver)
using var context = Context.Create(b => b.CPU().OpenCL(d => true).EnableAlgorithms());
Console.WriteLine($"ILGPU {typeof(Context).Assembly.GetName().Version}, {rois} ROIs of {N}x{N}");
foreach (var d in context) Console.WriteLine($"  device: {d.AcceleratorType} {d.Name}");

// Reference: the kernel's own method called directly from C# (JIT, one thread), on host arrays.
float[] reference = new float[rois * Out];
{
    var sw = Stopwatch.StartNew();
    for (int r = 0; r < rois; r++) Probe.Sums(r, data, pars, reference);
    Console.WriteLine($"C# direct (1 thread): {rois / sw.Elapsed.TotalSeconds / 1e6:F2} million ROI-steps/s");
}

bool cpuDone = false;
foreach (var device in context)
{
    if (device.AcceleratorType is not (AcceleratorType.CPU or AcceleratorType.OpenCL)) continue;
    if (device.AcceleratorType == AcceleratorType.CPU) { if (cpuDone) continue; cpuDone = true; } // ILGPU lists several CPU configurations
    try
    {
        using var acc = device.CreateAccelerator(context);
        var compile = Stopwatch.StartNew();
        var kernel = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Probe.Kernel);
        using var dData = acc.Allocate1D(data);
        using var dPars = acc.Allocate1D(pars);
        using var dOut = acc.Allocate1D<float>(rois * Out);
        kernel(rois, dData.View, dPars.View, dOut.View); // first launch compiles (IL -> device code)
        acc.Synchronize();
        double firstS = compile.Elapsed.TotalSeconds;
        var sw = Stopwatch.StartNew();
        const int reps = 3;
        for (int k = 0; k < reps; k++) kernel(rois, dData.View, dPars.View, dOut.View);
        acc.Synchronize();
        double s = sw.Elapsed.TotalSeconds / reps;
        var got = dOut.GetAsArray1D();
        double maxRel = 0;
        for (int i = 0; i < got.Length; i++)
            maxRel = Math.Max(maxRel, Math.Abs(got[i] - reference[i]) / Math.Max(1e-3, Math.Abs(reference[i])));
        Console.WriteLine($"{device.AcceleratorType} {device.Name}: {rois / s / 1e6:F3} million ROI-steps/s " +
            $"(first launch incl. compile {firstS:F2} s; max relative difference to C# {maxRel:E1})");
    }
    catch (Exception e)
    {
        Console.WriteLine($"{device.AcceleratorType} {device.Name}: FAILED {e.GetType().Name}: {e.Message.Split('\n')[0]}");
    }
}

static class Probe
{
    public static float Erf(float z, float expMinusZ2) // A&S 7.1.26, as fit.cl and CpuFitBackend
    {
        float a = Math.Abs(z), t = 1f / (1f + 0.3275911f * a);
        float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
        float y = 1f - poly * expMinusZ2;
        return z < 0 ? -y : y;
    }

    public static float E(int i, float c, float s)
    {
        float z0 = (i - c) / (1.41421356f * s), z1 = (i + 1 - c) / (1.41421356f * s);
        return 0.5f * (Erf(z1, MathF.Exp(-z1 * z1)) - Erf(z0, MathF.Exp(-z0 * z0)));
    }

    public static void Kernel(Index1D r, ArrayView<float> data, ArrayView<float> pars, ArrayView<float> output)
    {
        // ILGPU kernels cannot take managed arrays or spans: the same code as Sums, on views
        float x = pars[r * 5], y = pars[r * 5 + 1], n = pars[r * 5 + 2], b = pars[r * 5 + 3], s = pars[r * 5 + 4];
        float g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, ll = 0;
        float f00 = 0, f01 = 0, f02 = 0, f03 = 0, f04 = 0, f11 = 0, f12 = 0, f13 = 0, f14 = 0, f22 = 0, f23 = 0, f24 = 0, f33 = 0, f34 = 0, f44 = 0;
        float inv = 1f / (1.41421356f * s), gs = 0.39894228f / s;
        for (int j = 0; j < 7; j++)
        {
            float v0 = (j - y), v1 = (j + 1 - y);
            float ev0 = XMath.Exp(-v0 * v0 * inv * inv), ev1 = XMath.Exp(-v1 * v1 * inv * inv);
            float ey = 0.5f * (Erf(v1 * inv, ev1) - Erf(v0 * inv, ev0));
            float dyEy = gs * (ev0 - ev1), dsEy = gs * (v0 * ev0 - v1 * ev1) / s;
            for (int i = 0; i < 7; i++)
            {
                float u0 = (i - x), u1 = (i + 1 - x);
                float eu0 = XMath.Exp(-u0 * u0 * inv * inv), eu1 = XMath.Exp(-u1 * u1 * inv * inv);
                float ex = 0.5f * (Erf(u1 * inv, eu1) - Erf(u0 * inv, eu0));
                float dxEx = gs * (eu0 - eu1), dsEx = gs * (u0 * eu0 - u1 * eu1) / s;
                float mu = b + n * ex * ey, d = data[r * 49 + j * 7 + i];
                float d0 = n * ey * dxEx, d1 = n * ex * dyEy, d2 = ex * ey, d3 = 1, d4 = n * (dsEx * ey + ex * dsEy);
                float w = d / mu - 1, im = 1 / mu;
                ll += d * XMath.Log(mu) - mu;
                g0 += w * d0; g1 += w * d1; g2 += w * d2; g3 += w * d3; g4 += w * d4;
                f00 += d0 * d0 * im; f01 += d0 * d1 * im; f02 += d0 * d2 * im; f03 += d0 * d3 * im; f04 += d0 * d4 * im;
                f11 += d1 * d1 * im; f12 += d1 * d2 * im; f13 += d1 * d3 * im; f14 += d1 * d4 * im;
                f22 += d2 * d2 * im; f23 += d2 * d3 * im; f24 += d2 * d4 * im;
                f33 += d3 * d3 * im; f34 += d3 * d4 * im; f44 += d4 * d4 * im;
            }
        }
        int o = r * 21;
        output[o] = g0; output[o + 1] = g1; output[o + 2] = g2; output[o + 3] = g3; output[o + 4] = g4;
        output[o + 5] = f00; output[o + 6] = f01; output[o + 7] = f02; output[o + 8] = f03; output[o + 9] = f04;
        output[o + 10] = f11; output[o + 11] = f12; output[o + 12] = f13; output[o + 13] = f14; output[o + 14] = f22;
        output[o + 15] = f23; output[o + 16] = f24; output[o + 17] = f33; output[o + 18] = f34; output[o + 19] = f44;
        output[o + 20] = ll;
    }

    /// <summary>The kernel's arithmetic on host arrays (the reference and the 'C# direct' figure).</summary>
    public static void Sums(int r, float[] data, float[] pars, float[] output)
    {
        float x = pars[r * 5], y = pars[r * 5 + 1], n = pars[r * 5 + 2], b = pars[r * 5 + 3], s = pars[r * 5 + 4];
        Span<float> acc = stackalloc float[21];
        float inv = 1f / (1.41421356f * s), gs = 0.39894228f / s;
        Span<float> dm = stackalloc float[5];
        for (int j = 0; j < 7; j++)
        {
            float v0 = (j - y), v1 = (j + 1 - y);
            float ev0 = MathF.Exp(-v0 * v0 * inv * inv), ev1 = MathF.Exp(-v1 * v1 * inv * inv);
            float ey = 0.5f * (Erf(v1 * inv, ev1) - Erf(v0 * inv, ev0));
            float dyEy = gs * (ev0 - ev1), dsEy = gs * (v0 * ev0 - v1 * ev1) / s;
            for (int i = 0; i < 7; i++)
            {
                float u0 = (i - x), u1 = (i + 1 - x);
                float eu0 = MathF.Exp(-u0 * u0 * inv * inv), eu1 = MathF.Exp(-u1 * u1 * inv * inv);
                float ex = 0.5f * (Erf(u1 * inv, eu1) - Erf(u0 * inv, eu0));
                float dxEx = gs * (eu0 - eu1), dsEx = gs * (u0 * eu0 - u1 * eu1) / s;
                float mu = b + n * ex * ey, d = data[r * 49 + j * 7 + i];
                dm[0] = n * ey * dxEx; dm[1] = n * ex * dyEy; dm[2] = ex * ey; dm[3] = 1; dm[4] = n * (dsEx * ey + ex * dsEy);
                float w = d / mu - 1, im = 1 / mu;
                acc[20] += d * MathF.Log(mu) - mu;
                for (int p = 0; p < 5; p++) acc[p] += w * dm[p];
                int k = 5;
                for (int p = 0; p < 5; p++) for (int q = p; q < 5; q++) acc[k++] += dm[p] * dm[q] * im;
            }
        }
        acc.CopyTo(output.AsSpan(r * 21, 21));
    }
}
