"""napari contributions without napari (it cannot be installed here): the manifest parses, every python_name in it
resolves, and the functions it names return correct layer-data tuples."""
import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest
import yaml

import maliang
from maliang import napari_plugin as NP
from conftest import BINDING, run_cli


def manifest():
    path = Path(maliang.__file__).parent / "napari.yaml"
    with open(path) as f:
        return yaml.safe_load(f)


def test_manifest_parses_and_python_names_resolve():
    m = manifest()
    assert m["name"] == "maliang"
    commands = {c["id"]: c for c in m["contributions"]["commands"]}
    for c in commands.values():
        assert c["id"].startswith("maliang.")
        module, _, attr = c["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), c["python_name"]
    for r in m["contributions"]["readers"]:
        assert r["command"] in commands and "*.csv" in r["filename_patterns"]
    for w in m["contributions"]["widgets"]:
        assert w["command"] in commands and w["display_name"] == "Localize"
    # the entry point that makes napari find the manifest
    text = (BINDING / "pyproject.toml").read_text()
    assert '[project.entry-points."napari.manifest"]' in text and 'maliang = "maliang:napari.yaml"' in text


def test_reader_returns_points_and_rendered_image(sim, tmp_path):
    locs = maliang.localize(sim[0], offset=100)
    p = tmp_path / "locs.csv"
    maliang.write_csv(p, locs, pixel_size=100)
    reader = NP.get_reader(str(p))
    assert reader is NP.read_localizations
    assert NP.get_reader(str(tmp_path / "image.tif")) is None
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert NP.get_reader(str(other)) is None
    layers = reader(str(p))
    assert [t[2] for t in layers] == ["points", "image"]
    data, kw, _ = layers[0]
    assert data.shape == (len(locs), 3)
    np.testing.assert_array_equal(data[:, 0], locs["frame"])
    np.testing.assert_allclose(data[:, 1], locs["y"] - 0.5, atol=1e-4)  # napari: pixel centres at integers
    np.testing.assert_allclose(data[:, 2], locs["x"] - 0.5, atol=1e-4)
    assert set(NP.FEATURES) <= set(kw["features"]) and len(kw["features"]["photons"]) == len(locs)
    img, ikw, _ = layers[1]
    assert img.dtype == np.float32 and img.ndim == 2
    s = ikw["scale"][0]
    assert s == 0.1
    # rendered pixel k covers camera [k, k+1) * s: its centre, in napari coordinates, is translate + k * s
    assert np.isclose(ikw["translate"][0] + 0 * s, 0.5 * s - 0.5)
    # the brightest rendered pixel lies on a localization
    r, c = np.unravel_index(np.argmax(img), img.shape)
    y, x = ikw["translate"][0] + r * s, ikw["translate"][1] + c * s
    assert np.min(np.hypot(data[:, 1] - y, data[:, 2] - x)) < 0.2


def test_localize_widget_function(sim):
    stack = sim[0]
    sig = inspect.signature(NP.localize_widget)
    assert list(sig.parameters)[0] == "image"
    layers = NP.localize_widget(stack, offset=100, magnification=5)
    ref = maliang.localize(stack, offset=100)
    pts, kw, kind = layers[0]
    assert kind == "points" and len(pts) == len(ref)
    np.testing.assert_allclose(pts[:, 2], ref["x"] - 0.5, atol=1e-5)
    img, ikw, kind = layers[1]
    assert kind == "image" and img.shape == (320, 320)
    one = NP.localize_widget(stack[3], offset=100)
    assert len(one[0][0]) == np.sum(ref["frame"] == 3)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """A crowded stack (64x64 px, 60 emitters per frame, about 1.5 per um^2), where the crowded-frame options matter."""
    import tifffile

    d = tmp_path_factory.mktemp("dense")
    tif = d / "dense.tif"
    run_cli("simulate", tif, "--truth", d / "truth.csv", "--width", 64, "--height", 64, "--frames", 10,
            "--emitters-per-frame", 60, "--photons", 2000, "--background", 10, "--offset", 100, "--seed", 5)
    return tifffile.imread(tif)


def test_localize_widget_carries_the_crowded_frame_options(dense):
    sig = inspect.signature(NP.localize_widget).parameters
    core = inspect.signature(maliang.localize).parameters
    # the widget's defaults are localize()'s
    for k in ("multi_emitter", "max_emitters", "psf_sigma", "residual_search"):
        assert sig[k].default == core[k].default, k
    assert float(sig["multi_p_value"].default) == core["multi_p_value"].default
    assert sig["estimate_psf_sigma"].default is (core["psf_sigma"].default is None)
    base = maliang.localize(dense, offset=100)
    cases = [(dict(multi_emitter=False), dict(multi_emitter=False)),
             (dict(max_emitters=2), dict(max_emitters=2)),
             (dict(multi_p_value="1e-2"), dict(multi_p_value=1e-2)),
             (dict(estimate_psf_sigma=True, psf_sigma=2.0), dict(psf_sigma=None)),
             # the residual passes change this stack's result only with small groups (795 -> 796 localizations at
             # max_emitters=2, so a residual_search the widget dropped gives a different count)
             (dict(residual_search=True, max_emitters=2), dict(residual_search=True, max_emitters=2))]
    for widget_kw, core_kw in cases:
        ref = maliang.localize(dense, offset=100, **core_kw)
        # the option changes this stack's result, so equal results below mean it reached the engine
        assert len(ref) != len(base) or not np.allclose(ref["x"], base["x"]), core_kw
        pts = NP.localize_widget(dense, offset=100, **widget_kw)[0][0]
        assert len(pts) == len(ref), widget_kw
        np.testing.assert_allclose(pts[:, 2], ref["x"] - 0.5, atol=1e-5)
        np.testing.assert_allclose(pts[:, 1], ref["y"] - 0.5, atol=1e-5)
    with pytest.raises(ValueError, match="multi_p_value"):
        NP.localize_widget(dense[0], offset=100, multi_p_value="small")
