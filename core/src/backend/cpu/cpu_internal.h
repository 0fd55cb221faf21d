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


/* The kernels behind the CPU vtable (signatures exactly as in struct rt_backend). */
/* y += alpha * x, contiguous (cpu_elementwise.c) */
enum rt_status rt_cpu_axpy(enum rt_dtype dt, int64_t n, double alpha, const void *x, void *y);
enum rt_status rt_cpu_accumulate(double *acc, const struct rt_accumulate_args *a);
/* fused SGD step (cpu_optim.c) */
enum rt_status rt_cpu_sgd_update(enum rt_dtype dt, int k, const struct rt_sgd_param *ps,
                                 const struct rt_sgd_opts *o);
enum rt_status rt_cpu_adam_update(enum rt_dtype dt, int k, const struct rt_adam_param *ps,
                                  const struct rt_adam_opts *o);
/* host memory with a per-size block cache (cpu_cache.c) */
enum rt_status rt_cpu_alloc(size_t nbytes, void **out);
void rt_cpu_free(void *p, size_t nbytes);
size_t rt_cpu_cache_flush(void); /* bytes released */
void rt_cpu_cache_stats(size_t *cached, size_t *peak_reserved);

enum rt_status rt_cpu_copy(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                           enum rt_dtype src_dt);
enum rt_status rt_cpu_fill(enum rt_dtype dt, int64_t n, double value, void *dst);
enum rt_status rt_cpu_unary(enum rt_unary_op op, enum rt_dtype dt, int64_t n, const void *x, void *y, double a,
                            double b);
enum rt_status rt_cpu_binary(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape, const void *a,
                             const int64_t *astride, const void *b, const int64_t *bstride, void *out);
enum rt_status rt_cpu_where(enum rt_dtype dt, int64_t n, const uint8_t *cond, const void *a, const void *b,
                            void *out);
enum rt_status rt_cpu_reduce(enum rt_reduce_op op, enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner,
                             const void *x, void *out, int64_t *idx, double p);
enum rt_status rt_cpu_gemm(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                           const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                           int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch);
enum rt_status rt_cpu_softmax(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t,
                              const void *x, void *y);
enum rt_status rt_cpu_softmax_backward(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner,
                                       double inv_t, const void *y, const void *gy, void *gx);
enum rt_status rt_cpu_check_index(const char *op, const char *what, int64_t n, const int64_t *ix, int64_t base,
                                  int64_t limit, int64_t ignore, int64_t *out);
enum rt_status rt_cpu_index_copy(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                 int64_t m, const void *src, void *out);
enum rt_status rt_cpu_index_select(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                   int64_t m, const void *x, void *out);
enum rt_status rt_cpu_gather(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                             const int64_t *index, const void *x, void *out);
enum rt_status rt_cpu_scatter_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                                  const int64_t *index, const void *src, void *out);
enum rt_status rt_cpu_index_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                int64_t m, const void *src, void *out);
enum rt_status rt_cpu_uniform(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double lo, double hi,
                              void *out);
enum rt_status rt_cpu_normal(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double mean, double std,
                             void *out);
enum rt_status rt_cpu_dropout(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double keep, double scale,
                              const void *x, void *y, void *mask);

#endif
