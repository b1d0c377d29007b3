package org.maliang.ij;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Macro;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;
import ij.process.FloatProcessor;

import java.awt.GraphicsEnvironment;
import java.io.File;

import org.maliang.MaLiang;
import org.maliang.MaLiangException;

/**
 * The Plugins &gt; MaLiang commands (plugins.config): Localize, Render, Export CSV, Import CSV, Camera Setup, About.
 *
 * <p>Every dialog is a GenericDialog whose labels are the CLI option names with underscores (ImageJ shows them with
 * spaces), so the macro recorder writes e.g. {@code run("Localize", "offset=100 photons_per_adu=1 ... export=[/x.csv]")}
 * and the macro replays it without a dialog. A user mistake (no image, RGB, bad parameter, missing library) is an
 * IJ.error with one clear line and, in a macro, aborts the macro with that message; never a stack trace.</p>
 */
public class MaLiangPlugin implements PlugIn {
    static final String TITLE = "MaLiang";
    /** Name of the results table (ResultsTable window). */
    public static final String TABLE = "MaLiang Results";
    static final String[] FILTERS = {"maliang", "wavelet", "none"};
    static final String[] BACKENDS = {"auto", "cpu", "opencl", "cuda"};
    static final String[] METHODS = {"gaussian", "histogram"};

    /** The CSV / table columns (DESIGN.md; ThunderSTORM's first, then MaLiang's own). */
    public static final String[] COLUMNS = {"id", "frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]",
            "offset [photon]", "bkgstd [photon]", "uncertainty [nm]", "uncertainty_x [nm]", "uncertainty_y [nm]",
            "uncertainty_photons [photon]", "uncertainty_offset [photon]", "uncertainty_sigma [nm]", "loglikelihood", "llr",
            "iterations", "detections", "fitted_together"};

    /** A user mistake: reported with IJ.error, never with a stack trace. */
    static final class UserError extends RuntimeException {
        private static final long serialVersionUID = 1L;
        UserError(String m) { super(m); }
    }

    /** The last localizations (from Localize or Import CSV) that Render and Export CSV work on. */
    public static final class Session {
        public static volatile MaLiang.Localization[] locs;
        public static volatile double pixelSizeNm = 100;
        public static volatile int width, height;
        public static volatile String source = "";
        public static volatile MaLiang.Summary summary;
        /** The settings the library ran the last Localize with (ml_get_settings), for the Log's CLI line. */
        public static volatile MaLiang.Settings engineSettings;
        /** Wall time of the last Localize's frame loop (push + results), seconds; for the benchmark. */
        public static volatile double localizeSeconds;
        private Session() { }
    }

    @Override
    public void run(String arg) {
        try {
            if (arg == null || arg.isEmpty() || arg.equals("localize")) localize();
            else if (arg.equals("render")) render();
            else if (arg.equals("export")) exportCsv();
            else if (arg.equals("import")) importCsv();
            else if (arg.equals("camera")) camera();
            else if (arg.equals("calibrate3d")) Calibrate3D.run();
            else if (arg.equals("about")) about();
            else throw new UserError("unknown command '" + arg + "'");
        } catch (UserError e) {
            fail(e.getMessage());
        } catch (IllegalArgumentException e) {
            fail(e.getMessage());
        } catch (IllegalStateException e) {
            fail(e.getMessage());
        } catch (MaLiangException e) {
            fail(e.isCancelled() ? "cancelled" : e.getMessage());
        } catch (LinkageError e) { // NoClassDefFoundError: JNA (or a part of MaLiang_.jar) could not be loaded
            fail(linkageMessage(e));
        }
    }

    /** The one line shown when JNA is not on the class path. */
    public static final String JNA_MISSING = "JNA is missing: put jna.jar on the class path; Fiji ships it";

    /**
     * Whether JNA can be loaded by the class loader that loaded this plugin, probed without initializing anything. Must
     * be checked before org.maliang.MaLiang is touched: without JNA that class cannot even be linked, and every use of
     * it is a NoClassDefFoundError instead of a message.
     */
    static boolean jnaPresent() {
        try {
            Class.forName("com.sun.jna.Native", false, MaLiangPlugin.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        } catch (LinkageError e) {
            return false;
        }
    }

    static void requireJna() {
        if (!jnaPresent()) throw new UserError(JNA_MISSING);
    }

    /** The message for a LinkageError that escaped a command (also used by PostPlugin). */
    static String linkageMessage(LinkageError e) {
        String m = String.valueOf(e.getMessage());
        if (!jnaPresent() || m.contains("com/sun/jna") || m.contains("com.sun.jna")) return JNA_MISSING;
        return "MaLiang_.jar could not be loaded (" + e + "): reinstall MaLiang_.jar together with libmaliang and restart ImageJ";
    }

    /** Shows the error and, when a macro runs this command, aborts the macro with the same message. */
    static void fail(String message) {
        String msg = message == null ? "unknown error" : message;
        boolean macro = Macro.getOptions() != null || IJ.isMacro();
        // No ImageJ window (ImageJ -batch, a headless JVM, a program calling IJ.run): nobody could close a modal
        // dialog, so the message goes to stderr and the Log instead.
        if (GraphicsEnvironment.isHeadless() || IJ.getInstance() == null) {
            System.err.println(TITLE + " error: " + msg);
            if (!GraphicsEnvironment.isHeadless() && !macro) IJ.log(TITLE + " error: " + msg);
        } else {
            IJ.error(TITLE, msg);
        }
        if (macro) {
            ij.macro.Interpreter.abort(); // stops the running macro (Macro.abort() alone does not in ImageJ -batch)
            Macro.abort();
            throw new RuntimeException(Macro.MACRO_CANCELED);
        }
    }

    static void requireLibrary() {
        requireJna(); // before MaLiang is touched
        if (!MaLiang.isAvailable()) throw new UserError(MaLiang.loadError());
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Camera prefs

    static double pref(String key, double def) { return Prefs.get("maliang." + key, def); }
    static void setPref(String key, double v) { Prefs.set("maliang." + key, v); }

    static void addCamera(GenericDialog gd) {
        gd.addMessage("Camera");
        gd.addNumericField("offset", pref("offset", 100), 2, 8, "ADU");
        gd.addNumericField("photons_per_adu", pref("photons_per_adu", 1), 4, 8, "e-/ADU");
        gd.addNumericField("em_gain", pref("em_gain", 1), 2, 8, "(1 = sCMOS/CCD)");
        gd.addNumericField("pixel_size", pref("pixel_size", 100), 2, 8, "nm");
        gd.addMessage("sCMOS maps of the whole sensor (TIFF; empty = none): offset ADU, read-noise variance ADU^2, gain photons/ADU");
        gd.addFileField("camera_offset_map", Prefs.get("maliang.camera_offset_map", ""));
        gd.addFileField("camera_variance_map", Prefs.get("maliang.camera_variance_map", ""));
        gd.addFileField("camera_gain_map", Prefs.get("maliang.camera_gain_map", ""));
        gd.addStringField("camera_origin", Prefs.get("maliang.camera_origin", "0,0"), 10);
    }

    /** The sCMOS map files of the camera fields and the stack's origin on the sensor (paths empty when not used). */
    public static final class CameraMapFiles {
        public String offset = "", variance = "", gain = "";
        public int originX, originY;

        public boolean any() { return !offset.isEmpty() || !variance.isEmpty() || !gain.isEmpty(); }

        /** Sets the maps on a localizer (the engine reads and checks the files; errors name the map and file or pixel). */
        public void applyTo(MaLiang.Localizer loc) {
            if (any()) loc.setCameraMapFiles(offset, variance, gain, originX, originY);
        }
    }

    /** Reads the map fields of {@link #addCamera} (call after {@link #readCamera}, before other string fields). */
    static CameraMapFiles readCameraMaps(GenericDialog gd) {
        CameraMapFiles m = new CameraMapFiles();
        m.offset = gd.getNextString().trim();
        m.variance = gd.getNextString().trim();
        m.gain = gd.getNextString().trim();
        String origin = gd.getNextString().trim();
        String[] xy = origin.isEmpty() ? new String[] { "0", "0" } : origin.split(",");
        try {
            if (xy.length != 2) throw new NumberFormatException();
            m.originX = Integer.parseInt(xy[0].trim());
            m.originY = Integer.parseInt(xy[1].trim());
            if (m.originX < 0 || m.originY < 0) throw new NumberFormatException();
        } catch (NumberFormatException e) {
            throw new UserError("camera_origin: '" + origin + "' is not X,Y (two whole numbers >= 0, sensor pixels)");
        }
        String[][] files = { { "camera_offset_map", m.offset }, { "camera_variance_map", m.variance }, { "camera_gain_map", m.gain } };
        for (String[] f : files)
            if (!f[1].isEmpty() && !new File(f[1]).isFile()) throw new UserError(f[0] + ": " + f[1] + " does not exist");
        if (!m.any() && (m.originX != 0 || m.originY != 0))
            throw new UserError("camera_origin: given without a camera map (camera_offset_map, camera_variance_map, camera_gain_map)");
        return m;
    }

    static void saveCameraMaps(CameraMapFiles m) {
        Prefs.set("maliang.camera_offset_map", m.offset);
        Prefs.set("maliang.camera_variance_map", m.variance);
        Prefs.set("maliang.camera_gain_map", m.gain);
        Prefs.set("maliang.camera_origin", m.originX + "," + m.originY);
    }

    static void readCamera(GenericDialog gd, MaLiang.Settings s) {
        s.offset_adu = number(gd, "offset");
        s.photons_per_adu = number(gd, "photons_per_adu");
        s.em_gain = number(gd, "em_gain");
        s.pixel_size_nm = number(gd, "pixel_size");
    }

    static void saveCamera(MaLiang.Settings s) {
        setPref("offset", s.offset_adu);
        setPref("photons_per_adu", s.photons_per_adu);
        setPref("em_gain", s.em_gain);
        setPref("pixel_size", s.pixel_size_nm);
    }

    static double number(GenericDialog gd, String name) {
        double v = gd.getNextNumber();
        if (gd.invalidNumber()) throw new UserError(name + ": not a number (" + gd.getErrorMessage() + ")");
        return v;
    }

    static int integer(GenericDialog gd, String name) {
        double v = number(gd, name);
        if (v != Math.rint(v)) throw new UserError(name + ": must be a whole number, got " + v);
        return (int) v;
    }

    static boolean interactive() { return Macro.getOptions() == null; }

    // ---------------------------------------------------------------------------------------------------------------
    // Localize

    void localize() {
        requireLibrary();
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) throw new UserError("Localize needs an image stack: no image is open.");
        checkImage(imp);

        MaLiang.Settings s = new MaLiang.Settings();
        GenericDialog gd = new GenericDialog("MaLiang Localize");
        addCamera(gd);
        gd.addMessage("Detection and fit");
        gd.addNumericField("psf_sigma", pref("psf_sigma", s.psf_sigma_px), 3, 8, "px");
        gd.addChoice("filter", FILTERS, Prefs.get("maliang.filter", FILTERS[s.filter]));
        gd.addNumericField("threshold", pref("threshold", s.threshold), 2, 8, "x noise");
        gd.addNumericField("roi", pref("roi", s.roi_size), 0, 8, "px (odd)");
        gd.addCheckbox("fixed_sigma", Prefs.get("maliang.fixed_sigma", false));
        gd.addNumericField("iterations", pref("iterations", s.iterations), 0, 8, "max");
        gd.addChoice("backend", BACKENDS, Prefs.get("maliang.backend", "auto"));
        // Crowded frames (issue 17). Checkboxes carry the CLI's flag names, so that a macro without them (absent = off
        // in a macro) keeps the engine's defaults; the p-value is a text field because a numeric field would show
        // 1e-6 as 0.00.
        gd.addMessage("Crowded frames and detection");
        gd.addCheckbox("single_emitter", Prefs.get("maliang.single_emitter", false));
        gd.addNumericField("max_emitters", pref("max_emitters", s.max_emitters), 0, 8, "per joint fit (1-12)");
        gd.addStringField("multi_p_value", Prefs.get("maliang.multi_p_value", String.valueOf(s.multi_p_value)), 10);
        gd.addCheckbox("spread_threshold", Prefs.get("maliang.spread_threshold", false));
        gd.addCheckbox("no_noise_clip", Prefs.get("maliang.no_noise_clip", false));
        gd.addCheckbox("drop_edge", Prefs.get("maliang.drop_edge", false));
        gd.addNumericField("min_snr", pref("min_snr", s.min_snr), 2, 8, "photons / uncertainty (0 keeps all)");
        gd.addCheckbox("estimate_psf_sigma", Prefs.get("maliang.estimate_psf_sigma", false));
        gd.addCheckbox("residual_search", Prefs.get("maliang.residual_search", false));
        gd.addMessage("3D astigmatism: z calibration file (Calibrate 3D's YAML, ThunderSTORM's or Picasso's; empty = 2D)");
        // A macro that does not name calibration= is 2D whatever the dialog last held (macros recorded before 3D stay 2D).
        gd.addFileField("calibration", interactive() ? Prefs.get("maliang.calibration", "") : "");
        gd.addMessage("Output");
        gd.addNumericField("magnification", pref("magnification", 10), 1, 8, "render px per camera px");
        gd.addFileField("export", "");
        gd.showDialog();
        if (gd.wasCanceled()) return;

        readCamera(gd, s);
        CameraMapFiles maps = readCameraMaps(gd);
        s.psf_sigma_px = number(gd, "psf_sigma");
        s.threshold = number(gd, "threshold");
        s.roi_size = integer(gd, "roi");
        s.iterations = integer(gd, "iterations");
        s.maxEmitters(integer(gd, "max_emitters"));
        s.minSnr(number(gd, "min_snr"));
        double magnification = number(gd, "magnification");
        s.filter(MaLiang.Filter.parse(gd.getNextChoice()));
        s.backend(MaLiang.Backend.parse(gd.getNextChoice()));
        s.fixedSigma(gd.getNextBoolean());
        s.singleEmitter(gd.getNextBoolean());
        s.spreadThreshold(gd.getNextBoolean());
        s.noNoiseClip(gd.getNextBoolean());
        s.dropEdge(gd.getNextBoolean());
        s.estimatePsfSigma(gd.getNextBoolean());
        s.residualSearch(gd.getNextBoolean());
        String pValue = gd.getNextString().trim();
        try {
            s.multiPValue(Double.parseDouble(pValue));
        } catch (NumberFormatException e) {
            throw new UserError("multi_p_value: '" + pValue + "' is not a number (a p-value in (0, 1), e.g. 1e-6)");
        }
        // String fields are read in the order they were added: multi_p_value, then calibration, then export.
        String calibration = gd.getNextString().trim();
        if (!calibration.isEmpty() && !new File(calibration).isFile()) throw new UserError("calibration: " + calibration + ": no such file");
        String export = gd.getNextString().trim();
        s.validate();
        if (!(magnification > 0 && magnification <= 100)) throw new UserError("magnification: must be in (0, 100], got " + magnification);
        if (!export.isEmpty()) checkWritable(export);
        if (interactive()) {
            saveCamera(s);
            saveCameraMaps(maps);
            setPref("psf_sigma", s.psf_sigma_px); setPref("threshold", s.threshold); setPref("roi", s.roi_size);
            setPref("iterations", s.iterations); setPref("magnification", magnification);
            Prefs.set("maliang.filter", s.getFilter().key()); Prefs.set("maliang.backend", s.getBackend().key());
            Prefs.set("maliang.fixed_sigma", s.fixed_sigma != 0);
            Prefs.set("maliang.single_emitter", s.multi_emitter == 0); setPref("max_emitters", s.max_emitters);
            Prefs.set("maliang.multi_p_value", String.valueOf(s.multi_p_value));
            Prefs.set("maliang.spread_threshold", s.camera_noise == 0); Prefs.set("maliang.no_noise_clip", s.noise_clip == 0);
            Prefs.set("maliang.drop_edge", s.drop_edge != 0); setPref("min_snr", s.min_snr);
            Prefs.set("maliang.estimate_psf_sigma", s.estimate_psf_sigma != 0);
            Prefs.set("maliang.residual_search", s.residual_search != 0);
            Prefs.set("maliang.calibration", calibration);
        }

        String dim = timeDimension(imp);
        if (dim != null)
            IJ.log("MaLiang: " + imp.getTitle() + " (channels " + imp.getNChannels() + ", slices " + imp.getNSlices() + ", frames "
                    + imp.getNFrames() + "): localizing its " + imp.getStackSize() + " " + dim + " as the time series");
        MaLiang.Localization[] locs = localizeStack(imp, s, maps, calibration, true);
        if (locs == null) return; // cancelled
        // the run's counts in the Log (the status bar is overwritten soon): groups by size when emitters were fitted jointly
        IJ.log("MaLiang: " + imp.getTitle() + ": " + Session.summary);
        IJ.log("MaLiang: the same from the command line: maliang localize STACK.tif " + Session.engineSettings.toCli());
        Session.locs = locs;
        Session.pixelSizeNm = s.pixel_size_nm;
        Session.width = imp.getWidth();
        Session.height = imp.getHeight();
        Session.source = imp.getTitle();
        if (!export.isEmpty()) {
            MaLiang.writeCsv(export, locs, s.pixel_size_nm);
            IJ.log("MaLiang: wrote " + locs.length + " localizations to " + export);
        }
        showTable(locs, s.pixel_size_nm);
        showRender(locs, imp.getWidth(), imp.getHeight(), magnification, MaLiang.RENDER_GAUSSIAN, 0, s.pixel_size_nm, imp.getTitle());
    }

    static void checkImage(ImagePlus imp) {
        int type = imp.getType();
        if (type == ImagePlus.COLOR_RGB)
            throw new UserError(imp.getTitle() + " is an RGB colour image: MaLiang localizes 8, 16 or 32-bit grayscale stacks (Image > Type > 16-bit).");
        if (type != ImagePlus.GRAY8 && type != ImagePlus.GRAY16 && type != ImagePlus.GRAY32 && type != ImagePlus.COLOR_256)
            throw new UserError(imp.getTitle() + ": unsupported image type " + type);
        int c = imp.getNChannels(), z = imp.getNSlices(), t = imp.getNFrames();
        if ((c > 1 ? 1 : 0) + (z > 1 ? 1 : 0) + (t > 1 ? 1 : 0) >= 2)
            throw new UserError(imp.getTitle() + " is a hyperstack of " + c + " channels x " + z + " slices x " + t
                    + " frames: MaLiang localizes one time series. Keep one channel and one slice with Image > Hyperstacks >"
                    + " Reduce Dimensionality... (check \"frames\" only), or Image > Hyperstacks > Make Subset..., then run Localize on the result.");
    }

    /**
     * Which dimension of {@code imp} Localize takes as the time series: the one of channels, slices and frames above 1
     * (checkImage refuses two or more). A stack written by {@code tifffile.imwrite(path, stack, imagej=True)} without axes
     * opens as channels, a plain TIFF stack as slices; both are movies here. Null for a single image.
     */
    static String timeDimension(ImagePlus imp) {
        if (imp.getNChannels() > 1) return "channels";
        if (imp.getNSlices() > 1) return "slices";
        if (imp.getNFrames() > 1) return "frames";
        return null;
    }

    static void checkWritable(String path) {
        File f = new File(path).getAbsoluteFile();
        File dir = f.getParentFile();
        if (dir == null || !dir.isDirectory()) throw new UserError("export: folder " + dir + " does not exist");
        if (f.isDirectory()) throw new UserError("export: " + path + " is a folder, not a file name");
    }

    /** Frames per push: the engine fits the frames of one push in parallel (a chunk of its own size). */
    static int chunkFrames() { return Math.max(8, 4 * Runtime.getRuntime().availableProcessors()); }

    /**
     * Localizes every slice of {@code imp} (a VirtualStack is read one frame at a time). Each frame is copied once into
     * the localizer's native staging buffer and pushed in chunks; Esc stops between chunks. Returns null when cancelled.
     * A signed 16-bit image (stored by ImageJ as value + 32768) is localized with offset + 32768, said in the Log.
     */
    public static MaLiang.Localization[] localizeStack(ImagePlus imp, MaLiang.Settings s, boolean showProgress) {
        return localizeStack(imp, s, null, showProgress);
    }

    /** As {@link #localizeStack(ImagePlus, MaLiang.Settings, boolean)} with sCMOS camera maps (null: none). */
    public static MaLiang.Localization[] localizeStack(ImagePlus imp, MaLiang.Settings s, CameraMapFiles maps, boolean showProgress) {
        return localizeStack(imp, s, maps, null, showProgress);
    }

    /** As above with a z calibration file (null or empty: 2D): 3D astigmatic fitting, z in the results. */
    public static MaLiang.Localization[] localizeStack(ImagePlus imp, MaLiang.Settings s, CameraMapFiles maps, String calibration, boolean showProgress) {
        ImageStack stack = imp.getStack();
        int n = stack.getSize(), w = stack.getWidth(), h = stack.getHeight();
        if (w < s.roi_size || h < s.roi_size)
            throw new UserError(imp.getTitle() + ": frames of " + w + "x" + h + " px are smaller than the " + s.roi_size + "x" + s.roi_size + " ROI");
        Calibration cal = imp.getCalibration();
        if (imp.getBitDepth() == 16 && cal != null && cal.isSigned16Bit()) {
            // ImageJ keeps a signed 16-bit image as unsigned raw values = value + 32768 (and calibrates them back): the
            // engine reads the raw values, so the camera offset moves by the same 32768.
            MaLiang.Settings signed = s.clone();
            signed.offset_adu = s.offset_adu + 32768;
            IJ.log("MaLiang: " + imp.getTitle() + " is signed 16-bit, stored as value + 32768: localizing the stored values"
                    + " with offset " + s.offset_adu + " + 32768 = " + signed.offset_adu + " ADU");
            s = signed;
        }
        int chunk = Math.min(chunkFrames(), n);
        long t0 = System.nanoTime();
        MaLiang.Localizer loc = new MaLiang.Localizer(s, calibration);
        try {
            if (maps != null) maps.applyTo(loc);
            Session.engineSettings = loc.engineSettings();
            Object[] frames = new Object[chunk];
            IJ.resetEscape();
            // The engine estimates the PSF width from the first push's frames (at most 50, StackCalibration.MaxFrames):
            // with estimate_psf_sigma the first push holds that many, so Fiji sees the frames the CLI sees.
            int firstChunk = s.estimate_psf_sigma != 0 ? Math.min(Math.max(chunk, 50), n) : chunk;
            for (int first = 1, step = firstChunk; first <= n; first += step, step = chunk) {
                int m = Math.min(step, n - first + 1);
                Object[] batch = m == frames.length ? frames : new Object[m];
                for (int i = 0; i < m; i++) {
                    Object p = stack.getPixels(first + i); // VirtualStack: reads this one frame
                    if (p == null) throw new UserError(imp.getTitle() + ": frame " + (first + i) + " could not be read");
                    if (p instanceof int[]) throw new UserError(imp.getTitle() + ": frame " + (first + i) + " is RGB; convert the stack to 16-bit");
                    batch[i] = p;
                }
                loc.pushFrames(batch, w, h);
                if (showProgress) {
                    IJ.showProgress(first + m - 1, n);
                    IJ.showStatus(progressText(first + m - 1, n, (System.nanoTime() - t0) / 1e9));
                }
                if (IJ.escapePressed()) {
                    IJ.resetEscape();
                    IJ.showProgress(1.0);
                    IJ.showStatus("MaLiang: cancelled after " + (first + m - 1) + " of " + n + " frames");
                    if (!interactive()) throw new UserError("cancelled (Esc) after " + (first + m - 1) + " of " + n + " frames");
                    return null;
                }
            }
            MaLiang.Localization[] locs = loc.results();
            Session.summary = loc.summary();
            Session.localizeSeconds = (System.nanoTime() - t0) / 1e9;
            if (showProgress) {
                IJ.showProgress(1.0);
                IJ.showStatus("MaLiang: " + Session.summary);
            }
            return locs;
        } finally {
            loc.close();
        }
    }

    /** The status bar during Localize: "MaLiang: frame 1200/4000, 1300 frames/s, 0:03 left (Esc cancels)", as the CLI's line. */
    static String progressText(int done, int total, double seconds) {
        double fps = seconds > 0 ? done / seconds : 0;
        String left = "?";
        if (fps > 0) {
            long sLeft = (long) Math.ceil((total - done) / fps);
            left = sLeft >= 3600 ? String.format("%d:%02d:%02d", sLeft / 3600, sLeft / 60 % 60, sLeft % 60)
                    : String.format("%d:%02d", sLeft / 60, sLeft % 60);
        }
        return "MaLiang: frame " + done + "/" + total + ", " + Math.round(fps) + " frames/s, " + left + " left (Esc cancels)";
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Table and render

    /** Fills (and shows) the "MaLiang Results" table: DESIGN.md columns, nm, 1-based frames. */
    public static ResultsTable showTable(MaLiang.Localization[] locs, double px) {
        ResultsTable rt = toTable(locs, px);
        rt.show(TABLE);
        return rt;
    }

    public static ResultsTable toTable(MaLiang.Localization[] locs, double px) {
        ResultsTable rt = new ResultsTable(Integer.valueOf(locs.length));
        rt.setPrecision(4);
        rt.showRowNumbers(false);
        double[][] cols = new double[COLUMNS.length][locs.length];
        for (int i = 0; i < locs.length; i++) {
            MaLiang.Localization l = locs[i];
            double[] v = {i + 1, l.frame + 1, l.x * px, l.y * px, l.sigma * px, l.photons, l.background,
                    Math.sqrt(Math.max(0, l.background)),
                    Math.sqrt((l.uncertaintyX * (double) l.uncertaintyX + l.uncertaintyY * (double) l.uncertaintyY) / 2) * px,
                    l.uncertaintyX * px, l.uncertaintyY * px, l.uncertaintyPhotons, l.uncertaintyBackground,
                    l.uncertaintySigma * px, l.loglik, l.llr, l.iterations, l.detections, Math.max(1, l.fittedTogether)};
            for (int c = 0; c < v.length; c++) cols[c][i] = v[c];
        }
        for (int c = 0; c < COLUMNS.length; c++) rt.setValues(COLUMNS[c], cols[c]);
        boolean threeD = false;
        for (MaLiang.Localization l : locs) threeD |= l.is3d();
        if (threeD) { // 3D: ThunderSTORM's z columns (nm)
            double[] z = new double[locs.length], uz = new double[locs.length];
            for (int i = 0; i < locs.length; i++) { z[i] = locs[i].z; uz[i] = locs[i].uncertaintyZ; }
            rt.setValues("z [nm]", z);
            rt.setValues("uncertainty_z [nm]", uz);
        }
        return rt;
    }

    /** Renders and shows a 32-bit image calibrated in nm (pixelWidth = pixel size / magnification). */
    public static ImagePlus showRender(MaLiang.Localization[] locs, int w, int h, double mag, int method, double sigma,
                                       double px, String source) {
        ImagePlus out = renderImage(locs, w, h, mag, method, sigma, px, source);
        out.show();
        return out;
    }

    public static ImagePlus renderImage(MaLiang.Localization[] locs, int w, int h, double mag, int method, double sigma,
                                        double px, String source) {
        MaLiang.Image img = MaLiang.render(locs, w, h, mag, method, sigma, px);
        ImagePlus out = new ImagePlus(source + " - MaLiang render", new FloatProcessor(img.width, img.height, img.pixels));
        Calibration cal = out.getCalibration();
        cal.pixelWidth = px / mag;
        cal.pixelHeight = px / mag;
        cal.setUnit("nm");
        out.setProperty("Info", "MaLiang render: " + locs.length + " localizations, magnification " + mag + ", "
                + METHODS[method] + (sigma > 0 ? ", sigma " + sigma + " px" : ", sigma = uncertainty") + "\n");
        out.getProcessor().resetMinAndMax();
        return out;
    }

    static MaLiang.Localization[] requireSession(String command) {
        MaLiang.Localization[] locs = Session.locs;
        if (locs == null) throw new UserError(command + " needs localizations: run Plugins > MaLiang > Localize or Import CSV first.");
        return locs;
    }

    void render() {
        requireLibrary();
        MaLiang.Localization[] locs = requireSession("Render");
        GenericDialog gd = new GenericDialog("MaLiang Render");
        gd.addNumericField("magnification", pref("magnification", 10), 1, 8, "render px per camera px");
        gd.addChoice("method", METHODS, METHODS[0]);
        gd.addNumericField("sigma", 0, 3, 8, "px (0 = each localization's uncertainty)");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        double mag = number(gd, "magnification");
        double sigma = number(gd, "sigma");
        int method = gd.getNextChoiceIndex();
        showRender(locs, Session.width, Session.height, mag, method, sigma, Session.pixelSizeNm, Session.source);
    }

    void exportCsv() {
        requireLibrary();
        MaLiang.Localization[] locs = requireSession("Export CSV");
        GenericDialog gd = new GenericDialog("MaLiang Export CSV");
        String base = Session.source.replaceAll("\\.(tif|tiff|csv)$", "");
        gd.addFileField("path", new File(IJ.getDirectory("home") == null ? "." : IJ.getDirectory("home"), base + ".csv").getPath());
        gd.showDialog();
        if (gd.wasCanceled()) return;
        String path = gd.getNextString().trim();
        if (path.isEmpty()) throw new UserError("path: give the CSV file to write");
        checkWritable(path);
        MaLiang.writeCsv(path, locs, Session.pixelSizeNm);
        IJ.showStatus("MaLiang: wrote " + locs.length + " localizations to " + path);
    }

    void importCsv() {
        requireLibrary();
        GenericDialog gd = new GenericDialog("MaLiang Import CSV");
        gd.addFileField("path", "");
        gd.addNumericField("pixel_size", pref("pixel_size", 100), 2, 8, "nm");
        gd.addNumericField("width", 0, 0, 8, "camera px (0 = from the data)");
        gd.addNumericField("height", 0, 0, 8, "camera px (0 = from the data)");
        gd.showDialog();
        if (gd.wasCanceled()) return;
        String path = gd.getNextString().trim();
        double px = number(gd, "pixel_size");
        int w = integer(gd, "width"), h = integer(gd, "height");
        if (path.isEmpty()) throw new UserError("path: give the CSV file to read");
        if (!new File(path).isFile()) throw new UserError("path: " + path + ": no such file");
        if (w < 0 || h < 0) throw new UserError("width/height: must be >= 0");
        MaLiang.Localization[] locs = MaLiang.readCsv(path, px);
        if (w == 0 || h == 0) {
            double mx = 1, my = 1;
            for (MaLiang.Localization l : locs) { if (l.x > mx) mx = l.x; if (l.y > my) my = l.y; }
            if (w == 0) w = (int) Math.ceil(mx);
            if (h == 0) h = (int) Math.ceil(my);
        }
        Session.locs = locs;
        Session.pixelSizeNm = px;
        Session.width = w;
        Session.height = h;
        Session.source = new File(path).getName();
        showTable(locs, px);
        IJ.showStatus("MaLiang: read " + locs.length + " localizations from " + path);
    }

    void camera() {
        requireJna(); // MaLiang.Settings is a JNA Structure
        GenericDialog gd = new GenericDialog("MaLiang Camera Setup");
        addCamera(gd);
        gd.showDialog();
        if (gd.wasCanceled()) return;
        MaLiang.Settings s = new MaLiang.Settings();
        readCamera(gd, s);
        CameraMapFiles maps = readCameraMaps(gd);
        s.validate();
        if (maps.any()) {
            // Check the maps now (the engine reads them): a bad file or pixel is named here, not at the next Localize.
            MaLiang.Localizer probe = new MaLiang.Localizer(s);
            try { maps.applyTo(probe); } finally { probe.close(); }
        }
        saveCamera(s);
        saveCameraMaps(maps);
        Prefs.savePreferences();
    }

    void about() {
        String v = !jnaPresent() ? "not loaded: " + JNA_MISSING
                : MaLiang.isAvailable() ? MaLiang.version() : "not loaded: " + MaLiang.loadError();
        if (jnaPresent()) IJ.log(MaLiang.engine()); // the one line naming the engine loaded, or why none is
        IJ.showMessage("About MaLiang", "MaLiang single-molecule localization (Poisson MLE)\nlibmaliang " + v
                + (jnaPresent() && MaLiang.isAvailable() ? "\n" + MaLiang.engine() : "")
                + "\nQuan, Li et al., Opt. Express 18(11) 2010");
    }
}
