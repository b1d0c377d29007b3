"""3D astigmatism from Python: calibrate_z on a simulated bead stack, localize(..., calibration=...), z fields and
CSV / DataFrame / Picasso z columns, bad input at the boundary."""
import math

import numpy as np
import pytest

import maliang
from conftest import REPO_DATA, run_cli

# The test calibration (unequal A, B terms, in-focus planes 410 nm apart), shared with bench/3d and the Java tests.
CAL = (REPO_DATA / "z_calibration_example.yaml").read_text()


@pytest.fixture(scope="module")
def three_d(tmp_path_factory):
    d = tmp_path_factory.mktemp("3d")
    cal = d / "cal.yaml"
    cal.write_text(CAL)
    run_cli("simulate", d / "s.tif", "--truth", d / "t.csv", "--calibration", cal, "--width", 64, "--height", 64, "--frames", 150,
            "--emitters", 4, "--emitters-per-frame", 2, "--min-separation", 20, "--edge-margin", 9, "--photons", 3000, "--seed", 8)
    run_cli("simulate", d / "beads.tif", "--truth", d / "bt.csv", "--calibration", cal, "--bead-z-step-nm", 10,
            "--bead-z-first-nm", -600, "--frames", 121, "--width", 64, "--height", 64, "--emitters", 4, "--photons", 20000,
            "--background", 20, "--min-separation", 20, "--edge-margin", 10, "--seed", 9)
    return d


def test_calibrate_z_recovers_the_planes_and_writes_yaml_and_plot(three_d):
    out, png = three_d / "fit.yaml", three_d / "fit.png"
    c = maliang.calibrate_z(three_d / "beads.tif", 10, out, z_first_nm=-600, plot=png, offset=100)
    assert c["beads"] == 4
    assert abs(c["x"]["c_nm"] - (-200)) <= 5 and abs(c["y"]["c_nm"] - 210) <= 5
    assert c["z_range_nm"][1] - c["z_range_nm"][0] >= 1000
    back = maliang.read_z_calibration(out)
    assert back["x"] == c["x"] and back["y"] == c["y"]
    assert png.read_bytes()[1:4] == b"PNG"


def test_localize_with_calibration_gives_z_in_nm(three_d):
    import tifffile

    stack = tifffile.imread(three_d / "s.tif")
    locs = maliang.localize(stack, offset=100, calibration=three_d / "cal.yaml")
    assert np.all(locs["flags"] & 2)
    truth = maliang.read_csv(three_d / "t.csv")
    dz, crlb = [], []
    for l in locs:
        t = truth[truth["frame"] == l["frame"]]
        i = np.argmin((t["x"] - l["x"]) ** 2 + (t["y"] - l["y"]) ** 2)
        if (t["x"][i] - l["x"]) ** 2 + (t["y"][i] - l["y"]) ** 2 < 1:
            dz.append(l["z"] - t["z"][i]); crlb.append(l["uncertainty_z"] ** 2)
    assert len(dz) >= 0.98 * len(truth)
    assert math.sqrt(np.mean(np.square(dz)) / np.mean(crlb)) <= 1.15
    # The file path gives the same numbers.
    same = maliang.localize_file(three_d / "s.tif", offset=100, calibration=str(three_d / "cal.yaml"))
    np.testing.assert_array_equal(same, locs)
    # CSV, DataFrame and Picasso keep z.
    maliang.write_csv(three_d / "l.csv", locs)
    header = (three_d / "l.csv").read_text().splitlines()[0]
    assert header.startswith('"id","frame","x [nm]","y [nm]","z [nm]",') and '"uncertainty_z [nm]"' in header
    df = maliang.to_dataframe(locs)
    np.testing.assert_allclose(df["z [nm]"], locs["z"])
    pic = maliang.io.to_picasso(locs)
    np.testing.assert_array_equal(pic["z"], locs["z"])
    # Filtering and merging keep z (merging averages it).
    above = maliang.filter(locs, "z [nm] > 0")
    assert len(above) == int(np.sum(locs["z"] > 0)) and np.all(above["z"] > 0) and np.all(above["flags"] & 2)
    merged = maliang.merge(locs)
    assert len(merged) <= len(locs) and np.all(merged["flags"] & 2) and np.all(np.abs(merged["z"]) <= 600)


def test_2d_results_have_no_z(three_d):
    import tifffile

    locs = maliang.localize(tifffile.imread(three_d / "s.tif")[:3], offset=100)
    assert not np.any(locs["flags"] & 2) and np.all(locs["z"] == 0)
    assert "z [nm]" not in maliang.to_dataframe(locs).columns
    assert "z" not in maliang.io.to_picasso(locs).dtype.names


def test_bad_calibration_input(three_d, tmp_path):
    with pytest.raises(TypeError):
        maliang.localize(np.zeros((2, 32, 32), np.uint16), calibration=3)
    bad = tmp_path / "bad.yaml"
    bad.write_text(CAL.replace("  d_nm: 430\n", ""))
    with pytest.raises(maliang.MaLiangValueError, match=r"bad\.yaml: field y\.d_nm: missing"):
        maliang.localize(np.zeros((2, 32, 32), np.uint16), calibration=bad)
    with pytest.raises(maliang.MaLiangValueError, match="pixel_size_nm"):
        maliang.localize(np.zeros((2, 32, 32), np.uint16), calibration=three_d / "cal.yaml", pixel_size=160)
    with pytest.raises(ValueError, match="z_step_nm"):
        maliang.calibrate_z(three_d / "beads.tif", 0, tmp_path / "c.yaml")
    with pytest.raises(maliang.MaLiangValueError, match="no bead found"):
        maliang.calibrate_z(three_d / "s.tif", 10, tmp_path / "c.yaml", threshold=1e6)
    assert not (tmp_path / "c.yaml").exists()
