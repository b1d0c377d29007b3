using System.Numerics;
using System.Runtime.InteropServices;

namespace MaLiang.Engine.Camera;

/// <summary>
/// The one place ADU become photons: photons = (ADU - offset) x photonsPerAdu / emGain (DESIGN.md),
/// optionally with per-pixel sCMOS offset and gain maps.
/// </summary>
public sealed class CameraModel
{
    public double OffsetAdu { get; }
    public double PhotonsPerAdu { get; }
    public double EmGain { get; }
    /// <summary>Optional per-pixel offset (ADU) and gain (photons per ADU, EM gain included) maps, row-major, frame-sized.</summary>
    public float[]? OffsetMap { get; }
    public float[]? GainMap { get; }

    public CameraModel(double offsetAdu = 0, double photonsPerAdu = 1, double emGain = 1, float[]? offsetMap = null, float[]? gainMap = null)
    {
        OffsetAdu = offsetAdu; PhotonsPerAdu = photonsPerAdu; EmGain = emGain; OffsetMap = offsetMap; GainMap = gainMap;
    }

    public static CameraModel From(LocalizerSettings s) => new(s.OffsetAdu, s.PhotonsPerAdu, s.EmGain);

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
