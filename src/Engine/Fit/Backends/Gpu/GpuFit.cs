namespace MaLiang.Engine.Fit.Backends.Gpu;

/// <summary>The fit kernel's contract on the host side (fit.cl: ml_transpose + ml_fit).</summary>
internal static class GpuFit
{
    /// <summary>Floats ml_fit writes per molecule (ML_FIT_OUT).</summary>
    public const int OutFloats = 14;
    /// <summary>Largest ROI edge the kernel's private tables hold (ML_MAX_ROI).</summary>
    public const int MaxRoi = 31;

    public static void CheckArgs(RoiBatch batch, in FitOptions options, Span<FitResult> results)
    {
        if (results.Length < batch.Count) throw new ArgumentException("results span is shorter than the batch", nameof(results));
        if (batch.RoiSize > MaxRoi || batch.RoiSize < 3) throw new ArgumentException($"ROI size {batch.RoiSize}: the GPU fit takes 3 to {MaxRoi} px");
        if (options.MaxIterations < 0) throw new ArgumentException("MaxIterations < 0");
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

    /// <summary>
    /// Fits molecules [first, first + count) of the batch on <paramref name="ctx"/> with the given scratch buffers:
    /// upload molecule-major, transpose to pixel-major on the device, ml_fit, read back.
    /// </summary>
    public static void Run(GpuContext ctx, RoiBatch batch, int first, int count, in FitOptions o, Span<float> outScratch,
                           ref GpuBuffer? pix, ref GpuBuffer? pixT, ref GpuBuffer? res, Span<FitResult> results)
    {
        int np = batch.PixelsPerRoi;
        long bytes = (long)count * np * 4;
        ctx.Ensure(ref pix, bytes);
        ctx.Ensure(ref pixT, bytes);
        ctx.Ensure(ref res, (long)count * OutFloats * 4);
        ctx.Write(pix!, batch.Pixels.AsSpan(first * np, count * np));
        ctx.Launch("ml_transpose", (long)np * count, pix!, pixT!, np, count);
        ctx.Launch("ml_fit", count, pixT!, batch.RoiSize, count, o.PsfSigmaPx, o.FixedSigma ? 1 : 0, o.MaxIterations,
                   o.UseTolerance ? 1 : 0, o.Tolerance, res!);
        var outs = outScratch[..(count * OutFloats)];
        ctx.Read(res!, outs);
        Unpack(outs, results.Slice(first, count));
    }
}
