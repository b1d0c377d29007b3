package org.maliang.ij;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.io.FileInfo;
import ij.io.FileSaver;

import java.io.File;

import org.maliang.MaLiang;

/**
 * Plugins > MaLiang > Calibrate 3D: the open bead z-stack (frame k at z = z_first + k z_step; z_first empty: z = 0
 * where the widths are equal) -> a z calibration file (YAML), a plot window of the measured widths and fitted curves,
 * and the path remembered for Localize's calibration field. Macro keys: offset photons_per_adu em_gain pixel_size
 * threshold z_step_nm z_first_nm refractive_index_factor output.
 */
final class Calibrate3D {
    private Calibrate3D() { }

    static void run() {
        MaLiangPlugin.requireLibrary();
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) throw new MaLiangPlugin.UserError("Calibrate 3D needs the bead z-stack: no image is open.");
        MaLiangPlugin.checkImage(imp);
        if (imp.getStackSize() < 8) throw new MaLiangPlugin.UserError(imp.getTitle() + ": " + imp.getStackSize() + " frames; a bead z-stack needs at least 8");

        MaLiang.Settings s = new MaLiang.Settings();
        GenericDialog gd = new GenericDialog("MaLiang Calibrate 3D");
        gd.addMessage("Camera");
        gd.addNumericField("offset", MaLiangPlugin.pref("offset", 100), 2, 8, "ADU");
        gd.addNumericField("photons_per_adu", MaLiangPlugin.pref("photons_per_adu", 1), 4, 8, "e-/ADU");
        gd.addNumericField("em_gain", MaLiangPlugin.pref("em_gain", 1), 2, 8, "(1 = sCMOS/CCD)");
        gd.addNumericField("pixel_size", MaLiangPlugin.pref("pixel_size", 100), 2, 8, "nm");
        gd.addNumericField("threshold", MaLiangPlugin.pref("threshold", s.threshold), 2, 8, "x noise (bead detection)");
        gd.addMessage("Bead stack: frame k at z = z_first + k x z_step (z grows with the frame number)");
        gd.addNumericField("z_step_nm", MaLiangPlugin.pref("z_step_nm", 10), 2, 8, "nm");
        gd.addStringField("z_first_nm", "", 10);
        gd.addMessage("(z_first_nm empty: z = 0 where the two widths are equal)");
        gd.addNumericField("refractive_index_factor", 1, 4, 8, "x fitted z");
        gd.addFileField("output", Prefs.get("maliang.calibration", new File(IJ.getDirectory("home") == null ? "." : IJ.getDirectory("home"), "zcalib.yaml").getPath()));
        gd.showDialog();
        if (gd.wasCanceled()) return;
        s.offset_adu = MaLiangPlugin.number(gd, "offset");
        s.photons_per_adu = MaLiangPlugin.number(gd, "photons_per_adu");
        s.em_gain = MaLiangPlugin.number(gd, "em_gain");
        s.pixel_size_nm = MaLiangPlugin.number(gd, "pixel_size");
        s.threshold = MaLiangPlugin.number(gd, "threshold");
        double step = MaLiangPlugin.number(gd, "z_step_nm");
        double factor = MaLiangPlugin.number(gd, "refractive_index_factor");
        String firstText = gd.getNextString().trim();
        String output = gd.getNextString().trim();
        double first = Double.NaN;
        if (!firstText.isEmpty()) {
            try { first = Double.parseDouble(firstText); } catch (NumberFormatException e) { throw new MaLiangPlugin.UserError("z_first_nm: '" + firstText + "' is not a number"); }
        }
        if (!(step > 0)) throw new MaLiangPlugin.UserError("z_step_nm: must be > 0, got " + step);
        if (output.isEmpty()) throw new MaLiangPlugin.UserError("output: no calibration file given");
        MaLiangPlugin.checkWritable(output);
        s.validate();

        // The engine reads the stack from a TIFF: the file it came from when the image is unchanged, else a temporary copy.
        File tmp = null;
        String stackPath = null;
        FileInfo fi = imp.getOriginalFileInfo();
        if (fi != null && fi.directory != null && fi.fileName != null && !imp.changes && fi.fileName.toLowerCase().matches(".*\\.tiff?$")
                && new File(fi.directory, fi.fileName).isFile() && imp.getStackSize() == fi.nImages)
            stackPath = new File(fi.directory, fi.fileName).getPath();
        File plot = null;
        try {
            if (stackPath == null) {
                tmp = File.createTempFile("maliang-beads-", ".tif");
                ImagePlus copy = imp.duplicate();
                if (!new FileSaver(copy).saveAsTiffStack(tmp.getPath())) throw new MaLiangPlugin.UserError("could not write a temporary copy of " + imp.getTitle());
                stackPath = tmp.getPath();
            }
            plot = File.createTempFile("maliang-zcalib-", ".png");
            plot.delete();
            MaLiang.ZCalibration c = MaLiang.calibrateZ(stackPath, s, step, first, factor, output, plot.getPath());
            IJ.log("MaLiang Calibrate 3D: " + imp.getTitle() + ": " + c.beads + " beads, " + c.rejectedFits + " bead fits rejected");
            IJ.log("  " + c);
            IJ.log("  wrote " + output);
            if (MaLiangPlugin.interactive()) {
                MaLiangPlugin.setPref("offset", s.offset_adu); MaLiangPlugin.setPref("photons_per_adu", s.photons_per_adu);
                MaLiangPlugin.setPref("em_gain", s.em_gain); MaLiangPlugin.setPref("pixel_size", s.pixel_size_nm);
                MaLiangPlugin.setPref("z_step_nm", step);
            }
            if (MaLiangPlugin.interactive()) Prefs.set("maliang.calibration", output); // Localize's calibration field starts with it
            ImagePlus p = IJ.openImage(plot.getPath());
            if (p != null) {
                p.setTitle(imp.getTitle() + " - MaLiang z calibration (x red, y blue; width px against z nm)");
                p.show();
            }
        } catch (java.io.IOException e) {
            throw new MaLiangPlugin.UserError("temporary file: " + e.getMessage());
        } finally {
            if (tmp != null) tmp.delete();
            if (plot != null) plot.delete();
        }
    }
}
