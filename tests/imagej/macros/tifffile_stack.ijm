// Opens a stack written by tifffile and runs the recorded Localize command on it. Argument: "STACK.tif|OUT.csv[|reduce]"
// With "reduce", first keeps the frames of a hyperstack as the refusal message says (Image > Hyperstacks > Reduce Dimensionality...).
args = split(getArgument(), "|");
open(args[0]);
getDimensions(w, h, c, z, t);
print("opened: channels=" + c + " slices=" + z + " frames=" + t);
reduce = false;
if (args.length > 2) { if (args[2] == "reduce") reduce = true; } // (&& evaluates both sides in this language)
if (reduce) {
  run("Reduce Dimensionality...", "frames");
  getDimensions(w, h, c, z, t);
  print("reduced: channels=" + c + " slices=" + z + " frames=" + t);
}
run("Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=2 export=[" + args[1] + "]");
print("localized: " + Table.size("MaLiang Results"));
