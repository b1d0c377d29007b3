#!/usr/bin/env bash
# Builds the Fiji/ImageJ plugin jar: plugins.config, the org.maliang classes (javac --release 8, against ImageJ 1.x and
# JNA) and the engine at JNA's resource path, so the one jar dropped into Fiji.app/plugins works.
#   build.sh                               build/imagej/MaLiang_.jar with build/native/libmaliang.so as linux-x86-64/
#   build.sh ENGINES OUT.jar PREFIX...     the jar with ENGINES/PREFIX/ for each JNA prefix (make dist: all platforms)
# Beside the engines the jar lists its platforms (maliang-platforms.txt), and each platform whose engine is more than
# one file (the hosted .NET engine) lists its files (PREFIX/maliang-files.txt), so EngineFiles.java can unpack the folder.
# Override jars with IJ_JAR=... JNA_JAR=...
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
IJ_JAR="${IJ_JAR:-/usr/share/java/ij.jar}"
JNA_JAR="${JNA_JAR:-/usr/share/java/jna.jar}"
out=build/imagej
jar_out=$out/MaLiang_.jar
for f in "$IJ_JAR" "$JNA_JAR"; do
  [ -f "$f" ] || { echo "build.sh: $f is missing (apt-get install imagej libjna-java, or set IJ_JAR / JNA_JAR)" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "build.sh: javac not found (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
classes=$out/classes
if (($# == 0)); then
  lib=build/native/libmaliang.so
  [ -f "$lib" ] || { echo "build.sh: $lib is missing: run 'make native' first" >&2; exit 1; }
  engines=$out/engines
  rm -rf "$engines" && mkdir -p "$engines/linux-x86-64" && cp "$lib" "$engines/linux-x86-64/"
  platforms=(linux-x86-64)
else
  engines=$1 jar_out=$2; shift 2
  platforms=("$@")
  classes=$(dirname "$jar_out")/classes
fi
rm -rf "$classes"
mkdir -p "$classes"
javac --release 8 -Xlint:-options -encoding UTF-8 -cp "$IJ_JAR:$JNA_JAR" -d "$classes" \
  $(find src/ImageJBridge/src -name '*.java' | sort)
cp src/ImageJBridge/plugins.config "$classes/"
printf '%s\n' "${platforms[@]}" > "$classes/maliang-platforms.txt"
for p in "${platforms[@]}"; do
  [ -d "$engines/$p" ] || { echo "build.sh: $engines/$p is missing" >&2; exit 1; }
  cp -r "$engines/$p" "$classes/"
  if [ -d "$classes/$p/maliang-engine" ]; then  # "size path" per file, so a cached copy can be checked
    (cd "$classes/$p" && find . -type f ! -name maliang-files.txt -printf '%s %P\n' | sort -k2 > maliang-files.txt)
  fi
done
rm -f "$jar_out"
(cd "$classes" && jar cf "$root/$jar_out" plugins.config maliang-platforms.txt org "${platforms[@]}")
echo "built $jar_out ($(du -h "$jar_out" | cut -f1): ${platforms[*]})"
