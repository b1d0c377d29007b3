namespace MaLiang.Engine.IO;

/// <summary>
/// Frames in caller-owned memory (C ABI, Python, Java): read in place, never copied as a whole. The caller keeps the
/// memory alive and unchanged while the source is in use. Row stride in bytes allows padded rows and views.
/// </summary>
public sealed unsafe class PointerFrameSource : IFrameSource
{
    private readonly byte* _data;
    private readonly long _strideBytes;
    public string Name { get; }
    public int Width { get; }
    public int Height { get; }
    public int FrameCount { get; }
    public PixelType PixelType { get; }

    /// <summary>Address of the first pixel, for tests that prove no copy was made.</summary>
    public nint Address => (nint)_data;

    public PointerFrameSource(void* data, int width, int height, int count, PixelType type, long rowStrideBytes = 0, string name = "memory")
    {
        if (data == null) throw new InvalidParameterException("frames", "pointer is null");
        if (width <= 0 || height <= 0) throw new InvalidParameterException("width/height", $"frame size {width}x{height} is not positive");
        if (count <= 0) throw new InvalidParameterException("count", $"zero frames (count = {count})");
        if (type is not (PixelType.UInt16 or PixelType.Float32 or PixelType.UInt8 or PixelType.Int16 or PixelType.Int32 or PixelType.UInt32))
            throw new InvalidParameterException("pixel_type", $"unsupported pixel type {type}");
        long min = (long)width * BytesPerPixel(type);
        if (rowStrideBytes == 0) rowStrideBytes = min;
        if (rowStrideBytes < min) throw new InvalidParameterException("stride", $"row stride {rowStrideBytes} bytes is less than a row ({min} bytes)");
        _data = (byte*)data; Width = width; Height = height; FrameCount = count; PixelType = type; _strideBytes = rowStrideBytes; Name = name;
    }

    public static int BytesPerPixel(PixelType t) => PixelConvert.BytesPerSample(t);

    public void ReadFrame(int index, Span<float> destination)
    {
        if ((uint)index >= (uint)FrameCount) throw new ArgumentOutOfRangeException(nameof(index));
        int rowBytes = Width * BytesPerPixel(PixelType);
        for (int y = 0; y < Height; y++)
        {
            byte* row = _data + ((long)index * Height + y) * _strideBytes;
            // The same vectorised conversion the TIFF reader uses (native byte order: no swap).
            PixelConvert.ToFloat(new ReadOnlySpan<byte>(row, rowBytes), destination.Slice(y * Width, Width), PixelType, swap: false);
        }
    }

    public void Dispose() { }
}
