/* rt_pairwise: the Gram, cosine and distance matrices against naive loops over the formulas in
 * retort/loss.h (host doubles), f64 finite-difference gradients on strided inputs (the distance's
 * diagonal and a clamped pair of equal rows included), f32 against f64, and argument errors
 * (status, message, no leak). */
#include <math.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "harness.h"

#define IN(...) ((struct rt_tensor *const[]){__VA_ARGS__})

enum { N = 5, D = 4 };

struct pw_ctx {
    enum rt_pairwise kind;
    double eps;
};

static enum rt_status f_pw(struct rt_tensor *const *in, void *ctx, struct rt_tensor **out)
{
    const struct pw_ctx *c = ctx;
    return rt_pairwise(in[0], c->kind, c->eps, out);
}

static void pw_ref(const double *x, int n, enum rt_pairwise kind, double eps, double *out)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dot = 0, ni = 0, nj = 0;
            for (int k = 0; k < D; k++) {
                dot += x[i * D + k] * x[j * D + k];
                ni += x[i * D + k] * x[i * D + k];
                nj += x[j * D + k] * x[j * D + k];
            }
            double v = dot;
            if (kind == RT_PAIR_COSINE)
                v = dot / ((sqrt(ni) + eps) * (sqrt(nj) + eps));
            if (kind == RT_PAIR_DISTANCE)
                v = i == j ? 0 : sqrt(fmax(ni + nj - 2 * dot, eps));
            out[i * n + j] = v;
        }
}

static const char *name_of(enum rt_pairwise k)
{
    return k == RT_PAIR_GRAM ? "gram" : k == RT_PAIR_COSINE ? "cosine" : "distance";
}

static void test_pairwise_values_and_grads(void)
{
    const struct pw_ctx cases[] = {{RT_PAIR_GRAM, 0}, {RT_PAIR_COSINE, 1e-7}, {RT_PAIR_COSINE, 0.5},
                                   {RT_PAIR_DISTANCE, 1e-12}, {RT_PAIR_DISTANCE, 0.3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct pw_ctx ctx = cases[c];
        struct rt_tensor *x = h_rand(RT_F64, 2, H_SHAPE(N, D), -1, 1, 60 + c), *y = NULL;
        double *xv = h_values(x), want[N * N];
        pw_ref(xv, N, ctx.kind, ctx.eps, want);
        if (CHECK_OK(rt_pairwise(x, ctx.kind, ctx.eps, &y))) {
            CHECK(y->ndim == 2 && y->shape[0] == N && y->shape[1] == N, "shape (N, N)");
            CHECK_TENSOR_VALUES(y, want, N * N, 1e-12, 1e-12);
        }
        char what[48];
        snprintf(what, sizeof what, "%s eps=%g", name_of(ctx.kind), ctx.eps);
        CHECK(GRADCHECK(what, f_pw, &ctx, 1, IN(x), GC_STRIDED), "%s", what);
        free(xv);
        RELEASE(x, y);
    }
}

/* rows 1 and 2 equal: their distance sits at the clamp, where no gradient flows (clamp's gradient is
 * 0 below its bound, as in torch). Gradient of sum(d) against its closed form: for x_i,
 * sum over live pairs j of 2 (x_i - x_j) / d_ij, finite everywhere. */
static void test_distance_clamped_pair(void)
{
    double v[N * D];
    for (int i = 0; i < N * D; i++)
        v[i] = 0.1 * ((i * 7) % 11) - 0.4;
    for (int k = 0; k < D; k++)
        v[2 * D + k] = v[1 * D + k];
    struct rt_tensor *x = h_tensor(RT_F64, 2, H_SHAPE(N, D), v), *y = NULL, *l = NULL;
    REQUIRE_OK(rt_requires_grad_(x, true));
    if (CHECK_OK(rt_pairwise(x, RT_PAIR_DISTANCE, 1e-12, &y)) && CHECK_OK(rt_sum_all(y, &l)) &&
        CHECK_OK(rt_backward(l, NULL, false))) {
        double *yv = h_values(y), want[N * D] = {0};
        CHECK(fabs(yv[1 * N + 2] - 1e-6) < 1e-12, "equal rows: sqrt(eps), got %g", yv[1 * N + 2]);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double d2 = 0;
                for (int k = 0; k < D; k++)
                    d2 += (v[i * D + k] - v[j * D + k]) * (v[i * D + k] - v[j * D + k]);
                if (i == j || d2 <= 1e-12)
                    continue;
                for (int k = 0; k < D; k++)
                    want[i * D + k] += 2 * (v[i * D + k] - v[j * D + k]) / sqrt(d2);
            }
        CHECK_TENSOR_VALUES(x->grad, want, N * D, 1e-9, 1e-9);
        free(yv);
    }
    RELEASE(x, y, l);
}

static void test_pairwise_f32(void)
{
    struct rt_tensor *x64 = h_rand(RT_F64, 2, H_SHAPE(N, D), -1, 1, 9), *x32 = NULL, *a = NULL, *b = NULL;
    REQUIRE_OK(rt_to_dtype(x64, RT_F32, &x32));
    for (int k = 0; k < 3; k++) {
        if (CHECK_OK(rt_pairwise(x64, (enum rt_pairwise)k, 1e-7, &a)) &&
            CHECK_OK(rt_pairwise(x32, (enum rt_pairwise)k, 1e-7, &b)))
            CHECK_TENSOR_CLOSE(b, a, 1e-5, 1e-5);
        RELEASE(a, b);
        a = b = NULL;
    }
    RELEASE(x64, x32);
}

static void test_pairwise_errors(void)
{
    struct rt_tensor *x3 = h_rand(RT_F32, 3, H_SHAPE(2, 3, 4), -1, 1, 1), *x = h_rand(RT_F32, 2, H_SHAPE(2, 3), -1, 1, 2);
    const double iv[4] = {1, 2, 3, 4};
    struct rt_tensor *i64 = h_tensor(RT_I64, 2, H_SHAPE(2, 2), iv), *out = NULL;
    int64_t live = rt_tensor_live_count();
    CHECK_STATUS(rt_pairwise(x3, RT_PAIR_GRAM, 0, &out), RT_ERR_SHAPE, "x must be (batch, features), got (2,3,4)");
    CHECK_STATUS(rt_pairwise(i64, RT_PAIR_GRAM, 0, &out), RT_ERR_DTYPE, "x must be a float tensor");
    CHECK_STATUS(rt_pairwise(x, RT_PAIR_DISTANCE, -1, &out), RT_ERR_ARG, "eps must be a finite number >= 0, got -1");
    CHECK_STATUS(rt_pairwise(x, (enum rt_pairwise)7, 0, &out), RT_ERR_ARG, "unknown kind 7");
    CHECK(out == NULL, "no output on error");
    CHECK(rt_tensor_live_count() == live, "no leak on error paths");
    RELEASE(x3, x, i64);
}

int main(void)
{
    RUN(test_pairwise_values_and_grads);
    RUN(test_distance_clamped_pair);
    RUN(test_pairwise_f32);
    RUN(test_pairwise_errors);
    return h_finish();
}
