/* Max, average and adaptive average pooling over contiguous planes (g->n planes of h x w), and
 * their backward passes. Planes are independent: the OpenMP loops split them, so gradient
 * scatter-adds never race. Window bounds follow PyTorch (no ceil mode). */
#include "backend/cpu/cpu_clones.h"
#include "backend/cpu/cpu_nn.h"

/* declares the work estimate, then opens a parallel loop over planes when it is large enough */
#define PLANES_PARALLEL(work)                                                                                     \
    int64_t work_ = (work);                                                                                       \
    _Pragma("omp parallel for if (work_ >= RT_CPU_PARALLEL_MIN) schedule(static)")

/* One output row of a 2x2, stride-2 max-pool: input rows r0 and r1 (= r0 + W), the window of output ox
 * at r0[2 ox]. The first largest of (r0[2ox], r0[2ox+1], r1[2ox], r1[2ox+1]) wins, as the general loop's
 * strict > does; ir (may be NULL) gets its offset from r0 plus base. Two branch-free passes over
 * stride-2 loads, the maxima and then the first element equal to each, which the compiler vectorises
 * on rows longer than its vector (one pass with both selected together stayed scalar, with branches;
 * f32 rows on AVX-512 take maxp_2x2_avx512 below instead). Returns whether the row holds a NaN: the
 * caller then redoes it with the general loop, where the first NaN wins. */
#define DEF_MAXP_2X2_ROW(SUF, T)                                                                                  \
    RT_CPU_CLONES static int maxp_2x2_plain_##SUF(int64_t OW, int64_t W, const T *restrict r0, T *restrict yr,    \
                                                  int64_t *restrict ir, int64_t base)                             \
    {                                                                                                             \
        const T *restrict r1 = r0 + W;                                                                            \
        int nan = 0;                                                                                              \
        for (int64_t ox = 0; ox < OW; ox++) {                                                                     \
            T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];                             \
            nan |= (a != a) | (b != b) | (c != c) | (d != d);                                                     \
            T m = a;                                                                                              \
            m = b > m ? b : m;                                                                                    \
            m = c > m ? c : m;                                                                                    \
            m = d > m ? d : m;                                                                                    \
            yr[ox] = m;                                                                                           \
        }                                                                                                         \
        if (!ir || nan)                                                                                           \
            return nan;                                                                                           \
        /* which element: 0 (a), 1 (b), 2 (c), 3 (d), picked in 32-bit lanes like the floats' (64-bit      \
         * offsets chosen by float compares stayed scalar), then widened into offsets */                      \
        int32_t which[64];                                                                                        \
        for (int64_t o0 = 0; o0 < OW; o0 += 64) {                                                                 \
            int64_t len = OW - o0 < 64 ? OW - o0 : 64;                                                            \
            for (int64_t i = 0; i < len; i++) {                                                                   \
                int64_t ox = o0 + i;                                                                              \
                T m = yr[ox];                                                                                     \
                int32_t k = 3; /* from the last candidate back to the first: the first equal one stays */        \
                k = r1[2 * ox] == m ? 2 : k;                                                                      \
                k = r0[2 * ox + 1] == m ? 1 : k;                                                                  \
                k = r0[2 * ox] == m ? 0 : k;                                                                      \
                which[i] = k;                                                                                     \
            }                                                                                                     \
            for (int64_t i = 0; i < len; i++)                                                                     \
                ir[o0 + i] = base + 2 * (o0 + i) + (which[i] >> 1) * W + (which[i] & 1);                          \
        }                                                                                                         \
        return nan;                                                                                               \
    }
DEF_MAXP_2X2_ROW(f32, float)
DEF_MAXP_2X2_ROW(f64, double)

static int maxp_2x2_row_f64(int64_t OW, int64_t W, const double *r0, double *yr, int64_t *ir, int64_t base)
{
    return maxp_2x2_plain_f64(OW, W, r0, yr, ir, base);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RT_POOL_AVX512 1
/* The f32 row with AVX-512: CNN rows are short (14 or 7 outputs after a 28x28 input, 16 or 8 after
 * 32x32), shorter than the compiler's vector loop, which then ran none of them. Here 16 outputs at a
 * time, the last chunk masked: two masked loads per input row, even and odd elements picked apart
 * with a permute, the maxima and the first element equal to each selected by compare masks, the
 * offsets widened to int64 in two halves. Same results as the plain row, NaN rows included (reported
 * the same way). Offsets are built in 32-bit lanes: the caller keeps rows under 2^30 wide here. */
__attribute__((target("avx512f"))) static int maxp_2x2_avx512(int64_t OW, int64_t W, const float *r0, float *yr,
                                                             int64_t *ir, int64_t base)
{
    const float *r1 = r0 + W;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    __mmask16 nan = 0;
    for (int64_t o = 0; o < OW; o += 16) {
        int len = OW - o < 16 ? (int)(OW - o) : 16, in = 2 * len;
        __mmask16 lo = (__mmask16)(in >= 16 ? 0xffffu : (1u << in) - 1), hi = (__mmask16)((1u << (in - 16 > 0 ? in - 16 : 0)) - 1);
        __mmask16 om = (__mmask16)((1u << len) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * o), x1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * o + 16);
        __m512 z0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * o), z1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * o + 16);
        __m512 a = _mm512_permutex2var_ps(x0, even, x1), b = _mm512_permutex2var_ps(x0, odd, x1);
        __m512 c = _mm512_permutex2var_ps(z0, even, z1), d = _mm512_permutex2var_ps(z0, odd, z1);
        nan |= _mm512_mask_cmp_ps_mask(om, a, b, _CMP_UNORD_Q) | _mm512_mask_cmp_ps_mask(om, c, d, _CMP_UNORD_Q);
        __m512 m = a;
        m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ), b);
        m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ), c);
        m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ), d);
        _mm512_mask_storeu_ps(yr + o, om, m);
        if (!ir)
            continue;
        /* from the last candidate back to the first: the first element equal to the maximum stays */
        __m512i k = _mm512_set1_epi32((int)W + 1);
        k = _mm512_mask_mov_epi32(k, _mm512_cmp_ps_mask(c, m, _CMP_EQ_OQ), _mm512_set1_epi32((int)W));
        k = _mm512_mask_mov_epi32(k, _mm512_cmp_ps_mask(b, m, _CMP_EQ_OQ), _mm512_set1_epi32(1));
        k = _mm512_mask_mov_epi32(k, _mm512_cmp_ps_mask(a, m, _CMP_EQ_OQ), _mm512_setzero_si512());
        k = _mm512_add_epi32(k, even); /* + 2 i */
        __m512i start = _mm512_set1_epi64(base + 2 * o);
        __m512i k_lo = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(k)), start);
        __m512i k_hi = _mm512_add_epi64(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(k, 1)), start);
        _mm512_mask_storeu_epi64(ir + o, (__mmask8)om, k_lo);
        _mm512_mask_storeu_epi64(ir + o + 8, (__mmask8)(om >> 8), k_hi);
    }
    return nan != 0;
}

static bool have_avx512(void)
{
    static int have = -1; /* benign race: every thread computes the same answer */
    if (have < 0)
        have = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return have;
}
#endif

static int maxp_2x2_row_f32(int64_t OW, int64_t W, const float *r0, float *yr, int64_t *ir, int64_t base)
{
#ifdef RT_POOL_AVX512
    if (have_avx512() && W < ((int64_t)1 << 30))
        return maxp_2x2_avx512(OW, W, r0, yr, ir, base);
#endif
    return maxp_2x2_plain_f32(OW, W, r0, yr, ir, base);
}

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
    /* 2x2 windows at stride 2 without padding, every CNN's pooling: row by row, a NaN row through \
     * the general dense loop on that row alone */                                                            \
    static void maxp_2x2_##SUF(const struct rt_conv_geom *g, const T *x, T *y, int64_t *idx)                      \
    {                                                                                                             \
        const int64_t n = g->n, W = g->w, P = g->h * W, OH = g->oh, OW = g->ow, Q = OH * OW;                     \
        PLANES_PARALLEL(n * Q * 4)                                                                                \
        for (int64_t p = 0; p < n; p++)                                                                           \
            for (int64_t oy = 0; oy < OH; oy++) {                                                                 \
                int64_t *ir = idx ? idx + p * Q + oy * OW : NULL;                                                 \
                if (maxp_2x2_row_##SUF(OW, W, x + p * P + 2 * oy * W, y + p * Q + oy * OW, ir, 2 * oy * W)) {    \
                    struct rt_conv_geom row = *g;                                                                 \
                    row.n = 1, row.h = 2, row.oh = 1;                                                             \
                    maxp_dense_##SUF(&row, x + p * P + 2 * oy * W, y + p * Q + oy * OW, ir);                      \
                    for (int64_t ox = 0; ir && ox < OW; ox++) /* offsets within the 2-row slab -> the plane */    \
                        ir[ox] += 2 * oy * W;                                                                     \
                }                                                                                                 \
            }                                                                                                     \
    }                                                                                                             \
    static void maxp_##SUF(const struct rt_conv_geom *g, const T *x, T *y, int64_t *idx)                          \
    {                                                                                                             \
        bool dense = g->ph == 0 && g->pw == 0 && g->dh == 1 && g->dw == 1; /* every window inside the plane */  \
        if (dense && g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2) {                                      \
            maxp_2x2_##SUF(g, x, y, idx);                                                                         \
            return;                                                                                               \
        }                                                                                                         \
        if (dense) {                                                                                              \
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
