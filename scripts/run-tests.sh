#!/usr/bin/env bash
# Runs every test suite (NUnit, pytest, Java) and closes with one line: "Tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p out/test
passed=0; failed=0; rc=0

add() { passed=$((passed + $1)); failed=$((failed + $2)); }

# NUnit, detailed console log (so a skipped test's reason is in the log). The run ends with "Total tests: T",
# "Passed: P", "Failed: F", "Skipped: S" lines; a skipped test is listed with its reason under it.
# nunit LABEL LOG PROJECT [dotnet test options...]: runs (behind the command in the runner array, if any), prints
# failures, skip reasons and one count line, adds the counts.
runner=()
nunit() {
  local label=$1 log=$2 proj=$3; shift 3
  "${runner[@]}" dotnet test "$proj" -c Release --no-build -nologo --logger "console;verbosity=detailed" "$@" > "$log" 2>&1
  grep -E "^\s+Failed [A-Za-z]" -A8 "$log" | head -80 || true
  local skips t p f
  skips=$(grep -E "^\s+Skipped [A-Za-z]" -A2 "$log" | grep -vE "^\s+Skipped |Error Message:|^--" | sed 's/^ *//' | sort | uniq -c)
  [ -z "$skips" ] || printf 'skipped (count, reason):\n%s\n' "$skips"
  t=$(grep -E "^Total tests: [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+")
  p=$(grep -E "^\s+Passed: [0-9]+$" "$log" | tail -1 | grep -oE "[0-9]+")
  f=$(grep -E "^\s+Failed: [0-9]+$" "$log" | tail -1 | grep -oE "[0-9]+")
  if [ -z "$t" ]; then echo "run-tests: $label produced no summary (see $log)"; tail -20 "$log"; add 0 1; rc=1; return; fi
  p=${p:-0}; f=${f:-0}
  echo "$label: $t tests, $p passed, $f failed"
  add "$p" "$f"; [ "$f" -eq 0 ] || rc=1
}

for proj in tests/*.Tests/*.csproj; do
  [ -f "$proj" ] || continue
  nunit "$(basename "$proj" .csproj)" "out/test/$(basename "$proj" .csproj).log" "$proj"
done

# The "Cuda" category again, on tests/cuda-emulator (libcuda + NVRTC stand-ins that run the CUDA kernel source on the
# CPU, with deferred streams and fault injection), so the CUDA host code is exercised on machines without an NVIDIA GPU.
# Where a real NVIDIA driver is installed the first pass already ran these on the GPU and this pass is left out.
if [ -f tests/Engine.Tests/Engine.Tests.csproj ] && ! tests/cuda-emulator/with-cuda.sh --real-driver; then
  if tests/cuda-emulator/build.sh > out/test/cuda-emulator-build.log 2>&1; then
    runner=(tests/cuda-emulator/with-cuda.sh)
    nunit "Engine.Tests, category Cuda on the CUDA emulator (CPU, not a GPU)" out/test/Engine.Tests.cuda-emulator.log \
          tests/Engine.Tests/Engine.Tests.csproj --filter "TestCategory=Cuda"
    runner=()
  else
    echo "run-tests: building tests/cuda-emulator failed (see out/test/cuda-emulator-build.log)"; tail -20 out/test/cuda-emulator-build.log; add 0 1; rc=1
  fi
fi

# pytest
if compgen -G "tests/python/test_*.py" >/dev/null; then
  log=out/test/pytest.log
  /usr/bin/python3 -m pytest -q -rs tests/python 2>&1 | tee "$log" | tail -25
  line=$(grep -E "[0-9]+ (passed|failed)" "$log" | tail -1)
  p=$(grep -oE "[0-9]+ passed" <<<"$line" | grep -oE "[0-9]+" || echo 0)
  f=$(grep -oE "[0-9]+ (failed|error|errors)" <<<"$line" | awk '{s+=$1} END {print s+0}')
  [ -n "$p" ] || p=0; [ -n "$f" ] || f=0
  if [ -z "$line" ]; then echo "run-tests: pytest produced no summary"; f=1; fi
  add "$p" "$f"; [ "$f" -eq 0 ] || rc=1
fi

# Java (JUnit 4 and ImageJ batch checks), when the ImageJ bridge is built
if [ -x tests/imagej/run.sh ]; then
  log=out/test/java.log
  tests/imagej/run.sh 2>&1 | tee "$log" | tail -25
  p=$(grep -oE "^JAVA-TESTS: [0-9]+ passed, [0-9]+ failed" "$log" | tail -1 | sed -E 's/.* ([0-9]+) passed.*/\1/')
  f=$(grep -oE "^JAVA-TESTS: [0-9]+ passed, [0-9]+ failed" "$log" | tail -1 | sed -E 's/.* ([0-9]+) failed/\1/')
  if [ -z "$p" ]; then echo "run-tests: Java tests produced no summary"; p=0; f=1; fi
  add "$p" "$f"; [ "$f" -eq 0 ] || rc=1
fi

echo "Tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
