// The same stack as a VirtualStack (read frame by frame), as 32-bit and as 8-bit: Localize must run on each.
// Argument: "STACK.tif|OUTDIR"
args = split(getArgument(), "|");
stack = args[0]; out = args[1];
opts = "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=2";
run("TIFF Virtual Stack...", "open=[" + stack + "]");
print("virtual: " + is("Virtual Stack"));
run("Localize", opts + " export=[" + out + "/virtual.csv]");
close("*");
open(stack);
run("32-bit");
run("Localize", opts + " export=[" + out + "/float32.csv]");
close("*");
open(stack);
run("Subtract...", "value=50 stack");
setMinAndMax(0, 255);
run("8-bit");
run("Localize", "offset=50 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=2 export=[" + out + "/uint8.csv]");
print("variants done");
