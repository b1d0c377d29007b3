"""maliang.post (drift_correct, merge, filter, density_filter, frc, motion) against simulated ground truth.

The constructions follow the engine's own tests (tests/Engine.Tests/Post/*), built here with numpy: known drift added to
filaments or a bead, blinking molecules, filaments shifted between two frame windows, emitters with a known precision."""
import ctypes
import math
import shutil
import subprocess

import numpy as np
import pytest

import maliang
from maliang import post
from conftest import ROOT

PX = 100.0  # nm per camera px in all constructions


def locs_of(frame, x, y, photons=1000.0, unc=0.1):
    """Localizations as the engine's Sim.Loc builds them (background 10, sigma 1.3 px, converged)."""
    frame = np.asarray(frame)
    a = np.zeros(len(frame), dtype=maliang.LOCALIZATION_DTYPE)
    a["frame"], a["x"], a["y"] = frame, x, y
    a["photons"], a["background"], a["sigma"] = photons, 10, 1.3
    a["uncertainty_x"] = a["uncertainty_y"] = unc
    a["detections"], a["flags"] = 1, 1
    return a


def true_drift(f, frames):
    """The engine tests' smooth drift (px): 8 px in x and 6 px in y over the acquisition, plus a sine / cosine bump."""
    t = np.asarray(f) / (frames - 1)
    return 8.0 * t + 0.5 * np.sin(2 * np.pi * t), 6.0 * t + 0.3 * (1 - np.cos(2 * np.pi * t))


def residual(dx, dy, tx, ty):
    """RMS of (estimate - truth) after removing the constant offset, and that offset (px)."""
    rx, ry = dx - tx, dy - ty
    mx, my = rx.mean(), ry.mean()
    return math.sqrt(np.mean((rx - mx) ** 2 + (ry - my) ** 2)), math.hypot(mx, my)


# ---------------------------------------------------------------------------------------------------------- layouts

def test_struct_sizes_match_the_bindings():
    lib = post._lib()
    a, b, c = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_int32()
    assert lib.ml_struct_sizes(ctypes.byref(a), ctypes.byref(b), ctypes.byref(c)) == 0
    assert (a.value, b.value, c.value) == (144, 76, 168)  # what the Java binding hard-codes
    assert lib.ml_post_struct_sizes(ctypes.byref(a), ctypes.byref(b), ctypes.byref(c)) == 0
    assert (a.value, b.value, c.value) == (64, 40, 120)
    assert lib.ml_struct_sizes(None, ctypes.byref(b), ctypes.byref(c)) == 1
    assert "must not be null" in maliang._native.last_error()


def test_header_compiles_and_agrees_with_the_library(tmp_path):
    """maliang.h as a C99 client sees it: the post-processing declarations compile (no clash with the ml_filter enum), the
    struct sizes agree with the library's, and a direct C call of ml_merge / ml_filter_expression works."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler (cc/gcc) is needed to check maliang.h"
    src = tmp_path / "check.c"
    src.write_text(r'''
#include "maliang.h"
#include <stdio.h>
int main(void) {
    int32_t d, f, m, s, l, u;
    if (ml_post_struct_sizes(&d, &f, &m) || ml_struct_sizes(&s, &l, &u)) return 2;
    if (d != (int32_t)sizeof(ml_drift_options) || f != (int32_t)sizeof(ml_frc_options) || m != (int32_t)sizeof(ml_motion_result)) return 3;
    if (s != (int32_t)sizeof(ml_settings) || l != (int32_t)sizeof(ml_localization) || u != (int32_t)sizeof(ml_summary)) return 4;
    ml_localization in[3] = {{0}};
    in[0].frame = 0; in[0].x = 10; in[0].y = 10; in[0].photons = 100;
    in[1].frame = 1; in[1].x = 10.2f; in[1].y = 10; in[1].photons = 300;
    in[2].frame = 1; in[2].x = 30; in[2].y = 30; in[2].photons = 100;
    ml_localization out[3]; int64_t count = -1, kept = -1; uint8_t keep[3];
    if (ml_merge(in, 3, 0.5, 1, out, 3, &count) || count != 2) return 5;
    if (ml_filter_expression(in, 3, "x [nm] > 1500", 100.0, keep, &kept) || kept != 1 || keep[2] != 1) return 6;
    if (ml_filter_expression(in, 3, "x [nm] >", 100.0, keep, &kept) != ML_ERR_INPUT) return 7;
    printf("ok %d %d %d %.3f\n", d, f, m, out[0].x);
    return 0;
}
''')
    exe = tmp_path / "check"
    lib = maliang.library_path()
    r = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", f"-I{ROOT / 'src' / 'Native'}", str(src),
                        str(lib), f"-Wl,-rpath,{lib.parent}", "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.strip() == "ok 64 40 120 10.150"  # (100 * 10 + 300 * 10.2) / 400


# -------------------------------------------------------------------------------------------------------------- drift

def test_rcc_drift_on_filaments_leaves_under_5_nm():
    # 8 filaments in a 32 x 32 px field, 50 000 localizations with 10 nm precision over 5000 frames, no fiducial
    rng = np.random.default_rng(3)
    frames, n = 5000, 50_000
    cx, cy = 32 * (0.2 + 0.6 * rng.random(8)), 32 * (0.2 + 0.6 * rng.random(8))
    ang, length = np.pi * rng.random(8), 32 * (0.4 + 0.4 * rng.random(8))
    fil = rng.integers(0, 8, n)
    t = rng.random(n)
    x = cx[fil] + (t - 0.5) * length[fil] * np.cos(ang[fil]) + 0.1 * rng.standard_normal(n)
    y = cy[fil] + (t - 0.5) * length[fil] * np.sin(ang[fil]) + 0.1 * rng.standard_normal(n)
    f = np.arange(n) * frames // n
    tx, ty = true_drift(f, frames)
    locs = locs_of(f, x + tx, y + ty)

    corrected, drift = maliang.drift_correct(locs, method="rcc", segments=20, magnification=4, max_shift=12)
    assert drift.dtype == maliang.DRIFT_DTYPE and len(drift) == frames
    assert np.array_equal(drift["frame"], np.arange(frames))
    rms, _ = residual(drift["dx_px"], drift["dy_px"], *true_drift(np.arange(frames), frames))
    print(f"rcc residual rms {rms * PX:.2f} nm")
    assert rms * PX < 5.0
    # the corrected localizations are the undrifted ones up to one constant shift
    ex, ey = corrected["x"] - x, corrected["y"] - y
    assert np.sqrt(np.var(ex) + np.var(ey)) * PX < 5.0
    assert np.array_equal(corrected["frame"], locs["frame"]) and np.array_equal(corrected["photons"], locs["photons"])
    # the input is untouched
    assert np.allclose(locs["x"], (x + tx).astype(np.float32))


def fiducial_data(seed=1, frames=5000):
    rng = np.random.default_rng(seed)
    fb = np.flatnonzero(rng.random(frames) >= 0.05)  # a bright bead (5 nm precision) in 95% of the frames
    bx, by = true_drift(fb, frames)
    bead = locs_of(fb, 20.3 + bx + 0.05 * rng.standard_normal(len(fb)), 21.7 + by + 0.05 * rng.standard_normal(len(fb)),
                   8000, 0.05)
    parts = [bead]
    for _ in range(400):  # blinking molecules, on for 1..5 frames
        x, y = 40 * rng.random(2)
        start, length = rng.integers(0, frames - 10), 1 + rng.integers(0, 5)
        ff = np.arange(start, start + length)
        dx, dy = true_drift(ff, frames)
        parts.append(locs_of(ff, x + dx + 0.1 * rng.standard_normal(length), y + dy + 0.1 * rng.standard_normal(length)))
    locs = np.concatenate(parts)
    return locs[np.argsort(locs["frame"], kind="stable")]


@pytest.mark.parametrize("region", [None, (18, 19, 32, 30)])
def test_fiducial_drift_leaves_under_2_nm(region):
    frames = 5000
    locs = fiducial_data()
    corrected, drift = maliang.drift_correct(locs, method="fiducial", region=region, frames=frames)
    assert len(drift) == frames
    tx, ty = true_drift(np.arange(frames), frames)
    tx, ty = tx - tx[:10].mean(), ty - ty[:10].mean()  # fiducial drift is zero on average over the first 10 frames
    rms, offset = residual(drift["dx_px"], drift["dy_px"], tx, ty)
    print(f"fiducial residual rms {rms * PX:.2f} nm, offset {offset * PX:.2f} nm")
    assert rms * PX < 2.0
    assert offset * PX < 4.0
    bead = corrected[corrected["photons"] == 8000]
    assert abs(bead["x"][-1] - 20.3) < 0.2 and abs(bead["y"][-1] - 21.7) < 0.2
    assert abs(np.median(bead["x"]) - 20.3) < 0.05 and abs(np.median(bead["y"]) - 21.7) < 0.05


def test_fiducial_without_a_bead_is_an_error():
    rng = np.random.default_rng(2)
    locs = locs_of(np.arange(1000), 40 * rng.random(1000), 40 * rng.random(1000))
    with pytest.raises(maliang.MaLiangValueError, match="no fiducial"):
        maliang.drift_correct(locs, method="fiducial")
    with pytest.raises(maliang.MaLiangValueError, match="no localizations in region"):
        maliang.drift_correct(locs, method="fiducial", region=(100, 100, 110, 110))


# -------------------------------------------------------------------------------------------------------------- merge

def test_merging_blinking_recovers_the_true_count():
    # 3000 molecules in a 100 x 100 px field, each on once for a geometric number of frames (mean 3), single missed frames
    # inside the on-time (10%), 10 nm localization noise
    rng = np.random.default_rng(4)
    parts, molecules = [], 0
    for _ in range(3000):
        x, y = 100 * rng.random(2)
        start, length = int(rng.integers(0, 2000)), 1
        while rng.random() < 2 / 3:
            length += 1
        frames, missed_prev = [], True
        for f in range(start, start + length):
            miss = (not missed_prev) and f < start + length - 1 and rng.random() < 0.1
            missed_prev = miss
            if not miss:
                frames.append(f)
        k = len(frames)
        parts.append(locs_of(frames, x + 0.1 * rng.standard_normal(k), y + 0.1 * rng.standard_normal(k),
                             500 + 1000 * rng.random(k)))
        molecules += 1
    locs = np.concatenate(parts)
    locs = locs[np.argsort(locs["frame"], kind="stable")]
    merged = maliang.merge(locs, radius=0.5, gap=1)
    print(f"{len(locs)} localizations, {molecules} molecules, {len(merged)} merged")
    assert len(locs) > 2 * molecules
    assert abs(len(merged) - molecules) <= 0.02 * molecules
    assert merged["detections"].sum() == len(locs)
    assert merged["photons"].astype(np.float64).sum() == pytest.approx(locs["photons"].astype(np.float64).sum(), rel=1e-6)
    assert (np.diff(merged["frame"]) >= 0).all()
    assert np.array_equal(maliang.merge(locs, radius=0.5, gap=1), merged)  # deterministic


def test_merged_values_are_weighted_and_combined():
    locs = np.concatenate([
        locs_of([3], 10.0, 20.0, 100, 0.2),
        locs_of([4], 10.3, 20.3, 300, 0.1),
        locs_of([6], 10.1, 20.1, 100, 0.2),   # gap of one frame: same molecule
        locs_of([9], 10.1, 20.1, 100, 0.2),   # gap of two frames: a new molecule
        locs_of([4], 30.0, 30.0, 100, 0.2),   # elsewhere
    ])
    m = maliang.merge(locs, radius=0.5, gap=1)
    assert len(m) == 3
    assert m["frame"].tolist() == [3, 4, 9]
    assert m["detections"].tolist() == [3, 1, 1]
    assert m["photons"][0] == 500
    assert m["x"][0] == pytest.approx((100 * 10.0 + 300 * 10.3 + 100 * 10.1) / 500, abs=1e-5)
    assert m["uncertainty_x"][0] == pytest.approx(1 / math.sqrt(25 + 100 + 25), abs=1e-6)
    assert m["x"][1] == 30
    assert len(maliang.merge(locs, radius=0.5, gap=2)) == 2  # now frame 9 joins too
    assert len(maliang.merge(locs[:0])) == 0


# ------------------------------------------------------------------------------------------------------------- filter

def table():
    a = locs_of([0, 0, 1, 2, 2], [1, 2, 3, 4, 5], 1.0, [400, 1000, 200, 500, 301])
    a["uncertainty_x"] = a["uncertainty_y"] = [0.125, 0.25, 0.1875, np.nan, 0.0625]  # exact in float32: 12.5, 25, 18.75, NaN, 6.25 nm
    return a


@pytest.mark.parametrize("expr, expected", [
    ("uncertainty [nm] < 20 && intensity [photon] > 300", [1, 0, 0, 0, 1]),
    ("x [nm] >= 300", [0, 0, 1, 1, 1]),
    ("\"x [nm]\" / 100 == id", [1, 1, 1, 1, 1]),
    ("!(frame == 1) || intensity [photon] >= 1000", [0, 1, 1, 1, 1]),
    ("frame = 3 && -x [nm] < -450", [0, 0, 0, 0, 1]),
    ("uncertainty [nm] != 12.5", [0, 1, 1, 0, 1]),    # NaN compares false
    ("X [NM] <= 2e2 || (frame > 2 && uncertainty [nm] > 1)", [1, 1, 0, 0, 1]),
    ("detections == 1 && sigma [nm] > 129.99 && sigma [nm] < 130.01", [1, 1, 1, 1, 1]),
])
def test_filter_masks_are_exact(expr, expected):
    a = table()
    assert maliang.filter_mask(a, expr, pixel_size=PX).tolist() == [bool(v) for v in expected]
    kept = maliang.filter(a, expr, pixel_size=PX)
    assert kept.tobytes() == a[np.array(expected, bool)].tobytes()  # the same rows, bit for bit (NaN included)


def test_filter_uses_the_pixel_size():
    a = table()
    assert maliang.filter_mask(a, "x [nm] > 500", pixel_size=160).tolist() == [False, False, False, True, True]
    assert len(maliang.filter(a[:0], "x [nm] > 0")) == 0


@pytest.mark.parametrize("expr, msg", [
    ("photons [photon] > 3", "unknown column 'photons \\[photon\\]'.*\"intensity \\[photon\\]\""),
    ("x [nm] > ", "position"),
    ("(x [nm] > 3", "position"),
    ("x [nm] + 1", "is a number, not a condition"),
    ("backend > 1", "unknown column 'backend'"),
])
def test_filter_errors_name_the_problem(expr, msg):
    with pytest.raises(maliang.MaLiangValueError, match=msg):
        maliang.filter(table(), expr)


def test_density_filter_is_exact():
    # a cluster of 5 within 0.1 px, a pair 0.3 px apart, 3 isolated points
    a = locs_of(np.arange(10),
                [10, 10.05, 10.1, 10.0, 10.05, 20, 20.3, 30, 40, 50],
                [10, 10.05, 10.0, 10.1, 10.1, 20, 20.0, 30, 40, 50])
    assert maliang.density_mask(a, radius=0.2, min_neighbours=3).tolist() == [True] * 5 + [False] * 5
    assert maliang.density_mask(a, radius=0.5, min_neighbours=1).tolist() == [True] * 7 + [False] * 3
    assert maliang.density_mask(a, radius=0.5, min_neighbours=0).all()
    kept = maliang.density_filter(a, radius=0.2, min_neighbours=4)
    assert np.array_equal(kept, a[:5])
    assert len(maliang.density_filter(a, radius=0.2, min_neighbours=5)) == 0


# ---------------------------------------------------------------------------------------------------------------- frc

def sinc2(x):
    return np.sinc(x) ** 2  # numpy's sinc is sin(pi x) / (pi x)


def test_frc_matches_theory_within_15_percent():
    # 1500 emitters at random positions in a 5 x 5 um field, each localized 20 times at random frames 0..1999 with 20 nm
    # precision. Halves: odd/even blocks of 20 frames (known here). Theory (tests/Engine.Tests/Post/FrcMotionTests.cs):
    # FRC(q) = S12 T / sqrt((A1 + B1 T)(A2 + B2 T)), T = H(q)^2 S(q), H the localization-noise transfer, S the ring
    # average of the histogram bin's sinc^2 transfer; S12 = sum n1 n2, Ah = sum n_h, Bh = sum n_h (n_h - 1).
    sigma_nm, super_px = 20.0, 5.0
    rng = np.random.default_rng(5)
    emitters, per = 1500, 20
    ex, ey = 50 * rng.random(emitters), 50 * rng.random(emitters)
    j = np.repeat(np.arange(emitters), per)
    frames = rng.integers(0, 2000, emitters * per)
    locs = locs_of(frames, ex[j] + sigma_nm / PX * rng.standard_normal(len(j)),
                   ey[j] + sigma_nm / PX * rng.standard_normal(len(j)))
    half = (frames // 20) % 2
    n1 = np.bincount(j[half == 0], minlength=emitters).astype(float)
    n2 = np.bincount(j[half == 1], minlength=emitters).astype(float)
    s12, a1, a2, b1, b2 = (n1 * n2).sum(), n1.sum(), n2.sum(), (n1 * (n1 - 1)).sum(), (n2 * (n2 - 1)).sum()
    th = (np.arange(90) + 0.5) * np.pi / 180

    def theory(q):
        h = math.exp(-2 * math.pi ** 2 * sigma_nm ** 2 * q ** 2)
        s = np.mean(sinc2(q * super_px * np.cos(th)) * sinc2(q * super_px * np.sin(th)))
        t = h * h * s
        return s12 * t / math.sqrt((a1 + b1 * t) * (a2 + b2 * t))

    lo, hi = 1e-4, 0.1
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if theory(mid) > 1 / 7 else (lo, mid)
    expected = 1 / lo

    res, curve = maliang.frc(locs, pixel_size=PX, super_pixel=super_px, split="odd_even", block_frames=20)
    print(f"FRC resolution {res:.1f} nm, theory {expected:.1f} nm")
    assert res == pytest.approx(expected, rel=0.15)
    assert 40 < expected < 90
    assert curve.dtype == maliang.FRC_DTYPE
    assert len(curve) == 512  # 5000 nm / 5 nm -> a 1024-wide FFT -> 512 rings
    assert curve["frc"][1] > 0.5
    assert curve["frequency_per_nm"][1] == pytest.approx(1 / (1024 * super_px))
    # the random split gives the same answer within the tolerance
    res2, _ = maliang.frc(locs, pixel_size=PX, super_pixel=super_px, block_frames=20, seed=7)
    assert res2 == pytest.approx(expected, rel=0.15)


def test_frc_of_uncorrelated_halves_has_no_resolution():
    rng = np.random.default_rng(6)
    locs = locs_of(np.arange(20000) % 2000, 50 * rng.random(20000), 50 * rng.random(20000))
    res, _ = maliang.frc(locs, super_pixel=10, split="odd_even", block_frames=10)
    assert math.isnan(res) or res > 500


# ------------------------------------------------------------------------------------------------------------- motion

def filament(shift_nm, seed):
    """A filament from (10, 10) to (30, 20) px, 10 nm precision, one localization per frame over 3000 frames; frames
    2000..2999 displaced by shift_nm along the normal."""
    rng = np.random.default_rng(seed)
    dx, dy = 20.0, 10.0
    ln = math.hypot(dx, dy)
    nx, ny = -dy / ln, dx / ln
    f = np.arange(3000)
    t = rng.random(3000)
    s = np.where(f >= 2000, shift_nm / PX, 0.0)
    return locs_of(f, 10 + t * dx + s * nx + 0.1 * rng.standard_normal(3000),
                   10 + t * dy + s * ny + 0.1 * rng.standard_normal(3000))


REGION = (5, 5, 35, 25)
WINDOWS = ((0, 999), (2000, 2999))


def test_a_50_nm_shift_is_significant():
    m = maliang.motion(filament(50, 7), region=REGION, windows=WINDOWS, pixel_size=PX)
    print(f"shift {m['displacement_nm']:.2f} nm, Z = {m['z']:.1f}")
    assert m["z"] > 5
    assert m["displacement_nm"] == pytest.approx(50, abs=3)
    assert m["n1"] == 1000 and m["n2"] == 1000 and m["in_region"] == 3000
    assert m["stderr1_nm"] == pytest.approx(10 / math.sqrt(1000), abs=0.1)
    assert abs(m["direction_y"] / m["direction_x"] - 0.5) < 0.01  # the line's slope, 10 / 20
    assert m["normal_y"] > 0


def test_no_shift_is_not_significant():
    m = maliang.motion(filament(0, 8), region=REGION, windows=WINDOWS, pixel_size=PX)
    print(f"shift {m['displacement_nm']:.2f} nm, Z = {m['z']:.2f}")
    assert abs(m["z"]) < 3


def test_motion_errors_name_the_problem():
    locs = filament(0, 10)
    with pytest.raises(maliang.MaLiangValueError, match="no localizations in region"):
        maliang.motion(locs, region=(100, 100, 110, 110), windows=WINDOWS)
    with pytest.raises(maliang.MaLiangValueError, match=r"window 1 \(frames 1-1\) has 1 localization"):
        maliang.motion(locs, region=REGION, windows=((0, 0), (2000, 2999)))
    with pytest.raises(maliang.MaLiangValueError, match="window 2"):
        maliang.motion(locs, region=REGION, windows=((0, 999), (5000, 5999)))


# ------------------------------------------------------------------------------------------------------- bad input

LOCS = locs_of(np.arange(10), np.arange(10.0), np.arange(10.0))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: maliang.drift_correct(LOCS, method="beads"), ValueError, "method 'beads' is not one of rcc, fiducial"),
    (lambda: maliang.drift_correct(LOCS[:0]), ValueError, "needs localizations, got an empty array"),
    (lambda: maliang.drift_correct(LOCS, segments=1), ValueError, "segments must be 2 to 200"),
    (lambda: maliang.drift_correct(LOCS, segments=2.5), TypeError, "segments must be an integer"),
    (lambda: maliang.drift_correct(LOCS, magnification=float("nan")), ValueError, "magnification must be a finite"),
    (lambda: maliang.drift_correct(LOCS, magnification=60), ValueError, "magnification must be <= 50"),
    (lambda: maliang.drift_correct(LOCS, smooth_frames=2), ValueError, "smooth_frames must be 3"),
    (lambda: maliang.drift_correct(LOCS, method="fiducial", region=(5, 5, 1, 1)), ValueError, "x0 < x1"),
    (lambda: maliang.drift_correct(LOCS, region=(1, 2, 3)), ValueError, "got 3 values"),
    (lambda: maliang.drift_correct(locs_of([-1, 0], [1, 2], [1, 2])), ValueError, "frame -1"),
    (lambda: maliang.merge(LOCS, radius=0), ValueError, "radius must be > 0"),
    (lambda: maliang.merge(LOCS, radius=float("inf")), ValueError, "radius must be a finite"),
    (lambda: maliang.merge(LOCS, gap=-1), ValueError, "gap must be 0 to"),
    (lambda: maliang.merge(LOCS, radius="1"), TypeError, "radius must be a number"),
    (lambda: maliang.merge(np.zeros(3, np.float32)), TypeError, "structured numpy array"),
    (lambda: maliang.merge(np.zeros((2, 2), maliang.LOCALIZATION_DTYPE)), ValueError, "1-D array"),
    (lambda: maliang.filter(LOCS, ""), ValueError, "expression is empty"),
    (lambda: maliang.filter(LOCS, None), TypeError, "expression must be a string"),
    (lambda: maliang.filter(LOCS, "x [nm] > 1", pixel_size=0), ValueError, "pixel_size must be > 0"),
    (lambda: maliang.density_filter(LOCS, radius=-1), ValueError, "radius must be > 0"),
    (lambda: maliang.density_filter(LOCS, radius=1, min_neighbours=-1), ValueError, "min_neighbours must be 0"),
    (lambda: maliang.frc(LOCS[:0]), ValueError, "needs localizations"),
    (lambda: maliang.frc(LOCS, super_pixel=0), ValueError, "super_pixel must be > 0"),
    (lambda: maliang.frc(LOCS, split="halves"), ValueError, "split 'halves' is not one of random, odd_even"),
    (lambda: maliang.frc(LOCS, threshold=1.5), ValueError, "threshold must be"),
    (lambda: maliang.frc(LOCS, super_pixel=0.01), maliang.MaLiangValueError, "FFT"),
    (lambda: maliang.motion(LOCS, region=(0, 0, 10, 10), windows=((5, 1), (6, 9))), ValueError, "window 1 .* is empty"),
    (lambda: maliang.motion(LOCS, region=(0, 0, 10, 10), windows=((-1, 1), (6, 9))), ValueError, "window 1 first frame must be 0"),
    (lambda: maliang.motion(LOCS, region=(0, 0, 10, 10), windows=(0, 1)), TypeError, "window 1 must be \\(first, last\\)"),
    (lambda: maliang.motion(LOCS, region=(0, 0, 10, 10), windows=((0, 4), (5, 9)), pixel_size=-5), ValueError, "pixel_size"),
    (lambda: maliang.motion(LOCS, region="0,0,10,10", windows=((0, 4), (5, 9))), TypeError, "region must be"),
])
def test_bad_input_is_a_clear_error(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_the_library_checks_what_python_would(tmp_path):
    """The C ABI's own checks, called directly (bindings other than this one rely on them): null pointers, sizes, wrong
    struct_size, too small buffers; status and ml_last_error() name the parameter."""
    lib = post._lib()
    err = maliang._native.last_error
    a = LOCS.copy()
    n = ctypes.c_int64()
    out = np.empty(len(a), maliang.LOCALIZATION_DTYPE)
    p = maliang._native.ptr
    assert lib.ml_merge(None, 3, 0.5, 1, p(out), 10, ctypes.byref(n)) == 1 and "in is null" in err()
    assert lib.ml_merge(p(a), -1, 0.5, 1, p(out), 10, ctypes.byref(n)) == 1 and "out of range" in err()
    assert lib.ml_merge(p(a), len(a), 0.5, 1, None, 10, ctypes.byref(n)) == 1 and "capacity" in err()
    assert lib.ml_merge(p(a), len(a), 0.5, 1, None, 0, ctypes.byref(n)) == 0 and n.value == 10  # size query
    assert lib.ml_merge(p(a), len(a), 0.5, 1, p(out), 4, ctypes.byref(n)) == 1 and "capacity 4 < 10" in err()
    assert n.value == 10
    assert lib.ml_merge(p(a), len(a), 0.5, 1, p(out), 10, None) == 1 and "count is null" in err()

    o = post.MlDriftOptions()
    assert lib.ml_default_drift_options(ctypes.byref(o)) == 0
    assert (o.struct_size, o.segments, o.smooth_frames, o.magnification, o.max_shift_px) == (64, 10, 200, 5.0, 20.0)
    assert all(math.isnan(v) for v in (o.region_x0, o.region_y0, o.region_x1, o.region_y1))
    dx = np.empty(10)
    assert lib.ml_drift_correct(p(a), len(a), 0, ctypes.byref(o), None, None, None, 0, ctypes.byref(n)) == 0 and n.value == 10
    assert lib.ml_drift_correct(p(a), len(a), 0, ctypes.byref(o), None, p(dx), None, 10, ctypes.byref(n)) == 1
    assert "both dx_px and dy_px" in err()
    assert lib.ml_drift_correct(p(a), len(a), 0, ctypes.byref(o), None, p(dx), p(dx), 5, ctypes.byref(n)) == 1
    assert "frames_capacity 5 < 10" in err()
    o.region_x0 = 1.0  # partly NaN
    assert lib.ml_drift_correct(p(a), len(a), 1, ctypes.byref(o), None, None, None, 0, ctypes.byref(n)) == 1 and "region" in err()
    o.struct_size = 60
    assert lib.ml_drift_correct(p(a), len(a), 0, ctypes.byref(o), None, None, None, 0, ctypes.byref(n)) == 1
    assert "struct_size is 60" in err()
    assert lib.ml_drift_correct(p(a), len(a), 0, None, None, None, None, 0, ctypes.byref(n)) == 1 and "options is null" in err()

    keep = np.zeros(len(a), np.uint8)
    assert lib.ml_filter_expression(p(a), len(a), None, 100.0, p(keep), None) == 1 and "expression is null" in err()
    assert lib.ml_filter_expression(p(a), len(a), b"x [nm] > 1", 100.0, None, None) == 1 and "keep is null" in err()
    assert lib.ml_filter_expression(None, 0, b"x [nm] > 1", 100.0, None, None) == 0  # checks the expression only
    assert lib.ml_filter_expression(None, 0, b"x [nm] >> 1", 100.0, None, None) == 2 and "position" in err()
    assert lib.ml_density_filter(p(a), len(a), float("nan"), 1, p(keep), None) == 1 and "radius_px" in err()

    fo = post.MlFrcOptions()
    assert lib.ml_default_frc_options(ctypes.byref(fo)) == 0
    assert (fo.struct_size, fo.split, fo.block_frames, fo.seed, fo.pixel_size_nm, fo.super_pixel_nm) == (40, 0, 0, 0, 100.0, 5.0)
    assert fo.threshold == pytest.approx(1 / 7)
    r = ctypes.c_double()
    assert lib.ml_frc(p(a), len(a), ctypes.byref(fo), None, None, None, None, 0, ctypes.byref(n)) == 1 and "resolution_nm is null" in err()
    fo.split = 2
    assert lib.ml_frc(p(a), len(a), ctypes.byref(fo), ctypes.byref(r), None, None, None, 0, ctypes.byref(n)) == 1 and "split 2" in err()

    m = post.MlMotionResult()
    assert lib.ml_motion(p(a), len(a), 0, 0, 10, 10, 0, 4, 5, 9, 100.0, ctypes.byref(m)) == 1 and "struct_size" in err()
    m.struct_size = ctypes.sizeof(m)
    assert lib.ml_motion(p(a), len(a), 0, 0, 10, 10, 0, 4, 5, 9, 100.0, None) == 1 and "out is null" in err()
    assert lib.ml_motion(p(a), len(a), 0, 0, 10, float("nan"), 0, 4, 5, 9, 100.0, ctypes.byref(m)) == 1 and "region" in err()
    # a clean motion call: points on the diagonal, all inliers, no shift
    assert lib.ml_motion(p(a), len(a), 0, 0, 10, 10, 0, 4, 5, 9, 100.0, ctypes.byref(m)) == 0
    assert (m.in_region, m.n1, m.n2) == (10, 5, 5)
    assert m.displacement_nm == pytest.approx(0, abs=1e-3)


def test_dataframes_and_other_structured_arrays_are_accepted():
    import pandas as pd  # Debian python3-pandas (DESIGN.md)
    a = table()
    df = pd.DataFrame({k: a[k] for k in ("frame", "x", "y", "photons", "uncertainty_x", "uncertainty_y")})
    assert maliang.filter_mask(df, "intensity [photon] > 350").tolist() == [True, True, False, True, False]
    small = np.zeros(3, dtype=[("frame", "<i8"), ("x", "<f8"), ("y", "<f8")])
    small["frame"], small["x"], small["y"] = [0, 1, 5], [1.0, 1.1, 1.0], [2.0, 2.0, 2.0]
    assert maliang.merge(small, radius=0.5, gap=1)["detections"].tolist() == [2, 1]
