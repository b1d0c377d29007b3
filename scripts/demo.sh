#!/usr/bin/env bash
# make demo: simulate a small blinking-filament stack, localize it, render it, compare with the ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/demo
mkdir -p "$out"
echo "== simulating 300 frames of 128x128 px (blinking emitters on filaments, EMCCD-free sCMOS-like camera, offset 100 ADU)"
build/maliang simulate "$out/stack.tif" --truth "$out/truth.csv" --width 128 --height 128 --frames 300 \
  --pattern filaments --emitters 3000 --emitters-per-frame 15 --photons 1500 --background 10 --offset 100 --seed 7
echo "== localizing"
build/maliang localize "$out/stack.tif" -o "$out/locs.csv" --offset 100 --pixel-size 100 --psf-sigma 1.3 \
  --render "$out/render.png" --magnification 8
echo "== comparing with the ground truth"
build/maliang compare "$out/locs.csv" "$out/truth.csv" --radius-nm 100
echo "outputs: $out/locs.csv (localizations), $out/render.png (super-resolution image), $out/truth.csv (ground truth)"
