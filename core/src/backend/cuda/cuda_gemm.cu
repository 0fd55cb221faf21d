/* Matrix products: f32/f64 through cuBLAS (full-precision math, as PyTorch's default), integers
 * through a plain kernel with the CPU backend's wrapping arithmetic, a product plus a bias (Linear)
 * through cuBLASLt's bias epilogue in one call, and bf16 x bf16 -> f32 (autocast's products) on the
 * tensor cores through cublasGemmStridedBatchedEx_64 (C++ overloads the plain name, so its address is
 * ambiguous), accumulated in f32. cuBLAS is column-major: a row-major
 * C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so the operands swap. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "backend/cuda/cuda_kernels.h"

/* cuBLAS is opened when the CUDA context starts, not linked: loading it costs ~150 MB of resident
 * memory (its relocations), which a CPU-only run should not pay. cublas_v2.h maps some names to
 * their _v2 symbols, hence the two-step stringizing. */
#define RT_CUBLAS_SYM_(name) #name
#define RT_CUBLAS_SYM(name) RT_CUBLAS_SYM_(name)
#define RT_CUBLAS_FUNCS(X)                                                                                       \
    X(create, cublasCreate) X(set_stream, cublasSetStream) X(destroy, cublasDestroy)                             \
        X(status_string, cublasGetStatusString) X(sgemm, cublasSgemm) X(sgemm_batched, cublasSgemmStridedBatched) \
            X(dgemm, cublasDgemm) X(dgemm_batched, cublasDgemmStridedBatched)                                    \
                X(gemm_ex_batched, cublasGemmStridedBatchedEx_64)

static struct {
#define RT_CUBLAS_FIELD(field, name) decltype(&name) field;
    RT_CUBLAS_FUNCS(RT_CUBLAS_FIELD)
#undef RT_CUBLAS_FIELD
} cb;
static cublasHandle_t blas;

#define RT_CUBLASLT_FUNCS(X)                                                                                     \
    X(create, cublasLtCreate) X(desc_create, cublasLtMatmulDescCreate) X(desc_destroy, cublasLtMatmulDescDestroy) \
        X(desc_set, cublasLtMatmulDescSetAttribute) X(layout_create, cublasLtMatrixLayoutCreate)                  \
            X(layout_destroy, cublasLtMatrixLayoutDestroy) X(pref_create, cublasLtMatmulPreferenceCreate)         \
                X(pref_destroy, cublasLtMatmulPreferenceDestroy) X(heuristic, cublasLtMatmulAlgoGetHeuristic)     \
                    X(matmul, cublasLtMatmul)

static struct {
#define RT_CUBLAS_FIELD(field, name) decltype(&name) field;
    RT_CUBLASLT_FUNCS(RT_CUBLAS_FIELD)
#undef RT_CUBLAS_FIELD
} lt;
static cublasLtHandle_t lt_handle; /* NULL: no cuBLASLt, products with a bias take two calls */
static cudaStream_t blas_stream;

#ifdef RETORT_CUDA_SIM
/* The simulator's cuBLAS and cuBLASLt are linked in. */
static bool cublas_open(char *why, size_t why_len)
{
    (void)why, (void)why_len;
#define RT_CUBLAS_BIND(field, name) cb.field = &name;
    RT_CUBLAS_FUNCS(RT_CUBLAS_BIND)
#undef RT_CUBLAS_BIND
    return true;
}
static bool cublaslt_open(void)
{
#define RT_CUBLAS_BIND(field, name) lt.field = &name;
    RT_CUBLASLT_FUNCS(RT_CUBLAS_BIND)
#undef RT_CUBLAS_BIND
    return true;
}
#else
/* Opens a library by soname (the executable's run path), then where the build found it; NULL and
 * the first dlerror() in why when neither loads. */
static void *lib_open(const char *soname, char *why, size_t why_len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", RETORT_CUBLAS_DIR, soname);
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, why_len, "%s", dlerror());
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    return lib;
}

#define RT_CUBLAS_LOAD(lib, table, field, name, fail)                                                            \
    if (!(table.field = (decltype(&name))dlsym(lib, RT_CUBLAS_SYM(name)))) {                                      \
        fail;                                                                                                     \
    }

static void *cublas_lib;
static bool cublas_open(char *why, size_t why_len)
{
    if (cublas_lib)
        return true;
    char first[256] = "";
    if (!(cublas_lib = lib_open(RETORT_CUBLAS_SONAME, first, sizeof first))) {
        snprintf(why, why_len, "cannot load cuBLAS: %s", first);
        return false;
    }
#define RT_CUBLAS_LOAD_CB(field, name)                                                                           \
    RT_CUBLAS_LOAD(cublas_lib, cb, field, name,                                                                  \
                   snprintf(why, why_len, "cannot load cuBLAS: %s has no %s", RETORT_CUBLAS_SONAME,              \
                            RT_CUBLAS_SYM(name));                                                                 \
                   dlclose(cublas_lib); cublas_lib = NULL; return false)
    RT_CUBLAS_FUNCS(RT_CUBLAS_LOAD_CB)
#undef RT_CUBLAS_LOAD_CB
    return true;
}

/* cuBLASLt is optional: without it (or any of its calls), a bias takes a separate fill */
static bool cublaslt_open(void)
{
    char ignored[256];
    void *lib = lib_open(RETORT_CUBLASLT_SONAME, ignored, sizeof ignored);
    if (!lib)
        return false;
#define RT_CUBLAS_LOAD_LT(field, name) RT_CUBLAS_LOAD(lib, lt, field, name, dlclose(lib); return false)
    RT_CUBLASLT_FUNCS(RT_CUBLAS_LOAD_LT)
#undef RT_CUBLAS_LOAD_LT
    return true;
}
#endif

enum rt_status rt_cuda_blas_start(cudaStream_t stream, char *why, size_t why_len)
{
    if (!cublas_open(why, why_len))
        return RT_ERR_DEVICE;
    cublasStatus_t s = cb.create(&blas);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cb.set_stream(blas, stream);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, why_len, "cuBLAS could not start: %s", cb.status_string(s));
        if (blas)
            cb.destroy(blas);
        blas = NULL;
        return RT_ERR_DEVICE;
    }
    blas_stream = stream;
    /* RETORT_CUDA_NO_LT=1 turns the bias epilogue off (to tell its results from the two-call path's) */
    if (!rt_backend_env_flag("RETORT_CUDA_NO_LT") && cublaslt_open() && lt.create(&lt_handle) != CUBLAS_STATUS_SUCCESS)
        lt_handle = NULL;
    return RT_OK;
}

template <typename T>
__global__ void gemm_int_kernel(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const T *a,
                                int64_t lda, int64_t sa, const T *b, int64_t ldb, int64_t sb, double beta, T *c,
                                int64_t ldc, int64_t sc, int64_t batch)
{
    RT_CUDA_LOOP(e, batch * m * n)
    {
        int64_t bi = e / (m * n), i = e / n % m, j = e % n;
        const T *ab = a + bi * sa, *bb = b + bi * sb;
        int64_t acc = 0;
        for (int64_t l = 0; l < k; l++) {
            int64_t av = ta ? (int64_t)ab[l * lda + i] : (int64_t)ab[i * lda + l];
            int64_t bv = tb ? (int64_t)bb[j * ldb + l] : (int64_t)bb[l * ldb + j];
            acc = rt_cuda_wadd(acc, rt_cuda_wmul(av, bv));
        }
        T *cp = c + bi * sc + i * ldc + j;
        if (alpha == 1 && beta == 0)
            *cp = (T)acc;
        else
            *cp = rt_cuda_cvt<T>(alpha * (double)acc + (beta == 0 ? 0.0 : beta * (double)*cp));
    }
}

static enum rt_status blas_status(cublasStatus_t s, const char *op = "cuda gemm")
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return rt_cuda_check(op);
    return rt_error(s == CUBLAS_STATUS_ALLOC_FAILED ? RT_ERR_OOM : RT_ERR_DEVICE, "%s: cuBLAS error %s", op,
                    cb.status_string(s));
}

enum rt_status rt_cuda_gemm(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                            const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                            int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c, int64_t batch)
{
    bool empty;
    enum rt_status st = rt_backend_gemm_args(dt, ta, tb, m, n, k, batch, &lda, &ldb, &ldc, &empty);
    if (st != RT_OK || empty)
        return st;
    if (batch > INT_MAX) /* cuBLAS counts batches in an int */
        return rt_error(RT_ERR_SHAPE, "matmul: %lld batches are too many for cuBLAS", (long long)batch);

    if (dt == RT_I64 || dt == RT_U8) {
        RT_CUDA_DISPATCH_ALL(dt, "matmul",
                             return RT_CUDA_LAUNCH("cuda gemm", gemm_int_kernel<T>, rt_cuda_blocks(batch * m * n),
                                                   RT_CUDA_THREADS, 0, ta, tb, m, n, k, alpha, (const T *)a, lda,
                                                   stride_a, (const T *)b, ldb, stride_b, beta, (T *)c, ldc, stride_c,
                                                   batch));
    }
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    int M = (int)m, N = (int)n, K = (int)k;
    if (K == 0) /* nothing is read, but cuBLAS still checks the leading dimensions; C = beta * C */
        lda = ldb = m > n ? m : n;
    if (dt == RT_F32) {
        float al = (float)alpha, be = (float)beta;
        if (batch == 1)
            return blas_status(cb.sgemm(blas, opb, opa, N, M, K, &al, (const float *)b, (int)ldb, (const float *)a,
                                           (int)lda, &be, (float *)c, (int)ldc));
        return blas_status(cb.sgemm_batched(blas, opb, opa, N, M, K, &al, (const float *)b, (int)ldb, stride_b,
                                                     (const float *)a, (int)lda, stride_a, &be, (float *)c, (int)ldc,
                                                     stride_c, (int)batch));
    }
    if (batch == 1)
        return blas_status(cb.dgemm(blas, opb, opa, N, M, K, &alpha, (const double *)b, (int)ldb, (const double *)a,
                                       (int)lda, &beta, (double *)c, (int)ldc));
    return blas_status(cb.dgemm_batched(blas, opb, opa, N, M, K, &alpha, (const double *)b, (int)ldb, stride_b,
                                                 (const double *)a, (int)lda, stride_a, &beta, (double *)c, (int)ldc,
                                                 stride_c, (int)batch));
}

enum rt_status rt_cuda_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,
                                 int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                                 int64_t ldc, int64_t stride_c, int64_t batch)
{
    bool empty;
    enum rt_status st = rt_backend_gemm_bf16_args(ta, tb, m, n, k, batch, &lda, &ldb, &ldc, &empty);
    if (st != RT_OK || empty)
        return st;
    if (k == 0)
        lda = ldb = m > n ? m : n;
    float al = 1.0f, be = (float)beta;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    return blas_status(cb.gemm_ex_batched(blas, opb, opa, n, m, k, &al, b, CUDA_R_16BF, ldb, stride_b, a, CUDA_R_16BF,
                                          lda, stride_a, &be, c, CUDA_R_32F, ldc, stride_c, batch, CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT),
                       "cuda gemm bf16");
}

/* --- a product with its bias (cuBLASLt's bias epilogue) --- */

/* What cuBLASLt needs for one shape: the descriptor, the layouts and the algorithm its heuristic
 * chose. Kept per shape (the heuristic costs more host time than a launch); ok is false where no
 * algorithm was found, so that shape falls back without asking again. */
struct lt_plan {
    bool used, ok;
    enum rt_dtype dt;
    bool ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};
#define LT_PLANS 32
static lt_plan plans[LT_PLANS];
static int plans_next;

static void plan_clear(lt_plan *p)
{
    if (p->desc)
        lt.desc_destroy(p->desc);
    cublasLtMatrixLayout_t ls[3] = {p->la, p->lb, p->lc};
    for (int i = 0; i < 3; i++)
        if (ls[i])
            lt.layout_destroy(ls[i]);
    *p = lt_plan{};
}

/* The column-major product D (n x m) = op(B) (n x k) op(A) (k x m) + bias (n), D = C^T of the
 * row-major C = op(A) op(B); the heuristic assumes every operand 256-byte aligned (its default), which
 * the caller checks. */
static bool plan_make(lt_plan *p, const void *bias)
{
    bool f64 = p->dt == RT_F64;
    /* t: C, D, the bias and the scalars; ab: the operands (bf16 for a bf16 product, whose C is f32) */
    cudaDataType_t t = f64 ? CUDA_R_64F : CUDA_R_32F, ab = p->dt == RT_BF16 ? CUDA_R_16BF : t;
    int32_t opa = p->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = p->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    uint64_t m = (uint64_t)p->m, n = (uint64_t)p->n, k = (uint64_t)p->k;
    bool ok = lt.desc_create(&p->desc, f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F, t) == CUBLAS_STATUS_SUCCESS &&
              lt.desc_set(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa) == CUBLAS_STATUS_SUCCESS &&
              lt.desc_set(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb) == CUBLAS_STATUS_SUCCESS &&
              lt.desc_set(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue) ==
                  CUBLAS_STATUS_SUCCESS &&
              lt.desc_set(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) == CUBLAS_STATUS_SUCCESS &&
              lt.layout_create(&p->la, ab, p->tb ? k : n, p->tb ? n : k, p->ldb) == CUBLAS_STATUS_SUCCESS &&
              lt.layout_create(&p->lb, ab, p->ta ? m : k, p->ta ? k : m, p->lda) == CUBLAS_STATUS_SUCCESS &&
              lt.layout_create(&p->lc, t, n, m, p->ldc) == CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    ok = ok && lt.pref_create(&pref) == CUBLAS_STATUS_SUCCESS &&
         lt.heuristic(lt_handle, p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &result, &found) ==
             CUBLAS_STATUS_SUCCESS &&
         found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (pref)
        lt.pref_destroy(pref);
    if (ok)
        p->algo = result.algo;
    return ok;
}

static lt_plan *plan_for(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t lda,
                         int64_t ldb, int64_t ldc, const void *bias)
{
    for (int i = 0; i < LT_PLANS; i++) {
        lt_plan *p = &plans[i];
        if (p->used && p->dt == dt && p->ta == ta && p->tb == tb && p->m == m && p->n == n && p->k == k &&
            p->lda == lda && p->ldb == ldb && p->ldc == ldc)
            return p;
    }
    lt_plan *p = &plans[plans_next];
    plans_next = (plans_next + 1) % LT_PLANS;
    plan_clear(p);
    p->used = true, p->dt = dt, p->ta = ta, p->tb = tb, p->m = m, p->n = n, p->k = k;
    p->lda = lda, p->ldb = ldb, p->ldc = ldc;
    p->ok = plan_make(p, bias);
    return p;
}

static bool aligned(const void *p) { return ((uintptr_t)p & 255) == 0; }

enum rt_status rt_cuda_gemm_bias(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
                                 int64_t lda, const void *b, int64_t ldb, const void *bias, void *c, int64_t ldc,
                                 bool *done)
{
    *done = false;
    bool empty;
    enum rt_status st = dt == RT_BF16 ? rt_backend_gemm_bf16_args(ta, tb, m, n, k, 1, &lda, &ldb, &ldc, &empty)
                                      : rt_backend_gemm_args(dt, ta, tb, m, n, k, 1, &lda, &ldb, &ldc, &empty);
    if (st != RT_OK || empty || !lt_handle || (dt != RT_F32 && dt != RT_F64 && dt != RT_BF16) || k == 0 ||
        !aligned(a) || !aligned(b) || !aligned(bias) || !aligned(c))
        return st;
    lt_plan *p = plan_for(dt, ta, tb, m, n, k, lda, ldb, ldc, bias);
    if (!p->ok)
        return RT_OK;
    cublasStatus_t s = lt.desc_set(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    float one_f = 1, zero_f = 0;
    double one_d = 1, zero_d = 0;
    bool f64 = dt == RT_F64;
    if (s == CUBLAS_STATUS_SUCCESS)
        s = lt.matmul(lt_handle, p->desc, f64 ? (const void *)&one_d : (const void *)&one_f, b, p->la, a, p->lb,
                      f64 ? (const void *)&zero_d : (const void *)&zero_f, c, p->lc, c, p->lc, &p->algo, NULL, 0,
                      blas_stream);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) { /* this shape takes the two-call path from now on */
        p->ok = false;
        return RT_OK;
    }
    *done = s == CUBLAS_STATUS_SUCCESS;
    return blas_status(s, "cuda gemm+bias");
}
