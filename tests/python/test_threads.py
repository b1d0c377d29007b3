"""The GIL is released during native calls: Python threads localize concurrently."""
import math
import threading
import time

import numpy as np

import maliang
from maliang import _native as N


def _run_in_threads(targets, timeout=120):
    """Runs the callables in threads started together; returns their exceptions (asserting every thread ended)."""
    errors = []
    go = threading.Barrier(len(targets))

    def wrap(f):
        try:
            go.wait(30)
            f()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(f,)) for f in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return errors


def test_two_threads_localize_concurrently_with_identical_results(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 10))  # 200 frames
    t1 = time.perf_counter()
    single = maliang.localize(big, offset=100, threads=1)
    single_s = time.perf_counter() - t1
    assert len(single) > 0
    results, spans = {}, {}

    def work(k):
        t0 = time.perf_counter()
        results[k] = maliang.localize(big, offset=100, threads=1)
        spans[k] = (t0, time.perf_counter())

    t1 = time.perf_counter()
    errors = _run_in_threads([lambda: work(0), lambda: work(1)])
    both_s = time.perf_counter() - t1
    assert not errors, errors
    assert sorted(results) == [0, 1]
    for k in range(2):
        assert results[k].dtype == maliang.LOCALIZATION_DTYPE and len(results[k]) == len(single)
        np.testing.assert_array_equal(results[k], single)
    overlap = min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0])
    print(f"\nnote: one localize (1 engine thread) {single_s:.3f} s; two in parallel {both_s:.3f} s; "
          f"overlap of the two calls {overlap:.3f} s (2 x serial would be {2 * single_s:.3f} s)")


def test_python_runs_while_the_engine_works(sim, monkeypatch):
    """Proof that the GIL is released: while one ml_push_frames call runs (localize without a progress callback, so
    no Python code runs on that thread during it), a spinner thread keeps executing Python and time-stamps fall
    strictly inside the call. The call's window is recorded on the worker thread right before and after the native
    call. With the GIL held during the call (ctypes.PyDLL) the spinner is frozen for the whole call: no stamps inside
    its middle part (a switch can at most happen at its two ends, hence the margins)."""
    stack, _, _ = sim
    # a stack that keeps one engine thread busy for ~0.3-1 s on this machine
    probe = np.ascontiguousarray(np.concatenate([stack] * 20))  # 400 frames
    t = time.perf_counter()
    maliang.localize(probe, offset=100, threads=1)
    per_copy = max((time.perf_counter() - t) / 20, 1e-4)
    copies = int(min(400, max(20, math.ceil(0.5 / per_copy))))
    big = np.ascontiguousarray(np.concatenate([stack] * copies))

    real = N.lib().ml_push_frames
    window = []

    def timed_push(*args):
        window.append(time.perf_counter())
        try:
            return real(*args)
        finally:
            window.append(time.perf_counter())

    monkeypatch.setattr(N.lib(), "ml_push_frames", timed_push)
    samples = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            samples.append(time.perf_counter())
            time.sleep(0.0005)

    out = {}

    def work():
        out["locs"] = maliang.localize(big, offset=100, threads=1)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        errors = _run_in_threads([work])
    finally:
        stop.set()
        spinner.join(30)
    assert not errors, errors
    assert len(out["locs"]) > 0
    assert len(window) == 2, f"expected one native push, got {len(window) // 2}"
    t0, t1 = window
    span = t1 - t0
    assert span > 0.05, f"the native call took only {span:.3f} s: too short to tell"
    inside = [s for s in samples if t0 + 0.1 * span < s < t1 - 0.1 * span]
    print(f"\nnote: native call {span:.3f} s ({len(big)} frames); {len(inside)} of {len(samples)} spinner stamps "
          f"inside its middle 80%")
    assert len(inside) >= 5, (f"only {len(inside)} time stamps of the spinner thread fell inside the {span:.3f} s "
                              f"native call: the GIL was held while the engine ran")
