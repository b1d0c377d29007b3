using MaLiang.Engine.Detect;

namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>
/// The whole-frame residual passes after the multi-emitter stage (DESIGN.md "Crowded frames", item 5): search the frame
/// minus every fitted emitter with the detection's test (<see cref="ResidualSearch"/>), give the maxima found as seeds,
/// with the emitters within 5 PSF sigmas of them, to the multi-emitter stage (<see cref="MultiEmitterRefiner.Refine"/> in
/// frame coordinates) on the frame minus every other emitter, and again, until a pass adds no emitter or
/// <see cref="MaxPasses"/> have run. A pass that adds none is undone, so a frame without a significant residual keeps its
/// emitters exactly and costs one search. One instance per worker thread; buffers are reused.
/// </summary>
public sealed class ResidualPasses
{
    /// <summary>Most passes per frame.</summary>
    public const int MaxPasses = 3;

    private readonly ResidualSearch _search;
    private readonly List<Candidate> _seeds = new();
    private readonly GroupFit _psf;
    private readonly float _reach;
    private FitResult[] _in = [], _out = [];
    private int[] _left = [], _top = [], _peak = [];
    private bool[] _local = [];
    private float[] _frame = [];

    /// <summary>Emitters the last <see cref="Run"/> added (net: its output less its input).</summary>
    public int Added { get; private set; }
    /// <summary>Seeds the last <see cref="Run"/> gave to the refiner.</summary>
    public int Seeds { get; private set; }
    /// <summary>Refits the last <see cref="Run"/> kept.</summary>
    public int Passes { get; private set; }
    /// <summary>The last <see cref="Run"/>'s output counted as <see cref="MultiEmitterRefiner.GroupsBySize"/> is.</summary>
    public long[] GroupsBySize { get; } = new long[GroupFit.MaxEmitters + 1];

    public ResidualPasses(LocalizerSettings settings)
    {
        _search = new ResidualSearch(settings);
        _psf = new GroupFit((float)settings.PsfSigmaPx);
        // Emitters within two link distances (2 x 2.5 sigma) of a seed can join its group; farther ones are held fixed.
        _reach = (float)(5 * settings.PsfSigmaPx);
    }

    /// <summary>
    /// Runs the passes on one frame's refined <paramref name="emitters"/> (frame coordinates, as
    /// <see cref="MultiEmitterRefiner.Refine"/> returned them). Returns the emitters (this instance's buffer, valid until
    /// the next call). <paramref name="threshold"/> and <paramref name="spreadTest"/>: the frame's detection threshold and
    /// whether the frame was judged by the spread test (<see cref="ResidualSearch.Find"/>).
    /// </summary>
    public ReadOnlySpan<FitResult> Run(MultiEmitterRefiner refiner, ReadOnlySpan<FitResult> emitters, ReadOnlySpan<float> photons,
        ReadOnlySpan<float> gamma, int w, int h, int roiSize, float threshold, bool spreadTest, float readNoiseMedian, ReadOnlySpan<float> excess)
    {
        ArgumentNullException.ThrowIfNull(refiner);
        Added = Seeds = Passes = 0;
        int m = emitters.Length;
        Grow(ref _out, m);
        emitters.CopyTo(_out);
        // A seed is handed over as a ROI around its maximum, which must lie inside the frame.
        for (int pass = 0; pass < MaxPasses && w >= roiSize && h >= roiSize; pass++)
        {
            var current = _out.AsSpan(0, m);
            int s = _search.Find(photons, w, h, current, threshold, spreadTest, readNoiseMedian, excess, _seeds);
            if (s == 0) break;
            // The emitters near a seed are refitted with it; every other emitter stays as it is, its light taken out of the
            // data the refiner sees (Gauss-Seidel: held fixed at its estimate). Refitting the whole frame again would redo
            // the multi-emitter stage for a few seeds and, measured, loses emitters it had.
            int n = w * h;
            Grow(ref _frame, n); Grow(ref _local, m);
            var data = _frame.AsSpan(0, n);
            photons[..n].CopyTo(data);
            int near = 0, far = 0;
            float reach2 = _reach * _reach;
            for (int i = 0; i < m; i++)
            {
                ref readonly var e = ref current[i];
                bool local = false;
                if (e.Kept)
                    for (int j = 0; j < s && !local; j++)
                    {
                        float dx = e.X - (_seeds[j].X + 0.5f), dy = e.Y - (_seeds[j].Y + 0.5f);
                        local = dx * dx + dy * dy < reach2;
                    }
                _local[i] = local;
                if (local) near++;
                else
                {
                    far++;
                    if (e.Kept) _psf.Render(data, w, h, e.X, e.Y, e.Photons, -1f);
                }
            }
            int total = near + s;
            Grow(ref _in, total); Grow(ref _left, total); Grow(ref _top, total); Grow(ref _peak, total);
            for (int i = 0, q = 0; i < m; i++)
                if (_local[i]) { _in[q] = current[i]; _left[q] = _top[q] = _peak[q] = 0; q++; }
            int r = roiSize / 2;
            for (int j = 0; j < s; j++)
            {
                var c = _seeds[j];
                int left = Math.Clamp(c.X - r, 0, w - roiSize), top = Math.Clamp(c.Y - r, 0, h - roiSize);
                _in[near + j] = new FitResult { Status = FitStatus.Failed };
                _left[near + j] = left; _top[near + j] = top; _peak[near + j] = (c.Y - top) * roiSize + (c.X - left);
            }
            var res = refiner.Refine(data, gamma, w, h, roiSize, _in.AsSpan(0, total), _left.AsSpan(0, total), _top.AsSpan(0, total), _peak.AsSpan(0, total));
            Seeds += s;
            // A pass that adds no emitter is dropped: the emitters before it stand, and so does the search's verdict.
            if (res.Length <= near) break;
            // The far emitters first (in order), then the refitted ones.
            int kept = 0;
            for (int i = 0; i < m; i++) if (!_local[i]) _out[kept++] = _out[i];
            Grow(ref _out, far + res.Length);
            var refitted = _out.AsSpan(far, res.Length);
            res.CopyTo(refitted);
            KeepGroupSizes(refitted, _in.AsSpan(0, near));
            Added += res.Length - near;
            m = far + res.Length;
            Passes++;
        }
        Array.Clear(GroupsBySize);
        var output = _out.AsSpan(0, m);
        MultiEmitterRefiner.CountGroups(output, GroupsBySize);
        return output;
    }

    /// <summary>
    /// Refine marks every emitter it was given as a group of one and overwrites only those it refits; an emitter it left
    /// alone (same position and photons, bit for bit) keeps the group size it was fitted with (the output's
    /// fitted_together, and the SNR filter that group members skip). Refine keeps its input's order for those, so one
    /// forward walk finds them.
    /// </summary>
    private static void KeepGroupSizes(Span<FitResult> output, ReadOnlySpan<FitResult> input)
    {
        int from = 0;
        for (int j = 0; j < output.Length && from < input.Length; j++)
        {
            ref var o = ref output[j];
            if (o.GroupSize > 1) continue;
            for (int i = from; i < input.Length; i++)
            {
                if (input[i].X != o.X || input[i].Y != o.Y || input[i].Photons != o.Photons) continue;
                o.GroupSize = input[i].GroupSize;
                from = i + 1;
                break;
            }
        }
    }

    private static void Grow<T>(ref T[] a, int n)
    {
        if (a.Length < n) Array.Resize(ref a, Math.Max(n, 2 * a.Length));   // keeps the contents: _out grows while it holds emitters
    }
}
