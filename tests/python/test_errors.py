"""Bad input raises TypeError/ValueError/OSError with a clear message, checked in Python before the C call;
nothing crashes the interpreter."""
import os
import subprocess
import sys

import numpy as np
import pytest

import maliang
from conftest import BINDING, env_with_package

FRAME = np.zeros((3, 32, 32), np.uint16)


@pytest.mark.parametrize("frames, exc, msg", [
    (np.zeros(32, np.uint16), ValueError, "2-D .* or 3-D"),
    (np.zeros((2, 2, 32, 32), np.uint16), ValueError, "got 4-D"),
    (np.zeros((0, 32, 32), np.uint16), ValueError, "empty"),
    (np.zeros((32, 0), np.float32), ValueError, "empty"),
    (np.zeros((32, 32), bool), TypeError, "dtype bool"),
    (np.zeros((32, 32), complex), TypeError, "dtype complex"),
    (np.zeros((32, 32), object), TypeError, "dtype object"),
    (np.zeros((4, 5), np.uint16), ValueError, "smaller than the 7x7 ROI"),
    ("not an image", TypeError, "numpy array"),
    (None, TypeError, "numpy array"),
])
def test_bad_frames(frames, exc, msg):
    with pytest.raises(exc, match=msg):
        maliang.localize(frames)


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(psf_sigma=float("nan")), ValueError, "psf_sigma is NaN"),
    (dict(pixel_size=float("nan")), ValueError, "pixel_size is NaN"),
    (dict(offset=float("nan")), ValueError, "offset is NaN"),
    (dict(threshold=float("inf")), ValueError, "threshold must be finite"),
    (dict(pixel_size=0), ValueError, "pixel_size must be > 0"),
    (dict(psf_sigma=25), ValueError, "psf_sigma must be <= 20"),
    (dict(offset=-1), ValueError, "offset must be >= 0"),
    (dict(em_gain=0), ValueError, "em_gain must be > 0"),
    (dict(photons_per_adu=-2), ValueError, "photons_per_adu"),
    (dict(roi=8), ValueError, "roi must be odd"),
    (dict(roi=1), ValueError, "roi must be 3 to 31"),
    (dict(roi=7.5), TypeError, "roi must be an integer"),
    (dict(iterations=0), ValueError, "iterations must be 1 to 1000"),
    (dict(filter="gauss"), ValueError, "filter 'gauss' is not one of maliang, wavelet, none"),
    (dict(backend="tpu"), ValueError, "backend 'tpu' is not one of"),
    (dict(threshold="5"), TypeError, "threshold must be a number"),
    (dict(psf_sigma="1.3"), TypeError, "psf_sigma must be a number"),  # None means "estimate" (test_crowded_options)
    (dict(progress=42), TypeError, "progress must be callable"),
    (dict(bogus=1), TypeError, "unknown setting"),
])
def test_bad_settings(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        maliang.localize(FRAME, **kw)
    if "progress" not in kw:
        with pytest.raises(exc, match=msg):
            maliang.Localizer(**kw)


def test_engine_errors_surface_with_ml_last_error(tmp_path):
    # The C side checks too: call it directly with a bad ROI size and see the engine's message.
    import ctypes
    from maliang import _native as N
    s = N.MlSettings()
    N.lib().ml_default_settings(ctypes.byref(s))
    s.roi_size = 8
    h = ctypes.c_void_p()
    with pytest.raises(maliang.MaLiangValueError, match="roi"):
        N.check(N.lib().ml_create(ctypes.byref(s), ctypes.byref(h)))
    with pytest.raises(FileNotFoundError):
        maliang.read_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError):
        maliang.read_csv(bad)


def test_unavailable_gpu_backend_is_an_oserror_not_a_crash():
    # No GPU on the CI machines: CUDA must be refused cleanly (on a GPU machine the call succeeds).
    try:
        locs = maliang.localize(np.full((16, 16), 10, np.uint16), backend="cuda")
    except maliang.BackendUnavailable as e:
        assert isinstance(e, OSError) and str(e)
    else:
        assert locs.dtype == maliang.LOCALIZATION_DTYPE


def test_missing_library_says_how_to_build_it(tmp_path):
    code = ("import maliang, numpy as np\n"
            "try:\n    maliang.localize(np.zeros((16, 16), np.uint16))\n"
            "except OSError as e:\n    print('OSERROR:', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=env_with_package(MALIANG_LIBRARY=str(tmp_path / "nope" / "libmaliang.so")))
    assert r.returncode == 0, r.stderr
    assert "OSERROR:" in r.stdout and "make native" in r.stdout and "MALIANG_LIBRARY" in r.stdout
    # importing the package works without the library: the error comes at first use
    r = subprocess.run([sys.executable, "-c", "import maliang; print(maliang.__version__)"], capture_output=True,
                       text=True, timeout=60, env=env_with_package(MALIANG_LIBRARY="/nonexistent.so"))
    assert r.returncode == 0 and r.stdout.strip() == "0.1.0"


def test_not_a_library_is_an_oserror(tmp_path):
    fake = tmp_path / "libmaliang.so"
    fake.write_bytes(b"not an ELF file")
    code = "import maliang\ntry:\n    maliang.native_version()\nexcept OSError as e:\n    print('OSERROR:', e)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=env_with_package(MALIANG_LIBRARY=str(fake)))
    assert r.returncode == 0 and "OSERROR:" in r.stdout and str(fake) in r.stdout


def test_bad_locs_for_csv_and_render(tmp_path):
    with pytest.raises(TypeError):
        maliang.write_csv(tmp_path / "x.csv", [1, 2, 3])
    with pytest.raises(ValueError, match="lack the field"):
        maliang.render(np.zeros(3, dtype=[("x", "f4")]))
    ok = np.zeros(2, dtype=maliang.LOCALIZATION_DTYPE)
    with pytest.raises(ValueError, match="pixel_size"):
        maliang.write_csv(tmp_path / "x.csv", ok, pixel_size=float("nan"))
    with pytest.raises(ValueError, match="magnification"):
        maliang.render(ok, magnification=0)
    with pytest.raises(ValueError, match="method"):
        maliang.render(ok, method="splat")
    with pytest.raises(ValueError, match="sigma"):
        maliang.render(ok, sigma=float("nan"))


def test_nan_and_inf_pixels_do_not_crash(sim):
    stack = sim[0].astype(np.float32)
    ref = maliang.localize(stack[:4], offset=100)
    stack[1, 10:20, 10:20] = np.nan
    stack[2] = np.nan
    stack[3, 5, 5] = np.inf
    locs = maliang.localize(stack[:4], offset=100)
    assert np.all(np.isfinite(locs["x"]) & np.isfinite(locs["y"]))
    assert not np.any(locs["frame"] == 2)  # an all-NaN frame yields nothing
    np.testing.assert_array_equal(locs[locs["frame"] == 0], ref[ref["frame"] == 0])


def _native_must_not_be_called(monkeypatch, *names):
    from maliang import _native as N

    def refuse(*args):
        raise AssertionError("the native call was reached: Python should have refused the input")

    for name in names:
        monkeypatch.setattr(N.lib(), name, refuse)


def test_frames_of_2_to_the_31_pixels_are_refused_in_python(tmp_path, monkeypatch):
    # A sparse memory map: 2^31 bytes of address space, no memory and (almost) no disk.
    big = np.memmap(tmp_path / "big.raw", dtype=np.uint8, mode="w+", shape=(32768, 65536))
    _native_must_not_be_called(monkeypatch, "ml_push_frames")
    with pytest.raises(ValueError, match=r"65536x32768 px \(2147483648 pixels\)"):
        maliang.localize(big)
    with maliang.Localizer() as loc, pytest.raises(ValueError, match="2147483648 pixels"):
        loc.push(big[np.newaxis])
    del big


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(width=64.5), TypeError, "width must be an integer"),
    (dict(height="64"), TypeError, "height must be an integer"),
    (dict(width=float("nan")), TypeError, "width must be an integer"),
    (dict(width=True), TypeError, "width must be an integer"),
    (dict(width=0), ValueError, "width must be 1 to 2147483647 px, got 0"),
    (dict(height=-3), ValueError, "height must be 1 to 2147483647 px"),
    (dict(width=2**31), ValueError, "width must be 1 to 2147483647 px, got 2147483648"),
    (dict(height=2**40), ValueError, "height must be 1 to 2147483647"),
])
def test_render_sizes(kw, exc, msg, monkeypatch):
    ok = np.zeros(2, dtype=maliang.LOCALIZATION_DTYPE)
    ok["x"], ok["y"] = 3, 4
    _native_must_not_be_called(monkeypatch, "ml_render")
    with pytest.raises(exc, match=msg):
        maliang.render(ok, 2, **kw)


def test_render_extent_from_the_data_is_checked(monkeypatch):
    far = np.zeros(2, dtype=maliang.LOCALIZATION_DTYPE)
    far["x"] = [3, 3e9]
    far["y"] = [4, 5]
    with pytest.raises(ValueError, match=r"extent in x \(max x = 3e\+09 px\)"):
        maliang.render(far, 1)
    far["x"], far["y"] = 3, [4, 2**31]
    with pytest.raises(ValueError, match="extent in y"):
        maliang.render(far, 1)
    # integral floats and numpy integers are sizes too
    assert maliang.render(far[:1], 1, width=np.int64(8), height=6.0).shape == (6, 8)


def test_paths_with_a_nul_byte_are_refused(tmp_path):
    locs = np.zeros(2, dtype=maliang.LOCALIZATION_DTYPE)
    locs["x"], locs["y"] = 3, 4
    for bad in (str(tmp_path / "a\0b.csv"), tmp_path / "a\0b.csv", os.fsencode(str(tmp_path / "a\0b.csv"))):
        with pytest.raises(ValueError, match="NUL byte"):
            maliang.write_csv(bad, locs)
        with pytest.raises(ValueError, match="NUL byte"):
            maliang.read_csv(bad)
    assert not (tmp_path / "a").exists()  # C would have cut the name at the NUL and written "a"
    pytest.importorskip("h5py")
    with pytest.raises(ValueError, match="NUL byte"):
        maliang.save_picasso(tmp_path / "x\0y.hdf5", locs)
    with pytest.raises(ValueError, match="movie_path contains a NUL byte"):
        maliang.save_picasso(tmp_path / "ok.hdf5", locs, movie_path="movie\0.tif")
    with pytest.raises(ValueError, match="NUL byte"):
        maliang.napari_plugin.read_localizations(str(tmp_path / "a\0b.csv"), pixel_size=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_file_errors_are_oserrors(tmp_path):
    from maliang import _native as N

    assert maliang.MaLiangIOError is N.MaLiangIOError and "MaLiangIOError" in maliang.__all__
    assert issubclass(maliang.MaLiangIOError, OSError) and issubclass(maliang.MaLiangIOError, maliang.MaLiangError)
    with pytest.raises(maliang.MaLiangIOError):
        N.check(N.ML_ERR_IO, "ml_write_csv")
    locs = np.zeros(2, dtype=maliang.LOCALIZATION_DTYPE)
    with pytest.raises(FileNotFoundError):
        maliang.write_csv(tmp_path / "missing" / "x.csv", locs)
    with pytest.raises(IsADirectoryError):
        maliang.write_csv(tmp_path, locs)
    with pytest.raises(FileNotFoundError):
        maliang.read_csv(tmp_path / "missing.csv")
    with pytest.raises(IsADirectoryError):
        maliang.read_csv(tmp_path)
    for f in (maliang.read_csv, maliang.write_csv):
        assert "OSError" in f.__doc__
