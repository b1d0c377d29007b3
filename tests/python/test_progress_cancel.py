"""Progress and cancel as users meet them: the CLI's progress line on a terminal (quiet on a pipe), Ctrl-C on the CLI,
maliang.localize(progress=True) with tqdm, and a KeyboardInterrupt in Python: each stops within a second, with no
output file and no temporary file left."""
import os
import pty
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import maliang
from conftest import BINDING, CLI, run_cli


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A 256x256 x 100-frame stack (13 MB); the tests give it many times on one command line (read as one long stack)."""
    d = tmp_path_factory.mktemp("progress")
    tif = d / "movie.tif"
    run_cli("simulate", tif, "--truth", d / "truth.csv", "--width", 256, "--height", 256, "--frames", 100,
            "--emitters-per-frame", 30, "--offset", 100, "--seed", 4)
    return tif


def _default_sigint():
    # a test run started in the background inherits SIGINT ignored; the user's terminal does not ignore it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _on_terminal(args, cwd, ctrl_c_after=None):
    """Runs args on a pseudo-terminal; returns (exit status, everything written, seconds from Ctrl-C to exit)."""
    pid, fd = pty.fork()
    if pid == 0:
        _default_sigint()
        os.chdir(cwd)
        os.execv(args[0], args)
    out, t_c, t_exit = b"", None, None
    while True:
        if ctrl_c_after is not None and t_c is None and ctrl_c_after(out):
            os.write(fd, b"\x03")  # Ctrl-C typed on the terminal: the line discipline sends SIGINT
            t_c = time.monotonic()
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    t_exit = time.monotonic()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(), (t_exit - t_c if t_c else None)


LINE = re.compile(r"localizing: (\d+)/(\d+) frames \((\d+)%\), (\d+) frames/s, (\d+):(\d\d) left, (\d+) localizations")


def test_cli_progress_line_on_a_terminal(movie, tmp_path):
    args = [str(CLI), "localize"] + [str(movie)] * 30 + ["-o", "locs.csv", "--offset", "100"]
    code, out, _ = _on_terminal(args, tmp_path)
    assert code == 0, out
    updates = [tuple(int(g) for g in m.groups()) for m in LINE.finditer(out)]
    assert len(updates) >= 2, out[:2000]
    assert all(u[1] == 3000 for u in updates)
    assert [u[0] for u in updates] == sorted(u[0] for u in updates)
    assert updates[-1][:3] == (3000, 3000, 100) and updates[-1][4:6] == (0, 0)
    for done, total, pct, fps, m, s, _ in updates:
        assert pct == 100 * done // total and fps > 0
        # time left = frames left / frames/s (the rate shown is rounded to a whole frame/s, the time rounded up)
        assert abs(60 * m + s - (total - done) / fps) <= 1 + 0.01 * (total - done) / fps
    assert updates[-1][6] == sum(1 for _ in open(tmp_path / "locs.csv")) - 1
    # the line is rewritten in place and cleared before the summary, which starts on a clean line
    assert "\n" not in out[out.index("localizing:"):out.rindex("localizations") + 1]
    assert re.search(r"localizations\r +\r" + re.escape(str(movie)), out), out[-600:]
    assert "wrote locs.csv" in out


def test_cli_stays_quiet_on_a_pipe(movie, tmp_path):
    r = subprocess.run([str(CLI), "localize"] + [str(movie)] * 3 + ["-o", "locs.csv", "--offset", "100"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and "\r" not in r.stdout, r.stdout
    assert "300 frames" in lines[0] and "ms/frame" in lines[0]
    assert lines[1] == "wrote locs.csv"


def _leftovers(d):
    return sorted(f for f in os.listdir(d) if f != "movie.tif" and not f.endswith("truth.csv"))


def test_cli_ctrl_c_on_a_terminal_stops_within_a_second(movie, tmp_path):
    args = [str(CLI), "localize"] + [str(movie)] * 300 + ["-o", "locs.csv", "--offset", "100"]  # 30000 frames
    code, out, delay = _on_terminal(args, tmp_path, ctrl_c_after=lambda out: b"localizing: 1" in out)
    assert delay is not None, out[-500:]
    assert code == 130, out[-500:]
    assert delay < 1.0, delay
    assert out.rstrip().endswith("maliang: cancelled"), out[-300:]
    assert _leftovers(tmp_path) == [], "no output and no temporary file"


def test_cli_sigint_on_a_pipe_stops_within_a_second(movie, tmp_path):
    p = subprocess.Popen([str(CLI), "localize"] + [str(movie)] * 300 + ["-o", "locs.csv", "--offset", "100"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while not any(f.endswith(".tmp") for f in os.listdir(tmp_path)):  # the CSV is being written: frames are fitted
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    delay = time.monotonic() - t0
    assert p.returncode == 130, err
    assert delay < 1.0, delay
    assert err == b"maliang: cancelled\n" and out == b""
    assert _leftovers(tmp_path) == []


def test_python_progress_true_shows_a_tqdm_bar(sim, capsys):
    pytest.importorskip("tqdm", reason="tqdm (python3-tqdm) is in scripts/setup.sh")
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 5))  # 100 frames, several chunks
    ref = maliang.localize(big, offset=100)
    capsys.readouterr()
    locs = maliang.localize(big, offset=100, progress=True)
    err = capsys.readouterr().err
    assert np.array_equal(locs, ref)
    final = err.split("\r")[-1].strip()
    # tqdm's own format: "maliang: 100%|##########| 100/100 [00:00<00:00, 812.34frame/s, 2950 localizations]"
    m = re.fullmatch(r"maliang: 100%\|.*\| 100/100 \[\d\d:\d\d<00:00, +([\d.]+)(frame/s|s/frame), (\d+) localizations\]",
                     final)
    assert m, repr(err[-400:])
    assert int(m.group(3)) == len(locs)
    # a streaming Localizer: one bar per push, counting that push's frames
    with maliang.Localizer(offset=100, progress=True) as loc:
        loc.push(big[:40])
        loc.push(big[40:])
    bars = [line.strip() for line in capsys.readouterr().err.split("\n") if line.strip()]
    assert [re.search(r"\| (\d+/\d+) \[", b.split("\r")[-1]).group(1) for b in bars] == ["40/40", "60/60"], bars


def test_python_keyboard_interrupt_stops_localize_within_a_second(tmp_path):
    """SIGINT (Ctrl-C) while the engine runs without the GIL and without a progress callback: KeyboardInterrupt
    within a second, not when the whole stack is done (about 10 s here)."""
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {str(BINDING)!r})
        import numpy as np, maliang
        from maliang.testing import simulate_stack
        s, _ = simulate_stack(frames=50, height=256, width=256, emitters_per_frame=60, offset=100, seed=1)
        big = np.ascontiguousarray(np.concatenate([s] * 20))  # 1000 frames, 200 fit iterations each: ~10 s on 1 core
        print("ready", time.monotonic(), flush=True)
        try:
            maliang.localize(big, offset=100, threads=1, iterations=200, use_tolerance=False)
            print("finished", time.monotonic(), flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.monotonic(), flush=True)
    """))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    assert first.startswith("ready"), first
    time.sleep(0.5)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=120)[0]
    assert out.startswith("interrupted"), out
    delay = float(out.split()[1]) - t0  # CLOCK_MONOTONIC: one clock for both processes
    assert 0 <= delay < 1.0, delay


def test_python_interrupted_save_leaves_no_file(sim, tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    stack, _, _ = sim
    locs = maliang.localize(stack, offset=100)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        maliang.save_picasso(tmp_path / "locs.hdf5", locs, width=64, height=64)
    assert os.listdir(tmp_path) == []


def test_python_localizer_is_usable_after_a_keyboard_interrupt(sim):
    """SIGINT in the middle of a push (here raised by the progress callback itself, on the main thread): the push
    stops with KeyboardInterrupt before its last chunk, and the next push on the same Localizer is not cancelled."""
    stack, _, _ = sim
    big = np.ascontiguousarray(np.concatenate([stack] * 5))  # 100 frames, several chunks
    seen = []

    def progress(done, total, n):
        seen.append(done)
        if len(seen) == 1:
            signal.raise_signal(signal.SIGINT)

    with maliang.Localizer(offset=100, progress=progress) as loc:
        with pytest.raises(KeyboardInterrupt):
            loc.push(big)
        assert len(seen) == 1 and seen[0] < 100, seen  # stopped at the next chunk, not at the end
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's handler is back
        loc.set_progress(None)
        before = loc.frames
        assert len(loc.push(stack)) == len(maliang.localize(stack, offset=100))
        assert loc.frames == before + 20


def test_python_localize_file_progress_true_shows_a_bar_of_the_files_frames(movie, capsys):
    """localize_file: the frame count is only known once the engine has opened the file; the bar still counts it,
    and a second file pushed to the same Localizer gets its own bar counting that file's frames."""
    pytest.importorskip("tqdm", reason="tqdm (python3-tqdm) is in scripts/setup.sh")
    ref = maliang.localize_file(str(movie), offset=100)
    capsys.readouterr()
    locs = maliang.localize_file(str(movie), offset=100, progress=True)
    err = capsys.readouterr().err
    assert np.array_equal(locs, ref)
    final = err.split("\r")[-1].strip()
    m = re.fullmatch(r"maliang: 100%\|.*\| 100/100 \[.*, (\d+) localizations\]", final)
    assert m, repr(err[-400:])
    assert int(m.group(1)) == len(locs)
    with maliang.Localizer(offset=100, progress=True) as loc:
        loc.push_file(str(movie))
        loc.push_file(str(movie))
        assert loc.frames == 200
    bars = [line.strip() for line in capsys.readouterr().err.split("\n") if line.strip()]
    assert [re.search(r"\| (\d+/\d+) \[", b.split("\r")[-1]).group(1) for b in bars] == ["100/100", "100/100"], bars
