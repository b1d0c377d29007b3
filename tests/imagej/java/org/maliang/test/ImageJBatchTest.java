package org.maliang.test;

import static org.junit.Assert.*;

import ij.IJ;
import ij.ImagePlus;

import java.io.File;
import java.util.Map;

import org.junit.Test;

/** ImageJ 1.x in batch mode (ij.ImageJ -batch, under Xvfb) with MaLiang_.jar in plugins/: the recorded macro commands. */
public class ImageJBatchTest {
    static String example(String name) { return Env.ROOT + "/examples/imagej/" + name; }
    static String macro(String name) { return Env.ROOT + "/tests/imagej/macros/" + name; }
    static String out(String name) { return Env.OUT + "/" + name; }

    static void assertNoStackTrace(String out) {
        assertFalse("stack trace in:\n" + out, out.matches("(?s).*\\n\\s+at [a-z]+\\..*"));
        assertFalse("exception in:\n" + out, out.contains("Exception in thread"));
    }

    /** examples/imagej/localize.ijm on a sparse simulation: the exported CSV matches the simulator's ground truth. */
    @Test public void recordedMacroMatchesGroundTruth() throws Exception {
        String csv = out("batch_sparse.csv"), tif = out("batch_sparse_render.tif");
        new File(csv).delete(); new File(tif).delete();
        Proc.Result r = Proc.imagejBatch(example("localize.ijm"), Env.data("sparse.tif") + "|" + csv + "|" + tif);
        assertEquals(r.out, 0, r.rc);
        assertNoStackTrace(r.out);
        assertTrue(r.out, r.out.contains("localizations: "));
        Map<String, double[]> truth = Truth.readCsv(Env.data("sparse_truth.csv"));
        Map<String, double[]> locs = Truth.readCsv(csv);
        Truth.Match m = Truth.match(truth, locs, 100);
        System.out.println("  batch macro vs ground truth: " + m);
        assertTrue(m.toString(), m.recall() >= 0.98);
        assertEquals("RMSE x vs sqrt(CRLB): " + m, 1.0, m.rmseX / m.crlbX, 0.10);
        assertEquals("RMSE y vs sqrt(CRLB): " + m, 1.0, m.rmseY / m.crlbY, 0.10);
        // the table has the CSV's rows, the render is 32-bit, 10x, calibrated in nm
        assertTrue(r.out, r.out.contains("localizations: " + locs.get("id").length));
        ImagePlus img = IJ.openImage(tif);
        assertNotNull(img);
        assertEquals(32, img.getBitDepth());
        assertEquals(1280, img.getWidth());
        assertEquals("nm", img.getCalibration().getUnit());
        assertEquals(10.0, img.getCalibration().pixelWidth, 1e-9);
    }

    /** VirtualStack (frame by frame), 32-bit and 8-bit stacks all localize; virtual and 32-bit agree with 16-bit. */
    @Test public void virtualFloatAndByteStacks() throws Exception {
        File dir = new File(out("variants"));
        dir.mkdirs();
        for (File f : dir.listFiles()) f.delete();
        Proc.Result r = Proc.imagejBatch(macro("variants.ijm"), Env.data("stack.tif") + "|" + dir.getPath());
        assertEquals(r.out, 0, r.rc);
        assertNoStackTrace(r.out);
        assertTrue(r.out, r.out.contains("virtual: 1"));
        assertTrue(r.out, r.out.contains("variants done"));
        Map<String, double[]> cli = Truth.readCsv(Env.data("cli.csv"));
        for (String name : new String[] {"virtual.csv", "float32.csv"}) {
            Map<String, double[]> v = Truth.readCsv(dir + "/" + name);
            assertEquals(name, cli.get("x [nm]").length, v.get("x [nm]").length);
            for (int i = 0; i < v.get("x [nm]").length; i++) {
                assertEquals(name, cli.get("frame")[i], v.get("frame")[i], 0);
                assertEquals(name, cli.get("x [nm]")[i] / 100, v.get("x [nm]")[i] / 100, 1e-4);
                assertEquals(name, cli.get("y [nm]")[i] / 100, v.get("y [nm]")[i] / 100, 1e-4);
            }
        }
        Map<String, double[]> b = Truth.readCsv(dir + "/uint8.csv");
        assertTrue("8-bit found molecules", b.get("x [nm]").length > cli.get("x [nm]").length / 2);
    }

    /** The localizations of two CSVs are the same, row for row; frame f of b is frame (f - 1) * frameStep + 1 of a. */
    static void assertSameLocalizations(String what, Map<String, double[]> a, Map<String, double[]> b, int frameStep) {
        assertTrue(what + ": found molecules", b.get("x [nm]").length > 10);
        assertEquals(what + ": rows", a.get("x [nm]").length, b.get("x [nm]").length);
        for (int i = 0; i < b.get("x [nm]").length; i++) {
            assertEquals(what + " frame", a.get("frame")[i], (b.get("frame")[i] - 1) * frameStep + 1, 0);
            assertEquals(what + " x", a.get("x [nm]")[i] / 100, b.get("x [nm]")[i] / 100, 1e-4);
            assertEquals(what + " y", a.get("y [nm]")[i] / 100, b.get("y [nm]")[i] / 100, 1e-4);
            assertEquals(what + " photons", a.get("intensity [photon]")[i], b.get("intensity [photon]")[i], 1e-3 * a.get("intensity [photon]")[i]);
        }
    }

    static Map<String, double[]> cliCsv(String tif, String csv) throws Exception {
        new File(csv).delete();
        Proc.Result r = Proc.run(java.util.Arrays.asList(Env.ROOT + "/build/maliang", "localize", tif, "-o", csv, "--offset", "100", "--psf-sigma", "1.3", "-q"), 120);   // the dialog always gives psf_sigma
        assertEquals(r.out, 0, r.rc);
        return Truth.readCsv(csv);
    }

    /**
     * Stacks as Python users write them, {@code tifffile.imwrite(path, stack, imagej=True)}: ImageJ opens that as 200
     * channels (or slices, or frames with axes metadata). When one of channels, slices and frames is above 1, the recorded
     * Localize takes it as the time series, says so in the Log, and gives the CLI's localizations on the same file. A
     * true hyperstack is refused with the command to run, and that command makes it localizable.
     */
    @Test public void tifffileStacksLocalizeAsTimeSeries() throws Exception {
        File dir = new File(out("tifffile"));
        dir.mkdirs();
        for (File f : dir.listFiles()) f.delete();
        Proc.Result w = Proc.run(java.util.Arrays.asList("/usr/bin/python3", Env.ROOT + "/tests/imagej/python/write_tifffile_stacks.py",
                Env.data("movie200.tif"), dir.getPath()), 120);
        assertEquals(w.out, 0, w.rc);
        String[][] cases = {
                {"tifffile_plain", "channels=200 slices=1 frames=1", "200 channels"},
                {"tifffile_zyx", "channels=1 slices=200 frames=1", "200 slices"},
                {"tifffile_tyx", "channels=1 slices=1 frames=200", "200 frames"},
        };
        for (String[] c : cases) {
            String tif = dir + "/" + c[0] + ".tif", csv = dir + "/" + c[0] + ".csv";
            Proc.Result r = Proc.imagejBatch(macro("tifffile_stack.ijm"), tif + "|" + csv);
            assertEquals(c[0] + ":\n" + r.out, 0, r.rc);
            assertNoStackTrace(r.out);
            assertTrue(c[0] + ":\n" + r.out, r.out.contains("opened: " + c[1]));
            assertTrue(c[0] + ":\n" + r.out, r.out.contains("localizing its " + c[2] + " as the time series"));
            assertFalse(c[0] + ":\n" + r.out, r.out.contains("MaLiang error"));
            Map<String, double[]> ij = Truth.readCsv(csv);
            assertTrue(r.out, r.out.contains("localized: " + ij.get("x [nm]").length));
            assertSameLocalizations(c[0], cliCsv(tif, dir + "/" + c[0] + "_cli.csv"), ij, 1);
        }
        // 4 channels x 5 slices x 10 frames: refused, naming the command; nothing exported
        String tif = dir + "/tifffile_tzcyx.tif", csv = dir + "/tifffile_tzcyx.csv";
        Proc.Result r = Proc.imagejBatch(macro("tifffile_stack.ijm"), tif + "|" + csv);
        assertNotEquals(r.out, 124, r.rc);
        assertNoStackTrace(r.out);
        assertTrue(r.out, r.out.contains("opened: channels=4 slices=5 frames=10"));
        assertTrue(r.out, r.out.contains("MaLiang error: tifffile_tzcyx.tif is a hyperstack of 4 channels x 5 slices x 10 frames"));
        assertTrue(r.out, r.out.contains("Image > Hyperstacks > Reduce Dimensionality..."));
        assertFalse(r.out, r.out.contains("localized: "));
        assertFalse("no CSV from a refused hyperstack", new File(csv).exists());
        // ... and doing what it says works: channel 1, slice 1 of each time point = frames 1, 21, 41, ... of the movie
        r = Proc.imagejBatch(macro("tifffile_stack.ijm"), tif + "|" + csv + "|reduce");
        assertEquals(r.out, 0, r.rc);
        assertTrue(r.out, r.out.contains("reduced: channels=1 slices=1 frames=10"));
        assertTrue(r.out, r.out.contains("localizing its 10 frames as the time series"));
        Map<String, double[]> all = cliCsv(Env.data("movie200.tif"), dir + "/movie200_cli.csv"), every20th = new java.util.HashMap<String, double[]>();
        java.util.List<Integer> rows = new java.util.ArrayList<Integer>();
        for (int i = 0; i < all.get("frame").length; i++) if ((all.get("frame")[i] - 1) % 20 == 0) rows.add(i);
        for (String k : new String[] {"frame", "x [nm]", "y [nm]", "intensity [photon]"}) {
            double[] v = new double[rows.size()];
            for (int i = 0; i < v.length; i++) v[i] = all.get(k)[rows.get(i)];
            every20th.put(k, v);
        }
        assertSameLocalizations("reduced hyperstack", every20th, Truth.readCsv(csv), 20);
    }

    @Test public void importRenderExport() throws Exception {
        String tif = out("import_render.tif"), csv = out("import_export.csv");
        new File(tif).delete(); new File(csv).delete();
        Proc.Result r = Proc.imagejBatch(macro("import_render_export.ijm"), Env.data("sparse_truth.csv") + "|" + tif + "|" + csv);
        assertEquals(r.out, 0, r.rc);
        assertNoStackTrace(r.out);
        int n = Truth.readCsv(Env.data("sparse_truth.csv")).get("frame").length;
        assertTrue(r.out, r.out.contains("imported: " + n));
        assertTrue(r.out, r.out.contains("import/render/export done"));
        ImagePlus img = IJ.openImage(tif);
        assertEquals(640, img.getWidth());
        assertEquals(20.0, img.getCalibration().pixelWidth, 1e-9);
        double sum = 0;
        for (float v : (float[]) img.getProcessor().getPixels()) sum += v;
        assertEquals(n, sum, 0.5);
        Map<String, double[]> back = Truth.readCsv(csv), truth = Truth.readCsv(Env.data("sparse_truth.csv"));
        assertEquals(n, back.get("x [nm]").length);
        assertEquals(truth.get("x [nm]")[7], back.get("x [nm]")[7], 1e-3);
    }

    /** User mistakes in a macro: one clear line, the macro stops, no stack trace. */
    @Test public void userErrorsAbortTheMacroWithAMessage() throws Exception {
        String[][] cases = {
                {"error_rgb.ijm", "is an RGB colour image"},
                {"error_noimage.ijm", "no image is open"},
                {"error_param.ijm", "roi: must be an odd size from 3 to 31 px, got 8"},
                {"error_render.ijm", "Render needs localizations"},
        };
        for (String[] c : cases) {
            Proc.Result r = Proc.imagejBatch(macro(c[0]), null);
            assertNotEquals(c[0] + " hung:\n" + r.out, 124, r.rc);
            assertTrue(c[0] + ":\n" + r.out, r.out.contains("MaLiang error: "));
            assertTrue(c[0] + ":\n" + r.out, r.out.contains(c[1]));
            assertFalse(c[0] + " went on after the error:\n" + r.out, r.out.contains("NOT REACHED"));
            assertNoStackTrace(r.out);
        }
    }

    /** The library missing: a clear message saying where it is looked for, not an UnsatisfiedLinkError trace. */
    @Test public void missingLibraryIsAClearError() throws Exception {
        java.util.List<String> c = Proc.javaCmd(false);
        c.addAll(java.util.Arrays.asList("-Dmaliang.library=/nonexistent/libmaliang.so", "-Dplugins.dir=" + Proc.ijHome(),
                "-cp", Env.IJ_JAR + ":" + Env.JNA_JAR, "ij.ImageJ", "-batch", macro("error_param.ijm")));
        Proc.Result r = Proc.run(c, 120);
        assertTrue(r.out, r.out.contains("MaLiang error: the MaLiang native library (libmaliang.so) could not be loaded"));
        assertFalse(r.out, r.out.contains("NOT REACHED"));
        assertNoStackTrace(r.out);
    }

    /** Without jna.jar on the class path every command is one clear line ("JNA is missing"), never a stack trace. */
    @Test public void missingJnaIsAClearError() throws Exception {
        String[][] cases = {
                {macro("error_param.ijm"), "Localize"},
                {macro("error_post_nolocs.ijm"), "Merge"},
                {macro("about.ijm"), "About"},
        };
        for (String[] c : cases) {
            java.util.List<String> cmd = Proc.javaCmd(false);
            cmd.addAll(java.util.Arrays.asList("-Dplugins.dir=" + Proc.ijHome(), "-cp", Env.IJ_JAR, "ij.ImageJ", "-batch", c[0]));
            Proc.Result r = Proc.run(cmd, 120);
            assertNotEquals(c[1] + " hung:\n" + r.out, 124, r.rc);
            assertTrue(c[1] + ":\n" + r.out, r.out.contains("JNA is missing: put jna.jar on the class path; Fiji ships it"));
            assertFalse(c[1] + ":\n" + r.out, r.out.contains("NoClassDefFoundError"));
            assertFalse(c[1] + ":\n" + r.out, r.out.contains("NOT REACHED"));
            assertNoStackTrace(r.out);
        }
    }

    /** A signed 16-bit image (ImageJ stores value + 32768) localizes like the unsigned original, with offset + 32768. */
    @Test public void signed16BitImagesShiftTheOffset() throws Exception {
        ImagePlus orig = IJ.openImage(Env.data("stack.tif"));
        ij.ImageStack src = orig.getStack(), dst = new ij.ImageStack(src.getWidth(), src.getHeight());
        for (int k = 1; k <= src.getSize(); k++) {
            short[] p = ((short[]) src.getPixels(k)).clone();
            for (int i = 0; i < p.length; i++) p[i] = (short) ((p[i] & 0xffff) + 32768); // value 100 is stored as 32868
            dst.addSlice(null, p);
        }
        ImagePlus signed = new ImagePlus("signed", dst);
        signed.getCalibration().setSigned16BitCalibration();
        assertTrue(signed.getCalibration().isSigned16Bit());
        org.maliang.MaLiang.Settings s = new org.maliang.MaLiang.Settings().offset(100);
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        java.io.PrintStream old = System.out;
        org.maliang.MaLiang.Localization[] a, b;
        try {
            System.setOut(new java.io.PrintStream(buf, true, "UTF-8"));
            a = org.maliang.ij.MaLiangPlugin.localizeStack(orig, s, false);
            b = org.maliang.ij.MaLiangPlugin.localizeStack(signed, s, false);
        } finally {
            System.setOut(old);
        }
        assertEquals("the caller's settings are not changed", 100.0, s.offset_adu, 0);
        String log = buf.toString("UTF-8") + (IJ.getLog() == null ? "" : IJ.getLog());
        assertTrue(log, log.contains("signed 16-bit") && log.contains("32868"));
        assertTrue(a.length > 0);
        assertEquals(a.length, b.length);
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i].frame, b[i].frame);
            assertEquals(a[i].x, b[i].x, 1e-4);
            assertEquals(a[i].photons, b[i].photons, 1e-2 * Math.abs(a[i].photons));
        }
    }
}
