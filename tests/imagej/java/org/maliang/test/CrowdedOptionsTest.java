package org.maliang.test;

import static org.junit.Assert.*;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.BeforeClass;
import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;
import org.maliang.Post;

/**
 * Issue 17's options through Java and Fiji: the Settings fields and fluent setters reach the engine (read back with
 * ml_get_settings), toCli() gives the CLI the same run, and the Localize macro keys (single_emitter, max_emitters,
 * multi_p_value, spread_threshold, no_noise_clip, drop_edge, min_snr, estimate_psf_sigma, residual_search) give the
 * CLI's results.
 */
public class CrowdedOptionsTest {
    static Object[] frames;
    static int w, h;

    @BeforeClass public static void load() {
        assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable());
        ImagePlus imp = IJ.openImage(Env.data("dense.tif"));
        assertNotNull(Env.data("dense.tif"), imp);
        ImageStack s = imp.getStack();
        w = s.getWidth(); h = s.getHeight();
        frames = new Object[s.getSize()];
        for (int i = 0; i < frames.length; i++) frames[i] = s.getPixels(i + 1);
    }

    static String out(String name) { return Env.OUT + "/" + name; }

    @Test public void layoutAndDefaults() {
        MaLiang.Settings s = new MaLiang.Settings();
        assertEquals(144, MaLiang.SETTINGS_BYTES);
        assertEquals(144, s.size());
        assertEquals(144, s.struct_size);
        assertEquals(144, Post.structSizes()[0]);
        // the C offsets (maliang.h): written through JNA, read back by offset
        MaLiang.Settings t = new MaLiang.Settings();
        t.multi_emitter = 11; t.max_emitters = 12; t.multi_p_value = 0.25; t.camera_noise = 13; t.drop_edge = 14; t.min_snr = 0.5;
        t.noise_clip = 15; t.estimate_psf_sigma = 16; t.reserved = 17; t.residual_search = 18;
        t.write();
        com.sun.jna.Pointer p = t.getPointer();
        assertEquals(17, p.getInt(92));
        assertEquals(11, p.getInt(96)); assertEquals(12, p.getInt(100)); assertEquals(0.25, p.getDouble(104), 0);
        assertEquals(13, p.getInt(112)); assertEquals(14, p.getInt(116)); assertEquals(0.5, p.getDouble(120), 0);
        assertEquals(15, p.getInt(128)); assertEquals(16, p.getInt(132)); assertEquals(18, p.getInt(136));
        assertEquals(1, s.multi_emitter);
        assertEquals(8, s.max_emitters);
        assertEquals(1e-6, s.multi_p_value, 0);
        assertEquals(1, s.camera_noise);
        assertEquals(0, s.drop_edge);
        assertEquals(5.0, s.min_snr, 0);
        assertEquals(1, s.noise_clip);
        assertEquals(0, s.estimate_psf_sigma);
        assertEquals(0, s.residual_search);
        String cli = s.toCli();
        assertTrue(cli, cli.endsWith(" --max-emitters 8 --multi-p-value 1.0E-6 --min-snr 5.0"));
        assertTrue(cli, cli.contains(" --psf-sigma 1.3 "));
    }

    /** Without the library, Settings falls back to documented defaults (the Fiji dialog still opens): they must be the
     * library's, field for field, the new ones included. */
    @Test public void fallbackDefaultsAreTheLibrarys() throws Exception {
        java.util.List<String> c = Proc.javaCmd(false);
        c.addAll(Arrays.asList("-Dmaliang.library=/nonexistent/libmaliang.so", "-cp", System.getProperty("java.class.path"),
                "org.maliang.test.DefaultsCheck"));
        Proc.Result r = Proc.run(c, 60);
        assertEquals(r.out, 0, r.rc);
        String expected = "library loaded: false\n" + DefaultsCheck.fields(new MaLiang.Settings());
        assertTrue(expected, expected.contains("max_emitters=8\n") && expected.contains("multi_p_value=1.0E-6\n"));
        assertEquals(expected, r.out.substring(r.out.indexOf("library loaded: ")));
    }

    static MaLiang.Settings changed() {
        return new MaLiang.Settings().offset(100).singleEmitter(true).maxEmitters(3).multiPValue(2.5e-7).spreadThreshold(true)
                .dropEdge(true).minSnr(0.5).noNoiseClip(true).estimatePsfSigma(true).residualSearch(true);
    }

    @Test public void settersReachTheEngine() {
        MaLiang.Settings s = changed();
        assertEquals(" --single-emitter --max-emitters 3 --multi-p-value 2.5E-7 --spread-threshold --drop-edge --min-snr 0.5 --no-noise-clip --residual-search",
                s.toCli().substring(s.toCli().indexOf(" --threads 0") + " --threads 0".length()));
        assertFalse("estimating: the CLI estimates when --psf-sigma is left out", s.toCli().contains("--psf-sigma"));
        MaLiang.Settings e;
        try (MaLiang.Localizer l = new MaLiang.Localizer(s)) {
            e = l.engineSettings();
        }
        assertEquals(0, e.multi_emitter);
        assertEquals(3, e.max_emitters);
        assertEquals(2.5e-7, e.multi_p_value, 0);
        assertEquals(0, e.camera_noise);
        assertEquals(1, e.drop_edge);
        assertEquals(0.5, e.min_snr, 0);
        assertEquals(0, e.noise_clip);
        assertEquals(1, e.estimate_psf_sigma);
        assertEquals(1, e.residual_search);
        assertEquals(100.0, e.offset_adu, 0);
        assertEquals(1.3, e.psf_sigma_px, 0);
        assertEquals(s.toCli(), e.toCli());
        // and back: the setters' opposites give the defaults
        MaLiang.Settings d = changed().singleEmitter(false).maxEmitters(8).multiPValue(1e-6).spreadThreshold(false).dropEdge(false)
                .minSnr(5).noNoiseClip(false).estimatePsfSigma(false).residualSearch(false);
        try (MaLiang.Localizer l = new MaLiang.Localizer(d)) {
            assertEquals(new MaLiang.Settings().offset(100).toCli(), l.engineSettings().toCli());
        }
    }

    @Test public void badValuesNameTheParameter() {
        Object[][] cases = {
                {new MaLiang.Settings().maxEmitters(0), "max_emitters: must be 1 to 12, got 0"},
                {new MaLiang.Settings().maxEmitters(13), "max_emitters: must be 1 to 12, got 13"},
                {new MaLiang.Settings().multiPValue(0), "multi_p_value: must be a p-value in (0, 1), got 0.0"},
                {new MaLiang.Settings().multiPValue(1), "multi_p_value: must be a p-value in (0, 1), got 1.0"},
                {new MaLiang.Settings().multiPValue(Double.NaN), "multi_p_value: must be a p-value in (0, 1), got NaN"},
                {new MaLiang.Settings().minSnr(-1), "min_snr: must be a finite number >= 0, got -1.0"},
                {new MaLiang.Settings().minSnr(Double.POSITIVE_INFINITY), "min_snr: must be a finite number >= 0, got Infinity"},
                {field("multi_emitter", 2), "multi_emitter: must be 0 or 1, got 2"},
                {field("camera_noise", -1), "camera_noise: must be 0 or 1, got -1"},
                {field("drop_edge", 5), "drop_edge: must be 0 or 1, got 5"},
                {field("noise_clip", 2), "noise_clip: must be 0 or 1, got 2"},
                {field("estimate_psf_sigma", 9), "estimate_psf_sigma: must be 0 or 1, got 9"},
                {field("residual_search", 3), "residual_search: must be 0 or 1, got 3"},
        };
        for (Object[] c : cases) {
            MaLiang.Settings s = (MaLiang.Settings) c[0];
            try {
                s.validate();
                fail("validate accepted: " + c[1]);
            } catch (IllegalArgumentException e) {
                assertEquals(c[1], e.getMessage());
            }
            try {
                new MaLiang.Localizer(s).close();
                fail("Localizer accepted: " + c[1]);
            } catch (IllegalArgumentException e) {
                assertEquals(c[1], e.getMessage());
            }
        }
    }

    static MaLiang.Settings field(String name, int v) {
        MaLiang.Settings s = new MaLiang.Settings();
        try { MaLiang.Settings.class.getField(name).setInt(s, v); }
        catch (ReflectiveOperationException e) { throw new AssertionError(e); }
        return s;
    }

    /** `maliang localize dense.tif -o CSV ARGS`: the CSV and the console output (the summary line). */
    static Map<String, double[]> cli(List<String> args, String csv, StringBuilder console) throws Exception {
        new File(csv).delete();
        List<String> cmd = new ArrayList<String>(Arrays.asList(Env.ROOT + "/build/maliang", "localize", Env.data("dense.tif"), "-o", csv));
        cmd.addAll(args);
        Proc.Result r = Proc.run(cmd, 180);
        assertEquals(cmd + "\n" + r.out, 0, r.rc);
        if (console != null) console.append(r.out);
        return Truth.readCsv(csv);
    }

    static void assertSame(String what, Map<String, double[]> cli, Localization[] locs) {
        assertEquals(what + ": rows", cli.get("x [nm]").length, locs.length);
        assertTrue(what + ": found molecules", locs.length > 300);
        for (int i = 0; i < locs.length; i++) {
            assertEquals(what + " frame", cli.get("frame")[i], locs[i].frame + 1, 0);
            assertEquals(what + " x", cli.get("x [nm]")[i] / 100, locs[i].x, 1e-4);
            assertEquals(what + " y", cli.get("y [nm]")[i] / 100, locs[i].y, 1e-4);
            assertEquals(what + " fitted_together", cli.get("fitted_together")[i], locs[i].fittedTogether, 0);
        }
    }

    static void assertSame(String what, Map<String, double[]> a, Map<String, double[]> b) {
        assertEquals(what + ": rows", a.get("x [nm]").length, b.get("x [nm]").length);
        assertTrue(what + ": found molecules", a.get("x [nm]").length > 300);
        for (String k : new String[] {"frame", "x [nm]", "y [nm]", "intensity [photon]", "fitted_together"})
            for (int i = 0; i < a.get(k).length; i++)
                assertEquals(what + " " + k + " of " + i, a.get(k)[i], b.get(k)[i], Math.abs(a.get(k)[i]) * 1e-5 + 1e-3);
    }

    /** The binding with each setter gives the CLI's results for its toCli(); each setting changes them here. */
    @Test public void bindingEqualsCliThroughToCli() throws Exception {
        MaLiang.Settings[] cases = {
                new MaLiang.Settings().offset(100),
                new MaLiang.Settings().offset(100).singleEmitter(true),
                new MaLiang.Settings().offset(100).maxEmitters(2),
                new MaLiang.Settings().offset(100).multiPValue(1e-3),
                new MaLiang.Settings().offset(100).spreadThreshold(true),
                new MaLiang.Settings().offset(100).spreadThreshold(true).noNoiseClip(true),
                new MaLiang.Settings().offset(100).dropEdge(true),
                new MaLiang.Settings().offset(100).minSnr(0),
                // the residual passes change this stack's result only with small groups: 810 -> 814 localizations
                new MaLiang.Settings().offset(100).maxEmitters(2).minSnr(0),
                new MaLiang.Settings().offset(100).maxEmitters(2).minSnr(0).residualSearch(true),
        };
        List<String> seen = new ArrayList<String>();
        for (MaLiang.Settings s : cases) {
            Localization[] locs;
            MaLiang.Summary sum;
            try (MaLiang.Localizer l = new MaLiang.Localizer(s)) {
                l.pushFrames(frames, w, h);
                locs = l.results();
                sum = l.summary();
            }
            StringBuilder console = new StringBuilder();
            String args = s.toCli();
            assertSame(args, cli(Arrays.asList(args.split(" ")), out("crowded_tocli.csv"), console), locs);
            // the summary: the CLI's counts, and its "groups of" text (none with the single-emitter pipeline)
            assertTrue(console.toString(), console.toString().contains(sum.localizations + " localizations (" + sum.candidates
                    + " candidates; dropped: " + sum.droppedEdge + " at the frame edge"));
            if (s.multi_emitter != 0) {
                assertTrue(sum.groupsText(), sum.groupsText().startsWith(", groups of 1/2"));
                assertTrue(sum.groupsText() + " in\n" + console, console.toString().contains(sum.groupsText() + ","));
                long n = 0;
                for (int k = 2; k <= MaLiang.MAX_GROUP_SIZE; k++) {
                    int members = 0;
                    for (Localization l : locs) if (l.fittedTogether == k) members++;
                    // after residual passes a refitted emitter keeps its group's size, so a group may be written with
                    // fewer members: the passes count ceil(members / k) (ResidualPasses.Run)
                    assertEquals("groups of " + k, s.residual_search != 0 ? (members + k - 1) / k : members / k, sum.groupsBySize[k]);
                    n += sum.groupsBySize[k];
                }
                assertTrue("joint fits on the dense stack", n > 10);
            } else {
                assertEquals("", sum.groupsText());
                assertArrayEquals(new long[MaLiang.MAX_GROUP_SIZE + 1], sum.groupsBySize);
            }
            // each setting changes the result on this stack, so a setting lost on the way would fail the comparison
            StringBuilder sig = new StringBuilder().append(locs.length).append('/').append(sum.candidates).append('/')
                    .append(sum.droppedEdge).append(sum.groupsText());
            for (Localization l : locs) sig.append(',').append(l.x);
            assertFalse(args + " gave the same results as an earlier case", seen.contains(sig.toString()));
            seen.add(sig.toString());
        }
    }

    static final Pattern CLI_LINE = Pattern.compile("MaLiang: the same from the command line: maliang localize STACK\\.tif (.*)");

    /** Runs crowded.ijm with the keys; returns the Log's CLI arguments after checking the CLI gives the macro's CSV. */
    static String macro(String name, String keys) throws Exception {
        String csv = out("crowded_" + name + ".csv");
        new File(csv).delete();
        Proc.Result r = Proc.imagejBatch(Env.ROOT + "/tests/imagej/macros/crowded.ijm", Env.data("dense.tif") + "|" + csv + "|" + keys);
        assertEquals(r.out, 0, r.rc);
        ImageJBatchTest.assertNoStackTrace(r.out);
        assertFalse(r.out, r.out.contains("MaLiang error"));
        Matcher m = CLI_LINE.matcher(r.out);
        assertTrue(r.out, m.find());
        String args = m.group(1).trim();
        Map<String, double[]> ij = Truth.readCsv(csv);
        assertTrue(r.out, r.out.contains("localized: " + ij.get("x [nm]").length));
        StringBuilder console = new StringBuilder();
        assertSame(name + " (" + keys + ")", cli(Arrays.asList(args.split(" ")), out("crowded_" + name + "_cli.csv"), console), ij);
        // the Log's summary line carries the CLI's groups of emitters fitted together (none with single_emitter)
        Matcher g = Pattern.compile(", groups of [0-9/]+ emitters: [0-9/]+").matcher(console);
        if (g.find()) assertTrue(r.out, r.out.contains(g.group()));
        else assertFalse(r.out, r.out.contains("groups of"));
        return args;
    }

    /** The Localize macro keys reach the engine: the Log's CLI line is made from ml_get_settings, and the CLI run with it
     * (and with the plain flags) gives the macro's localizations. */
    @Test public void macroKeysReachTheEngine() throws Exception {
        String plain = macro("default", "");
        assertFalse(plain, plain.contains("--single-emitter"));
        assertTrue(plain, plain.contains(" --max-emitters 8 --multi-p-value 1.0E-6 --min-snr 5.0"));
        assertTrue(plain, plain.contains("--psf-sigma 1.3"));

        String single = macro("single", "single_emitter");
        assertTrue(single, single.contains(" --single-emitter"));
        // the same as `maliang localize --single-emitter` with the dialog's psf_sigma (the CLI estimates it when absent)
        assertSame("single_emitter vs --single-emitter",
                cli(Arrays.asList("--offset", "100", "--psf-sigma", "1.3", "--single-emitter"), out("crowded_single_flag.csv"), null),
                Truth.readCsv(out("crowded_single.csv")));
        assertNotEquals(Truth.readCsv(out("crowded_default.csv")).get("x [nm]").length, Truth.readCsv(out("crowded_single.csv")).get("x [nm]").length);

        String all = macro("all", "max_emitters=2 multi_p_value=0.001 spread_threshold no_noise_clip drop_edge min_snr=0");
        assertTrue(all, all.endsWith(" --max-emitters 2 --multi-p-value 0.001 --spread-threshold --drop-edge --min-snr 0.0 --no-noise-clip"));
        assertSame("the keys vs the CLI flags",
                cli(Arrays.asList("--offset", "100", "--psf-sigma", "1.3", "--max-emitters", "2", "--multi-p-value", "0.001", "--spread-threshold",
                        "--no-noise-clip", "--drop-edge", "--min-snr", "0"), out("crowded_all_flags.csv"), null),
                Truth.readCsv(out("crowded_all.csv")));

        String estimate = macro("estimate", "estimate_psf_sigma");
        assertFalse("estimate_psf_sigma reached the engine: the CLI line leaves --psf-sigma out: " + estimate, estimate.contains("--psf-sigma"));

        // the residual passes change this stack's result only with small groups (810 -> 814 localizations)
        String residual = macro("residual", "max_emitters=2 min_snr=0 residual_search");
        assertTrue("residual_search reached the engine: " + residual, residual.endsWith(" --min-snr 0.0 --residual-search"));
        assertFalse(plain, plain.contains("--residual-search"));
        List<String> small = Arrays.asList("--offset", "100", "--psf-sigma", "1.3", "--max-emitters", "2", "--min-snr", "0");
        List<String> withFlag = new ArrayList<String>(small);
        withFlag.add("--residual-search");
        assertSame("residual_search vs --residual-search", cli(withFlag, out("crowded_residual_flag.csv"), null),
                Truth.readCsv(out("crowded_residual.csv")));
        assertNotEquals(cli(small, out("crowded_residual_off.csv"), null).get("x [nm]").length,
                Truth.readCsv(out("crowded_residual.csv")).get("x [nm]").length);
    }

    @Test public void badMacroKeysAbortNamingTheParameter() throws Exception {
        String[][] cases = {
                {"max_emitters=13", "max_emitters: must be 1 to 12, got 13"},
                {"max_emitters=2.5", "max_emitters: must be a whole number, got 2.5"},
                {"multi_p_value=abc", "multi_p_value: 'abc' is not a number"},
                {"multi_p_value=1", "multi_p_value: must be a p-value in (0, 1), got 1.0"},
                {"min_snr=-2", "min_snr: must be a finite number >= 0, got -2.0"},
        };
        for (String[] c : cases) {
            Proc.Result r = Proc.imagejBatch(Env.ROOT + "/tests/imagej/macros/error_crowded.ijm", c[0]);
            assertNotEquals(c[0] + " hung:\n" + r.out, 124, r.rc);
            assertTrue(c[0] + ":\n" + r.out, r.out.contains("MaLiang error: " + c[1]));
            assertFalse(c[0] + " went on after the error:\n" + r.out, r.out.contains("NOT REACHED"));
            ImageJBatchTest.assertNoStackTrace(r.out);
        }
    }
}
