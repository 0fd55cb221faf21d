/* Max, average and adaptive average pooling over contiguous planes (g->n planes of h x w), and
 * their backward passes. Planes are independent: the OpenMP loops split them, so gradient
 * scatter-adds never race. Window bounds follow PyTorch (no ceil mode). */
#include "backend/cpu/cpu_nn.h"

/* declares the work estimate, then opens a parallel loop over planes when it is large enough */
#define PLANES_PARALLEL(work)                                                                                     \
    int64_t work_ = (work);                                                                                       \
    _Pragma("omp parallel for if (work_ >= RT_CPU_PARALLEL_MIN) schedule(static)")

#define DEF_POOL(SUF, T)                                                                                          \
    /* windows without padding or dilation always lie inside the plane: no bounds tests */        \
    static void maxp_dense_##SUF(const struct rt_conv_geom *g, const T *x, T *y, int64_t *idx)                    \
    {                                                                                                             \
        /* locals: idx is int64_t like g's fields, so the compiler would reload them after each store */        \
        const int64_t n = g->n, W = g->w, P = g->h * W, OH = g->oh, OW = g->ow, Q = OH * OW;                     \
        const int64_t kh = g->kh, kw = g->kw, sh = g->sh, sw = g->sw;                                             \
        PLANES_PARALLEL(n * Q * kh * kw)                                                                          \
        for (int64_t p = 0; p < n; p++) {                                                                         \
            const T *plane = x + p * P;                                                                           \
            T *yp = y + p * Q;                                                                                    \
            int64_t *ip = idx ? idx + p * Q : NULL;                                                               \
            for (int64_t oy = 0; oy < OH; oy++)                                                                   \
                for (int64_t ox = 0; ox < OW; ox++) {                                                             \
                    int64_t base = oy * sh * W + ox * sw, best = base;                                            \
                    T m = plane[base];                                                                            \
                    int nan = 0;                                                                                  \
                    for (int64_t i = 0; i < kh; i++)                                                              \
                        for (int64_t j = 0; j < kw; j++) {                                                        \
                            int64_t at = base + i * W + j;                                                        \
                            T v = plane[at];                                                                      \
                            int gt = v > m; /* plain selects compile to cmov/max: data is random */        \
                            best = gt ? at : best;                                                                \
                            m = gt ? v : m;                                                                       \
                            nan |= v != v;                                                                        \
                        }                                                                                         \
                    if (nan) /* rare: the first NaN of the window wins, as in PyTorch */                       \
                        for (int64_t i = kh * kw - 1; i >= 0; i--) {                                              \
                            int64_t at = base + (i / kw) * W + i % kw;                                            \
                            if (plane[at] != plane[at]) {                                                         \
                                m = plane[at];                                                                    \
                                best = at;                                                                        \
                            }                                                                                     \
                        }                                                                                         \
                    yp[oy * OW + ox] = m;                                                                         \
                    if (ip)                                                                                       \
                        ip[oy * OW + ox] = best;                                                                  \
                }                                                                                                 \
        }                                                                                                         \
    }                                                                                                             \
    static void maxp_##SUF(const struct rt_conv_geom *g, const T *x, T *y, int64_t *idx)                          \
    {                                                                                                             \
        if (g->ph == 0 && g->pw == 0 && g->dh == 1 && g->dw == 1) {                                               \
            maxp_dense_##SUF(g, x, y, idx);                                                                       \
            return;                                                                                               \
        }                                                                                                         \
        int64_t P = g->h * g->w, Q = g->oh * g->ow;                                                               \
        PLANES_PARALLEL(g->n * Q * g->kh * g->kw)                                                                 \
        for (int64_t p = 0; p < g->n; p++)                                                                        \
            for (int64_t oy = 0; oy < g->oh; oy++)                                                                \
                for (int64_t ox = 0; ox < g->ow; ox++) {                                                          \
                    int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw, best = -1;                          \
                    T m = 0;                                                                                      \
                    for (int64_t i = 0; i < g->kh; i++) {                                                         \
                        int64_t iy = y0 + i * g->dh;                                                              \
                        if (iy < 0 || iy >= g->h)                                                                 \
                            continue;                                                                             \
                        for (int64_t j = 0; j < g->kw; j++) {                                                     \
                            int64_t ix = x0 + j * g->dw;                                                          \
                            if (ix < 0 || ix >= g->w)                                                             \
                                continue;                                                                         \
                            T v = x[p * P + iy * g->w + ix];                                                      \
                            if (best < 0 || v > m || v != v) { /* NaN propagates, as in PyTorch */               \
                                m = v;                                                                            \
                                best = iy * g->w + ix;                                                            \
                                if (v != v)                                                                       \
                                    goto done_##SUF;                                                              \
                            }                                                                                     \
                        }                                                                                         \
                    }                                                                                             \
                done_##SUF:                                                                                       \
                    y[p * Q + oy * g->ow + ox] = best < 0 ? (T)-INFINITY : m;                                     \
                    if (idx)                                                                                      \
                        idx[p * Q + oy * g->ow + ox] = best < 0 ? 0 : best;                                       \
                }                                                                                                 \
    }                                                                                                             \
    static void maxp_bw_##SUF(const struct rt_conv_geom *g, const int64_t *idx, const T *gy, T *gx)               \
    {                                                                                                             \
        int64_t P = g->h * g->w, Q = g->oh * g->ow;                                                               \
        if (P == 0) /* empty planes (padding can still give outputs): no element takes a gradient */              \
            return;                                                                                               \
        PLANES_PARALLEL(g->n * Q)                                                                                 \
        for (int64_t p = 0; p < g->n; p++) {                                                                      \
            memset(gx + p * P, 0, (size_t)P * sizeof(T));                                                        \
            for (int64_t q = 0; q < Q; q++)                                                                       \
                gx[p * P + idx[p * Q + q]] += gy[p * Q + q];                                                      \
        }                                                                                                         \
    }                                                                                                             \
    /* window [y0, y1) x [x0, x1) clipped to the input, and its divisor */                                      \
    static inline void avg_win_##SUF(const struct rt_conv_geom *g, bool cip, int64_t oy, int64_t ox, int64_t *y0, \
                                     int64_t *y1, int64_t *x0, int64_t *x1, double *div)                         \
    {                                                                                                             \
        int64_t a = oy * g->sh - g->ph, b = ox * g->sw - g->pw;                                                   \
        int64_t ae = a + g->kh < g->h + g->ph ? a + g->kh : g->h + g->ph;                                         \
        int64_t be = b + g->kw < g->w + g->pw ? b + g->kw : g->w + g->pw;                                         \
        double padded = (double)((ae - a) * (be - b));                                                            \
        *y0 = a < 0 ? 0 : a;                                                                                      \
        *x0 = b < 0 ? 0 : b;                                                                                      \
        *y1 = ae < g->h ? ae : g->h;                                                                              \
        *x1 = be < g->w ? be : g->w;                                                                              \
        *div = cip ? padded : (double)((*y1 - *y0) * (*x1 - *x0));                                                \
    }                                                                                                             \
    static void avgp_##SUF(const struct rt_conv_geom *g, bool cip, const T *x, T *y)                              \
    {                                                                                                             \
        int64_t P = g->h * g->w, Q = g->oh * g->ow;                                                               \
        PLANES_PARALLEL(g->n * Q * g->kh * g->kw)                                                                 \
        for (int64_t p = 0; p < g->n; p++)                                                                        \
            for (int64_t oy = 0; oy < g->oh; oy++)                                                                \
                for (int64_t ox = 0; ox < g->ow; ox++) {                                                          \
                    int64_t y0, y1, x0, x1;                                                                       \
                    double div, s = 0;                                                                            \
                    avg_win_##SUF(g, cip, oy, ox, &y0, &y1, &x0, &x1, &div);                                      \
                    for (int64_t iy = y0; iy < y1; iy++)                                                          \
                        for (int64_t ix = x0; ix < x1; ix++)                                                      \
                            s += (double)x[p * P + iy * g->w + ix];                                               \
                    y[p * Q + oy * g->ow + ox] = (T)(s / div);                                                    \
                }                                                                                                 \
    }                                                                                                             \
    static void avgp_bw_##SUF(const struct rt_conv_geom *g, bool cip, const T *gy, T *gx)                         \
    {                                                                                                             \
        int64_t P = g->h * g->w, Q = g->oh * g->ow;                                                               \
        PLANES_PARALLEL(g->n * Q * g->kh * g->kw)                                                                 \
        for (int64_t p = 0; p < g->n; p++) {                                                                      \
            memset(gx + p * P, 0, (size_t)P * sizeof(T));                                                        \
            for (int64_t oy = 0; oy < g->oh; oy++)                                                                \
                for (int64_t ox = 0; ox < g->ow; ox++) {                                                          \
                    int64_t y0, y1, x0, x1;                                                                       \
                    double div;                                                                                   \
                    avg_win_##SUF(g, cip, oy, ox, &y0, &y1, &x0, &x1, &div);                                      \
                    T v = (T)((double)gy[p * Q + oy * g->ow + ox] / div);                                         \
                    for (int64_t iy = y0; iy < y1; iy++)                                                          \
                        for (int64_t ix = x0; ix < x1; ix++)                                                      \
                            gx[p * P + iy * g->w + ix] += v;                                                      \
                }                                                                                                 \
        }                                                                                                         \
    }                                                                                                             \
    static void adap_##SUF(const struct rt_conv_geom *g, bool bw, const T *src, T *dst)                           \
    {                                                                                                             \
        int64_t P = g->h * g->w, Q = g->oh * g->ow;                                                               \
        PLANES_PARALLEL(g->n * (P > Q ? P : Q))                                                                   \
        for (int64_t p = 0; p < g->n; p++) {                                                                      \
            if (bw)                                                                                               \
                memset(dst + p * P, 0, (size_t)P * sizeof(T));                                                    \
            for (int64_t oy = 0; oy < g->oh; oy++) {                                                              \
                int64_t y0 = oy * g->h / g->oh, y1 = ((oy + 1) * g->h + g->oh - 1) / g->oh;                       \
                for (int64_t ox = 0; ox < g->ow; ox++) {                                                          \
                    int64_t x0 = ox * g->w / g->ow, x1 = ((ox + 1) * g->w + g->ow - 1) / g->ow;                   \
                    double div = (double)((y1 - y0) * (x1 - x0));                                                 \
                    if (bw) {                                                                                     \
                        T v = (T)((double)src[p * Q + oy * g->ow + ox] / div);                                    \
                        for (int64_t iy = y0; iy < y1; iy++)                                                      \
                            for (int64_t ix = x0; ix < x1; ix++)                                                  \
                                dst[p * P + iy * g->w + ix] += v;                                                 \
                    } else {                                                                                      \
                        double s = 0;                                                                             \
                        for (int64_t iy = y0; iy < y1; iy++)                                                      \
                            for (int64_t ix = x0; ix < x1; ix++)                                                  \
                                s += (double)src[p * P + iy * g->w + ix];                                         \
                        dst[p * Q + oy * g->ow + ox] = (T)(s / div);                                              \
                    }                                                                                             \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }
DEF_POOL(f32, float)
DEF_POOL(f64, double)

#define DISPATCH(what, CALL32, CALL64)                                                                            \
    do {                                                                                                          \
        enum rt_status st_ = rt_backend_float_only(what, dt);                                                      \
        if (st_ != RT_OK)                                                                                         \
            return st_;                                                                                           \
        if (dt == RT_F32)                                                                                         \
            CALL32;                                                                                               \
        else                                                                                                      \
            CALL64;                                                                                               \
        return RT_OK;                                                                                             \
    } while (0)

enum rt_status rt_cpu_max_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y, int64_t *idx)
{
    DISPATCH("max_pool2d", maxp_f32(g, x, y, idx), maxp_f64(g, x, y, idx));
}

enum rt_status rt_cpu_max_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const int64_t *idx,
                                          const void *gy, void *gx)
{
    DISPATCH("max_pool2d backward", maxp_bw_f32(g, idx, gy, gx), maxp_bw_f64(g, idx, gy, gx));
}

enum rt_status rt_cpu_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad, const void *x,
                                 void *y)
{
    DISPATCH("avg_pool2d", avgp_f32(g, count_include_pad, x, y), avgp_f64(g, count_include_pad, x, y));
}

enum rt_status rt_cpu_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,
                                          const void *gy, void *gx)
{
    DISPATCH("avg_pool2d backward", avgp_bw_f32(g, count_include_pad, gy, gx), avgp_bw_f64(g, count_include_pad, gy, gx));
}

enum rt_status rt_cpu_adaptive_avg_pool2d(enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y)
{
    DISPATCH("adaptive_avg_pool2d", adap_f32(g, false, x, y), adap_f64(g, false, x, y));
}

enum rt_status rt_cpu_adaptive_avg_pool2d_backward(enum rt_dtype dt, const struct rt_conv_geom *g, const void *gy,
                                                   void *gx)
{
    DISPATCH("adaptive_avg_pool2d backward", adap_f32(g, true, gy, gx), adap_f64(g, true, gy, gx));
}
