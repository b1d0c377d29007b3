using System.Globalization;
using System.Text;

namespace MaLiang.Engine.Post;

/// <summary>
/// A filter over named columns, e.g. <c>uncertainty [nm] &lt; 20 &amp;&amp; intensity [photon] &gt; 300</c>.
/// Grammar (usual precedence, lowest first): <c>||</c>, <c>&amp;&amp;</c>, <c>!</c>, comparisons (<c>&lt; &lt;= &gt; &gt;= == !=</c>, <c>=</c> as <c>==</c>),
/// <c>+ -</c>, <c>* /</c>, unary <c>-</c>, numbers, columns, parentheses. A column is written as its name (the longest known
/// name that matches at that position, case-insensitive, so names may contain spaces and brackets) or quoted: <c>"x [nm]"</c>.
/// Comparisons with NaN are false. Hand-written recursive descent: no reflection, NativeAOT-safe.
/// </summary>
public sealed class FilterExpression
{
    private readonly Node root;
    private readonly string text;

    private FilterExpression(Node root, string text, List<string> used) { this.root = root; this.text = text; Columns = used; }

    /// <summary>The columns the expression reads (canonical names as given to <see cref="Parse"/>).</summary>
    public IReadOnlyList<string> Columns { get; }
    public override string ToString() => text;

    /// <summary>Parses <paramref name="text"/> against the available column names.
    /// Throws <see cref="MaLiangException"/> for a syntax error (with its position) or an unknown column (listing the available ones).</summary>
    public static FilterExpression Parse(string text, IReadOnlyList<string> columns)
    {
        var p = new Parser(text, columns);
        var node = p.ParseOr();
        p.SkipWs();
        if (p.Pos < text.Length) throw p.Error("expected an operator or the end of the expression");
        if (!node.IsBool) throw new MaLiangException($"filter: '{text}' is a number, not a condition (compare it with < <= > >= == !=)");
        return new FilterExpression(node, text, p.Used);
    }

    /// <summary>Evaluates to one bool per row. <paramref name="columns"/> returns a column's values by (canonical) name, or null.</summary>
    public bool[] Evaluate(Func<string, double[]?> columns, int rowCount)
    {
        var cache = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var name in Columns)
        {
            var v = columns(name) ?? throw new MaLiangException($"filter: column '{name}' is not available");
            if (v.Length != rowCount) throw new MaLiangException($"filter: column '{name}' has {v.Length} values, expected {rowCount}");
            cache[name] = v;
        }
        var r = root.Eval(cache, rowCount);
        var mask = new bool[rowCount];
        for (int i = 0; i < rowCount; i++) mask[i] = r[i] != 0;
        return mask;
    }

    /// <summary>Parse and evaluate in one call.</summary>
    public static bool[] Evaluate(string text, IReadOnlyList<string> columnNames, Func<string, double[]?> columns, int rowCount)
        => Parse(text, columnNames).Evaluate(columns, rowCount);

    // ------------------------------------------------------------------ AST

    private abstract class Node
    {
        public abstract bool IsBool { get; }
        public abstract double[] Eval(Dictionary<string, double[]> cols, int n);
    }

    private sealed class Num(double v) : Node
    {
        public override bool IsBool => false;
        public override double[] Eval(Dictionary<string, double[]> cols, int n) { var r = new double[n]; Array.Fill(r, v); return r; }
    }

    private sealed class Col(string name) : Node
    {
        public override bool IsBool => false;
        public override double[] Eval(Dictionary<string, double[]> cols, int n) => (double[])cols[name].Clone();
    }

    private sealed class Unary(char op, Node a) : Node
    {
        public override bool IsBool => op == '!';
        public override double[] Eval(Dictionary<string, double[]> cols, int n)
        {
            var r = a.Eval(cols, n);
            for (int i = 0; i < n; i++) r[i] = op == '!' ? (r[i] != 0 ? 0 : 1) : -r[i];
            return r;
        }
    }

    private sealed class Binary(string op, Node a, Node b) : Node
    {
        public override bool IsBool => op is not ("+" or "-" or "*" or "/");
        public override double[] Eval(Dictionary<string, double[]> cols, int n)
        {
            var x = a.Eval(cols, n);
            var y = b.Eval(cols, n);
            for (int i = 0; i < n; i++)
            {
                double p = x[i], q = y[i];
                x[i] = op switch
                {
                    "+" => p + q, "-" => p - q, "*" => p * q, "/" => p / q,
                    "<" => p < q ? 1 : 0, "<=" => p <= q ? 1 : 0, ">" => p > q ? 1 : 0, ">=" => p >= q ? 1 : 0,
                    "==" => p == q ? 1 : 0, "!=" => p != q && !double.IsNaN(p) && !double.IsNaN(q) ? 1 : 0,
                    "&&" => p != 0 && q != 0 ? 1 : 0, "||" => p != 0 || q != 0 ? 1 : 0,
                    _ => throw new InvalidOperationException(op),
                };
            }
            return x;
        }
    }

    // ------------------------------------------------------------------ parser

    private sealed class Parser(string text, IReadOnlyList<string> columns)
    {
        public int Pos;
        public readonly List<string> Used = new();

        public MaLiangException Error(string what, int? at = null)
        {
            int p = at ?? Pos;
            string near = p < text.Length ? $"'{Clip(text[p..])}'" : "the end";
            return new MaLiangException($"filter: syntax error at position {p + 1} (near {near}): {what}, in '{text}'");
        }

        private static string Clip(string s) => s.Length > 12 ? s[..12] + "..." : s;

        public void SkipWs() { while (Pos < text.Length && char.IsWhiteSpace(text[Pos])) Pos++; }

        private bool Accept(string op)
        {
            SkipWs();
            if (string.CompareOrdinal(text, Pos, op, 0, op.Length) != 0) return false;
            Pos += op.Length;
            return true;
        }

        private bool Peek(string op) { SkipWs(); return string.CompareOrdinal(text, Pos, op, 0, op.Length) == 0; }

        public Node ParseOr()
        {
            var a = ParseAnd();
            while (true)
            {
                SkipWs(); int at = Pos;
                if (!Accept("||")) return a;
                a = Logical("||", a, ParseAnd(), at);
            }
        }

        private Node ParseAnd()
        {
            var a = ParseNot();
            while (true)
            {
                SkipWs(); int at = Pos;
                if (!Accept("&&")) return a;
                a = Logical("&&", a, ParseNot(), at);
            }
        }

        private Node Logical(string op, Node a, Node b, int at)
        {
            if (!a.IsBool || !b.IsBool) throw Error($"both sides of {op} must be conditions", at);
            return new Binary(op, a, b);
        }

        private Node ParseNot()
        {
            SkipWs();
            if (Peek("!") && !Peek("!="))
            {
                Pos++;
                int at = Pos;
                var a = ParseNot();
                if (!a.IsBool) throw Error("'!' needs a condition", at);
                return new Unary('!', a);
            }
            return ParseCmp();
        }

        private static readonly string[] CmpOps = ["<=", ">=", "==", "!=", "<", ">", "="];

        private Node ParseCmp()
        {
            var a = ParseAdd();
            foreach (var op in CmpOps)
            {
                int at = Pos;
                if (!Accept(op)) continue;
                if (a.IsBool) throw Error($"cannot compare a condition with {op}", at);
                var b = ParseAdd();
                if (b.IsBool) throw Error($"cannot compare a condition with {op}", at);
                var r = new Binary(op == "=" ? "==" : op, a, b);
                SkipWs();
                foreach (var op2 in CmpOps)
                    if (Peek(op2)) throw Error("comparisons cannot be chained; join them with &&");
                return r;
            }
            return a;
        }

        private Node ParseAdd()
        {
            var a = ParseMul();
            while (true)
            {
                SkipWs();
                if (Pos < text.Length && (text[Pos] == '+' || text[Pos] == '-'))
                {
                    string op = text[Pos].ToString(); int at = Pos; Pos++;
                    var b = ParseMul();
                    if (a.IsBool || b.IsBool) throw Error($"'{op}' needs numbers, not conditions", at);
                    a = new Binary(op, a, b);
                }
                else return a;
            }
        }

        private Node ParseMul()
        {
            var a = ParseUnary();
            while (true)
            {
                SkipWs();
                if (Pos < text.Length && (text[Pos] == '*' || text[Pos] == '/'))
                {
                    string op = text[Pos].ToString(); int at = Pos; Pos++;
                    var b = ParseUnary();
                    if (a.IsBool || b.IsBool) throw Error($"'{op}' needs numbers, not conditions", at);
                    a = new Binary(op, a, b);
                }
                else return a;
            }
        }

        private Node ParseUnary()
        {
            SkipWs();
            if (Pos < text.Length && (text[Pos] == '-' || text[Pos] == '+'))
            {
                char op = text[Pos]; int at = Pos; Pos++;
                var a = ParseUnary();
                if (a.IsBool) throw Error($"'{op}' needs a number", at);
                return op == '-' ? new Unary('-', a) : a;
            }
            return ParsePrimary();
        }

        private Node ParsePrimary()
        {
            SkipWs();
            if (Pos >= text.Length) throw Error("expected a number, a column or '('");
            char c = text[Pos];
            if (c == '(')
            {
                Pos++;
                var a = ParseOr();
                if (!Accept(")")) throw Error("expected ')'");
                return a;
            }
            if (c == '"')
            {
                int end = text.IndexOf('"', Pos + 1);
                if (end < 0) throw Error("unterminated quoted column name");
                string name = text[(Pos + 1)..end];
                var col = Find(name) ?? throw Unknown(name, Pos);
                Pos = end + 1;
                return Use(col);
            }
            if (char.IsDigit(c) || (c == '.' && Pos + 1 < text.Length && char.IsDigit(text[Pos + 1])))
                return ParseNumber();
            // longest known column name matching here
            string? best = null;
            foreach (var name in columns)
            {
                if (name.Length == 0 || (best is not null && name.Length <= best.Length)) continue;
                if (string.Compare(text, Pos, name, 0, name.Length, StringComparison.OrdinalIgnoreCase) != 0) continue;
                int e = Pos + name.Length;
                if (IsIdent(name[^1]) && e < text.Length && IsIdent(text[e])) continue; // "x" must not match inside "xy"
                best = name;
            }
            if (best is not null) { Pos += best.Length; return Use(best); }
            if (IsIdent(c))
            {
                int s = Pos, e = Pos;
                while (e < text.Length && IsIdent(text[e])) e++;
                int k = e;
                while (k < text.Length && text[k] == ' ') k++;
                if (k < text.Length && text[k] == '[')
                {
                    int close = text.IndexOf(']', k);
                    if (close > 0) e = close + 1;
                }
                throw Unknown(text[s..e], s);
            }
            throw Error("expected a number, a column or '('");
        }

        private Node ParseNumber()
        {
            int s = Pos;
            while (Pos < text.Length && (char.IsDigit(text[Pos]) || text[Pos] == '.')) Pos++;
            if (Pos < text.Length && (text[Pos] == 'e' || text[Pos] == 'E'))
            {
                int k = Pos + 1;
                if (k < text.Length && (text[k] == '+' || text[k] == '-')) k++;
                if (k < text.Length && char.IsDigit(text[k]))
                {
                    Pos = k;
                    while (Pos < text.Length && char.IsDigit(text[Pos])) Pos++;
                }
            }
            if (!double.TryParse(text.AsSpan(s, Pos - s), NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                throw Error($"'{text[s..Pos]}' is not a number", s);
            if (Pos < text.Length && IsIdent(text[Pos])) throw Error($"unexpected '{text[Pos]}' after the number {text[s..Pos]}", Pos);
            return new Num(v);
        }

        private string? Find(string name)
        {
            foreach (var c in columns) if (string.Equals(c, name, StringComparison.OrdinalIgnoreCase)) return c;
            return null;
        }

        private Node Use(string name)
        {
            if (!Used.Contains(name)) Used.Add(name);
            return new Col(name);
        }

        private MaLiangException Unknown(string name, int at)
        {
            var sb = new StringBuilder();
            foreach (var c in columns) { if (sb.Length > 0) sb.Append(", "); sb.Append('"').Append(c).Append('"'); }
            return new MaLiangException($"filter: unknown column '{name}' at position {at + 1}; available columns: {sb}");
        }

        private static bool IsIdent(char c) => char.IsLetterOrDigit(c) || c == '_';
    }
}

/// <summary>The CSV's columns (DESIGN.md names, nm, 1-based frame) computed from in-memory localizations, for filtering
/// without a file. "uncertainty [nm]" is sqrt((ux^2 + uy^2) / 2).</summary>
public static class LocalizationColumns
{
    public static readonly string[] Names =
    [
        "id", "frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]", "offset [photon]", "bkgstd [photon]",
        "uncertainty [nm]", "uncertainty_x [nm]", "uncertainty_y [nm]", "loglikelihood", "llr", "iterations", "detections",
        "z [nm]", "uncertainty_z [nm]",
    ];

    public static Func<string, double[]?> Provider(Localization[] locs, double pixelSizeNm)
    {
        if (!double.IsFinite(pixelSizeNm) || pixelSizeNm <= 0) throw new InvalidParameterException("pixel-size", $"must be > 0 nm, got {pixelSizeNm}");
        return name =>
        {
            Func<Localization, int, double>? f = name switch
            {
                "id" => (_, i) => i + 1,
                "frame" => (l, _) => l.Frame + 1,
                "x [nm]" => (l, _) => l.X * pixelSizeNm,
                "y [nm]" => (l, _) => l.Y * pixelSizeNm,
                "sigma [nm]" => (l, _) => l.Sigma * pixelSizeNm,
                "intensity [photon]" => (l, _) => l.Photons,
                "offset [photon]" => (l, _) => l.Background,
                "bkgstd [photon]" => (l, _) => Math.Sqrt(Math.Max(0, l.Background)),
                "uncertainty [nm]" => (l, _) => Math.Sqrt(((double)l.UncertaintyX * l.UncertaintyX + (double)l.UncertaintyY * l.UncertaintyY) / 2) * pixelSizeNm,
                "uncertainty_x [nm]" => (l, _) => l.UncertaintyX * pixelSizeNm,
                "uncertainty_y [nm]" => (l, _) => l.UncertaintyY * pixelSizeNm,
                "loglikelihood" => (l, _) => l.LogLikelihood,
                "llr" => (l, _) => l.Llr,
                "iterations" => (l, _) => l.Iterations,
                "detections" => (l, _) => l.Detections,
                // 3D (0 in 2D data, whose flag bit 1 is clear)
                "z [nm]" => (l, _) => l.Z,
                "uncertainty_z [nm]" => (l, _) => l.UncertaintyZ,
                _ => null,
            };
            if (f is null) return null;
            var r = new double[locs.Length];
            for (int i = 0; i < r.Length; i++) r[i] = f(locs[i], i);
            return r;
        };
    }

    /// <summary>Keeps the rows where <paramref name="mask"/> is true.</summary>
    public static Localization[] Select(ReadOnlySpan<Localization> locs, ReadOnlySpan<bool> mask)
    {
        if (mask.Length != locs.Length) throw new ArgumentException("mask length differs from the localization count");
        var r = new List<Localization>(locs.Length);
        for (int i = 0; i < locs.Length; i++) if (mask[i]) r.Add(locs[i]);
        return r.ToArray();
    }
}

/// <summary>Density filter: keeps localizations with at least k other localizations within radius r (all frames).</summary>
public static class DensityFilter
{
    public static bool[] Mask(ReadOnlySpan<Localization> locs, double radiusPx, int minNeighbours)
    {
        if (!double.IsFinite(radiusPx) || radiusPx <= 0) throw new InvalidParameterException("radius", $"must be > 0 px, got {radiusPx}");
        if (minNeighbours < 0) throw new InvalidParameterException("neighbours", $"must be >= 0, got {minNeighbours}");
        var a = locs.ToArray();
        int n = a.Length;
        // grid of cell size r, stored as a sorted (cell, index) array
        var keys = new long[n];
        var idx = new int[n];
        for (int i = 0; i < n; i++)
        {
            idx[i] = i;
            keys[i] = float.IsFinite(a[i].X) && float.IsFinite(a[i].Y) ? Pack((long)Math.Floor(a[i].X / radiusPx), (long)Math.Floor(a[i].Y / radiusPx)) : long.MaxValue;
        }
        Array.Sort(keys, idx);
        var start = new Dictionary<long, (int s, int e)>();
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j < n && keys[j] == keys[i]) j++;
            if (keys[i] != long.MaxValue) start[keys[i]] = (i, j);
            i = j;
        }
        double r2 = radiusPx * radiusPx;
        var mask = new bool[n];
        Parallel.For(0, n, i =>
        {
            ref readonly var l = ref a[i];
            if (!float.IsFinite(l.X) || !float.IsFinite(l.Y)) return;
            long cx = (long)Math.Floor(l.X / radiusPx), cy = (long)Math.Floor(l.Y / radiusPx);
            int count = 0;
            for (long dy = -1; dy <= 1 && count < minNeighbours; dy++)
                for (long dx = -1; dx <= 1 && count < minNeighbours; dx++)
                    if (start.TryGetValue(Pack(cx + dx, cy + dy), out var se))
                        for (int k = se.s; k < se.e; k++)
                        {
                            int j = idx[k];
                            if (j == i) continue;
                            double ex = a[j].X - l.X, ey = a[j].Y - l.Y;
                            if (ex * ex + ey * ey <= r2 && ++count >= minNeighbours) break;
                        }
            mask[i] = count >= minNeighbours;
        });
        return mask;
    }

    private static long Pack(long cx, long cy) => (cx << 32) ^ (cy & 0xffffffffL);
}
