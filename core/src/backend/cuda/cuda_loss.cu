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
                  const T *__restrict__ w, int64_t ignore, double eps, T *__restrict__ loss, T *__restrict__ lse,
                  T *__restrict__ rw, struct rt_cuda_fault *fault, const char *op)
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
            bool kept = rt_cuda_class_label(y, c, ignore, i, fault, op);
            if (rw)
                rw[i] = kept ? (w ? w[y] : (T)1) : (T)0;
            if (!kept) {
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
                  const T *__restrict__ gl, int64_t gs, const T *__restrict__ gden, T *__restrict__ gx)
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
        double gi = (double)gl[i * gs] / (gden ? (double)gden[0] : 1.0), z = (double)lse[i];
        double wy = (1 - eps) * (w ? (double)w[y] : 1.0);
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
        bool kept = rt_cuda_class_label(y, c, ignore, i, fault, op);
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

enum rt_status rt_cuda_cross_entropy(const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                     const int64_t *labels, const void *weights, int64_t ignore, double smoothing,
                                     void *loss, void *lse, void *rw)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only(op, dt);
    if (n <= 0) /* c == 0 still writes every row (lse -inf, loss 0), as on the CPU */
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, op,
                           return RT_CUDA_LAUNCH_ROWS("cuda cross_entropy", ce_fwd_kernel, n, c, n, c,
                                                      (const T *)logits, labels, (const T *)weights, ignore,
                                                      smoothing, (T *)loss, (T *)lse, (T *)rw, rt_cuda_fault_slot(),
                                                      op));
    return RT_OK;
}

enum rt_status rt_cuda_cross_entropy_backward(enum rt_dtype dt, int64_t n, int64_t c, const void *logits,
                                              const int64_t *labels, const void *weights, int64_t ignore,
                                              double smoothing, const void *lse, const void *gloss,
                                              int64_t gloss_stride, const void *gden, void *gx)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("cross_entropy backward", dt);
    if (n <= 0 || c <= 0) /* gx is empty */
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "cross_entropy backward",
                           return RT_CUDA_LAUNCH_ROWS("cuda cross_entropy backward", ce_bwd_kernel, n, c, n, c,
                                                      (const T *)logits, labels, (const T *)weights, ignore, smoothing,
                                                      (const T *)lse, (const T *)gloss, gloss_stride, (const T *)gden,
                                                      (T *)gx));
    return RT_OK;
}

/* One block: out = sum rows / sum rw, den = sum rw, both sums in double */
template <typename T>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    weighted_mean_kernel(int64_t n, const T *__restrict__ rows, const T *__restrict__ rw, T *__restrict__ out,
                         T *__restrict__ den)
{
    __shared__ double scratch[32];
    double sr = 0, sw = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        sr += (double)rows[i];
        sw += (double)rw[i];
    }
    sr = rt_cuda_block_sum(sr, scratch);
    sw = rt_cuda_block_sum(sw, scratch);
    if (threadIdx.x == 0) {
        out[0] = (T)(sr / sw);
        den[0] = (T)sw;
    }
}

enum rt_status rt_cuda_weighted_mean(enum rt_dtype dt, int64_t n, const void *rows, const void *rw, void *out,
                                     void *den)
{
    /* n == 0 still writes out (NaN) and den (0), as on the CPU */
    RT_CUDA_DISPATCH_FLOAT(dt, "weighted_mean",
                           return RT_CUDA_LAUNCH("cuda weighted_mean", weighted_mean_kernel<T>, 1, RT_CUDA_THREADS,
                                                 0, n, (const T *)rows, (const T *)rw, (T *)out, (T *)den));
    return RT_OK;
}

/* One block: a warp per row (argmax by rt_argmax's rule: the first NaN, else the first largest),
 * each warp counting its hits, then a block sum. Deterministic: integer counts, no atomics. */
template <typename T>
static __global__ void __launch_bounds__(1024)
    count_correct_kernel(int64_t n, int64_t c, const T *__restrict__ x, const int64_t *__restrict__ lab, int64_t base,
                         T *__restrict__ out)
{
    __shared__ double scratch[32];
    int lane = (int)(threadIdx.x & 31), warp = (int)(threadIdx.x >> 5), warps = (int)(blockDim.x >> 5);
    double hits = 0;
    for (int64_t i = warp; i < n; i += warps) {
        const T *r = x + i * c;
        /* each lane's first NaN or first largest, then the lanes' winners merged by the same rule
         * with the smaller index winning ties */
        int64_t bi = -1;
        T bv = 0;
        for (int64_t j = lane; j < c; j += 32) {
            T v = r[j];
            if (bi < 0 || (bv == bv && (v != v || v > bv)))
                bi = j, bv = v;
        }
        for (int o = 16; o > 0; o >>= 1) {
            int64_t oi = (int64_t)__shfl_xor_sync(0xffffffffu, (long long)bi, o);
            T ov = __shfl_xor_sync(0xffffffffu, bv, o);
            bool onan = ov != ov, nan = bv != bv;
            bool take = oi >= 0 && (bi < 0 || (onan && (!nan || oi < bi)) ||
                                    (!onan && !nan && (ov > bv || (ov == bv && oi < bi))));
            if (take)
                bi = oi, bv = ov;
        }
        if (lane == 0 && c > 0 && lab[i] - base == bi)
            hits += 1;
    }
    hits = rt_cuda_block_sum(hits, scratch);
    if (threadIdx.x == 0)
        out[0] = (T)hits;
}

enum rt_status rt_cuda_count_correct(enum rt_dtype dt, int64_t n, int64_t c, const void *x, const int64_t *labels,
                                     int64_t base, void *out)
{
    RT_CUDA_DISPATCH_FLOAT(dt, "count_correct",
                           return RT_CUDA_LAUNCH("cuda count_correct", count_correct_kernel<T>, 1, 1024, 0, n, c,
                                                 (const T *)x, labels, base, (T *)out));
    return RT_OK;
}
