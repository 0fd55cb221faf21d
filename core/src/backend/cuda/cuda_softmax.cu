/* Softmax and log-softmax of x * inv_t over the middle axis of (outer, n, inner), and their
 * backward, mirroring cpu_softmax.c: the max of z = x * inv_t is subtracted before exp, sums run
 * in double (f32 included), softmax stores the rounded exp and scales it by 1 / sum, NaN never
 * wins the max (z > m), so a NaN anywhere makes its whole row NaN as there.
 *
 * inner == 1 is the hot case (rows of 10 to 1000 classes): a warp per row with the row held in
 * registers (K elements per lane, K a template argument), so x is read once and y written once;
 * longer rows take a block per row and re-read x (from L1/L2). inner > 1: a thread per
 * (outer, inner) column walking n with stride inner, so that a warp reads consecutive addresses. */
#include "backend/cuda/cuda_kernels.h"

/* Rows of up to this many elements go to the warp kernels, which hold K = n / 32 (rounded up to a
 * power of two) values per lane in registers, two arrays in the backward; doubles stop earlier to
 * keep register pressure sane. */
#define SM_WARP_MAX_F32 1024
#define SM_WARP_MAX_F64 512
#define SM_WARP_THREADS 128 /* 4 rows per block: small batches still spread over many SMs */

/* max of per-lane maxima that are never NaN */
__device__ static inline double sm_warp_max(double m)
{
    for (int o = 16; o > 0; o >>= 1)
        m = fmax(m, __shfl_xor_sync(0xffffffffu, m, o));
    return m;
}

/* --- forward --- */

template <typename T, bool LOG, int K>
__global__ void sm_fwd_warp_kernel(int64_t rows, int64_t n, double inv_t, const T *__restrict__ x, T *y)
{
    int lane = threadIdx.x & 31;
    int64_t per = blockDim.x >> 5;
    for (int64_t r = (int64_t)blockIdx.x * per + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * per) {
        const T *px = x + r * n;
        T *py = y + r * n;
        T v[K];
        double m = -INFINITY;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int64_t j = lane + 32 * k;
            v[k] = j < n ? px[j] : (T)0;
        }
#pragma unroll
        for (int k = 0; k < K; k++) {
            double z = (double)v[k] * inv_t;
            if (lane + 32 * k < n && z > m)
                m = z;
        }
        m = sm_warp_max(m);
        double s = 0;
        if (LOG) {
#pragma unroll
            for (int k = 0; k < K; k++)
                if (lane + 32 * k < n)
                    s += exp((double)v[k] * inv_t - m);
            double lse = m + log(rt_cuda_warp_sum(s)); /* log-normaliser */
#pragma unroll
            for (int k = 0; k < K; k++)
                if (lane + 32 * k < n)
                    py[lane + 32 * k] = (T)((double)v[k] * inv_t - lse);
        } else {
#pragma unroll
            for (int k = 0; k < K; k++)
                if (lane + 32 * k < n) {
                    double e = exp((double)v[k] * inv_t - m);
                    v[k] = (T)e; /* the CPU stores the rounded exp, then scales it */
                    s += e;
                }
            double rs = 1.0 / rt_cuda_warp_sum(s);
#pragma unroll
            for (int k = 0; k < K; k++)
                if (lane + 32 * k < n)
                    py[lane + 32 * k] = (T)((double)v[k] * rs);
        }
    }
}

/* A block per row (long rows): three passes over x, the block reductions in between. */
template <typename T, bool LOG>
__global__ void sm_fwd_block_kernel(int64_t rows, int64_t n, double inv_t, const T *__restrict__ x, T *y)
{
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *px = x + r * n;
        T *py = y + r * n;
        double m = -INFINITY, s = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            double z = (double)px[j] * inv_t;
            m = z > m ? z : m;
        }
        m = rt_cuda_block_max(m, sh); /* per-thread maxima are never NaN */
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
            s += exp((double)px[j] * inv_t - m);
        s = rt_cuda_block_sum(s, sh);
        if (LOG) {
            double lse = m + log(s);
            for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
                py[j] = (T)((double)px[j] * inv_t - lse);
        } else {
            double rs = 1.0 / s;
            for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
                py[j] = (T)((double)(T)exp((double)px[j] * inv_t - m) * rs);
        }
    }
}

/* A thread per column (o, i): element j at offset j * inner. */
template <typename T, bool LOG>
__global__ void sm_fwd_cols_kernel(int64_t outer, int64_t n, int64_t inner, double inv_t, const T *__restrict__ x,
                                   T *y)
{
    RT_CUDA_LOOP(q, outer * inner)
    {
        int64_t o = q / inner, base = q + o * (n - 1) * inner; /* o * n * inner + i */
        const T *px = x + base;
        T *py = y + base;
        double m = -INFINITY, s = 0;
#pragma unroll 4
        for (int64_t j = 0; j < n; j++) {
            double z = (double)px[j * inner] * inv_t;
            m = z > m ? z : m;
        }
        for (int64_t j = 0; j < n; j++)
            s += exp((double)px[j * inner] * inv_t - m);
        if (LOG) {
            double lse = m + log(s);
            for (int64_t j = 0; j < n; j++)
                py[j * inner] = (T)((double)px[j * inner] * inv_t - lse);
        } else {
            double rs = 1.0 / s;
            for (int64_t j = 0; j < n; j++)
                py[j * inner] = (T)((double)(T)exp((double)px[j * inner] * inv_t - m) * rs);
        }
    }
}

/* --- backward: softmax gx = inv_t * y * (gy - sum(gy * y)); log-softmax gx = inv_t * (gy - exp(y) * sum(gy)) --- */

template <typename T, bool LOG> __device__ static inline double sm_bwd_term(T y, T gy)
{
    return LOG ? (double)gy : (double)gy * (double)y;
}

template <typename T, bool LOG> __device__ static inline T sm_bwd_out(double inv_t, T y, T gy, double s)
{
    double g = gy, v = y;
    return (T)(LOG ? inv_t * (g - exp(v) * s) : inv_t * v * (g - s));
}

template <typename T, bool LOG, int K>
__global__ void sm_bwd_warp_kernel(int64_t rows, int64_t n, double inv_t, const T *__restrict__ y,
                                   const T *__restrict__ gy, T *gx)
{
    int lane = threadIdx.x & 31;
    int64_t per = blockDim.x >> 5;
    for (int64_t r = (int64_t)blockIdx.x * per + (threadIdx.x >> 5); r < rows; r += (int64_t)gridDim.x * per) {
        const T *py = y + r * n, *pg = gy + r * n;
        T yv[K], gv[K];
        double s = 0;
#pragma unroll
        for (int k = 0; k < K; k++) {
            int64_t j = lane + 32 * k;
            yv[k] = j < n ? py[j] : (T)0;
            gv[k] = j < n ? pg[j] : (T)0;
        }
#pragma unroll
        for (int k = 0; k < K; k++)
            if (lane + 32 * k < n)
                s += sm_bwd_term<T, LOG>(yv[k], gv[k]);
        s = rt_cuda_warp_sum(s);
        T *pgx = gx + r * n;
#pragma unroll
        for (int k = 0; k < K; k++)
            if (lane + 32 * k < n)
                pgx[lane + 32 * k] = sm_bwd_out<T, LOG>(inv_t, yv[k], gv[k], s);
    }
}

template <typename T, bool LOG>
__global__ void sm_bwd_block_kernel(int64_t rows, int64_t n, double inv_t, const T *__restrict__ y,
                                    const T *__restrict__ gy, T *gx)
{
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *py = y + r * n, *pg = gy + r * n;
        T *pgx = gx + r * n;
        double s = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
            s += sm_bwd_term<T, LOG>(py[j], pg[j]);
        s = rt_cuda_block_sum(s, sh);
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
            pgx[j] = sm_bwd_out<T, LOG>(inv_t, py[j], pg[j], s);
    }
}

template <typename T, bool LOG>
__global__ void sm_bwd_cols_kernel(int64_t outer, int64_t n, int64_t inner, double inv_t, const T *__restrict__ y,
                                   const T *__restrict__ gy, T *gx)
{
    RT_CUDA_LOOP(q, outer * inner)
    {
        int64_t o = q / inner, base = q + o * (n - 1) * inner; /* o * n * inner + i */
        const T *py = y + base, *pg = gy + base;
        T *pgx = gx + base;
        double s = 0;
        for (int64_t j = 0; j < n; j++)
            s += sm_bwd_term<T, LOG>(py[j * inner], pg[j * inner]);
        for (int64_t j = 0; j < n; j++)
            pgx[j * inner] = sm_bwd_out<T, LOG>(inv_t, py[j * inner], pg[j * inner], s);
    }
}

/* --- host --- */

/* Elements per lane for a warp row of n: the smallest power of two K with 32 * K >= n. */
static int sm_lanes_k(int64_t n)
{
    int k = 1;
    while (32 * (int64_t)k < n)
        k <<= 1;
    return k;
}

static unsigned sm_warp_blocks(int64_t rows)
{
    int64_t per = SM_WARP_THREADS / 32, need = (rows + per - 1) / per, cap = (int64_t)rt_cuda_sm_count() * 64;
    return (unsigned)(need < cap ? need : cap);
}

static unsigned sm_row_blocks(int64_t rows)
{
    int64_t cap = (int64_t)rt_cuda_sm_count() * 32;
    return (unsigned)(rows < cap ? rows : cap);
}

static int sm_block_threads(int64_t n) { return n >= 8192 ? 1024 : 512; }

/* Launches the warp kernel KERNEL<T, LOG, K> for K = k (T, LOG and op from the caller's scope);
 * doubles stop at K = 16, their longer rows going to the block kernel. */
#define SM_KMAX(T) (sizeof(T) == 4 ? 32 : 16)
#define SM_WARP_K(KERNEL, k, blocks, ...)                                                                         \
    switch (k) {                                                                                                  \
    case 1: return RT_CUDA_LAUNCH(op, (KERNEL<T, LOG, 1>), blocks, SM_WARP_THREADS, 0, __VA_ARGS__);              \
    case 2: return RT_CUDA_LAUNCH(op, (KERNEL<T, LOG, 2>), blocks, SM_WARP_THREADS, 0, __VA_ARGS__);              \
    case 4: return RT_CUDA_LAUNCH(op, (KERNEL<T, LOG, 4>), blocks, SM_WARP_THREADS, 0, __VA_ARGS__);              \
    case 8: return RT_CUDA_LAUNCH(op, (KERNEL<T, LOG, 8>), blocks, SM_WARP_THREADS, 0, __VA_ARGS__);              \
    case 16: return RT_CUDA_LAUNCH(op, (KERNEL<T, LOG, 16>), blocks, SM_WARP_THREADS, 0, __VA_ARGS__);            \
    default: return RT_CUDA_LAUNCH(op, (KERNEL<T, LOG, SM_KMAX(T)>), blocks, SM_WARP_THREADS, 0, __VA_ARGS__);    \
    }

template <typename T, bool LOG>
static enum rt_status sm_fwd(int64_t outer, int64_t n, int64_t inner, double inv_t, const T *x, T *y)
{
    const char *op = "cuda softmax";
    if (inner > 1)
        return RT_CUDA_LAUNCH(op, (sm_fwd_cols_kernel<T, LOG>), rt_cuda_blocks(outer * inner), RT_CUDA_THREADS, 0,
                              outer, n, inner, inv_t, x, y);
    if (n > (sizeof(T) == 4 ? SM_WARP_MAX_F32 : SM_WARP_MAX_F64))
        return RT_CUDA_LAUNCH(op, (sm_fwd_block_kernel<T, LOG>), sm_row_blocks(outer), sm_block_threads(n), 0, outer,
                              n, inv_t, x, y);
    SM_WARP_K(sm_fwd_warp_kernel, sm_lanes_k(n), sm_warp_blocks(outer), outer, n, inv_t, x, y);
}

template <typename T, bool LOG>
static enum rt_status sm_bwd(int64_t outer, int64_t n, int64_t inner, double inv_t, const T *y, const T *gy, T *gx)
{
    const char *op = "cuda softmax backward";
    if (inner > 1)
        return RT_CUDA_LAUNCH(op, (sm_bwd_cols_kernel<T, LOG>), rt_cuda_blocks(outer * inner), RT_CUDA_THREADS, 0,
                              outer, n, inner, inv_t, y, gy, gx);
    if (n > (sizeof(T) == 4 ? SM_WARP_MAX_F32 : SM_WARP_MAX_F64))
        return RT_CUDA_LAUNCH(op, (sm_bwd_block_kernel<T, LOG>), sm_row_blocks(outer), sm_block_threads(n), 0, outer,
                              n, inv_t, y, gy, gx);
    SM_WARP_K(sm_bwd_warp_kernel, sm_lanes_k(n), sm_warp_blocks(outer), outer, n, inv_t, y, gy, gx);
}

enum rt_status rt_cuda_softmax(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t,
                               const void *x, void *y)
{
    enum rt_status st = rt_backend_float_only(log ? "log_softmax" : "softmax", dt);
    if (st != RT_OK || outer <= 0 || n <= 0 || inner <= 0)
        return st;
    if (dt == RT_F32)
        return log ? sm_fwd<float, true>(outer, n, inner, inv_t, (const float *)x, (float *)y)
                   : sm_fwd<float, false>(outer, n, inner, inv_t, (const float *)x, (float *)y);
    return log ? sm_fwd<double, true>(outer, n, inner, inv_t, (const double *)x, (double *)y)
               : sm_fwd<double, false>(outer, n, inner, inv_t, (const double *)x, (double *)y);
}

enum rt_status rt_cuda_softmax_backward(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner,
                                        double inv_t, const void *y, const void *gy, void *gx)
{
    enum rt_status st = rt_backend_float_only(log ? "log_softmax backward" : "softmax backward", dt);
    if (st != RT_OK || outer <= 0 || n <= 0 || inner <= 0)
        return st;
    if (dt == RT_F32)
        return log ? sm_bwd<float, true>(outer, n, inner, inv_t, (const float *)y, (const float *)gy, (float *)gx)
                   : sm_bwd<float, false>(outer, n, inner, inv_t, (const float *)y, (const float *)gy, (float *)gx);
    return log ? sm_bwd<double, true>(outer, n, inner, inv_t, (const double *)y, (const double *)gy, (double *)gx)
               : sm_bwd<double, false>(outer, n, inner, inv_t, (const double *)y, (const double *)gy, (double *)gx);
}
