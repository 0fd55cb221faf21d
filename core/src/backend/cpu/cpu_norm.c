/* Batch normalisation kernels over x viewed as (n, c, s): per-channel statistics, the affine
 * normalisation, and the fused backward. Sums run in double; channels are independent, which is
 * what the OpenMP loops split (so results do not depend on the thread count). */
#include "backend/cpu/cpu_nn.h"

#define DEF_BN(SUF, T)                                                                                            \
    static void bn_stats_##SUF(int64_t n, int64_t c, int64_t s, const T *x, T *mean, T *var)                      \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c * s >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                                                      \
            double sum = 0, sq = 0, M = (double)(n * s);                                                          \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                const T *r = x + (i * c + ch) * s;                                                                \
                for (int64_t j = 0; j < s; j++)                                                                   \
                    sum += (double)r[j];                                                                          \
            }                                                                                                     \
            double m = sum / M;                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                const T *r = x + (i * c + ch) * s;                                                                \
                for (int64_t j = 0; j < s; j++) {                                                                 \
                    double d = (double)r[j] - m;                                                                  \
                    sq += d * d;                                                                                  \
                }                                                                                                 \
            }                                                                                                     \
            mean[ch] = (T)m;                                                                                      \
            var[ch] = (T)(sq / M);                                                                                \
        }                                                                                                         \
    }                                                                                                             \
    static void bn_apply_##SUF(int64_t n, int64_t c, int64_t s, const T *x, const T *mean, const T *invstd,       \
                               const T *w, const T *b, T *y)                                                      \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c * s >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t row = 0; row < n * c; row++) {                                                               \
            int64_t ch = row % c;                                                                                 \
            double a = (double)invstd[ch] * (w ? (double)w[ch] : 1.0);                                            \
            double off = (b ? (double)b[ch] : 0.0) - (double)mean[ch] * a;                                        \
            const T *xr = x + row * s;                                                                            \
            T *yr = y + row * s;                                                                                  \
            for (int64_t j = 0; j < s; j++)                                                                       \
                yr[j] = (T)((double)xr[j] * a + off);                                                             \
        }                                                                                                         \
    }                                                                                                             \
    static void bn_bw_##SUF(bool training, int64_t n, int64_t c, int64_t s, const T *x, const T *gy,              \
                            const T *mean, const T *invstd, const T *w, T *gx, T *gw, T *gb)                      \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c * s >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                                                      \
            double m = x ? (double)mean[ch] : 0, is = x ? (double)invstd[ch] : 0, M = (double)(n * s);            \
            double sg = 0, sgx = 0;                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                const T *gr = gy + (i * c + ch) * s;                                                              \
                if (!x) { /* gb alone: the channel sums of gy, four chains to keep the adds in flight */          \
                    double a[4] = {0, 0, 0, 0};                                                                   \
                    int64_t j = 0;                                                                                \
                    for (; j + 4 <= s; j += 4)                                                                    \
                        for (int k = 0; k < 4; k++)                                                               \
                            a[k] += (double)gr[j + k];                                                            \
                    for (; j < s; j++)                                                                            \
                        a[0] += (double)gr[j];                                                                    \
                    sg += (a[0] + a[1]) + (a[2] + a[3]);                                                          \
                    continue;                                                                                     \
                }                                                                                                 \
                const T *xr = x + (i * c + ch) * s;                                                               \
                for (int64_t j = 0; j < s; j++) {                                                                 \
                    sg += (double)gr[j];                                                                          \
                    sgx += (double)gr[j] * ((double)xr[j] - m) * is;                                              \
                }                                                                                                 \
            }                                                                                                     \
            if (gw)                                                                                               \
                gw[ch] = (T)sgx;                                                                                  \
            if (gb)                                                                                               \
                gb[ch] = (T)sg;                                                                                   \
            if (!gx)                                                                                              \
                continue;                                                                                         \
            double k = is * (w ? (double)w[ch] : 1.0), mg = training ? sg / M : 0, mgx = training ? sgx / M : 0;  \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                const T *xr = x + (i * c + ch) * s, *gr = gy + (i * c + ch) * s;                                  \
                T *o = gx + (i * c + ch) * s;                                                                     \
                for (int64_t j = 0; j < s; j++)                                                                   \
                    o[j] = (T)(k * ((double)gr[j] - mg - ((double)xr[j] - m) * is * mgx));                        \
            }                                                                                                     \
        }                                                                                                         \
    }
DEF_BN(f32, float)
DEF_BN(f64, double)

enum rt_status rt_cpu_batch_norm_stats(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x, void *mean,
                                       void *var)
{
    enum rt_status st = rt_backend_float_only("batch_norm", dt);
    if (st == RT_OK && dt == RT_F32)
        bn_stats_f32(n, c, s, x, mean, var);
    else if (st == RT_OK)
        bn_stats_f64(n, c, s, x, mean, var);
    return st;
}

enum rt_status rt_cpu_batch_norm_apply(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x,
                                       const void *mean, const void *invstd, const void *weight, const void *bias,
                                       void *y)
{
    enum rt_status st = rt_backend_float_only("batch_norm", dt);
    if (st == RT_OK && dt == RT_F32)
        bn_apply_f32(n, c, s, x, mean, invstd, weight, bias, y);
    else if (st == RT_OK)
        bn_apply_f64(n, c, s, x, mean, invstd, weight, bias, y);
    return st;
}

enum rt_status rt_cpu_batch_norm_backward(enum rt_dtype dt, bool training, int64_t n, int64_t c, int64_t s,
                                          const void *x, const void *gy, const void *mean, const void *invstd,
                                          const void *weight, void *gx, void *gw, void *gb)
{
    enum rt_status st = rt_backend_float_only("batch_norm backward", dt);
    if (st == RT_OK && dt == RT_F32)
        bn_bw_f32(training, n, c, s, x, gy, mean, invstd, weight, gx, gw, gb);
    else if (st == RT_OK)
        bn_bw_f64(training, n, c, s, x, gy, mean, invstd, weight, gx, gw, gb);
    return st;
}
