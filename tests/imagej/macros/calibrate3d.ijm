// Calibrate 3D on an open bead stack, then Localize an astigmatic stack with the calibration, as the recorder writes them.
// -batch calibrate3d.ijm "BEADS.tif|CALIB.yaml|STACK.tif|LOCS.csv"
args = split(getArgument(), "|");
open(args[0]);
run("Calibrate 3D", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 threshold=5 z_step_nm=10 z_first_nm=-600 refractive_index_factor=1 output=[" + args[1] + "]");
print("images after calibrate: " + nImages);
open(args[2]);
run("Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto calibration=[" + args[1] + "] magnification=10 export=[" + args[3] + "]");
print("localizations: " + Table.size("MaLiang Results"));
zc = Table.getColumn("z [nm]", "MaLiang Results");
print("z column: " + zc.length);
