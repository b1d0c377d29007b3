using System.Globalization;
using MaLiang.Engine.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.IO;

public class LocalizationCsvTests
{
    private TempDir _dir = null!;

    [SetUp] public void SetUp() => _dir = new TempDir();
    [TearDown] public void TearDown() => _dir.Dispose();

    private const string ExpectedHeader =
        "\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"sigma [nm]\",\"intensity [photon]\",\"offset [photon]\",\"bkgstd [photon]\",\"uncertainty [nm]\",\"uncertainty_x [nm]\",\"uncertainty_y [nm]\",\"uncertainty_photons [photon]\",\"uncertainty_offset [photon]\",\"uncertainty_sigma [nm]\",\"loglikelihood\",\"llr\",\"iterations\",\"detections\",\"fitted_together\"";

    private static Localization[] RandomLocs(int n)
    {
        var r = new Random(42);
        var a = new Localization[n];
        for (int i = 0; i < n; i++)
            a[i] = new Localization
            {
                Frame = r.Next(0, 100000), X = (float)(r.NextDouble() * 512), Y = (float)(r.NextDouble() * 512),
                Photons = (float)(r.NextDouble() * 1e4), Background = (float)(r.NextDouble() * 50), Sigma = (float)(0.8 + r.NextDouble()),
                UncertaintyX = (float)(r.NextDouble() * 0.2), UncertaintyY = (float)(r.NextDouble() * 0.2),
                UncertaintyPhotons = (float)(r.NextDouble() * 100), UncertaintyBackground = (float)r.NextDouble(),
                UncertaintySigma = (float)(r.NextDouble() * 0.05), LogLikelihood = (float)(-r.NextDouble() * 1e5),
                Llr = (float)(r.NextDouble() * 80), Iterations = r.Next(1, 50), Detections = r.Next(1, 4),
            };
        return a;
    }

    private static void AssertClose(float actual, float expected, string what)
    {
        if (float.IsNaN(expected)) { Assert.That(actual, Is.NaN, what); return; }
        Assert.That(actual, Is.EqualTo(expected).Within(Math.Abs(expected) * 2e-7f + 1e-30f), what);
    }

    [Test]
    public void RoundTripsWithinFloatPrecision()
    {
        var locs = RandomLocs(500);
        locs[3].LogLikelihood = float.NaN;
        locs[4].Frame = 0;
        const double px = 117.5;
        LocalizationCsv.Write(_dir["l.csv"], locs, px);
        Assert.That(_dir.Files(), Is.EqualTo(new[] { "l.csv" }));
        Assert.That(File.ReadLines(_dir["l.csv"]).First(), Is.EqualTo(ExpectedHeader));

        var t = LocalizationCsv.Read(_dir["l.csv"], px);
        Assert.That(t.Count, Is.EqualTo(500));
        Assert.That(t.ColumnNames, Is.EqualTo(LocalizationCsv.Columns));
        for (int i = 0; i < locs.Length; i++)
        {
            var (a, e) = (t.Localizations[i], locs[i]);
            Assert.That((a.Frame, a.Iterations, a.Detections, a.FittedTogether), Is.EqualTo((e.Frame, e.Iterations, e.Detections, Math.Max(1, e.FittedTogether))));
            AssertClose(a.X, e.X, "x"); AssertClose(a.Y, e.Y, "y"); AssertClose(a.Sigma, e.Sigma, "sigma");
            AssertClose(a.Photons, e.Photons, "photons"); AssertClose(a.Background, e.Background, "bg");
            AssertClose(a.UncertaintyX, e.UncertaintyX, "ux"); AssertClose(a.UncertaintyY, e.UncertaintyY, "uy");
            AssertClose(a.UncertaintyPhotons, e.UncertaintyPhotons, "un"); AssertClose(a.UncertaintyBackground, e.UncertaintyBackground, "ub");
            AssertClose(a.UncertaintySigma, e.UncertaintySigma, "us"); AssertClose(a.LogLikelihood, e.LogLikelihood, "ll");
            AssertClose(a.Llr, e.Llr, "llr");
        }
        Assert.That(t.Column("id"), Is.EqualTo(Enumerable.Range(1, 500).Select(i => (double)i)));
    }

    [Test]
    public void WritesTheDocumentedConversions()
    {
        var l = new Localization
        {
            Frame = 6, X = 1.5f, Y = 2.25f, Sigma = 1.25f, Photons = 1000, Background = 16, UncertaintyX = 0.3f, UncertaintyY = 0.4f,
            UncertaintyPhotons = 31, UncertaintyBackground = 0.5f, UncertaintySigma = 0.02f, LogLikelihood = -123.5f, Llr = 40.25f,
            Iterations = 7, Detections = 2, FittedTogether = 3,
        };
        LocalizationCsv.Write(_dir["one.csv"], [l], 100);
        var lines = File.ReadAllLines(_dir["one.csv"]);
        Assert.That(lines, Has.Length.EqualTo(2));
        var f = lines[1].Split(',');
        Assert.That(f[..8], Is.EqualTo(new[] { "1", "7", "150", "225", "125", "1000", "16", "4" }));
        Assert.That(float.Parse(f[8], CultureInfo.InvariantCulture), Is.EqualTo((float)(Math.Sqrt(0.125) * 100)).Within(1e-4f), "sqrt((ux^2+uy^2)/2) in nm");
        Assert.That(float.Parse(f[9], CultureInfo.InvariantCulture), Is.EqualTo(30f).Within(1e-5f));
        Assert.That(float.Parse(f[10], CultureInfo.InvariantCulture), Is.EqualTo(40f).Within(1e-5f));
        Assert.That(f[11..], Is.EqualTo(new[] { "31", "0.5", "2", "-123.5", "40.25", "7", "2", "3" }));
    }

    [Test]
    public void StreamingWriterNumbersRowsAcrossBatchesAndIsAtomic()
    {
        var locs = RandomLocs(10);
        using (var w = new LocalizationCsvWriter(_dir["s.csv"], 100))
        {
            w.Append(locs.AsSpan(0, 4));
            w.Append(locs.AsSpan(4));
            Assert.That(File.Exists(_dir["s.csv"]), Is.False);
            w.Commit();
        }
        var t = LocalizationCsv.Read(_dir["s.csv"], 100);
        Assert.That(t.Column("id"), Is.EqualTo(Enumerable.Range(1, 10).Select(i => (double)i)));
        Assert.That(t.Localizations.Select(l => l.Frame), Is.EqualTo(locs.Select(l => l.Frame)));

        using (var w = new LocalizationCsvWriter(_dir["abandoned.csv"], 100)) w.Append(locs);
        Assert.That(_dir.Files(), Is.EqualTo(new[] { "s.csv" }));
    }

    [Test]
    public void ReadsThunderStormCsvInAnyOrderWithDefaults()
    {
        // ThunderSTORM style: unquoted here, frame and id as doubles, uncertainty_xy, no MaLiang columns, shuffled order.
        File.WriteAllText(_dir["ts.csv"],
            "frame,id,y [nm],x [nm],intensity [photon],sigma [nm],offset [photon],bkgstd [photon],uncertainty_xy [nm],chi2\r\n" +
            "20.0,1.0,3000.0,1500.0,1234.5,150.0,9.5,3.1,12.0,1.5\r\n" +
            "21.0,2.0,75,45,800,160,10,3.2,15,2\r\n\r\n");
        var t = LocalizationCsv.Read(_dir["ts.csv"], 150);
        Assert.That(t.Count, Is.EqualTo(2));
        var a = t.Localizations[0];
        Assert.That((a.Frame, a.X, a.Y, a.Sigma, a.Photons, a.Background), Is.EqualTo((19, 10f, 20f, 1f, 1234.5f, 9.5f)));
        Assert.That((a.UncertaintyX, a.UncertaintyY), Is.EqualTo((0.08f, 0.08f)));
        Assert.That((a.Iterations, a.Detections), Is.EqualTo((0, 1)));
        Assert.That(new[] { a.UncertaintyPhotons, a.UncertaintyBackground, a.UncertaintySigma, a.LogLikelihood, a.Llr }, Is.All.NaN);
        Assert.That(t.Localizations[1].Frame, Is.EqualTo(20));
        Assert.That(t.Localizations[1].X, Is.EqualTo(0.3f));
        // Any column, by full or short name, in file units.
        Assert.That(t.Column("chi2"), Is.EqualTo(new[] { 1.5, 2.0 }));
        Assert.That(t.Column("bkgstd"), Is.EqualTo(new[] { 3.1, 3.2 }));
        Assert.That(t.Column("X [nm]"), Is.EqualTo(new[] { 1500.0, 45.0 }));
        Assert.That(t.HasColumn("llr"), Is.False);
        var ex = Assert.Throws<MaLiangException>(() => t.Column("llr"))!;
        Assert.That(ex.Message, Does.StartWith("ts.csv: no column \"llr\""));
    }

    [Test]
    public void QuotedThunderStormHeaderWithCombinedUncertainty()
    {
        File.WriteAllText(_dir["q.csv"],
            "\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"sigma [nm]\",\"intensity [photon]\",\"offset [photon]\",\"bkgstd [photon]\",\"uncertainty [nm]\"\n" +
            "1,1,100,200,130,500,4,2,20\n");
        var l = LocalizationCsv.Read(_dir["q.csv"], 100).Localizations.Single();
        Assert.That((l.Frame, l.X, l.Y, l.Sigma, l.UncertaintyX, l.UncertaintyY), Is.EqualTo((0, 1f, 2f, 1.3f, 0.2f, 0.2f)));
    }

    [Test]
    public void PixelUnitsAreNotScaled()
    {
        File.WriteAllText(_dir["px.csv"], "frame,x [px],y [px],sigma [px]\n3,10.5,4.25,1.2\n");
        var l = LocalizationCsv.Read(_dir["px.csv"], 160).Localizations.Single();
        Assert.That((l.Frame, l.X, l.Y, l.Sigma), Is.EqualTo((2, 10.5f, 4.25f, 1.2f)));
    }

    [TestCase("id,frame,y [nm]\n1,1,2\n", "x [nm]")]
    [TestCase("id,x [nm],y [nm]\n1,1,2\n", "frame")]
    [TestCase("frame,x [nm]\n1,1\n", "y [nm]")]
    public void MissingRequiredColumnIsNamed(string content, string column)
    {
        File.WriteAllText(_dir["bad.csv"], content);
        var ex = Assert.Throws<MaLiangException>(() => LocalizationCsv.Read(_dir["bad.csv"], 100))!;
        Assert.That(ex.Message, Does.StartWith($"bad.csv: required column \"{column}\" is missing"));
    }

    [Test]
    public void BadNumberNamesFileLineAndColumn()
    {
        File.WriteAllText(_dir["bad.csv"], "frame,x [nm],y [nm]\n1,10,20\n2,1O,20\n");
        var ex = Assert.Throws<MaLiangException>(() => LocalizationCsv.Read(_dir["bad.csv"], 100))!;
        Assert.That(ex.Message, Is.EqualTo("bad.csv line 3: \"1O\" in column \"x [nm]\" is not a number"));
    }

    [Test]
    public void WrongFieldCountAndBadFrameNameTheLine()
    {
        File.WriteAllText(_dir["short.csv"], "frame,x [nm],y [nm]\n1,10,20\n2,10\n");
        Assert.That(Assert.Throws<MaLiangException>(() => LocalizationCsv.Read(_dir["short.csv"], 100))!.Message,
            Is.EqualTo("short.csv line 3: 2 fields, the header has 3"));
        File.WriteAllText(_dir["zero.csv"], "frame,x [nm],y [nm]\n0,10,20\n");
        Assert.That(Assert.Throws<MaLiangException>(() => LocalizationCsv.Read(_dir["zero.csv"], 100))!.Message,
            Is.EqualTo("zero.csv line 2: frame 0 is not a whole number >= 1"));
    }

    [Test]
    public void EmptyFileAndBadPixelSize()
    {
        File.WriteAllText(_dir["empty.csv"], "");
        Assert.That(Assert.Throws<MaLiangException>(() => LocalizationCsv.Read(_dir["empty.csv"], 100))!.Message, Is.EqualTo("empty.csv is empty (no CSV header)"));
        Assert.That(Assert.Throws<InvalidParameterException>(() => LocalizationCsv.Read(_dir["empty.csv"], 0))!.Parameter, Is.EqualTo("pixel-size"));
        Assert.That(Assert.Throws<InvalidParameterException>(() => LocalizationCsv.Write(_dir["o.csv"], [], double.NaN))!.Parameter, Is.EqualTo("pixel-size"));
    }
}
