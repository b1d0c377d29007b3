"""make dist: every platform's engine (docs/DESIGN.md, Platforms). What can run here runs: the Windows engine under
Wine and the linux-arm64 engine under qemu-user localize the same stacks as linux-x64 through the C ABI (a small C
program, tests/platforms/mlcsv.c, built for each), and the hosted route (shim + hostfxr + .NET) runs on this machine
from Python. The macOS builds are checked for format, architecture, exports and what they link. The wheels are checked
for their tags (pip picks each for its platform and refuses the others) and their contents."""
import csv
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import BINDING, CLI, REPO_DATA, ROOT

DIST = ROOT / "build" / "dist"
ENGINES = DIST / "engines"
HEADER = ROOT / "src" / "Native" / "maliang.h"
MLCSV = ROOT / "tests" / "platforms" / "mlcsv.c"
PLATFORMS = ["linux-x86-64", "linux-aarch64", "win32-x86-64", "darwin-aarch64", "darwin-x86-64"]
HOSTED = {"win32-x86-64": ("maliang.dll", "hostfxr.dll"), "darwin-aarch64": ("libmaliang.dylib", "libhostfxr.dylib"),
          "darwin-x86-64": ("libmaliang.dylib", "libhostfxr.dylib")}
WINE = shutil.which("wine64") or next((p for p in ("/usr/lib/wine/wine64",) if os.path.exists(p)), None)
QEMU = shutil.which("qemu-aarch64")
ARM_LIBC = Path("/usr/aarch64-linux-gnu")


def exported_functions() -> set:
    """Every ml_* function maliang.h declares."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return set(re.findall(r"^(?:const )?\w+\s*\**\s*(ml_\w+)\(", text, flags=re.M))


def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def dist():
    for p in PLATFORMS:
        assert (ENGINES / p).is_dir(), f"{ENGINES / p} is missing: run `make dist`"
    return DIST


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """The real Picasso test movie and the first 60 frames of `make demo`'s stack, with their offsets."""
    d = tmp_path_factory.mktemp("stacks")
    shutil.copy(REPO_DATA / "picasso_testdata.tif", d / "picasso.tif")
    run([CLI, "simulate", d / "demo.tif", "--truth", d / "truth.csv", "--width", 128, "--height", 128, "--frames", 60,
         "--pattern", "filaments", "--emitters", 3000, "--emitters-per-frame", 15, "--photons", 1500, "--background",
         10, "--offset", 100, "--seed", 7])
    return d, {"picasso.tif": 100, "demo.tif": 100}


@pytest.fixture(scope="module")
def linux_x64_csv(stacks, tmp_path_factory):
    """The reference: mlcsv against build/native/libmaliang.so (NativeAOT, linux-x64)."""
    d, offsets = stacks
    out = tmp_path_factory.mktemp("linux-x64")
    exe = out / "mlcsv"
    lib = ROOT / "build" / "native"
    run(["gcc", "-O2", "-I", HEADER.parent, "-o", exe, MLCSV, "-L", lib, "-lmaliang", f"-Wl,-rpath,{lib}"])
    for name, offset in offsets.items():
        run([exe, d / name, out / (name + ".csv"), offset])
    return {name: (out / (name + ".csv")).read_text() for name in offsets}


def rows(text):
    return list(csv.reader(text.splitlines()))


def test_reference_localizes_both_stacks(linux_x64_csv):
    # the Picasso movie gives 31 localizations and the demo frames 899 on linux-x64; the other platforms must match
    assert [len(rows(t)) - 1 for t in linux_x64_csv.values()] == [31, 899]


@pytest.mark.skipif(WINE is None, reason="wine64 is not installed (scripts/setup-dist.sh could not install it): "
                                         "the Windows engine was built but not run")
def test_windows_engine_under_wine_gives_the_linux_csv(dist, stacks, linux_x64_csv, tmp_path):
    d, offsets = stacks
    work = tmp_path / "win"
    shutil.copytree(ENGINES / "win32-x86-64", work)
    run(["x86_64-w64-mingw32-gcc", "-O2", "-I", HEADER.parent, "-o", work / "mlcsv.exe", MLCSV, work / "maliang.dll"])
    env = dict(os.environ, WINEPREFIX=str(tmp_path / "wineprefix"), WINEDEBUG="-all")
    for name, offset in offsets.items():
        shutil.copy(d / name, work / name)
        r = run([WINE, "mlcsv.exe", name, name + ".csv", offset], cwd=work, env=env)
        assert r.stdout.startswith("0.1.0 ")
        # hosted .NET (JIT) on Windows x64 and NativeAOT on Linux x64: the same CSV, byte for byte
        assert (work / (name + ".csv")).read_text() == linux_x64_csv[name], name


@pytest.mark.skipif(QEMU is None or not (ARM_LIBC / "lib" / "ld-linux-aarch64.so.1").exists(),
                    reason="qemu-user or Debian's arm64 libc (libc6-arm64-cross) is not installed: the linux-arm64 "
                           "engine was built but not run")
def test_linux_arm64_engine_under_qemu_gives_the_linux_csv(dist, stacks, linux_x64_csv, tmp_path):
    d, offsets = stacks
    lib = ENGINES / "linux-aarch64"
    exe = tmp_path / "mlcsv"
    run(["aarch64-linux-gnu-gcc", "-O2", "-I", HEADER.parent, "-o", exe, MLCSV, "-L", lib, "-lmaliang",
         f"-Wl,-rpath,{lib}"])
    for name, offset in offsets.items():
        run([QEMU, "-L", ARM_LIBC, exe, d / name, tmp_path / (name + ".csv"), offset])
        got, ref = rows((tmp_path / (name + ".csv")).read_text()), rows(linux_x64_csv[name])
        assert got[0] == ref[0] and len(got) == len(ref), name
        for g, r in zip(got[1:], ref[1:]):
            assert g[1] == r[1]  # frame
            # x, y in nm at 100 nm per pixel: within 1e-3 px should NEON and AVX round differently
            assert abs(float(g[2]) - float(r[2])) < 0.1 and abs(float(g[3]) - float(r[3])) < 0.1, (name, g, r)


def load_in_subprocess(library, code, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(BINDING), MALIANG_LIBRARY=str(library))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)


def test_hosted_route_runs_here_and_gives_the_nativeaot_results(dist, tmp_path):
    # the shim + hostfxr + trimmed self-contained .NET, built for linux-x64: the route Windows and macOS take
    code = ("import maliang, numpy as np\n"
            f"a = maliang.localize_file({str(REPO_DATA / 'picasso_testdata.tif')!r}, offset=100)\n"
            "np.save('hosted.npy', a); print(maliang.engine())\n")
    shim = ENGINES / "linux-x86-64-hosted" / "libmaliang.so"
    # loaded by a relative path too (the shim makes it absolute before the working folder can change)
    for library in (shim, os.path.relpath(shim, tmp_path)):
        r = load_in_subprocess(library, code, tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("MaLiang 0.1.0, .NET (hostfxr) engine for linux ") and "linux-x86-64-hosted" in r.stdout
    import maliang
    import numpy as np
    ref = maliang.localize_file(REPO_DATA / "picasso_testdata.tif", offset=100)
    got = np.load(tmp_path / "hosted.npy")
    assert len(ref) == 31 and np.array_equal(got, ref)


def test_hosted_route_without_its_engine_says_why(dist, tmp_path):
    shim = tmp_path / "libmaliang.so"
    shutil.copy(ENGINES / "linux-x86-64-hosted" / "libmaliang.so", shim)  # no maliang-engine/ beside it
    r = load_in_subprocess(shim, "import maliang; maliang.engine()", tmp_path)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "the engine could not start: cannot load " + str(tmp_path / "maliang-engine" / "libhostfxr.so") in last
    # an engine folder without its runtime: hostfxr's own reason comes through
    shutil.copytree(ENGINES / "linux-x86-64-hosted" / "maliang-engine", tmp_path / "maliang-engine")
    (tmp_path / "maliang-engine" / "libcoreclr.so").unlink()
    r = load_in_subprocess(shim, "import maliang; maliang.engine()", tmp_path)
    assert r.returncode != 0
    assert ("hostfxr_initialize_for_dotnet_command_line failed for " + str(tmp_path / "maliang-engine" / "libmaliang.dll")
            + " (hostfxr status 0x80008087): Could not resolve CoreCLR path") in r.stderr.strip().splitlines()[-1]


def test_nativeaot_engine_is_named_as_such(dist, tmp_path):
    r = load_in_subprocess(ENGINES / "linux-x86-64" / "libmaliang.so", "import maliang; print(maliang.engine())", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"MaLiang 0.1.0, NativeAOT engine for linux x86_64: {ENGINES / 'linux-x86-64' / 'libmaliang.so'}"


def macho(path):
    """(cputype, filetype) of a thin 64-bit Mach-O file."""
    magic, cpu, _, filetype = struct.unpack("<IiiI", path.read_bytes()[:16])
    assert magic == 0xFEEDFACF, f"{path} is not a 64-bit Mach-O file"
    return cpu, filetype


@pytest.mark.parametrize("prefix,cpu", [("darwin-aarch64", 0x0100000C), ("darwin-x86-64", 0x01000007)])
def test_macos_builds(dist, prefix, cpu):
    shim = ENGINES / prefix / "libmaliang.dylib"
    assert macho(shim) == (cpu, 6)  # MH_DYLIB of the right architecture
    for native in ("libhostfxr.dylib", "libhostpolicy.dylib", "libcoreclr.dylib", "libclrjit.dylib",
                   "libSystem.Native.dylib"):
        assert macho(ENGINES / prefix / "maliang-engine" / native)[0] == cpu, native
    nm = run(["llvm-nm", "--extern-only", "--defined-only", "--just-symbol-name", shim]).stdout.split()
    assert {s.lstrip("_") for s in nm} == exported_functions()
    headers = run(["llvm-objdump", "--macho", "--private-headers", "--dylibs-used", shim]).stdout
    assert re.search(r"minos 12\.0", headers)
    # lld signs ad hoc for Apple silicon, which runs no unsigned code (Intel Macs do)
    assert ("LC_CODE_SIGNATURE" in headers) == (prefix == "darwin-aarch64")
    used = re.findall(r"^\s+(/\S+|@rpath/\S+) \(compat", headers, flags=re.M)
    assert used == ["@rpath/libmaliang.dylib", "/usr/lib/libSystem.B.dylib"]
    assert (ENGINES / prefix / "maliang-engine" / "libmaliang.dll").is_file()


def test_windows_build(dist):
    dll = ENGINES / "win32-x86-64" / "maliang.dll"
    head = run(["llvm-objdump", "-p", dll]).stdout
    assert "file format coff-x86-64" in run(["llvm-objdump", "-f", dll]).stdout
    exports = set(re.findall(r"^\s+\d+\s+0x[0-9a-f]+\s+(ml_\w+)$", head, flags=re.M))
    assert exports == exported_functions()
    assert set(re.findall(r"DLL Name: (\S+)", head)) == {"KERNEL32.dll", "msvcrt.dll"}


def test_linux_arm64_build(dist):
    so = ENGINES / "linux-aarch64" / "libmaliang.so"
    assert "file format elf64-littleaarch64" in run(["llvm-objdump", "-f", so]).stdout
    nm = run(["llvm-nm", "-D", "--defined-only", "--just-symbol-name", so]).stdout.split()
    assert {s.split("@")[0] for s in nm if s.startswith("ml_")} == exported_functions()  # NativeAOT versions them V1.0


WHEELS = {"linux-x86-64": "manylinux_2_34_x86_64", "linux-aarch64": "manylinux_2_34_aarch64",
          "win32-x86-64": "win_amd64", "darwin-aarch64": "macosx_12_0_arm64", "darwin-x86-64": "macosx_12_0_x86_64"}


@pytest.mark.parametrize("machine,expected", [
    ("manylinux_2_36_x86_64", "manylinux_2_34_x86_64"),
    ("manylinux_2_39_aarch64", "manylinux_2_34_aarch64"),
    ("win_amd64", "win_amd64"),
    ("macosx_14_0_arm64", "macosx_12_0_arm64"),
    ("macosx_13_0_x86_64", "macosx_12_0_x86_64"),
    ("macosx_11_0_arm64", None),  # older than .NET 9's macOS
    ("manylinux_2_31_x86_64", None),  # a glibc older than the library needs
    ("win32", None),
    ("this machine", f"manylinux_2_34_{os.uname().machine}"),
])
def test_pip_picks_the_wheel_for_each_platform(dist, machine, expected, tmp_path):
    # pip expands a macOS --platform to the older versions that machine accepts; a manylinux one it takes literally,
    # so that machine's list (glibc 2.X accepts manylinux_2_17 .. 2_X) is given in full
    glibc = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", machine)
    tags = [f"manylinux_2_{v}_{glibc[2]}" for v in range(17, int(glibc[1]) + 1)] if glibc else [machine]
    platform_args = [] if machine == "this machine" else [a for t in tags for a in ("--platform", t)]
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-index", "--find-links", str(DIST / "wheels"),
                        "--only-binary=:all:", *platform_args, "--python-version", "3.11", "--no-deps",
                        "-d", str(tmp_path), "maliang"], capture_output=True, text=True, timeout=120)
    got = [p.name for p in tmp_path.glob("*.whl")]
    if expected is None:
        assert r.returncode != 0 and got == [], got
    else:
        assert r.returncode == 0, r.stderr
        assert got == [f"maliang-0.1.0-py3-none-{expected}.whl"]


@pytest.mark.parametrize("prefix", PLATFORMS)
def test_each_wheel_carries_its_platforms_engine(dist, prefix):
    with zipfile.ZipFile(DIST / "wheels" / f"maliang-0.1.0-py3-none-{WHEELS[prefix]}.whl") as z:
        names = {i.filename: i.file_size for i in z.infolist()}
        assert z.read("maliang/_platform.txt").decode().strip() == WHEELS[prefix]
    folder = ENGINES / prefix
    files = {"maliang/" + str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    assert files and all(names.get(f) == size for f, size in files.items())
    others = {"libmaliang.so", "maliang.dll", "libmaliang.dylib"} - {lib_for(prefix)}
    assert not any(n.split("/")[-1] in others for n in names)  # no other platform's library


def lib_for(prefix):
    from maliang._native import lib_name
    return lib_name(prefix.split("-")[0])  # JNA's prefix starts with sys.platform's name: linux, win32, darwin


def test_library_file_names_per_platform(dist):
    from maliang._native import lib_name
    assert [lib_name(p) for p in ("linux", "win32", "darwin")] == ["libmaliang.so", "maliang.dll", "libmaliang.dylib"]
    for prefix, (shim, fxr) in HOSTED.items():
        assert lib_for(prefix) == shim and (ENGINES / prefix / shim).is_file()
        assert (ENGINES / prefix / "maliang-engine" / fxr).is_file()


def test_a_wheel_for_another_platform_says_which_it_has(dist, tmp_path):
    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--only-binary=:all:", "--platform",
         "win_amd64", "--python-version", "3.11", "--target", target,
         DIST / "wheels" / "maliang-0.1.0-py3-none-win_amd64.whl"])
    env = {k: v for k, v in os.environ.items() if k not in ("MALIANG_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)
    r = subprocess.run([sys.executable, "-c", "import maliang; maliang.engine()"], capture_output=True, text=True,
                       timeout=60, env=env, cwd=tmp_path)
    assert r.returncode != 0
    assert ("This maliang package carries the engine for win_amd64 (maliang.dll); this machine is linux "
            f"{os.uname().machine} and needs libmaliang.so: install the wheel built for it.") in r.stderr
