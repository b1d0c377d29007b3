"""backend="cuda" through the C ABI: the same localizations as the CPU, and a caller's own CUDA context (PyTorch, CuPy in
the same process) still current afterwards. On an NVIDIA machine this runs on the GPU; elsewhere on tests/cuda-emulator
(the CUDA kernel source run on the CPU: it checks the host code, not GPU speed), in a subprocess whose loader finds it."""
import ctypes.util
import json
import subprocess
import sys

import pytest

from conftest import ROOT, env_with_package

EMULATOR = ROOT / "build" / "cuda-emulator"

CODE = r"""
import ctypes, json, numpy as np, maliang
cu = ctypes.CDLL("libcuda.so.1")
assert cu.cuInit(0) == 0
ctx = ctypes.c_void_p()
assert cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, 0) == 0          # the caller's own context, current on this thread
rng = np.random.default_rng(7)
h, w, n = 64, 80, 6
yy, xx = np.mgrid[0:h, 0:w]
stack = rng.poisson(10, size=(n, h, w)).astype(np.float64)
for f in range(n):
    for _ in range(8):
        x0, y0 = rng.uniform(6, w - 6), rng.uniform(6, h - 6)
        stack[f] += 1500 / (2 * np.pi * 1.3 ** 2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.3 ** 2))
stack = (rng.poisson(stack) + 100).astype(np.uint16)
cpu = maliang.localize(stack, offset=100, backend="cpu")
with maliang.Localizer(offset=100, backend="cuda") as loc:
    loc.push(stack)
    gpu = loc.results()
    backend = loc.summary()["backend"]
cur = ctypes.c_void_p()
assert cu.cuCtxGetCurrent(ctypes.byref(cur)) == 0
print(json.dumps(dict(n_cpu=len(cpu), n_gpu=len(gpu), backend=backend, same_context=cur.value == ctx.value,
                      max_dx=float(np.abs(cpu["x"] - gpu["x"]).max()) if len(cpu) == len(gpu) and len(cpu) else -1,
                      max_dy=float(np.abs(cpu["y"] - gpu["y"]).max()) if len(cpu) == len(gpu) and len(cpu) else -1,
                      frames_equal=bool((cpu["frame"] == gpu["frame"]).all()) if len(cpu) == len(gpu) else False)))
"""


def cuda_env():
    """The environment for the subprocess: the real driver where there is one, else the emulator (built if missing)."""
    if ctypes.util.find_library("cuda"):
        return env_with_package(), "NVIDIA driver"
    if not (EMULATOR / "lib64" / "libcuda.so.1").exists():
        r = subprocess.run([str(ROOT / "tests" / "cuda-emulator" / "build.sh")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    lib = str(EMULATOR / "lib64")
    return env_with_package(LD_LIBRARY_PATH=lib, CUDA_PATH=str(EMULATOR),
                            XDG_CACHE_HOME=str(ROOT / "out" / "test" / "cuda-emulator-cache")), "CUDA emulator"


def test_cuda_backend_equals_cpu_and_leaves_the_callers_context_current():
    env, where = cuda_env()
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, f"on the {where}:\n{r.stdout}\n{r.stderr}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["backend"].startswith("cuda:"), res
    assert res["n_cpu"] == res["n_gpu"] and res["n_cpu"] > 30, res
    assert res["frames_equal"], res
    assert 0 <= res["max_dx"] <= 1e-4 and 0 <= res["max_dy"] <= 1e-4, res
    assert res["same_context"], f"the caller's CUDA context is no longer current ({where})"


def test_gpu_machine_script_passes_on_this_machine(tmp_path):
    """bench/gpu/run_on_gpu.sh is what a lent NVIDIA machine runs (device time is scarce): it must work before it gets
    there. Small sizes; on the emulator the figures mean nothing, the PASS lines do."""
    from conftest import CLI
    env, where = cuda_env()
    env.update(MALIANG=str(CLI), OUT=str(tmp_path / "out"), FRAMES_2048="2", BENCH_ARGS="--frames 16 --fits 20000")
    r = subprocess.run([str(ROOT / "bench" / "gpu" / "run_on_gpu.sh")], capture_output=True, text=True, timeout=900, env=env)
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert r.returncode == 0, f"on the {where}:\n{summary}\n{r.stderr[-3000:]}"
    lines = summary.splitlines()
    assert not [l for l in lines if l.startswith("FAIL")], summary
    for check in ["maliang devices", "equal_maliang_reject: cpu = cuda", "equal_wavelet_overlapping: cpu = cuda",
                  "large_2048: cpu = cuda", "large_2048: same counts", "bench cuda_512:", "bench cuda_2048:"]:
        assert any(l.startswith("PASS " + check) for l in lines), f"no PASS {check}:\n{summary}"
    bench = json.loads((tmp_path / "out" / "bench_cuda_512.json").read_text())
    assert bench["backend"].startswith("cuda:") and bench["device"] and 0.9 < bench["rmse_over_crlb"] < 1.1
    assert lines[-1] == "failed checks: 0"
