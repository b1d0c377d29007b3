"""localize() and Localizer: the engine behind ml_create / ml_push_frames / ml_read_results."""
from __future__ import annotations

import ctypes
import math
import numbers
import os
import signal
import sys
import threading
import warnings
import weakref
from typing import Callable, Optional

import numpy as np

from . import _native as N
from ._native import LOCALIZATION_DTYPE

# Settings of localize() / Localizer(), with their defaults (the CLI's options, DESIGN.md units).
DEFAULTS = dict(
    pixel_size=100.0,
    psf_sigma=1.3,
    offset=0.0,
    photons_per_adu=1.0,
    em_gain=1.0,
    threshold=5.0,
    roi=7,
    filter="maliang",
    fixed_sigma=False,
    iterations=None,
    backend="auto",
    # beyond the list: the rest of ml_settings
    tolerance=1e-4,
    use_tolerance=True,
    reject_overlapping=False,   # the engine's default: close candidates kept and refitted after neighbour subtraction
    threads=0,
    # crowded frames (issue 17) and detection options the CLI had before the bindings did
    multi_emitter=True,
    max_emitters=8,
    multi_p_value=1e-6,
    camera_noise=True,
    drop_edge=False,
    min_snr=5.0,
    noise_clip=True,
    residual_search=False,
)


def _finite(name, v, *, lo=None, lo_open=True, hi=None, hi_open=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"maliang: {name} must be a number, got {type(v).__name__} {v!r}")
    v = float(v)
    if math.isnan(v):
        raise N.MaLiangValueError(f"maliang: {name} is NaN")
    if math.isinf(v):
        raise N.MaLiangValueError(f"maliang: {name} must be finite, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise N.MaLiangValueError(f"maliang: {name} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise N.MaLiangValueError(f"maliang: {name} must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def _integer(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer():
            v = int(v)
        else:
            raise TypeError(f"maliang: {name} must be an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if not lo <= v <= hi:
        raise N.MaLiangValueError(f"maliang: {name} must be {lo} to {hi}, got {v}")
    return v


def _choice(name, v, table):
    if not isinstance(v, str) or v.lower() not in table:
        raise N.MaLiangValueError(f"maliang: {name} {v!r} is not one of {', '.join(table)}")
    return table[v.lower()]


def _flag(name, v) -> int:
    """A switch of the new settings: True/False (numpy bools and 0/1 too). Strings are refused, since bool("False")
    is True and would silently invert the option."""
    if isinstance(v, (bool, np.bool_)):
        return 1 if v else 0
    if isinstance(v, numbers.Integral) and int(v) in (0, 1):
        return int(v)
    if isinstance(v, numbers.Integral):
        raise N.MaLiangValueError(f"maliang: {name} must be True or False, got {v!r}")
    raise TypeError(f"maliang: {name} must be True or False, got {type(v).__name__} {v!r}")


def make_settings(**kw) -> N.MlSettings:
    """Validates settings (same ranges as the engine) and fills an ml_settings."""
    unknown = set(kw) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"maliang: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    v = {**DEFAULTS, **kw}
    s = N.MlSettings()
    N.check(N.lib().ml_default_settings(ctypes.byref(s)), "ml_default_settings")
    s.pixel_size_nm = _finite("pixel_size", v["pixel_size"], lo=0)
    if v["psf_sigma"] is None:
        # estimate from the data; psf_sigma_px keeps the engine's default as the fallback
        s.estimate_psf_sigma = 1
    else:
        s.psf_sigma_px = _finite("psf_sigma", v["psf_sigma"], lo=0, hi=20)
        s.estimate_psf_sigma = 0
    s.offset_adu = _finite("offset", v["offset"], lo=0, lo_open=False)
    s.photons_per_adu = _finite("photons_per_adu", v["photons_per_adu"], lo=0)
    s.em_gain = _finite("em_gain", v["em_gain"], lo=0)
    s.threshold = _finite("threshold", v["threshold"], lo=0)
    s.tolerance = _finite("tolerance", v["tolerance"], lo=0)
    roi = _integer("roi", v["roi"], 3, 31)
    if roi % 2 == 0:
        raise N.MaLiangValueError(f"maliang: roi must be odd (3 to 31 px), got {roi}")
    s.roi_size = roi
    s.filter = _choice("filter", v["filter"], N.FILTERS)
    s.backend = _choice("backend", v["backend"], N.BACKENDS)
    s.fixed_sigma = 1 if bool(v["fixed_sigma"]) else 0
    if v["iterations"] is not None:
        s.iterations = _integer("iterations", v["iterations"], 1, 1000)
    s.use_tolerance = 1 if bool(v["use_tolerance"]) else 0
    s.reject_overlapping = 1 if bool(v["reject_overlapping"]) else 0
    s.threads = _integer("threads", v["threads"], 0, 1024)
    s.multi_emitter = _flag("multi_emitter", v["multi_emitter"])
    s.max_emitters = _integer("max_emitters", v["max_emitters"], 1, N.ML_MAX_GROUP_SIZE)
    s.multi_p_value = _finite("multi_p_value", v["multi_p_value"], lo=0, hi=1, hi_open=True)
    s.camera_noise = _flag("camera_noise", v["camera_noise"])
    s.drop_edge = _flag("drop_edge", v["drop_edge"])
    s.min_snr = _finite("min_snr", v["min_snr"], lo=0, lo_open=False)
    s.noise_clip = _flag("noise_clip", v["noise_clip"])
    s.residual_search = _flag("residual_search", v["residual_search"])
    return s


def _as_frames(frames, roi: int):
    """Checks a 2-D/3-D image array and returns (array to pass, pixel type, n, h, w, row stride in bytes, per_frame).

    The array passed is ``frames`` itself (no copy) when its dtype is one the engine reads (uint8, uint16, uint32,
    int16, int32, float32, native byte order) and its rows are contiguous with positive strides; frames spaced
    unevenly (a slice like ``stack[::2]``) are pushed one by one (``per_frame``), still without a copy. Anything
    else (float64, other integer types, big-endian data, Fortran order, negative strides) is converted once to a
    C-contiguous float32 (or the same integer type) array."""
    if isinstance(frames, np.ndarray):
        a = frames
    elif hasattr(frames, "__array__") or isinstance(frames, (list, tuple)):
        a = np.asarray(frames)
    else:
        raise TypeError(f"maliang: frames must be a numpy array (2-D frame or 3-D stack), got {type(frames).__name__}")
    if a.ndim not in (2, 3):
        raise ValueError(f"maliang: frames must be 2-D (height, width) or 3-D (frames, height, width), got {a.ndim}-D shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"maliang: frames is empty (shape {a.shape})")
    kind = a.dtype.kind
    if kind not in "uif" or a.dtype.fields is not None:
        raise TypeError(f"maliang: frames must be an integer or float image (uint16 or float32 preferred), got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[np.newaxis]
    n, h, w = a.shape
    if h < roi or w < roi:
        raise ValueError(f"maliang: frames of {w}x{h} px are smaller than the {roi}x{roi} ROI")
    if max(n, h, w) > 2**31 - 1:
        raise ValueError(f"maliang: shape {a.shape} is too large for the C ABI (int32 sizes)")
    if h * w >= 2**31:
        raise ValueError(f"maliang: frames of {w}x{h} px ({h * w} pixels) are too large: the engine takes frames of "
                         f"fewer than 2^31 pixels")
    dt = a.dtype
    if dt.byteorder not in ("=", "|") and dt != dt.newbyteorder("="):
        dt = dt.newbyteorder("=")  # big-endian -> native
    if np.dtype(dt) not in N.PIXEL_TYPES:
        dt = np.dtype(np.float32)  # float64, float16, int8, int64, uint64, ...: one conversion
    dt = np.dtype(dt)
    if dt != a.dtype:
        a = np.ascontiguousarray(a, dtype=dt)
    item = a.itemsize
    s0, s1, s2 = a.strides
    if s2 != item or s1 < w * item or s0 < 0:
        a = np.ascontiguousarray(a)
        s0, s1, s2 = a.strides
    per_frame = n > 1 and s0 != h * s1
    stride = 0 if s1 == w * item else s1
    return a, N.PIXEL_TYPES[dt], n, h, w, stride, per_frame


CAMERA_MAP_KEYS = ("camera_offset_map", "camera_variance_map", "camera_gain_map", "camera_origin")


def _camera_maps(camera_offset_map=None, camera_variance_map=None, camera_gain_map=None, camera_origin=(0, 0)):
    """Checks the sCMOS maps (2-D arrays of the whole sensor, equal shapes) and the origin; returns
    (offset, variance, gain as C-contiguous float32 copies or None, sensor width, height, origin x, y), or None when no
    map is given. Values (finite; offset >= 0; variance and gain > 0) are checked by the engine, which names the pixel."""
    maps = {"camera_offset_map": camera_offset_map, "camera_variance_map": camera_variance_map,
            "camera_gain_map": camera_gain_map}
    shape = None
    out = []
    for name, m in maps.items():
        if m is None:
            out.append(None)
            continue
        a = np.asarray(m)
        if a.dtype.kind not in "uif" or a.dtype.fields is not None:
            raise TypeError(f"maliang: {name} must be a numeric 2-D array (sensor height, width), got dtype {a.dtype}")
        if a.ndim != 2 or a.size == 0:
            raise ValueError(f"maliang: {name} must be a 2-D array (sensor height, width), got shape {a.shape}")
        if shape is not None and a.shape != shape:
            raise ValueError(f"maliang: {name} has shape {a.shape}, the other camera maps {shape}; all maps cover the whole sensor")
        if a.shape[0] * a.shape[1] >= 2**31:
            raise ValueError(f"maliang: {name} of shape {a.shape} is too large (fewer than 2^31 pixels)")
        shape = a.shape
        out.append(np.array(a, dtype=np.float32, order="C", copy=True))
    try:
        ox, oy = camera_origin
    except (TypeError, ValueError):
        raise TypeError(f"maliang: camera_origin must be (x, y), got {camera_origin!r}") from None
    ox = _integer("camera_origin x", ox, 0, 2**31 - 1)
    oy = _integer("camera_origin y", oy, 0, 2**31 - 1)
    if shape is None:
        if (ox, oy) != (0, 0):
            raise ValueError("maliang: camera_origin given without a camera map (camera_offset_map, camera_variance_map, camera_gain_map)")
        return None
    return (*out, shape[1], shape[0], ox, oy)


def _calibration_path(calibration) -> bytes:
    """A z calibration file (str or os.PathLike) as bytes for the C ABI; checked before the engine sees it."""
    if not isinstance(calibration, (str, bytes, os.PathLike)):
        raise TypeError(f"maliang: calibration must be the path of a z calibration file (str or os.PathLike), got {type(calibration).__name__}")
    p = os.fsencode(os.fspath(calibration))
    if not p or b"\0" in p:
        raise ValueError(f"maliang: calibration path {calibration!r} is empty or contains a NUL byte")
    return p


def _z_calibration_dict(c: N.MlZCalibration) -> dict:
    curve = lambda i: {"sigma0_px": c.sigma0_px[i], "a": c.a[i], "b": c.b[i], "c_nm": c.c_nm[i], "d_nm": c.d_nm[i]}  # noqa: E731
    return {"x": curve(0), "y": curve(1), "pixel_size_nm": c.pixel_size_nm, "z_range_nm": (c.z_min_nm, c.z_max_nm),
            "refractive_index_factor": c.refractive_index_factor, "beads": c.beads, "rejected_fits": c.rejected_fits}


def calibrate_z(path, z_step_nm, output=None, *, z_first_nm=None, refractive_index_factor=1.0, plot=None, **settings) -> dict:
    """3D astigmatism: calibrates the width curves sigma_x(z), sigma_y(z) from a bead z-stack TIFF (``maliang
    calibrate-z``). Frame k is at stage z = ``z_first_nm`` + k x ``z_step_nm`` (nm; without ``z_first_nm``, z = 0 where
    the two widths are equal). Settings (camera, filter, threshold, pixel_size) as for :func:`localize`. Writes the
    calibration YAML to ``output`` and the plot PNG to ``plot`` when given (nothing is written on error); returns the
    calibration as a dict: ``x`` and ``y`` curves (sigma0_px, a, b, c_nm, d_nm: sigma(z) = sigma0 sqrt(1 + u^2 + a u^3
    + b u^4), u = (z - c) / d), ``pixel_size_nm``, ``z_range_nm``, ``refractive_index_factor``, ``beads``,
    ``rejected_fits``. Pass the file to ``localize(..., calibration=output)``."""
    stack = _calibration_path(path)
    step = _finite("z_step_nm", z_step_nm, lo=0)
    first = math.nan if z_first_nm is None else _finite("z_first_nm", z_first_nm)
    factor = _finite("refractive_index_factor", refractive_index_factor, lo=0)
    out = None if output is None else _calibration_path(output)
    png = None if plot is None else _calibration_path(plot)
    s = make_settings(**settings)
    c = N.MlZCalibration()
    N.check(N.lib().ml_calibrate_z(stack, ctypes.byref(s), step, first, factor, out, png, ctypes.byref(c)), "ml_calibrate_z")
    return _z_calibration_dict(c)


def read_z_calibration(path, pixel_size=100.0) -> dict:
    """Reads a z calibration file (MaLiang's YAML, ThunderSTORM's or Picasso's) into the dict :func:`calibrate_z`
    returns; ``pixel_size`` (nm) stands in where the file has none."""
    c = N.MlZCalibration()
    N.check(N.lib().ml_read_z_calibration(_calibration_path(path), _finite("pixel_size", pixel_size, lo=0), ctypes.byref(c)),
            "ml_read_z_calibration")
    return _z_calibration_dict(c)


def _summary_dict(s: N.MlSummary, groups_by_size=None) -> dict:
    d = {name: getattr(s, name) for name, _ in N.MlSummary._fields_ if name not in ("reserved", "backend")}
    d["backend"] = bytes(s.backend).split(b"\0", 1)[0].decode("utf-8", "replace")
    d["ms_per_frame"] = d["wall_seconds"] * 1e3 / d["frames"] if d["frames"] else 0.0
    if groups_by_size is not None:
        d["groups_by_size"] = groups_by_size
    return d


def _destroy(handle: ctypes.c_void_p, lib) -> None:
    lib.ml_destroy(handle)


class _ProgressBar:
    """``progress=True``: a tqdm bar on stderr per push (frames, frames/s, time left, localizations so far).
    Without tqdm installed, a warning says so once and no bar is shown."""

    def __init__(self):
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
            warnings.warn("maliang: progress=True shows a tqdm bar, but tqdm is not installed (pip install tqdm, or "
                          "apt install python3-tqdm): no progress is shown", stacklevel=4)
        self._tqdm = tqdm
        self._bar = None
        self._first = 0

    def begin(self, first: int, total: Optional[int]) -> None:
        """total None: not known yet (a file the engine opens); the bar starts at the first callback's total."""
        self.end()
        self._first = first
        if self._tqdm is not None and total is not None:
            self._bar = self._tqdm(total=total - first, unit="frame", desc="maliang", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, total: int, localizations: int) -> None:
        if self._bar is None and self._tqdm is not None and total > self._first:
            self.begin(self._first, total)
        if self._bar is not None:
            self._bar.set_postfix_str(f"{localizations} localizations", refresh=False)
            self._bar.update(done - self._first - self._bar.n)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Localizer:
    """A streaming localizer: ``push()`` frames as they arrive, read ``results()`` at any time.

    Settings are those of :func:`localize`. Frame numbers (0-based) count every frame pushed to this localizer.
    Use as a context manager (``with maliang.Localizer(...) as loc:``) or call :meth:`close`; a finalizer frees the
    native handle when the object is collected. :meth:`cancel` may be called from any thread (also while another
    thread closes the localizer) and stops the push in progress, or else the next push (which raises
    :class:`maliang.Cancelled`). Other methods are serialized by a lock: :meth:`close` from another thread waits for
    the push in progress to return. From inside the progress callback, :meth:`close`, :meth:`push`, :meth:`clear` and
    :meth:`set_progress` raise RuntimeError (return True from the callback to cancel instead).
    """

    def __init__(self, *, progress: Optional[Callable[[int, int, int], Optional[bool]]] = None, calibration=None, **settings):
        camera = {k: settings.pop(k) for k in CAMERA_MAP_KEYS if k in settings}
        maps = _camera_maps(**camera)  # checked before the localizer is made
        self._settings = make_settings(**settings)
        self.settings = {**DEFAULTS, **settings}
        cal = None if calibration is None else _calibration_path(calibration)
        self.calibration = calibration
        self._lib = N.lib()
        h = ctypes.c_void_p()
        if cal is None:
            N.check(self._lib.ml_create(ctypes.byref(self._settings), ctypes.byref(h)), "ml_create")
        else:
            N.check(self._lib.ml_create_3d(ctypes.byref(self._settings), cal, ctypes.byref(h)), "ml_create_3d")
        self._handle = h
        self._lock = threading.RLock()  # serializes push/read/close; held for the whole of a push
        self._handle_lock = threading.Lock()  # only around destroying (close) and ml_cancel: never held by a push
        self._in_push = False  # True while ml_push_frames runs (the progress callback runs on the pushing thread)
        self._finalizer = weakref.finalize(self, _destroy, h, self._lib)
        self._progress = None
        self._callback = None  # the CFUNCTYPE object: kept alive as long as the native side may call it
        self._callback_error = None
        self._frames_total = 0
        self._interrupted = []  # non-empty once SIGINT arrived during the push in progress (see _interruptible)
        # The callback is always installed, even without a user's progress: Python's signal handlers run only when the
        # main thread runs Python code, and while the engine runs (without the GIL) that is this callback, after each
        # chunk. push() installs a SIGINT handler that runs there and makes it cancel the push (see _interruptible).
        self._callback = N.PROGRESS_FN(self._trampoline)
        N.check(self._lib.ml_set_progress(h, self._callback, None), "ml_set_progress")
        if progress is not None and progress is not False:
            self.set_progress(progress)
        if maps is not None:
            self._set_maps(maps)
        self.settings.update(camera)

    def set_camera_maps(self, camera_offset_map=None, camera_variance_map=None, camera_gain_map=None,
                        camera_origin=(0, 0)) -> None:
        """sCMOS camera maps for the frames pushed from now on (all None removes them); see :func:`localize`."""
        maps = _camera_maps(camera_offset_map, camera_variance_map, camera_gain_map, camera_origin)
        with self._lock:
            self._not_in_callback("set_camera_maps()")
            self._set_maps(maps)

    def _set_maps(self, maps) -> None:
        h = self._h()
        if maps is None:
            N.check(self._lib.ml_set_camera_maps(h, None, None, None, 0, 0, 0, 0), "ml_set_camera_maps")
            return
        off, var, gain, w, hgt, ox, oy = maps
        p = [None if a is None else ctypes.c_void_p(a.ctypes.data) for a in (off, var, gain)]
        N.check(self._lib.ml_set_camera_maps(h, p[0], p[1], p[2], w, hgt, ox, oy), "ml_set_camera_maps")  # copied there

    def _trampoline(self, done, total, locs, _user):
        try:
            if self._interrupted:
                return 1  # Ctrl-C: cancel this push (a callback's cancel, unlike ml_cancel, never carries to the next)
            progress = self._progress
            if progress is None:
                return 0
            return 1 if progress(int(done), int(self._frames_total or total), int(locs)) else 0
        except BaseException as e:  # never let an exception unwind into C; KeyboardInterrupt too
            self._callback_error = e
            return 1

    # -- lifetime -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the native localizer (idempotent). Called from another thread while a push runs, it waits for the
        push to return; called from the progress callback (on the pushing thread) it raises RuntimeError."""
        with self._lock:
            self._not_in_callback("close()")
            with self._handle_lock:
                self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _h(self):
        if not self._finalizer.alive:
            raise ValueError("maliang: this Localizer is closed")
        return self._handle

    def _not_in_callback(self, what: str) -> None:
        # Call with self._lock held: _in_push is then only True when this thread is the pushing one, i.e. we were
        # called from the progress callback, in the middle of ml_push_frames.
        if self._in_push:
            raise RuntimeError(f"maliang: {what} cannot be called from the progress callback while the Localizer is "
                               f"pushing frames; return True from the callback to cancel the push, then call it after "
                               f"push() has returned")

    # -- progress and cancellation ----------------------------------------------------------------------------------
    def set_progress(self, progress) -> None:
        """``progress(frames_done, frames_total, localizations)`` is called after each chunk of frames from the thread
        that pushes; returning True cancels. frames_done counts frames of this localizer; frames_total is the count
        this push (or localize() call) will reach. An exception in the callback cancels the push and is re-raised
        by :meth:`push` (or :func:`localize`). ``True`` shows a tqdm progress bar on stderr for each push (frames/s,
        time left); ``None`` or ``False``: no progress."""
        if progress is True:
            progress = _ProgressBar()
        elif progress is False:
            progress = None
        if progress is not None and not callable(progress):
            raise TypeError("maliang: progress must be callable(frames_done, frames_total, localizations), True (a "
                            "tqdm bar), False or None")
        with self._lock:
            self._not_in_callback("set_progress()")
            self._h()
            self._progress = progress

    def cancel(self) -> None:
        """Stops the push in progress, or else the next push (which then raises :class:`maliang.Cancelled`).

        Thread-safe (ml_cancel is): call it from any thread, also from the progress callback. A closed localizer,
        or one being closed by another thread at the same time, is left alone (no error)."""
        with self._handle_lock:
            if self._finalizer.alive:
                N.check(self._lib.ml_cancel(self._handle), "ml_cancel")

    # -- frames in, localizations out -------------------------------------------------------------------------------
    def push(self, frames) -> np.ndarray:
        """Localizes one frame (2-D) or a stack (3-D, frames first) and returns the new localizations.

        uint16 and float32 (and uint8, int16, int32, uint32) frames are read in place by the engine without a copy,
        C-contiguous or with padded/strided rows; other dtypes are converted once to float32 (see :func:`localize`).
        All results stay available through :meth:`results` until :meth:`clear`. A cancelled push raises
        :class:`maliang.Cancelled` (``.partial``: the localizations of this push so far); an exception raised by the
        progress callback is re-raised here."""
        with self._lock:
            self._not_in_callback("push()")
            h = self._h()
            a, ptype, n, hgt, wid, stride, per_frame = _as_frames(frames, self._settings.roi_size)
            first = self.result_count()
            self._frames_total = self.frames + n
            chunks = [(a[i].ctypes.data, 1) for i in range(n)] if per_frame else [(a.ctypes.data, n)]

            def call(interrupted):
                status = N.ML_OK
                for address, count in chunks:
                    status = self._lib.ml_push_frames(h, ctypes.c_void_p(address), wid, hgt, count, stride, ptype)
                    if status != N.ML_OK or self._callback_error is not None or interrupted:
                        break
                return status

            return self._run_push(call, first, self._frames_total - n, self._frames_total, "ml_push_frames")

    def _run_push(self, call, first: int, bar_first: int, bar_total, what: str) -> np.ndarray:
        """The protocol of every push (frames or a file), with self._lock held: the tqdm bar (``bar_total`` None when
        only the engine knows it), the Ctrl-C handler, the callback's exception, cancel and errors. ``call(interrupted)``
        runs the native push and returns its status; returns the localizations from index ``first`` on."""
        self._callback_error = None
        bar = self._progress if isinstance(self._progress, _ProgressBar) else None
        if bar is not None:
            bar.begin(bar_first, bar_total)
        interrupted, restore = self._interruptible()
        self._in_push = True
        try:
            status = call(interrupted)
            message = N.last_error() if status != N.ML_OK else ""  # same thread, before any other call
        finally:
            self._in_push = False
            restore()
            if bar is not None:
                bar.end()
        err, self._callback_error = self._callback_error, None
        if interrupted:  # Ctrl-C: the push stopped after the chunk in progress; nothing is returned
            raise KeyboardInterrupt
        if err is not None:  # whatever the status (ML_OK, ML_ERR_CANCELLED, ...): the callback's exception wins
            raise err
        if status == N.ML_ERR_CANCELLED:
            raise N.Cancelled(message or "maliang: the push was cancelled", self._read(first))
        if status != N.ML_OK:
            N.check(status, what)
        return self._read(first)

    def _interruptible(self):
        """Ctrl-C during a push: on the main thread, with Python's default SIGINT handler in place, a handler that
        only takes note; the progress callback (where Python runs the handler while the engine works) then cancels
        the push, and push() raises KeyboardInterrupt once the engine has stopped. The default handler would raise
        KeyboardInterrupt at the entry of the progress callback, where ctypes can only print and drop it.
        Returns (a list that becomes non-empty on SIGINT, restore())."""
        interrupted = self._interrupted = []
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            return interrupted, lambda: None

        def on_sigint(signum, frame):
            interrupted.append(signum)

        previous = signal.signal(signal.SIGINT, on_sigint)
        return interrupted, lambda: signal.signal(signal.SIGINT, previous)

    def push_file(self, path) -> np.ndarray:
        """Localizes every frame of a TIFF file read by the engine's own reader (ml_push_file), as ``maliang localize``
        does: 8/16/32-bit grayscale, strips or tiles, uncompressed, LZW, Deflate or PackBits, multi-page, BigTIFF,
        ImageJ and OME-TIFF stacks (a Micro-Manager ``*_MMStack_*.ome.tif`` set opens whole from its first file). The
        file is streamed frame by frame, never loaded whole. Returns the new localizations. An unreadable or
        unsupported file (truncated, JPEG-compressed, RGB) raises ValueError (:class:`maliang.MaLiangValueError`), a
        missing one OSError, each naming the file (and frame)."""
        from .io import _path
        p = _path(path)
        with self._lock:
            self._not_in_callback("push_file()")
            h = self._h()
            first = self.result_count()
            self._frames_total = 0  # not known before the engine opens the file: the callback gets the engine's total
            return self._run_push(lambda interrupted: self._lib.ml_push_file(h, p), first, self.frames, None, "ml_push_file")

    def result_count(self) -> int:
        with self._lock:
            c = ctypes.c_int64()
            N.check(self._lib.ml_result_count(self._h(), ctypes.byref(c)), "ml_result_count")
            return c.value

    def _read(self, first: int = 0) -> np.ndarray:
        count = self.result_count() - first
        out = np.empty(max(count, 0), dtype=LOCALIZATION_DTYPE)
        if count > 0:
            written = ctypes.c_int64()
            N.check(self._lib.ml_read_results(self._h(), first, N.ptr(out), count, ctypes.byref(written)), "ml_read_results")
            out = out[: written.value]
        return out

    def results(self) -> np.ndarray:
        """All localizations so far (a new structured array of :data:`maliang.LOCALIZATION_DTYPE`)."""
        with self._lock:
            return self._read(0)

    def clear(self) -> None:
        """Forgets the results kept so far (frame numbering goes on)."""
        with self._lock:
            self._not_in_callback("clear()")
            N.check(self._lib.ml_clear_results(self._h()), "ml_clear_results")

    def summary(self) -> dict:
        """ml_summary as a dict: frames, localizations, candidates, dropped_*, wall_seconds (engine time), per-stage
        seconds, threads, backend, ms_per_frame, and groups_by_size (ml_get_groups_by_size): a list of 13 counts,
        element k = joint fits of k emitters (element 1: single fits, element 0 always 0; all 0 with
        ``multi_emitter=False``)."""
        with self._lock:
            s = N.MlSummary()
            N.check(self._lib.ml_get_summary(self._h(), ctypes.byref(s)), "ml_get_summary")
            g = (ctypes.c_int64 * (N.ML_MAX_GROUP_SIZE + 1))()
            n = ctypes.c_int32()
            N.check(self._lib.ml_get_groups_by_size(self._h(), g, len(g), ctypes.byref(n)), "ml_get_groups_by_size")
            return _summary_dict(s, [int(x) for x in g[:min(n.value, len(g))]])

    @property
    def frames(self) -> int:
        """Frames pushed so far (the next frame pushed gets this 0-based number)."""
        return int(self.summary()["frames"])

    @property
    def last_push_address(self) -> int:
        """Address of the pixels the engine read in the last push (equals ``frames.ctypes.data`` when not copied)."""
        with self._lock:
            p = ctypes.c_void_p()
            N.check(self._lib.ml_last_push_address(self._h(), ctypes.byref(p)), "ml_last_push_address")
            return p.value or 0

    def __repr__(self):
        state = "closed" if self.closed else f"{self.frames} frames, {self.result_count()} localizations"
        return f"<maliang.Localizer {state}>"


def localize(
    frames,
    *,
    pixel_size=100.0,
    psf_sigma=1.3,
    offset=0.0,
    photons_per_adu=1.0,
    em_gain=1.0,
    threshold=5.0,
    roi=7,
    filter="maliang",
    fixed_sigma=False,
    iterations=None,
    backend="auto",
    multi_emitter=True,
    max_emitters=8,
    multi_p_value=1e-6,
    camera_noise=True,
    drop_edge=False,
    min_snr=5.0,
    noise_clip=True,
    residual_search=False,
    progress=None,
    camera_offset_map=None,
    camera_variance_map=None,
    camera_gain_map=None,
    camera_origin=(0, 0),
    calibration=None,
    **more,
) -> np.ndarray:
    """Finds and fits single molecules in a frame or stack by Poisson MLE; returns a structured array.

    Parameters
    ----------
    frames : numpy array, 2-D ``(height, width)`` or 3-D ``(frames, height, width)``, in ADU.
        uint16 and float32 are the native types (uint8, int16, int32 and uint32 too). A C-contiguous array is passed
        to the engine by pointer, without a copy; so is one with padded rows (a column crop like
        ``stack[:, :, 5:300]``), the row stride passed along; frames spaced unevenly (``stack[::2]``, or a crop of
        rows like ``stack[:, 10:200, 5:300]``) are pushed one frame at a time, still without a copy. Any other integer or float dtype (float64, float16, int8, int64, uint64) and
        big-endian, Fortran-ordered or reversed arrays are converted **once** to a C-contiguous array (float32 for
        other dtypes) before the call. bool, complex and object arrays raise TypeError.
    pixel_size : camera pixel size, nm (only for the nm columns of CSV/DataFrame output; positions are in px).
    psf_sigma : PSF standard deviation in camera px (fit start value; fixed with ``fixed_sigma=True``), (0, 20].
        ``None``: estimated by the engine from isolated spots of the first push's frames, as ``maliang localize``
        does without ``--psf-sigma`` (ml_settings.estimate_psf_sigma = 1; 1.3 px where too few spots are found).
        The default stays a number, so that results do not depend on how frames are pushed.
    offset, photons_per_adu, em_gain : camera model, photons = (ADU - offset) x photons_per_adu / em_gain.
    threshold : detection threshold, multiples of the filtered frame's robust noise.
    roi : odd fit-window edge, 3 to 31 px.
    filter : "maliang" (the paper's), "wavelet" (ThunderSTORM's) or "none".
    fixed_sigma : fix the PSF sigma instead of fitting it.
    iterations : maximum fit iterations (None = the engine's default, 20).
    backend : "auto", "cpu", "opencl" or "cuda" (an unavailable GPU backend raises BackendUnavailable, an OSError).
    multi_emitter : fit close or poorly fitted emitters jointly, in groups, and search the residual for emitters the
        detection merged (default True); False is the CLI's ``--single-emitter`` (one emitter per ROI with the
        neighbour refit).
    max_emitters : most emitters in one joint fit, 1 to 12 (default 8; ``--max-emitters``).
    multi_p_value : an emitter joins a group when the likelihood ratio's p-value is below this, in (0, 1)
        (default 1e-6; ``--multi-p-value``).
    camera_noise : detect against the noise the camera model predicts at each maximum's local background (default
        True); False judges candidates against the filtered frame's robust spread (``--spread-threshold``).
    drop_edge : drop candidates whose ROI would cross the frame edge instead of fitting them in a ROI shifted inside
        the frame (default False; ``--drop-edge``).
    min_snr : keep a localization only when its photons are at least this many times their uncertainty (sqrt of the
        CRLB), a number >= 0, photons / photons (default 5; 0 keeps every fit; ``--min-snr``).
    noise_clip : one sigma-clipping step in the detection noise estimate (default True); False uses the filtered
        frame's MAD alone (``--no-noise-clip``).
    residual_search : with ``multi_emitter``, search the frame minus every fitted emitter for missed emitters and fit them with their neighbours, until none is added (default False; ``--residual-search``).
    camera_offset_map, camera_variance_map, camera_gain_map : sCMOS per-pixel calibration, 2-D arrays of the whole
        sensor (height, width), any of them None: offset (ADU, replaces ``offset``), read-noise variance (ADU^2; the fit
        then uses the sCMOS likelihood of Huang et al. 2013 and detection a per-pixel threshold), gain (photons per
        ADU, replaces ``photons_per_adu``). A NaN, or a zero or negative variance or gain, raises ValueError naming the
        map and the pixel.
    camera_origin : ``(x, y)``, the frames' top-left pixel on the sensor (a cropped acquisition), default (0, 0).
    calibration : 3D astigmatism: path of a z calibration file (:func:`calibrate_z`'s YAML, ThunderSTORM's or
        Picasso's) at this ``pixel_size``; each molecule is then fitted for x, y, z, photons and background, and the
        results' ``z`` and ``uncertainty_z`` are in nm (0 without a calibration), flag bit 1 set.
    progress : ``True`` shows a tqdm progress bar on stderr (frames, frames/s, time left; needs tqdm). Or a
        ``callable(frames_done, frames_total, localizations)``, called after each chunk of frames; returning True
        cancels: :class:`maliang.Cancelled` is raised, with the localizations so far in ``.partial``. Ctrl-C
        (KeyboardInterrupt) stops the engine after the chunk in progress and is re-raised; nothing is returned.
    **more : tolerance (1e-4), use_tolerance (True), reject_overlapping (False), threads (0 = all cores).

    A bad setting raises :class:`maliang.MaLiangValueError` (a ValueError) naming the parameter, a wrong type
    TypeError, both before the engine is called.

    Returns
    -------
    numpy structured array of :data:`maliang.LOCALIZATION_DTYPE` (the C struct ml_localization, 76 bytes), sorted
    by frame: ``frame`` (0-based), ``x``, ``y`` (px; origin at the top-left corner of the top-left pixel, so pixel
    column c spans [c, c+1)), ``photons``, ``background`` (photons/px), ``sigma`` (px), ``uncertainty_x``,
    ``uncertainty_y`` (px, sqrt of the CRLB), ``uncertainty_photons``, ``uncertainty_background``,
    ``uncertainty_sigma``, ``loglik``, ``llr``, ``iterations``, ``detections``, ``flags`` (bit 0: converged, bit 1:
    3D), ``z``, ``uncertainty_z`` (nm; 0 in 2D),
    ``fitted_together`` (emitters fitted jointly with it, 1 for a single fit).
    The GIL is released while the engine runs.
    """
    settings = dict(pixel_size=pixel_size, psf_sigma=psf_sigma, offset=offset, photons_per_adu=photons_per_adu,
                    em_gain=em_gain, threshold=threshold, roi=roi, filter=filter, fixed_sigma=fixed_sigma,
                    iterations=iterations, backend=backend, multi_emitter=multi_emitter, max_emitters=max_emitters,
                    multi_p_value=multi_p_value, camera_noise=camera_noise, drop_edge=drop_edge, min_snr=min_snr,
                    noise_clip=noise_clip, residual_search=residual_search, camera_offset_map=camera_offset_map,
                    camera_variance_map=camera_variance_map, camera_gain_map=camera_gain_map, camera_origin=camera_origin,
                    **more)
    with Localizer(progress=progress, calibration=calibration, **settings) as loc:
        return loc.push(frames)


def localize_file(path, *, progress=None, **settings) -> np.ndarray:
    """:func:`localize` on a TIFF file read by the engine (see :meth:`Localizer.push_file`): compressed (LZW, Deflate,
    PackBits) and tiled files included, streamed without loading the stack into memory. Settings as for
    :func:`localize`; returns the same structured array (0-based frames, px)."""
    with Localizer(progress=progress, **settings) as loc:
        return loc.push_file(path)
