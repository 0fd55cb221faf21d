/* Fused cross entropy over rows of logits (n, c) and its backward, mirroring cpu_loss.c: exp, log and
 * every sum in double for both dtypes, so f32 agrees with the CPU to rounding. Row-wise design: one
 * warp per row when c <= 1024 (8 rows per 256-thread block), one block per row beyond; the row max
 * and the sum of exponentials come from warp or block reductions, and the second pass over a row
 * reads what the first pass left in cache. Deterministic: no atomics. */
#include "backend/cuda/cuda_kernels.h"

/* loss[i], lse[i] = m + log sum exp(x - m). With smoothing, sum_j w_j (z - x_j) is formed in the same
 * pass as (z - m) W + sum_j w_j (m - x_j): both parts are sums of non-negative terms (for w >= 0), so
 * nothing cancels and it equals the CPU's sum to rounding. */
template <typename T, bool WARP>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    ce_fwd_kernel(int64_t n, int64_t c, const T *__restrict__ x, const int64_t *__restrict__ lab,
                  const T *__restrict__ w, int64_t ignore, double eps, T *__restrict__ loss, T *__restrict__ lse)
{
    __shared__ double scratch[32];
    const rt_cuda_rowgroup<WARP> g;
    for (int64_t i = g.first; i < n; i += g.step) {
        const T *r = x + i * c;
        double m = -INFINITY;
        for (int64_t j = g.lane; j < c; j += g.size) {
            double v = (double)r[j];
            m = v > m ? v : m;
        }
        m = g.max(m, scratch);
        double s = 0, sw = 0, W = 0;
        for (int64_t j = g.lane; j < c; j += g.size) {
            double v = (double)r[j];
            s += exp(v - m);
            if (eps != 0) {
                double wj = w ? (double)w[j] : 1.0;
                sw += wj * (m - v);
                W += wj;
            }
        }
        s = g.sum(s, scratch);
        if (eps != 0) {
            sw = g.sum(sw, scratch);
            W = g.sum(W, scratch);
        }
        if (g.lane == 0) {
            double z = m + log(s);
            lse[i] = (T)z;
            int64_t y = lab[i];
            if (y == ignore || y < 0 || y >= c) { /* ignored, or bad (class_rows reports it) */
                loss[i] = 0;
            } else {
                double l = (1 - eps) * (w ? (double)w[y] : 1.0) * (z - (double)r[y]);
                if (eps != 0)
                    l += eps / (double)c * ((z - m) * W + sw);
                loss[i] = (T)l;
            }
        }
    }
}

/* gx[i, j] = gloss[i] * (p_j ((1-e) w_y + e/C W) - e/C w_j - (1-e) w_y [j == y]), p_j = exp(x_ij - lse_i) */
template <typename T, bool WARP>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    ce_bwd_kernel(int64_t n, int64_t c, const T *__restrict__ x, const int64_t *__restrict__ lab,
                  const T *__restrict__ w, int64_t ignore, double eps, const T *__restrict__ lse,
                  const T *__restrict__ gl, int64_t gs, T *__restrict__ gx)
{
    __shared__ double scratch[32];
    /* W = sum of the class weights (c without weights, as the CPU's sum of c ones). The CPU forms it
     * once; here each block sums it before its rows (c cached loads). It enters even when eps == 0
     * (0 * W), so a non-finite weight poisons the gradient exactly as on the CPU. */
    double W = (double)c;
    if (w) {
        double part = 0;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
            part += (double)w[j];
        W = rt_cuda_block_sum(part, scratch);
    }
    const rt_cuda_rowgroup<WARP> g;
    double ec = eps / (double)c;
    for (int64_t i = g.first; i < n; i += g.step) {
        const T *r = x + i * c;
        T *o = gx + i * c;
        int64_t y = lab[i];
        if (y == ignore || y < 0 || y >= c) {
            for (int64_t j = g.lane; j < c; j += g.size)
                o[j] = 0;
            continue;
        }
        double gi = (double)gl[i * gs], z = (double)lse[i], wy = (1 - eps) * (w ? (double)w[y] : 1.0);
        double a = wy + ec * W;
        for (int64_t j = g.lane; j < c; j += g.size) {
            double p = exp((double)r[j] - z);
            double d = p * a - ec * (w ? (double)w[j] : 1.0) - (j == y ? wy : 0.0);
            o[j] = (T)(gi * d);
        }
    }
}

/* w[i] = weight of row i's class (0 when ignored or bad); a bad label is recorded for the next wait */
template <typename T>
static __global__ void class_rows_kernel(int64_t n, int64_t c, const int64_t *__restrict__ lab,
                                         const T *__restrict__ cw, int64_t ignore, T *__restrict__ w,
                                         int64_t *__restrict__ safe, struct rt_cuda_fault *fault, const char *op)
{
    RT_CUDA_LOOP(i, n)
    {
        int64_t y = lab[i];
        bool ignored = ignore != RT_NO_IGNORE && y == ignore, ok = ignored || (y >= 0 && y < c);
        if (!ok)
            rt_cuda_report_bad_index(fault, op, "label", y, i, 0, c);
        bool kept = ok && !ignored;
        w[i] = kept ? (cw ? cw[y] : (T)1) : (T)0;
        if (safe)
            safe[i] = kept ? y : 0;
    }
}

enum rt_status rt_cuda_class_rows(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const int64_t *labels,
                                  const void *cw, int64_t ignore, void *w, int64_t *safe)
{
    if (n <= 0)
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, op,
                           return RT_CUDA_LAUNCH("cuda class_rows", class_rows_kernel<T>, rt_cuda_blocks(n),
                                                 RT_CUDA_THREADS, 0, n, c, labels, (const T *)cw, ignore, (T *)w,
                                                 safe, rt_cuda_fault_slot(), op));
    return RT_OK;
}

template <typename T>
static enum rt_status ce_fwd(int64_t n, int64_t c, const T *x, const int64_t *lab, const T *w, int64_t ignore,
                             double eps, T *loss, T *lse)
{
    static const char *op = "cuda cross_entropy";
    if (c <= RT_CUDA_WARP_ROW_MAX) {
        void (*k)(int64_t, int64_t, const T *, const int64_t *, const T *, int64_t, double, T *, T *) =
            ce_fwd_kernel<T, true>;
        return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n * 32), RT_CUDA_THREADS, 0, n, c, x, lab, w, ignore, eps, loss,
                              lse);
    }
    void (*k)(int64_t, int64_t, const T *, const int64_t *, const T *, int64_t, double, T *, T *) =
        ce_fwd_kernel<T, false>;
    return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n, 1), RT_CUDA_THREADS, 0, n, c, x, lab, w, ignore, eps, loss, lse);
}

template <typename T>
static enum rt_status ce_bwd(int64_t n, int64_t c, const T *x, const int64_t *lab, const T *w, int64_t ignore,
                             double eps, const T *lse, const T *gl, int64_t gs, T *gx)
{
    static const char *op = "cuda cross_entropy backward";
    if (c <= RT_CUDA_WARP_ROW_MAX) {
        auto k = ce_bwd_kernel<T, true>;
        return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n * 32), RT_CUDA_THREADS, 0, n, c, x, lab, w, ignore, eps, lse, gl,
                              gs, gx);
    }
    auto k = ce_bwd_kernel<T, false>;
    return RT_CUDA_LAUNCH(op, k, rt_cuda_blocks(n, 1), RT_CUDA_THREADS, 0, n, c, x, lab, w, ignore, eps, lse, gl, gs,
                          gx);
}

enum rt_status rt_cuda_cross_entropy(enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                     const int64_t *labels, const void *weights, int64_t ignore, double smoothing,
                                     void *loss, void *lse)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("cross_entropy", dt);
    if (n <= 0) /* c == 0 still writes every row (lse -inf, loss 0), as on the CPU */
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "cross_entropy",
                           return ce_fwd<T>(n, c, (const T *)logits, labels, (const T *)weights, ignore, smoothing,
                                            (T *)loss, (T *)lse));
    return RT_OK;
}

enum rt_status rt_cuda_cross_entropy_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                              const int64_t *labels, const void *weights, int64_t ignore,
                                              double smoothing, const void *lse, const void *gloss, int64_t gloss_stride, void *gx)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("cross_entropy backward", dt);
    if (n <= 0 || c <= 0) /* gx is empty */
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "cross_entropy backward",
                           return ce_bwd<T>(n, c, (const T *)logits, labels, (const T *)weights, ignore, smoothing,
                                            (const T *)lse, (const T *)gloss, gloss_stride, (T *)gx));
    return RT_OK;
}
