using MaLiang.Engine.IO;

namespace MaLiang.Engine.Camera;

/// <summary>
/// Per-pixel sCMOS calibration of the whole sensor (Huang et al., Nat. Methods 10, 653 (2013)): offset (ADU), read-noise
/// variance (ADU^2) and gain (photons per ADU), each <see cref="SensorWidth"/> x <see cref="SensorHeight"/>, row-major;
/// any may be absent (the scalar setting stands in). A stack that is a sub-region of the sensor starts at
/// (<see cref="OriginX"/>, <see cref="OriginY"/>): frame pixel (x, y) is sensor pixel (OriginX + x, OriginY + y).
/// Validated once, here: every value finite, the offset &gt;= 0, the variance and gain &gt; 0 (a pixel with zero read noise
/// or zero gain is no camera's: it means an unfilled or wrong file), errors naming the map and the pixel.
/// Immutable; shared by the settings clones.
/// </summary>
public sealed class CameraMaps
{
    public const string OffsetName = "camera-offset-map", VarianceName = "camera-variance-map", GainName = "camera-gain-map", OriginName = "camera-origin";

    public int SensorWidth { get; }
    public int SensorHeight { get; }
    public int OriginX { get; }
    public int OriginY { get; }
    public float[]? OffsetAdu { get; }
    public float[]? VarianceAdu2 { get; }
    public float[]? GainPhotonsPerAdu { get; }

    public CameraMaps(int sensorWidth, int sensorHeight, float[]? offsetAdu, float[]? varianceAdu2, float[]? gainPhotonsPerAdu,
                      int originX = 0, int originY = 0)
    {
        if (offsetAdu is null && varianceAdu2 is null && gainPhotonsPerAdu is null)
            throw new InvalidParameterException("camera maps", "no map given (offset, variance or gain)");
        if (sensorWidth <= 0 || sensorHeight <= 0 || (long)sensorWidth * sensorHeight > int.MaxValue)
            throw new InvalidParameterException("camera maps", $"bad sensor size {sensorWidth}x{sensorHeight}");
        if (originX < 0 || originY < 0 || originX >= sensorWidth || originY >= sensorHeight)
            throw new InvalidParameterException(OriginName, $"({originX}, {originY}) is outside the {sensorWidth}x{sensorHeight} px maps");
        SensorWidth = sensorWidth; SensorHeight = sensorHeight; OriginX = originX; OriginY = originY;
        OffsetAdu = Check(offsetAdu, OffsetName, "ADU", strictlyPositive: false);
        VarianceAdu2 = Check(varianceAdu2, VarianceName, "ADU^2", strictlyPositive: true);
        GainPhotonsPerAdu = Check(gainPhotonsPerAdu, GainName, "photons per ADU", strictlyPositive: true);
    }

    private float[]? Check(float[]? map, string name, string unit, bool strictlyPositive)
    {
        if (map is null) return null;
        if (map.Length != SensorWidth * SensorHeight)
            throw new InvalidParameterException(name, $"holds {map.Length} pixels, the other maps {SensorWidth}x{SensorHeight} = {SensorWidth * SensorHeight}");
        for (int i = 0; i < map.Length; i++)
        {
            float v = map[i];
            bool ok = float.IsFinite(v) && (strictlyPositive ? v > 0 : v >= 0);
            if (!ok)
                throw new InvalidParameterException(name, $"pixel (x {i % SensorWidth}, y {i / SensorWidth}) is {v} {unit}; " +
                    (strictlyPositive ? "every pixel must be a finite number > 0" : "every pixel must be a finite number >= 0"));
        }
        return map;
    }

    /// <summary>Reads the maps from single-page TIFF files (32-bit float or any integer type the engine reads), any of
    /// them null. The files must have equal sizes; errors name the map and its file.</summary>
    public static CameraMaps Load(string? offsetPath, string? variancePath, string? gainPath, int originX = 0, int originY = 0)
    {
        int w = 0, h = 0;
        string? first = null;
        float[]? Read(string? path, string name)
        {
            if (string.IsNullOrEmpty(path)) return null;
            TiffStack t;
            try { t = TiffStack.Open(new[] { path }); }
            catch (MaLiangException e) { throw new InvalidParameterException(name, $"{path}: {e.Message}"); }
            catch (IOException e) { throw new InvalidParameterException(name, $"{path}: {e.Message}"); }
            using (t)
            {
                if (t.FrameCount != 1) throw new InvalidParameterException(name, $"{path} holds {t.FrameCount} images; a map is one image of the whole sensor");
                if (first is null) { w = t.Width; h = t.Height; first = path; }
                else if (t.Width != w || t.Height != h)
                    throw new InvalidParameterException(name, $"{path} is {t.Width}x{t.Height} px, {first} is {w}x{h}; all maps cover the same sensor");
                var map = new float[t.Width * t.Height];
                t.ReadFrame(0, map);
                return map;
            }
        }
        var off = Read(offsetPath, OffsetName);
        var variance = Read(variancePath, VarianceName);
        var gain = Read(gainPath, GainName);
        if (first is null) throw new InvalidParameterException("camera maps", "no map file given");
        return new CameraMaps(w, h, off, variance, gain, originX, originY);
    }

    /// <summary>Throws unless frames of <paramref name="width"/> x <paramref name="height"/> at the origin lie inside the maps.</summary>
    public void CheckCovers(int width, int height, string? what = null)
    {
        if ((long)OriginX + width > SensorWidth || (long)OriginY + height > SensorHeight)
            throw new InvalidParameterException(OriginName, $"{what ?? "the stack"}'s {width}x{height} px frames at origin ({OriginX}, {OriginY}) reach past the {SensorWidth}x{SensorHeight} px camera maps");
    }

    /// <summary>The frame-sized window of a map (row-major width x height), or null for an absent map.</summary>
    public float[]? Crop(float[]? map, int width, int height)
    {
        if (map is null) return null;
        CheckCovers(width, height);
        var c = new float[width * height];
        for (int y = 0; y < height; y++) map.AsSpan((OriginY + y) * SensorWidth + OriginX, width).CopyTo(c.AsSpan(y * width, width));
        return c;
    }
}
