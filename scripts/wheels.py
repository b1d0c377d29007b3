#!/usr/bin/env python3
"""make dist: one wheel per platform, maliang-<version>-py3-none-<tag>.whl, each carrying that platform's engine.
    wheels.py ENGINES OUTDIR PREFIX...      (ENGINES/PREFIX/ as scripts/dist.sh lays them out)

The tag is what pip matches against the machine: Linux wheels say the newest glibc symbol version their libmaliang.so
needs (manylinux_2_X), read from the library itself; macOS wheels say 12.0, the oldest macOS .NET 9's libraries load
on. The package is the same pure-Python code in each; only the engine beside it differs."""
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDING = ROOT / "src" / "PythonBinding"
FIXED = {"win32-x86-64": "win_amd64", "darwin-aarch64": "macosx_12_0_arm64", "darwin-x86-64": "macosx_12_0_x86_64"}
ARCH = {"linux-x86-64": "x86_64", "linux-aarch64": "aarch64"}


def tag(prefix: str, folder: Path) -> str:
    if prefix in FIXED:
        return FIXED[prefix]
    symbols = subprocess.run(["llvm-objdump", "-T", str(folder / "libmaliang.so")], capture_output=True, text=True,
                             check=True).stdout
    newest = max(tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+\.\d+)", symbols))
    return f"manylinux_{newest[0]}_{newest[1]}_{ARCH[prefix]}"


def main() -> None:
    engines, out, prefixes = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), sys.argv[3:]
    out.mkdir(parents=True, exist_ok=True)
    for prefix in prefixes:
        folder = (engines / prefix).resolve()
        t = tag(prefix, folder)
        with tempfile.TemporaryDirectory() as tmp:
            # a copy of the binding per wheel, so no build folder carries one platform's engine into the next
            src = Path(tmp) / "src"
            shutil.copytree(BINDING, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "*.so",
                                                                        "*.dll", "*.dylib"))
            env = {"MALIANG_ENGINE_DIR": str(folder), "MALIANG_WHEEL_TAG": t, "PATH": "/usr/bin:/bin"}
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w",
                            str(out), str(src)], check=True, env=env, cwd=tmp)
        print(f"wheels: {prefix}: {next(out.glob(f'maliang-*-{t}.whl')).name}")


if __name__ == "__main__":
    main()
