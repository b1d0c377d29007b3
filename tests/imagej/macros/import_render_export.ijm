// Import CSV -> Render -> Export CSV, as recorded. Argument: "IN.csv|RENDER.tif|OUT.csv"
args = split(getArgument(), "|");
run("Import CSV", "path=[" + args[0] + "] pixel_size=100 width=128 height=128");
print("imported: " + Table.size("MaLiang Results"));
run("Render", "magnification=5 method=histogram sigma=0");
saveAs("Tiff", args[1]);
run("Export CSV", "path=[" + args[2] + "]");
print("import/render/export done");
