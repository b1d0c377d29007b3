namespace MaLiang.Engine.Fit.MultiEmitter;

/// <summary>
/// Emitters whose centres lie closer than a link distance, chained: the connected components of the "closer than"
/// graph, found through a grid of link-sized cells (each emitter meets only the emitters of its own and the 8
/// neighbouring cells) and union-find, not all pairs. Groups come out in order of their first member; members in index
/// order. Reused across frames.
/// </summary>
public sealed class EmitterGroups
{
    private int[] _parent = [], _cellOf = [], _order = [], _start = [], _members = [], _groupOf = [];
    private int _count, _groups;

    public int Count => _groups;
    public int Size(int g) => _start[g + 1] - _start[g];
    public ReadOnlySpan<int> Members(int g) => _members.AsSpan(_start[g], Size(g));

    public void Build(ReadOnlySpan<float> x, ReadOnlySpan<float> y, float link)
    {
        int n = _count = x.Length;
        if (_parent.Length < n) { int c = Math.Max(n, 2 * _parent.Length); _parent = new int[c]; _cellOf = new int[c]; _order = new int[c]; _members = new int[c]; _groupOf = new int[c]; _start = new int[c + 1]; }
        for (int i = 0; i < n; i++) _parent[i] = i;
        if (n == 0) { _groups = 0; return; }
        float minX = float.MaxValue, minY = float.MaxValue, maxX = float.MinValue;
        for (int i = 0; i < n; i++) { minX = Math.Min(minX, x[i]); minY = Math.Min(minY, y[i]); maxX = Math.Max(maxX, x[i]); }
        int cols = (int)((maxX - minX) / link) + 1;
        // Emitters sorted by cell (row-major): a cell's emitters are contiguous in _order.
        for (int i = 0; i < n; i++)
        {
            int cx = (int)((x[i] - minX) / link), cy = (int)((y[i] - minY) / link);
            _cellOf[i] = cy * cols + cx;
            _order[i] = i;
        }
        Array.Sort(_cellOf, _order, 0, n);   // _cellOf now sorted along with _order
        float link2 = link * link;
        for (int a = 0; a < n; a++)
        {
            int i = _order[a], cell = _cellOf[a], cy = cell / cols, cx = cell % cols;
            // Later emitters in the same cell, then the cells right, below-left, below and below-right.
            for (int b = a + 1; b < n && _cellOf[b] <= (cy + 1) * cols + cx + 1; b++)
            {
                int cb = _cellOf[b], by = cb / cols, bx = cb % cols;
                if (by > cy + 1 || Math.Abs(bx - cx) > 1 || (by == cy && bx < cx)) continue;
                int j = _order[b];
                float dx = x[i] - x[j], dy = y[i] - y[j];
                if (dx * dx + dy * dy < link2) Union(i, j);
            }
        }
        // Number the components by their first member, then list the members.
        Array.Fill(_groupOf, -1, 0, n);
        _groups = 0;
        Span<int> rootGroup = n <= 1024 ? stackalloc int[n] : new int[n];
        rootGroup.Fill(-1);
        for (int i = 0; i < n; i++)
        {
            int r = Find(i);
            if (rootGroup[r] < 0) rootGroup[r] = _groups++;
            _groupOf[i] = rootGroup[r];
        }
        Array.Clear(_start, 0, _groups + 1);
        for (int i = 0; i < n; i++) _start[_groupOf[i] + 1]++;
        for (int g = 0; g < _groups; g++) _start[g + 1] += _start[g];
        Span<int> fill = _groups <= 1024 ? stackalloc int[_groups] : new int[_groups];
        for (int g = 0; g < _groups; g++) fill[g] = _start[g];
        for (int i = 0; i < n; i++) _members[fill[_groupOf[i]]++] = i;
    }

    private int Find(int i)
    {
        while (_parent[i] != i) { _parent[i] = _parent[_parent[i]]; i = _parent[i]; }
        return i;
    }

    private void Union(int a, int b)
    {
        a = Find(a); b = Find(b);
        if (a == b) return;
        if (a < b) _parent[b] = a; else _parent[a] = b;
    }
}
