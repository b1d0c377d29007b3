// A bad crowded-frame key aborts the macro naming the parameter. Argument: the keys.
newImage("frames", "16-bit ramp", 32, 32, 4);
run("Localize", "offset=0 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=2 " + getArgument() + " export=");
print("NOT REACHED");
