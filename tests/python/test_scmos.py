"""sCMOS camera maps from Python (issue 14): numpy arrays as keyword arguments, checked before the C call, errors naming
the map and the pixel; the CLI with the same maps as TIFF files gives the same localizations."""
import numpy as np
import pytest
import tifffile

import maliang
from conftest import run_cli
from math import erf, sqrt

SENSOR = (60, 80)          # height, width of the maps
ORIGIN = (12, 7)           # x, y of the stack on the sensor
SHAPE = (30, 48, 56)       # frames, height, width of the stack
TRUE = [(10.3, 12.6), (30.7, 20.2), (44.5, 36.9), (20.1, 38.4)]


def _maps(seed=1):
    rng = np.random.default_rng(seed)
    h, w = SENSOR
    offset = (100 + 2 * rng.standard_normal((h, w))).astype(np.float32)
    gain = (0.5 * (1 + 0.025 * rng.standard_normal((h, w)))).astype(np.float32)
    variance = (16 * (0.8 + 0.4 * rng.random((h, w)))).astype(np.float32)
    hot = rng.random((h, w)) < 0.05
    variance[hot] = 160
    return offset, variance, gain


def _pixel_fractions(c, n, s=1.3):
    edges = np.arange(n + 1) - c
    e = np.array([erf(u / (sqrt(2) * s)) for u in edges])
    return 0.5 * (e[1:] - e[:-1])


def _stack(offset, variance, gain, seed=2):
    """ADU = offset + Poisson(photons) / gain + N(0, variance), the maps cropped at ORIGIN."""
    rng = np.random.default_rng(seed)
    n, h, w = SHAPE
    ox, oy = ORIGIN
    o, v, g = (m[oy:oy + h, ox:ox + w] for m in (offset, variance, gain))
    expected = np.full((h, w), 10.0)
    for x, y in TRUE:
        expected += 1500 * np.outer(_pixel_fractions(y, h), _pixel_fractions(x, w))
    photons = rng.poisson(expected, size=(n, h, w))
    adu = o + photons / g + np.sqrt(v) * rng.standard_normal((n, h, w))
    return np.clip(np.round(adu), 0, 65535).astype(np.uint16)


def test_maps_as_arrays_localize_at_the_origin():
    offset, variance, gain = _maps()
    stack = _stack(offset, variance, gain)
    locs = maliang.localize(stack, camera_offset_map=offset, camera_variance_map=variance, camera_gain_map=gain,
                            camera_origin=ORIGIN, backend="cpu")
    assert len(locs) == SHAPE[0] * len(TRUE)
    for x, y in TRUE:
        near = locs[(np.abs(locs["x"] - x) < 1) & (np.abs(locs["y"] - y) < 1)]
        assert len(near) == SHAPE[0]
        assert abs(near["x"].mean() - x) < 0.05 and abs(near["y"].mean() - y) < 0.05
        assert abs(near["photons"].mean() - 1500) < 75
    # Without the variance map (plain Poisson) the reported uncertainty is smaller: it ignores the read noise.
    plain = maliang.localize(stack, camera_offset_map=offset, camera_gain_map=gain, camera_origin=ORIGIN, backend="cpu")
    assert len(plain) == len(locs)
    assert plain["uncertainty_x"].mean() < 0.97 * locs["uncertainty_x"].mean()


def test_constant_maps_equal_the_scalar_camera_exactly():
    offset = np.full(SENSOR, 100, np.float32)
    gain = np.full(SENSOR, 0.5, np.float32)
    _, variance, _ = _maps()
    stack = _stack(offset, variance, gain)
    scalar = maliang.localize(stack, offset=100, photons_per_adu=0.5, backend="cpu")
    mapped = maliang.localize(stack, camera_offset_map=offset, camera_gain_map=gain, camera_origin=ORIGIN, backend="cpu")
    assert len(scalar) > 0
    np.testing.assert_array_equal(mapped, scalar)


def test_localizer_takes_maps_and_removes_them():
    offset, variance, gain = _maps()
    stack = _stack(offset, variance, gain)
    with maliang.Localizer(camera_offset_map=offset, camera_variance_map=variance, camera_gain_map=gain,
                           camera_origin=ORIGIN, backend="cpu") as loc:
        a = loc.push(stack)
        loc.set_camera_maps(camera_offset_map=offset, camera_gain_map=gain, camera_origin=ORIGIN)
        b = loc.push(stack)
    assert len(a) == len(b) > 0
    assert not np.array_equal(a["x"], b["x"])  # the variance map was in the first fit only
    with maliang.Localizer(camera_offset_map=offset, camera_gain_map=gain, camera_origin=ORIGIN, backend="cpu") as loc:
        np.testing.assert_array_equal(loc.push(stack)[["x", "y", "photons"]], b[["x", "y", "photons"]])


def test_cli_with_map_tiffs_equals_python(tmp_path):
    offset, variance, gain = _maps()
    stack = _stack(offset, variance, gain)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    for name, m in (("off", offset), ("var", variance), ("gain", gain)):
        tifffile.imwrite(tmp_path / f"{name}.tif", m)
    run_cli("localize", tmp_path / "stack.tif", "-o", tmp_path / "locs.csv", "--backend", "cpu", "--quiet",
            "--camera-offset-map", tmp_path / "off.tif", "--camera-variance-map", tmp_path / "var.tif",
            "--camera-gain-map", tmp_path / "gain.tif", "--camera-origin", f"{ORIGIN[0]},{ORIGIN[1]}")
    cli = maliang.read_csv(tmp_path / "locs.csv", pixel_size=100)
    py = maliang.localize(stack, camera_offset_map=offset, camera_variance_map=variance, camera_gain_map=gain,
                          camera_origin=ORIGIN, backend="cpu")
    assert len(cli) == len(py)
    np.testing.assert_allclose(cli["x"], py["x"], atol=1e-4)
    np.testing.assert_allclose(cli["y"], py["y"], atol=1e-4)


def _bad(which, value, at=(3, 1)):
    maps = list(_maps())
    maps[which] = maps[which].copy()
    maps[which][at[1], at[0]] = value
    return dict(camera_offset_map=maps[0], camera_variance_map=maps[1], camera_gain_map=maps[2])


@pytest.mark.parametrize("kw, exc, msg", [
    (_bad(0, np.nan), ValueError, r"camera-offset-map: pixel \(x 3, y 1\) is NaN"),
    (_bad(1, 0), ValueError, r"camera-variance-map: pixel \(x 3, y 1\) is 0"),
    (_bad(1, -4), ValueError, r"camera-variance-map: pixel \(x 3, y 1\)"),
    (_bad(2, 0), ValueError, r"camera-gain-map: pixel \(x 3, y 1\)"),
    (dict(camera_variance_map=np.ones((60, 80), np.float32), camera_gain_map=np.ones((60, 81), np.float32)),
     ValueError, "camera_gain_map has shape"),
    (dict(camera_offset_map=np.ones(80, np.float32)), ValueError, "camera_offset_map must be a 2-D array"),
    (dict(camera_offset_map=np.ones((60, 80), bool)), TypeError, "camera_offset_map must be a numeric"),
    (dict(camera_origin=(4, 2)), ValueError, "camera_origin given without a camera map"),
    (dict(camera_offset_map=np.full((60, 80), 100, np.float32), camera_origin=(-1, 0)), ValueError, "camera_origin x"),
    (dict(camera_offset_map=np.full((60, 80), 100, np.float32), camera_origin=5), TypeError, "camera_origin must be"),
    (dict(camera_offset_map=np.full((60, 80), 100, np.float32), camera_origin=(30, 0)), ValueError, "camera-origin"),
])
def test_bad_maps_are_named(kw, exc, msg):
    stack = np.full((2,) + SHAPE[1:], 120, np.uint16)
    with pytest.raises(exc, match=msg):
        maliang.localize(stack, backend="cpu", **kw)
