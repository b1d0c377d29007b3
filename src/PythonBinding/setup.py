"""Build hooks: put the NativeAOT library (libmaliang.so) inside the package and tag the wheel as a platform wheel.

The library comes from $MALIANG_LIBRARY or the repository's build/native/libmaliang.so (`make native`). It is copied
into the build directory only (never into the source tree). The wheel is tagged py3-none-<platform>: the package
talks to the library through ctypes, so it does not depend on the CPython ABI, only on the platform.
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
        dest = Path(self.build_lib) / "maliang" / LIB
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(native_library(), dest)


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
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel
except ImportError:  # building an sdist without wheel installed
    pass

setup(cmdclass=cmdclass, distclass=BinaryDistribution)
