package org.maliang.test;

import static org.junit.Assert.*;

import bsh.Interpreter;

import java.io.File;
import java.util.Map;

import org.junit.Test;

/**
 * examples/micromanager/live_localize.bsh, run by Debian's Beanshell (the interpreter of Micro-Manager's Script Panel)
 * against FakeCore, a stand-in for CMMCore that "acquires" the frames of a simulated stack on a camera thread. Tests
 * the script's acquisition loop (start, pop while running or images remain, sleep when empty, stop), LiveLocalizer fed
 * from it, the live preview and the CSV export: the CSV must match the simulator's ground truth.
 */
public class BeanshellTest {
    static final String SCRIPT = Env.ROOT + "/examples/micromanager/live_localize.bsh";

    /** A Beanshell interpreter set up as the script panel would be: the core, 60 frames, export path, preview. */
    static Interpreter script(FakeCore core, String exportPath, boolean showPreview) throws Exception {
        Interpreter bsh = new Interpreter();
        bsh.set("mmc", core);
        bsh.set("nFrames", 60);
        bsh.set("exportPath", exportPath);
        bsh.set("showPreview", showPreview);
        return bsh;
    }

    @Test public void liveLocalizeScriptWithStandInCore() throws Exception {
        FakeCore core = new FakeCore(Env.data("sparse.tif"), 1000);
        core.exposureMs = 3;
        String csv = Env.OUT + "/bsh_live.csv";
        new File(csv).delete();
        boolean display = !java.awt.GraphicsEnvironment.isHeadless() && System.getenv("DISPLAY") != null;
        Interpreter bsh = script(core, csv, display);
        bsh.source(SCRIPT);

        assertTrue("stopSequenceAcquisition was called", core.stopCalled);
        assertEquals(60, core.produced.get());
        assertEquals("every acquired frame was popped", 60, core.popped.get());
        assertFalse(core.overflow(), core.isBufferOverflowed());
        assertEquals(0, core.getRemainingImageCount());
        assertEquals(60L, ((Number) bsh.get("popped")).longValue());
        assertTrue(core.log.toString(), core.log.toString().contains("MaLiang: 50 frames acquired"));
        if (display) {
            ij.ImagePlus prev = (ij.ImagePlus) bsh.get("previewImp");
            assertNotNull("preview window", prev);
            assertEquals(640, prev.getWidth());
            assertEquals(20.0, prev.getCalibration().pixelWidth, 1e-9);
            prev.close();
        }
        Map<String, double[]> truth = Truth.readCsv(Env.data("sparse_truth.csv"));
        Truth.Match m = Truth.match(truth, Truth.readCsv(csv), 100);
        System.out.println("  live_localize.bsh vs ground truth: " + m);
        assertTrue(m.toString(), m.recall() >= 0.98);
    }

    /** A consumer too slow for a small circular buffer: the camera stops on overflow, and the script says so. */
    @Test public void overflowIsReported() throws Exception {
        FakeCore core = new FakeCore(Env.data("sparse.tif"), 2);
        core.exposureMs = 1;
        core.popDelayMs = 25;
        Interpreter bsh = script(core, "", false);
        bsh.source(SCRIPT);
        assertTrue(core.isBufferOverflowed());
        int popped = ((Number) bsh.get("popped")).intValue();
        assertTrue("popped " + popped, popped < 60);
        assertEquals(Boolean.TRUE, bsh.get("overflowed"));
        assertTrue(core.log.toString(), core.log.toString().contains("only " + popped + " of 60 frames were acquired: the circular buffer overflowed"));
        assertTrue("live closed", ((org.maliang.LiveLocalizer) bsh.get("live")).isClosed());
        assertEquals(popped, ((org.maliang.LiveLocalizer) bsh.get("live")).framesDone());
    }

    /** An error in the acquisition loop (here the camera) still closes the live localizer (finally). */
    @Test public void errorStillClosesTheLocalizer() throws Exception {
        FakeCore core = new FakeCore(Env.data("sparse.tif"), 1000);
        core.exposureMs = 1;
        core.failPopAt = 5;
        Interpreter bsh = script(core, "", false);
        try {
            bsh.source(SCRIPT);
            fail("the camera error did not stop the script");
        } catch (bsh.EvalError e) {
            assertTrue(e.toString(), e.toString().contains("camera error at image 5"));
        }
        assertTrue("stopSequenceAcquisition was called", core.stopCalled);
        org.maliang.LiveLocalizer live = (org.maliang.LiveLocalizer) bsh.get("live");
        assertNotNull(live);
        assertTrue("live closed after the error", live.isClosed());
        assertEquals(4, live.framesDone());
    }
}
