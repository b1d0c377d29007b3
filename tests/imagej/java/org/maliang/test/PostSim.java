package org.maliang.test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

import org.maliang.MaLiang.Localization;

/** Ground-truth localizations for the post-processing tests (the constructions of tests/Engine.Tests/Post/*). Pixel 100 nm. */
public final class PostSim {
    private PostSim() { }
    public static final double PX = 100;

    public static Localization loc(int frame, double x, double y, double photons, double unc) {
        Localization l = new Localization();
        l.frame = frame; l.x = (float) x; l.y = (float) y; l.photons = (float) photons; l.background = 10; l.sigma = 1.3f;
        l.uncertaintyX = (float) unc; l.uncertaintyY = (float) unc; l.detections = 1; l.flags = 1;
        return l;
    }

    public static Localization loc(int frame, double x, double y) { return loc(frame, x, y, 1000, 0.1); }

    /** The engine tests' smooth drift (px): 8 px in x, 6 px in y over the acquisition plus a sine / cosine bump. */
    public static double[] drift(int frame, int frames) {
        double t = frame / (double) (frames - 1);
        return new double[] {8.0 * t + 0.5 * Math.sin(2 * Math.PI * t), 6.0 * t + 0.3 * (1 - Math.cos(2 * Math.PI * t))};
    }

    /** RMS of (estimate - truth) over both axes after removing the constant offset (px). */
    public static double residualRms(double[] ex, double[] ey, double[] tx, double[] ty) {
        int n = ex.length;
        double mx = 0, my = 0;
        for (int f = 0; f < n; f++) { mx += ex[f] - tx[f]; my += ey[f] - ty[f]; }
        mx /= n; my /= n;
        double s = 0;
        for (int f = 0; f < n; f++) {
            double a = ex[f] - tx[f] - mx, b = ey[f] - ty[f] - my;
            s += a * a + b * b;
        }
        return Math.sqrt(s / n);
    }

    static Localization[] sortByFrame(List<Localization> l) {
        Localization[] a = l.toArray(new Localization[0]);
        Arrays.sort(a, new Comparator<Localization>() { public int compare(Localization p, Localization q) { return Integer.compare(p.frame, q.frame); } });
        return a;
    }

    /** A bright bead (5 nm precision, 8000 photons) at (20.3, 21.7) px in 95% of the frames plus 400 blinking molecules, all drifting. */
    public static Localization[] beadAndBlinkers(int frames, long seed) {
        Random r = new Random(seed);
        List<Localization> l = new ArrayList<Localization>();
        for (int f = 0; f < frames; f++) {
            if (r.nextDouble() < 0.05) continue;
            double[] d = drift(f, frames);
            l.add(loc(f, 20.3 + d[0] + 0.05 * r.nextGaussian(), 21.7 + d[1] + 0.05 * r.nextGaussian(), 8000, 0.05));
        }
        for (int m = 0; m < 400; m++) {
            double x = 40 * r.nextDouble(), y = 40 * r.nextDouble();
            int start = r.nextInt(frames - 10), len = 1 + r.nextInt(5);
            for (int f = start; f < start + len; f++) {
                double[] d = drift(f, frames);
                l.add(loc(f, x + d[0] + 0.1 * r.nextGaussian(), y + d[1] + 0.1 * r.nextGaussian()));
            }
        }
        return sortByFrame(l);
    }

    /** Filaments (8 in a 32 x 32 px field), {@code n} localizations with 10 nm precision spread evenly over the frames;
     *  truth[i] = the undrifted position (x, y) of localization i; the returned ones carry the drift. */
    public static Localization[] filaments(int n, int frames, long seed, double[][] truth) {
        Random r = new Random(seed);
        double[][] fil = new double[8][4];
        for (int i = 0; i < 8; i++) {
            double cx = 32 * (0.2 + 0.6 * r.nextDouble()), cy = 32 * (0.2 + 0.6 * r.nextDouble());
            double a = Math.PI * r.nextDouble(), len = 32 * (0.4 + 0.4 * r.nextDouble());
            fil[i] = new double[] {cx - 0.5 * len * Math.cos(a), cy - 0.5 * len * Math.sin(a), cx + 0.5 * len * Math.cos(a), cy + 0.5 * len * Math.sin(a)};
        }
        Localization[] out = new Localization[n];
        for (int i = 0; i < n; i++) {
            int f = (int) ((long) i * frames / n);
            double[] s = fil[r.nextInt(8)];
            double t = r.nextDouble();
            double x = s[0] + t * (s[2] - s[0]) + 0.1 * r.nextGaussian(), y = s[1] + t * (s[3] - s[1]) + 0.1 * r.nextGaussian();
            if (truth != null) truth[i] = new double[] {x, y};
            double[] d = drift(f, frames);
            out[i] = loc(f, x + d[0], y + d[1]);
        }
        return out;
    }

    /** Blinking: molecules on once for a geometric number of frames (mean 3), single missed frames (10%), 10 nm noise.
     *  count[0] receives the number of molecules. */
    public static Localization[] blinking(int molecules, long seed, int[] count) {
        Random r = new Random(seed);
        List<Localization> l = new ArrayList<Localization>();
        for (int m = 0; m < molecules; m++) {
            double x = 100 * r.nextDouble(), y = 100 * r.nextDouble();
            int start = r.nextInt(2000), len = 1;
            while (r.nextDouble() < 2.0 / 3.0) len++;
            boolean missedPrev = true;
            for (int f = start; f < start + len; f++) {
                boolean miss = !missedPrev && f < start + len - 1 && r.nextDouble() < 0.1;
                missedPrev = miss;
                if (miss) continue;
                l.add(loc(f, x + 0.1 * r.nextGaussian(), y + 0.1 * r.nextGaussian(), 500 + 1000 * r.nextDouble(), 0.1));
            }
        }
        count[0] = molecules;
        return sortByFrame(l);
    }

    /** A filament from (10, 10) to (30, 20) px, 10 nm precision, one localization per frame over 3000 frames; frames
     *  2000..2999 displaced by shiftNm along the normal. */
    public static Localization[] filament(double shiftNm, long seed) {
        Random r = new Random(seed);
        double dx = 20, dy = 10, len = Math.sqrt(dx * dx + dy * dy), nx = -dy / len, ny = dx / len;
        Localization[] out = new Localization[3000];
        for (int f = 0; f < 3000; f++) {
            double t = r.nextDouble(), s = f >= 2000 ? shiftNm / PX : 0;
            out[f] = loc(f, 10 + t * dx + s * nx + 0.1 * r.nextGaussian(), 10 + t * dy + s * ny + 0.1 * r.nextGaussian());
        }
        return out;
    }

    /** 1500 emitters in a 50 x 50 px field, 20 localizations each at random frames 0..1999, sigmaNm precision. */
    public static Localization[] frcEmitters(double sigmaNm, long seed) {
        Random r = new Random(seed);
        int emitters = 1500, per = 20;
        Localization[] out = new Localization[emitters * per];
        for (int j = 0; j < emitters; j++) {
            double x = 50 * r.nextDouble(), y = 50 * r.nextDouble();
            for (int k = 0; k < per; k++)
                out[j * per + k] = loc(r.nextInt(2000), x + sigmaNm / PX * r.nextGaussian(), y + sigmaNm / PX * r.nextGaussian());
        }
        return out;
    }

    static double sinc2(double x) {
        if (Math.abs(x) < 1e-12) return 1;
        double s = Math.sin(Math.PI * x) / (Math.PI * x);
        return s * s;
    }

    /** The expected FRC resolution (nm) of {@link #frcEmitters} with odd/even blocks of {@code block} frames (engine test's theory). */
    public static double frcTheory(Localization[] locs, double sigmaNm, double superPx, int block) {
        int emitters = locs.length / 20;
        double s12 = 0, a1 = 0, a2 = 0, b1 = 0, b2 = 0;
        for (int j = 0; j < emitters; j++) {
            int n1 = 0, n2 = 0;
            for (int k = 0; k < 20; k++) if ((locs[j * 20 + k].frame / block) % 2 == 0) n1++; else n2++;
            s12 += n1 * n2; a1 += n1; a2 += n2; b1 += n1 * (n1 - 1.0); b2 += n2 * (n2 - 1.0);
        }
        double lo = 1e-4, hi = 0.1;
        for (int it = 0; it < 60; it++) {
            double q = 0.5 * (lo + hi);
            double h = Math.exp(-2 * Math.PI * Math.PI * sigmaNm * sigmaNm * q * q), s = 0;
            for (int i = 0; i < 90; i++) {
                double th = (i + 0.5) * Math.PI / 180;
                s += sinc2(q * superPx * Math.cos(th)) * sinc2(q * superPx * Math.sin(th));
            }
            double t = h * h * s / 90;
            double frc = s12 * t / Math.sqrt((a1 + b1 * t) * (a2 + b2 * t));
            if (frc > 1.0 / 7) lo = q; else hi = q;
        }
        return 1 / lo;
    }
}
