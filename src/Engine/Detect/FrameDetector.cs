using System.Diagnostics;
using MaLiang.Engine.Camera;
using MaLiang.Engine.Denoise;

namespace MaLiang.Engine.Detect;

/// <summary>What <see cref="FrameDetector"/> did with one frame.</summary>
public readonly record struct FrameDetection(float Threshold, float NoiseStd, DetectionStats Stats);

/// <summary>Cumulative Stopwatch ticks per stage over the frames a <see cref="FrameDetector"/> processed.</summary>
public struct DetectionTimes
{
    public long ConvertTicks, FilterTicks, NoiseTicks, DetectTicks;
    public int Frames;
    public readonly long TotalTicks => ConvertTicks + FilterTicks + NoiseTicks + DetectTicks;
    /// <summary>Milliseconds per frame of a tick count.</summary>
    public readonly double MsPerFrame(long ticks) => Frames == 0 ? 0 : ticks * 1000.0 / Stopwatch.Frequency / Frames;
    public override readonly string ToString() =>
        $"{Frames} frames, ms/frame: convert {MsPerFrame(ConvertTicks):F4}, filter {MsPerFrame(FilterTicks):F4}, noise {MsPerFrame(NoiseTicks):F4}, detect {MsPerFrame(DetectTicks):F4}, total {MsPerFrame(TotalTicks):F4}";
}

/// <summary>
/// One call per frame for the pipeline: ADU -> photons (<see cref="CameraModel"/>) -> filter -> robust noise
/// (<see cref="NoiseEstimator.RobustStd"/>) -> threshold = <see cref="LocalizerSettings.Threshold"/> x noise ->
/// <see cref="Detector.Detect"/>. Keeps the photon and filtered frames (<see cref="Photons"/>, <see cref="Filtered"/>)
/// for ROI extraction, and accumulates per-stage timings in <see cref="Times"/> (two Stopwatch timestamps per stage,
/// ~50 ns; the caller may also run the stages itself with the public pieces). Per thread; allocation-free once the
/// buffers fit the frame size.
/// </summary>
public sealed class FrameDetector
{
    public CameraModel Camera { get; }
    public IFrameFilter Filter { get; }
    public Detector Detector { get; } = new();
    public float ThresholdFactor { get; }
    public int RoiRadius { get; }
    public bool RejectOverlapping { get; }
    public bool DropAtEdge { get; }
    public bool NoiseClip { get; }
    public double PixelSizeNm { get; }
    public DetectionTimes Times;
    /// <summary>sCMOS: the filtered frame's read-noise variance above the median pixel's (<see cref="ReadNoiseThreshold.Excess"/>),
    /// frame-sized; candidates must then pass their own pixel's threshold. Null: one threshold for the frame.</summary>
    public float[]? ReadNoiseExcess { get; set; }
    /// <summary>sCMOS: the median read-noise variance of the frame's pixels (photons^2), with <see cref="ReadNoiseExcess"/>.</summary>
    public float ReadNoiseMedian { get; set; }
    /// <summary>Candidates judged against the camera model's noise at their local background (default), or null: against the
    /// filtered frame's robust spread (<see cref="LocalizerSettings.CameraNoiseDetection"/>).</summary>
    public CameraNoiseThreshold? CameraNoise { get; }

    private float[] _photons = Array.Empty<float>(), _filtered = Array.Empty<float>(), _scratch = Array.Empty<float>();
    private int _n;

    public FrameDetector(LocalizerSettings settings, CameraModel? camera = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Camera = camera ?? CameraModel.From(settings);
        Filter = FrameFilters.Create(settings);
        ThresholdFactor = (float)settings.Threshold;
        RoiRadius = settings.RoiRadius;
        RejectOverlapping = settings.RejectOverlapping;
        DropAtEdge = settings.DropAtEdge;
        NoiseClip = settings.NoiseClip;
        PixelSizeNm = settings.PixelSizeNm;
        if (settings.CameraNoiseDetection)
        {
            var cam = new CameraNoiseThreshold(Filter, settings.PsfSigmaPx, settings.EmGain, settings.NoiseScale) { AutoSparse = settings.AutoDetectionTest };
            if (cam.Applies) CameraNoise = cam;
        }
    }

    /// <summary>The last frame in photons (only filled by the <see cref="Detect(ReadOnlySpan{ushort}, int, int, List{Candidate})"/> overload).</summary>
    public ReadOnlySpan<float> Photons => _photons.AsSpan(0, _n);
    /// <summary>The last filtered frame.</summary>
    public ReadOnlySpan<float> Filtered => _filtered.AsSpan(0, _n);

    public void ResetTimes() => Times = default;

    /// <summary>Converts a raw frame to photons (kept in <see cref="Photons"/>), then detects.</summary>
    public FrameDetection Detect(ReadOnlySpan<ushort> adu, int width, int height, List<Candidate> output)
    {
        int n = Size(width, height);
        if (adu.Length < n) throw new ArgumentException($"frame holds {adu.Length} pixels, needs {n}", nameof(adu));
        Grow(n, width, height);
        long t0 = Stopwatch.GetTimestamp();
        IO.PixelConvert.U16ToFloat(adu[..n], _photons.AsSpan(0, n));
        Camera.ToPhotons(_photons.AsSpan(0, n));
        Times.ConvertTicks += Stopwatch.GetTimestamp() - t0;
        return DetectCore(_photons.AsSpan(0, n), width, height, output);
    }

    /// <summary>Detects on a frame already in photons (not copied; <see cref="Photons"/> is not updated).</summary>
    public FrameDetection Detect(ReadOnlySpan<float> photons, int width, int height, List<Candidate> output)
    {
        int n = Size(width, height);
        if (photons.Length < n) throw new ArgumentException($"frame holds {photons.Length} pixels, needs {n}", nameof(photons));
        Grow(n, width, height);
        return DetectCore(photons[..n], width, height, output);
    }

    private FrameDetection DetectCore(ReadOnlySpan<float> photons, int width, int height, List<Candidate> output)
    {
        var filtered = _filtered.AsSpan(0, photons.Length);
        long t0 = Stopwatch.GetTimestamp();
        Filter.Apply(photons, filtered, width, height);
        long t1 = Stopwatch.GetTimestamp();
        float std = NoiseEstimator.RobustStd(filtered, width, height, _scratch, NoiseClip);
        long t2 = Stopwatch.GetTimestamp();
        float thr = ThresholdFactor * std;
        if (ReadNoiseExcess is { } ex && ex.Length != photons.Length) throw new ArgumentException($"the read-noise map is for frames of {ex.Length} pixels, this one has {photons.Length}");
        float spreadThr = thr, lowerStd = 0;
        if (CameraNoise is { } cam)
        {
            // A floor for the maxima search (the camera noise at the frame's lower background); each maximum is then
            // judged at its own background, or, in a sparse frame, by the spread test.
            lowerStd = cam.LowerNoise(NoiseEstimator.Quantile(photons, width, height, _scratch, 0.1), ReadNoiseMedian);
            thr = Math.Min(spreadThr, 0.8f * ThresholdFactor * lowerStd);
        }
        var stats = Detector.Detect(filtered, width, height, thr, RoiRadius, RejectOverlapping, output, DropAtEdge);
        bool sparse = CameraNoise is { } c1 && c1.Sparse(std, lowerStd, CountAbove(output, spreadThr), FrameUm2(width, height));
        if (CameraNoise is { } c2 && !sparse)
            stats.Candidates -= c2.Apply(output, photons, width, height, ThresholdFactor, ReadNoiseMedian, ReadNoiseExcess);
        else
        {
            if (sparse)
            {
                stats.Candidates -= KeepAbove(output, spreadThr);
                stats.SpreadTestFrames = 1;
                thr = spreadThr;
            }
            if (ReadNoiseExcess is { } excess) stats.Candidates -= ReadNoiseThreshold.Apply(output, excess, width, ThresholdFactor, std);
        }
        long t3 = Stopwatch.GetTimestamp();
        Times.FilterTicks += t1 - t0; Times.NoiseTicks += t2 - t1; Times.DetectTicks += t3 - t2; Times.Frames++;
        return new FrameDetection(thr, std, stats);
    }

    private double FrameUm2(int width, int height) => (double)width * height * PixelSizeNm * PixelSizeNm * 1e-6;

    internal static int CountAbove(List<Candidate> candidates, float threshold)
    {
        int n = 0;
        foreach (var c in candidates) if (c.Value > threshold) n++;
        return n;
    }

    /// <summary>Keeps the candidates above <paramref name="threshold"/> (the spread test: the same maxima a search at that
    /// threshold finds); returns how many were dropped.</summary>
    internal static int KeepAbove(List<Candidate> candidates, float threshold)
    {
        int kept = 0;
        for (int i = 0; i < candidates.Count; i++) if (candidates[i].Value > threshold) candidates[kept++] = candidates[i];
        int dropped = candidates.Count - kept;
        candidates.RemoveRange(kept, dropped);
        return dropped;
    }

    private static int Size(int width, int height)
    {
        if (width <= 0 || height <= 0 || (long)width * height > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(width), $"bad frame size {width}x{height}");
        return width * height;
    }

    private void Grow(int n, int width, int height)
    {
        if (_photons.Length < n) _photons = new float[n];
        if (_filtered.Length < n) _filtered = new float[n];
        _n = n;
        int s = NoiseEstimator.ScratchLength(width, height);
        if (_scratch.Length < s) _scratch = new float[s];
    }
}
