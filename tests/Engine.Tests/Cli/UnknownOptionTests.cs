using System.CommandLine;
using MaLiang.Cli;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Cli;

/// <summary>A mistyped option is named as such (exit 2, a suggestion, no output file), never taken for an input file.</summary>
[NonParallelizable]
public class UnknownOptionTests
{
    private string _dir = "", _cwd = "";

    [SetUp] public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "maliang-opt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _cwd = Directory.GetCurrentDirectory();
    }

    [TearDown] public void TearDown()
    {
        Directory.SetCurrentDirectory(_cwd);
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    private string Simulated(string name)
    {
        var r = Run("simulate", P(name), "--truth", P("truth.csv"), "--width", "32", "--height", "32", "--frames", "3",
            "--emitters", "4", "--emitters-per-frame", "3", "--photons", "2000", "--offset", "100", "--seed", "5");
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        return P(name);
    }

    private void AssertNothingWritten(params string[] kept)
    {
        var left = Directory.GetFiles(_dir).Select(Path.GetFileName).Except(kept).ToArray();
        Assert.That(left, Is.Empty, "no output and no temporary file");
    }

    /// <summary>The issue's own command line: was "maliang: --psf-sgma: no such file".</summary>
    [Test]
    public void MistypedLocalizeOptionIsNamedWithASuggestion()
    {
        var movie = Simulated("movie.tif");
        var r = Run("localize", movie, "-o", P("locs.csv"), "--psf-sgma", "1.2");
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Is.EqualTo("maliang: unknown option --psf-sgma (did you mean --psf-sigma?)" + Environment.NewLine));
        Assert.That(r.Out, Is.Empty);
        AssertNothingWritten("movie.tif", "truth.csv");
    }

    /// <summary>Every verb, with a typo of each of its own long options (one letter dropped): exit 2, the exact message
    /// with that option as the suggestion, nothing written. Positional arguments are given as the verb expects them.</summary>
    [Test]
    public void EveryVerbAnswersAMistypedOptionWithItsOwnName()
    {
        int checkedOptions = 0;
        foreach (var verb in Commands.BuildRoot().Subcommands)
        {
            var positional = verb.Arguments.Select((a, i) => P($"in{i}.csv")).ToList();
            foreach (var option in verb.Options.Where(o => o.Name.StartsWith("--") && o.Name.Length >= 6))
            {
                string typo = option.Name.Remove(option.Name.Length / 2 + 1, 1);
                var args = new List<string> { verb.Name };
                args.AddRange(positional);
                if (verb.Options.Any(o => o.Aliases.Contains("-o"))) args.AddRange(["-o", P("out.csv")]);
                args.AddRange([typo, "1"]);
                var r = Run(args.ToArray());
                string what = string.Join(' ', args.Select(Path.GetFileName));
                Assert.That(r.Code, Is.EqualTo(2), what + ": " + r.Err);
                Assert.That(r.Err, Is.EqualTo($"maliang: unknown option {typo} (did you mean {option.Name}?)" + Environment.NewLine), what);
                Assert.That(r.Out, Is.Empty, what);
                AssertNothingWritten();
                checkedOptions++;
            }
        }
        Assert.That(checkedOptions, Is.GreaterThan(60), "the verbs' options were all tried");
    }

    /// <summary>Verbs without positional arguments (bench, devices) and the root too; an option far from every name gets
    /// a pointer to --help instead of a guess.</summary>
    [TestCase(new[] { "devices", "--verbose" }, "maliang: unknown option --verbose (see: maliang devices --help)")]
    [TestCase(new[] { "bench", "--jsn" }, "maliang: unknown option --jsn (did you mean --json?)")]
    [TestCase(new[] { "bench", "--frames", "20", "--sizes", "64" }, "maliang: unknown option --sizes (did you mean --size?)")]
    [TestCase(new[] { "render", "--magnificaton=5", "locs.csv", "-o", "x.png" }, "maliang: unknown option --magnificaton (did you mean --magnification?)")]
    [TestCase(new[] { "localize", "movie.tif", "-o", "x.csv", "--completely-unknown" }, "maliang: unknown option --completely-unknown (see: maliang localize --help)")]
    [TestCase(new[] { "localize", "movie.tif", "-o", "x.csv", "-Q" }, "maliang: unknown option -Q (see: maliang localize --help)")]
    [TestCase(new[] { "--verison" }, "maliang: unknown option --verison (did you mean --version?)")]
    [TestCase(new[] { "localise", "movie.tif", "-o", "x.csv" }, "maliang: unknown command localise (did you mean localize?)")]
    public void UnknownOptionMessages(string[] args, string expected)
    {
        Directory.SetCurrentDirectory(_dir);
        var r = Run(args);
        Assert.That(r.Code, Is.EqualTo(2), r.Err);
        Assert.That(r.Err, Is.EqualTo(expected + Environment.NewLine));
        AssertNothingWritten();
    }

    /// <summary>A file whose name starts with "-" is still an input: after "--", or written as ./-name. A negative
    /// number stays an option's value.</summary>
    [Test]
    public void DashFilesStayReachable()
    {
        Simulated("movie.tif");
        File.Move(P("movie.tif"), P("-movie.tif"));
        Directory.SetCurrentDirectory(_dir);
        var a = Run("localize", "-o", "a.csv", "--offset", "100", "-q", "--", "-movie.tif");
        Assert.That(a.Code, Is.EqualTo(0), a.Err);
        var b = Run("localize", "./-movie.tif", "-o", "b.csv", "--offset", "100", "-q");
        Assert.That(b.Code, Is.EqualTo(0), b.Err);
        Assert.That(File.ReadAllText(P("b.csv")), Is.EqualTo(File.ReadAllText(P("a.csv"))));
        Assert.That(File.ReadAllLines(P("a.csv")), Has.Length.GreaterThan(3), "localizations were written");
        // without "--" the same name is an option the verb does not have, not a file
        var c = Run("localize", "-movie.tif", "-o", "c.csv");
        Assert.That(c.Code, Is.EqualTo(2));
        Assert.That(c.Err, Does.StartWith("maliang: unknown option -movie.tif"));
        Assert.That(File.Exists(P("c.csv")), Is.False);
        // "--offset -5" is a value (then rejected by the engine's own check with its message, not as an option)
        var d = Run("localize", "./-movie.tif", "-o", "d.csv", "--offset", "-5", "-q");
        Assert.That(d.Err, Does.Not.Contain("unknown option"));
    }

    [Test]
    public void SuggestionDistance()
    {
        Assert.That(UnknownOptions.Distance("psf-sgma", "psf-sigma"), Is.EqualTo(1));
        Assert.That(UnknownOptions.Distance("psf-simga", "psf-sigma"), Is.EqualTo(1), "a swap of neighbours is one edit");
        Assert.That(UnknownOptions.Distance("offset", "photons-per-adu"), Is.GreaterThan(3));
        Assert.That(UnknownOptions.Suggest("--Offset", ["--offset", "-o", "--output"]), Is.EqualTo("--offset"));
        Assert.That(UnknownOptions.Suggest("-x", ["-o", "--output"]), Is.Null, "no single-letter guesses");
    }
}
