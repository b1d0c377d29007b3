using System.Diagnostics;
using MaLiang.Cli;
using MaLiang.Engine.IO;
using NUnit.Framework;

namespace MaLiang.Engine.Tests.IO;

/// <summary>
/// Compressed and tiled TIFFs written by tifffile (Debian's python3-tifffile, through tests/compressed_tiffs.py), read
/// by <see cref="TiffStack"/> (LibTiff.NET for the compressed pages): pixel for pixel equal to the uncompressed original,
/// the same CSV from `maliang localize`, and one clear error for broken or unsupported ones.
/// </summary>
[NonParallelizable]
public class CompressedTiffTests
{
    private const int W = 64, H = 48, N = 6;
    private TempDir _dir = null!;
    private string _source = "", _stack = "";
    private ushort[] _pixels = [];
    private Dictionary<string, string> _files = [], _stackFiles = [];

    /// <summary>Runs tests/compressed_tiffs.py on <paramref name="source"/>; returns variant name to path.</summary>
    internal static Dictionary<string, string> Variants(string source, string outDir)
    {
        string script = Path.Combine(TestContext.CurrentContext.TestDirectory, "compressed_tiffs.py");
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script); psi.ArgumentList.Add(source); psi.ArgumentList.Add(outDir);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.EqualTo(0), $"{script} failed (python3-tifffile installed? make setup): {stderr}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToDictionary(a => a[0], a => a[1]);
    }

    [OneTimeSetUp]
    public void Write()
    {
        _dir = new TempDir();
        // Pixels that exercise every codec path: noise over the whole 16-bit range, long constant runs (PackBits runs),
        // smooth ramps (predictor, LZW table growth past 4094 codes), both extremes.
        var rng = new Random(7);
        _pixels = new ushort[N * W * H];
        for (int f = 0; f < N; f++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int i = (f * H + y) * W + x;
                    _pixels[i] = (y % 7) switch
                    {
                        0 => (ushort)rng.Next(0, 65536),
                        1 => 100,
                        2 => (ushort)(x * 1000 + f),
                        3 => x < 10 ? (ushort)0 : (ushort)65535,
                        _ => (ushort)(100 + rng.Next(0, 40) + (x == 20 + f && y > 20 ? 3000 : 0)),
                    };
                }
        _source = _dir["source.tif"];
        TiffWriter.Write(_source, _pixels, W, H, N);
        _files = Variants(_source, _dir["v"]);

        // A simulated movie for the end-to-end CSV comparison.
        _stack = _dir["sim.tif"];
        int code = Commands.Run(["simulate", _stack, "--truth", _dir["truth.csv"], "--width", "64", "--height", "64", "--frames", "8",
            "--emitters", "10", "--emitters-per-frame", "6", "--photons", "2000", "--offset", "100", "--seed", "11"]);
        Assert.That(code, Is.EqualTo(0));
        _stackFiles = Variants(_stack, _dir["s"]);
    }

    [OneTimeTearDown] public void Cleanup() => _dir.Dispose();

    private static float[] ReadAll(TiffStack s)
    {
        var all = new float[s.FrameCount * s.Width * s.Height];
        for (int f = 0; f < s.FrameCount; f++) s.ReadFrame(f, all.AsSpan(f * s.Width * s.Height, s.Width * s.Height));
        return all;
    }

    [TestCase("deflate")]
    [TestCase("deflate_old")]
    [TestCase("deflate_predictor")]
    [TestCase("lzw")]
    [TestCase("lzw_predictor")]
    [TestCase("packbits")]
    [TestCase("tiled")]
    [TestCase("tiled_deflate")]
    [TestCase("tiled_lzw")]
    [TestCase("bigtiff_lzw")]
    [TestCase("bigendian_deflate")]
    [TestCase("bigendian_lzw_predictor")]
    [TestCase("imagej_deflate")]
    [TestCase("ome_lzw")]
    public void DecodesPixelForPixel(string variant)
    {
        using var s = TiffStack.Open(_files[variant]);
        Assert.That((s.Width, s.Height, s.FrameCount, s.PixelType), Is.EqualTo((W, H, N, PixelType.UInt16)));
        Assert.That(ReadAll(s), Is.EqualTo(_pixels.Select(v => (float)v).ToArray()));
        // the 16-bit path the CLI uses
        var u = new ushort[W * H];
        for (int f = 0; f < N; f++)
        {
            s.ReadFrame(f, u);
            Assert.That(u, Is.EqualTo(_pixels.AsSpan(f * W * H, W * H).ToArray()), $"frame {f + 1}, 16-bit path");
        }
    }

    [TestCase("u8_lzw", PixelType.UInt8)]
    [TestCase("u8_packbits", PixelType.UInt8)]
    [TestCase("u32_deflate", PixelType.UInt32)]
    [TestCase("f32_deflate", PixelType.Float32)]
    public void DecodesOtherSampleTypes(string variant, PixelType type)
    {
        // the transformations tests/compressed_tiffs.py applies to the 16-bit source
        Func<ushort, float> expect = type switch
        {
            PixelType.UInt8 => v => Math.Min(v >> 4, 255),
            PixelType.UInt32 => v => v * 1000u,
            _ => v => v * 0.25f,
        };
        using var s = TiffStack.Open(_files[variant]);
        Assert.That(s.PixelType, Is.EqualTo(type));
        Assert.That(ReadAll(s), Is.EqualTo(_pixels.Select(expect).ToArray()));
    }

    /// <summary>Files LibTiff.NET itself writes (an encoder independent of tests/compressed_tiffs.py), one big strip per
    /// frame of noise: LZW runs past 4094 codes (Clear and restart), which the truncation check must count right.</summary>
    [TestCase(BitMiracle.LibTiff.Classic.Compression.LZW)]
    [TestCase(BitMiracle.LibTiff.Classic.Compression.ADOBE_DEFLATE)]
    [TestCase(BitMiracle.LibTiff.Classic.Compression.PACKBITS)]
    public void ReadsWhatLibTiffWrites(BitMiracle.LibTiff.Classic.Compression compression)
    {
        const int w = 256, h = 200, n = 3;
        var rng = new Random(5);
        var px = new ushort[n * w * h];
        for (int i = 0; i < px.Length; i++) px[i] = (ushort)(i % 3 == 0 ? 500 : rng.Next(0, 65536));
        string path = _dir[$"libtiff-{compression}.tif"];
        using (var t = BitMiracle.LibTiff.Classic.Tiff.Open(path, "w"))
        {
            for (int f = 0; f < n; f++)
            {
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.IMAGEWIDTH, w);
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.IMAGELENGTH, h);
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.BITSPERSAMPLE, 16);
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.SAMPLESPERPIXEL, 1);
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.PHOTOMETRIC, BitMiracle.LibTiff.Classic.Photometric.MINISBLACK);
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.ROWSPERSTRIP, h);
                t.SetField(BitMiracle.LibTiff.Classic.TiffTag.COMPRESSION, compression);
                var bytes = new byte[w * h * 2];
                Buffer.BlockCopy(px, f * w * h * 2, bytes, 0, bytes.Length);
                t.WriteEncodedStrip(0, bytes, bytes.Length);
                t.WriteDirectory();
            }
        }
        using var s = TiffStack.Open(path);
        Assert.That(ReadAll(s), Is.EqualTo(px.Select(v => (float)v).ToArray()));
    }

    [Test]
    public void ConcurrentReadsOfCompressedFramesAgree()
    {
        using var s = TiffStack.Open(_files["lzw"]);
        var got = new float[N * 20][];
        Parallel.For(0, got.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, k =>
        {
            got[k] = new float[W * H];
            s.ReadFrame(k % N, got[k]);
        });
        for (int k = 0; k < got.Length; k++)
            Assert.That(got[k], Is.EqualTo(_pixels.AsSpan((k % N) * W * H, W * H).ToArray().Select(v => (float)v).ToArray()), $"read {k}");
    }

    [Test]
    public void LibTiffAndTheMappedReaderAgreeOnUncompressedFiles()
    {
        using var a = TiffStack.Open([_source], TiffDecoder.Auto);
        using var b = TiffStack.Open([_source], TiffDecoder.LibTiff);
        Assert.That(ReadAll(b), Is.EqualTo(ReadAll(a)));
        using var t = TiffStack.Open([_files["tiled"]], TiffDecoder.LibTiff);
        Assert.That(ReadAll(t), Is.EqualTo(ReadAll(a)));
        // one strip of more than 8 KB per frame: LibTiff must not "chop" it into strips our layout does not know
        var big = new ushort[3 * 128 * 100];
        for (int i = 0; i < big.Length; i++) big[i] = (ushort)(i * 7919);
        TiffWriter.Write(_dir["big.tif"], big, 128, 100, 3);
        using var m = TiffStack.Open([_dir["big.tif"]], TiffDecoder.Auto);
        using var l = TiffStack.Open([_dir["big.tif"]], TiffDecoder.LibTiff);
        Assert.That(ReadAll(l), Is.EqualTo(big.Select(v => (float)v).ToArray()));
        Assert.That(ReadAll(m), Is.EqualTo(ReadAll(l)));
    }

    [Test]
    public void SeveralCompressedFilesReadAsOneStack()
    {
        using var s = TiffStack.Open([_files["lzw"], _source, _files["tiled_deflate"]]);
        Assert.That(s.FrameCount, Is.EqualTo(3 * N));
        var all = ReadAll(s);
        var one = _pixels.Select(v => (float)v).ToArray();
        Assert.That(all, Is.EqualTo(one.Concat(one).Concat(one).ToArray()));
    }

    // ------------------------------------------------------------ bad input

    [TestCase("cut_strip")]
    [TestCase("cut_lzw")]
    public void ATruncatedCompressedStripNamesFileAndFrame(string variant)
    {
        using var s = TiffStack.Open(_files[variant]);
        var buf = new float[W * H];
        s.ReadFrame(0, buf); // frame 1 is intact
        Assert.That(buf, Is.EqualTo(_pixels.AsSpan(0, W * H).ToArray().Select(v => (float)v).ToArray()));
        var ex = Assert.Throws<MaLiangException>(() => s.ReadFrame(1, buf))!;
        Assert.That(ex.Message, Does.StartWith($"{variant}.tif: frame 2: strip 1 "));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        s.ReadFrame(2, buf); // a failed decode does not poison the next one
        Assert.That(buf, Is.EqualTo(_pixels.AsSpan(2 * W * H, W * H).ToArray().Select(v => (float)v).ToArray()));
    }

    [Test]
    public void CompressedRgbIsRefused()
    {
        var ex = Assert.Throws<MaLiangException>(() => TiffStack.Open(_files["rgb_deflate"]).Dispose())!;
        Assert.That(ex.Message, Is.EqualTo("rgb_deflate.tif: RGB (3 samples per pixel) is not supported; convert to a grayscale stack"));
    }

    [Test]
    public void CompressedFileCutShortIsNamedAtOpen()
    {
        var bytes = File.ReadAllBytes(_files["lzw"]);
        // tifffile writes each page's data after its IFD: cutting the last 100 bytes cuts the last frame's last strip.
        File.WriteAllBytes(_dir["short.tif"], bytes[..^100]);
        var ex = Assert.Throws<MaLiangException>(() => TiffStack.Open(_dir["short.tif"]).Dispose())!;
        Assert.That(ex.Message, Does.StartWith("short.tif is truncated: frame 6 strip"));
    }

    // ------------------------------------------------------------ the CLI, end to end

    private static (int Code, string Err) Cli(params string[] args)
    {
        var e = Console.Error; var o = Console.Out;
        var se = new StringWriter();
        Console.SetError(se); Console.SetOut(TextWriter.Null);
        try { return (Commands.Run(args), se.ToString()); }
        finally { Console.SetError(e); Console.SetOut(o); }
    }

    [TestCase("deflate")]
    [TestCase("deflate_old")]
    [TestCase("lzw")]
    [TestCase("lzw_predictor")]
    [TestCase("packbits")]
    [TestCase("tiled")]
    [TestCase("tiled_deflate")]
    [TestCase("bigtiff_lzw")]
    public void LocalizeGivesTheSameCsvAsOnTheUncompressedFile(string variant)
    {
        string[] opts = ["--offset", "100", "--threads", "2", "--quiet"];
        var r = Cli(["localize", _stack, "-o", _dir[$"plain-{variant}.csv"], .. opts]);
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        r = Cli(["localize", _stackFiles[variant], "-o", _dir[$"{variant}.csv"], .. opts]);
        Assert.That(r.Code, Is.EqualTo(0), r.Err);
        var plain = File.ReadAllText(_dir[$"plain-{variant}.csv"]);
        Assert.That(plain.Split('\n').Length, Is.GreaterThan(20), "the movie gives localizations");
        Assert.That(File.ReadAllText(_dir[$"{variant}.csv"]), Is.EqualTo(plain));
    }

    [TestCase("cut_strip", "frame 2")]
    [TestCase("rgb_deflate", "RGB")]
    public void LocalizeOnBrokenCompressedFilesFailsCleanly(string variant, string mention)
    {
        string outCsv = _dir[$"bad-{variant}.csv"];
        var r = Cli("localize", _stackFiles[variant], "-o", outCsv, "--offset", "100");
        Assert.That(r.Code, Is.EqualTo(2), r.Err);
        var lines = r.Err.Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1), r.Err);
        Assert.That(lines[0], Does.Contain(Path.GetFileName(_stackFiles[variant])).And.Contain(mention));
        Assert.That(File.Exists(outCsv), Is.False);
        Assert.That(Directory.GetFiles(_dir.Path).Where(f => f.Contains(".tmp")), Is.Empty);
    }
}
