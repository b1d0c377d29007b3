using MaLiang.Engine;
using NUnit.Framework;

namespace MaLiang.Engine.Tests;

public class SettingsTests
{
    [TestCase("psf-sigma", double.NaN)]
    [TestCase("pixel-size", -1.0)]
    [TestCase("photons-per-adu", 0.0)]
    public void BadParameterIsNamed(string name, double value)
    {
        var s = new LocalizerSettings();
        switch (name)
        {
            case "psf-sigma": s.PsfSigmaPx = value; break;
            case "pixel-size": s.PixelSizeNm = value; break;
            case "photons-per-adu": s.PhotonsPerAdu = value; break;
        }
        var ex = Assert.Throws<InvalidParameterException>(s.Validate)!;
        Assert.That(ex.Parameter, Is.EqualTo(name));
        Assert.That(ex.Message, Does.Contain(name));
    }

    [TestCase(6)]
    [TestCase(1)]
    public void EvenOrTinyRoiIsRejected(int roi)
    {
        var s = new LocalizerSettings { RoiSize = roi };
        Assert.That(Assert.Throws<InvalidParameterException>(s.Validate)!.Parameter, Is.EqualTo("roi"));
    }

    [Test]
    public void DefaultsAreValid() => Assert.DoesNotThrow(new LocalizerSettings().Validate);
}
