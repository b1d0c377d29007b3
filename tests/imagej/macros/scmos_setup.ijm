// Camera Setup remembers the sCMOS maps: a Localize without the map keys then uses them.
// -batch scmos_setup.ijm "STACK.tif|LOCS.csv|OFFSET.tif|VARIANCE.tif|GAIN.tif|X,Y"
args = split(getArgument(), "|");
run("Camera Setup", "offset=100 photons_per_adu=0.5 em_gain=1 pixel_size=100 camera_offset_map=[" + args[2] + "] camera_variance_map=[" + args[3] + "] camera_gain_map=[" + args[4] + "] camera_origin=" + args[5]);
open(args[0]);
run("Localize", "psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=cpu magnification=10 export=[" + args[1] + "]");
print("localizations: " + Table.size("MaLiang Results"));
