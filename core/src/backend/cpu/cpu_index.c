/* Indexing kernels over (outer, n, inner) layouts, and the index check that runs before them.
 * Selection/gather only move bytes (dispatch on element size); the adds are typed. Parallel
 * loops split over outer slabs, never over the indexed axis, so concurrent adds never hit the same
 * output and accumulation order is fixed. */
#include "backend/cpu/cpu_internal.h"

/* Checks every value before writing any: a bad index leaves out untouched. */
enum rt_status rt_cpu_check_index(const char *op, const char *what, int64_t n, const int64_t *ix, int64_t base,
                                  int64_t limit, int64_t ignore, int64_t *out)
{
    bool has_ignore = ignore != RT_NO_IGNORE;
    for (int64_t i = 0; i < n; i++)
        if (!(has_ignore && ix[i] == ignore) && (ix[i] < base || ix[i] - base >= limit))
            return rt_backend_bad_index(op, what, ix[i], i, base, limit, "");
    for (int64_t i = 0; out && i < n; i++)
        out[i] = ix[i] - base;
    return RT_OK;
}

enum rt_status rt_cpu_index_select(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                   int64_t m, const void *x, void *out)
{
    size_t es = rt_dtype_size(dt);
    if (!es)
        return rt_backend_unknown_dtype("index_select", dt);
    /* out[o, j, :] = x[o, index[j], :]: one contiguous run of inner elements per (o, j). */
    size_t run = (size_t)inner * es;
    int64_t rows = outer * m, work = rows * inner;
#pragma omp parallel for if (work >= RT_CPU_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t o = r / m, j = r % m;
        memcpy((char *)out + (size_t)r * run, (const char *)x + (size_t)(o * n + index[j]) * run, run);
    }
    return RT_OK;
}

enum rt_status rt_cpu_index_copy(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                 int64_t m, const void *src, void *out)
{
    size_t es = rt_dtype_size(dt);
    if (!es)
        return rt_backend_unknown_dtype("index_copy", dt);
    size_t run = (size_t)inner * es;
    int64_t work = outer * m * inner;
    /* rows in order within a slab: with a repeated index the last row wins, as a loop would leave it */
#pragma omp parallel for if (work >= RT_CPU_PARALLEL_MIN && outer > 1) schedule(static)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            memcpy((char *)out + (size_t)(o * n + index[j]) * run, (const char *)src + (size_t)(o * m + j) * run, run);
    return RT_OK;
}

#define GATHER_LOOP(U)                                                                                            \
    do {                                                                                                          \
        const U *px = x;                                                                                          \
        U *po = out;                                                                                              \
        _Pragma("omp parallel for if (work >= RT_CPU_PARALLEL_MIN) schedule(static)")                            \
        for (int64_t o = 0; o < outer; o++)                                                                       \
            for (int64_t j = 0; j < m; j++) {                                                                     \
                int64_t e = (o * m + j) * inner;                                                                  \
                for (int64_t i = 0; i < inner; i++)                                                               \
                    po[e + i] = px[(o * n + index[e + i]) * inner + i];                                           \
            }                                                                                                     \
    } while (0)

enum rt_status rt_cpu_gather(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                             const int64_t *index, const void *x, void *out)
{
    int64_t work = outer * m * inner;
    switch (rt_dtype_size(dt)) {
    case 1: GATHER_LOOP(uint8_t); break;
    case 4: GATHER_LOOP(uint32_t); break;
    case 8: GATHER_LOOP(uint64_t); break;
    default: return rt_backend_unknown_dtype("gather", dt);
    }
    return RT_OK;
}

/* scatter_add: out[o, index[o,j,i], i] += src[o,j,i]; index_add: out[o, index[j], i] += src[o,j,i].
 * j runs in increasing order for every output, whatever the thread count. */
#define DEF_ADDS(SUF, T)                                                                                          \
    static void scatter_add_##SUF(int64_t outer, int64_t n, int64_t inner, int64_t m, const int64_t *index,      \
                                  const T *src, T *out)                                                           \
    {                                                                                                             \
        int64_t work = outer * m * inner;                                                                         \
        _Pragma("omp parallel for if (work >= RT_CPU_PARALLEL_MIN && outer > 1) schedule(static)")               \
        for (int64_t o = 0; o < outer; o++)                                                                       \
            for (int64_t j = 0; j < m; j++) {                                                                     \
                int64_t e = (o * m + j) * inner;                                                                  \
                for (int64_t i = 0; i < inner; i++) {                                                             \
                    T *d = &out[(o * n + index[e + i]) * inner + i];                                              \
                    *d = (T)RT_CPU_WADD(*d, src[e + i]);                                                          \
                }                                                                                                 \
            }                                                                                                     \
    }                                                                                                             \
    static void index_add_##SUF(int64_t outer, int64_t n, int64_t inner, const int64_t *index, int64_t m,        \
                                const T *src, T *out)                                                             \
    {                                                                                                             \
        int64_t work = outer * m * inner;                                                                         \
        _Pragma("omp parallel for if (work >= RT_CPU_PARALLEL_MIN && outer > 1) schedule(static)")               \
        for (int64_t o = 0; o < outer; o++)                                                                       \
            for (int64_t j = 0; j < m; j++) {                                                                     \
                T *d = out + (o * n + index[j]) * inner;                                                          \
                const T *s = src + (o * m + j) * inner;                                                           \
                for (int64_t i = 0; i < inner; i++)                                                               \
                    d[i] = (T)RT_CPU_WADD(d[i], s[i]);                                                            \
            }                                                                                                     \
    }
RT_CPU_FOR_EACH_DTYPE(DEF_ADDS)

enum rt_status rt_cpu_scatter_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                                  const int64_t *index, const void *src, void *out)
{
    switch (dt) {
    case RT_F32: scatter_add_f32(outer, n, inner, m, index, src, out); break;
    case RT_F64: scatter_add_f64(outer, n, inner, m, index, src, out); break;
    case RT_I64: scatter_add_i64(outer, n, inner, m, index, src, out); break;
    case RT_U8: scatter_add_u8(outer, n, inner, m, index, src, out); break;
    default: return rt_backend_unknown_dtype("scatter_add", dt);
    }
    return RT_OK;
}

enum rt_status rt_cpu_index_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                int64_t m, const void *src, void *out)
{
    switch (dt) {
    case RT_F32: index_add_f32(outer, n, inner, index, m, src, out); break;
    case RT_F64: index_add_f64(outer, n, inner, index, m, src, out); break;
    case RT_I64: index_add_i64(outer, n, inner, index, m, src, out); break;
    case RT_U8: index_add_u8(outer, n, inner, index, m, src, out); break;
    default: return rt_backend_unknown_dtype("index_add", dt);
    }
    return RT_OK;
}
