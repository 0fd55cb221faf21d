/* Batch normalisation kernels over x viewed as (n, c, s): per-channel statistics, the affine
 * normalisation, and the fused backward. Sums end in double; channels are independent, which is
 * what the OpenMP loops split (so results do not depend on the thread count). */
#include "backend/cpu/cpu_clones.h"
#include "backend/cpu/cpu_nn.h"

/* Row loops, compiled for AVX2 and AVX-512 as well (cpu_clones.h). Sums run in double over ROW_LANES
 * independent partial sums, added pairwise at the end: the lanes vectorise where one running sum
 * would be a chain of dependent adds (measured: the conv bias gradient, which is these channel sums,
 * took 7% of the small CNN's step as one chain). The order is fixed by the row length alone, so
 * results still do not depend on the thread count. */
#define ROW_LANES 16

static inline double lanes_total(double *a)
{
    for (int w = ROW_LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++)
            a[k] += a[k + w];
    return a[0];
}

/* Sums are built in blocks: ROW_BLOCK steps of ROW_LANES elements add up in the tensor's own type (four
 * terms a lane), then each block's lanes go into the double ones. In f32 that runs twice the lanes and
 * a fraction of the conversions of double throughout, and four-term partial sums lose nothing a
 * training step can see. Terms are taken around the mean in T (the statistics' double mean rounded,
 * bn_stats correcting for the rounding in double), so x - m keeps its digits when x is close to a
 * large mean. */
#define ROW_BLOCK 4

#define DEF_BN_ROWS(SUF, T)                                                                                       \
    /* sum of r[j] - mt, or of (r[j] - mt)^2 when sq, mt = (T)m */                                                \
    RT_CPU_CLONES static double row_sum_##SUF(const T *restrict r, int64_t s, double m, bool sq)                  \
    {                                                                                                             \
        const T mt = (T)m;                                                                                        \
        double a[ROW_LANES] = {0}, tail = 0;                                                                      \
        int64_t j = 0;                                                                                            \
        for (; j + ROW_BLOCK * ROW_LANES <= s; j += ROW_BLOCK * ROW_LANES) {                                      \
            T b[ROW_LANES] = {0};                                                                                 \
            for (int st = 0; st < ROW_BLOCK; st++)                                                                \
                for (int k = 0; k < ROW_LANES; k++) {                                                             \
                    T d = r[j + st * ROW_LANES + k] - mt;                                                         \
                    b[k] += sq ? d * d : d;                                                                       \
                }                                                                                                 \
            for (int k = 0; k < ROW_LANES; k++)                                                                   \
                a[k] += (double)b[k];                                                                             \
        }                                                                                                         \
        for (; j < s; j++) {                                                                                      \
            double d = (double)(r[j] - mt);                                                                       \
            tail += sq ? d * d : d;                                                                               \
        }                                                                                                         \
        return lanes_total(a) + tail;                                                                             \
    }                                                                                                             \
    /* *sg += sum of g[j], *sgd += sum of g[j] * (x[j] - m) */                                                    \
    RT_CPU_CLONES static void row_grad_sums_##SUF(const T *restrict g, const T *restrict x, int64_t s, T m,        \
                                                  double *sg, double *sgd)                                        \
    {                                                                                                             \
        double a[ROW_LANES] = {0}, b[ROW_LANES] = {0}, ta = 0, tb = 0;                                            \
        int64_t j = 0;                                                                                            \
        for (; j + ROW_BLOCK * ROW_LANES <= s; j += ROW_BLOCK * ROW_LANES) {                                      \
            T ba[ROW_LANES] = {0}, bb[ROW_LANES] = {0};                                                           \
            for (int st = 0; st < ROW_BLOCK; st++)                                                                \
                for (int k = 0; k < ROW_LANES; k++) {                                                             \
                    T gv = g[j + st * ROW_LANES + k];                                                             \
                    ba[k] += gv;                                                                                  \
                    bb[k] += gv * (x[j + st * ROW_LANES + k] - m);                                                \
                }                                                                                                 \
            for (int k = 0; k < ROW_LANES; k++)                                                                   \
                a[k] += (double)ba[k], b[k] += (double)bb[k];                                                     \
        }                                                                                                         \
        for (; j < s; j++) {                                                                                      \
            ta += (double)g[j];                                                                                   \
            tb += (double)g[j] * (double)(x[j] - m);                                                              \
        }                                                                                                         \
        *sg += lanes_total(a) + ta;                                                                               \
        *sgd += lanes_total(b) + tb;                                                                              \
    }                                                                                                             \
    /* y[j] = (x[j] - m) a + b, in T: the per-element passes need no more precision than their output   \
     * (the sums above do), and f32 runs twice the lanes of double. x - m keeps its digits when x is      \
     * close to a large mean, where x a + (b - m a) would cancel. */                                        \
    RT_CPU_CLONES static void row_affine_##SUF(const T *restrict x, T *restrict y, int64_t s, T m, double a,       \
                                               double b)                                                          \
    {                                                                                                             \
        const T at = (T)a, bt = (T)b;                                                                             \
        for (int64_t j = 0; j < s; j++)                                                                           \
            y[j] = (x[j] - m) * at + bt;                                                                          \
    }                                                                                                             \
    /* o[j] = k (g[j] - mg) - k c (x[j] - m), in T */                                                             \
    RT_CPU_CLONES static void row_bn_gx_##SUF(const T *restrict g, const T *restrict x, T *restrict o, int64_t s,  \
                                              double k, double mg, T m, double c)                                 \
    {                                                                                                             \
        const T kt = (T)k, mgt = (T)mg, kct = (T)(k * c);                                                         \
        for (int64_t j = 0; j < s; j++)                                                                           \
            o[j] = kt * (g[j] - mgt) - kct * (x[j] - m);                                                          \
    }
DEF_BN_ROWS(f32, float)
DEF_BN_ROWS(f64, double)

#define DEF_BN(SUF, T)                                                                                            \
    static void bn_stats_##SUF(int64_t n, int64_t c, int64_t s, const T *x, T *mean, T *var)                      \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c * s >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                                                      \
            double sum = 0, sq = 0, M = (double)(n * s);                                                          \
            for (int64_t i = 0; i < n; i++)                                                                       \
                sum += row_sum_##SUF(x + (i * c + ch) * s, s, 0, false);                                          \
            double m = sum / M, off = m - (double)(T)m; /* the squares are taken around (T)m */                  \
            for (int64_t i = 0; i < n; i++)                                                                       \
                sq += row_sum_##SUF(x + (i * c + ch) * s, s, m, true);                                            \
            mean[ch] = (T)m;                                                                                      \
            var[ch] = (T)(sq / M - off * off);                                                                    \
        }                                                                                                         \
    }                                                                                                             \
    static void bn_apply_##SUF(int64_t n, int64_t c, int64_t s, const T *x, const T *mean, const T *invstd,       \
                               const T *w, const T *b, T *y)                                                      \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c * s >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t row = 0; row < n * c; row++) {                                                               \
            int64_t ch = row % c;                                                                                 \
            double a = (double)invstd[ch] * (w ? (double)w[ch] : 1.0);                                            \
            row_affine_##SUF(x + row * s, y + row * s, s, mean[ch], a, b ? (double)b[ch] : 0.0);                   \
        }                                                                                                         \
    }                                                                                                             \
    static void bn_bw_##SUF(bool training, int64_t n, int64_t c, int64_t s, const T *x, const T *gy,              \
                            const T *mean, const T *invstd, const T *w, T *gx, T *gw, T *gb)                      \
    {                                                                                                             \
        _Pragma("omp parallel for if (n * c * s >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t ch = 0; ch < c; ch++) {                                                                      \
            T m = x ? mean[ch] : 0;                                                                               \
            double is = x ? (double)invstd[ch] : 0, M = (double)(n * s);                                          \
            double sg = 0, sgd = 0;                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                const T *gr = gy + (i * c + ch) * s;                                                              \
                if (x)                                                                                            \
                    row_grad_sums_##SUF(gr, x + (i * c + ch) * s, s, m, &sg, &sgd);                               \
                else /* gb alone: the channel sums of gy (a convolution's bias gradient) */                      \
                    sg += row_sum_##SUF(gr, s, 0, false);                                                         \
            }                                                                                                     \
            double sgx = sgd * is;                                                                                \
            if (gw)                                                                                               \
                gw[ch] = (T)sgx;                                                                                  \
            if (gb)                                                                                               \
                gb[ch] = (T)sg;                                                                                   \
            if (!gx)                                                                                              \
                continue;                                                                                         \
            double k = is * (w ? (double)w[ch] : 1.0), mg = training ? sg / M : 0, mgx = training ? sgx / M : 0;  \
            for (int64_t i = 0; i < n; i++)                                                                       \
                row_bn_gx_##SUF(gy + (i * c + ch) * s, x + (i * c + ch) * s, gx + (i * c + ch) * s, s, k, mg, m, \
                                is * mgx);                                                                        \
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
