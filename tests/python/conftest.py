"""pytest setup: the package is used from the source tree (src/PythonBinding on sys.path), and the library from
build/native/libmaliang.so (`make native`), unless MALIANG_LIBRARY says otherwise."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDING = ROOT / "src" / "PythonBinding"
sys.path.insert(0, str(BINDING))

import maliang  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
REPO_DATA = ROOT / "tests" / "data"
CLI = ROOT / "build" / "maliang"


def env_with_package(**extra):
    """Environment for subprocesses (examples, kernels, workers) that finds the source-tree package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BINDING)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def run_cli(*args, cwd=None):
    """The CLI with these arguments; `localize` without --psf-sigma gets the Python default's 1.3 px (the CLI would
    estimate the width from the data, Python's localize() uses the number it is given), so the two compare."""
    if args and args[0] == "localize" and "--psf-sigma" not in map(str, args) and "--calibration" not in map(str, args):
        args = (*args, "--psf-sigma", 1.3)
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make build` (the CLI-equivalence tests need the maliang CLI)")
    r = subprocess.run([str(CLI), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"maliang {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


SIM = dict(width=64, height=64, frames=20, emitters_per_frame=10, photons=2000, background=10, offset=100, seed=3)


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    """The brief's stack from the engine's simulator: (stack as uint16 array, tif path, truth CSV path)."""
    import tifffile

    d = tmp_path_factory.mktemp("sim")
    tif, truth = d / "stack.tif", d / "truth.csv"
    run_cli("simulate", tif, "--truth", truth, "--width", SIM["width"], "--height", SIM["height"], "--frames",
            SIM["frames"], "--emitters-per-frame", SIM["emitters_per_frame"], "--photons", SIM["photons"],
            "--background", SIM["background"], "--offset", SIM["offset"], "--seed", SIM["seed"])
    stack = tifffile.imread(tif)
    assert stack.shape == (SIM["frames"], SIM["height"], SIM["width"]) and stack.dtype == np.uint16
    return stack, tif, truth


@pytest.fixture(scope="session")
def sparse(tmp_path_factory):
    """A sparse stack for recall: 128x128, ~5 emitters per frame, 40 frames."""
    import tifffile

    d = tmp_path_factory.mktemp("sparse")
    tif, truth = d / "stack.tif", d / "truth.csv"
    run_cli("simulate", tif, "--truth", truth, "--width", 128, "--height", 128, "--frames", 40, "--emitters-per-frame",
            5, "--photons", 2000, "--background", 10, "--offset", 100, "--seed", 11)
    return tifffile.imread(tif), tif, truth


@pytest.fixture(scope="session")
def picasso_movie():
    import tifffile

    return tifffile.imread(REPO_DATA / "picasso_testdata.tif")
