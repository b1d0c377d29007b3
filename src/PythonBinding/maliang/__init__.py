"""MaLiang: single-molecule localization (Poisson MLE) for Python, on the NativeAOT engine libmaliang.so.

    >>> import maliang
    >>> locs = maliang.localize(stack, offset=100, pixel_size=107)     # numpy structured array, px
    >>> image = maliang.render(locs, magnification=10)                 # 2-D float32
    >>> maliang.write_csv("locs.csv", locs, pixel_size=107)            # ThunderSTORM-compatible CSV, nm
    >>> corrected, drift = maliang.drift_correct(locs, method="rcc")    # post-processing (maliang.post): px, 0-based
    >>> molecules = maliang.merge(corrected, radius=0.5, gap=1)

Submodules loaded on first use: ``maliang.dask`` (dask arrays, distributed clusters), ``maliang.micromanager``
(pycro-manager acquisition hook), ``maliang.napari_plugin`` (npe2 reader and Localize widget functions).
"""
from __future__ import annotations

import importlib

from ._native import (
    LOCALIZATION_DTYPE,
    BackendUnavailable,
    Cancelled,
    MaLiangError,
    MaLiangIOError,
    MaLiangValueError,
    NativeError,
    engine,
    library_path,
)
from ._core import DEFAULTS, Localizer, calibrate_z, localize, localize_file, read_z_calibration
from .io import read_csv, save_picasso, to_dataframe, write_csv, PICASSO_DTYPE
from .render import render
from .post import (
    density_filter, density_mask, drift_correct, filter, filter_mask, frc, merge, motion, DRIFT_DTYPE, FILTER_COLUMNS,
    FRC_DTYPE,
)

__version__ = "0.1.0"

__all__ = [
    "localize", "localize_file", "Localizer", "render", "read_csv", "calibrate_z", "read_z_calibration",
    "drift_correct", "merge", "filter", "filter_mask", "density_filter", "density_mask", "frc", "motion",
    "DRIFT_DTYPE", "FRC_DTYPE", "FILTER_COLUMNS", "write_csv", "save_picasso", "to_dataframe",
    "LOCALIZATION_DTYPE", "PICASSO_DTYPE", "DEFAULTS", "MaLiangError", "MaLiangValueError", "MaLiangIOError",
    "Cancelled", "BackendUnavailable", "NativeError", "engine", "library_path", "native_version", "__version__",
]

_SUBMODULES = {"dask", "micromanager", "napari_plugin", "testing"}


def native_version() -> str:
    """The engine's version string (ml_version())."""
    from ._native import lib
    return lib().ml_version().decode()


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'maliang' has no attribute {name!r}")
