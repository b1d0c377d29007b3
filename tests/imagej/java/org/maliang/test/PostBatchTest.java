package org.maliang.test;

import static org.junit.Assert.*;

import java.io.File;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.BeforeClass;
import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;
import org.maliang.Post;

/**
 * ImageJ -batch (under Xvfb) runs Drift Correction, Merge, Filter, FRC and Motion Statistics by their recorded key strings
 * (tests/imagej/macros/post.ijm) on CSVs with known ground truth written here; each effect is checked against the truth
 * or an exact expectation.
 */
public class PostBatchTest {
    static final double PX = PostSim.PX;
    static File dir;
    static Proc.Result run;
    static Localization[] frcLocs;
    static double[][] driftTruth;
    static final int DRIFT_FRAMES = 5000, BEAD_FRAMES = 3000;

    static String csv(String name) { return new File(dir, name).getPath(); }

    @BeforeClass public static void runMacro() throws Exception {
        assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable());
        dir = new File(Env.OUT, "post");
        dir.mkdirs();
        for (File f : dir.listFiles()) f.delete();
        driftTruth = new double[50000][];
        MaLiang.writeCsv(csv("drift.csv"), PostSim.filaments(50000, DRIFT_FRAMES, 3, driftTruth), PX);
        MaLiang.writeCsv(csv("bead.csv"), PostSim.beadAndBlinkers(BEAD_FRAMES, 1), PX);
        MaLiang.writeCsv(csv("blink.csv"), PostSim.blinking(3000, 4, new int[1]), PX);
        frcLocs = PostSim.frcEmitters(20, 5);
        MaLiang.writeCsv(csv("frc.csv"), frcLocs, PX);
        MaLiang.writeCsv(csv("filament50.csv"), PostSim.filament(50, 7), PX);
        MaLiang.writeCsv(csv("filament0.csv"), PostSim.filament(0, 8), PX);
        run = Proc.imagejBatch(ImageJBatchTest.macro("post.ijm"), dir.getPath());
        System.out.println("  post.ijm: " + run.out.replace("\n", "\n    "));
    }

    static void macroRan() {
        assertEquals(run.out, 0, run.rc);
        ImageJBatchTest.assertNoStackTrace(run.out);
        assertTrue(run.out, run.out.contains("post done"));
    }

    static double number(String regex) {
        Matcher m = Pattern.compile(regex).matcher(run.out);
        assertTrue("no match for " + regex + " in:\n" + run.out, m.find());
        return Double.parseDouble(m.group(1));
    }

    static double[][] truthDrift(int frames, boolean relativeToStart) {
        double[] tx = new double[frames], ty = new double[frames];
        for (int f = 0; f < frames; f++) { double[] t = PostSim.drift(f, frames); tx[f] = t[0] * PX; ty[f] = t[1] * PX; }
        return new double[][] {tx, ty};
    }

    @Test public void driftCorrectionRcc() throws Exception {
        macroRan();
        assertEquals(DRIFT_FRAMES, (int) number("drift frames: (\\d+)"));
        assertTrue(run.out, run.out.contains("drift plot: 1"));
        assertTrue(run.out, run.out.contains("MaLiang drift (rcc) over 5000 frames"));
        Map<String, double[]> d = Truth.readCsv(csv("drift_rcc.csv"));
        assertEquals(DRIFT_FRAMES, d.get("frame").length);
        assertEquals(1, d.get("frame")[0], 0);
        double[][] t = truthDrift(DRIFT_FRAMES, false);
        double rms = PostSim.residualRms(d.get("dx [nm]"), d.get("dy [nm]"), t[0], t[1]);
        System.out.println("  macro rcc residual rms " + rms + " nm");
        assertTrue("rms " + rms + " nm", rms < 5);
        // the table now holds the corrected localizations: the undrifted truth up to one constant shift
        Map<String, double[]> c = Truth.readCsv(csv("drift_corrected.csv"));
        double[] x = c.get("x [nm]"), y = c.get("y [nm]");
        assertEquals(driftTruth.length, x.length);
        double mx = 0, my = 0;
        for (int i = 0; i < x.length; i++) { mx += x[i] - driftTruth[i][0] * PX; my += y[i] - driftTruth[i][1] * PX; }
        mx /= x.length; my /= x.length;
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            double a = x[i] - driftTruth[i][0] * PX - mx, b = y[i] - driftTruth[i][1] * PX - my;
            s += a * a + b * b;
        }
        assertTrue("corrected positions rms " + Math.sqrt(s / x.length), Math.sqrt(s / x.length) < 5);
    }

    @Test public void driftCorrectionFiducialWithRegion() throws Exception {
        macroRan();
        Map<String, double[]> d = Truth.readCsv(csv("drift_fiducial.csv"));
        assertEquals(BEAD_FRAMES, d.get("frame").length);
        double[][] t = truthDrift(BEAD_FRAMES, true);
        double rms = PostSim.residualRms(d.get("dx [nm]"), d.get("dy [nm]"), t[0], t[1]);
        System.out.println("  macro fiducial residual rms " + rms + " nm");
        assertTrue("rms " + rms + " nm", rms < 2);
        assertEquals(0, d.get("dx [nm]")[0], 5);
    }

    @Test public void mergeReducesToTheMoleculeCount() throws Exception {
        macroRan();
        Localization[] blink = MaLiang.readCsv(csv("blink.csv"), PX);
        int merged = (int) number("merged: (\\d+)");
        assertEquals(Post.merge(blink, 0.5, 1).length, merged);
        assertTrue(run.out, run.out.contains("MaLiang merge: " + blink.length + " localizations -> " + merged + " molecules"));
        assertEquals(3000, merged, 60); // within 2% of the true number of molecules
        assertTrue(merged < blink.length / 2);
    }

    @Test public void filterKeepsTheExpectedRows() throws Exception {
        macroRan();
        Map<String, double[]> b = Truth.readCsv(csv("blink.csv"));
        double[] ph = b.get("intensity [photon]"), fr = b.get("frame");
        int expected = 0;
        for (int i = 0; i < ph.length; i++) if (ph[i] > 1000 && fr[i] <= 1000) expected++;
        assertTrue(expected > 100 && expected < ph.length / 2);
        assertEquals(expected, (int) number("filtered expr: (\\d+)"));
        Map<String, double[]> f = Truth.readCsv(csv("filtered.csv"));
        assertEquals(expected, f.get("frame").length);
        for (int i = 0; i < expected; i++) {
            assertTrue(f.get("intensity [photon]")[i] > 1000);
            assertTrue(f.get("frame")[i] <= 1000);
        }
        Localization[] blink = MaLiang.readCsv(csv("blink.csv"), PX);
        int dense = 0;
        for (boolean k : Post.densityMask(blink, 0.5, 2)) if (k) dense++;
        assertEquals(dense, (int) number("filtered density: (\\d+)"));
    }

    @Test public void frcResolutionAndPlot() throws Exception {
        macroRan();
        double res = number("MaLiang FRC resolution: ([0-9.]+) nm");
        double expected = PostSim.frcTheory(frcLocs, 20, 5, 20);
        System.out.println("  macro FRC " + res + " nm, theory " + expected + " nm");
        assertEquals(expected, res, 0.15 * expected);
        assertTrue(run.out, run.out.contains("frc plot: 1"));
    }

    @Test public void motionStatisticsInTheLog() throws Exception {
        macroRan();
        Matcher m = Pattern.compile("MaLiang motion \\(region 5,5,35,25, windows 1-1000,2001-3000\\): .*displacement ([-0-9.]+) nm, Z = ([-0-9.]+)").matcher(run.out);
        assertTrue(run.out, m.find());
        double d50 = Double.parseDouble(m.group(1)), z50 = Double.parseDouble(m.group(2));
        assertTrue(run.out, m.find());
        double z0 = Double.parseDouble(m.group(2));
        System.out.println("  macro motion: 50 nm -> " + d50 + " nm, Z " + z50 + "; none -> Z " + z0);
        assertEquals(50, d50, 3);
        assertTrue(z50 > 5);
        assertTrue(Math.abs(z0) < 3);
    }

    @Test public void userErrorsAbortTheMacroWithAMessage() throws Exception {
        String[][] cases = {
                {"error_post_filter.ijm", csv("blink.csv"), "unknown column 'photons'"},
                {"error_post_nolocs.ijm", null, "Merge needs localizations"},
                {"error_post_windows.ijm", csv("filament0.csv"), "windows: frame range '1000-1' is empty"},
        };
        for (String[] c : cases) {
            if (c[1] != null) assertTrue(c[1], new File(c[1]).isFile());
            Proc.Result r = Proc.imagejBatch(ImageJBatchTest.macro(c[0]), c[1]);
            assertNotEquals(c[0] + " hung:\n" + r.out, 124, r.rc);
            assertTrue(c[0] + ":\n" + r.out, r.out.contains("MaLiang error: "));
            assertTrue(c[0] + ":\n" + r.out, r.out.contains(c[2]));
            assertFalse(c[0] + " went on after the error:\n" + r.out, r.out.contains("NOT REACHED"));
            ImageJBatchTest.assertNoStackTrace(r.out);
        }
    }
}
