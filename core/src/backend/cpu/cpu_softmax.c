/* Softmax and log-softmax with temperature over the middle axis of (outer, n, inner), and their
 * backward. Stable: the row max of x * inv_t is subtracted before exp, and sums run in double, so
 * logits of +-1e4 or a large temperature still give finite, normalised results. inner > 1 works on
 * blocks of SM_LANES neighbouring rows so reads stay contiguous. */
#include "backend/cpu/cpu_internal.h"

#define SM_LANES 64

#define DEF_SOFTMAX(SUF, T)                                                                                       \
    /* One row: element j at x[j * st] (st = inner), L rows side by side at x[j * st + l]. */                    \
    RT_CPU_INLINE void sm_fwd_##SUF(bool lg, int64_t n, int64_t st, int64_t L, double inv_t, const T *x, T *y)        \
    {                                                                                                             \
        double m[SM_LANES], s[SM_LANES];                                                                          \
        for (int64_t l = 0; l < L; l++)                                                                           \
            m[l] = -INFINITY, s[l] = 0;                                                                           \
        for (int64_t j = 0; j < n; j++)                                                                           \
            for (int64_t l = 0; l < L; l++) {                                                                     \
                double z = (double)x[j * st + l] * inv_t;                                                         \
                m[l] = z > m[l] ? z : m[l];                                                                       \
            }                                                                                                     \
        if (lg) {                                                                                                 \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++)                                                                   \
                    s[l] += exp((double)x[j * st + l] * inv_t - m[l]);                                            \
            for (int64_t l = 0; l < L; l++)                                                                       \
                s[l] = m[l] + log(s[l]); /* log-normaliser */                                                     \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++)                                                                   \
                    y[j * st + l] = (T)((double)x[j * st + l] * inv_t - s[l]);                                    \
        } else {                                                                                                  \
            /* y holds the unnormalised exps between the passes */                                                \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++) {                                                                 \
                    double e = exp((double)x[j * st + l] * inv_t - m[l]);                                         \
                    y[j * st + l] = (T)e;                                                                         \
                    s[l] += e;                                                                                    \
                }                                                                                                 \
            for (int64_t l = 0; l < L; l++)                                                                       \
                s[l] = 1.0 / s[l];                                                                                \
            for (int64_t j = 0; j < n; j++)                                                                       \
                for (int64_t l = 0; l < L; l++)                                                                   \
                    y[j * st + l] = (T)((double)y[j * st + l] * s[l]);                                            \
        }                                                                                                         \
    }                                                                                                             \
                                                                                                                  \
    /* softmax: gx = inv_t * y * (gy - sum(gy * y)); log-softmax: gx = inv_t * (gy - exp(y) * sum(gy)) */       \
    RT_CPU_INLINE void sm_bwd_##SUF(bool lg, int64_t n, int64_t st, int64_t L, double inv_t, const T *y, const T *gy,  \
                             T *gx)                                                                               \
    {                                                                                                             \
        double s[SM_LANES];                                                                                       \
        for (int64_t l = 0; l < L; l++)                                                                           \
            s[l] = 0;                                                                                             \
        for (int64_t j = 0; j < n; j++)                                                                           \
            for (int64_t l = 0; l < L; l++)                                                                       \
                s[l] += lg ? (double)gy[j * st + l] : (double)gy[j * st + l] * (double)y[j * st + l];             \
        for (int64_t j = 0; j < n; j++)                                                                           \
            for (int64_t l = 0; l < L; l++) {                                                                     \
                double g = gy[j * st + l], v = y[j * st + l];                                                     \
                gx[j * st + l] = (T)(lg ? inv_t * (g - exp(v) * s[l]) : inv_t * v * (g - s[l]));                  \
            }                                                                                                     \
    }
DEF_SOFTMAX(f32, float)
DEF_SOFTMAX(f64, double)

/* Runs fn over all rows: inner == 1 rows are contiguous (one lane, stride 1); otherwise blocks of
 * up to SM_LANES lanes. Parallel over rows/blocks only, so each row's sums keep a fixed order. */
#define SM_DRIVE(CALL)                                                                                            \
    do {                                                                                                          \
        int64_t work = outer * n * inner, nb = (inner + SM_LANES - 1) / SM_LANES;                                 \
        _Pragma("omp parallel for if (work >= RT_CPU_PARALLEL_MIN) schedule(static)")                            \
        for (int64_t t = 0; t < outer * nb; t++) {                                                                \
            int64_t o = t / nb, i0 = t % nb * SM_LANES;                                                           \
            int64_t L = inner - i0 < SM_LANES ? inner - i0 : SM_LANES;                                            \
            int64_t base = o * n * inner + i0;                                                                    \
            if (inner == 1) { /* fast path: contiguous row, constants folded into the inlined body */          \
                const int64_t L = 1, inner = 1;                                                                   \
                CALL;                                                                                             \
            } else {                                                                                              \
                CALL;                                                                                             \
            }                                                                                                     \
        }                                                                                                         \
    } while (0)

enum rt_status rt_cpu_softmax(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t,
                              const void *x, void *y)
{
    enum rt_status st = rt_backend_float_only(log ? "log_softmax" : "softmax", dt);
    if (st != RT_OK || outer <= 0 || n <= 0 || inner <= 0)
        return st;
    if (dt == RT_F32)
        SM_DRIVE(sm_fwd_f32(log, n, inner, L, inv_t, (const float *)x + base, (float *)y + base));
    else
        SM_DRIVE(sm_fwd_f64(log, n, inner, L, inv_t, (const double *)x + base, (double *)y + base));
    return RT_OK;
}

enum rt_status rt_cpu_softmax_backward(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner,
                                       double inv_t, const void *y, const void *gy, void *gx)
{
    enum rt_status st = rt_backend_float_only(log ? "log_softmax backward" : "softmax backward", dt);
    if (st != RT_OK || outer <= 0 || n <= 0 || inner <= 0)
        return st;
    if (dt == RT_F32)
        SM_DRIVE(sm_bwd_f32(log, n, inner, L, inv_t, (const float *)y + base, (const float *)gy + base,
                            (float *)gx + base));
    else
        SM_DRIVE(sm_bwd_f64(log, n, inner, L, inv_t, (const double *)y + base, (const double *)gy + base,
                            (double *)gx + base));
    return RT_OK;
}
