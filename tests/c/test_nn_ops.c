/* Neural-network ops: conv2d, pooling, batch norm, dropout, leaky ReLU and the losses. Forward
 * values against naive loops (PyTorch fixtures run in test_ops.c), f64 finite-difference gradient
 * checks over the argument combinations that matter, and error paths (status, message, no leak). */
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"

#define IN(...) ((struct rt_tensor *const[]){__VA_ARGS__})
#define NIN(...) ((int)(sizeof((struct rt_tensor *const[]){__VA_ARGS__}) / sizeof(struct rt_tensor *)))
#define GC_NOREP (GC_CONTIG | GC_TRANSPOSE | GC_NARROW)

/* ------------------------------------------------------------------ conv2d */

struct conv_ctx {
    int64_t stride[2], padding[2], dilation[2], groups;
    bool bias;
};

static enum rt_status f_conv(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct conv_ctx *k = c;
    return rt_conv2d(in[0], in[1], k->bias ? in[2] : NULL, k->stride, k->padding, k->dilation, k->groups, out);
}

/* direct 7-loop convolution on host doubles */
static double *naive_conv(const struct rt_tensor *x, const struct rt_tensor *w, const struct rt_tensor *b,
                          const struct conv_ctx *k, int64_t *oshape)
{
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t O = w->shape[0], Cg = w->shape[1], kh = w->shape[2], kw = w->shape[3], G = k->groups, Og = O / G;
    int64_t OH = (H + 2 * k->padding[0] - k->dilation[0] * (kh - 1) - 1) / k->stride[0] + 1;
    int64_t OW = (W + 2 * k->padding[1] - k->dilation[1] * (kw - 1) - 1) / k->stride[1] + 1;
    oshape[0] = N, oshape[1] = O, oshape[2] = OH, oshape[3] = OW;
    double *xv = h_values(x), *wv = h_values(w), *bv = b ? h_values(b) : NULL;
    double *y = calloc((size_t)(N * O * OH * OW), sizeof *y);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double s = bv ? bv[o] : 0;
                    int64_t g = o / Og;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t p = 0; p < kh; p++)
                            for (int64_t q = 0; q < kw; q++) {
                                int64_t iy = i * k->stride[0] - k->padding[0] + p * k->dilation[0];
                                int64_t ix = j * k->stride[1] - k->padding[1] + q * k->dilation[1];
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                s += xv[((n * C + g * Cg + c) * H + iy) * W + ix] * wv[((o * Cg + c) * kh + p) * kw + q];
                            }
                    y[((n * O + o) * OH + i) * OW + j] = s;
                }
    free(xv);
    free(wv);
    free(bv);
    return y;
}

static const struct {
    int64_t n, c, h, w, o, kh, kw;
    struct conv_ctx k;
} conv_cases[] = {
    {2, 3, 5, 6, 4, 3, 3, {{1, 1}, {0, 0}, {1, 1}, 1, true}},
    {2, 3, 5, 6, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1, false}},
    {1, 2, 7, 6, 3, 3, 2, {{2, 3}, {1, 0}, {1, 1}, 1, true}},
    {2, 2, 7, 7, 2, 3, 3, {{1, 1}, {2, 1}, {2, 3}, 1, true}},
    {2, 4, 5, 5, 6, 3, 3, {{1, 2}, {1, 1}, {1, 1}, 2, true}},
    {1, 4, 4, 5, 4, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 4, false}},  /* depthwise 1x1 */
    {3, 6, 6, 4, 3, 2, 2, {{2, 1}, {1, 1}, {1, 1}, 3, true}},
};

static void test_conv2d_forward_naive(void)
{
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++)
        for (int d = 0; d < 2; d++) {
            enum rt_dtype dt = d ? RT_F64 : RT_F32;
            __typeof__(conv_cases[0]) cc = conv_cases[t];
            struct rt_tensor *x = h_rand(dt, 4, H_SHAPE(cc.n, cc.c, cc.h, cc.w), -1, 1, 10 + t);
            struct rt_tensor *w = h_rand(dt, 4, H_SHAPE(cc.o, cc.c / cc.k.groups, cc.kh, cc.kw), -1, 1, 20 + t);
            struct rt_tensor *b = h_rand(dt, 1, H_SHAPE(cc.o), -1, 1, 30 + t), *y = NULL;
            int64_t os[4];
            double *want = naive_conv(x, w, cc.k.bias ? b : NULL, &cc.k, os);
            if (CHECK_OK(f_conv(IN(x, w, b), (void *)&cc.k, &y)) && CHECK_SHAPE(y, 4, os[0], os[1], os[2], os[3]))
                CHECK_TENSOR_VALUES(y, want, os[0] * os[1] * os[2] * os[3], d ? 1e-12 : 1e-5, d ? 1e-12 : 1e-5);
            free(want);
            RELEASE(x, w, b, y);
        }
}

static void test_conv2d_gradcheck(void)
{
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        __typeof__(conv_cases[0]) cc = conv_cases[t];
        struct rt_tensor *x = h_rand(RT_F64, 4, H_SHAPE(cc.n, cc.c, cc.h, cc.w), -1, 1, 40 + t);
        struct rt_tensor *w = h_rand(RT_F64, 4, H_SHAPE(cc.o, cc.c / cc.k.groups, cc.kh, cc.kw), -1, 1, 50 + t);
        struct rt_tensor *b = h_rand(RT_F64, 1, H_SHAPE(cc.o), -1, 1, 60 + t);
        char what[64];
        snprintf(what, sizeof what, "conv2d case %zu", t);
        if (cc.k.bias)
            CHECK(GRADCHECK(what, f_conv, (void *)&cc.k, 3, IN(x, w, b), t == 0 ? GC_ALL : GC_CONTIG | GC_TRANSPOSE), "%s", what);
        else
            CHECK(GRADCHECK(what, f_conv, (void *)&cc.k, 2, IN(x, w), GC_CONTIG | GC_NARROW), "%s", what);
        RELEASE(x, w, b);
    }
}

static void test_conv2d_grad_only_weight(void)
{
    /* x without grad: only dW and db are computed */
    struct conv_ctx k = {{1, 1}, {1, 1}, {1, 1}, 1, true};
    struct rt_tensor *x = h_rand(RT_F64, 4, H_SHAPE(2, 2, 4, 4), -1, 1, 1), *w = h_rand(RT_F64, 4, H_SHAPE(3, 2, 3, 3), -1, 1, 2);
    struct rt_tensor *b = h_rand(RT_F64, 1, H_SHAPE(3), -1, 1, 3), *y = NULL, *s = NULL;
    REQUIRE_OK(rt_requires_grad_(w, true));
    REQUIRE_OK(rt_requires_grad_(b, true));
    if (CHECK_OK(f_conv(IN(x, w, b), &k, &y)) && CHECK_OK(rt_sum_all(y, &s)) && CHECK_OK(rt_backward(s, NULL, false))) {
        CHECK(w->grad && b->grad && !x->grad, "weight and bias grads only");
        double v;
        if (b->grad && CHECK_OK(rt_tensor_get(b->grad, H_SHAPE(0), &v)))
            CHECK_CLOSE(v, 2 * 4 * 4, 1e-12); /* db = number of output pixels per channel */
        CHECK(!strcmp(rt_tensor_grad_fn_name(y), "Conv2dBackward"), "grad_fn %s", rt_tensor_grad_fn_name(y));
    }
    RELEASE(x, w, b, y, s);
}

/* A batch whose column buffer exceeds RT_CONV_CHUNK_BYTES runs in chunks: the first chunk of each
 * group sets dW, the rest add to it. Gradients equal those of one image at a time, accumulated. */
static void test_conv2d_backward_in_chunks(void)
{
    const int64_t N = 3, C = 64, H = 128, W = 128, O = 4, G = 2;
    REQUIRE((C / G) * 9 * H * W * 8 * 2 > (int64_t)RT_CONV_CHUNK_BYTES, "one image per chunk");
    struct conv_ctx k = {{1, 1}, {1, 1}, {1, 1}, G, false};
    struct rt_tensor *x = h_rand(RT_F64, 4, H_SHAPE(N, C, H, W), -1, 1, 7);
    struct rt_tensor *w = h_rand(RT_F64, 4, H_SHAPE(O, C / G, 3, 3), -1, 1, 8);
    struct rt_tensor *y = NULL, *s = NULL, *dx = NULL, *dw = NULL;
    REQUIRE_OK(rt_requires_grad_(x, true));
    REQUIRE_OK(rt_requires_grad_(w, true));
    if (!CHECK_OK(rt_conv2d(x, w, NULL, k.stride, k.padding, k.dilation, G, &y)) || !CHECK_OK(rt_sum_all(y, &s)) || !CHECK_OK(rt_backward(s, NULL, false)) ||
        !CHECK_OK(rt_clone(x->grad, &dx)) || !CHECK_OK(rt_clone(w->grad, &dw)))
        goto done;
    RELEASE(y, s);
    y = s = NULL;
    rt_tensor_zero_grad(x);
    rt_tensor_zero_grad(w);
    for (int64_t i = 0; i < N; i++) {
        struct rt_tensor *xi = NULL;
        bool ok = CHECK_OK(rt_narrow(x, 0, i, 1, &xi)) &&
                  CHECK_OK(rt_conv2d(xi, w, NULL, k.stride, k.padding, k.dilation, G, &y)) &&
                  CHECK_OK(rt_sum_all(y, &s)) && CHECK_OK(rt_backward(s, NULL, false));
        RELEASE(xi, y, s);
        y = s = NULL;
        if (!ok)
            goto done;
    }
    CHECK_TENSOR_CLOSE(dx, x->grad, 1e-12, 1e-12);
    CHECK_TENSOR_CLOSE(dw, w->grad, 1e-10, 1e-10);
done:
    RELEASE(x, w, y, s, dx, dw);
}

static void test_conv2d_errors(void)
{
    int64_t s1[2] = {1, 1}, p0[2] = {0, 0}, d1[2] = {1, 1}, s0[2] = {0, 1};
    struct rt_tensor *x = h_rand(RT_F32, 4, H_SHAPE(1, 4, 5, 5), -1, 1, 1), *y = NULL;
    struct rt_tensor *w = h_rand(RT_F32, 4, H_SHAPE(2, 3, 3, 3), -1, 1, 2);
    struct rt_tensor *wbig = h_rand(RT_F32, 4, H_SHAPE(2, 4, 6, 3), -1, 1, 3);
    struct rt_tensor *w4 = h_rand(RT_F32, 4, H_SHAPE(2, 4, 3, 3), -1, 1, 4), *w64 = h_rand(RT_F64, 4, H_SHAPE(2, 4, 3, 3), -1, 1, 4);
    struct rt_tensor *x3 = h_rand(RT_F32, 3, H_SHAPE(4, 5, 5), -1, 1, 1), *b3 = h_rand(RT_F32, 1, H_SHAPE(3), 0, 1, 1);
    struct rt_tensor *xi = h_iota(RT_I64, 4, H_SHAPE(1, 4, 5, 5));
    CHECK_STATUS(rt_conv2d(x, w, NULL, s1, p0, d1, 1, &y), RT_ERR_SHAPE, "channel mismatch: input (1,4,5,5) has 4 channels");
    CHECK_STATUS(rt_conv2d(x, w4, NULL, s1, p0, d1, 3, &y), RT_ERR_ARG, "groups=3 must divide");
    CHECK_STATUS(rt_conv2d(x, w4, NULL, s1, p0, d1, 0, &y), RT_ERR_ARG, "groups must be >= 1");
    CHECK_STATUS(rt_conv2d(x, wbig, NULL, s1, p0, d1, 1, &y), RT_ERR_SHAPE, "larger than the padded input (5,5)");
    CHECK_STATUS(rt_conv2d(x, w4, NULL, s0, p0, d1, 1, &y), RT_ERR_ARG, "stride (0,1)");
    CHECK_STATUS(rt_conv2d(x3, w4, NULL, s1, p0, d1, 1, &y), RT_ERR_SHAPE, "input must be (N,C,H,W), got (4,5,5)");
    CHECK_STATUS(rt_conv2d(x, w4, b3, s1, p0, d1, 1, &y), RT_ERR_SHAPE, "bias must be (2), got (3)");
    CHECK_STATUS(rt_conv2d(x, w64, NULL, s1, p0, d1, 1, &y), RT_ERR_DTYPE, "weight dtype f64 differs");
    CHECK_STATUS(rt_conv2d(xi, w4, NULL, s1, p0, d1, 1, &y), RT_ERR_DTYPE, "must be a float tensor, got i64");
    CHECK(y == NULL, "no output on failure");
    RELEASE(x, w, wbig, w4, w64, x3, b3, xi);
}

/* ------------------------------------------------------------------ pooling */

struct pool_ctx {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    int64_t k[2], s[2], p[2];
    bool cip;
    int64_t oh, ow;
};

static enum rt_status f_pool(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct pool_ctx *k = c;
    if (k->kind == 0)
        return rt_max_pool2d(in[0], k->k, k->s, k->p, out, NULL);
    if (k->kind == 1)
        return rt_avg_pool2d(in[0], k->k, k->s, k->p, k->cip, out);
    return rt_adaptive_avg_pool2d(in[0], k->oh, k->ow, out);
}

/* naive pooling of one plane value */
static double naive_pool(const double *x, int64_t H, int64_t W, const struct pool_ctx *k, int64_t i, int64_t j)
{
    int64_t y0, y1, x0, x1;
    double div;
    if (k->kind == 2) {
        y0 = i * H / k->oh, y1 = ((i + 1) * H + k->oh - 1) / k->oh;
        x0 = j * W / k->ow, x1 = ((j + 1) * W + k->ow - 1) / k->ow;
        div = (double)((y1 - y0) * (x1 - x0));
    } else {
        y0 = i * k->s[0] - k->p[0], x0 = j * k->s[1] - k->p[1];
        y1 = y0 + k->k[0], x1 = x0 + k->k[1];
        int64_t py1 = y1 < H + k->p[0] ? y1 : H + k->p[0], px1 = x1 < W + k->p[1] ? x1 : W + k->p[1];
        div = (double)((py1 - y0) * (px1 - x0));
        y0 = y0 < 0 ? 0 : y0, x0 = x0 < 0 ? 0 : x0, y1 = y1 > H ? H : y1, x1 = x1 > W ? W : x1;
        if (!k->cip)
            div = (double)((y1 - y0) * (x1 - x0));
    }
    double m = -INFINITY, s = 0;
    for (int64_t a = y0; a < y1; a++)
        for (int64_t b = x0; b < x1; b++) {
            m = x[a * W + b] > m ? x[a * W + b] : m;
            s += x[a * W + b];
        }
    return k->kind == 0 ? m : s / div;
}

static const struct pool_ctx pool_cases[] = {
    {0, {2, 2}, {2, 2}, {0, 0}, true, 0, 0},  {0, {3, 3}, {1, 1}, {1, 1}, true, 0, 0}, /* overlapping */
    {0, {3, 2}, {2, 1}, {1, 0}, true, 0, 0},  {1, {2, 2}, {2, 2}, {0, 0}, true, 0, 0},
    {1, {3, 3}, {2, 2}, {1, 1}, true, 0, 0},  {1, {3, 3}, {2, 2}, {1, 1}, false, 0, 0},
    {1, {2, 3}, {1, 2}, {1, 1}, false, 0, 0}, {2, {0, 0}, {0, 0}, {0, 0}, true, 3, 2},
    {2, {0, 0}, {0, 0}, {0, 0}, true, 1, 1},  {2, {0, 0}, {0, 0}, {0, 0}, true, 7, 9}, /* upsampling bins */
};

static void test_pool_forward_naive(void)
{
    for (size_t t = 0; t < sizeof pool_cases / sizeof pool_cases[0]; t++) {
        const struct pool_ctx *k = &pool_cases[t];
        int64_t N = 2, C = 3, H = 7, W = 6;
        struct rt_tensor *x = h_rand(RT_F64, 4, H_SHAPE(N, C, H, W), -1, 1, 70 + t), *y = NULL;
        if (!CHECK_OK(f_pool(IN(x), (void *)k, &y))) {
            RELEASE(x);
            continue;
        }
        double *xv = h_values(x), *yv = h_values(y);
        int64_t OH = y->shape[2], OW = y->shape[3];
        if (k->kind == 2)
            CHECK(OH == k->oh && OW == k->ow, "adaptive shape");
        else
            CHECK(OH == (H + 2 * k->p[0] - k->k[0]) / k->s[0] + 1 && OW == (W + 2 * k->p[1] - k->k[1]) / k->s[1] + 1,
                  "pool shape");
        int bad = 0;
        for (int64_t pl = 0; pl < N * C; pl++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++)
                    bad += fabs(yv[(pl * OH + i) * OW + j] - naive_pool(xv + pl * H * W, H, W, k, i, j)) > 1e-12;
        CHECK(bad == 0, "pool case %zu: %d mismatches", t, bad);
        free(xv);
        free(yv);
        RELEASE(x, y);
    }
}

static void test_pool_gradcheck(void)
{
    for (size_t t = 0; t < sizeof pool_cases / sizeof pool_cases[0]; t++) {
        struct rt_tensor *x = h_rand(RT_F64, 4, H_SHAPE(2, 2, 7, 6), -1, 1, 90 + t);
        char what[64];
        snprintf(what, sizeof what, "pool case %zu", t);
        CHECK(GRADCHECK(what, f_pool, (void *)&pool_cases[t], 1, IN(x), pool_cases[t].kind ? GC_ALL : GC_NOREP), "%s", what);
        RELEASE(x);
    }
}

static void test_max_pool_indices(void)
{
    struct rt_tensor *x = h_tensor(RT_F32, 4, H_SHAPE(1, 1, 2, 4), H_VALS(1, 5, 2, 0, 3, 4, 9, 8)), *y = NULL, *ix = NULL;
    if (CHECK_OK(rt_max_pool2d(x, H_SHAPE(2, 2), H_SHAPE(2, 2), H_SHAPE(0, 0), &y, &ix))) {
        CHECK_TENSOR_VALUES(y, H_VALS(5, 9), 2, 0, 0);
        CHECK_TENSOR_VALUES(ix, H_VALS(1, 6), 2, 0, 0);
        CHECK(ix->dtype == RT_I64, "i64 indices");
    }
    RELEASE(x, y, ix);
}

/* The 2x2, stride-2 path (cpu_pool.c's vectorised rows) against a naive window loop: odd sizes (a
 * row and column left over), rows long enough for full vectors and short ones, ties (a few distinct
 * values, like ReLU's zeros: the first maximum in window order wins), -inf, and NaN (the first NaN of
 * the window wins), on f32 and f64, with the indices; and the backward: each output's gradient at its
 * window's winner, zero everywhere else (the leftover row and column included). */
static void test_max_pool_2x2_against_loop(void)
{
    uint64_t state = 2026;
    for (int t = 0; t < 40; t++) {
        enum rt_dtype dt = t % 2 ? RT_F64 : RT_F32;
        int64_t n = 1 + t % 3, c = 1 + t % 4, h = 2 + (int64_t)(h_uniform(&state) * 40), w = 2 + (int64_t)(h_uniform(&state) * 70);
        int64_t oh = h / 2, ow = w / 2, numel = n * c * h * w;
        double *v = malloc((size_t)numel * sizeof *v);
        for (int64_t i = 0; i < numel; i++) {
            double u = h_uniform(&state);
            v[i] = t % 4 == 3 ? (double)(int)(u * 3) : u < 0.02 ? -INFINITY : u < 0.03 && t % 5 == 0 ? NAN : u * 4 - 2;
            if (dt == RT_F32) /* the values the tensor holds */
                v[i] = (float)v[i];
        }
        struct rt_tensor *x = h_tensor(dt, 4, H_SHAPE(n, c, h, w), v), *y = NULL, *ix = NULL, *gy = NULL;
        double *want_gx = calloc((size_t)numel, sizeof *want_gx);
        bool ok = CHECK_OK(rt_requires_grad_(x, true)) &&
                  CHECK_OK(rt_max_pool2d(x, H_SHAPE(2, 2), H_SHAPE(2, 2), H_SHAPE(0, 0), &y, &ix)) &&
                  (gy = h_rand(dt, 4, H_SHAPE(n, c, oh, ow), -1, 1, 500 + (uint64_t)t)) != NULL &&
                  CHECK_OK(rt_backward(y, gy, false));
        for (int64_t p = 0; ok && p < n * c; p++)
            for (int64_t oy = 0; ok && oy < oh; oy++)
                for (int64_t ox = 0; ok && ox < ow; ox++) {
                    int64_t best = -1;
                    double m = 0;
                    for (int64_t i = 0; i < 2 && !(best >= 0 && isnan(m)); i++)
                        for (int64_t j = 0; j < 2; j++) {
                            int64_t at = (2 * oy + i) * w + 2 * ox + j;
                            double e = v[p * h * w + at];
                            if (best < 0 || e > m || (isnan(e) && !isnan(m))) {
                                m = e, best = at;
                                if (isnan(e))
                                    break;
                            }
                        }
                    int64_t q = p * oh * ow + oy * ow + ox;
                    double got = h_elem(y, q), got_ix = h_elem(ix, q);
                    want_gx[p * h * w + best] = h_elem(gy, q);
                    ok = CHECK((isnan(got) && isnan(m)) || got == m, "case %d (%s %lldx%lld): y at %lld = %g, expected %g",
                               t, rt_dtype_name(dt), (long long)h, (long long)w, (long long)q, got, m) &&
                         CHECK(got_ix == (double)best, "case %d (%s %lldx%lld): index at %lld = %g, expected %lld", t,
                               rt_dtype_name(dt), (long long)h, (long long)w, (long long)q, got_ix, (long long)best);
                }
        if (ok)
            ok = CHECK_TENSOR_VALUES(x->grad, want_gx, numel, 0, 0);
        free(v);
        free(want_gx);
        RELEASE(x, y, ix, gy);
        if (!ok)
            break;
    }
}

static void test_pool_errors(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 4, H_SHAPE(1, 2, 4, 4), -1, 1, 1), *x2 = h_rand(RT_F32, 2, H_SHAPE(4, 4), 0, 1, 1), *y = NULL;
    CHECK_STATUS(rt_max_pool2d(x, H_SHAPE(2, 2), H_SHAPE(2, 2), H_SHAPE(2, 0), &y, NULL), RT_ERR_ARG, "at most half the kernel");
    CHECK_STATUS(rt_max_pool2d(x, H_SHAPE(5, 2), H_SHAPE(1, 1), H_SHAPE(0, 0), &y, NULL), RT_ERR_SHAPE,
                 "kernel (5,2) is larger than the padded input (4,4)");
    CHECK_STATUS(rt_avg_pool2d(x, H_SHAPE(0, 2), H_SHAPE(1, 1), H_SHAPE(0, 0), true, &y), RT_ERR_ARG, "must be >= 1");
    CHECK_STATUS(rt_avg_pool2d(x2, H_SHAPE(2, 2), H_SHAPE(1, 1), H_SHAPE(0, 0), true, &y), RT_ERR_SHAPE,
                 "rt_avg_pool2d: input must be (N,C,H,W), got (4,4)");
    CHECK_STATUS(rt_adaptive_avg_pool2d(x, 0, 2, &y), RT_ERR_ARG, "output size (0,2)");
    CHECK(y == NULL, "no output");
    RELEASE(x, x2);
}

/* ------------------------------------------------------------------ batch norm */

struct bn_ctx {
    bool training, weight, bias;
    struct rt_tensor *rm, *rv;
};

static enum rt_status f_bn(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct bn_ctx *k = c;
    return rt_batch_norm(in[0], k->rm, k->rv, k->weight ? in[1] : NULL, k->bias ? in[2] : NULL, k->training, 0.1, 1e-5,
                         out);
}

static void test_batch_norm_values(void)
{
    /* (N=4, C=2): channel 0 = 1,2,3,4 ; channel 1 = 0,0,2,2 */
    struct rt_tensor *x = h_tensor(RT_F64, 2, H_SHAPE(4, 2), H_VALS(1, 0, 2, 0, 3, 2, 4, 2));
    struct rt_tensor *rm = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(0, 0)), *rv = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(1, 1));
    struct rt_tensor *w = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(2, 1)), *b = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(0, 1));
    struct rt_tensor *y = NULL, *ye = NULL;
    if (CHECK_OK(rt_batch_norm(x, rm, rv, w, b, true, 0.1, 0, &y))) {
        double s0 = 1 / sqrt(1.25); /* biased var of 1..4 */
        CHECK_TENSOR_VALUES(y, H_VALS(-3 * s0, 0, -1 * s0, 0, 1 * s0, 2, 3 * s0, 2), 8, 1e-12, 1e-12);
        /* running: 0.9*0 + 0.1*mean; 0.9*1 + 0.1*unbiased var (5/3, 4/3) */
        CHECK_TENSOR_VALUES(rm, H_VALS(0.25, 0.1), 2, 1e-12, 1e-12);
        CHECK_TENSOR_VALUES(rv, H_VALS(0.9 + 0.1 * 5.0 / 3, 0.9 + 0.1 * 4.0 / 3), 2, 1e-12, 1e-12);
    }
    if (CHECK_OK(rt_batch_norm(x, rm, rv, NULL, NULL, false, 0.1, 0, &ye))) {
        double v0 = 0.9 + 0.1 * 5.0 / 3;
        CHECK_CLOSE(h_elem(ye, 0), (1 - 0.25) / sqrt(v0), 1e-12);
        CHECK_TENSOR_VALUES(rm, H_VALS(0.25, 0.1), 2, 1e-12, 1e-12); /* eval leaves running stats alone */
    }
    RELEASE(x, rm, rv, w, b, y, ye);
}

static void test_batch_norm_gradcheck(void)
{
    struct rt_tensor *x2 = h_rand(RT_F64, 2, H_SHAPE(5, 3), -2, 2, 1), *x4 = h_rand(RT_F64, 4, H_SHAPE(3, 2, 3, 2), -2, 2, 2);
    struct rt_tensor *w2 = h_rand(RT_F64, 1, H_SHAPE(3), 0.5, 2, 3), *b2 = h_rand(RT_F64, 1, H_SHAPE(3), -1, 1, 4);
    struct rt_tensor *w4 = h_rand(RT_F64, 1, H_SHAPE(2), 0.5, 2, 5), *b4 = h_rand(RT_F64, 1, H_SHAPE(2), -1, 1, 6);
    struct rt_tensor *rm = h_rand(RT_F64, 1, H_SHAPE(2), -1, 1, 7), *rv = h_rand(RT_F64, 1, H_SHAPE(2), 0.5, 2, 8);
    struct bn_ctx train = {true, true, true, NULL, NULL}, train_nw = {true, false, false, NULL, NULL};
    struct bn_ctx eval = {false, true, true, rm, rv};
    CHECK(GRADCHECK("bn train (N,C)", f_bn, &train, 3, IN(x2, w2, b2), GC_NOREP), "bn train 2d");
    CHECK(GRADCHECK("bn train (N,C,H,W)", f_bn, &train, 3, IN(x4, w4, b4), GC_NOREP), "bn train 4d");
    CHECK(GRADCHECK("bn train no affine", f_bn, &train_nw, 1, IN(x4), GC_NOREP), "bn train no affine");
    CHECK(GRADCHECK("bn eval", f_bn, &eval, 3, IN(x4, w4, b4), GC_ALL), "bn eval");
    /* planes of 5x7 = 35: two blocks of the kernels' 16 lanes and a tail */
    struct rt_tensor *x35 = h_rand(RT_F64, 4, H_SHAPE(2, 2, 5, 7), -2, 2, 9);
    CHECK(GRADCHECK("bn train (2,2,5,7)", f_bn, &train, 3, IN(x35, w4, b4), GC_NOREP), "bn train 35-element planes");
    RELEASE(x2, x4, w2, b2, w4, b4, rm, rv, x35);
}

/* f32 batch norm of an input far from zero (mean 1000, std about 0.3): its output and input gradient
 * against the same op in f64 on the same values. The batch mean is kept in f32 (as PyTorch keeps it),
 * whose spacing at 1000 is 6e-5: that bounds the agreement (6.3e-5 seen on y, 3.8e-5 on the gradient).
 * Computing y as x * a + (b - mean * a) in f32 would add the rounding of terms near 7000 (spacing 5e-4);
 * the kernels keep x - mean. */
static void test_batch_norm_large_mean(void)
{
    struct rt_tensor *x32 = h_rand(RT_F32, 4, H_SHAPE(4, 3, 5, 7), -0.5, 0.5, 11), *g32 = h_rand(RT_F32, 4, H_SHAPE(4, 3, 5, 7), -1, 1, 12);
    struct rt_tensor *w = h_rand(RT_F32, 1, H_SHAPE(3), 0.5, 2, 13), *b = h_rand(RT_F32, 1, H_SHAPE(3), -1, 1, 14);
    struct rt_tensor *x64 = NULL, *g64 = NULL, *w64 = NULL, *b64 = NULL, *y32 = NULL, *y64 = NULL;
    REQUIRE_OK(rt_add_scalar_(x32, 1000));
    REQUIRE_OK(rt_to_dtype(x32, RT_F64, &x64));
    if (!CHECK_OK(rt_to_dtype(g32, RT_F64, &g64)) || !CHECK_OK(rt_to_dtype(w, RT_F64, &w64)) ||
        !CHECK_OK(rt_to_dtype(b, RT_F64, &b64)) || !CHECK_OK(rt_requires_grad_(x32, true)) ||
        !CHECK_OK(rt_requires_grad_(x64, true)) ||
        !CHECK_OK(rt_batch_norm(x32, NULL, NULL, w, b, true, 0.1, 1e-5, &y32)) ||
        !CHECK_OK(rt_batch_norm(x64, NULL, NULL, w64, b64, true, 0.1, 1e-5, &y64)) ||
        !CHECK_OK(rt_backward(y32, g32, false)) || !CHECK_OK(rt_backward(y64, g64, false)))
        goto done;
    CHECK_TENSOR_CLOSE(y32, y64, 0, 1.2e-4);
    CHECK_TENSOR_CLOSE(x32->grad, x64->grad, 0, 1e-4);
done:
    RELEASE(x32, g32, w, b, x64, g64, w64, b64, y32, y64);
}

static void test_batch_norm_errors(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(4, 3), -1, 1, 1), *x1 = h_rand(RT_F32, 2, H_SHAPE(1, 3), -1, 1, 1);
    struct rt_tensor *w = h_rand(RT_F32, 1, H_SHAPE(4), 0, 1, 1), *y = NULL;
    CHECK_STATUS(rt_batch_norm(x, NULL, NULL, w, NULL, true, 0.1, 1e-5, &y), RT_ERR_SHAPE, "weight must be (3), got (4)");
    CHECK_STATUS(rt_batch_norm(x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5, &y), RT_ERR_ARG, "needs running_mean");
    CHECK_STATUS(rt_batch_norm(x1, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &y), RT_ERR_SHAPE, "more than 1 value per channel");
    CHECK_STATUS(rt_batch_norm(x, NULL, NULL, NULL, NULL, true, 2, 1e-5, &y), RT_ERR_ARG, "momentum must be in [0, 1]");
    RELEASE(x, x1, w);
}

/* ------------------------------------------------------------------ dropout, leaky relu */

static void test_dropout(void)
{
    struct rt_tensor *x = h_rand(RT_F64, 2, H_SHAPE(50, 40), 1, 2, 1), *y1 = NULL, *y2 = NULL, *ye = NULL, *s = NULL;
    struct rt_rng g1, g2;
    rt_rng_init(&g1, 7);
    rt_rng_init(&g2, 7);
    REQUIRE_OK(rt_requires_grad_(x, true));
    if (CHECK_OK(rt_dropout(x, 0.25, true, &g1, &y1)) && CHECK_OK(rt_dropout(x, 0.25, true, &g2, &y2))) {
        CHECK_TENSOR_EQUAL(y1, y2); /* same seed, same mask */
        double *xv = h_values(x), *yv = h_values(y1);
        int zeros = 0, bad = 0;
        for (int i = 0; i < 2000; i++) {
            if (yv[i] == 0)
                zeros++;
            else
                bad += fabs(yv[i] - xv[i] / 0.75) > 1e-12;
        }
        CHECK(bad == 0 && zeros > 400 && zeros < 600, "zeros %d, bad %d", zeros, bad);
        /* the mask is rt_bernoulli_'s draw from the same seed, and the generator has moved past it */
        struct rt_rng g3;
        rt_rng_init(&g3, 7);
        struct rt_tensor *b = NULL;
        if (CHECK_OK(rt_tensor_empty(RT_F64, RT_CPU, 2, H_SHAPE(50, 40), &b)) && CHECK_OK(rt_bernoulli_(b, &g3, 0.75))) {
            double *bv = h_values(b);
            int differ = 0;
            for (int i = 0; bv && i < 2000; i++)
                differ += (yv[i] != 0) != (bv[i] == 1);
            CHECK(bv && differ == 0, "%d mask values differ from rt_bernoulli_'s", differ);
            CHECK(g1.offset == g3.offset, "generator offset %llu, rt_bernoulli_'s %llu", (unsigned long long)g1.offset,
                  (unsigned long long)g3.offset);
            free(bv);
        }
        rt_tensor_release(b);
        if (CHECK_OK(rt_sum_all(y1, &s)) && CHECK_OK(rt_backward(s, NULL, false)) && x->grad) {
            double *gv = h_values(x->grad);
            int gbad = 0;
            for (int i = 0; i < 2000; i++)
                gbad += fabs(gv[i] - (yv[i] == 0 ? 0 : 1 / 0.75)) > 1e-12;
            CHECK(gbad == 0, "gradient is the scaled mask (%d bad)", gbad);
            free(gv);
        }
        free(xv);
        free(yv);
    }
    if (CHECK_OK(rt_dropout(x, 0.5, false, NULL, &ye)))
        CHECK(ye == x, "eval is the identity");
    CHECK_STATUS(rt_dropout(x, 1.5, true, NULL, &y2), RT_ERR_ARG, "p must be in [0, 1], got 1.5");
    RELEASE(x, y1, y2, ye, s);
}

static enum rt_status f_leaky(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_leaky_relu(in[0], *(double *)c, out);
}

static void test_leaky_relu(void)
{
    struct rt_tensor *x = h_tensor(RT_F32, 1, H_SHAPE(4), H_VALS(-2, -0.5, 0, 3)), *y = NULL;
    double slope = 0.1;
    if (CHECK_OK(rt_leaky_relu(x, 0.1, &y)))
        CHECK_TENSOR_VALUES(y, H_VALS(-0.2, -0.05, 0, 3), 4, 1e-6, 1e-7);
    struct rt_tensor *x2 = h_rand(RT_F64, 2, H_SHAPE(4, 5), -1, 1, 3);
    CHECK(GRADCHECK("leaky_relu", f_leaky, &slope, 1, IN(x2), GC_ALL), "leaky gradcheck");
    RELEASE(x, y, x2);

    /* a transposed (non-contiguous) input, a negative slope and exact zeros, against a naive loop: the
     * forward, and the gradient of the sum, 1 where x > 0 and the slope elsewhere (at 0 too, as PyTorch) */
    double neg = -0.3;
    const double bv[6] = {-2, 0, 1.5, -0.25, 0, 4};
    struct rt_tensor *b = h_tensor(RT_F64, 2, H_SHAPE(3, 2), bv), *t = NULL, *yt = NULL, *s = NULL;
    REQUIRE_OK(rt_requires_grad_(b, true));
    if (CHECK_OK(rt_transpose(b, 0, 1, &t)) && CHECK_OK(rt_leaky_relu(t, neg, &yt))) {
        double want[6], dwant[6];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) { /* yt[i][j] = f(b[j][i]) */
                double v = bv[j * 2 + i];
                want[i * 3 + j] = v > 0 ? v : neg * v;
                dwant[j * 2 + i] = v > 0 ? 1 : neg;
            }
        CHECK_TENSOR_VALUES(yt, want, 6, 0, 0);
        if (CHECK_OK(rt_sum_all(yt, &s)) && CHECK_OK(rt_backward(s, NULL, false)))
            CHECK_TENSOR_VALUES(b->grad, dwant, 6, 0, 0);
    }
    RELEASE(b, t, yt, s);

    struct rt_tensor *xi = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(-1, 1)),
                     *xf = h_tensor(RT_F32, 1, H_SHAPE(1), H_VALS(1)), *bad = NULL;
    CHECK_STATUS(rt_leaky_relu(xi, 0.1, &bad), RT_ERR_DTYPE, "rt_leaky_relu: input must be a float tensor, got i64");
    CHECK_STATUS(rt_leaky_relu(xf, NAN, &bad), RT_ERR_ARG, "rt_leaky_relu: slope must be finite");
    RELEASE(xi, xf, bad);
}

/* ------------------------------------------------------------------ losses */

struct ce_ctx {
    bool weights;
    int64_t ignore;
    double smoothing;
    enum rt_reduction red;
    bool nll;
};

static enum rt_status f_ce(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct ce_ctx *k = c;
    if (k->nll)
        return rt_nll_loss(in[0], in[1], k->weights ? in[2] : NULL, k->ignore, k->red, out);
    return rt_cross_entropy(in[0], in[1], k->weights ? in[2] : NULL, k->ignore, k->smoothing, k->red, out);
}

/* reference from the formula on host doubles */
static double ce_ref(const double *x, const int64_t *y, const double *w, int64_t N, int64_t C, const struct ce_ctx *k,
                     double *per)
{
    double tot = 0, den = 0;
    for (int64_t i = 0; i < N; i++) {
        per[i] = 0;
        if (y[i] == k->ignore)
            continue;
        double m = -INFINITY, s = 0, wsm = 0;
        for (int64_t j = 0; j < C; j++)
            m = x[i * C + j] > m ? x[i * C + j] : m;
        for (int64_t j = 0; j < C; j++)
            s += exp(x[i * C + j] - m);
        double z = m + log(s);
        for (int64_t j = 0; j < C; j++)
            wsm += (w ? w[j] : 1) * (z - x[i * C + j]);
        double wy = w ? w[y[i]] : 1;
        per[i] = (1 - k->smoothing) * wy * (z - x[i * C + y[i]]) + k->smoothing / C * wsm;
        tot += per[i];
        den += wy;
    }
    return k->red == RT_REDUCE_MEAN ? tot / den : tot;
}

static const struct ce_ctx ce_cases[] = {
    {false, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, false}, {true, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, false},
    {false, 2, 0, RT_REDUCE_MEAN, false},            {true, 2, 0, RT_REDUCE_SUM, false},
    {false, RT_NO_IGNORE, 0.2, RT_REDUCE_MEAN, false}, {true, 2, 0.3, RT_REDUCE_MEAN, false},
    {true, -1, 0.1, RT_REDUCE_NONE, false},          {false, RT_NO_IGNORE, 0, RT_REDUCE_NONE, false},
};

static void test_cross_entropy_values_and_grads(void)
{
    int64_t N = 6, C = 4;
    const double labv[6] = {0, 2, 3, 2, 1, 0};
    for (size_t t = 0; t < sizeof ce_cases / sizeof ce_cases[0]; t++) {
        const struct ce_ctx *k = &ce_cases[t];
        struct rt_tensor *x = h_rand(RT_F64, 2, H_SHAPE(N, C), -3, 3, 100 + t), *y = NULL;
        struct rt_tensor *lab = h_tensor(RT_I64, 1, H_SHAPE(N), labv), *w = h_rand(RT_F64, 1, H_SHAPE(C), 0.2, 2, 200 + t);
        double *xv = h_values(x), *wv = h_values(w), per[6];
        int64_t yl[6];
        for (int i = 0; i < 6; i++)
            yl[i] = (int64_t)labv[i];
        double want = ce_ref(xv, yl, k->weights ? wv : NULL, N, C, k, per);
        if (CHECK_OK(f_ce(IN(x, lab, w), (void *)k, &y))) {
            if (k->red == RT_REDUCE_NONE)
                CHECK_TENSOR_VALUES(y, per, N, 1e-12, 1e-12);
            else
                CHECK_TENSOR_VALUES(y, &want, 1, 1e-12, 1e-12);
        }
        char what[64];
        snprintf(what, sizeof what, "cross_entropy case %zu", t);
        CHECK(GRADCHECK(what, f_ce, (void *)k, 2, IN(x, lab), GC_ALL), "%s", what);
        struct ce_ctx nk = *k;
        nk.nll = true;
        if (k->smoothing == 0) { /* nll on log_softmax gives the same values */
            struct rt_tensor *lp = NULL, *y2 = NULL;
            if (CHECK_OK(rt_log_softmax(x, 1, 1, &lp)) && CHECK_OK(f_ce(IN(lp, lab, w), &nk, &y2)))
                CHECK_TENSOR_CLOSE(y2, y, 1e-12, 1e-12);
            snprintf(what, sizeof what, "nll case %zu", t);
            CHECK(GRADCHECK(what, f_ce, &nk, 2, IN(x, lab), GC_ALL), "%s", what);
            RELEASE(lp, y2);
        }
        free(xv);
        free(wv);
        RELEASE(x, y, lab, w);
    }
}

static void test_cross_entropy_f32_and_all_ignored(void)
{
    struct rt_tensor *x = h_tensor(RT_F32, 2, H_SHAPE(2, 3), H_VALS(1, 2, 3, 1, 1, 1));
    struct rt_tensor *lab = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(2, 0)), *ign = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(-100, -100));
    struct rt_tensor *y = NULL, *z = NULL;
    if (CHECK_OK(rt_cross_entropy(x, lab, NULL, RT_NO_IGNORE, 0, RT_REDUCE_SUM, &y))) {
        double want = (log(exp(1) + exp(2) + exp(3)) - 3) + log(3.0);
        CHECK_TENSOR_VALUES(y, &want, 1, 1e-6, 1e-6);
        CHECK(y->ndim == 0 && y->dtype == RT_F32, "0-dim f32");
    }
    if (CHECK_OK(rt_cross_entropy(x, ign, NULL, -100, 0, RT_REDUCE_MEAN, &z)))
        CHECK(isnan(h_elem(z, 0)), "mean over no samples is NaN (as PyTorch)");
    RELEASE(x, lab, ign, y, z);
}

static void test_loss_errors(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(3, 4), -1, 1, 1), *y = NULL;
    struct rt_tensor *bad = h_tensor(RT_I64, 1, H_SHAPE(3), H_VALS(0, 4, 1)), *neg = h_tensor(RT_I64, 1, H_SHAPE(3), H_VALS(0, -1, 1));
    struct rt_tensor *labf = h_tensor(RT_F32, 1, H_SHAPE(3), H_VALS(0, 1, 1)), *lab2 = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(0, 1));
    struct rt_tensor *w3 = h_rand(RT_F32, 1, H_SHAPE(3), 0, 1, 2), *b = h_rand(RT_F32, 2, H_SHAPE(4, 3), 0, 1, 3);
    CHECK_STATUS(rt_cross_entropy(x, bad, NULL, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, &y), RT_ERR_ARG,
                 "rt_cross_entropy: label 4 at position 1 out of range [0, 3]");
    CHECK_STATUS(rt_cross_entropy(x, neg, NULL, -100, 0, RT_REDUCE_MEAN, &y), RT_ERR_ARG, "label -1 at position 1");
    CHECK_OK(rt_cross_entropy(x, neg, NULL, -1, 0, RT_REDUCE_MEAN, &y)); /* -1 ignored */
    rt_tensor_release(y);
    y = NULL;
    CHECK_STATUS(rt_cross_entropy(x, labf, NULL, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, &y), RT_ERR_DTYPE, "labels must be i64");
    CHECK_STATUS(rt_cross_entropy(x, lab2, NULL, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, &y), RT_ERR_SHAPE,
                 "labels (2) do not fit input (3,4)");
    CHECK_STATUS(rt_cross_entropy(x, bad, w3, RT_NO_IGNORE, 0, RT_REDUCE_MEAN, &y), RT_ERR_SHAPE, "class weights must be (4)");
    CHECK_STATUS(rt_cross_entropy(x, lab2, NULL, RT_NO_IGNORE, 1.5, RT_REDUCE_MEAN, &y), RT_ERR_ARG, "label_smoothing");
    CHECK_STATUS(rt_nll_loss(x, bad, NULL, RT_NO_IGNORE, RT_REDUCE_SUM, &y), RT_ERR_ARG, "rt_nll_loss: label 4 at position 1");
    CHECK_STATUS(rt_mse_loss(x, b, RT_REDUCE_MEAN, &y), RT_ERR_SHAPE, "rt_mse_loss: shapes differ: (3,4) vs (4,3)");
    CHECK(y == NULL, "no output");
    RELEASE(x, bad, neg, labf, lab2, w3, b);
}

static enum rt_status f_mse(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_mse_loss(in[0], in[1], *(enum rt_reduction *)c, out);
}

static void test_mse(void)
{
    struct rt_tensor *a = h_tensor(RT_F32, 1, H_SHAPE(2), H_VALS(1, 2)), *b = h_tensor(RT_F32, 1, H_SHAPE(2), H_VALS(2, 4)), *y = NULL;
    if (CHECK_OK(rt_mse_loss(a, b, RT_REDUCE_MEAN, &y)))
        CHECK_CLOSE(h_elem(y, 0), 2.5, 1e-7);
    struct rt_tensor *a2 = h_rand(RT_F64, 2, H_SHAPE(3, 4), -1, 1, 1), *b2 = h_rand(RT_F64, 2, H_SHAPE(3, 4), -1, 1, 2);
    enum rt_reduction reds[3] = {RT_REDUCE_MEAN, RT_REDUCE_SUM, RT_REDUCE_NONE};
    for (int i = 0; i < 3; i++)
        CHECK(GRADCHECK("mse", f_mse, &reds[i], 2, IN(a2, b2), GC_ALL), "mse %d", i);
    RELEASE(a, b, y, a2, b2);
}

int main(void)
{
    RUN(test_conv2d_forward_naive);
    RUN(test_conv2d_gradcheck);
    RUN(test_conv2d_grad_only_weight);
    RUN(test_conv2d_backward_in_chunks);
    RUN(test_conv2d_errors);
    RUN(test_pool_forward_naive);
    RUN(test_pool_gradcheck);
    RUN(test_max_pool_indices);
    RUN(test_max_pool_2x2_against_loop);
    RUN(test_pool_errors);
    RUN(test_batch_norm_values);
    RUN(test_batch_norm_gradcheck);
    RUN(test_batch_norm_large_mean);
    RUN(test_batch_norm_errors);
    RUN(test_dropout);
    RUN(test_leaky_relu);
    RUN(test_cross_entropy_values_and_grads);
    RUN(test_cross_entropy_f32_and_all_ignored);
    RUN(test_loss_errors);
    RUN(test_mse);
    return h_finish();
}
