package org.maliang;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Where each platform's engine sits in MaLiang_.jar and how a multi-file engine is unpacked (build.sh writes the lists).
 *
 * <p>Each platform is a folder named by JNA's resource prefix ({@code linux-x86-64}, {@code linux-aarch64},
 * {@code win32-x86-64}, {@code darwin-aarch64}, {@code darwin-x86-64}). Linux's NativeAOT engine is one file, which JNA
 * extracts and loads itself. Windows and macOS have the hosted engine: the shim library and {@code maliang-engine/}
 * beside it, which must stay together, so the folder (listed in {@code PREFIX/maliang-files.txt}) is unpacked to a
 * cache folder named after the list's hash and the shim is loaded from there by path; a complete earlier copy is
 * reused (on Windows a loaded DLL cannot be overwritten).</p>
 */
final class EngineFiles {
    private EngineFiles() { }

    private static final Charset UTF8 = Charset.forName("UTF-8");
    static final String PLATFORMS = "maliang-platforms.txt";
    static final String FILES = "maliang-files.txt";
    static final String HOSTED_DIR = "maliang-engine";

    /**
     * This machine's platform folder: JNA's resource prefix, except that JNA before 5.7 says "darwin" for every Mac;
     * the jar has one folder per Mac architecture.
     */
    static String prefix() {
        String p = com.sun.jna.Platform.RESOURCE_PREFIX;
        if (p.equals("darwin")) {
            String arch = System.getProperty("os.arch", "");
            p = arch.equals("aarch64") || arch.equals("arm64") ? "darwin-aarch64" : "darwin-x86-64";
        }
        return p;
    }

    /** The library's file name on the platform of a JNA resource prefix (what JNA maps "maliang" to there). */
    static String libraryFileName(String prefix) {
        if (prefix.startsWith("win32-")) return "maliang.dll";
        if (prefix.startsWith("darwin")) return "libmaliang.dylib";
        return "libmaliang.so";
    }

    /** The platforms the jar carries (its maliang-platforms.txt), empty when it lists none. */
    static List<String> platforms(ClassLoader loader) {
        List<String> lines = readLines(loader, PLATFORMS);
        return lines == null ? new ArrayList<String>() : lines;
    }

    /** " MaLiang_.jar has the engine for A, B, none for this machine (P)." when the jar lacks P, else "". */
    static String noneFits(List<String> has, String prefix) {
        if (has.isEmpty() || has.contains(prefix)) return "";
        StringBuilder b = new StringBuilder(" MaLiang_.jar has the engine for ");
        for (int i = 0; i < has.size(); i++) b.append(i > 0 ? ", " : "").append(has.get(i));
        return b.append(", none for this machine (").append(prefix).append(").").toString();
    }

    /** "size path" lines of the hosted engine for prefix, or null when the platform's engine is a single file. */
    static List<String> hostedFiles(ClassLoader loader, String prefix) {
        return readLines(loader, prefix + "/" + FILES);
    }

    /**
     * Unpacks the hosted engine for prefix under cacheRoot (once; a complete copy is reused) and returns the shim
     * library's file, or null when the jar has no hosted engine for prefix.
     */
    static File unpackHosted(ClassLoader loader, String prefix, File cacheRoot) throws IOException {
        List<String> files = hostedFiles(loader, prefix);
        if (files == null) return null;
        long hash = 1125899906842597L;
        for (String f : files) for (int i = 0; i < f.length(); i++) hash = 31 * hash + f.charAt(i);
        File dir = new File(cacheRoot, "maliang-" + prefix + "-" + Long.toHexString(hash));
        File lib = new File(dir, libraryFileName(prefix));
        if (complete(dir, files)) return lib;
        File tmp = new File(cacheRoot, dir.getName() + ".tmp" + System.nanoTime());
        for (String line : files) {
            int sp = line.indexOf(' ');
            String rel = line.substring(sp + 1);
            File target = new File(tmp, rel.replace('/', File.separatorChar));
            target.getParentFile().mkdirs();
            InputStream in = loader.getResourceAsStream(prefix + "/" + rel);
            if (in == null) throw new IOException("MaLiang_.jar lists " + prefix + "/" + rel + " but does not hold it");
            OutputStream out = new FileOutputStream(target);
            try {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) > 0; ) out.write(buf, 0, n);
            } finally {
                out.close();
                in.close();
            }
            if (!prefix.startsWith("win32-")) target.setExecutable(true, false);
        }
        // another JVM may have finished the same copy meanwhile: then ours is dropped and theirs used
        if (!tmp.renameTo(dir) && !complete(dir, files)) throw new IOException("cannot create " + dir);
        deleteTree(tmp);
        return lib;
    }

    private static boolean complete(File dir, List<String> files) {
        for (String line : files) {
            int sp = line.indexOf(' ');
            File f = new File(dir, line.substring(sp + 1).replace('/', File.separatorChar));
            if (!f.isFile() || f.length() != Long.parseLong(line.substring(0, sp))) return false;
        }
        return true;
    }

    private static void deleteTree(File f) {
        File[] children = f.listFiles();
        if (children != null) for (File c : children) deleteTree(c);
        f.delete();
    }

    /** One line naming the engine that a library file is: hosted (.NET through hostfxr) or NativeAOT. */
    static String describe(String version, String prefix, File library) {
        boolean hosted = library != null && new File(library.getParentFile(), HOSTED_DIR).isDirectory();
        return String.format(Locale.ROOT, "MaLiang %s, %s engine for %s: %s", version,
                hosted ? ".NET (hostfxr)" : "NativeAOT", prefix, library == null ? "?" : library.getPath());
    }

    private static List<String> readLines(ClassLoader loader, String name) {
        InputStream in = loader.getResourceAsStream(name);
        if (in == null) return null;
        List<String> lines = new ArrayList<String>();
        try {
            BufferedReader r = new BufferedReader(new InputStreamReader(in, UTF8));
            for (String l; (l = r.readLine()) != null; ) if (!l.trim().isEmpty()) lines.add(l.trim());
            r.close();
        } catch (IOException e) {
            return null;
        }
        return lines;
    }
}
