using System.Globalization;

namespace MaLiang.Engine.Post;

/// <summary>An axis-aligned rectangle in camera pixels, [X0, X1) x [Y0, Y1) (engine coordinates, origin at the
/// top-left corner of the top-left pixel).</summary>
public readonly record struct RegionPx(double X0, double Y0, double X1, double Y1)
{
    public double Width => X1 - X0;
    public double Height => Y1 - Y0;
    public bool Contains(double x, double y) => x >= X0 && x < X1 && y >= Y0 && y < Y1;

    /// <summary>Throws <see cref="InvalidParameterException"/> naming <paramref name="parameter"/> unless finite with X1 &gt; X0, Y1 &gt; Y0.</summary>
    public void Validate(string parameter)
    {
        if (!double.IsFinite(X0) || !double.IsFinite(Y0) || !double.IsFinite(X1) || !double.IsFinite(Y1) || X1 <= X0 || Y1 <= Y0)
            throw new InvalidParameterException(parameter, $"region {this} must be finite with x0 < x1 and y0 < y1 (px)");
    }

    /// <summary>Parses "x0,y0,x1,y1" (px), as the CLI's --region takes it.</summary>
    public static RegionPx Parse(string text, string parameter = "region")
    {
        var parts = text.Split(',');
        if (parts.Length != 4) throw new InvalidParameterException(parameter, $"'{text}' is not x0,y0,x1,y1 (px)");
        var v = new double[4];
        for (int i = 0; i < 4; i++)
            if (!double.TryParse(parts[i].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]))
                throw new InvalidParameterException(parameter, $"'{parts[i].Trim()}' in '{text}' is not a number");
        var r = new RegionPx(v[0], v[1], v[2], v[3]);
        r.Validate(parameter);
        return r;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{X0},{Y0},{X1},{Y1}");
}
