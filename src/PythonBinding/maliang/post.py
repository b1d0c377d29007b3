"""Post-processing of localizations through the engine: drift correction, merging, filtering, FRC, motion statistics.

The same steps as the CLI's ``maliang drift / merge / filter / frc / motion`` (src/Cli/PostCommands.cs), on arrays in
memory (``maliang.LOCALIZATION_DTYPE``, or anything :func:`maliang.io.as_localizations` accepts). Units: positions,
radii and regions in camera px, as in the arrays; nm only where a name or docstring says so (``pixel_size`` converts);
frames 0-based, both ends of a window included.

    >>> corrected, drift = maliang.drift_correct(locs, method="rcc", segments=10)
    >>> molecules = maliang.merge(corrected, radius=0.5, gap=1)
    >>> good = maliang.filter(molecules, "uncertainty [nm] < 20 && intensity [photon] > 300", pixel_size=100)
    >>> resolution_nm, curve = maliang.frc(good, pixel_size=100, super_pixel=5)
    >>> maliang.motion(good, region=(5, 5, 35, 25), windows=((0, 999), (2000, 2999)), pixel_size=100)["z"]
"""
from __future__ import annotations

import ctypes
import math
import numbers
import threading

import numpy as np

from . import _native as N
from ._native import LOCALIZATION_DTYPE
from .io import as_localizations

__all__ = [
    "drift_correct", "merge", "filter", "filter_mask", "density_filter", "density_mask", "frc", "motion",
    "FILTER_COLUMNS", "DRIFT_DTYPE", "FRC_DTYPE", "DRIFT_METHODS",
]

#: Columns a filter expression may use (ml_filter_expression; DESIGN.md CSV names: nm, photons, 1-based frame and id).
FILTER_COLUMNS = [
    "id", "frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]", "offset [photon]", "bkgstd [photon]",
    "uncertainty [nm]", "uncertainty_x [nm]", "uncertainty_y [nm]", "loglikelihood", "llr", "iterations", "detections",
    "z [nm]", "uncertainty_z [nm]",
]
#: The drift trajectory: one row per frame (0-based), drift in camera px relative to the start.
DRIFT_DTYPE = np.dtype([("frame", "<i4"), ("dx_px", "<f8"), ("dy_px", "<f8")])
#: The FRC curve: spatial frequency (1/nm), the raw and the smoothed correlation.
FRC_DTYPE = np.dtype([("frequency_per_nm", "<f8"), ("frc", "<f8"), ("frc_smoothed", "<f8")])
DRIFT_METHODS = {"rcc": 0, "fiducial": 1}
FRC_SPLITS = {"random": 0, "odd_even": 1}
FRC_MAX_POINTS = 2048


class MlDriftOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int32), ("frames", ctypes.c_int32), ("segments", ctypes.c_int32),
        ("smooth_frames", ctypes.c_int32), ("magnification", ctypes.c_double), ("max_shift_px", ctypes.c_double),
        ("region_x0", ctypes.c_double), ("region_y0", ctypes.c_double), ("region_x1", ctypes.c_double),
        ("region_y1", ctypes.c_double),
    ]


class MlFrcOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int32), ("split", ctypes.c_int32), ("block_frames", ctypes.c_int32),
        ("seed", ctypes.c_int32), ("pixel_size_nm", ctypes.c_double), ("super_pixel_nm", ctypes.c_double),
        ("threshold", ctypes.c_double),
    ]


class MlMotionResult(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int32), ("in_region", ctypes.c_int32), ("inliers", ctypes.c_int32),
        ("n1", ctypes.c_int32), ("n2", ctypes.c_int32), ("reserved", ctypes.c_int32),
    ] + [(k, ctypes.c_double) for k in (
        "line_x", "line_y", "direction_x", "direction_y", "normal_x", "normal_y",
        "mean1_nm", "stderr1_nm", "mean2_nm", "stderr2_nm", "displacement_nm", "z")]


_P, _I32, _I64, _D = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_double
_PI32, _PI64, _PD = ctypes.POINTER(_I32), ctypes.POINTER(_I64), ctypes.POINTER(_D)
_SIGNATURES = {
    "ml_struct_sizes": (_I32, [_PI32, _PI32, _PI32]),
    "ml_post_struct_sizes": (_I32, [_PI32, _PI32, _PI32]),
    "ml_default_drift_options": (_I32, [ctypes.POINTER(MlDriftOptions)]),
    "ml_default_frc_options": (_I32, [ctypes.POINTER(MlFrcOptions)]),
    "ml_drift_correct": (_I32, [_P, _I64, _I32, ctypes.POINTER(MlDriftOptions), _P, _P, _P, _I64, _PI64]),
    "ml_merge": (_I32, [_P, _I64, _D, _I32, _P, _I64, _PI64]),
    "ml_filter_expression": (_I32, [_P, _I64, ctypes.c_char_p, _D, _P, _PI64]),
    "ml_density_filter": (_I32, [_P, _I64, _D, _I32, _P, _PI64]),
    "ml_frc": (_I32, [_P, _I64, ctypes.POINTER(MlFrcOptions), _PD, _P, _P, _P, _I64, _PI64]),
    "ml_motion": (_I32, [_P, _I64, _D, _D, _D, _D, _I32, _I32, _I32, _I32, _D, ctypes.POINTER(MlMotionResult)]),
}
_bound = None
_bind_lock = threading.Lock()


def _lib():
    """The library with the post-processing exports declared, and its struct layouts checked against this module's."""
    global _bound
    if _bound is not None:
        return _bound
    with _bind_lock:
        if _bound is not None:
            return _bound
        cdll = N.lib()
        for name, (res, args) in _SIGNATURES.items():
            try:
                f = getattr(cdll, name)
            except AttributeError:
                raise OSError(f"maliang: {N.library_path()} has no export {name}: it predates post-processing; "
                              "rebuild it with `make native`.") from None
            f.restype, f.argtypes = res, args
        a, b, c = _I32(), _I32(), _I32()
        N.check(cdll.ml_struct_sizes(ctypes.byref(a), ctypes.byref(b), ctypes.byref(c)), "ml_struct_sizes")
        want = (ctypes.sizeof(N.MlSettings), LOCALIZATION_DTYPE.itemsize, ctypes.sizeof(N.MlSummary))
        if (a.value, b.value, c.value) != want:
            raise OSError(f"maliang: struct sizes differ (library {a.value}/{b.value}/{c.value}, package {want})")
        N.check(cdll.ml_post_struct_sizes(ctypes.byref(a), ctypes.byref(b), ctypes.byref(c)), "ml_post_struct_sizes")
        want = (ctypes.sizeof(MlDriftOptions), ctypes.sizeof(MlFrcOptions), ctypes.sizeof(MlMotionResult))
        if (a.value, b.value, c.value) != want:
            raise OSError(f"maliang: post struct sizes differ (library {a.value}/{b.value}/{c.value}, package {want})")
        _bound = cdll
        return cdll


# ----------------------------------------------------------------------------------------------------------- checks

def _number(name, v, *, lo=None, lo_open=True, hi=None, unit=""):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"maliang: {name} must be a number{unit and ' (' + unit + ')'}, got {type(v).__name__} {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"maliang: {name} must be a finite number, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"maliang: {name} must be {'>' if lo_open else '>='} {lo}{unit and ' ' + unit}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"maliang: {name} must be <= {hi}{unit and ' ' + unit}, got {v}")
    return v


def _int(name, v, lo, hi=2**31 - 1):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"maliang: {name} must be an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"maliang: {name} must be {lo} to {hi}, got {v}")
    return v


def _locs(locs, *, need_one: bool, what: str) -> np.ndarray:
    a = as_localizations(locs)
    assert a.dtype == LOCALIZATION_DTYPE and a.flags.c_contiguous
    if len(a) > 2**31 - 1:
        raise ValueError(f"maliang: {what}: {len(a)} localizations are more than the engine takes in one call (2**31 - 1)")
    if need_one and len(a) == 0:
        raise ValueError(f"maliang: {what} needs localizations, got an empty array")
    return a


def _region(region, name="region"):
    if isinstance(region, (str, bytes)):
        raise TypeError(f"maliang: {name} must be (x0, y0, x1, y1) in px, not a string: {region!r}")
    try:
        vals = [float(v) for v in region]
    except TypeError:
        raise TypeError(f"maliang: {name} must be (x0, y0, x1, y1) in px, got {region!r}") from None
    if len(vals) != 4:
        raise ValueError(f"maliang: {name} must be (x0, y0, x1, y1) in px, got {len(vals)} values")
    x0, y0, x1, y1 = vals
    if not all(math.isfinite(v) for v in vals) or x1 <= x0 or y1 <= y0:
        raise ValueError(f"maliang: {name} {tuple(vals)} must be finite with x0 < x1 and y0 < y1 (px)")
    return x0, y0, x1, y1


def _ptr(a):
    return N.ptr(a) if len(a) else None


# -------------------------------------------------------------------------------------------------------------- drift

def drift_correct(locs, method: str = "rcc", *, segments: int = 10, magnification: float = 5.0,
                  max_shift: float = 20.0, smooth_frames: int = 200, region=None, frames: int | None = None):
    """Estimates sample drift and subtracts it (ml_drift_correct). Returns ``(corrected, drift)``.

    ``corrected``: a new array like ``locs`` with x - dx_px[frame], y - dy_px[frame]. ``drift``: a DRIFT_DTYPE array, one
    row per frame 0..frames-1 (``frame``, ``dx_px``, ``dy_px``: drift in camera px relative to the start of the
    acquisition; multiply by the pixel size for nm).

    ``method="rcc"`` (redundant cross-correlation, no fiducial needed): ``segments`` time segments (2..200),
    ``magnification`` super-pixels per camera px for the correlations, ``max_shift`` the largest drift between two
    segments (px). ``method="fiducial"``: a bead present in at least half of the frames, found automatically or inside
    ``region=(x0, y0, x1, y1)`` (px); its trajectory is smoothed over ``smooth_frames`` frames.
    ``frames``: frames in the acquisition (default: last localization's frame + 1)."""
    if not isinstance(method, str) or method.lower() not in DRIFT_METHODS:
        raise ValueError(f"maliang: method {method!r} is not one of {', '.join(DRIFT_METHODS)}")
    a = _locs(locs, need_one=True, what="drift_correct")
    if (a["frame"] < 0).any():
        i = int(np.flatnonzero(a["frame"] < 0)[0])
        raise ValueError(f"maliang: drift_correct: localization {i} has frame {a['frame'][i]}; frames are 0-based and >= 0")
    lib = _lib()
    o = MlDriftOptions()
    N.check(lib.ml_default_drift_options(ctypes.byref(o)), "ml_default_drift_options")
    o.segments = _int("segments", segments, 2, 200)
    o.magnification = _number("magnification", magnification, lo=0, hi=50)
    o.max_shift_px = _number("max_shift", max_shift, lo=0, unit="px")
    o.smooth_frames = _int("smooth_frames", smooth_frames, 3)
    if frames is not None:
        o.frames = _int("frames", frames, 1)
    if region is not None:
        o.region_x0, o.region_y0, o.region_x1, o.region_y1 = _region(region)
    m = DRIFT_METHODS[method.lower()]
    count = _I64()
    N.check(lib.ml_drift_correct(N.ptr(a), len(a), m, ctypes.byref(o), None, None, None, 0, ctypes.byref(count)),
            "ml_drift_correct")
    out = np.empty_like(a)
    drift = np.zeros(count.value, dtype=DRIFT_DTYPE)
    dx = np.empty(count.value, np.float64)
    dy = np.empty(count.value, np.float64)
    N.check(lib.ml_drift_correct(N.ptr(a), len(a), m, ctypes.byref(o), N.ptr(out), N.ptr(dx), N.ptr(dy), len(dx),
                                 ctypes.byref(count)), "ml_drift_correct")
    drift["frame"] = np.arange(count.value)
    drift["dx_px"] = dx
    drift["dy_px"] = dy
    return out, drift


# -------------------------------------------------------------------------------------------------------------- merge

def merge(locs, radius: float = 0.5, gap: int = 1) -> np.ndarray:
    """Merges detections of one molecule in consecutive frames (ml_merge): a detection joins a track whose last position
    is within ``radius`` camera px and at most ``gap`` missed frames back. Each molecule gets the photon-weighted position,
    the summed photons, its first frame, and ``detections`` = how many detections it merges. Ordered by first frame."""
    a = _locs(locs, need_one=False, what="merge")
    r = _number("radius", radius, lo=0, unit="px")
    g = _int("gap", gap, 0)
    out = np.empty(len(a), dtype=LOCALIZATION_DTYPE)
    count = _I64()
    N.check(_lib().ml_merge(_ptr(a), len(a), r, g, _ptr(out), len(out), ctypes.byref(count)), "ml_merge")
    return out[: count.value].copy()


# ------------------------------------------------------------------------------------------------------------- filter

def filter_mask(locs, expression: str, pixel_size: float = 100.0) -> np.ndarray:
    """Boolean mask: where ``expression`` holds (ml_filter_expression). The expression compares the CSV columns
    (FILTER_COLUMNS: nm, photons, 1-based ``frame`` and ``id``), e.g. ``"uncertainty [nm] < 20 && intensity [photon] > 300"``;
    operators ``|| && ! < <= > >= == != + - * /`` and parentheses; ``pixel_size`` (nm) converts px to the nm columns.
    A syntax error or an unknown column raises MaLiangValueError naming it."""
    if not isinstance(expression, str):
        raise TypeError(f"maliang: expression must be a string, got {type(expression).__name__}")
    if not expression.strip():
        raise ValueError("maliang: expression is empty")
    if "\x00" in expression:
        raise ValueError("maliang: expression contains a NUL character")
    a = _locs(locs, need_one=False, what="filter")
    px = _number("pixel_size", pixel_size, lo=0, unit="nm")
    keep = np.zeros(len(a), np.uint8)
    kept = _I64()
    N.check(_lib().ml_filter_expression(_ptr(a), len(a), expression.encode("utf-8"), px, _ptr(keep), ctypes.byref(kept)),
            "ml_filter_expression")
    return keep.astype(bool)


def filter(locs, expression: str, pixel_size: float = 100.0) -> np.ndarray:  # noqa: A001 (maliang.filter, as the CLI verb)
    """The localizations where ``expression`` holds (see :func:`filter_mask`), as a new array."""
    a = _locs(locs, need_one=False, what="filter")
    return a[filter_mask(a, expression, pixel_size)]


def density_mask(locs, radius: float, min_neighbours: int = 3) -> np.ndarray:
    """Boolean mask: localizations with at least ``min_neighbours`` others (any frame) within ``radius`` camera px."""
    a = _locs(locs, need_one=False, what="density_filter")
    r = _number("radius", radius, lo=0, unit="px")
    k = _int("min_neighbours", min_neighbours, 0)
    keep = np.zeros(len(a), np.uint8)
    kept = _I64()
    N.check(_lib().ml_density_filter(_ptr(a), len(a), r, k, _ptr(keep), ctypes.byref(kept)), "ml_density_filter")
    return keep.astype(bool)


def density_filter(locs, radius: float, min_neighbours: int = 3) -> np.ndarray:
    """The localizations kept by :func:`density_mask` (``radius`` in camera px), as a new array."""
    a = _locs(locs, need_one=False, what="density_filter")
    return a[density_mask(a, radius, min_neighbours)]


# ---------------------------------------------------------------------------------------------------------------- frc

def frc(locs, pixel_size: float = 100.0, super_pixel: float = 5.0, *, seed: int = 0, block_frames: int = 0,
        split: str = "random", threshold: float = 1.0 / 7.0):
    """Fourier ring correlation resolution (ml_frc). Returns ``(resolution_nm, curve)``.

    The localizations are split into two halves by blocks of ``block_frames`` frames (0 = a twentieth of the frames),
    assigned at random (``split="random"``, ``seed``) or alternately (``split="odd_even"``: block k = frame // block_frames
    goes to half k % 2); each half is binned into ``super_pixel`` nm pixels (``pixel_size``: camera pixel, nm).
    ``resolution_nm`` is 1 / the spatial frequency where the smoothed curve first falls below ``threshold`` (NaN when it
    never does). ``curve`` is a FRC_DTYPE array (``frequency_per_nm``, ``frc``, ``frc_smoothed``)."""
    a = _locs(locs, need_one=True, what="frc")
    if not isinstance(split, str) or split.lower() not in FRC_SPLITS:
        raise ValueError(f"maliang: split {split!r} is not one of {', '.join(FRC_SPLITS)}")
    lib = _lib()
    o = MlFrcOptions()
    N.check(lib.ml_default_frc_options(ctypes.byref(o)), "ml_default_frc_options")
    o.pixel_size_nm = _number("pixel_size", pixel_size, lo=0, unit="nm")
    o.super_pixel_nm = _number("super_pixel", super_pixel, lo=0, unit="nm")
    o.seed = _int("seed", seed, -(2**31))
    o.block_frames = _int("block_frames", block_frames, 0)
    o.split = FRC_SPLITS[split.lower()]
    o.threshold = _number("threshold", threshold, lo=0)
    if o.threshold >= 1:
        raise ValueError(f"maliang: threshold must be in (0, 1), got {threshold}")
    res = _D()
    points = _I64()
    q = np.empty(FRC_MAX_POINTS, np.float64)
    c = np.empty(FRC_MAX_POINTS, np.float64)
    s = np.empty(FRC_MAX_POINTS, np.float64)
    N.check(lib.ml_frc(N.ptr(a), len(a), ctypes.byref(o), ctypes.byref(res), N.ptr(q), N.ptr(c), N.ptr(s),
                       FRC_MAX_POINTS, ctypes.byref(points)), "ml_frc")
    m = points.value
    curve = np.empty(m, dtype=FRC_DTYPE)
    curve["frequency_per_nm"], curve["frc"], curve["frc_smoothed"] = q[:m], c[:m], s[:m]
    return float(res.value), curve


# ------------------------------------------------------------------------------------------------------------- motion

def _window(w, name):
    try:
        first, last = w
    except (TypeError, ValueError):
        raise TypeError(f"maliang: {name} must be (first, last) 0-based frames, got {w!r}") from None
    first = _int(f"{name} first frame", first, 0)
    last = _int(f"{name} last frame", last, 0)
    if last < first:
        raise ValueError(f"maliang: {name} ({first}, {last}) is empty: last < first")
    return first, last


def motion(locs, region, windows, pixel_size: float = 100.0) -> dict:
    """Motion of a linear structure between two frame windows (ml_motion; the MaLiang paper's section 3.3 statistic).

    ``region=(x0, y0, x1, y1)`` in camera px around the structure; ``windows=((first1, last1), (first2, last2))``,
    0-based frames, both ends included. A line is fitted to the localizations in the region (4-sigma outliers dropped),
    and the mean positions of each window's localizations along its normal are compared. Returns a dict: ``in_region``,
    ``inliers``, ``n1``, ``n2``, ``mean1_nm``, ``stderr1_nm``, ``mean2_nm``, ``stderr2_nm``, ``displacement_nm``
    (mean2 - mean1), ``z`` (displacement / combined standard error), and the line: ``line_x``, ``line_y`` (px),
    ``direction_x/y``, ``normal_x/y``."""
    x0, y0, x1, y1 = _region(region)
    try:
        w1, w2 = windows
    except (TypeError, ValueError):
        raise TypeError(f"maliang: windows must be ((first1, last1), (first2, last2)), got {windows!r}") from None
    f1, l1 = _window(w1, "window 1")
    f2, l2 = _window(w2, "window 2")
    px = _number("pixel_size", pixel_size, lo=0, unit="nm")
    a = _locs(locs, need_one=True, what="motion")
    r = MlMotionResult()
    r.struct_size = ctypes.sizeof(MlMotionResult)
    N.check(_lib().ml_motion(N.ptr(a), len(a), x0, y0, x1, y1, f1, l1, f2, l2, px, ctypes.byref(r)), "ml_motion")
    return {k: getattr(r, k) for k, _ in MlMotionResult._fields_ if k not in ("struct_size", "reserved")}
