using System.Numerics;
using System.Runtime.CompilerServices;

namespace MaLiang.Engine.Fit.Models;

/// <summary>
/// Cholesky solve and inverse diagonal of a small symmetric positive-definite p x p matrix per SIMD lane (p = the
/// model's parameter count), for the PSF models in this folder. Row-major a[r * p + c]; the upper triangle is given,
/// L is written to the lower one. The round Gaussian in CpuFitBackend keeps its unrolled 5x5 copy.
/// </summary>
internal static class SmallSpd
{
    /// <summary>In-place Cholesky; returns the lanes whose pivots were all positive.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<int> Cholesky(Span<Vector<float>> a, int p)
    {
        var ok = new Vector<int>(-1);
        var tiny = new Vector<float>(1e-30f);
        for (int r = 0; r < p; r++)
        {
            var diag = a[r * p + r];
            for (int k = 0; k < r; k++) diag -= a[r * p + k] * a[r * p + k];
            ok &= Vector.GreaterThan(diag, tiny);
            var l = Vector.SquareRoot(Vector.Max(diag, tiny));
            a[r * p + r] = l;
            var invL = Vector<float>.One / l;
            for (int q = r + 1; q < p; q++)
            {
                var v = a[r * p + q];
                for (int k = 0; k < r; k++) v -= a[q * p + k] * a[r * p + k];
                a[q * p + r] = v * invL;
            }
        }
        return ok;
    }

    /// <summary>Solves L L^T d = g in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Solve(ReadOnlySpan<Vector<float>> l, Span<Vector<float>> g, int p)
    {
        for (int r = 0; r < p; r++)
        {
            var v = g[r];
            for (int k = 0; k < r; k++) v -= l[r * p + k] * g[k];
            g[r] = v / l[r * p + r];
        }
        for (int r = p - 1; r >= 0; r--)
        {
            var v = g[r];
            for (int k = r + 1; k < p; k++) v -= l[k * p + r] * g[k];
            g[r] = v / l[r * p + r];
        }
    }

    /// <summary>diag(F^-1) = column sums of squares of L^-1.</summary>
    public static void InverseDiagonal(ReadOnlySpan<Vector<float>> l, Span<Vector<float>> diag, int p)
    {
        Span<Vector<float>> inv = stackalloc Vector<float>[p * p];
        for (int c = 0; c < p; c++)
            for (int r = 0; r < p; r++)
            {
                if (r < c) { inv[r * p + c] = Vector<float>.Zero; continue; }
                var v = r == c ? Vector<float>.One : Vector<float>.Zero;
                for (int k = c; k < r; k++) v -= l[r * p + k] * inv[k * p + c];
                inv[r * p + c] = v / l[r * p + r];
            }
        for (int c = 0; c < p; c++)
        {
            var acc = Vector<float>.Zero;
            for (int r = c; r < p; r++) acc += inv[r * p + c] * inv[r * p + c];
            diag[c] = acc;
        }
    }
}
