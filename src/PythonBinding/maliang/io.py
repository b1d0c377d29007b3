"""Files and tables: ThunderSTORM-compatible CSV (through the engine's reader/writer), Picasso HDF5, pandas."""
from __future__ import annotations

import ctypes
import errno
import math
import numbers
import os
from pathlib import Path

import numpy as np

from . import _native as N
from ._native import LOCALIZATION_DTYPE

#: The CSV columns (DESIGN.md, ThunderSTORM-compatible), as ml_write_csv writes them.
CSV_COLUMNS = [
    "id", "frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]", "offset [photon]", "bkgstd [photon]",
    "uncertainty [nm]", "uncertainty_x [nm]", "uncertainty_y [nm]", "uncertainty_photons [photon]",
    "uncertainty_offset [photon]", "uncertainty_sigma [nm]", "loglikelihood", "llr", "iterations", "detections",
    "fitted_together",
]

#: Picasso's localization dtype (as in Picasso's own testdata_locs.hdf5).
PICASSO_DTYPE = np.dtype([
    ("frame", "<u4"), ("x", "<f4"), ("y", "<f4"), ("photons", "<f4"), ("sx", "<f4"), ("sy", "<f4"), ("bg", "<f4"),
    ("lpx", "<f4"), ("lpy", "<f4"), ("net_gradient", "<f4"), ("likelihood", "<f4"), ("iterations", "<i4"),
])

#: 3D tables (ThunderSTORM's names and places): "z [nm]" after "y [nm]", "uncertainty_z [nm]" after "uncertainty [nm]".
CSV_COLUMNS_3D = CSV_COLUMNS[:4] + ["z [nm]"] + CSV_COLUMNS[4:9] + ["uncertainty_z [nm]"] + CSV_COLUMNS[9:]

#: Picasso's dtype with its z column (nm), for 3D localizations.
PICASSO_DTYPE_3D = np.dtype(PICASSO_DTYPE.descr + [("z", "<f4")])

_DEFAULT_FILL = {"detections": 1, "iterations": 0, "flags": 0, "z": 0.0, "uncertainty_z": 0.0, "fitted_together": 1}


def as_localizations(locs) -> np.ndarray:
    """Returns ``locs`` as a C-contiguous array of LOCALIZATION_DTYPE (no copy when it already is one).

    Accepts such arrays, other structured arrays or record arrays with (a subset of) the same field names, and pandas
    DataFrames with those columns; ``frame``, ``x`` and ``y`` are required, missing fields become NaN (iterations 0,
    detections 1, flags 0, fitted_together 1)."""
    if isinstance(locs, np.ndarray) and locs.dtype == LOCALIZATION_DTYPE:
        if locs.ndim != 1:
            raise ValueError(f"maliang: localizations must be a 1-D array, got shape {locs.shape}")
        return np.ascontiguousarray(locs)
    names = None
    if isinstance(locs, np.ndarray) and locs.dtype.names:
        names = locs.dtype.names
        get = lambda k: locs[k]  # noqa: E731
        n = locs.shape[0] if locs.ndim == 1 else None
        if locs.ndim != 1:
            raise ValueError(f"maliang: localizations must be a 1-D array, got shape {locs.shape}")
    elif hasattr(locs, "columns") and hasattr(locs, "__getitem__"):  # pandas DataFrame
        names = list(locs.columns)
        get = lambda k: np.asarray(locs[k])  # noqa: E731
        n = len(locs)
    else:
        raise TypeError(f"maliang: localizations must be a structured numpy array (maliang.LOCALIZATION_DTYPE) or a "
                        f"DataFrame with its field names, got {type(locs).__name__}")
    missing = [k for k in ("frame", "x", "y") if k not in names]
    if missing:
        raise ValueError(f"maliang: localizations lack the field(s) {', '.join(missing)} (have {', '.join(map(str, names))})")
    out = np.empty(n, dtype=LOCALIZATION_DTYPE)
    for k in LOCALIZATION_DTYPE.names:
        out[k] = get(k) if k in names else _DEFAULT_FILL.get(k, np.nan)
    if "z" in names and "flags" not in names:  # a 3D table without flags: bit 1 where z was measured
        out["flags"] |= np.where(np.isfinite(out["z"]), 2, 0).astype(np.int32)
    return out


def _path(path, name: str = "path") -> bytes:
    """``path`` (str, bytes or os.PathLike) as bytes for the C ABI. An empty path, or one with a NUL byte (which C would
    silently cut short), is a ValueError, as for open()."""
    p = os.fspath(path)
    if not p:
        raise ValueError(f"maliang: {name} is empty")
    b = os.fsencode(p)
    if b"\0" in b:
        raise ValueError(f"maliang: {name} contains a NUL byte: {p!r}")
    return b


_MAX_SIZE = 2**31 - 1


def image_size(name: str, given, values: np.ndarray, axis: str) -> int:
    """A camera frame width/height in px for ml_render / Picasso's YAML: ``given`` must be integral (TypeError) and
    1 to 2^31-1 (ValueError); None means the extent of the localizations (ceil of the largest finite ``axis``
    coordinate, at least 1), which must fit too."""
    if given is not None:
        if isinstance(given, bool) or not isinstance(given, numbers.Integral):
            if isinstance(given, numbers.Real) and not isinstance(given, bool) and float(given).is_integer():
                given = int(given)
            else:
                raise TypeError(f"maliang: {name} must be an integer number of px, got {type(given).__name__} {given!r}")
        g = int(given)
        if not 1 <= g <= _MAX_SIZE:
            raise ValueError(f"maliang: {name} must be 1 to {_MAX_SIZE} px, got {g}")
        return g
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 1
    top = float(finite.max())
    if top > _MAX_SIZE:
        raise ValueError(f"maliang: the localizations' extent in {axis} (max {axis} = {top:g} px) gives a {name} beyond "
                         f"{_MAX_SIZE} px; pass {name}= (camera px) explicitly or drop the outliers")
    return max(1, int(math.ceil(top)))


def _pixel_size(pixel_size) -> float:
    if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float, np.integer, np.floating)):
        raise TypeError(f"maliang: pixel_size must be a number (nm), got {pixel_size!r}")
    v = float(pixel_size)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"maliang: pixel_size must be a finite number > 0 nm, got {pixel_size}")
    return v


def write_csv(path, locs, pixel_size: float = 100.0) -> None:
    """Writes localizations as ThunderSTORM-compatible CSV (DESIGN.md columns: nm, photons, 1-based frames),
    atomically, with the engine's writer (ml_write_csv).

    File errors (missing folder, permissions, disk full) raise OSError (:class:`maliang.MaLiangIOError`); a path that
    is empty or contains a NUL byte raises ValueError."""
    a = as_localizations(locs)
    px = _pixel_size(pixel_size)
    p = _path(path)
    folder = os.path.dirname(p) or b"."
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "maliang: cannot write the CSV, no such folder", os.fsdecode(folder))
    if os.path.isdir(p):
        raise IsADirectoryError(errno.EISDIR, "maliang: cannot write the CSV, the path is a folder", os.fsdecode(p))
    N.check(N.lib().ml_write_csv(p, N.ptr(a) if len(a) else None, len(a), px), "ml_write_csv")


def read_csv(path, pixel_size: float = 100.0) -> np.ndarray:
    """Reads a MaLiang or ThunderSTORM CSV (quoted or unquoted headers, any column order; frame, x, y required) with
    the engine's reader (ml_read_csv); lengths in nm become px through ``pixel_size``; frames become 0-based.

    File errors raise OSError: FileNotFoundError for a missing file, :class:`maliang.MaLiangIOError` when it cannot be
    read; a malformed table raises ValueError (:class:`maliang.MaLiangValueError`, naming the line or column); a path
    that is empty or contains a NUL byte raises ValueError."""
    px = _pixel_size(pixel_size)
    p = _path(path)
    if not os.path.exists(p):
        raise FileNotFoundError(errno.ENOENT, "maliang: no such file", os.fsdecode(p))
    if os.path.isdir(p):
        raise IsADirectoryError(errno.EISDIR, "maliang: cannot read a CSV, the path is a folder", os.fsdecode(p))
    lib = N.lib()
    count = ctypes.c_int64()
    N.check(lib.ml_read_csv(p, px, None, 0, ctypes.byref(count)), "ml_read_csv")
    out = np.empty(count.value, dtype=LOCALIZATION_DTYPE)
    if count.value:
        N.check(lib.ml_read_csv(p, px, N.ptr(out), count.value, ctypes.byref(count)), "ml_read_csv")
        out = out[: count.value]
    return out


def to_dataframe(locs, pixel_size: float = 100.0):
    """Localizations as a pandas DataFrame with the CSV's columns (DESIGN.md, ThunderSTORM-compatible): ``id``,
    ``frame`` (**1-based**, as in the CSV), ``x [nm]``, ``y [nm]``, ``sigma [nm]``, ``intensity [photon]``,
    ``offset [photon]``, ``bkgstd [photon]`` (sqrt of the background), ``uncertainty [nm]``
    (sqrt((ux^2 + uy^2) / 2)), then MaLiang's columns. ``df.to_csv(path, index=False)`` is a ThunderSTORM table."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - pandas is installed where the tests run
        raise ImportError("maliang.to_dataframe needs pandas (apt-get install python3-pandas)") from e
    a = as_localizations(locs)
    px = _pixel_size(pixel_size)
    f64 = lambda k: a[k].astype(np.float64)  # noqa: E731
    ux, uy = f64("uncertainty_x"), f64("uncertainty_y")
    cols = {
        "id": np.arange(1, len(a) + 1, dtype=np.int64),
        "frame": a["frame"].astype(np.int64) + 1,
        "x [nm]": f64("x") * px,
        "y [nm]": f64("y") * px,
        "sigma [nm]": f64("sigma") * px,
        "intensity [photon]": f64("photons"),
        "offset [photon]": f64("background"),
        "bkgstd [photon]": np.sqrt(np.maximum(f64("background"), 0.0)),
        "uncertainty [nm]": np.sqrt((ux * ux + uy * uy) / 2) * px,
        "uncertainty_x [nm]": ux * px,
        "uncertainty_y [nm]": uy * px,
        "uncertainty_photons [photon]": f64("uncertainty_photons"),
        "uncertainty_offset [photon]": f64("uncertainty_background"),
        "uncertainty_sigma [nm]": f64("uncertainty_sigma") * px,
        "loglikelihood": f64("loglik"),
        "llr": f64("llr"),
        "iterations": a["iterations"].astype(np.int64),
        "detections": a["detections"].astype(np.int64),
        "fitted_together": np.maximum(a["fitted_together"], 1).astype(np.int64),
    }
    assert list(cols) == CSV_COLUMNS
    if is_3d(a):  # the z columns, in nm already, where ThunderSTORM puts them
        items = list(cols.items())
        items.insert(4, ("z [nm]", f64("z")))
        items.insert(10, ("uncertainty_z [nm]", f64("uncertainty_z")))
        cols = dict(items)
        assert list(cols) == CSV_COLUMNS_3D
    return pd.DataFrame(cols)


def is_3d(locs) -> bool:
    """True when any localization is 3D (flags bit 1: z measured, by a calibration or a CSV's z column)."""
    a = as_localizations(locs)
    return bool(len(a)) and bool(np.any(a["flags"] & 2))


def to_picasso(locs) -> np.ndarray:
    """Localizations as Picasso's structured array (PICASSO_DTYPE): centre-at-integer coordinates (ours - 0.5 px),
    sx = sy = sigma, bg, lpx/lpy = uncertainties (px), likelihood = log-likelihood; net_gradient is not computed by
    MaLiang and is NaN. 3D localizations (flags bit 1) get Picasso's ``z`` column in nm (PICASSO_DTYPE_3D)."""
    a = as_localizations(locs)
    if len(a) and a["frame"].min() < 0:
        raise ValueError("maliang: negative frame numbers cannot be stored as Picasso's unsigned frames")
    three_d = is_3d(a)
    out = np.empty(len(a), dtype=PICASSO_DTYPE_3D if three_d else PICASSO_DTYPE)
    if three_d:
        out["z"] = a["z"]  # nm, as Picasso's 3D localizations keep it
    out["frame"] = a["frame"]
    out["x"] = a["x"] - np.float32(0.5)
    out["y"] = a["y"] - np.float32(0.5)
    out["photons"] = a["photons"]
    out["sx"] = a["sigma"]
    out["sy"] = a["sigma"]
    out["bg"] = a["background"]
    out["lpx"] = a["uncertainty_x"]
    out["lpy"] = a["uncertainty_y"]
    out["net_gradient"] = np.nan
    out["likelihood"] = a["loglik"]
    out["iterations"] = a["iterations"]
    return out


def save_picasso(path, locs, *, width=None, height=None, frames=None, pixel_size: float = 100.0, roi: int = 7,
                 settings: dict | None = None, movie_path=None) -> tuple[Path, Path]:
    """Saves localizations for Picasso (Render, Filter, ...): HDF5 dataset ``locs`` (PICASSO_DTYPE, see
    :func:`to_picasso`) at ``path`` plus the sidecar ``<path without .hdf5>.yaml`` with two YAML documents as Picasso
    Localize writes them (movie info: Byte Order, Data Type, Frames, Height, Width; then localize info: Box Size,
    Pixelsize, Fit method, ...). ``width``/``height`` (camera px) and ``frames`` default to the extent of the
    localizations; ``settings`` (the keyword settings given to :func:`maliang.localize`) fill roi and pixel_size.
    Needs h5py and PyYAML. Returns the two paths. File errors raise OSError; a path that is empty or contains a NUL
    byte raises ValueError."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover
        raise ImportError("maliang.save_picasso needs h5py (apt-get install python3-h5py)") from e
    import yaml

    from . import __version__
    from ._core import DEFAULTS

    s = {**DEFAULTS, **(settings or {})}
    if settings:
        roi = s["roi"]
        pixel_size = s["pixel_size"]
    px = _pixel_size(pixel_size)
    pic = to_picasso(locs)
    a = as_localizations(locs)

    w = image_size("width", width, a["x"], "x")
    h = image_size("height", height, a["y"], "y")
    nf = int(frames) if frames is not None else (int(a["frame"].max()) + 1 if len(a) else 0)
    _path(path)
    if movie_path is not None:
        _path(movie_path, "movie_path")
    path = Path(os.fsdecode(os.fspath(path)))
    yaml_path = path.with_suffix(".yaml")
    movie = {
        "Byte Order": "<",
        "Data Type": "uint16",
        "Frames": nf,
        "Height": h,
        "Width": w,
        "Generated by": f"MaLiang {__version__}",
    }
    if movie_path is not None:
        movie["File"] = os.fsdecode(os.fspath(movie_path))
    loc_info = {
        "Box Size": int(roi),
        "Convergence Criterion": float(s["tolerance"]),
        "Fit method": "mle",
        "Generated by": f"MaLiang {__version__} (Poisson MLE, integrated Gaussian PSF)",
        "Max. Iterations": int(s["iterations"] or 20),
        "Pixelsize": px,
        "ROI": None,
        "MaLiang.Threshold": float(s["threshold"]),
        "MaLiang.Filter": str(s["filter"]),
        # psf_sigma=None: the engine estimated it from the data
        "MaLiang.PSF sigma [px]": float(s["psf_sigma"]) if s["psf_sigma"] is not None else "estimated",
        "MaLiang.Coordinates": "Picasso centre-at-integer: x = MaLiang x - 0.5 px; net_gradient not computed (NaN)",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("locs", data=pic)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C (KeyboardInterrupt) or a write error: no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise
    with open(yaml_path, "w") as f:
        yaml.dump_all([movie, loc_info], f, default_flow_style=False, sort_keys=False)
    return path, yaml_path
