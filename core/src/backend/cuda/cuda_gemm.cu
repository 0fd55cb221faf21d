/* Matrix products: f32/f64 through cuBLAS (full-precision math, as PyTorch's default), integers
 * through a plain kernel with the CPU backend's wrapping arithmetic. cuBLAS is column-major: a
 * row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, so the operands swap. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>

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
            X(dgemm, cublasDgemm) X(dgemm_batched, cublasDgemmStridedBatched)

static struct {
#define RT_CUBLAS_FIELD(field, name) decltype(&name) field;
    RT_CUBLAS_FUNCS(RT_CUBLAS_FIELD)
#undef RT_CUBLAS_FIELD
} cb;
static cublasHandle_t blas;

#ifdef RETORT_CUDA_SIM
/* The simulator's cuBLAS is linked in. */
static bool cublas_open(char *why, size_t why_len)
{
    (void)why, (void)why_len;
#define RT_CUBLAS_BIND(field, name) cb.field = &name;
    RT_CUBLAS_FUNCS(RT_CUBLAS_BIND)
#undef RT_CUBLAS_BIND
    return true;
}
#else
static void *cublas_lib;

/* Opens cuBLAS by soname (the executable's run path), then where the build found it. */
static bool cublas_open(char *why, size_t why_len)
{
    if (cublas_lib)
        return true;
    const char *names[2] = {RETORT_CUBLAS_SONAME, RETORT_CUBLAS_DIR "/" RETORT_CUBLAS_SONAME};
    char first[256] = "";
    for (int i = 0; i < 2 && !cublas_lib; i++) {
        cublas_lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!cublas_lib && i == 0)
            snprintf(first, sizeof first, "%s", dlerror());
    }
    if (!cublas_lib) {
        snprintf(why, why_len, "cannot load cuBLAS: %s", first);
        return false;
    }
#define RT_CUBLAS_LOAD(field, name)                                                                              \
    if (!(cb.field = (decltype(&name))dlsym(cublas_lib, RT_CUBLAS_SYM(name)))) {                                  \
        snprintf(why, why_len, "cannot load cuBLAS: %s has no %s", RETORT_CUBLAS_SONAME, RT_CUBLAS_SYM(name));   \
        dlclose(cublas_lib);                                                                                     \
        cublas_lib = NULL;                                                                                       \
        return false;                                                                                            \
    }
    RT_CUBLAS_FUNCS(RT_CUBLAS_LOAD)
#undef RT_CUBLAS_LOAD
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
    if (s == CUBLAS_STATUS_SUCCESS)
        return RT_OK;
    snprintf(why, why_len, "cuBLAS could not start: %s", cb.status_string(s));
    if (blas)
        cb.destroy(blas);
    blas = NULL;
    return RT_ERR_DEVICE;
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

static enum rt_status blas_status(cublasStatus_t s)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return rt_cuda_check("cuda gemm");
    return rt_error(s == CUBLAS_STATUS_ALLOC_FAILED ? RT_ERR_OOM : RT_ERR_DEVICE, "cuda gemm: cuBLAS error %s",
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
