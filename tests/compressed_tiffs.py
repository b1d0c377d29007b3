#!/usr/bin/env python3
"""Writes compressed and tiled copies of an uncompressed TIFF stack with tifffile (Debian's python3-tifffile), for the
tests of MaLiang's TIFF reader (NUnit's CompressedTiffTests, the CLI and Python tests).

    /usr/bin/python3 tests/compressed_tiffs.py SOURCE.tif OUTDIR     # prints one "name<TAB>path" line per file written

Deflate (TIFF codes 8 and 32946) goes through tifffile's own zlib codec. Debian's tifffile writes LZW (5) and PackBits
(32773) only through the imagecodecs package, which Debian does not ship, so this module registers small pure-Python
encoders for those two into tifffile (``tifffile.TIFF.COMPRESSORS``): the files are still laid out by tifffile, and
the encoders follow the TIFF 6.0 specification (LZW with 9-12 bit codes, MSB first, "early change"; PackBits runs of
up to 128 bytes). Nothing here decodes: MaLiang's reader (LibTiff.NET) is what the tests compare with the original.
"""
import os
import struct
import sys

import numpy as np
import tifffile


def lzw_encode(data, level=None, out=None, **_):
    """TIFF LZW (compression 5) of one strip or tile."""
    data = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    out_bytes = bytearray()
    acc = 0
    nacc = 0
    width = 9

    def put(code):
        nonlocal acc, nacc
        acc = (acc << width) | code
        nacc += width
        while nacc >= 8:
            nacc -= 8
            out_bytes.append((acc >> nacc) & 0xFF)
        acc &= (1 << nacc) - 1

    put(256)  # Clear
    table = {}
    nxt = 258
    ent = -1

    def added():
        # after each emitted code the table gains an entry: widen one code early, restart before 12 bits overflow
        nonlocal nxt, width, table
        nxt += 1
        if nxt == 4094:
            put(256)
            table = {}
            nxt = 258
            width = 9
        elif nxt > (1 << width) - 1:
            width += 1

    for c in data:
        if ent < 0:
            ent = c
            continue
        code = table.get((ent, c))
        if code is not None:
            ent = code
            continue
        put(ent)
        table[(ent, c)] = nxt
        ent = c
        added()
    if ent >= 0:
        put(ent)
        added()
    put(257)  # EOI
    if nacc:
        out_bytes.append((acc << (8 - nacc)) & 0xFF)
    return bytes(out_bytes)


def _packbits_row(row, out):
    i, n = 0, len(row)
    while i < n:
        j = i + 1
        while j < n and j - i < 128 and row[j] == row[i]:
            j += 1
        if j - i >= 3:
            out.append(257 - (j - i))  # -(count - 1) as a signed byte
            out.append(row[i])
            i = j
            continue
        j = i
        while j < n and j - i < 128 and not (j + 2 < n and row[j] == row[j + 1] == row[j + 2]):
            j += 1
        out.append(j - i - 1)
        out += row[i:j]
        i = j


def packbits_encode(data, axis=None, out=None, **_):
    """TIFF PackBits (compression 32773), each row packed on its own as TIFF 6.0 asks."""
    arr = np.asarray(data)
    raw = arr.tobytes()
    # tifffile passes a strip or tile as (..., rows, columns, samples); a row is the last two axes' bytes
    row_bytes = arr.shape[-2] * arr.shape[-1] * arr.itemsize if arr.ndim >= 2 else len(raw)
    buf = bytearray()
    for k in range(0, len(raw), row_bytes):
        _packbits_row(raw[k:k + row_bytes], buf)
    return bytes(buf)


tifffile.TIFF.COMPRESSORS._codecs[5] = lzw_encode
tifffile.TIFF.COMPRESSORS._codecs[32773] = packbits_encode


def _cut_strip(path, page, strip):
    """Halves one strip's StripByteCounts in place: the strip's compressed data ends early (a truncated strip)."""
    with tifffile.TiffFile(path) as tf:
        p = tf.pages[page]
        tag = p.tags['StripByteCounts']
        counts = list(p.databytecounts)
        fmt = tf.byteorder + {3: 'H', 4: 'I', 16: 'Q'}[tag.dtype]
        pos = tag.valueoffset + strip * struct.calcsize(fmt)  # where the values are, inline or not
    with open(path, 'r+b') as f:
        f.seek(pos)
        f.write(struct.pack(fmt, counts[strip] // 2))


def variants(src, outdir):
    """Writes every variant of the stack in SRC into OUTDIR; returns {name: path}."""
    stack = tifffile.imread(src)
    if stack.ndim == 2:
        stack = stack[None]
    os.makedirs(outdir, exist_ok=True)
    h = stack.shape[1]
    written = {}

    def w(name, data=stack, **kw):
        path = os.path.join(outdir, name)
        kw.setdefault('photometric', 'minisblack')  # else tifffile takes a stack of 3 or 4 frames for RGB(A)
        tifffile.imwrite(path, data, **kw)
        written[name.split('.')[0]] = path
        return path

    rps = max(1, h // 3)  # several strips per frame, the last one short
    w('deflate.tif', compression='zlib', rowsperstrip=rps)                     # Adobe Deflate (8)
    w('deflate_old.tif', compression='deflate', rowsperstrip=rps)              # old-style Deflate (32946)
    w('deflate_predictor.tif', compression='zlib', predictor=True)             # horizontal differencing
    w('lzw.tif', compression=5, rowsperstrip=rps)
    w('lzw_predictor.tif', compression=5, predictor=True)
    w('packbits.tif', compression=32773, rowsperstrip=rps)
    w('tiled.tif', tile=(16, 16))                                                # uncompressed tiles
    w('tiled_deflate.tif', tile=(16, 16), compression='zlib')
    w('tiled_lzw.tif', tile=(16, 32), compression=5)
    w('bigtiff_lzw.tif', bigtiff=True, compression=5)
    w('bigendian_deflate.tif', byteorder='>', compression='zlib')
    w('bigendian_lzw_predictor.tif', byteorder='>', compression=5, predictor=True, tile=(16, 32))
    w('imagej_deflate.tif', imagej=True, compression='zlib')
    w('ome_lzw.ome.tif', ome=True, compression=5)
    # other sample types (pixel-for-pixel tests only)
    w('u8_lzw.tif', data=(stack >> 4).clip(0, 255).astype(np.uint8), compression=5)
    w('u32_deflate.tif', data=stack.astype(np.uint32) * 1000, compression='zlib')
    w('f32_deflate.tif', data=stack.astype(np.float32) * 0.25, compression='zlib')
    w('u8_packbits.tif', data=(stack >> 4).clip(0, 255).astype(np.uint8), compression=32773)
    # bad input
    cut = w('cut_strip.tif', compression='zlib', rowsperstrip=rps)
    _cut_strip(cut, min(1, len(stack) - 1), 0)
    cut = w('cut_lzw.tif', compression=5, rowsperstrip=rps)
    _cut_strip(cut, min(1, len(stack) - 1), 0)
    rgb = np.repeat((stack[:2] >> 4).clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    w('rgb_deflate.tif', data=rgb, photometric='rgb', compression='zlib')
    return written


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for name, path in variants(sys.argv[1], sys.argv[2]).items():
        print(f'{name}\t{path}')
