package org.maliang.test;

import static org.junit.Assert.*;

import java.util.concurrent.atomic.AtomicReference;

import org.junit.Test;
import org.maliang.LiveLocalizer;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;

/** LiveLocalizer fed from an "acquisition" thread while another thread reads results and previews. */
public class LiveLocalizerTest {
    static MaLiang.Settings settings() { return new MaLiang.Settings().offset(100); }

    @Test public void feedWhileReadingGivesTheBatchResults() throws Exception {
        BindingTest.load();
        final Object[] frames = BindingTest.frames;
        final int w = BindingTest.w, h = BindingTest.h;
        Localization[] batch;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.pushFrames(frames, w, h); batch = l.results(); }

        final LiveLocalizer live = new LiveLocalizer(settings(), w, h, 4, 0, 4);
        final AtomicReference<Throwable> readerError = new AtomicReference<Throwable>();
        final boolean[] stop = {false};
        final java.util.concurrent.atomic.AtomicInteger reads = new java.util.concurrent.atomic.AtomicInteger();
        Thread reader = new Thread(new Runnable() {
            public void run() {
                try {
                    int seen = 0;
                    while (!stop[0]) {
                        Localization[] fresh = live.localizationsSince(seen);
                        seen += fresh.length;
                        float[] p = live.preview();
                        assertEquals(live.previewWidth() * live.previewHeight(), p.length);
                        reads.incrementAndGet();
                    }
                } catch (Throwable t) { readerError.set(t); }
            }
        });
        reader.start();
        // Feed only once the reader runs: on a loaded machine the pushes could otherwise all be done before it is scheduled.
        for (int k = 0; k < 1000 && reads.get() == 0; k++) Thread.sleep(10);
        for (int i = 0; i < frames.length; i++) {
            // a fresh array per frame, as popNextImage() gives
            live.push(((short[]) frames[i]).clone(), (long) w, (long) h);
        }
        live.flush();
        stop[0] = true;
        reader.join();
        assertNull("reader: " + readerError.get(), readerError.get());
        assertTrue(reads.get() > 0);
        assertEquals(frames.length, live.framesDone());
        assertEquals(frames.length, live.framesQueued());
        Localization[] got = live.localizations();
        assertEquals(batch.length, got.length);
        for (int i = 0; i < got.length; i++) {
            assertEquals(batch[i].frame, got[i].frame);
            assertEquals(batch[i].x, got[i].x, 0);
            assertEquals(batch[i].y, got[i].y, 0);
        }
        float[] p = live.preview();
        double sum = 0;
        for (float v : p) sum += v;
        assertTrue("preview has the molecules", sum > 0.5 * got.length);
        assertEquals(64 * 4, live.previewProcessor().getWidth());
        assertEquals(25.0, live.previewPixelSizeNm(), 0);
        assertEquals(frames.length, live.summary().frames);
        live.close();
        try { live.push(new short[w * h]); fail("push after close"); }
        catch (IllegalStateException e) { assertTrue(e.getMessage().contains("closed")); }
    }

    @Test public void refusesWrongFrames() {
        LiveLocalizer live = new LiveLocalizer(settings(), 32, 32);
        try {
            try { live.push(new short[100]); fail(); } catch (IllegalArgumentException e) { assertTrue(e.getMessage().contains("not 32x32")); }
            try { live.push(new int[1024]); fail(); } catch (IllegalArgumentException e) { assertTrue(e.getMessage().contains("RGB")); }
            try { live.push(new short[1024], 64L, 16L); fail(); } catch (IllegalArgumentException e) { assertTrue(e.getMessage().contains("differs")); }
            try { live.pushImage("text"); fail(); } catch (IllegalArgumentException e) { assertTrue(e.getMessage().contains("TaggedImage")); }
            byte[] b8 = new byte[1024]; java.util.Arrays.fill(b8, (byte) 110);
            live.push(b8); // 8-bit camera
            live.flush();
            assertEquals(1, live.framesDone());
        } finally {
            live.close();
        }
        try { new LiveLocalizer(settings(), 4, 4); fail(); } catch (IllegalArgumentException e) { assertTrue(e.getMessage().contains("ROI")); }
    }

    /** A TaggedImage-like object (public field pix) and an Image-like object (getRawPixels()) are accepted. */
    public static class Tagged { public Object pix; Tagged(Object p) { pix = p; } }
    public static class Img { private final Object p; Img(Object p) { this.p = p; } public Object getRawPixels() { return p; } }

    @Test public void micromanagerImageObjects() {
        LiveLocalizer live = new LiveLocalizer(settings(), 32, 32);
        try {
            live.pushImage(new Tagged(BindingTest.blank(1024)));
            live.pushImage(new Img(BindingTest.blank(1024)));
            live.flush();
            assertEquals(2, live.framesDone());
        } finally {
            live.close();
        }
    }

    static LiveLocalizer idleWorkerStopped(LiveLocalizer live) throws Exception {
        java.lang.reflect.Field f = LiveLocalizer.class.getDeclaredField("worker");
        f.setAccessible(true);
        Thread worker = (Thread) f.get(live);
        Thread.sleep(50); // the worker waits for frames
        stop(worker);
        worker.join(5000);
        assertFalse("worker still alive", worker.isAlive());
        return live;
    }

    @SuppressWarnings("deprecation")
    static void stop(Thread t) {
        try { t.stop(); } // ThreadDeath: an Error, not a RuntimeException
        catch (UnsupportedOperationException e) { org.junit.Assume.assumeNoException("Thread.stop() is gone in this JVM", e); }
    }

    /** An Error in the worker (not only a RuntimeException) is kept as the failure: push() and flush() throw, never hang. */
    @Test(timeout = 30000) public void workerErrorMakesPushAndFlushThrow() throws Exception {
        LiveLocalizer live = idleWorkerStopped(new LiveLocalizer(settings(), 32, 32, 10, 0, 1));
        try {
            assertNotNull("failure kept", live.failure());
            assertTrue(String.valueOf(live.failure().getCause()), live.failure().getCause() instanceof Error);
            try {
                live.push(BindingTest.blank(1024));
                live.push(BindingTest.blank(1024)); // the queue holds 1: waited forever when the Error was not caught
                fail("push after the worker died");
            } catch (IllegalStateException e) {
                assertTrue(e.getMessage(), e.getMessage().contains("stopped"));
            }
            try { live.flush(); fail("flush after the worker died"); }
            catch (IllegalStateException e) { assertTrue(e.getMessage(), e.getMessage().contains("stopped")); }
        } finally {
            live.close();
        }
    }

    /** cancel() with no push running reaches nothing: later frames are all localized (ml_cancel would stop the next push). */
    @Test public void cancelWhileIdleDoesNotStopLaterFrames() throws Exception {
        BindingTest.load();
        Object[] frames = BindingTest.frames;
        int w = BindingTest.w, h = BindingTest.h, n = frames.length;
        LiveLocalizer live = new LiveLocalizer(settings(), w, h);
        try {
            for (Object f : frames) live.push(f);
            live.flush();
            int first = live.localizationCount();
            live.cancel();
            for (Object f : frames) live.push(f);
            live.flush();
            assertEquals(2 * n, live.framesDone());
            assertEquals(0, live.framesCancelled());
            Localization[] all = live.localizations();
            assertEquals(2 * first, all.length);
            for (int i = 0; i < first; i++) {
                assertEquals(all[i].frame + n, all[first + i].frame);
                assertEquals(all[i].x, all[first + i].x, 0);
            }
        } finally {
            live.close();
        }
    }

    /** cancel() during a long push drops frames; frames pushed later keep their acquisition index as frame number. */
    @Test(timeout = 120000) public void cancelDuringAPushKeepsAcquisitionIndices() throws Exception {
        BindingTest.load();
        Object[] frames = BindingTest.frames;
        int w = BindingTest.w, h = BindingTest.h;
        Localization[] batch;
        try (MaLiang.Localizer l = new MaLiang.Localizer(settings())) { l.pushFrames(frames, w, h); batch = l.results(); }
        int many = 6000;
        LiveLocalizer live = new LiveLocalizer(settings(), w, h, 4, 8000, 8000);
        try {
            for (int i = 0; i < many; i++) live.push(frames[i % frames.length]);
            Thread.sleep(300);
            live.cancel();
            live.flush();
            long done = live.framesDone(), dropped = live.framesCancelled();
            System.out.println("  live cancel: " + done + " frames localized, " + dropped + " dropped");
            assertTrue("the cancel dropped frames", dropped > 0);
            assertEquals(many, done + dropped);
            assertEquals(done, live.summary().frames);
            int before = live.localizationCount();
            for (Object f : frames) live.push(f);
            live.flush();
            assertEquals(done + frames.length, live.framesDone());
            assertEquals(many + frames.length, live.framesQueued());
            Localization[] after = live.localizationsSince(before);
            assertEquals(batch.length, after.length);
            for (int i = 0; i < after.length; i++) {
                assertEquals("acquisition index", batch[i].frame + many, after[i].frame);
                assertEquals(batch[i].x, after[i].x, 0);
                assertEquals(batch[i].y, after[i].y, 0);
            }
            for (Localization l : live.localizationsSince(0)) assertTrue(l.frame < done || l.frame >= many);
        } finally {
            live.close();
        }
    }

    /** close() from many threads at once: one frees the localizer, none fails, all return closed. */
    @Test(timeout = 60000) public void concurrentCloseIsSafe() throws Exception {
        for (int round = 0; round < 10; round++) {
            final LiveLocalizer live = new LiveLocalizer(settings(), 32, 32);
            live.push(BindingTest.blank(1024));
            final java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
            final AtomicReference<Throwable> error = new AtomicReference<Throwable>();
            Thread[] ts = new Thread[6];
            for (int i = 0; i < ts.length; i++) {
                ts[i] = new Thread(new Runnable() { public void run() {
                    try { go.await(); live.close(); } catch (Throwable t) { error.set(t); }
                } });
                ts[i].start();
            }
            go.countDown();
            for (Thread t : ts) t.join();
            assertNull(String.valueOf(error.get()), error.get());
            assertTrue(live.isClosed());
            assertEquals(1, live.framesDone());
        }
    }
}
