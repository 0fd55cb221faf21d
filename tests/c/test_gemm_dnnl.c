/* The CPU's two f32 GEMM paths, oneDNN's matmul (cpu_gemm_dnnl.c) and OpenBLAS (cpu_gemm.c), chosen
 * by RETORT_CPU_GEMM, through the backend kernel itself on random geometries: either operand
 * transposed, leading dimensions wider than the matrix, batches with their own strides or a batch
 * stride of 0 (one matrix shared by every product), alpha and beta other than 1 and 0, C full of NaN
 * under beta = 0 (it must be overwritten, not scaled), k = 0, and single rows and columns. Each path's
 * C is compared with a naive loop in double over the same f32 inputs, on 1 and 2 threads, with
 * padding around C checked untouched. Then matmul and linear through the public API on each path,
 * including their gradients. Exits 77 (CTest: skipped) when retort was built without oneDNN. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "harness.h"

static uint64_t seed_state = 0x6e3317;

static int64_t pick(int64_t lo, int64_t hi) { return lo + (int64_t)(h_uniform(&seed_state) * (double)(hi - lo + 1)); }

struct gemm_case {
    bool ta, tb;
    int64_t m, n, k, batch, lda, ldb, ldc, sa, sb, sc;
    double alpha, beta;
};

/* a random geometry: leading dimensions padded by 0..3, batch strides padded or 0 (shared operand) */
static struct gemm_case random_case(void)
{
    static const double alphas[] = {1, 1, -0.5, 2}, betas[] = {0, 0, 1, 0.3};
    struct gemm_case g;
    g.ta = pick(0, 1), g.tb = pick(0, 1);
    g.m = pick(1, 70), g.n = pick(1, 70), g.k = pick(0, 90), g.batch = pick(1, 3);
    if (pick(0, 3) == 0) /* a product big enough for the auto path to take oneDNN */
        g.m = pick(60, 130), g.n = pick(60, 130), g.k = pick(60, 130);
    g.lda = (g.ta ? g.m : g.k) + pick(0, 3), g.ldb = (g.tb ? g.k : g.n) + pick(0, 3), g.ldc = g.n + pick(0, 3);
    int64_t rows_a = g.ta ? g.k : g.m, rows_b = g.tb ? g.n : g.k;
    g.sa = g.batch > 1 && pick(0, 2) == 0 ? 0 : rows_a * g.lda + pick(0, 5);
    g.sb = g.batch > 1 && pick(0, 2) == 0 ? 0 : rows_b * g.ldb + pick(0, 5);
    g.sc = g.m * g.ldc + pick(0, 5);
    g.alpha = alphas[pick(0, 3)], g.beta = betas[pick(0, 3)];
    return g;
}

static float *random_floats(int64_t n)
{
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; v && i < n; i++)
        v[i] = (float)(2 * h_uniform(&seed_state) - 1);
    return v;
}

static double at(const float *x, bool trans, int64_t ld, int64_t r, int64_t c)
{
    return trans ? x[c * ld + r] : x[r * ld + c];
}

/* one case on path `path`: C from the kernel against the naive product; false after a failure */
static bool check_case(const struct gemm_case *g, const char *path)
{
    int64_t rows_a = g->ta ? g->k : g->m, rows_b = g->tb ? g->n : g->k;
    int64_t na = (g->batch - 1) * g->sa + rows_a * g->lda, nb = (g->batch - 1) * g->sb + rows_b * g->ldb;
    int64_t nc = (g->batch - 1) * g->sc + g->m * g->ldc;
    float *a = random_floats(na), *b = random_floats(nb), *c = random_floats(nc), *c0 = malloc((size_t)nc * 4);
    bool ok = a && b && c && c0;
    if (!ok)
        goto done;
    for (int64_t bi = 0; bi < g->batch; bi++) /* NaN in C where beta = 0 must not survive */
        for (int64_t i = 0; g->beta == 0 && i < g->m; i++)
            c[bi * g->sc + i * g->ldc] = NAN;
    memcpy(c0, c, (size_t)nc * 4);
    setenv("RETORT_CPU_GEMM", path, 1);
    ok = CHECK_OK(rt_cpu_gemm(RT_F32, g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda, g->sa, b, g->ldb, g->sb,
                              g->beta, c, g->ldc, g->sc, g->batch));
    for (int64_t bi = 0; ok && bi < g->batch; bi++)
        for (int64_t i = 0; ok && i < g->m; i++)
            for (int64_t j = 0; ok && j < g->ldc; j++) {
                int64_t e = bi * g->sc + i * g->ldc + j;
                if (j >= g->n) { /* padding of C */
                    ok = CHECK(memcmp(&c[e], &c0[e], 4) == 0, "%s: C's padding at (%lld,%lld,%lld) was written", path,
                               (long long)bi, (long long)i, (long long)j);
                    continue;
                }
                double acc = 0, sum_abs = 0;
                for (int64_t l = 0; l < g->k; l++) {
                    double p = at(a + bi * g->sa, g->ta, g->lda, i, l) * at(b + bi * g->sb, g->tb, g->ldb, l, j);
                    acc += p, sum_abs += fabs(p);
                }
                double kept = g->beta == 0 ? 0 : g->beta * c0[e]; /* C's NaNs drop out under beta = 0 */
                double want = g->alpha * acc + kept, tol = 1e-5 * (fabs(g->alpha) * sum_abs + fabs(kept)) + 1e-6;
                ok = CHECK(fabs(c[e] - want) <= tol,
                           "%s: ta=%d tb=%d m=%lld n=%lld k=%lld batch=%lld alpha=%g beta=%g: C(%lld,%lld,%lld) = %.8g, "
                           "expected %.8g", path, g->ta, g->tb, (long long)g->m, (long long)g->n, (long long)g->k,
                           (long long)g->batch, g->alpha, g->beta, (long long)bi, (long long)i, (long long)j, c[e],
                           want);
            }
done:
    free(a), free(b), free(c), free(c0);
    return ok;
}

static void test_random_geometries(void)
{
    const char *paths[] = {"dnnl", "openblas", "auto"};
    for (int threads = 1; threads <= 2; threads++) {
        rt_set_num_threads(threads);
        for (int t = 0; t < 60; t++) {
            struct gemm_case g = random_case();
            bool ok = true;
            for (int p = 0; p < 3 && ok; p++)
                ok = check_case(&g, paths[p]);
            if (!ok)
                break;
        }
    }
    setenv("RETORT_CPU_GEMM", "auto", 1);
}

/* The MLP teacher's products (forward, and both gradients), each twice (the second reuses the cached
 * primitive with new data) */
static void test_mlp_shapes(void)
{
    const int64_t sizes[][2] = {{784, 1200}, {1200, 1200}, {1200, 10}};
    for (int s = 0; s < 3; s++)
        for (int rep = 0; rep < 2; rep++) {
            int64_t in = sizes[s][0], out = sizes[s][1];
            struct gemm_case fwd = {false, false, 128, out, in, 1, in, out, out, 0, 0, 0, 1, 0};
            struct gemm_case gw = {true, false, in, out, 128, 1, in, out, out, 0, 0, 0, 1, rep ? 1 : 0};
            struct gemm_case gx = {false, true, 128, in, out, 1, out, out, in, 0, 0, 0, 1, 0};
            if (!check_case(&fwd, "dnnl") || !check_case(&gw, "dnnl") || !check_case(&gx, "dnnl"))
                return;
        }
    setenv("RETORT_CPU_GEMM", "auto", 1);
}

/* matmul (a batch against one shared matrix) and linear with their gradients: the oneDNN path against OpenBLAS */
static void test_public_ops(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 3, H_SHAPE(3, 70, 90), -1, 1, 1), *w = h_rand(RT_F32, 2, H_SHAPE(90, 80), -1, 1, 2);
    struct rt_tensor *lw = h_rand(RT_F32, 2, H_SHAPE(64, 90), -1, 1, 3), *lb = h_rand(RT_F32, 1, H_SHAPE(64), -1, 1, 4);
    struct rt_tensor *lx = h_rand(RT_F32, 2, H_SHAPE(200, 90), -1, 1, 5);
    struct rt_tensor *y[2][2] = {{NULL}}, *g[2][4] = {{NULL}};
    const char *paths[] = {"dnnl", "openblas"};
    REQUIRE_OK(rt_requires_grad_(x, true));
    REQUIRE_OK(rt_requires_grad_(w, true));
    REQUIRE_OK(rt_requires_grad_(lw, true));
    REQUIRE_OK(rt_requires_grad_(lb, true));
    for (int p = 0; p < 2; p++) {
        setenv("RETORT_CPU_GEMM", paths[p], 1);
        rt_tensor_zero_grad(x), rt_tensor_zero_grad(w), rt_tensor_zero_grad(lw), rt_tensor_zero_grad(lb);
        struct rt_tensor *s0 = NULL, *s1 = NULL, *loss = NULL;
        bool ok = CHECK_OK(rt_matmul(x, w, &y[p][0])) && CHECK_OK(rt_linear(lx, lw, lb, &y[p][1])) &&
                  CHECK_OK(rt_sum_all(y[p][0], &s0)) && CHECK_OK(rt_sum_all(y[p][1], &s1)) && CHECK_OK(rt_add(s0, s1, &loss)) &&
                  CHECK_OK(rt_backward(loss, NULL, false));
        RELEASE(s0, s1, loss);
        if (!ok)
            break;
        struct rt_tensor *grads[4] = {x->grad, w->grad, lw->grad, lb->grad};
        for (int i = 0; i < 4; i++)
            rt_tensor_retain(grads[i]), g[p][i] = grads[i];
    }
    if (y[1][1]) {
        CHECK_TENSOR_CLOSE(y[0][0], y[1][0], 1e-5, 1e-5);
        CHECK_TENSOR_CLOSE(y[0][1], y[1][1], 1e-5, 1e-5);
        for (int i = 0; i < 4; i++)
            CHECK_TENSOR_CLOSE(g[0][i], g[1][i], 1e-5, 1e-4);
    }
    setenv("RETORT_CPU_GEMM", "auto", 1);
    RELEASE(x, w, lw, lb, lx, y[0][0], y[0][1], y[1][0], y[1][1]);
    for (int p = 0; p < 2; p++)
        RELEASE(g[p][0], g[p][1], g[p][2], g[p][3]);
}

static void test_bad_setting(void)
{
    struct rt_tensor *a = h_rand(RT_F32, 2, H_SHAPE(4, 5), -1, 1, 1), *b = h_rand(RT_F32, 2, H_SHAPE(5, 6), -1, 1, 2);
    struct rt_tensor *c = NULL;
    setenv("RETORT_CPU_GEMM", "mkl", 1);
    CHECK_STATUS(rt_matmul(a, b, &c), RT_ERR_ARG, "RETORT_CPU_GEMM=mkl: expected openblas, dnnl or auto");
    CHECK(c == NULL, "no output on error");
    setenv("RETORT_CPU_GEMM", "auto", 1);
    RELEASE(a, b, c);
}

/* built without oneDNN: RETORT_CPU_GEMM=dnnl is refused with a message saying so */
static bool have_dnnl(void)
{
    struct rt_tensor *a = h_rand(RT_F32, 2, H_SHAPE(4, 5), -1, 1, 1), *b = h_rand(RT_F32, 2, H_SHAPE(5, 6), -1, 1, 2);
    struct rt_tensor *c = NULL;
    setenv("RETORT_CPU_GEMM", "dnnl", 1);
    enum rt_status st = rt_matmul(a, b, &c);
    bool have = st == RT_OK;
    if (!have && !strstr(rt_error_msg(), "built without oneDNN"))
        fprintf(stderr, "unexpected error: %s\n", rt_error_msg());
    setenv("RETORT_CPU_GEMM", "auto", 1);
    RELEASE(a, b, c);
    return have;
}

int main(void)
{
    if (!have_dnnl()) {
        printf("skipped: retort was built without oneDNN (RETORT_CPU_GEMM=dnnl is refused)\n");
        return 77;
    }
    RUN(test_random_geometries);
    RUN(test_mlp_shapes);
    RUN(test_public_ops);
    RUN(test_bad_setting);
    return h_finish();
}
