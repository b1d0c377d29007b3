#!/usr/bin/env bash
# Not a timed test: the Localize plugin's in-memory overhead vs the CLI's engine time on the same 512x512x500 stack.
# Usage: tests/imagej/bench.sh [RUNS]   (needs make build; writes out/imagej/bench/)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"; cd "$root"
runs=${1:-3}
IJ_JAR="${IJ_JAR:-/usr/share/java/ij.jar}"; JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
d=out/imagej/bench; mkdir -p "$d"
[ -f build/imagej/MaLiang_.jar ] || src/ImageJBridge/build.sh
[ -f "$d/big.tif" ] || build/maliang simulate "$d/big.tif" --truth "$d/big_truth.csv" --width 512 --height 512 --frames 500 \
  --emitters-per-frame 100 --photons 2000 --background 10 --offset 100 --seed 5
classes=build/imagej/bench-classes; rm -rf "$classes"; mkdir -p "$classes"
javac --release 8 -Xlint:-options -cp "build/imagej/MaLiang_.jar:$IJ_JAR:$JNA_JAR" -d "$classes" tests/imagej/java/org/maliang/test/OverheadBench.java
echo "== CLI (maliang localize; engine time = its ms/frame x frames)"
cli_best=
for r in $(seq "$runs"); do
  line=$(build/maliang localize "$d/big.tif" -o "$d/cli.csv" --offset 100 | head -1)
  msf=$(grep -oE '[0-9.]+ ms/frame' <<<"$line" | cut -d' ' -f1)
  s=$(awk -v m="$msf" 'BEGIN { printf "%.3f", m * 500 / 1000 }')
  echo "cli run $r: $s s engine ($line)"
  if [ -z "$cli_best" ] || awk -v a="$s" -v b="$cli_best" 'BEGIN { exit !(a < b) }'; then cli_best=$s; fi
done
echo "== plugin (in-memory ImagePlus, MaLiangPlugin.localizeStack)"
out=$(java -Xmx3g -cp "$classes:build/imagej/MaLiang_.jar:$IJ_JAR:$JNA_JAR" org.maliang.test.OverheadBench "$d/big.tif" "$runs")
echo "$out"
pb=$(grep PLUGIN-BEST <<<"$out" | awk '{print $2}')
awk -v p="$pb" -v c="$cli_best" 'BEGIN { printf "OVERHEAD: plugin %.3f s vs CLI engine %.3f s: %+.1f%%\n", p, c, (p / c - 1) * 100 }'
