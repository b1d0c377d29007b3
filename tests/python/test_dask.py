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
