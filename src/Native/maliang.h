/*
 * maliang.h - the C ABI of libmaliang.so (MaLiang single-molecule localization, NativeAOT build of src/Engine).
 *
 * Conventions (../../DESIGN.md): x is the column, y the row, in camera pixels, origin at the top-left corner of the
 * top-left pixel (pixel column c spans [c, c+1)); photons; frames 0-based. Frames are frame-major, row-major.
 *
 * Errors: every function returns an ml_status (ML_OK = 0); on failure ml_last_error() gives a one-line message for
 * the calling thread, naming the parameter, frame or file. No function ever throws across this boundary. Every pointer,
 * size and setting is checked before any pointer is touched. Handles are not thread-safe except ml_cancel().
 */
#ifndef MALIANG_H
#define MALIANG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ML_ABI_VERSION 2

typedef enum ml_status {
    ML_OK = 0,
    ML_ERR_ARGUMENT = 1,   /* a null pointer, a size, a pixel type or a setting is invalid */
    ML_ERR_INPUT = 2,      /* bad input data or file (named in the message) */
    ML_ERR_CANCELLED = 3,  /* ml_cancel() or the progress callback stopped the call */
    ML_ERR_BACKEND = 4,    /* the requested backend (GPU) is not available */
    ML_ERR_INTERNAL = 5,   /* anything unexpected; the message says what */
    ML_ERR_IO = 6          /* a file could not be read or written (folder missing, permissions, disk full) */
} ml_status;

typedef enum ml_pixel_type { ML_PIXEL_UINT8 = 0, ML_PIXEL_UINT16 = 1, ML_PIXEL_UINT32 = 2, ML_PIXEL_FLOAT32 = 3, ML_PIXEL_INT16 = 4, ML_PIXEL_INT32 = 5 } ml_pixel_type;
typedef enum ml_filter { ML_FILTER_MALIANG = 0, ML_FILTER_WAVELET = 1, ML_FILTER_NONE = 2 } ml_filter;
typedef enum ml_backend { ML_BACKEND_AUTO = 0, ML_BACKEND_CPU = 1, ML_BACKEND_OPENCL = 2, ML_BACKEND_CUDA = 3 } ml_backend;

/* Every option of `maliang localize`. Fill with ml_default_settings() first; struct_size = sizeof(ml_settings). */
typedef struct ml_settings {
    int32_t struct_size;
    int32_t roi_size;            /* odd, default 7 */
    double pixel_size_nm;        /* default 100 */
    double psf_sigma_px;         /* default 1.3 */
    double offset_adu;           /* default 0 */
    double photons_per_adu;      /* default 1 */
    double em_gain;              /* default 1 */
    double threshold;            /* x robust noise, default 5 */
    double tolerance;            /* relative step tolerance, default 1e-4 */
    int32_t filter;              /* ml_filter */
    int32_t fixed_sigma;         /* 0/1 */
    int32_t iterations;          /* max iterations, default 20 */
    int32_t use_tolerance;       /* 0 = always run `iterations` steps */
    int32_t reject_overlapping;  /* 1 = drop candidates near a brighter one (default) */
    int32_t backend;             /* ml_backend */
    int32_t threads;             /* 0 = all cores */
    int32_t reserved;
    /* Appended with issue 17 (crowded frames); offsets 96-135, natural alignment, no padding. */
    int32_t multi_emitter;       /* 1 = fit close emitters jointly in groups (default); 0 = `--single-emitter` */
    int32_t max_emitters;        /* most emitters in one joint fit, 1..12, default 8 (`--max-emitters`) */
    double multi_p_value;        /* an emitter joins a group when the likelihood ratio's p-value is below this, (0, 1),
                                    default 1e-6 (`--multi-p-value`) */
    int32_t camera_noise;        /* 1 = detect against the camera model's noise at the local background (default);
                                    0 = the filtered frame's robust spread (`--spread-threshold`) */
    int32_t drop_edge;           /* 1 = drop candidates whose ROI crosses the frame edge (`--drop-edge`); default 0 */
    double min_snr;              /* keep a fit when photons >= min_snr x sqrt(CRLB_N), >= 0, default 5 (`--min-snr`) */
    int32_t noise_clip;          /* 1 = one sigma-clipping step in the detection noise (default); 0 = `--no-noise-clip` */
    int32_t estimate_psf_sigma;  /* 1 = estimate the PSF sigma from the data (psf_sigma_px then only the fallback);
                                    default 0 */
    /* Appended after issue 17: offset 136, then 4 bytes of tail padding (the struct is 8-aligned): 144 bytes. */
    int32_t residual_search;     /* 1 = with multi_emitter, search the frame minus every fitted emitter for emitters the
                                    detection missed and fit them with their neighbours, until none is added
                                    (`--residual-search`); default 0 */
} ml_settings;

/* One localization: 76 bytes, the engine's Localization struct (ABI 2 added z, uncertainty_z, fitted_together). */
typedef struct ml_localization {
    int32_t frame;               /* 0-based, counted over all frames pushed to the localizer */
    float x, y;                  /* px */
    float photons, background;   /* photons, photons/px */
    float sigma;                 /* px */
    float uncertainty_x, uncertainty_y, uncertainty_photons, uncertainty_background, uncertainty_sigma; /* sqrt(CRLB) */
    float loglik;                /* Poisson log-likelihood at the estimate */
    float llr;                   /* log-likelihood ratio (goodness of fit) */
    int32_t iterations;
    int32_t detections;          /* 1, or the number of merged detections */
    int32_t flags;               /* bit 0: converged; bit 1: 3D, z measured (CSV writers add the z columns) */
    float z, uncertainty_z;      /* nm, 3D (astigmatic) fits (flags bit 1); 0 in 2D results */
    int32_t fitted_together;     /* emitters fitted jointly with this one, itself included (1: a single-emitter fit) */
} ml_localization;

typedef struct ml_summary {
    int64_t frames, localizations, candidates, dropped_edge, dropped_overlap, dropped_fit_failed, dropped_left_roi;
    double wall_seconds, read_seconds, denoise_seconds, detect_seconds, fit_seconds;
    int32_t threads, reserved;
    char backend[64];
} ml_summary;

typedef struct ml_localizer ml_localizer;

/* Progress: called after each chunk of frames, on the pushing thread; return non-zero to cancel. frames_total counts
 * every frame pushed so far plus those of this push. */
typedef int32_t (*ml_progress_fn)(int32_t frames_done, int32_t frames_total, int64_t localizations, void* user);

const char* ml_version(void);                 /* "0.1.0" */
int32_t ml_abi_version(void);                 /* ML_ABI_VERSION */
const char* ml_last_error(void);              /* thread-local; "" when none */
int32_t ml_default_settings(ml_settings* settings);

int32_t ml_create(const ml_settings* settings, ml_localizer** out);
/* Null is fine. Handles are ids that are never reused: a destroyed or foreign handle is ML_ERR_ARGUMENT everywhere (no
 * crash, never another localizer). Destroying while a push runs on it is refused (ML_ERR_ARGUMENT): cancel, then destroy
 * after ml_push_frames has returned. */
int32_t ml_destroy(ml_localizer* localizer);
/* The settings the localizer runs with, as ml_create accepted them (struct_size set, every field filled). */
int32_t ml_get_settings(ml_localizer* localizer, ml_settings* out);

/* Localizes `count` frames of width x height at `pixels` (read in place, not copied); row_stride_bytes = 0 means packed
 * rows; row r of frame k starts at pixels + (k * height + r) * row_stride_bytes. width x height must be < 2^31 pixels.
 * Frames are numbered after those pushed before. Results accumulate until ml_clear_results(). One push at a time per
 * localizer (a second concurrent push is ML_ERR_ARGUMENT). */
int32_t ml_push_frames(ml_localizer* localizer, const void* pixels, int32_t width, int32_t height, int32_t count,
                       int64_t row_stride_bytes, int32_t pixel_type);
/* Localizes every frame of a TIFF file, read by the engine (as `maliang localize`): 8/16/32-bit grayscale, strips or
 * tiles, uncompressed, LZW, Deflate or PackBits, multi-page, BigTIFF, ImageJ and OME-TIFF stacks; a Micro-Manager
 * `*_MMStack_*.ome.tif` set opens whole from its first file. path is UTF-8. Frames are numbered after those pushed
 * before, progress and cancel as for ml_push_frames. Unreadable or unsupported files (truncated, JPEG-compressed, RGB)
 * are ML_ERR_INPUT (ML_ERR_IO when the file cannot be opened), the message naming the file and frame. */
int32_t ml_push_file(ml_localizer* localizer, const char* path);
int32_t ml_set_progress(ml_localizer* localizer, ml_progress_fn callback, void* user);
/* sCMOS camera maps (Huang et al., Nat. Methods 10, 653 (2013)) for the frames pushed from now on: per sensor pixel the
 * offset (ADU), the read-noise variance (ADU^2) and the gain (photons per ADU), each sensor_width x sensor_height float32,
 * row-major; any may be NULL (the settings' scalar stands in), all three NULL removes the maps. With a variance map the fit
 * uses the sCMOS likelihood and detection a per-pixel threshold. origin_x, origin_y: the pushed frames' top-left pixel on
 * the sensor (a cropped acquisition). The maps are copied and checked: every value finite, offset >= 0, variance and
 * gain > 0; an error names the map and the pixel (ML_ERR_ARGUMENT). Frames that reach past the maps from the origin are
 * refused at ml_push_frames. Not while a push runs on this localizer. */
int32_t ml_set_camera_maps(ml_localizer* localizer, const float* offset_adu, const float* variance_adu2,
                           const float* gain_photons_per_adu, int32_t sensor_width, int32_t sensor_height,
                           int32_t origin_x, int32_t origin_y);
/* The same from single-image TIFF files (32-bit float or integer, read by the engine's TIFF reader), UTF-8 paths, any
 * NULL or "" (all three: no maps). Errors name the map and its file or pixel. */
int32_t ml_set_camera_map_files(ml_localizer* localizer, const char* offset_path, const char* variance_path,
                                const char* gain_path, int32_t origin_x, int32_t origin_y);
/* Thread-safe: stops the push in progress, or else the next one, which then returns ML_ERR_CANCELLED (a push whose
 * progress callback returned non-zero returns ML_ERR_CANCELLED even when it was the last chunk). */
int32_t ml_cancel(ml_localizer* localizer);

int32_t ml_result_count(ml_localizer* localizer, int64_t* count);
/* Copies results [first, first + capacity) into out; *written = how many were copied. */
int32_t ml_read_results(ml_localizer* localizer, int64_t first, ml_localization* out, int64_t capacity, int64_t* written);
int32_t ml_clear_results(ml_localizer* localizer);
int32_t ml_get_summary(ml_localizer* localizer, ml_summary* out);
#define ML_MAX_GROUP_SIZE 12     /* the most emitters one joint fit can hold (max_emitters' upper bound) */
/* Fits by the number of emitters fitted together, over every frame pushed: out[k] = groups of k emitters (k = 1..12;
 * out[0] is 0; out[1] counts single-emitter fits). Copies min(capacity, ML_MAX_GROUP_SIZE + 1) values; *count =
 * ML_MAX_GROUP_SIZE + 1 (out = NULL with capacity 0 asks only that). All 0 with multi_emitter = 0. Beside ml_summary,
 * whose layout stays 168 bytes. */
int32_t ml_get_groups_by_size(ml_localizer* localizer, int64_t* out, int32_t capacity, int32_t* count);
/* The address of the pixels the last ml_push_frames read (to prove callers pass frames without a copy). */
int32_t ml_last_push_address(ml_localizer* localizer, const void** address);

/* 3D astigmatism (docs/DESIGN.md "3D astigmatism"). Widths sigma(z) = sigma0_px sqrt(1 + u^2 + a u^3 + b u^4),
 * u = (z - c_nm) / d_nm, index 0 the x curve (columns), 1 the y curve (rows); z in nm of stage z, later bead-stack frames
 * +z; fitted z is reported times refractive_index_factor. 128 bytes. */
typedef struct ml_z_calibration {
    int32_t struct_size, beads;  /* beads: found by ml_calibrate_z (0 when read from a file) */
    double sigma0_px[2], a[2], b[2], c_nm[2], d_nm[2];
    double pixel_size_nm, z_min_nm, z_max_nm, refractive_index_factor;
    int32_t rejected_fits, reserved;
} ml_z_calibration;

/* A localizer that fits x, y, z, photons, background with the astigmatic model of a calibration file (calibrate-z's
 * YAML, ThunderSTORM's or Picasso's; UTF-8 path): results carry z and uncertainty_z (nm) and flag bit 1. The file must be
 * at the settings' pixel size; errors name the file and field (ML_ERR_INPUT). Any backend (on a GPU the ROIs are cut on
 * the CPU threads and fitted by astigmatic.cl). */
int32_t ml_create_3d(const ml_settings* settings, const char* calibration_path, ml_localizer** out);
/* Calibrates from a bead z-stack TIFF (frame k at z = z_first_nm + k z_step_nm; z_first_nm = NaN: z = 0 where the widths
 * are equal) with the settings' camera, filter and threshold; writes the YAML to output_path and the plot PNG to
 * plot_path (either NULL or "" to skip), fills *out (may be NULL). Nothing is written on error. */
int32_t ml_calibrate_z(const char* stack_path, const ml_settings* settings, double z_step_nm, double z_first_nm,
                       double refractive_index_factor, const char* output_path, const char* plot_path, ml_z_calibration* out);
int32_t ml_read_z_calibration(const char* path, double pixel_size_nm, ml_z_calibration* out);

/* Files: CSV in DESIGN.md columns (nm, photons, 1-based frames), written atomically. ml_read_csv: call with out = NULL
 * to get the count, then with a buffer of that capacity. */
int32_t ml_write_csv(const char* path, const ml_localization* locs, int64_t count, double pixel_size_nm);
int32_t ml_read_csv(const char* path, double pixel_size_nm, ml_localization* out, int64_t capacity, int64_t* count);

/* Rendering: method 0 = normalized Gaussian (sigma = each localization's uncertainty, or sigma_px if > 0), 1 = histogram.
 * The image is (width x magnification) x (height x magnification) float32, rounded up; out_capacity in floats. */
int32_t ml_render(const ml_localization* locs, int64_t count, int32_t width, int32_t height, double magnification,
                  int32_t method, double sigma_px, float* out, int64_t out_capacity, int32_t* out_width, int32_t* out_height);

/* Layout checks for bindings: sizeof(ml_settings), sizeof(ml_localization), sizeof(ml_summary) as this library was built
 * (144, 76, 168 on x86-64). */
int32_t ml_struct_sizes(int32_t* settings, int32_t* localization, int32_t* summary);

/* ---------------------------------------------------------------------------------------------------------------------
 * Post-processing (the CLI's maliang drift / merge / filter / frc / motion) on arrays of ml_localization in memory.
 * Units as everywhere in this header: px, photons, 0-based frames; nm only where a name says so. Inputs are read, never
 * changed; every output goes to a caller-provided buffer. n may be up to INT32_MAX.
 * ------------------------------------------------------------------------------------------------------------------- */

typedef enum ml_drift_method { ML_DRIFT_RCC = 0, ML_DRIFT_FIDUCIAL = 1 } ml_drift_method;

/* Fill with ml_default_drift_options() first; struct_size = sizeof(ml_drift_options) (64). */
typedef struct ml_drift_options {
    int32_t struct_size;
    int32_t frames;              /* frames in the acquisition; 0 = last localization's frame + 1 */
    int32_t segments;            /* rcc: time segments, 2..200, default 10 */
    int32_t smooth_frames;       /* fiducial: smoothing window (frames), >= 3, default 200 */
    double magnification;        /* rcc: histogram super-pixels per camera px, (0, 50], default 5 */
    double max_shift_px;         /* rcc: largest drift searched between two segments, px, default 20 */
    double region_x0, region_y0, region_x1, region_y1; /* fiducial: look for the bead in [x0,x1) x [y0,y1) px; all NaN = whole field */
} ml_drift_options;

/* Fill with ml_default_frc_options() first; struct_size = sizeof(ml_frc_options) (40). */
typedef struct ml_frc_options {
    int32_t struct_size;
    int32_t split;               /* 0 = blocks of frames assigned to the halves at random (seeded), 1 = odd/even blocks */
    int32_t block_frames;        /* frames per block; 0 = a twentieth of the frames (at least 1) */
    int32_t seed;                /* of the random split */
    double pixel_size_nm;        /* camera pixel, default 100 */
    double super_pixel_nm;       /* histogram pixel of the two half images, default 5 */
    double threshold;            /* default 1/7 */
} ml_frc_options;

/* Set struct_size = sizeof(ml_motion_result) (120) before calling ml_motion. */
typedef struct ml_motion_result {
    int32_t struct_size;
    int32_t in_region, inliers;  /* localizations in the region, and those on the line after 4-sigma rejection */
    int32_t n1, n2;              /* inliers in window 1 and window 2 */
    int32_t reserved;
    double line_x, line_y;       /* a point on the fitted line, px */
    double direction_x, direction_y, normal_x, normal_y; /* unit vectors (normal: positive y, or positive x if horizontal) */
    double mean1_nm, stderr1_nm, mean2_nm, stderr2_nm;   /* mean position along the normal per window, and its standard error */
    double displacement_nm;      /* mean2 - mean1 */
    double z;                    /* displacement / sqrt(stderr1^2 + stderr2^2) */
} ml_motion_result;

#define ML_FRC_MAX_POINTS 2048   /* an FRC curve never has more points */

int32_t ml_post_struct_sizes(int32_t* drift_options, int32_t* frc_options, int32_t* motion_result);
int32_t ml_default_drift_options(ml_drift_options* options);
int32_t ml_default_frc_options(ml_frc_options* options);

/* Drift correction (method: ml_drift_method). *frames = the trajectory length (options->frames, or last frame + 1).
 * Size query: out, dx_px and dy_px all NULL (nothing is computed). Otherwise out (n localizations, corrected: x - dx[frame],
 * y - dy[frame]; may be the same array as in) and/or dx_px, dy_px (both or neither; frames_capacity >= *frames doubles each:
 * the drift in px per frame, relative to the start) are written. Frames must be >= 0. */
int32_t ml_drift_correct(const ml_localization* in, int64_t n, int32_t method, const ml_drift_options* options,
                         ml_localization* out, double* dx_px, double* dy_px, int64_t frames_capacity, int64_t* frames);

/* Merges detections of one molecule in consecutive frames (gaps of up to max_gap_frames missed frames, within radius_px of
 * the track): photon-weighted position, summed photons, detections counted. *count = merged localizations (<= n, so a
 * buffer of n is always enough); out = NULL is a size query. Output is ordered by first frame. */
int32_t ml_merge(const ml_localization* in, int64_t n, double radius_px, int32_t max_gap_frames,
                 ml_localization* out, int64_t capacity, int64_t* count);

/* keep[i] = 1 where the expression holds for localization i, else 0 (n bytes). The expression is over the CSV columns
 * (DESIGN.md names, nm, photons, 1-based frame and id), e.g. "uncertainty [nm] < 20 && intensity [photon] > 300":
 * id, frame, x [nm], y [nm], sigma [nm], intensity [photon], offset [photon], bkgstd [photon], uncertainty [nm],
 * uncertainty_x [nm], uncertainty_y [nm], loglikelihood, llr, iterations, detections. n = 0 checks the expression only.
 * *kept (may be NULL) = how many are kept. A syntax error or unknown column is ML_ERR_INPUT, naming it. */
int32_t ml_filter_expression(const ml_localization* in, int64_t n, const char* expression, double pixel_size_nm,
                             uint8_t* keep, int64_t* kept);

/* keep[i] = 1 when at least min_neighbours other localizations (any frame) lie within radius_px of localization i. */
int32_t ml_density_filter(const ml_localization* in, int64_t n, double radius_px, int32_t min_neighbours,
                          uint8_t* keep, int64_t* kept);

/* Fourier ring correlation of two halves of the data. *resolution_nm = 1 / (frequency where the smoothed curve falls below
 * the threshold), NaN when it never does. *points = curve length (<= ML_FRC_MAX_POINTS); freq_per_nm, frc, frc_smoothed
 * (each may be NULL; capacity doubles each) receive the curve. */
int32_t ml_frc(const ml_localization* in, int64_t n, const ml_frc_options* options, double* resolution_nm,
               double* freq_per_nm, double* frc, double* frc_smoothed, int64_t capacity, int64_t* points);

/* Motion of a linear structure in the region [x0,x1) x [y0,y1) px between two frame windows (0-based, both ends included):
 * the paper's section 3.3 statistic. */
int32_t ml_motion(const ml_localization* in, int64_t n, double x0, double y0, double x1, double y1,
                  int32_t window1_first, int32_t window1_last, int32_t window2_first, int32_t window2_last,
                  double pixel_size_nm, ml_motion_result* out);

#ifdef __cplusplus
}
#endif
#endif
