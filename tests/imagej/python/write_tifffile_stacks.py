"""Writes one movie the ways Python users write stacks for ImageJ, with tifffile exactly as they do:
tifffile.imwrite(path, stack, imagej=True) (frames x height x width, no axes: ImageJ opens it as channels), with
axes ZYX (slices) and TYX (frames), and as a true hyperstack (TZCYX) that Localize must refuse.
Usage: write_tifffile_stacks.py MOVIE.tif OUTDIR"""
import sys

import tifffile

movie, out = sys.argv[1], sys.argv[2]
stack = tifffile.imread(movie)
assert stack.ndim == 3 and stack.shape[0] % 20 == 0, stack.shape
tifffile.imwrite(f"{out}/tifffile_plain.tif", stack, imagej=True)
tifffile.imwrite(f"{out}/tifffile_zyx.tif", stack, imagej=True, metadata={"axes": "ZYX"})
tifffile.imwrite(f"{out}/tifffile_tyx.tif", stack, imagej=True, metadata={"axes": "TYX"})
t = stack.shape[0] // 20
tifffile.imwrite(f"{out}/tifffile_tzcyx.tif", stack.reshape(t, 5, 4, *stack.shape[1:]), imagej=True,
                 metadata={"axes": "TZCYX"})
print("wrote", stack.shape, "as", out + "/tifffile_{plain,zyx,tyx,tzcyx}.tif")
