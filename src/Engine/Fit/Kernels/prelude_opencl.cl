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
