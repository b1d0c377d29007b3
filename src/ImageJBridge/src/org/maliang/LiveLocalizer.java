package org.maliang;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Localizes frames while a camera acquires them (Micro-Manager scripts, any acquisition loop).
 *
 * <p>{@link #push(Object)} only queues the frame and returns (it blocks only when {@code maxQueued} frames wait, so a
 * slow fit slows the producer instead of eating all memory); one worker thread owns the native localizer and fits
 * whatever has queued up, as one chunk (up to {@code maxBatch} frames), so the engine runs frames in parallel when it
 * falls behind and has one-frame latency when it keeps up. Results are copied into Java after each chunk, so
 * {@link #localizations()}, {@link #preview()}, {@link #framesDone()} can be called from any thread (e.g. the GUI) at
 * any time without waiting for a fit in progress.</p>
 *
 * <p>Frames are 8-bit (byte[]), 16-bit (short[], read unsigned, as cameras and ImageJ store them) or float[], all of
 * the size given to the constructor. The array is kept until its frame is localized: do not reuse it after push
 * (Micro-Manager's popNextImage() and getRawPixels() return a fresh array per image).</p>
 *
 * <p>Frame numbers ({@link MaLiang.Localization#frame}, 0-based) are acquisition indices: the number of the
 * {@code push} call that queued the frame, counted from 0 over the life of this object. {@link #cancel()} drops
 * frames, and the engine numbers only the frames it is given, so this class adds the difference back: a frame pushed
 * after a cancel keeps the number of its push (frame 1000 stays 1000 even when frames 600..999 were dropped), and
 * numbers then have gaps where frames were cancelled. {@link #summary()}{@code .frames} and {@link #framesDone()}
 * count the frames actually localized.</p>
 *
 * <p>If the worker fails (a library error, or any Throwable such as an OutOfMemoryError), it stops and keeps the
 * failure: every later {@link #push(Object)} and {@link #flush()} throws an IllegalStateException carrying it, so an
 * acquisition loop never waits for a dead worker.</p>
 */
public final class LiveLocalizer implements AutoCloseable {
    private final MaLiang.Settings settings;
    private final int width, height, maxBatch, maxQueued;
    private final double magnification;

    private final Object queueLock = new Object();
    private final ArrayDeque<Object> queue = new ArrayDeque<Object>();
    private boolean closing, busy;
    /** True only while the worker is inside the native push (set under queueLock just before, cleared just after). */
    private boolean pushing;
    private long framesQueued, framesCancelled;
    /** cancel() calls so far, and those that reached the library (ml_cancel, only while pushing). */
    private long cancels, nativeCancels;
    private volatile RuntimeException failure;
    private final Object closeLock = new Object();
    private boolean closed;

    private final Object storeLock = new Object();
    private final ArrayList<MaLiang.Localization> store = new ArrayList<MaLiang.Localization>();
    private volatile long framesDone;
    private volatile MaLiang.Summary lastSummary;

    private final Object previewLock = new Object();
    private float[] preview;
    private int previewWidth, previewHeight, rendered;

    private final MaLiang.Localizer localizer;
    private final Thread worker;

    /** A live localizer for {@code width x height} frames, preview at 10x. */
    public LiveLocalizer(MaLiang.Settings settings, int width, int height) {
        this(settings, width, height, 10, 0, 256);
    }

    /**
     * @param magnification preview pixels per camera pixel, (0, 100]
     * @param maxBatch      most frames fitted in one chunk (0 = 4 x processors, at least 8)
     * @param maxQueued     frames that may wait before push() blocks (>= 1)
     */
    public LiveLocalizer(MaLiang.Settings settings, int width, int height, double magnification, int maxBatch, int maxQueued) {
        if (settings == null) throw new IllegalArgumentException("settings is null");
        if (width <= 0 || height <= 0) throw new IllegalArgumentException("frame size " + width + "x" + height + " is not positive");
        if (width < settings.roi_size || height < settings.roi_size)
            throw new IllegalArgumentException("frames of " + width + "x" + height + " px are smaller than the " + settings.roi_size + "x" + settings.roi_size + " ROI");
        if (!(magnification > 0 && magnification <= 100)) throw new IllegalArgumentException("magnification: must be in (0, 100], got " + magnification);
        if (maxBatch < 0) throw new IllegalArgumentException("maxBatch: must be >= 0, got " + maxBatch);
        if (maxQueued < 1) throw new IllegalArgumentException("maxQueued: must be >= 1, got " + maxQueued);
        this.settings = settings.clone();
        this.width = width;
        this.height = height;
        this.magnification = magnification;
        this.maxBatch = maxBatch > 0 ? maxBatch : Math.max(8, 4 * Runtime.getRuntime().availableProcessors());
        this.maxQueued = maxQueued;
        this.localizer = new MaLiang.Localizer(this.settings); // validates, needs the library
        worker = new Thread(new Runnable() { public void run() { work(); } }, "MaLiang live localizer");
        worker.setDaemon(true);
        worker.start();
    }

    public int width() { return width; }
    public int height() { return height; }
    public double magnification() { return magnification; }
    public MaLiang.Settings settings() { return settings.clone(); }

    // ---------------------------------------------------------------------------------------------------------------
    // Producer side

    /** Queues one frame: short[] (uint16), byte[] (uint8) or float[] of width x height pixels. */
    public void push(Object pixels) {
        check(pixels);
        synchronized (queueLock) {
            while (queue.size() >= maxQueued && !closing && failure == null) {
                try { queueLock.wait(); }
                catch (InterruptedException e) { Thread.currentThread().interrupt(); throw new IllegalStateException("interrupted while waiting for the localizer"); }
            }
            rethrow();
            if (closing) throw new IllegalStateException("this LiveLocalizer is closed");
            queue.addLast(pixels);
            framesQueued++;
            queueLock.notifyAll();
        }
    }

    public void push(short[] pixels) { push((Object) pixels); }
    public void push(byte[] pixels) { push((Object) pixels); }
    public void push(float[] pixels) { push((Object) pixels); }

    /** As {@link #push(Object)}, checking the frame size too (e.g. mmc.getImageWidth(), mmc.getImageHeight()). */
    public void push(Object pixels, long w, long h) {
        if (w != width || h != height)
            throw new IllegalArgumentException("frame size " + w + "x" + h + " differs from this live localizer's " + width + "x" + height);
        push(pixels);
    }

    /**
     * Queues a Micro-Manager image: a TaggedImage (its {@code pix} field), an org.micromanager.data.Image (its
     * {@code getRawPixels()}), or a pixel array. Found by reflection, so this class needs no Micro-Manager jars.
     */
    public void pushImage(Object image) {
        if (image == null) throw new IllegalArgumentException("image is null");
        if (image instanceof short[] || image instanceof byte[] || image instanceof float[]) { push(image); return; }
        try {
            Method m = image.getClass().getMethod("getRawPixels");
            push(m.invoke(image));
            return;
        } catch (NoSuchMethodException e) {
            // not an org.micromanager.data.Image
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException("could not read the pixels of " + image.getClass().getName() + ": " + e);
        }
        try {
            Field f = image.getClass().getField("pix");
            push(f.get(image));
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException(image.getClass().getName() + " is neither a pixel array, a TaggedImage nor an Image with getRawPixels()");
        }
    }

    private void check(Object pixels) {
        int len;
        if (pixels instanceof short[]) len = ((short[]) pixels).length;
        else if (pixels instanceof byte[]) len = ((byte[]) pixels).length;
        else if (pixels instanceof float[]) len = ((float[]) pixels).length;
        else if (pixels == null) throw new IllegalArgumentException("pixels is null");
        else if (pixels instanceof int[]) throw new IllegalArgumentException("int[] pixels (RGB or 32-bit integer camera) cannot be localized: use an 8 or 16-bit camera mode");
        else throw new IllegalArgumentException("pixels of type " + pixels.getClass().getSimpleName() + " are not byte[], short[] or float[]");
        if (len != width * height)
            throw new IllegalArgumentException("a frame of " + len + " pixels is not " + width + "x" + height + " (" + (width * height) + ")");
    }

    private void rethrow() {
        RuntimeException f = failure;
        if (f != null) throw new IllegalStateException("the live localizer stopped: " + f.getMessage(), f);
    }

    /**
     * sCMOS camera maps (files read by the engine; see {@link MaLiang.Localizer#setCameraMapFiles}) for the frames
     * localized from now on: call it before pushing frames. Waits for a chunk in progress; errors name the map.
     */
    public void setCameraMapFiles(String offsetPath, String variancePath, String gainPath, int originX, int originY) {
        localizer.setCameraMapFiles(offsetPath, variancePath, gainPath, originX, originY);
    }

    /** As {@link #setCameraMapFiles}, from arrays of the whole sensor ({@link MaLiang.Localizer#setCameraMaps}). */
    public void setCameraMaps(float[] offsetAdu, float[] varianceAdu2, float[] gainPhotonsPerAdu, int sensorWidth, int sensorHeight,
                              int originX, int originY) {
        localizer.setCameraMaps(offsetAdu, varianceAdu2, gainPhotonsPerAdu, sensorWidth, sensorHeight, originX, originY);
    }

    /** Waits until every queued frame is localized. */
    public void flush() {
        synchronized (queueLock) {
            while ((!queue.isEmpty() || busy) && failure == null) {
                try { queueLock.wait(); }
                catch (InterruptedException e) { Thread.currentThread().interrupt(); return; }
            }
        }
        rethrow();
    }

    /**
     * Drops the queued frames and stops the fit in progress (the frames of its chunk not yet done are dropped too); the
     * localizations so far stay, and frames pushed afterwards are localized as usual, keeping their acquisition index
     * as frame number (see the class comment). Thread-safe. The library is asked to cancel (ml_cancel) only while a
     * push is actually running: a cancel reaching it between pushes would stop the next push, i.e. frames pushed after
     * this call.
     */
    public void cancel() {
        synchronized (queueLock) {
            framesCancelled += queue.size();
            queue.clear();
            cancels++;
            if (pushing) {
                nativeCancels++;
                localizer.cancel();
            }
            queueLock.notifyAll();
        }
    }

    /**
     * Localizes the frames still queued, then stops the worker and frees the native localizer. Idempotent; any number of
     * threads may call it at once (each returns once the localizer is closed).
     */
    @Override public void close() {
        synchronized (closeLock) {
            if (closed) return;
            synchronized (queueLock) {
                closing = true;
                queueLock.notifyAll();
            }
            boolean interrupted = false;
            while (worker.isAlive()) {
                try { worker.join(); } catch (InterruptedException e) { interrupted = true; }
            }
            if (interrupted) Thread.currentThread().interrupt();
            localizer.close();
            closed = true;
        }
    }

    /** True once {@link #close()} has been called. */
    public boolean isClosed() { synchronized (queueLock) { return closing; } }

    // ---------------------------------------------------------------------------------------------------------------
    // Worker

    private void work() {
        List<Object> chunk = new ArrayList<Object>();
        boolean staleCancel = false; // a cancel reached the library just after a push finished: it may stop the next one
        try {
            while (true) {
                long firstIndex, cancelsAtTake;
                synchronized (queueLock) {
                    while (queue.isEmpty() && !closing) queueLock.wait();
                    if (queue.isEmpty() && closing) return;
                    chunk.clear();
                    firstIndex = framesQueued - queue.size(); // the queue holds the last queue.size() frames pushed
                    cancelsAtTake = cancels;
                    Class<?> type = queue.peekFirst().getClass();
                    while (!queue.isEmpty() && chunk.size() < maxBatch && queue.peekFirst().getClass() == type)
                        chunk.add(queue.pollFirst());
                    busy = true;
                    queueLock.notifyAll(); // room for the producer
                }
                long engineFirst = localizer.framesPushed();
                long offset = firstIndex - engineFirst; // acquisition index - engine frame number
                int done = 0;
                while (done < chunk.size()) {
                    long nativeAtStart;
                    synchronized (queueLock) {
                        if (cancels != cancelsAtTake) { // cancelled after this chunk was taken: drop what is left of it
                            framesCancelled += chunk.size() - done;
                            break;
                        }
                        pushing = true;
                        nativeAtStart = nativeCancels;
                    }
                    boolean cancelled = false, cancelledDuring;
                    long before = localizer.framesPushed();
                    try {
                        Object[] part = (done == 0 ? chunk : chunk.subList(done, chunk.size())).toArray();
                        localizer.pushFrames(part, width, height);
                    } catch (MaLiangException e) {
                        if (!e.isCancelled()) throw e;
                        cancelled = true;
                    } finally {
                        synchronized (queueLock) {
                            pushing = false;
                            cancelledDuring = nativeCancels != nativeAtStart;
                        }
                    }
                    done += (int) (localizer.framesPushed() - before);
                    if (!cancelled) {
                        staleCancel = cancelledDuring; // asked too late to stop this push: the library may keep it
                    } else if (!cancelledDuring && staleCancel) {
                        staleCancel = false; // the late cancel of an earlier push stopped this one: push the rest again
                    } else {
                        staleCancel = false;
                        synchronized (queueLock) { framesCancelled += chunk.size() - done; }
                        break;
                    }
                }
                chunk.clear(); // let the arrays go
                MaLiang.Localization[] fresh = localizer.results();
                localizer.clearResults();
                lastSummary = localizer.summary();
                synchronized (storeLock) {
                    store.ensureCapacity(store.size() + fresh.length);
                    for (MaLiang.Localization l : fresh) {
                        l.frame = (int) (l.frame + offset);
                        store.add(l);
                    }
                    framesDone = localizer.framesPushed();
                }
                synchronized (queueLock) {
                    busy = false;
                    queueLock.notifyAll();
                }
            }
        } catch (InterruptedException e) {
            failure = new IllegalStateException("worker interrupted");
        } catch (Throwable t) { // not only RuntimeException: an Error must not leave push() and flush() waiting forever
            failure = t instanceof RuntimeException ? (RuntimeException) t : new IllegalStateException(t.toString(), t);
        } finally {
            synchronized (queueLock) {
                busy = false;
                pushing = false;
                queueLock.notifyAll();
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Reader side (any thread)

    /** Frames pushed so far (queued or localized). */
    public long framesQueued() { synchronized (queueLock) { return framesQueued; } }

    /** Frames localized so far (frames dropped by {@link #cancel()} not counted). */
    public long framesDone() { return framesDone; }

    /** Frames dropped by {@link #cancel()} so far (after {@link #flush()}: framesDone + framesCancelled = framesQueued). */
    public long framesCancelled() { synchronized (queueLock) { return framesCancelled; } }

    /** Frames waiting for the worker. */
    public int backlog() { synchronized (queueLock) { return queue.size() + (busy ? 1 : 0); } }

    /** The engine's summary after the last chunk (null before the first). */
    public MaLiang.Summary summary() { return lastSummary; }

    /** The worker's failure, or null (an Error or checked exception is wrapped in an IllegalStateException). */
    public RuntimeException failure() { return failure; }

    public int localizationCount() { synchronized (storeLock) { return store.size(); } }

    /** A snapshot of all localizations so far (frames 0-based, px). */
    public MaLiang.Localization[] localizations() { return localizationsSince(0); }

    /** The localizations from index {@code first} on: poll with the count you already have. */
    public MaLiang.Localization[] localizationsSince(int first) {
        synchronized (storeLock) {
            if (first < 0 || first > store.size()) throw new IllegalArgumentException("first " + first + " is outside 0.." + store.size());
            return store.subList(first, store.size()).toArray(new MaLiang.Localization[0]);
        }
    }

    /** Width of {@link #preview()} in pixels. */
    public int previewWidth() { return (int) Math.ceil(width * magnification); }
    public int previewHeight() { return (int) Math.ceil(height * magnification); }

    /**
     * The super-resolution image of everything localized so far (Gaussian, sigma = each localization's uncertainty),
     * row-major, {@link #previewWidth()} x {@link #previewHeight()}; only new localizations are rendered and added.
     * Returns a copy the caller may keep.
     */
    public float[] preview() {
        synchronized (previewLock) {
            MaLiang.Localization[] fresh = localizationsSince(rendered);
            if (preview == null) {
                previewWidth = previewWidth(); previewHeight = previewHeight();
                preview = new float[previewWidth * previewHeight];
            }
            if (fresh.length > 0) {
                MaLiang.Image img = MaLiang.render(fresh, width, height, magnification, MaLiang.RENDER_GAUSSIAN, 0);
                float[] p = img.pixels;
                for (int i = 0; i < p.length; i++) preview[i] += p[i];
                rendered += fresh.length;
            }
            return preview.clone();
        }
    }

    /** {@link #preview()} as an ImageJ FloatProcessor (ImageJ must be on the class path, as in Micro-Manager and Fiji). */
    public ij.process.FloatProcessor previewProcessor() {
        float[] p = preview();
        return new ij.process.FloatProcessor(previewWidth, previewHeight, p);
    }

    /** Pixel size of the preview in nm (pixel size / magnification). */
    public double previewPixelSizeNm() { return settings.pixel_size_nm / magnification; }
}
