"""The wheel: a platform wheel that carries libmaliang.so and works installed, away from the source tree."""
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import BINDING, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(out),
                        str(BINDING)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = list(out.glob("maliang-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_is_a_platform_wheel_with_the_library(wheel):
    name = wheel.name
    assert name.startswith("maliang-0.1.0-py3-none-") and not name.endswith("-any.whl"), name
    assert "linux" in name or sys.platform != "linux"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        wheel_meta = z.read("maliang-0.1.0.dist-info/WHEEL").decode()
        entry_points = z.read("maliang-0.1.0.dist-info/entry_points.txt").decode()
        so = z.getinfo("maliang/libmaliang.so")
    assert "Root-Is-Purelib: false" in wheel_meta
    assert so.file_size == (ROOT / "build" / "native" / "libmaliang.so").stat().st_size
    for f in ("maliang/__init__.py", "maliang/napari.yaml", "maliang/dask.py", "maliang/micromanager.py"):
        assert f in names
    assert "[napari.manifest]" in entry_points and "maliang = maliang:napari.yaml" in entry_points


def test_installed_wheel_uses_its_own_library(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("MALIANG_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)
    code = ("import maliang, numpy as np\n"
            "from maliang.testing import simulate_stack\n"
            "s, t = simulate_stack(5, 32, 32, emitters_per_frame=2, offset=100, seed=1)\n"
            "locs = maliang.localize(s, offset=100)\n"
            "print(maliang.__file__); print(maliang.library_path()); print(len(locs))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    pkg, lib, n = r.stdout.split()
    assert pkg.startswith(str(target)) and lib == str(target / "maliang" / "libmaliang.so")
    assert int(n) >= 8


def test_source_tree_without_install_finds_build_native(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MALIANG_LIBRARY"}
    env["PYTHONPATH"] = str(BINDING)
    r = subprocess.run([sys.executable, "-c", "import maliang; print(maliang.library_path())"], capture_output=True,
                       text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(ROOT / "build" / "native" / "libmaliang.so")
    # MALIANG_LIBRARY wins
    env["MALIANG_LIBRARY"] = str(ROOT / "build" / "native" / "publish" / "libmaliang.so")
    r = subprocess.run([sys.executable, "-c", "import maliang; print(maliang.library_path())"], capture_output=True,
                       text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == env["MALIANG_LIBRARY"]
