using MaLiang.Engine.Detect;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Detect;

public class DetectorTests
{
    private const int W = 61, H = 53;   // width not a multiple of the vector length

    private static float[] Blank() => new float[W * H];

    /// <summary>A 3x3 peak: centre v, 8 neighbours v/2.</summary>
    private static void Peak(float[] img, int x, int y, float v)
    {
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
                img[(y + dy) * W + x + dx] = Math.Max(img[(y + dy) * W + x + dx], dx == 0 && dy == 0 ? v : v / 2);
    }

    private static (List<Candidate> c, DetectionStats s) Run(float[] img, float thr, int r = 3, bool reject = true, int w = W, int h = H,
                                                             bool dropAtEdge = false)
    {
        var list = new List<Candidate> { new(99, 99, 99) };   // must be cleared
        var s = new Detector().Detect(img, w, h, thr, r, reject, list, dropAtEdge);
        return (list, s);
    }

    private static (int, int)[] Xy(List<Candidate> c) => c.Select(k => (k.X, k.Y)).ToArray();

    [Test]
    public void FindsKnownPeaksAboveThresholdInRasterOrder()
    {
        var img = Blank();
        Peak(img, 40, 10, 20);
        Peak(img, 10, 12, 30);
        Peak(img, 30, 40, 12);
        Peak(img, 20, 30, 8);   // below threshold
        var (c, s) = Run(img, 10);
        Assert.That(Xy(c), Is.EqualTo(new[] { (40, 10), (10, 12), (30, 40) }));
        Assert.That(c.Select(k => k.Value), Is.EqualTo(new[] { 20f, 30f, 12f }));
        Assert.That(s.Candidates, Is.EqualTo(3));
        Assert.That(s.DroppedAtEdge + s.DroppedOverlap + s.Overlapping, Is.EqualTo(0));
    }

    [Test]
    public void ValueEqualToThresholdIsNotACandidate()
    {
        var img = Blank();
        Peak(img, 20, 20, 10);
        Assert.That(Run(img, 10).c, Is.Empty);
        Assert.That(Run(img, 9.999f).c, Has.Count.EqualTo(1));
    }

    [Test]
    public void PlateauTiesGoToTheFirstPixelInRasterOrder()
    {
        var img = Blank();
        img[10 * W + 20] = img[10 * W + 21] = 5;                      // horizontal pair -> (20, 10)
        img[20 * W + 10] = img[21 * W + 10] = 5;                      // vertical pair -> (10, 20)
        img[30 * W + 31] = img[31 * W + 30] = 5;                      // anti-diagonal pair -> (31, 30)
        img[40 * W + 40] = img[40 * W + 41] = img[41 * W + 40] = img[41 * W + 41] = 5;   // 2x2 -> (40, 40)
        var (c, s) = Run(img, 1, r: 1);
        Assert.That(Xy(c), Is.EqualTo(new[] { (20, 10), (10, 20), (31, 30), (40, 40) }));
        Assert.That(s.Maxima, Is.EqualTo(4));
    }

    private static float[] EdgeScene()
    {
        var img = Blank();
        // r = 3: a ROI fits when 3 <= x <= W-4 and 3 <= y <= H-4
        img[20 * W + 2] = 10;            // x = 2: dropped
        img[30 * W + 3] = 10;            // x = 3: kept
        img[20 * W + (W - 4)] = 10;      // kept
        img[30 * W + (W - 3)] = 10;      // dropped
        img[2 * W + 30] = 10;            // y = 2: dropped
        img[(H - 3) * W + 20] = 10;      // y = H-3: dropped
        img[(H - 4) * W + 40] = 10;      // kept
        img[0] = 10;                     // corner (border neighbours ignored): dropped
        img[H * W - 1] = 10;             // last pixel (scalar tail): dropped
        return img;
    }

    [Test]
    public void MaximaWhoseRoiLeavesTheFrameAreDroppedAndCountedWithDropAtEdge()
    {
        var (c, s) = Run(EdgeScene(), 5, dropAtEdge: true);
        Assert.That(Xy(c), Is.EqualTo(new[] { (W - 4, 20), (3, 30), (40, H - 4) }));
        Assert.That(s.DroppedAtEdge, Is.EqualTo(6));
        Assert.That(s.Candidates, Is.EqualTo(3));
    }

    [Test]
    public void MaximaWhoseRoiLeavesTheFrameAreCandidatesByDefault()
    {
        var (c, s) = Run(EdgeScene(), 5);
        Assert.That(Xy(c), Is.EqualTo(new[] { (0, 0), (30, 2), (2, 20), (W - 4, 20), (3, 30), (W - 3, 30), (40, H - 4), (20, H - 3), (W - 1, H - 1) }));
        Assert.That(s.DroppedAtEdge, Is.EqualTo(0));
        Assert.That(s.Candidates, Is.EqualTo(9));
    }

    [TestCase(0, 0, 0, 0, 0)]          // corner: ROI at the corner, maximum on its first pixel
    [TestCase(2, 30, 0, 27, 3 * 7 + 2)] // 2 px from the left edge: shifted right by 1
    [TestCase(30, 30, 27, 27, 24)]     // inside: centred, peak at the centre pixel
    [TestCase(W - 1, H - 2, W - 7, H - 7, 5 * 7 + 6)]
    public void RoiIsShiftedInsideTheFrameJustEnough(int x, int y, int left, int top, int peak)
    {
        Assert.That(MaLiang.Engine.Fit.RoiBatch.Place(x, y, W, H, 7), Is.EqualTo((left, top, peak)));
        var frame = new float[W * H];
        for (int i = 0; i < frame.Length; i++) frame[i] = i;
        var b = new MaLiang.Engine.Fit.RoiBatch(7);
        b.AddAround(frame, W, H, 4, x, y);
        Assert.That((b.Left[0], b.Top[0], b.Peak[0], b.Frame[0]), Is.EqualTo((left, top, peak, 4)));
        Assert.That(b.Roi(0)[peak], Is.EqualTo(frame[y * W + x]), "the peak indexes the maximum's pixel");
    }

    private static float[] OverlapScene()
    {
        var img = Blank();
        img[20 * W + 20] = 10;   // A
        img[20 * W + 23] = 5;    // B: 3 px from A (<= r): overlapping
        img[24 * W + 20] = 5;    // C: 4 px from A: free
        img[22 * W + 18] = 4;    // D: sqrt(8) from A: overlapping (also within r of C, which is brighter)
        img[40 * W + 40] = 7;    // E
        img[41 * W + 42] = 7;    // F: equal to E, sqrt(5) away, later in raster order: overlapping
        img[30 * W + 1] = 20;    // G: at the edge (dropped) ...
        img[30 * W + 4] = 6;     // H: ... but still brighter and 3 px away: H overlapping
        return img;
    }

    [Test]
    public void OverlappingCandidatesAreDroppedWhenRejecting()
    {
        var (c, s) = Run(OverlapScene(), 1, r: 3, reject: true, dropAtEdge: true);
        Assert.That(Xy(c), Is.EqualTo(new[] { (20, 20), (20, 24), (40, 40) }));
        Assert.That(c.All(k => !k.Overlapping));
        Assert.That(s.DroppedOverlap, Is.EqualTo(4));
        Assert.That(s.Overlapping, Is.EqualTo(4));
        Assert.That(s.DroppedAtEdge, Is.EqualTo(1));
        Assert.That(s.Candidates, Is.EqualTo(3));
    }

    [Test]
    public void OverlappingCandidatesAreFlaggedAndKeptOtherwise()
    {
        var (c, s) = Run(OverlapScene(), 1, r: 3, reject: false);
        Assert.That(c.Select(k => (k.X, k.Y, k.Overlapping)), Is.EqualTo(new[]
        {
            (20, 20, false), (23, 20, true), (18, 22, true), (20, 24, false), (1, 30, false), (4, 30, true), (40, 40, false), (42, 41, true),
        }));
        Assert.That(s.DroppedOverlap, Is.EqualTo(0));
        Assert.That(s.Overlapping, Is.EqualTo(4));
        Assert.That(s.DroppedAtEdge, Is.EqualTo(0), "G at the edge is a candidate");
        Assert.That(s.Candidates, Is.EqualTo(8));
    }

    [Test]
    public void DistanceJustAboveRadiusIsNotOverlapping()
    {
        var img = Blank();
        img[20 * W + 20] = 10;
        img[23 * W + 22] = 5;   // sqrt(13) = 3.6 > 3 although within the 7x7 box
        var (_, s) = Run(img, 1, r: 3);
        Assert.That(s.Overlapping, Is.EqualTo(0));
        Assert.That(s.Candidates, Is.EqualTo(2));
    }

    /// <summary>Scalar brute force of the local-maximum rule, to check the vectorised scan on noise.</summary>
    private static List<(int, int)> ReferenceMaxima(float[] f, int w, int h, float thr)
    {
        var o = new List<(int, int)>();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                float v = f[y * w + x];
                if (!(v > thr)) continue;
                bool ok = true;
                for (int dy = -1; dy <= 1 && ok; dy++)
                    for (int dx = -1; dx <= 1 && ok; dx++)
                    {
                        int xx = x + dx, yy = y + dy;
                        if ((dx == 0 && dy == 0) || xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
                        float n = f[yy * w + xx];
                        ok = (yy * w + xx) < (y * w + x) ? v > n : v >= n;
                    }
                if (ok) o.Add((x, y));
            }
        return o;
    }

    [TestCase(61, 53)]
    [TestCase(7, 9)]
    [TestCase(128, 64)]
    public void VectorScanAgreesWithBruteForceOnQuantisedNoise(int w, int h)
    {
        var r = new Random(w + h);
        var img = new float[w * h];
        for (int i = 0; i < img.Length; i++) img[i] = r.Next(8);   // many ties
        var (c, s) = Run(img, 4.5f, r: 0, reject: false, w: w, h: h);
        Assert.That(Xy(c), Is.EqualTo(ReferenceMaxima(img, w, h, 4.5f)));
        Assert.That(s.Candidates, Is.GreaterThan(0));
    }
}
