#!/usr/bin/env bash
# Installs the Debian packages MaLiang's build and tests need, only those missing. Idempotent.
set -euo pipefail
pkgs=(
  openjdk-17-jdk-headless imagej libjna-java junit4 libbsh-java
  python3-numpy python3-pytest python3-tifffile python3-dask python3-distributed python3-h5py
  python3-pandas python3-nbclient python3-ipykernel python3-nbformat python3-matplotlib python3-yaml
  python3-setuptools python3-pip python3-wheel python3-tqdm python3-matplotlib-inline
  pocl-opencl-icd ocl-icd-libopencl1 ocl-icd-opencl-dev clinfo xvfb xauth time
  g++ zlib1g-dev
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "setup: the .NET SDK (dotnet) is required: see README" >&2; exit 1; }
