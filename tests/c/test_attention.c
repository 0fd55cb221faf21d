/* rt_attention_map: values against a naive loop over the formula in retort/loss.h (on host
 * doubles), f64 finite-difference gradients for p = 1, 2, 3 on strided inputs, an all-zero map
 * (the norm is clamped, as F.normalize does), f32 against f64, and argument errors (status,
 * message, no leak). */
#include <math.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "harness.h"

#define IN(...) ((struct rt_tensor *const[]){__VA_ARGS__})

enum { N = 3, C = 4, H = 3, W = 2, HW = H * W };

static enum rt_status f_at(struct rt_tensor *const *in, void *ctx, struct rt_tensor **out)
{
    return rt_attention_map(in[0], *(const double *)ctx, out);
}

/* out[i][s] = a / max(||a||, 1e-12), a[s] = (1/C) sum_c f[i][c][s]^p */
static void at_ref(const double *f, double p, double *out)
{
    for (int i = 0; i < N; i++) {
        double a[HW], ss = 0;
        for (int s = 0; s < HW; s++) {
            a[s] = 0;
            for (int c = 0; c < C; c++)
                a[s] += pow(f[(i * C + c) * HW + s], p) / C;
            ss += a[s] * a[s];
        }
        double d = fmax(sqrt(ss), 1e-12);
        for (int s = 0; s < HW; s++)
            out[i * HW + s] = a[s] / d;
    }
}

static void test_attention_values_and_grads(void)
{
    const double ps[] = {1, 2, 3, 2.5};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        double p = ps[k];
        /* non-integer p needs a non-negative base (post-ReLU features) */
        struct rt_tensor *f = h_rand(RT_F64, 4, H_SHAPE(N, C, H, W), p == floor(p) ? -2 : 0.1, 2, 40 + k);
        struct rt_tensor *y = NULL;
        double *fv = h_values(f), want[N * HW];
        at_ref(fv, p, want);
        if (CHECK_OK(rt_attention_map(f, p, &y))) {
            CHECK(y->ndim == 2 && y->shape[0] == N && y->shape[1] == HW, "shape (N, H*W)");
            CHECK_TENSOR_VALUES(y, want, N * HW, 1e-12, 1e-12);
        }
        char what[32];
        snprintf(what, sizeof what, "attention p=%g", p);
        CHECK(GRADCHECK(what, f_at, &p, 1, IN(f), GC_STRIDED), "%s", what);
        free(fv);
        RELEASE(f, y);
    }
}

/* an all-zero sample: the map is 0 and the gradient is gy / (1e-12 C) * d f^p (0 for p = 2 at 0) */
static void test_attention_zero_map(void)
{
    double v[N * C * HW];
    for (int i = 0; i < N * C * HW; i++)
        v[i] = i < C * HW ? 0 : 0.1 * (i % 7) - 0.3;
    struct rt_tensor *f = h_tensor(RT_F64, 4, H_SHAPE(N, C, H, W), v), *y = NULL, *l = NULL;
    REQUIRE_OK(rt_requires_grad_(f, true));
    if (CHECK_OK(rt_attention_map(f, 2, &y)) && CHECK_OK(rt_sum_all(y, &l)) && CHECK_OK(rt_backward(l, NULL, false))) {
        double *yv = h_values(y), *g = h_values(f->grad);
        for (int s = 0; s < HW; s++)
            CHECK(yv[s] == 0, "zero sample maps to 0, got %g", yv[s]);
        for (int i = 0; i < N * C * HW; i++)
            CHECK(isfinite(g[i]) && (i >= C * HW || g[i] == 0), "grad[%d] = %g", i, g[i]);
        free(yv), free(g);
    }
    RELEASE(f, y, l);
}

static void test_attention_f32(void)
{
    struct rt_tensor *f64 = h_rand(RT_F64, 4, H_SHAPE(N, C, H, W), -1, 1, 7), *f32 = NULL, *a = NULL, *b = NULL;
    REQUIRE_OK(rt_to_dtype(f64, RT_F32, &f32));
    if (CHECK_OK(rt_attention_map(f64, 2, &a)) && CHECK_OK(rt_attention_map(f32, 2, &b)))
        CHECK_TENSOR_CLOSE(b, a, 1e-5, 1e-6);
    RELEASE(f64, f32, a, b);
}

static void test_attention_errors(void)
{
    struct rt_tensor *f = h_rand(RT_F32, 4, H_SHAPE(2, 3, 2, 2), -1, 1, 1), *f3 = h_rand(RT_F32, 3, H_SHAPE(2, 3, 4), -1, 1, 2);
    const double iv[4] = {1, 2, 3, 4};
    struct rt_tensor *i64 = h_tensor(RT_I64, 4, H_SHAPE(1, 1, 2, 2), iv), *out = NULL;
    int64_t live = rt_tensor_live_count();
    CHECK_STATUS(rt_attention_map(f, 0, &out), RT_ERR_ARG, "the power p must be a positive finite number, got 0");
    CHECK_STATUS(rt_attention_map(f, INFINITY, &out), RT_ERR_ARG, "positive finite number, got inf");
    CHECK_STATUS(rt_attention_map(f3, 2, &out), RT_ERR_SHAPE, "must be (batch, channels, height, width), got (2,3,4)");
    CHECK_STATUS(rt_attention_map(i64, 2, &out), RT_ERR_DTYPE, "features");
    CHECK(out == NULL, "no output on error");
    CHECK(rt_tensor_live_count() == live, "no leak on error paths");
    RELEASE(f, f3, i64);
}

int main(void)
{
    RUN(test_attention_values_and_grads);
    RUN(test_attention_zero_map);
    RUN(test_attention_f32);
    RUN(test_attention_errors);
    return h_finish();
}
