using System.Runtime.InteropServices;
using MaLiang.Engine;
using MaLiang.Engine.Post;

namespace MaLiang.Native;

/// <summary>ml_drift_options (maliang.h), field for field: 64 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct MlDriftOptions
{
    public int StructSize, Frames, Segments, SmoothFrames;
    public double Magnification, MaxShiftPx, RegionX0, RegionY0, RegionX1, RegionY1;
}

/// <summary>ml_frc_options (maliang.h): 40 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct MlFrcOptions
{
    public int StructSize, Split, BlockFrames, Seed;
    public double PixelSizeNm, SuperPixelNm, Threshold;
}

/// <summary>ml_motion_result (maliang.h): 120 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct MlMotionResult
{
    public int StructSize, InRegion, Inliers, N1, N2, Reserved;
    public double LineX, LineY, DirectionX, DirectionY, NormalX, NormalY;
    public double Mean1Nm, StdErr1Nm, Mean2Nm, StdErr2Nm, DisplacementNm, Z;
}

/// <summary>The post-processing part of the C ABI (maliang drift/merge/filter/frc/motion): arrays of ml_localization in,
/// caller-provided buffers out. Same rules as the rest: every pointer, size and option is checked first, errors are
/// return codes with ml_last_error(), nothing is thrown across the boundary.</summary>
public static unsafe partial class Exports
{
    /// <summary>Largest FRC curve (rings = FFT size / 2, the FFT is at most 4096 wide).</summary>
    public const int FrcMaxPoints = 2048;

    /// <summary>Like Guard, but a MaLiangException is always ML_ERR_INPUT (a filter over a column named "backend" is not a
    /// missing GPU).</summary>
    private static int PostGuard(Func<int> body)
    {
        try { return body(); }
        catch (OperationCanceledException) { return Fail(Status.Cancelled, "cancelled"); }
        catch (InvalidParameterException e) { return Fail(Status.Argument, e.Message); }
        catch (MaLiangException e) { return Fail(Status.Input, e.Message); }
        catch (Exception e) { return Fail(Status.Internal, $"{e.GetType().Name}: {e.Message}"); }
    }

    /// <summary>Null when (locs, n) is a valid input array, else the message.</summary>
    private static string? CheckLocs(string fn, Localization* locs, long n, bool needOne)
    {
        if (n < 0 || n > int.MaxValue) return $"{fn}: n {n} is out of range (0..{int.MaxValue})";
        if (n > 0 && locs == null) return $"{fn}: in is null";
        if (needOne && n == 0) return $"{fn}: no localizations (n = 0)";
        return null;
    }

    private static bool Finite(double v) => double.IsFinite(v);

    internal static MlDriftOptions DefaultDriftOptions()
    {
        var f = new FiducialDriftSettings();
        var r = new RccSettings();
        return new MlDriftOptions
        {
            StructSize = sizeof(MlDriftOptions), Frames = 0, Segments = r.Segments, SmoothFrames = f.SmoothWindowFrames,
            Magnification = r.Magnification, MaxShiftPx = r.MaxShiftPx,
            RegionX0 = double.NaN, RegionY0 = double.NaN, RegionX1 = double.NaN, RegionY1 = double.NaN,
        };
    }

    internal static MlFrcOptions DefaultFrcOptions()
    {
        var s = new FrcSettings();
        return new MlFrcOptions
        {
            StructSize = sizeof(MlFrcOptions), Split = (int)s.Split, BlockFrames = s.BlockFrames, Seed = s.Seed,
            PixelSizeNm = s.PixelSizeNm, SuperPixelNm = s.SuperPixelNm, Threshold = s.Threshold,
        };
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_struct_sizes")]
    public static int MlStructSizes(int* settings, int* localization, int* summary)
    {
        if (settings == null || localization == null || summary == null) return Fail(Status.Argument, "ml_struct_sizes: settings, localization and summary must not be null");
        *settings = sizeof(MlSettings); *localization = sizeof(Localization); *summary = sizeof(MlSummary);
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_post_struct_sizes")]
    public static int MlPostStructSizes(int* driftOptions, int* frcOptions, int* motionResult)
    {
        if (driftOptions == null || frcOptions == null || motionResult == null) return Fail(Status.Argument, "ml_post_struct_sizes: drift_options, frc_options and motion_result must not be null");
        *driftOptions = sizeof(MlDriftOptions); *frcOptions = sizeof(MlFrcOptions); *motionResult = sizeof(MlMotionResult);
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_default_drift_options")]
    public static int MlDefaultDriftOptions(MlDriftOptions* opt)
    {
        if (opt == null) return Fail(Status.Argument, "ml_default_drift_options: options is null");
        *opt = DefaultDriftOptions();
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_default_frc_options")]
    public static int MlDefaultFrcOptions(MlFrcOptions* opt)
    {
        if (opt == null) return Fail(Status.Argument, "ml_default_frc_options: options is null");
        *opt = DefaultFrcOptions();
        return Ok();
    }

    /// <summary>The region of ml_drift_options: null when all four are NaN, else validated.</summary>
    private static RegionPx? DriftRegion(in MlDriftOptions o)
    {
        bool allNan = double.IsNaN(o.RegionX0) && double.IsNaN(o.RegionY0) && double.IsNaN(o.RegionX1) && double.IsNaN(o.RegionY1);
        if (allNan) return null;
        var r = new RegionPx(o.RegionX0, o.RegionY0, o.RegionX1, o.RegionY1);
        r.Validate("region"); // a partly NaN region is an error, not "whole field"
        return r;
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_drift_correct")]
    public static int MlDriftCorrect(Localization* input, long n, int method, MlDriftOptions* opt, Localization* output,
        double* dxPx, double* dyPx, long framesCapacity, long* frames)
    {
        const string fn = "ml_drift_correct";
        if (frames == null) return Fail(Status.Argument, $"{fn}: frames is null");
        *frames = 0;
        if (CheckLocs(fn, input, n, true) is { } bad) return Fail(Status.Argument, bad);
        if (method is < 0 or > 1) return Fail(Status.Argument, $"{fn}: method {method} is not 0 (rcc) or 1 (fiducial)");
        if (opt == null) return Fail(Status.Argument, $"{fn}: options is null (fill one with ml_default_drift_options)");
        var o = *opt;
        if (o.StructSize != sizeof(MlDriftOptions))
            return Fail(Status.Argument, $"{fn}: struct_size is {o.StructSize}, this library's ml_drift_options is {sizeof(MlDriftOptions)} bytes (header and library differ?)");
        if ((dxPx == null) != (dyPx == null)) return Fail(Status.Argument, $"{fn}: give both dx_px and dy_px, or neither");
        if (framesCapacity < 0) return Fail(Status.Argument, $"{fn}: frames_capacity {framesCapacity} is negative");
        return PostGuard(() =>
        {
            var locs = new ReadOnlySpan<Localization>(input, (int)n);
            int maxFrame = -1;
            for (int i = 0; i < locs.Length; i++)
            {
                if (locs[i].Frame < 0) throw new InvalidParameterException("in", $"localization {i} has frame {locs[i].Frame}; frames are 0-based and >= 0");
                maxFrame = Math.Max(maxFrame, locs[i].Frame);
            }
            if (o.Frames < 0) throw new InvalidParameterException("frames", $"must be >= 0 (0 = last localization's frame + 1), got {o.Frames}");
            int count = o.Frames > 0 ? o.Frames : maxFrame + 1;
            RegionPx? region = DriftRegion(o);
            var rcc = new RccSettings { FrameCount = count, Segments = o.Segments, Magnification = o.Magnification, MaxShiftPx = o.MaxShiftPx };
            var fid = new FiducialDriftSettings { FrameCount = count, SmoothWindowFrames = o.SmoothFrames, Region = region };
            if (method == 0) rcc.Validate(); else fid.Validate();
            *frames = count;
            if (output == null && dxPx == null) return Ok(); // size query
            if (dxPx != null && framesCapacity < count)
                return Fail(Status.Argument, $"{fn}: frames_capacity {framesCapacity} < {count} frames");
            DriftResult drift = method == 0 ? DriftCorrection.Rcc(locs, rcc) : DriftCorrection.Fiducial(locs, fid);
            if (drift.FrameCount != count) return Fail(Status.Internal, $"{fn}: drift has {drift.FrameCount} frames, expected {count}");
            if (dxPx != null)
            {
                drift.DxPx.AsSpan().CopyTo(new Span<double>(dxPx, count));
                drift.DyPx.AsSpan().CopyTo(new Span<double>(dyPx, count));
            }
            if (output != null)
            {
                var corrected = drift.Apply(locs); // a copy: output may be the input array
                corrected.AsSpan().CopyTo(new Span<Localization>(output, corrected.Length));
            }
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_merge")]
    public static int MlMerge(Localization* input, long n, double radiusPx, int maxGapFrames, Localization* output, long capacity, long* count)
    {
        const string fn = "ml_merge";
        if (count == null) return Fail(Status.Argument, $"{fn}: count is null");
        *count = 0;
        if (CheckLocs(fn, input, n, false) is { } bad) return Fail(Status.Argument, bad);
        if (!(radiusPx > 0) || !Finite(radiusPx)) return Fail(Status.Argument, $"{fn}: radius_px {radiusPx} must be a finite number > 0");
        if (maxGapFrames < 0) return Fail(Status.Argument, $"{fn}: max_gap_frames {maxGapFrames} must be >= 0");
        if (capacity < 0 || (capacity > 0 && output == null)) return Fail(Status.Argument, $"{fn}: out/capacity invalid (capacity {capacity}, out {(output == null ? "null" : "set")})");
        return PostGuard(() =>
        {
            var merged = Merger.Merge(new ReadOnlySpan<Localization>(input, (int)n), new MergeSettings { RadiusPx = radiusPx, MaxGapFrames = maxGapFrames });
            *count = merged.Length;
            if (output == null) return Ok(); // size query
            if (capacity < merged.Length) return Fail(Status.Argument, $"{fn}: capacity {capacity} < {merged.Length} merged localizations (n is always enough)");
            merged.AsSpan().CopyTo(new Span<Localization>(output, merged.Length));
            return Ok();
        });
    }

    private static long WriteMask(bool[] mask, byte* keep)
    {
        long kept = 0;
        for (int i = 0; i < mask.Length; i++) { keep[i] = mask[i] ? (byte)1 : (byte)0; if (mask[i]) kept++; }
        return kept;
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_filter_expression")]
    public static int MlFilter(Localization* input, long n, byte* expression, double pixelSizeNm, byte* keep, long* kept)
    {
        const string fn = "ml_filter_expression";
        if (kept != null) *kept = 0;
        if (CheckLocs(fn, input, n, false) is { } bad) return Fail(Status.Argument, bad);
        string? e = Utf8(expression);
        if (e == null) return Fail(Status.Argument, $"{fn}: expression is null");
        if (string.IsNullOrWhiteSpace(e)) return Fail(Status.Argument, $"{fn}: expression is empty");
        if (!(pixelSizeNm > 0) || !Finite(pixelSizeNm)) return Fail(Status.Argument, $"{fn}: pixel_size_nm {pixelSizeNm} must be a finite number > 0");
        if (n > 0 && keep == null) return Fail(Status.Argument, $"{fn}: keep is null");
        return PostGuard(() =>
        {
            var locs = new ReadOnlySpan<Localization>(input, (int)n).ToArray();
            var parsed = FilterExpression.Parse(e, LocalizationColumns.Names); // n = 0 checks the expression only
            var mask = parsed.Evaluate(LocalizationColumns.Provider(locs, pixelSizeNm), locs.Length);
            long k = WriteMask(mask, keep);
            if (kept != null) *kept = k;
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_density_filter")]
    public static int MlDensityFilter(Localization* input, long n, double radiusPx, int minNeighbours, byte* keep, long* kept)
    {
        const string fn = "ml_density_filter";
        if (kept != null) *kept = 0;
        if (CheckLocs(fn, input, n, false) is { } bad) return Fail(Status.Argument, bad);
        if (!(radiusPx > 0) || !Finite(radiusPx)) return Fail(Status.Argument, $"{fn}: radius_px {radiusPx} must be a finite number > 0");
        if (minNeighbours < 0) return Fail(Status.Argument, $"{fn}: min_neighbours {minNeighbours} must be >= 0");
        if (n > 0 && keep == null) return Fail(Status.Argument, $"{fn}: keep is null");
        return PostGuard(() =>
        {
            var mask = DensityFilter.Mask(new ReadOnlySpan<Localization>(input, (int)n), radiusPx, minNeighbours);
            long k = WriteMask(mask, keep);
            if (kept != null) *kept = k;
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_frc")]
    public static int MlFrc(Localization* input, long n, MlFrcOptions* opt, double* resolutionNm, double* freqPerNm, double* frc,
        double* frcSmoothed, long capacity, long* points)
    {
        const string fn = "ml_frc";
        if (points == null) return Fail(Status.Argument, $"{fn}: points is null");
        *points = 0;
        if (resolutionNm == null) return Fail(Status.Argument, $"{fn}: resolution_nm is null");
        *resolutionNm = double.NaN;
        if (CheckLocs(fn, input, n, true) is { } bad) return Fail(Status.Argument, bad);
        if (opt == null) return Fail(Status.Argument, $"{fn}: options is null (fill one with ml_default_frc_options)");
        var o = *opt;
        if (o.StructSize != sizeof(MlFrcOptions))
            return Fail(Status.Argument, $"{fn}: struct_size is {o.StructSize}, this library's ml_frc_options is {sizeof(MlFrcOptions)} bytes (header and library differ?)");
        if (o.Split is < 0 or > 1) return Fail(Status.Argument, $"{fn}: split {o.Split} is not 0 (random blocks) or 1 (odd/even blocks)");
        bool curve = freqPerNm != null || frc != null || frcSmoothed != null;
        if (capacity < 0 || (capacity > 0 && !curve)) return Fail(Status.Argument, $"{fn}: capacity {capacity} with no curve buffer (give freq_per_nm, frc or frc_smoothed, or capacity 0)");
        return PostGuard(() =>
        {
            var settings = new FrcSettings
            {
                PixelSizeNm = o.PixelSizeNm, SuperPixelNm = o.SuperPixelNm, Split = (FrcSplit)o.Split, BlockFrames = o.BlockFrames,
                Seed = o.Seed, Threshold = o.Threshold,
            };
            var r = FrcAnalysis.Compute(new ReadOnlySpan<Localization>(input, (int)n), settings);
            int m = r.Frc.Length;
            *points = m;
            *resolutionNm = r.ResolutionNm;
            if (!curve) return Ok();
            if (capacity < m) return Fail(Status.Argument, $"{fn}: capacity {capacity} < {m} curve points ({FrcMaxPoints} is always enough)");
            if (freqPerNm != null) r.FrequencyPerNm.AsSpan().CopyTo(new Span<double>(freqPerNm, m));
            if (frc != null) r.Frc.AsSpan().CopyTo(new Span<double>(frc, m));
            if (frcSmoothed != null) r.FrcSmoothed.AsSpan().CopyTo(new Span<double>(frcSmoothed, m));
            return Ok();
        });
    }

    [UnmanagedCallersOnly(EntryPoint = "ml_motion")]
    public static int MlMotion(Localization* input, long n, double x0, double y0, double x1, double y1,
        int window1First, int window1Last, int window2First, int window2Last, double pixelSizeNm, MlMotionResult* output)
    {
        const string fn = "ml_motion";
        if (output == null) return Fail(Status.Argument, $"{fn}: out is null");
        if (output->StructSize != sizeof(MlMotionResult))
            return Fail(Status.Argument, $"{fn}: out->struct_size is {output->StructSize}; set it to sizeof(ml_motion_result) = {sizeof(MlMotionResult)} (header and library differ?)");
        if (CheckLocs(fn, input, n, true) is { } bad) return Fail(Status.Argument, bad);
        if (!(Finite(x0) && Finite(y0) && Finite(x1) && Finite(y1)) || x1 <= x0 || y1 <= y0)
            return Fail(Status.Argument, $"{fn}: region {x0},{y0},{x1},{y1} must be finite with x0 < x1 and y0 < y1 (px)");
        if (window1First < 0 || window1Last < window1First) return Fail(Status.Argument, $"{fn}: window 1 {window1First}..{window1Last} must satisfy 0 <= first <= last (0-based frames)");
        if (window2First < 0 || window2Last < window2First) return Fail(Status.Argument, $"{fn}: window 2 {window2First}..{window2Last} must satisfy 0 <= first <= last (0-based frames)");
        if (!(pixelSizeNm > 0) || !Finite(pixelSizeNm)) return Fail(Status.Argument, $"{fn}: pixel_size_nm {pixelSizeNm} must be a finite number > 0");
        return PostGuard(() =>
        {
            var m = MotionStatistics.Compute(new ReadOnlySpan<Localization>(input, (int)n), new RegionPx(x0, y0, x1, y1),
                new FrameWindow(window1First, window1Last), new FrameWindow(window2First, window2Last), pixelSizeNm);
            *output = new MlMotionResult
            {
                StructSize = sizeof(MlMotionResult), InRegion = m.InRegion, Inliers = m.Inliers, N1 = m.N1, N2 = m.N2,
                LineX = m.LineX, LineY = m.LineY, DirectionX = m.DirectionX, DirectionY = m.DirectionY, NormalX = m.NormalX, NormalY = m.NormalY,
                Mean1Nm = m.Mean1Nm, StdErr1Nm = m.StdErr1Nm, Mean2Nm = m.Mean2Nm, StdErr2Nm = m.StdErr2Nm,
                DisplacementNm = m.DisplacementNm, Z = m.Z,
            };
            return Ok();
        });
    }
}
