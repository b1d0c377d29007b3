namespace MaLiang.Engine.Fit.Backends.Gpu;

/// <summary>The fit kernel's contract on the host side (fit.cl: ml_transpose + ml_fit).</summary>
internal static class GpuFit
{
    /// <summary>Floats ml_fit writes per molecule (ML_FIT_OUT).</summary>
    public const int OutFloats = 14;
    /// <summary>Largest ROI edge the kernel's private tables hold (ML_MAX_ROI).</summary>
    public const int MaxRoi = 31;

    /// <summary>The fit kernel for an ROI edge: ml_fit_7x7 for the default 7 px (the edge a compile-time constant, so the
    /// pixel loops unroll and the per-axis tables stay in registers), ml_fit for any other. Same results.</summary>
    public static string FitKernel(int roiSize) => roiSize == 7 ? "ml_fit_7x7" : "ml_fit";

    public static void CheckArgs(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        if (results.Length < batch.Count) throw new ArgumentException("results span is shorter than the batch", nameof(results));
        if (batch.RoiSize > MaxRoi || batch.RoiSize < 3) throw new ArgumentException($"ROI size {batch.RoiSize}: the GPU fit takes 3 to {MaxRoi} px");
        if (options.MaxIterations < 0) throw new ArgumentException("MaxIterations < 0");
        if (options.FreeWidths && options.ZCalibration is null)
            throw new BackendUnavailableException("the free-width bead fit of calibrate-z runs on the CPU backend (--backend cpu)");
    }

    /// <summary>Kernel arguments after the pixel buffer, n and count (see ml_fit).</summary>
    public static void Unpack(ReadOnlySpan<float> o, Span<FitResult> results)
    {
        for (int m = 0; m < results.Length; m++)
        {
            var v = o.Slice(m * OutFloats, OutFloats);
            ref var r = ref results[m];
            r.X = v[0]; r.Y = v[1]; r.Photons = v[2]; r.Background = v[3]; r.Sigma = v[4];
            r.CrlbX = v[5]; r.CrlbY = v[6]; r.CrlbPhotons = v[7]; r.CrlbBackground = v[8]; r.CrlbSigma = v[9];
            r.LogLikelihood = v[10]; r.Llr = v[11];
            r.Iterations = (int)v[12];
            r.Status = (FitStatus)(byte)(int)v[13];
        }
    }

    /// <summary>The kernels index ROI pixels and outputs with 32-bit ints: refuse a batch past that rather than compute garbage.</summary>
    internal static void CheckIndexRange(int count, int pixelsPerRoi)
    {
        if ((long)count * Math.Max(pixelsPerRoi, OutFloats) > int.MaxValue)
            throw new MaLiangException($"GPU fit: {count} ROIs of {pixelsPerRoi} px exceed one launch's 32-bit index range; use smaller chunks");
    }

    /// <summary>
    /// Uploads molecules [first, first + count) of the batch molecule-major (pixels, peaks and, with
    /// <see cref="RoiBatch.HasReadNoise"/>, the read-noise planes) and transposes pixels and planes to pixel-major on the
    /// device (<paramref name="pixT"/>, <paramref name="gamT"/>), as the fit kernels read them. Returns whether the batch
    /// has read-noise planes (the kernels' sCMOS likelihood; without, they get a null plane and scmos = 0).
    /// </summary>
    internal static bool UploadTransposed(GpuContext ctx, RoiBatch batch, int first, int count, ref GpuBuffer? pix, ref GpuBuffer? pixT,
                                          ref GpuBuffer? peak, ref GpuBuffer? gam, ref GpuBuffer? gamT)
    {
        int np = batch.PixelsPerRoi;
        long bytes = (long)count * np * 4;
        ctx.Ensure(ref pix, bytes);
        ctx.Ensure(ref pixT, bytes);
        ctx.Ensure(ref peak, (long)count * 4);
        ctx.Write(pix!, batch.Pixels.AsSpan(first * np, count * np));
        ctx.Write(peak!, batch.Peak.AsSpan(first, count));
        ctx.Launch("ml_transpose", (long)np * count, pix!, pixT!, np, count);
        if (!batch.HasReadNoise) return false;
        ctx.Ensure(ref gam, bytes);
        ctx.Ensure(ref gamT, bytes);
        ctx.Write(gam!, batch.ReadNoise.AsSpan(first * np, count * np));
        ctx.Launch("ml_transpose", (long)np * count, gam!, gamT!, np, count);
        return true;
    }

    /// <summary>
    /// Fits molecules [first, first + count) of the batch on <paramref name="ctx"/> with the given scratch buffers:
    /// upload and transpose (<see cref="UploadTransposed"/>), ml_fit, read back.
    /// </summary>
    public static void Run(GpuContext ctx, RoiBatch batch, int first, int count, in FitOptions o, Span<float> outScratch,
                           ref GpuBuffer? pix, ref GpuBuffer? pixT, ref GpuBuffer? res, ref GpuBuffer? peak, Span<FitResult> results,
                           ref GpuBuffer? gam, ref GpuBuffer? gamT)
    {
        CheckIndexRange(count, batch.PixelsPerRoi);
        ctx.Ensure(ref res, (long)count * OutFloats * 4);
        bool scmos = UploadTransposed(ctx, batch, first, count, ref pix, ref pixT, ref peak, ref gam, ref gamT);
        ctx.Launch(FitKernel(batch.RoiSize), count, pixT!, peak!, batch.RoiSize, count, o.PsfSigmaPx, o.FixedSigma ? 1 : 0, o.MaxIterations,
                   o.UseTolerance ? 1 : 0, o.Tolerance, res!, scmos ? gamT! : KArg.NullBuffer, scmos ? 1 : 0);
        var outs = outScratch[..(count * OutFloats)];
        ctx.Read(res!, outs);
        Unpack(outs, results.Slice(first, count));
    }
}

/// <summary>
/// The fit of ROIs that are already on the device (molecule-major, e.g. cut there by <see cref="GpuDetector"/>), on one
/// <see cref="GpuContext"/>: transpose + ml_fit, timed between two device-idle points so that
/// <see cref="LastKernelSeconds"/> is the kernels' time without the transfers. Same kernels, so the same results as
/// <see cref="GpuFit.Run"/> on the same pixels. Not thread-safe: the owning backend serializes.
/// </summary>
internal sealed class GpuResidentFit : IDisposable
{
    private GpuBuffer? _pix, _pixT, _res, _peak, _gam, _gamT;
    private float[] _out = [];

    /// <summary>Wall seconds of the last <see cref="Run"/>'s kernels (transpose + fit, launch to finish), no transfers.</summary>
    public double LastKernelSeconds { get; private set; }

    /// <summary>Copies a host batch (pixels and peaks) to device buffers of this helper (for timing the kernels alone).</summary>
    public (GpuBuffer Rois, GpuBuffer Peaks) Upload(GpuContext ctx, RoiBatch batch)
    {
        ctx.Ensure(ref _pix, Math.Max(1L, (long)batch.Count * batch.PixelsPerRoi * 4));
        ctx.Write(_pix!, batch.Pixels.AsSpan(0, batch.Count * batch.PixelsPerRoi));
        ctx.Ensure(ref _peak, Math.Max(1L, batch.Count * 4L));
        ctx.Write(_peak!, batch.Peak.AsSpan(0, batch.Count));
        return (_pix!, _peak!);
    }

    /// <summary>Copies a host batch's read-noise planes to a device buffer of this helper; null when it has none.</summary>
    public GpuBuffer? UploadReadNoise(GpuContext ctx, RoiBatch batch)
    {
        if (!batch.HasReadNoise) return null;
        ctx.Ensure(ref _gam, Math.Max(1L, (long)batch.Count * batch.PixelsPerRoi * 4));
        ctx.Write(_gam!, batch.ReadNoise.AsSpan(0, batch.Count * batch.PixelsPerRoi));
        return _gam!;
    }

    /// <summary>Fits the first <paramref name="count"/> ROIs of <paramref name="rois"/> (molecule-major, n x n each), the
    /// detected maximum of each at the pixel <paramref name="peaks"/> gives (<see cref="RoiBatch.Peak"/>), with the sCMOS
    /// likelihood when <paramref name="readNoise"/> holds their read-noise planes (same layout).</summary>
    public void Run(GpuContext ctx, GpuBuffer rois, GpuBuffer peaks, int roiSize, int count, in FitOptions o, Span<FitResult> results, GpuBuffer? readNoise = null)
    {
        LastKernelSeconds = 0;
        if (count == 0) return;
        if (results.Length < count) throw new ArgumentException("results span is shorter than the batch", nameof(results));
        if (roiSize > GpuFit.MaxRoi || roiSize < 3) throw new ArgumentException($"ROI size {roiSize}: the GPU fit takes 3 to {GpuFit.MaxRoi} px");
        int np = roiSize * roiSize;
        GpuFit.CheckIndexRange(count, np);
        ctx.Ensure(ref _pixT, (long)count * np * 4);
        ctx.Ensure(ref _res, (long)count * GpuFit.OutFloats * 4);
        if (_out.Length < count * GpuFit.OutFloats) _out = new float[count * GpuFit.OutFloats];
        ctx.Finish();
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        ctx.Launch("ml_transpose", (long)np * count, rois, _pixT!, np, count);
        if (readNoise is not null)
        {
            ctx.Ensure(ref _gamT, (long)count * np * 4);
            ctx.Launch("ml_transpose", (long)np * count, readNoise, _gamT!, np, count);
        }
        ctx.Launch(GpuFit.FitKernel(roiSize), count, _pixT!, peaks, roiSize, count, o.PsfSigmaPx, o.FixedSigma ? 1 : 0, o.MaxIterations,
                   o.UseTolerance ? 1 : 0, o.Tolerance, _res!, readNoise is not null ? _gamT! : KArg.NullBuffer, readNoise is not null ? 1 : 0);
        ctx.Finish();
        LastKernelSeconds = (System.Diagnostics.Stopwatch.GetTimestamp() - t0) / (double)System.Diagnostics.Stopwatch.Frequency;
        var outs = _out.AsSpan(0, count * GpuFit.OutFloats);
        ctx.Read(_res!, outs);
        GpuFit.Unpack(outs, results[..count]);
    }

    public void Dispose()
    {
        _pix?.Dispose(); _pixT?.Dispose(); _res?.Dispose(); _peak?.Dispose(); _gam?.Dispose(); _gamT?.Dispose();
        _pix = _pixT = _res = _peak = _gam = _gamT = null;
    }
}
