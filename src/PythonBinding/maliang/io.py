"""Files and tables: ThunderSTORM-compatible CSV (through the engine's reader/writer), Picasso HDF5, pandas."""
from __future__ import annotations

import ctypes
import math
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
]

#: Picasso's localization dtype (as in Picasso's own testdata_locs.hdf5).
PICASSO_DTYPE = np.dtype([
    ("frame", "<u4"), ("x", "<f4"), ("y", "<f4"), ("photons", "<f4"), ("sx", "<f4"), ("sy", "<f4"), ("bg", "<f4"),
    ("lpx", "<f4"), ("lpy", "<f4"), ("net_gradient", "<f4"), ("likelihood", "<f4"), ("iterations", "<i4"),
])

_DEFAULT_FILL = {"detections": 1, "iterations": 0, "flags": 0}


def as_localizations(locs) -> np.ndarray:
    """Returns ``locs`` as a C-contiguous array of LOCALIZATION_DTYPE (no copy when it already is one).

    Accepts such arrays, other structured arrays or record arrays with (a subset of) the same field names, and pandas
    DataFrames with those columns; ``frame``, ``x`` and ``y`` are required, missing fields become NaN (iterations 0,
    detections 1, flags 0)."""
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
    return out


def _path(path) -> bytes:
    p = os.fspath(path)
    if not p:
        raise ValueError("maliang: path is empty")
    return os.fsencode(p)


def _pixel_size(pixel_size) -> float:
    if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float, np.integer, np.floating)):
        raise TypeError(f"maliang: pixel_size must be a number (nm), got {pixel_size!r}")
    v = float(pixel_size)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"maliang: pixel_size must be a finite number > 0 nm, got {pixel_size}")
    return v


def write_csv(path, locs, pixel_size: float = 100.0) -> None:
    """Writes localizations as ThunderSTORM-compatible CSV (DESIGN.md columns: nm, photons, 1-based frames),
    atomically, with the engine's writer (ml_write_csv)."""
    a = as_localizations(locs)
    px = _pixel_size(pixel_size)
    N.check(N.lib().ml_write_csv(_path(path), N.ptr(a) if len(a) else None, len(a), px), "ml_write_csv")


def read_csv(path, pixel_size: float = 100.0) -> np.ndarray:
    """Reads a MaLiang or ThunderSTORM CSV (quoted or unquoted headers, any column order; frame, x, y required) with
    the engine's reader (ml_read_csv); lengths in nm become px through ``pixel_size``; frames become 0-based."""
    px = _pixel_size(pixel_size)
    p = _path(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"maliang: {os.fsdecode(p)}: no such file")
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
    }
    assert list(cols) == CSV_COLUMNS
    return pd.DataFrame(cols)


def to_picasso(locs) -> np.ndarray:
    """Localizations as Picasso's structured array (PICASSO_DTYPE): centre-at-integer coordinates (ours - 0.5 px),
    sx = sy = sigma, bg, lpx/lpy = uncertainties (px), likelihood = log-likelihood; net_gradient is not computed by
    MaLiang and is NaN."""
    a = as_localizations(locs)
    if len(a) and a["frame"].min() < 0:
        raise ValueError("maliang: negative frame numbers cannot be stored as Picasso's unsigned frames")
    out = np.empty(len(a), dtype=PICASSO_DTYPE)
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
    Needs h5py and PyYAML. Returns the two paths."""
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

    def extent(v, given, name):
        if given is not None:
            g = int(given)
            if g <= 0:
                raise ValueError(f"maliang: {name} must be > 0, got {given}")
            return g
        finite = v[np.isfinite(v)]
        return max(1, int(math.ceil(float(finite.max())))) if len(finite) else 1

    w = extent(a["x"], width, "width")
    h = extent(a["y"], height, "height")
    nf = int(frames) if frames is not None else (int(a["frame"].max()) + 1 if len(a) else 0)
    path = Path(path)
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
        movie["File"] = os.fspath(movie_path)
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
        "MaLiang.PSF sigma [px]": float(s["psf_sigma"]),
        "MaLiang.Coordinates": "Picasso centre-at-integer: x = MaLiang x - 0.5 px; net_gradient not computed (NaN)",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("locs", data=pic)
    os.replace(tmp, path)
    with open(yaml_path, "w") as f:
        yaml.dump_all([movie, loc_info], f, default_flow_style=False, sort_keys=False)
    return path, yaml_path
