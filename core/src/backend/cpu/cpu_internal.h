/* Helpers shared by the CPU kernels: the parallel threshold, dtype dispatch and the conversions
 * every kernel needs. Not part of any public API. */
#ifndef RETORT_CPU_INTERNAL_H
#define RETORT_CPU_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/hostdev.h"
#include "retort/common.h"

/* Below this many elements an OpenMP fork/join costs more than it saves. */
#define RT_CPU_PARALLEL_MIN ((int64_t)1 << 16)

/* Flat loops are cut into chunks of this many elements: the unit of parallel work, small enough
 * to balance threads and large enough that per-chunk setup (offset arithmetic) is noise. */
#define RT_CPU_CHUNK ((int64_t)4096)

/* Kernels are written once as a macro template over an element type T and instantiated per dtype
 * with RT_CPU_FOR_EACH_DTYPE(TEMPLATE): TEMPLATE(suffix, C type). */
#define RT_CPU_FOR_EACH_DTYPE(X) X(f32, float) X(f64, double) X(i64, int64_t) X(u8, uint8_t)

/* Forced inlining: lets one kernel body serve both a fast path with constant arguments (e.g. one
 * contiguous row) and the general case, with the compiler specialising each call site. */
#if defined(__GNUC__)
#define RT_CPU_INLINE static inline __attribute__((always_inline))
#else
#define RT_CPU_INLINE static inline
#endif

/* Compile-time "is this element type floating point" for code shared by all four dtypes. */
#define RT_CPU_IS_FLOAT(T) ((T)0.5 != 0)

/* Conversions to each element type. Integer targets wrap like C integer conversions (u8 modulo 256);
 * float sources go through the saturating int64 path so nothing is undefined. */
#define RT_CPU_TO_F32(v) ((float)(v))
#define RT_CPU_TO_F64(v) ((double)(v))
#define RT_CPU_TO_I64(v) _Generic((v), float: rt__f2i64((double)(v)), double: rt__f2i64((double)(v)), \
                                  default: (int64_t)(v))
#define RT_CPU_TO_U8(v) ((uint8_t)RT_CPU_TO_I64(v))
/* Convert v to element type T (a C type name). */
#define RT_CPU_CVT(T, v)                                                                                          \
    ((T)_Generic((T)0, float: RT_CPU_TO_F32(v), double: RT_CPU_TO_F64(v), int64_t: RT_CPU_TO_I64(v),            \
                 default: RT_CPU_TO_U8(v)))

/* x < 0 for any element type, without -Wtype-limits noise on uint8_t (which is never negative). */
static inline bool rt_cpu_lt0_f32(float v) { return v < 0; }
static inline bool rt_cpu_lt0_f64(double v) { return v < 0; }
static inline bool rt_cpu_lt0_i64(int64_t v) { return v < 0; }
static inline bool rt_cpu_lt0_u8(uint8_t v) { return (void)v, false; }
#define RT_CPU_LT0(v)                                                                                             \
    _Generic((v), float: rt_cpu_lt0_f32, double: rt_cpu_lt0_f64, int64_t: rt_cpu_lt0_i64, uint8_t: rt_cpu_lt0_u8)(v)

/* Wrapping integer arithmetic: i64 overflow is undefined in C, so go through uint64_t. */
#define RT_CPU_WADD(x, y) _Generic((x), int64_t: (int64_t)((uint64_t)(x) + (uint64_t)(y)), default: (x) + (y))
#define RT_CPU_WSUB(x, y) _Generic((x), int64_t: (int64_t)((uint64_t)(x) - (uint64_t)(y)), default: (x) - (y))
#define RT_CPU_WMUL(x, y) _Generic((x), int64_t: (int64_t)((uint64_t)(x) * (uint64_t)(y)), default: (x) * (y))


/* The kernels behind the CPU table: rt_cpu_<name> for each line of RT_BACKEND_KERNELS (backend/backend.h)
 * built for the CPU, declared from that list (their files: cpu_<family>.c). */
#define RT_CPU_KERNEL_PROTO(where, name, params) RT_KERNEL_IF(where, CPU, enum rt_status rt_cpu_##name params;, )
RT_BACKEND_KERNELS(RT_CPU_KERNEL_PROTO)
#undef RT_CPU_KERNEL_PROTO

/* host memory with a per-size block cache (cpu_cache.c) */
enum rt_status rt_cpu_alloc(size_t nbytes, void **out);
void rt_cpu_free(void *p, size_t nbytes);
size_t rt_cpu_cache_flush(void); /* bytes released */
void rt_cpu_cache_stats(size_t *cached, size_t *peak_reserved);

#endif
