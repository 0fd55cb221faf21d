/* Max, average and adaptive average pooling over g->n contiguous planes of h x w, and their
 * backward passes (mirrors cpu_pool.c). Forward: one thread per output element, the window read in
 * the CPU's order, so sums (in double) and max/NaN choices agree exactly. Backward: a gather, one
 * thread per input element walking the windows that cover it in ascending output order and adding
 * in the element type, so each gradient element gets the CPU's terms in the CPU's order:
 * deterministic, no atomics. Kernels index with int32 when every index fits, else int64. */
#include "backend/cuda/cuda_kernels.h"

template <typename I> struct pgeom {
    I n, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

template <typename I> static pgeom<I> pgeom_of(const struct rt_conv_geom *g)
{
    return pgeom<I>{(I)g->n,  (I)g->h,  (I)g->w,  (I)g->kh, (I)g->kw, (I)g->sh, (I)g->sw,
                    (I)g->ph, (I)g->pw, (I)g->dh, (I)g->dw, (I)g->oh, (I)g->ow};
}

/* True when every index and bin product below stays in int32 (each term at most INT32_MAX / 2). */
static bool fits32(const struct rt_conv_geom *g)
{
    const int64_t lim = INT32_MAX / 2;
    return g->n * g->h * g->w <= lim && g->n * g->oh * g->ow <= lim &&
           (g->oh + 1) * (g->sh + g->h + 1) + (g->kh + 1) * g->dh + g->ph <= lim &&
           (g->ow + 1) * (g->sw + g->w + 1) + (g->kw + 1) * g->dw + g->pw <= lim;
}

/* The outputs o in [lo, hi): those whose window [o*s - p, o*s - p + span) contains input i (i >= 0). */
template <typename I>
__device__ static inline void covering(I i, I s, I p, I span, I nout, I *lo, I *hi)
{
    *lo = i + p < span ? 0 : (i + p - span) / s + 1;
    I h = (i + p) / s + 1;
    *hi = h < nout ? h : nout;
}

/* --- max --- */

/* The first NaN of the window (row-major) wins, else the first maximum; a window with no element
 * inside the input gives -inf and index 0. Same as both CPU paths. */
template <typename T, typename I>
__global__ void maxp_kernel(pgeom<I> g, const T *__restrict__ x, T *__restrict__ y, int64_t *__restrict__ idx)
{
    const I P = g.h * g.w, Q = g.oh * g.ow;
    RT_CUDA_LOOP(t, (int64_t)g.n * Q)
    {
        I e = (I)t, p = e / Q, q = e - p * Q, oy = q / g.ow, ox = q - oy * g.ow;
        const T *plane = x + p * P;
        I y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw, best = -1;
        T m = 0;
        bool nan = false;
        for (I i = 0; i < g.kh && !nan; i++) {
            I iy = y0 + i * g.dh;
            if (iy < 0 || iy >= g.h)
                continue;
            for (I j = 0; j < g.kw; j++) {
                I ix = x0 + j * g.dw;
                if (ix < 0 || ix >= g.w)
                    continue;
                T v = plane[iy * g.w + ix];
                if (best < 0 || v > m || v != v) {
                    m = v;
                    best = iy * g.w + ix;
                    if (v != v) {
                        nan = true;
                        break;
                    }
                }
            }
        }
        y[e] = best < 0 ? (T)-INFINITY : m;
        if (idx)
            idx[e] = best < 0 ? 0 : (int64_t)best;
    }
}

/* gx[at] = sum of gy[q] over the outputs q of the plane with idx[q] == at. Only the windows whose span
 * covers at are scanned: idx from the forward always lies in its window (with padding <= kernel/2,
 * as the ops require, no window is empty, so the -inf/index-0 case never reaches here). */
template <typename T, typename I>
__global__ void maxp_bw_kernel(pgeom<I> g, const int64_t *__restrict__ idx, const T *__restrict__ gy,
                               T *__restrict__ gx)
{
    const I P = g.h * g.w, Q = g.oh * g.ow, eh = (g.kh - 1) * g.dh + 1, ew = (g.kw - 1) * g.dw + 1;
    RT_CUDA_LOOP(t, (int64_t)g.n * P)
    {
        I e = (I)t, p = e / P, at = e - p * P, iy = at / g.w, ix = at - iy * g.w, oy0, oy1, ox0, ox1;
        covering(iy, g.sh, g.ph, eh, g.oh, &oy0, &oy1);
        covering(ix, g.sw, g.pw, ew, g.ow, &ox0, &ox1);
        const int64_t *ip = idx + p * Q;
        const T *gp = gy + p * Q;
        T acc = 0;
        for (I oy = oy0; oy < oy1; oy++)
            for (I ox = ox0; ox < ox1; ox++) {
                I q = oy * g.ow + ox;
                if (ip[q] == (int64_t)at)
                    acc += gp[q];
            }
        gx[e] = acc;
    }
}

/* --- average --- */

/* window [y0, y1) x [x0, x1) clipped to the input, and its divisor (cpu_pool.c's avg_win) */
template <typename I>
__device__ static inline double avg_win(const pgeom<I> &g, bool cip, I oy, I ox, I *y0, I *y1, I *x0, I *x1)
{
    I a = oy * g.sh - g.ph, b = ox * g.sw - g.pw;
    I ae = a + g.kh < g.h + g.ph ? a + g.kh : g.h + g.ph;
    I be = b + g.kw < g.w + g.pw ? b + g.kw : g.w + g.pw;
    double padded = (double)((ae - a) * (be - b));
    *y0 = a < 0 ? 0 : a;
    *x0 = b < 0 ? 0 : b;
    *y1 = ae < g.h ? ae : g.h;
    *x1 = be < g.w ? be : g.w;
    return cip ? padded : (double)((*y1 - *y0) * (*x1 - *x0));
}

/* Sum of the window [y0, y1) x [x0, x1) of a plane w wide, in double, row by row as the CPU adds it. */
template <typename T, typename I>
__device__ static inline double window_sum(const T *__restrict__ plane, I w, I y0, I y1, I x0, I x1)
{
    double s = 0;
    for (I iy = y0; iy < y1; iy++)
        for (I ix = x0; ix < x1; ix++)
            s += (double)plane[iy * w + ix];
    return s;
}

template <typename T, typename I>
__global__ void avgp_kernel(pgeom<I> g, bool cip, const T *__restrict__ x, T *__restrict__ y)
{
    const I P = g.h * g.w, Q = g.oh * g.ow;
    RT_CUDA_LOOP(t, (int64_t)g.n * Q)
    {
        I e = (I)t, p = e / Q, q = e - p * Q, oy = q / g.ow, ox = q - oy * g.ow, y0, y1, x0, x1;
        double div = avg_win(g, cip, oy, ox, &y0, &y1, &x0, &x1);
        y[e] = (T)(window_sum(x + p * P, g.w, y0, y1, x0, x1) / div);
    }
}

/* Input (iy, ix) lies in the clipped window of (oy, ox) iff oy*sh - ph <= iy < oy*sh - ph + kh (the
 * clip to h + ph and h never excludes a real element), likewise for x: no dilation, as the CPU. */
template <typename T, typename I>
__global__ void avgp_bw_kernel(pgeom<I> g, bool cip, const T *__restrict__ gy, T *__restrict__ gx)
{
    const I P = g.h * g.w, Q = g.oh * g.ow;
    RT_CUDA_LOOP(t, (int64_t)g.n * P)
    {
        I e = (I)t, p = e / P, at = e - p * P, iy = at / g.w, ix = at - iy * g.w, oy0, oy1, ox0, ox1;
        covering(iy, g.sh, g.ph, g.kh, g.oh, &oy0, &oy1);
        covering(ix, g.sw, g.pw, g.kw, g.ow, &ox0, &ox1);
        const T *gp = gy + p * Q;
        T acc = 0;
        for (I oy = oy0; oy < oy1; oy++)
            for (I ox = ox0; ox < ox1; ox++) {
                I y0, y1, x0, x1;
                double div = avg_win(g, cip, oy, ox, &y0, &y1, &x0, &x1);
                acc += (T)((double)gp[oy * g.ow + ox] / div); /* the CPU's v, added in T */
            }
        gx[e] = acc;
    }
}

/* --- adaptive average: bin o of n inputs into m outputs is [floor(o*n/m), ceil((o+1)*n/m)) --- */

template <typename I> __device__ __forceinline__ void adap_bin(I o, I n, I m, I *lo, I *hi)
{
    *lo = o * n / m, *hi = ((o + 1) * n + m - 1) / m;
}

template <typename T, typename I>
__global__ void adap_kernel(pgeom<I> g, const T *__restrict__ x, T *__restrict__ y)
{
    const I P = g.h * g.w, Q = g.oh * g.ow;
    RT_CUDA_LOOP(t, (int64_t)g.n * Q)
    {
        I e = (I)t, p = e / Q, q = e - p * Q, oy = q / g.ow, ox = q - oy * g.ow;
        I y0, y1, x0, x1;
        adap_bin(oy, g.h, g.oh, &y0, &y1);
        adap_bin(ox, g.w, g.ow, &x0, &x1);
        double div = (double)((y1 - y0) * (x1 - x0));
        y[e] = (T)(window_sum(x + p * P, g.w, y0, y1, x0, x1) / div);
    }
}

/* Input i lies in bin o iff floor(o*n/m) <= i < ceil((o+1)*n/m), i.e. iff
 * floor(i*m/n) <= o < ceil((i+1)*m/n): the bins covering i are bin i of m into n, in ascending order. */
template <typename T, typename I>
__global__ void adap_bw_kernel(pgeom<I> g, const T *__restrict__ gy, T *__restrict__ gx)
{
    const I P = g.h * g.w, Q = g.oh * g.ow;
    RT_CUDA_LOOP(t, (int64_t)g.n * P)
    {
        I e = (I)t, p = e / P, at = e - p * P, iy = at / g.w, ix = at - iy * g.w;
        I oy0, oy1, ox0, ox1;
        adap_bin(iy, g.oh, g.h, &oy0, &oy1);
        adap_bin(ix, g.ow, g.w, &ox0, &ox1);
        const T *gp = gy + p * Q;
        T acc = 0;
        for (I oy = oy0; oy < oy1; oy++) {
            I y0, y1, x0, x1;
            adap_bin(oy, g.h, g.oh, &y0, &y1);
            for (I ox = ox0; ox < ox1; ox++) {
                adap_bin(ox, g.w, g.ow, &x0, &x1);
                double div = (double)((y1 - y0) * (x1 - x0));
                acc += (T)((double)gp[oy * g.ow + ox] / div); /* the CPU's v, added in T */
            }
        }
        gx[e] = acc;
    }
}

/* --- entry points --- */

/* kernel<T, int32_t or int64_t> over `work` items (int32 when every index fits) */
#define POOL_LAUNCH(op, kernel, g, work, ...)                                                                     \
    RT_CUDA_LAUNCH_INDEXED(op, kernel, fits32(g), pgeom_of, g, work, __VA_ARGS__)

/* Threads of a forward: every output, even of an empty plane (the CPU writes -inf / 0 / NaN there). */
static int64_t outputs(const struct rt_conv_geom *g)
{
    return g->n > 0 && g->oh > 0 && g->ow > 0 ? g->n * g->oh * g->ow : 0;
}
/* Threads of a backward: every input element; none when there are no outputs (nothing is added). */
static int64_t inputs(const struct rt_conv_geom *g)
{
    return outputs(g) > 0 && g->h > 0 && g->w > 0 ? g->n * g->h * g->w : 0;
}

template <typename T> static enum rt_status maxp(const struct rt_conv_geom *g, const T *x, T *y, int64_t *idx)
{
    int64_t work = outputs(g);
    if (work == 0)
        return RT_OK;
    POOL_LAUNCH("cuda max_pool2d", maxp_kernel, g, work, x, y, idx);
}

template <typename T>
static enum rt_status maxp_bw(const struct rt_conv_geom *g, const int64_t *idx, const T *gy, T *gx)
{
    int64_t work = inputs(g);
    if (work == 0)
        return RT_OK;
    POOL_LAUNCH("cuda max_pool2d backward", maxp_bw_kernel, g, work, idx, gy, gx);
}

template <typename T> static enum rt_status avgp(const struct rt_conv_geom *g, bool cip, const T *x, T *y)
{
    int64_t work = outputs(g);
    if (work == 0)
        return RT_OK;
    POOL_LAUNCH("cuda avg_pool2d", avgp_kernel, g, work, cip, x, y);
}

template <typename T> static enum rt_status avgp_bw(const struct rt_conv_geom *g, bool cip, const T *gy, T *gx)
{
    int64_t work = inputs(g);
    if (work == 0)
        return RT_OK;
    POOL_LAUNCH("cuda avg_pool2d backward", avgp_bw_kernel, g, work, cip, gy, gx);
}

template <typename T> static enum rt_status adap(const struct rt_conv_geom *g, const T *x, T *y)
{
    int64_t work = outputs(g);
    if (work == 0)
        return RT_OK;
    POOL_LAUNCH("cuda adaptive_avg_pool2d", adap_kernel, g, work, x, y);
}

template <typename T> static enum rt_status adap_bw(const struct rt_conv_geom *g, const T *gy, T *gx)
{
    int64_t work = inputs(g);
    if (work == 0)
        return RT_OK;
    POOL_LAUNCH("cuda adaptive_avg_pool2d backward", adap_bw_kernel, g, work, gy, gx);
}

enum rt_status rt_cuda_max_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y, int64_t *idx)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "max_pool2d", st = maxp<T>(g, (const T *)x, (T *)y, idx));
    return st;
}

enum rt_status rt_cuda_max_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const int64_t *idx,
                                           const void *gy, void *gx)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "max_pool2d backward", st = maxp_bw<T>(g, idx, (const T *)gy, (T *)gx));
    return st;
}

enum rt_status rt_cuda_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                  const void *x, void *y)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "avg_pool2d", st = avgp<T>(g, count_include_pad, (const T *)x, (T *)y));
    return st;
}

enum rt_status rt_cuda_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                           const void *gy, void *gx)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "avg_pool2d backward", st = avgp_bw<T>(g, count_include_pad, (const T *)gy, (T *)gx));
    return st;
}

enum rt_status rt_cuda_adaptive_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "adaptive_avg_pool2d", st = adap<T>(g, (const T *)x, (T *)y));
    return st;
}

enum rt_status rt_cuda_adaptive_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const void *gy,
                                                    void *gx)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "adaptive_avg_pool2d backward", st = adap_bw<T>(g, (const T *)gy, (T *)gx));
    return st;
}
