#!/usr/bin/env bash
# Python.NET probe (DESIGN.md, "Packages on the design card"): can Debian's python3 load the engine through Python.NET
# when only pythonnet's NuGet half (Python.Runtime.dll) is reachable? host.py hosts .NET with ctypes and hostfxr (what
# pythonnet's clr_loader does), lets Python.Runtime install `clr`, runs the engine on a simulated stack and compares
# with maliang.localize_file (ctypes + libmaliang.so). Usage: bench/pythonnet-probe/run.sh   (needs make build)
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dotnet build bench/pythonnet-probe/PythonNetProbe.csproj -c Release -nologo -clp:ErrorsOnly -o "$tmp/bin" >/dev/null
build/maliang simulate "$tmp/sim.tif" --truth "$tmp/t.csv" --width 256 --height 256 --frames 200 --emitters-per-frame 20 \
  --offset 100 --seed 3 >/dev/null
/usr/bin/python3 bench/pythonnet-probe/host.py "$tmp/bin" "$tmp/sim.tif"
