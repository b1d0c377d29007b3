using System.CommandLine;
using MaLiang.Engine;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;

namespace MaLiang.Cli;

/// <summary><c>maliang localize IN.tif [IN2.tif ...] -o OUT.csv [options]</c></summary>
internal static class LocalizeCommand
{
    public static Command Build()
    {
        var inputs = new Argument<string[]>("inputs") { Description = "TIFF stack(s), read as one stack in the order given", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--output", "-o") { Description = "localizations CSV (ThunderSTORM columns, nm and photons)", Required = true };
        var render = new Option<string?>("--render") { Description = "also render the super-resolution image (.png or .tif)" };
        var mag = new Option<double>("--magnification") { Description = "render magnification (super-resolution pixels per camera pixel)", DefaultValueFactory = _ => 10 };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "no progress line and no summary" };
        var calibration = new Option<string?>("--calibration") { Description = "3D: z calibration (calibrate-z's YAML, ThunderSTORM's or Picasso's); adds z [nm] and uncertainty_z [nm]" };
        var so = new SettingsOptions();
        var cmd = new Command("localize", "Find and fit molecules in TIFF stacks; write a CSV of localizations.") { inputs, output, render, mag, quiet, calibration };
        so.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var settings = so.Read(r);
            var files = r.GetValue(inputs)!;
            string outPath = r.GetValue(output)!;
            string? renderPath = r.GetValue(render);
            double magnification = r.GetValue(mag);
            if (!(magnification > 0 && magnification <= 100)) throw new InvalidParameterException("magnification", $"must be in (0, 100], got {magnification}");
            if (renderPath != null) RenderCommand.CheckOutputKind(renderPath);
            foreach (var f in files) if (!File.Exists(f)) throw new MaLiangException($"{f}: no such file");
            if (r.GetValue(calibration) is { } calPath)
            {
                settings.ZCalibration = Engine.Calibration.ZCalibrationFile.Read(calPath, settings.PixelSizeNm);
                settings.ZCalibration.CheckPixelSize(settings.PixelSizeNm);
            }
            return Run(files, outPath, renderPath, magnification, settings, r.GetValue(quiet));
        });
        return cmd;
    }

    public static int Run(string[] files, string outPath, string? renderPath, double magnification, LocalizerSettings settings, bool quiet)
    {
        // One file opens with its Micro-Manager / OME-TIFF set (MMStack _1, _2, ... or files named in the OME-XML).
        using var stack = files.Length == 1 ? TiffStack.Open(files[0]) : TiffStack.Open(files);
        using var localizer = new Localizer(settings) { KeepResults = renderPath != null };
        using var writer = new LocalizationCsvWriter(outPath, settings.PixelSizeNm, settings.ZCalibration is not null);
        void Sink(ReadOnlySpan<Localization> locs) => writer.Append(locs);

        // A terminal gets a progress line on stderr (frames/s, time left); a pipe or a file gets none (only the summary).
        if (!quiet && !Console.IsErrorRedirected)
        {
            using var line = new ProgressLine(Console.Error);
            localizer.Run(stack, Sink, line, Commands.Cancel);
        }
        else localizer.Run(stack, Sink, null, Commands.Cancel);

        writer.Commit();
        var summary = localizer.Summary;
        if (renderPath != null)
            RenderCommand.RenderTo(renderPath, localizer.Results, stack.Width, stack.Height, magnification, settings.PixelSizeNm);
        if (!quiet)
        {
            Console.WriteLine($"{string.Join(", ", files)}: {stack.Width}x{stack.Height} px, {summary.Describe()}");
            if (settings.CameraMaps?.VarianceAdu2 is not null && summary.Backend != "cpu")
                Console.WriteLine("sCMOS variance map: detection ran on the CPU threads (per-pixel threshold, ROIs with their read-noise planes), the fit on the device");
            Console.WriteLine($"wrote {outPath}" + (renderPath != null ? $" and {renderPath}" : ""));
        }
        return Commands.ExitOk;
    }
}
