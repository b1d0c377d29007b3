// MaLiang batch macro: localize a stack, export the CSV, save the rendered super-resolution image.
// The run("Localize", ...) line is what Plugins > Macros > Record... writes for Plugins > MaLiang > Localize.
//
//   xvfb-run -a java -Dplugins.dir=DIR -cp ij.jar:jna.jar ij.ImageJ -batch examples/imagej/localize.ijm "STACK.tif|LOCS.csv|RENDER.tif"
//   (DIR/plugins/ holds MaLiang_.jar; in Fiji: ImageJ-linux64 --headless is NOT enough for ImageJ 1.x menus, use xvfb-run)
args = split(getArgument(), "|");
if (args.length < 3) exit("usage: -batch localize.ijm \"STACK.tif|LOCS.csv|RENDER.tif\"");
stack = args[0]; csv = args[1]; render = args[2];

open(stack);
print("opened " + getTitle() + ": " + getWidth() + "x" + getHeight() + " px, " + nSlices + " frames, " + bitDepth() + "-bit");
run("Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=10 export=[" + csv + "]");
// The rendered image is now the current image: 32-bit, calibrated in nm.
getPixelSize(unit, pw, ph);
print("render " + getTitle() + ": " + getWidth() + "x" + getHeight() + " px of " + pw + " " + unit);
saveAs("Tiff", render);
print("localizations: " + Table.size("MaLiang Results"));
