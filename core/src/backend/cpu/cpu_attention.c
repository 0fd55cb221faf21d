/* Attention maps for attention transfer, forward and backward (formulas in backend.h and
 * retort/loss.h). One sample per iteration, samples split across threads; the channel mean is
 * accumulated in double in a per-thread row, so f is read once and nothing of its size is made. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/cpu_nn.h"

#define AT_EPS 1e-12

/* x^p, with the common p = 1, 2 exact and cheap */
static inline double power(double x, double p) { return p == 2 ? x * x : p == 1 ? x : pow(x, p); }
/* d x^p / dx */
static inline double dpower(double x, double p) { return p == 2 ? 2 * x : p == 1 ? 1 : p * pow(x, p - 1); }

#define DEF_AT(SUF, T_)                                                                                           \
    static enum rt_status at_fwd_##SUF(int64_t n, int64_t c, int64_t hw, double p, const T_ *f, T_ *y, T_ *nrm)  \
    {                                                                                                             \
        bool oom = false;                                                                                         \
        _Pragma("omp parallel if (n * c * hw >= RT_CPU_PARALLEL_MIN)")                                           \
        {                                                                                                         \
            double *a = malloc((size_t)(hw > 0 ? hw : 1) * sizeof *a);                                           \
            if (!a) {                                                                                             \
                _Pragma("omp atomic write") oom = true;                                                           \
            }                                                                                                     \
            _Pragma("omp for schedule(static)")                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                if (!a)                                                                                           \
                    continue;                                                                                     \
                for (int64_t s = 0; s < hw; s++)                                                                  \
                    a[s] = 0;                                                                                     \
                for (int64_t k = 0; k < c; k++) {                                                                 \
                    const T_ *fr = f + (i * c + k) * hw;                                                          \
                    for (int64_t s = 0; s < hw; s++)                                                              \
                        a[s] += power((double)fr[s], p);                                                          \
                }                                                                                                 \
                double ss = 0;                                                                                    \
                for (int64_t s = 0; s < hw; s++) {                                                                \
                    a[s] /= (double)c;                                                                            \
                    ss += a[s] * a[s];                                                                            \
                }                                                                                                 \
                double norm = sqrt(ss), d = norm > AT_EPS ? norm : AT_EPS;                                        \
                for (int64_t s = 0; s < hw; s++)                                                                  \
                    y[i * hw + s] = (T_)(a[s] / d);                                                               \
                nrm[i] = (T_)norm;                                                                                \
            }                                                                                                     \
            free(a);                                                                                              \
        }                                                                                                         \
        return oom ? rt_error(RT_ERR_OOM, "attention_map: out of memory") : RT_OK;                                \
    }                                                                                                             \
    static enum rt_status at_bwd_##SUF(int64_t n, int64_t c, int64_t hw, double p, const T_ *f, const T_ *y,      \
                                       const T_ *nrm, const T_ *gy, T_ *gf)                                       \
    {                                                                                                             \
        bool oom = false;                                                                                         \
        _Pragma("omp parallel if (n * c * hw >= RT_CPU_PARALLEL_MIN)")                                           \
        {                                                                                                         \
            double *ga = malloc((size_t)(hw > 0 ? hw : 1) * sizeof *ga);                                         \
            if (!ga) {                                                                                            \
                _Pragma("omp atomic write") oom = true;                                                           \
            }                                                                                                     \
            _Pragma("omp for schedule(static)")                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                if (!ga)                                                                                          \
                    continue;                                                                                     \
                const T_ *yr = y + i * hw, *gr = gy + i * hw;                                                     \
                double norm = (double)nrm[i];                                                                     \
                if (norm > AT_EPS) {                                                                              \
                    double dot = 0;                                                                               \
                    for (int64_t s = 0; s < hw; s++)                                                              \
                        dot += (double)yr[s] * (double)gr[s];                                                     \
                    for (int64_t s = 0; s < hw; s++)                                                              \
                        ga[s] = ((double)gr[s] - (double)yr[s] * dot) / (norm * (double)c);                       \
                } else {                                                                                          \
                    for (int64_t s = 0; s < hw; s++)                                                              \
                        ga[s] = (double)gr[s] / (AT_EPS * (double)c);                                             \
                }                                                                                                 \
                for (int64_t k = 0; k < c; k++) {                                                                 \
                    const T_ *fr = f + (i * c + k) * hw;                                                          \
                    T_ *o = gf + (i * c + k) * hw;                                                                \
                    for (int64_t s = 0; s < hw; s++)                                                              \
                        o[s] = (T_)(ga[s] * dpower((double)fr[s], p));                                            \
                }                                                                                                 \
            }                                                                                                     \
            free(ga);                                                                                             \
        }                                                                                                         \
        return oom ? rt_error(RT_ERR_OOM, "attention_map backward: out of memory") : RT_OK;                       \
    }
DEF_AT(f32, float)
DEF_AT(f64, double)

enum rt_status rt_cpu_attention_map(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p, const void *f,
                                    void *y, void *norm)
{
    enum rt_status st = rt_backend_float_only("attention_map", dt);
    if (st != RT_OK)
        return st;
    return dt == RT_F32 ? at_fwd_f32(n, c, hw, p, f, y, norm) : at_fwd_f64(n, c, hw, p, f, y, norm);
}

enum rt_status rt_cpu_attention_map_backward(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p,
                                             const void *f, const void *y, const void *norm, const void *gy,
                                             void *gf)
{
    enum rt_status st = rt_backend_float_only("attention_map backward", dt);
    if (st != RT_OK)
        return st;
    return dt == RT_F32 ? at_bwd_f32(n, c, hw, p, f, y, norm, gy, gf) : at_bwd_f64(n, c, hw, p, f, y, norm, gy, gf);
}
