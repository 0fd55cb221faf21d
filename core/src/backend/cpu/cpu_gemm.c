/* Matrix products: f32/f64 through OpenBLAS (row-major CBLAS), integers through a plain loop.
 * Arguments are checked here rather than by BLAS, whose xerbla would print to stderr. */
#include <limits.h>
#include <cblas.h>

#include "backend/cpu/cpu_internal.h"

/* OpenBLAS extensions; declared here too in case another cblas.h lacks them. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* Small products (and N <= 16, e.g. a 10-class output layer) run several times slower on
 * OpenBLAS's thread pool than on one thread: the fork/join dominates. */
static bool gemm_is_small(int64_t m, int64_t n, int64_t k)
{
    return (double)m * (double)n * (double)k < 64.0 * 64.0 * 64.0 || n <= 16;
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

    /* Only touch OpenBLAS's thread count when it would change: the call is not free. */
    int saved = -1;
    if (gemm_is_small(m, n, k)) {
        int cur = openblas_get_num_threads();
        if (cur != 1) {
            openblas_set_num_threads(1);
            saved = cur;
        }
    }
    enum CBLAS_TRANSPOSE tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
    for (int64_t bi = 0; bi < batch; bi++) {
        if (dt == RT_F32)
            cblas_sgemm(CblasRowMajor, tra, trb, (int)m, (int)n, (int)k, (float)alpha, (const float *)a + bi * stride_a,
                        (int)lda, (const float *)b + bi * stride_b, (int)ldb, (float)beta,
                        (float *)c + bi * stride_c, (int)ldc);
        else
            cblas_dgemm(CblasRowMajor, tra, trb, (int)m, (int)n, (int)k, alpha, (const double *)a + bi * stride_a,
                        (int)lda, (const double *)b + bi * stride_b, (int)ldb, beta, (double *)c + bi * stride_c,
                        (int)ldc);
    }
    if (saved > 0)
        openblas_set_num_threads(saved);
    return RT_OK;
}
