// Merge before any Localize / Import CSV must abort the macro with one clear line.
run("Merge", "radius_nm=50 gap=1");
print("NOT REACHED");
