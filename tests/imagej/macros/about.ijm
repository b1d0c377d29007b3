// About MaLiang never fails: it says what is missing.
run("About MaLiang");
print("about done");
