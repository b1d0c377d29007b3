#!/usr/bin/env bash
# MaLiang on a GPU machine without a .NET SDK: runs the AOT-published CLI (build/aot/maliang, `make aot` on a build
# machine) and writes everything under $OUT (default ./gpu-out):
#   devices.txt                  maliang devices
#   equal_<filter>_<mode>.*      the CUDA tests' pipeline checks through the CLI: the same simulated stack localized with
#                                --backend cpu and --backend $BACKEND, CSVs compared (same count, same frames, x/y within
#                                1e-4 px), for the maliang and wavelet filters, with and without --keep-overlapping
#   crowded_4_per_um2.*          a crowded stack (4 emitters per um2, the density sweep's kind) cpu vs $BACKEND, and each
#                                against the truth: the multi-emitter stage's joint fits run in device batches
#   bench_<backend>_group_fit.json  maliang bench --group-fit: the joint-fit kernel against the CPU's batches
#   large_2048.*                 the 2048x2048 sCMOS stack with 1000 molecules per frame through the whole pipeline
#                                (cpu and $BACKEND, compared too)
#   python_cuda.json             bench/gpu/check_python_cuda.py through the Python module (needs build/native and numpy)
#   bench_<backend>_<case>.json  maliang bench --json at 512x512/100 molecules and 2048x2048/1000 molecules (sCMOS)
#   summary.txt                  one line per check, PASS/FAIL; the exit status is the number of failed checks
# Environment: MALIANG (the CLI, default build/aot/maliang), OUT, BACKEND (cuda|opencl, default cuda),
#              FRAMES_2048 (frames of the large stack, default 64), PYTHON (default python3; awk is used without it),
#              BENCH_ARGS (extra options for every bench, e.g. "--frames 16 --fits 20000" for a quick try; when set, the
#              2-million-fit bench is skipped).
set -u
cd "$(dirname "$0")/../.."
MALIANG=${MALIANG:-build/aot/maliang}
OUT=${OUT:-$PWD/gpu-out}
BACKEND=${BACKEND:-cuda}
FRAMES_2048=${FRAMES_2048:-64}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/maliang-gpu.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

log() { echo "$*" | tee -a "$SUMMARY"; }
pass() { log "PASS $*"; }
fail() { log "FAIL $*"; FAILED=$((FAILED + 1)); }

if [ ! -x "$MALIANG" ]; then
    echo "no executable $MALIANG: publish it with 'make aot' (dotnet publish src/Cli -c Release -r linux-x64 -p:PublishAot=true -o build/aot) and copy build/aot here" >&2
    exit 2
fi

{
    echo "date: $(date -u +%FT%TZ)"; echo "host: $(hostname)"; uname -a
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$MALIANG" --version
} > "$OUT/machine.txt" 2>&1

# ---- devices ----
if "$MALIANG" devices > "$OUT/devices.txt" 2>&1; then pass "maliang devices"; else fail "maliang devices (see devices.txt)"; fi
cat "$OUT/devices.txt"
if ! grep -q "^$BACKEND [0-9]" "$OUT/devices.txt"; then
    fail "no $BACKEND device listed: the remaining checks would fail; see devices.txt"
    exit "$FAILED"
fi

# compare A.csv B.csv PIXEL_NM -> prints a line; exit 0 when same count, same frames and |dx|,|dy| <= 1e-4 px (+ float rounding of nm)
compare() {
    if command -v "$PYTHON" >/dev/null 2>&1; then
        "$PYTHON" - "$1" "$2" "$3" <<'PY'
import csv, sys
a, b, px = sys.argv[1], sys.argv[2], float(sys.argv[3])
def load(p):
    with open(p, newline="") as f:
        r = csv.reader(f); h = [c.strip('"') for c in next(r)]
        i, j, k = h.index("frame"), h.index("x [nm]"), h.index("y [nm]")
        return [(int(float(row[i])), float(row[j]) / px, float(row[k]) / px) for row in r if row]
A, B = load(a), load(b)
if len(A) != len(B):
    print(f"count differs: {len(A)} vs {len(B)}"); sys.exit(1)
worst, bad = 0.0, 0
for (fa, xa, ya), (fb, xb, yb) in zip(A, B):
    # tolerance: 1e-4 px plus one float32 ulp of the CSV's nm value
    tol = 1e-4 + 2 * 6e-8 * max(abs(xa), abs(ya), 1.0)
    d = max(abs(xa - xb), abs(ya - yb))
    worst = max(worst, d)
    if fa != fb or d > tol: bad += 1
print(f"{len(A)} localizations, max |dx|,|dy| = {worst:.3g} px, {bad} beyond 1e-4 px or in another frame")
sys.exit(1 if bad else 0)
PY
    else
        awk -F, -v px="$3" 'NR==FNR { if (FNR>1) { f[FNR]=$2; x[FNR]=$3/px; y[FNR]=$4/px; n=FNR } next }
            FNR>1 { m=FNR; d=$3/px-x[FNR]; if (d<0) d=-d; e=$4/px-y[FNR]; if (e<0) e=-e; if (e>d) d=e; if (d>w) w=d;
                    if ($2!=f[FNR] || d>1e-4+1.2e-7*($3/px+1)) bad++ }
            END { printf "%d vs %d localizations, max |dx|,|dy| = %.3g px, %d beyond 1e-4 px\n", n-1, m-1, w, bad; exit (n!=m || bad) }' "$1" "$2"
    fi
}

# localize_pair NAME STACK PIXEL_NM [localize options...]: cpu vs $BACKEND on one stack
localize_pair() {
    local name=$1 stack=$2 pxnm=$3; shift 3
    local ok=1
    for b in cpu "$BACKEND"; do
        if ! "$MALIANG" localize "$stack" -o "$OUT/${name}_$b.csv" --pixel-size "$pxnm" --offset 100 --backend "$b" "$@" \
             > "$OUT/${name}_$b.log" 2>&1; then
            fail "$name: localize --backend $b (see ${name}_$b.log)"; ok=0
        fi
    done
    [ $ok = 1 ] || return
    if compare "$OUT/${name}_cpu.csv" "$OUT/${name}_$BACKEND.csv" "$pxnm" > "$OUT/${name}_compare.txt" 2>&1; then
        pass "$name: cpu = $BACKEND ($(cat "$OUT/${name}_compare.txt"))"
    else
        fail "$name: cpu != $BACKEND ($(cat "$OUT/${name}_compare.txt"))"
    fi
    # the summaries' counts (candidates, drops, failed fits) must agree too
    local sc sg
    sc=$(grep -o "[0-9]* localizations.*left the ROI)" "$OUT/${name}_cpu.log" | head -1)
    sg=$(grep -o "[0-9]* localizations.*left the ROI)" "$OUT/${name}_$BACKEND.log" | head -1)
    if [ -n "$sc" ] && [ "$sc" = "$sg" ]; then pass "$name: same counts ($sc)"; else fail "$name: counts differ: cpu '$sc' vs $BACKEND '$sg'"; fi
}

# ---- equality of the whole pipeline, cpu vs GPU (what tests/Engine.Tests/Pipeline/GpuPipelineTests.cs checks on PoCL) ----
"$MALIANG" simulate "$TMP/small.tif" --truth "$TMP/small_truth.csv" --width 256 --height 256 --frames 200 \
    --emitters-per-frame 60 --photons 1500 --background 10 --offset 100 --seed 7 > "$OUT/simulate_small.log" 2>&1 \
    || fail "simulate the 256x256 stack (see simulate_small.log)"
"$MALIANG" simulate "$TMP/dense.tif" --truth "$TMP/dense_truth.csv" --width 256 --height 256 --frames 100 \
    --emitters-per-frame 300 --photons 1500 --background 10 --offset 100 --seed 8 > "$OUT/simulate_dense.log" 2>&1 \
    || fail "simulate the dense 256x256 stack (see simulate_dense.log)"
for filter in maliang wavelet; do
    localize_pair "equal_${filter}_reject" "$TMP/small.tif" 100 --filter "$filter"
    localize_pair "equal_${filter}_overlapping" "$TMP/dense.tif" 100 --filter "$filter" --keep-overlapping
done

# ---- crowded frames (the density sweep's kind, 4 per um2): the multi-emitter stage's joint fits in device batches ----
"$MALIANG" simulate "$TMP/crowded.tif" --truth "$TMP/crowded_truth.csv" --width 128 --height 128 --frames 40 --pixel-size 100 \
    --density 80 --on-fraction 0.05 --on-frames 1 --edge-margin 0 --photons 1500 --background 10 --psf-sigma 1.3 --offset 100 \
    --seed 400 > "$OUT/simulate_crowded.log" 2>&1 || fail "simulate the crowded stack (see simulate_crowded.log)"
localize_pair "crowded_4_per_um2" "$TMP/crowded.tif" 100 --psf-sigma 1.3
for b in cpu "$BACKEND"; do
    [ -f "$OUT/crowded_4_per_um2_$b.csv" ] && "$MALIANG" compare "$OUT/crowded_4_per_um2_$b.csv" "$TMP/crowded_truth.csv" \
        --pixel-size 100 --radius-nm 100 > "$OUT/crowded_4_per_um2_${b}_vs_truth.txt" 2>&1
done
# The joint fit alone: us per group, CPU batches against device batches (group_fit.cl's thread layout is chosen by this).
if "$MALIANG" bench --group-fit --backend "$BACKEND" --json > "$OUT/bench_${BACKEND}_group_fit.json" 2> "$OUT/bench_${BACKEND}_group_fit.err"; then
    pass "bench --group-fit ($(cat "$OUT/bench_${BACKEND}_group_fit.json"))"
else
    fail "bench --group-fit (see bench_${BACKEND}_group_fit.err)"
fi

# ---- the 2048x2048 sCMOS stack, 1000 molecules per frame, through the whole pipeline ----
"$MALIANG" simulate "$TMP/large.tif" --truth "$TMP/large_truth.csv" --width 2048 --height 2048 --frames "$FRAMES_2048" \
    --emitters-per-frame 1000 --photons 1000 --background 10 --offset 100 --photons-per-adu 0.46 --read-noise 1.6 --seed 9 \
    > "$OUT/simulate_2048.log" 2>&1 || fail "simulate the 2048x2048 stack (see simulate_2048.log)"
localize_pair "large_2048" "$TMP/large.tif" 100 --photons-per-adu 0.46
for b in cpu "$BACKEND"; do
    [ -f "$OUT/large_2048_$b.csv" ] && "$MALIANG" compare "$OUT/large_2048_$b.csv" "$TMP/large_truth.csv" > "$OUT/large_2048_${b}_vs_truth.txt" 2>&1
done
rm -f "$TMP/large.tif"

# ---- the Python module on the device (libmaliang.so from `make native`, carried as build/native) ----
NATIVE=${MALIANG_LIBRARY:-build/native/libmaliang.so}
if [ "$BACKEND" = cuda ] && [ -f "$NATIVE" ] && "$PYTHON" -c "import numpy" >/dev/null 2>&1; then
    if PYTHONPATH="src/PythonBinding${PYTHONPATH:+:$PYTHONPATH}" MALIANG_LIBRARY="$NATIVE" \
         "$PYTHON" bench/gpu/check_python_cuda.py > "$OUT/python_cuda.json" 2> "$OUT/python_cuda.err"; then
        pass "python: maliang.localize cuda = cpu, caller's context kept ($(cat "$OUT/python_cuda.json"))"
    else
        fail "python: cuda check ($(cat "$OUT/python_cuda.json" 2>/dev/null); see python_cuda.err)"
    fi
else
    log "SKIP python check: needs BACKEND=cuda, $NATIVE (carry build/native) and $PYTHON with numpy"
fi

# ---- benchmarks ----
bench() {
    local name=$1; shift
    # shellcheck disable=SC2086
    if "$MALIANG" bench --json "$@" ${BENCH_ARGS:-} > "$OUT/bench_$name.json" 2> "$OUT/bench_$name.err"; then
        pass "bench $name: $(cat "$OUT/bench_$name.json")"
    else
        fail "bench $name (see bench_$name.err)"
    fi
}
bench "cpu_512" --backend cpu
bench "${BACKEND}_512" --backend "$BACKEND"
bench "cpu_2048" --backend cpu --size 2048 --molecules 1000 --scmos
bench "${BACKEND}_2048" --backend "$BACKEND" --size 2048 --molecules 1000 --scmos
[ -z "${BENCH_ARGS:-}" ] && bench "${BACKEND}_2048_fits2M" --backend "$BACKEND" --size 2048 --molecules 1000 --scmos --fits 2000000

log "failed checks: $FAILED"
exit "$FAILED"
