#!/usr/bin/env bash
# Builds the CUDA driver + NVRTC stand-in (mlcudaemu.c) into build/cuda-emulator/lib64 as libcuda.so.1 and libnvrtc.so
# (one library, two names). Use it through tests/cuda-emulator/with-cuda.sh <command>.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/cuda-emulator/lib64
mkdir -p "$out"
cc -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -Wl,-soname,libcuda.so.1 -o "$out/libmlcudaemu.so.tmp" tests/cuda-emulator/mlcudaemu.c -ldl -lpthread
mv "$out/libmlcudaemu.so.tmp" "$out/libmlcudaemu.so"
ln -sf libmlcudaemu.so "$out/libcuda.so.1"
ln -sf libmlcudaemu.so "$out/libnvrtc.so"
echo "built $out/libcuda.so.1 and $out/libnvrtc.so (CUDA emulator, CPU)"
