#!/usr/bin/env bash
# Installs what make dist and its tests need beyond scripts/setup.sh, only what is missing. Idempotent.
#   to build: clang + lld (NativeAOT link for linux-arm64, the macOS shim), the arm64 glibc (Debian's cross libc, the
#             sysroot), mingw-w64 (the Windows shim and test program), llvm (objdump/nm to check the builds)
#   to run:   qemu-user (the linux-arm64 engine) and wine64 (the Windows engine). These two are optional: where they
#             cannot be installed, the tests that need them skip and say why.
set -uo pipefail
build=(clang lld llvm gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-mingw-w64-x86-64)
run=(qemu-user wine64)
missing() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done; }
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
install() {
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
need=($(missing "${build[@]}"))
if ((${#need[@]})); then
  echo "setup-dist: installing ${need[*]}"
  install "${need[@]}" || { echo "setup-dist: could not install ${need[*]}: make dist cannot build the other platforms" >&2; exit 1; }
fi
for p in $(missing "${run[@]}"); do
  echo "setup-dist: installing $p"
  install "$p" || echo "setup-dist: could not install $p: the tests that run engines under it will skip" >&2
done
exit 0
