package org.maliang.test;

import static org.junit.Assert.*;

import java.io.File;
import java.util.Arrays;
import java.util.List;

import org.junit.Test;

/** Starts the ImageJ GUI on its own Xvfb display with the plugin and runs GuiCheck there. */
public class GuiTest {
    @Test public void menuLocalizeRenderWindowAndScreenshot() throws Exception {
        String png = Env.OUT + "/screenshot.png";
        new File(png).delete();
        List<String> c = Proc.javaCmd(true, "-s", "-screen 0 1400x1000x24");
        c.addAll(Arrays.asList("-Dplugins.dir=" + Proc.ijHome(), "-cp",
                Env.IJ_JAR + ":" + Env.JNA_JAR + ":" + System.getProperty("java.class.path"),
                "org.maliang.test.GuiCheck", Env.data("stack.tif"), png));
        Proc.Result r = Proc.run(c, 180);
        System.out.print(r.out.replaceAll("(?m)^(?!GUI-CHECK).*\\n", ""));
        assertEquals(r.out, 0, r.rc);
        assertTrue(r.out, r.out.contains("GUI-CHECK PASSED"));
        assertTrue(new File(png).length() > 10000);
    }

    /** Localize's progress in the status bar, and Esc on the keyboard stopping it within a second (GuiProgressCheck). */
    @Test public void statusBarProgressAndEscCancel() throws Exception {
        List<String> c = Proc.javaCmd(true, "-s", "-screen 0 1400x1000x24");
        c.addAll(Arrays.asList("-Dplugins.dir=" + Proc.ijHome(), "-cp",
                Env.IJ_JAR + ":" + Env.JNA_JAR + ":" + System.getProperty("java.class.path"),
                "org.maliang.test.GuiProgressCheck", Env.data("stack.tif")));
        Proc.Result r = Proc.run(c, 180);
        System.out.print(r.out.replaceAll("(?m)^(?!GUI-PROGRESS).*\\n", ""));
        assertEquals(r.out, 0, r.rc);
        assertTrue(r.out, r.out.contains("GUI-PROGRESS PASSED"));
    }
}
