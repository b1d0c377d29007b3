"""Issue 17's options through the C ABI and Python: multi_emitter, max_emitters, multi_p_value, camera_noise, drop_edge,
min_snr, noise_clip, psf_sigma=None (estimate_psf_sigma), residual_search, and the groups-by-size counts. Each keyword must arrive in the
engine (read back with ml_get_settings) and give exactly what the CLI gives with the matching flag."""
import ctypes
import re

import numpy as np
import pandas as pd
import pytest

import maliang
from conftest import run_cli
from maliang import _native as N

# field, offset in ml_settings, engine default
NEW_FIELDS = [
    ("multi_emitter", 96, 1),
    ("max_emitters", 100, 8),
    ("multi_p_value", 104, 1e-6),
    ("camera_noise", 112, 1),
    ("drop_edge", 116, 0),
    ("min_snr", 120, 5.0),
    ("noise_clip", 128, 1),
    ("estimate_psf_sigma", 132, 0),
    ("residual_search", 136, 0),  # appended later; 4 bytes of tail padding follow (the struct is 8-aligned)
]


def engine_settings(loc: maliang.Localizer) -> N.MlSettings:
    s = N.MlSettings()
    N.check(N.lib().ml_get_settings(loc._h(), ctypes.byref(s)), "ml_get_settings")
    return s


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """A crowded stack: 64x64 px, 60 emitters per frame (about 1.5 per um^2 at 100 nm px), 10 frames."""
    import tifffile

    d = tmp_path_factory.mktemp("dense")
    tif = d / "dense.tif"
    run_cli("simulate", tif, "--truth", d / "truth.csv", "--width", 64, "--height", 64, "--frames", 10,
            "--emitters-per-frame", 60, "--photons", 2000, "--background", 10, "--offset", 100, "--seed", 5)
    return tifffile.imread(tif), tif


# ------------------------------------------------------------------------------------------------------------ layout

def test_new_fields_are_appended_with_natural_alignment_and_engine_defaults():
    assert ctypes.sizeof(N.MlSettings) == 144
    for name, offset, _ in NEW_FIELDS:
        assert getattr(N.MlSettings, name).offset == offset, name
    assert N.MlSettings.reserved.offset == 92  # the 96-byte part is unchanged
    s = N.MlSettings()
    assert N.lib().ml_default_settings(ctypes.byref(s)) == 0
    assert s.struct_size == 144
    for name, _, default in NEW_FIELDS:
        assert getattr(s, name) == default, name
    # Python's defaults are the engine's
    for key, field in [("multi_emitter", "multi_emitter"), ("max_emitters", "max_emitters"),
                       ("multi_p_value", "multi_p_value"), ("camera_noise", "camera_noise"), ("drop_edge", "drop_edge"),
                       ("min_snr", "min_snr"), ("noise_clip", "noise_clip"), ("residual_search", "residual_search")]:
        assert maliang.DEFAULTS[key] == getattr(s, field), key


# ------------------------------------------------------------------------------------------- values reach the engine

def test_every_new_keyword_reaches_the_engine():
    kw = dict(multi_emitter=False, max_emitters=3, multi_p_value=2.5e-7, camera_noise=False, drop_edge=True,
              min_snr=0.0, noise_clip=False, psf_sigma=None, residual_search=True)
    with maliang.Localizer(**kw) as loc:
        s = engine_settings(loc)
    assert (s.multi_emitter, s.max_emitters, s.multi_p_value, s.camera_noise, s.drop_edge, s.min_snr, s.noise_clip,
            s.estimate_psf_sigma, s.residual_search) == (0, 3, 2.5e-7, 0, 1, 0.0, 0, 1, 1)
    assert s.psf_sigma_px == 1.3  # the fallback when estimating
    # the defaults, and a number for psf_sigma keeps today's meaning (no estimate)
    with maliang.Localizer(psf_sigma=1.7) as loc:
        s = engine_settings(loc)
    assert (s.multi_emitter, s.max_emitters, s.multi_p_value, s.camera_noise, s.drop_edge, s.min_snr, s.noise_clip,
            s.estimate_psf_sigma, s.residual_search, s.psf_sigma_px) == (1, 8, 1e-6, 1, 0, 5.0, 1, 0, 0, 1.7)


def test_localize_and_localize_file_take_the_keywords(dense, tmp_path):
    stack, tif = dense
    a = maliang.localize(stack, offset=100, multi_emitter=False)
    b = maliang.localize_file(tif, offset=100, multi_emitter=False)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert np.all(a["fitted_together"] == 1)
    assert np.any(maliang.localize(stack, offset=100)["fitted_together"] > 1)


def _cli(tif, out, flags):
    r = run_cli("localize", tif, "-o", out, "--offset", 100, *flags)
    m = re.search(r"(\d+) localizations \((\d+) candidates; dropped: (\d+) at the frame edge, (\d+) overlapping, "
                  r"(\d+) failed fits, \d+ below the SNR, (\d+) left the ROI\)(?:, groups of [\d/]+ emitters: ([\d/]+))?",
                  r.stderr + r.stdout)
    assert m, r.stderr
    groups = [0] * 13
    if m.group(7):
        for k, v in enumerate(m.group(7).split("/"), start=1):
            groups[k] = int(v)
    counts = dict(localizations=int(m.group(1)), candidates=int(m.group(2)), dropped_edge=int(m.group(3)),
                  dropped_overlap=int(m.group(4)), dropped_fit_failed=int(m.group(5)), dropped_left_roi=int(m.group(6)))
    return pd.read_csv(out), counts, groups


def _run(stack, **kw):
    with maliang.Localizer(offset=100, **kw) as loc:
        loc.push(stack)
        return loc.results(), loc.summary()


def _signature(locs, summary):
    return (len(locs), summary["candidates"], summary["dropped_edge"], tuple(summary["groups_by_size"]),
            locs["x"].tobytes())


# flags, keywords, the keywords they are compared against (each case must change the result on the dense stack)
CASES = [
    (["--single-emitter"], dict(multi_emitter=False), {}),
    (["--max-emitters", "2"], dict(max_emitters=2), {}),
    (["--multi-p-value", "1e-3"], dict(multi_p_value=1e-3), {}),
    (["--spread-threshold"], dict(camera_noise=False), {}),
    (["--drop-edge"], dict(drop_edge=True), {}),
    (["--min-snr", "0"], dict(min_snr=0), {}),
    # the clipping step only matters for the spread threshold
    (["--spread-threshold", "--no-noise-clip"], dict(camera_noise=False, noise_clip=False), dict(camera_noise=False)),
    # on this stack the residual passes change nothing with the defaults (the groups' own residual search finds what
    # they would); with groups of at most 2 and every fit kept they add 4 localizations to 810
    (["--max-emitters", "2", "--min-snr", "0", "--residual-search"], dict(max_emitters=2, min_snr=0, residual_search=True),
     dict(max_emitters=2, min_snr=0)),
]


@pytest.mark.parametrize("flags, kw, base", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_keywords_equal_the_cli_flags(dense, tmp_path, flags, kw, base):
    stack, tif = dense
    locs, summary = _run(stack, **kw)
    df, counts, groups = _cli(tif, tmp_path / "cli.csv", flags)
    assert len(locs) == len(df) > 300
    np.testing.assert_array_equal(locs["frame"], df["frame"].to_numpy() - 1)
    np.testing.assert_allclose(locs["x"], df["x [nm]"].to_numpy() / 100, atol=1e-4, rtol=0)
    np.testing.assert_allclose(locs["y"], df["y [nm]"].to_numpy() / 100, atol=1e-4, rtol=0)
    np.testing.assert_allclose(locs["photons"], df["intensity [photon]"], rtol=1e-5)
    np.testing.assert_array_equal(locs["fitted_together"], df["fitted_together"])
    for k, v in counts.items():
        assert summary[k] == v, k
    assert summary["groups_by_size"] == groups
    # and the option did something here, so the comparison above could tell a dropped keyword
    assert _signature(locs, summary) != _signature(*_run(stack, **base))


def test_groups_by_size_match_fitted_together(dense):
    stack, _ = dense
    locs, summary = _run(stack)
    g = summary["groups_by_size"]
    assert len(g) == 13 and g[0] == 0 and sum(g[2:]) > 10
    n = np.bincount(locs["fitted_together"], minlength=13)
    for k in range(2, 13):  # every member of a joint fit is written with fitted_together = k
        assert g[k] == n[k] // k, k
    _, single = _run(stack, multi_emitter=False)
    assert single["groups_by_size"] == [0] * 13


def test_groups_by_size_size_query_and_bad_arguments():
    lib = N.lib()
    with maliang.Localizer() as loc:
        n = ctypes.c_int32(-1)
        assert lib.ml_get_groups_by_size(loc._h(), None, 0, ctypes.byref(n)) == 0 and n.value == 13
        two = (ctypes.c_int64 * 2)(7, 7)
        assert lib.ml_get_groups_by_size(loc._h(), two, 2, ctypes.byref(n)) == 0 and list(two) == [0, 0]
        assert lib.ml_get_groups_by_size(loc._h(), None, 3, ctypes.byref(n)) == N.ML_ERR_ARGUMENT
        assert "out is null" in N.last_error()
        assert lib.ml_get_groups_by_size(loc._h(), two, -1, ctypes.byref(n)) == N.ML_ERR_ARGUMENT
        assert "capacity -1" in N.last_error()
        assert lib.ml_get_groups_by_size(loc._h(), two, 2, None) == N.ML_ERR_ARGUMENT
        assert lib.ml_get_settings(loc._h(), None) == N.ML_ERR_ARGUMENT
    assert lib.ml_get_groups_by_size(None, None, 0, ctypes.byref(n)) == N.ML_ERR_ARGUMENT
    assert lib.ml_get_settings(None, ctypes.byref(N.MlSettings())) == N.ML_ERR_ARGUMENT


# ------------------------------------------------------------------------------------------------------- bad values

@pytest.mark.parametrize("kw, exc, msg", [
    (dict(max_emitters=0), maliang.MaLiangValueError, "max_emitters must be 1 to 12, got 0"),
    (dict(max_emitters=13), maliang.MaLiangValueError, "max_emitters must be 1 to 12, got 13"),
    (dict(max_emitters=2.5), TypeError, "max_emitters must be an integer"),
    (dict(multi_p_value=0), maliang.MaLiangValueError, "multi_p_value must be > 0"),
    (dict(multi_p_value=1), maliang.MaLiangValueError, "multi_p_value must be < 1"),
    (dict(multi_p_value=float("nan")), maliang.MaLiangValueError, "multi_p_value is NaN"),
    (dict(min_snr=-1), maliang.MaLiangValueError, "min_snr must be >= 0"),
    (dict(min_snr=float("inf")), maliang.MaLiangValueError, "min_snr must be finite"),
    (dict(multi_emitter=2), maliang.MaLiangValueError, "multi_emitter must be True or False, got 2"),
    (dict(camera_noise="False"), TypeError, "camera_noise must be True or False"),
    (dict(drop_edge=None), TypeError, "drop_edge must be True or False"),
    (dict(noise_clip=0.5), TypeError, "noise_clip must be True or False"),
    (dict(residual_search="True"), TypeError, "residual_search must be True or False"),
    (dict(residual_search=2), maliang.MaLiangValueError, "residual_search must be True or False, got 2"),
    (dict(psf_sigma="auto"), TypeError, "psf_sigma must be a number"),
])
def test_bad_values_name_the_parameter(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        maliang.Localizer(**kw)
    with pytest.raises(exc, match=msg):
        maliang.localize(np.zeros((16, 16), np.uint16), **kw)


@pytest.mark.parametrize("field, value, msg", [
    ("max_emitters", 13, "parameter max_emitters: must be 1 to 12, got 13"),
    ("max_emitters", 0, "parameter max_emitters: must be 1 to 12, got 0"),
    ("multi_p_value", 1.0, "parameter multi_p_value: must be a p-value in (0, 1), got 1"),
    ("multi_p_value", float("nan"), "parameter multi_p_value"),
    ("min_snr", -0.5, "parameter min_snr: must be a finite number >= 0, got -0.5"),
    ("min_snr", float("inf"), "parameter min_snr"),
    ("multi_emitter", 2, "parameter multi_emitter: must be 0 or 1, got 2"),
    ("camera_noise", -1, "parameter camera_noise: must be 0 or 1, got -1"),
    ("drop_edge", 7, "parameter drop_edge: must be 0 or 1, got 7"),
    ("noise_clip", 2, "parameter noise_clip: must be 0 or 1, got 2"),
    ("estimate_psf_sigma", 3, "parameter estimate_psf_sigma: must be 0 or 1, got 3"),
    ("residual_search", 2, "parameter residual_search: must be 0 or 1, got 2"),
])
def test_the_c_abi_checks_the_new_fields(field, value, msg):
    s = N.MlSettings()
    N.lib().ml_default_settings(ctypes.byref(s))
    setattr(s, field, value)
    h = ctypes.c_void_p()
    assert N.lib().ml_create(ctypes.byref(s), ctypes.byref(h)) == N.ML_ERR_ARGUMENT
    assert h.value is None
    assert N.last_error().startswith(msg)


def test_save_picasso_records_an_estimated_psf_sigma(tmp_path):
    import yaml

    locs = np.zeros(2, maliang.LOCALIZATION_DTYPE)
    locs["x"], locs["y"], locs["photons"] = [3, 5], [4, 6], 1000
    _, y = maliang.save_picasso(tmp_path / "a.hdf5", locs, settings=dict(psf_sigma=None))
    assert list(yaml.safe_load_all(y.read_text()))[1]["MaLiang.PSF sigma [px]"] == "estimated"
    _, y = maliang.save_picasso(tmp_path / "b.hdf5", locs, settings=dict(psf_sigma=1.1))
    assert list(yaml.safe_load_all(y.read_text()))[1]["MaLiang.PSF sigma [px]"] == 1.1
