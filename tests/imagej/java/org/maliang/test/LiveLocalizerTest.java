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
        final int[] reads = {0};
        Thread reader = new Thread(new Runnable() {
            public void run() {
                try {
                    int seen = 0;
                    while (!stop[0]) {
                        Localization[] fresh = live.localizationsSince(seen);
                        seen += fresh.length;
                        float[] p = live.preview();
                        assertEquals(live.previewWidth() * live.previewHeight(), p.length);
                        reads[0]++;
                    }
                } catch (Throwable t) { readerError.set(t); }
            }
        });
        reader.start();
        for (int i = 0; i < frames.length; i++) {
            // a fresh array per frame, as popNextImage() gives
            live.push(((short[]) frames[i]).clone(), (long) w, (long) h);
        }
        live.flush();
        stop[0] = true;
        reader.join();
        assertNull("reader: " + readerError.get(), readerError.get());
        assertTrue(reads[0] > 0);
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
}
