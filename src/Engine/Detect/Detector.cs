using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Detect;

/// <summary>A local maximum of the filtered frame: pixel column X, row Y (its centre is at X + 0.5, Y + 0.5
/// in DESIGN.md coordinates) and the filtered value there.</summary>
public struct Candidate
{
    public int X, Y;
    public float Value;
    /// <summary>Within the ROI radius of a brighter local maximum (only ever true in the output when
    /// overlapping candidates are kept).</summary>
    public bool Overlapping;

    public Candidate(int x, int y, float value, bool overlapping = false) { X = x; Y = y; Value = value; Overlapping = overlapping; }
    public override readonly string ToString() => $"({X}, {Y}) {Value}{(Overlapping ? " overlapping" : "")}";
}

/// <summary>What one <see cref="Detector.Detect"/> call found. Every local maximum above the threshold is
/// counted once: <c>Candidates + DroppedAtEdge + DroppedOverlap</c> = all maxima.</summary>
public struct DetectionStats
{
    /// <summary>Candidates written to the output.</summary>
    public int Candidates;
    /// <summary>Maxima whose (2r+1)^2 ROI would leave the frame, dropped (only with dropAtEdge; otherwise their ROI is
    /// shifted to lie inside the frame and they are candidates like the others).</summary>
    public int DroppedAtEdge;
    /// <summary>Maxima dropped for overlapping a brighter one (0 unless rejectOverlapping).</summary>
    public int DroppedOverlap;
    /// <summary>Maxima (inside the frame margin) flagged as overlapping, whether dropped or kept.</summary>
    public int Overlapping;
    /// <summary>Frames (0 or 1 per frame) judged sparse, whose candidates passed the spread test rather than the camera
    /// model's (<see cref="CameraNoiseThreshold.Sparse"/>).</summary>
    public int SpreadTestFrames;

    public readonly int Maxima => Candidates + DroppedAtEdge + DroppedOverlap;
    public override readonly string ToString() => $"{Candidates} candidates, {DroppedAtEdge} at edge, {DroppedOverlap} overlap dropped, {Overlapping} overlapping";
}

/// <summary>
/// Finds candidate molecules in a filtered frame (after the paper: local maxima above a threshold, ROIs
/// around them). Per thread, reusable: keeps its scratch, allocates nothing once it has grown to the frame.
/// <list type="bullet">
/// <item>Local maximum: value &gt; threshold, strictly greater than its 8-neighbours earlier in raster order
/// (the row above, and the left neighbour) and &gt;= those later; so of two equal neighbouring pixels the first in
/// raster order wins. Neighbours outside the frame are ignored.</item>
/// <item>Edge: a maximum whose (2r+1) x (2r+1) ROI would leave the frame is a candidate like any other (its ROI is
/// shifted inside the frame when cut, <see cref="Fit.RoiBatch.AddAround"/>); with dropAtEdge (the behaviour before edge
/// fitting) it is dropped and counted instead.</item>
/// <item>Overlap: a maximum within Euclidean distance r (&lt;=) of a brighter maximum is flagged (brighter: larger value,
/// or equal value and earlier in raster order). Every maximum above the threshold counts as a potential brighter
/// neighbour, including ones dropped at the edge or flagged themselves (a neighbour's light is in the ROI either way).
/// With rejectOverlapping flagged maxima are dropped and counted, otherwise kept with <see cref="Candidate.Overlapping"/> set.</item>
/// </list>
/// Output is in raster order (deterministic). Rows are scanned with a Vector&lt;float&gt; compare against the threshold
/// first; neighbours are only examined where a lane is above it.
/// </summary>
public sealed class Detector
{
    private Candidate[] _maxima = new Candidate[256];
    private int[] _rowStart = Array.Empty<int>();
    private int _count;

    public DetectionStats Detect(ReadOnlySpan<float> filtered, int width, int height, float threshold, int roiRadius,
                                 bool rejectOverlapping, List<Candidate> output, bool dropAtEdge = false)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"frame must be at least 1x1, got {width}x{height}");
        if (filtered.Length < width * height) throw new ArgumentException($"frame holds {filtered.Length} pixels, needs {width * height}", nameof(filtered));
        if (roiRadius < 0) throw new ArgumentOutOfRangeException(nameof(roiRadius));
        ArgumentNullException.ThrowIfNull(output);
        output.Clear();
        FindMaxima(filtered, width, height, threshold);
        return Classify(width, height, roiRadius, rejectOverlapping, dropAtEdge, output);
    }

    private void FindMaxima(ReadOnlySpan<float> f, int w, int h, float thr)
    {
        if (_rowStart.Length < h + 1) _rowStart = new int[h + 1];
        _count = 0;
        ref float f0 = ref MemoryMarshal.GetReference(f);
        var vt = new Vector<float>(thr);
        int vc = Vector<float>.Count;
        for (int y = 0; y < h; y++)
        {
            _rowStart[y] = _count;
            bool interiorRow = y > 0 && y < h - 1;
            int rowOff = y * w, x = 0;
            ref float row = ref Unsafe.Add(ref f0, rowOff);
            // 4 vectors per test: pixels above the threshold are rare
            for (; x <= w - 4 * vc; x += 4 * vc)
            {
                nuint u = (nuint)x;
                var any = Vector.GreaterThan(Vector.LoadUnsafe(ref row, u), vt) | Vector.GreaterThan(Vector.LoadUnsafe(ref row, u + (nuint)vc), vt)
                        | Vector.GreaterThan(Vector.LoadUnsafe(ref row, u + (nuint)(2 * vc)), vt) | Vector.GreaterThan(Vector.LoadUnsafe(ref row, u + (nuint)(3 * vc)), vt);
                if (any == Vector<int>.Zero) continue;
                for (int q = 0; q < 4; q++) ScanVector(f, ref f0, w, h, y, rowOff, x + q * vc, vt, interiorRow);
            }
            for (; x <= w - vc; x += vc) ScanVector(f, ref f0, w, h, y, rowOff, x, vt, interiorRow);
            for (; x < w; x++)
            {
                float v = f[rowOff + x];
                if (!(v > thr)) continue;
                if (IsMaxBorder(f, w, h, x, y, v)) Push(x, y, v);
            }
        }
        _rowStart[h] = _count;
    }

    private void ScanVector(ReadOnlySpan<float> f, ref float f0, int w, int h, int y, int rowOff, int x, Vector<float> vt, bool interiorRow)
    {
        var v = Vector.LoadUnsafe(ref f0, (nuint)(rowOff + x));
        var gt = Vector.GreaterThan(v, vt);
        if (gt == Vector<int>.Zero) return;
        for (int l = 0; l < Vector<float>.Count; l++)
        {
            if (gt[l] == 0) continue;
            int xx = x + l;
            bool isMax = interiorRow && xx > 0 && xx < w - 1
                ? IsMaxInterior(ref f0, rowOff + xx, w, v[l])
                : IsMaxBorder(f, w, h, xx, y, v[l]);
            if (isMax) Push(xx, y, v[l]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsMaxInterior(ref float f0, int i, int w, float v)
    {
        ref float c = ref Unsafe.Add(ref f0, i);
        ref float up = ref Unsafe.Subtract(ref c, w);
        ref float dn = ref Unsafe.Add(ref c, w);
        return v > Unsafe.Subtract(ref up, 1) && v > up && v > Unsafe.Add(ref up, 1) && v > Unsafe.Subtract(ref c, 1)
            && v >= Unsafe.Add(ref c, 1) && v >= Unsafe.Subtract(ref dn, 1) && v >= dn && v >= Unsafe.Add(ref dn, 1);
    }

    private static bool IsMaxBorder(ReadOnlySpan<float> f, int w, int h, int x, int y, float v)
    {
        for (int dy = -1; dy <= 1; dy++)
        {
            int yy = y + dy;
            if ((uint)yy >= (uint)h) continue;
            for (int dx = -1; dx <= 1; dx++)
            {
                int xx = x + dx;
                if ((dx == 0 && dy == 0) || (uint)xx >= (uint)w) continue;
                float n = f[yy * w + xx];
                bool earlier = dy < 0 || (dy == 0 && dx < 0);
                if (earlier ? !(v > n) : !(v >= n)) return false;
            }
        }
        return true;
    }

    private void Push(int x, int y, float v)
    {
        if (_count == _maxima.Length) Array.Resize(ref _maxima, _maxima.Length * 2);
        _maxima[_count++] = new Candidate(x, y, v);
    }

    private DetectionStats Classify(int w, int h, int r, bool reject, bool dropAtEdge, List<Candidate> output)
    {
        var stats = new DetectionStats();
        int r2 = r * r;
        for (int i = 0; i < _count; i++)
        {
            var c = _maxima[i];
            if (dropAtEdge && (c.X - r < 0 || c.X + r >= w || c.Y - r < 0 || c.Y + r >= h)) { stats.DroppedAtEdge++; continue; }
            bool overlap = false;
            int y0 = Math.Max(0, c.Y - r), y1 = Math.Min(h - 1, c.Y + r);
            for (int j = _rowStart[y0], end = _rowStart[y1 + 1]; j < end && !overlap; j++)
            {
                if (j == i) continue;
                ref readonly var o = ref _maxima[j];
                int dx = o.X - c.X, dy = o.Y - c.Y;
                if (dx * dx + dy * dy > r2) continue;
                overlap = o.Value > c.Value || (o.Value == c.Value && j < i);
            }
            if (overlap)
            {
                stats.Overlapping++;
                if (reject) { stats.DroppedOverlap++; continue; }
                c.Overlapping = true;
            }
            output.Add(c);
            stats.Candidates++;
        }
        return stats;
    }
}
