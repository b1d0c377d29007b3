"""Super-resolution rendering through the engine (ml_render)."""
from __future__ import annotations

import ctypes
import math

import numpy as np

from . import _native as N
from .io import as_localizations, image_size

METHODS = {"gaussian": 0, "histogram": 1}


def render(locs, magnification: float = 10, method: str = "gaussian", *, sigma: float | None = None,
           width: int | None = None, height: int | None = None) -> np.ndarray:
    """Renders localizations into a super-resolution image (2-D float32, rows = y).

    ``width``/``height`` are the camera frame size in px (default: the localizations' extent, ceil of max x/y); the
    image is ``ceil(height * magnification) x ceil(width * magnification)``; output pixel (r, c) spans camera
    coordinates [c, c+1) / magnification. ``method="gaussian"`` draws each molecule as a normalized Gaussian of
    sigma = its uncertainty (or ``sigma`` px, if given); ``"histogram"`` counts molecules per output pixel.
    ``width``/``height`` must be integers, 1 to 2^31-1 px (TypeError, ValueError); so must the extent computed from
    the localizations."""
    a = as_localizations(locs)
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"maliang: method {method!r} is not one of {', '.join(METHODS)}")
    if isinstance(magnification, bool) or not isinstance(magnification, (int, float, np.integer, np.floating)):
        raise TypeError(f"maliang: magnification must be a number, got {magnification!r}")
    mag = float(magnification)
    if not (0 < mag <= 100):
        raise ValueError(f"maliang: magnification must be in (0, 100], got {magnification}")
    sg = 0.0 if sigma is None else float(sigma)
    if math.isnan(sg) or sg < 0 or math.isinf(sg):
        raise ValueError(f"maliang: sigma must be a finite number >= 0 px (or None), got {sigma}")

    w = image_size("width", width, a["x"], "x")
    h = image_size("height", height, a["y"], "y")
    lib = N.lib()
    ow, oh = ctypes.c_int32(), ctypes.c_int32()
    lp = N.ptr(a) if len(a) else None
    m = METHODS[method.lower()]
    N.check(lib.ml_render(lp, len(a), w, h, mag, m, sg, None, 0, ctypes.byref(ow), ctypes.byref(oh)), "ml_render")
    out = np.zeros((oh.value, ow.value), dtype=np.float32)
    N.check(lib.ml_render(lp, len(a), w, h, mag, m, sg, N.ptr(out), out.size, ctypes.byref(ow), ctypes.byref(oh)), "ml_render")
    return out
