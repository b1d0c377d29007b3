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
/// A maximum within one PSF sigma of an emitter is that emitter's misfit, not a new one. Per thread; frame-sized buffers
/// are reused, nothing is allocated per frame once they fit.
/// </summary>
public sealed class ResidualSearch
{
    private readonly IFrameFilter _filter;
    private readonly Detector _detector = new();
    private readonly CameraNoiseThreshold _noise;
    private readonly GroupFit _psf;
    private readonly float _factor, _scale, _minSep2;
    private readonly List<Candidate> _maxima = new();
    private float[] _residual = [], _filtered = [];
    private int _n;

    public ResidualSearch(LocalizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _filter = FrameFilters.Create(settings);
        _noise = new CameraNoiseThreshold(_filter, settings.PsfSigmaPx, settings.EmGain, settings.NoiseScale);
        _psf = new GroupFit((float)settings.PsfSigmaPx);
        _factor = (float)settings.Threshold;
        _scale = (float)MaLiang.Engine.Fit.MultiEmitter.ResidualPasses.Env("ML_RESF", 1.0);
        _minSep2 = (float)(settings.PsfSigmaPx * settings.PsfSigmaPx * Math.Pow(MaLiang.Engine.Fit.MultiEmitter.ResidualPasses.Env("ML_SEP", 1.0), 2));
    }

    /// <summary>The last frame's residual (frame minus the emitters' light), valid until the next <see cref="Find"/>.</summary>
    public ReadOnlySpan<float> Residual => _residual.AsSpan(0, _n);

    /// <summary>
    /// Writes the residual's significant maxima to <paramref name="seeds"/> (pixel coordinates, raster order) and returns
    /// how many. <paramref name="emitters"/> are in frame coordinates (only kept ones are subtracted);
    /// <paramref name="searchThreshold"/> is the frame's detection threshold (the maxima floor of the camera test, or the
    /// spread threshold where <paramref name="spreadTest"/>); <paramref name="readNoiseMedian"/> and
    /// <paramref name="excess"/> (empty without an sCMOS map) as in <see cref="FrameDetector"/>.
    /// </summary>
    public int Find(ReadOnlySpan<float> photons, int w, int h, ReadOnlySpan<FitResult> emitters, float searchThreshold, bool spreadTest,
                    float readNoiseMedian, ReadOnlySpan<float> excess, List<Candidate> seeds)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        seeds.Clear();
        int n = w * h;
        if (photons.Length < n) throw new ArgumentException($"frame holds {photons.Length} pixels, needs {n}", nameof(photons));
        if (_residual.Length < n) { _residual = new float[n]; _filtered = new float[n]; }
        _n = n;
        var res = _residual.AsSpan(0, n);
        photons[..n].CopyTo(res);
        int subtracted = 0;
        foreach (ref readonly var e in emitters)
        {
            if (!e.Kept) continue;
            _psf.Render(res, w, h, e.X, e.Y, e.Photons, -1f);
            subtracted++;
        }
        // Nothing subtracted: the residual is the frame, which the detection has searched with the same test.
        if (subtracted == 0) return 0;
        var filtered = _filtered.AsSpan(0, n);
        _filter.Apply(res, filtered, w, h);
        _detector.Detect(filtered, w, h, _scale * searchThreshold, 0, false, _maxima);
        bool camera = !spreadTest && _noise.Applies;
        float spreadStd = searchThreshold / Math.Max(_factor, 1e-12f);
        foreach (var c in _maxima)
        {
            int i = c.Y * w + c.X;
            float m = Math.Max(photons[i] - res[i], 0), ex = excess.IsEmpty ? 0 : excess[i];
            float b = _noise.LocalBackground(photons, w, h, c.X, c.Y, readNoiseMedian);
            float limit;
            if (camera) limit = _scale * _factor * MathF.Sqrt(_noise.Variance(b + m, readNoiseMedian, ex));
            else
            {
                // The frame's one threshold, scaled by the extra shot noise of the subtracted light; with an sCMOS map
                // also by the pixel's read-noise excess, as ReadNoiseThreshold judges first-pass candidates.
                float ratio = _noise.Variance(b + m, readNoiseMedian, 0) / _noise.Variance(b, readNoiseMedian, 0);
                if (!excess.IsEmpty) ratio *= Math.Max(1 + ex / (spreadStd * spreadStd), 0.25f);
                limit = _scale * searchThreshold * MathF.Sqrt(ratio);
            }
            if (!(c.Value > limit)) continue;
            if (NearEmitter(emitters, c.X + 0.5f, c.Y + 0.5f)) continue;
            seeds.Add(c);
        }
        return seeds.Count;
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
