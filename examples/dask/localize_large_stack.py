#!/usr/bin/env python3
"""Localize a stack larger than memory with dask: chunk by chunk, on a local or distributed cluster.

    python3 localize_large_stack.py movie.tif --out locs.csv --offset 100          # a TIFF, read lazily (memory-mapped)
    python3 localize_large_stack.py --simulate 2000 --out locs.csv                 # lazily simulated frames
    python3 localize_large_stack.py movie.tif --scheduler tcp://host:8786 ...      # an existing dask.distributed cluster

Each chunk of frames is one task; the engine uses every core of its worker. Frame numbers are offset per chunk and
the result is one table, written as ThunderSTORM-compatible CSV.
"""
import argparse
import os
import sys
import time

try:
    import maliang
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "PythonBinding"))
    import maliang
import maliang.dask
import numpy as np


def lazy_tiff(path, chunk):
    """A dask array over a TIFF stack without reading it (memory-mapped pages when the file allows it)."""
    import dask.array as da
    import tifffile

    try:
        mm = tifffile.memmap(path, mode="r")
    except ValueError:  # compressed or not contiguous: read pages on demand through zarr-less indexing
        with tifffile.TiffFile(path) as t:
            n, page = len(t.pages), t.pages[0]
            shape, dtype = (n,) + page.shape, page.dtype

        def block(block_info=None):
            (a, b), _, _ = block_info[None]["array-location"]
            with tifffile.TiffFile(path) as t:
                return np.stack([t.pages[i].asarray() for i in range(a, b)])

        return da.map_blocks(block, chunks=(da.core.normalize_chunks((chunk,) + shape[1:], shape)), dtype=dtype)
    if mm.ndim == 2:
        mm = mm[None]
    return da.from_array(mm, chunks=(chunk,) + mm.shape[1:])


def lazy_simulation(frames, size, chunk, seed=0):
    """Simulated frames generated inside each task (nothing is materialized up front)."""
    import dask.array as da
    from maliang.testing import simulate_stack

    def block(block_info=None):
        (a, b), _, _ = block_info[None]["array-location"]
        return simulate_stack(b - a, size, size, emitters_per_frame=20, photons=1500, background=10, offset=100,
                              seed=seed + a)[0]

    chunks = da.core.normalize_chunks((chunk, size, size), (frames, size, size))
    return da.map_blocks(block, chunks=chunks, dtype=np.uint16)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tif", nargs="?", help="TIFF stack (omit with --simulate)")
    ap.add_argument("--simulate", type=int, metavar="FRAMES", help="simulate this many frames instead of reading")
    ap.add_argument("--size", type=int, default=256, help="simulated frame size, px")
    ap.add_argument("--chunk", type=int, default=100, help="frames per task")
    ap.add_argument("--out", required=True, help="localizations CSV")
    ap.add_argument("--offset", type=float, default=100.0)
    ap.add_argument("--pixel-size", type=float, default=100.0)
    ap.add_argument("--psf-sigma", type=float, default=1.3)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--scheduler", help="address of a dask.distributed scheduler (default: start a LocalCluster)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    ap.add_argument("--threads-only", action="store_true", help="LocalCluster with threads, not processes")
    a = ap.parse_args(argv)
    if (a.tif is None) == (a.simulate is None):
        ap.error("give a TIFF or --simulate FRAMES")

    from distributed import Client, LocalCluster

    arr = lazy_simulation(a.simulate, a.size, a.chunk) if a.simulate else lazy_tiff(a.tif, a.chunk)
    print(f"stack {arr.shape} {arr.dtype}, {arr.numblocks[0]} chunks of <= {a.chunk} frames", flush=True)
    cluster = None
    if a.scheduler:
        client = Client(a.scheduler)
    else:
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=not a.threads_only,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        t0 = time.perf_counter()
        locs = maliang.dask.localize(arr, offset=a.offset, pixel_size=a.pixel_size, psf_sigma=a.psf_sigma,
                                     threshold=a.threshold)
        dt = time.perf_counter() - t0
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    maliang.write_csv(a.out, locs, a.pixel_size)
    print(f"{len(locs)} localizations from {arr.shape[0]} frames in {dt:.2f} s "
          f"({arr.shape[0] / dt:.0f} frames/s); wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
