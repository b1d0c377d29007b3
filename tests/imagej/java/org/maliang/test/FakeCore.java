package org.maliang.test;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;

import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in for Micro-Manager's CMMCore (mmcorej.CMMCore): the methods live_localize.bsh calls, with the same names
 * and signatures, producing the frames of a TIFF stack (e.g. one written by `maliang simulate`) from a "camera" thread
 * into a bounded circular buffer, as a sequence acquisition does.
 */
public class FakeCore {
    private final ImageStack stack;
    private final int bufferFrames;
    private final LinkedBlockingDeque<Object> buffer = new LinkedBlockingDeque<Object>();
    private final AtomicBoolean running = new AtomicBoolean();
    private volatile Thread camera;
    private volatile String overflow;
    public final AtomicInteger popped = new AtomicInteger(), produced = new AtomicInteger();
    public volatile boolean stopCalled;
    public volatile double lastIntervalMs = -1;
    public final StringBuilder log = new StringBuilder();
    /** Time the camera takes per frame, ms (the "exposure"). */
    public double exposureMs = 2;
    /** Extra time popNextImage() takes, ms: a slow consumer, to overflow a small buffer. */
    public volatile long popDelayMs;
    /** popNextImage() throws on this (1-based) pop; 0 = never. */
    public volatile int failPopAt;

    public FakeCore(String tiffPath, int bufferFrames) {
        ImagePlus imp = IJ.openImage(tiffPath);
        if (imp == null) throw new IllegalArgumentException(tiffPath + ": cannot open");
        stack = imp.getStack();
        this.bufferFrames = bufferFrames;
    }

    public long getImageWidth() { return stack.getWidth(); }
    public long getImageHeight() { return stack.getHeight(); }
    public long getBytesPerPixel() { return stack.getBitDepth() / 8; }
    public double getPixelSizeUm() { return 0.1; }
    public double getExposure() { return exposureMs; }
    public String getCameraDevice() { return "FakeCamera"; }

    public void startSequenceAcquisition(int numImages, double intervalMs, boolean stopOnOverflow) throws Exception {
        if (running.get()) throw new Exception("Sequence acquisition already running");
        lastIntervalMs = intervalMs;
        final int n = Math.min(numImages, stack.getSize());
        final long sleepMs = (long) Math.max(exposureMs, intervalMs);
        final boolean stopOnOv = stopOnOverflow;
        running.set(true);
        camera = new Thread(new Runnable() {
            public void run() {
                try {
                    for (int i = 1; i <= n && running.get(); i++) {
                        Thread.sleep(sleepMs);
                        Object pix = stack.getPixels(i);
                        Object copy = pix instanceof short[] ? ((short[]) pix).clone() : pix instanceof byte[] ? ((byte[]) pix).clone() : pix;
                        if (buffer.size() >= bufferFrames) {
                            overflow = "Circular buffer overflowed at frame " + i;
                            if (stopOnOv) break;
                            buffer.pollFirst();
                        }
                        buffer.addLast(copy);
                        produced.incrementAndGet();
                    }
                } catch (InterruptedException e) {
                    // stopped
                } finally {
                    running.set(false);
                }
            }
        }, "FakeCore camera");
        camera.start();
    }

    public void stopSequenceAcquisition() throws Exception {
        stopCalled = true;
        running.set(false);
        Thread t = camera;
        if (t != null) t.join();
    }

    public boolean isSequenceRunning() { return running.get(); }
    public boolean isSequenceRunning(String camera) { return running.get(); }
    public int getRemainingImageCount() { return buffer.size(); }
    public boolean isBufferOverflowed() { return overflow != null; }
    public String overflow() { return overflow; }

    public Object popNextImage() throws Exception {
        if (failPopAt > 0 && popped.get() + 1 == failPopAt) throw new Exception("FakeCore: camera error at image " + failPopAt);
        if (popDelayMs > 0) Thread.sleep(popDelayMs);
        Object o = buffer.pollFirst();
        if (o == null) throw new Exception("Circular buffer is empty.");
        popped.incrementAndGet();
        return o;
    }

    public void sleep(double ms) throws InterruptedException { Thread.sleep((long) Math.max(0, ms)); }
    public void logMessage(String msg) { synchronized (log) { log.append(msg).append('\n'); } }
}
