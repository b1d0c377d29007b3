// TIFF reader benchmark: frames per second reading a whole stack through TiffStack, memory-mapped or through
// LibTiff.NET, and a writer of LZW/Deflate/PackBits copies (LibTiff.NET) for it. Peak RSS is measured from outside
// (bench/tiff/bench.sh runs each read in its own process under /usr/bin/time).
//   TiffBench read FILE auto|libtiff THREADS      -> "fps <n> frames <n> seconds <s> checksum <n>"
//   TiffBench write SRC DST lzw|deflate|packbits [ROWS_PER_STRIP]
using System.Diagnostics;
using BitMiracle.LibTiff.Classic;
using MaLiang.Engine.IO;

if (args.Length >= 4 && args[0] == "read")
{
    var decoder = args[2] == "libtiff" ? TiffDecoder.LibTiff : TiffDecoder.Auto;
    int threads = int.Parse(args[3]);
    using var s = TiffStack.Open([args[1]], decoder);
    int n = s.FrameCount, px = s.Width * s.Height;
    long checksum = 0;
    var sw = Stopwatch.StartNew();
    // Each thread reads every threads-th frame into its own buffer, as the pipeline's read-ahead does.
    Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
    {
        var buf = new ushort[px];
        long sum = 0;
        for (int f = t; f < n; f += threads)
        {
            s.ReadFrame(f, buf);
            sum += buf[f % px];
        }
        Interlocked.Add(ref checksum, sum);
    });
    double sec = sw.Elapsed.TotalSeconds;
    Console.WriteLine($"fps {n / sec:F0} frames {n} seconds {sec:F3} checksum {checksum}");
    return 0;
}
if (args.Length >= 4 && args[0] == "write")
{
    var comp = args[3] switch { "lzw" => Compression.LZW, "deflate" => Compression.ADOBE_DEFLATE, "packbits" => Compression.PACKBITS, _ => throw new ArgumentException(args[3]) };
    using var s = TiffStack.Open(args[1]);
    int w = s.Width, h = s.Height, rps = args.Length > 4 ? int.Parse(args[4]) : 16;
    var buf = new ushort[w * h];
    var bytes = new byte[w * h * 2];
    var strip = new byte[rps * w * 2];
    using var t = Tiff.Open(args[2], "w8"); // BigTIFF: a 512x512x1000 stack may pass 4 GB uncompressed
    for (int f = 0; f < s.FrameCount; f++)
    {
        s.ReadFrame(f, buf);
        Buffer.BlockCopy(buf, 0, bytes, 0, bytes.Length);
        t.SetField(TiffTag.IMAGEWIDTH, w);
        t.SetField(TiffTag.IMAGELENGTH, h);
        t.SetField(TiffTag.BITSPERSAMPLE, 16);
        t.SetField(TiffTag.SAMPLESPERPIXEL, 1);
        t.SetField(TiffTag.PHOTOMETRIC, Photometric.MINISBLACK);
        t.SetField(TiffTag.ROWSPERSTRIP, rps);
        t.SetField(TiffTag.COMPRESSION, comp);
        if (comp != Compression.PACKBITS) t.SetField(TiffTag.PREDICTOR, Predictor.HORIZONTAL);
        for (int y = 0, k = 0; y < h; y += rps, k++)
        {
            // LibTiff.NET's predictor ignores a non-zero offset (horDiff16 throws), so each strip starts at index 0
            int rows = Math.Min(rps, h - y);
            Buffer.BlockCopy(bytes, y * w * 2, strip, 0, rows * w * 2);
            t.WriteEncodedStrip(k, strip, rows * w * 2);
        }
        t.WriteDirectory();
    }
    return 0;
}
Console.Error.WriteLine("usage: TiffBench read FILE auto|libtiff THREADS | write SRC DST lzw|deflate|packbits [ROWS_PER_STRIP]");
return 2;
