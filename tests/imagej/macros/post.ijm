// The post-processing commands as the macro recorder writes them. Argument: the folder with drift.csv, bead.csv,
// blink.csv, frc.csv, filament50.csv, filament0.csv (written by PostBatchTest); results go to the same folder.
dir = getArgument();
function load(name) {
    run("Import CSV", "path=[" + dir + "/" + name + "] pixel_size=100 width=0 height=0");
    print(name + " imported: " + Table.size("MaLiang Results"));
}

load("drift.csv");
run("Drift Correction", "method=rcc segments=20 magnification=4 smooth_frames=200 region=");
print("drift frames: " + Table.size("MaLiang Drift"));
print("drift plot: " + isOpen("MaLiang Drift (rcc)"));
Table.save(dir + "/drift_rcc.csv", "MaLiang Drift");
run("Export CSV", "path=[" + dir + "/drift_corrected.csv]");

load("bead.csv");
run("Drift Correction", "method=fiducial segments=10 magnification=5 smooth_frames=200 region=[15,15,30,30]");
Table.save(dir + "/drift_fiducial.csv", "MaLiang Drift");

load("blink.csv");
run("Merge", "radius_nm=50 gap=1");
print("merged: " + Table.size("MaLiang Results"));

load("blink.csv");
run("Filter", "expr=[intensity [photon] > 1000 && frame <= 1000] density_radius_nm=0 min_neighbours=3");
print("filtered expr: " + Table.size("MaLiang Results"));
run("Export CSV", "path=[" + dir + "/filtered.csv]");
load("blink.csv");
run("Filter", "expr= density_radius_nm=50 min_neighbours=2");
print("filtered density: " + Table.size("MaLiang Results"));

load("frc.csv");
run("FRC", "super_pixel_nm=5 split=odd_even block_frames=20 seed=0");
print("frc plot: " + isOpen("MaLiang FRC"));

load("filament50.csv");
run("Motion Statistics", "region=[5,5,35,25] windows=[1-1000,2001-3000]");
load("filament0.csv");
run("Motion Statistics", "region=[5,5,35,25] windows=[1-1000,2001-3000]");
print("post done");
