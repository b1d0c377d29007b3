// No image open: Localize must abort the macro with a clear message.
run("Localize", "offset=100 pixel_size=100");
print("NOT REACHED");
