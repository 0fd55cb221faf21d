/* The CUDA simulator's cuBLAS and cuBLASLt (RETORT_CUDA=SIM): the calls the backend makes, checked
 * as the libraries check them (sizes, leading dimensions, operands in device memory) and computed by
 * OpenBLAS in column-major order. */
#include <cublasLt.h>
#include <cublas_v2.h>

#include <limits.h>
#include <string.h>

#include <type_traits>
#include <vector>

#include <cblas.h>

#include "sim_internal.h"

using rt_sim::device_addressable;
using rt_sim::report;

/* --- cuBLAS --- */

struct rt_sim_cublas {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new rt_sim_cublas();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
        RT_SIM_CASE_NAME(CUBLAS_STATUS_SUCCESS)
        RT_SIM_CASE_NAME(CUBLAS_STATUS_NOT_INITIALIZED)
        RT_SIM_CASE_NAME(CUBLAS_STATUS_ALLOC_FAILED)
        RT_SIM_CASE_NAME(CUBLAS_STATUS_INVALID_VALUE)
        RT_SIM_CASE_NAME(CUBLAS_STATUS_EXECUTION_FAILED)
        RT_SIM_CASE_NAME(CUBLAS_STATUS_NOT_SUPPORTED)
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

namespace {

/* Elements a column-major rows x cols operand with leading dimension ld spans. */
size_t span(int rows, int cols, int ld) { return rows == 0 || cols == 0 ? 0 : (size_t)(cols - 1) * ld + rows; }

/* n bf16 values at src as f32 (exact: bf16 is f32's upper half) */
void widen_bf16(const void *src, size_t n, std::vector<float> &dst)
{
    const uint16_t *p = (const uint16_t *)src;
    dst.resize(n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[i] << 16;
        memcpy(&dst[i], &u, sizeof u);
    }
}

/* Whether operand `name` of `call`, [p, p + bytes), is device memory (nothing to check when bytes is 0);
 * the simulator says so when it is not. */
bool operand_on_device(const char *call, const char *name, const void *p, size_t bytes)
{
    if (bytes == 0 || device_addressable(p, bytes))
        return true;
    report("%s: operand %s (%p, %zu bytes) is not device memory", call, name, p, bytes);
    return false;
}

/* cuBLAS's argument checks, and each operand's extent (bytes: es gives A's, B's and C's element
 * sizes) in device memory. *elems_ab (may be NULL) gets the elements one batch of A and of B spans. */
cublasStatus_t gemm_checked(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *a, int lda, long long sa, const void *b, int ldb, long long sb, void *c,
                            int ldc, long long sc, int batch, const size_t es[3], size_t *elems_ab = nullptr)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
        ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0 || batch == 0)
        return CUBLAS_STATUS_SUCCESS;
    struct {
        const void *p;
        size_t elems;
        const char *name;
    } ops[3] = {{a, k ? span(ar, ac, lda) : 0, "A"}, {b, k ? span(br, bc, ldb) : 0, "B"}, {c, span(m, n, ldc), "C"}};
    if (elems_ab)
        elems_ab[0] = ops[0].elems, elems_ab[1] = ops[1].elems;
    long long strides[3] = {sa, sb, sc};
    for (int i = 0; i < 3; i++) {
        size_t extent = ops[i].elems ? ((size_t)(batch - 1) * (size_t)strides[i] + ops[i].elems) * es[i] : 0;
        if (!operand_on_device("cuBLAS gemm", ops[i].name, ops[i].p, extent))
            return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

CBLAS_TRANSPOSE cblas_op(cublasOperation_t t) { return t == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

void gemm_run(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_run(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double *a, int lda,
              const double *b, int ldb, double beta, double *c, int ldc)
{
    cblas_dgemm(CblasColMajor, cblas_op(ta), cblas_op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
cublasStatus_t gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const T *alpha, const T *a, int lda, long long sa, const T *b, int ldb, long long sb,
                            const T *beta, T *c, int ldc, long long sc, int batch)
{
    const size_t es[3] = {sizeof(T), sizeof(T), sizeof(T)};
    cublasStatus_t s = gemm_checked(h, ta, tb, m, n, k, a, lda, sa, b, ldb, sb, c, ldc, sc, batch, es);
    if (s != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0)
        return s;
    for (int i = 0; i < batch; i++)
        gemm_run(ta, tb, m, n, k, *alpha, a + i * sa, lda, b + i * sb, ldb, *beta, c + i * sc, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                           float *c, int ldc)
{
    return gemm_batched(h, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}
cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const double *alpha, const double *a, int lda, const double *b, int ldb,
                           const double *beta, double *c, int ldc)
{
    return gemm_batched(h, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *a, int lda, long long stride_a,
                                         const float *b, int ldb, long long stride_b, const float *beta, float *c,
                                         int ldc, long long stride_c, int batch)
{
    return gemm_batched(h, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c, batch);
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const double *alpha, const double *a, int lda, long long stride_a,
                                         const double *b, int ldb, long long stride_b, const double *beta, double *c,
                                         int ldc, long long stride_c, int batch)
{
    return gemm_batched(h, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c, batch);
}

/* The mixed-precision product autocast uses: A and B bf16, C f32, f32 scalars and accumulation.
 * Each batch's operands are widened to f32 (exactly) and multiplied by sgemm. */
cublasStatus_t cublasGemmStridedBatchedEx_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                             int64_t m, int64_t n, int64_t k, const void *alpha, const void *a,
                                             cudaDataType a_type, int64_t lda, long long stride_a, const void *b,
                                             cudaDataType b_type, int64_t ldb, long long stride_b, const void *beta,
                                             void *c, cudaDataType c_type, int64_t ldc, long long stride_c,
                                             int64_t batch, cublasComputeType_t compute, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (a_type != CUDA_R_16BF || b_type != CUDA_R_16BF || c_type != CUDA_R_32F || compute != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED; /* the one combination the backend asks for */
    const int64_t lim = INT_MAX; /* sizes past int are the real library's; the simulator computes with int */
    if (m > lim || n > lim || k > lim || lda > lim || ldb > lim || ldc > lim || batch > lim)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const size_t es[3] = {2, 2, 4};
    size_t elems[2] = {0, 0}; /* of one batch of A and of B */
    cublasStatus_t s = gemm_checked(h, ta, tb, (int)m, (int)n, (int)k, a, (int)lda, stride_a, b, (int)ldb, stride_b, c,
                                    (int)ldc, stride_c, (int)batch, es, elems);
    if (s != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0)
        return s;
    std::vector<float> fa, fb;
    for (int64_t i = 0; i < batch; i++) {
        widen_bf16((const uint16_t *)a + i * stride_a, elems[0], fa);
        widen_bf16((const uint16_t *)b + i * stride_b, elems[1], fb);
        gemm_run(ta, tb, (int)m, (int)n, (int)k, *(const float *)alpha, fa.data(), (int)lda, fb.data(), (int)ldb,
                 *(const float *)beta, (float *)c + i * stride_c, (int)ldc);
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* --- cuBLASLt: D = alpha op(A) op(B) + beta C, then the bias epilogue (bias[i] added to row i) --- */

struct cublasLtContext {
    int unused;
};
struct rt_sim_lt_desc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    int32_t transa, transb;
    uint32_t epilogue;
    const void *bias;
};
struct rt_sim_lt_layout {
    cudaDataType_t type;
    uint64_t rows, cols;
    int64_t ld;
};
struct rt_sim_lt_pref {
    uint64_t workspace;
};

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = new cublasLtContext();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale)
{
    *d = new rt_sim_lt_desc{compute, scale, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d)
{
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size)
{
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (size != sizeof(int32_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(attr == CUBLASLT_MATMUL_DESC_TRANSA ? &d->transa : &d->transb, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != sizeof(uint32_t))
            return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->epilogue, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *))
            return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->bias, buf, size);
        return CUBLAS_STATUS_SUCCESS;
    }
    report("cuBLASLt: matmul attribute %d is not simulated", (int)attr);
    return CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld)
{
    if (ld < (int64_t)(rows > 1 ? rows : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    *l = new rt_sim_lt_layout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    *p = new rt_sim_lt_pref{0};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

namespace {

/* Whether the simulator computes this product: f32 or f64 throughout (compute, scale and every
 * layout), or bf16 A and B with f32 for the rest; no epilogue or a bias (of D's type); and the shapes
 * of op(A) (m x k), op(B) (k x n), C and D (m x n). */
bool lt_supported(const rt_sim_lt_desc *d, const rt_sim_lt_layout *a, const rt_sim_lt_layout *b,
                  const rt_sim_lt_layout *c, const rt_sim_lt_layout *dl)
{
    cudaDataType_t t = d->compute == CUBLAS_COMPUTE_32F ? CUDA_R_32F : CUDA_R_64F;
    cudaDataType_t ab = t == CUDA_R_32F && a->type == CUDA_R_16BF ? CUDA_R_16BF : t;
    if ((d->compute != CUBLAS_COMPUTE_32F && d->compute != CUBLAS_COMPUTE_64F) || d->scale != t || a->type != ab ||
        b->type != ab || c->type != t || dl->type != t)
        return false;
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS)
        return false;
    uint64_t m = d->transa == CUBLAS_OP_N ? a->rows : a->cols, k = d->transa == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t kb = d->transb == CUBLAS_OP_N ? b->rows : b->cols, n = d->transb == CUBLAS_OP_N ? b->cols : b->rows;
    return k == kb && c->rows == m && c->cols == n && dl->rows == m && dl->cols == n;
}

/* A and B are T, or bf16 (a->type CUDA_R_16BF, T float): widened to f32 for the product. */
template <typename T>
cublasStatus_t lt_run(const rt_sim_lt_desc *d, T alpha, const void *A, const rt_sim_lt_layout *a, const void *B,
                      const rt_sim_lt_layout *b, T beta, const T *C, const rt_sim_lt_layout *c, T *D,
                      const rt_sim_lt_layout *dl)
{
    size_t ab_size = a->type == CUDA_R_16BF ? 2 : sizeof(T);
    cublasOperation_t ta = (cublasOperation_t)d->transa, tb = (cublasOperation_t)d->transb;
    int m = (int)dl->rows, n = (int)dl->cols, k = (int)(ta == CUBLAS_OP_N ? a->cols : a->rows);
    struct {
        const void *p;
        size_t elems;
        const char *name;
    } ops[5] = {{A, k ? span((int)a->rows, (int)a->cols, (int)a->ld) : 0, "A"},
                {B, k ? span((int)b->rows, (int)b->cols, (int)b->ld) : 0, "B"},
                {C, beta != 0 ? span(m, n, (int)c->ld) : 0, "C"},
                {D, span(m, n, (int)dl->ld), "D"},
                {d->bias, d->epilogue == CUBLASLT_EPILOGUE_BIAS ? (size_t)m : 0, "bias"}};
    for (int i = 0; i < 5; i++)
        if (!operand_on_device("cuBLASLt matmul", ops[i].name, ops[i].p,
                               ops[i].elems * (i < 2 ? ab_size : sizeof(T))))
            return CUBLAS_STATUS_EXECUTION_FAILED;
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    const T *pa = (const T *)A, *pb = (const T *)B;
    std::vector<float> wa, wb;
    if constexpr (std::is_same<T, float>::value) {
        if (a->type == CUDA_R_16BF) {
            widen_bf16(A, ops[0].elems, wa);
            widen_bf16(B, ops[1].elems, wb);
            pa = wa.data(), pb = wb.data();
        }
    }
    if (beta != 0 && C != D)
        for (int j = 0; j < n; j++)
            memmove(D + (size_t)j * dl->ld, C + (size_t)j * c->ld, (size_t)m * sizeof(T));
    gemm_run(ta, tb, m, n, k, alpha, pa, (int)a->ld, pb, (int)b->ld, beta, D, (int)dl->ld);
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
                D[(size_t)j * dl->ld + i] += ((const T *)d->bias)[i];
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t dl, cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *returned)
{
    if (!h || !d || !a || !b || !c || !dl || !p || requested < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    *returned = 0;
    if (!lt_supported(d, a, b, c, dl))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(&results[0], 0, sizeof results[0]);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t dl,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_size,
                              cudaStream_t stream)
{
    (void)algo, (void)workspace, (void)workspace_size, (void)stream;
    if (!h || !d || !a || !b || !c || !dl || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!lt_supported(d, a, b, c, dl))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->compute == CUBLAS_COMPUTE_32F)
        return lt_run(d, *(const float *)alpha, A, a, B, b, *(const float *)beta, (const float *)C, c, (float *)D, dl);
    return lt_run(d, *(const double *)alpha, A, a, B, b, *(const double *)beta, (const double *)C, c, (double *)D, dl);
}
