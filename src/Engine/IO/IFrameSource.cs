namespace MaLiang.Engine.IO;

/// <summary>Pixel type of a stack as stored.</summary>
public enum PixelType { UInt8 = 0, UInt16 = 1, UInt32 = 2, Float32 = 3, Int16 = 4, Int32 = 5 }

/// <summary>
/// A stack of equally sized frames, read one at a time. Implementations must allow concurrent
/// <see cref="ReadFrame"/> calls for different frames (the pipeline reads ahead on several threads).
/// </summary>
public interface IFrameSource : IDisposable
{
    /// <summary>What to call this source in error messages (the file name, "memory", ...).</summary>
    string Name { get; }
    int Width { get; }
    int Height { get; }
    int FrameCount { get; }
    PixelType PixelType { get; }
    /// <summary>Reads frame <paramref name="index"/> (0-based) as raw values (ADU) into <paramref name="destination"/> (Width x Height, row-major).</summary>
    void ReadFrame(int index, Span<float> destination);
}

/// <summary>Frames already in memory, frame-major, row-major, with an optional row stride.</summary>
public sealed class MemoryFrameSource : IFrameSource
{
    private readonly ReadOnlyMemory<ushort> _u16;
    private readonly ReadOnlyMemory<float> _f32;
    private readonly int _strideElems;

    public string Name { get; }
    public int Width { get; }
    public int Height { get; }
    public int FrameCount { get; }
    public PixelType PixelType { get; }

    public MemoryFrameSource(ReadOnlyMemory<ushort> frames, int width, int height, int count, string name = "memory", int rowStrideElems = 0)
    {
        Check(frames.Length, width, height, count, ref rowStrideElems);
        _u16 = frames; Width = width; Height = height; FrameCount = count; _strideElems = rowStrideElems; Name = name; PixelType = PixelType.UInt16;
    }

    public MemoryFrameSource(ReadOnlyMemory<float> frames, int width, int height, int count, string name = "memory", int rowStrideElems = 0)
    {
        Check(frames.Length, width, height, count, ref rowStrideElems);
        _f32 = frames; Width = width; Height = height; FrameCount = count; _strideElems = rowStrideElems; Name = name; PixelType = PixelType.Float32;
    }

    private static void Check(int length, int width, int height, int count, ref int stride)
    {
        if (width <= 0 || height <= 0) throw new InvalidParameterException("width/height", $"frame size {width}x{height} is not positive");
        if (count <= 0) throw new InvalidParameterException("count", $"zero frames (count = {count})");
        if (stride == 0) stride = width;
        if (stride < width) throw new InvalidParameterException("stride", $"row stride {stride} is smaller than the width {width}");
        long need = ((long)count * height - 1) * stride + width;
        if (length < need) throw new InvalidParameterException("frames", $"buffer holds {length} pixels, {count} frames of {width}x{height} need {need}");
    }

    public void ReadFrame(int index, Span<float> destination)
    {
        if ((uint)index >= (uint)FrameCount) throw new ArgumentOutOfRangeException(nameof(index));
        long baseRow = (long)index * Height;
        for (int y = 0; y < Height; y++)
        {
            int start = checked((int)((baseRow + y) * _strideElems));
            var dst = destination.Slice(y * Width, Width);
            if (PixelType == PixelType.UInt16)
            {
                PixelConvert.U16ToFloat(_u16.Span.Slice(start, Width), dst);
            }
            else _f32.Span.Slice(start, Width).CopyTo(dst);
        }
    }

    public void Dispose() { }
}
