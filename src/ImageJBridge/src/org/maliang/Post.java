package org.maliang;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;

import java.util.ArrayList;
import java.util.List;

import org.maliang.NativeEngine.Api;
import org.maliang.MaLiang.Localization;

/**
 * Post-processing of localizations through libmaliang.so (maliang.h: ml_drift_correct, ml_merge, ml_filter_expression,
 * ml_density_filter, ml_frc, ml_motion): the CLI's {@code maliang drift / merge / filter / frc / motion} for Java callers.
 *
 * <p>Units are the C ABI's: positions, radii and regions in camera px, frames 0-based (both ends of a window included);
 * nm only where a name says so. Arguments are checked here first ({@link IllegalArgumentException} naming the parameter);
 * what the library reports is a {@link MaLiangException} with ml_last_error().</p>
 */
public final class Post {
    private Post() { }

    /** Sizes of the structs this binding writes and reads (maliang.h), checked against the library's. */
    public static final int DRIFT_OPTIONS_BYTES = 64, FRC_OPTIONS_BYTES = 40, MOTION_RESULT_BYTES = 120;
    /** ML_FRC_MAX_POINTS. */
    public static final int FRC_MAX_POINTS = 2048;

    private static volatile boolean layoutChecked;

    /** {sizeof(ml_settings), sizeof(ml_localization), sizeof(ml_summary)} as the library was built (ml_struct_sizes). */
    public static int[] structSizes() {
        MaLiang.requireLibrary();
        Memory m = new Memory(12);
        MaLiang.check(Api.ml_struct_sizes(m, m.share(4), m.share(8)), "ml_struct_sizes");
        return new int[] {m.getInt(0), m.getInt(4), m.getInt(8)};
    }

    /** {sizeof(ml_drift_options), sizeof(ml_frc_options), sizeof(ml_motion_result)} (ml_post_struct_sizes). */
    public static int[] postStructSizes() {
        MaLiang.requireLibrary();
        Memory m = new Memory(12);
        MaLiang.check(Api.ml_post_struct_sizes(m, m.share(4), m.share(8)), "ml_post_struct_sizes");
        return new int[] {m.getInt(0), m.getInt(4), m.getInt(8)};
    }

    /** Library loaded, and its struct layouts are the ones this class hard-codes. */
    static void ready() {
        MaLiang.requireLibrary();
        if (layoutChecked) return;
        int[] a = structSizes(), b = postStructSizes();
        if (a[0] != MaLiang.SETTINGS_BYTES || a[1] != MaLiang.LOCALIZATION_BYTES || a[2] != MaLiang.SUMMARY_BYTES
                || b[0] != DRIFT_OPTIONS_BYTES || b[1] != FRC_OPTIONS_BYTES || b[2] != MOTION_RESULT_BYTES)
            throw new IllegalStateException("libmaliang.so's struct sizes (" + a[0] + "/" + a[1] + "/" + a[2] + ", " + b[0] + "/"
                    + b[1] + "/" + b[2] + ") differ from this binding's: update MaLiang_.jar and the library together");
        layoutChecked = true;
    }

    static void checkLocs(Localization[] locs, boolean needOne, String what) {
        if (locs == null) throw new IllegalArgumentException("locs is null");
        if (needOne && locs.length == 0) throw new IllegalArgumentException(what + " needs localizations, got none");
    }

    static double positive(double v, String name, String unit) {
        if (!(v > 0) || Double.isInfinite(v)) throw new IllegalArgumentException(name + ": must be a finite number > 0 " + unit + ", got " + v);
        return v;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Drift

    /** Drift methods (ml_drift_method); {@link #key()} is the CLI / macro name. */
    public enum DriftMethod {
        RCC, FIDUCIAL;
        public String key() { return name().toLowerCase(); }
        public static DriftMethod parse(String s) { return MaLiang.parseEnum(DriftMethod.class, "method", s); }
    }

    /** ml_drift_options, with the library's defaults. */
    public static final class DriftOptions {
        public DriftMethod method = DriftMethod.RCC;
        /** Frames in the acquisition; 0 = last localization's frame + 1. */
        public int frames;
        /** RCC: time segments (2..200). */
        public int segments = 10;
        /** RCC: histogram super-pixels per camera px, (0, 50]. */
        public double magnification = 5;
        /** RCC: largest drift searched between two segments, px. */
        public double maxShiftPx = 20;
        /** Fiducial: smoothing window, frames (>= 3). */
        public int smoothFrames = 200;
        /** Fiducial: {x0, y0, x1, y1} px to look for the bead in; null = the whole field. */
        public double[] regionPx;

        public void validate() {
            if (method == null) throw new IllegalArgumentException("method is null");
            if (frames < 0) throw new IllegalArgumentException("frames: must be >= 0 (0 = last frame + 1), got " + frames);
            if (segments < 2 || segments > 200) throw new IllegalArgumentException("segments: must be 2 to 200, got " + segments);
            if (!(magnification > 0 && magnification <= 50)) throw new IllegalArgumentException("magnification: must be in (0, 50], got " + magnification);
            positive(maxShiftPx, "max_shift", "px");
            if (smoothFrames < 3) throw new IllegalArgumentException("smooth_frames: must be >= 3 frames, got " + smoothFrames);
            if (regionPx != null) checkRegion(regionPx);
        }
    }

    static void checkRegion(double[] r) {
        if (r.length != 4) throw new IllegalArgumentException("region: needs x0,y0,x1,y1 (px), got " + r.length + " values");
        for (double v : r) if (Double.isNaN(v) || Double.isInfinite(v)) throw new IllegalArgumentException("region: values must be finite numbers (px)");
        if (!(r[2] > r[0] && r[3] > r[1])) throw new IllegalArgumentException("region: needs x0 < x1 and y0 < y1 (px), got " + r[0] + "," + r[1] + "," + r[2] + "," + r[3]);
    }

    /** Parses "x0,y0,x1,y1" (px), as the CLI's --region. */
    public static double[] parseRegion(String s) {
        if (s == null) throw new IllegalArgumentException("region is null");
        String[] p = s.trim().split("\\s*,\\s*");
        if (p.length != 4) throw new IllegalArgumentException("region: '" + s + "' is not x0,y0,x1,y1 (px)");
        double[] r = new double[4];
        for (int i = 0; i < 4; i++) {
            try { r[i] = Double.parseDouble(p[i].trim()); }
            catch (NumberFormatException e) { throw new IllegalArgumentException("region: '" + p[i].trim() + "' in '" + s + "' is not a number"); }
        }
        checkRegion(r);
        return r;
    }

    /** Drift correction result: the corrected localizations and the drift per frame (px, relative to the start). */
    public static final class DriftResult {
        public final Localization[] corrected;
        public final double[] dxPx, dyPx;
        DriftResult(Localization[] c, double[] dx, double[] dy) { corrected = c; dxPx = dx; dyPx = dy; }
        public int frames() { return dxPx.length; }
    }

    /** Estimates the drift (RCC or fiducial) and subtracts it: ml_drift_correct. */
    public static DriftResult driftCorrect(Localization[] locs, DriftOptions opt) {
        checkLocs(locs, true, "drift correction");
        if (opt == null) throw new IllegalArgumentException("options is null");
        opt.validate();
        for (int i = 0; i < locs.length; i++) {
            if (locs[i] == null) throw new IllegalArgumentException("locs[" + i + "] is null");
            if (locs[i].frame < 0) throw new IllegalArgumentException("locs[" + i + "] has frame " + locs[i].frame + "; frames are 0-based and >= 0");
        }
        ready();
        Memory o = new Memory(DRIFT_OPTIONS_BYTES);
        MaLiang.check(Api.ml_default_drift_options(o), "ml_default_drift_options");
        o.setInt(4, opt.frames);
        o.setInt(8, opt.segments);
        o.setInt(12, opt.smoothFrames);
        o.setDouble(16, opt.magnification);
        o.setDouble(24, opt.maxShiftPx);
        if (opt.regionPx != null) for (int i = 0; i < 4; i++) o.setDouble(32 + 8 * i, opt.regionPx[i]);
        int method = opt.method.ordinal();
        Memory in = MaLiang.encode(locs);
        Memory frames = new Memory(8);
        try {
            MaLiang.check(Api.ml_drift_correct(in, locs.length, method, o, null, null, null, 0, frames), "ml_drift_correct");
            long f = frames.getLong(0);
            if (f > Integer.MAX_VALUE / 8) throw new IllegalStateException(f + " frames are too many for a Java array");
            Memory out = new Memory((long) locs.length * MaLiang.LOCALIZATION_BYTES);
            Memory dx = new Memory(Math.max(8, 8 * f)), dy = new Memory(Math.max(8, 8 * f));
            try {
                MaLiang.check(Api.ml_drift_correct(in, locs.length, method, o, out, dx, dy, f, frames), "ml_drift_correct");
                return new DriftResult(MaLiang.decode(out, locs.length), dx.getDoubleArray(0, (int) f), dy.getDoubleArray(0, (int) f));
            } finally {
                MaLiang.free(out); MaLiang.free(dx); MaLiang.free(dy);
            }
        } finally {
            MaLiang.free(in);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Merge and filters

    /** Merges detections of one molecule in consecutive frames (ml_merge): radius in camera px, gap in missed frames. */
    public static Localization[] merge(Localization[] locs, double radiusPx, int maxGapFrames) {
        checkLocs(locs, false, "merge");
        positive(radiusPx, "radius", "px");
        if (maxGapFrames < 0) throw new IllegalArgumentException("gap: must be >= 0 frames, got " + maxGapFrames);
        ready();
        if (locs.length == 0) return new Localization[0];
        Memory in = MaLiang.encode(locs);
        Memory out = new Memory((long) locs.length * MaLiang.LOCALIZATION_BYTES);
        Memory count = new Memory(8);
        try {
            MaLiang.check(Api.ml_merge(in, locs.length, radiusPx, maxGapFrames, out, locs.length, count), "ml_merge");
            return MaLiang.decode(out, (int) count.getLong(0));
        } finally {
            MaLiang.free(in); MaLiang.free(out);
        }
    }

    /** Column names a filter expression may use (DESIGN.md CSV names: nm, photons, 1-based frame and id). */
    public static final String[] FILTER_COLUMNS = {"id", "frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]",
            "offset [photon]", "bkgstd [photon]", "uncertainty [nm]", "uncertainty_x [nm]", "uncertainty_y [nm]", "loglikelihood",
            "llr", "iterations", "detections"};

    /** Where {@code expression} holds (ml_filter_expression), e.g. "uncertainty [nm] &lt; 20 &amp;&amp; intensity [photon] &gt; 300". */
    public static boolean[] filterMask(Localization[] locs, String expression, double pixelSizeNm) {
        checkLocs(locs, false, "filter");
        if (expression == null || expression.trim().isEmpty()) throw new IllegalArgumentException("expression: is empty");
        if (expression.indexOf('\0') >= 0) throw new IllegalArgumentException("expression: contains a NUL character");
        positive(pixelSizeNm, "pixel_size", "nm");
        ready();
        Memory in = MaLiang.encode(locs);
        Memory keep = locs.length == 0 ? null : new Memory(locs.length);
        try {
            MaLiang.check(Api.ml_filter_expression(in, locs.length, MaLiang.cString(expression), pixelSizeNm, keep, null), "ml_filter_expression");
            return toBooleans(keep, locs.length);
        } finally {
            MaLiang.free(in);
            MaLiang.free(keep);
        }
    }

    /** Checks that {@code expression} parses against {@link #FILTER_COLUMNS} (throws {@link MaLiangException} naming the problem). */
    public static void checkExpression(String expression) { filterMask(new Localization[0], expression, 100); }

    /** Localizations with at least {@code minNeighbours} others (any frame) within {@code radiusPx} (ml_density_filter). */
    public static boolean[] densityMask(Localization[] locs, double radiusPx, int minNeighbours) {
        checkLocs(locs, false, "density filter");
        positive(radiusPx, "radius", "px");
        if (minNeighbours < 0) throw new IllegalArgumentException("min_neighbours: must be >= 0, got " + minNeighbours);
        ready();
        if (locs.length == 0) return new boolean[0];
        Memory in = MaLiang.encode(locs);
        Memory keep = new Memory(locs.length);
        try {
            MaLiang.check(Api.ml_density_filter(in, locs.length, radiusPx, minNeighbours, keep, null), "ml_density_filter");
            return toBooleans(keep, locs.length);
        } finally {
            MaLiang.free(in); MaLiang.free(keep);
        }
    }

    static boolean[] toBooleans(Pointer keep, int n) {
        boolean[] r = new boolean[n];
        if (n == 0) return r;
        byte[] b = keep.getByteArray(0, n);
        for (int i = 0; i < n; i++) r[i] = b[i] != 0;
        return r;
    }

    /** The localizations where {@code mask} is true. */
    public static Localization[] select(Localization[] locs, boolean[] mask) {
        if (locs == null || mask == null || mask.length != locs.length) throw new IllegalArgumentException("mask must have one value per localization");
        List<Localization> r = new ArrayList<Localization>();
        for (int i = 0; i < locs.length; i++) if (mask[i]) r.add(locs[i]);
        return r.toArray(new Localization[0]);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // FRC

    /** FRC split of the localizations into halves (ml_frc_options.split). */
    public enum FrcSplit {
        RANDOM, ODD_EVEN;
        public String key() { return name().toLowerCase(); }
        public static FrcSplit parse(String s) { return MaLiang.parseEnum(FrcSplit.class, "split", s); }
    }

    /** FRC curve and resolution. */
    public static final class FrcResult {
        /** 1 / (frequency where the smoothed curve falls below the threshold), nm; NaN when it never does. */
        public final double resolutionNm;
        public final double[] frequencyPerNm, frc, frcSmoothed;
        public final double threshold;
        FrcResult(double r, double[] q, double[] c, double[] s, double t) { resolutionNm = r; frequencyPerNm = q; frc = c; frcSmoothed = s; threshold = t; }
    }

    /** Fourier ring correlation with random blocks of a twentieth of the frames (the CLI's maliang frc). */
    public static FrcResult frc(Localization[] locs, double pixelSizeNm, double superPixelNm, int seed) {
        return frc(locs, pixelSizeNm, superPixelNm, FrcSplit.RANDOM, 0, seed);
    }

    /** Fourier ring correlation (ml_frc): halves by blocks of {@code blockFrames} frames (0 = a twentieth of the frames). */
    public static FrcResult frc(Localization[] locs, double pixelSizeNm, double superPixelNm, FrcSplit split, int blockFrames, int seed) {
        checkLocs(locs, true, "FRC");
        positive(pixelSizeNm, "pixel_size", "nm");
        positive(superPixelNm, "super_pixel", "nm");
        if (split == null) throw new IllegalArgumentException("split is null");
        if (blockFrames < 0) throw new IllegalArgumentException("block_frames: must be >= 0 (0 = a twentieth of the frames), got " + blockFrames);
        ready();
        Memory o = new Memory(FRC_OPTIONS_BYTES);
        MaLiang.check(Api.ml_default_frc_options(o), "ml_default_frc_options");
        o.setInt(4, split.ordinal());
        o.setInt(8, blockFrames);
        o.setInt(12, seed);
        o.setDouble(16, pixelSizeNm);
        o.setDouble(24, superPixelNm);
        double threshold = o.getDouble(32);
        Memory in = MaLiang.encode(locs);
        Memory res = new Memory(16);
        Memory curve = new Memory(3L * 8 * FRC_MAX_POINTS);
        try {
            MaLiang.check(Api.ml_frc(in, locs.length, o, res, curve, curve.share(8L * FRC_MAX_POINTS), curve.share(16L * FRC_MAX_POINTS),
                    FRC_MAX_POINTS, res.share(8)), "ml_frc");
            int m = (int) res.getLong(8);
            return new FrcResult(res.getDouble(0), curve.getDoubleArray(0, m), curve.getDoubleArray(8L * FRC_MAX_POINTS, m),
                    curve.getDoubleArray(16L * FRC_MAX_POINTS, m), threshold);
        } finally {
            MaLiang.free(in); MaLiang.free(res); MaLiang.free(curve);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Motion

    /** ml_motion_result. */
    public static final class MotionResult {
        public int inRegion, inliers, n1, n2;
        public double lineX, lineY, directionX, directionY, normalX, normalY;
        public double mean1Nm, stdErr1Nm, mean2Nm, stdErr2Nm, displacementNm, z;

        static MotionResult read(Pointer p) {
            MotionResult r = new MotionResult();
            r.inRegion = p.getInt(4); r.inliers = p.getInt(8); r.n1 = p.getInt(12); r.n2 = p.getInt(16);
            r.lineX = p.getDouble(24); r.lineY = p.getDouble(32); r.directionX = p.getDouble(40); r.directionY = p.getDouble(48);
            r.normalX = p.getDouble(56); r.normalY = p.getDouble(64);
            r.mean1Nm = p.getDouble(72); r.stdErr1Nm = p.getDouble(80); r.mean2Nm = p.getDouble(88); r.stdErr2Nm = p.getDouble(96);
            r.displacementNm = p.getDouble(104); r.z = p.getDouble(112);
            return r;
        }

        @Override public String toString() {
            return String.format(java.util.Locale.ROOT, "%d localizations in the region, %d on the line; window 1: %d at %.1f +- %.1f nm, "
                    + "window 2: %d at %.1f +- %.1f nm; displacement %.1f nm, Z = %.2f",
                    inRegion, inliers, n1, mean1Nm, stdErr1Nm, n2, mean2Nm, stdErr2Nm, displacementNm, z);
        }
    }

    /** Motion of a linear structure in {@code regionPx} = {x0, y0, x1, y1} between two 0-based frame windows (ml_motion). */
    public static MotionResult motion(Localization[] locs, double[] regionPx, int window1First, int window1Last,
                                      int window2First, int window2Last, double pixelSizeNm) {
        checkLocs(locs, true, "motion");
        if (regionPx == null) throw new IllegalArgumentException("region is null");
        checkRegion(regionPx);
        if (window1First < 0 || window1Last < window1First) throw new IllegalArgumentException("windows: window 1 " + window1First + ".." + window1Last + " needs 0 <= first <= last (0-based)");
        if (window2First < 0 || window2Last < window2First) throw new IllegalArgumentException("windows: window 2 " + window2First + ".." + window2Last + " needs 0 <= first <= last (0-based)");
        positive(pixelSizeNm, "pixel_size", "nm");
        ready();
        Memory in = MaLiang.encode(locs);
        Memory out = new Memory(MOTION_RESULT_BYTES);
        out.clear();
        out.setInt(0, MOTION_RESULT_BYTES);
        try {
            MaLiang.check(Api.ml_motion(in, locs.length, regionPx[0], regionPx[1], regionPx[2], regionPx[3], window1First, window1Last,
                    window2First, window2Last, pixelSizeNm, out), "ml_motion");
            return MotionResult.read(out);
        } finally {
            MaLiang.free(in); MaLiang.free(out);
        }
    }
}
