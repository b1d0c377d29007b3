namespace MaLiang.Engine.Post;

/// <summary>
/// Radix-2 complex FFT (iterative Cooley-Tukey), 1-D and 2-D. Storage is interleaved (re, im) float to keep
/// large correlation stacks small; arithmetic is double. Forward uses e^{-i...}; inverse is unnormalized-divided
/// by the element count, so Inverse(Forward(a)) == a.
/// </summary>
public static class Fft
{
    public static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    public static int NextPowerOfTwo(int n)
    {
        int p = 1;
        while (p < n) p <<= 1;
        return p;
    }

    /// <summary>In-place 1-D transform of re/im (length a power of two).</summary>
    public static void Transform1D(Span<double> re, Span<double> im, bool inverse)
    {
        int n = re.Length;
        if (!IsPowerOfTwo(n) || im.Length != n) throw new ArgumentException("FFT length must be a power of two");
        // bit reversal
        for (int i = 1, j = 0; i < n; i++)
        {
            int bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j)
            {
                (re[i], re[j]) = (re[j], re[i]);
                (im[i], im[j]) = (im[j], im[i]);
            }
        }
        double sign = inverse ? 1.0 : -1.0;
        for (int len = 2; len <= n; len <<= 1)
        {
            int half = len >> 1;
            double ang = sign * 2.0 * Math.PI / len;
            double wr = Math.Cos(ang), wi = Math.Sin(ang);
            for (int i = 0; i < n; i += len)
            {
                double cr = 1.0, ci = 0.0;
                for (int k = 0; k < half; k++)
                {
                    int a = i + k, b = a + half;
                    double tr = re[b] * cr - im[b] * ci;
                    double ti = re[b] * ci + im[b] * cr;
                    re[b] = re[a] - tr; im[b] = im[a] - ti;
                    re[a] += tr; im[a] += ti;
                    double ncr = cr * wr - ci * wi;
                    ci = cr * wi + ci * wr;
                    cr = ncr;
                }
            }
        }
        if (inverse)
        {
            double s = 1.0 / n;
            for (int i = 0; i < n; i++) { re[i] *= s; im[i] *= s; }
        }
    }

    /// <summary>In-place 2-D transform of an interleaved complex image (size x size, size a power of two).
    /// Rows and columns run in parallel; each line is independent, so the result is deterministic.</summary>
    public static void Transform2D(float[] data, int size, bool inverse)
    {
        if (!IsPowerOfTwo(size) || data.Length != 2 * size * size) throw new ArgumentException("2-D FFT needs a power-of-two square");
        Parallel.For(0, size, () => (new double[size], new double[size]), (row, _, buf) =>
        {
            var (re, im) = buf;
            int o = 2 * row * size;
            for (int i = 0; i < size; i++) { re[i] = data[o + 2 * i]; im[i] = data[o + 2 * i + 1]; }
            Transform1D(re, im, inverse);
            for (int i = 0; i < size; i++) { data[o + 2 * i] = (float)re[i]; data[o + 2 * i + 1] = (float)im[i]; }
            return buf;
        }, _ => { });
        Parallel.For(0, size, () => (new double[size], new double[size]), (col, _, buf) =>
        {
            var (re, im) = buf;
            for (int i = 0; i < size; i++) { int o = 2 * (i * size + col); re[i] = data[o]; im[i] = data[o + 1]; }
            Transform1D(re, im, inverse);
            for (int i = 0; i < size; i++) { int o = 2 * (i * size + col); data[o] = (float)re[i]; data[o + 1] = (float)im[i]; }
            return buf;
        }, _ => { });
    }

    /// <summary>Copies a real image (w x h) into the top-left of a zeroed interleaved complex size x size buffer.</summary>
    public static float[] FromReal(ReadOnlySpan<float> image, int width, int height, int size)
    {
        var c = new float[2 * size * size];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                c[2 * (y * size + x)] = image[y * width + x];
        return c;
    }
}
