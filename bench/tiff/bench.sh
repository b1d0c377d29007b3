#!/usr/bin/env bash
# TIFF reading speed and memory: frames per second reading a 512x512x1000 uint16 stack (the simulated movie of
# `maliang simulate`, 524 MB) with the memory-mapped reader and through LibTiff.NET, and LZW / Deflate / PackBits
# copies of it (LibTiff.NET-written, horizontal predictor for LZW and Deflate, 16 rows per strip), each read in its own
# process under GNU time for the peak RSS. The files are read once before timing so every run reads from the page
# cache (decode speed, not disk speed). Then `maliang localize` end to end on the uncompressed and the Deflate file.
# Usage: bench/tiff/bench.sh [FRAMES=1000]   (needs make build, GNU time; writes ~1.5 GB under $TMPDIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dotnet build bench/tiff/TiffBench.csproj -c Release -nologo -clp:ErrorsOnly -o "$tmp/bin" >/dev/null
tb() { dotnet "$tmp/bin/TiffBench.dll" "$@"; }
build/maliang simulate "$tmp/plain.tif" --truth "$tmp/t.csv" --width 512 --height 512 --frames "$n" --emitters 300 \
  --emitters-per-frame 100 --offset 100 --seed 9 >/dev/null
for c in lzw deflate packbits; do tb write "$tmp/plain.tif" "$tmp/$c.tif" "$c"; done
echo "stack: 512x512x$n uint16; file sizes (MB):"
for f in plain lzw deflate packbits; do printf '  %-9s %8.1f\n' "$f" "$(stat -c %s "$tmp/$f.tif" | awk '{print $1/1e6}')"; done
for f in plain lzw deflate packbits; do cat "$tmp/$f.tif" >/dev/null; done
printf '%-9s %-8s %-7s %10s %12s %10s\n' file reader threads frames/s "peak RSS MB" checksum
run() { # file reader threads
  local out; out=$( { /usr/bin/time -f "rss %M" dotnet "$tmp/bin/TiffBench.dll" read "$tmp/$1.tif" "$2" "$3"; } 2>&1 ) || true
  local fps rss sum; fps=$(sed -n 's/^fps \([0-9]*\).*/\1/p' <<<"$out"); rss=$(sed -n 's/^rss \([0-9]*\)/\1/p' <<<"$out")
  sum=$(sed -n 's/.*checksum \([0-9]*\).*/\1/p' <<<"$out")
  [ -n "$fps" ] || { echo "$1 $2: FAILED: $out" | head -3; return; }
  printf '%-9s %-8s %-7s %10s %12.0f %10s\n' "$1" "$2" "$3" "$fps" "$(awk "BEGIN{print $rss/1024}")" "$sum"
}
for threads in 1 2; do
  run plain auto "$threads"; run plain libtiff "$threads"
  for c in lzw deflate packbits; do run "$c" auto "$threads"; done
done
echo "maliang localize end to end (ms/frame as it reports):"
for f in plain deflate lzw; do
  printf '  %-9s ' "$f"; build/maliang localize "$tmp/$f.tif" -o "$tmp/$f.csv" --offset 100 | grep -o '[0-9.]* ms/frame' | head -1
done
cmp -s "$tmp/plain.csv" "$tmp/deflate.csv" && cmp -s "$tmp/plain.csv" "$tmp/lzw.csv" && echo "  CSVs identical" || echo "  CSVs DIFFER"
