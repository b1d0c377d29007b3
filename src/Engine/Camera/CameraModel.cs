using System.Numerics;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Camera;

/// <summary>
/// The one place ADU become photons: photons = (ADU - offset) x photonsPerAdu / emGain (DESIGN.md),
/// optionally with per-pixel sCMOS offset, gain and read-noise maps (<see cref="CameraMaps"/>, cropped to the frame).
/// </summary>
public sealed class CameraModel
{
    public double OffsetAdu { get; }
    public double PhotonsPerAdu { get; }
    public double EmGain { get; }
    /// <summary>Optional per-pixel offset (ADU) and gain (photons per ADU, EM gain included) maps, row-major, frame-sized.</summary>
    public float[]? OffsetMap { get; }
    public float[]? GainMap { get; }
    /// <summary>Optional per-pixel read-noise variance in photons^2 (<see cref="ReadNoisePhotons2"/>), row-major, frame-sized:
    /// the sCMOS likelihood's shift gamma (DESIGN.md). Null: pure Poisson.</summary>
    public float[]? ReadNoiseMap { get; }

    public CameraModel(double offsetAdu = 0, double photonsPerAdu = 1, double emGain = 1, float[]? offsetMap = null, float[]? gainMap = null,
                       float[]? readNoiseMap = null)
    {
        OffsetAdu = offsetAdu; PhotonsPerAdu = photonsPerAdu; EmGain = emGain; OffsetMap = offsetMap; GainMap = gainMap; ReadNoiseMap = readNoiseMap;
    }

    public static CameraModel From(LocalizerSettings s) => new(s.OffsetAdu, s.PhotonsPerAdu, s.EmGain);

    /// <summary>The camera for frames of <paramref name="width"/> x <paramref name="height"/>: the settings' scalars, and
    /// with <see cref="LocalizerSettings.CameraMaps"/> their frame-sized crops (offset; gain / EM gain; read noise in photons^2).</summary>
    public static CameraModel From(LocalizerSettings s, int width, int height)
    {
        var maps = s.CameraMaps;
        if (maps is null) return From(s);
        maps.CheckCovers(width, height);
        var offset = maps.Crop(maps.OffsetAdu, width, height);
        var gainPpa = maps.Crop(maps.GainPhotonsPerAdu, width, height);
        var variance = maps.Crop(maps.VarianceAdu2, width, height);
        float scale = (float)(s.PhotonsPerAdu / s.EmGain);
        float[]? gain = null;
        if (gainPpa is not null)
        {
            gain = gainPpa;
            for (int i = 0; i < gain.Length; i++) gain[i] = (float)(gainPpa[i] / s.EmGain);
        }
        float[]? readNoise = null;
        if (variance is not null)
        {
            readNoise = variance;
            for (int i = 0; i < readNoise.Length; i++) readNoise[i] = ReadNoisePhotons2(variance[i], gain is null ? scale : gain[i]);
        }
        return new CameraModel(s.OffsetAdu, s.PhotonsPerAdu, s.EmGain, offset, gain, readNoise);
    }

    /// <summary>
    /// The one place the read-noise variance becomes the sCMOS likelihood's shift (Huang et al. 2013's var_i / g_i^2, their
    /// g in ADU per photon): the variance in photons^2 = variance (ADU^2) x (photons per ADU after the EM gain)^2, since a
    /// pixel's photons are (ADU - offset) x that factor, so its read noise (ADU) scales by it too.
    /// </summary>
    public static float ReadNoisePhotons2(float varianceAdu2, float photonsPerAdu) => varianceAdu2 * photonsPerAdu * photonsPerAdu;

    /// <summary>Photons per ADU after the EM gain.</summary>
    public float Scale => (float)(PhotonsPerAdu / EmGain);

    public float ToPhotons(float adu) => (adu - (float)OffsetAdu) * Scale;
    public float ToAdu(float photons) => photons / Scale + (float)OffsetAdu;

    /// <summary>Converts a frame of raw values (ADU, as float) to photons in place; returns the largest photon value
    /// (&lt;= 0 means the offset is at or above every pixel: a wrong --offset).</summary>
    public float ToPhotons(Span<float> frame)
    {
        if (OffsetMap != null || GainMap != null) return ToPhotonsMapped(frame);
        var off = new Vector<float>((float)OffsetAdu);
        var sc = new Vector<float>(Scale);
        var max = new Vector<float>(float.MinValue);
        var v = MemoryMarshal.Cast<float, Vector<float>>(frame);
        for (int i = 0; i < v.Length; i++) { var p = (v[i] - off) * sc; v[i] = p; max = Vector.Max(max, p); }
        float m = float.MinValue;
        for (int l = 0; l < Vector<float>.Count; l++) m = Math.Max(m, max[l]);
        for (int i = v.Length * Vector<float>.Count; i < frame.Length; i++) { frame[i] = (frame[i] - (float)OffsetAdu) * Scale; m = Math.Max(m, frame[i]); }
        return m;
    }

    /// <summary>Converts uint16 ADU to photons.</summary>
    public void ToPhotons(ReadOnlySpan<ushort> adu, Span<float> photons)
    {
        if (photons.Length < adu.Length) throw new ArgumentException("destination too small", nameof(photons));
        IO.PixelConvert.U16ToFloat(adu, photons[..adu.Length]);
        ToPhotons(photons[..adu.Length]);
    }

    private float ToPhotonsMapped(Span<float> frame)
    {
        if ((OffsetMap != null && OffsetMap.Length != frame.Length) || (GainMap != null && GainMap.Length != frame.Length))
            throw new InvalidParameterException("camera maps", $"the sCMOS offset/gain maps hold {OffsetMap?.Length ?? GainMap!.Length} pixels, the frame {frame.Length}");
        float off = (float)OffsetAdu, sc = Scale, m = float.MinValue;
        for (int i = 0; i < frame.Length; i++)
        {
            float o = OffsetMap != null ? OffsetMap[i] : off;
            float g = GainMap != null ? GainMap[i] : sc;
            frame[i] = (frame[i] - o) * g;
            m = Math.Max(m, frame[i]);
        }
        return m;
    }
}
