#!/usr/bin/env bash
# make dist: the engine for every platform (docs/DESIGN.md, Platforms), built on this Linux x86-64 machine, then the
# Fiji jar that carries all of them and one Python wheel per platform. Outputs in build/dist:
#   engines/<JNA prefix>/   linux-x86-64 and linux-aarch64: libmaliang.so (NativeAOT);
#                           win32-x86-64, darwin-aarch64, darwin-x86-64: the shim (maliang.dll, libmaliang.dylib) and
#                           maliang-engine/ (the trimmed self-contained .NET engine it starts through hostfxr)
#   engines/linux-x86-64-hosted/  the hosted route built for this machine, so the tests can run it here
#   MaLiang_.jar            the Fiji plugin with all five engines
#   wheels/*.whl            maliang-<version>-py3-none-<platform tag>.whl, five of them
#   sizes.txt               what each platform adds (files, and compressed in the jar)
# Needs build/native/libmaliang.so (make native). Installs its tools with scripts/setup-dist.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-dist.sh
out=build/dist
eng=$out/engines
obj=$out/obj
# The SDK asks for its own 9.0 patch of the runtime and ILCompiler packs (9.0.20), served here for linux-x64 only;
# 9.0.23 is served for every target, so the other platforms name it.
packs=9.0.23
publish() { # RID OUTDIR [msbuild properties...]: each RID restores and builds in its own artifacts folder, so the
  local rid=$1 dir=$2; shift 2  # main build's obj/ (linux-x64) is never touched
  dotnet publish src/Native/MaLiang.Native.csproj -c Release -nologo -clp:ErrorsOnly -r "$rid" \
    -p:RuntimeFrameworkVersion=$packs --artifacts-path "$obj/$rid" -o "$dir" "$@"
}

[ -f build/native/libmaliang.so ] || { echo "dist: build/native/libmaliang.so is missing: run make native" >&2; exit 1; }
rm -rf "$eng" "$out/wheels" "$out/MaLiang_.jar"
mkdir -p "$eng/linux-x86-64" "$eng/linux-aarch64"
cp build/native/libmaliang.so "$eng/linux-x86-64/"

# linux-arm64: NativeAOT cross-compiled; clang links against Debian's arm64 glibc (libc6-dev-arm64-cross)
publish linux-arm64 "$obj/linux-arm64/publish"
cp "$obj/linux-arm64/publish/libmaliang.so" "$eng/linux-aarch64/"

shim_src=src/Native/shim
mkdir -p "$obj/shim"
python3 $shim_src/gen_exports.py src/Native/maliang.h src/Native/*Exports.cs > "$obj/shim/exports.inc"   # every exports file
shim_flags=(-O2 -Wall -Wextra -Werror -I src/Native -I "$obj/shim")

# hosted RID PREFIX: the trimmed self-contained engine, less what a hosted library never uses (the app host, the
# debugger and dump tools, the alternative GCs, symbols) and the deps.json (without it hostpolicy takes every assembly
# in the folder, so the pruned files are not looked for)
hosted() {
  local rid=$1 dir=$eng/$2 pub=$obj/$1/publish
  rm -rf "$pub"
  publish "$rid" "$pub" -p:MaLiangHosted=true
  mkdir -p "$dir/maliang-engine"
  find "$pub" -maxdepth 1 -type f \
    ! -name 'libmaliang' ! -name 'libmaliang.exe' ! -name 'createdump*' ! -name '*.pdb' ! -name '*.dbg' \
    ! -name '*mscordaccore*' ! -name '*mscordbi*' ! -name '*clrgc*' ! -name 'Microsoft.DiaSymReader*' \
    ! -name 'msquic.dll' ! -name 'clretwrc.dll' ! -name '*coreclrtraceptprovider*' ! -name '*Net.Security.Native*' \
    ! -name '*.deps.json' -exec cp {} "$dir/maliang-engine/" \;
}

hosted win-x64 win32-x86-64
x86_64-w64-mingw32-gcc "${shim_flags[@]}" -shared -static-libgcc -o "$eng/win32-x86-64/maliang.dll" $shim_src/shim.c

# macOS: clang and lld link Mach-O without Apple's SDK: freestanding, against libSystem's stub (shim/libSystem.tbd);
# lld signs ad hoc, as Apple silicon requires. 12.0 is the oldest macOS .NET 9's own libraries load on (their minos).
for arch in arm64:darwin-aarch64:osx-arm64 x86_64:darwin-x86-64:osx-x64; do
  IFS=: read -r cpu prefix rid <<<"$arch"
  hosted "$rid" "$prefix"
  clang --target=$cpu-apple-macos12 "${shim_flags[@]}" -ffreestanding -fno-stack-protector -fPIC -shared -nostdlib \
    -fuse-ld=lld -Wl,-install_name,@rpath/libmaliang.dylib -o "$eng/$prefix/libmaliang.dylib" \
    $shim_src/shim.c $shim_src/libSystem.tbd
done

# The same route for this machine (tests only: proves the shim and hostfxr on a platform that can run here)
hosted linux-x64 linux-x86-64-hosted
gcc "${shim_flags[@]}" -shared -fPIC -o "$eng/linux-x86-64-hosted/libmaliang.so" $shim_src/shim.c

platforms=(linux-x86-64 linux-aarch64 win32-x86-64 darwin-aarch64 darwin-x86-64)
src/ImageJBridge/build.sh "$eng" "$out/MaLiang_.jar" "${platforms[@]}"
/usr/bin/python3 scripts/wheels.py "$eng" "$out/wheels" "${platforms[@]}"
python3 - "$eng" "$out/MaLiang_.jar" "${platforms[@]}" > "$out/sizes.txt" <<'EOF'
import os, sys, zipfile
eng, jar, platforms = sys.argv[1], sys.argv[2], sys.argv[3:]
z = zipfile.ZipFile(jar)
print(f"{'platform':16} {'files':>6} {'MB':>6} {'MB in jar':>10}")
for p in platforms:
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(eng, p)) for f in fs]
    raw = sum(os.path.getsize(f) for f in files)
    packed = sum(i.compress_size for i in z.infolist() if i.filename.startswith(p + "/"))
    print(f"{p:16} {len(files):6} {raw / 1e6:6.1f} {packed / 1e6:10.1f}")
print(f"MaLiang_.jar {os.path.getsize(jar) / 1e6:.1f} MB")
EOF
cat "$out/sizes.txt"
ls -la "$out/wheels"
