/* Matrix products: f32 through oneDNN's matmul (cpu_gemm_dnnl.c) or OpenBLAS, f64 through OpenBLAS
 * (row-major CBLAS), integers through a plain loop. Arguments are checked here rather than by BLAS,
 * whose xerbla would print to stderr.
 *
 * RETORT_CPU_GEMM=openblas|dnnl|auto picks the f32 path (read on each call, so a test can switch;
 * unset is auto). auto takes oneDNN for every f32 product but the small ones and those called from
 * inside a parallel region (a oneDNN primitive runs one call at a time). Measured on the AMD EPYC
 * (Zen 5) of the test machine, 2 threads, whose environment pins OpenBLAS to its AVX2 kernels
 * (OPENBLAS_CORETYPE=Haswell): the MLP teacher's eight GEMMs inside its training step at 405 GFLOP/s
 * against 215 for bare OpenBLAS (369 with OpenBLAS choosing its AVX-512 kernels), and whole steps
 * 1.7-1.8x faster (tests/bench/bench_train.lua, bench_mlp_step.c). The small-product cut: one
 * product on 2 threads, oneDNN against OpenBLAS, 32^3 2.1 against 1.4 us, 64^3 3.2 against 4.4 us,
 * 128x128x128 11.6 against 22.7 us.
 *
 * OpenBLAS always runs single-threaded here, on tiles of C handed out by our OpenMP team, so the
 * process has one thread pool. With OpenBLAS's own pool as well, the two pools steal each other's
 * cores between a GEMM and the element-wise loops around it, unless idle workers sleep at once
 * (OMP_WAIT_POLICY=PASSIVE), which makes every hand-over a wake-up. Measured on 2 cores: the
 * MLP teacher's training step went from 1.14x to 1.26x PyTorch's examples/s (tests/bench). */
#include <limits.h>
#include <cblas.h>
#include <omp.h>

#include "backend/cpu/cpu_dnnl.h"

/* OpenBLAS extensions; declared here too in case another cblas.h lacks them. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* Below ~64^3 multiply-adds in all (every product of a batch together) a second thread saves less
 * than the fork/join costs. */
static bool gemm_is_small(int64_t m, int64_t n, int64_t k, int64_t batch)
{
    return (double)m * (double)n * (double)k * (double)batch < 64.0 * 64.0 * 64.0;
}

enum gemm_path { PATH_OPENBLAS, PATH_DNNL };

static enum rt_status gemm_path(int64_t m, int64_t n, int64_t k, int64_t batch, enum gemm_path *path)
{
    enum rt_cpu_path setting;
    enum rt_status st = rt_cpu_path_setting("rt_matmul", "RETORT_CPU_GEMM", "openblas", &setting);
    *path = PATH_OPENBLAS;
#ifdef RETORT_HAVE_DNNL
    if (st == RT_OK && (setting == RT_CPU_PATH_DNNL ||
                        (setting == RT_CPU_PATH_AUTO && !omp_in_parallel() && !gemm_is_small(m, n, k, batch))))
        *path = PATH_DNNL;
#else
    (void)m, (void)n, (void)k, (void)batch, (void)setting;
#endif
    return st;
}

/* Integer fallback (no BLAS for integers): exact wrapping int64 accumulation; alpha/beta other than
 * (1, 0) go through double. */
#define DEF_GEMM_INT(SUF, T)                                                                                      \
    static void gemm_##SUF(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const T *a,          \
                           int64_t lda, const T *b, int64_t ldb, double beta, T *c, int64_t ldc)                  \
    {                                                                                                             \
        int64_t work = m * n * k;                                                                                 \
        _Pragma("omp parallel for if (work >= RT_CPU_PARALLEL_MIN) schedule(static)")                            \
        for (int64_t i = 0; i < m; i++)                                                                           \
            for (int64_t j = 0; j < n; j++) {                                                                     \
                int64_t acc = 0;                                                                                  \
                for (int64_t l = 0; l < k; l++) {                                                                 \
                    int64_t av = ta ? a[l * lda + i] : a[i * lda + l];                                            \
                    int64_t bv = tb ? b[j * ldb + l] : b[l * ldb + j];                                            \
                    acc = RT_CPU_WADD(acc, RT_CPU_WMUL(av, bv));                                                  \
                }                                                                                                 \
                T *cp = &c[i * ldc + j];                                                                          \
                if (alpha == 1 && beta == 0)                                                                      \
                    *cp = (T)acc;                                                                                 \
                else                                                                                              \
                    *cp = RT_CPU_CVT(T, alpha * (double)acc + (beta == 0 ? 0.0 : beta * (double)*cp));           \
            }                                                                                                     \
    }
DEF_GEMM_INT(i64, int64_t)
DEF_GEMM_INT(u8, uint8_t)

/* k == 0: the product is empty, so C = beta * C (and exactly 0 when beta == 0, ignoring NaNs in C). */
static void scale_c(enum rt_dtype dt, int64_t m, int64_t n, double beta, void *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t e = i * ldc + j;
            switch (dt) {
            case RT_F32: ((float *)c)[e] = beta == 0 ? 0.0f : (float)(beta * ((float *)c)[e]); break;
            case RT_F64: ((double *)c)[e] = beta == 0 ? 0.0 : beta * ((double *)c)[e]; break;
            case RT_I64: ((int64_t *)c)[e] = beta == 0 ? 0 : RT_CPU_TO_I64(beta * (double)((int64_t *)c)[e]); break;
            default: ((uint8_t *)c)[e] = beta == 0 ? 0 : RT_CPU_TO_U8(beta * (double)((uint8_t *)c)[e]); break;
            }
        }
}

/* One float GEMM call of rt_cpu_gemm, and the single-threaded BLAS call on a tile of it. */
struct gemm_call {
    bool f64, ta, tb;
    int64_t m, n, k;
    double alpha;
    const void *a;
    int64_t lda, stride_a;
    const void *b;
    int64_t ldb, stride_b;
    double beta;
    void *c;
    int64_t ldc, stride_c;
};

/* Rows [r0, r1) and columns [c0, c1) of product bi: op(A)'s rows r0.. and op(B)'s columns c0.. */
static void gemm_tile(const struct gemm_call *g, int64_t bi, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    int64_t a_off = bi * g->stride_a + (g->ta ? r0 : r0 * g->lda);
    int64_t b_off = bi * g->stride_b + (g->tb ? c0 * g->ldb : c0);
    int64_t c_off = bi * g->stride_c + r0 * g->ldc + c0;
    double beta = g->beta;
    if (beta == 0) { /* clear the tile and let BLAS add: memset is faster than OpenBLAS's beta = 0 pass */
        size_t es = g->f64 ? sizeof(double) : sizeof(float), row = (size_t)(c1 - c0) * es;
        char *c = (char *)g->c + (size_t)c_off * es;
        if (c1 - c0 == g->ldc)
            memset(c, 0, row * (size_t)(r1 - r0));
        else
            for (int64_t i = r0; i < r1; i++, c += (size_t)g->ldc * es)
                memset(c, 0, row);
        beta = 1;
    }
    enum CBLAS_TRANSPOSE tra = g->ta ? CblasTrans : CblasNoTrans, trb = g->tb ? CblasTrans : CblasNoTrans;
    if (g->f64)
        cblas_dgemm(CblasRowMajor, tra, trb, (int)(r1 - r0), (int)(c1 - c0), (int)g->k, g->alpha,
                    (const double *)g->a + a_off, (int)g->lda, (const double *)g->b + b_off, (int)g->ldb, beta,
                    (double *)g->c + c_off, (int)g->ldc);
    else
        cblas_sgemm(CblasRowMajor, tra, trb, (int)(r1 - r0), (int)(c1 - c0), (int)g->k, (float)g->alpha,
                    (const float *)g->a + a_off, (int)g->lda, (const float *)g->b + b_off, (int)g->ldb,
                    (float)beta, (float *)g->c + c_off, (int)g->ldc);
}

enum rt_status rt_cpu_gemm(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                           const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                           int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    bool empty;
    enum rt_status st = rt_backend_gemm_args(dt, ta, tb, m, n, k, batch, &lda, &ldb, &ldc, &empty);
    if (st != RT_OK || empty)
        return st;
    size_t es = rt_dtype_size(dt);
    if (k == 0) {
        for (int64_t bi = 0; bi < batch; bi++)
            scale_c(dt, m, n, beta, (char *)c + bi * stride_c * (int64_t)es, ldc);
        return RT_OK;
    }

    if (dt == RT_I64 || dt == RT_U8) {
        for (int64_t bi = 0; bi < batch; bi++) {
            if (dt == RT_I64)
                gemm_i64(ta, tb, m, n, k, alpha, (const int64_t *)a + bi * stride_a, lda,
                         (const int64_t *)b + bi * stride_b, ldb, beta, (int64_t *)c + bi * stride_c, ldc);
            else
                gemm_u8(ta, tb, m, n, k, alpha, (const uint8_t *)a + bi * stride_a, lda,
                        (const uint8_t *)b + bi * stride_b, ldb, beta, (uint8_t *)c + bi * stride_c, ldc);
        }
        return RT_OK;
    }

    if (dt == RT_F32) {
        enum gemm_path path;
        st = gemm_path(m, n, k, batch, &path);
        if (st != RT_OK)
            return st;
#ifdef RETORT_HAVE_DNNL
        if (path == PATH_DNNL)
            return rt_cpu_dnnl_gemm(false, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                                    stride_c, batch);
#endif
    }

    /* Reading OpenBLAS's thread count is a load of a global; setting it only happens once. */
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
    struct gemm_call g = {dt == RT_F64, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc,
                          stride_c};
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads <= 1 || gemm_is_small(m, n, k, batch)) {
        for (int64_t bi = 0; bi < batch; bi++)
            gemm_tile(&g, bi, 0, m, 0, n);
    } else if (batch >= threads) {
        _Pragma("omp parallel for schedule(static)")
        for (int64_t bi = 0; bi < batch; bi++)
            gemm_tile(&g, bi, 0, m, 0, n);
    } else {
        /* Split C into one tile per thread along the longer side: every tile packs the whole of
         * the operand it shares, so share the smaller one (A when m <= n). Column tiles start on
         * 64-byte boundaries of a row. */
        bool by_cols = m <= n;
        int64_t len = by_cols ? n : m, align = by_cols ? 64 / (int64_t)es : 8;
        int64_t step = ((len + threads - 1) / threads + align - 1) / align * align;
        int64_t tiles = (len + step - 1) / step;
        _Pragma("omp parallel for collapse(2) schedule(static)")
        for (int64_t bi = 0; bi < batch; bi++)
            for (int64_t t = 0; t < tiles; t++) {
                int64_t lo = t * step, hi = lo + step < len ? lo + step : len;
                if (by_cols)
                    gemm_tile(&g, bi, 0, m, lo, hi);
                else
                    gemm_tile(&g, bi, lo, hi, 0, n);
            }
    }
    return RT_OK;
}
