"""maliang.dask.localize: chunk by chunk on the active dask scheduler; one table with frames over the whole array."""
import dask
import dask.array as da
import numpy as np
import pytest

import maliang
import maliang.dask as mdask
from conftest import BINDING


@pytest.fixture(scope="module")
def stack_and_ref(sim):
    stack = np.ascontiguousarray(np.concatenate([sim[0]] * 3))  # 60 frames
    return stack, maliang.localize(stack, offset=100)


def check(locs, ref):
    assert locs.dtype == maliang.LOCALIZATION_DTYPE
    assert len(locs) == len(ref)
    np.testing.assert_array_equal(locs, ref)


def test_default_scheduler_uneven_chunks(stack_and_ref):
    stack, ref = stack_and_ref
    arr = da.from_array(stack, chunks=((7, 20, 13, 20), 64, 64))
    with dask.config.set(scheduler="threads"):
        check(mdask.localize(arr, offset=100), ref)
    with dask.config.set(scheduler="synchronous"):
        check(mdask.localize_delayed(arr, offset=100).compute(), ref)


def test_chunks_split_inside_frames_are_rechunked(stack_and_ref):
    stack, ref = stack_and_ref
    arr = da.from_array(stack, chunks=(16, 32, 32))
    check(mdask.localize(arr, offset=100), ref)


def test_local_cluster_threads(stack_and_ref):
    from distributed import Client, LocalCluster

    stack, ref = stack_and_ref
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        arr = da.from_array(stack, chunks=(15, 64, 64))
        locs = mdask.localize(arr, offset=100)
        assert len(client.scheduler_info()["workers"]) == 2
    check(locs, ref)


def test_local_cluster_processes(stack_and_ref, monkeypatch):
    """Two worker processes (as on a real cluster): they import maliang from PYTHONPATH and load the library."""
    from distributed import Client, LocalCluster

    stack, ref = stack_and_ref
    monkeypatch.setenv("PYTHONPATH", str(BINDING))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        arr = da.from_array(stack, chunks=(20, 64, 64))
        locs = mdask.localize(arr, offset=100)
        pids = client.run(lambda: __import__("os").getpid())
        assert len(set(pids.values())) == 2
    check(locs, ref)


def test_dask_errors():
    with pytest.raises(ValueError, match="psf_sigma is NaN"):
        mdask.localize(da.zeros((4, 16, 16), dtype=np.uint16), psf_sigma=float("nan"))
    with pytest.raises(ValueError, match="3-D"):
        mdask.localize(da.zeros((2, 2, 16, 16), dtype=np.uint16))
    with pytest.raises(TypeError, match="dtype bool"):
        mdask.localize(da.zeros((2, 16, 16), dtype=bool))
    with pytest.raises(TypeError, match="progress"):
        mdask.localize(da.zeros((2, 16, 16), dtype=np.uint16), progress=print)


def test_example_script_on_a_tiff(sim, tmp_path):
    import subprocess
    import sys
    from conftest import ROOT, env_with_package

    _, tif, _ = sim
    out = tmp_path / "locs.csv"
    script = ROOT / "examples" / "dask" / "localize_large_stack.py"
    r = subprocess.run([sys.executable, str(script), str(tif), "--chunk", "6", "--out", str(out), "--offset", "100",
                        "--workers", "2"], capture_output=True, text=True, timeout=180, env=env_with_package(),
                       cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 chunks" in r.stdout
    got = maliang.read_csv(out)
    ref = maliang.localize(sim[0], offset=100)
    assert len(got) == len(ref)
    np.testing.assert_array_equal(got["frame"], ref["frame"])
    np.testing.assert_allclose(got["x"], ref["x"], atol=1e-4)


def test_example_script_simulated(tmp_path):
    import subprocess
    import sys
    from conftest import ROOT, env_with_package

    out = tmp_path / "locs.csv"
    script = ROOT / "examples" / "dask" / "localize_large_stack.py"
    r = subprocess.run([sys.executable, str(script), "--simulate", "30", "--size", "64", "--chunk", "10", "--out",
                        str(out), "--threads-only"], capture_output=True, text=True, timeout=180,
                       env=env_with_package(), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    got = maliang.read_csv(out)
    assert got["frame"].max() == 29 and len(got) > 30 * 20 * 0.6
