package org.maliang.test;

import ij.IJ;
import ij.ImageJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Menus;

import java.awt.Robot;
import java.awt.event.KeyEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.maliang.MaLiang;
import org.maliang.ij.MaLiangPlugin;

/**
 * Progress and cancel in the ImageJ GUI (run under Xvfb by GuiTest): Localize on a long stack writes "MaLiang: frame
 * k/n, F frames/s, m:ss left (Esc cancels)" to ImageJ's status bar with k rising; Esc typed on the keyboard (a
 * real key event through java.awt.Robot to the ImageJ window) stops it within a second, with nothing returned and the
 * status bar saying where it stopped. Args: STACK.tif. Exit 0 when all is well; prints "GUI-PROGRESS ..." lines.
 */
public class GuiProgressCheck {
    static final Pattern FRAME = Pattern.compile("MaLiang: frame (\\d+)/(\\d+), (\\d+) frames/s, (\\d+):(\\d\\d) left \\(Esc cancels\\)");

    public static void main(String[] args) throws Exception {
        ImageJ ij = new ImageJ(ImageJ.STANDALONE);
        for (int i = 0; i < 100 && Menus.getCommands() == null; i++) Thread.sleep(100);
        // a long stack: the test stack 150 times over (3000 frames); slow fits (200 iterations, one thread) so that it
        // runs for several seconds
        ImagePlus src = IJ.openImage(args[0]);
        ImageStack st = new ImageStack(src.getWidth(), src.getHeight());
        for (int r = 0; r < 150; r++)
            for (int k = 1; k <= src.getStackSize(); k++) st.addSlice(null, src.getStack().getPixels(k));
        final ImagePlus imp = new ImagePlus("long", st);
        imp.show();
        final MaLiang.Settings s = new MaLiang.Settings().offset(100).iterations(200).noTolerance(true).threads(1);
        final MaLiang.Localization[][] result = new MaLiang.Localization[1][];
        final Throwable[] error = new Throwable[1];
        Thread run = new Thread(new Runnable() { public void run() {
            try { result[0] = MaLiangPlugin.localizeStack(imp, s, true); } catch (Throwable t) { error[0] = t; }
        } }, "MaLiang Localize");
        long t0 = System.nanoTime();
        run.start();

        List<Integer> seen = new ArrayList<Integer>();
        int total = 0;
        boolean badRate = false;
        String text = "";
        while (run.isAlive() && seen.size() < 5 && System.nanoTime() - t0 < 60e9) {
            text = ImageJ.getStatusBarText();
            Matcher m = FRAME.matcher(text == null ? "" : text);
            if (m.matches()) {
                int k = Integer.parseInt(m.group(1));
                total = Integer.parseInt(m.group(2));
                int fps = Integer.parseInt(m.group(3)), left = 60 * Integer.parseInt(m.group(4)) + Integer.parseInt(m.group(5));
                // time left = frames left / frames/s (rounded up; the rate shown is rounded to a whole frame/s, which
                // is off by up to 0.5/fps relative: 2% at 24 frames/s, seen on a loaded machine)
                if (fps <= 0 || Math.abs(left - (total - k) / (double) fps) > 1 + (0.5 / fps + 0.01) * (total - k) / fps) {
                    System.out.println("GUI-PROGRESS inconsistent status: " + text);
                    badRate = true;
                }
                if (seen.isEmpty() || k != seen.get(seen.size() - 1)) seen.add(k);
            }
            Thread.sleep(20);
        }
        boolean ok = true;
        boolean rising = seen.size() >= 5 && total == 3000 && !badRate;
        for (int i = 1; i < seen.size(); i++) rising &= seen.get(i) > seen.get(i - 1);
        System.out.println("GUI-PROGRESS status bar: " + (rising ? "ok " : "WRONG ") + seen + " of " + total);
        ok &= rising;

        // Esc on the keyboard, to the focused ImageJ window
        ij.toFront();
        ij.requestFocus();
        Thread.sleep(200);
        Robot robot = new Robot();
        long tEsc = System.nanoTime();
        robot.keyPress(KeyEvent.VK_ESCAPE);
        robot.keyRelease(KeyEvent.VK_ESCAPE);
        run.join(10000);
        double stopS = (System.nanoTime() - tEsc) / 1e9;
        boolean alive = run.isAlive();
        String after = ImageJ.getStatusBarText();
        Matcher m = Pattern.compile("MaLiang: cancelled after (\\d+) of 3000 frames").matcher(after == null ? "" : after);
        boolean cancelled = !alive && error[0] == null && result[0] == null && m.matches() && Integer.parseInt(m.group(1)) < 3000;
        System.out.printf("GUI-PROGRESS Esc: %s, stopped %.3f s after the key, status \"%s\"%s%n", cancelled ? "ok" : "WRONG",
                stopS, after, error[0] != null ? ", error " + error[0] : "");
        ok &= cancelled && stopS < 1.0;
        System.out.println("GUI-PROGRESS " + (ok ? "PASSED" : "FAILED"));
        System.exit(ok ? 0 : 1);
    }
}
