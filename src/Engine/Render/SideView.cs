using MaLiang.Engine.Post;

namespace MaLiang.Engine.Render;

/// <summary>
/// An x-z side view of 3D localizations: those inside an x-y region (camera px), drawn with x across and z down (z from
/// <paramref name="zMaxNm"/> at the top to <paramref name="zMinNm"/> at the bottom), through the same renderer as the top
/// view: z becomes a y coordinate in camera px (z / pixel size) and uncertainty_z its y uncertainty.
/// </summary>
public static class SideView
{
    public static RenderedImage Render(ReadOnlySpan<Localization> locs, RegionPx region, double zMinNm, double zMaxNm, double pixelSizeNm,
                                       RenderSettings settings, out int count)
    {
        if (!(zMaxNm > zMinNm) || !double.IsFinite(zMinNm) || !double.IsFinite(zMaxNm))
            throw new InvalidParameterException("z-range-nm", $"needs MIN < MAX, got {zMinNm}..{zMaxNm}");
        var side = new List<Localization>();
        foreach (ref readonly var l in locs)
        {
            if ((l.Flags & Localization.FlagHasZ) == 0 || !(l.X >= region.X0 && l.X < region.X1 && l.Y >= region.Y0 && l.Y < region.Y1)) continue;
            if (!(l.Z >= zMinNm && l.Z <= zMaxNm)) continue;
            var s = l;
            s.X = (float)(l.X - region.X0);
            s.Y = (float)((zMaxNm - l.Z) / pixelSizeNm);
            s.UncertaintyY = (float)(l.UncertaintyZ / pixelSizeNm);
            side.Add(s);
        }
        count = side.Count;
        var rs = new RenderSettings
        {
            Magnification = settings.Magnification, Method = settings.Method, SigmaPx = settings.SigmaPx, Shifts = settings.Shifts, Seed = settings.Seed,
            Width = Math.Max(1, (int)Math.Ceiling(region.X1 - region.X0)), Height = Math.Max(1, (int)Math.Ceiling((zMaxNm - zMinNm) / pixelSizeNm)),
        };
        rs.Validate();
        return Renderer.Render(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(side), rs);
    }
}
