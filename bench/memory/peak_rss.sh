#!/usr/bin/env bash
# Peak resident memory of `maliang localize` on a large stack: a 512x512x500 simulated TIFF (262 MB) given N times
# (read as one stack of N x 500 frames). Usage: bench/memory/peak_rss.sh [N=8]  (needs make build and GNU time)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-8}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
build/maliang simulate "$tmp/s.tif" --truth "$tmp/t.csv" --width 512 --height 512 --frames 500 --emitters 100 \
  --emitters-per-frame 100 --on-fraction 1 --seed 9 >/dev/null
files=(); for _ in $(seq "$n"); do files+=("$tmp/s.tif"); done
/usr/bin/time -f "peak RSS %M KiB, wall %e s" build/maliang localize "${files[@]}" -o "$tmp/l.csv" --offset 100
