#!/usr/bin/env bash
# The ILGPU probe (DESIGN.md, "GPU"): runs the fit step on ILGPU's CPU accelerator and on OpenCL (PoCL), then tries a
# NativeAOT publish and runs what it produced. Usage: bench/ilgpu-probe/run.sh [ROIS=200000]
set -uo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "== JIT build"
dotnet build -c Release -nologo -clp:ErrorsOnly -o "$tmp/jit" && dotnet "$tmp/jit/IlgpuProbe.dll" "${1:-200000}"
echo "== NativeAOT publish (warnings as printed)"
dotnet publish -c Release -nologo -p:PublishAot=true -o "$tmp/aot" 2>&1 | grep -oE "(warning|error) [A-Z]+[0-9]+: .*" | sed 's/ \[.*//' | sort | uniq -c | sort -rn | head -20
echo "== running the NativeAOT binary"
if [ -x "$tmp/aot/IlgpuProbe" ]; then "$tmp/aot/IlgpuProbe" "${1:-200000}" 2>&1 | head -20 || echo "(the NativeAOT binary failed)"; else echo "no binary was produced"; fi
