/* Hinton KD over rows of student logits s and teacher t (n, c), and its backward, mirroring cpu_kd.c
 * (formulas in retort/loss.h): exp, log and every sum in double for both dtypes. Row-wise design: one
 * warp per row when c <= 1024 (8 rows per 256-thread block), one block per row beyond. A row takes
 * three passes, each computing everything it can: the maxima of s / T, s and t / T; the three sums of
 * exponentials (student at T, student at 1 for the CE, teacher at T); then the KL terms (forward) or
 * the gradient (backward). The KL is summed term by term as on the CPU rather than folded into the
 * second pass, where it would be a difference of large numbers. kd_reduce sums the rows into the
 * loss and its terms in one block. Deterministic: no atomics. */
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
                  const int64_t *__restrict__ lab, int64_t ignore, T *__restrict__ kl, T *__restrict__ ce,
                  T *__restrict__ keep, struct rt_cuda_fault *fault, const char *op, const char *s_name,
                  const char *t_name)
{
    __shared__ double scratch[32];
    const rt_cuda_rowgroup<WARP> g;
    for (int64_t i = g.first; i < n; i += g.step) {
        /* every lane reads the label (a bad one is recorded once: the first report wins) */
        bool kept = !lab || rt_cuda_class_label(lab[i], c, ignore, i, fault, op);
        if (g.lane == 0)
            keep[i] = kept ? (T)1 : (T)0;
        if (!kept) { /* ignored or bad: the whole group skips it */
            if (g.lane == 0)
                kl[i] = ce[i] = 0;
            continue;
        }
        const T *sr = s + i * c, *tr = t + i * c;
        norms z = row_norms(g, sr, tr, c, probs, inv, lab != NULL, scratch);
        double k = 0, bad = 0; /* bad: 2 for a non-finite teacher value in the lane's part, else 1 for a student's */
        for (int64_t j = g.lane; j < c; j += g.size) {
            double lp = logpt(tr, j, probs, inv, z.zt), vt = (double)tr[j];
            if (!isfinite(vt) || (probs && vt < 0))
                bad = 2;
            else if (bad == 0 && !isfinite((double)sr[j]))
                bad = 1;
            if (lp > -INFINITY)
                k += exp(lp) * (lp - ((double)sr[j] * inv - z.zs));
        }
        k = g.sum(k, scratch);
        bad = g.max(bad, scratch); /* the teacher first, as the CPU reports it */
        if (bad > 0 && g.lane == 0)
            rt_cuda_report_non_finite(fault, op, bad == 2 ? t_name : s_name, i);
        if (g.lane == 0) {
            kl[i] = (T)k;
            ce[i] = lab ? (T)(z.z1 - (double)sr[lab[i]]) : (T)0;
        }
    }
}

/* gs[i, j] = a_i (soft / T (softmax(s_i / T)_j - p_t,ij) + hard (softmax(s_i)_j - [j == y_i])) with
 * a_i = g w_i keep_i / kept; rows with a_i = 0 (ignored samples) are zero without reading s or t */
template <typename T, bool WARP>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    kd_bwd_kernel(int64_t n, int64_t c, const T *__restrict__ s, const T *__restrict__ t, bool probs, double inv,
                  const int64_t *__restrict__ lab, const T *__restrict__ keep, const T *__restrict__ w,
                  const T *__restrict__ terms, const T *__restrict__ gloss, double soft, double hard,
                  T *__restrict__ gs)
{
    __shared__ double scratch[32];
    const rt_cuda_rowgroup<WARP> g;
    double kept = (double)terms[2], gl = (double)gloss[0];
    for (int64_t i = g.first; i < n; i += g.step) {
        T *o = gs + i * c;
        double a = gl * ((w ? (double)w[i] : 1.0) * (double)keep[i] / kept);
        double ai = a * soft * inv, bi = lab ? a * hard : 0;
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

/* One block: the kept count and the KL and CE sums, then the loss sum_i a_i (soft kl_i + hard ce_i)
 * with a_i = w_i keep_i / kept, each in double */
template <typename T>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    kd_reduce_kernel(int64_t n, const T *__restrict__ kl, const T *__restrict__ ce, const T *__restrict__ keep,
                     const T *__restrict__ w, double soft, double hard, double T2, T *__restrict__ loss,
                     T *__restrict__ terms)
{
    __shared__ double scratch[32];
    double k = 0, skl = 0, sce = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        k += (double)keep[i];
        skl += (double)kl[i];
        sce += (double)ce[i];
    }
    k = rt_cuda_block_sum(k, scratch);
    skl = rt_cuda_block_sum(skl, scratch);
    sce = rt_cuda_block_sum(sce, scratch);
    double y = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        y += (w ? (double)w[i] : 1.0) * (double)keep[i] / k * (soft * (double)kl[i] + hard * (double)ce[i]);
    y = rt_cuda_block_sum(y, scratch);
    if (threadIdx.x == 0) {
        loss[0] = (T)y;
        terms[0] = (T)(skl / k);
        terms[1] = (T)(sce / k);
        terms[2] = (T)k;
        terms[3] = (T)(T2 * (skl / k));
    }
}

enum rt_status rt_cuda_kd(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t,
                          bool probs, double T, const int64_t *labels, int64_t ignore, void *kl, void *ce, void *keep)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only(op, dt);
    if (n <= 0) /* c == 0 still writes every row (kl and ce 0), as on the CPU */
        return RT_OK;
    double inv = 1.0 / T;
    /* 1 / T taken before the dispatch: inside it, T names the element type */
    RT_CUDA_DISPATCH_FLOAT(dt, op,
                           return RT_CUDA_LAUNCH_ROWS("cuda kd", kd_fwd_kernel, n, c, n, c, (const T *)s,
                                                      (const T *)t, probs, inv, labels, ignore, (T *)kl, (T *)ce,
                                                      (T *)keep, rt_cuda_fault_slot(), op, rt_kd_input_name(0, probs),
                                                      rt_kd_input_name(1, probs)));
    return RT_OK;
}

enum rt_status rt_cuda_kd_reduce(enum rt_dtype dt, int64_t n, const void *kl, const void *ce, const void *keep,
                                 const void *w, double soft, double hard, double T2, void *loss, void *terms)
{
    /* n == 0 still writes the loss (0) and the terms (NaN, NaN, 0, NaN), as on the CPU */
    RT_CUDA_DISPATCH_FLOAT(dt, "kd reduce",
                           return RT_CUDA_LAUNCH("cuda kd reduce", kd_reduce_kernel<T>, 1, RT_CUDA_THREADS, 0, n,
                                                 (const T *)kl, (const T *)ce, (const T *)keep, (const T *)w, soft,
                                                 hard, T2, (T *)loss, (T *)terms));
    return RT_OK;
}

enum rt_status rt_cuda_kd_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,
                                   double T, const int64_t *labels, const void *keep, const void *w,
                                   const void *terms, const void *gloss, double soft, double hard, void *gs)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("kd backward", dt);
    if (n <= 0 || c <= 0) /* gs is empty */
        return RT_OK;
    double inv = 1.0 / T; /* before the dispatch: inside it, T names the element type */
    RT_CUDA_DISPATCH_FLOAT(dt, "kd backward",
                           return RT_CUDA_LAUNCH_ROWS("cuda kd backward", kd_bwd_kernel, n, c, n, c, (const T *)s,
                                                      (const T *)t, probs, inv, labels, (const T *)keep, (const T *)w,
                                                      (const T *)terms, (const T *)gloss, soft, hard, (T *)gs));
    return RT_OK;
}
