/*
 * A CUDA driver + NVRTC stand-in for machines without an NVIDIA GPU, so that MaLiang's CUDA host code (context
 * handling, module loading, pinned buffers, streams, the out-of-memory split, error paths) runs in CI on every commit.
 * It is NOT a GPU and proves nothing about speed or about NVCC/PTX: the real CUDA tests still have to run on NVIDIA
 * hardware. What it does:
 *
 *  - libnvrtc: nvrtcCompileProgram compiles the CUDA C source with the host C++ compiler (a header maps __global__,
 *    blockIdx, atomicAdd, __float_as_uint ...), so a compile error comes back with the compiler's log. The "PTX" it
 *    returns is the source itself; cuModuleLoadData compiles (once per source, cached under $TMPDIR) and dlopens it.
 *  - libcuda: one device ("MaLiang CUDA emulator"), a per-thread context stack (primary and created contexts, push/pop),
 *    device memory from malloc with bounds-checked copies, a settable memory limit (so CUDA_ERROR_OUT_OF_MEMORY can be
 *    provoked), page-locked host memory, streams whose work really is deferred: launches, memsets and copies to or from
 *    pinned memory run only at a synchronisation point, in order, as on a GPU; copies from/to pageable memory are
 *    synchronous, as the CUDA documentation specifies. Kernel parameters are copied at launch, as CUDA does.
 *  - Checks a real driver makes and that catch host bugs: no current context, or a stream or module of another context
 *    than the current one -> CUDA_ERROR_INVALID_CONTEXT; a device pointer or range outside every allocation ->
 *    CUDA_ERROR_INVALID_VALUE; unknown or destroyed handles -> CUDA_ERROR_INVALID_HANDLE; after a kernel fault every
 *    later call fails with it (clean-up calls still release, so leaks can be counted).
 *  - Not emulated: releasing the primary context's last reference does not free what it still owns (a real driver
 *    would); device pointers are host addresses (a kernel's out-of-bounds access is not caught).
 *  - Test controls (not CUDA API): mlemu_set_memory_limit, mlemu_fail_launch, mlemu_reset_error, mlemu_bytes_in_use,
 *    mlemu_peak_bytes, mlemu_pinned_in_use, mlemu_registered_in_use, mlemu_streams_live, mlemu_primary_refs, mlemu_launches.
 *
 * Kernels run on one host thread, block by block and thread by thread (MaLiang's kernels use neither shared memory nor
 * barriers). All entry points hold one global lock.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int CUresult;
enum {
    CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_OUT_OF_MEMORY = 2, CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101, CUDA_ERROR_INVALID_IMAGE = 200, CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_PTX = 218, CUDA_ERROR_INVALID_HANDLE = 400, CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_LAUNCH_FAILED = 719, CUDA_ERROR_UNKNOWN = 999
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
#define LOCK() pthread_mutex_lock(&g_lock)
#define UNLOCK() pthread_mutex_unlock(&g_lock)
#define RETURN(v) do { CUresult r__ = (v); UNLOCK(); return r__; } while (0)

static int g_initialized;
static const size_t kTotalMemory = (size_t)4 << 30;   /* what the device reports */
static size_t g_limit = (size_t)4 << 30;               /* what cuMemAlloc grants (mlemu_set_memory_limit) */

/* ---------------------------------------------------------------- contexts */
typedef struct Ctx { int magic, primary, alive; } Ctx;
#define CTX_MAGIC 0x43545831
static Ctx g_primary = { CTX_MAGIC, 1, 0 };
static int g_primary_refs;
#define STACK_MAX 16
static __thread Ctx* t_stack[STACK_MAX];
static __thread int t_depth;

static Ctx* current(void) { return t_depth > 0 ? t_stack[t_depth - 1] : NULL; }
static int valid_ctx(Ctx* c) { return c != NULL && c->magic == CTX_MAGIC && c->alive; }
#define NEED_CTX_CLEANUP() do { if (!g_initialized) RETURN(CUDA_ERROR_NOT_INITIALIZED); if (!valid_ctx(current())) RETURN(CUDA_ERROR_INVALID_CONTEXT); } while (0)
/* After a kernel fault every later call fails with it, as on a real context (clean-up calls still release, so tests can
   count leaks; mlemu_reset_error stands for recreating the context). */
#define NEED_CTX() do { NEED_CTX_CLEANUP(); if (g_sticky) RETURN(g_sticky); } while (0)

/* ---------------------------------------------------------------- allocations */
typedef struct Alloc { uintptr_t base; size_t size; int pinned; int registered; struct Alloc* next; } Alloc;
static Alloc* g_allocs;
static size_t g_device_bytes, g_pinned_bytes, g_peak_bytes, g_registered_bytes;

static Alloc* find_alloc(uintptr_t p, size_t n, int pinned)
{
    for (Alloc* a = g_allocs; a; a = a->next)
        if (a->pinned == pinned && p >= a->base && p - a->base <= a->size && n <= a->size - (p - a->base)) return a;
    return NULL;
}

static Alloc* find_base(uintptr_t p, int pinned, Alloc*** link)
{
    for (Alloc** l = &g_allocs; *l; l = &(*l)->next)
        if ((*l)->base == p && (*l)->pinned == pinned) { if (link) *link = l; return *l; }
    return NULL;
}

static void* add_alloc(size_t bytes, int pinned)
{
    void* p = calloc(1, bytes ? bytes : 1);
    Alloc* a = malloc(sizeof(Alloc));
    if (!p || !a) { free(p); free(a); return NULL; }
    a->base = (uintptr_t)p; a->size = bytes; a->pinned = pinned; a->registered = 0; a->next = g_allocs; g_allocs = a;
    if (pinned) g_pinned_bytes += bytes; else g_device_bytes += bytes;
    if (g_device_bytes > g_peak_bytes) g_peak_bytes = g_device_bytes;
    return p;
}

/* ---------------------------------------------------------------- modules and functions */
typedef void (*RunFn)(void** params, unsigned gx, unsigned bx);
typedef int (*ArgsFn)(size_t* sizes, int cap);
typedef struct Module { int magic; void* dl; struct Ctx* ctx; } Module;
typedef struct Function { int magic; RunFn run; int nargs; size_t sizes[32]; Module* mod; } Function;
#define MOD_MAGIC 0x4d4f4431
#define FUN_MAGIC 0x46554e31

/* ---------------------------------------------------------------- streams: deferred work */
typedef struct Op {
    int kind;                 /* 0 copy, 1 memset32, 2 launch */
    void* dst; const void* src; size_t bytes;
    unsigned value; size_t count;
    Function* fn; unsigned gx, bx; unsigned char* args; void** argv;
    struct Op* next;
} Op;
typedef struct Stream { int magic; Op *head, *tail; Ctx* ctx; } Stream;
#define STR_MAGIC 0x53545231
static int g_streams_live;
static long g_launches;
static long g_fail_after = -1;  /* launches to let through before one fails; -1: never */
static CUresult g_fail_status = CUDA_ERROR_LAUNCH_FAILED;
static CUresult g_sticky;       /* a failed kernel, reported at the next synchronisation (as CUDA does) */
static Stream g_null_stream = { STR_MAGIC, NULL, NULL, NULL };

static Stream* stream_of(void* h) { return h == NULL ? &g_null_stream : (Stream*)h; }

static void run_op(Op* o)
{
    if (o->kind == 0) memmove(o->dst, o->src, o->bytes);
    else if (o->kind == 1) { unsigned* d = o->dst; for (size_t i = 0; i < o->count; i++) d[i] = o->value; }
    else
    {
        if (o->fn == NULL) g_sticky = CUDA_ERROR_LAUNCH_FAILED;   /* an injected kernel fault */
        else if (g_sticky == CUDA_SUCCESS) o->fn->run(o->argv, o->gx, o->bx);
    }
}

static void free_op(Op* o) { free(o->args); free(o->argv); free(o); }

static CUresult flush(Stream* s)
{
    while (s->head)
    {
        Op* o = s->head;
        s->head = o->next;
        if (!s->head) s->tail = NULL;
        run_op(o);
        free_op(o);
    }
    CUresult r = g_sticky;
    return r;
}

static void enqueue(Stream* s, Op* o)
{
    o->next = NULL;
    if (s->tail) s->tail->next = o; else s->head = o;
    s->tail = o;
}

/* All streams, for cuCtxSynchronize and for pageable copies on the null stream. */
#define MAX_STREAMS 1024
static Stream* g_all_streams[MAX_STREAMS];
static CUresult flush_all(void)
{
    CUresult r = flush(&g_null_stream);
    for (int i = 0; i < MAX_STREAMS; i++) if (g_all_streams[i]) { CUresult q = flush(g_all_streams[i]); if (q) r = q; }
    return r;
}

/* ================================================================= driver API */
CUresult cuInit(unsigned flags)
{
    LOCK();
    if (flags != 0) RETURN(CUDA_ERROR_INVALID_VALUE);
    const char* lim = getenv("MLEMU_MEMORY_LIMIT");
    if (lim && *lim) g_limit = (size_t)strtoull(lim, NULL, 10);
    g_initialized = 1;
    RETURN(CUDA_SUCCESS);
}

CUresult cuDriverGetVersion(int* v) { if (!v) return CUDA_ERROR_INVALID_VALUE; *v = 12040; return CUDA_SUCCESS; }

CUresult cuDeviceGetCount(int* n)
{
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    *n = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(int* dev, int ordinal)
{
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (!dev) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *dev = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, int dev)
{
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "MaLiang CUDA emulator (CPU, not a GPU)");
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* v, int attrib, int dev)
{
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    switch (attrib)
    {
        case 16: *v = 4; break;     /* multiprocessors */
        case 75: *v = 8; break;     /* compute capability 8.0 */
        case 76: *v = 0; break;
        case 1: *v = 1024; break;   /* max threads per block */
        default: *v = 0; break;
    }
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, int dev)
{
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = kTotalMemory;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(Ctx** ctx, int dev)
{
    LOCK();
    if (!g_initialized) RETURN(CUDA_ERROR_NOT_INITIALIZED);
    if (dev != 0) RETURN(CUDA_ERROR_INVALID_DEVICE);
    if (!ctx) RETURN(CUDA_ERROR_INVALID_VALUE);
    g_primary.alive = 1;
    g_primary_refs++;
    *ctx = &g_primary;
    RETURN(CUDA_SUCCESS);
}

static CUresult primary_release(int dev)
{
    LOCK();
    if (dev != 0) RETURN(CUDA_ERROR_INVALID_DEVICE);
    if (g_primary_refs <= 0) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    if (--g_primary_refs == 0) g_primary.alive = 0;
    RETURN(CUDA_SUCCESS);
}
CUresult cuDevicePrimaryCtxRelease(int dev) { return primary_release(dev); }
CUresult cuDevicePrimaryCtxRelease_v2(int dev) { return primary_release(dev); }

CUresult cuCtxCreate_v2(Ctx** ctx, unsigned flags, int dev)
{
    (void)flags;
    LOCK();
    if (!g_initialized) RETURN(CUDA_ERROR_NOT_INITIALIZED);
    if (dev != 0) RETURN(CUDA_ERROR_INVALID_DEVICE);
    if (!ctx || t_depth >= STACK_MAX) RETURN(CUDA_ERROR_INVALID_VALUE);
    Ctx* c = malloc(sizeof(Ctx));
    if (!c) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    c->magic = CTX_MAGIC; c->primary = 0; c->alive = 1;
    t_stack[t_depth++] = c;
    *ctx = c;
    RETURN(CUDA_SUCCESS);
}

CUresult cuCtxDestroy_v2(Ctx* c)
{
    LOCK();
    if (!valid_ctx(c) || c->primary) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    c->alive = 0;   /* kept allocated: a stale handle stays recognisable as dead */
    for (int i = 0; i < t_depth; i++) if (t_stack[i] == c) { memmove(&t_stack[i], &t_stack[i + 1], (size_t)(t_depth - i - 1) * sizeof(Ctx*)); t_depth--; break; }
    RETURN(CUDA_SUCCESS);
}

CUresult cuCtxSetCurrent(Ctx* c)
{
    LOCK();
    if (c == NULL) { if (t_depth > 0) t_depth--; RETURN(CUDA_SUCCESS); }
    if (!valid_ctx(c)) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    if (t_depth == 0) t_stack[t_depth++] = c; else t_stack[t_depth - 1] = c;
    RETURN(CUDA_SUCCESS);
}

CUresult cuCtxGetCurrent(Ctx** c)
{
    if (!c) return CUDA_ERROR_INVALID_VALUE;
    *c = current();
    return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(Ctx* c)
{
    LOCK();
    if (!valid_ctx(c)) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    if (t_depth >= STACK_MAX) RETURN(CUDA_ERROR_INVALID_VALUE);
    t_stack[t_depth++] = c;
    RETURN(CUDA_SUCCESS);
}

CUresult cuCtxPopCurrent_v2(Ctx** c)
{
    LOCK();
    if (t_depth == 0) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    Ctx* top = t_stack[--t_depth];
    if (c) *c = top;
    RETURN(CUDA_SUCCESS);
}

CUresult cuCtxSynchronize(void)
{
    LOCK();
    NEED_CTX();
    CUresult r = flush_all();
    RETURN(r);
}

/* ---------------------------------------------------------------- memory */
CUresult cuMemAlloc_v2(uint64_t* dptr, size_t bytes)
{
    LOCK();
    NEED_CTX();
    if (!dptr || bytes == 0) RETURN(CUDA_ERROR_INVALID_VALUE);
    if (bytes > g_limit || g_device_bytes > g_limit - bytes) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    void* p = add_alloc(bytes, 0);
    if (!p) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    *dptr = (uint64_t)(uintptr_t)p;
    RETURN(CUDA_SUCCESS);
}

CUresult cuMemFree_v2(uint64_t dptr)
{
    LOCK();
    NEED_CTX_CLEANUP();
    Alloc** link;
    Alloc* a = find_base((uintptr_t)dptr, 0, &link);
    if (!a) RETURN(CUDA_ERROR_INVALID_VALUE);
    flush_all();    /* cuMemFree waits for work that may use the memory */
    *link = a->next;
    g_device_bytes -= a->size;
    free((void*)a->base);
    free(a);
    RETURN(CUDA_SUCCESS);
}

CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned flags)
{
    (void)flags;
    LOCK();
    NEED_CTX();
    if (!p || bytes == 0) RETURN(CUDA_ERROR_INVALID_VALUE);
    void* q = add_alloc(bytes, 1);
    if (!q) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    *p = q;
    RETURN(CUDA_SUCCESS);
}

CUresult cuMemFreeHost(void* p)
{
    LOCK();
    NEED_CTX_CLEANUP();
    Alloc** link;
    Alloc* a = find_base((uintptr_t)p, 1, &link);
    if (!a || a->registered) RETURN(CUDA_ERROR_INVALID_VALUE);
    flush_all();
    *link = a->next;
    g_pinned_bytes -= a->size;
    free((void*)a->base);
    free(a);
    RETURN(CUDA_SUCCESS);
}

/* Page-locks existing host memory: copies from/to it become asynchronous, as from cuMemHostAlloc memory. */
CUresult cuMemHostRegister_v2(void* p, size_t bytes, unsigned flags)
{
    (void)flags;
    LOCK();
    NEED_CTX();
    if (!p || bytes == 0) RETURN(CUDA_ERROR_INVALID_VALUE);
    for (Alloc* a = g_allocs; a; a = a->next)
        if (a->pinned && (uintptr_t)p < a->base + a->size && a->base < (uintptr_t)p + bytes) RETURN(712);   /* CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED */
    Alloc* a = malloc(sizeof(Alloc));
    if (!a) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    a->base = (uintptr_t)p; a->size = bytes; a->pinned = 1; a->registered = 1; a->next = g_allocs; g_allocs = a;
    g_registered_bytes += bytes;
    RETURN(CUDA_SUCCESS);
}

CUresult cuMemHostUnregister(void* p)
{
    LOCK();
    NEED_CTX_CLEANUP();
    Alloc** link;
    Alloc* a = find_base((uintptr_t)p, 1, &link);
    if (!a || !a->registered) RETURN(713);   /* CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED */
    flush_all();   /* queued copies may still use it */
    *link = a->next;
    g_registered_bytes -= a->size;
    free(a);
    RETURN(CUDA_SUCCESS);
}

CUresult cuMemGetInfo_v2(size_t* freeBytes, size_t* total)
{
    LOCK();
    NEED_CTX();
    if (!freeBytes || !total) RETURN(CUDA_ERROR_INVALID_VALUE);
    *freeBytes = g_limit > g_device_bytes ? g_limit - g_device_bytes : 0;
    *total = kTotalMemory;
    RETURN(CUDA_SUCCESS);
}

static CUresult copy(void* dst, const void* src, size_t bytes, int toDevice, void* hstream)
{
    LOCK();
    NEED_CTX();
    Stream* s = stream_of(hstream);
    if (s->magic != STR_MAGIC) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (s != &g_null_stream && s->ctx != current()) RETURN(CUDA_ERROR_INVALID_CONTEXT);   /* another context's stream */
    uintptr_t dev = (uintptr_t)(toDevice ? dst : src);
    const void* host = toDevice ? src : dst;
    if (bytes == 0) RETURN(CUDA_SUCCESS);
    if (!host || !find_alloc(dev, bytes, 0)) RETURN(CUDA_ERROR_INVALID_VALUE);
    Op* o = calloc(1, sizeof(Op));
    if (!o) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    o->kind = 0; o->dst = dst; o->src = src; o->bytes = bytes;
    if (find_alloc((uintptr_t)host, bytes, 1)) { enqueue(s, o); RETURN(CUDA_SUCCESS); }
    /* Pageable host memory: the copy is synchronous (after the stream's earlier work). */
    enqueue(s, o);
    CUresult r = flush(s);
    RETURN(r);
}

CUresult cuMemcpyHtoDAsync_v2(uint64_t dst, const void* src, size_t bytes, void* stream)
{ return copy((void*)(uintptr_t)dst, src, bytes, 1, stream); }
CUresult cuMemcpyDtoHAsync_v2(void* dst, uint64_t src, size_t bytes, void* stream)
{ return copy(dst, (const void*)(uintptr_t)src, bytes, 0, stream); }
CUresult cuMemcpyHtoD_v2(uint64_t dst, const void* src, size_t bytes)
{ CUresult r = copy((void*)(uintptr_t)dst, src, bytes, 1, NULL); if (r) return r; LOCK(); r = flush_all(); RETURN(r); }
CUresult cuMemcpyDtoH_v2(void* dst, uint64_t src, size_t bytes)
{ CUresult r = copy(dst, (const void*)(uintptr_t)src, bytes, 0, NULL); if (r) return r; LOCK(); r = flush_all(); RETURN(r); }

CUresult cuMemsetD32Async(uint64_t dst, unsigned value, size_t count, void* hstream)
{
    LOCK();
    NEED_CTX();
    Stream* s = stream_of(hstream);
    if (s->magic != STR_MAGIC) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (s != &g_null_stream && s->ctx != current()) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    if (count == 0) RETURN(CUDA_SUCCESS);
    if ((dst & 3) || count > SIZE_MAX / 4 || !find_alloc((uintptr_t)dst, count * 4, 0)) RETURN(CUDA_ERROR_INVALID_VALUE);
    Op* o = calloc(1, sizeof(Op));
    if (!o) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    o->kind = 1; o->dst = (void*)(uintptr_t)dst; o->value = value; o->count = count;
    enqueue(s, o);
    RETURN(CUDA_SUCCESS);
}

/* ---------------------------------------------------------------- streams */
CUresult cuStreamCreate(void** out, unsigned flags)
{
    (void)flags;
    LOCK();
    NEED_CTX();
    if (!out) RETURN(CUDA_ERROR_INVALID_VALUE);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (!g_all_streams[i])
        {
            Stream* s = calloc(1, sizeof(Stream));
            if (!s) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
            s->magic = STR_MAGIC; s->ctx = current();
            g_all_streams[i] = s;
            g_streams_live++;
            *out = s;
            RETURN(CUDA_SUCCESS);
        }
    RETURN(CUDA_ERROR_OUT_OF_MEMORY);
}

CUresult cuStreamSynchronize(void* h)
{
    LOCK();
    NEED_CTX();
    Stream* s = stream_of(h);
    if (s->magic != STR_MAGIC) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (s != &g_null_stream && s->ctx != current()) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    CUresult r = flush(s);
    RETURN(r);
}

CUresult cuStreamDestroy_v2(void* h)
{
    LOCK();
    NEED_CTX_CLEANUP();
    Stream* s = (Stream*)h;
    if (!s || s->magic != STR_MAGIC || s == &g_null_stream) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (s->ctx != current()) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    flush(s);   /* destroying a stream lets its work finish */
    for (int i = 0; i < MAX_STREAMS; i++) if (g_all_streams[i] == s) g_all_streams[i] = NULL;
    s->magic = 0;   /* kept allocated: a stale handle gets CUDA_ERROR_INVALID_HANDLE, not freed memory */
    g_streams_live--;
    RETURN(CUDA_SUCCESS);
}

/* ---------------------------------------------------------------- compiling kernels with the host compiler */
static const char kPtxTag[] = "//MLEMU-PTX\n";

static const char kHeader[] =
    "#include <math.h>\n#include <string.h>\n#include <stddef.h>\n#include <cmath>\n#include <utility>\n#include <type_traits>\n"
    "#define __global__\n#define __device__\n#define __host__\n#define __forceinline__ inline\n#define __restrict__\n"
    "struct mlemu_dim3 { unsigned x, y, z; };\n"
    "static mlemu_dim3 threadIdx, blockIdx, blockDim, gridDim;\n"
    "using std::isfinite; using std::isnan; using std::isinf;\n"
    "static inline int atomicAdd(int* p, int v) { int o = *p; *p = o + v; return o; }\n"
    "static inline unsigned atomicAdd(unsigned* p, unsigned v) { unsigned o = *p; *p = o + v; return o; }\n"
    "static inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }\n"
    "static inline long long __double_as_longlong(double d) { long long r; memcpy(&r, &d, 8); return r; }\n"
    "static inline double __longlong_as_double(long long v) { double r; memcpy(&r, &v, 8); return r; }\n"
    "static inline unsigned __float_as_uint(float f) { unsigned r; memcpy(&r, &f, 4); return r; }\n"
    "static inline float __uint_as_float(unsigned u) { float r; memcpy(&r, &u, 4); return r; }\n"
    "static inline int __float_as_int(float f) { int r; memcpy(&r, &f, 4); return r; }\n"
    "static inline float __int_as_float(int u) { float r; memcpy(&r, &u, 4); return r; }\n"
    "template <class... A> static int mlemu_arg_sizes(void (*)(A...), size_t* sz, int cap)\n"
    "{ size_t s[] = { sizeof(A)..., 0 }; int n = (int)sizeof...(A); for (int i = 0; i < n && i < cap; i++) sz[i] = s[i]; return n; }\n"
    "template <class... A, size_t... I> static void mlemu_invoke_i(void (*f)(A...), void** p, std::index_sequence<I...>)\n"
    "{ f(*static_cast<typename std::decay<A>::type*>(p[I])...); }\n"
    "template <class... A> static void mlemu_invoke(void (*f)(A...), void** p) { mlemu_invoke_i(f, p, std::index_sequence_for<A...>{}); }\n"
    "#define MLEMU_WRAP(k) \\\n"
    "extern \"C\" int mlemu_args_##k(size_t* sz, int cap) { return mlemu_arg_sizes(k, sz, cap); } \\\n"
    "extern \"C\" void mlemu_run_##k(void** p, unsigned gx, unsigned bx) { gridDim.x = gx; blockDim.x = bx; \\\n"
    "  gridDim.y = gridDim.z = blockDim.y = blockDim.z = 1; \\\n"
    "  for (unsigned b = 0; b < gx; b++) for (unsigned t = 0; t < bx; t++) { blockIdx.x = b; threadIdx.x = t; mlemu_invoke(k, p); } }\n"
    "#line 1 \"maliang_kernels.cu\"\n";

/* Kernel names: "KERNEL void NAME(" (MaLiang's macro) or "__global__ void NAME(". */
static char* wrappers(const char* src)
{
    size_t cap = 256, len = 0;
    char* out = malloc(cap);
    out[0] = 0;
    const char* pats[] = { "KERNEL void ", "__global__ void " };
    for (int k = 0; k < 2; k++)
        for (const char* p = strstr(src, pats[k]); p; p = strstr(p + 1, pats[k]))
        {
            const char* n = p + strlen(pats[k]);
            size_t m = 0;
            while ((n[m] >= 'a' && n[m] <= 'z') || (n[m] >= 'A' && n[m] <= 'Z') || (n[m] >= '0' && n[m] <= '9') || n[m] == '_') m++;
            if (m == 0 || n[m] != '(') continue;
            while (len + m + 32 > cap) { cap *= 2; out = realloc(out, cap); }
            len += (size_t)sprintf(out + len, "\nMLEMU_WRAP(%.*s)", (int)m, n);
        }
    return out;
}

static uint64_t fnv1a(const char* s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

static const char* work_dir(void)
{
    static char dir[512];
    if (!dir[0])
    {
        const char* t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/maliang-cuda-emulator-%d", t && *t ? t : "/tmp", (int)getuid());
        mkdir(dir, 0700);
    }
    return dir;
}

static char* read_all(const char* path)
{
    FILE* f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

/* Compiles src to <work>/<hash>.so unless it is there; returns 0 and the path, or -1 and the compiler's log. */
static int compile_source(const char* src, char* soPath, size_t soCap, char** log)
{
    *log = NULL;
    const char* dir = work_dir();
    const char* cxx = getenv("MLEMU_CXX");
    if (!cxx || !*cxx) cxx = "c++";
    /* The cache key covers everything the .so depends on: the header, the compiler and the source. */
    uint64_t h = fnv1a(src, strlen(src)) ^ (fnv1a(kHeader, strlen(kHeader)) * 31) ^ (fnv1a(cxx, strlen(cxx)) * 131) ^ 0x1;
    snprintf(soPath, soCap, "%s/%016llx.so", dir, (unsigned long long)h);
    struct stat st;
    if (stat(soPath, &st) == 0) return 0;
    char cu[600], tmpSo[600], logPath[600], cmd[2400];
    snprintf(cu, sizeof cu, "%s/%016llx.%d.cpp", dir, (unsigned long long)h, (int)getpid());
    snprintf(tmpSo, sizeof tmpSo, "%s.%d.tmp", soPath, (int)getpid());
    snprintf(logPath, sizeof logPath, "%s/%016llx.%d.log", dir, (unsigned long long)h, (int)getpid());
    FILE* f = fopen(cu, "wb");
    if (!f) { *log = strdup("mlcudaemu: cannot write the source file"); return -1; }
    char* w = wrappers(src);
    fputs(kHeader, f); fputs(src, f); fputs("\n", f); fputs(w, f); fputs("\n", f);
    fclose(f);
    free(w);
    /* -ffp-contract=off: no fused multiply-add, as --fmad=false asks of NVRTC. */
    snprintf(cmd, sizeof cmd, "%s -std=c++14 -O2 -ffp-contract=off -fno-fast-math -fPIC -shared -w -o '%s' '%s' > '%s' 2>&1",
             cxx, tmpSo, cu, logPath);
    int rc = system(cmd);
    *log = read_all(logPath);
    unlink(cu); unlink(logPath);
    if (rc != 0 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) { unlink(tmpSo); return -1; }
    if (rename(tmpSo, soPath) != 0) { unlink(tmpSo); return -1; }
    return 0;
}

CUresult cuModuleLoadData(Module** out, const void* image)
{
    LOCK();
    NEED_CTX();
    if (!out || !image) RETURN(CUDA_ERROR_INVALID_VALUE);
    const char* text = image;
    if (strncmp(text, kPtxTag, strlen(kPtxTag)) != 0) RETURN(CUDA_ERROR_INVALID_PTX);
    char so[700];
    char* log;
    int rc = compile_source(text + strlen(kPtxTag), so, sizeof so, &log);
    free(log);
    if (rc != 0) RETURN(CUDA_ERROR_INVALID_PTX);
    void* dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!dl) RETURN(CUDA_ERROR_INVALID_IMAGE);
    Module* m = calloc(1, sizeof(Module));
    if (!m) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    m->magic = MOD_MAGIC; m->dl = dl; m->ctx = current();
    *out = m;
    RETURN(CUDA_SUCCESS);
}

CUresult cuModuleGetFunction(Function** out, Module* m, const char* name)
{
    LOCK();
    NEED_CTX();
    if (!out || !name) RETURN(CUDA_ERROR_INVALID_VALUE);
    if (!m || m->magic != MOD_MAGIC) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (m->ctx != current()) RETURN(CUDA_ERROR_INVALID_CONTEXT);   /* a module belongs to the context it was loaded in */
    char sym[300];
    snprintf(sym, sizeof sym, "mlemu_run_%s", name);
    RunFn run = (RunFn)dlsym(m->dl, sym);
    snprintf(sym, sizeof sym, "mlemu_args_%s", name);
    ArgsFn args = (ArgsFn)dlsym(m->dl, sym);
    if (!run || !args) RETURN(CUDA_ERROR_NOT_FOUND);
    Function* f = calloc(1, sizeof(Function));
    if (!f) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    f->magic = FUN_MAGIC; f->run = run; f->mod = m;
    f->nargs = args(f->sizes, 32);
    if (f->nargs > 32) { free(f); RETURN(CUDA_ERROR_INVALID_VALUE); }
    *out = f;
    RETURN(CUDA_SUCCESS);
}

CUresult cuModuleUnload(Module* m)
{
    LOCK();
    NEED_CTX_CLEANUP();
    if (!m || m->magic != MOD_MAGIC) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (m->ctx != current()) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    flush_all();
    m->magic = 0;   /* kept allocated (and the library loaded): stale module and function handles stay recognisable */
    RETURN(CUDA_SUCCESS);
}

CUresult cuLaunchKernel(Function* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* hstream, void** params, void** extra)
{
    LOCK();
    NEED_CTX();
    if (!f || f->magic != FUN_MAGIC || (f->mod && f->mod->magic != MOD_MAGIC)) RETURN(CUDA_ERROR_INVALID_HANDLE);
    Stream* s = stream_of(hstream);
    if (s->magic != STR_MAGIC) RETURN(CUDA_ERROR_INVALID_HANDLE);
    if (f->mod->ctx != current() || (s != &g_null_stream && s->ctx != current())) RETURN(CUDA_ERROR_INVALID_CONTEXT);
    if (gx == 0 || bx == 0 || bx > 1024 || gy != 1 || gz != 1 || by != 1 || bz != 1 || shared != 0 || extra != NULL)
        RETURN(CUDA_ERROR_INVALID_VALUE);   /* MaLiang launches 1-D grids without dynamic shared memory */
    if (f->nargs > 0 && !params) RETURN(CUDA_ERROR_INVALID_VALUE);
    Op* o = calloc(1, sizeof(Op));
    if (!o) RETURN(CUDA_ERROR_OUT_OF_MEMORY);
    o->kind = 2; o->fn = f; o->gx = gx; o->bx = bx;
    if (g_fail_after == 0)
    {
        g_fail_after = -1;
        /* CUDA_ERROR_LAUNCH_FAILED happens on the device: sticky, seen at the next synchronisation. Anything else
           (e.g. CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES) is refused at launch. */
        if (g_fail_status != CUDA_ERROR_LAUNCH_FAILED) { free(o); RETURN(g_fail_status); }
        o->fn = NULL;
    }
    else if (g_fail_after > 0) g_fail_after--;
    o->args = calloc((size_t)(f->nargs > 0 ? f->nargs : 1), 8);
    o->argv = calloc((size_t)(f->nargs > 0 ? f->nargs : 1), sizeof(void*));
    if (!o->args || !o->argv) { free_op(o); RETURN(CUDA_ERROR_OUT_OF_MEMORY); }
    for (int i = 0; i < f->nargs; i++)
    {
        memcpy(o->args + 8 * i, params[i], f->sizes[i] <= 8 ? f->sizes[i] : 8);   /* copied now, as CUDA does */
        o->argv[i] = o->args + 8 * i;
    }
    g_launches++;
    enqueue(s, o);
    RETURN(CUDA_SUCCESS);
}

static const char* err_name(CUresult e)
{
    switch (e)
    {
        case 0: return "CUDA_SUCCESS"; case 1: return "CUDA_ERROR_INVALID_VALUE"; case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
        case 3: return "CUDA_ERROR_NOT_INITIALIZED"; case 101: return "CUDA_ERROR_INVALID_DEVICE";
        case 200: return "CUDA_ERROR_INVALID_IMAGE"; case 201: return "CUDA_ERROR_INVALID_CONTEXT";
        case 218: return "CUDA_ERROR_INVALID_PTX"; case 400: return "CUDA_ERROR_INVALID_HANDLE";
        case 500: return "CUDA_ERROR_NOT_FOUND"; case 700: return "CUDA_ERROR_ILLEGAL_ADDRESS";
        case 712: return "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"; case 713: return "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED";
        case 719: return "CUDA_ERROR_LAUNCH_FAILED"; default: return NULL;
    }
}
CUresult cuGetErrorName(CUresult e, const char** s) { if (!s) return 1; *s = err_name(e); return *s ? 0 : 1; }
CUresult cuGetErrorString(CUresult e, const char** s) { return cuGetErrorName(e, s); }

/* ---------------------------------------------------------------- test controls */
void mlemu_set_memory_limit(size_t bytes) { LOCK(); g_limit = bytes; UNLOCK(); }
/* The launch after `pass` more launches fails with `status`: CUDA_ERROR_LAUNCH_FAILED (719) as a sticky kernel fault seen
   at the next synchronisation, any other status returned by cuLaunchKernel itself; pass < 0: off. */
void mlemu_fail_launch(long pass, int status) { LOCK(); g_fail_after = pass; g_fail_status = status; if (pass < 0) g_sticky = 0; UNLOCK(); }
/* Clears a sticky kernel error (a real context would have to be recreated). */
void mlemu_reset_error(void) { LOCK(); g_sticky = 0; UNLOCK(); }
size_t mlemu_bytes_in_use(void) { return g_device_bytes; }
/* Most device memory in use at once since the last reset (the reset sets it to what is in use now). */
size_t mlemu_peak_bytes(int reset) { LOCK(); if (reset) g_peak_bytes = g_device_bytes; size_t p = g_peak_bytes; UNLOCK(); return p; }
size_t mlemu_pinned_in_use(void) { return g_pinned_bytes; }
size_t mlemu_registered_in_use(void) { return g_registered_bytes; }
int mlemu_streams_live(void) { return g_streams_live; }
long mlemu_launches(void) { return g_launches; }
int mlemu_primary_refs(void) { return g_primary_refs; }

/* ================================================================= NVRTC */
typedef struct Prog { char* src; char* log; char* ptx; size_t ptxSize; } Prog;
enum { NVRTC_SUCCESS = 0, NVRTC_ERROR_INVALID_INPUT = 3, NVRTC_ERROR_INVALID_PROGRAM = 4, NVRTC_ERROR_INVALID_OPTION = 5,
       NVRTC_ERROR_COMPILATION = 6 };

/* A version no real NVRTC has, so the engine's kernel cache (keyed by it) never serves emulator "PTX" to a real driver. */
int nvrtcVersion(int* major, int* minor) { if (!major || !minor) return NVRTC_ERROR_INVALID_INPUT; *major = 99; *minor = 0; return 0; }

const char* nvrtcGetErrorString(int e)
{
    switch (e)
    {
        case 0: return "NVRTC_SUCCESS"; case 3: return "NVRTC_ERROR_INVALID_INPUT"; case 4: return "NVRTC_ERROR_INVALID_PROGRAM";
        case 5: return "NVRTC_ERROR_INVALID_OPTION"; case 6: return "NVRTC_ERROR_COMPILATION"; default: return "NVRTC_ERROR_INTERNAL_ERROR";
    }
}

int nvrtcCreateProgram(Prog** prog, const char* src, const char* name, int numHeaders, const char* const* headers,
                       const char* const* includeNames)
{
    (void)name; (void)headers; (void)includeNames;
    if (!prog || !src || numHeaders != 0) return NVRTC_ERROR_INVALID_INPUT;
    Prog* p = calloc(1, sizeof(Prog));
    p->src = strdup(src);
    p->log = strdup("");
    *prog = p;
    return NVRTC_SUCCESS;
}

int nvrtcCompileProgram(Prog* p, int n, const char* const* options)
{
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    static const char* known[] = { "--fmad=false", "--fmad=true", "--prec-div=true", "--prec-sqrt=true", "--ftz=false",
                                   "--std=c++14", "--std=c++17", "-default-device", NULL };
    for (int i = 0; i < n; i++)
    {
        int ok = strncmp(options[i], "--gpu-architecture=compute_", 27) == 0 || strncmp(options[i], "--gpu-architecture=sm_", 22) == 0;
        for (int k = 0; known[k] && !ok; k++) ok = strcmp(options[i], known[k]) == 0;
        if (!ok)
        {
            free(p->log);
            p->log = malloc(strlen(options[i]) + 40);
            sprintf(p->log, "nvrtc: error: unrecognized option %s\n", options[i]);
            return NVRTC_ERROR_INVALID_OPTION;
        }
    }
    char so[700];
    char* log;
    LOCK();
    int rc = compile_source(p->src, so, sizeof so, &log);
    UNLOCK();
    free(p->log);
    p->log = log ? log : strdup("");
    if (rc != 0) return NVRTC_ERROR_COMPILATION;
    free(p->ptx);
    p->ptxSize = strlen(kPtxTag) + strlen(p->src) + 1;
    p->ptx = malloc(p->ptxSize);
    strcpy(p->ptx, kPtxTag);
    strcat(p->ptx, p->src);
    return NVRTC_SUCCESS;
}

int nvrtcGetProgramLogSize(Prog* p, size_t* n) { if (!p || !n) return NVRTC_ERROR_INVALID_INPUT; *n = strlen(p->log) + 1; return 0; }
int nvrtcGetProgramLog(Prog* p, char* out) { if (!p || !out) return NVRTC_ERROR_INVALID_INPUT; strcpy(out, p->log); return 0; }
int nvrtcGetPTXSize(Prog* p, size_t* n) { if (!p || !n || !p->ptx) return NVRTC_ERROR_INVALID_INPUT; *n = p->ptxSize; return 0; }
int nvrtcGetPTX(Prog* p, char* out) { if (!p || !out || !p->ptx) return NVRTC_ERROR_INVALID_INPUT; memcpy(out, p->ptx, p->ptxSize); return 0; }
int nvrtcDestroyProgram(Prog** p)
{
    if (!p || !*p) return NVRTC_ERROR_INVALID_PROGRAM;
    free((*p)->src); free((*p)->log); free((*p)->ptx); free(*p);
    *p = NULL;
    return NVRTC_SUCCESS;
}
