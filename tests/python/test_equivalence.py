"""Same localizations from Python, the CLI and the engine's files; recall against the simulator's truth; agreement
with Picasso's own MLE on Picasso's test movie."""
import numpy as np
import pandas as pd
import pytest

import maliang
from conftest import DATA, SIM, run_cli
from maliang.testing import match

PX = 100.0


def cli_table(csv):
    """The CLI's CSV read with pandas (independent of ml_read_csv), converted to px and 0-based frames."""
    df = pd.read_csv(csv)
    return df["frame"].to_numpy() - 1, df["x [nm]"].to_numpy() / PX, df["y [nm]"].to_numpy() / PX, df


@pytest.mark.parametrize("extra", [[], ["--filter", "wavelet", "--fixed-sigma", "--roi", "9"]])
def test_python_equals_cli_equals_engine_files(sim, tmp_path, extra):
    stack, tif, _ = sim
    out = tmp_path / "cli.csv"
    run_cli("localize", tif, "-o", out, "--offset", SIM["offset"], "--pixel-size", PX, "--quiet", *extra)
    kw = dict(offset=SIM["offset"], pixel_size=PX)
    if extra:
        kw.update(filter="wavelet", fixed_sigma=True, roi=9)
    py = maliang.localize(stack, **kw)
    frame, x, y, df = cli_table(out)
    assert len(py) == len(df) > 100
    np.testing.assert_array_equal(py["frame"], frame)
    np.testing.assert_allclose(py["x"], x, atol=1e-4, rtol=0)
    np.testing.assert_allclose(py["y"], y, atol=1e-4, rtol=0)
    np.testing.assert_allclose(py["photons"], df["intensity [photon]"], rtol=1e-5)
    np.testing.assert_array_equal(py["iterations"], df["iterations"])
    # the same file through the engine's own reader (ml_read_csv)
    eng = maliang.read_csv(out, PX)
    assert len(eng) == len(py)
    np.testing.assert_array_equal(eng["frame"], py["frame"])
    np.testing.assert_allclose(eng["x"], py["x"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(eng["y"], py["y"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(eng["uncertainty_x"], py["uncertainty_x"], rtol=1e-5)
    # and written by Python's write_csv: byte-identical to the CLI's file (one CSV writer, in the engine)
    mine = tmp_path / "py.csv"
    maliang.write_csv(mine, py, PX)
    assert mine.read_bytes() == out.read_bytes()


def test_streaming_from_tiff_pages_equals_cli(sim, tmp_path):
    import tifffile
    _, tif, _ = sim
    out = tmp_path / "cli.csv"
    run_cli("localize", tif, "-o", out, "--offset", 100, "--quiet")
    with tifffile.TiffFile(tif) as t, maliang.Localizer(offset=100) as loc:
        for page in t.pages:
            loc.push(page.asarray())
        locs = loc.results()
    frame, x, y, df = cli_table(out)
    assert len(locs) == len(df)
    np.testing.assert_allclose(locs["x"], x, atol=1e-4, rtol=0)


def truth_px(truth_csv):
    t = pd.read_csv(truth_csv)
    out = np.zeros(len(t), dtype=[("frame", "i4"), ("x", "f4"), ("y", "f4")])
    out["frame"] = t["frame"] - 1
    out["x"] = t["x [nm]"] / PX
    out["y"] = t["y [nm]"] / PX
    return out


def isolated(truth, w, h, edge=3.5, clearance=4.0):
    keep = (truth["x"] > edge) & (truth["x"] < w - edge) & (truth["y"] > edge) & (truth["y"] < h - edge)
    for i in np.flatnonzero(keep):
        same = truth["frame"] == truth["frame"][i]
        d = np.hypot(truth["x"][same] - truth["x"][i], truth["y"][same] - truth["y"][i])
        if np.sum(d < clearance) > 1:
            keep[i] = False
    return truth[keep]


def test_recall_and_accuracy_against_truth(sparse):
    stack, _, truth_csv = sparse
    truth = isolated(truth_px(truth_csv), 128, 128)
    assert len(truth) > 100
    locs = maliang.localize(stack, offset=100, pixel_size=PX)
    fi, ti = match(locs, truth, radius=1.0)
    recall = len(ti) / len(truth)
    dx, dy = locs["x"][fi] - truth["x"][ti], locs["y"][fi] - truth["y"][ti]
    rms = float(np.sqrt(np.mean(dx ** 2 + dy ** 2) / 2))
    print(f"recall {recall:.3f} of {len(truth)} isolated emitters, rms error {rms:.4f} px/axis, "
          f"bias {dx.mean():+.4f}/{dy.mean():+.4f} px, median CRLB {np.median(locs['uncertainty_x']):.4f} px")
    assert recall >= 0.95
    assert rms < 0.1  # neighbours 4-8 px away still pull the fit a little
    assert abs(dx.mean()) < 0.015 and abs(dy.mean()) < 0.015  # the coordinate convention: no half-pixel shift
    # far from any other emitter the error is what the fit's own uncertainty (sqrt CRLB) says
    lone = isolated(truth_px(truth_csv), 128, 128, edge=4.5, clearance=9.0)
    fi, ti = match(locs, lone, radius=1.0)
    assert len(ti) >= 0.95 * len(lone) > 40
    ex, ey = locs["x"][fi] - lone["x"][ti], locs["y"][fi] - lone["y"][ti]
    rms_lone = float(np.sqrt(np.mean(ex ** 2 + ey ** 2) / 2))
    crlb = float(np.sqrt(np.mean(locs["uncertainty_x"][fi] ** 2 + locs["uncertainty_y"][fi] ** 2) / 2))
    print(f"{len(lone)} lone emitters: rms {rms_lone:.4f} px, sqrt(CRLB) {crlb:.4f} px")
    assert 0.7 < rms_lone / crlb < 1.4


def test_agrees_with_picassos_mle_on_picassos_movie(picasso_movie):
    ref = pd.read_csv(DATA / "picasso_gaussmle_sigma_box7_ng5000_eps1e-3_maxit100.csv")
    locs = maliang.localize(picasso_movie, psf_sigma=0.82, threshold=10, pixel_size=160)
    pic = maliang.io.to_picasso(locs)  # centre-at-integer, as Picasso
    d = []
    for r in ref.itertuples():
        m = pic[pic["frame"] == r.frame]
        assert len(m), f"no localization in frame {r.frame}"
        d.append(np.min(np.hypot(m["x"] - r.x, m["y"] - r.y)))
    d = np.array(d)
    print(f"MaLiang vs Picasso MLE: {len(d)} spots, median {np.median(d):.2e} px, max {d.max():.2e} px")
    assert len(d) == 30 and d.max() < 0.01
