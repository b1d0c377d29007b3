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
        /// <summary>The multi-emitter stage's state for this frame while its chunk is refined (RefineChunk).</summary>
        public MaLiang.Engine.Fit.MultiEmitter.MultiEmitterRefiner? Refiner;
        /// <summary>Set by BeginRefine while the frame waits for its chunk's rounds.</summary>
        public bool Refining;
        /// <summary>Whether the frame's candidates were judged by the spread test (for the residual passes).</summary>
        public bool SpreadTest;
        /// <summary>The whole-frame residual passes (<see cref="LocalizerSettings.ResidualSearch"/>), made on first use.</summary>
        public MaLiang.Engine.Fit.MultiEmitter.ResidualPasses? Residual;
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
            Refining = false;
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

        private NeighbourRefit? _neighbours;
        private CpuGroupFitter? _groupFit;

        /// <summary>The fit stage after the single fits of a frame without the multi-emitter stage (which runs over the
        /// chunk: Localizer.Refine.cs): the single-emitter neighbour refit with its residual search (--single-emitter), or
        /// nothing with <see cref="LocalizerSettings.RejectOverlapping"/>. Results in the ROIs' coordinates.</summary>
        public ReadOnlySpan<FitResult> AfterSingleFits(ReadOnlySpan<float> photons, ReadOnlySpan<float> readNoise, int w, int h, float threshold,
            RoiBatch batch, ReadOnlySpan<FitResult> fits, in FitOptions options, out int added)
        {
            added = 0;
            if (_s.RejectOverlapping) return fits;
            return (_neighbours ??= new NeighbourRefit(_s)).RefineFrame(photons, readNoise, w, h, threshold, batch, fits, options, out added);
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
                (o.Width, o.Height, o.Threshold, o.SpreadTest) = (w, h, det.Threshold, SpreadTest(det.Stats));
            }
            if (owner._cpuFit && owner.RefinesInChunks)
            {
                // The multi-emitter stage runs over the whole chunk after every frame's single fits (RefineChunk), so
                // the frame, its fits and their cost stay with the output.
                if (_fitResults.Length < o.Batch.Count) _fitResults = new FitResult[Math.Max(o.Batch.Count, 2 * _fitResults.Length)];
                _fit.Fit(o.Batch, owner._fitOptions, _fitResults);
                (o.Threshold, o.SpreadTest) = (det.Threshold, SpreadTest(det.Stats));
                if (_groupFit is null)
                {
                    var mo = MaLiang.Engine.Fit.MultiEmitter.MultiEmitterOptions.From(_s);
                    _groupFit = new CpuGroupFitter(mo.PsfSigmaPx, mo.MaxIterations, mo.Tolerance);
                }
                owner.BeginRefine(o, photons, w, h, _fitResults.AsSpan(0, o.Batch.Count), keepPhotons: true, _groupFit);
                o.FitTicks += Stopwatch.GetTimestamp() - t3;
            }
            else if (owner._cpuFit)
            {
                if (_fitResults.Length < o.Batch.Count) _fitResults = new FitResult[Math.Max(o.Batch.Count, 2 * _fitResults.Length)];
                _fit.Fit(o.Batch, owner._fitOptions, _fitResults);
                var fits = AfterSingleFits(photons, readNoise, w, h, det.Threshold, o.Batch, _fitResults.AsSpan(0, o.Batch.Count), owner._fitOptions, out int added);
                o.Stats.Candidates += added;
                o.Collect(fits, o.Batch.Left, o.Batch.Top, owner.MinSnr);
                o.FitTicks = Stopwatch.GetTimestamp() - t3;
            }
            return o;
        }
    }
}
