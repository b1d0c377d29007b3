"""Localizer lifetime and callbacks against the C ABI's rules: a progress callback's exception always surfaces,
cancel() may race close(), and the callback cannot close (or re-enter) the localizer it is called from."""
import threading

import numpy as np
import pytest

import maliang
from maliang import _native as N

SETTINGS = dict(offset=100)


class Boom(Exception):
    pass


def _raising(done, total, n):
    raise Boom(f"callback failed at {done}/{total}")


def _real_push():
    return N.lib().ml_push_frames


# -- 1. an exception in the progress callback is re-raised, whatever ml_push_frames returned ---------------------------
@pytest.mark.parametrize("layout", ["one frame", "stack", "strided stack"])
def test_callback_exception_is_raised_by_the_real_engine(sim, layout):
    stack, _, _ = sim
    frames = {"one frame": stack[0], "stack": stack[:4], "strided stack": stack[::5]}[layout]
    with pytest.raises(Boom, match="callback failed"):
        maliang.localize(frames, progress=_raising, **SETTINGS)


@pytest.mark.parametrize("status", [N.ML_OK, N.ML_ERR_CANCELLED, N.ML_ERR_INTERNAL])
@pytest.mark.parametrize("layout", ["one frame", "stack", "strided stack"])
def test_callback_exception_is_raised_whatever_the_push_returns(sim, monkeypatch, status, layout):
    """An engine that finishes the push although the callback asked to cancel (its last chunk: ML_OK, as before the
    ABI change), or that fails for another reason: the callback's exception is still what the caller sees."""
    stack, _, _ = sim
    frames = {"one frame": stack[0], "stack": stack[:4], "strided stack": stack[::5]}[layout]
    real = _real_push()
    calls = []

    def push(*args):
        real(*args)
        calls.append(args[4])
        return status

    monkeypatch.setattr(N.lib(), "ml_push_frames", push)
    with pytest.raises(Boom, match="callback failed"):
        maliang.localize(frames, progress=_raising, **SETTINGS)
    assert len(calls) == 1, "the push went on after the callback had raised"
    with maliang.Localizer(progress=_raising, **SETTINGS) as loc:
        with pytest.raises(Boom):
            loc.push(frames)
        loc.set_progress(None)
        monkeypatch.setattr(N.lib(), "ml_push_frames", real)
        assert len(loc.push(stack[0])) > 0  # the error was consumed: the next push is clean


def test_callback_exception_on_the_last_chunk(sim):
    stack, _, _ = sim
    seen = []

    def late(done, total, n):
        seen.append((done, total))
        if done == total:
            raise Boom("on the last chunk")

    big = np.ascontiguousarray(np.concatenate([stack] * 5))
    with pytest.raises(Boom, match="last chunk"):
        maliang.localize(big, progress=late, **SETTINGS)
    assert seen[-1] == (100, 100)


def test_cancel_on_the_last_chunk_raises_cancelled_with_everything(sim):
    stack, _, _ = sim
    ref = maliang.localize(stack, **SETTINGS)
    with pytest.raises(maliang.Cancelled) as e:
        maliang.localize(stack, progress=lambda done, total, n: done == total, **SETTINGS)
    np.testing.assert_array_equal(e.value.partial, ref)


# -- 2. cancel() racing close() -------------------------------------------------------------------------------------
def test_cancel_while_another_thread_closes(monkeypatch):
    """Deterministic interleaving: cancel() has found the localizer alive and is about to call ml_cancel when another
    thread closes it. cancel() must neither raise (a destroyed handle is ML_ERR_ARGUMENT) nor crash."""
    loc = maliang.Localizer()
    real_cancel = N.lib().ml_cancel
    closing, closed = threading.Event(), threading.Event()
    errors = []

    def closer():
        closing.set()
        try:
            loc.close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        closed.set()

    def cancel(handle):
        t = threading.Thread(target=closer)
        t.start()
        assert closing.wait(10)
        closed.wait(0.5)  # without the handle lock, close() completes here and the handle is gone
        return real_cancel(handle)

    monkeypatch.setattr(N.lib(), "ml_cancel", cancel)
    loc.cancel()
    assert closed.wait(10), "close() never finished"
    assert not errors and loc.closed
    loc.cancel()  # closed: nothing to do, no error


def test_cancel_and_close_race_stress():
    errors = []
    for _ in range(40):
        loc = maliang.Localizer()
        go = threading.Barrier(3)

        def run(f):
            try:
                go.wait(10)
                for _ in range(20):
                    f()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=run, args=(f,)) for f in (loc.cancel, loc.cancel, loc.close)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert loc.closed
    assert not errors, errors[:3]


def test_cancel_before_a_push_cancels_the_next_push(sim):
    stack, _, _ = sim
    with maliang.Localizer(**SETTINGS) as loc:
        loc.cancel()
        with pytest.raises(maliang.Cancelled):
            loc.push(stack[:2])
        assert len(loc.push(stack[:2])) > 0


# -- 3. close() / push() from inside the progress callback -----------------------------------------------------------
@pytest.mark.parametrize("what", ["close", "push", "clear", "set_progress", "exit"])
def test_callback_cannot_close_or_reenter_the_localizer(sim, what):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 3))
    with maliang.Localizer(**SETTINGS) as loc:
        def progress(done, total, n):
            if what == "close":
                loc.close()
            elif what == "push":
                loc.push(stack[0])
            elif what == "clear":
                loc.clear()
            elif what == "set_progress":
                loc.set_progress(None)
            else:
                loc.__exit__(None, None, None)

        loc.set_progress(progress)
        with pytest.raises(RuntimeError, match="return True from the callback to cancel"):
            loc.push(big)
        assert not loc.closed
        # still usable: results of the cancelled push are kept, and a later push works
        loc.set_progress(None)
        n = loc.result_count()
        assert len(loc.push(stack[:2])) > 0 and loc.result_count() > n
    assert loc.closed


def test_callback_may_read_and_cancel(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 5))
    seen = []
    with maliang.Localizer(**SETTINGS) as loc:
        def progress(done, total, n):
            seen.append((loc.result_count(), len(loc.results())))
            loc.cancel()

        loc.set_progress(progress)
        with pytest.raises(maliang.Cancelled) as e:
            loc.push(big)
    assert seen and seen[0][0] == seen[0][1] == len(e.value.partial)


def test_close_from_another_thread_waits_for_the_push(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 5))
    in_callback, release = threading.Event(), threading.Event()
    loc = maliang.Localizer(**SETTINGS)
    out = {}

    def progress(done, total, n):
        in_callback.set()
        assert release.wait(10)

    loc.set_progress(progress)

    def work():
        try:
            out["locs"] = loc.push(big)
        except BaseException as e:  # pragma: no cover - reported below
            out["error"] = e

    t = threading.Thread(target=work)
    t.start()
    assert in_callback.wait(30)
    closer = threading.Thread(target=loc.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive() and not loc.closed  # waits for the push
    release.set()
    t.join(60)
    closer.join(10)
    assert "error" not in out, out.get("error")
    assert len(out["locs"]) > 0 and loc.closed
