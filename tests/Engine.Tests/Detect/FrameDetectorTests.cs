using MaLiang.Engine.Camera;
using MaLiang.Engine.Denoise;
using MaLiang.Engine.Detect;
using MaLiang.Engine.Simulate;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.Detect;

public class FrameDetectorTests
{
    [TestCase(37, 29)]   // pixel count not a multiple of the vector length
    [TestCase(64, 64)]
    public void PhotonsAreTheCameraModelsConversion(int w, int h)
    {
        var r = new Random(w);
        var adu = new ushort[w * h];
        for (int i = 0; i < adu.Length; i++) adu[i] = (ushort)r.Next(0, 65536);
        var settings = new LocalizerSettings { OffsetAdu = 100, PhotonsPerAdu = 4.5, EmGain = 30 };
        var fd = new FrameDetector(settings);
        fd.Detect(adu, w, h, new List<Candidate>());
        var expected = new float[w * h];
        CameraModel.From(settings).ToPhotons(adu, expected);
        Assert.That(fd.Photons.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void ChainsFilterNoiseThresholdAndDetection()
    {
        const int w = 64, h = 48;
        var r = new Random(3);
        var photons = new float[w * h];
        // a spot centred on pixel (30, 20) over flat, slightly noisy background
        for (int i = 0; i < photons.Length; i++)
            photons[i] = (float)(IntegratedGaussian.PixelExpectation(i % w, i / w, 30.5, 20.5, 2000, 10, 1.3) + r.NextDouble() - 0.5);
        var settings = new LocalizerSettings { Threshold = 6, RoiSize = 7 };
        var fd = new FrameDetector(settings);
        var found = new List<Candidate>();
        var result = fd.Detect(photons, w, h, found);

        // the same steps by hand
        var filtered = new float[w * h];
        new MaliangFilter(3).Apply(photons, filtered, w, h);
        float std = NoiseEstimator.RobustStd(filtered, w, h, new float[NoiseEstimator.ScratchLength(w, h)]);
        Assert.That(result.NoiseStd, Is.EqualTo(std));
        Assert.That(result.Threshold, Is.EqualTo(6 * std));
        Assert.That(fd.Filtered.ToArray(), Is.EqualTo(filtered));
        Assert.That(found.Select(c => (c.X, c.Y)), Is.EqualTo(new[] { (30, 20) }));
        Assert.That(result.Stats.Candidates, Is.EqualTo(1));
        Assert.That(fd.Times.Frames, Is.EqualTo(1));
    }
}
