package org.maliang.test;

import static org.junit.Assert.*;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.process.FloatProcessor;

import java.io.File;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

import org.junit.BeforeClass;
import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;
import org.maliang.MaLiangException;

/** sCMOS camera maps (issue 14) through org.maliang.MaLiang and the Localize macro: the same localizations as the CLI. */
public class ScmosBindingTest {
    static final int SW = 80, SH = 60, OX = 12, OY = 7;
    static float[] offset = new float[SW * SH], variance = new float[SW * SH], gain = new float[SW * SH];
    static String offPath, varPath, gainPath, stackPath, cliCsv;
    static Object[] frames;
    static int w, h;

    static String out(String name) { return Env.OUT + "/scmos/" + name; }

    static void save(float[] map, String path) {
        IJ.saveAsTiff(new ImagePlus("map", new FloatProcessor(SW, SH, map)), path);
    }

    @BeforeClass public static void data() throws Exception {
        assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable());
        new File(out("")).mkdirs();
        Random r = new Random(5);
        for (int i = 0; i < SW * SH; i++) {
            offset[i] = (float) (100 + 2 * r.nextGaussian());
            gain[i] = (float) (0.5 * (1 + 0.025 * r.nextGaussian()));
            variance[i] = (float) (r.nextDouble() < 0.05 ? 160 : 16 * (0.8 + 0.4 * r.nextDouble()));
        }
        save(offset, offPath = out("offset.tif"));
        save(variance, varPath = out("variance.tif"));
        save(gain, gainPath = out("gain.tif"));
        stackPath = out("stack.tif");
        cliCsv = out("cli.csv");
        String m = Env.ROOT + "/build/maliang";
        String[] maps = { "--camera-offset-map", offPath, "--camera-variance-map", varPath, "--camera-gain-map", gainPath,
                          "--camera-origin", OX + "," + OY };
        Proc.Result s = Proc.run(concat(Arrays.asList(m, "simulate", stackPath, "--truth", out("truth.csv"), "--width", "48",
                "--height", "40", "--frames", "20", "--emitters", "8", "--emitters-per-frame", "6", "--photons", "1500", "--seed", "5"), maps), 120);
        assertEquals(s.out, 0, s.rc);
        s = Proc.run(concat(Arrays.asList(m, "localize", stackPath, "-o", cliCsv, "--photons-per-adu", "0.5", "--psf-sigma", "1.3", "--backend", "cpu", "-q"), maps), 120);
        assertEquals(s.out, 0, s.rc);
        ImageStack st = IJ.openImage(stackPath).getStack();
        w = st.getWidth(); h = st.getHeight();
        frames = new Object[st.getSize()];
        for (int i = 0; i < frames.length; i++) frames[i] = st.getPixels(i + 1);
    }

    static java.util.List<String> concat(java.util.List<String> a, String[] b) {
        java.util.List<String> c = new java.util.ArrayList<String>(a);
        c.addAll(Arrays.asList(b));
        return c;
    }

    static MaLiang.Settings settings() { return new MaLiang.Settings().offset(100).photonsPerAdu(0.5).backend(MaLiang.Backend.CPU); }

    static void assertSameAsCli(Localization[] locs) throws Exception {
        Map<String, double[]> cli = Truth.readCsv(cliCsv);
        double[] x = cli.get("x [nm]"), y = cli.get("y [nm]"), u = cli.get("uncertainty_x [nm]");
        assertEquals(x.length, locs.length);
        assertTrue(locs.length > 60);
        for (int i = 0; i < locs.length; i++) {
            assertEquals("x of " + i, x[i] / 100, locs[i].x, 1e-4);
            assertEquals("y of " + i, y[i] / 100, locs[i].y, 1e-4);
            assertEquals("uncertainty x of " + i, u[i] / 100, locs[i].uncertaintyX, 1e-4);
        }
    }

    @Test public void arraysAndFilesGiveTheCliResults() throws Exception {
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.setCameraMaps(offset, variance, gain, SW, SH, OX, OY);
            l.pushFrames(frames, w, h);
            assertSameAsCli(l.results());
        }
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.setCameraMapFiles(offPath, varPath, gainPath, OX, OY);
            l.pushFrames(frames, w, h);
            assertSameAsCli(l.results());
        }
    }

    /** The live localizer (Micro-Manager) with the maps: frame by frame from a queue, the CLI's localizations. */
    @Test public void liveLocalizerTakesTheMaps() throws Exception {
        try (org.maliang.LiveLocalizer live = new org.maliang.LiveLocalizer(settings(), w, h)) {
            live.setCameraMapFiles(offPath, varPath, gainPath, OX, OY);
            for (Object f : frames) live.push(f);
            live.flush();
            assertSameAsCli(live.localizations());
        }
    }

    @Test public void withoutTheVarianceMapTheUncertaintyIsSmaller() {
        double withVar = 0, without = 0;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.setCameraMaps(offset, variance, gain, SW, SH, OX, OY);
            l.pushFrames(frames, w, h);
            for (Localization a : l.results()) withVar += a.uncertaintyX;
            l.setCameraMaps(offset, null, gain, SW, SH, OX, OY);
            l.clearResults();
            l.pushFrames(frames, w, h);
            for (Localization a : l.results()) without += a.uncertaintyX;
        }
        assertTrue(without + " < " + withVar, without < 0.97 * withVar);
    }

    @Test public void badMapsAreNamed() {
        float[] bad = variance.clone();
        bad[1 * SW + 3] = Float.NaN;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            try { l.setCameraMaps(offset, bad, gain, SW, SH, 0, 0); fail("NaN variance accepted"); }
            catch (MaLiangException e) { assertTrue(e.getMessage(), e.getMessage().contains("camera-variance-map") && e.getMessage().contains("x 3, y 1")); }
            try { l.setCameraMaps(offset, Arrays.copyOf(variance, 10), gain, SW, SH, 0, 0); fail("short map accepted"); }
            catch (IllegalArgumentException e) { assertTrue(e.getMessage(), e.getMessage().contains("variance map has 10 values")); }
            try { l.setCameraMapFiles(offPath, out("missing.tif"), null, 0, 0); fail("missing file accepted"); }
            catch (MaLiangException e) { assertTrue(e.getMessage(), e.getMessage().contains("camera-variance-map") && e.getMessage().contains("missing.tif")); }
            // a stack reaching past the maps from its origin
            l.setCameraMaps(offset, null, null, SW, SH, 40, 30);
            try { l.pushFrames(frames, w, h); fail("stack past the maps accepted"); }
            catch (MaLiangException e) { assertTrue(e.getMessage(), e.getMessage().contains("camera-origin")); }
        }
    }

    @Test public void localizeMacroTakesTheMaps() throws Exception {
        String csv = out("macro.csv");
        new File(csv).delete();
        Proc.Result r = Proc.imagejBatch(Env.ROOT + "/tests/imagej/macros/scmos.ijm",
                stackPath + "|" + csv + "|" + offPath + "|" + varPath + "|" + gainPath + "|" + OX + "," + OY);
        assertEquals(r.out, 0, r.rc);
        ImageJBatchTest.assertNoStackTrace(r.out);
        Map<String, double[]> cli = Truth.readCsv(cliCsv), macro = Truth.readCsv(csv);
        assertArrayEquals(cli.get("x [nm]"), macro.get("x [nm]"), 1e-2);
        assertArrayEquals(cli.get("y [nm]"), macro.get("y [nm]"), 1e-2);
    }

    /** Camera Setup remembers the maps (ImageJ Prefs, here in a user home of its own): Localize without them uses them. */
    @Test public void cameraSetupRemembersTheMaps() throws Exception {
        String csv = out("setup.csv"), home = out("home");
        new File(csv).delete();
        new File(home).mkdirs();
        java.util.List<String> c = Proc.javaCmd(false);
        c.addAll(Arrays.asList("-Duser.home=" + home, "-Dplugins.dir=" + Proc.ijHome(), "-cp", Env.IJ_JAR + ":" + Env.JNA_JAR,
                "ij.ImageJ", "-batch", Env.ROOT + "/tests/imagej/macros/scmos_setup.ijm",
                stackPath + "|" + csv + "|" + offPath + "|" + varPath + "|" + gainPath + "|" + OX + "," + OY));
        Proc.Result r = Proc.run(c, 180);
        assertEquals(r.out, 0, r.rc);
        ImageJBatchTest.assertNoStackTrace(r.out);
        Map<String, double[]> cli = Truth.readCsv(cliCsv), macro = Truth.readCsv(csv);
        assertArrayEquals(cli.get("x [nm]"), macro.get("x [nm]"), 1e-2);
        assertArrayEquals(cli.get("uncertainty_x [nm]"), macro.get("uncertainty_x [nm]"), 1e-2);
    }
}
