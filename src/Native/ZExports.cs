using System.Runtime.InteropServices;
using MaLiang.Engine;
using MaLiang.Engine.Calibration;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;

namespace MaLiang.Native;

/// <summary>ml_z_calibration (maliang.h): 128 bytes. Index 0 is the x curve (columns), 1 the y curve (rows).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct MlZCalibration
{
    public int StructSize, Beads;
    public fixed double Sigma0Px[2];
    public fixed double A[2];
    public fixed double B[2];
    public fixed double CNm[2];
    public fixed double DNm[2];
    public double PixelSizeNm, ZMinNm, ZMaxNm, RefractiveIndexFactor;
    public int RejectedFits, Reserved;
}

/// <summary>3D astigmatism in the C ABI: a localizer with a z calibration, calibration from a bead stack, reading a
/// calibration file. Arguments are checked before any pointer is used; errors are codes with ml_last_error().</summary>
public static unsafe partial class Exports
{
    private static void ToNative(ZCalibration c, int beads, int rejected, MlZCalibration* o)
    {
        o->StructSize = sizeof(MlZCalibration); o->Beads = beads; o->RejectedFits = rejected; o->Reserved = 0;
        o->Sigma0Px[0] = c.X.S0Px; o->A[0] = c.X.A; o->B[0] = c.X.B; o->CNm[0] = c.X.CNm; o->DNm[0] = c.X.DNm;
        o->Sigma0Px[1] = c.Y.S0Px; o->A[1] = c.Y.A; o->B[1] = c.Y.B; o->CNm[1] = c.Y.CNm; o->DNm[1] = c.Y.DNm;
        o->PixelSizeNm = c.PixelSizeNm; o->ZMinNm = c.ZMinNm; o->ZMaxNm = c.ZMaxNm; o->RefractiveIndexFactor = c.RefractiveIndexFactor;
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_create_3d")]
    public static int MlCreate3d(MlSettings* settings, byte* calibrationPath, nint* outHandle)
    {
        if (outHandle == null) return Fail(Status.Argument, "ml_create_3d: out is null");
        *outHandle = 0;
        if (settings == null) return Fail(Status.Argument, "ml_create_3d: settings is null");
        string? path = Utf8(calibrationPath);
        if (string.IsNullOrEmpty(path)) return Fail(Status.Argument, "ml_create_3d: calibration path is null or empty");
        var s = *settings;
        return Guard(() =>
        {
            var ls = FromNative(s);
            var cal = ZCalibrationFile.Read(path, ls.PixelSizeNm);
            cal.CheckPixelSize(ls.PixelSizeNm);
            ls.ZCalibration = cal;
            var localizer = new Localizer(ls);
            nint id = (nint)Interlocked.Add(ref s_lastHandle, 16);
            s_handles[id] = new Handle(localizer);
            *outHandle = id;
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_read_z_calibration")]
    public static int MlReadZCalibration(byte* path, double pixelSizeNm, MlZCalibration* output)
    {
        string? p = Utf8(path);
        if (string.IsNullOrEmpty(p)) return Fail(Status.Argument, "ml_read_z_calibration: path is null or empty");
        if (output == null) return Fail(Status.Argument, "ml_read_z_calibration: out is null");
        if (!(pixelSizeNm > 0) || !double.IsFinite(pixelSizeNm)) return Fail(Status.Argument, $"ml_read_z_calibration: pixel_size_nm {pixelSizeNm} must be > 0");
        return Guard(() => { ToNative(ZCalibrationFile.Read(p, pixelSizeNm), 0, 0, output); return Ok(); });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_calibrate_z")]
    public static int MlCalibrateZ(byte* stackPath, MlSettings* settings, double zStepNm, double zFirstNm, double refractiveIndexFactor,
                                   byte* outputPath, byte* plotPath, MlZCalibration* output)
    {
        string? stack = Utf8(stackPath), outPath = Utf8(outputPath), plot = Utf8(plotPath);
        if (string.IsNullOrEmpty(stack)) return Fail(Status.Argument, "ml_calibrate_z: stack path is null or empty");
        if (settings == null) return Fail(Status.Argument, "ml_calibrate_z: settings is null");
        if (!(zStepNm > 0) || !double.IsFinite(zStepNm)) return Fail(Status.Argument, $"parameter z-step-nm: must be a finite number > 0, got {zStepNm}");
        if (double.IsInfinity(zFirstNm)) return Fail(Status.Argument, $"parameter z-first-nm: must be finite (NaN: z = 0 where the widths are equal), got {zFirstNm}");
        if (string.IsNullOrEmpty(plot)) plot = null;
        if (string.IsNullOrEmpty(outPath)) outPath = null;
        if (plot != null && !plot.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) return Fail(Status.Argument, $"parameter plot: {plot}: the plot is written as PNG (.png)");
        var s = *settings;
        return Guard(() =>
        {
            var ls = FromNative(s);
            if (!File.Exists(stack)) return Fail(Status.Io, $"{stack}: no such file");
            using var src = TiffStack.Open(stack);
            var run = ZCalibrator.Calibrate(src, ls, zStepNm, double.IsNaN(zFirstNm) ? null : zFirstNm, refractiveIndexFactor);
            byte[]? png = plot != null ? ZCalibrationPlot.Render(run) : null;
            if (outPath != null) ZCalibrationFile.Write(outPath, run.Calibration, $"from {Path.GetFileName(stack)}: {src.FrameCount} frames, {zStepNm} nm steps, {run.Beads} beads");
            if (png != null) PngWriter.WriteRgb(plot!, png, ZCalibrationPlot.Width, ZCalibrationPlot.Height);
            if (output != null) ToNative(run.Calibration, run.Beads, run.RejectedFits, output);
            return Ok();
        });
    }
}
