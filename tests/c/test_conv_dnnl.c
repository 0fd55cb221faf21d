/* The CPU's two convolution paths, oneDNN (cpu_conv_dnnl.c) and im2col + GEMM (ops_conv.c), chosen by
 * RETORT_CPU_CONV, on random shapes (strides, padding, dilation, groups, batch 1..8): forward,
 * backward-data and backward-weights in f32 on both paths, each compared with the same convolution
 * in f64 (im2col, the path test_nn_ops checks by finite differences and against a naive loop).
 * oneDNN's f32 gradients are also checked by differences of their own: a convolution is linear in x
 * and in w, so with L(x) = sum(conv(x, w) * G), (L(x + d) - L(x - d)) / 2 equals <dL/dx, d> exactly
 * up to rounding, for any step d (the finite difference has no truncation error to hide behind).
 * Exits 77 (CTest: skipped) when retort was built without oneDNN. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

struct conv_case {
    int64_t n, c, h, w, o, kh, kw, groups;
    int64_t stride[2], padding[2], dilation[2];
    bool bias;
};

static uint64_t seed_state = 0x5eed2026;

static int64_t pick(int64_t lo, int64_t hi) { return lo + (int64_t)(h_uniform(&seed_state) * (double)(hi - lo + 1)); }

/* a random valid convolution: the dilated kernel fits the padded input */
static struct conv_case random_case(void)
{
    static const int64_t groups[] = {1, 1, 1, 2, 3, 4};
    for (;;) {
        struct conv_case k;
        k.groups = groups[pick(0, 5)];
        k.n = pick(1, 8), k.c = k.groups * pick(1, 8), k.o = k.groups * pick(1, 8);
        k.h = pick(1, 12), k.w = pick(1, 12), k.kh = pick(1, 5), k.kw = pick(1, 5);
        for (int i = 0; i < 2; i++)
            k.stride[i] = pick(1, 3), k.padding[i] = pick(0, 2), k.dilation[i] = pick(1, 2);
        k.bias = pick(0, 1);
        if (k.dilation[0] * (k.kh - 1) + 1 <= k.h + 2 * k.padding[0] &&
            k.dilation[1] * (k.kw - 1) + 1 <= k.w + 2 * k.padding[1])
            return k;
    }
}

static enum rt_status conv(const struct conv_case *k, struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *b,
                           struct rt_tensor **y)
{
    return rt_conv2d(x, w, k->bias ? b : NULL, k->stride, k->padding, k->dilation, k->groups, y);
}

/* y = conv(x, w, b) with path `path`, then backward with upstream gradient g: out[0] = y, out[1] =
 * dx, out[2] = dw (dx or dw NULL when its input does not require grad) */
static bool run_path(const char *path, const struct conv_case *k, struct rt_tensor *x, struct rt_tensor *w,
                     struct rt_tensor *b, struct rt_tensor *g, bool gx, bool gw, struct rt_tensor **out)
{
    out[0] = out[1] = out[2] = NULL;
    setenv("RETORT_CPU_CONV", path, 1);
    rt_tensor_zero_grad(x);
    rt_tensor_zero_grad(w);
    rt_tensor_zero_grad(b);
    if (!CHECK_OK(rt_requires_grad_(x, gx)) || !CHECK_OK(rt_requires_grad_(w, gw)) ||
        !CHECK_OK(rt_requires_grad_(b, true)) || !CHECK_OK(conv(k, x, w, b, &out[0])) ||
        !CHECK_OK(rt_backward(out[0], g, false)))
        return false;
    out[1] = x->grad, out[2] = w->grad;
    if (out[1])
        rt_tensor_retain(out[1]);
    if (out[2])
        rt_tensor_retain(out[2]);
    return true;
}

/* sum(a * b) in double over two tensors of equal numel */
static double dot(const struct rt_tensor *a, const struct rt_tensor *b)
{
    double *av = h_values(a), *bv = h_values(b), s = 0;
    for (int64_t i = 0; i < rt_tensor_numel(a); i++)
        s += av[i] * bv[i];
    free(av);
    free(bv);
    return s;
}

static double abs_dot(const struct rt_tensor *a, const struct rt_tensor *b)
{
    double *av = h_values(a), *bv = h_values(b), s = 0;
    for (int64_t i = 0; i < rt_tensor_numel(a); i++)
        s += av[i] * bv[i] < 0 ? -av[i] * bv[i] : av[i] * bv[i];
    free(av);
    free(bv);
    return s;
}

/* (L(v + d) - L(v - d)) / 2 with L = sum(conv(..) * g), v = x (which 0) or w (which 1), on the
 * oneDNN path without grad, compared with <grad, d> */
static void check_difference(const struct conv_case *k, struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *b,
                             struct rt_tensor *g, const struct rt_tensor *grad, int which, uint64_t seed)
{
    struct rt_tensor *v = which ? w : x;
    struct rt_tensor *d = h_rand(RT_F32, v->ndim, v->shape, -1, 1, seed), *vp = NULL, *vm = NULL, *yp = NULL,
                     *ym = NULL;
    setenv("RETORT_CPU_CONV", "dnnl", 1);
    bool prev = rt_grad_set_enabled(false);
    if (CHECK_OK(rt_add(v, d, &vp)) && CHECK_OK(rt_sub(v, d, &vm)) &&
        CHECK_OK(which ? conv(k, x, vp, b, &yp) : conv(k, vp, w, b, &yp)) &&
        CHECK_OK(which ? conv(k, x, vm, b, &ym) : conv(k, vm, w, b, &ym))) {
        double fd = (dot(yp, g) - dot(ym, g)) / 2, an = dot(grad, d);
        double scale = abs_dot(yp, g) + abs_dot(ym, g) + 1;
        CHECK(fabs(fd - an) <= 1e-5 * scale, "%s: difference %.9g, gradient %.9g (scale %.3g)", which ? "dw" : "dx",
              fd, an, scale);
    }
    rt_grad_set_enabled(prev);
    RELEASE(d, vp, vm, yp, ym);
}

static struct rt_tensor *as_f64(struct rt_tensor *t)
{
    struct rt_tensor *o = NULL;
    if (!CHECK_OK(rt_to_dtype(t, RT_F64, &o)))
        abort(); /* a conversion failing is no state to go on from */
    return o;
}

static void compare_case(const struct conv_case *k, int t)
{
    struct rt_tensor *x = h_rand(RT_F32, 4, H_SHAPE(k->n, k->c, k->h, k->w), -1, 1, 100 + t);
    struct rt_tensor *w = h_rand(RT_F32, 4, H_SHAPE(k->o, k->c / k->groups, k->kh, k->kw), -1, 1, 200 + t);
    struct rt_tensor *b = h_rand(RT_F32, 1, H_SHAPE(k->o), -1, 1, 300 + t), *y0 = NULL;
    /* the output shape, from a forward without grad */
    setenv("RETORT_CPU_CONV", "im2col", 1);
    REQUIRE_OK(conv(k, x, w, b, &y0));
    struct rt_tensor *g = h_rand(RT_F32, 4, y0->shape, -1, 1, 400 + t);
    struct rt_tensor *x64 = as_f64(x), *w64 = as_f64(w), *b64 = as_f64(b), *g64 = as_f64(g);
    struct rt_tensor *ref[3], *dn[3] = {0}, *im[3] = {0};
    /* gx and gw both (the usual case); then one at a time */
    bool gx = t % 3 != 1, gw = t % 3 != 2;
    char what[160];
    snprintf(what, sizeof what, "case %d: x (%lld,%lld,%lld,%lld) w (%lld,%lld,%lld,%lld) groups %lld stride (%lld,%lld) "
             "padding (%lld,%lld) dilation (%lld,%lld)%s", t, (long long)k->n, (long long)k->c, (long long)k->h,
             (long long)k->w, (long long)k->o, (long long)(k->c / k->groups), (long long)k->kh, (long long)k->kw,
             (long long)k->groups, (long long)k->stride[0], (long long)k->stride[1], (long long)k->padding[0],
             (long long)k->padding[1], (long long)k->dilation[0], (long long)k->dilation[1], k->bias ? " bias" : "");
    h_note("%s", what);
    if (run_path("auto", k, x64, w64, b64, g64, gx, gw, ref) && run_path("dnnl", k, x, w, b, g, gx, gw, dn) &&
        run_path("im2col", k, x, w, b, g, gx, gw, im)) {
        for (int i = 0; i < 3; i++) {
            if (!ref[i])
                continue;
            CHECK_TENSOR_CLOSE(dn[i], ref[i], 1e-4, 1e-4);
            CHECK_TENSOR_CLOSE(im[i], ref[i], 1e-4, 1e-4);
            CHECK_TENSOR_CLOSE(dn[i], im[i], 1e-4, 1e-4);
        }
        CHECK((dn[1] != NULL) == gx && (dn[2] != NULL) == gw, "grads as asked (%d %d)", gx, gw);
        if (gx)
            check_difference(k, x, w, b, g, dn[1], 0, 500 + t);
        if (gw)
            check_difference(k, x, w, b, g, dn[2], 1, 600 + t);
    }
    for (int i = 0; i < 3; i++)
        RELEASE(ref[i], dn[i], im[i]);
    RELEASE(x, w, b, y0, g, x64, w64, b64, g64);
}

static void test_random_shapes(void)
{
    /* more distinct shapes than the primitive cache holds (32), so eviction is exercised too */
    for (int t = 0; t < 48; t++) {
        struct conv_case k = random_case();
        compare_case(&k, t);
    }
}

/* The shapes of the thin student CNN (16-32-32-64-64, 3x3, padding 1) at a small batch, and a
 * second run of one shape with new values: cached primitives see the new buffers. */
static void test_student_shapes_and_reuse(void)
{
    static const int64_t chans[][3] = {{3, 16, 16}, {16, 32, 16}, {32, 32, 8}, {32, 64, 8}, {64, 64, 4}};
    for (int i = 0; i < 5; i++) {
        struct conv_case k = {.n = 4, .c = chans[i][0], .o = chans[i][1], .h = chans[i][2], .w = chans[i][2], .kh = 3,
                              .kw = 3, .groups = 1, .stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .bias = i % 2};
        compare_case(&k, 1000 + 3 * i);     /* both grads */
        compare_case(&k, 1000 + 3 * i + 3); /* same shape, new values: the cached primitives again */
    }
}

/* A primitive built for one thread count is not reused for another: results agree. */
static void test_thread_counts(void)
{
    struct conv_case k = {.n = 8, .c = 16, .o = 32, .h = 12, .w = 12, .kh = 3, .kw = 3, .groups = 1,
                          .stride = {1, 1}, .padding = {1, 1}, .dilation = {1, 1}, .bias = true};
    int before = rt_get_num_threads();
    rt_set_num_threads(1);
    compare_case(&k, 2000);
    rt_set_num_threads(before > 1 ? before : 2);
    compare_case(&k, 2000);
    rt_set_num_threads(before);
}

static void test_bad_setting(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 4, H_SHAPE(1, 4, 5, 5), -1, 1, 1), *w = h_rand(RT_F32, 4, H_SHAPE(4, 4, 3, 3), -1, 1, 2);
    struct rt_tensor *y = NULL;
    const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    setenv("RETORT_CPU_CONV", "fast", 1);
    CHECK_STATUS(rt_conv2d(x, w, NULL, one, zero, one, 1, &y), RT_ERR_ARG, "RETORT_CPU_CONV=fast: expected im2col, dnnl or auto");
    CHECK(y == NULL, "no output on error");
    setenv("RETORT_CPU_CONV", "auto", 1);
    RELEASE(x, w, y);
}

/* built without oneDNN: RETORT_CPU_CONV=dnnl is refused with a message saying so */
static bool have_dnnl(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 4, H_SHAPE(1, 4, 5, 5), -1, 1, 1), *w = h_rand(RT_F32, 4, H_SHAPE(4, 4, 3, 3), -1, 1, 2);
    struct rt_tensor *y = NULL;
    const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    setenv("RETORT_CPU_CONV", "dnnl", 1);
    enum rt_status st = rt_conv2d(x, w, NULL, one, zero, one, 1, &y);
    bool have = st == RT_OK;
    if (!have && !strstr(rt_error_msg(), "built without oneDNN"))
        fprintf(stderr, "unexpected error: %s\n", rt_error_msg());
    RELEASE(x, w, y);
    return have;
}

int main(void)
{
    if (!have_dnnl()) {
        printf("skipped: retort was built without oneDNN (RETORT_CPU_CONV=dnnl is refused)\n");
        return 77;
    }
    RUN(test_random_shapes);
    RUN(test_student_shapes_and_reuse);
    RUN(test_thread_counts);
    RUN(test_bad_setting);
    return h_finish();
}
