using System.CommandLine;
using MaLiang.Engine;
using MaLiang.Engine.Evaluate;
using MaLiang.Engine.IO;

namespace MaLiang.Cli;

/// <summary><c>maliang compare LOCS.csv TRUTH.csv</c>: recall, precision, RMSE and bias against ground truth.</summary>
internal static class CompareCommand
{
    public static Command Build()
    {
        var locs = new Argument<string>("locs") { Description = "localizations CSV" };
        var truth = new Argument<string>("truth") { Description = "ground-truth CSV (frame, x [nm], y [nm])" };
        var radius = new Option<double>("--radius-nm") { DefaultValueFactory = _ => 100, Description = "matching radius, nm" };
        var pixel = new Option<double>("--pixel-size") { DefaultValueFactory = _ => 100, Description = "pixel size, nm (unit conversion only)" };
        var cmd = new Command("compare", "Compare localizations with ground truth (recall, precision, RMSE).") { locs, truth, radius, pixel };
        cmd.SetAction(r =>
        {
            double px = r.GetValue(pixel), rad = r.GetValue(radius);
            if (!(px > 0)) throw new InvalidParameterException("pixel-size", $"must be > 0, got {px}");
            var l = LocalizationCsv.Read(r.GetValue(locs)!, px).Localizations;
            var t = LocalizationCsv.Read(r.GetValue(truth)!, px).Localizations.Select(e => new TruePosition(e.Frame, e.X, e.Y, e.Photons)).ToList();
            var m = GroundTruth.Match(l, t, rad / px);
            Console.WriteLine($"recall {m.Recall:F4} ({m.Matched}/{m.Truths}), precision {m.Precision:F4} ({m.Matched}/{m.Localizations}), " +
                              $"RMSE x {m.RmseX * px:F2} nm, y {m.RmseY * px:F2} nm, bias x {m.BiasX * px:F2} nm, y {m.BiasY * px:F2} nm (within {rad} nm), " +
                              $"Jaccard {m.Jaccard:F4}");
            return Commands.ExitOk;
        });
        return cmd;
    }
}
