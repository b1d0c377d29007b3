package org.maliang.ij;

import ij.IJ;
import ij.gui.GenericDialog;
import ij.gui.Plot;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;

import java.awt.Color;
import java.util.Locale;

import org.maliang.MaLiang;
import org.maliang.MaLiangException;
import org.maliang.Post;

/**
 * Plugins &gt; MaLiang post-processing commands (plugins.config): Drift Correction, Merge, Filter, FRC, Motion Statistics.
 *
 * <p>They work on the plugin's current localizations (those of the last Localize or Import CSV, shown in the
 * "MaLiang Results" table), like Render and Export CSV. Drift Correction, Merge and Filter replace them and refill the
 * table; FRC and Motion Statistics only report. Dialog keys are the CLI option names with underscores, so the macro
 * recorder writes e.g. {@code run("Merge", "radius_nm=50 gap=1")}. Units as in the CLI: radii in nm, regions in camera
 * px, frame windows 1-based (as in the table).</p>
 */
public class PostPlugin implements PlugIn {
    static final String[] DRIFT_METHODS = {"rcc", "fiducial"};
    static final String[] FRC_SPLITS = {"random", "odd_even"};
    /** The drift trajectory table: frame (1-based), dx [nm], dy [nm]. */
    public static final String DRIFT_TABLE = "MaLiang Drift";

    @Override
    public void run(String arg) {
        try {
            if ("drift".equals(arg)) drift();
            else if ("merge".equals(arg)) merge();
            else if ("filter".equals(arg)) filter();
            else if ("frc".equals(arg)) frc();
            else if ("motion".equals(arg)) motion();
            else throw new MaLiangPlugin.UserError("unknown command '" + arg + "'");
        } catch (MaLiangPlugin.UserError e) {
            MaLiangPlugin.fail(e.getMessage());
        } catch (IllegalArgumentException e) {
            MaLiangPlugin.fail(e.getMessage());
        } catch (IllegalStateException e) {
            MaLiangPlugin.fail(e.getMessage());
        } catch (MaLiangException e) {
            MaLiangPlugin.fail(e.isCancelled() ? "cancelled" : e.getMessage());
        } catch (LinkageError e) { // NoClassDefFoundError: JNA (or a part of MaLiang_.jar) could not be loaded
            MaLiangPlugin.fail(MaLiangPlugin.linkageMessage(e));
        }
    }

    static MaLiang.Localization[] session(String command) {
        MaLiangPlugin.requireLibrary(); // probes JNA before MaLiang is touched
        return MaLiangPlugin.requireSession(command);
    }

    /** Replaces the session's localizations and refills the results table. */
    static void replace(MaLiang.Localization[] locs, String what) {
        MaLiangPlugin.Session.locs = locs;
        MaLiangPlugin.showTable(locs, MaLiangPlugin.Session.pixelSizeNm);
        IJ.showStatus("MaLiang: " + what);
    }

    static String fmt(String f, Object... a) { return String.format(Locale.ROOT, f, a); }

    // ---------------------------------------------------------------------------------------------------------------

    void drift() {
        MaLiang.Localization[] locs = session("Drift Correction");
        GenericDialog gd = new GenericDialog("MaLiang Drift Correction");
        gd.addChoice("method", DRIFT_METHODS, Prefs.get("drift_method", "rcc"));
        gd.addMessage("RCC (redundant cross-correlation, no fiducial)");
        gd.addNumericField("segments", 10, 0, 6, "time segments");
        gd.addNumericField("magnification", 5, 1, 6, "correlation px per camera px");
        gd.addMessage("Fiducial (a bead in most frames)");
        gd.addNumericField("smooth_frames", 200, 0, 6, "frames");
        gd.addStringField("region", "", 20);
        gd.addMessage("region: x0,y0,x1,y1 in camera px around the bead (empty = found automatically)");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        Post.DriftOptions o = new Post.DriftOptions();
        o.method = Post.DriftMethod.parse(gd.getNextChoice());
        o.segments = MaLiangPlugin.integer(gd, "segments");
        o.magnification = MaLiangPlugin.number(gd, "magnification");
        o.smoothFrames = MaLiangPlugin.integer(gd, "smooth_frames");
        String region = gd.getNextString().trim();
        if (!region.isEmpty()) o.regionPx = Post.parseRegion(region);
        o.validate();
        if (MaLiangPlugin.interactive()) Prefs.set("drift_method", o.method.key());

        IJ.showStatus("MaLiang: " + o.method.key() + " drift correction of " + locs.length + " localizations...");
        Post.DriftResult d = Post.driftCorrect(locs, o);
        double px = MaLiangPlugin.Session.pixelSizeNm;
        int n = d.frames();
        double[] frame = new double[n], dx = new double[n], dy = new double[n];
        double maxDx = 0, maxDy = 0;
        for (int f = 0; f < n; f++) {
            frame[f] = f + 1;
            dx[f] = d.dxPx[f] * px;
            dy[f] = d.dyPx[f] * px;
            maxDx = Math.max(maxDx, Math.abs(dx[f]));
            maxDy = Math.max(maxDy, Math.abs(dy[f]));
        }
        ResultsTable rt = new ResultsTable(Integer.valueOf(n));
        rt.showRowNumbers(false);
        rt.setPrecision(4);
        rt.setValues("frame", frame);
        rt.setValues("dx [nm]", dx);
        rt.setValues("dy [nm]", dy);
        rt.show(DRIFT_TABLE);

        Plot plot = new Plot("MaLiang Drift (" + o.method.key() + ")", "frame", "drift [nm]");
        plot.setColor(Color.RED);
        plot.addPoints(frame, dx, Plot.LINE);
        plot.setColor(Color.BLUE);
        plot.addPoints(frame, dy, Plot.LINE);
        plot.setColor(Color.BLACK);
        plot.addLegend("dx\tdy");
        plot.setLimitsToFit(false);
        plot.show();

        replace(d.corrected, "drift corrected");
        IJ.log(fmt("MaLiang drift (%s) over %d frames: max |dx| %.1f nm, max |dy| %.1f nm, final dx %.1f nm, dy %.1f nm",
                o.method.key(), n, maxDx, maxDy, dx[n - 1], dy[n - 1]));
    }

    void merge() {
        MaLiang.Localization[] locs = session("Merge");
        GenericDialog gd = new GenericDialog("MaLiang Merge");
        gd.addNumericField("radius_nm", 50, 1, 6, "nm, max distance within one molecule");
        gd.addNumericField("gap", 1, 0, 6, "frames a molecule may be missed");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        double radius = MaLiangPlugin.number(gd, "radius_nm");
        int gap = MaLiangPlugin.integer(gd, "gap");
        if (!(radius > 0) || Double.isInfinite(radius)) throw new MaLiangPlugin.UserError("radius_nm: must be a finite number > 0 nm, got " + radius);
        if (gap < 0) throw new MaLiangPlugin.UserError("gap: must be >= 0 frames, got " + gap);
        MaLiang.Localization[] merged = Post.merge(locs, radius / MaLiangPlugin.Session.pixelSizeNm, gap);
        replace(merged, locs.length + " localizations merged into " + merged.length + " molecules");
        IJ.log("MaLiang merge: " + locs.length + " localizations -> " + merged.length + " molecules");
    }

    void filter() {
        MaLiang.Localization[] locs = session("Filter");
        GenericDialog gd = new GenericDialog("MaLiang Filter");
        gd.addStringField("expr", Prefs.get("filter_expr", ""), 40);
        gd.addMessage("keep rows where this holds, e.g. uncertainty [nm] < 20 && intensity [photon] > 300\ncolumns: "
                + String.join(", ", Post.FILTER_COLUMNS));
        gd.addNumericField("density_radius_nm", 0, 1, 6, "nm (0 = no density filter)");
        gd.addNumericField("min_neighbours", 3, 0, 6, "within the radius");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        String expr = gd.getNextString().trim();
        double dr = MaLiangPlugin.number(gd, "density_radius_nm");
        int k = MaLiangPlugin.integer(gd, "min_neighbours");
        if (expr.isEmpty() && dr == 0) throw new MaLiangPlugin.UserError("expr: give an expression and/or a density_radius_nm > 0");
        if (dr < 0 || Double.isNaN(dr) || Double.isInfinite(dr)) throw new MaLiangPlugin.UserError("density_radius_nm: must be >= 0 nm, got " + dr);
        if (k < 0) throw new MaLiangPlugin.UserError("min_neighbours: must be >= 0, got " + k);
        double px = MaLiangPlugin.Session.pixelSizeNm;
        boolean[] keep = new boolean[locs.length];
        java.util.Arrays.fill(keep, true);
        if (!expr.isEmpty()) {
            boolean[] m = Post.filterMask(locs, expr, px);
            for (int i = 0; i < keep.length; i++) keep[i] &= m[i];
            if (MaLiangPlugin.interactive()) Prefs.set("filter_expr", expr);
        }
        if (dr > 0) {
            boolean[] m = Post.densityMask(locs, dr / px, k);
            for (int i = 0; i < keep.length; i++) keep[i] &= m[i];
        }
        MaLiang.Localization[] kept = Post.select(locs, keep);
        replace(kept, "kept " + kept.length + " of " + locs.length + " localizations");
        IJ.log("MaLiang filter: kept " + kept.length + " of " + locs.length + " localizations");
    }

    void frc() {
        MaLiang.Localization[] locs = session("FRC");
        GenericDialog gd = new GenericDialog("MaLiang FRC");
        gd.addNumericField("super_pixel_nm", 5, 2, 6, "nm, histogram pixel of the half images");
        gd.addChoice("split", FRC_SPLITS, FRC_SPLITS[0]);
        gd.addNumericField("block_frames", 0, 0, 6, "frames per block (0 = a twentieth of the frames)");
        gd.addNumericField("seed", 0, 0, 6, "of the random split");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        double sp = MaLiangPlugin.number(gd, "super_pixel_nm");
        int block = MaLiangPlugin.integer(gd, "block_frames");
        int seed = MaLiangPlugin.integer(gd, "seed");
        Post.FrcSplit split = Post.FrcSplit.parse(gd.getNextChoice());
        double px = MaLiangPlugin.Session.pixelSizeNm;
        Post.FrcResult r = Post.frc(locs, px, sp, split, block, seed);
        int n = r.frc.length;
        double[] q = new double[n], thr = new double[n];
        for (int i = 0; i < n; i++) { q[i] = r.frequencyPerNm[i]; thr[i] = r.threshold; }
        Plot plot = new Plot("MaLiang FRC", "spatial frequency [1/nm]", "FRC");
        plot.setColor(Color.LIGHT_GRAY);
        plot.addPoints(q, r.frc, Plot.LINE);
        plot.setColor(Color.BLUE);
        plot.addPoints(q, r.frcSmoothed, Plot.LINE);
        plot.setColor(Color.RED);
        plot.addPoints(q, thr, Plot.LINE);
        plot.setColor(Color.BLACK);
        plot.addLegend("FRC\tsmoothed\t1/7");
        plot.setLimits(0, q[n - 1], Math.min(-0.1, minOf(r.frcSmoothed)), 1.05);
        if (!Double.isNaN(r.resolutionNm)) plot.addLabel(0.6, 0.2, fmt("resolution %.1f nm", r.resolutionNm));
        plot.show();
        IJ.log(Double.isNaN(r.resolutionNm)
                ? "MaLiang FRC resolution: the curve never falls below 1/7 (too few localizations or resolution finer than the super-pixel)"
                : fmt("MaLiang FRC resolution: %.1f nm (%d localizations, super-pixel %.2f nm)", r.resolutionNm, locs.length, sp));
    }

    static double minOf(double[] v) {
        double m = Double.POSITIVE_INFINITY;
        for (double x : v) m = Math.min(m, x);
        return m;
    }

    void motion() {
        MaLiang.Localization[] locs = session("Motion Statistics");
        GenericDialog gd = new GenericDialog("MaLiang Motion Statistics");
        gd.addStringField("region", Prefs.get("motion_region", ""), 20);
        gd.addMessage("region: x0,y0,x1,y1 in camera px around a linear structure");
        gd.addStringField("windows", Prefs.get("motion_windows", "1-1000,2001-3000"), 20);
        gd.addMessage("windows: two frame ranges (1-based, both ends included)");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        String region = gd.getNextString().trim(), windows = gd.getNextString().trim();
        if (region.isEmpty()) throw new MaLiangPlugin.UserError("region: give x0,y0,x1,y1 in camera px");
        double[] reg = Post.parseRegion(region);
        int[] w = parseWindows(windows);
        if (MaLiangPlugin.interactive()) { Prefs.set("motion_region", region); Prefs.set("motion_windows", windows); }
        Post.MotionResult m = Post.motion(locs, reg, w[0], w[1], w[2], w[3], MaLiangPlugin.Session.pixelSizeNm);
        IJ.log("MaLiang motion (region " + region + ", windows " + windows + "): " + m);
    }

    /** "a-b,c-d" (1-based, inclusive) -> {a-1, b-1, c-1, d-1}. */
    static int[] parseWindows(String s) {
        String[] parts = s.split(",");
        if (parts.length != 2) throw new MaLiangPlugin.UserError("windows: needs two frame ranges like 1-1000,2001-3000, got '" + s + "'");
        int[] r = new int[4];
        for (int i = 0; i < 2; i++) {
            String[] ab = parts[i].trim().split("-");
            try {
                if (ab.length != 2) throw new NumberFormatException();
                r[2 * i] = Integer.parseInt(ab[0].trim()) - 1;
                r[2 * i + 1] = Integer.parseInt(ab[1].trim()) - 1;
            } catch (NumberFormatException e) {
                throw new MaLiangPlugin.UserError("windows: '" + parts[i].trim() + "' is not a frame range like 1-1000");
            }
            if (r[2 * i] < 0 || r[2 * i + 1] < r[2 * i])
                throw new MaLiangPlugin.UserError("windows: frame range '" + parts[i].trim() + "' is empty or starts before frame 1");
        }
        return r;
    }

    /** ImageJ preferences under "maliang.post.". */
    static final class Prefs {
        static String get(String k, String def) { return ij.Prefs.get("maliang.post." + k, def); }
        static void set(String k, String v) { ij.Prefs.set("maliang.post." + k, v); }
    }
}
