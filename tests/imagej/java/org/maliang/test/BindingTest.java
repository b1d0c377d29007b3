package org.maliang.test;

import static org.junit.Assert.*;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;

import java.io.File;
import java.io.FileWriter;
import java.util.Arrays;
import java.util.Map;

import org.junit.BeforeClass;
import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;
import org.maliang.MaLiangException;

/** org.maliang.MaLiang against the CLI and its own contract. */
public class BindingTest {
    static ImagePlus stack;
    static Object[] frames;
    static int w, h;

    @BeforeClass public static void load() {
        assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable());
        stack = IJ.openImage(Env.data("stack.tif"));
        assertNotNull(Env.data("stack.tif"), stack);
        ImageStack s = stack.getStack();
        w = s.getWidth(); h = s.getHeight();
        frames = new Object[s.getSize()];
        for (int i = 0; i < frames.length; i++) frames[i] = s.getPixels(i + 1);
    }

    static MaLiang.Settings settings() { return new MaLiang.Settings().offset(100); }

    /** A frame just above the camera offset with nothing in it (an all-zero frame is below the offset: a user error). */
    static short[] blank(int n) { short[] a = new short[n]; java.util.Arrays.fill(a, (short) 110); return a; }

    @Test public void versionAndDefaults() {
        assertEquals("0.1.0", MaLiang.version());
        MaLiang.Settings s = new MaLiang.Settings();
        assertEquals(144, s.size());
        assertEquals(144, s.struct_size);
        assertEquals(7, s.roi_size);
        assertEquals(100.0, s.pixel_size_nm, 0);
        assertEquals(1.3, s.psf_sigma_px, 0);
        assertEquals(20, s.iterations);
        assertEquals(MaLiang.Filter.MALIANG, s.getFilter());
        assertEquals(MaLiang.Backend.AUTO, s.getBackend());
        assertTrue(s.toCli().contains("--offset 0.0"));
    }

    /** The same stack through the binding and through `maliang localize`: same molecules, positions within 1e-4 px. */
    @Test public void sameLocalizationsAsCli() throws Exception {
        Map<String, double[]> cli = Truth.readCsv(Env.data("cli.csv"));
        Localization[] locs;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.pushFrames(frames, w, h);
            locs = l.results();
            assertEquals(frames.length, l.summary().frames);
            assertEquals(locs.length, l.summary().localizations);
        }
        double[] f = cli.get("frame"), x = cli.get("x [nm]"), y = cli.get("y [nm]");
        assertEquals(f.length, locs.length);
        assertTrue(locs.length > 100);
        for (int i = 0; i < locs.length; i++) {
            assertEquals("frame of " + i, (int) f[i], locs[i].frame + 1);
            assertEquals("x of " + i, x[i] / 100, locs[i].x, 1e-4);
            assertEquals("y of " + i, y[i] / 100, locs[i].y, 1e-4);
        }
    }

    /** pushFile on compressed and tiled copies of the stack (tifffile-written, decoded by the engine's reader in
     * libmaliang.so) gives exactly the localizations of the frames pushed from ImageJ. */
    @Test public void pushFileOnCompressedCopiesEqualsPushingTheFrames() {
        Localization[] ref;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.pushFrames(frames, w, h); ref = l.results(); }
        assertTrue(ref.length > 100);
        for (String v : new String[] {"deflate.tif", "lzw.tif", "packbits.tif", "tiled_deflate.tif", "bigtiff_lzw.tif"}) {
            try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
                l.pushFile(Env.data("compressed/" + v));
                assertEquals(v, frames.length, l.framesPushed());
                Localization[] got = l.results();
                assertEquals(v, ref.length, got.length);
                for (int i = 0; i < ref.length; i++) {
                    assertEquals(v + " frame of " + i, ref[i].frame, got[i].frame);
                    assertEquals(v + " x of " + i, ref[i].x, got[i].x, 0);
                    assertEquals(v + " y of " + i, ref[i].y, got[i].y, 0);
                    assertEquals(v + " photons of " + i, ref[i].photons, got[i].photons, 0);
                }
            }
        }
    }

    @Test public void pushFileOnABrokenCompressedFileNamesFileAndFrame() {
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            try {
                l.pushFile(Env.data("compressed/cut_strip.tif"));
                fail("a cut-short Deflate strip was accepted");
            } catch (MaLiangException e) {
                assertTrue(e.getMessage(), e.getMessage().contains("cut_strip.tif: frame 2: strip 1"));
            }
        }
    }

    /** One frame per push (short[]), float[] frames and one chunk give the same results; frames are numbered across pushes. */
    @Test public void framewiseAndFloatPushesAgree() {
        Localization[] chunk, single, fl;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.pushFrames(frames, w, h); chunk = l.results(); }
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            for (Object p : frames) l.push((short[]) p, w, h);
            assertEquals(frames.length, l.framesPushed());
            single = l.results();
        }
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            float[] all = new float[w * h * frames.length];
            for (int i = 0; i < frames.length; i++) {
                short[] p = (short[]) frames[i];
                for (int k = 0; k < p.length; k++) all[i * w * h + k] = p[k] & 0xffff;
            }
            l.push(all, w, h); // several frames in one array
            fl = l.results();
        }
        assertEquals(chunk.length, single.length);
        assertEquals(chunk.length, fl.length);
        for (int i = 0; i < chunk.length; i++) {
            assertEquals(chunk[i].frame, single[i].frame);
            assertEquals(chunk[i].x, single[i].x, 0);
            assertEquals(chunk[i].y, single[i].y, 0);
            assertEquals(chunk[i].frame, fl[i].frame);
            assertEquals(chunk[i].x, fl[i].x, 1e-5);
        }
    }

    /** 8-bit frames go in as uint8 with no conversion. */
    @Test public void bytePixels() {
        byte[] b = new byte[w * h];
        short[] s = new short[w * h];
        short[] src = (short[]) frames[0];
        for (int k = 0; k < b.length; k++) { int v = Math.min(255, (src[k] & 0xffff)); b[k] = (byte) v; s[k] = (short) v; }
        Localization[] lb, ls;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.push(b, w, h); lb = l.results(); }
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.push(s, w, h); ls = l.results(); }
        assertEquals(ls.length, lb.length);
        for (int i = 0; i < ls.length; i++) assertEquals(ls[i].x, lb[i].x, 0);
    }

    /** Frames are copied once into the staging buffer and the engine reads that buffer in place; a Pointer push is not copied at all. */
    @Test public void noSecondCopy() {
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.push((short[]) frames[0], w, h);
            assertNotEquals(0, l.stagingAddress());
            assertEquals(l.stagingAddress(), l.lastPushAddress());
            Memory m = new Memory(2L * w * h);
            m.write(0, (short[]) frames[1], 0, w * h);
            l.push(m, w, h, 1, MaLiang.PixelType.UINT16);
            assertEquals(Pointer.nativeValue(m), l.lastPushAddress());
            assertEquals(2, l.framesPushed());
        }
    }

    @Test public void csvRoundTripAndThunderStormImport() throws Exception {
        Localization[] locs;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.pushFrames(frames, w, h); locs = l.results(); }
        File f = new File(Env.OUT, "binding_roundtrip.csv");
        MaLiang.writeCsv(f.getPath(), locs, 100);
        Localization[] back = MaLiang.readCsv(f.getPath(), 100);
        assertEquals(locs.length, back.length);
        for (int i = 0; i < locs.length; i++) {
            assertEquals(locs[i].frame, back[i].frame);
            assertEquals(locs[i].x, back[i].x, 1e-5);
            assertEquals(locs[i].uncertaintyX, back[i].uncertaintyX, 1e-5);
        }
        // ThunderSTORM's own export: unquoted headers, its column order, extra columns, no MaLiang columns.
        File ts = new File(Env.OUT, "thunderstorm.csv");
        FileWriter fw = new FileWriter(ts);
        fw.write("\"id\",\"frame\",\"x [nm]\",\"y [nm]\",\"sigma [nm]\",\"intensity [photon]\",\"offset [photon]\",\"bkgstd [photon]\",\"chi2\",\"uncertainty_xy [nm]\"\n");
        fw.write("1.0,1.0,150.0,250.0,130.0,1000.0,10.0,3.0,1.5,12.0\n2.0,3.0,1050.0,2050.5,128.0,900.0,11.0,3.2,1.1,14.0\n");
        fw.close();
        Localization[] t = MaLiang.readCsv(ts.getPath(), 100);
        assertEquals(2, t.length);
        assertEquals(2, t[1].frame);
        assertEquals(10.5, t[1].x, 1e-5);
        assertEquals(20.505, t[1].y, 1e-5);
        assertEquals(0.12, t[0].uncertaintyX, 1e-6);
    }

    @Test public void renderSizeAndMass() {
        Localization[] locs;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.pushFrames(frames, w, h); locs = l.results(); }
        MaLiang.Image img = MaLiang.render(locs, w, h, 10, MaLiang.RENDER_HISTOGRAM, 0, 100);
        assertEquals(640, img.width);
        assertEquals(640, img.height);
        assertEquals(10.0, img.pixelSizeNm, 0);
        double sum = 0;
        for (float v : img.pixels) sum += v;
        assertEquals(locs.length, sum, 0.5);
        MaLiang.Image g = MaLiang.render(locs, w, h, 4.5, MaLiang.RENDER_GAUSSIAN, 0);
        assertEquals(288, g.width);
    }

    /** cancel() before a push cancels that push (the header's "or the next one"); cancel() from another thread stops a
     * long push; the localizer goes on afterwards. */
    @Test public void cancelStopsThePushAndTheLocalizerGoesOn() throws Exception {
        try (final MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.cancel();
            try { l.pushFrames(frames, w, h); fail("not cancelled"); }
            catch (MaLiangException e) { assertTrue(e.isCancelled()); assertEquals(MaLiang.ML_ERR_CANCELLED, e.status()); }
            assertEquals(0, l.framesPushed());
            short[] many = new short[w * h * 4000]; // ~ seconds of work
            for (int i = 0; i < 4000; i++) System.arraycopy((short[]) frames[i % frames.length], 0, many, i * w * h, w * h);
            Thread canceller = new Thread(new Runnable() { public void run() {
                try { Thread.sleep(100); } catch (InterruptedException e) { return; }
                l.cancel();
            } });
            long t0 = System.nanoTime();
            canceller.start();
            try { l.push(many, w, h); fail("long push not cancelled"); }
            catch (MaLiangException e) { assertTrue(e.isCancelled()); }
            canceller.join();
            assertTrue(l.framesPushed() < 4000);
            assertEquals(l.summary().frames, l.framesPushed());
            long before = l.framesPushed();
            l.push((short[]) frames[0], w, h);
            assertEquals(before + 1, l.framesPushed());
            System.out.printf("  cancelled a 4000-frame push after %.2f s, %d frames done%n", (System.nanoTime() - t0) / 1e9, before);
        }
    }

    private static void expectIae(String fragment, Runnable r) {
        try { r.run(); fail("no IllegalArgumentException for: " + fragment); }
        catch (IllegalArgumentException e) {
            assertTrue("message '" + e.getMessage() + "' should mention '" + fragment + "'", e.getMessage().contains(fragment));
        }
    }

    @Test public void argumentErrorsAreCaughtInJava() {
        final MaLiang.Localizer l = new MaLiang.Localizer(settings());
        try {
            expectIae("not a whole number of 64x64 frames", new Runnable() { public void run() { l.push(new short[64 * 63], 64, 64); } });
            expectIae("smaller than the 7x7 ROI", new Runnable() { public void run() { l.push(new short[25], 5, 5); } });
            expectIae("not positive", new Runnable() { public void run() { l.push(new short[10], 0, 10); } });
            expectIae("pixels is null", new Runnable() { public void run() { l.push((short[]) null, 64, 64); } });
            expectIae("RGB", new Runnable() { public void run() { l.push((Object) new int[64 * 64], 64, 64); } });
            expectIae("not byte[], short[] or float[]", new Runnable() { public void run() { l.push((Object) new double[64 * 64], 64, 64); } });
            l.push(blank(64 * 64), 64, 64);
            expectIae("differs from the 64x64", new Runnable() { public void run() { l.push(new short[32 * 32], 32, 32); } });
        } finally {
            l.close();
        }
        expectIae("roi: must be an odd size", new Runnable() { public void run() { new MaLiang.Localizer(settings().roi(8)); } });
        expectIae("pixel_size", new Runnable() { public void run() { new MaLiang.Localizer(settings().pixelSize(Double.NaN)); } });
        expectIae("psf_sigma", new Runnable() { public void run() { new MaLiang.Localizer(settings().psfSigma(-1)); } });
        expectIae("offset", new Runnable() { public void run() { new MaLiang.Localizer(settings().offset(-5)); } });
        expectIae("iterations", new Runnable() { public void run() { new MaLiang.Localizer(settings().iterations(0)); } });
        expectIae("filter: 'gauss' is not one of maliang|wavelet|none", new Runnable() { public void run() { MaLiang.Filter.parse("gauss"); } });
        expectIae("backend", new Runnable() { public void run() { MaLiang.Backend.parse("metal"); } });
        expectIae("no such file", new Runnable() { public void run() { MaLiang.readCsv("/nonexistent/x.csv", 100); } });
        expectIae("does not exist", new Runnable() { public void run() { MaLiang.writeCsv("/nonexistent/dir/x.csv", new Localization[0], 100); } });
        expectIae("magnification", new Runnable() { public void run() { MaLiang.render(new Localization[0], 10, 10, 0, 0, 0); } });
        expectIae("method", new Runnable() { public void run() { MaLiang.render(new Localization[0], 10, 10, 2, 7, 0); } });
        expectIae("too large", new Runnable() { public void run() { MaLiang.render(new Localization[0], 20000, 20000, 100, 0, 0); } });
        try { l.results(); fail("closed"); } catch (IllegalStateException e) { assertTrue(e.getMessage().contains("closed")); }
    }

    /** A failure inside the library comes back as MaLiangException with ml_last_error()'s message. */
    @Test public void nativeErrorsCarryTheLibraryMessage() throws Exception {
        File bad = new File(Env.OUT, "bad.csv");
        FileWriter fw = new FileWriter(bad);
        fw.write("\"id\",\"sigma [nm]\"\n1,2\n");
        fw.close();
        try { MaLiang.readCsv(bad.getPath(), 100); fail("read a CSV without frame/x/y"); }
        catch (MaLiangException e) {
            assertEquals(MaLiang.ML_ERR_INPUT, e.status());
            assertFalse(e.getMessage().isEmpty());
        }
    }

    @Test public void resultsIncrementallyAndClear() {
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) {
            l.pushFrames(Arrays.copyOfRange(frames, 0, 10), w, h);
            long n1 = l.resultCount();
            l.pushFrames(Arrays.copyOfRange(frames, 10, 20), w, h);
            Localization[] tail = l.results(n1);
            assertEquals(l.resultCount() - n1, tail.length);
            for (Localization x : tail) assertTrue(x.frame >= 10);
            l.clearResults();
            assertEquals(0, l.resultCount());
            assertEquals(20, l.summary().frames);
        }
    }

    /** MaLiang.free: every Memory goes through it; a JNA without Memory.close() (NoSuchMethodError) leaves it to the GC. */
    @Test public void freeToleratesAJnaWithoutMemoryClose() throws Exception {
        assertTrue("JNA " + com.sun.jna.Native.VERSION + " has Memory.close()", MaLiang.canFreeMemoryNow());
        MaLiang.free(null);
        Memory m = new Memory(64);
        MaLiang.free(m);
        assertFalse(m.valid());
        MaLiang.free(m); // twice is fine
        final boolean[] called = {false};
        Memory old = new Memory(64) {
            @Override public void close() { called[0] = true; throw new NoSuchMethodError("com.sun.jna.Memory.close()V"); }
        };
        MaLiang.free(old); // must not throw
        assertTrue(called[0]);
        // no Memory is closed directly anywhere in the binding: only MaLiang.free may call close() on one
        File dir = new File(Env.ROOT, "src/ImageJBridge/src/org/maliang");
        java.util.List<File> files = new java.util.ArrayList<File>(Arrays.asList(dir.listFiles()));
        files.addAll(Arrays.asList(new File(dir, "ij").listFiles()));
        java.util.regex.Pattern decl = java.util.regex.Pattern.compile("\\bMemory\\s+(\\w+)\\s*[=;,)]");
        for (File f : files) {
            if (!f.getName().endsWith(".java")) continue;
            String src = new String(java.nio.file.Files.readAllBytes(f.toPath()), "UTF-8");
            java.util.Set<String> names = new java.util.HashSet<String>();
            java.util.regex.Matcher dm = decl.matcher(src);
            while (dm.find()) names.add(dm.group(1));
            for (String name : names) {
                java.util.regex.Matcher cm = java.util.regex.Pattern.compile("\\b" + name + "\\.close\\(\\)").matcher(src);
                int count = 0;
                while (cm.find()) count++;
                int allowed = f.getName().equals("MaLiang.java") && name.equals("m") ? 1 : 0; // free() itself
                assertTrue(f.getName() + ": " + name + ".close() on a Memory; use MaLiang.free(" + name + ")", count <= allowed);
            }
        }
    }

    /** close() from many threads at once frees the localizer once, without errors. */
    @Test public void concurrentCloseIsSafe() throws Exception {
        for (int round = 0; round < 20; round++) {
            final MaLiang.Localizer l = new MaLiang.Localizer(settings());
            l.push(blank(64 * 64), 64, 64);
            final java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
            final java.util.concurrent.atomic.AtomicReference<Throwable> error = new java.util.concurrent.atomic.AtomicReference<Throwable>();
            Thread[] ts = new Thread[8];
            for (int i = 0; i < ts.length; i++) {
                ts[i] = new Thread(new Runnable() { public void run() {
                    try { go.await(); l.close(); } catch (Throwable t) { error.set(t); }
                } });
                ts[i].start();
            }
            go.countDown();
            for (Thread t : ts) t.join();
            assertNull(String.valueOf(error.get()), error.get());
            assertTrue(l.isClosed());
            l.cancel(); // harmless once closed
            try { l.resultCount(); fail("closed"); } catch (IllegalStateException e) { assertTrue(e.getMessage().contains("closed")); }
        }
    }

    /** close() while another thread pushes waits for the push (the library refuses to destroy a pushing localizer, and
     * the staging buffer it reads must not be freed under it). */
    @Test(timeout = 120000) public void closeDuringAPushWaitsForIt() throws Exception {
        final MaLiang.Localizer l = new MaLiang.Localizer(settings());
        final short[] many = new short[w * h * 600];
        for (int i = 0; i < 600; i++) System.arraycopy((short[]) frames[i % frames.length], 0, many, i * w * h, w * h);
        final java.util.concurrent.atomic.AtomicReference<Throwable> error = new java.util.concurrent.atomic.AtomicReference<Throwable>();
        Thread pusher = new Thread(new Runnable() { public void run() {
            try { l.push(many, w, h); } catch (Throwable t) { error.set(t); }
        } });
        pusher.start();
        while (l.stagingAddress() == 0) Thread.sleep(1); // the push has begun (it allocates the staging buffer)
        Thread.sleep(20);
        l.close();
        pusher.join();
        assertNull(String.valueOf(error.get()), error.get());
        assertEquals(600, l.framesPushed());
        assertTrue(l.isClosed());
    }

    /** ML_ERR_IO (a file that cannot be read or written) has a message that says it is an I/O error. */
    @Test public void ioErrorsSaySo() throws Exception {
        File dir = new File(Env.OUT, "a_folder.csv");
        dir.mkdirs();
        Localization one = new Localization();
        one.x = 1; one.y = 1; one.photons = 100; one.sigma = 1;
        try { MaLiang.writeCsv(dir.getPath(), new Localization[] {one}, 100); fail("wrote onto a folder"); }
        catch (MaLiangException e) {
            // maliang.h says ML_ERR_IO; the engine's AtomicFile still wraps the IOException as an input error (2)
            assertTrue(e.status() + ": " + e.getMessage(), e.status() == MaLiang.ML_ERR_IO || e.status() == MaLiang.ML_ERR_INPUT);
            assertEquals(e.status() == MaLiang.ML_ERR_IO, e.isIoError());
            assertEquals(e.getMessage(), e.isIoError(), e.getMessage().startsWith("I/O error: "));
            if (!e.isIoError()) System.out.println("  note: ml_write_csv onto a folder gave status " + e.status() + ", not ML_ERR_IO (6)");
        }
        MaLiangException io = new MaLiangException(MaLiang.ML_ERR_IO, "cannot write /x.csv: disk full");
        assertTrue(io.isIoError());
        assertEquals("I/O error: cannot write /x.csv: disk full", io.getMessage());
        MaLiangException e = new MaLiangException(MaLiang.ML_ERR_IO, "I/O error: disk full");
        assertEquals("I/O error: disk full", e.getMessage());
        assertEquals("bad", new MaLiangException(MaLiang.ML_ERR_INPUT, "bad").getMessage());
    }
}
