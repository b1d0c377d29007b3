/* MaLiang kernel prelude for CUDA C++ (NVRTC). Assembled at run time as: prelude + common sources.
   Compiled with --fmad=false --prec-div=true --prec-sqrt=true --ftz=false so float results match the CPU. */
#define ML_CUDA 1
#define KERNEL extern "C" __global__
#define GLOBAL
#define DEVFN static __device__ __forceinline__
#define THREAD_ID ((int)(blockIdx.x * blockDim.x + threadIdx.x))
#define ATOMIC_INC(p) atomicAdd((p), 1)
#define F_SQRT(x) sqrtf(x)
#define F_EXP(x) expf(x)
#define F_LOG(x) logf(x)
#define F_FLOOR(x) floorf(x)
#define IS_FINITE(x) isfinite(x)
#define ML_U64 unsigned long long
#define ML_F64_BITS(d) ((unsigned long long)__double_as_longlong(d))
#define ML_BITS_F64(u) __longlong_as_double((long long)(u))
#define ML_F32_BITS(f) ((unsigned int)__float_as_uint(f))
#define ML_BITS_F32(u) __uint_as_float(u)
#define ML_HAS_FP64 1
