"""Build hooks: put the engine inside the package and tag the wheel as a platform wheel.

The engine is $MALIANG_ENGINE_DIR, a platform folder of `make dist` copied whole (the library, and for Windows and macOS
the maliang-engine/ folder the library starts), or else the one library $MALIANG_LIBRARY or the repository's
build/native/libmaliang.so (`make native`). It is copied into the build directory only (never into the source tree).
The wheel is tagged py3-none-<platform>: the package talks to the library through ctypes, so it does not depend on the
CPython ABI, only on the platform: this machine's, or $MALIANG_WHEEL_TAG (make dist builds every platform's here).
"""
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
LIB = "libmaliang.dylib" if sys.platform == "darwin" else ("maliang.dll" if os.name == "nt" else "libmaliang.so")


def native_library() -> Path:
    env = os.environ.get("MALIANG_LIBRARY")
    p = Path(env) if env else HERE.parents[1] / "build" / "native" / LIB
    if not p.is_file():
        sys.exit(f"maliang: {p} not found. Build the native library first: `make native` in the repository root "
                 f"(or set MALIANG_LIBRARY to a libmaliang.so).")
    return p


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        pkg = Path(self.build_lib) / "maliang"
        pkg.mkdir(parents=True, exist_ok=True)
        engine = os.environ.get("MALIANG_ENGINE_DIR")
        if engine:
            shutil.copytree(engine, pkg, dirs_exist_ok=True)
        else:
            shutil.copy2(native_library(), pkg / LIB)
        tag = os.environ.get("MALIANG_WHEEL_TAG")
        if tag:  # read by maliang._native to say which platform this package is for when it cannot load
            (pkg / "_platform.txt").write_text(tag + "\n")


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True  # a platform wheel: it carries a native library


cmdclass = {"build_py": BuildPyWithLibrary}
try:
    from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", os.environ.get("MALIANG_WHEEL_TAG") or plat

    cmdclass["bdist_wheel"] = PlatformWheel
except ImportError:  # building an sdist without wheel installed
    pass

setup(cmdclass=cmdclass, distclass=BinaryDistribution)
