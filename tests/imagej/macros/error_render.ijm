// Render before any localization: a clear message, macro aborted.
run("Render", "magnification=10 method=gaussian sigma=0");
print("NOT REACHED");
