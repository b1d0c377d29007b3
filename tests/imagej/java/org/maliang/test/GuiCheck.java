package org.maliang.test;

import ij.IJ;
import ij.ImageJ;
import ij.ImagePlus;
import ij.Menus;
import ij.WindowManager;

import java.awt.Rectangle;
import java.awt.Robot;
import java.awt.Toolkit;
import java.awt.image.BufferedImage;
import java.io.File;
import java.util.Hashtable;

import javax.imageio.ImageIO;

/**
 * GUI check (run under Xvfb by GuiTest): ImageJ starts with MaLiang_.jar in plugins/, the Plugins > MaLiang commands
 * exist, Localize runs on an open stack, the results table and the rendered image window open; a screenshot is saved.
 * Args: STACK.tif SCREENSHOT.png. Exit 0 when all is well; prints "GUI-CHECK ..." lines.
 */
public class GuiCheck {
    public static void main(String[] args) throws Exception {
        String stack = args[0], png = args[1];
        ImageJ ij = new ImageJ(ImageJ.STANDALONE);
        for (int i = 0; i < 100 && Menus.getCommands() == null; i++) Thread.sleep(100);
        Hashtable<?, ?> cmds = Menus.getCommands();
        boolean ok = true;
        for (String c : new String[] {"Localize", "Render", "Export CSV", "Import CSV", "Camera Setup"}) {
            boolean has = cmds != null && cmds.containsKey(c);
            System.out.println("GUI-CHECK menu " + c + ": " + (has ? "ok" : "MISSING") + (has ? " -> " + cmds.get(c) : ""));
            ok &= has;
        }
        ImagePlus imp = IJ.openImage(stack);
        imp.show();
        for (int i = 0; i < 50 && WindowManager.getCurrentImage() != imp; i++) Thread.sleep(100);
        IJ.run(imp, "Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang "
                + "threshold=5 roi=7 iterations=20 backend=auto magnification=5 export=");
        String title = imp.getTitle() + " - MaLiang render";
        ImagePlus render = null;
        for (int i = 0; i < 100 && (render = WindowManager.getImage(title)) == null; i++) Thread.sleep(100);
        boolean renderOk = render != null && render.getWindow() != null && render.getWindow().isShowing();
        System.out.println("GUI-CHECK render window: " + (renderOk ? "ok " + render.getWidth() + "x" + render.getHeight()
                + " " + render.getCalibration().pixelWidth + " " + render.getCalibration().getUnit() : "MISSING"));
        ok &= renderOk;
        boolean tableOk = WindowManager.getWindow("MaLiang Results") != null;
        System.out.println("GUI-CHECK results table: " + (tableOk ? "ok" : "MISSING"));
        ok &= tableOk;
        if (renderOk) {
            render.getWindow().toFront();
            IJ.run(render, "Enhance Contrast", "saturated=0.5");
        }
        Thread.sleep(1500);
        Rectangle screen = new Rectangle(Toolkit.getDefaultToolkit().getScreenSize());
        BufferedImage shot = new Robot().createScreenCapture(screen);
        new File(png).getParentFile().mkdirs();
        ImageIO.write(shot, "png", new File(png));
        System.out.println("GUI-CHECK screenshot " + png + " " + shot.getWidth() + "x" + shot.getHeight());
        System.out.println("GUI-CHECK " + (ok ? "PASSED" : "FAILED"));
        System.exit(ok ? 0 : 1);
    }
}
