using System.CommandLine;
using MaLiang.Engine;
using MaLiang.Engine.Calibration;
using MaLiang.Engine.IO;

namespace MaLiang.Cli;

/// <summary><c>maliang calibrate-z BEADS.tif -o CALIB.yaml --z-step-nm S [--z-first-nm Z] [camera options] [--plot CALIB.png]</c>.</summary>
internal static class CalibrateZCommand
{
    public static Command Build()
    {
        var input = new Argument<string>("beads") { Description = "bead z-stack (TIFF); frame k is at z = first + k x step" };
        var output = new Option<string>("--output", "-o") { Description = "calibration file to write (YAML, docs/DESIGN.md)", Required = true };
        var step = new Option<double?>("--z-step-nm") { Description = "stage z step between frames, nm (> 0; z grows with the frame number)", Required = true };
        var first = new Option<double?>("--z-first-nm") { Description = "stage z of the first frame, nm (default: z = 0 where the two widths are equal)" };
        var factor = new Option<double>("--refractive-index-factor") { DefaultValueFactory = _ => 1.0, Description = "multiplies every fitted z (refractive-index mismatch; recorded in the file)" };
        var plot = new Option<string?>("--plot") { Description = "also write a PNG of the measured widths and the fitted curves against z" };
        var so = new SettingsOptions();
        var cmd = new Command("calibrate-z", "Calibrate 3D astigmatism from a bead z-stack: width curves sigma_x(z), sigma_y(z).") { input, output, step, first, factor, plot };
        so.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var settings = so.Read(r);
            string path = r.GetValue(input)!, outPath = r.GetValue(output)!;
            string? plotPath = r.GetValue(plot);
            if (plotPath != null && !plotPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                throw new InvalidParameterException("plot", $"{plotPath}: the plot is written as PNG (.png)");
            double zStep = r.GetValue(step) ?? double.NaN;
            if (!(zStep > 0) || !double.IsFinite(zStep)) throw new InvalidParameterException("z-step-nm", $"must be a finite number > 0, got {zStep}");
            if (!File.Exists(path)) throw new MaLiangException($"{path}: no such file");
            using var stack = TiffStack.Open(path);
            var run = ZCalibrator.Calibrate(stack, settings, zStep, r.GetValue(first), r.GetValue(factor));
            var c = run.Calibration;
            byte[]? png = plotPath != null ? ZCalibrationPlot.Render(run) : null;
            ZCalibrationFile.Write(outPath, c, $"from {Path.GetFileName(path)}: {stack.FrameCount} frames, {zStep} nm steps, {run.Beads} beads, {run.RejectedFits} bead fits rejected");
            if (png != null) PngWriter.WriteRgb(plotPath!, png, ZCalibrationPlot.Width, ZCalibrationPlot.Height);
            Console.WriteLine($"{path}: {run.Beads} beads in {stack.FrameCount} frames ({run.RejectedFits} bead fits rejected, " +
                              $"{run.KeptX.Count(k => !k)} / {run.KeptY.Count(k => !k)} frames left out of the x / y curve fits)");
            Console.WriteLine($"sigma_x: s0 {c.X.S0Px:0.###} px, focus {c.X.CNm:0.#} nm, d {c.X.DNm:0.#} nm, A {c.X.A:0.###}, B {c.X.B:0.###}");
            Console.WriteLine($"sigma_y: s0 {c.Y.S0Px:0.###} px, focus {c.Y.CNm:0.#} nm, d {c.Y.DNm:0.#} nm, A {c.Y.A:0.###}, B {c.Y.B:0.###}");
            Console.WriteLine($"z range {c.ZMinNm:0.#}..{c.ZMaxNm:0.#} nm; wrote {outPath}" + (plotPath != null ? $" and {plotPath}" : ""));
            return Commands.ExitOk;
        });
        return cmd;
    }
}
