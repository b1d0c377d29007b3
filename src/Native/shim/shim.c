/*
 * The MaLiang C ABI for platforms where NativeAOT cannot be built from Linux (Windows, macOS; docs/DESIGN.md,
 * Platforms). This small library exports every ml_* function of maliang.h, so Python (ctypes), Java (JNA) and C load
 * it exactly as they load the NativeAOT libmaliang. On the first call it starts the self-contained .NET engine in the
 * folder maliang-engine/ beside it through hostfxr (the .NET hosting API) and asks for each [UnmanagedCallersOnly]
 * export by name; every later call is one indirect jump. If the engine cannot start, every function returns
 * ML_ERR_INTERNAL and ml_last_error()/ml_version() return the reason.
 *
 * No C library headers: the macOS build is cross-compiled here without Apple's SDK, so the few system functions used
 * are declared below (their ABI is stable) and resolved when the library is loaded.
 */
#include <stddef.h>
#include "maliang.h"

#define ENGINE_DIR "maliang-engine"
#define ENGINE_DLL "libmaliang.dll"
#define EXPORTS_TYPE "MaLiang.Native.Exports, libmaliang"
#define PATH_MAX_CHARS 4096

#ifdef _WIN32
typedef unsigned short char_t; /* hostfxr takes UTF-16 paths on Windows */
#define HOSTFXR "hostfxr.dll"
#define SEP '\\'
#define SEP_STR "\\"
#define STDCALL __stdcall
void* __stdcall LoadLibraryW(const char_t* path);
void* __stdcall GetProcAddress(void* module, const char* name);
int __stdcall GetModuleHandleExW(unsigned long flags, const void* address, void** module);
unsigned long __stdcall GetModuleFileNameW(void* module, char_t* buffer, unsigned long size);
void __stdcall Sleep(unsigned long ms);
static void shim_yield(void) { Sleep(0); }
#else
typedef char char_t;
#ifdef __APPLE__
#define HOSTFXR "libhostfxr.dylib"
#define RTLD_NOW_LOCAL 0x6 /* RTLD_NOW | RTLD_LOCAL on Darwin */
#else
#define HOSTFXR "libhostfxr.so"
#define RTLD_NOW_LOCAL 0x2
#endif
#define SEP '/'
#define SEP_STR "/"
#define STDCALL
typedef struct { const char* dli_fname; void* dli_fbase; const char* dli_sname; void* dli_saddr; } shim_dl_info;
void* dlopen(const char* path, int mode);
void* dlsym(void* handle, const char* name);
char* dlerror(void);
int dladdr(const void* address, shim_dl_info* info);
int sched_yield(void);
char* getcwd(char* buffer, size_t size);
static void shim_yield(void) { sched_yield(); }
#endif

typedef struct { size_t size; const char_t* host_path; const char_t* dotnet_root; } hostfxr_params;
typedef int32_t (STDCALL *init_fn)(int argc, const char_t** argv, const hostfxr_params* params, void** handle);
typedef int32_t (STDCALL *delegate_fn)(void* handle, int32_t type, void** delegate);
typedef void (STDCALL *error_writer_fn)(const char_t* message);
typedef error_writer_fn (STDCALL *set_error_writer_fn)(error_writer_fn writer);
typedef int32_t (STDCALL *get_function_pointer_fn)(const char_t* type_name, const char_t* method_name,
                                                   const char_t* delegate_type_name, void* load_context, void* reserved,
                                                   void** delegate);
#define HDT_GET_FUNCTION_POINTER 6
#define UNMANAGEDCALLERSONLY_METHOD ((const char_t*)(intptr_t)-1)

static char shim_error_text[1024] = "";
static char_t shim_hostfxr_text[512]; /* what hostfxr explained (missing file, bad runtimeconfig) */
static const char* const shim_error = shim_error_text;
static int shim_state; /* 0 not started, 1 starting, 2 ready, 3 failed */

static int shim_start(void);
#include "exports.inc" /* the ml_* forwarders and shim_methods[] */

/* Appends ASCII text (UTF-16 on Windows is narrowed; paths here are for messages only). */
static size_t shim_append(size_t at, const char* s) {
    while (*s && at + 1 < sizeof shim_error_text) shim_error_text[at++] = *s++;
    shim_error_text[at] = 0;
    return at;
}

static size_t shim_append_native(size_t at, const char_t* s) {
    while (*s && at + 1 < sizeof shim_error_text) { char_t c = *s++; shim_error_text[at++] = (unsigned)c < 128 ? (char)c : '?'; }
    shim_error_text[at] = 0;
    return at;
}

static size_t shim_append_hex(size_t at, uint32_t v) {
    char h[11] = "0x";
    for (int i = 0; i < 8; i++) h[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    h[10] = 0;
    return shim_append(at, h);
}

static int shim_fail(const char* what, const char_t* path, int32_t rc) {
    size_t at = shim_append(0, "maliang: the engine could not start: ");
    at = shim_append(at, what);
    if (path) { at = shim_append(at, " "); at = shim_append_native(at, path); }
    if (rc) { at = shim_append(at, " (hostfxr status "); at = shim_append_hex(at, (uint32_t)rc); at = shim_append(at, ")"); }
    if (shim_hostfxr_text[0]) { at = shim_append(at, ": "); shim_append_native(at, shim_hostfxr_text); }
    return 0;
}

/* hostfxr's messages while it starts .NET (the first one says most), kept for shim_fail. */
static void STDCALL shim_error_writer(const char_t* message) {
    size_t at = 0;
    while (shim_hostfxr_text[at]) at++;
    if (at && at + 3 < sizeof shim_hostfxr_text / sizeof *shim_hostfxr_text) { shim_hostfxr_text[at++] = ';'; shim_hostfxr_text[at++] = ' '; }
    while (*message && at + 1 < sizeof shim_hostfxr_text / sizeof *shim_hostfxr_text) shim_hostfxr_text[at++] = *message++;
    shim_hostfxr_text[at] = 0;
}

/* dst = src + tail (ASCII tail), returns the length or 0 when it does not fit. */
static size_t shim_join(char_t* dst, const char_t* src, size_t n, const char* tail) {
    size_t i = 0;
    for (; i < n; i++) dst[i] = src[i];
    for (; *tail; tail++) { if (i + 1 >= PATH_MAX_CHARS) return 0; dst[i++] = (char_t)*tail; }
    dst[i] = 0;
    return i;
}

static void* shim_open(const char_t* path) {
#ifdef _WIN32
    return LoadLibraryW(path);
#else
    return dlopen(path, RTLD_NOW_LOCAL);
#endif
}

static void* shim_symbol(void* lib, const char* name) {
#ifdef _WIN32
    return GetProcAddress(lib, name);
#else
    return dlsym(lib, name);
#endif
}

static char_t self[PATH_MAX_CHARS]; /* this library's absolute path */

#ifndef _WIN32
/* dladdr gives the path the library was opened by, relative if it was, and the working folder may change before the
 * first call: so the absolute path is made when the library is loaded (no .NET is started there). */
__attribute__((constructor)) static void shim_locate(void) {
    shim_dl_info info;
    size_t n = 0;
    if (!dladdr((const void*)&shim_locate, &info) || !info.dli_fname) return;
    if (info.dli_fname[0] != '/') {
        if (!getcwd(self, PATH_MAX_CHARS)) { self[0] = 0; return; }
        while (self[n]) n++;
        self[n++] = '/';
    }
    for (const char* f = info.dli_fname; *f && n + 1 < PATH_MAX_CHARS; f++) self[n++] = *f;
    self[n] = 0;
}
#endif

static int shim_load(void) {
    static char_t dir_engine[PATH_MAX_CHARS], fxr_path[PATH_MAX_CHARS], dll[PATH_MAX_CHARS];
    size_t n = 0;
#ifdef _WIN32
    void* module = 0;
    if (!GetModuleHandleExW(6 /* FROM_ADDRESS | UNCHANGED_REFCOUNT */, (const void*)&shim_load, &module))
        return shim_fail("cannot find its own file", 0, 0);
    n = GetModuleFileNameW(module, self, PATH_MAX_CHARS);
    if (n == 0 || n >= PATH_MAX_CHARS) return shim_fail("cannot find its own file", 0, 0);
#else
    while (self[n]) n++;
    if (n == 0) return shim_fail("cannot find its own file", 0, 0);
#endif
    while (n > 0 && self[n - 1] != SEP && self[n - 1] != '/') n--; /* keep the folder, with its separator */
    size_t d = shim_join(dir_engine, self, n, ENGINE_DIR);
    if (!d || !shim_join(fxr_path, dir_engine, d, SEP_STR HOSTFXR) || !shim_join(dll, dir_engine, d, SEP_STR ENGINE_DLL))
        return shim_fail("path too long:", self, 0);
    void* fxr = shim_open(fxr_path);
    if (!fxr) return shim_fail("cannot load", fxr_path, 0);
    init_fn init = (init_fn)shim_symbol(fxr, "hostfxr_initialize_for_dotnet_command_line");
    delegate_fn get_delegate = (delegate_fn)shim_symbol(fxr, "hostfxr_get_runtime_delegate");
    set_error_writer_fn set_writer = (set_error_writer_fn)shim_symbol(fxr, "hostfxr_set_error_writer");
    if (!init || !get_delegate) return shim_fail("not a hostfxr library:", fxr_path, 0);
    if (set_writer) set_writer(shim_error_writer);
    /* A self-contained app: hostfxr finds hostpolicy and coreclr beside it; the trimmed engine's Main never runs. */
    hostfxr_params params = { sizeof(hostfxr_params), self, dir_engine };
    const char_t* argv[1] = { dll };
    void* handle = 0;
    int32_t rc = init(1, argv, &params, &handle);
    if (rc < 0 || !handle) { if (set_writer) set_writer(0); return shim_fail("hostfxr_initialize_for_dotnet_command_line failed for", dll, rc); }
    void* get_fp = 0;
    rc = get_delegate(handle, HDT_GET_FUNCTION_POINTER, &get_fp);
    if (set_writer) set_writer(0);
    if (rc < 0 || !get_fp) return shim_fail("hostfxr_get_runtime_delegate failed for", dll, rc);
    char_t type[64], method[64];
    shim_join(type, type, 0, EXPORTS_TYPE);
    for (int i = 0; i < SHIM_EXPORT_COUNT; i++) {
        shim_join(method, method, 0, shim_methods[i]);
        rc = ((get_function_pointer_fn)get_fp)(type, method, UNMANAGEDCALLERSONLY_METHOD, 0, 0, &shim_fn[i]);
        if (rc < 0 || !shim_fn[i]) return shim_fail("the engine has no export", method, rc);
    }
    shim_error_text[0] = 0;
    return 1;
}

/* Once per process; a thread arriving while another starts the runtime waits for it (rare: a few hundred ms once). */
static int shim_start(void) {
    int s = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE);
    if (s == 2) return 1;
    if (s == 3) return 0;
    int expected = 0;
    if (__atomic_compare_exchange_n(&shim_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&shim_state, shim_load() ? 2 : 3, __ATOMIC_RELEASE);
    } else {
        while ((s = __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE)) == 1) shim_yield();
    }
    return __atomic_load_n(&shim_state, __ATOMIC_ACQUIRE) == 2;
}
