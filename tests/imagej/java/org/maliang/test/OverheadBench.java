package org.maliang.test;

import ij.IJ;
import ij.ImagePlus;
import ij.measure.ResultsTable;

import org.maliang.MaLiang;
import org.maliang.ij.MaLiangPlugin;

/**
 * Not a test: the plugin's in-memory overhead. Opens STACK.tif into memory (an ImagePlus, as in Fiji) and localizes it
 * with the plugin's own frame loop (MaLiangPlugin.localizeStack: per-frame copy into the native staging buffer, chunked
 * pushes, results into Java), RUNS times; prints the wall time and the engine's own wall time inside it.
 * Args: STACK.tif RUNS
 */
public class OverheadBench {
    public static void main(String[] args) {
        ImagePlus imp = IJ.openImage(args[0]);
        int runs = Integer.parseInt(args[1]);
        MaLiang.Settings s = new MaLiang.Settings().offset(100);
        System.out.printf("stack %dx%dx%d, %d processors, chunk %d frames%n", imp.getWidth(), imp.getHeight(), imp.getStackSize(),
                Runtime.getRuntime().availableProcessors(), Math.max(8, 4 * Runtime.getRuntime().availableProcessors()));
        MaLiangPlugin.localizeStack(new ImagePlus("warm", imp.getStack().getProcessor(1)), s, false); // load + JIT
        double best = 1e9, bestEngine = 0;
        MaLiang.Localization[] locs = null;
        for (int r = 0; r < runs; r++) {
            locs = MaLiangPlugin.localizeStack(imp, s, false);
            double wall = MaLiangPlugin.Session.localizeSeconds, engine = MaLiangPlugin.Session.summary.wallSeconds;
            System.out.printf("plugin run %d: %.3f s wall (engine inside: %.3f s), %d localizations%n", r + 1, wall, engine, locs.length);
            if (wall < best) { best = wall; bestEngine = engine; }
        }
        long t0 = System.nanoTime();
        ResultsTable rt = MaLiangPlugin.toTable(locs, 100);
        double table = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        ImagePlus render = MaLiangPlugin.renderImage(locs, imp.getWidth(), imp.getHeight(), 10, 0, 0, 100, "bench");
        double rend = (System.nanoTime() - t0) / 1e9;
        System.out.printf("PLUGIN-BEST %.3f s wall, engine %.3f s; results table %.3f s (%d rows), render %.3f s (%dx%d)%n",
                best, bestEngine, table, rt.size(), rend, render.getWidth(), render.getHeight());
    }
}
