/* Batch normalisation over x viewed as (n, c, s) (mirrors cpu_norm.c): per-channel statistics, the
 * affine normalisation and the fused backward. Per-channel sums take one block per channel, each
 * thread walking its share of the channel's n*s elements, accumulating in double as the CPU and
 * combining with a block reduction: the CPU's two-pass mean and variance, so results agree to the
 * rounding of the summation order. The elementwise passes take one thread per element and evaluate
 * the CPU's expressions in double with explicit roundings (__dmul_rn, __dadd_rn: no FMA
 * contraction, which the CPU build, without FMA, never does). Kernels index with int32 when n*c*s
 * fits, else int64. */
#include "backend/cuda/cuda_kernels.h"

/* each index below is at most n*c*s (plus one block of threads) */
static bool fits32(int64_t n, int64_t c, int64_t s) { return n * c * s <= INT32_MAX / 2; }

/* Threads per channel block: enough for the channel's n*s elements, a multiple of 32, at most 1024
 * (the channel kernels declare __launch_bounds__(1024), so any of these sizes can launch). */
static int chan_threads(int64_t m)
{
    int t = 32;
    while (t < 1024 && t < m)
        t *= 2;
    return t;
}

/* Blocks for one block per channel (a block loops over channels beyond the grid). */
static unsigned chan_blocks(int64_t c) { return (unsigned)(c < (1 << 20) ? c : (1 << 20)); }

/* Calls f(offset) for this thread's share of channel ch: flat index t = i*s + j over the channel's
 * n*s elements in steps of blockDim.x (consecutive threads, consecutive addresses), with (i, j)
 * carried along instead of divided out per element. */
template <typename I, typename F> __device__ static inline void chan_walk(I n, I c, I s, I ch, F f)
{
    const I m = n * s;
    if (m == 0)
        return;
    const I step = (I)blockDim.x, di = step / s, dj = step - di * s, cs = c * s, base = ch * s;
    I i = (I)threadIdx.x / s, j = (I)threadIdx.x - i * s;
#pragma unroll 4
    for (I t = (I)threadIdx.x; t < m; t += step) {
        f(i * cs + base + j);
        i += di;
        j += dj;
        if (j >= s) {
            j -= s;
            i++;
        }
    }
}

/* mean = sum / M, then var = sum((x - mean)^2) / M: two passes, as the CPU */
template <typename T, typename I>
__global__ void __launch_bounds__(1024)
    bn_stats_kernel(I n, I c, I s, const T *__restrict__ x, T *__restrict__ mean, T *__restrict__ var)
{
    __shared__ double scratch[32];
    const double M = (double)((int64_t)n * s);
    for (I ch = (I)blockIdx.x; ch < c; ch += (I)gridDim.x) {
        double sum = 0, sq = 0;
        chan_walk(n, c, s, ch, [&](I o) { sum += (double)x[o]; });
        double m = rt_cuda_block_sum(sum, scratch) / M;
        chan_walk(n, c, s, ch, [&](I o) {
            double d = (double)x[o] - m;
            sq += d * d;
        });
        sq = rt_cuda_block_sum(sq, scratch);
        if (threadIdx.x == 0) {
            mean[ch] = (T)m;
            var[ch] = (T)(sq / M);
        }
    }
}

template <typename T, typename I>
__global__ void bn_apply_kernel(I n, I c, I s, const T *__restrict__ x, const T *__restrict__ mean,
                                const T *__restrict__ invstd, const T *__restrict__ w, const T *__restrict__ b,
                                T *__restrict__ y)
{
    RT_CUDA_LOOP(t, (int64_t)n * c * s)
    {
        I e = (I)t, row = e / s, ch = row - row / c * c;
        double a = (double)invstd[ch] * (w ? (double)w[ch] : 1.0);
        double off = __dsub_rn(b ? (double)b[ch] : 0.0, __dmul_rn((double)mean[ch], a));
        y[e] = (T)__dadd_rn(__dmul_rn((double)x[e], a), off);
    }
}

/* Per channel: sg = sum(gy), sgx = sum(gy * xhat); gw = sgx, gb = sg; for a training gx, mean(gy) and
 * mean(gy * xhat) (double) into red[2*ch], red[2*ch + 1]. */
template <typename T, typename I>
__global__ void __launch_bounds__(1024)
    bn_bw_sums_kernel(I n, I c, I s, const T *__restrict__ x, const T *__restrict__ gy, const T *__restrict__ mean,
                      const T *__restrict__ invstd, T *__restrict__ gw, T *__restrict__ gb, double *__restrict__ red)
{
    __shared__ double scratch[32];
    const double M = (double)((int64_t)n * s);
    for (I ch = (I)blockIdx.x; ch < c; ch += (I)gridDim.x) {
        /* without x: gb alone, the channel sums of gy (mean and invstd are not read either) */
        double m = x ? (double)mean[ch] : 0, is = x ? (double)invstd[ch] : 0, sg = 0, sgx = 0;
        chan_walk(n, c, s, ch, [&](I o) {
            double g = (double)gy[o];
            sg += g;
            if (x)
                sgx += g * ((double)x[o] - m) * is;
        });
        sg = rt_cuda_block_sum(sg, scratch);
        sgx = rt_cuda_block_sum(sgx, scratch);
        if (threadIdx.x == 0) {
            if (gw)
                gw[ch] = (T)sgx;
            if (gb)
                gb[ch] = (T)sg;
            if (red) {
                red[2 * ch] = sg / M;
                red[2 * ch + 1] = sgx / M;
            }
        }
    }
}

/* gx = k * (gy - mg - (x - mean) * invstd * mgx), k = invstd * w; mg = mgx = 0 when red is NULL
 * (evaluation), where the CPU still evaluates the same expression (a NaN or inf x still shows). */
template <typename T, typename I>
__global__ void bn_bw_gx_kernel(I n, I c, I s, const T *__restrict__ x, const T *__restrict__ gy,
                                const T *__restrict__ mean, const T *__restrict__ invstd, const T *__restrict__ w,
                                const double *__restrict__ red, T *__restrict__ gx)
{
    RT_CUDA_LOOP(t, (int64_t)n * c * s)
    {
        I e = (I)t, row = e / s, ch = row - row / c * c;
        double m = (double)mean[ch], is = (double)invstd[ch], k = is * (w ? (double)w[ch] : 1.0);
        double mg = red ? red[2 * ch] : 0, mgx = red ? red[2 * ch + 1] : 0;
        double xh = __dmul_rn(__dmul_rn(__dsub_rn((double)x[e], m), is), mgx);
        gx[e] = (T)__dmul_rn(k, __dsub_rn(__dsub_rn((double)gy[e], mg), xh));
    }
}

/* Host side: the index type by size, the launches. Sizes are > 0 where these are called. */
template <typename T, typename I>
static enum rt_status bn_stats(int64_t n, int64_t c, int64_t s, const T *x, T *mean, T *var)
{
    auto k = bn_stats_kernel<T, I>;
    return RT_CUDA_LAUNCH("cuda batch_norm stats", k, chan_blocks(c), chan_threads(n * s), 0, (I)n, (I)c, (I)s, x,
                          mean, var);
}

template <typename T, typename I>
static enum rt_status bn_apply(int64_t n, int64_t c, int64_t s, const T *x, const T *mean, const T *invstd,
                               const T *w, const T *b, T *y)
{
    auto k = bn_apply_kernel<T, I>;
    return RT_CUDA_LAUNCH("cuda batch_norm", k, rt_cuda_blocks(n * c * s), RT_CUDA_THREADS, 0, (I)n, (I)c, (I)s, x,
                          mean, invstd, w, b, y);
}

/* the sums when gw, gb or a training gx need them (gw = gb = 0 over an empty batch, as the CPU),
 * then gx elementwise */
template <typename T, typename I>
static enum rt_status bn_bw(bool training, int64_t n, int64_t c, int64_t s, const T *x, const T *gy, const T *mean,
                            const T *invstd, const T *w, T *gx, T *gw, T *gb)
{
    bool any_gx = gx && n * s > 0, need_red = any_gx && training;
    double *red = NULL;
    size_t red_bytes = (size_t)(2 * c) * sizeof(double);
    enum rt_status st = RT_OK;
    if (need_red && (st = rt_cuda_alloc(red_bytes, (void **)&red)) != RT_OK)
        return st;
    if (gw || gb || need_red) {
        auto k = bn_bw_sums_kernel<T, I>;
        st = RT_CUDA_LAUNCH("cuda batch_norm backward", k, chan_blocks(c), chan_threads(n * s), 0, (I)n, (I)c, (I)s,
                            x, gy, mean, invstd, gw, gb, red);
    }
    if (st == RT_OK && any_gx) {
        auto k = bn_bw_gx_kernel<T, I>;
        st = RT_CUDA_LAUNCH("cuda batch_norm backward", k, rt_cuda_blocks(n * c * s), RT_CUDA_THREADS, 0, (I)n,
                            (I)c, (I)s, x, gy, mean, invstd, w, red, gx);
    }
    if (red)
        rt_cuda_free(red, red_bytes); /* one stream: the kernels above are queued before any reuse */
    return st;
}

template <typename T> static enum rt_status stats(int64_t n, int64_t c, int64_t s, const T *x, T *mean, T *var)
{
    if (c <= 0) /* nothing to write */
        return RT_OK;
    return fits32(n, c, s) ? bn_stats<T, int32_t>(n, c, s, x, mean, var) : bn_stats<T, int64_t>(n, c, s, x, mean, var);
}

template <typename T>
static enum rt_status apply(int64_t n, int64_t c, int64_t s, const T *x, const T *mean, const T *invstd, const T *w,
                            const T *b, T *y)
{
    if (n <= 0 || c <= 0 || s <= 0)
        return RT_OK;
    return fits32(n, c, s) ? bn_apply<T, int32_t>(n, c, s, x, mean, invstd, w, b, y)
                           : bn_apply<T, int64_t>(n, c, s, x, mean, invstd, w, b, y);
}

template <typename T>
static enum rt_status backward(bool training, int64_t n, int64_t c, int64_t s, const T *x, const T *gy,
                               const T *mean, const T *invstd, const T *w, T *gx, T *gw, T *gb)
{
    if (c <= 0 || (!gx && !gw && !gb))
        return RT_OK;
    return fits32(n, c, s) ? bn_bw<T, int32_t>(training, n, c, s, x, gy, mean, invstd, w, gx, gw, gb)
                           : bn_bw<T, int64_t>(training, n, c, s, x, gy, mean, invstd, w, gx, gw, gb);
}

enum rt_status rt_cuda_batch_norm_stats(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x, void *mean,
                                        void *var)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "batch_norm", st = stats<T>(n, c, s, (const T *)x, (T *)mean, (T *)var));
    return st;
}

enum rt_status rt_cuda_batch_norm_apply(enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x,
                                        const void *mean, const void *invstd, const void *weight, const void *bias,
                                        void *y)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "batch_norm",
                           st = apply<T>(n, c, s, (const T *)x, (const T *)mean, (const T *)invstd, (const T *)weight,
                                         (const T *)bias, (T *)y));
    return st;
}

enum rt_status rt_cuda_batch_norm_backward(enum rt_dtype dt, bool training, int64_t n, int64_t c, int64_t s,
                                           const void *x, const void *gy, const void *mean, const void *invstd,
                                           const void *weight, void *gx, void *gw, void *gb)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "batch_norm backward",
                           st = backward<T>(training, n, c, s, (const T *)x, (const T *)gy, (const T *)mean,
                                            (const T *)invstd, (const T *)weight, (T *)gx, (T *)gw, (T *)gb));
    return st;
}
