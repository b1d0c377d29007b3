#!/usr/bin/env bash
# Java tests of the ImageJ bridge: JUnit 4 (binding, LiveLocalizer), ImageJ -batch macros, one GUI check under Xvfb,
# the Micro-Manager Beanshell script against a stand-in core. Builds what it needs (MaLiang_.jar from
# build/native/libmaliang.so, simulated stacks with build/maliang). Last line: "JAVA-TESTS: N passed, M failed".
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
IJ_JAR="${IJ_JAR:-/usr/share/java/ij.jar}"; JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
JUNIT="/usr/share/java/junit4.jar:/usr/share/java/hamcrest-core.jar"; BSH=/usr/share/java/bsh.jar
out=out/imagej; data=$out/data; classes=build/imagej/test-classes; jar=build/imagej/MaLiang_.jar
summary() { echo "JAVA-TESTS: $1 passed, $2 failed"; exit $(( $2 > 0 ? 1 : 0 )); }
die() { echo "tests/imagej/run.sh: $*" >&2; summary 0 1; }

[ -f build/native/libmaliang.so ] || die "build/native/libmaliang.so is missing (make native)"
[ -x build/maliang ] || die "build/maliang is missing (make cli)"
for f in "$IJ_JAR" "$JNA_JAR" /usr/share/java/junit4.jar "$BSH"; do [ -f "$f" ] || die "$f is missing (make setup)"; done
command -v xvfb-run >/dev/null || die "xvfb-run is missing (apt-get install xvfb xauth)"

# the plugin jar, rebuilt when a source or the library is newer
if [ ! -f "$jar" ] || [ -n "$(find src/ImageJBridge build/native/libmaliang.so -newer "$jar" -type f 2>/dev/null | head -1)" ]; then
  src/ImageJBridge/build.sh || die "src/ImageJBridge/build.sh failed"
fi
mkdir -p "$data" "$out/ijhome/plugins"
cp "$jar" "$out/ijhome/plugins/"

# data: a small dense stack (binding vs CLI) and a sparse grid of isolated emitters (ground truth, CRLB)
m=build/maliang
[ -f "$data/stack.tif" ] || $m simulate "$data/stack.tif" --truth "$data/truth.csv" --width 64 --height 64 --frames 20 \
  --emitters-per-frame 10 --photons 2000 --background 10 --offset 100 --seed 3 >/dev/null || die "simulate failed"
[ -f "$data/sparse.tif" ] || $m simulate "$data/sparse.tif" --truth "$data/sparse_truth.csv" --width 128 --height 128 --frames 60 \
  --pattern grid --emitters 144 --emitters-per-frame 20 --photons 2000 --background 10 --offset 100 --seed 11 >/dev/null || die "simulate failed"
[ -f "$data/movie200.tif" ] || $m simulate "$data/movie200.tif" --truth "$data/movie200_truth.csv" --width 48 --height 48 --frames 200 \
  --emitters-per-frame 6 --photons 2000 --background 10 --offset 100 --seed 21 >/dev/null || die "simulate failed"
# a crowded stack for the multi-emitter options (about 1.5 emitters per um^2)
[ -f "$data/dense.tif" ] || $m simulate "$data/dense.tif" --truth "$data/dense_truth.csv" --width 64 --height 64 --frames 10 \
  --emitters-per-frame 60 --photons 2000 --background 10 --offset 100 --seed 5 >/dev/null || die "simulate failed"
$m localize "$data/stack.tif" -o "$data/cli.csv" --offset 100 --psf-sigma 1.3 -q || die "maliang localize failed"
# 3D: the test calibration (tests/data/z_calibration_example.yaml: unequal A, B terms), an astigmatic stack and a bead stack
if [ ! -f "$data/3d_beads.tif" ]; then
  cp tests/data/z_calibration_example.yaml "$data/3d_cal.yaml"
  $m simulate "$data/3d.tif" --truth "$data/3d_truth.csv" --calibration "$data/3d_cal.yaml" --width 64 --height 64 --frames 100 \
    --emitters 4 --emitters-per-frame 2 --min-separation 20 --edge-margin 9 --photons 3000 --seed 8 >/dev/null || die "simulate 3D failed"
  $m simulate "$data/3d_beads.tif" --truth "$data/3d_beads_truth.csv" --calibration "$data/3d_cal.yaml" --bead-z-step-nm 10 \
    --bead-z-first-nm -600 --frames 121 --width 64 --height 64 --emitters 4 --photons 20000 --background 20 --min-separation 20 \
    --edge-margin 10 --seed 9 >/dev/null || die "simulate bead stack failed"
fi
# compressed and tiled copies of stack.tif, written by tifffile (Localizer.pushFile must give the CLI's results)
/usr/bin/python3 tests/compressed_tiffs.py "$data/stack.tif" "$data/compressed" >/dev/null || die "tests/compressed_tiffs.py failed"

rm -rf "$classes"; mkdir -p "$classes"
cp="$jar:$IJ_JAR:$JNA_JAR:$JUNIT:$BSH"
javac --release 8 -Xlint:-options -encoding UTF-8 -cp "$cp" -d "$classes" $(find tests/imagej/java -name '*.java') \
  || die "compiling the tests failed"

tests="org.maliang.EngineFilesTest org.maliang.test.BindingTest org.maliang.test.ScmosBindingTest org.maliang.test.LiveLocalizerTest org.maliang.test.ImageJBatchTest org.maliang.test.BeanshellTest org.maliang.test.GuiTest org.maliang.test.PostBindingTest org.maliang.test.PostBatchTest org.maliang.test.CrowdedOptionsTest org.maliang.test.ThreeDBindingTest"
log=$out/junit.log
xvfb-run -a -s "-screen 0 1280x1024x24" java -Dmaliang.root="$root" -Dmaliang.data="$root/$data" -Dmaliang.out="$root/$out" \
  -Dmaliang.ijhome="$root/$out/ijhome" -Dmaliang.ijjar="$IJ_JAR" -Dmaliang.jnajar="$JNA_JAR" \
  -cp "$classes:$cp" org.maliang.test.RunAll $tests 2>&1 | tee "$log" | grep -v '^JAVA-TESTS:'
line=$(grep -E '^JAVA-TESTS: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
[ -n "$line" ] || die "the JUnit run ended without a summary (see $log)"
p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")

# backend=cuda through the binding, in its own JVM: on the NVIDIA driver where there is one, else on the CUDA emulator
clog=$out/junit-cuda.log
tests/cuda-emulator/with-cuda.sh java -Dmaliang.root="$root" -Dmaliang.data="$root/$data" -Dmaliang.out="$root/$out" \
  -cp "$classes:$cp" org.maliang.test.RunAll org.maliang.test.CudaBindingTest 2>&1 | tee "$clog" | grep -v '^JAVA-TESTS:'
cline=$(grep -E '^JAVA-TESTS: [0-9]+ passed, [0-9]+ failed' "$clog" | tail -1)
if [ -n "$cline" ]; then
  p=$((p + $(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$cline"))); f=$((f + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$cline")))
else
  echo "FAIL CudaBindingTest ended without a summary (see $clog)"; f=$((f + 1))
fi
summary "$p" "$f"
