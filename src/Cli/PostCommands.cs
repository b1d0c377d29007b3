using System.CommandLine;
using MaLiang.Engine;
using MaLiang.Engine.IO;
using MaLiang.Engine.Post;

namespace MaLiang.Cli;

/// <summary>Post-processing verbs: drift, merge, filter, frc, motion. Tables in and out are DESIGN.md CSVs (nm, photons).</summary>
internal static partial class Commands
{
    static partial void AddMoreCommands(RootCommand root)
    {
        root.Subcommands.Add(PostCommands.Drift());
        root.Subcommands.Add(PostCommands.Merge());
        root.Subcommands.Add(PostCommands.Filter());
        root.Subcommands.Add(PostCommands.Frc());
        root.Subcommands.Add(PostCommands.Motion());
    }
}

internal static class PostCommands
{
    private static Argument<string> Input() => new("locs") { Description = "localizations CSV (MaLiang or ThunderSTORM)" };
    private static Option<string> Output() => new("--output", "-o") { Description = "CSV to write", Required = true };
    private static Option<double> PixelSize() => new("--pixel-size") { DefaultValueFactory = _ => 100, Description = "camera pixel size, nm (CSV positions are in nm)" };

    private static double Px(ParseResult r, Option<double> o)
    {
        double v = r.GetValue(o);
        if (!(v > 0) || !double.IsFinite(v)) throw new InvalidParameterException("pixel-size", $"must be > 0, got {v}");
        return v;
    }

    private static int FrameCount(ReadOnlySpan<Localization> locs)
    {
        int max = -1;
        foreach (var l in locs) max = Math.Max(max, l.Frame);
        return max + 1;
    }

    private static void NotEmpty(LocalizationTable t, string path)
    {
        if (t.Count == 0) throw new MaLiangException($"{path}: no localizations");
    }

    public static Command Drift()
    {
        var input = Input(); var output = Output(); var pixel = PixelSize();
        var method = new Option<string>("--method") { DefaultValueFactory = _ => "rcc", Description = "fiducial (a bead in most frames) | rcc (redundant cross-correlation, no fiducial)" };
        var segments = new Option<int>("--segments") { DefaultValueFactory = _ => 10, Description = "RCC: time segments" };
        var magnification = new Option<double>("--magnification") { DefaultValueFactory = _ => 5, Description = "RCC: rendering magnification for the correlations" };
        var region = new Option<string?>("--region") { Description = "fiducial: x0,y0,x1,y1 (camera px) around the bead; default: found automatically" };
        var smooth = new Option<int>("--smooth-frames") { DefaultValueFactory = _ => 200, Description = "fiducial: smoothing window, frames" };
        var trajectory = new Option<string?>("--trajectory") { Description = "write the drift trajectory CSV (frame, dx [nm], dy [nm])" };
        var plot = new Option<string?>("--plot") { Description = "write a PNG plot of the drift" };
        var cmd = new Command("drift", "Correct sample drift (fiducial bead or RCC) and write the corrected localizations.")
        { input, output, pixel, method, segments, magnification, region, smooth, trajectory, plot };
        cmd.SetAction(r =>
        {
            double px = Px(r, pixel);
            string inPath = r.GetValue(input)!;
            var table = LocalizationCsv.Read(inPath, px);
            NotEmpty(table, inPath);
            var locs = table.Localizations;
            int frames = FrameCount(locs);
            DriftResult drift = r.GetValue(method)!.ToLowerInvariant() switch
            {
                "fiducial" => DriftCorrection.Fiducial(locs, new FiducialDriftSettings
                {
                    FrameCount = frames, SmoothWindowFrames = r.GetValue(smooth),
                    Region = r.GetValue(region) is { } reg ? RegionPx.Parse(reg) : null,
                }),
                "rcc" => DriftCorrection.Rcc(locs, new RccSettings { FrameCount = frames, Segments = r.GetValue(segments), Magnification = r.GetValue(magnification) }),
                var m => throw new InvalidParameterException("method", $"'{m}' is not one of fiducial, rcc"),
            };
            var corrected = drift.Apply(locs);
            if (r.GetValue(trajectory) is { } tp) PostCsv.WriteDrift(tp, drift, px);
            if (r.GetValue(plot) is { } pp) PngWriter.WriteRgb(pp, PostPlots.Drift(drift, px), 640, 400);
            LocalizationCsv.Write(r.GetValue(output)!, corrected, px);
            double maxDx = drift.DxPx.Max(Math.Abs) * px, maxDy = drift.DyPx.Max(Math.Abs) * px;
            Console.WriteLine($"{drift.Method} drift over {frames} frames: max |dx| {maxDx:F1} nm, |dy| {maxDy:F1} nm; wrote {r.GetValue(output)}");
            return Commands.ExitOk;
        });
        return cmd;
    }

    public static Command Merge()
    {
        var input = Input(); var output = Output(); var pixel = PixelSize();
        var radius = new Option<double>("--radius-nm") { DefaultValueFactory = _ => 50, Description = "max distance between detections of one molecule, nm" };
        var gap = new Option<int>("--gap") { DefaultValueFactory = _ => 1, Description = "frames a molecule may be missed and still merge" };
        var cmd = new Command("merge", "Merge detections of the same molecule in consecutive frames (photon-weighted position, summed photons).")
        { input, output, pixel, radius, gap };
        cmd.SetAction(r =>
        {
            double px = Px(r, pixel), rad = r.GetValue(radius);
            if (!(rad > 0)) throw new InvalidParameterException("radius-nm", $"must be > 0, got {rad}");
            if (r.GetValue(gap) < 0) throw new InvalidParameterException("gap", "must be >= 0");
            string inPath = r.GetValue(input)!;
            var table = LocalizationCsv.Read(inPath, px);
            var merged = Merger.Merge(table.Localizations, new MergeSettings { RadiusPx = rad / px, MaxGapFrames = r.GetValue(gap) });
            LocalizationCsv.Write(r.GetValue(output)!, merged, px);
            Console.WriteLine($"{table.Count} localizations -> {merged.Length} molecules; wrote {r.GetValue(output)}");
            return Commands.ExitOk;
        });
        return cmd;
    }

    public static Command Filter()
    {
        var input = Input(); var output = Output(); var pixel = PixelSize();
        var expr = new Option<string?>("--expr") { Description = "keep rows where this holds, e.g. \"uncertainty [nm] < 20 && intensity [photon] > 300\"" };
        var densityR = new Option<double>("--density-radius-nm") { DefaultValueFactory = _ => 0, Description = "density filter: neighbourhood radius, nm (0 = off)" };
        var densityK = new Option<int>("--min-neighbours") { DefaultValueFactory = _ => 3, Description = "density filter: neighbours needed within the radius" };
        var cmd = new Command("filter", "Keep localizations that satisfy an expression over the CSV columns and/or a density criterion.")
        { input, output, pixel, expr, densityR, densityK };
        cmd.SetAction(r =>
        {
            double px = Px(r, pixel);
            string inPath = r.GetValue(input)!;
            string? e = r.GetValue(expr);
            double dr = r.GetValue(densityR);
            if (e == null && dr <= 0) throw new InvalidParameterException("expr", "give --expr and/or --density-radius-nm");
            var table = LocalizationCsv.Read(inPath, px);
            var keep = new bool[table.Count];
            Array.Fill(keep, true);
            if (e != null)
            {
                var mask = FilterExpression.Evaluate(e, table.ColumnNames, name => table.HasColumn(name) ? table.Column(name) : null, table.Count);
                for (int i = 0; i < keep.Length; i++) keep[i] &= mask[i];
            }
            if (dr > 0)
            {
                var mask = DensityFilter.Mask(table.Localizations, dr / px, r.GetValue(densityK));
                for (int i = 0; i < keep.Length; i++) keep[i] &= mask[i];
            }
            var kept = LocalizationColumns.Select(table.Localizations, keep);
            LocalizationCsv.Write(r.GetValue(output)!, kept, px);
            Console.WriteLine($"kept {kept.Length} of {table.Count} localizations; wrote {r.GetValue(output)}");
            return Commands.ExitOk;
        });
        return cmd;
    }

    public static Command Frc()
    {
        var input = Input(); var pixel = PixelSize();
        var superPixel = new Option<double>("--super-pixel-nm") { DefaultValueFactory = _ => 5, Description = "histogram pixel for the two half images, nm" };
        var curve = new Option<string?>("--curve") { Description = "write the FRC curve CSV" };
        var plot = new Option<string?>("--plot") { Description = "write a PNG plot of the FRC curve" };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0, Description = "seed of the random split into halves" };
        var cmd = new Command("frc", "Fourier ring correlation resolution (1/7 threshold) from two halves of the data.") { input, pixel, superPixel, curve, plot, seed };
        cmd.SetAction(r =>
        {
            double px = Px(r, pixel);
            string inPath = r.GetValue(input)!;
            var table = LocalizationCsv.Read(inPath, px);
            NotEmpty(table, inPath);
            var frc = FrcAnalysis.Compute(table.Localizations, new FrcSettings { PixelSizeNm = px, SuperPixelNm = r.GetValue(superPixel), Seed = r.GetValue(seed) });
            if (r.GetValue(curve) is { } cp) PostCsv.WriteFrc(cp, frc);
            if (r.GetValue(plot) is { } pp) PngWriter.WriteRgb(pp, PostPlots.Frc(frc), 640, 400);
            Console.WriteLine(double.IsNaN(frc.ResolutionNm)
                ? "FRC resolution: the curve never falls below 1/7 (too few localizations or resolution finer than the super-pixel)"
                : $"FRC resolution: {frc.ResolutionNm:F1} nm");
            return Commands.ExitOk;
        });
        return cmd;
    }

    public static Command Motion()
    {
        var input = Input(); var pixel = PixelSize();
        var region = new Option<string>("--region") { Description = "x0,y0,x1,y1 in camera px around a linear structure", Required = true };
        var windows = new Option<string>("--windows") { Description = "two 1-based frame ranges, e.g. 1-1000,2001-3000", Required = true };
        var cmd = new Command("motion", "Displacement of a linear structure between two frame windows, with its Z statistic (paper section 3.3).") { input, pixel, region, windows };
        cmd.SetAction(r =>
        {
            double px = Px(r, pixel);
            var reg = RegionPx.Parse(r.GetValue(region)!);
            var parts = r.GetValue(windows)!.Split(',');
            if (parts.Length != 2) throw new InvalidParameterException("windows", $"needs two ranges like 1-1000,2001-3000, got '{r.GetValue(windows)}'");
            var w1 = FrameWindow.Parse1Based(parts[0]); var w2 = FrameWindow.Parse1Based(parts[1]);
            string inPath = r.GetValue(input)!;
            var table = LocalizationCsv.Read(inPath, px);
            var m = MotionStatistics.Compute(table.Localizations, reg, w1, w2, px);
            Console.WriteLine($"{m.InRegion} localizations in the region, {m.Inliers} on the line; window 1: {m.N1} at {m.Mean1Nm:F1} +- {m.StdErr1Nm:F1} nm, " +
                              $"window 2: {m.N2} at {m.Mean2Nm:F1} +- {m.StdErr2Nm:F1} nm; displacement {m.DisplacementNm:F1} nm, Z = {m.Z:F2}");
            return Commands.ExitOk;
        });
        return cmd;
    }
}
