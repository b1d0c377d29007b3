package org.maliang.test;

import static org.junit.Assert.*;

import java.io.File;
import java.util.Map;

import org.junit.BeforeClass;
import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;
import org.maliang.MaLiangException;

/** 3D through the Java binding: calibrateZ on a simulated bead stack, a Localizer with the calibration against the truth. */
public class ThreeDBindingTest {
    static String cal, beads, stack, truth;

    @BeforeClass public static void data() {
        assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable());
        cal = Env.data("3d_cal.yaml"); beads = Env.data("3d_beads.tif"); stack = Env.data("3d.tif"); truth = Env.data("3d_truth.csv");
        for (String f : new String[] {cal, beads, stack, truth}) assertTrue(f + " (written by tests/imagej/run.sh)", new File(f).isFile());
    }

    @Test public void calibrateZRecoversTheFocalPlanes() {
        String out = Env.OUT + "/3d_fit.yaml", png = Env.OUT + "/3d_fit.png";
        new File(out).delete(); new File(png).delete();
        MaLiang.ZCalibration c = MaLiang.calibrateZ(beads, new MaLiang.Settings().offset(100), 10, -600, 1, out, png);
        assertEquals(4, c.beads);
        assertEquals(-200, c.cNm[0], 5);
        assertEquals(210, c.cNm[1], 5);
        assertTrue(new File(out).isFile() && new File(png).isFile());
        MaLiang.ZCalibration back = MaLiang.readZCalibration(out, 100);
        assertEquals(c.cNm[1], back.cNm[1], 0);
        assertEquals(c.sigmaPx(0, 300), back.sigmaPx(0, 300), 0);
    }

    @Test public void localizerWithCalibrationGivesZ() throws Exception {
        Localization[] locs;
        try (MaLiang.Localizer loc = new MaLiang.Localizer(new MaLiang.Settings().offset(100), cal)) {
            loc.pushFile(stack);
            locs = loc.results();
        }
        Map<String, double[]> t = Truth.readCsv(truth);
        double[] tf = t.get("frame"), tx = t.get("x [nm]"), ty = t.get("y [nm]"), tz = t.get("z [nm]");
        int matched = 0; double se = 0, crlb = 0;
        for (Localization l : locs) {
            assertTrue(l.is3d());
            for (int i = 0; i < tf.length; i++) {
                double dx = tx[i] / 100 - l.x, dy = ty[i] / 100 - l.y;
                if ((int) tf[i] - 1 == l.frame && dx * dx + dy * dy < 1) {
                    matched++; se += (l.z - tz[i]) * (l.z - tz[i]); crlb += l.uncertaintyZ * l.uncertaintyZ;
                }
            }
        }
        assertTrue("matched " + matched + " of " + tf.length, matched >= 0.98 * tf.length);
        assertTrue("z RMSE / sqrt(CRLB) " + Math.sqrt(se / crlb), Math.sqrt(se / crlb) <= 1.15);
    }

    /** Fiji: Calibrate 3D on the open bead stack, then Localize with its calibration field (the recorded macro keys). */
    @Test public void calibrate3dAndLocalizeInImageJ() throws Exception {
        String yaml = Env.OUT + "/3d_ij.yaml", csv = Env.OUT + "/3d_ij.csv";
        new File(yaml).delete(); new File(csv).delete();
        Proc.Result r = Proc.imagejBatch(Env.ROOT + "/tests/imagej/macros/calibrate3d.ijm", beads + "|" + yaml + "|" + stack + "|" + csv);
        assertEquals(r.out, 0, r.rc);
        ImageJBatchTest.assertNoStackTrace(r.out);
        assertTrue(r.out, r.out.contains("images after calibrate: 2")); // the bead stack and the plot window
        MaLiang.ZCalibration c = MaLiang.readZCalibration(yaml, 100);
        assertEquals(-200, c.cNm[0], 5);
        assertEquals(210, c.cNm[1], 5);
        Map<String, double[]> locs = Truth.readCsv(csv);
        assertTrue("z column in " + csv, locs.containsKey("z [nm]"));
        int n = locs.get("z [nm]").length;
        assertTrue(r.out, r.out.contains("localizations: " + n) && r.out.contains("z column: " + n));
        Map<String, double[]> t = Truth.readCsv(truth);
        assertTrue("found " + n + " of " + t.get("frame").length, n >= 0.95 * t.get("frame").length);
    }

    @Test public void badCalibrationIsRefusedBeforeTheLibrary() throws Exception {
        try {
            new MaLiang.Localizer(new MaLiang.Settings(), Env.OUT + "/no-such.yaml");
            fail("accepted a missing file");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("no-such.yaml"));
        }
        try {
            new MaLiang.Localizer(new MaLiang.Settings().pixelSize(160), cal);
            fail("accepted another pixel size");
        } catch (MaLiangException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("pixel_size_nm"));
        }
        try {
            MaLiang.calibrateZ(beads, new MaLiang.Settings(), 0, Double.NaN, 1, null, null);
            fail("accepted a zero step");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("z_step_nm"));
        }
    }
}
