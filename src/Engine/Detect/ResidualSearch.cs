using MaLiang.Engine.Denoise;
using MaLiang.Engine.Fit;
using MaLiang.Engine.Fit.MultiEmitter;

namespace MaLiang.Engine.Detect;

/// <summary>
/// Detection on the residual of a frame (DESIGN.md "Crowded frames", residual re-detection): the frame minus every
/// fitted emitter's light (<see cref="GroupFit.Render"/>, the one PSF implementation) is filtered with the detection's
/// filter and its local maxima (<see cref="Detector"/>) are judged by the detection's test at each maximum's noise,
/// which there includes the subtracted emitters' shot noise:
/// <list type="bullet">
/// <item>camera-noise frames: F &gt; threshold x sqrt(k (sum_k K_k^2 (E (b + m) + gamma_med) + e_i)), the test of
///   <see cref="CameraNoiseThreshold"/> with the local background b raised by m, the subtracted model's photons at the
///   maximum (the data there are Poisson around b + m, whatever part of it the fit explained);</item>
/// <item>spread-test frames (sparse, or the camera test off): F &gt; the frame's spread threshold x
///   sqrt(Var(b + m) / Var(b)), the same scaling of the frame's one threshold.</item>
/// </list>
/// A maximum within one PSF sigma of an emitter is that emitter's misfit, not a new one. Only the zones of emitters whose
/// fit leaves light unexplained are searched (<see cref="Searched"/>, <see cref="Find"/>). Per thread; buffers are
/// reused, nothing is allocated per frame once they fit.
/// </summary>
public sealed class ResidualSearch
{
    private readonly IFrameFilter _filter;
    private readonly Detector _detector = new();
    private readonly CameraNoiseThreshold _noise;
    private readonly GroupFit _psf;
    private readonly float _factor, _minSep2;
    private readonly List<Candidate> _maxima = new();
    private float[] _residual = [], _filtered = [], _tile = [], _tileFiltered = [];
    private readonly int _zone, _pad;
    private readonly float _renderReach, _gateLlr;

    public ResidualSearch(LocalizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _filter = FrameFilters.Create(settings);
        _noise = new CameraNoiseThreshold(_filter, settings.PsfSigmaPx, settings.EmGain, settings.NoiseScale);
        _psf = new GroupFit((float)settings.PsfSigmaPx);
        _factor = (float)settings.Threshold;
        _zone = (int)Math.Ceiling(3 * settings.PsfSigmaPx);
        // A tile holds the zone, the filter's reach (its filtered values there are the whole frame's) and one more pixel
        // (a maximum is judged against its 8 neighbours).
        int reach = 0;
        foreach (var t in ReadNoiseThreshold.Taps(_filter)) reach = Math.Max(reach, Math.Max(Math.Abs(t.Dx), Math.Abs(t.Dy)));
        _pad = reach + 1;
        _renderReach = (float)Math.Ceiling(4 * settings.PsfSigmaPx) + 1;   // GroupFit.Render's square
        _gateLlr = (float)(settings.NoiseScale * ModelSelection.ChiSquareUpper(0.01, settings.RoiSize * settings.RoiSize - 5));
        _minSep2 = (float)(settings.PsfSigmaPx * settings.PsfSigmaPx);
    }

    /// <summary>
    /// Writes the residual's significant maxima to <paramref name="seeds"/> (pixel coordinates) and returns how many.
    /// <paramref name="emitters"/> are in frame coordinates (only kept ones are subtracted); <paramref name="searchThreshold"/>
    /// is the frame's detection threshold (the maxima floor of the camera test, or the spread threshold where
    /// <paramref name="spreadTest"/>); <paramref name="readNoiseMedian"/> and <paramref name="excess"/> (empty without an
    /// sCMOS map) as in <see cref="FrameDetector"/>. Only maxima within ceil(3 sigma) (Chebyshev) of an emitter's pixel are
    /// searched: farther out the residual is the frame, which the detection searched with the same test. Where those zones
    /// cover less than half the frame, each is searched in its own tile (the zone plus the filter's reach, with every emitter
    /// that reaches it subtracted), so a sparse frame costs a small part of a frame's filtering; else the whole frame.
    /// </summary>
    public int Find(ReadOnlySpan<float> photons, int w, int h, ReadOnlySpan<FitResult> emitters, float searchThreshold, bool spreadTest,
                    float readNoiseMedian, ReadOnlySpan<float> excess, List<Candidate> seeds)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        seeds.Clear();
        int n = w * h;
        if (photons.Length < n) throw new ArgumentException($"frame holds {photons.Length} pixels, needs {n}", nameof(photons));
        int searched = 0;
        foreach (ref readonly var e in emitters) if (Searched(e)) searched++;
        // No zone to search: every emitter's fit explains its pixels (and the rest of the frame was searched by the detection).
        if (searched == 0) return 0;
        var test = new Test(this, photons, w, h, searchThreshold, !spreadTest && _noise.Applies, readNoiseMedian, excess);
        int side = 2 * (_zone + _pad) + 1;
        // Tiles only for a filter that removes a flat background (a tile's own median would differ from the frame's).
        if (_noise.Applies && (long)searched * side * side < n / 2)
        {
            if (_tile.Length < side * side) { _tile = new float[side * side]; _tileFiltered = new float[side * side]; }
            foreach (ref readonly var e in emitters)
            {
                if (!Searched(e)) continue;
                int cx = (int)MathF.Floor(e.X), cy = (int)MathF.Floor(e.Y);
                int x0 = Math.Max(0, cx - _zone - _pad), x1 = Math.Min(w, cx + _zone + _pad + 1);
                int y0 = Math.Max(0, cy - _zone - _pad), y1 = Math.Min(h, cy + _zone + _pad + 1);
                int tw = x1 - x0, th = y1 - y0;
                if (tw <= 0 || th <= 0) continue;
                var tile = _tile.AsSpan(0, tw * th);
                for (int r = 0; r < th; r++) photons.Slice((y0 + r) * w + x0, tw).CopyTo(tile.Slice(r * tw, tw));
                foreach (ref readonly var o in emitters)
                {
                    if (!o.Kept || o.X < x0 - _renderReach || o.X > x1 + _renderReach || o.Y < y0 - _renderReach || o.Y > y1 + _renderReach) continue;
                    _psf.Render(tile, tw, th, o.X - x0, o.Y - y0, o.Photons, -1f);
                }
                var filtered = _tileFiltered.AsSpan(0, tw * th);
                _filter.Apply(tile, filtered, tw, th);
                _detector.Detect(filtered, tw, th, searchThreshold, 0, false, _maxima);
                foreach (var c in _maxima)
                {
                    int fx = x0 + c.X, fy = y0 + c.Y;
                    if (Math.Abs(fx - cx) > _zone || Math.Abs(fy - cy) > _zone || Contains(seeds, fx, fy)) continue;
                    test.Judge(emitters, new Candidate(fx, fy, c.Value), tile[c.Y * tw + c.X], seeds);
                }
            }
            return seeds.Count;
        }
        if (_residual.Length < n) { _residual = new float[n]; _filtered = new float[n]; }
        var res = _residual.AsSpan(0, n);
        photons[..n].CopyTo(res);
        foreach (ref readonly var e in emitters) if (e.Kept) _psf.Render(res, w, h, e.X, e.Y, e.Photons, -1f);
        var whole = _filtered.AsSpan(0, n);
        _filter.Apply(res, whole, w, h);
        _detector.Detect(whole, w, h, searchThreshold, 0, false, _maxima);
        foreach (var c in _maxima)
            if (InZone(emitters, c.X, c.Y)) test.Judge(emitters, c, res[c.Y * w + c.X], seeds);
        return seeds.Count;
    }

    /// <summary>The per-maximum test (class remarks) for one frame.</summary>
    private readonly ref struct Test(ResidualSearch owner, ReadOnlySpan<float> photons, int w, int h, float searchThreshold, bool camera,
                                     float readNoiseMedian, ReadOnlySpan<float> excess)
    {
        private readonly ReadOnlySpan<float> _photons = photons, _excess = excess;

        /// <summary>Adds <paramref name="c"/> (frame pixel, filtered residual value; <paramref name="residual"/>: the residual
        /// photons there) to <paramref name="seeds"/> when it passes and is not within one sigma of an emitter.</summary>
        public void Judge(ReadOnlySpan<FitResult> emitters, Candidate c, float residual, List<Candidate> seeds)
        {
            var o = owner;
            int i = c.Y * w + c.X;
            float m = Math.Max(_photons[i] - residual, 0), ex = _excess.IsEmpty ? 0 : _excess[i];
            float b = o._noise.LocalBackground(_photons, w, h, c.X, c.Y, readNoiseMedian);
            float limit;
            if (camera) limit = o._factor * MathF.Sqrt(o._noise.Variance(b + m, readNoiseMedian, ex));
            else
            {
                // The frame's one threshold, scaled by the extra shot noise of the subtracted light; with an sCMOS map
                // also by the pixel's read-noise excess, as ReadNoiseThreshold judges first-pass candidates.
                float ratio = o._noise.Variance(b + m, readNoiseMedian, 0) / o._noise.Variance(b, readNoiseMedian, 0);
                float spreadStd = searchThreshold / Math.Max(o._factor, 1e-12f);
                if (!_excess.IsEmpty) ratio *= Math.Max(1 + ex / (spreadStd * spreadStd), 0.25f);
                limit = searchThreshold * MathF.Sqrt(ratio);
            }
            if (!(c.Value > limit) || o.NearEmitter(emitters, c.X + 0.5f, c.Y + 0.5f)) return;
            seeds.Add(c);
        }
    }

    private bool InZone(ReadOnlySpan<FitResult> emitters, int x, int y)
    {
        foreach (ref readonly var e in emitters)
            if (Searched(e) && Math.Abs((int)MathF.Floor(e.X) - x) <= _zone && Math.Abs((int)MathF.Floor(e.Y) - y) <= _zone) return true;
        return false;
    }

    /// <summary>
    /// Whether an emitter's zone is searched: a member of a joint fit, or a single fit whose goodness of fit (LLR over its
    /// ROI) is above chi-square's 99% point with n^2 - 5 degrees of freedom (n the ROI size). A light the test would find
    /// near an emitter raises its fit's LLR; measured on the density sweep, searching every zone instead found the same
    /// emitters (Jaccard within 0.0003 at 0.5-8 per um^2), and in a sparse frame, where nearly every fit is good, the
    /// search costs about nothing (about 1 zone of 100 in the 512 x 512 benchmark frame).
    /// </summary>
    private bool Searched(in FitResult e) => e.Kept && (e.GroupSize > 1 || !(e.Llr <= _gateLlr));

    private static bool Contains(List<Candidate> seeds, int x, int y)
    {
        foreach (var s in seeds) if (s.X == x && s.Y == y) return true;
        return false;
    }

    private bool NearEmitter(ReadOnlySpan<FitResult> emitters, float x, float y)
    {
        foreach (ref readonly var e in emitters)
        {
            if (!e.Kept) continue;
            float dx = e.X - x, dy = e.Y - y;
            if (dx * dx + dy * dy < _minSep2) return true;
        }
        return false;
    }
}
