/* bf16 (retort/bf16.h): conversions against a closed-form round-to-nearest-even reference written
 * here independently of the core's bit trick (the two neighbouring bf16 values of an f32 and which
 * is nearer, in double; ties to the even mantissa; NaN, infinities, zeros, subnormals, overflow),
 * on crafted values and 200000 random bit patterns; casts between every dtype and bf16 on
 * contiguous and strided views; the bf16 GEMM and convolution (forward and backward, under
 * autocast) against the same products computed in f64 from the bf16-rounded operands (so the only
 * difference left is f32 accumulation), and against plain f32 within bf16's tolerance; gradients
 * reaching f32 weights; ops refusing bf16 with a clear message; the HDF5 round trip.
 * Exits 77 (CTest: skipped) when the CPU has no bf16 unit (retort.bf16Info(); casts are still
 * checked before that). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include <retort/h5.h>

#include "harness.h"

/* ---- the reference rounding ---- */

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits_of_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* the value of bf16 bits h, with 0x7f80 (the first value past the largest finite bf16) counted as
 * 2^128 so that overflow rounds like any other carry */
static double bf16_value(uint16_t h)
{
    int e = (h >> 7) & 0xff, m = h & 0x7f;
    double v = e == 0 ? ldexp(m, -133) : ldexp(128 + m, e - 134);
    return (h & 0x8000) ? -v : v;
}

static uint16_t ref_bf16(float f)
{
    uint32_t u = bits_of_f32(f);
    if (isnan(f))
        return 0; /* checked separately: any NaN pattern */
    if (isinf(f))
        return (uint16_t)(u >> 16);
    uint16_t lo = (uint16_t)(u >> 16); /* truncation: toward zero */
    uint16_t hi = (uint16_t)(lo + 1);  /* next one away from zero (may be the infinity) */
    double x = fabs((double)f), dl = x - fabs(bf16_value(lo)), dh = fabs(bf16_value(hi)) - x;
    if (dl < dh)
        return lo;
    if (dh < dl)
        return hi;
    return (lo & 1) ? hi : lo; /* a tie: the even mantissa */
}

static bool check_one(float f)
{
    uint16_t got = rt_bf16_from_f32(f);
    if (isnan(f)) {
        bool nan_kept = ((got >> 7) & 0xff) == 0xff && (got & 0x7f) != 0 && (got >> 15) == (bits_of_f32(f) >> 31);
        return CHECK(nan_kept, "NaN 0x%08x became 0x%04x", bits_of_f32(f), got);
    }
    uint16_t want = ref_bf16(f);
    if (got != want)
        return CHECK(false, "%.9g (0x%08x): got 0x%04x, want 0x%04x", f, bits_of_f32(f), got, want);
    /* and back: bf16 -> f32 is exact */
    float back = rt_bf16_to_f32(got);
    return CHECK(bits_of_f32(back) == (uint32_t)got << 16, "to_f32(0x%04x) = 0x%08x", got, bits_of_f32(back));
}

static void test_conversion_closed_form(void)
{
    const float crafted[] = {0.0f, -0.0f, 1.0f, -1.0f, 1.0f + 0x1p-8f /* tie -> 1 (even) */,
                             1.0f + 3 * 0x1p-8f /* tie -> 1 + 2^-6 (even) */, 1.0f + 0x1p-8f + 0x1p-23f,
                             -(1.0f + 3 * 0x1p-8f), 3.3f, 1.0f / 3, 65504.0f, 1e30f, -1e-30f,
                             0x1.fep127f /* largest bf16 */, 0x1.fefffep127f /* just below the overflow tie */,
                             0x1.ff0000p127f /* the tie: rounds to even = infinity */, FLT_MAX, -FLT_MAX,
                             INFINITY, -INFINITY, 0x1p-126f /* smallest normal */, 1e-40f /* subnormal */,
                             0x1p-133f /* smallest bf16 subnormal */, 0x1p-134f /* tie with 0 -> 0 */,
                             3 * 0x1p-134f /* tie between 2^-133 and 2^-132 -> 2^-132 */, 0x1p-149f, -0x1p-149f,
                             f32_of_bits(0x7f800001) /* signalling NaN: must not become infinity */,
                             f32_of_bits(0xff800001), f32_of_bits(0x7fc00000), f32_of_bits(0xffffffff)};
    int bad = 0;
    for (size_t i = 0; i < sizeof crafted / sizeof *crafted; i++)
        bad += !check_one(crafted[i]);
    CHECK(bad == 0, "%d crafted values", bad);
    /* spot checks written out by hand, independent of ref_bf16 too */
    CHECK(rt_bf16_from_f32(1.0f + 0x1p-8f) == 0x3f80, "tie to even (down)");
    CHECK(rt_bf16_from_f32(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie to even (up)");
    CHECK(rt_bf16_from_f32(FLT_MAX) == 0x7f80, "FLT_MAX overflows to inf");
    CHECK(rt_bf16_from_f32(-0.0f) == 0x8000, "-0 keeps its sign");
    uint64_t s = 0xb16b00b5;
    bad = 0;
    for (int i = 0; i < 200000 && bad < 5; i++) {
        uint32_t u = (uint32_t)(h_uniform(&s) * 4294967296.0);
        bad += !check_one(f32_of_bits(u));
    }
    CHECK(bad == 0, "random bit patterns");
}

/* ---- casts ---- */

static void test_casts(void)
{
    /* a big contiguous f32 tensor (the parallel path) and a transposed view (the strided path) */
    int64_t n = 300, m = 301;
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(n, m), -3, 3, 11), *xt = NULL, *b = NULL, *bt = NULL, *back = NULL;
    REQUIRE(x != NULL, "h_rand");
    float *xv = malloc(sizeof(float) * (size_t)(n * m));
    uint16_t *bv = malloc(sizeof(uint16_t) * (size_t)(n * m)), *btv = malloc(sizeof(uint16_t) * (size_t)(n * m));
    if (CHECK_OK(rt_to_dtype(x, RT_BF16, &b)) && CHECK_OK(rt_transpose(x, 0, 1, &xt)) &&
        CHECK_OK(rt_to_dtype(xt, RT_BF16, &bt)) && CHECK_OK(rt_tensor_to_host(x, RT_F32, xv)) &&
        CHECK_OK(rt_tensor_to_host(b, RT_BF16, bv)) && CHECK_OK(rt_tensor_to_host(bt, RT_BF16, btv))) {
        CHECK(b->dtype == RT_BF16 && !b->requires_grad, "dtype %s", rt_dtype_name(b->dtype));
        int bad = 0;
        for (int64_t i = 0; i < n && bad < 5; i++)
            for (int64_t j = 0; j < m && bad < 5; j++) {
                uint16_t want = ref_bf16(xv[i * m + j]);
                bad += !CHECK(bv[i * m + j] == want && btv[j * n + i] == want, "(%lld,%lld)", (long long)i,
                              (long long)j);
            }
        /* bf16 -> f64 exact; a strided bf16 -> bf16 copy (clone of a transposed bf16 view) */
        struct rt_tensor *d = NULL, *btt = NULL, *c = NULL;
        if (CHECK_OK(rt_to_dtype(b, RT_F64, &d)) && CHECK_OK(rt_transpose(bt, 0, 1, &btt)) &&
            CHECK_OK(rt_clone(btt, &c)) && CHECK_OK(rt_to_dtype(c, RT_F32, &back))) {
            double *dv = h_values(d), *cv = h_values(back);
            bad = 0;
            for (int64_t i = 0; i < n * m && bad < 5; i++) {
                double want = rt_bf16_to_f32(bv[i]);
                bad += !CHECK(dv[i] == want && cv[i] == want, "element %lld: %g %g want %g", (long long)i, dv[i],
                              cv[i], want);
            }
            free(dv);
            free(cv);
        }
        RELEASE(d, btt, c);
    }
    free(xv);
    free(bv);
    free(btv);
    RELEASE(x, xt, b, bt, back);

    /* integers and f64 to bf16 and back: exact for values bf16 holds, rounded (through f32) otherwise */
    struct rt_tensor *ints = h_tensor(RT_I64, 1, H_SHAPE(5), H_VALS(0, -7, 255, 257, 1000001));
    struct rt_tensor *u8 = h_tensor(RT_U8, 1, H_SHAPE(3), H_VALS(0, 200, 255));
    struct rt_tensor *f64 = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(0.1, -2.5, 1e300));
    struct rt_tensor *ib = NULL, *ub = NULL, *fb = NULL, *ii = NULL, *uu = NULL;
    if (CHECK_OK(rt_to_dtype(ints, RT_BF16, &ib)) && CHECK_OK(rt_to_dtype(u8, RT_BF16, &ub)) &&
        CHECK_OK(rt_to_dtype(f64, RT_BF16, &fb)) && CHECK_OK(rt_to_dtype(ib, RT_I64, &ii)) &&
        CHECK_OK(rt_to_dtype(ub, RT_U8, &uu))) {
        /* 257 -> 256 (a tie between 256 and 258: the even mantissa); 1000001 lies between 999424 and
         * 1003520 (8 significant bits: a step of 4096 there) and is nearer the first */
        CHECK_TENSOR_VALUES(ii, H_VALS(0, -7, 255, 256, 999424), 5, 0, 0);
        CHECK_TENSOR_VALUES(uu, H_VALS(0, 200, 255), 3, 0, 0);
        CHECK_TENSOR_VALUES(fb, H_VALS(rt_bf16_to_f32(ref_bf16(0.1f)), -2.5, INFINITY), 3, 0, 0);
    }
    RELEASE(ints, u8, f64, ib, ub, fb, ii, uu);

    /* full / fill / get / set on bf16 */
    struct rt_tensor *t = NULL;
    double v = 0;
    if (CHECK_OK(rt_tensor_full(RT_BF16, RT_CPU, 2, H_SHAPE(2, 3), 1.0 + 0x1p-8, &t))) {
        CHECK_TENSOR_VALUES(t, H_VALS(1, 1, 1, 1, 1, 1), 6, 0, 0);
        CHECK_OK(rt_tensor_set(t, H_SHAPE(1, 2), 3.3));
        CHECK_OK(rt_tensor_get(t, H_SHAPE(1, 2), &v));
        CHECK(v == rt_bf16_to_f32(ref_bf16(3.3f)), "get %g", v);
        CHECK_OK(rt_fill_(t, -0.5));
        CHECK_TENSOR_VALUES(t, H_VALS(-0.5, -0.5, -0.5, -0.5, -0.5, -0.5), 6, 0, 0);
    }
    RELEASE(t);
}

/* ---- products ---- */

/* t rounded to bf16, as f64 (what a bf16 kernel multiplies) */
static struct rt_tensor *rounded_f64(struct rt_tensor *t)
{
    struct rt_tensor *b = NULL, *d = NULL;
    if (CHECK_OK(rt_to_dtype(t, RT_BF16, &b)))
        CHECK_OK(rt_to_dtype(b, RT_F64, &d));
    rt_tensor_release(b);
    return d;
}

/* |a| @ |b| in f64: the scale of an accumulation error */
static struct rt_tensor *abs_product(struct rt_tensor *a, struct rt_tensor *b)
{
    struct rt_tensor *aa = NULL, *ba = NULL, *p = NULL;
    if (CHECK_OK(rt_abs(a, &aa)) && CHECK_OK(rt_abs(b, &ba)))
        CHECK_OK(rt_matmul(aa, ba, &p));
    RELEASE(aa, ba);
    return p;
}

/* every |got - want| <= tol * scale (elementwise) */
static void check_scaled(struct rt_tensor *got, struct rt_tensor *want, struct rt_tensor *scale, double tol,
                         const char *what)
{
    double *g = h_values(got), *w = h_values(want), *s = h_values(scale);
    int64_t n = rt_tensor_numel(want), bad = 0;
    CHECK(rt_tensor_numel(got) == n, "%s: sizes", what);
    for (int64_t i = 0; g && w && s && i < n && bad < 5; i++)
        if (!(fabs(g[i] - w[i]) <= tol * (s[i] + 1e-30)))
            bad++, CHECK(false, "%s[%lld]: %.9g, want %.9g (scale %.3g)", what, (long long)i, g[i], w[i], s[i]);
    free(g);
    free(w);
    free(s);
}

static void test_matmul(void)
{
    const int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 64, 17}, {128, 784, 100}, {5, 1, 9}};
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++) {
        int64_t m = sizes[c][0], k = sizes[c][1], n = sizes[c][2];
        struct rt_tensor *a = h_rand(RT_F32, 2, H_SHAPE(m, k), -1, 1, 100 + c);
        struct rt_tensor *bt = h_rand(RT_F32, 2, H_SHAPE(n, k), -1, 1, 200 + c), *b = NULL;
        struct rt_tensor *ab = NULL, *bb = NULL, *y = NULL, *yb = NULL, *ref = NULL, *f32 = NULL, *scale = NULL;
        struct rt_tensor *a64 = rounded_f64(a), *b64 = NULL;
        enum rt_dtype prev;
        /* b as a transposed view: the kernel takes it as a transposed operand */
        if (CHECK_OK(rt_transpose(bt, 0, 1, &b)) && (b64 = rounded_f64(b)) && CHECK_OK(rt_matmul(a64, b64, &ref)) &&
            (scale = abs_product(a64, b64)) && CHECK_OK(rt_matmul(a, b, &f32)) &&
            CHECK_OK(rt_autocast_set(RT_BF16, &prev))) {
            uint64_t calls = rt_bf16_kernel_calls();
            CHECK_OK(rt_matmul(a, b, &y));
            rt_autocast_set(prev, NULL);
            CHECK(rt_bf16_kernel_calls() == calls + 1, "one bf16 GEMM ran");
            /* explicit bf16 operands, no autocast: the same product */
            if (CHECK_OK(rt_to_dtype(a, RT_BF16, &ab)) && CHECK_OK(rt_to_dtype(b, RT_BF16, &bb)) &&
                CHECK_OK(rt_matmul(ab, bb, &yb)) && y) {
                CHECK(y->dtype == RT_F32 && yb->dtype == RT_F32, "f32 results");
                check_scaled(y, ref, scale, 1e-6 * (double)k, "autocast matmul vs f64 of bf16 operands");
                check_scaled(yb, ref, scale, 1e-6 * (double)k, "bf16 matmul vs f64 of bf16 operands");
                /* and the f32 product within bf16's rounding of both operands (2 x 2^-9 relative each) */
                check_scaled(y, f32, scale, 2 * 0x1p-8 + 1e-6 * (double)k, "autocast matmul vs f32 matmul");
            }
        }
        RELEASE(a, bt, b, ab, bb, y, yb, ref, f32, scale, a64, b64);
    }
    /* batched: (B, m, k) x (B, k, n) and (B, m, k) x (k, n) shared */
    struct rt_tensor *a = h_rand(RT_F32, 3, H_SHAPE(3, 4, 6), -1, 1, 7);
    struct rt_tensor *b = h_rand(RT_F32, 3, H_SHAPE(3, 6, 5), -1, 1, 8);
    struct rt_tensor *b2 = h_rand(RT_F32, 2, H_SHAPE(6, 5), -1, 1, 9), *ab = NULL, *bb = NULL, *b2b = NULL;
    struct rt_tensor *y = NULL, *y2 = NULL, *a64 = rounded_f64(a), *b64 = rounded_f64(b), *b264 = rounded_f64(b2);
    struct rt_tensor *r = NULL, *r2 = NULL, *s = NULL, *s2 = NULL, *aa = NULL, *ba = NULL, *b2a = NULL;
    if (CHECK_OK(rt_to_dtype(a, RT_BF16, &ab)) && CHECK_OK(rt_to_dtype(b, RT_BF16, &bb)) &&
        CHECK_OK(rt_to_dtype(b2, RT_BF16, &b2b)) && CHECK_OK(rt_bmm(ab, bb, &y)) && CHECK_OK(rt_matmul(ab, b2b, &y2)) &&
        CHECK_OK(rt_bmm(a64, b64, &r)) && CHECK_OK(rt_matmul(a64, b264, &r2)) && CHECK_OK(rt_abs(a64, &aa)) &&
        CHECK_OK(rt_abs(b64, &ba)) && CHECK_OK(rt_abs(b264, &b2a)) && CHECK_OK(rt_bmm(aa, ba, &s)) &&
        CHECK_OK(rt_matmul(aa, b2a, &s2))) {
        check_scaled(y, r, s, 1e-5, "bmm bf16");
        check_scaled(y2, r2, s2, 1e-5, "3-D x shared 2-D bf16");
    }
    RELEASE(a, b, b2, ab, bb, b2b, y, y2, a64, b64, b264, r, r2, s, s2, aa, ba, b2a);
}

/* L = sum(y * G): backward with G as y's gradient */
static void test_linear_gradients(void)
{
    int64_t n = 16, in = 40, out = 12;
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(n, in), -1, 1, 31);
    struct rt_tensor *w = h_rand(RT_F32, 2, H_SHAPE(out, in), -1, 1, 32);
    struct rt_tensor *bias = h_rand(RT_F32, 1, H_SHAPE(out), -1, 1, 33);
    struct rt_tensor *G = h_rand(RT_F32, 2, H_SHAPE(n, out), -1, 1, 34);
    struct rt_tensor *y = NULL, *x64 = rounded_f64(x), *w64 = rounded_f64(w), *G64 = rounded_f64(G), *Gt = NULL;
    struct rt_tensor *gx_ref = NULL, *gw_ref = NULL, *gb_ref = NULL, *ax = NULL, *aw = NULL, *aG = NULL, *aGt = NULL;
    struct rt_tensor *sx = NULL, *sw = NULL, *gx32 = NULL, *gw32 = NULL, *y32 = NULL;
    enum rt_dtype prev;
    REQUIRE_OK(rt_requires_grad_(x, true));
    REQUIRE_OK(rt_requires_grad_(w, true));
    REQUIRE_OK(rt_requires_grad_(bias, true));
    /* the f32 gradients first */
    if (CHECK_OK(rt_linear(x, w, bias, &y32)) && CHECK_OK(rt_backward(y32, G, false))) {
        rt_tensor_retain(gx32 = x->grad);
        rt_tensor_retain(gw32 = w->grad);
    }
    rt_tensor_zero_grad(x), rt_tensor_zero_grad(w), rt_tensor_zero_grad(bias);
    REQUIRE_OK(rt_autocast_set(RT_BF16, &prev));
    uint64_t calls = rt_bf16_kernel_calls();
    enum rt_status st = rt_linear(x, w, bias, &y);
    rt_autocast_set(prev, NULL);
    CHECK(rt_autocast_get() == RT_F32, "autocast restored");
    /* backward outside the autocast region: the node saved bf16 operands, so it still runs in bf16 */
    if (CHECK_OK(st) && CHECK_OK(rt_backward(y, G, false)) && CHECK_OK(rt_transpose(G64, 0, 1, &Gt)) &&
        CHECK_OK(rt_matmul(G64, w64, &gx_ref)) && CHECK_OK(rt_matmul(Gt, x64, &gw_ref)) &&
        CHECK_OK(rt_sum(G, 0, false, &gb_ref)) && CHECK_OK(rt_abs(G64, &aG)) && CHECK_OK(rt_abs(Gt, &aGt)) &&
        CHECK_OK(rt_abs(x64, &ax)) && CHECK_OK(rt_abs(w64, &aw)) && CHECK_OK(rt_matmul(aG, aw, &sx)) &&
        CHECK_OK(rt_matmul(aGt, ax, &sw))) {
        CHECK(rt_bf16_kernel_calls() == calls + 3, "forward + 2 backward GEMMs in bf16 (%llu)",
              (unsigned long long)(rt_bf16_kernel_calls() - calls));
        REQUIRE(x->grad && w->grad && bias->grad, "gradients reached the f32 leaves");
        CHECK(x->grad->dtype == RT_F32 && w->grad->dtype == RT_F32 && bias->grad->dtype == RT_F32, "f32 gradients");
        check_scaled(x->grad, gx_ref, sx, 1e-5, "dx vs f64 of bf16 operands");
        check_scaled(w->grad, gw_ref, sw, 1e-5, "dW vs f64 of bf16 operands");
        CHECK_TENSOR_CLOSE(bias->grad, gb_ref, 1e-6, 1e-6); /* the bias gradient stays f32 */
        check_scaled(x->grad, gx32, sx, 3 * 0x1p-8, "dx vs f32 gradients");
        check_scaled(w->grad, gw32, sw, 3 * 0x1p-8, "dW vs f32 gradients");
    }
    RELEASE(x, w, bias, G, y, x64, w64, G64, Gt, gx_ref, gw_ref, gb_ref, ax, aw, aG, aGt, sx, sw, gx32, gw32, y32);
}

static void test_conv(void)
{
    const int64_t st[2] = {2, 1}, pad[2] = {1, 0}, dil[2] = {1, 2};
    struct rt_tensor *x = h_rand(RT_F32, 4, H_SHAPE(3, 4, 9, 8), -1, 1, 41);
    struct rt_tensor *w = h_rand(RT_F32, 4, H_SHAPE(6, 2, 3, 2), -1, 1, 42); /* groups 2 */
    struct rt_tensor *b = h_rand(RT_F32, 1, H_SHAPE(6), -1, 1, 43);
    struct rt_tensor *y = NULL, *x64 = rounded_f64(x), *w64 = rounded_f64(w), *b64 = NULL, *y64 = NULL, *G = NULL;
    struct rt_tensor *G64 = NULL, *ax = NULL, *aw = NULL, *s = NULL, *aG = NULL;
    enum rt_dtype prev;
    REQUIRE_OK(rt_to_dtype(b, RT_F64, &b64));
    REQUIRE_OK(rt_requires_grad_(x, true));
    REQUIRE_OK(rt_requires_grad_(w, true));
    REQUIRE_OK(rt_requires_grad_(b, true));
    REQUIRE_OK(rt_requires_grad_(x64, true));
    REQUIRE_OK(rt_requires_grad_(w64, true));
    REQUIRE_OK(rt_autocast_set(RT_BF16, &prev));
    uint64_t calls = rt_bf16_kernel_calls();
    enum rt_status s0 = rt_conv2d(x, w, b, st, pad, dil, 2, &y);
    rt_autocast_set(prev, NULL);
    if (!CHECK_OK(s0) || !CHECK_OK(rt_conv2d(x64, w64, b64, st, pad, dil, 2, &y64)))
        goto done;
    CHECK(rt_bf16_kernel_calls() == calls + 1 && y->dtype == RT_F32, "the convolution ran in bf16, f32 out");
    /* scale: the same convolution of |x| and |w| (and |b|) */
    bool was = rt_grad_set_enabled(false);
    if (CHECK_OK(rt_abs(x64, &ax)) && CHECK_OK(rt_abs(w64, &aw)) &&
        CHECK_OK(rt_conv2d(ax, aw, NULL, st, pad, dil, 2, &s)))
        check_scaled(y, y64, s, 1e-5, "conv forward vs f64 of bf16 operands");
    rt_grad_set_enabled(was);
    G = h_rand(RT_F32, 4, y->shape, -1, 1, 44);
    G64 = rounded_f64(G);
    if (CHECK_OK(rt_backward(y, G, false)) && CHECK_OK(rt_backward(y64, G64, false))) {
        CHECK(rt_bf16_kernel_calls() == calls + 2, "one bf16 backward call (data and weights)");
        CHECK(x->grad->dtype == RT_F32 && w->grad->dtype == RT_F32 && b->grad->dtype == RT_F32, "f32 gradients");
        /* scales: the gradients of sum(conv(|x|,|w|) * |G|) */
        struct rt_tensor *axr = NULL, *awr = NULL, *ys = NULL;
        was = rt_grad_set_enabled(true);
        if (CHECK_OK(rt_abs(G64, &aG)) && CHECK_OK(rt_detach(ax, &axr)) && CHECK_OK(rt_detach(aw, &awr)) &&
            CHECK_OK(rt_requires_grad_(axr, true)) && CHECK_OK(rt_requires_grad_(awr, true)) &&
            CHECK_OK(rt_conv2d(axr, awr, NULL, st, pad, dil, 2, &ys)) && CHECK_OK(rt_backward(ys, aG, false))) {
            check_scaled(x->grad, x64->grad, axr->grad, 1e-5, "conv dx vs f64 of bf16 operands");
            check_scaled(w->grad, w64->grad, awr->grad, 1e-5, "conv dW vs f64 of bf16 operands");
        }
        rt_grad_set_enabled(was);
        struct rt_tensor *gb = NULL;
        if (CHECK_OK(rt_sum(G, 0, false, &gb))) { /* db = sum of G (unrounded) over images and pixels */
            struct rt_tensor *g1 = NULL, *g2 = NULL;
            if (CHECK_OK(rt_sum(gb, 1, false, &g1)) && CHECK_OK(rt_sum(g1, 1, false, &g2)))
                CHECK_TENSOR_CLOSE(b->grad, g2, 1e-5, 1e-5);
            RELEASE(g1, g2);
        }
        RELEASE(axr, awr, ys, gb);
    }
done:
    RELEASE(x, w, b, y, x64, w64, b64, y64, G, G64, ax, aw, s, aG);
}

static void test_refusals(void)
{
    struct rt_tensor *f = h_rand(RT_F32, 2, H_SHAPE(4, 5), -1, 1, 51), *b = NULL, *o = NULL, *o2 = NULL;
    struct rt_tensor *ix = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(0, 1));
    REQUIRE_OK(rt_to_dtype(f, RT_BF16, &b));
    CHECK_STATUS(rt_exp(b, &o), RT_ERR_DTYPE, "bf16");
    CHECK_STATUS(rt_relu(b, &o), RT_ERR_DTYPE, "bf16");
    CHECK_STATUS(rt_add(b, b, &o), RT_ERR_DTYPE, "bf16 tensors are not supported; convert with :float()");
    CHECK_STATUS(rt_add(b, f, &o), RT_ERR_DTYPE, "");
    CHECK_STATUS(rt_mul(b, b, &o), RT_ERR_DTYPE, "bf16");
    CHECK_STATUS(rt_sum_all(b, &o), RT_ERR_DTYPE, "bf16 tensors are not supported; convert with :float()");
    CHECK_STATUS(rt_softmax(b, 1, 1.0, &o), RT_ERR_DTYPE, "bf16");
    CHECK_STATUS(rt_requires_grad_(b, true), RT_ERR_DTYPE, "bf16");
    CHECK_STATUS(rt_cat(2, (struct rt_tensor *[]){b, b}, 0, &o), RT_ERR_DTYPE, "bf16");
    CHECK_STATUS(rt_cross_entropy(b, ix, NULL, -100, 0.0, RT_REDUCE_MEAN, &o), RT_ERR_DTYPE, "bf16");
    struct rt_tensor *b4 = NULL;
    if (CHECK_OK(rt_view(b, 4, H_SHAPE(1, 1, 4, 5), &b4)))
        CHECK_STATUS(rt_max_pool2d(b4, H_SHAPE(2, 2), H_SHAPE(2, 2), H_SHAPE(0, 0), &o, &o2), RT_ERR_DTYPE, "bf16");
    RELEASE(b4);
    CHECK_STATUS(rt_autocast_set(RT_F64, NULL), RT_ERR_ARG, "f32 (off) or bf16");
    CHECK(o == NULL && o2 == NULL, "nothing produced");
    RELEASE(f, b, o, o2, ix);
}

static void test_h5_roundtrip(void)
{
    struct rt_tensor *f = h_rand(RT_F32, 2, H_SHAPE(70, 90), -100, 100, 61), *b = NULL, *back = NULL;
    struct rt_h5 *h = NULL;
    const char *path = h_tmp_path("bf16.h5");
    REQUIRE_OK(rt_to_dtype(f, RT_BF16, &b));
    if (CHECK_OK(rt_h5_create(path, &h)) && CHECK_OK(rt_h5_write(h, "/w", b)) && CHECK_OK(rt_h5_close(h)) &&
        CHECK_OK(rt_h5_open(path, RT_H5_READ, &h))) {
        if (CHECK_OK(rt_h5_read(h, "/w", &back))) {
            CHECK(back->dtype == RT_BF16, "read back as %s", rt_dtype_name(back->dtype));
            uint16_t *x = malloc(2 * 70 * 90), *y = malloc(2 * 70 * 90);
            if (CHECK_OK(rt_tensor_to_host(b, RT_BF16, x)) && CHECK_OK(rt_tensor_to_host(back, RT_BF16, y)))
                CHECK(memcmp(x, y, 2 * 70 * 90) == 0, "bits differ");
            free(x);
            free(y);
        }
        CHECK_OK(rt_h5_close(h));
    }
    RELEASE(f, b, back);
}

int main(void)
{
    h_tmpdir("bf16");
    RUN(test_conversion_closed_form);
    RUN(test_casts);
    RUN(test_refusals);
    RUN(test_h5_roundtrip);
    const char *why = NULL;
    if (!rt_bf16_unit(NULL, NULL, &why)) {
        printf("note: no bf16 unit (%s): the GEMM and convolution checks are skipped\n", why);
        return h_finish();
    }
    RUN(test_matmul);
    RUN(test_linear_gradients);
    RUN(test_conv);
    return h_finish();
}
