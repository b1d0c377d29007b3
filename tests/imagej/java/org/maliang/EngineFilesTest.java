package org.maliang;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.Arrays;
import java.util.List;

import org.junit.Test;
import org.maliang.test.Env;
import org.maliang.test.Proc;

/**
 * make dist's MaLiang_.jar (build/dist): each platform's engine where the loader looks for it, the hosted engines
 * unpacked whole with their hostfxr, the message when no platform fits, and the loader run here on the NativeAOT
 * engine and on the hosted (hostfxr) route, each saying in one line which engine it loaded.
 */
public class EngineFilesTest {
    static final String DIST = Env.ROOT + "/build/dist";
    static final File DIST_JAR = new File(DIST, "MaLiang_.jar");
    static final List<String> PLATFORMS =
            Arrays.asList("linux-x86-64", "linux-aarch64", "win32-x86-64", "darwin-aarch64", "darwin-x86-64");

    static ClassLoader distJar() throws Exception {
        assertTrue(DIST_JAR + " is missing: run make dist", DIST_JAR.isFile());
        return new URLClassLoader(new URL[] { DIST_JAR.toURI().toURL() }, null);
    }

    @Test
    public void everyPlatformsLibraryIsWhereTheLoaderLooks() throws Exception {
        ClassLoader jar = distJar();
        assertEquals(PLATFORMS, EngineFiles.platforms(jar));
        String[] names = { "libmaliang.so", "libmaliang.so", "maliang.dll", "libmaliang.dylib", "libmaliang.dylib" };
        for (int i = 0; i < names.length; i++) {
            String prefix = PLATFORMS.get(i);
            assertEquals(names[i], EngineFiles.libraryFileName(prefix));
            File built = new File(DIST + "/engines/" + prefix + "/" + names[i]);
            URL res = jar.getResource(prefix + "/" + names[i]);
            assertTrue(prefix, res != null && built.isFile());
        }
        // Linux's engine is one file that JNA extracts itself: no list, nothing to unpack
        assertNull(EngineFiles.hostedFiles(jar, "linux-x86-64"));
        assertNull(EngineFiles.unpackHosted(jar, "linux-aarch64", new File(Env.OUT)));
    }

    @Test
    public void hostedEnginesAreUnpackedWholeAndOnce() throws Exception {
        ClassLoader jar = distJar();
        File cache = new File(Env.OUT, "engine-cache");
        Proc.run(Arrays.asList("rm", "-rf", cache.getPath()), 30);
        String[][] hosted = { { "win32-x86-64", "maliang.dll", "hostfxr.dll", "coreclr.dll" },
                { "darwin-aarch64", "libmaliang.dylib", "libhostfxr.dylib", "libcoreclr.dylib" },
                { "darwin-x86-64", "libmaliang.dylib", "libhostfxr.dylib", "libcoreclr.dylib" } };
        for (String[] h : hosted) {
            File lib = EngineFiles.unpackHosted(jar, h[0], cache);
            assertEquals(h[1], lib.getName());
            File built = new File(DIST + "/engines/" + h[0]);
            List<String> files = EngineFiles.hostedFiles(jar, h[0]);
            assertEquals(countFiles(built), files.size());
            for (String line : files) {
                String rel = line.substring(line.indexOf(' ') + 1);
                assertEquals(rel, new File(built, rel).length(), new File(lib.getParentFile(), rel).length());
            }
            for (String f : new String[] { h[2], h[3], "libmaliang.dll", "System.Private.CoreLib.dll" })
                assertTrue(h[0] + " " + f, new File(lib.getParentFile(), "maliang-engine/" + f).isFile());
            long stamp = lib.lastModified();
            Thread.sleep(1100);
            assertEquals(lib, EngineFiles.unpackHosted(jar, h[0], cache)); // the complete copy is reused
            assertEquals(stamp, lib.lastModified());
        }
    }

    @Test
    public void aMachineWithoutAnEngineIsToldWhichPlatformsTheJarHas() {
        assertEquals(" MaLiang_.jar has the engine for linux-x86-64, linux-aarch64, win32-x86-64, darwin-aarch64,"
                + " darwin-x86-64, none for this machine (win32-aarch64).", EngineFiles.noneFits(PLATFORMS, "win32-aarch64"));
        assertEquals("", EngineFiles.noneFits(PLATFORMS, "darwin-aarch64"));
    }

    @Test
    public void theDistJarLoadsTheNativeAotEngineHere() throws Exception {
        String out = engineLine(null);
        assertTrue(out, out.startsWith("MaLiang 0.1.0, NativeAOT engine for linux-x86-64: "));
        assertTrue(out, out.contains("\n31 localizations"));
    }

    @Test
    public void theHostedRouteRunsHereThroughJna() throws Exception {
        String shim = DIST + "/engines/linux-x86-64-hosted/libmaliang.so";
        String out = engineLine(shim);
        assertTrue(out, out.startsWith("MaLiang 0.1.0, .NET (hostfxr) engine for linux-x86-64: " + shim));
        assertTrue(out, out.contains("\n31 localizations")); // as the NativeAOT engine finds in the same file
    }

    /** A child JVM with the dist jar (and -Dmaliang.library when given) that prints MaLiang.engine() and localizes. */
    static String engineLine(String library) throws Exception {
        List<String> cmd = new java.util.ArrayList<String>();
        cmd.add(new File(System.getProperty("java.home"), "bin/java").getPath());
        if (library != null) cmd.add("-Dmaliang.library=" + library);
        cmd.addAll(Arrays.asList("-cp", DIST_JAR + ":" + Env.JNA_JAR + ":" + System.getProperty("java.class.path"),
                "org.maliang.EngineFilesTest", Env.ROOT + "/tests/data/picasso_testdata.tif"));
        Proc.Result r = Proc.run(cmd, 120);
        assertEquals(r.out, 0, r.rc);
        return r.out.trim();
    }

    public static void main(String[] args) {
        System.out.println(MaLiang.engine());
        MaLiang.Localizer loc = new MaLiang.Localizer(new MaLiang.Settings().offset(100));
        try {
            loc.pushFile(args[0]);
            System.out.println(loc.results().length + " localizations");
        } finally {
            loc.close();
        }
    }

    static int countFiles(File dir) {
        int n = 0;
        for (File f : dir.listFiles()) n += f.isDirectory() ? countFiles(f) : 1;
        return n;
    }
}
