"""maliang.micromanager.live_hook and examples/pycromanager/live_localize.py, fed as pycro-manager feeds them."""
import importlib.util
import subprocess
import sys
import threading

import numpy as np

import maliang
import maliang.micromanager
from conftest import ROOT, env_with_package

EXAMPLE = ROOT / "examples" / "pycromanager" / "live_localize.py"


def metadata(t):
    return {"Axes": {"time": t, "channel": "640"}, "Camera": "Sim", "ElapsedTime-ms": 10.0 * t}


def test_hook_localizes_each_frame_and_passes_the_image_on(sim):
    stack, _, _ = sim
    ref = maliang.localize(stack, offset=100)
    with maliang.micromanager.live_hook(offset=100, annotate=True) as hook:
        for t, frame in enumerate(stack):
            md = metadata(t)
            out = hook(frame, md)
            assert isinstance(out, tuple) and out[0] is frame and out[1] is md
            assert md["MaLiangLocalizations"] == np.sum(ref["frame"] == t)
        locs = hook.localizations
        np.testing.assert_array_equal(locs, ref)
        assert hook.frames == 20 and hook.frame_metadata[5]["Axes"]["time"] == 5
        preview = hook.preview(magnification=4)
        assert preview.shape == (256, 256) and preview.dtype == np.float32
        np.testing.assert_array_equal(preview, maliang.render(ref, 4, width=64, height=64))
        assert hook(None, {"x": 1}) == (None, {"x": 1})


def test_hook_accept_filters_channels_and_is_thread_safe(sim):
    stack, _, _ = sim
    hook = maliang.micromanager.live_hook(offset=100, accept=lambda md: md["Axes"]["channel"] == "640")
    reads, errors = [], []
    stop, reading = threading.Event(), threading.Event()

    def reader():  # a GUI thread polling while frames arrive
        try:
            while not stop.is_set():
                reads.append(len(hook.localizations))
                hook.preview(2)
                reading.set()
        except BaseException as e:
            errors.append(e)
            reading.set()

    t = threading.Thread(target=reader)
    t.start()
    assert reading.wait(30), "the reader thread never read"
    for i, frame in enumerate(stack):
        hook(frame, {"Axes": {"time": i, "channel": "640"}})
        hook(frame, {"Axes": {"time": i, "channel": "488"}})  # ignored
    stop.set()
    t.join(30)
    assert not t.is_alive()
    assert not errors, errors
    assert reads, "the reader thread never read"
    assert hook.frames == 20
    np.testing.assert_array_equal(hook.localizations, maliang.localize(stack, offset=100))
    assert reads == sorted(reads)
    hook.close()
    assert len(hook.localizations) == 0


def test_example_hook_in_process():
    spec = importlib.util.spec_from_file_location("live_localize", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    hook = mod.make_hook(offset=100, report_every=0)
    for image, md in mod.simulated_events(30, 64, 64, seed=2):
        img, md2 = hook(image, md)
        assert img is image and "MaLiangLocalizations" in md2
    truth = mod.run_truth[0]
    from maliang.testing import match
    fi, ti = match(hook.localizations, truth, 1.0)
    assert len(ti) >= 0.85 * len(truth)  # 8 random emitters per frame in 64x64 px: some overlap
    hook.close()


def test_example_script_runs(tmp_path):
    out, prev = tmp_path / "locs.csv", tmp_path / "preview.tif"
    r = subprocess.run([sys.executable, str(EXAMPLE), "--simulate", "--frames", "25", "--out", str(out),
                        "--preview", str(prev)], capture_output=True, text=True, timeout=120,
                       env=env_with_package(), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "done: 25 frames" in r.stdout
    locs = maliang.read_csv(out)
    assert len(locs) > 100 and locs["frame"].max() == 24
    import tifffile
    img = tifffile.imread(prev)
    assert img.shape == (1280, 1280) and img.sum() > 0
