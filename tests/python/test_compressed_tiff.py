"""Compressed and tiled TIFFs through libmaliang.so (NativeAOT): maliang.localize_file decodes them with the engine's
reader (LibTiff.NET for compressed pages), so these tests prove the decoders survive trimming and AOT compilation.
The files are written by tifffile (tests/compressed_tiffs.py) from the engine's simulated stack."""
import subprocess
import sys

import numpy as np
import pytest

import maliang
from conftest import ROOT, CLI

sys.path.insert(0, str(ROOT / "tests"))
import compressed_tiffs  # noqa: E402

OPTS = dict(offset=100, threads=2)


@pytest.fixture(scope="module")
def variants(sim, tmp_path_factory):
    _, tif, _ = sim
    return tif, compressed_tiffs.variants(str(tif), str(tmp_path_factory.mktemp("compressed")))


def _same(a, b):
    assert a.dtype == b.dtype and len(a) == len(b)
    assert a.tobytes() == b.tobytes()  # bit for bit


@pytest.mark.parametrize("variant", ["deflate", "deflate_old", "lzw", "packbits", "tiled", "tiled_deflate",
                                     "tiled_lzw", "bigtiff_lzw", "imagej_deflate", "ome_lzw"])
def test_localize_file_on_compressed_equals_uncompressed(variants, variant):
    tif, files = variants
    plain = maliang.localize_file(tif, **OPTS)
    assert len(plain) > 50
    _same(maliang.localize_file(files[variant], **OPTS), plain)


def test_localize_file_equals_localize_on_the_array(sim):
    stack, tif, _ = sim
    _same(maliang.localize_file(tif, **OPTS), maliang.localize(stack, **OPTS))


@pytest.mark.parametrize("variant", ["deflate", "lzw", "packbits", "tiled_deflate"])
def test_the_csv_through_python_equals_the_clis(variants, variant, tmp_path):
    """The same CSV from maliang.localize_file + write_csv as from `maliang localize` on the uncompressed file."""
    tif, files = variants
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make build`")
    cli_csv = tmp_path / "cli.csv"
    r = subprocess.run([str(CLI), "localize", str(tif), "-o", str(cli_csv), "--offset", "100", "--threads", "2",
                        "--pixel-size", "100", "--psf-sigma", "1.3", "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    py_csv = tmp_path / "py.csv"
    maliang.write_csv(py_csv, maliang.localize_file(files[variant], **OPTS), pixel_size=100)
    assert py_csv.read_text() == cli_csv.read_text()


def test_localizer_push_file_numbers_frames_after_earlier_pushes(sim, variants):
    stack, _, _ = sim
    _, files = variants
    with maliang.Localizer(**OPTS) as loc:
        first = loc.push_file(files["lzw"])
        second = loc.push_file(files["deflate"])
        assert loc.frames == 2 * len(stack)
    assert second["frame"].min() >= len(stack)
    second = second.copy()
    second["frame"] -= len(stack)
    _same(second, first)


def test_progress_reaches_the_files_frame_count(sim, variants):
    stack, _, _ = sim
    _, files = variants
    seen = []
    maliang.localize_file(files["packbits"], progress=lambda done, total, n: seen.append((done, total)), **OPTS)
    assert seen[-1] == (len(stack), len(stack))


@pytest.mark.parametrize("variant, mentions", [
    ("cut_strip", ["cut_strip.tif", "frame 2", "strip 1"]),
    ("cut_lzw", ["cut_lzw.tif", "frame 2", "strip 1", "truncated"]),
    ("rgb_deflate", ["rgb_deflate.tif", "RGB"]),
])
def test_broken_compressed_files_raise_valueerror_naming_file_and_frame(variants, variant, mentions):
    _, files = variants
    with pytest.raises(maliang.MaLiangValueError) as e:
        maliang.localize_file(files[variant], **OPTS)
    msg = str(e.value)
    assert "\n" not in msg
    for m in mentions:
        assert m in msg


def test_jpeg_compressed_tiff_is_refused(tmp_path):
    # a JPEG-in-TIFF header (compression 7): refused by name before any data is read
    import tifffile
    p = tmp_path / "jpeg.tif"
    tifffile.imwrite(p, np.zeros((2, 16, 16), np.uint16), photometric="minisblack")
    b = bytearray(p.read_bytes())
    with tifffile.TiffFile(p) as tf:
        pos = tf.pages[0].tags["Compression"].valueoffset
    b[pos:pos + 2] = (7).to_bytes(2, "little")
    p.write_bytes(bytes(b))
    with pytest.raises(maliang.MaLiangValueError, match=r"jpeg\.tif: frame 1: compression JPEG is not supported"):
        maliang.localize_file(p, **OPTS)


def test_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(OSError, match="nope.tif: file not found"):
        maliang.localize_file(tmp_path / "nope.tif")
