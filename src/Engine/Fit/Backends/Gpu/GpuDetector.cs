using MaLiang.Engine.Denoise;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit.Backends.Cuda;
using MaLiang.Engine.Fit.Backends.OpenCL;

namespace MaLiang.Engine.Fit.Backends.Gpu;

/// <summary>Detection settings as the GPU detector needs them.</summary>
public readonly record struct GpuDetectOptions(FilterKind Filter, int FilterBoxPx, float ThresholdFactor, int RoiSize, bool RejectOverlapping,
                                               bool DropAtEdge = false, bool NoiseClip = true, CameraNoiseThreshold? CameraNoise = null,
                                               double PixelSizeNm = 100)
{
    /// <summary>As the CPU's <see cref="FrameDetector"/> for these settings, the camera-noise test included (its ring buffer
    /// makes the options one detector thread's).</summary>
    public static GpuDetectOptions From(LocalizerSettings s)
    {
        CameraNoiseThreshold? cam = null;
        if (s.CameraNoiseDetection)
        {
            cam = new CameraNoiseThreshold(FrameFilters.Create(s), s.PsfSigmaPx, s.EmGain, s.NoiseScale) { AutoSparse = s.AutoDetectionTest };
            if (!cam.Applies) cam = null;
        }
        return new(s.Filter, s.FilterBoxPx, (float)s.Threshold, s.RoiSize, s.RejectOverlapping, s.DropAtEdge, s.NoiseClip, cam, s.PixelSizeNm);
    }
}

/// <summary>
/// De-noise, threshold, find local maxima and cut ROIs on the GPU (OpenCL or CUDA, one kernel source: detect.cl), a stack
/// of frames per call so that large frames do not wait on the CPU. Same results as the CPU path
/// (<see cref="MaliangFilter"/> / <see cref="WaveletFilter"/> / <see cref="NoFilter"/>, <see cref="NoiseEstimator"/>,
/// <see cref="Detector"/>), bit for bit: the filters do the same float operations in the same order. Only the noise
/// subsample (about <see cref="NoiseEstimator.TargetSamples"/> values per frame), per-frame counts and the ROIs come back
/// to the host.
/// Not thread-safe: one detector per thread.
/// </summary>
public sealed class GpuDetector : IDisposable
{
    private readonly GpuContext _ctx;
    private readonly bool _ownsContext;
    private GpuBuffer? _frames, _filt, _tmp, _tmp2, _samples, _thr, _med, _count, _border, _overl, _cand, _sorted, _keep, _pre, _kept, _offset, _roiFrame, _left, _top, _peak, _rois, _values;
    private int _cap = 256;

    internal GpuDetector(GpuContext ctx, bool ownsContext) { _ctx = ctx; _ownsContext = ownsContext; }

    public string Name => _ctx.Name;

    /// <summary>On an OpenCL device (default: the first GPU, else the first device).</summary>
    public static GpuDetector OnOpenCL(OpenClDevice? device = null)
        => new(new OpenClGpuContext(device ?? OpenClRuntime.DefaultDevice()), true);

    /// <summary>On CUDA device <paramref name="device"/>; throws a <see cref="MaLiangException"/> when CUDA is unavailable.</summary>
    public static GpuDetector OnCuda(int device = 0) => new(new CudaGpuContext(device), true);

    /// <summary>Filters a stack of frames (photons) into <paramref name="filtered"/> (same layout). For tests and previews.</summary>
    public void Filter(ReadOnlySpan<float> frames, int width, int height, int frameCount, FilterKind filter, int boxPx, Span<float> filtered)
    {
        long n = Check(frames.Length, width, height, frameCount);
        if (filtered.Length < n) throw new ArgumentException("filtered is smaller than the frames");
        Upload(frames, n);
        RunFilter(width, height, frameCount, filter, boxPx);
        _ctx.Read(_filt!, filtered[..(int)n]);
    }

    /// <summary>Robust noise (1.4826 x MAD of the subsample) of each frame of an already filtered stack. For tests.</summary>
    public float[] Noise(ReadOnlySpan<float> filtered, int width, int height, int frameCount)
    {
        long n = Check(filtered.Length, width, height, frameCount);
        _ctx.Ensure(ref _filt, n * 4);
        _ctx.Write(_filt!, filtered[..(int)n]);
        return RunNoise(width, height, frameCount);
    }

    /// <summary>
    /// Detects molecules in a stack of <paramref name="frameCount"/> frames (photons, frame-major) and appends their ROIs to
    /// <paramref name="into"/> in (frame, raster) order, frame numbers from <paramref name="firstFrame"/>.
    /// Returns per-frame statistics.
    /// </summary>
    public FrameDetection[] Detect(ReadOnlySpan<float> frames, int width, int height, int frameCount, int firstFrame,
                                   in GpuDetectOptions options, RoiBatch into)
    {
        if (into.RoiSize != options.RoiSize) throw new ArgumentException($"RoiBatch has ROI size {into.RoiSize}, options say {options.RoiSize}");
        var result = DetectOnDevice(frames, width, height, frameCount, options);
        int total = DetectedCount;
        if (total == 0) return result;
        int nn = options.RoiSize * options.RoiSize;
        var pixels = new float[(long)total * nn];
        _ctx.Read(_rois!, pixels.AsSpan());
        into.Reserve(into.Count + total);
        for (int i = 0; i < total; i++) into.Add(pixels.AsSpan(i * nn, nn), firstFrame + _hostFrame[i], _hostLeft[i], _hostTop[i], peak: _hostPeak[i]);
        return result;
    }

    /// <summary>ROIs found by the last detection (the ROIs themselves are on the device, see <see cref="DetectOnDevice"/>).</summary>
    public int DetectedCount { get; private set; }
    /// <summary>Per ROI of the last detection, in (frame, raster) order: the frame (0-based within that call's stack) and
    /// the ROI's top-left corner in the frame.</summary>
    public ReadOnlySpan<int> DetectedFrame => _hostFrame.AsSpan(0, DetectedCount);
    public ReadOnlySpan<int> DetectedLeft => _hostLeft.AsSpan(0, DetectedCount);
    public ReadOnlySpan<int> DetectedTop => _hostTop.AsSpan(0, DetectedCount);
    /// <summary>Per ROI of the last detection: the detected maximum's pixel in the ROI (<see cref="RoiBatch.Peak"/>).</summary>
    public ReadOnlySpan<int> DetectedPeak => _hostPeak.AsSpan(0, DetectedCount);
    /// <summary>ROI size of the last detection.</summary>
    public int DetectedRoiSize { get; private set; }
    /// <summary>Wall seconds of the last detection's stages (each ends with the device idle): upload of the frames,
    /// de-noise filter, then noise estimate + threshold + maxima + classification + ROI cut-out (with the small read-backs).</summary>
    public double LastUploadSeconds { get; private set; }
    public double LastFilterSeconds { get; private set; }
    public double LastDetectSeconds { get; private set; }

    /// <summary>The device buffer holding the last detection's ROIs, molecule-major (<see cref="DetectedCount"/> x n x n floats).</summary>
    internal GpuBuffer? DetectedRois => DetectedCount == 0 ? null : _rois;
    /// <summary>The device buffer holding the last detection's peaks (<see cref="DetectedPeak"/>).</summary>
    internal GpuBuffer? DetectedPeaks => DetectedCount == 0 ? null : _peak;
    internal GpuContext Context => _ctx;

    private GpuBuffer?[] Buffers() => [_frames, _filt, _tmp, _tmp2, _samples, _thr, _med, _count, _border, _overl, _cand, _sorted, _keep, _pre, _kept, _offset, _roiFrame, _left, _top, _peak, _rois, _values];

    /// <summary>Device memory this detector's buffers hold now (kept and reused by the next call).</summary>
    public long DeviceBytes
    {
        get
        {
            long sum = 0;
            foreach (var b in Buffers()) sum += b?.Bytes ?? 0;
            return sum;
        }
    }

    private int[] _hostFrame = [], _hostLeft = [], _hostTop = [], _hostPeak = [];

    /// <summary>
    /// Detects molecules in a stack of <paramref name="frameCount"/> frames (photons, frame-major) and leaves their ROIs on
    /// the device (for a fit on the same context, without a round trip through the host). Only the per-ROI frame and
    /// corner come back: <see cref="DetectedFrame"/>, <see cref="DetectedLeft"/>, <see cref="DetectedTop"/>.
    /// Returns per-frame statistics.
    /// </summary>
    public FrameDetection[] DetectOnDevice(ReadOnlySpan<float> frames, int width, int height, int frameCount, in GpuDetectOptions options)
    {
        long n = Check(frames.Length, width, height, frameCount);
        int r = options.RoiSize / 2, nf = frameCount;
        DetectedCount = 0;
        DetectedRoiSize = options.RoiSize;
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        Upload(frames, n);
        long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
        RunFilter(width, height, nf, options.Filter, options.FilterBoxPx);
        _ctx.Finish();
        long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
        LastUploadSeconds = (t1 - t0) / (double)System.Diagnostics.Stopwatch.Frequency;
        LastFilterSeconds = (t2 - t1) / (double)System.Diagnostics.Stopwatch.Frequency;
        float[] noise = RunNoise(width, height, nf, options.NoiseClip);
        var thr = new float[nf];
        for (int f = 0; f < nf; f++) thr[f] = options.ThresholdFactor * noise[f];
        var spreadThr = (float[])thr.Clone();
        var lowerStd = new float[nf];
        if (options.CameraNoise is { } cam)
        {
            // The floor of FrameDetector: the 10% quantile of the same photon subsample the CPU takes.
            var ps = Gather(_frames!, width, height, nf, out int ns, NoiseEstimator.QuantileSamples);
            var work = new float[ns];
            for (int f = 0; f < nf; f++)
            {
                lowerStd[f] = cam.LowerNoise(NoiseEstimator.QuantileOfSamples(ps.AsSpan(f * ns, ns), work, 0.1), 0);
                thr[f] = Math.Min(spreadThr[f], 0.8f * options.ThresholdFactor * lowerStd[f]);
            }
        }
        _ctx.Ensure(ref _thr, nf * 4L);
        _ctx.Write(_thr!, thr.AsSpan());
        _ctx.Ensure(ref _count, nf * 4L);
        _ctx.Ensure(ref _border, nf * 4L);
        _ctx.Ensure(ref _overl, nf * 4L);
        var count = new int[nf];
        while (true)
        {
            _ctx.Ensure(ref _cand, (long)_cap * nf * 4);
            _ctx.Fill(_count!, 0, nf * 4L);
            _ctx.Launch("ml_find_maxima", n, _filt!, _thr!, width, height, nf, _cap, _count!, _cand!);
            _ctx.Read(_count!, count.AsSpan());
            int max = count.Max();
            if (max <= _cap) break;
            _cap = Math.Max(_cap * 2, max);   // atomics overflowed: retry with room for every maximum
        }
        long slots = (long)_cap * nf;
        _ctx.Ensure(ref _sorted, slots * 4);
        _ctx.Ensure(ref _keep, slots * 4);
        _ctx.Ensure(ref _pre, slots * 4);
        _ctx.Ensure(ref _kept, nf * 4L);
        _ctx.Ensure(ref _offset, (nf + 1) * 4L);
        _ctx.Fill(_border!, 0, nf * 4L);
        _ctx.Fill(_overl!, 0, nf * 4L);
        _ctx.Launch("ml_sort_candidates", slots, _cand!, _count!, _cap, nf, _sorted!);
        _ctx.Launch("ml_classify", slots, _filt!, _sorted!, _count!, _cap, nf, width, height, r, options.RejectOverlapping ? 1 : 0,
                    options.DropAtEdge ? 1 : 0, _keep!, _border!, _overl!);
        _ctx.Launch("ml_prefix_kept", nf, _keep!, _count!, _cap, nf, _pre!, _kept!);
        _ctx.Launch("ml_scan_frames", 1, _kept!, nf, _offset!);
        var offset = new int[nf + 1];
        var edge = new int[nf];
        var overl = new int[nf];
        _ctx.Read(_offset!, offset.AsSpan());
        _ctx.Read(_border!, edge.AsSpan());
        _ctx.Read(_overl!, overl.AsSpan());
        int total = offset[nf];
        var result = new FrameDetection[nf];
        for (int f = 0; f < nf; f++)
        {
            var st = new DetectionStats
            {
                Candidates = offset[f + 1] - offset[f],
                DroppedAtEdge = edge[f],
                Overlapping = overl[f],
                DroppedOverlap = options.RejectOverlapping ? overl[f] : 0,
            };
            result[f] = new FrameDetection(thr[f], noise[f], st);
        }
        if (total > 0)
        {
            _ctx.Ensure(ref _roiFrame, total * 4L);
            _ctx.Ensure(ref _left, total * 4L);
            _ctx.Ensure(ref _top, total * 4L);
            _ctx.Ensure(ref _peak, total * 4L);
            _ctx.Launch("ml_emit", slots, _sorted!, _keep!, _pre!, _count!, _offset!, _cap, nf, width, height, r, _roiFrame!, _left!, _top!, _peak!);
            int nn = options.RoiSize * options.RoiSize;
            _ctx.Ensure(ref _rois, (long)total * nn * 4);
            _ctx.Launch("ml_cut_rois", (long)total * nn, _frames!, width, height, _roiFrame!, _left!, _top!, options.RoiSize, total, _rois!);
            if (_hostFrame.Length < total)
            {
                int cap = Math.Max(total, 2 * _hostFrame.Length);
                _hostFrame = new int[cap]; _hostLeft = new int[cap]; _hostTop = new int[cap]; _hostPeak = new int[cap];
            }
            _ctx.Read(_roiFrame!, _hostFrame.AsSpan(0, total));
            _ctx.Read(_left!, _hostLeft.AsSpan(0, total));
            _ctx.Read(_top!, _hostTop.AsSpan(0, total));
            _ctx.Read(_peak!, _hostPeak.AsSpan(0, total));
            if (options.CameraNoise is { } cam2) total = CameraTest(cam2, frames, width, height, nf, options, total, result, noise, spreadThr, lowerStd);
            _ctx.Finish();
            DetectedCount = total;
        }
        LastDetectSeconds = (System.Diagnostics.Stopwatch.GetTimestamp() - t2) / (double)System.Diagnostics.Stopwatch.Frequency;
        return result;
    }

    private float[] _hostValue = [];

    /// <summary>
    /// The camera-noise test of <see cref="FrameDetector"/> on the emitted ROIs: their maxima's filtered values come back
    /// (ml_peak_values), the local background is taken from the host's copy of the frames, and the ROIs that fail are
    /// removed from the host lists, which go back to the device, where the ROIs are cut again. Returns the ROIs kept.
    /// </summary>
    private int CameraTest(CameraNoiseThreshold cam, ReadOnlySpan<float> frames, int width, int height, int nf, in GpuDetectOptions options,
                           int total, FrameDetection[] result, float[] noise, float[] spreadThr, float[] lowerStd)
    {
        int n = options.RoiSize, px = width * height;
        _ctx.Ensure(ref _values, total * 4L);
        _ctx.Launch("ml_peak_values", total, _filt!, width, height, _roiFrame!, _left!, _top!, _peak!, n, total, _values!);
        if (_hostValue.Length < total) _hostValue = new float[Math.Max(total, 2 * _hostValue.Length)];
        _ctx.Read(_values!, _hostValue.AsSpan(0, total));
        // Per frame, as FrameDetector: sparse frames keep the spread test (the maxima above the spread threshold).
        var above = new int[nf];
        for (int i = 0; i < total; i++) if (_hostValue[i] > spreadThr[_hostFrame[i]]) above[_hostFrame[i]]++;
        double um2 = (double)width * height * options.PixelSizeNm * options.PixelSizeNm * 1e-6;
        var sparse = new bool[nf];
        for (int f = 0; f < nf; f++)
        {
            sparse[f] = cam.Sparse(noise[f], lowerStd[f], above[f], um2);
            if (!sparse[f]) continue;
            var st = result[f].Stats;
            st.SpreadTestFrames = 1;
            result[f] = new FrameDetection(spreadThr[f], noise[f], st);
        }
        int kept = 0;
        for (int i = 0; i < total; i++)
        {
            int f = _hostFrame[i], p = _hostPeak[i], x = _hostLeft[i] + p % n, y = _hostTop[i] + p / n;
            if (sparse[f] ? _hostValue[i] > spreadThr[f] : cam.Passes(_hostValue[i], frames.Slice(f * px, px), width, height, x, y, options.ThresholdFactor, 0, 0))
            {
                _hostFrame[kept] = f; _hostLeft[kept] = _hostLeft[i]; _hostTop[kept] = _hostTop[i]; _hostPeak[kept] = p;
                kept++;
            }
            else
            {
                var r = result[f];
                var st = r.Stats;
                st.Candidates--;
                result[f] = r with { Stats = st };
            }
        }
        if (kept == total || kept == 0) return kept;
        _ctx.Write(_roiFrame!, _hostFrame.AsSpan(0, kept));
        _ctx.Write(_left!, _hostLeft.AsSpan(0, kept));
        _ctx.Write(_top!, _hostTop.AsSpan(0, kept));
        _ctx.Write(_peak!, _hostPeak.AsSpan(0, kept));
        _ctx.Launch("ml_cut_rois", (long)kept * n * n, _frames!, width, height, _roiFrame!, _left!, _top!, options.RoiSize, kept, _rois!);
        return kept;
    }

    private static long Check(int length, int width, int height, int frameCount)
    {
        if (width < 1 || height < 1 || frameCount < 1) throw new ArgumentException($"bad stack shape {width} x {height} x {frameCount}");
        long n = (long)width * height * frameCount;
        if (n > int.MaxValue / 2) throw new ArgumentException($"stack of {n} pixels: pass fewer frames per call");
        if (length < n) throw new ArgumentException($"{length} pixels given for {width} x {height} x {frameCount}");
        return n;
    }

    private void Upload(ReadOnlySpan<float> frames, long n)
    {
        _ctx.Ensure(ref _frames, n * 4);
        _ctx.Write(_frames!, frames[..(int)n]);
    }

    private void RunFilter(int w, int h, int nf, FilterKind filter, int box)
    {
        long n = (long)w * h * nf;
        _ctx.Ensure(ref _filt, n * 4);
        switch (filter)
        {
            case FilterKind.Maliang:
            {
                if (box < 1 || box % 2 == 0 || box > 15) throw new InvalidParameterException("filter-box", $"must be odd, 1 to 15 px, got {box}");
                _ctx.Ensure(ref _tmp, n * 4);
                _ctx.Ensure(ref _tmp2, n * 4);
                int a2 = box * box, ann = (box + 4) * (box + 4) - a2;
                float ca = (float)(1.0 / a2 + 1.0 / ann), cb = (float)(1.0 / ann);   // as MaliangFilter
                _ctx.Launch("ml_box_cols", (long)w * nf, _frames!, _tmp!, _tmp2!, w, h, nf, box, ca, cb);
                _ctx.Launch("ml_box_rows", n, _tmp!, _tmp2!, _filt!, w, h, nf, box, cb, System.Numerics.Vector<float>.Count);
                break;
            }
            case FilterKind.Wavelet:
                _ctx.Ensure(ref _tmp, n * 4);
                _ctx.Ensure(ref _tmp2, n * 4);
                _ctx.Launch("ml_conv_rows", n, _frames!, _tmp!, w, h, nf, 1);
                _ctx.Launch("ml_conv_cols", n, _tmp!, _tmp2!, w, h, nf, 1);      // V1
                _ctx.Launch("ml_conv_rows", n, _tmp2!, _tmp!, w, h, nf, 2);
                _ctx.Launch("ml_conv_cols", n, _tmp!, _filt!, w, h, nf, 2);      // V2
                _ctx.Launch("ml_subtract", n, _tmp2!, _filt!, _filt!, (int)n);    // F = V1 - V2
                break;
            default:
            {
                // NoFilter: F = (I - median of the noise subsample of I) x 1
                var s = Gather(_frames!, w, h, nf, out int ns);
                var med = new float[nf];
                var work = new float[ns];
                for (int f = 0; f < nf; f++)
                {
                    med[f] = NoiseEstimator.MedianOfSamples(s.AsSpan(f * ns, ns), work);
                    if (float.IsNaN(med[f])) med[f] = 0f;
                }
                _ctx.Ensure(ref _med, nf * 4L);
                _ctx.Write(_med!, med.AsSpan());
                _ctx.Launch("ml_sub_median", n, _frames!, _med!, 1f, _filt!, w * h, nf);
                break;
            }
        }
    }

    private float[] Gather(GpuBuffer src, int w, int h, int nf, out int ns, int target = NoiseEstimator.TargetSamples)
    {
        int stride = NoiseEstimator.Stride(w, h, target);
        ns = NoiseEstimator.SampleCount(w, h, target);
        _ctx.Ensure(ref _samples, (long)ns * nf * 4);
        _ctx.Launch("ml_gather", (long)ns * nf, src, _samples!, w * h, nf, ns, stride);
        var s = new float[(long)ns * nf];
        _ctx.Read(_samples!, s.AsSpan());
        return s;
    }

    private float[] RunNoise(int w, int h, int nf, bool clip = true)
    {
        var s = Gather(_filt!, w, h, nf, out int ns);
        var noise = new float[nf];
        var work = new float[ns];
        for (int f = 0; f < nf; f++) noise[f] = NoiseEstimator.RobustStdOfSamples(s.AsSpan(f * ns, ns), work, clip);
        return noise;
    }

    public void Dispose()
    {
        foreach (var b in Buffers()) b?.Dispose();
        if (_ownsContext) _ctx.Dispose();
    }
}
