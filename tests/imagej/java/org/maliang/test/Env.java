package org.maliang.test;

import java.io.File;

/** Paths run.sh hands to the tests (system properties). */
public final class Env {
    private Env() { }
    public static final String ROOT = System.getProperty("maliang.root", new File(".").getAbsolutePath());
    public static final String DATA = System.getProperty("maliang.data", ROOT + "/out/imagej/data");
    public static final String OUT = System.getProperty("maliang.out", ROOT + "/out/imagej");
    public static final String JAR = System.getProperty("maliang.jar", ROOT + "/build/imagej/MaLiang_.jar");
    public static final String IJ_JAR = System.getProperty("maliang.ijjar", "/usr/share/java/ij.jar");
    public static final String JNA_JAR = System.getProperty("maliang.jnajar", "/usr/share/java/jna.jar");
    public static String data(String name) { return DATA + "/" + name; }
}
