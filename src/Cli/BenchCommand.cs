using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using MaLiang.Engine;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.IO;
using MaLiang.Engine.Pipeline;
using MaLiang.Engine.Simulate;

namespace MaLiang.Cli;

/// <summary>
/// <c>maliang bench [--json]</c>: (a) the paper's Table 2 setting, 512x512 frames with 100 molecules, whole pipeline from a
/// TIFF on disk, per-stage ms/frame; (b) fits/s on isolated 7x7 ROIs (1000 photons, 10/px, sigma 1.3 px) to convergence,
/// with RMSE / sqrt(CRLB). The --json keys are a contract.
/// </summary>
internal static class BenchCommand
{
    public static Command Build()
    {
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var frames = new Option<int>("--frames") { Description = "frames in the pipeline benchmark", DefaultValueFactory = _ => 400 };
        var fits = new Option<int>("--fits") { Description = "ROIs in the fit benchmark", DefaultValueFactory = _ => 200_000 };
        var backend = new Option<string>("--backend") { Description = "fitter: auto|cpu|opencl|cuda", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int>("--threads") { Description = "worker threads (0 = all cores)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("bench", "Measure pipeline ms/frame and fits/s on simulated data.") { json, frames, fits, backend, threads };
        cmd.SetAction(r =>
        {
            int nFrames = r.GetValue(frames), nFits = r.GetValue(fits), nThreads = r.GetValue(threads);
            if (nFrames < 1) throw new InvalidParameterException("frames", "must be >= 1");
            if (nFits < 1) throw new InvalidParameterException("fits", "must be >= 1");
            var kind = SettingsOptions.ParseBackend(r.GetValue(backend));
            return Run(r.GetValue(json), nFrames, nFits, kind, nThreads);
        });
        return cmd;
    }

    private static int Run(bool json, int nFrames, int nFits, BackendKind kind, int threads)
    {
        var settings = new LocalizerSettings { Backend = kind, Threads = threads, PsfSigmaPx = 1.3, Iterations = 20 };
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        using var backend = FitBackends.Create(kind, threads, out string description);

        // (a) Pipeline on 512x512 frames with 100 molecules each, read from a TIFF on disk.
        var sim = Simulator.Run(new SimulationSettings
        {
            Width = 512, Height = 512, Frames = nFrames, EmitterCount = 100, Photons = 1000, BackgroundPhotons = 10,
            PsfSigmaPx = 1.3, OffsetAdu = 100, PhotonsPerAdu = 1, EmGain = 1, Seed = 2010, MinSeparationPx = 8, EdgeMarginPx = 4,
        });
        string tmp = Path.Combine(Path.GetTempPath(), $"maliang-bench-{Environment.ProcessId}.tif");
        PipelineSummary summary;
        try
        {
            TiffWriter.Write(tmp, sim.Frames, sim.Width, sim.Height, sim.FrameCount);
            settings.OffsetAdu = 100;
            using (var warm = TiffStack.Open(new[] { tmp }))
            using (var loc = new Localizer(settings, backend) { KeepResults = false })
                loc.Push(warm, 0, Math.Min(16, warm.FrameCount));
            using var stack = TiffStack.Open(new[] { tmp });
            using var localizer = new Localizer(settings, backend) { KeepResults = false };
            summary = localizer.Run(stack);
        }
        finally { File.Delete(tmp); }

        // (b) Isolated ROIs: fits/s to convergence and precision against the CRLB.
        var pixels = Simulator.IsolatedRois(nFits, 7, 1000, 10, 1.3, 7, out var tx, out var ty);
        var batch = new RoiBatch(7, nFits);
        for (int i = 0; i < nFits; i++) batch.Add(pixels.AsSpan(i * 49, 49));
        var results = new FitResult[nFits];
        var fo = FitOptions.From(settings);
        backend.Fit(batch, fo, results); // warm-up (JIT, kernel build)
        var sw = Stopwatch.StartNew();
        backend.Fit(batch, fo, results);
        double fitSeconds = sw.Elapsed.TotalSeconds;
        double se = 0, crlb = 0; int kept = 0;
        Span<float> c = stackalloc float[5];
        for (int i = 0; i < nFits; i++)
        {
            if (!results[i].Kept) continue;
            kept++;
            se += Sq(results[i].X - tx[i]) + Sq(results[i].Y - ty[i]);
            CpuFitBackend.Crlb(7, (float)tx[i], (float)ty[i], 1000, 10, 1.3f, false, c);
            crlb += c[0] * c[0] + c[1] * c[1];
        }
        double fitsPerSecond = nFits / fitSeconds, rmseOverCrlb = Math.Sqrt(se / crlb);

        var values = new (string Key, object Value)[]
        {
            ("ms_per_frame_total", summary.MsPerFrame),
            ("ms_per_frame_read", summary.StageMsPerFrame(summary.ReadSeconds)),
            ("ms_per_frame_denoise", summary.StageMsPerFrame(summary.DenoiseSeconds)),
            ("ms_per_frame_detect", summary.StageMsPerFrame(summary.DetectSeconds)),
            ("ms_per_frame_fit", summary.StageMsPerFrame(summary.FitSeconds)),
            ("frames", summary.Frames),
            ("localizations_per_frame", summary.Localizations / (double)summary.Frames),
            ("fits_per_second", fitsPerSecond),
            ("fits", nFits),
            ("fits_kept", kept),
            ("rmse_over_crlb", rmseOverCrlb),
            ("threads", threads),
            ("backend", description),
        };
        if (json)
        {
            var sb = new StringBuilder("{");
            for (int i = 0; i < values.Length; i++)
            {
                if (i > 0) sb.Append(", ");
                sb.Append('"').Append(values[i].Key).Append("\": ");
                sb.Append(values[i].Value switch
                {
                    string s => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"",
                    double d => d.ToString("G6", CultureInfo.InvariantCulture),
                    var o => Convert.ToString(o, CultureInfo.InvariantCulture),
                });
            }
            Console.WriteLine(sb.Append('}').ToString());
        }
        else
        {
            Console.WriteLine($"(a) pipeline, 512x512 frames with 100 molecules, from a TIFF on disk ({summary.Frames} frames, {threads} threads, {description}):");
            Console.WriteLine($"    total {summary.MsPerFrame:F3} ms/frame  (read {summary.StageMsPerFrame(summary.ReadSeconds):F3}, de-noise {summary.StageMsPerFrame(summary.DenoiseSeconds):F3}, " +
                              $"extraction {summary.StageMsPerFrame(summary.DetectSeconds):F3}, localization {summary.StageMsPerFrame(summary.FitSeconds):F3}); {summary.Localizations / (double)summary.Frames:F1} localizations/frame");
            Console.WriteLine($"(b) {nFits} isolated 7x7 ROIs (1000 photons, 10/px, sigma 1.3 px): {fitsPerSecond:N0} fits/s, RMSE/sqrt(CRLB) = {rmseOverCrlb:F3}, {kept} kept");
        }
        return Commands.ExitOk;
    }

    private static double Sq(double v) => v * v;
}
