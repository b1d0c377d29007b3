"""Hosts .NET in Debian's python3 with ctypes and hostfxr (as pythonnet's clr_loader does with cffi), lets
Python.Runtime.dll (the NuGet half of pythonnet) install its `clr` module, then runs MaLiang's engine through it.
    python3 host.py BIN_DIR STACK.tif      (BIN_DIR holds Python.Runtime.dll and MaLiang.Engine.dll)"""
import ctypes
import glob
import json
import os
import sys
import time

import numpy as np

bindir, tif = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("PYTHONNET_PYDLL", glob.glob("/usr/lib/x86_64-linux-gnu/libpython3*.so.1.0")[0])

t0 = time.perf_counter()
fxr_path = sorted(glob.glob("/usr/share/dotnet/host/fxr/*/libhostfxr.so") + glob.glob("/usr/lib/dotnet/host/fxr/*/libhostfxr.so"))[-1]
fxr = ctypes.CDLL(fxr_path)
config = os.path.join(bindir, "probe.runtimeconfig.json")
with open(config, "w") as f:  # any installed runtime from 9.0 on (the engine targets net9.0)
    json.dump({"runtimeOptions": {"tfm": "net9.0", "rollForward": "LatestMajor",
                                  "framework": {"name": "Microsoft.NETCore.App", "version": "9.0.0"}}}, f)
h = ctypes.c_void_p()
assert fxr.hostfxr_initialize_for_runtime_config(config.encode(), None, ctypes.byref(h)) == 0
fn = ctypes.c_void_p()
assert fxr.hostfxr_get_runtime_delegate(h, 5, ctypes.byref(fn)) == 0  # hdt_load_assembly_and_get_function_pointer
load = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                        ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))(fn.value)
init = ctypes.c_void_p()
assert load(os.path.join(bindir, "Python.Runtime.dll").encode(), b"Python.Runtime.Loader, Python.Runtime", b"Initialize",
            None, None, ctypes.byref(init)) == 0
# Loader.Initialize(IntPtr data, int size): called as clr_loader calls it (GIL released, an empty non-null buffer)
empty = ctypes.create_string_buffer(b"")
assert ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)(init.value)(ctypes.cast(empty, ctypes.c_void_p), 0) == 0
import clr  # noqa: E402  (installed by Loader.Initialize)
import System  # noqa: E402
print(f"Python.NET up in Debian's python3 {sys.version.split()[0]}: .NET {System.Environment.Version}, "
      f"{time.perf_counter() - t0:.2f} s to host the runtime and install clr")
clr.AddReference(os.path.join(bindir, "MaLiang.Engine.dll"))
from MaLiang.Engine import LocalizerSettings  # noqa: E402
from MaLiang.Engine.IO import TiffStack  # noqa: E402
from MaLiang.Engine.Pipeline import Localizer  # noqa: E402

sys.path.insert(0, os.path.join(root, "src", "PythonBinding"))
import maliang  # noqa: E402

st = LocalizerSettings()
st.OffsetAdu = 100.0
st.Threads = 2


def via_pythonnet():
    s = TiffStack.Open(tif)
    loc = Localizer(st)
    t = time.perf_counter()
    loc.Run(s)
    run = time.perf_counter() - t
    t = time.perf_counter()
    res = loc.Results
    xs = np.array([res[i].X for i in range(res.Count)], dtype=np.float32)
    back = time.perf_counter() - t
    s.Dispose()
    loc.Dispose()
    return xs, run, back


via_pythonnet()  # JIT warm-up
xs, run, back = via_pythonnet()
maliang.localize_file(tif, offset=100, threads=2)
t = time.perf_counter()
ref = maliang.localize_file(tif, offset=100, threads=2)
tc = time.perf_counter() - t
print(f"{tif.split('/')[-1]}: engine through Python.NET {run * 1e3:.0f} ms + {back * 1e3:.0f} ms to read x of "
      f"{len(xs)} results field by field; maliang.localize_file (ctypes, NativeAOT) {tc * 1e3:.0f} ms for "
      f"{len(ref)} results (all fields); x equal: {np.array_equal(xs, ref['x'])}")

a = np.random.default_rng(0).integers(0, 4000, (512, 512), dtype=np.uint16)
t = time.perf_counter()
System.Array[System.UInt16](a.ravel().tolist())
tl = time.perf_counter() - t
sh = System.Array.CreateInstance(System.Int16, a.size)
System.Runtime.InteropServices.Marshal.Copy(System.IntPtr(a.ctypes.data), sh, 0, a.size)
t = time.perf_counter()
System.Runtime.InteropServices.Marshal.Copy(System.IntPtr(a.ctypes.data), sh, 0, a.size)
tm = time.perf_counter() - t
print(f"a 512x512 uint16 numpy frame into .NET: element-wise {tl * 1e3:.1f} ms, Marshal.Copy into a short[] "
      f"{tm * 1e3:.2f} ms; the ctypes binding passes the pointer (no copy)")
