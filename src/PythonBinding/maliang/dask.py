"""Localize dask arrays chunk by chunk, on whatever dask scheduler is active.

    import dask.array as da, maliang.dask
    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")            # or LocalCluster(); without a client: dask's default scheduler
    stack = da.from_zarr("movie.zarr")                  # (frames, height, width), chunked along frames
    locs = maliang.dask.localize(stack, offset=100)     # one table, frames numbered over the whole stack

Each chunk of frames becomes one task that runs :func:`maliang.localize` (the engine uses every core of the worker);
frame numbers are offset by the chunk's first frame, and the tables are concatenated in frame order. Workers need
this package and libmaliang.so (install the wheel, or set PYTHONPATH/MALIANG_LIBRARY on them).
"""
from __future__ import annotations

import numpy as np

from ._core import make_settings
from ._native import LOCALIZATION_DTYPE


def _localize_block(block, first_frame, settings):
    from ._core import localize as _localize  # resolved on the worker

    locs = _localize(np.asarray(block), **settings)
    locs["frame"] += first_frame
    return locs


def _blocks(array):
    import dask.array as da

    if not isinstance(array, da.Array):
        array = da.asarray(array)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"maliang.dask: expected a 3-D (frames, height, width) array, got {array.ndim}-D {array.shape}")
    if array.size == 0:
        raise ValueError(f"maliang.dask: the array is empty (shape {array.shape})")
    if array.dtype.kind not in "uif":
        raise TypeError(f"maliang.dask: frames must be an integer or float image, got dtype {array.dtype}")
    if len(array.chunks[1]) > 1 or len(array.chunks[2]) > 1:
        array = array.rechunk({1: -1, 2: -1})  # whole frames per chunk: molecules must not be cut
    starts = np.concatenate([[0], np.cumsum(array.chunks[0])[:-1]]).astype(int)
    blocks = array.to_delayed().ravel()
    return blocks, starts


def localize_delayed(array, **settings):
    """A ``dask.delayed`` object that computes the localizations of ``array`` (see :func:`localize`)."""
    import dask

    make_settings(**settings)  # fail here, not on the workers
    blocks, starts = _blocks(array)
    parts = [dask.delayed(_localize_block)(b, int(s), settings) for b, s in zip(blocks, starts)]
    return dask.delayed(_concat)(parts)


def _concat(parts):
    return np.concatenate(parts) if parts else np.empty(0, dtype=LOCALIZATION_DTYPE)


def localize(array, **settings) -> np.ndarray:
    """Localizes a (frames, height, width) dask array (or anything ``dask.array.asarray`` takes) chunk by chunk on the
    active dask scheduler (a ``dask.distributed`` Client if one is current) and returns one structured array
    (LOCALIZATION_DTYPE), sorted by frame, with frames 0-based over the whole array. Settings are those of
    :func:`maliang.localize` (progress excepted). Chunks split along height/width are rechunked to whole frames."""
    import dask

    if "progress" in settings:
        raise TypeError("maliang.dask.localize: progress callbacks do not cross processes; use dask's diagnostics "
                        "(dask.diagnostics.ProgressBar or the distributed dashboard)")
    make_settings(**settings)
    blocks, starts = _blocks(array)
    parts = [dask.delayed(_localize_block)(b, int(s), settings) for b, s in zip(blocks, starts)]
    results = dask.compute(*parts)
    return _concat(list(results))
