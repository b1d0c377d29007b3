"""localize() and Localizer: the engine behind ml_create / ml_push_frames / ml_read_results."""
from __future__ import annotations

import ctypes
import math
import numbers
import threading
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
)


def _finite(name, v, *, lo=None, lo_open=True, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"maliang: {name} must be a number, got {type(v).__name__} {v!r}")
    v = float(v)
    if math.isnan(v):
        raise ValueError(f"maliang: {name} is NaN")
    if math.isinf(v):
        raise ValueError(f"maliang: {name} must be finite, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"maliang: {name} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"maliang: {name} must be <= {hi}, got {v}")
    return v


def _integer(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer():
            v = int(v)
        else:
            raise TypeError(f"maliang: {name} must be an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"maliang: {name} must be {lo} to {hi}, got {v}")
    return v


def _choice(name, v, table):
    if not isinstance(v, str) or v.lower() not in table:
        raise ValueError(f"maliang: {name} {v!r} is not one of {', '.join(table)}")
    return table[v.lower()]


def make_settings(**kw) -> N.MlSettings:
    """Validates settings (same ranges as the engine) and fills an ml_settings."""
    unknown = set(kw) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"maliang: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    v = {**DEFAULTS, **kw}
    s = N.MlSettings()
    N.check(N.lib().ml_default_settings(ctypes.byref(s)), "ml_default_settings")
    s.pixel_size_nm = _finite("pixel_size", v["pixel_size"], lo=0)
    s.psf_sigma_px = _finite("psf_sigma", v["psf_sigma"], lo=0, hi=20)
    s.offset_adu = _finite("offset", v["offset"], lo=0, lo_open=False)
    s.photons_per_adu = _finite("photons_per_adu", v["photons_per_adu"], lo=0)
    s.em_gain = _finite("em_gain", v["em_gain"], lo=0)
    s.threshold = _finite("threshold", v["threshold"], lo=0)
    s.tolerance = _finite("tolerance", v["tolerance"], lo=0)
    roi = _integer("roi", v["roi"], 3, 31)
    if roi % 2 == 0:
        raise ValueError(f"maliang: roi must be odd (3 to 31 px), got {roi}")
    s.roi_size = roi
    s.filter = _choice("filter", v["filter"], N.FILTERS)
    s.backend = _choice("backend", v["backend"], N.BACKENDS)
    s.fixed_sigma = 1 if bool(v["fixed_sigma"]) else 0
    if v["iterations"] is not None:
        s.iterations = _integer("iterations", v["iterations"], 1, 1000)
    s.use_tolerance = 1 if bool(v["use_tolerance"]) else 0
    s.reject_overlapping = 1 if bool(v["reject_overlapping"]) else 0
    s.threads = _integer("threads", v["threads"], 0, 1024)
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


def _summary_dict(s: N.MlSummary) -> dict:
    d = {name: getattr(s, name) for name, _ in N.MlSummary._fields_ if name not in ("reserved", "backend")}
    d["backend"] = bytes(s.backend).split(b"\0", 1)[0].decode("utf-8", "replace")
    d["ms_per_frame"] = d["wall_seconds"] * 1e3 / d["frames"] if d["frames"] else 0.0
    return d


def _destroy(handle: ctypes.c_void_p, lib) -> None:
    lib.ml_destroy(handle)


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

    def __init__(self, *, progress: Optional[Callable[[int, int, int], Optional[bool]]] = None, **settings):
        self._settings = make_settings(**settings)
        self.settings = {**DEFAULTS, **settings}
        self._lib = N.lib()
        h = ctypes.c_void_p()
        N.check(self._lib.ml_create(ctypes.byref(self._settings), ctypes.byref(h)), "ml_create")
        self._handle = h
        self._lock = threading.RLock()  # serializes push/read/close; held for the whole of a push
        self._handle_lock = threading.Lock()  # only around destroying (close) and ml_cancel: never held by a push
        self._in_push = False  # True while ml_push_frames runs (the progress callback runs on the pushing thread)
        self._finalizer = weakref.finalize(self, _destroy, h, self._lib)
        self._progress = None
        self._callback = None  # the CFUNCTYPE object: kept alive as long as the native side may call it
        self._callback_error = None
        self._frames_total = 0
        if progress is not None:
            self.set_progress(progress)

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
        by :meth:`push` (or :func:`localize`)."""
        if progress is not None and not callable(progress):
            raise TypeError("maliang: progress must be callable(frames_done, frames_total, localizations) or None")
        with self._lock:
            self._not_in_callback("set_progress()")
            h = self._h()
            if progress is None:
                N.check(self._lib.ml_set_progress(h, ctypes.cast(None, N.PROGRESS_FN), None), "ml_set_progress")
                self._callback = None
                self._progress = None
                return

            def trampoline(done, total, locs, _user):
                try:
                    return 1 if progress(int(done), int(self._frames_total or total), int(locs)) else 0
                except BaseException as e:  # never let an exception unwind into C
                    self._callback_error = e
                    return 1

            cb = N.PROGRESS_FN(trampoline)
            N.check(self._lib.ml_set_progress(h, cb, None), "ml_set_progress")
            self._callback = cb
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
            status = N.ML_OK
            self._callback_error = None
            self._in_push = True
            try:
                for address, count in chunks:
                    status = self._lib.ml_push_frames(h, ctypes.c_void_p(address), wid, hgt, count, stride, ptype)
                    if status != N.ML_OK or self._callback_error is not None:
                        break
                message = N.last_error() if status != N.ML_OK else ""  # same thread, before any other call
            finally:
                self._in_push = False
            err, self._callback_error = self._callback_error, None
            if err is not None:  # whatever the status (ML_OK, ML_ERR_CANCELLED, ...): the callback's exception wins
                raise err
            if status == N.ML_ERR_CANCELLED:
                raise N.Cancelled(message or "maliang: the push was cancelled", self._read(first))
            if status != N.ML_OK:
                N.check(status, "ml_push_frames")
            return self._read(first)

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
        seconds, threads, backend, ms_per_frame."""
        with self._lock:
            s = N.MlSummary()
            N.check(self._lib.ml_get_summary(self._h(), ctypes.byref(s)), "ml_get_summary")
            return _summary_dict(s)

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
    progress=None,
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
    offset, photons_per_adu, em_gain : camera model, photons = (ADU - offset) x photons_per_adu / em_gain.
    threshold : detection threshold, multiples of the filtered frame's robust noise.
    roi : odd fit-window edge, 3 to 31 px.
    filter : "maliang" (the paper's), "wavelet" (ThunderSTORM's) or "none".
    fixed_sigma : fix the PSF sigma instead of fitting it.
    iterations : maximum fit iterations (None = the engine's default, 20).
    backend : "auto", "cpu", "opencl" or "cuda" (an unavailable GPU backend raises BackendUnavailable, an OSError).
    progress : optional ``callable(frames_done, frames_total, localizations)``, called after each chunk of frames;
        returning True cancels: :class:`maliang.Cancelled` is raised, with the localizations so far in ``.partial``.
    **more : tolerance (1e-4), use_tolerance (True), reject_overlapping (False), threads (0 = all cores).

    Returns
    -------
    numpy structured array of :data:`maliang.LOCALIZATION_DTYPE` (the C struct ml_localization, 64 bytes), sorted
    by frame: ``frame`` (0-based), ``x``, ``y`` (px; origin at the top-left corner of the top-left pixel, so pixel
    column c spans [c, c+1)), ``photons``, ``background`` (photons/px), ``sigma`` (px), ``uncertainty_x``,
    ``uncertainty_y`` (px, sqrt of the CRLB), ``uncertainty_photons``, ``uncertainty_background``,
    ``uncertainty_sigma``, ``loglik``, ``llr``, ``iterations``, ``detections``, ``flags`` (bit 0: converged).
    The GIL is released while the engine runs.
    """
    settings = dict(pixel_size=pixel_size, psf_sigma=psf_sigma, offset=offset, photons_per_adu=photons_per_adu,
                    em_gain=em_gain, threshold=threshold, roi=roi, filter=filter, fixed_sigma=fixed_sigma,
                    iterations=iterations, backend=backend, **more)
    with Localizer(progress=progress, **settings) as loc:
        return loc.push(frames)
