"""backend="cuda" through the C ABI (bench/gpu/check_python_cuda.py: the same localizations as the CPU, a caller's own CUDA
context still current afterwards), and the GPU machine's script. On an NVIDIA machine these run on the GPU; elsewhere on
tests/cuda-emulator (the CUDA kernel source run on the CPU: it checks the host code, not GPU speed), in subprocesses
started through tests/cuda-emulator/with-cuda.sh."""
import json
import subprocess
import sys

from conftest import ROOT, env_with_package

CHECK = ROOT / "bench" / "gpu" / "check_python_cuda.py"
WITH_CUDA = ROOT / "tests" / "cuda-emulator" / "with-cuda.sh"


def where():
    """Which CUDA the subprocesses get: the NVIDIA driver where there is one, else the emulator (with-cuda.sh)."""
    return "NVIDIA driver" if subprocess.run([str(WITH_CUDA), "--real-driver"]).returncode == 0 else "CUDA emulator"


def test_cuda_backend_equals_cpu_and_leaves_the_callers_context_current():
    r = subprocess.run([str(WITH_CUDA), sys.executable, str(CHECK)], capture_output=True, text=True, timeout=300,
                       env=env_with_package())
    assert r.stdout.strip(), f"on the {where()}:\n{r.stderr}"
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["backend"].startswith("cuda:"), res
    assert res["n_cpu"] == res["n_gpu"] and res["n_cpu"] > 30, res
    assert res["frames_equal"], res
    assert 0 <= res["max_dx"] <= 1e-4 and 0 <= res["max_dy"] <= 1e-4, res
    assert res["same_context"], f"the caller's CUDA context is no longer current ({where()})"
    assert res["ok"] and r.returncode == 0, r.stderr


def test_gpu_machine_script_passes_on_this_machine(tmp_path):
    """bench/gpu/run_on_gpu.sh is what a lent NVIDIA machine runs (device time is scarce): it must work before it gets
    there. Small sizes; on the emulator the figures mean nothing, the PASS lines do."""
    from conftest import CLI
    env = env_with_package(MALIANG=str(CLI), OUT=str(tmp_path / "out"), FRAMES_2048="2",
                           BENCH_ARGS="--frames 16 --fits 20000", PYTHON=sys.executable)
    r = subprocess.run([str(WITH_CUDA), str(ROOT / "bench" / "gpu" / "run_on_gpu.sh")], capture_output=True, text=True,
                       timeout=900, env=env)
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert r.returncode == 0, f"on the {where()}:\n{summary}\n{r.stderr[-3000:]}"
    lines = summary.splitlines()
    assert not [l for l in lines if l.startswith("FAIL")], summary
    for check in ["maliang devices", "python: maliang.localize cuda = cpu", "equal_maliang_reject: cpu = cuda", "equal_wavelet_overlapping: cpu = cuda",
                  "large_2048: cpu = cuda", "large_2048: same counts", "bench cuda_512:", "bench cuda_2048:"]:
        assert any(l.startswith("PASS " + check) for l in lines), f"no PASS {check}:\n{summary}"
    bench = json.loads((tmp_path / "out" / "bench_cuda_512.json").read_text())
    assert bench["backend"].startswith("cuda:") and bench["device"] and 0.9 < bench["rmse_over_crlb"] < 1.1
    assert lines[-1] == "failed checks: 0"
