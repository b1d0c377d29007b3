namespace MaLiang.Engine.Post;

/// <summary>
/// Links localizations of consecutive frames into tracks: a localization joins the track whose last position is nearest,
/// within <c>radius</c> px, if the track was last seen at most <c>maxGap</c> frames before (gap = missing frames in between).
/// Assignment per frame is greedy by distance (ties by index), so the result is deterministic. Spatial lookups use a grid of
/// cell size = radius: O(n log n) for the sort plus O(n) average for the linking.
/// </summary>
internal static class Linker
{
    private struct Track { public int Id; public double X, Y; public int LastFrame, Length; }

    /// <returns>Track id per localization; ids are numbered in order of first appearance (frame, then input order).</returns>
    public static int[] Link(ReadOnlySpan<Localization> locs, double radius, int maxGap, int maxLength, out int trackCount)
    {
        int n = locs.Length;
        var ids = new int[n];
        var order = new int[n];
        // order by (frame, input index)
        var keys = new long[n];
        for (int i = 0; i < n; i++) { order[i] = i; keys[i] = ((long)locs[i].Frame << 32) | (uint)i; }
        Array.Sort(keys, order);

        double r2 = radius * radius, cell = radius;
        var active = new List<Track>();
        var grid = new Dictionary<long, List<int>>();
        var pairs = new List<(double d2, int loc, int slot)>();
        int next = 0;
        int p = 0;
        while (p < n)
        {
            int f = locs[order[p]].Frame, q = p;
            while (q < n && locs[order[q]].Frame == f) q++;
            // drop expired tracks
            active.RemoveAll(t => t.LastFrame < f - maxGap - 1 || (maxLength > 0 && t.Length >= maxLength));
            grid.Clear();
            for (int s = 0; s < active.Count; s++)
            {
                long key = Key(active[s].X, active[s].Y, cell);
                if (!grid.TryGetValue(key, out var list)) grid[key] = list = new List<int>();
                list.Add(s);
            }
            pairs.Clear();
            if (active.Count > 0)
                for (int k = p; k < q; k++)
                {
                    int i = order[k];
                    double x = locs[i].X, y = locs[i].Y;
                    if (!double.IsFinite(x) || !double.IsFinite(y)) continue;
                    long cx = (long)Math.Floor(x / cell), cy = (long)Math.Floor(y / cell);
                    for (long dy = -1; dy <= 1; dy++)
                        for (long dx = -1; dx <= 1; dx++)
                            if (grid.TryGetValue(Pack(cx + dx, cy + dy), out var list))
                                foreach (int s in list)
                                {
                                    double ex = active[s].X - x, ey = active[s].Y - y, d2 = ex * ex + ey * ey;
                                    if (d2 <= r2) pairs.Add((d2, k, s));
                                }
                }
            pairs.Sort((a, b) => a.d2 != b.d2 ? a.d2.CompareTo(b.d2) : a.loc != b.loc ? a.loc.CompareTo(b.loc) : a.slot.CompareTo(b.slot));
            var usedSlot = new HashSet<int>();
            var assigned = new Dictionary<int, int>();
            foreach (var (_, k, s) in pairs)
            {
                if (assigned.ContainsKey(k) || usedSlot.Contains(s)) continue;
                assigned[k] = s; usedSlot.Add(s);
            }
            for (int k = p; k < q; k++)
            {
                int i = order[k];
                if (assigned.TryGetValue(k, out int s))
                {
                    var t = active[s];
                    ids[i] = t.Id; t.X = locs[i].X; t.Y = locs[i].Y; t.LastFrame = f; t.Length++;
                    active[s] = t;
                }
                else ids[i] = next++;
            }
            for (int k = p; k < q; k++)
            {
                int i = order[k];
                if (!assigned.ContainsKey(k)) active.Add(new Track { Id = ids[i], X = locs[i].X, Y = locs[i].Y, LastFrame = f, Length = 1 });
            }
            p = q;
        }
        trackCount = next;
        return ids;
    }

    private static long Key(double x, double y, double cell) => Pack((long)Math.Floor(x / cell), (long)Math.Floor(y / cell));
    private static long Pack(long cx, long cy) => (cx << 32) ^ (cy & 0xffffffffL);
}
