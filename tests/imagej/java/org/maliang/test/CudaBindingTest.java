package org.maliang.test;

import static org.junit.Assert.*;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;

import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;

/**
 * backend CUDA through the Java binding (what the Fiji plugin's "backend=cuda" runs): the same localizations as the CPU
 * backend, within 1e-4 px. tests/imagej/run.sh runs this class in its own JVM, on the NVIDIA driver where there is one,
 * else on tests/cuda-emulator (LD_LIBRARY_PATH, CUDA_PATH): the host code, not GPU speed.
 */
public class CudaBindingTest {
    @Test public void cudaEqualsCpu() {
        assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable());
        ImagePlus imp = IJ.openImage(Env.data("stack.tif"));
        assertNotNull(Env.data("stack.tif"), imp);
        ImageStack s = imp.getStack();
        Object[] frames = new Object[s.getSize()];
        for (int i = 0; i < frames.length; i++) frames[i] = s.getPixels(i + 1);
        Localization[] cpu, gpu;
        String backend;
        try (MaLiang.Localizer l = new MaLiang.Localizer(new MaLiang.Settings().offset(100).backend(MaLiang.Backend.CPU))) {
            l.pushFrames(frames, s.getWidth(), s.getHeight());
            cpu = l.results();
        }
        try (MaLiang.Localizer l = new MaLiang.Localizer(new MaLiang.Settings().offset(100).backend(MaLiang.Backend.CUDA))) {
            l.pushFrames(frames, s.getWidth(), s.getHeight());
            gpu = l.results();
            backend = l.summary().backend;
        }
        assertTrue(backend, backend.startsWith("cuda:"));
        assertTrue(cpu.length > 100);
        assertEquals(cpu.length, gpu.length);
        for (int i = 0; i < cpu.length; i++) {
            assertEquals("frame of " + i, cpu[i].frame, gpu[i].frame);
            assertEquals("x of " + i, cpu[i].x, gpu[i].x, 1e-4);
            assertEquals("y of " + i, cpu[i].y, gpu[i].y, 1e-4);
        }
        System.out.println("  " + cpu.length + " localizations, cuda = cpu on " + backend);
    }
}
