package org.maliang;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import org.maliang.NativeEngine.Api;

/**
 * Java binding of libmaliang.so (the C ABI in src/Native/maliang.h), by JNA direct mapping.
 *
 * <p>Usable from any JVM code, ImageJ or not. Conventions are those of the C ABI: x is the column, y the row, in camera
 * pixels, origin at the top-left corner of the top-left pixel; photons; frames 0-based in {@link Localization#frame}
 * (the ImageJ table and the CSV are 1-based). Every argument is checked here before any native call and a mistake is an
 * {@link IllegalArgumentException} naming the parameter; a failure reported by the library is a {@link MaLiangException}
 * carrying ml_last_error().</p>
 *
 * <p>About copies: JNA direct mapping hands a Java primitive array to C with JNI's Get&lt;Type&gt;ArrayElements, which on
 * HotSpot copies the array in and (release mode 0) back out. So {@link Localizer} copies each frame exactly once, into a
 * reusable native staging buffer, and passes that by pointer (ml_last_push_address proves the engine reads it in place);
 * {@link Localizer#push(Pointer, int, int, int, PixelType)} takes native memory with no copy at all.</p>
 */
public final class MaLiang {
    private MaLiang() { }

    /** The ABI version this binding was written against (ML_ABI_VERSION). */
    public static final int ABI_VERSION = 2;
    /** sizeof(ml_localization). */
    public static final int LOCALIZATION_BYTES = 76;
    /** sizeof(ml_settings): 96 bytes, then issue 17's fields and residual_search appended, 4 bytes of tail padding
     * (ml_struct_sizes must agree). */
    public static final int SETTINGS_BYTES = 144;
    /** ML_MAX_GROUP_SIZE: the most emitters one joint fit holds (the upper bound of max_emitters). */
    public static final int MAX_GROUP_SIZE = 12;
    /** sizeof(ml_summary). */
    static final int SUMMARY_BYTES = 7 * 8 + 5 * 8 + 2 * 4 + 64;

    public static final int ML_OK = 0, ML_ERR_ARGUMENT = 1, ML_ERR_INPUT = 2, ML_ERR_CANCELLED = 3, ML_ERR_BACKEND = 4,
            ML_ERR_INTERNAL = 5, ML_ERR_IO = 6;

    /**
     * One line naming the engine loaded, e.g. "MaLiang 0.1.0, NativeAOT engine for linux-x86-64: /tmp/jna-1/jna2.tmp"
     * or "MaLiang 0.1.0, .NET (hostfxr) engine for win32-x86-64: C:\...\maliang.dll"; the load error when none is.
     */
    public static String engine() { return NativeEngine.loaded ? NativeEngine.engine : "MaLiang: no engine loaded: " + NativeEngine.loadError; }

    /** True when libmaliang.so is loaded and speaks this ABI version. */
    public static boolean isAvailable() { return NativeEngine.loaded; }

    /** Why the library is not available ({@code null} when it is). */
    public static String loadError() { return NativeEngine.loaded ? null : NativeEngine.loadError; }

    /** Throws {@link IllegalStateException} with the reason when the library is not available. */
    public static void requireLibrary() {
        if (!NativeEngine.loaded) throw new IllegalStateException(NativeEngine.loadError);
    }

    /** The library's version string, e.g. "0.1.0". */
    public static String version() {
        requireLibrary();
        return Api.ml_version();
    }

    /** Throws a {@link MaLiangException} for a non-zero status, with ml_last_error() of this thread. */
    static void check(int status, String what) { NativeEngine.check(status, what); }

    /** A NUL-terminated UTF-8 copy of {@code s} for the C functions. */
    static byte[] cString(String s) { return NativeEngine.cString(s); }

    /** Memory.close() exists (JNA 5.12 and later). */
    private static final boolean MEMORY_CLOSE = hasMemoryClose();

    private static boolean hasMemoryClose() {
        try {
            Memory.class.getMethod("close");
            return true;
        } catch (Throwable t) { // NoSuchMethodException with JNA < 5.12
            return false;
        }
    }

    /**
     * Frees native memory now (Memory.close(), JNA 5.12 and later). With an older JNA (Fiji and Micro-Manager have
     * shipped JNA 4.x and 5.x before 5.12) Memory has no close(): it is not called, a NoSuchMethodError is caught, and the
     * memory is left to the garbage collector (Memory's finalizer or cleaner frees it). Every Memory of this binding is
     * freed through here. Null is fine.
     */
    public static void free(Memory m) {
        if (m == null || !MEMORY_CLOSE) return;
        try {
            m.close();
        } catch (NoSuchMethodError e) {
            // JNA < 5.12 after all (a class loader mixing JNA versions): the GC frees it
        }
    }

    /** False when this JNA has no Memory.close() (JNA &lt; 5.12): {@link #free(Memory)} then leaves memory to the GC. */
    public static boolean canFreeMemoryNow() { return MEMORY_CLOSE; }


    // ---------------------------------------------------------------------------------------------------------------
    // Enumerations

    /** ml_pixel_type. */
    public enum PixelType {
        UINT8(0, 1), UINT16(1, 2), UINT32(2, 4), FLOAT32(3, 4), INT16(4, 2), INT32(5, 4);
        public final int code, bytes;
        PixelType(int code, int bytes) { this.code = code; this.bytes = bytes; }
    }

    /** ml_filter; {@link #key()} is the CLI / macro name. */
    public enum Filter {
        MALIANG, WAVELET, NONE;
        public String key() { return name().toLowerCase(); }
        public static Filter parse(String s) { return parseEnum(Filter.class, "filter", s); }
    }

    /** ml_backend; {@link #key()} is the CLI / macro name. */
    public enum Backend {
        AUTO, CPU, OPENCL, CUDA;
        public String key() { return name().toLowerCase(); }
        public static Backend parse(String s) { return parseEnum(Backend.class, "backend", s); }
    }

    static <E extends Enum<E>> E parseEnum(Class<E> type, String name, String s) {
        if (s != null) {
            for (E e : type.getEnumConstants()) if (e.name().equalsIgnoreCase(s.trim())) return e;
        }
        StringBuilder ok = new StringBuilder();
        for (E e : type.getEnumConstants()) ok.append(ok.length() == 0 ? "" : "|").append(e.name().toLowerCase());
        throw new IllegalArgumentException(name + ": '" + s + "' is not one of " + ok);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Settings

    /**
     * ml_settings, field for field (a JNA Structure). Every option of {@code maliang localize}; the constructor fills the
     * library's defaults (ml_default_settings), or the documented ones if the library is missing.
     */
    public static final class Settings extends Structure implements Cloneable {
        public int struct_size;
        public int roi_size;
        public double pixel_size_nm;
        public double psf_sigma_px;
        public double offset_adu;
        public double photons_per_adu;
        public double em_gain;
        public double threshold;
        public double tolerance;
        public int filter;
        public int fixed_sigma;
        public int iterations;
        public int use_tolerance;
        public int reject_overlapping;
        public int backend;
        public int threads;
        public int reserved;
        // Appended with issue 17 (maliang.h order; JNA's default alignment gives the C offsets 96..135).
        /** 1 = fit close emitters jointly (default); 0 = {@code --single-emitter}. */
        public int multi_emitter;
        /** Most emitters in one joint fit, 1..12 (default 8). */
        public int max_emitters;
        /** p-value below which an emitter joins a group, (0, 1) (default 1e-6). */
        public double multi_p_value;
        /** 1 = detect against the camera model's noise (default); 0 = {@code --spread-threshold}. */
        public int camera_noise;
        /** 1 = drop candidates whose ROI crosses the frame edge ({@code --drop-edge}); default 0. */
        public int drop_edge;
        /** Keep a fit when photons &gt;= min_snr x sqrt(CRLB), &gt;= 0 (default 5). */
        public double min_snr;
        /** 1 = one sigma-clipping step in the detection noise (default); 0 = {@code --no-noise-clip}. */
        public int noise_clip;
        /** 1 = estimate the PSF sigma from the data (psf_sigma_px is then the fallback); default 0. */
        public int estimate_psf_sigma;
        // Appended after issue 17: offset 136, then 4 bytes of tail padding (JNA pads to the doubles' 8, as C does).
        /** 1 = search the frame minus every fitted emitter for missed emitters ({@code --residual-search}); default 0. */
        public int residual_search;

        private static final List<String> ORDER = Arrays.asList("struct_size", "roi_size", "pixel_size_nm",
                "psf_sigma_px", "offset_adu", "photons_per_adu", "em_gain", "threshold", "tolerance", "filter",
                "fixed_sigma", "iterations", "use_tolerance", "reject_overlapping", "backend", "threads", "reserved",
                "multi_emitter", "max_emitters", "multi_p_value", "camera_noise", "drop_edge", "min_snr", "noise_clip",
                "estimate_psf_sigma", "residual_search");

        public Settings() {
            super(ALIGN_DEFAULT);
            if (isAvailable()) {
                check(Api.ml_default_settings(getPointer()), "ml_default_settings");
                read();
            } else {
                roi_size = 7; pixel_size_nm = 100; psf_sigma_px = 1.3; offset_adu = 0; photons_per_adu = 1; em_gain = 1;
                threshold = 5; tolerance = 1e-4; filter = 0; fixed_sigma = 0; iterations = 20; use_tolerance = 1;
                reject_overlapping = 0; backend = 0; threads = 0;
                multi_emitter = 1; max_emitters = 8; multi_p_value = 1e-6; camera_noise = 1; drop_edge = 0; min_snr = 5;
                noise_clip = 1; estimate_psf_sigma = 0; residual_search = 0;
            }
            struct_size = size();
        }

        @Override protected List<String> getFieldOrder() { return ORDER; }

        // Fluent setters with the CLI's option names.
        public Settings pixelSize(double nm) { pixel_size_nm = nm; return this; }
        public Settings psfSigma(double px) { psf_sigma_px = px; return this; }
        public Settings offset(double adu) { offset_adu = adu; return this; }
        public Settings photonsPerAdu(double v) { photons_per_adu = v; return this; }
        public Settings emGain(double v) { em_gain = v; return this; }
        public Settings threshold(double v) { threshold = v; return this; }
        public Settings roi(int px) { roi_size = px; return this; }
        public Settings filter(Filter f) { filter = f.ordinal(); return this; }
        public Settings fixedSigma(boolean b) { fixed_sigma = b ? 1 : 0; return this; }
        public Settings iterations(int n) { iterations = n; return this; }
        public Settings noTolerance(boolean b) { use_tolerance = b ? 0 : 1; return this; }
        public Settings keepOverlapping(boolean b) { reject_overlapping = b ? 0 : 1; return this; }
        public Settings backend(Backend b) { backend = b.ordinal(); return this; }
        public Settings threads(int n) { threads = n; return this; }
        public Settings singleEmitter(boolean b) { multi_emitter = b ? 0 : 1; return this; }
        public Settings maxEmitters(int n) { max_emitters = n; return this; }
        public Settings multiPValue(double p) { multi_p_value = p; return this; }
        public Settings spreadThreshold(boolean b) { camera_noise = b ? 0 : 1; return this; }
        public Settings dropEdge(boolean b) { drop_edge = b ? 1 : 0; return this; }
        public Settings minSnr(double v) { min_snr = v; return this; }
        public Settings noNoiseClip(boolean b) { noise_clip = b ? 0 : 1; return this; }
        /** Estimate the PSF sigma from the data; {@link #psfSigma(double)} is then only the fallback (the CLI estimates
         * when {@code --psf-sigma} is not given). */
        public Settings estimatePsfSigma(boolean b) { estimate_psf_sigma = b ? 1 : 0; return this; }
        /** With the multi-emitter stage: search the frame minus every fitted emitter for emitters the detection missed
         * and fit them with their neighbours, until none is added ({@code --residual-search}; off by default). */
        public Settings residualSearch(boolean b) { residual_search = b ? 1 : 0; return this; }

        public Filter getFilter() { return Filter.values()[filter]; }
        public Backend getBackend() { return Backend.values()[backend]; }

        /** The same checks as the engine (LocalizerSettings.Validate), named by CLI option. */
        public void validate() {
            positive(pixel_size_nm, "pixel_size");
            positive(psf_sigma_px, "psf_sigma");
            if (psf_sigma_px > 20) throw new IllegalArgumentException("psf_sigma: " + psf_sigma_px + " px is not a PSF width (expected 0 < sigma <= 20 px)");
            if (!(offset_adu >= 0) || Double.isInfinite(offset_adu)) throw new IllegalArgumentException("offset: must be a finite number >= 0 ADU, got " + offset_adu);
            positive(photons_per_adu, "photons_per_adu");
            positive(em_gain, "em_gain");
            positive(threshold, "threshold");
            positive(tolerance, "tolerance");
            if (roi_size < 3 || roi_size > 31 || roi_size % 2 == 0) throw new IllegalArgumentException("roi: must be an odd size from 3 to 31 px, got " + roi_size);
            if (filter < 0 || filter > 2) throw new IllegalArgumentException("filter: " + filter + " is not 0 maliang, 1 wavelet, 2 none");
            if (backend < 0 || backend > 3) throw new IllegalArgumentException("backend: " + backend + " is not 0 auto, 1 cpu, 2 opencl, 3 cuda");
            if (iterations < 1 || iterations > 1000) throw new IllegalArgumentException("iterations: must be 1 to 1000, got " + iterations);
            if (threads < 0 || threads > 1024) throw new IllegalArgumentException("threads: must be 0 (all cores) to 1024, got " + threads);
            if (max_emitters < 1 || max_emitters > MAX_GROUP_SIZE)
                throw new IllegalArgumentException("max_emitters: must be 1 to " + MAX_GROUP_SIZE + ", got " + max_emitters);
            if (!(multi_p_value > 0 && multi_p_value < 1)) throw new IllegalArgumentException("multi_p_value: must be a p-value in (0, 1), got " + multi_p_value);
            if (!(min_snr >= 0) || Double.isInfinite(min_snr)) throw new IllegalArgumentException("min_snr: must be a finite number >= 0, got " + min_snr);
            // the public int fields are switches: anything but 0/1 is a mistake the library refuses too
            flag(multi_emitter, "multi_emitter"); flag(camera_noise, "camera_noise"); flag(drop_edge, "drop_edge");
            flag(noise_clip, "noise_clip"); flag(estimate_psf_sigma, "estimate_psf_sigma");
            flag(residual_search, "residual_search");
        }

        private static void flag(int v, String name) {
            if (v != 0 && v != 1) throw new IllegalArgumentException(name + ": must be 0 or 1, got " + v);
        }

        private static void positive(double v, String name) {
            if (Double.isNaN(v)) throw new IllegalArgumentException(name + ": is NaN");
            if (Double.isInfinite(v) || v <= 0) throw new IllegalArgumentException(name + ": must be a finite number > 0, got " + v);
        }

        @Override public Settings clone() {
            Settings s = new Settings();
            for (String f : ORDER) {
                try { Settings.class.getField(f).set(s, Settings.class.getField(f).get(this)); }
                catch (ReflectiveOperationException e) { throw new IllegalStateException(e); }
            }
            return s;
        }

        /** The CLI arguments that give the same settings (for logs and reproducibility). With estimate_psf_sigma set,
         * {@code --psf-sigma} is left out: the CLI estimates the sigma when it is not given. */
        public String toCli() {
            return "--pixel-size " + pixel_size_nm + (estimate_psf_sigma != 0 ? "" : " --psf-sigma " + psf_sigma_px) + " --offset " + offset_adu
                    + " --photons-per-adu " + photons_per_adu + " --em-gain " + em_gain + " --threshold " + threshold
                    + " --roi " + roi_size + " --filter " + getFilter().key() + (fixed_sigma != 0 ? " --fixed-sigma" : "")
                    + " --iterations " + iterations + (use_tolerance == 0 ? " --no-tolerance" : "")
                    + (reject_overlapping != 0 ? " --reject-overlapping" : "") + " --backend " + getBackend().key()
                    + " --threads " + threads
                    + (multi_emitter == 0 ? " --single-emitter" : "") + " --max-emitters " + max_emitters
                    + " --multi-p-value " + multi_p_value + (camera_noise == 0 ? " --spread-threshold" : "")
                    + (drop_edge != 0 ? " --drop-edge" : "") + " --min-snr " + min_snr + (noise_clip == 0 ? " --no-noise-clip" : "")
                    + (residual_search != 0 ? " --residual-search" : "");
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Localizations

    /** One ml_localization (engine units: px, photons, 0-based frame). */
    public static final class Localization {
        public int frame;
        public float x, y, photons, background, sigma;
        public float uncertaintyX, uncertaintyY, uncertaintyPhotons, uncertaintyBackground, uncertaintySigma;
        public float loglik, llr;
        public int iterations, detections, flags;
        /** nm; 0 in 2D results (flags bit 1 marks 3D). */
        public float z, uncertaintyZ;
        public boolean is3d() { return (flags & 2) != 0; }
        /** Emitters fitted jointly with this one, itself included (1: a single-emitter fit). */
        public int fittedTogether = 1;

        public boolean converged() { return (flags & 1) != 0; }

        @Override public String toString() {
            return "Localization[frame=" + frame + " x=" + x + " y=" + y + " photons=" + photons + " bg=" + background
                    + " sigma=" + sigma + "]";
        }

        void read(ByteBuffer b, int at) {
            frame = b.getInt(at);
            x = b.getFloat(at + 4); y = b.getFloat(at + 8);
            photons = b.getFloat(at + 12); background = b.getFloat(at + 16); sigma = b.getFloat(at + 20);
            uncertaintyX = b.getFloat(at + 24); uncertaintyY = b.getFloat(at + 28);
            uncertaintyPhotons = b.getFloat(at + 32); uncertaintyBackground = b.getFloat(at + 36);
            uncertaintySigma = b.getFloat(at + 40);
            loglik = b.getFloat(at + 44); llr = b.getFloat(at + 48);
            iterations = b.getInt(at + 52); detections = b.getInt(at + 56); flags = b.getInt(at + 60);
            z = b.getFloat(at + 64); uncertaintyZ = b.getFloat(at + 68);
            fittedTogether = b.getInt(at + 72);
        }

        void write(ByteBuffer b, int at) {
            b.putInt(at, frame);
            b.putFloat(at + 4, x); b.putFloat(at + 8, y);
            b.putFloat(at + 12, photons); b.putFloat(at + 16, background); b.putFloat(at + 20, sigma);
            b.putFloat(at + 24, uncertaintyX); b.putFloat(at + 28, uncertaintyY);
            b.putFloat(at + 32, uncertaintyPhotons); b.putFloat(at + 36, uncertaintyBackground);
            b.putFloat(at + 40, uncertaintySigma);
            b.putFloat(at + 44, loglik); b.putFloat(at + 48, llr);
            b.putInt(at + 52, iterations); b.putInt(at + 56, detections); b.putInt(at + 60, flags);
            b.putFloat(at + 64, z); b.putFloat(at + 68, uncertaintyZ);
            b.putInt(at + 72, fittedTogether);
        }
    }

    /** Reads {@code n} ml_localization records from native memory. */
    static Localization[] decode(Pointer p, int n) {
        Localization[] out = new Localization[n];
        // getByteBuffer is limited to 2 GiB: go in slices.
        int per = Integer.MAX_VALUE / LOCALIZATION_BYTES;
        for (int start = 0; start < n; start += per) {
            int m = Math.min(per, n - start);
            ByteBuffer b = p.getByteBuffer((long) start * LOCALIZATION_BYTES, (long) m * LOCALIZATION_BYTES).order(ByteOrder.nativeOrder());
            for (int i = 0; i < m; i++) {
                Localization l = new Localization();
                l.read(b, i * LOCALIZATION_BYTES);
                out[start + i] = l;
            }
        }
        return out;
    }

    /** Copies localizations into new native memory (null for none). */
    static Memory encode(Localization[] locs) {
        if (locs.length == 0) return null;
        Memory m = new Memory((long) locs.length * LOCALIZATION_BYTES);
        int per = Integer.MAX_VALUE / LOCALIZATION_BYTES;
        for (int start = 0; start < locs.length; start += per) {
            int n = Math.min(per, locs.length - start);
            ByteBuffer b = m.getByteBuffer((long) start * LOCALIZATION_BYTES, (long) n * LOCALIZATION_BYTES).order(ByteOrder.nativeOrder());
            for (int i = 0; i < n; i++) {
                Localization l = locs[start + i];
                if (l == null) throw new IllegalArgumentException("locs[" + (start + i) + "] is null");
                l.write(b, i * LOCALIZATION_BYTES);
            }
        }
        return m;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // 3D astigmatism

    /** ml_z_calibration (128 bytes): the two width curves sigma(z) = sigma0 sqrt(1 + u^2 + a u^3 + b u^4),
     * u = (z - c) / d (index 0: x, 1: y; px and nm of stage z), the pixel size, the z range, the refractive-index factor. */
    public static final class ZCalibration {
        public static final int BYTES = 128;
        public final double[] sigma0Px = new double[2], a = new double[2], b = new double[2], cNm = new double[2], dNm = new double[2];
        public double pixelSizeNm, zMinNm, zMaxNm, refractiveIndexFactor;
        /** Beads found by {@link MaLiang#calibrateZ} (0 when read from a file) and bead fits rejected. */
        public int beads, rejectedFits;

        /** The width (px) of axis 0 (x) or 1 (y) at stage z (nm). */
        public double sigmaPx(int axis, double zNm) {
            double u = (zNm - cNm[axis]) / dNm[axis];
            return sigma0Px[axis] * Math.sqrt(Math.max(1e-6, 1 + u * u + a[axis] * u * u * u + b[axis] * u * u * u * u));
        }

        static ZCalibration read(Pointer p) {
            ZCalibration c = new ZCalibration();
            c.beads = p.getInt(4);
            for (int i = 0; i < 2; i++) {
                c.sigma0Px[i] = p.getDouble(8 + 8 * i); c.a[i] = p.getDouble(24 + 8 * i); c.b[i] = p.getDouble(40 + 8 * i);
                c.cNm[i] = p.getDouble(56 + 8 * i); c.dNm[i] = p.getDouble(72 + 8 * i);
            }
            c.pixelSizeNm = p.getDouble(88); c.zMinNm = p.getDouble(96); c.zMaxNm = p.getDouble(104);
            c.refractiveIndexFactor = p.getDouble(112); c.rejectedFits = p.getInt(120);
            return c;
        }

        @Override public String toString() {
            return String.format(java.util.Locale.ROOT, "sigma_x: s0 %.3f px, focus %.1f nm, d %.1f nm, A %.3f, B %.3f; sigma_y: s0 %.3f px, focus %.1f nm, d %.1f nm, A %.3f, B %.3f; z %.0f..%.0f nm",
                    sigma0Px[0], cNm[0], dNm[0], a[0], b[0], sigma0Px[1], cNm[1], dNm[1], a[1], b[1], zMinNm, zMaxNm);
        }
    }

    /**
     * Calibrates 3D astigmatism from a bead z-stack TIFF ({@code maliang calibrate-z}): frame k at stage z =
     * zFirstNm + k zStepNm (NaN zFirstNm: z = 0 where the widths are equal), with the settings' camera, filter and
     * threshold. Writes the YAML to outputPath and the plot PNG to plotPath (either may be null); nothing on error.
     */
    public static ZCalibration calibrateZ(String stackPath, Settings settings, double zStepNm, double zFirstNm,
                                          double refractiveIndexFactor, String outputPath, String plotPath) {
        if (stackPath == null || stackPath.isEmpty()) throw new IllegalArgumentException("stack path is null or empty");
        if (settings == null) throw new IllegalArgumentException("settings is null");
        if (!(zStepNm > 0) || Double.isInfinite(zStepNm)) throw new IllegalArgumentException("z_step_nm must be a finite number > 0, got " + zStepNm);
        if (Double.isInfinite(zFirstNm)) throw new IllegalArgumentException("z_first_nm must be finite (NaN: z = 0 where the widths are equal)");
        if (!(refractiveIndexFactor > 0) || Double.isInfinite(refractiveIndexFactor))
            throw new IllegalArgumentException("refractive_index_factor must be a finite number > 0, got " + refractiveIndexFactor);
        settings.validate();
        requireLibrary();
        Settings s = settings.clone();
        s.struct_size = s.size();
        s.write();
        Memory out = new Memory(ZCalibration.BYTES);
        try {
            check(Api.ml_calibrate_z(cString(stackPath), s.getPointer(), zStepNm, zFirstNm, refractiveIndexFactor,
                    outputPath == null || outputPath.isEmpty() ? null : cString(outputPath),
                    plotPath == null || plotPath.isEmpty() ? null : cString(plotPath), out), "ml_calibrate_z");
            return ZCalibration.read(out);
        } finally {
            free(out);
        }
    }

    /** Reads a z calibration file (MaLiang's YAML, ThunderSTORM's or Picasso's); pixelSizeNm where the file has none. */
    public static ZCalibration readZCalibration(String path, double pixelSizeNm) {
        if (path == null || path.isEmpty()) throw new IllegalArgumentException("calibration path is null or empty");
        requireLibrary();
        Memory out = new Memory(ZCalibration.BYTES);
        try {
            check(Api.ml_read_z_calibration(cString(path), pixelSizeNm, out), "ml_read_z_calibration");
            return ZCalibration.read(out);
        } finally {
            free(out);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Summary

    /** ml_summary. */
    public static final class Summary {
        public long frames, localizations, candidates, droppedEdge, droppedOverlap, droppedFitFailed, droppedLeftRoi;
        public double wallSeconds, readSeconds, denoiseSeconds, detectSeconds, fitSeconds;
        public int threads;
        public String backend;
        /** groupsBySize[k] = joint fits of k emitters (k = 1..12; [1] single fits, [0] 0), ml_get_groups_by_size; all 0
         * with the single-emitter pipeline. */
        public long[] groupsBySize = new long[MAX_GROUP_SIZE + 1];

        static Summary read(Pointer p) {
            Summary s = new Summary();
            s.frames = p.getLong(0); s.localizations = p.getLong(8); s.candidates = p.getLong(16);
            s.droppedEdge = p.getLong(24); s.droppedOverlap = p.getLong(32); s.droppedFitFailed = p.getLong(40);
            s.droppedLeftRoi = p.getLong(48);
            s.wallSeconds = p.getDouble(56); s.readSeconds = p.getDouble(64); s.denoiseSeconds = p.getDouble(72);
            s.detectSeconds = p.getDouble(80); s.fitSeconds = p.getDouble(88);
            s.threads = p.getInt(96);
            s.backend = p.getString(104, "UTF-8");
            return s;
        }

        /** ", groups of 1/2/3 emitters: a/b/c" as the CLI's summary, or "" when no group of two or more was fitted. */
        public String groupsText() {
            int last = 0;
            for (int g = 2; g < groupsBySize.length; g++) if (groupsBySize[g] > 0) last = g;
            if (last == 0) return "";
            StringBuilder sizes = new StringBuilder("1"), counts = new StringBuilder().append(groupsBySize[1]);
            for (int g = 2; g <= last; g++) { sizes.append('/').append(g); counts.append('/').append(groupsBySize[g]); }
            return ", groups of " + sizes + " emitters: " + counts;
        }

        @Override public String toString() {
            return String.format("%d frames, %d localizations (%d candidates), %.3f s engine wall time (%.2f ms/frame), %d threads, %s backend",
                    frames, localizations, candidates, wallSeconds, frames == 0 ? 0 : wallSeconds * 1e3 / frames, threads, backend)
                    + groupsText();
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Localizer

    /**
     * A localizer (ml_localizer*). Push frames, read {@link #results()}. Not thread-safe, except {@link #cancel()}, which
     * any thread may call to stop the push in progress, and {@link #close()}, which any number of threads may call at
     * once (one frees the localizer; a close during a push waits for that push to return, as the library refuses to
     * destroy a localizer that is pushing); see {@link LiveLocalizer} for a thread-safe wrapper.
     */
    public static final class Localizer implements AutoCloseable {
        /** The ml_localizer* (an id in the library); null once closed. Read without a lock by cancel(). */
        private final AtomicReference<Pointer> handle = new AtomicReference<Pointer>();
        private final Settings settings;
        private final Memory scratch = new Memory(16);
        private Memory staging;          // native buffer frames are copied into, reused between pushes
        private int width = -1, height = -1;
        private long framesPushed;

        public Localizer(Settings settings) { this(settings, null); }

        /**
         * With a z calibration file (calibrate-z's YAML, ThunderSTORM's or Picasso's; null or "" = 2D): 3D astigmatic
         * fitting, results with {@link Localization#z} and {@link Localization#uncertaintyZ} in nm.
         */
        public Localizer(Settings settings, String calibrationPath) {
            if (settings == null) throw new IllegalArgumentException("settings is null");
            settings.validate();
            boolean threeD = calibrationPath != null && !calibrationPath.isEmpty();
            if (threeD && !new java.io.File(calibrationPath).isFile()) throw new IllegalArgumentException("calibration: " + calibrationPath + ": no such file");
            requireLibrary();
            this.settings = settings.clone();
            this.settings.struct_size = this.settings.size();
            this.settings.write();
            if (threeD) check(Api.ml_create_3d(this.settings.getPointer(), cString(calibrationPath), scratch), "ml_create_3d");
            else check(Api.ml_create(this.settings.getPointer(), scratch), "ml_create");
            handle.set(scratch.getPointer(0));
        }

        /** A copy of the settings this localizer runs with. */
        public Settings settings() { return settings.clone(); }

        /** Frames pushed so far (the next frame's 0-based number). */
        public long framesPushed() { return framesPushed; }

        /** Width and height of the frames pushed so far (-1 before the first push). */
        public int width() { return width; }
        public int height() { return height; }

        private Pointer open() {
            Pointer h = handle.get();
            if (h == null) throw new IllegalStateException("this Localizer is closed");
            return h;
        }

        private int frames(int length, int w, int h, String what) {
            if (w <= 0 || h <= 0) throw new IllegalArgumentException("frame size " + w + "x" + h + " is not positive");
            int roi = settings.roi_size;
            if (w < roi || h < roi) throw new IllegalArgumentException("frames of " + w + "x" + h + " px are smaller than the " + roi + "x" + roi + " ROI");
            long plane = (long) w * h;
            if (length == 0 || length % plane != 0)
                throw new IllegalArgumentException(what + " has " + length + " pixels, not a whole number of " + w + "x" + h + " frames");
            if (width >= 0 && (w != width || h != height))
                throw new IllegalArgumentException("frame size " + w + "x" + h + " differs from the " + width + "x" + height + " frames pushed before");
            return (int) (length / plane);
        }

        private Memory stage(long bytes) {
            if (staging == null || staging.size() < bytes) {
                free(staging);
                staging = new Memory(bytes);
            }
            return staging;
        }

        /** Localizes one or more 16-bit frames (ImageJ's unsigned short[]); pixels.length = w * h * frames. */
        public void push(short[] pixels, int w, int h) { push(pixels, w, h, false); }

        /** As {@link #push(short[], int, int)}; {@code signed} reads the values as int16 instead of uint16. */
        public synchronized void push(short[] pixels, int w, int h, boolean signed) {
            if (pixels == null) throw new IllegalArgumentException("pixels is null");
            int n = frames(pixels.length, w, h, "short[] pixels");
            Memory m = stage(2L * pixels.length);
            m.write(0, pixels, 0, pixels.length);
            pushNative(m, w, h, n, signed ? PixelType.INT16 : PixelType.UINT16);
        }

        /** Localizes one or more 8-bit frames (unsigned byte[]). */
        public synchronized void push(byte[] pixels, int w, int h) {
            if (pixels == null) throw new IllegalArgumentException("pixels is null");
            int n = frames(pixels.length, w, h, "byte[] pixels");
            Memory m = stage(pixels.length);
            m.write(0, pixels, 0, pixels.length);
            pushNative(m, w, h, n, PixelType.UINT8);
        }

        /** Localizes one or more 32-bit float frames. */
        public synchronized void push(float[] pixels, int w, int h) {
            if (pixels == null) throw new IllegalArgumentException("pixels is null");
            int n = frames(pixels.length, w, h, "float[] pixels");
            Memory m = stage(4L * pixels.length);
            m.write(0, pixels, 0, pixels.length);
            pushNative(m, w, h, n, PixelType.FLOAT32);
        }

        /** Localizes frames from an ImageJ pixel array (byte[], short[] or float[]); anything else is refused. */
        public void push(Object pixels, int w, int h) {
            if (pixels instanceof short[]) push((short[]) pixels, w, h);
            else if (pixels instanceof byte[]) push((byte[]) pixels, w, h);
            else if (pixels instanceof float[]) push((float[]) pixels, w, h);
            else if (pixels == null) throw new IllegalArgumentException("pixels is null");
            else if (pixels instanceof int[]) throw new IllegalArgumentException("int[] pixels (RGB colour or 32-bit integer images) cannot be localized: convert to 8, 16 or 32-bit grayscale");
            else throw new IllegalArgumentException("pixels of type " + pixels.getClass().getSimpleName() + " are not byte[], short[] or float[]");
        }

        /** Zero-copy: localizes {@code count} packed frames that already lie in native memory at {@code pixels}. */
        public synchronized void push(Pointer pixels, int w, int h, int count, PixelType type) {
            if (pixels == null) throw new IllegalArgumentException("pixels is null");
            if (type == null) throw new IllegalArgumentException("pixel type is null");
            if (count < 1) throw new IllegalArgumentException("count " + count + " must be >= 1");
            long plane = (long) w * h;
            frames((int) Math.min(Integer.MAX_VALUE, plane), w, h, "frame");
            if (pixels instanceof Memory && ((Memory) pixels).size() < plane * count * type.bytes)
                throw new IllegalArgumentException("native buffer of " + ((Memory) pixels).size() + " bytes holds less than " + count + " frames of " + w + "x" + h + " " + type);
            pushNative(pixels, w, h, count, type);
        }

        /** Copies frames (pixel arrays of one stack, each w*h) into the staging buffer and pushes them as one chunk:
         * the engine then works on the chunk's frames in parallel. All arrays must be of the same type. */
        public synchronized void pushFrames(Object[] frames, int w, int h) {
            if (frames == null || frames.length == 0) throw new IllegalArgumentException("frames is null or empty");
            Object first = frames[0];
            PixelType type = first instanceof short[] ? PixelType.UINT16 : first instanceof byte[] ? PixelType.UINT8
                    : first instanceof float[] ? PixelType.FLOAT32 : null;
            if (type == null) { push(first, w, h); return; } // throws the right message
            int plane = w * h;
            Memory m = stage((long) plane * frames.length * type.bytes);
            for (int i = 0; i < frames.length; i++) {
                Object f = frames[i];
                long at = (long) i * plane * type.bytes;
                int len;
                if (type == PixelType.UINT16 && f instanceof short[]) { len = ((short[]) f).length; if (len == plane) m.write(at, (short[]) f, 0, plane); }
                else if (type == PixelType.UINT8 && f instanceof byte[]) { len = ((byte[]) f).length; if (len == plane) m.write(at, (byte[]) f, 0, plane); }
                else if (type == PixelType.FLOAT32 && f instanceof float[]) { len = ((float[]) f).length; if (len == plane) m.write(at, (float[]) f, 0, plane); }
                else throw new IllegalArgumentException("frames[" + i + "] is not a " + first.getClass().getSimpleName() + " like frames[0]");
                if (len != plane) frames(len, w, h, "frames[" + i + "]");
            }
            frames(plane, w, h, "frame");
            pushNative(m, w, h, frames.length, type);
        }

        private synchronized void pushNative(Pointer p, int w, int h, int count, PixelType type) {
            Pointer hd = open();
            // A cancel that arrived between pushes is kept by the library and stops this push (maliang.h).
            int rc = Api.ml_push_frames(hd, p, w, h, count, 0L, type.code);
            width = w; height = h;
            if (rc == ML_OK) framesPushed += count;
            else {
                // a cancelled push still numbered the frames it finished: resynchronise from the summary
                if (rc == ML_ERR_CANCELLED) framesPushed = summary().frames;
                check(rc, "ml_push_frames");
            }
        }

        /**
         * sCMOS camera maps (Huang et al. 2013) for the frames pushed from now on: per sensor pixel the offset (ADU), the
         * read-noise variance (ADU^2) and the gain (photons per ADU), each {@code sensorWidth * sensorHeight} values,
         * row-major; any may be null (the settings' scalar stands in), all null removes the maps. With a variance map
         * the fit uses the sCMOS likelihood. {@code originX, originY}: the frames' top-left pixel on the sensor. A NaN,
         * or a zero or negative variance or gain, is a {@link MaLiangException} naming the map and the pixel.
         */
        public synchronized void setCameraMaps(float[] offsetAdu, float[] varianceAdu2, float[] gainPhotonsPerAdu,
                                               int sensorWidth, int sensorHeight, int originX, int originY) {
            Pointer h = open();
            float[][] maps = { offsetAdu, varianceAdu2, gainPhotonsPerAdu };
            String[] names = { "offset", "variance", "gain" };
            boolean none = offsetAdu == null && varianceAdu2 == null && gainPhotonsPerAdu == null;
            long n = (long) sensorWidth * sensorHeight;
            if (!none && (sensorWidth <= 0 || sensorHeight <= 0 || n > Integer.MAX_VALUE))
                throw new IllegalArgumentException("camera maps: bad sensor size " + sensorWidth + "x" + sensorHeight);
            if (originX < 0 || originY < 0) throw new IllegalArgumentException("camera origin (" + originX + ", " + originY + ") is negative");
            Memory[] mem = new Memory[3];
            try {
                for (int i = 0; i < 3; i++) {
                    if (maps[i] == null) continue;
                    if (maps[i].length != n)
                        throw new IllegalArgumentException("camera " + names[i] + " map has " + maps[i].length + " values, the sensor " + sensorWidth + "x" + sensorHeight + " = " + n);
                    mem[i] = new Memory(4L * n);
                    mem[i].write(0, maps[i], 0, maps[i].length);
                }
                check(Api.ml_set_camera_maps(h, mem[0], mem[1], mem[2], none ? 0 : sensorWidth, none ? 0 : sensorHeight, originX, originY),
                      "ml_set_camera_maps");
            } finally {
                for (Memory m : mem) free(m);
            }
        }

        /** As {@link #setCameraMaps}, the maps read from single-image TIFF files by the engine (any path null or empty). */
        public synchronized void setCameraMapFiles(String offsetPath, String variancePath, String gainPath, int originX, int originY) {
            check(Api.ml_set_camera_map_files(open(), utf8z(offsetPath), utf8z(variancePath), utf8z(gainPath), originX, originY),
                  "ml_set_camera_map_files");
        }

        private static byte[] utf8z(String s) { return s == null || s.trim().isEmpty() ? null : cString(s.trim()); }

        /** Localizes every frame of a TIFF file read by the engine's own reader (ml_push_file), as {@code maliang
         * localize} does: 8/16/32-bit grayscale, strips or tiles, uncompressed, LZW, Deflate or PackBits, multi-page,
         * BigTIFF, ImageJ and OME-TIFF stacks, streamed frame by frame. Frames are numbered after those pushed before.
         * A broken or unsupported file (truncated, JPEG-compressed, RGB) throws {@link MaLiangException} naming the
         * file and frame. */
        public synchronized void pushFile(String path) {
            if (path == null || path.isEmpty()) throw new IllegalArgumentException("path is null or empty");
            if (path.indexOf('\0') >= 0) throw new IllegalArgumentException("path contains a NUL character");
            int rc = Api.ml_push_file(open(), cString(path));
            // check() reads ml_last_error first; then resynchronise: the library numbered the frames it did
            try { check(rc, "ml_push_file"); } finally { framesPushed = summary().frames; }
        }

        /** Stops the push in progress (or the next one) with a {@link MaLiangException} of status ML_ERR_CANCELLED. Thread-safe. */
        public void cancel() {
            Pointer h = handle.get();
            if (h != null) Api.ml_cancel(h);
        }

        /** The address the engine read the last push from (the staging buffer: proof that frames were not copied again). */
        public long lastPushAddress() {
            Memory m = new Memory(8);
            try {
                check(Api.ml_last_push_address(open(), m), "ml_last_push_address");
                return Pointer.nativeValue(m.getPointer(0));
            } finally {
                free(m);
            }
        }

        /** Address of the reusable staging buffer (0 before the first array push). */
        public long stagingAddress() { return staging == null ? 0 : Pointer.nativeValue(staging); }

        /** Number of localizations so far. */
        public long resultCount() {
            check(Api.ml_result_count(open(), scratch), "ml_result_count");
            return scratch.getLong(0);
        }

        /** All localizations so far, in frame order. */
        public Localization[] results() { return results(0); }

        /** Localizations from index {@code first} on (for incremental reading). */
        public Localization[] results(long first) {
            long total = resultCount();
            if (first < 0 || first > total) throw new IllegalArgumentException("first " + first + " is outside 0.." + total);
            long n = total - first;
            if (n > Integer.MAX_VALUE) throw new IllegalStateException(n + " localizations do not fit a Java array");
            if (n == 0) return new Localization[0];
            Memory out = new Memory(n * LOCALIZATION_BYTES);
            try {
                check(Api.ml_read_results(open(), first, out, n, scratch), "ml_read_results");
                return decode(out, (int) scratch.getLong(0));
            } finally {
                free(out);
            }
        }

        /** Drops the results kept so far (frame numbering goes on). */
        public void clearResults() { check(Api.ml_clear_results(open()), "ml_clear_results"); }

        public Summary summary() {
            Memory m = new Memory(Math.max(SUMMARY_BYTES, 8 * (MAX_GROUP_SIZE + 1) + 4));
            try {
                Pointer h = open();
                check(Api.ml_get_summary(h, m), "ml_get_summary");
                Summary s = Summary.read(m);
                check(Api.ml_get_groups_by_size(h, m, MAX_GROUP_SIZE + 1, m.share(8 * (MAX_GROUP_SIZE + 1))), "ml_get_groups_by_size");
                s.groupsBySize = m.getLongArray(0, MAX_GROUP_SIZE + 1);
                return s;
            } finally {
                free(m);
            }
        }

        /** The settings the library runs this localizer with (ml_get_settings): what reached the engine. */
        public Settings engineSettings() {
            Settings s = new Settings();
            check(Api.ml_get_settings(open(), s.getPointer()), "ml_get_settings");
            s.read();
            return s;
        }

        public boolean isClosed() { return handle.get() == null; }

        /**
         * Frees the native localizer and the staging buffer. Idempotent and safe when several threads call it at once:
         * the handle is taken by exactly one of them. It waits for a push running on another thread to return (pushes
         * and close hold this object's lock; call {@link #cancel()} first to make that quick).
         */
        @Override public synchronized void close() {
            Pointer h = handle.getAndSet(null);
            if (h == null) return;
            Api.ml_destroy(h); // cannot be refused here: no push runs while we hold the lock
            Memory st = staging;
            staging = null;
            free(st);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Files and rendering

    /** Writes localizations as CSV (DESIGN.md columns, nm, 1-based frames), atomically, via ml_write_csv. */
    public static void writeCsv(String path, Localization[] locs, double pixelSizeNm) {
        if (path == null || path.trim().isEmpty()) throw new IllegalArgumentException("path is empty");
        if (locs == null) throw new IllegalArgumentException("locs is null");
        if (!(pixelSizeNm > 0) || Double.isInfinite(pixelSizeNm)) throw new IllegalArgumentException("pixel_size: must be a finite number > 0 nm, got " + pixelSizeNm);
        File dir = new File(path).getAbsoluteFile().getParentFile();
        if (dir != null && !dir.isDirectory()) throw new IllegalArgumentException(path + ": folder " + dir + " does not exist");
        requireLibrary();
        Memory m = encode(locs);
        try {
            check(Api.ml_write_csv(cString(path), m, locs.length, pixelSizeNm), "ml_write_csv");
        } finally {
            free(m);
        }
    }

    /** Reads a MaLiang or ThunderSTORM CSV via ml_read_csv (nm converted to px with {@code pixelSizeNm}). */
    public static Localization[] readCsv(String path, double pixelSizeNm) {
        if (path == null || path.trim().isEmpty()) throw new IllegalArgumentException("path is empty");
        if (!new File(path).isFile()) throw new IllegalArgumentException(path + ": no such file");
        if (!(pixelSizeNm > 0) || Double.isInfinite(pixelSizeNm)) throw new IllegalArgumentException("pixel_size: must be a finite number > 0 nm, got " + pixelSizeNm);
        requireLibrary();
        byte[] p = cString(path);
        Memory count = new Memory(8);
        check(Api.ml_read_csv(p, pixelSizeNm, null, 0, count), "ml_read_csv");
        long n = count.getLong(0);
        if (n > Integer.MAX_VALUE) throw new IllegalStateException(path + ": " + n + " localizations do not fit a Java array");
        if (n == 0) return new Localization[0];
        Memory out = new Memory(n * LOCALIZATION_BYTES);
        try {
            check(Api.ml_read_csv(p, pixelSizeNm, out, n, count), "ml_read_csv");
            return decode(out, (int) count.getLong(0));
        } finally {
            free(out);
        }
    }

    /** A rendered super-resolution image (row-major float32). */
    public static final class Image {
        public final int width, height;
        public final float[] pixels;
        /** Size of one output pixel in nm (pixel size / magnification), when known (0 otherwise). */
        public final double pixelSizeNm;
        Image(int w, int h, float[] p, double nm) { width = w; height = h; pixels = p; pixelSizeNm = nm; }
    }

    /** Render methods of ml_render. */
    public static final int RENDER_GAUSSIAN = 0, RENDER_HISTOGRAM = 1;

    /**
     * Renders localizations of a {@code width x height} px camera at {@code magnification} via ml_render: method
     * {@link #RENDER_GAUSSIAN} (sigma = each localization's uncertainty, or {@code sigmaPx} if > 0) or {@link #RENDER_HISTOGRAM}.
     */
    public static Image render(Localization[] locs, int width, int height, double magnification, int method, double sigmaPx) {
        return render(locs, width, height, magnification, method, sigmaPx, 0);
    }

    /** As above; {@code pixelSizeNm} only labels the result ({@link Image#pixelSizeNm} = pixelSizeNm / magnification). */
    public static Image render(Localization[] locs, int width, int height, double magnification, int method, double sigmaPx, double pixelSizeNm) {
        if (locs == null) throw new IllegalArgumentException("locs is null");
        if (width <= 0 || height <= 0) throw new IllegalArgumentException("image size " + width + "x" + height + " is not positive");
        if (!(magnification > 0 && magnification <= 100)) throw new IllegalArgumentException("magnification: must be in (0, 100], got " + magnification);
        if (method != RENDER_GAUSSIAN && method != RENDER_HISTOGRAM) throw new IllegalArgumentException("method: " + method + " is not 0 (gaussian) or 1 (histogram)");
        if (Double.isNaN(sigmaPx) || sigmaPx < 0) throw new IllegalArgumentException("sigma: must be >= 0 px, got " + sigmaPx);
        long outW = (long) Math.ceil(width * magnification), outH = (long) Math.ceil(height * magnification);
        if (outW * outH > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("a " + outW + "x" + outH + " image is too large for a Java array: lower the magnification");
        requireLibrary();
        Memory m = encode(locs);
        Memory wh = new Memory(8);
        try {
            check(Api.ml_render(m, locs.length, width, height, magnification, method, sigmaPx, null, 0, wh, wh.share(4)), "ml_render");
            int w = wh.getInt(0), h = wh.getInt(4);
            Memory out = new Memory(Math.max(4L, (long) w * h * 4));
            try {
                check(Api.ml_render(m, locs.length, width, height, magnification, method, sigmaPx, out, (long) w * h, wh, wh.share(4)), "ml_render");
                return new Image(w, h, out.getFloatArray(0, w * h), pixelSizeNm > 0 ? pixelSizeNm / magnification : 0);
            } finally {
                free(out);
            }
        } finally {
            free(m);
        }
    }
}
