// A user mistake in a macro: Localize on an RGB image must abort the macro with a clear message.
newImage("rgb", "RGB black", 64, 64, 3);
run("Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=10 export=");
print("NOT REACHED");
