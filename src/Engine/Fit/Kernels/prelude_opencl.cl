/* MaLiang kernel prelude for OpenCL C 1.2. Assembled at run time as: prelude + common sources.
   The common sources use only these macros, plain C and float math; no backend-specific builtins. */
#pragma OPENCL FP_CONTRACT OFF
#define ML_OPENCL 1
#define KERNEL __kernel
#define GLOBAL __global
#define DEVFN static inline
#define THREAD_ID ((int)get_global_id(0))
#define ATOMIC_INC(p) atomic_inc(p)
#define F_SQRT(x) sqrt(x)
#define F_EXP(x) exp(x)
#define F_LOG(x) log(x)
#define F_FLOOR(x) floor(x)
#define IS_FINITE(x) isfinite(x)
#define ML_U64 ulong
#define ML_F64_BITS(d) as_ulong(d)
#define ML_BITS_F64(u) as_double(u)
#define ML_F32_BITS(f) as_uint(f)
#define ML_BITS_F32(u) as_float(u)
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define ML_HAS_FP64 1
#endif
