#!/usr/bin/env bash
# Density sweep: simulated stacks at 0.5 to 8 emitters per square micrometre (per frame), emitters anywhere in the frame
# (edge emitters included), localized in the same run with
#   before = --drop-edge --reject-overlapping --min-snr 0 --no-noise-clip --single-emitter --spread-threshold
#            (the paper's pipeline: edge candidates dropped, overlapping ones rejected, every fit kept),
#   single = --single-emitter --spread-threshold (the defaults before the multi-emitter stage: neighbour refit, spread test),
#   now    = today's defaults (camera-noise detection, joint fits of close emitters, residual additions by likelihood ratio),
# scored against the ground truth within 100 nm. frames/s and fits/s (localizations per second) come from the engine's
# own ms/frame (both cores, process start excluded).
# Usage: bench/density/sweep.sh [FRAMES] [DENSITIES...]   (make build first). MALIANG=path/to/maliang picks the CLI
# (default build/maliang); BASE=path/to/an/older/maliang adds its default run as a row per density.
set -euo pipefail
cd "$(dirname "$0")/../.."
ML=${MALIANG:-build/maliang}
FRAMES=${1:-200}
shift || true
DENSITIES=${*:-0.5 1 2 4 6 8}
OUT=${OUT:-out/bench/density}
mkdir -p "$OUT"
[ -x "$ML" ] || { echo "sweep.sh: $ML not found; run make build" >&2; exit 2; }

score() {   # LOCS TRUTH -> "recall precision jaccard rmse_nm locs"
    "$ML" compare "$1" "$2" --pixel-size 100 --radius-nm 100 | sed -E \
      's/^recall ([0-9.]+) \(([0-9]+)\/([0-9]+)\), precision ([0-9.]+) \(([0-9]+)\/([0-9]+)\), RMSE x ([0-9.]+) nm, y ([0-9.]+) nm.*Jaccard ([0-9.]+).*/\1 \4 \9 \7 \8 \6/' |
      awk '{ printf "%s %s %s %.1f %d", $1, $2, $3, sqrt(($4 * $4 + $5 * $5) / 2), $6 }'
}

printf '%-8s %-7s %7s %7s %8s %7s %8s %9s %9s %10s\n' "per um2" "run" "truths" "locs" "recall" "prec." "Jaccard" "RMSE (nm)" "frames/s" "fits/s"
for d in $DENSITIES; do
    stack="$OUT/d$d.tif" truth="$OUT/d$d-truth.csv"
    # A 5% on-fraction with one-frame blinks: d / 0.05 emitters per um2 in the sample, d of them on in a frame, a new
    # random subset every frame; 64 x 64 px of 100 nm (41 um2), 1500 photons, 10 background photons/px, sigma 1.3 px.
    "$ML" simulate "$stack" --truth "$truth" --width 64 --height 64 --frames "$FRAMES" --pixel-size 100 \
        --density "$(awk -v d="$d" 'BEGIN { print d / 0.05 }')" --on-fraction 0.05 --on-frames 1 --edge-margin 0 \
        --photons 1500 --background 10 --psf-sigma 1.3 --offset 100 --seed "$(awk -v d="$d" 'BEGIN { print int(d * 100) }')" > /dev/null
    truths=$(($(wc -l < "$truth") - 1))
    run() {   # NAME CLI ARGS...
        local name=$1 cli=$2; shift 2
        local summary ms
        summary=$("$cli" localize "$stack" -o "$OUT/d$d-$name.csv" --offset 100 --pixel-size 100 --psf-sigma 1.3 --backend cpu "$@" | head -1)
        ms=$(grep -oE '[0-9.]+ ms/frame' <<< "$summary" | grep -oE '^[0-9.]+')
        read -r rec prec jac rmse locs <<< "$(score "$OUT/d$d-$name.csv" "$truth")"
        printf '%-8s %-7s %7d %7d %8s %7s %8s %9s %9.0f %10.0f\n' "$d" "$name" "$truths" "$locs" "$rec" "$prec" "$jac" "$rmse" \
            "$(awk -v m="$ms" 'BEGIN { print 1000 / m }')" "$(awk -v m="$ms" -v l="$locs" -v f="$FRAMES" 'BEGIN { print l / (f * m / 1000) }')"
    }
    run before "$ML" --drop-edge --reject-overlapping --min-snr 0 --no-noise-clip --single-emitter --spread-threshold
    run single "$ML" --single-emitter --spread-threshold
    run now "$ML"
    if [ -n "${BASE:-}" ]; then run base "$BASE"; fi
done
