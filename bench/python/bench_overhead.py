#!/usr/bin/env python3
"""Python overhead of maliang.localize over the engine's own time, on a 512x512x200 uint16 stack.

    /usr/bin/python3 bench/python/bench_overhead.py [--frames 200] [--size 512] [--repeats 3]

For each repeat, measured on the same call: t_python = wall time of what maliang.localize(stack) does, as a Python
caller sees it (settings checks, ml_create, frame checks, ctypes, the native call, reading results into numpy,
ml_destroy: localize() is exactly `with Localizer(**s) as loc: return loc.push(stack)`); t_engine = that call's
ml_get_summary wall_seconds (the engine's time inside ml_push_frames). Prints the medians and the ratio, and the
median of plain maliang.localize() calls for reference (separate runs, so machine noise enters). Also prints the time of
the CLI's `maliang localize` on the same stack saved as TIFF (includes process start, TIFF reading and CSV writing),
when build/maliang exists.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
try:
    import maliang
except ImportError:
    sys.path.insert(0, str(ROOT / "src" / "PythonBinding"))
    import maliang
from maliang.testing import simulate_stack


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--emitters", type=int, default=50, help="emitters per frame")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    a = ap.parse_args()

    t0 = time.perf_counter()
    stack, truth = simulate_stack(a.frames, a.size, a.size, emitters_per_frame=a.emitters, photons=1500,
                                  background=10, offset=100, seed=1)
    print(f"simulated {stack.shape} {stack.dtype} ({stack.nbytes / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
    settings = dict(offset=100, backend=a.backend)
    maliang.localize(stack[:8], **settings)  # warm up (library load, JIT-free AOT code paths, thread pool)

    import statistics
    py, eng, plain, n = [], [], [], 0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        with maliang.Localizer(**settings) as loc:
            locs = loc.push(stack)
            s = loc.summary()
        py.append(time.perf_counter() - t0)
        eng.append(s["wall_seconds"])
        n = len(locs)
        t0 = time.perf_counter()
        maliang.localize(stack, **settings)
        plain.append(time.perf_counter() - t0)
    tp, te, tl = statistics.median(py), statistics.median(eng), statistics.median(plain)
    print(f"{n} localizations, backend {s['backend']} x {s['threads']} threads, median of {a.repeats}")
    print(f"python (same call)      : {tp * 1e3:8.1f} ms  ({tp * 1e3 / a.frames:.3f} ms/frame)")
    print(f"engine (ml_get_summary) : {te * 1e3:8.1f} ms  ({te * 1e3 / a.frames:.3f} ms/frame)")
    print(f"overhead ratio python/engine = {tp / te:.4f}  (+{(tp - te) * 1e3:.2f} ms per call)")
    print(f"maliang.localize()      : {tl * 1e3:8.1f} ms  (separate runs)")

    cli = ROOT / "build" / "maliang"
    if cli.exists():
        import tifffile
        with tempfile.TemporaryDirectory() as d:
            tif = os.path.join(d, "stack.tif")
            tifffile.imwrite(tif, stack, imagej=True)
            best = None
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                subprocess.run([str(cli), "localize", tif, "-o", os.path.join(d, "o.csv"), "--offset", "100",
                                "--backend", a.backend, "--quiet"], check=True)
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
        print(f"CLI maliang localize    : {best * 1e3:8.1f} ms  (process start + TIFF read + CSV write)")


if __name__ == "__main__":
    main()
