/* Reductions over the middle axis of (outer, n, inner). inner == 1 walks contiguous rows; inner > 1
 * processes blocks of up to RED_LANES neighbouring outputs at once so every read is contiguous.
 * Each output is produced by one thread in a fixed order: results do not depend on thread count.
 *
 * The sum over a batch (a bias's gradient: (B, C) summed over B, inner = C) is the hot case of
 * inner > 1: a full block is summed RED_GROUP lanes at a time, with the group's accumulators in
 * vector registers (the loops are multi-versioned for AVX2/AVX-512, cpu_clones.h), in the same order
 * as the general loop, so the results are bit for bit the same. Sums, means and extrema are one
 * add or compare per element: like the cheap element-wise loops (cpu_elementwise.c) they go
 * parallel only from CHEAP_PARALLEL_MIN elements; logsumexp and norms from RT_CPU_PARALLEL_MIN. */
#include "backend/cpu/cpu_clones.h"
#include "backend/cpu/cpu_internal.h"

#define RED_LANES 64
#define RED_GROUP 16
#define CHEAP_PARALLEL_MIN ((int64_t)1 << 18)

/* Floating sums accumulate in double (f32 inputs included); integer sums in wrapping int64. */
#define ACC_OF_f32 double
#define ACC_OF_f64 double
#define ACC_OF_i64 int64_t
#define ACC_OF_u8 int64_t

/* NaN-aware "v beats best": a NaN beats everything and nothing beats a NaN, so the first NaN wins
 * (NaN propagates, its index is reported). Strict comparison keeps the FIRST extremum. */
#define BEATS_MAX(v, best) ((v) != (v) ? (best) == (best) : (v) > (best))
#define BEATS_MIN(v, best) ((v) != (v) ? (best) == (best) : (v) < (best))

/* Norm of order p from the accumulated value (count, sum, max or min of |x|). */
static double norm_finish(double acc, double p)
{
    if (p == 2)
        return sqrt(acc);
    if (p == 1 || p == 0 || isinf(p))
        return acc;
    return pow(acc, 1.0 / p);
}

static inline double norm_term(double v, double p)
{
    double a = fabs(v);
    if (p == 2)
        return v * v;
    if (p == 1)
        return a;
    if (p == 0)
        return v != 0; /* p = 0: number of non-zeros */
    return pow(a, p);
}

#define DEF_REDUCE(SUF, T)                                                                                        \
    /* One output: n elements x[j * st]. */                                                                       \
    RT_CPU_CLONES static void red_line_##SUF(enum rt_reduce_op op, int64_t n, const T *x, int64_t st, double p, T *out,        \
                               int64_t *idx)                                                                      \
    {                                                                                                             \
        typedef ACC_OF_##SUF acc_t;                                                                               \
        switch (op) {                                                                                             \
        case RT_RED_SUM:                                                                                          \
        case RT_RED_MEAN: {                                                                                       \
            acc_t s = 0;                                                                                          \
            for (int64_t j = 0; j < n; j++)                                                                       \
                s = RT_CPU_WADD(s, (acc_t)x[j * st]);                                                             \
            *out = op == RT_RED_MEAN ? RT_CPU_CVT(T, (double)s / (double)n) : RT_CPU_CVT(T, s);                   \
            break;                                                                                                \
        }                                                                                                         \
        case RT_RED_MAX:                                                                                          \
        case RT_RED_MIN: {                                                                                        \
            T best = x[0];                                                                                        \
            int64_t bi = 0;                                                                                       \
            if (op == RT_RED_MAX) {                                                                               \
                for (int64_t j = 1; j < n; j++)                                                                   \
                    if (BEATS_MAX(x[j * st], best))                                                               \
                        best = x[j * st], bi = j;                                                                 \
            } else {                                                                                              \
                for (int64_t j = 1; j < n; j++)                                                                   \
                    if (BEATS_MIN(x[j * st], best))                                                               \
                        best = x[j * st], bi = j;                                                                 \
            }                                                                                                     \
            *out = best;                                                                                          \
            if (idx)                                                                                              \
                *idx = bi;                                                                                        \
            break;                                                                                                \
        }                                                                                                         \
        case RT_RED_LOGSUMEXP: {                                                                                  \
            double m = -INFINITY;                                                                                 \
            for (int64_t j = 0; j < n; j++) {                                                                     \
                double v = (double)x[j * st];                                                                     \
                if (BEATS_MAX(v, m))                                                                              \
                    m = v;                                                                                        \
            }                                                                                                     \
            /* NaN, all -inf (or empty) and +inf rows are their own answer; otherwise shift by the max */        \
            if (m != m || isinf(m)) {                                                                             \
                *out = RT_CPU_CVT(T, m);                                                                          \
                break;                                                                                            \
            }                                                                                                     \
            double s = 0;                                                                                         \
            for (int64_t j = 0; j < n; j++)                                                                       \
                s += exp((double)x[j * st] - m);                                                                  \
            *out = RT_CPU_CVT(T, m + log(s));                                                                     \
            break;                                                                                                \
        }                                                                                                         \
        case RT_RED_NORM: {                                                                                       \
            double acc;                                                                                           \
            if (isinf(p)) { /* max |x| (p = inf) or min |x| (p = -inf), NaN propagating */                       \
                acc = p > 0 ? 0.0 : INFINITY;                                                                     \
                for (int64_t j = 0; j < n; j++) {                                                                 \
                    double a = fabs((double)x[j * st]);                                                           \
                    if (p > 0 ? BEATS_MAX(a, acc) : BEATS_MIN(a, acc))                                            \
                        acc = a;                                                                                  \
                }                                                                                                 \
                if (n == 0)                                                                                       \
                    acc = 0;                                                                                      \
            } else {                                                                                              \
                acc = 0;                                                                                          \
                for (int64_t j = 0; j < n; j++)                                                                   \
                    acc += norm_term((double)x[j * st], p);                                                       \
            }                                                                                                     \
            *out = RT_CPU_CVT(T, norm_finish(acc, p));                                                            \
            break;                                                                                                \
        }                                                                                                         \
        }                                                                                                         \
    }                                                                                                             \
                                                                                                                  \
    /* L <= RED_LANES neighbouring outputs: element (j, l) is x[j * inner + l]. */                              \
    RT_CPU_CLONES static void red_block_##SUF(enum rt_reduce_op op, int64_t n, int64_t inner, int64_t L, const T *x, double p, \
                                T *out, int64_t *idx)                                                             \
    {                                                                                                             \
        typedef ACC_OF_##SUF acc_t;                                                                               \
        switch (op) {                                                                                             \
        case RT_RED_SUM:                                                                                          \
        case RT_RED_MEAN: {                                                                                       \
            acc_t s[RED_LANES] = {0};                                                                             \
            if (L == RED_LANES) { /* a full block: fixed-width groups, accumulators in registers */               \
                for (int64_t l0 = 0; l0 < RED_LANES; l0 += RED_GROUP) {                                           \
                    acc_t g[RED_GROUP] = {0};                                                                     \
                    for (int64_t j = 0; j < n; j++)                                                               \
                        for (int l = 0; l < RED_GROUP; l++)                                                       \
                            g[l] = RT_CPU_WADD(g[l], (acc_t)x[j * inner + l0 + l]);                               \
                    for (int l = 0; l < RED_GROUP; l++)                                                           \
                        s[l0 + l] = g[l];                                                                         \
                }                                                                                                 \
            } else {                                                                                              \
                for (int64_t j = 0; j < n; j++)                                                                   \
                    for (int64_t l = 0; l < L; l++)                                                               \
                        s[l] = RT_CPU_WADD(s[l], (acc_t)x[j * inner + l]);                                        \
            }                                                                                                     \
            for (int64_t l = 0; l < L; l++)                                                                       \
                out[l] = op == RT_RED_MEAN ? RT_CPU_CVT(T, (double)s[l] / (double)n) : RT_CPU_CVT(T, s[l]);       \
            break;                                                                                                \
        }                                                                                                         \
        case RT_RED_MAX:                                                                                          \
        case RT_RED_MIN: {                                                                                        \
            int64_t bi[RED_LANES] = {0};                                                                          \
            for (int64_t l = 0; l < L; l++)                                                                       \
                out[l] = x[l];                                                                                    \
            for (int64_t j = 1; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++) {                                                                 \
                    T v = x[j * inner + l];                                                                       \
                    if (op == RT_RED_MAX ? BEATS_MAX(v, out[l]) : BEATS_MIN(v, out[l]))                           \
                        out[l] = v, bi[l] = j;                                                                    \
                }                                                                                                 \
            if (idx)                                                                                              \
                for (int64_t l = 0; l < L; l++)                                                                   \
                    idx[l] = bi[l];                                                                               \
            break;                                                                                                \
        }                                                                                                         \
        case RT_RED_LOGSUMEXP: {                                                                                  \
            double m[RED_LANES], s[RED_LANES];                                                                    \
            for (int64_t l = 0; l < L; l++)                                                                       \
                m[l] = -INFINITY, s[l] = 0;                                                                       \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++) {                                                                 \
                    double v = (double)x[j * inner + l];                                                          \
                    if (BEATS_MAX(v, m[l]))                                                                       \
                        m[l] = v;                                                                                 \
                }                                                                                                 \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++)                                                                   \
                    s[l] += exp((double)x[j * inner + l] - m[l]);                                                 \
            for (int64_t l = 0; l < L; l++)                                                                       \
                out[l] = RT_CPU_CVT(T, m[l] != m[l] || isinf(m[l]) ? m[l] : m[l] + log(s[l]));                    \
            break;                                                                                                \
        }                                                                                                         \
        case RT_RED_NORM: {                                                                                       \
            double acc[RED_LANES];                                                                                \
            bool ext = isinf(p);                                                                                  \
            for (int64_t l = 0; l < L; l++)                                                                       \
                acc[l] = ext && p < 0 && n > 0 ? INFINITY : 0.0;                                                  \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++) {                                                                 \
                    double v = (double)x[j * inner + l];                                                          \
                    if (!ext)                                                                                     \
                        acc[l] += norm_term(v, p);                                                                \
                    else if (p > 0 ? BEATS_MAX(fabs(v), acc[l]) : BEATS_MIN(fabs(v), acc[l]))                     \
                        acc[l] = fabs(v);                                                                         \
                }                                                                                                 \
            for (int64_t l = 0; l < L; l++)                                                                       \
                out[l] = RT_CPU_CVT(T, norm_finish(acc[l], p));                                                   \
            break;                                                                                                \
        }                                                                                                         \
        }                                                                                                         \
    }                                                                                                             \
                                                                                                                  \
    static void red_##SUF(enum rt_reduce_op op, int64_t outer, int64_t n, int64_t inner, const void *xv,         \
                          void *outv, int64_t *idx, double p)                                                     \
    {                                                                                                             \
        const T *x = xv;                                                                                          \
        T *out = outv;                                                                                            \
        int64_t work = outer * n * inner;                                                                         \
        int64_t par_min = op == RT_RED_LOGSUMEXP || op == RT_RED_NORM ? RT_CPU_PARALLEL_MIN : CHEAP_PARALLEL_MIN; \
        if (inner == 1) {                                                                                         \
            _Pragma("omp parallel for if (work >= par_min) schedule(static)")                                    \
            for (int64_t o = 0; o < outer; o++)                                                                   \
                red_line_##SUF(op, n, x + o * n, 1, p, out + o, idx ? idx + o : NULL);                            \
            return;                                                                                               \
        }                                                                                                         \
        int64_t nb = (inner + RED_LANES - 1) / RED_LANES;                                                         \
        _Pragma("omp parallel for if (work >= par_min) schedule(static)")                                        \
        for (int64_t t = 0; t < outer * nb; t++) {                                                                \
            int64_t o = t / nb, i0 = t % nb * RED_LANES;                                                          \
            int64_t L = inner - i0 < RED_LANES ? inner - i0 : RED_LANES;                                          \
            red_block_##SUF(op, n, inner, L, x + o * n * inner + i0, p, out + o * inner + i0,                     \
                            idx ? idx + o * inner + i0 : NULL);                                                   \
        }                                                                                                         \
    }
RT_CPU_FOR_EACH_DTYPE(DEF_REDUCE)

enum rt_status rt_cpu_reduce(enum rt_reduce_op op, enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner,
                             const void *x, void *out, int64_t *idx, double p)
{
    enum rt_status st = rt_backend_reduce_args(op, dt, n);
    if (st != RT_OK)
        return st;
    if (outer <= 0 || inner <= 0)
        return RT_OK;
    /* n == 0 falls through: sum -> 0, mean -> 0/0 = NaN, logsumexp -> -inf, norm -> 0. */
    switch (dt) {
    case RT_F32: red_f32(op, outer, n, inner, x, out, idx, p); break;
    case RT_F64: red_f64(op, outer, n, inner, x, out, idx, p); break;
    case RT_I64: red_i64(op, outer, n, inner, x, out, idx, p); break;
    default: red_u8(op, outer, n, inner, x, out, idx, p); break;
    }
    return RT_OK;
}
