// A bad parameter (even ROI size) must abort the macro naming the parameter.
newImage("frames", "16-bit black", 32, 32, 4);
run("Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=8 iterations=20 backend=auto magnification=10 export=");
print("NOT REACHED");
