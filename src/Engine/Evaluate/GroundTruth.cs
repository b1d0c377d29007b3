namespace MaLiang.Engine.Evaluate;

/// <summary>A true emitter position in one frame (px, DESIGN.md convention; frame 0-based).</summary>
public readonly record struct TruePosition(int Frame, double X, double Y, double Photons = 0);

/// <summary>How localizations compare with ground truth.</summary>
public sealed class MatchResult
{
    public int Truths { get; init; }
    public int Localizations { get; init; }
    public int Matched { get; init; }
    public double Recall => Truths == 0 ? 0 : Matched / (double)Truths;
    public double Precision => Localizations == 0 ? 0 : Matched / (double)Localizations;
    /// <summary>Matched / (localizations + truths - matched): TP / (TP + FP + FN), the SMLM challenge's detection score.</summary>
    public double Jaccard => Truths + Localizations - Matched == 0 ? 0 : Matched / (double)(Truths + Localizations - Matched);
    /// <summary>Root mean square of the matched x and y errors, and their means (bias), in px.</summary>
    public double RmseX { get; init; }
    public double RmseY { get; init; }
    public double BiasX { get; init; }
    public double BiasY { get; init; }
    /// <summary>For each matched pair: (localization index, truth index).</summary>
    public IReadOnlyList<(int Loc, int Truth)> Pairs { get; init; } = Array.Empty<(int, int)>();
}

/// <summary>Matches localizations to ground truth frame by frame: closest pairs first, each used once, within a radius.</summary>
public static class GroundTruth
{
    public static MatchResult Match(ReadOnlySpan<Localization> locs, IReadOnlyList<TruePosition> truth, double radiusPx)
    {
        if (!(radiusPx > 0)) throw new InvalidParameterException("radius", $"must be > 0, got {radiusPx}");
        var byFrameTruth = new Dictionary<int, List<int>>();
        for (int t = 0; t < truth.Count; t++)
        {
            if (!byFrameTruth.TryGetValue(truth[t].Frame, out var l)) byFrameTruth[truth[t].Frame] = l = new List<int>();
            l.Add(t);
        }
        var byFrameLoc = new Dictionary<int, List<int>>();
        for (int i = 0; i < locs.Length; i++)
        {
            if (!byFrameLoc.TryGetValue(locs[i].Frame, out var l)) byFrameLoc[locs[i].Frame] = l = new List<int>();
            l.Add(i);
        }
        var pairs = new List<(int, int)>();
        var cands = new List<(double D2, int L, int T)>();
        double r2 = radiusPx * radiusPx, sx = 0, sy = 0, sxx = 0, syy = 0;
        foreach (var (frame, li) in byFrameLoc)
        {
            if (!byFrameTruth.TryGetValue(frame, out var ti)) continue;
            cands.Clear();
            foreach (int l in li)
                foreach (int t in ti)
                {
                    double dx = locs[l].X - truth[t].X, dy = locs[l].Y - truth[t].Y, d2 = dx * dx + dy * dy;
                    if (d2 <= r2) cands.Add((d2, l, t));
                }
            cands.Sort();
            var usedL = new HashSet<int>(); var usedT = new HashSet<int>();
            foreach (var (_, l, t) in cands)
            {
                if (usedL.Contains(l) || usedT.Contains(t)) continue;
                usedL.Add(l); usedT.Add(t); pairs.Add((l, t));
                double dx = locs[l].X - truth[t].X, dy = locs[l].Y - truth[t].Y;
                sx += dx; sy += dy; sxx += dx * dx; syy += dy * dy;
            }
        }
        int m = pairs.Count;
        pairs.Sort();
        return new MatchResult
        {
            Truths = truth.Count, Localizations = locs.Length, Matched = m, Pairs = pairs,
            RmseX = m == 0 ? 0 : Math.Sqrt(sxx / m), RmseY = m == 0 ? 0 : Math.Sqrt(syy / m),
            BiasX = m == 0 ? 0 : sx / m, BiasY = m == 0 ? 0 : sy / m,
        };
    }
}
