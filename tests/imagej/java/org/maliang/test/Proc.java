package org.maliang.test;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs ImageJ (or any java main) in a child JVM, under Xvfb when there is no display. */
public final class Proc {
    private Proc() { }
    public static final class Result { public int rc; public String out; }

    public static String ijHome() { return System.getProperty("maliang.ijhome", Env.OUT + "/ijhome"); }

    public static Result run(List<String> cmd, int timeoutS) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        final Process p = pb.start();
        final ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Thread pump = new Thread(new Runnable() { public void run() {
            try { InputStream in = p.getInputStream(); byte[] b = new byte[8192]; for (int n; (n = in.read(b)) > 0; ) buf.write(b, 0, n); }
            catch (Exception e) { /* closed */ }
        } });
        pump.start();
        Result r = new Result();
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) { p.destroyForcibly(); pump.join(); r.rc = 124; r.out = buf.toString("UTF-8") + "\n[timed out after " + timeoutS + " s]"; return r; }
        pump.join();
        r.rc = p.exitValue();
        r.out = buf.toString("UTF-8");
        return r;
    }

    static List<String> javaCmd(boolean ownDisplay, String... screen) {
        List<String> c = new ArrayList<String>();
        if (ownDisplay || System.getenv("DISPLAY") == null) { c.add("xvfb-run"); c.add("-a"); c.addAll(Arrays.asList(screen)); }
        c.add(new File(System.getProperty("java.home"), "bin/java").getPath());
        return c;
    }

    /** ImageJ -batch MACRO ARG with MaLiang_.jar on the plugins path. */
    public static Result imagejBatch(String macro, String arg) throws Exception {
        List<String> c = javaCmd(false);
        c.addAll(Arrays.asList("-Dplugins.dir=" + ijHome(), "-cp", Env.IJ_JAR + ":" + Env.JNA_JAR, "ij.ImageJ", "-batch", macro));
        if (arg != null) c.add(arg);
        return run(c, 180);
    }
}
