using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MaLiang.Engine.Camera;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.Backends;
using MaLiang.Engine.Fit.Backends.Gpu;
using MaLiang.Engine.IO;

namespace MaLiang.Engine.Pipeline;

/// <summary>The per-thread half of the pipeline: a frame's detection, single fits and the fit stage after them
/// (<see cref="Worker"/>), and the per-frame outputs merged in frame order (<see cref="FrameOutput"/>).</summary>
public sealed partial class Localizer
{
    /// <summary>One frame's ROIs, localizations and counts.</summary>
    private sealed class FrameOutput(int roiSize)
    {
        public readonly RoiBatch Batch = new(roiSize, 128);
        public Localization[] Locs = new Localization[64];
        public int LocCount, FrameIndex;
        public DetectionStats Stats;
        /// <summary>With a device fit after CPU detection and the neighbour refit on: the frame in photons and its
        /// detection threshold, kept for the refit's residual search (the worker's frame buffer is reused meanwhile).</summary>
        public float[] Photons = [];
        public int Width, Height;
        public float Threshold;
        /// <summary>3D: the calibration's refractive-index factor (reported z per stage z); NaN in 2D (z = 0, flag bit 1 clear).</summary>
        public float ZFactor = float.NaN;
        public long OutsideZ;
        public long FitFailed, LeftRoi, LowSnr, ReadTicks, DenoiseTicks, DetectTicks, FitTicks;
        /// <summary>Groups fitted by the multi-emitter stage, by size (index 1..12).</summary>
        public readonly long[] GroupsBySize = new long[MaLiang.Engine.Fit.MultiEmitter.GroupFit.MaxEmitters + 1];

        public void Reset()
        {
            Array.Clear(GroupsBySize);
            Batch.Clear(); LocCount = 0; Stats = default; OutsideZ = 0; FitFailed = LeftRoi = LowSnr = ReadTicks = DenoiseTicks = DetectTicks = FitTicks = 0;
        }

        /// <summary>Turns kept fits into localizations in frame coordinates; counts the dropped ones.</summary>
        public void Collect(ReadOnlySpan<FitResult> results, ReadOnlySpan<int> left, ReadOnlySpan<int> top, float minSnr)
        {
            if (Locs.Length < results.Length) Locs = new Localization[Math.Max(results.Length, 2 * Locs.Length)];
            int k = 0;
            for (int i = 0; i < results.Length; i++)
            {
                ref readonly var f = ref results[i];
                if (f.Status == FitStatus.Failed) { FitFailed++; continue; }
                if (f.Status == FitStatus.LeftRoi) { LeftRoi++; continue; }
                if (f.Status == FitStatus.OutsideZRange) { OutsideZ++; continue; }
                // Members of a joint fit passed the likelihood ratio and their own SNR test (MultiEmitterRefiner): their
                // joint photon CRLB grows with their neighbours' overlap, not with any doubt that they are there.
                if (f.GroupSize < 2 && !(f.Photons >= minSnr * f.CrlbPhotons)) { LowSnr++; continue; }
                Locs[k++] = new Localization
                {
                    Frame = FrameIndex,
                    X = (left.IsEmpty ? 0 : left[i]) + f.X, Y = (top.IsEmpty ? 0 : top[i]) + f.Y,
                    Photons = f.Photons, Background = f.Background, Sigma = f.Sigma,
                    UncertaintyX = f.CrlbX, UncertaintyY = f.CrlbY, UncertaintyPhotons = f.CrlbPhotons,
                    UncertaintyBackground = f.CrlbBackground, UncertaintySigma = f.CrlbSigma,
                    LogLikelihood = f.LogLikelihood, Llr = f.Llr, Iterations = f.Iterations, Detections = 1,
                    Flags = (f.Status == FitStatus.Converged ? Localization.FlagConverged : 0) | (float.IsNaN(ZFactor) ? 0 : Localization.FlagHasZ),
                    Z = float.IsNaN(ZFactor) ? 0f : f.Z * ZFactor, UncertaintyZ = float.IsNaN(ZFactor) ? 0f : f.CrlbZ * ZFactor,
                    FittedTogether = Math.Max(1, f.GroupSize),
                };
            }
            LocCount = k;
        }
    }

    /// <summary>One thread's frame buffers, filter, detector and fitter. No allocation per frame once warmed up.</summary>
    private sealed class Worker
    {
        private readonly LocalizerSettings _s;
        private readonly FrameDetector _detect;
        private readonly List<Candidate> _candidates = new();
        private readonly CpuFitBackend _fit = new(1);
        private float[] _photons = Array.Empty<float>();
        private FitResult[] _fitResults = Array.Empty<FitResult>();

        private MaLiang.Engine.Fit.MultiEmitter.MultiEmitterRefiner? _multi;
        private MaLiang.Engine.Fit.MultiEmitter.ResidualPasses? _residual;
        private NeighbourRefit? _neighbours;

        /// <summary>The fit stage after the single fits of a frame: the multi-emitter stage (default) and its whole-frame
        /// residual passes, or the single-emitter neighbour refit with its residual search; nothing with
        /// <see cref="LocalizerSettings.RejectOverlapping"/>. Results in frame coordinates when <paramref name="frameCoords"/>,
        /// else in the ROIs' (the batch's Left/Top). <paramref name="threshold"/> and <paramref name="spreadTest"/>: the
        /// frame's detection threshold and whether its candidates were judged by the spread test.</summary>
        public ReadOnlySpan<FitResult> AfterSingleFits(ReadOnlySpan<float> photons, ReadOnlySpan<float> readNoise, int w, int h, float threshold,
            bool spreadTest, Localizer owner, RoiBatch batch, ReadOnlySpan<FitResult> fits, in FitOptions options, out int added, out bool frameCoords,
            long[]? groupsBySize)
        {
            added = 0; frameCoords = false;
            if (_s.RejectOverlapping) return fits;
            if (!_s.MultiEmitter) return (_neighbours ??= new NeighbourRefit(_s)).RefineFrame(photons, readNoise, w, h, threshold, batch, fits, options, out added);
            _multi ??= new MaLiang.Engine.Fit.MultiEmitter.MultiEmitterRefiner(MaLiang.Engine.Fit.MultiEmitter.MultiEmitterOptions.From(_s), batch.RoiSize);
            var n = batch.Count;
            var res = _multi.Refine(photons, readNoise, w, h, batch.RoiSize, fits[..n], batch.Left.AsSpan(0, n), batch.Top.AsSpan(0, n), batch.Peak.AsSpan(0, n));
            added = _multi.Added;
            frameCoords = true;
            var groups = _multi.GroupsBySize;
            if (_s.ResidualSearch)
            {
                _residual ??= new MaLiang.Engine.Fit.MultiEmitter.ResidualPasses(_s);
                res = _residual.Run(_multi, res, photons, readNoise, w, h, batch.RoiSize, threshold, spreadTest, owner._readNoiseMedian, owner._readNoiseExcess);
                added += _residual.Added;
                groups = _residual.GroupsBySize;
            }
            if (groupsBySize != null) for (int i = 0; i < groupsBySize.Length; i++) groupsBySize[i] += groups[i];
            return res;
        }

        /// <summary>Whether a frame's candidates were judged by the spread test (a sparse frame, or the camera test off).</summary>
        public bool SpreadTest(in DetectionStats stats) => stats.SpreadTestFrames > 0 || _detect.CameraNoise is null;

        public Worker(LocalizerSettings s)
        {
            _s = s;
            _detect = new FrameDetector(s);
        }

        public void Ensure(int width, int height)
        {
            int px = width * height;
            if (_photons.Length < px) _photons = new float[px];
        }

        public FrameOutput Frame(IFrameSource source, int sourceIndex, int frameIndex, Localizer owner)
        {
            var o = owner.NewOutput();
            o.FrameIndex = frameIndex;
            int w = source.Width, h = source.Height, px = w * h;
            var photons = _photons.AsSpan(0, px);
            long t0 = Stopwatch.GetTimestamp();
            if (owner.ReadPhotons(source, sourceIndex, frameIndex, photons)) Interlocked.Increment(ref owner._blankFrames);
            long t1 = Stopwatch.GetTimestamp();
            // Filter, robust noise, threshold and maxima: the one FrameDetector (the tests' reference too).
            var before = _detect.Times;
            _detect.ReadNoiseExcess = owner._readNoiseExcess;
            _detect.ReadNoiseMedian = owner._readNoiseMedian;
            var det = _detect.Detect(photons, w, h, _candidates);
            o.Stats = det.Stats;
            var after = _detect.Times;
            var readNoise = owner._camera.ReadNoiseMap.AsSpan();
            foreach (var c in _candidates) o.Batch.AddAround(photons, w, h, frameIndex, c.X, c.Y, readNoise);
            long t3 = Stopwatch.GetTimestamp();
            o.ReadTicks = t1 - t0;
            o.DenoiseTicks = after.FilterTicks - before.FilterTicks;
            o.DetectTicks = (t3 - t1) - o.DenoiseTicks;
            if (!owner._cpuFit && !_s.RejectOverlapping)
            {
                if (o.Photons.Length < px) o.Photons = new float[px];
                photons.CopyTo(o.Photons);
                (o.Width, o.Height, o.Threshold) = (w, h, det.Threshold);
            }
            if (owner._cpuFit)
            {
                if (_fitResults.Length < o.Batch.Count) _fitResults = new FitResult[Math.Max(o.Batch.Count, 2 * _fitResults.Length)];
                _fit.Fit(o.Batch, owner._fitOptions, _fitResults);
                var fits = AfterSingleFits(photons, readNoise, w, h, det.Threshold, SpreadTest(det.Stats), owner,
                                           o.Batch, _fitResults.AsSpan(0, o.Batch.Count), owner._fitOptions,
                                           out int added, out bool frameCoords, o.GroupsBySize);
                o.Stats.Candidates += added;
                o.Collect(fits, frameCoords ? default : o.Batch.Left, frameCoords ? default : o.Batch.Top, owner.MinSnr);
                o.FitTicks = Stopwatch.GetTimestamp() - t3;
            }
            return o;
        }
    }
}
