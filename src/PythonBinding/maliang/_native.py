"""ctypes declarations of libmaliang.so (src/Native/maliang.h) and how the library is found.

The library is looked up, in order:

1. the path in the environment variable ``MALIANG_LIBRARY``;
2. the library inside this package (the copy an installed wheel carries): ``libmaliang.so`` on Linux (NativeAOT),
   ``maliang.dll`` on Windows and ``libmaliang.dylib`` on macOS (a small library that starts the .NET engine in
   ``maliang-engine/`` beside it through hostfxr; docs/DESIGN.md, Platforms);
3. ``build/native/libmaliang.so`` of the source tree this package sits in (``src/PythonBinding/maliang`` ->
   ``../../../build/native``), made by ``make native``.

``engine()`` says in one line which engine was loaded.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
from pathlib import Path

import numpy as np

ML_ABI_VERSION = 2

# ml_status
ML_OK, ML_ERR_ARGUMENT, ML_ERR_INPUT, ML_ERR_CANCELLED, ML_ERR_BACKEND, ML_ERR_INTERNAL, ML_ERR_IO = range(7)

# ml_pixel_type, keyed by numpy dtype (native byte order)
PIXEL_TYPES = {
    np.dtype(np.uint8): 0,
    np.dtype(np.uint16): 1,
    np.dtype(np.uint32): 2,
    np.dtype(np.float32): 3,
    np.dtype(np.int16): 4,
    np.dtype(np.int32): 5,
}
FILTERS = {"maliang": 0, "wavelet": 1, "none": 2}
BACKENDS = {"auto": 0, "cpu": 1, "opencl": 2, "cuda": 3}



def lib_name(platform: str = sys.platform) -> str:
    """The library's file name on a platform (a ``sys.platform`` value)."""
    return "libmaliang.dylib" if platform == "darwin" else ("maliang.dll" if platform in ("win32", "cygwin") else "libmaliang.so")


_LIB_NAME = lib_name()
HOSTED_DIR = "maliang-engine"


class MaLiangError(Exception):
    """Base class of the errors the native library reports."""


class MaLiangValueError(MaLiangError, ValueError):
    """ML_ERR_ARGUMENT / ML_ERR_INPUT: a setting, size or input the engine rejected (message from ml_last_error())."""


class Cancelled(MaLiangError):
    """The call was cancelled (progress callback returned True, or Localizer.cancel()).

    ``partial`` holds the localizations of the frames finished before the cancellation (a structured array)."""

    def __init__(self, message: str, partial=None):
        super().__init__(message)
        self.partial = partial


class BackendUnavailable(MaLiangError, OSError):
    """ML_ERR_BACKEND: the requested fit backend (OpenCL, CUDA) is not available on this machine."""


class MaLiangIOError(MaLiangError, OSError):
    """ML_ERR_IO: a file could not be read or written (missing folder, permissions, disk full)."""


class NativeError(MaLiangError, RuntimeError):
    """ML_ERR_INTERNAL: something unexpected inside the engine; the message says what."""


class MlSettings(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_int32),
        ("roi_size", ctypes.c_int32),
        ("pixel_size_nm", ctypes.c_double),
        ("psf_sigma_px", ctypes.c_double),
        ("offset_adu", ctypes.c_double),
        ("photons_per_adu", ctypes.c_double),
        ("em_gain", ctypes.c_double),
        ("threshold", ctypes.c_double),
        ("tolerance", ctypes.c_double),
        ("filter", ctypes.c_int32),
        ("fixed_sigma", ctypes.c_int32),
        ("iterations", ctypes.c_int32),
        ("use_tolerance", ctypes.c_int32),
        ("reject_overlapping", ctypes.c_int32),
        ("backend", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        # appended with issue 17 (crowded frames), then residual_search (offset 136); 144 bytes in all (4 of tail padding)
        ("multi_emitter", ctypes.c_int32),
        ("max_emitters", ctypes.c_int32),
        ("multi_p_value", ctypes.c_double),
        ("camera_noise", ctypes.c_int32),
        ("drop_edge", ctypes.c_int32),
        ("min_snr", ctypes.c_double),
        ("noise_clip", ctypes.c_int32),
        ("estimate_psf_sigma", ctypes.c_int32),
        ("residual_search", ctypes.c_int32),
    ]


#: ML_MAX_GROUP_SIZE: the most emitters one joint fit holds; ml_get_groups_by_size gives ML_MAX_GROUP_SIZE + 1 counts.
ML_MAX_GROUP_SIZE = 12


class MlSummary(ctypes.Structure):
    _fields_ = [
        ("frames", ctypes.c_int64),
        ("localizations", ctypes.c_int64),
        ("candidates", ctypes.c_int64),
        ("dropped_edge", ctypes.c_int64),
        ("dropped_overlap", ctypes.c_int64),
        ("dropped_fit_failed", ctypes.c_int64),
        ("dropped_left_roi", ctypes.c_int64),
        ("wall_seconds", ctypes.c_double),
        ("read_seconds", ctypes.c_double),
        ("denoise_seconds", ctypes.c_double),
        ("detect_seconds", ctypes.c_double),
        ("fit_seconds", ctypes.c_double),
        ("threads", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("backend", ctypes.c_char * 64),
    ]


#: ml_localization (76 bytes), field for field: results are read straight into arrays of this dtype.
LOCALIZATION_DTYPE = np.dtype(
    [
        ("frame", "<i4"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("photons", "<f4"),
        ("background", "<f4"),
        ("sigma", "<f4"),
        ("uncertainty_x", "<f4"),
        ("uncertainty_y", "<f4"),
        ("uncertainty_photons", "<f4"),
        ("uncertainty_background", "<f4"),
        ("uncertainty_sigma", "<f4"),
        ("loglik", "<f4"),
        ("llr", "<f4"),
        ("iterations", "<i4"),
        ("detections", "<i4"),
        ("flags", "<i4"),
        ("z", "<f4"),
        ("uncertainty_z", "<f4"),
        ("fitted_together", "<i4"),
    ],
    align=False,
)
assert LOCALIZATION_DTYPE.itemsize == 76

class MlZCalibration(ctypes.Structure):
    """ml_z_calibration (128 bytes): index 0 the x curve, 1 the y curve."""

    _fields_ = [
        ("struct_size", ctypes.c_int32),
        ("beads", ctypes.c_int32),
        ("sigma0_px", ctypes.c_double * 2),
        ("a", ctypes.c_double * 2),
        ("b", ctypes.c_double * 2),
        ("c_nm", ctypes.c_double * 2),
        ("d_nm", ctypes.c_double * 2),
        ("pixel_size_nm", ctypes.c_double),
        ("z_min_nm", ctypes.c_double),
        ("z_max_nm", ctypes.c_double),
        ("refractive_index_factor", ctypes.c_double),
        ("rejected_fits", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


assert ctypes.sizeof(MlZCalibration) == 128

PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p)

_P = ctypes.c_void_p
_I32 = ctypes.c_int32
_I64 = ctypes.c_int64
_SIGNATURES = {
    "ml_version": (ctypes.c_char_p, []),
    "ml_abi_version": (_I32, []),
    "ml_last_error": (ctypes.c_char_p, []),
    "ml_default_settings": (_I32, [ctypes.POINTER(MlSettings)]),
    "ml_create": (_I32, [ctypes.POINTER(MlSettings), ctypes.POINTER(_P)]),
    "ml_create_3d": (_I32, [ctypes.POINTER(MlSettings), ctypes.c_char_p, ctypes.POINTER(_P)]),
    "ml_calibrate_z": (
        _I32,
        [ctypes.c_char_p, ctypes.POINTER(MlSettings), ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_char_p,
         ctypes.c_char_p, ctypes.POINTER(MlZCalibration)],
    ),
    "ml_read_z_calibration": (_I32, [ctypes.c_char_p, ctypes.c_double, ctypes.POINTER(MlZCalibration)]),
    "ml_destroy": (_I32, [_P]),
    "ml_get_settings": (_I32, [_P, ctypes.POINTER(MlSettings)]),
    "ml_push_frames": (_I32, [_P, _P, _I32, _I32, _I32, _I64, _I32]),
    "ml_push_file": (_I32, [_P, ctypes.c_char_p]),
    "ml_set_progress": (_I32, [_P, PROGRESS_FN, _P]),
    "ml_set_camera_maps": (_I32, [_P, _P, _P, _P, _I32, _I32, _I32, _I32]),
    "ml_cancel": (_I32, [_P]),
    "ml_result_count": (_I32, [_P, ctypes.POINTER(_I64)]),
    "ml_read_results": (_I32, [_P, _I64, _P, _I64, ctypes.POINTER(_I64)]),
    "ml_clear_results": (_I32, [_P]),
    "ml_get_summary": (_I32, [_P, ctypes.POINTER(MlSummary)]),
    "ml_get_groups_by_size": (_I32, [_P, ctypes.POINTER(_I64), _I32, ctypes.POINTER(_I32)]),
    "ml_last_push_address": (_I32, [_P, ctypes.POINTER(_P)]),
    "ml_write_csv": (_I32, [ctypes.c_char_p, _P, _I64, ctypes.c_double]),
    "ml_read_csv": (_I32, [ctypes.c_char_p, ctypes.c_double, _P, _I64, ctypes.POINTER(_I64)]),
    "ml_render": (
        _I32,
        [_P, _I64, _I32, _I32, ctypes.c_double, _I32, ctypes.c_double, _P, _I64, ctypes.POINTER(_I32), ctypes.POINTER(_I32)],
    ),
}

_lib = None
_lib_path: Path | None = None
_lock = threading.Lock()


def candidate_paths() -> list[Path]:
    """Where the library is looked for, in order (see the module docstring)."""
    paths = []
    env = os.environ.get("MALIANG_LIBRARY")
    if env:
        paths.append(Path(env))
    here = Path(__file__).resolve().parent
    paths.append(here / _LIB_NAME)
    paths.append(here.parents[2] / "build" / "native" / _LIB_NAME)
    return paths


def _package_platforms(here: Path) -> str:
    """What this package carries, for the message when nothing fits the machine: its wheel tag and engine files."""
    tag = here / "_platform.txt"
    files = [n for n in ("libmaliang.so", "maliang.dll", "libmaliang.dylib") if (here / n).is_file()]
    if not files and not tag.is_file():
        return ""
    plat = tag.read_text().strip() if tag.is_file() else "?"
    return (f"This maliang package carries the engine for {plat} ({', '.join(files) or 'no library'}); this machine is "
            f"{sys.platform} {platform.machine()} and needs {_LIB_NAME}: install the wheel built for it.")


def _missing_message(tried: list[Path], errors: list[str]) -> str:
    lines = [
        f"maliang: the native library {_LIB_NAME} was not found or could not be loaded.",
        "Build it from the repository root with `make native` (NativeAOT; writes build/native/libmaliang.so),",
        "or set MALIANG_LIBRARY=/path/to/libmaliang.so, or install the maliang wheel, which carries it.",
        "Tried: " + ", ".join(str(p) for p in tried),
    ]
    lines += errors
    carried = _package_platforms(Path(__file__).resolve().parent)
    if carried:
        lines.append(carried)
    return "\n".join(lines)


def lib():
    """The loaded library (ctypes.CDLL: the GIL is released during every call)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = candidate_paths()
        errors = []
        env = os.environ.get("MALIANG_LIBRARY")
        for i, p in enumerate(tried):
            if not p.is_file():
                if i == 0 and env:
                    errors.append(f"MALIANG_LIBRARY={env} is not a file.")
                    break  # an explicit choice that is wrong is an error, not a reason to load another copy
                continue
            try:
                cdll = ctypes.CDLL(str(p))
            except OSError as e:
                errors.append(f"{p}: {e}")
                if i == 0 and env:
                    break
                continue
            for name, (res, args) in _SIGNATURES.items():
                try:
                    f = getattr(cdll, name)
                except AttributeError:
                    raise OSError(f"maliang: {p} has no export {name}: is it an older libmaliang.so? Rebuild with `make native`.") from None
                f.restype = res
                f.argtypes = args
            abi = cdll.ml_abi_version()
            if abi != ML_ABI_VERSION:
                why = cdll.ml_last_error().decode("utf-8", "replace")  # the hosted engine's shim: why .NET did not start
                if why:
                    raise OSError(f"maliang: {p}: {why}")
                raise OSError(f"maliang: {p} has C ABI version {abi}, this package needs {ML_ABI_VERSION}; rebuild with `make native`.")
            s = MlSettings()
            cdll.ml_default_settings(ctypes.byref(s))
            if s.struct_size != ctypes.sizeof(MlSettings):
                raise OSError(f"maliang: {p}'s ml_settings is {s.struct_size} bytes, this package's is {ctypes.sizeof(MlSettings)}")
            _lib, _lib_path = cdll, p
            return _lib
        raise OSError(_missing_message(tried, errors))


def library_path() -> Path:
    """The path of the loaded native library (loads it if needed)."""
    lib()
    return _lib_path


def engine() -> str:
    """One line naming the engine loaded (loads it if needed): its version, NativeAOT or .NET through hostfxr (a
    ``maliang-engine/`` folder beside the library), the platform and the file."""
    p = library_path()
    kind = ".NET (hostfxr)" if (p.parent / HOSTED_DIR).is_dir() else "NativeAOT"
    version = lib().ml_version().decode()
    return f"MaLiang {version}, {kind} engine for {sys.platform} {platform.machine()}: {p}"


def last_error() -> str:
    return lib().ml_last_error().decode("utf-8", "replace")


def check(status: int, what: str = "") -> None:
    """Raises the Python exception for a non-zero ml_status, with ml_last_error()'s message (same thread)."""
    if status == ML_OK:
        return
    msg = last_error() or f"{what} failed with status {status}"
    if status in (ML_ERR_ARGUMENT, ML_ERR_INPUT):
        raise MaLiangValueError(msg)
    if status == ML_ERR_CANCELLED:
        raise Cancelled(msg)
    if status == ML_ERR_BACKEND:
        raise BackendUnavailable(msg)
    if status == ML_ERR_IO:
        raise MaLiangIOError(msg)
    raise NativeError(f"{msg} (status {status})")


def ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)
