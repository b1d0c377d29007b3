using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.IO;

/// <summary>Stored samples (any endianness) to float / ushort. Span-based, allocation-free, vectorized for the common types.</summary>
internal static class PixelConvert
{
    public static int BytesPerSample(PixelType t) => t switch
    {
        PixelType.UInt8 => 1,
        PixelType.UInt16 or PixelType.Int16 => 2,
        _ => 4,
    };

    /// <summary>Converts <c>dst.Length</c> samples from <paramref name="src"/>. <paramref name="swap"/>: stored byte order differs from this machine's.</summary>
    public static void ToFloat(ReadOnlySpan<byte> src, Span<float> dst, PixelType type, bool swap)
    {
        switch (type)
        {
            case PixelType.UInt8: U8ToFloat(src[..dst.Length], dst); break;
            case PixelType.UInt16:
            {
                var s = MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length];
                if (!swap) { U16ToFloat(s, dst); break; }
                // Swap in small stack chunks so the widening loop below stays vectorized.
                Span<ushort> tmp = stackalloc ushort[1024];
                for (int i = 0; i < s.Length; i += tmp.Length)
                {
                    int n = Math.Min(tmp.Length, s.Length - i);
                    BinaryPrimitives.ReverseEndianness(s.Slice(i, n), tmp[..n]);
                    U16ToFloat(tmp[..n], dst.Slice(i, n));
                }
                break;
            }
            case PixelType.Int16:
            {
                var s = MemoryMarshal.Cast<byte, short>(src)[..dst.Length];
                if (swap) for (int i = 0; i < s.Length; i++) dst[i] = BinaryPrimitives.ReverseEndianness(s[i]);
                else for (int i = 0; i < s.Length; i++) dst[i] = s[i];
                break;
            }
            case PixelType.UInt32:
            {
                var s = MemoryMarshal.Cast<byte, uint>(src)[..dst.Length];
                if (swap) for (int i = 0; i < s.Length; i++) dst[i] = BinaryPrimitives.ReverseEndianness(s[i]);
                else for (int i = 0; i < s.Length; i++) dst[i] = s[i];
                break;
            }
            case PixelType.Int32:
            {
                var s = MemoryMarshal.Cast<byte, int>(src)[..dst.Length];
                if (swap) for (int i = 0; i < s.Length; i++) dst[i] = BinaryPrimitives.ReverseEndianness(s[i]);
                else for (int i = 0; i < s.Length; i++) dst[i] = s[i];
                break;
            }
            case PixelType.Float32:
            {
                var s = MemoryMarshal.Cast<byte, uint>(src)[..dst.Length];
                var d = MemoryMarshal.Cast<float, uint>(dst);
                if (swap) BinaryPrimitives.ReverseEndianness(s, d);
                else s.CopyTo(d);
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    /// <summary>16-bit fast path: UInt16 copies (or byte-swaps), UInt8 widens.</summary>
    public static void ToUInt16(ReadOnlySpan<byte> src, Span<ushort> dst, PixelType type, bool swap)
    {
        if (type == PixelType.UInt8)
        {
            var s = src[..dst.Length];
            for (int i = 0; i < s.Length; i++) dst[i] = s[i];
            return;
        }
        var s16 = MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length];
        if (swap) BinaryPrimitives.ReverseEndianness(s16, dst);
        else s16.CopyTo(dst);
    }

    public static void U16ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        dst = dst[..src.Length];
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<ushort>.Count, h = Vector<float>.Count;
            for (; i <= src.Length - w; i += w)
            {
                Vector.Widen(new Vector<ushort>(src[i..]), out Vector<uint> lo, out Vector<uint> hi);
                // Values < 2^16 are exact as int32, and int -> float converts in one instruction.
                Vector.ConvertToSingle(Vector.AsVectorInt32(lo)).CopyTo(dst[i..]);
                Vector.ConvertToSingle(Vector.AsVectorInt32(hi)).CopyTo(dst[(i + h)..]);
            }
        }
        for (; i < src.Length; i++) dst[i] = src[i];
    }

    public static void U8ToFloat(ReadOnlySpan<byte> src, Span<float> dst)
    {
        dst = dst[..src.Length];
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<byte>.Count, h = Vector<float>.Count;
            for (; i <= src.Length - w; i += w)
            {
                Vector.Widen(new Vector<byte>(src[i..]), out Vector<ushort> lo16, out Vector<ushort> hi16);
                Vector.Widen(lo16, out Vector<uint> a, out Vector<uint> b);
                Vector.Widen(hi16, out Vector<uint> c, out Vector<uint> d);
                Vector.ConvertToSingle(Vector.AsVectorInt32(a)).CopyTo(dst[i..]);
                Vector.ConvertToSingle(Vector.AsVectorInt32(b)).CopyTo(dst[(i + h)..]);
                Vector.ConvertToSingle(Vector.AsVectorInt32(c)).CopyTo(dst[(i + 2 * h)..]);
                Vector.ConvertToSingle(Vector.AsVectorInt32(d)).CopyTo(dst[(i + 3 * h)..]);
            }
        }
        for (; i < src.Length; i++) dst[i] = src[i];
    }
}
