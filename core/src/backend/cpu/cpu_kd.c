/* Hinton KD over rows of student logits s and teacher t (n, c), and its backward (formulas in
 * retort/loss.h). One row per iteration, sums in double, rows split across threads. Every
 * probability comes from a log-softmax with the row maximum subtracted, so logits of +-1e4 and any
 * T > 0 stay finite; a teacher probability of 0 contributes 0 (the limit of p log p). */
#include "backend/cpu/cpu_nn.h"

#define DEF_KD(SUF, T_)                                                                                           \
    /* log-normaliser of row r scaled by 1/temp: max + log sum exp(r/temp - max) */                              \
    static double lse_##SUF(const T_ *r, int64_t c, double inv)                                                  \
    {                                                                                                             \
        double m = -INFINITY, z = 0;                                                                              \
        for (int64_t j = 0; j < c; j++)                                                                           \
            m = (double)r[j] * inv > m ? (double)r[j] * inv : m;                                                  \
        for (int64_t j = 0; j < c; j++)                                                                           \
            z += exp((double)r[j] * inv - m);                                                                     \
        return m + log(z);                                                                                        \
    }                                                                                                             \
    /* teacher log-probability at j (probs: log of the given probability, -inf for 0) */                         \
    static inline double logpt_##SUF(const T_ *t, int64_t j, bool probs, double inv, double zt)                   \
    {                                                                                                             \
        return probs ? log((double)t[j]) : (double)t[j] * inv - zt;                                               \
    }                                                                                                             \
    static void kd_fwd_##SUF(int64_t n, int64_t c, const T_ *s, const T_ *t, bool probs, double temp,             \
                             const int64_t *lab, int64_t ignore, T_ *kl, T_ *ce)                                  \
    {                                                                                                             \
        double inv = 1.0 / temp;                                                                                  \
        _Pragma("omp parallel for if (n * c >= RT_CPU_PARALLEL_MIN) schedule(static)")                           \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            const T_ *sr = s + i * c, *tr = t + i * c;                                                            \
            if (lab && lab[i] == ignore) {                                                                        \
                kl[i] = ce[i] = 0;                                                                                \
                continue;                                                                                         \
            }                                                                                                     \
            double zs = lse_##SUF(sr, c, inv), zt = probs ? 0 : lse_##SUF(tr, c, inv), k = 0;                     \
            for (int64_t j = 0; j < c; j++) {                                                                     \
                double lp = logpt_##SUF(tr, j, probs, inv, zt);                                                   \
                if (lp > -INFINITY)                                                                               \
                    k += exp(lp) * (lp - ((double)sr[j] * inv - zs));                                             \
            }                                                                                                     \
            kl[i] = (T_)k;                                                                                        \
            ce[i] = lab ? (T_)(lse_##SUF(sr, c, 1.0) - (double)sr[lab[i]]) : 0;                                   \
        }                                                                                                         \
    }                                                                                                             \
    /* d kl_i / d s_ij = (softmax(s_i / T)_j - p_t,ij) / T;  d ce_i / d s_ij = softmax(s_i)_j - [j == y_i] */   \
    static void kd_bwd_##SUF(int64_t n, int64_t c, const T_ *s, const T_ *t, bool probs, double temp,             \
                             const int64_t *lab, const T_ *a, const T_ *b, T_ *gs)                                \
    {                                                                                                             \
        double inv = 1.0 / temp;                                                                                  \
        _Pragma("omp parallel for if (n * c >= RT_CPU_PARALLEL_MIN) schedule(static)")                           \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            const T_ *sr = s + i * c, *tr = t + i * c;                                                            \
            T_ *o = gs + i * c;                                                                                   \
            double ai = (double)a[i] * inv, bi = lab ? (double)b[i] : 0;                                          \
            if (ai == 0 && bi == 0) {                                                                             \
                for (int64_t j = 0; j < c; j++)                                                                   \
                    o[j] = 0;                                                                                     \
                continue;                                                                                         \
            }                                                                                                     \
            double zs = lse_##SUF(sr, c, inv), zt = probs ? 0 : lse_##SUF(tr, c, inv);                            \
            double z1 = bi != 0 ? lse_##SUF(sr, c, 1.0) : 0;                                                      \
            for (int64_t j = 0; j < c; j++) {                                                                     \
                double g = ai * (exp((double)sr[j] * inv - zs) - exp(logpt_##SUF(tr, j, probs, inv, zt)));        \
                if (bi != 0)                                                                                      \
                    g += bi * (exp((double)sr[j] - z1) - (j == lab[i] ? 1.0 : 0.0));                              \
                o[j] = (T_)g;                                                                                     \
            }                                                                                                     \
        }                                                                                                         \
    }
DEF_KD(f32, float)
DEF_KD(f64, double)

enum rt_status rt_cpu_kd(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs, double T,
                         const int64_t *labels, int64_t ignore, void *kl, void *ce)
{
    enum rt_status st = rt_backend_float_only("kd", dt);
    if (st == RT_OK && dt == RT_F32)
        kd_fwd_f32(n, c, s, t, probs, T, labels, ignore, kl, ce);
    else if (st == RT_OK)
        kd_fwd_f64(n, c, s, t, probs, T, labels, ignore, kl, ce);
    return st;
}

enum rt_status rt_cpu_kd_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,
                                  double T, const int64_t *labels, const void *a, const void *b, void *gs)
{
    enum rt_status st = rt_backend_float_only("kd backward", dt);
    if (st == RT_OK && dt == RT_F32)
        kd_bwd_f32(n, c, s, t, probs, T, labels, a, b, gs);
    else if (st == RT_OK)
        kd_bwd_f64(n, c, s, t, probs, T, labels, a, b, gs);
    return st;
}
