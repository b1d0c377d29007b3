"""The GIL is released during native calls: Python threads localize concurrently."""
import threading
import time

import numpy as np

import maliang


def test_two_threads_localize_concurrently_with_identical_results(sim):
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 10))  # 200 frames
    ref = maliang.localize(big, offset=100, threads=1)
    results, spans = {}, {}

    def work(k):
        t0 = time.perf_counter()
        results[k] = maliang.localize(big, offset=100, threads=1)
        spans[k] = (t0, time.perf_counter())

    t1 = time.perf_counter()
    ref2 = maliang.localize(big, offset=100, threads=1)
    single = time.perf_counter() - t1
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    t1 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    both = time.perf_counter() - t1
    for k in range(2):
        assert len(results[k]) == len(ref)
        np.testing.assert_array_equal(results[k], ref)
    np.testing.assert_array_equal(ref2, ref)
    overlap = min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0])
    print(f"\nnote: one localize (1 engine thread) {single:.3f} s; two in parallel {both:.3f} s; "
          f"overlap of the two calls {overlap:.3f} s (2 x serial would be {2 * single:.3f} s)")


def test_python_runs_while_the_engine_works(sim):
    """Deterministic proof: between two progress callbacks of one native call (engine working, no Python frame
    active on that thread), another Python thread executes bytecode. With the GIL held (a PyDLL) it could not."""
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 10))
    counter = [0]
    stop = threading.Event()
    marks = []

    def spin():
        while not stop.is_set():
            counter[0] += 1

    def progress(done, total, n):
        marks.append(counter[0])

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        maliang.localize(big, offset=100, threads=1, progress=progress)
    finally:
        stop.set()
        spinner.join()
    assert len(marks) >= 3
    assert marks[-1] > marks[0], "the counter did not move while the engine ran: the GIL was held"
