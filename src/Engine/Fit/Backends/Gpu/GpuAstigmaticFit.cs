using MaLiang.Engine.Fit.Models;

namespace MaLiang.Engine.Fit.Backends.Gpu;

/// <summary>
/// The 3D astigmatic fit on a device (Kernels/astigmatic.cl, ml_fit_astig: the CPU backend's AstigmaticGaussian operation
/// for operation), for the OpenCL and CUDA backends alike: upload molecule-major, transpose, fit, read back, in chunks of
/// at most a quarter of the device's largest allocation. Not thread-safe: the owning backend serializes.
/// </summary>
internal sealed class GpuAstigmaticFit : IDisposable
{
    /// <summary>Floats per molecule: x y N b z(nm) sigma sigma_y, sqrt(CRLB) of x y N b z(nm), logL, LLR, iterations, status.</summary>
    public const int OutFloats = 16;
    private GpuBuffer? _pix, _pixT, _res, _peak, _gam, _gamT, _cal;
    private float[] _out = [];

    public void Run(GpuContext ctx, RoiBatch batch, in FitOptions o, Span<FitResult> results)
    {
        int count = batch.Count, n = batch.RoiSize, np = batch.PixelsPerRoi;
        if (count == 0) return;
        var cal = AstigmaticGaussian.DeviceParams(o.ZCalibration!, n);
        ctx.Ensure(ref _cal, cal.Length * 4L);
        ctx.Write(_cal!, cal.AsSpan());
        int chunk = (int)Math.Clamp(ctx.MaxAllocationBytes / 4 / ((long)np * 4), 1024, 1 << 22);
        bool scmos = batch.HasReadNoise;
        for (int first = 0; first < count; first += chunk)
        {
            int m = Math.Min(chunk, count - first);
            GpuFit.CheckIndexRange(m, Math.Max(np, OutFloats));
            ctx.Ensure(ref _res, (long)m * OutFloats * 4);
            GpuFit.UploadTransposed(ctx, batch, first, m, ref _pix, ref _pixT, ref _peak, ref _gam, ref _gamT);
            ctx.Launch("ml_fit_astig", m, _pixT!, _peak!, n, m, _cal!, o.MaxIterations, o.UseTolerance ? 1 : 0, o.Tolerance, _res!,
                       scmos ? _gamT! : KArg.NullBuffer, scmos ? 1 : 0);
            if (_out.Length < m * OutFloats) _out = new float[m * OutFloats];
            var outs = _out.AsSpan(0, m * OutFloats);
            ctx.Read(_res!, outs);
            Unpack(outs, results.Slice(first, m));
        }
    }

    private static void Unpack(ReadOnlySpan<float> o, Span<FitResult> results)
    {
        for (int m = 0; m < results.Length; m++)
        {
            var v = o.Slice(m * OutFloats, OutFloats);
            ref var r = ref results[m];
            r.X = v[0]; r.Y = v[1]; r.Photons = v[2]; r.Background = v[3]; r.Z = v[4]; r.Sigma = v[5]; r.SigmaY = v[6];
            r.CrlbX = v[7]; r.CrlbY = v[8]; r.CrlbPhotons = v[9]; r.CrlbBackground = v[10]; r.CrlbZ = v[11];
            r.CrlbSigma = 0f; r.CrlbSigmaY = 0f;
            r.LogLikelihood = v[12]; r.Llr = v[13];
            r.Iterations = (int)v[14];
            r.Status = (FitStatus)(byte)(int)v[15];
        }
    }

    public void Dispose()
    {
        _pix?.Dispose(); _pixT?.Dispose(); _res?.Dispose(); _peak?.Dispose(); _gam?.Dispose(); _gamT?.Dispose(); _cal?.Dispose();
        _pix = _pixT = _res = _peak = _gam = _gamT = _cal = null;
    }
}
