#!/usr/bin/env python3
"""Localize single molecules live during a Micro-Manager acquisition (pycro-manager image_process_fn hook).

Run with Micro-Manager open (and pycro-manager installed):
    python3 live_localize.py --frames 2000 --offset 100 --pixel-size 107 --dir /data --name storm
Without a microscope, `--simulate` feeds simulated frames and metadata exactly as pycro-manager calls the hook:
    python3 live_localize.py --simulate --frames 50 --out locs.csv --preview preview.tif

The hook returns every image unchanged, so pycro-manager saves the raw data as usual; localizations accumulate in the
hook (`hook.localizations`) and a rendered preview is available at any time (`hook.preview()`).
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
import maliang.micromanager


def make_hook(offset=100.0, pixel_size=100.0, psf_sigma=1.3, threshold=5.0, report_every=100, **settings):
    """The acquisition hook: localizes each frame, passes the image on, prints a line every `report_every` frames."""

    def report(new, metadata):
        n = hook.frames
        if report_every and n % report_every == 0:
            print(f"{n} frames, {len(hook.localizations)} localizations", flush=True)

    hook = maliang.micromanager.live_hook(offset=offset, pixel_size=pixel_size, psf_sigma=psf_sigma,
                                          threshold=threshold, annotate=True, on_frame=report, **settings)
    print(hook.engine, flush=True)  # which engine the maliang package loaded on this machine
    return hook


def simulated_events(frames, height=128, width=128, seed=0):
    """(image, metadata) pairs as pycro-manager hands them to image_process_fn."""
    from maliang.testing import simulate_stack

    stack, truth = simulate_stack(frames, height, width, emitters_per_frame=8, photons=1500, background=10,
                                  offset=100, seed=seed)
    for t in range(frames):
        md = {"Axes": {"time": t}, "Camera": "Sim", "Height": height, "Width": width, "PixelType": "GRAY16",
              "ElapsedTime-ms": 10.0 * t, "Exposure": 10.0}
        yield stack[t], md
    run_truth[0] = truth


run_truth = [None]


def run_acquisition(hook, frames, directory, name, exposure_ms):
    from pycromanager import Acquisition, multi_d_acquisition_events  # needs Micro-Manager running

    with Acquisition(directory=directory, name=name, image_process_fn=hook) as acq:
        acq.acquire(multi_d_acquisition_events(num_time_points=frames, time_interval_s=0, exposure=exposure_ms))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--offset", type=float, default=100.0)
    ap.add_argument("--pixel-size", type=float, default=100.0)
    ap.add_argument("--psf-sigma", type=float, default=1.3)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--exposure", type=float, default=10.0, help="exposure, ms (acquisition)")
    ap.add_argument("--dir", default=".", help="where pycro-manager saves the raw data")
    ap.add_argument("--name", default="maliang_live")
    ap.add_argument("--simulate", action="store_true", help="no microscope: feed simulated frames to the hook")
    ap.add_argument("--out", help="write the localizations CSV here at the end")
    ap.add_argument("--preview", help="write the rendered preview (float32 TIFF) here at the end")
    a = ap.parse_args(argv)

    hook = make_hook(a.offset, a.pixel_size, a.psf_sigma, a.threshold, report_every=max(1, a.frames // 5))
    t0 = time.perf_counter()
    if a.simulate:
        for image, md in simulated_events(a.frames):
            out_image, out_md = hook(image, md)
            assert out_image is image  # passed on untouched
    else:
        run_acquisition(hook, a.frames, a.dir, a.name, a.exposure)
    dt = time.perf_counter() - t0
    locs = hook.localizations
    s = hook.summary()
    print(f"done: {hook.frames} frames, {len(locs)} localizations in {dt:.2f} s "
          f"(engine {s['ms_per_frame']:.2f} ms/frame on {s['backend']})")
    if a.out:
        maliang.write_csv(a.out, locs, a.pixel_size)
        print(f"wrote {a.out}")
    if a.preview:
        import tifffile
        tifffile.imwrite(a.preview, hook.preview())
        print(f"wrote {a.preview}")
    hook.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
