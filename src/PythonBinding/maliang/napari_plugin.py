"""napari contributions (npe2 manifest ``maliang/napari.yaml``): a reader for MaLiang/ThunderSTORM CSV and the
"Localize" widget command. Nothing here imports napari: the functions return napari layer-data tuples
``(data, kwargs, layer_type)``, so they are testable (and usable) without it.

Coordinates: napari puts pixel centres at integers, MaLiang at half-integers (DESIGN.md), so Points are
``[frame, y - 0.5, x - 0.5]`` and the rendered image is scaled by 1/magnification and translated so that it lies
exactly over the camera image.
"""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ._core import localize
from .io import read_csv
from .render import render

#: pixel size used by the CSV reader to convert nm to camera px (napari's reader cannot ask): MALIANG_PIXEL_SIZE or 100.
DEFAULT_PIXEL_SIZE = 100.0

FEATURES = ["frame", "photons", "background", "sigma", "uncertainty_x", "uncertainty_y", "loglik", "llr", "iterations"]


def _pixel_size() -> float:
    v = os.environ.get("MALIANG_PIXEL_SIZE")
    return float(v) if v else DEFAULT_PIXEL_SIZE


def layers_from_localizations(locs, *, name: str = "localizations", width=None, height=None, magnification: float = 10,
                              pixel_size: float | None = None) -> List[tuple]:
    """The two layers for a table of localizations: Points ``[frame, y, x]`` (napari convention) with the fields as
    features, and the rendered super-resolution image, scaled to overlay the camera pixels."""
    points = np.column_stack([locs["frame"].astype(np.float64), locs["y"] - 0.5, locs["x"] - 0.5]).astype(np.float64)
    features = {k: np.asarray(locs[k]) for k in FEATURES}
    meta = {"maliang": {"pixel_size_nm": pixel_size, "coordinates": "napari: pixel centres at integers (MaLiang - 0.5 px)"}}
    size = float(np.clip(np.nanmedian(locs["sigma"]) if len(locs) else 1.0, 0.3, 5.0)) if len(locs) else 1.0
    pts = (points.reshape(-1, 3), {"name": name, "features": features, "size": size, "face_color": "magenta",
                                   "metadata": meta, "ndim": 3}, "points")
    image = render(locs, magnification, "gaussian", width=width, height=height)
    s = 1.0 / float(magnification)
    img = (image, {"name": f"{name} (rendered x{magnification:g})", "scale": (s, s),
                   "translate": (0.5 * s - 0.5, 0.5 * s - 0.5), "colormap": "magma", "blending": "additive",
                   "metadata": meta}, "image")
    return [pts, img]


def _looks_like_csv(path) -> bool:
    if not isinstance(path, (str, os.PathLike)):
        return False
    p = os.fspath(path)
    if not p.lower().endswith(".csv") or not os.path.isfile(p):
        return False
    with open(p, "r", encoding="utf-8", errors="replace") as f:
        header = [h.strip().strip('"').lower() for h in f.readline().split(",")]
    names = {h.split(" [")[0] for h in header}
    return {"frame", "x", "y"} <= names


def read_localizations(path, pixel_size: float | None = None, magnification: float = 10) -> List[tuple]:
    """Reads a MaLiang/ThunderSTORM CSV (or a list of them) into layer-data tuples (Points + rendered Image)."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    px = _pixel_size() if pixel_size is None else float(pixel_size)
    layers = []
    for p in paths:
        locs = read_csv(p, px)
        layers += layers_from_localizations(locs, name=os.path.splitext(os.path.basename(os.fspath(p)))[0],
                                            magnification=magnification, pixel_size=px)
    return layers


def get_reader(path):
    """npe2 reader command: returns :func:`read_localizations` for CSV files with frame/x/y columns, else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_looks_like_csv(p) for p in paths):
        return None
    return read_localizations


def localize_widget(image: "napari.types.ImageData", offset: float = 0.0, photons_per_adu: float = 1.0,  # noqa: F821
                    em_gain: float = 1.0, psf_sigma: float = 1.3, estimate_psf_sigma: bool = False,
                    threshold: float = 5.0, roi: int = 7, pixel_size: float = 100.0, filter: str = "maliang",
                    fixed_sigma: bool = False, multi_emitter: bool = True, max_emitters: int = 8,
                    multi_p_value: str = "1e-6", residual_search: bool = False,
                    magnification: float = 10) -> List["napari.types.LayerDataTuple"]:  # noqa: F821
    """The "Localize" widget (magicgui builds its form from this signature in napari): localizes an image layer's
    data, 2-D or 3-D (frames, y, x), and returns the Points and rendered Image layers.

    The crowded-frame options are :func:`maliang.localize`'s: ``multi_emitter`` (False: one emitter per ROI, the CLI's
    ``--single-emitter``), ``max_emitters`` (1-12), ``multi_p_value`` (a text field, as in the Fiji dialog: a float
    field with fixed decimals would show 1e-6 as 0), ``residual_search`` (the CLI's ``--residual-search``: the frame
    minus every fitted emitter is searched for emitters the detection missed), and ``estimate_psf_sigma``
    (``psf_sigma=None``: the width is estimated from isolated spots of the image, and ``psf_sigma`` is not used)."""
    data = np.asarray(image)
    if data.ndim not in (2, 3):
        raise ValueError(f"maliang: the Localize widget needs a 2-D image or a 3-D stack (frames, y, x), got {data.ndim}-D")
    try:
        p_value = float(multi_p_value)
    except (TypeError, ValueError):
        raise ValueError(f"maliang: multi_p_value must be a number in (0, 1), got {multi_p_value!r}") from None
    locs = localize(data, offset=offset, photons_per_adu=photons_per_adu, em_gain=em_gain,
                    psf_sigma=None if estimate_psf_sigma else psf_sigma, threshold=threshold, roi=roi,
                    pixel_size=pixel_size, filter=filter, fixed_sigma=fixed_sigma, multi_emitter=multi_emitter,
                    max_emitters=max_emitters, multi_p_value=p_value, residual_search=residual_search)
    h, w = data.shape[-2:]
    return layers_from_localizations(locs, name="MaLiang localizations", width=w, height=h,
                                     magnification=magnification, pixel_size=pixel_size)
