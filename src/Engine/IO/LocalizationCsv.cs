using System.Globalization;
using System.Text;

namespace MaLiang.Engine.IO;

/// <summary>
/// Localizations as ThunderSTORM-compatible CSV (DESIGN.md): quoted header, one row per molecule, nm and photons.
/// <para>Per row: id (1-based, in write order); frame = Frame + 1; x, y, sigma, uncertainties of x/y/sigma in nm
/// (pixels x pixel size); intensity = Photons; offset = Background (photons/px); bkgstd = sqrt(Background), the Poisson
/// standard deviation of the background (no camera read noise); uncertainty = sqrt((ux^2 + uy^2) / 2) in nm (the
/// per-axis mean ThunderSTORM reports); the remaining columns as in <see cref="Localization"/>. Floats are written with
/// the shortest text that round-trips the float value (invariant culture); NaN as "NaN".</para>
/// </summary>
public static class LocalizationCsv
{
    public static readonly IReadOnlyList<string> Columns =
    [
        "id", "frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]", "offset [photon]", "bkgstd [photon]",
        "uncertainty [nm]", "uncertainty_x [nm]", "uncertainty_y [nm]", "uncertainty_photons [photon]",
        "uncertainty_offset [photon]", "uncertainty_sigma [nm]", "loglikelihood", "llr", "iterations", "detections",
        "fitted_together",
    ];

    internal static readonly string Header = string.Join(",", Columns.Select(c => $"\"{c}\""));

    /// <summary>3D files (ThunderSTORM's names and places): "z [nm]" after "y [nm]", "uncertainty_z [nm]" after "uncertainty [nm]".</summary>
    public static readonly IReadOnlyList<string> ColumnsWithZ =
        [.. Columns.Take(4), "z [nm]", .. Columns.Skip(4).Take(5), "uncertainty_z [nm]", .. Columns.Skip(9)];

    internal static readonly string HeaderWithZ = string.Join(",", ColumnsWithZ.Select(c => $"\"{c}\""));

    /// <summary>Writes all <paramref name="locs"/> to <paramref name="path"/> atomically.</summary>
    /// <remarks>The z columns are written when any localization is 3D (<see cref="Localization.FlagHasZ"/>; 3D data keep them
    /// through drift, merge and filter); 2D data are written exactly as before.</remarks>
    public static void Write(string path, ReadOnlySpan<Localization> locs, double pixelSizeNm)
    {
        using var w = new LocalizationCsvWriter(path, pixelSizeNm, HasZ(locs));
        w.Append(locs);
        w.Commit();
    }

    /// <summary>
    /// Reads a MaLiang or ThunderSTORM CSV. Headers may be quoted or not, columns in any order; only frame, x and y are
    /// required. Lengths in nm (or with unit [px] / [um] / [µm]; no unit = nm) become pixels via <paramref name="pixelSizeNm"/>.
    /// Missing columns get defaults: NaN for measured values, Iterations 0, Detections 1. If only a combined
    /// "uncertainty [nm]" / "uncertainty_xy [nm]" is present, it is used for both axes. Frame numbers are 1-based in the file.
    /// </summary>
    public static LocalizationTable Read(string path, double pixelSizeNm) => LocalizationTable.Load(path, pixelSizeNm);

    /// <summary>True when any localization is 3D (<see cref="Localization.FlagHasZ"/>).</summary>
    public static bool HasZ(ReadOnlySpan<Localization> locs)
    {
        foreach (ref readonly var l in locs) if ((l.Flags & Localization.FlagHasZ) != 0) return true;
        return false;
    }

    internal static void CheckPixelSize(double pixelSizeNm)
    {
        if (!(pixelSizeNm > 0 && double.IsFinite(pixelSizeNm)))
            throw new InvalidParameterException("pixel-size", $"{pixelSizeNm} nm is not a positive number");
    }
}

/// <summary>Streams localizations to CSV through a temporary file; <see cref="Commit"/> moves it into place, Dispose without Commit deletes it.</summary>
public sealed class LocalizationCsvWriter : IDisposable
{
    private readonly AtomicFile _file;
    private readonly StreamWriter _w;
    private readonly double _px;
    private readonly char[] _line = new char[24 * 32];
    private readonly bool _withZ;
    private bool _done;

    /// <summary>Rows written so far.</summary>
    public long Count { get; private set; }
    public string Path => _file.Path;

    public LocalizationCsvWriter(string path, double pixelSizeNm) : this(path, pixelSizeNm, false) { }

    /// <summary><paramref name="withZ"/>: a 3D file, with the z columns (<see cref="LocalizationCsv.ColumnsWithZ"/>).</summary>
    public LocalizationCsvWriter(string path, double pixelSizeNm, bool withZ)
    {
        LocalizationCsv.CheckPixelSize(pixelSizeNm);
        _px = pixelSizeNm;
        _withZ = withZ;
        _file = AtomicFile.Create(path);
        _w = new StreamWriter(_file.Stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
        _w.Write(withZ ? LocalizationCsv.HeaderWithZ : LocalizationCsv.Header);
        _w.Write('\n');
    }

    public void Append(ReadOnlySpan<Localization> locs)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        foreach (ref readonly var l in locs)
        {
            Span<char> b = _line;
            int n = 0;
            Int(ref n, b, Count + 1);
            Int(ref n, b, (long)l.Frame + 1);
            F(ref n, b, l.X * _px);
            F(ref n, b, l.Y * _px);
            if (_withZ) F(ref n, b, l.Z);
            F(ref n, b, l.Sigma * _px);
            F(ref n, b, l.Photons);
            F(ref n, b, l.Background);
            F(ref n, b, Math.Sqrt(Math.Max(0.0, l.Background)));
            F(ref n, b, Math.Sqrt(((double)l.UncertaintyX * l.UncertaintyX + (double)l.UncertaintyY * l.UncertaintyY) / 2) * _px);
            if (_withZ) F(ref n, b, l.UncertaintyZ);
            F(ref n, b, l.UncertaintyX * _px);
            F(ref n, b, l.UncertaintyY * _px);
            F(ref n, b, l.UncertaintyPhotons);
            F(ref n, b, l.UncertaintyBackground);
            F(ref n, b, l.UncertaintySigma * _px);
            F(ref n, b, l.LogLikelihood);
            F(ref n, b, l.Llr);
            Int(ref n, b, l.Iterations);
            Int(ref n, b, l.Detections);
            Int(ref n, b, Math.Max(1, l.FittedTogether));
            b[n - 1] = '\n'; // replaces the last separator
            _w.Write(b[..n]);
            Count++;
        }
    }

    // Values are float-precision quantities; formatting the float gives the shortest round-tripping text.
    private static void F(ref int n, Span<char> b, double v)
    {
        ((float)v).TryFormat(b[n..], out int k, default, CultureInfo.InvariantCulture);
        n += k;
        b[n++] = ',';
    }

    private static void Int(ref int n, Span<char> b, long v)
    {
        v.TryFormat(b[n..], out int k, default, CultureInfo.InvariantCulture);
        n += k;
        b[n++] = ',';
    }

    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        _w.Dispose(); // flushes; leaveOpen keeps the file for Commit's fsync and rename
        _done = true;
        _file.Commit();
    }

    public void Dispose()
    {
        if (!_done) { _done = true; try { _w.Dispose(); } catch (IOException) { } }
        _file.Dispose();
    }
}

/// <summary>A localization CSV as read: the localizations (engine units) plus every column by name, for filtering.</summary>
public sealed class LocalizationTable
{
    private readonly double[][] _data;
    private readonly string _file;

    public Localization[] Localizations { get; }
    /// <summary>Column names as in the header, without quotes.</summary>
    public IReadOnlyList<string> ColumnNames { get; }
    public int Count => Localizations.Length;

    private LocalizationTable(string file, string[] names, double[][] data, Localization[] locs)
    {
        _file = file; ColumnNames = names; _data = data; Localizations = locs;
    }

    /// <summary>True if a column matches <paramref name="name"/> (see <see cref="Column"/>).</summary>
    public bool HasColumn(string name) => Find(name) >= 0;

    /// <summary>
    /// The raw values (file units) of a column, matched by its full name ("x [nm]"), case-insensitively, or by the
    /// name without its unit ("x"). Missing -> <see cref="MaLiangException"/> naming the file and the column.
    /// </summary>
    public double[] Column(string name)
    {
        int i = Find(name);
        if (i < 0) throw new MaLiangException($"{_file}: no column \"{name}\" (columns: {string.Join(", ", ColumnNames)})");
        return _data[i];
    }

    private int Find(string name)
    {
        string want = Norm(name);
        for (int i = 0; i < ColumnNames.Count; i++) if (Norm(ColumnNames[i]) == want) return i;
        for (int i = 0; i < ColumnNames.Count; i++) if (BaseName(Norm(ColumnNames[i])) == want) return i;
        return -1;
    }

    private static string Norm(string s) => s.Trim().Trim('"').Trim().ToLowerInvariant();
    private static string BaseName(string s) { int b = s.IndexOf('['); return b < 0 ? s : s[..b].TrimEnd(); }
    private static string Unit(string s) { int b = s.IndexOf('['), e = s.IndexOf(']'); return b < 0 || e < b ? "" : s[(b + 1)..e].Trim(); }

    internal static LocalizationTable Load(string path, double pixelSizeNm)
    {
        LocalizationCsv.CheckPixelSize(pixelSizeNm);
        string file = System.IO.Path.GetFileName(path);
        StreamReader r;
        try { r = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new MaLiangException(e is FileNotFoundException or DirectoryNotFoundException ? $"{path}: file not found" : $"cannot read {path}: {e.Message}", e);
        }
        using (r)
        {
            string? header = r.ReadLine();
            if (string.IsNullOrWhiteSpace(header)) throw new MaLiangException($"{file} is empty (no CSV header)");
            var names = new List<string>();
            foreach (var f in Split(header)) names.Add(f.ToString());
            var norm = names.ConvertAll(Norm);

            int Col(params string[] bases)
            {
                foreach (var b in bases)
                    for (int i = 0; i < norm.Count; i++) if (BaseName(norm[i]) == b) return i;
                return -1;
            }
            int cFrame = Col("frame"), cX = Col("x"), cY = Col("y");
            foreach (var (c, colName) in new[] { (cFrame, "frame"), (cX, "x [nm]"), (cY, "y [nm]") })
                if (c < 0) throw new MaLiangException($"{file}: required column \"{colName}\" is missing (columns: {string.Join(", ", names)})");

            double Scale(int c)
            {
                if (c < 0) return 1;
                string u = Unit(norm[c]);
                return u switch
                {
                    "" or "nm" => 1 / pixelSizeNm,
                    "px" or "pixel" or "pixels" => 1,
                    "um" or "µm" or "micron" => 1000 / pixelSizeNm,
                    _ => throw new MaLiangException($"{file}: column \"{names[c]}\" has unit [{u}]; expected nm, um or px"),
                };
            }

            var cols = new List<double>[names.Count];
            for (int i = 0; i < cols.Length; i++) cols[i] = [];
            int lineNo = 1;
            string? line;
            while ((line = r.ReadLine()) != null)
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                int k = 0;
                foreach (var field in Split(line))
                {
                    if (k >= cols.Length) throw new MaLiangException($"{file} line {lineNo}: more than {cols.Length} fields");
                    cols[k].Add(Parse(field, file, lineNo, names[k]));
                    k++;
                }
                if (k != cols.Length) throw new MaLiangException($"{file} line {lineNo}: {k} fields, the header has {cols.Length}");
                double frame = cols[cFrame][^1];
                if (!(frame >= 1 && frame <= int.MaxValue && frame == Math.Round(frame)))
                    throw new MaLiangException($"{file} line {lineNo}: frame {frame.ToString(CultureInfo.InvariantCulture)} is not a whole number >= 1");
            }

            var data = Array.ConvertAll(cols, c => c.ToArray());
            int n = data.Length == 0 ? 0 : data[0].Length;
            var locs = new Localization[n];
            int cSig = Col("sigma"), cI = Col("intensity"), cOff = Col("offset"), cU = Col("uncertainty", "uncertainty_xy"),
                cUx = Col("uncertainty_x"), cUy = Col("uncertainty_y"), cUn = Col("uncertainty_photons"), cUb = Col("uncertainty_offset"),
                cUs = Col("uncertainty_sigma"), cLl = Col("loglikelihood"), cLlr = Col("llr"), cIt = Col("iterations"), cDet = Col("detections"),
                cZ = Col("z"), cUz = Col("uncertainty_z"), cTog = Col("fitted_together");
            // z stays in nm (not pixels): [nm] or no unit, or [um].
            double ZScale(int c) => c < 0 || Unit(norm[c]) is "" or "nm" ? 1 : Unit(norm[c]) is "um" or "µm" ? 1000
                : throw new MaLiangException($"{file}: column \"{names[c]}\" has unit [{Unit(norm[c])}]; expected nm or um");
            double sZ = ZScale(cZ), sUz = ZScale(cUz);
            double sX = Scale(cX), sY = Scale(cY), sSig = Scale(cSig), sU = Scale(cU), sUx = Scale(cUx), sUy = Scale(cUy), sUs = Scale(cUs);
            for (int i = 0; i < n; i++)
            {
                float V(int c, double scale) => c < 0 ? float.NaN : (float)(data[c][i] * scale);
                float u = V(cU, sU);
                locs[i] = new Localization
                {
                    Frame = (int)data[cFrame][i] - 1,
                    X = V(cX, sX),
                    Y = V(cY, sY),
                    Sigma = V(cSig, sSig),
                    Photons = V(cI, 1),
                    Background = V(cOff, 1),
                    UncertaintyX = cUx >= 0 ? V(cUx, sUx) : u,
                    UncertaintyY = cUy >= 0 ? V(cUy, sUy) : u,
                    UncertaintyPhotons = V(cUn, 1),
                    UncertaintyBackground = V(cUb, 1),
                    UncertaintySigma = V(cUs, sUs),
                    LogLikelihood = V(cLl, 1),
                    Llr = V(cLlr, 1),
                    Iterations = cIt < 0 ? 0 : ToInt(data[cIt][i], 0),
                    Detections = cDet < 0 ? 1 : ToInt(data[cDet][i], 1),
                    Z = cZ < 0 ? 0f : V(cZ, sZ),
                    UncertaintyZ = cUz < 0 ? 0f : V(cUz, sUz),
                    Flags = cZ >= 0 && double.IsFinite(data[cZ][i]) ? Localization.FlagHasZ : 0,
                    FittedTogether = cTog < 0 ? 1 : ToInt(data[cTog][i], 1),
                };
            }
            return new LocalizationTable(file, [.. names], data, locs);
        }
    }

    private static int ToInt(double v, int fallback) => double.IsFinite(v) ? (int)Math.Clamp(Math.Round(v), int.MinValue, int.MaxValue) : fallback;

    private static double Parse(ReadOnlySpan<char> s, string file, int line, string column)
    {
        s = s.Trim();
        if (s.Length >= 2 && s[0] == '"' && s[^1] == '"') s = s[1..^1].Trim();
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) return v;
        // Other tools' spellings of non-finite values (pandas, R).
        if (s.Equals("nan", StringComparison.OrdinalIgnoreCase) || s.Equals("NA", StringComparison.Ordinal) || s.IsEmpty) return double.NaN;
        if (s.Equals("inf", StringComparison.OrdinalIgnoreCase) || s.Equals("+inf", StringComparison.OrdinalIgnoreCase)) return double.PositiveInfinity;
        if (s.Equals("-inf", StringComparison.OrdinalIgnoreCase)) return double.NegativeInfinity;
        throw new MaLiangException($"{file} line {line}: \"{s.ToString()}\" in column \"{column}\" is not a number");
    }

    /// <summary>Comma-separated fields; a field may be double-quoted (no embedded quotes or commas in numeric CSVs).</summary>
    private static FieldEnumerator Split(string line) => new(line);

    private ref struct FieldEnumerator(string line)
    {
        private int _pos = 0;
        private bool _end = false;
        public ReadOnlySpan<char> Current { get; private set; }
        public readonly FieldEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_end) return false;
            var rest = line.AsSpan(_pos);
            int q = rest.TrimStart().Length > 0 && rest.TrimStart()[0] == '"' ? rest.IndexOf('"') : -1;
            int comma;
            if (q >= 0)
            {
                int close = rest[(q + 1)..].IndexOf('"');
                int after = close < 0 ? rest.Length : q + 1 + close + 1;
                int c2 = rest[after..].IndexOf(',');
                comma = c2 < 0 ? -1 : after + c2;
                Current = (close < 0 ? rest[(q + 1)..] : rest.Slice(q + 1, close)).Trim();
            }
            else
            {
                comma = rest.IndexOf(',');
                Current = (comma < 0 ? rest : rest[..comma]).Trim();
            }
            if (comma < 0) _end = true; else _pos += comma + 1;
            return true;
        }
    }
}
