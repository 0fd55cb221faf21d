/* Hinton KD over rows of student logits s and teacher t (n, c), and its backward (formulas in
 * retort/loss.h). One row per iteration, sums in double, rows split across threads. Every
 * probability comes from a log-softmax with the row maximum subtracted, so logits of +-1e4 and any
 * T > 0 stay finite; a teacher probability of 0 contributes 0 (the limit of p log p). A NaN or an
 * infinite logit (or a negative probability) is an error naming the tensor and its row. kd_reduce
 * sums the rows into the loss and its terms; the backward reads the kept count it left. */
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
    /* bad[0] / bad[1]: the first student / teacher row holding a NaN or an infinity (n: none) */                \
    static void kd_fwd_##SUF(int64_t n, int64_t c, const T_ *s, const T_ *t, bool probs, double temp,             \
                             const int64_t *lab, int64_t ignore, T_ *kl, T_ *ce, int64_t *bad)                    \
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
            bool sbad = !isfinite(zs), tbad = !isfinite(zt);                                                      \
            for (int64_t j = 0; j < c; j++) {                                                                     \
                sbad = sbad || !isfinite((double)sr[j]);                                                          \
                tbad = tbad || !isfinite((double)tr[j]) || (probs && tr[j] < 0);                                  \
            }                                                                                                     \
            if (sbad || tbad) {                                                                                   \
                _Pragma("omp critical(rt_kd_bad)")                                                                \
                {                                                                                                 \
                    if (sbad && i < bad[0])                                                                       \
                        bad[0] = i;                                                                               \
                    if (tbad && i < bad[1])                                                                       \
                        bad[1] = i;                                                                               \
                }                                                                                                 \
            }                                                                                                     \
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
                             const int64_t *lab, const T_ *keep, const T_ *w, double kept, double g, double soft, \
                             double hard, T_ *gs)                                                                 \
    {                                                                                                             \
        double inv = 1.0 / temp;                                                                                  \
        _Pragma("omp parallel for if (n * c >= RT_CPU_PARALLEL_MIN) schedule(static)")                           \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            const T_ *sr = s + i * c, *tr = t + i * c;                                                            \
            T_ *o = gs + i * c;                                                                                   \
            double a = g * ((w ? (double)w[i] : 1.0) * (double)keep[i] / kept);                                   \
            double ai = a * soft * inv, bi = lab ? a * hard : 0;                                                  \
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

enum rt_status rt_cpu_kd(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t,
                         bool probs, double T, const int64_t *labels, int64_t ignore, void *kl, void *ce, void *keep)
{
    /* the labels are checked (and keep written) before any row: a bad one fails the op */
    enum rt_status st = labels ? rt_cpu_class_rows(op, dt, n, c, labels, NULL, ignore, keep, NULL) : RT_OK;
    if (st == RT_OK)
        st = rt_backend_float_only(op, dt);
    if (st != RT_OK)
        return st;
    for (int64_t i = 0; !labels && i < n; i++) /* every row counts */
        rt__float_set(dt == RT_F32, keep, i, 1);
    int64_t bad[2] = {n, n};
    if (dt == RT_F32)
        kd_fwd_f32(n, c, s, t, probs, T, labels, ignore, kl, ce, bad);
    else
        kd_fwd_f64(n, c, s, t, probs, T, labels, ignore, kl, ce, bad);
    /* a NaN or infinite logit would make the loss NaN, or vanish from it: either way a wrong run */
    if (bad[1] < n)
        return rt_backend_non_finite(op, rt_kd_input_name(1, probs), bad[1], "");
    if (bad[0] < n)
        return rt_backend_non_finite(op, rt_kd_input_name(0, probs), bad[0], "");
    return RT_OK;
}

enum rt_status rt_cpu_kd_reduce(enum rt_dtype dt, int64_t n, const void *kl, const void *ce, const void *keep,
                                const void *w, double soft, double hard, double T2, void *loss, void *terms)
{
    enum rt_status st = rt_backend_float_only("kd reduce", dt);
    if (st != RT_OK)
        return st;
    bool f32 = dt == RT_F32;
    double kept = 0, skl = 0, sce = 0, y = 0;
    for (int64_t i = 0; i < n; i++) {
        kept += rt__float_at(f32, keep, i);
        skl += rt__float_at(f32, kl, i);
        sce += rt__float_at(f32, ce, i);
    }
    for (int64_t i = 0; i < n; i++)
        y += (w ? rt__float_at(f32, w, i) : 1.0) * rt__float_at(f32, keep, i) / kept *
             (soft * rt__float_at(f32, kl, i) + hard * rt__float_at(f32, ce, i));
    rt__float_set(f32, loss, 0, y);
    double out[4] = {skl / kept, sce / kept, kept, T2 * (skl / kept)};
    for (int k = 0; k < 4; k++)
        rt__float_set(f32, terms, k, out[k]);
    return RT_OK;
}

enum rt_status rt_cpu_kd_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,
                                  double T, const int64_t *labels, const void *keep, const void *w,
                                  const void *terms, const void *gloss, double soft, double hard, void *gs)
{
    enum rt_status st = rt_backend_float_only("kd backward", dt);
    if (st != RT_OK)
        return st;
    double kept = rt__float_at(dt == RT_F32, terms, 2), g = rt__float_at(dt == RT_F32, gloss, 0);
    if (dt == RT_F32)
        kd_bwd_f32(n, c, s, t, probs, T, labels, keep, w, kept, g, soft, hard, gs);
    else
        kd_bwd_f64(n, c, s, t, probs, T, labels, keep, w, kept, g, soft, hard, gs);
    return RT_OK;
}
