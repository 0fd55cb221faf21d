/* im2col / col2im for 2-D convolution. col is (c*kh*kw, n*oh*ow): row (ci, ki, kj), column
 * (image, oy, ox), so one GEMM covers every image of a chunk. Rows are independent in im2col and
 * channels are independent in col2im, which is what the OpenMP loops split.
 * rt_cpu_conv2d / _backward pick the path: oneDNN's direct kernels (cpu_conv_dnnl.c) or, by
 * answering *done = false, ops_conv.c's im2col + GEMM. RETORT_CPU_CONV=im2col|dnnl|auto chooses
 * (read on each call, so a test can switch; unset is auto). f64 always takes im2col: oneDNN has no
 * f64 convolution.
 * auto (the default) is oneDNN for every f32 convolution it has a kernel for, im2col for the rest:
 * measured at batch 128 on 2 threads (AMD EPYC Zen 5, a shared machine: best of 15 per conv, best of
 * 4-5 alternating rounds per training step), oneDNN wins from 2 input channels up (forward 1.5-4x
 * and backward 1.3-3x at 16-64 channels of 3x3; depthwise 10x). On a one-channel input (an MNIST
 * stem) im2col's forward alone is faster (0.6 vs 1.8 ms) and the backward about even, yet the small
 * CNN's whole step ran 10-15% faster with oneDNN there too in three runs (im2col for that conv's
 * forward only, or for all of it), so auto does not keep im2col for it. */
#include <string.h>

#include "backend/cpu/cpu_dnnl.h"
#include "backend/cpu/cpu_nn.h"

enum conv_path { PATH_IM2COL, PATH_DNNL };

static enum rt_status conv_path(const char *op, enum rt_dtype dt, enum conv_path *path)
{
    enum rt_cpu_path setting;
    enum rt_status st = rt_cpu_path_setting(op, "RETORT_CPU_CONV", "im2col", &setting);
    *path = PATH_IM2COL;
#ifdef RETORT_HAVE_DNNL
    if (st == RT_OK && setting != RT_CPU_PATH_OTHER && dt == RT_F32) /* oneDNN has no f64 convolution */
        *path = PATH_DNNL;
#else
    (void)dt, (void)setting;
#endif
    return st;
}

enum rt_status rt_cpu_conv2d(enum rt_dtype dt, const struct rt_conv2d_shape *s, const void *x, const void *w,
                             const void *b, void *y, bool *done)
{
    enum conv_path path;
    *done = false;
    enum rt_status st = conv_path("rt_conv2d", dt, &path);
    if (st != RT_OK || path == PATH_IM2COL)
        return st;
#ifdef RETORT_HAVE_DNNL
    return rt_cpu_dnnl_conv2d(s, x, w, b, y, done);
#else
    (void)x, (void)w, (void)b, (void)y;
    return RT_OK;
#endif
}

enum rt_status rt_cpu_conv2d_backward(enum rt_dtype dt, const struct rt_conv2d_shape *s, const void *x,
                                      const void *w, const void *gy, void *gx, void *gw, bool *done)
{
    enum conv_path path;
    *done = false;
    enum rt_status st = conv_path("Conv2dBackward", dt, &path);
    if (st != RT_OK || path == PATH_IM2COL)
        return st;
#ifdef RETORT_HAVE_DNNL
    return rt_cpu_dnnl_conv2d_backward(s, x, w, gy, gx, gw, done);
#else
    (void)x, (void)w, (void)gy, (void)gx, (void)gw;
    return RT_OK;
#endif
}

#define DEF_IM2COL(SUF, T)                                                                                        \
    static void im2col_##SUF(const struct rt_conv_geom *g, const T *x, T *col)                                    \
    {                                                                                                             \
        int64_t L = g->oh * g->ow, rows = g->c * g->kh * g->kw, cols = g->n * L;                                  \
        _Pragma("omp parallel for if (rows * cols >= RT_CPU_PARALLEL_MIN) schedule(static)")                     \
        for (int64_t r = 0; r < rows; r++) {                                                                      \
            int64_t ci = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;                             \
            T *dst = col + r * cols;                                                                              \
            for (int64_t im = 0; im < g->n; im++) {                                                               \
                const T *src = x + im * g->img_stride + ci * g->h * g->w;                                         \
                for (int64_t oy = 0; oy < g->oh; oy++) {                                                          \
                    int64_t iy = oy * g->sh - g->ph + ki * g->dh;                                                 \
                    T *d = dst + im * L + oy * g->ow;                                                             \
                    if (iy < 0 || iy >= g->h) {                                                                   \
                        for (int64_t ox = 0; ox < g->ow; ox++)                                                    \
                            d[ox] = 0;                                                                            \
                        continue;                                                                                 \
                    }                                                                                             \
                    const T *srow = src + iy * g->w;                                                              \
                    int64_t x0 = kj * g->dw - g->pw;                                                              \
                    if (g->sw == 1 && x0 >= 0 && x0 + g->ow <= g->w) {                                            \
                        memcpy(d, srow + x0, (size_t)g->ow * sizeof(T));                                          \
                        continue;                                                                                 \
                    }                                                                                             \
                    for (int64_t ox = 0; ox < g->ow; ox++) {                                                      \
                        int64_t ix = x0 + ox * g->sw;                                                             \
                        d[ox] = ix >= 0 && ix < g->w ? srow[ix] : (T)0;                                           \
                    }                                                                                             \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    static void col2im_##SUF(const struct rt_conv_geom *g, const T *col, T *x)                                    \
    {                                                                                                             \
        int64_t L = g->oh * g->ow, cols = g->n * L, kk = g->kh * g->kw;                                           \
        _Pragma("omp parallel for if (g->c * kk * cols >= RT_CPU_PARALLEL_MIN) schedule(static)")                \
        for (int64_t ci = 0; ci < g->c; ci++) {                                                                   \
            for (int64_t im = 0; im < g->n; im++)                                                                 \
                memset(x + im * g->img_stride + ci * g->h * g->w, 0, (size_t)(g->h * g->w) * sizeof(T));          \
            for (int64_t k = 0; k < kk; k++) {                                                                    \
                int64_t ki = k / g->kw, kj = k % g->kw;                                                           \
                const T *srcr = col + (ci * kk + k) * cols;                                                       \
                for (int64_t im = 0; im < g->n; im++) {                                                           \
                    T *dst = x + im * g->img_stride + ci * g->h * g->w;                                           \
                    for (int64_t oy = 0; oy < g->oh; oy++) {                                                      \
                        int64_t iy = oy * g->sh - g->ph + ki * g->dh;                                             \
                        if (iy < 0 || iy >= g->h)                                                                 \
                            continue;                                                                             \
                        const T *s = srcr + im * L + oy * g->ow;                                                  \
                        T *drow = dst + iy * g->w;                                                                \
                        int64_t x0 = kj * g->dw - g->pw;                                                          \
                        for (int64_t ox = 0; ox < g->ow; ox++) {                                                  \
                            int64_t ix = x0 + ox * g->sw;                                                         \
                            if (ix >= 0 && ix < g->w)                                                             \
                                drow[ix] += s[ox];                                                                \
                        }                                                                                         \
                    }                                                                                             \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }
DEF_IM2COL(f32, float)
DEF_IM2COL(f64, double)

enum rt_status rt_cpu_im2col(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *col)
{
    enum rt_status st = rt_backend_float_only("im2col", dt);
    if (st != RT_OK)
        return st;
    if (dt == RT_F32)
        im2col_f32(g, x, col);
    else
        im2col_f64(g, x, col);
    return RT_OK;
}

enum rt_status rt_cpu_col2im(enum rt_dtype dt, const struct rt_conv_geom *g, const void *col, void *x)
{
    enum rt_status st = rt_backend_float_only("col2im", dt);
    if (st != RT_OK)
        return st;
    if (dt == RT_F32)
        col2im_f32(g, col, x);
    else
        col2im_f64(g, col, x);
    return RT_OK;
}
