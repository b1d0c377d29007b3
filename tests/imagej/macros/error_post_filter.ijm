// An unknown column in a filter expression must abort the macro naming the column and listing the available ones.
run("Import CSV", "path=[" + getArgument() + "] pixel_size=100 width=0 height=0");
run("Filter", "expr=[photons > 3] density_radius_nm=0 min_neighbours=3");
print("NOT REACHED");
