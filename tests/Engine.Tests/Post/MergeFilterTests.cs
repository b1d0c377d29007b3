using MaLiang.Engine;
using MaLiang.Engine.Post;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Post;

public class MergeTests
{
    [Test]
    public void MergingBlinkingRecoversTrueCountWithin2Percent()
    {
        // 3000 molecules in a 100 x 100 px field, each on once for a geometric number of frames (mean 3) starting in frames 0..1999,
        // single missed frames inside the on-time (10%), 10 nm localization noise.
        var r = new Random(4);
        var locs = new List<Localization>();
        int molecules = 0;
        for (int m = 0; m < 3000; m++)
        {
            double x = 100 * r.NextDouble(), y = 100 * r.NextDouble();
            int start = r.Next(2000), len = 1;
            while (r.NextDouble() < 2.0 / 3.0) len++;
            bool missedPrev = true; // never miss the first frame
            int emitted = 0;
            for (int f = start; f < start + len; f++)
            {
                bool miss = !missedPrev && f < start + len - 1 && r.NextDouble() < 0.1;
                missedPrev = miss;
                if (miss) continue;
                locs.Add(Sim.Loc(f, x + 0.1 * Sim.Gauss(r), y + 0.1 * Sim.Gauss(r), 500 + 1000 * r.NextDouble(), 0.1));
                emitted++;
            }
            if (emitted > 0) molecules++;
        }
        var input = locs.OrderBy(l => l.Frame).ToArray();
        var merged = Merger.Merge(input, new MergeSettings { RadiusPx = 0.5, MaxGapFrames = 1 });
        TestContext.Out.WriteLine($"{input.Length} localizations, {molecules} molecules, {merged.Length} merged");
        Assert.That(input.Length, Is.GreaterThan(2 * molecules), "the test has real blinking to merge");
        Assert.That(merged.Length, Is.EqualTo(molecules).Within(2).Percent);
        Assert.That(merged.Sum(l => l.Detections), Is.EqualTo(input.Length));
        Assert.That(merged.Sum(l => (double)l.Photons), Is.EqualTo(input.Sum(l => (double)l.Photons)).Within(1e-6).Percent);
        for (int i = 1; i < merged.Length; i++) Assert.That(merged[i].Frame, Is.GreaterThanOrEqualTo(merged[i - 1].Frame));
        // deterministic
        Assert.That(Merger.Merge(input, new MergeSettings { RadiusPx = 0.5, MaxGapFrames = 1 }), Is.EqualTo(merged));
    }

    [Test]
    public void MergedValuesAreWeightedAndCombined()
    {
        Localization[] locs =
        [
            Sim.Loc(3, 10.0, 20.0, 100, 0.2),
            Sim.Loc(4, 10.3, 20.3, 300, 0.1),
            Sim.Loc(6, 10.1, 20.1, 100, 0.2),   // gap of one frame: same molecule
            Sim.Loc(9, 10.1, 20.1, 100, 0.2),   // gap of two frames: new molecule
            Sim.Loc(4, 30.0, 30.0, 100, 0.2),   // elsewhere
        ];
        var m = Merger.Merge(locs, new MergeSettings { RadiusPx = 0.5, MaxGapFrames = 1 });
        Assert.That(m, Has.Length.EqualTo(3));
        Assert.That(m[0].Frame, Is.EqualTo(3));
        Assert.That(m[0].Detections, Is.EqualTo(3));
        Assert.That(m[0].Photons, Is.EqualTo(500f));
        Assert.That(m[0].X, Is.EqualTo((100 * 10.0 + 300 * 10.3 + 100 * 10.1) / 500).Within(1e-5));
        Assert.That(m[0].UncertaintyX, Is.EqualTo(1 / Math.Sqrt(25 + 100 + 25)).Within(1e-6));
        Assert.That(m[1].Frame, Is.EqualTo(4));
        Assert.That(m[1].X, Is.EqualTo(30f));
        Assert.That(m[2].Frame, Is.EqualTo(9));
        Assert.That(m[2].Detections, Is.EqualTo(1));
    }

    [Test]
    public void BadRadiusIsNamed()
        => Assert.That(Assert.Throws<InvalidParameterException>(() => Merger.Merge([], new MergeSettings { RadiusPx = 0 }))!.Parameter, Is.EqualTo("radius"));
}

public class FilterTests
{
    private static readonly string[] Names = ["x", "x [nm]", "uncertainty [nm]", "intensity [photon]", "frame"];
    private static readonly Dictionary<string, double[]> Table = new()
    {
        ["x"] = [1, 2, 3, 4, 5],
        ["x [nm]"] = [100, 200, 300, 400, 500],
        ["uncertainty [nm]"] = [10, 25, 15, double.NaN, 5],
        ["intensity [photon]"] = [400, 1000, 200, 500, 301],
        ["frame"] = [1, 1, 2, 3, 3],
    };

    private static bool[] Eval(string e) => FilterExpression.Evaluate(e, Names, n => Table.GetValueOrDefault(n), 5);

    [TestCase("uncertainty [nm] < 20 && intensity [photon] > 300", new[] { true, false, false, false, true })]
    [TestCase("x [nm] >= 300", new[] { false, false, true, true, true })]
    [TestCase("x >= 3", new[] { false, false, true, true, true })]
    [TestCase("x*100 == x [nm]", new[] { true, true, true, true, true })]
    [TestCase("\"x [nm]\" / 100 - x != 0", new[] { false, false, false, false, false })]
    [TestCase("!(frame == 1) || intensity [photon] >= 1000", new[] { false, true, true, true, true })]
    [TestCase("frame = 3 && -x < -4.5", new[] { false, false, false, false, true })]
    [TestCase("uncertainty [nm] != 10", new[] { false, true, true, false, true })]
    [TestCase("X [NM] <= 2e2 || (frame > 2 && uncertainty [nm] > 1)", new[] { true, true, false, false, true })]
    [TestCase("1 + 2 * 3 == 7 && (1 + 2) * 3 == 9", new[] { true, true, true, true, true })]
    public void MasksAreExact(string expr, bool[] expected) => Assert.That(Eval(expr), Is.EqualTo(expected));

    [Test]
    public void UnknownColumnListsTheAvailableOnes()
    {
        var ex = Assert.Throws<MaLiangException>(() => Eval("photons [photon] > 3"))!;
        Assert.That(ex.Message, Does.Contain("unknown column 'photons [photon]'"));
        Assert.That(ex.Message, Does.Contain("\"intensity [photon]\""));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        Assert.That(Assert.Throws<MaLiangException>(() => Eval("\"sigma\" > 1"))!.Message, Does.Contain("unknown column 'sigma'"));
    }

    [TestCase("x > ", 5)]
    [TestCase("(x > 3", 7)]
    [TestCase("x > 3 )", 7)]
    [TestCase("x > > 3", 5)]
    [TestCase("x + 1", -1)]
    [TestCase("1 < x < 3", 7)]
    [TestCase("x > 3 && 4", 7)]
    public void SyntaxErrorsPointAtThePosition(string expr, int position)
    {
        var ex = Assert.Throws<MaLiangException>(() => Eval(expr))!;
        Assert.That(ex.Message, Does.StartWith("filter:"));
        if (position > 0) Assert.That(ex.Message, Does.Contain($"position {position}"));
        else Assert.That(ex.Message, Does.Contain("not a condition"));
    }

    [Test]
    public void LocalizationColumnsFeedTheFilter()
    {
        Localization[] locs = [Sim.Loc(0, 1, 1, 100, 0.1), Sim.Loc(1, 2, 2, 500, 0.3), Sim.Loc(2, 3, 3, 800, 0.15)];
        var mask = FilterExpression.Evaluate("uncertainty [nm] < 20 && intensity [photon] > 300 && frame >= 2",
            LocalizationColumns.Names, LocalizationColumns.Provider(locs, 100), locs.Length);
        Assert.That(mask, Is.EqualTo(new[] { false, false, true }));
        Assert.That(LocalizationColumns.Select(locs, mask).Single().Frame, Is.EqualTo(2));
    }

    [Test]
    public void DensityFilterCountsNeighboursWithinRadius()
    {
        // a cluster of 5 points within 0.3 px, a pair 0.4 px apart, and an isolated point
        Localization[] locs =
        [
            Sim.Loc(0, 10, 10), Sim.Loc(0, 10.1, 10), Sim.Loc(0, 10, 10.1), Sim.Loc(0, 10.1, 10.1), Sim.Loc(0, 10.2, 10.2),
            Sim.Loc(0, 20, 20), Sim.Loc(0, 20.4, 20),
            Sim.Loc(0, 30, 30),
        ];
        Assert.That(DensityFilter.Mask(locs, 0.5, 4), Is.EqualTo(new[] { true, true, true, true, true, false, false, false }));
        Assert.That(DensityFilter.Mask(locs, 0.5, 1), Is.EqualTo(new[] { true, true, true, true, true, true, true, false }));
        Assert.That(DensityFilter.Mask(locs, 0.35, 1), Is.EqualTo(new[] { true, true, true, true, true, false, false, false }));
    }
}
