namespace MaLiang.Engine.Post;

/// <summary>Options of <c>maliang merge</c>.</summary>
public sealed class MergeSettings
{
    /// <summary>Largest distance (camera px) between a localization and the previous one of the same molecule.</summary>
    public double RadiusPx { get; set; } = 0.5;
    /// <summary>Missing frames allowed inside one molecule's on-time (0 = strictly consecutive frames).</summary>
    public int MaxGapFrames { get; set; } = 1;
    /// <summary>Largest number of frames merged into one molecule (0 = unlimited).</summary>
    public int MaxFrames { get; set; }

    public void Validate()
    {
        if (!double.IsFinite(RadiusPx) || RadiusPx <= 0) throw new InvalidParameterException("radius", $"must be > 0 px, got {RadiusPx}");
        if (MaxGapFrames < 0) throw new InvalidParameterException("gap", $"must be >= 0 frames, got {MaxGapFrames}");
        if (MaxFrames < 0) throw new InvalidParameterException("max-frames", $"must be >= 0 (0 = unlimited), got {MaxFrames}");
    }
}

/// <summary>Merges localizations of one molecule in consecutive frames into one.</summary>
public static class Merger
{
    /// <summary>
    /// Links localizations (see <see cref="MergeSettings"/>) and merges each track: position weighted by photons (equal weights
    /// when a photon count is not positive), photons summed, background, sigma and their uncertainties averaged, photon uncertainty sqrt(sum u^2), X/Y uncertainty
    /// 1/sqrt(sum 1/u^2), Detections = sum of the inputs' Detections (at least 1 each), Frame = the first frame,
    /// LogLikelihood/Llr summed, Iterations the maximum, Flags the bitwise AND. Output is ordered by first frame.
    /// </summary>
    public static Localization[] Merge(ReadOnlySpan<Localization> locs, MergeSettings settings)
    {
        settings.Validate();
        var ids = Linker.Link(locs, settings.RadiusPx, settings.MaxGapFrames, settings.MaxFrames, out int count);
        var acc = new Acc[count];
        for (int i = 0; i < locs.Length; i++) acc[ids[i]].Add(locs[i]);
        var result = new Localization[count];
        for (int t = 0; t < count; t++) result[t] = acc[t].Result();
        return result;
    }

    private struct Acc
    {
        private int n, detections, frame, iterations, flags;
        private double w, wx, wy, photons, bg, sigma, ix, iy, uphot2, ubg, usig, ll, llr;
        private bool badX, badY, badZ;
        private double wz, iz; // 3D: photon-weighted z like x and y, inverse-variance uncertainty; NaN in 2D

        public void Add(in Localization l)
        {
            if (n == 0) { frame = l.Frame; flags = l.Flags; }
            else { frame = Math.Min(frame, l.Frame); flags &= l.Flags; }
            n++;
            detections += Math.Max(1, l.Detections);
            double wt = l.Photons > 0 && float.IsFinite(l.Photons) ? l.Photons : 1.0;
            w += wt; wx += wt * l.X; wy += wt * l.Y; wz += wt * l.Z;
            if (l.UncertaintyZ > 0) iz += 1.0 / ((double)l.UncertaintyZ * l.UncertaintyZ); else badZ = true;
            photons += l.Photons; bg += l.Background; sigma += l.Sigma;
            if (l.UncertaintyX > 0) ix += 1.0 / ((double)l.UncertaintyX * l.UncertaintyX); else badX = true;
            if (l.UncertaintyY > 0) iy += 1.0 / ((double)l.UncertaintyY * l.UncertaintyY); else badY = true;
            uphot2 += (double)l.UncertaintyPhotons * l.UncertaintyPhotons;
            ubg += l.UncertaintyBackground; usig += l.UncertaintySigma;
            ll += l.LogLikelihood; llr += l.Llr;
            iterations = Math.Max(iterations, l.Iterations);
        }

        public readonly Localization Result() => new()
        {
            Frame = frame,
            X = (float)(wx / w),
            Y = (float)(wy / w),
            Photons = (float)photons,
            Background = (float)(bg / n),
            Sigma = (float)(sigma / n),
            UncertaintyX = badX || ix <= 0 ? 0f : (float)(1.0 / Math.Sqrt(ix)),
            UncertaintyY = badY || iy <= 0 ? 0f : (float)(1.0 / Math.Sqrt(iy)),
            UncertaintyPhotons = (float)Math.Sqrt(uphot2),
            UncertaintyBackground = (float)(ubg / n),
            UncertaintySigma = (float)(usig / n),
            LogLikelihood = (float)ll,
            Llr = (float)llr,
            Iterations = iterations,
            Detections = detections,
            Flags = flags,
            Z = (float)(wz / w),
            UncertaintyZ = badZ || iz <= 0 ? 0f : (float)(1.0 / Math.Sqrt(iz)),
        };
    }
}
