package org.maliang.test;

import static org.junit.Assert.*;

import org.junit.BeforeClass;
import org.junit.Test;
import org.maliang.MaLiang;
import org.maliang.MaLiang.Localization;
import org.maliang.MaLiangException;
import org.maliang.Post;

/** org.maliang.Post (the post-processing C ABI from Java) against ground truth and exact expectations. */
public class PostBindingTest {
    static final double PX = PostSim.PX;

    @BeforeClass public static void load() { assertTrue("library: " + MaLiang.loadError(), MaLiang.isAvailable()); }

    @Test public void structSizesAreTheHardCodedOnes() {
        assertArrayEquals(new int[] {144, 76, 168}, Post.structSizes());
        assertArrayEquals(new int[] {64, 40, 120}, Post.postStructSizes());
        assertEquals(144, new MaLiang.Settings().size());
    }

    @Test public void fiducialDriftLeavesUnder2Nm() {
        int frames = 3000;
        Localization[] locs = PostSim.beadAndBlinkers(frames, 1);
        Post.DriftOptions o = new Post.DriftOptions();
        o.method = Post.DriftMethod.FIDUCIAL;
        o.frames = frames;
        Post.DriftResult d = Post.driftCorrect(locs, o);
        assertEquals(frames, d.frames());
        assertEquals(locs.length, d.corrected.length);
        double[] tx = new double[frames], ty = new double[frames];
        for (int f = 0; f < frames; f++) { double[] t = PostSim.drift(f, frames); tx[f] = t[0]; ty[f] = t[1]; }
        double rms = PostSim.residualRms(d.dxPx, d.dyPx, tx, ty) * PX;
        System.out.println("  fiducial residual rms " + rms + " nm");
        assertTrue("rms " + rms, rms < 2.0);
        assertEquals(0, (d.dxPx[0] + d.dxPx[1] + d.dxPx[2]) / 3, 0.05); // relative to the first frames
        for (int i = 0; i < locs.length; i++) {
            assertEquals(locs[i].frame, d.corrected[i].frame);
            assertEquals(locs[i].x - d.dxPx[locs[i].frame], d.corrected[i].x, 1e-4);
            assertEquals(locs[i].y - d.dyPx[locs[i].frame], d.corrected[i].y, 1e-4);
        }
        // no bead: a library error naming the problem
        Localization[] noBead = new Localization[500];
        java.util.Random r = new java.util.Random(2);
        for (int i = 0; i < noBead.length; i++) noBead[i] = PostSim.loc(i, 40 * r.nextDouble(), 40 * r.nextDouble());
        try { Post.driftCorrect(noBead, o); fail("no bead"); }
        catch (MaLiangException e) { assertEquals(MaLiang.ML_ERR_INPUT, e.status()); assertTrue(e.getMessage(), e.getMessage().contains("no fiducial")); }
    }

    @Test public void rccDriftOnFilamentsLeavesUnder5Nm() {
        int frames = 5000, n = 50000;
        Localization[] locs = PostSim.filaments(n, frames, 3, null);
        Post.DriftOptions o = new Post.DriftOptions();
        o.segments = 20; o.magnification = 4; o.maxShiftPx = 12;
        Post.DriftResult d = Post.driftCorrect(locs, o);
        double[] tx = new double[frames], ty = new double[frames];
        for (int f = 0; f < frames; f++) { double[] t = PostSim.drift(f, frames); tx[f] = t[0]; ty[f] = t[1]; }
        double rms = PostSim.residualRms(d.dxPx, d.dyPx, tx, ty) * PX;
        System.out.println("  rcc residual rms " + rms + " nm");
        assertTrue("rms " + rms, rms < 5.0);
    }

    @Test public void mergeWeightsAndCombines() {
        Localization[] locs = {
                PostSim.loc(3, 10.0, 20.0, 100, 0.2), PostSim.loc(4, 10.3, 20.3, 300, 0.1), PostSim.loc(6, 10.1, 20.1, 100, 0.2),
                PostSim.loc(9, 10.1, 20.1, 100, 0.2), PostSim.loc(4, 30.0, 30.0, 100, 0.2)};
        Localization[] m = Post.merge(locs, 0.5, 1);
        assertEquals(3, m.length);
        assertEquals(3, m[0].frame); assertEquals(4, m[1].frame); assertEquals(9, m[2].frame);
        assertEquals(3, m[0].detections);
        assertEquals(500f, m[0].photons, 0);
        assertEquals((100 * 10.0 + 300 * 10.3 + 100 * 10.1) / 500, m[0].x, 1e-5);
        assertEquals(1 / Math.sqrt(25 + 100 + 25), m[0].uncertaintyX, 1e-6);
        assertEquals(2, Post.merge(locs, 0.5, 2).length);
        assertEquals(0, Post.merge(new Localization[0], 0.5, 1).length);
        int[] count = new int[1];
        Localization[] blink = PostSim.blinking(3000, 4, count);
        Localization[] merged = Post.merge(blink, 0.5, 1);
        assertTrue(blink.length > 2 * count[0]);
        assertEquals(count[0], merged.length, 0.02 * count[0]);
        int det = 0;
        for (Localization l : merged) det += l.detections;
        assertEquals(blink.length, det);
    }

    @Test public void filterMasksAreExact() {
        Localization[] t = new Localization[5];
        double[] ph = {400, 1000, 200, 500, 301}, unc = {0.125, 0.25, 0.1875, Double.NaN, 0.0625};
        int[] fr = {0, 0, 1, 2, 2};
        for (int i = 0; i < 5; i++) t[i] = PostSim.loc(fr[i], i + 1, 1, ph[i], unc[i]);
        assertArrayEquals(new boolean[] {true, false, false, false, true}, Post.filterMask(t, "uncertainty [nm] < 20 && intensity [photon] > 300", PX));
        assertArrayEquals(new boolean[] {false, false, true, true, true}, Post.filterMask(t, "x [nm] >= 300", PX));
        assertArrayEquals(new boolean[] {false, true, true, true, true}, Post.filterMask(t, "!(frame == 1) || intensity [photon] >= 1000", PX));
        assertArrayEquals(new boolean[] {false, true, true, false, true}, Post.filterMask(t, "uncertainty [nm] != 12.5", PX));
        assertArrayEquals(new boolean[] {false, false, false, true, true}, Post.filterMask(t, "x [nm] > 500", 160));
        assertEquals(2, Post.select(t, Post.filterMask(t, "id >= 4", PX)).length);
        try { Post.filterMask(t, "photons > 3", PX); fail("unknown column"); }
        catch (MaLiangException e) {
            assertEquals(MaLiang.ML_ERR_INPUT, e.status());
            assertTrue(e.getMessage(), e.getMessage().contains("unknown column 'photons'"));
            assertTrue(e.getMessage(), e.getMessage().contains("\"intensity [photon]\""));
        }
        try { Post.checkExpression("x [nm] >"); fail("syntax"); }
        catch (MaLiangException e) { assertTrue(e.getMessage(), e.getMessage().contains("position")); }
        Post.checkExpression("x [nm] > 3");
    }

    @Test public void densityMaskIsExact() {
        double[] xs = {10, 10.05, 10.1, 10.0, 10.05, 20, 20.3, 30, 40, 50}, ys = {10, 10.05, 10.0, 10.1, 10.1, 20, 20.0, 30, 40, 50};
        Localization[] a = new Localization[10];
        for (int i = 0; i < 10; i++) a[i] = PostSim.loc(i, xs[i], ys[i]);
        assertArrayEquals(new boolean[] {true, true, true, true, true, false, false, false, false, false}, Post.densityMask(a, 0.2, 3));
        assertArrayEquals(new boolean[] {true, true, true, true, true, true, true, false, false, false}, Post.densityMask(a, 0.5, 1));
    }

    @Test public void frcMatchesTheoryWithin15Percent() {
        Localization[] locs = PostSim.frcEmitters(20, 5);
        double expected = PostSim.frcTheory(locs, 20, 5, 20);
        Post.FrcResult r = Post.frc(locs, PX, 5, Post.FrcSplit.ODD_EVEN, 20, 0);
        System.out.println("  FRC " + r.resolutionNm + " nm, theory " + expected + " nm");
        assertEquals(expected, r.resolutionNm, 0.15 * expected);
        assertEquals(512, r.frc.length);
        assertEquals(1.0 / (1024 * 5), r.frequencyPerNm[1], 1e-12);
        assertTrue(r.frc[1] > 0.5);
        assertEquals(1.0 / 7, r.threshold, 1e-12);
        Post.FrcResult random = Post.frc(locs, PX, 5, 7);
        assertEquals(expected, random.resolutionNm, 0.15 * expected);
    }

    @Test public void motionZ() {
        double[] region = {5, 5, 35, 25};
        Post.MotionResult m = Post.motion(PostSim.filament(50, 7), region, 0, 999, 2000, 2999, PX);
        System.out.println("  motion 50 nm: " + m);
        assertTrue(m.toString(), m.z > 5);
        assertEquals(50, m.displacementNm, 3);
        assertEquals(1000, m.n1); assertEquals(1000, m.n2); assertEquals(3000, m.inRegion);
        assertEquals(10 / Math.sqrt(1000), m.stdErr1Nm, 0.1);
        Post.MotionResult none = Post.motion(PostSim.filament(0, 8), region, 0, 999, 2000, 2999, PX);
        assertTrue(none.toString(), Math.abs(none.z) < 3);
        try { Post.motion(PostSim.filament(0, 8), region, 0, 0, 2000, 2999, PX); fail("window"); }
        catch (MaLiangException e) { assertTrue(e.getMessage(), e.getMessage().contains("window 1 (frames 1-1) has 1 localization")); }
    }

    @Test public void badArgumentsNameTheParameter() {
        Localization[] a = {PostSim.loc(0, 1, 1), PostSim.loc(1, 2, 2)};
        String[][] cases = new String[8][];
        int k = 0;
        try { Post.merge(a, 0, 1); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "radius: must be a finite number > 0 px"}; }
        try { Post.merge(a, 0.5, -1); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "gap: must be >= 0"}; }
        try { Post.filterMask(a, " ", PX); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "expression: is empty"}; }
        try { Post.densityMask(a, Double.NaN, 1); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "radius"}; }
        try { Post.frc(new Localization[0], PX, 5, 0); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "FRC needs localizations"}; }
        try { Post.motion(a, new double[] {5, 5, 1, 1}, 0, 1, 2, 3, PX); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "x0 < x1"}; }
        try { Post.parseRegion("1,2,3"); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "is not x0,y0,x1,y1"}; }
        Post.DriftOptions o = new Post.DriftOptions();
        o.segments = 1;
        try { Post.driftCorrect(a, o); } catch (IllegalArgumentException e) { cases[k++] = new String[] {e.getMessage(), "segments: must be 2 to 200"}; }
        assertEquals("every call threw", 8, k);
        for (String[] c : cases) assertTrue(c[0], c[0].contains(c[1]));
        assertEquals(Post.DriftMethod.FIDUCIAL, Post.DriftMethod.parse("Fiducial"));
        try { Post.DriftMethod.parse("beads"); fail(); } catch (IllegalArgumentException e) { assertTrue(e.getMessage().contains("rcc|fiducial")); }
    }
}
