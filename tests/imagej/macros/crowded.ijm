// The recorded Localize command with the crowded-frame keys. Argument: "STACK.tif|OUT.csv|KEYS" (KEYS may be empty:
// a macro recorded before these keys existed must keep the engine's defaults).
args = split(getArgument(), "|");
keys = "";
if (args.length > 2) keys = " " + args[2];
open(args[0]);
run("Localize", "offset=100 photons_per_adu=1 em_gain=1 pixel_size=100 psf_sigma=1.3 filter=maliang threshold=5 roi=7 iterations=20 backend=auto magnification=2" + keys + " export=[" + args[1] + "]");
print("localized: " + Table.size("MaLiang Results"));
