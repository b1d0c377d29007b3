// A bad frame range in Motion Statistics must abort the macro naming the parameter.
run("Import CSV", "path=[" + getArgument() + "] pixel_size=100 width=0 height=0");
run("Motion Statistics", "region=[5,5,35,25] windows=[1000-1,2001-3000]");
print("NOT REACHED");
