#!/usr/bin/env bash
# 3D astigmatism, end to end with the CLI, for the README: a simulated bead stack calibrated by calibrate-z (plot), an
# astigmatic filament stack localized with that calibration (z-coloured render with its colour bar, x-z side view), and
# the per-z-bin precision of isolated emitters through the whole pipeline (zbins.py). Figures go to docs/img/.
# usage: bench/3d/figures.sh [PHOTONS]   (after make build)
set -euo pipefail
cd "$(dirname "$0")/../.."
m=build/maliang; d=out/bench3d; img=docs/img; photons=${1:-2000}
mkdir -p "$d" "$img"
cp tests/data/z_calibration_example.yaml "$d/true.yaml"   # the tests' calibration (unequal A, B terms)
$m simulate "$d/beads.tif" --truth "$d/beads_truth.csv" --calibration "$d/true.yaml" --bead-z-step-nm 10 --bead-z-first-nm -600 \
  --frames 121 --width 64 --height 64 --emitters 4 --photons 20000 --background 20 --min-separation 20 --edge-margin 10 --seed 9
$m calibrate-z "$d/beads.tif" -o "$d/calib.yaml" --z-step-nm 10 --z-first-nm -600 --offset 100 --plot "$img/3d_calibration.png"
$m simulate "$d/fil.tif" --truth "$d/fil_truth.csv" --calibration "$d/true.yaml" --pattern filaments --frames 2000 --width 64 \
  --height 64 --emitters 600 --emitters-per-frame 3 --photons "$photons" --z-range-nm=-400,400 --seed 4
$m localize "$d/fil.tif" -o "$d/fil.csv" --calibration "$d/calib.yaml" --offset 100
$m render "$d/fil.csv" -o "$img/3d_render_z.png" --color-by z --color-range=-400,400 --magnification 8
$m render "$d/fil.csv" -o "$img/3d_side_view.png" --side-view 0,2400,6400,4000 --z-range-nm=-500,500 --magnification 8
$m simulate "$d/iso.tif" --truth "$d/iso_truth.csv" --calibration "$d/true.yaml" --frames 1000 --width 128 --height 128 \
  --pattern grid --emitters 25 --on-fraction 0.4 --z-per-frame --photons "$photons" --seed 5
# isolated emitters (a 5 x 5 grid, 25 px apart, z drawn anew per frame): with the true calibration, then with calibrate-z's
$m localize "$d/iso.tif" -o "$d/iso.csv" --calibration "$d/true.yaml" --offset 100
/usr/bin/python3 bench/3d/zbins.py "$d/iso.csv" "$d/iso_truth.csv"
$m localize "$d/iso.tif" -o "$d/iso_fitted.csv" --calibration "$d/calib.yaml" --offset 100
/usr/bin/python3 bench/3d/zbins.py "$d/iso_fitted.csv" "$d/iso_truth.csv"
