"""maliang.localize / maliang.Localizer against the engine: layout, zero copy, strides, dtypes, streaming, progress."""
import ctypes
import threading

import numpy as np
import pytest

import maliang
from maliang import _native as N

SETTINGS = dict(offset=100.0)


def same(a, b):
    assert a.dtype == b.dtype == maliang.LOCALIZATION_DTYPE
    assert len(a) == len(b)
    np.testing.assert_array_equal(a["frame"], b["frame"])
    for k in ("x", "y", "photons", "background", "sigma", "uncertainty_x", "loglik"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_dtype_is_the_76_byte_c_struct():
    dt = maliang.LOCALIZATION_DTYPE
    assert dt.itemsize == 76
    # maliang.h's ml_localization (ABI 2), in order: int32 frame, 12 floats, 3 int32, z and uncertainty_z, fitted_together
    expected = ["frame", "x", "y", "photons", "background", "sigma", "uncertainty_x", "uncertainty_y",
                "uncertainty_photons", "uncertainty_background", "uncertainty_sigma", "loglik", "llr", "iterations",
                "detections", "flags", "z", "uncertainty_z", "fitted_together"]
    assert list(dt.names) == expected
    assert [dt.fields[n][1] for n in expected] == [4 * i for i in range(19)]
    assert [dt.fields[n][0].kind for n in expected] == ["i"] + ["f"] * 12 + ["i"] * 3 + ["f"] * 2 + ["i"]
    # the 96 bytes before issue 17, then int32 x2, double, int32 x2, double, int32 x2, then residual_search (int32) and
    # 4 bytes of tail padding (the struct is 8-aligned)
    assert ctypes.sizeof(N.MlSettings) == 4 + 4 + 7 * 8 + 8 * 4 + (2 * 4 + 8 + 2 * 4 + 8 + 2 * 4) + 4 + 4
    assert N.MlSettings.residual_search.offset == 136
    assert ctypes.sizeof(N.MlSummary) == 7 * 8 + 5 * 8 + 8 + 64
    assert maliang.native_version() == "0.1.0"


def test_localize_finds_the_simulated_molecules(sim):
    stack, _, _ = sim
    locs = maliang.localize(stack, **SETTINGS)
    assert isinstance(locs, np.ndarray) and locs.dtype == maliang.LOCALIZATION_DTYPE
    assert 100 < len(locs) <= 200
    assert np.all(np.diff(locs["frame"]) >= 0) and locs["frame"].min() >= 0 and locs["frame"].max() < stack.shape[0]
    assert np.all((locs["x"] > 0) & (locs["x"] < 64) & (locs["y"] > 0) & (locs["y"] < 64))
    # 2000 photons, sigma 1.3 px: photons near 2000, background near 10, sigma near 1.3
    assert abs(np.median(locs["photons"]) - 2000) < 150
    assert abs(np.median(locs["background"]) - 10) < 1.5
    assert abs(np.median(locs["sigma"]) - 1.3) < 0.1
    assert np.all(locs["uncertainty_x"] > 0) and np.median(locs["uncertainty_x"]) < 0.1
    assert np.all(locs["detections"] == 1)
    assert np.mean(locs["flags"] & 1) > 0.9  # converged


def test_no_copy_for_c_contiguous_uint16(sim):
    stack, _, _ = sim
    assert stack.flags.c_contiguous and stack.dtype == np.uint16
    with maliang.Localizer(**SETTINGS) as loc:
        loc.push(stack)
        assert loc.last_push_address == stack.ctypes.data
        f32 = np.ascontiguousarray(stack, dtype=np.float32)
        loc.push(f32)
        assert loc.last_push_address == f32.ctypes.data


def test_strided_rows_pass_without_copy_and_match(sim):
    stack, _, _ = sim
    crop = stack[:, :, 5:61]  # rows padded: row stride 128 bytes, 56 px wide; one push
    assert not crop.flags.c_contiguous
    with maliang.Localizer(**SETTINGS) as loc:
        a = loc.push(crop)
        assert loc.last_push_address == crop.ctypes.data
    same(a, maliang.localize(np.ascontiguousarray(crop), **SETTINGS))
    # cropping rows too makes the frame stride uneven: frames go one by one, each read in place
    box = stack[:, 3:60, 5:61]
    with maliang.Localizer(**SETTINGS) as loc:
        a = loc.push(box)
        assert loc.last_push_address == box[-1].ctypes.data
    same(a, maliang.localize(np.ascontiguousarray(box), **SETTINGS))


def test_unevenly_spaced_frames_are_pushed_one_by_one(sim):
    stack, _, _ = sim
    every_other = stack[::2]
    a = maliang.localize(every_other, **SETTINGS)
    b = maliang.localize(np.ascontiguousarray(every_other), **SETTINGS)
    same(a, b)
    with maliang.Localizer(**SETTINGS) as loc:
        loc.push(every_other)
        assert loc.last_push_address == every_other[-1].ctypes.data  # the last frame, read in place


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint32, ">u2", np.float16])
def test_other_dtypes_give_the_same_result(sim, dtype):
    stack, _, _ = sim
    ref = maliang.localize(stack, **SETTINGS)
    other = stack.astype(dtype)
    same(maliang.localize(other, **SETTINGS) if dtype != np.float16 else maliang.localize(stack.astype(np.float32), **SETTINGS), ref)
    if dtype == np.float16:  # float16 cannot hold 100..1000 ADU exactly; it must still run (converted once)
        assert len(maliang.localize(other, **SETTINGS)) > 0.8 * len(ref)


def test_fortran_order_and_reversed_are_copied_correctly(sim):
    # About reading arrays: the single-emitter pipeline is mirror-symmetric, the multi-emitter stage (Gauss-Seidel over
    # groups in index order) is not, so it is off here; test_reversed_stack_with_multi_emitter covers the default.
    kw = dict(SETTINGS, multi_emitter=False)
    stack, _, _ = sim
    ref = maliang.localize(stack, **kw)
    same(maliang.localize(np.asfortranarray(stack), **kw), ref)
    flipped = maliang.localize(stack[:, :, ::-1], **kw)
    assert len(flipped) == len(ref)
    np.testing.assert_allclose(np.sort(64 - flipped["x"]), np.sort(ref["x"]), atol=2e-3)


def test_reversed_stack_with_multi_emitter(sim):
    # the default settings on the mirrored stack: the same molecules within 3% (group fits depend on their order)
    stack, _, _ = sim
    ref = maliang.localize(stack, **SETTINGS)
    flipped = maliang.localize(stack[:, :, ::-1], **SETTINGS)
    assert len(ref) > 100
    assert abs(len(flipped) - len(ref)) <= 0.03 * len(ref)
    same(maliang.localize(np.asfortranarray(stack), **SETTINGS), ref)  # a copied array is read as the original


def test_single_frame_2d_equals_stack_frame(sim):
    stack, _, _ = sim
    ref = maliang.localize(stack, **SETTINGS)
    one = maliang.localize(stack[7], **SETTINGS)
    assert np.all(one["frame"] == 0)
    r7 = ref[ref["frame"] == 7]
    assert len(one) == len(r7)
    np.testing.assert_array_equal(one["x"], r7["x"])


def test_streaming_push_equals_batch(sim):
    stack, _, _ = sim
    ref = maliang.localize(stack, **SETTINGS)
    with maliang.Localizer(**SETTINGS) as loc:
        news = [loc.push(f) for f in stack]
        assert loc.frames == len(stack)
        allres = loc.results()
        s = loc.summary()
    same(allres, ref)
    same(np.concatenate(news), ref)
    assert s["frames"] == 20 and s["localizations"] == len(ref) and s["wall_seconds"] > 0
    assert s["backend"] and s["threads"] >= 1
    assert s["candidates"] >= s["localizations"]


def test_clear_keeps_frame_numbering(sim):
    stack, _, _ = sim
    with maliang.Localizer(**SETTINGS) as loc:
        loc.push(stack[:10])
        loc.clear()
        assert len(loc.results()) == 0
        new = loc.push(stack[10:])
    assert new["frame"].min() >= 10


def test_settings_reach_the_engine(sim):
    stack, _, _ = sim
    fixed = maliang.localize(stack, offset=100, fixed_sigma=True, psf_sigma=1.25)
    assert np.all(fixed["sigma"] == np.float32(1.25))
    one = maliang.localize(stack, offset=100, iterations=1, use_tolerance=False)
    assert np.all(one["iterations"] == 1)
    strict = maliang.localize(stack, offset=100, threshold=100)
    assert 0 < len(strict) < len(maliang.localize(stack, offset=100))
    # camera model: photons = (ADU - offset) * photons_per_adu / em_gain
    halved = maliang.localize(stack, offset=100, photons_per_adu=0.5)
    full = maliang.localize(stack, offset=100)
    assert abs(np.median(halved["photons"]) / np.median(full["photons"]) - 0.5) < 0.05
    for f in ("wavelet", "none"):
        assert len(maliang.localize(stack, offset=100, filter=f)) > 0.8 * len(full)
    assert len(maliang.localize(stack, offset=100, roi=9, backend="cpu", threads=1)) > 0.8 * len(full)


def test_progress_reports_and_cancels(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 5))  # 100 frames: several chunks
    calls = []

    def progress(done, total, nlocs):
        calls.append((done, total, nlocs))

    locs = maliang.localize(big, progress=progress, **SETTINGS)
    assert calls, "progress was never called"
    assert calls[-1] == (100, 100, len(locs))
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert all(t == 100 for _, t, _ in calls)

    seen = []

    def stop_after_first(done, total, nlocs):
        seen.append(done)
        return True

    with pytest.raises(maliang.Cancelled) as e:
        maliang.localize(big, progress=stop_after_first, **SETTINGS)
    assert len(seen) == 1 and seen[0] < 100
    assert e.value.partial is not None and len(e.value.partial) > 0
    assert e.value.partial["frame"].max() < seen[0]


def test_progress_exception_is_raised_not_swallowed(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 5))

    def bad(done, total, n):
        raise KeyError("boom in callback")

    with pytest.raises(KeyError, match="boom in callback"):
        maliang.localize(big, progress=bad, **SETTINGS)


def test_cancel_from_another_thread_and_reuse(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 10))
    started = threading.Event()
    with maliang.Localizer(**SETTINGS) as loc:
        def progress(done, total, n):
            started.set()
            # hold this chunk until the other thread has called cancel(): deterministic
            assert release.wait(10)

        release = threading.Event()
        loc.set_progress(progress)
        out = {}

        def work():
            try:
                loc.push(big)
            except maliang.Cancelled as e:
                out["cancelled"] = e

        t = threading.Thread(target=work)
        t.start()
        assert started.wait(30)
        loc.cancel()
        release.set()
        t.join(60)
        assert "cancelled" in out
        # the localizer stays usable after a cancel
        loc.set_progress(None)
        frames_before = loc.frames
        new = loc.push(stack[:2])
        assert loc.frames == frames_before + 2 and len(new) > 0


def test_close_and_finalizer():
    loc = maliang.Localizer()
    fin = loc._finalizer
    loc.close()
    loc.close()
    assert loc.closed and not fin.alive
    with pytest.raises(ValueError, match="closed"):
        loc.push(np.zeros((16, 16), np.uint16))
    loc2 = maliang.Localizer()
    fin2 = loc2._finalizer
    del loc2
    import gc
    gc.collect()
    assert not fin2.alive  # the native handle was freed when the object went away
