using System.Diagnostics;
using MaLiang.Engine.Pipeline;

namespace MaLiang.Cli;

/// <summary>
/// The progress of <c>maliang localize</c> on a terminal: one line on stderr, rewritten in place (carriage return, no
/// escape codes, so a dumb terminal shows it too): frames done of the total, percent, frames/s since the start, time
/// left at that rate, localizations so far. At most 10 updates a second; the last frame always shows. Dispose clears
/// the line so the summary starts on a clean one. Reports come synchronously from the pipeline's thread.
/// </summary>
internal sealed class ProgressLine(TextWriter err) : IProgress<PipelineProgress>, IDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastMs = -1000; // the first report shows
    private int _width;

    public void Report(PipelineProgress p)
    {
        long now = _clock.ElapsedMilliseconds;
        if (now - _lastMs < 100 && p.FramesDone < p.FramesTotal) return;
        _lastMs = now;
        Write(Format(p.FramesDone, p.FramesTotal, p.Localizations, _clock.Elapsed.TotalSeconds));
    }

    /// <summary>"localizing: 1200/4000 frames (30%), 2400 frames/s, 0:01 left, 35000 localizations".</summary>
    public static string Format(int done, int total, long localizations, double seconds)
    {
        double fps = seconds > 0 ? done / seconds : 0;
        string left = fps > 0 ? Clock((total - done) / fps) : "?";
        int pct = total > 0 ? (int)(100L * done / total) : 0;
        return $"localizing: {done}/{total} frames ({pct}%), {fps:F0} frames/s, {left} left, {localizations} localizations";
    }

    /// <summary>m:ss, or h:mm:ss from an hour on; rounded up so that "0:00 left" means done.</summary>
    public static string Clock(double seconds)
    {
        long s = (long)Math.Ceiling(Math.Max(0, seconds));
        return s >= 3600 ? $"{s / 3600}:{s / 60 % 60:D2}:{s % 60:D2}" : $"{s / 60}:{s % 60:D2}";
    }

    private void Write(string line)
    {
        err.Write("\r" + line.PadRight(_width));
        _width = line.Length;
        err.Flush();
    }

    public void Dispose()
    {
        if (_width > 0) { err.Write("\r" + new string(' ', _width) + "\r"); err.Flush(); }
    }
}
