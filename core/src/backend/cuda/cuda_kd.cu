/* Hinton KD over rows of student logits s and teacher t (n, c), and its backward, mirroring cpu_kd.c
 * (formulas in retort/loss.h): exp, log and every sum in double for both dtypes. Row-wise design: one
 * warp per row when c <= 1024 (8 rows per 256-thread block), one block per row beyond. A row takes
 * three passes, each computing everything it can: the maxima of s / T, s and t / T; the three sums of
 * exponentials (student at T, student at 1 for the CE, teacher at T); then the KL terms (forward) or
 * the gradient (backward). The KL is summed term by term as on the CPU rather than folded into the
 * second pass, where it would be a difference of large numbers. Deterministic: no atomics. */
#include "backend/cuda/cuda_kernels.h"

namespace {

/* The log-normalisers of one row, as the CPU's lse(): zs of s / T, z1 of s (when want1) and zt of
 * t / T (unless the teacher is given as probabilities; zt = 0 then). Called by the whole group. */
struct norms {
    double zs, z1, zt;
};
template <typename T, bool WARP>
__device__ static norms row_norms(const rt_cuda_rowgroup<WARP> &g, const T *__restrict__ sr, const T *__restrict__ tr,
                                  int64_t c, bool probs, double inv, bool want1, double *scratch)
{
    double ms = -INFINITY, m1 = -INFINITY, mt = -INFINITY;
    for (int64_t j = g.lane; j < c; j += g.size) {
        double v = (double)sr[j], vs = v * inv;
        ms = vs > ms ? vs : ms;
        m1 = v > m1 ? v : m1;
        if (!probs) {
            double vt = (double)tr[j] * inv;
            mt = vt > mt ? vt : mt;
        }
    }
    ms = g.max(ms, scratch);
    if (want1)
        m1 = g.max(m1, scratch);
    if (!probs)
        mt = g.max(mt, scratch);
    double es = 0, e1 = 0, et = 0;
    for (int64_t j = g.lane; j < c; j += g.size) {
        double v = (double)sr[j];
        es += exp(v * inv - ms);
        if (want1)
            e1 += exp(v - m1);
        if (!probs)
            et += exp((double)tr[j] * inv - mt);
    }
    norms z;
    z.zs = ms + log(g.sum(es, scratch));
    z.z1 = want1 ? m1 + log(g.sum(e1, scratch)) : 0;
    z.zt = probs ? 0 : mt + log(g.sum(et, scratch));
    return z;
}
} // namespace

/* teacher log-probability at j (probs: log of the given probability, -inf for 0), as the CPU's logpt() */
template <typename T> __device__ static inline double logpt(const T *tr, int64_t j, bool probs, double inv, double zt)
{
    return probs ? log((double)tr[j]) : (double)tr[j] * inv - zt;
}

/* kl[i] = sum_j p_t,j (log p_t,j - log softmax(s_i / T)_j) over p_t,j > 0; ce[i] = lse(s_i) - s_i,y */
template <typename T, bool WARP>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    kd_fwd_kernel(int64_t n, int64_t c, const T *__restrict__ s, const T *__restrict__ t, bool probs, double inv,
                  const int64_t *__restrict__ lab, int64_t ignore, T *__restrict__ kl, T *__restrict__ ce)
{
    __shared__ double scratch[32];
    const rt_cuda_rowgroup<WARP> g;
    for (int64_t i = g.first; i < n; i += g.step) {
        if (lab && (lab[i] == ignore || lab[i] < 0 || lab[i] >= c)) { /* ignored or bad: the whole group skips it */
            if (g.lane == 0)
                kl[i] = ce[i] = 0;
            continue;
        }
        const T *sr = s + i * c, *tr = t + i * c;
        norms z = row_norms(g, sr, tr, c, probs, inv, lab != NULL, scratch);
        double k = 0;
        for (int64_t j = g.lane; j < c; j += g.size) {
            double lp = logpt(tr, j, probs, inv, z.zt);
            if (lp > -INFINITY) /* also skips NaN, as the CPU's test does */
                k += exp(lp) * (lp - ((double)sr[j] * inv - z.zs));
        }
        k = g.sum(k, scratch);
        if (g.lane == 0) {
            kl[i] = (T)k;
            ce[i] = lab ? (T)(z.z1 - (double)sr[lab[i]]) : (T)0;
        }
    }
}

/* gs[i, j] = a_i / T (softmax(s_i / T)_j - p_t,ij) + b_i (softmax(s_i)_j - [j == y_i]); rows with
 * a_i = b_i = 0 (ignored samples) are zero without reading s or t */
template <typename T, bool WARP>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    kd_bwd_kernel(int64_t n, int64_t c, const T *__restrict__ s, const T *__restrict__ t, bool probs, double inv,
                  const int64_t *__restrict__ lab, const T *__restrict__ a, const T *__restrict__ b,
                  T *__restrict__ gs)
{
    __shared__ double scratch[32];
    const rt_cuda_rowgroup<WARP> g;
    for (int64_t i = g.first; i < n; i += g.step) {
        T *o = gs + i * c;
        double ai = (double)a[i] * inv, bi = lab ? (double)b[i] : 0;
        if (ai == 0 && bi == 0) {
            for (int64_t j = g.lane; j < c; j += g.size)
                o[j] = 0;
            continue;
        }
        const T *sr = s + i * c, *tr = t + i * c;
        norms z = row_norms(g, sr, tr, c, probs, inv, bi != 0, scratch);
        /* only compared with j, never used as an index: an ignored row's label is never dereferenced */
        int64_t y = bi != 0 ? lab[i] : 0;
        for (int64_t j = g.lane; j < c; j += g.size) {
            double v = (double)sr[j];
            double gj = ai * (exp(v * inv - z.zs) - exp(logpt(tr, j, probs, inv, z.zt)));
            if (bi != 0)
                gj += bi * (exp(v - z.z1) - (j == y ? 1.0 : 0.0));
            o[j] = (T)gj;
        }
    }
}

template <typename T>
static enum rt_status kd_fwd(int64_t n, int64_t c, const T *s, const T *t, bool probs, double inv, const int64_t *lab,
                             int64_t ignore, T *kl, T *ce)
{
    static const char *op = "cuda kd";
    void (*k)(int64_t, int64_t, const T *, const T *, bool, double, const int64_t *, int64_t, T *, T *);
    if (c <= RT_CUDA_WARP_ROW_MAX) {
        k = kd_fwd_kernel<T, true>;
        return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n * 32), RT_CUDA_THREADS, 0, n, c, s, t, probs, inv, lab, ignore,
                              kl, ce);
    }
    k = kd_fwd_kernel<T, false>;
    return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n, 1), RT_CUDA_THREADS, 0, n, c, s, t, probs, inv, lab, ignore, kl, ce);
}

template <typename T>
static enum rt_status kd_bwd(int64_t n, int64_t c, const T *s, const T *t, bool probs, double inv, const int64_t *lab,
                             const T *a, const T *b, T *gs)
{
    static const char *op = "cuda kd backward";
    void (*k)(int64_t, int64_t, const T *, const T *, bool, double, const int64_t *, const T *, const T *, T *);
    if (c <= RT_CUDA_WARP_ROW_MAX) {
        k = kd_bwd_kernel<T, true>;
        return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n * 32), RT_CUDA_THREADS, 0, n, c, s, t, probs, inv, lab, a, b,
                              gs);
    }
    k = kd_bwd_kernel<T, false>;
    return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n, 1), RT_CUDA_THREADS, 0, n, c, s, t, probs, inv, lab, a, b, gs);
}

enum rt_status rt_cuda_kd(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs, double T,
                          const int64_t *labels, int64_t ignore, void *kl, void *ce)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("kd", dt);
    if (n <= 0) /* c == 0 still writes every row (both 0), as on the CPU */
        return RT_OK;
    double inv = 1.0 / T;
    /* 1 / T taken before the dispatch: inside it, T names the element type */
    RT_CUDA_DISPATCH_FLOAT(dt, "kd",
                           return kd_fwd<T>(n, c, (const T *)s, (const T *)t, probs, inv, labels, ignore, (T *)kl,
                                            (T *)ce));
    return RT_OK;
}

enum rt_status rt_cuda_kd_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,
                                   double T, const int64_t *labels, const void *a, const void *b, void *gs)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("kd backward", dt);
    if (n <= 0 || c <= 0) /* gs is empty */
        return RT_OK;
    double inv = 1.0 / T; /* before the dispatch: inside it, T names the element type */
    RT_CUDA_DISPATCH_FLOAT(dt, "kd backward",
                           return kd_bwd<T>(n, c, (const T *)s, (const T *)t, probs, inv, labels, (const T *)a,
                                            (const T *)b, (T *)gs));
    return RT_OK;
}
