using System.Numerics;
using MaLiang.Engine.Fit.Backends;

namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>
/// Joint Poisson MLE of K emitters with one background in a rectangular box of the frame (DESIGN.md "Crowded frames"):
/// mu_i = b + f_i + sum_k N_k Ex_k(col) Ey_k(row), f the fixed model of emitters outside the group that reach into the
/// box, the pixel-integrated Gaussian of <see cref="CpuFitBackend.Axis"/> (the one PSF implementation) at the fixed PSF
/// sigma; theta = [b, x_0, y_0, N_0, x_1, ...] (3K + 1), positions in box pixels; the sCMOS likelihood with a read-noise
/// plane. The fit itself runs in batches (<see cref="GroupFitJobs"/> through an <see cref="IGroupFitter"/>: the CPU's
/// <see cref="CpuGroupFitter"/>, SIMD across groups, or the device kernel); this class fits one group at a time through
/// the CPU fitter (tests, callers with one group) and renders emitter models. One instance per thread.
/// </summary>
public sealed class GroupFit
{
    /// <summary>Most emitters fitted together (3 x 12 + 1 = 37 parameters: what the scratch holds).</summary>
    public const int MaxEmitters = 12;
    public const int MaxParameters = 3 * MaxEmitters + 1;

    public float SigmaPx { get; }
    public int MaxIterations { get; }
    public float Tolerance { get; }

    private CpuGroupFitter? _fitter;   // made on the first Fit: most instances only render models
    private readonly GroupFitJobs _one = new();
    private float[] _ex = [];
    private Vector<float>[] _ve = [], _vdc = [], _vds = [];

    /// <summary>After <see cref="Fit"/>: the log-likelihood sum(d ln mu - mu) over the box, the goodness of fit
    /// 2 sum(mu - d + d ln(d / mu)), the iterations run, and whether it converged before the limit.</summary>
    public double LogLikelihood { get; private set; }
    public double Llr { get; private set; }
    public int Iterations { get; private set; }
    public bool Converged { get; private set; }

    public GroupFit(float sigmaPx, int maxIterations = 30, float tolerance = 1e-4f)
    {
        if (!(sigmaPx > 0)) throw new ArgumentOutOfRangeException(nameof(sigmaPx));
        SigmaPx = sigmaPx; MaxIterations = maxIterations; Tolerance = tolerance;
    }

    /// <summary>
    /// Fits <paramref name="k"/> emitters jointly, starting from <paramref name="theta"/> (3k + 1 values, updated in place).
    /// <paramref name="data"/>, <paramref name="fixedModel"/> and <paramref name="gamma"/> (empty: Poisson) are bw x bh,
    /// row-major. Returns false when the fit failed (non-finite values or a singular Fisher matrix).
    /// </summary>
    public bool Fit(ReadOnlySpan<float> data, ReadOnlySpan<float> fixedModel, ReadOnlySpan<float> gamma, int bw, int bh, int k, Span<double> theta)
    {
        _one.Clear(!gamma.IsEmpty);
        _one.Add(data, fixedModel, gamma, bw, bh, k, theta);
        (_fitter ??= new CpuGroupFitter(SigmaPx, MaxIterations, Tolerance)).FitAll(_one);
        var st = _one.Status[0];
        Iterations = _one.Iterations[0];
        Converged = st == GroupFitStatus.Converged || (st == GroupFitStatus.NoCrlb);
        LogLikelihood = _one.LogLikelihood[0]; Llr = _one.Llr[0];
        if (st == GroupFitStatus.Failed) return false;
        _one.ThetaOf(0).CopyTo(theta);
        return true;
    }

    /// <summary>Square roots of the CRLB diagonal at the last <see cref="Fit"/>'s estimate, in theta's order; false when the
    /// Fisher information is singular.</summary>
    public bool SqrtCrlb(int k, Span<double> sqrtCrlb)
    {
        if (_one.Count != 1 || _one.Status[0] is GroupFitStatus.Failed or GroupFitStatus.NoCrlb) return false;
        _one.SqrtCrlbOf(0)[..(3 * k + 1)].CopyTo(sqrtCrlb);
        return true;
    }

    /// <summary>Adds emitter models N Ex Ey into <paramref name="image"/> (width x height) over the
    /// (2R+1)-pixel square around each; R = ceil(4 sigma). Positions in image pixels.</summary>
    public void Render(Span<float> image, int width, int height, float x, float y, float photons, float sign = 1f)
    {
        int r = (int)MathF.Ceiling(4 * SigmaPx);
        int x0 = Math.Max(0, (int)MathF.Floor(x) - r), x1 = Math.Min(width, (int)MathF.Floor(x) + r + 1);
        int y0 = Math.Max(0, (int)MathF.Floor(y) - r), y1 = Math.Min(height, (int)MathF.Floor(y) + r + 1);
        int bw = x1 - x0, bh = y1 - y0;
        if (bw <= 0 || bh <= 0) return;
        int mx = Math.Max(bw, bh);
        if (_ve.Length < mx) { int c = Math.Max(mx, 32); _ve = new Vector<float>[c]; _vdc = new Vector<float>[c]; _vds = new Vector<float>[c]; _ex = new float[c]; }
        var s = new Vector<float>(SigmaPx);
        CpuFitBackend.Axis(bw, new Vector<float>(x - x0), s, _ve, _vdc, _vds);
        for (int c = 0; c < bw; c++) _ex[c] = _ve[c][0];
        CpuFitBackend.Axis(bh, new Vector<float>(y - y0), s, _ve, _vdc, _vds);
        float a = sign * photons;
        for (int row = 0; row < bh; row++)
        {
            float ey = a * _ve[row][0];
            var line = image.Slice((y0 + row) * width + x0, bw);
            for (int c = 0; c < bw; c++) line[c] += ey * _ex[c];
        }
    }
}
