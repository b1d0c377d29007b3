package org.maliang;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

import java.io.File;
import java.nio.charset.Charset;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Loading the engine and its raw C functions, for {@link MaLiang} and {@link Post} (package-private): which library file
 * (-Dmaliang.library, the hosted engine unpacked from the jar, else the one in the jar for this platform), the ABI check,
 * the JNA direct mapping of maliang.h, and turning a status into a {@link MaLiangException}. The public face of all this is
 * {@link MaLiang#isAvailable()}, {@link MaLiang#engine()} and {@link MaLiang#loadError()}.
 */
final class NativeEngine {
    private NativeEngine() { }

    static final Charset UTF8 = Charset.forName("UTF-8");
    static volatile String loadError;
    static volatile String engine;
    static volatile boolean loaded;

    static {
        ClassLoader loader = NativeEngine.class.getClassLoader();
        String prefix = EngineFiles.prefix();
        try {
            Map<String, Object> options = new HashMap<String, Object>();
            // Fiji loads plugins with its own class loader: JNA must look for PREFIX/libmaliang.so in our jar.
            options.put(Library.OPTION_CLASSLOADER, loader);
            NativeLibrary lib = NativeLibrary.getInstance(libraryName(loader, prefix), options);
            Native.register(Api.class, lib);
            int abi = Api.ml_abi_version();
            Pointer why = Api.ml_last_error(); // the hosted engine's shim says here why .NET did not start
            String whyText = why == null ? "" : why.getString(0, "UTF-8");
            if (abi != MaLiang.ABI_VERSION) {
                loadError = !whyText.isEmpty() ? whyText : EngineFiles.libraryFileName(prefix) + " has C ABI version " + abi
                        + ", this plugin needs " + MaLiang.ABI_VERSION + " (update MaLiang_.jar and the library together)";
            } else {
                loaded = true;
                engine = EngineFiles.describe(Api.ml_version(), prefix, lib.getFile());
            }
        } catch (Throwable t) { // UnsatisfiedLinkError, NoClassDefFoundError (no JNA), IOException (unpacking), ...
            loadError = "the MaLiang native library (" + EngineFiles.libraryFileName(prefix) + ") could not be loaded: "
                    + t.getMessage() + "." + EngineFiles.noneFits(EngineFiles.platforms(loader), prefix)
                    + " It ships inside MaLiang_.jar (" + prefix + "/); it is also found on -Djna.library.path"
                    + " (Fiji: lib/linux64) or with -Dmaliang.library=/path/to/the/library. JNA must be on the class path.";
        }
    }

    private static String libraryName(ClassLoader loader, String prefix) throws java.io.IOException {
        String explicit = System.getProperty("maliang.library");
        if (explicit != null && !explicit.isEmpty()) {
            File f = new File(explicit);
            if (!f.isFile()) throw new UnsatisfiedLinkError("-Dmaliang.library=" + explicit + ": no such file");
            return f.getAbsolutePath();
        }
        // Windows, macOS: the hosted engine is a folder, unpacked whole (-Dmaliang.cache, else the temporary folder)
        File hosted = EngineFiles.unpackHosted(loader, prefix,
                new File(System.getProperty("maliang.cache", System.getProperty("java.io.tmpdir"))));
        return hosted != null ? hosted.getAbsolutePath() : "maliang";
    }

    /** The raw C functions (direct mapping: every call is one JNI call, no reflection). Package-private on purpose. */
    static final class Api {
        private Api() { }
        static native String ml_version();
        static native int ml_abi_version();
        static native Pointer ml_last_error();
        static native int ml_default_settings(Pointer settings);
        static native int ml_create(Pointer settings, Pointer out);
        static native int ml_create_3d(Pointer settings, byte[] calibrationPath, Pointer out);
        static native int ml_calibrate_z(byte[] stackPath, Pointer settings, double zStepNm, double zFirstNm, double refractiveIndexFactor,
                                         byte[] outputPath, byte[] plotPath, Pointer out);
        static native int ml_read_z_calibration(byte[] path, double pixelSizeNm, Pointer out);
        static native int ml_destroy(Pointer localizer);
        static native int ml_get_settings(Pointer localizer, Pointer out);
        static native int ml_get_groups_by_size(Pointer localizer, Pointer out, int capacity, Pointer count);
        static native int ml_push_frames(Pointer localizer, Pointer pixels, int width, int height, int count,
                                         long rowStrideBytes, int pixelType);
        static native int ml_push_file(Pointer localizer, byte[] path);
        static native int ml_cancel(Pointer localizer);
        static native int ml_set_camera_maps(Pointer localizer, Pointer offsetAdu, Pointer varianceAdu2, Pointer gainPhotonsPerAdu,
                                             int sensorWidth, int sensorHeight, int originX, int originY);
        static native int ml_set_camera_map_files(Pointer localizer, byte[] offsetPath, byte[] variancePath, byte[] gainPath,
                                                  int originX, int originY);
        static native int ml_result_count(Pointer localizer, Pointer count);
        static native int ml_read_results(Pointer localizer, long first, Pointer out, long capacity, Pointer written);
        static native int ml_clear_results(Pointer localizer);
        static native int ml_get_summary(Pointer localizer, Pointer out);
        static native int ml_last_push_address(Pointer localizer, Pointer address);
        static native int ml_write_csv(byte[] path, Pointer locs, long count, double pixelSizeNm);
        static native int ml_read_csv(byte[] path, double pixelSizeNm, Pointer out, long capacity, Pointer count);
        static native int ml_render(Pointer locs, long count, int width, int height, double magnification, int method,
                                    double sigmaPx, Pointer out, long outCapacity, Pointer outWidth, Pointer outHeight);
        // post-processing (maliang.h; org.maliang.Post)
        static native int ml_struct_sizes(Pointer settings, Pointer localization, Pointer summary);
        static native int ml_post_struct_sizes(Pointer driftOptions, Pointer frcOptions, Pointer motionResult);
        static native int ml_default_drift_options(Pointer options);
        static native int ml_default_frc_options(Pointer options);
        static native int ml_drift_correct(Pointer in, long n, int method, Pointer options, Pointer out, Pointer dxPx,
                                           Pointer dyPx, long framesCapacity, Pointer frames);
        static native int ml_merge(Pointer in, long n, double radiusPx, int maxGapFrames, Pointer out, long capacity, Pointer count);
        static native int ml_filter_expression(Pointer in, long n, byte[] expression, double pixelSizeNm, Pointer keep, Pointer kept);
        static native int ml_density_filter(Pointer in, long n, double radiusPx, int minNeighbours, Pointer keep, Pointer kept);
        static native int ml_frc(Pointer in, long n, Pointer options, Pointer resolutionNm, Pointer freqPerNm, Pointer frc,
                                 Pointer frcSmoothed, long capacity, Pointer points);
        static native int ml_motion(Pointer in, long n, double x0, double y0, double x1, double y1, int window1First,
                                    int window1Last, int window2First, int window2Last, double pixelSizeNm, Pointer out);
    }

    static String lastError() {
        Pointer p = Api.ml_last_error();
        return p == null ? "" : p.getString(0, "UTF-8");
    }

    /** Throws a {@link MaLiangException} for a non-zero status, with ml_last_error() of this thread. */
    static void check(int status, String what) {
        if (status == MaLiang.ML_OK) return;
        String msg = lastError();
        if (msg.isEmpty()) msg = what + " failed with status " + status;
        throw new MaLiangException(status, msg);
    }

    static byte[] cString(String s) {
        byte[] b = s.getBytes(UTF8);
        return Arrays.copyOf(b, b.length + 1);
    }
}
