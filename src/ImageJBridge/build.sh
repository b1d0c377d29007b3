#!/usr/bin/env bash
# Builds build/imagej/MaLiang_.jar: plugins.config, the org.maliang classes (javac --release 8, against ImageJ 1.x and
# JNA) and libmaliang.so at JNA's resource path linux-x86-64/, so the one jar dropped into Fiji.app/plugins works.
# Needs build/native/libmaliang.so (make native). Override jars with IJ_JAR=... JNA_JAR=...
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
IJ_JAR="${IJ_JAR:-/usr/share/java/ij.jar}"
JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
lib=build/native/libmaliang.so
out=build/imagej
for f in "$IJ_JAR" "$JNA_JAR"; do
  [ -f "$f" ] || { echo "build.sh: $f is missing (apt-get install imagej libjna-java, or set IJ_JAR / JNA_JAR)" >&2; exit 1; }
done
[ -f "$lib" ] || { echo "build.sh: $lib is missing: run 'make native' first" >&2; exit 1; }
command -v javac >/dev/null || { echo "build.sh: javac not found (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
rm -rf "$out/classes"
mkdir -p "$out/classes/linux-x86-64"
javac --release 8 -Xlint:-options -encoding UTF-8 -cp "$IJ_JAR:$JNA_JAR" -d "$out/classes" \
  $(find src/ImageJBridge/src -name '*.java' | sort)
cp src/ImageJBridge/plugins.config "$out/classes/"
cp "$lib" "$out/classes/linux-x86-64/libmaliang.so"
rm -f "$out/MaLiang_.jar"
(cd "$out/classes" && jar cf ../MaLiang_.jar plugins.config org linux-x86-64)
echo "built $out/MaLiang_.jar ($(du -h "$out/MaLiang_.jar" | cut -f1))"
