/* Benchmark: one training step (forward + backward) of the 784-1200-1200-10 MLP at batch 128
 * through the autograd API, against bare OpenBLAS sgemm running the same eight products in the
 * same process. Prints GFLOP/s of both and their ratio: the share of sgemm throughput the
 * framework keeps (1.0 = no overhead). Not a test: it asserts nothing.
 *   build/bench/bench_mlp_step [threads=2] [iterations=200] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "retort/retort.h"

void openblas_set_num_threads(int num_threads); /* OpenBLAS extension, not in every cblas.h */

#define B 128
static const int64_t sizes[4] = {784, 1200, 1200, 10};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_mlp_step: %s: %s\n", what, rt_error_msg());
    exit(1);
}
#define OK(x) do { if ((x) != RT_OK) die(#x); } while (0)

static double step_flops(void)
{
    double f = 0;
    for (int l = 0; l < 3; l++) {
        double gemm = 2.0 * B * (double)sizes[l] * (double)sizes[l + 1];
        f += gemm * (l == 0 ? 2 : 3); /* forward, dW, and dX except for the input layer */
    }
    return f;
}

struct mlp { struct rt_tensor *w[3], *b[3]; };

static void init(struct mlp *m)
{
    for (int l = 0; l < 3; l++) {
        int64_t ws[2] = {sizes[l + 1], sizes[l]};
        OK(rt_tensor_new(RT_F32, RT_CPU, 2, ws, &m->w[l]));
        OK(rt_normal_(m->w[l], NULL, 0.0, 0.03));
        OK(rt_tensor_new(RT_F32, RT_CPU, 1, &ws[0], &m->b[l]));
        OK(rt_requires_grad_(m->w[l], true));
        OK(rt_requires_grad_(m->b[l], true));
    }
}

/* Cross-entropy of the MLP on (x, y), backward included. */
static void step(struct mlp *m, struct rt_tensor *x, struct rt_tensor *y)
{
    struct rt_tensor *h = x, *t;
    rt_tensor_retain(h);
    for (int l = 0; l < 3; l++) {
        OK(rt_linear(h, m->w[l], m->b[l], &t));
        rt_tensor_release(h);
        h = t;
        if (l < 2) {
            OK(rt_relu(h, &t));
            rt_tensor_release(h);
            h = t;
        }
    }
    struct rt_tensor *lp, *picked, *loss, *nll;
    OK(rt_log_softmax(h, 1, 1.0, &lp));
    OK(rt_gather(lp, 1, y, &picked));
    OK(rt_mean_all(picked, &loss));
    OK(rt_neg(loss, &nll));
    for (int l = 0; l < 3; l++) {
        rt_tensor_zero_grad(m->w[l]);
        rt_tensor_zero_grad(m->b[l]);
    }
    OK(rt_backward(nll, NULL, false));
    rt_tensor_release(h);
    rt_tensor_release(lp);
    rt_tensor_release(picked);
    rt_tensor_release(loss);
    rt_tensor_release(nll);
}

/* Lets the idle workers of the pool that just ran go to sleep, so each side has the cores to itself. */
static void settle(void) { nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL); }

/* The same eight products with bare sgemm on preallocated buffers, called the fastest way we know:
 * outputs cleared with memset and accumulated with beta = 1 (OpenBLAS's beta = 0 pass is slower). */
static void sgemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a, int lda,
                  const float *b, int ldb, float *c, int ldc)
{
    memset(c, 0, (size_t)m * (size_t)n * sizeof *c);
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c, ldc);
}

static void sgemm_step(float **w, float **act, float **gact, float **gw)
{
    for (int l = 0; l < 3; l++) /* forward: act[l+1] = act[l] W^T */
        sgemm(CblasNoTrans, CblasTrans, B, (int)sizes[l + 1], (int)sizes[l], act[l], (int)sizes[l], w[l],
              (int)sizes[l], act[l + 1], (int)sizes[l + 1]);
    for (int l = 2; l >= 0; l--) {
        sgemm(CblasTrans, CblasNoTrans, (int)sizes[l + 1], (int)sizes[l], B, gact[l + 1], (int)sizes[l + 1], act[l],
              (int)sizes[l], gw[l], (int)sizes[l]);
        if (l > 0)
            sgemm(CblasNoTrans, CblasNoTrans, B, (int)sizes[l], (int)sizes[l + 1], gact[l + 1], (int)sizes[l + 1],
                  w[l], (int)sizes[l], gact[l], (int)sizes[l]);
    }
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, iters = argc > 2 ? atoi(argv[2]) : 200;
    rt_set_num_threads(threads);
    rt_manual_seed(1);
    struct mlp m;
    init(&m);
    int64_t xs[2] = {B, sizes[0]}, ys[2] = {B, 1};
    struct rt_tensor *x, *y;
    OK(rt_tensor_new(RT_F32, RT_CPU, 2, xs, &x));
    OK(rt_normal_(x, NULL, 0.0, 1.0));
    OK(rt_randint(0, 10, 2, ys, NULL, &y));

    float *w[3], *act[4], *gact[4], *gw[3];
    for (int l = 0; l < 4; l++) {
        act[l] = calloc((size_t)(B * sizes[l]), sizeof(float));
        gact[l] = calloc((size_t)(B * sizes[l]), sizeof(float));
        if (l < 3) {
            w[l] = calloc((size_t)(sizes[l] * sizes[l + 1]), sizeof(float));
            gw[l] = calloc((size_t)(sizes[l] * sizes[l + 1]), sizeof(float));
        }
    }
    double flops = step_flops(), best_rt = 1e9, best_blas = 1e9;
    for (int round = 0; round < 5; round++) { /* alternate to share any machine noise fairly */
        double t0 = now();
        for (int i = 0; i < iters / 5; i++)
            step(&m, x, y); /* retort runs OpenBLAS on one thread per tile of its OpenMP team */
        double t1 = now();
        settle();
        openblas_set_num_threads(threads); /* the reference: OpenBLAS's own thread pool */
        double t2 = now();
        for (int i = 0; i < iters / 5; i++)
            sgemm_step(w, act, gact, gw);
        double t3 = now();
        settle();
        if (round > 0) { /* round 0 warms caches and thread pools */
            best_rt = (t1 - t0) < best_rt ? (t1 - t0) : best_rt;
            best_blas = (t3 - t2) < best_blas ? (t3 - t2) : best_blas;
        }
    }
    int per = iters / 5;
    double g_rt = flops * per / best_rt / 1e9, g_blas = flops * per / best_blas / 1e9;
    printf("MLP 784-1200-1200-10, batch %d, %d threads, %.3f GFLOP per step\n", B, threads, flops / 1e9);
    printf("  retort autograd step : %7.3f ms  %6.1f GFLOP/s  (%.0f examples/s)\n", best_rt / per * 1e3, g_rt,
           B * per / best_rt);
    printf("  bare sgemm, same GEMMs: %7.3f ms  %6.1f GFLOP/s\n", best_blas / per * 1e3, g_blas);
    printf("  ratio (retort / sgemm): %.3f\n", g_rt / g_blas);
    for (int l = 0; l < 4; l++) {
        free(act[l]);
        free(gact[l]);
        if (l < 3) {
            free(w[l]);
            free(gw[l]);
            rt_tensor_release(m.w[l]);
            rt_tensor_release(m.b[l]);
        }
    }
    rt_tensor_release(x);
    rt_tensor_release(y);
    return 0;
}
