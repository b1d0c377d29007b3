#!/usr/bin/env bash
# Runs a command with CUDA available: on the NVIDIA driver where one is installed, else on this directory's emulator
# (built when missing or older than its source), through LD_LIBRARY_PATH and CUDA_PATH, with its own kernel cache.
#   with-cuda.sh CMD [ARGS...]    run CMD
#   with-cuda.sh --real-driver    exit 0 when an NVIDIA driver (libcuda.so.1) is installed, else 1
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
real_driver() { grep -q "libcuda.so.1 " <<<"$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null )"; }   # not piped: pipefail + SIGPIPE
if [ "${1:-}" = --real-driver ]; then real_driver; exit; fi
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...] | --real-driver" >&2; exit 2; }
real_driver && exec "$@"
emu=$root/build/cuda-emulator
if [ ! -f "$emu/lib64/libcuda.so.1" ] || [ "$root/tests/cuda-emulator/mlcudaemu.c" -nt "$emu/lib64/libmlcudaemu.so" ]; then
  "$root/tests/cuda-emulator/build.sh" >&2
fi
export LD_LIBRARY_PATH="$emu/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" CUDA_PATH="$emu" XDG_CACHE_HOME="$root/out/test/cuda-emulator-cache"
exec "$@"
