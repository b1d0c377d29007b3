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
    @Test public void liveLocalizeScriptWithStandInCore() throws Exception {
        FakeCore core = new FakeCore(Env.data("sparse.tif"), 1000);
        core.exposureMs = 3;
        String csv = Env.OUT + "/bsh_live.csv";
        new File(csv).delete();
        Interpreter bsh = new Interpreter();
        bsh.set("mmc", core);
        bsh.set("nFrames", 60);
        bsh.set("exportPath", csv);
        boolean display = !java.awt.GraphicsEnvironment.isHeadless() && System.getenv("DISPLAY") != null;
        bsh.set("showPreview", display);
        bsh.source(Env.ROOT + "/examples/micromanager/live_localize.bsh");

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
}
