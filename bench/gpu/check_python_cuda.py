#!/usr/bin/env python3
"""backend="cuda" through the Python module (ctypes -> libmaliang.so): the same localizations as the CPU backend, and a
caller's own CUDA context (PyTorch, CuPy in the same process) still current afterwards. Prints one JSON line and exits
non-zero when a check fails. Run by tests/python/test_cuda.py (on the CUDA emulator in CI) and by
bench/gpu/run_on_gpu.sh on a GPU machine (PYTHONPATH=src/PythonBinding, MALIANG_LIBRARY=build/native/libmaliang.so)."""
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
same = len(cpu) == len(gpu) and len(cpu) > 0
res = dict(n_cpu=len(cpu), n_gpu=len(gpu), backend=backend, same_context=cur.value == ctx.value,
           max_dx=float(np.abs(cpu["x"] - gpu["x"]).max()) if same else -1,
           max_dy=float(np.abs(cpu["y"] - gpu["y"]).max()) if same else -1,
           frames_equal=bool((cpu["frame"] == gpu["frame"]).all()) if same else False)
ok = (res["backend"].startswith("cuda:") and res["n_cpu"] == res["n_gpu"] and res["n_cpu"] > 30 and res["frames_equal"]
      and 0 <= res["max_dx"] <= 1e-4 and 0 <= res["max_dy"] <= 1e-4 and res["same_context"])
res["ok"] = bool(ok)
print(json.dumps(res))
raise SystemExit(0 if ok else 1)
