/* im2col / col2im for 2-D convolution (mirrors cpu_conv.c). col is (c*kh*kw, n*oh*ow): row
 * (ci, ki, kj), column (image, oy, ox); image i of the chunk starts img_stride elements after x.
 * im2col: one thread per (ci, column), writing its kh*kw rows, so a warp writes consecutive columns
 * (coalesced) and the index decoding is shared by kh*kw stores. col2im is a gather: one thread per
 * x element sums the col entries that map to it, in the CPU's order (ki, kj ascending) and in the
 * element type, so it adds exactly what cpu_conv.c adds, deterministically and without atomics.
 * Kernels index with int32 when every index fits (32-bit division is several times cheaper than
 * 64-bit), else int64. */
#include "backend/cuda/cuda_kernels.h"

/* the geometry by value, in the kernel's index type */
template <typename I> struct cgeom {
    I n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, img_stride;
};

template <typename I> static cgeom<I> cgeom_of(const struct rt_conv_geom *g)
{
    return cgeom<I>{(I)g->n,  (I)g->c,  (I)g->h,  (I)g->w,  (I)g->kh, (I)g->kw, (I)g->sh,        (I)g->sw,
                    (I)g->ph, (I)g->pw, (I)g->dh, (I)g->dw, (I)g->oh, (I)g->ow, (I)g->img_stride};
}

/* True when every index below stays in int32: each term is at most lim = INT32_MAX / 2, so a sum of
 * two in-range terms cannot overflow. */
static bool fits32(const struct rt_conv_geom *g)
{
    const int64_t lim = INT32_MAX / 2;
    int64_t kk = g->kh * g->kw, cols = g->n * g->oh * g->ow, plane = g->h * g->w;
    return g->c * kk * cols <= lim && g->n * (g->img_stride + g->c * plane) <= lim &&
           (g->oh + 1) * g->sh + (g->kh + 1) * g->dh + g->ph + g->h <= lim &&
           (g->ow + 1) * g->sw + (g->kw + 1) * g->dw + g->pw + g->w <= lim;
}

template <typename T, typename I>
__global__ void im2col_kernel(cgeom<I> g, const T *__restrict__ x, T *__restrict__ col)
{
    const I L = g.oh * g.ow, cols = g.n * L, kk = g.kh * g.kw, plane = g.h * g.w;
    RT_CUDA_LOOP(t, (int64_t)g.c * cols)
    {
        I e = (I)t, ci = e / cols, q = e - ci * cols, im = q / L, pix = q - im * L, oy = pix / g.ow,
          ox = pix - oy * g.ow;
        const T *src = x + im * g.img_stride + ci * plane;
        I y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw, r = ci * kk * cols + q;
        for (I ki = 0; ki < g.kh; ki++) {
            I iy = y0 + ki * g.dh;
            bool row_in = iy >= 0 && iy < g.h;
            for (I kj = 0; kj < g.kw; kj++, r += cols) {
                I ix = x0 + kj * g.dw;
                col[r] = row_in && ix >= 0 && ix < g.w ? src[iy * g.w + ix] : (T)0;
            }
        }
    }
}

/* x element (im, ci, iy, ix) receives col[(ci, ki, kj), (im, oy, ox)] wherever
 * iy = oy*sh - ph + ki*dh and ix = ox*sw - pw + kj*dw with oy, ox in range. */
template <typename T, typename I>
__global__ void col2im_kernel(cgeom<I> g, const T *__restrict__ col, T *__restrict__ x)
{
    const I L = g.oh * g.ow, cols = g.n * L, kk = g.kh * g.kw, plane = g.h * g.w, chw = g.c * plane;
    RT_CUDA_LOOP(t, (int64_t)g.n * chw)
    {
        I e = (I)t, im = e / chw, rem = e - im * chw, ci = rem / plane, pix = rem - ci * plane, iy = pix / g.w,
          ix = pix - iy * g.w;
        const T *src = col + ci * kk * cols + im * L;
        T *dst = x + im * g.img_stride + rem;
        T acc = 0; /* accumulate in T, one rounding per term, as the CPU's x += */
        for (I ki = 0; ki < g.kh; ki++) {
            I ty = iy + g.ph - ki * g.dh; /* = oy * sh; decreases with ki (dh >= 1) */
            if (ty < 0)
                break;
            I oy = ty / g.sh;
            if (oy * g.sh != ty || oy >= g.oh)
                continue;
            for (I kj = 0; kj < g.kw; kj++) {
                I tx = ix + g.pw - kj * g.dw;
                if (tx < 0)
                    break;
                I ox = tx / g.sw;
                if (ox * g.sw == tx && ox < g.ow)
                    acc += src[(ki * g.kw + kj) * cols + oy * g.ow + ox];
            }
        }
        *dst = acc;
    }
}

template <typename T> static enum rt_status run_im2col(const struct rt_conv_geom *g, const T *x, T *col)
{
    int64_t work = g->c * g->n * g->oh * g->ow;
    if (g->n <= 0 || g->c <= 0 || g->kh <= 0 || g->kw <= 0 || work <= 0)
        return RT_OK;
    RT_CUDA_LAUNCH_INDEXED("cuda im2col", im2col_kernel, fits32(g), cgeom_of, g, work, x, col);
}

template <typename T> static enum rt_status run_col2im(const struct rt_conv_geom *g, const T *col, T *x)
{
    int64_t work = g->n * g->c * g->h * g->w;
    if (g->n <= 0 || g->c <= 0 || work <= 0) /* no output pixels still writes zeros */
        return RT_OK;
    RT_CUDA_LAUNCH_INDEXED("cuda col2im", col2im_kernel, fits32(g), cgeom_of, g, work, col, x);
}

enum rt_status rt_cuda_im2col(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *col)
{
    if (dt == RT_BF16) /* a bf16 convolution's operands (ops_conv.c): the bits move as they are, 0 is +0 */
        return run_im2col<uint16_t>(g, (const uint16_t *)x, (uint16_t *)col);
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "im2col", st = run_im2col<T>(g, (const T *)x, (T *)col));
    return st;
}

enum rt_status rt_cuda_col2im(enum rt_dtype dt, const struct rt_conv_geom *g, const void *col, void *x)
{
    enum rt_status st = RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "col2im", st = run_col2im<T>(g, (const T *)col, (T *)x));
    return st;
}
