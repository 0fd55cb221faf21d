/* Fused SGD step on the GPU, the twin of cpu/cpu_optim.c: every parameter of a step in one launch
 * (a few for very many parameters), each element of p, g and buf read and written once. The operations run in the CPU's order, and products that feed an
 * addition use __fmul_rn / __dmul_rn so nvcc cannot fuse them into FMAs (the CPU build never does),
 * so f32 and f64 results agree with the CPU's to the bit. */
#include "backend/cuda/cuda_kernels.h"

enum { SGD_PLAIN, SGD_FIRST_NESTEROV, SGD_FIRST, SGD_NESTEROV, SGD_MOMENTUM };

/* x * y, never fused with a following add */
__device__ __forceinline__ float nc_mul(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double nc_mul(double x, double y) { return __dmul_rn(x, y); }

/* One element of the step; lr, m (momentum), wd (weight decay) and keep (1 - dampening) already in T,
 * as on the CPU. */
template <typename T, int CASE>
__device__ __forceinline__ void sgd_element(int64_t i, const T *__restrict__ g, T *__restrict__ p,
                                            T *__restrict__ buf, T lr, T m, T wd, T keep)
{
    T pi = p[i], d = g[i] + nc_mul(wd, pi);
    if constexpr (CASE == SGD_PLAIN) {
        p[i] = pi - nc_mul(lr, d);
    } else if constexpr (CASE == SGD_FIRST_NESTEROV) {
        buf[i] = d;
        p[i] = pi - nc_mul(lr, d + nc_mul(m, d));
    } else if constexpr (CASE == SGD_FIRST) {
        buf[i] = d;
        p[i] = pi - nc_mul(lr, d);
    } else if constexpr (CASE == SGD_NESTEROV) {
        T b = nc_mul(m, buf[i]) + nc_mul(keep, d);
        buf[i] = b;
        p[i] = pi - nc_mul(lr, d + nc_mul(m, b));
    } else {
        T b = nc_mul(m, buf[i]) + nc_mul(keep, d);
        buf[i] = b;
        p[i] = pi - nc_mul(lr, b);
    }
}

/* Many parameters in one launch (the multi-tensor pattern): the batch, passed by value as the
 * kernel's argument, lists up to SGD_TENSORS parameters and gives each block one chunk of one of
 * them. Sized to stay well under the 4 KB argument limit. */
#define SGD_TENSORS 24
#define SGD_BLOCKS 256
#define SGD_CHUNK 8192 /* elements per block: 32 per thread */
struct sgd_batch {
    const void *g[SGD_TENSORS];
    void *p[SGD_TENSORS], *buf[SGD_TENSORS];
    int64_t n[SGD_TENSORS];
    unsigned char first[SGD_TENSORS];
    unsigned char tensor[SGD_BLOCKS]; /* block -> parameter */
    int chunk[SGD_BLOCKS];            /* block -> chunk of it */
};

template <typename T, bool MOMENTUM, bool NESTEROV>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    sgd_kernel(const struct sgd_batch b, T lr, T m, T wd, T keep)
{
    int t = b.tensor[blockIdx.x];
    int64_t start = (int64_t)b.chunk[blockIdx.x] * SGD_CHUNK, n = b.n[t];
    int64_t end = start + SGD_CHUNK < n ? start + SGD_CHUNK : n;
    const T *g = (const T *)b.g[t];
    T *p = (T *)b.p[t], *buf = (T *)b.buf[t];
    if (!MOMENTUM) {
        for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
            sgd_element<T, SGD_PLAIN>(i, g, p, buf, lr, m, wd, keep);
    } else if (b.first[t]) { /* uniform over the block: every block holds one parameter */
        for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
            sgd_element<T, NESTEROV ? SGD_FIRST_NESTEROV : SGD_FIRST>(i, g, p, buf, lr, m, wd, keep);
    } else {
        for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
            sgd_element<T, NESTEROV ? SGD_NESTEROV : SGD_MOMENTUM>(i, g, p, buf, lr, m, wd, keep);
    }
}

template <typename T>
static enum rt_status sgd_launch(const struct sgd_batch *b, int blocks, const struct rt_sgd_opts *o)
{
    const T lr = (T)o->lr, m = (T)o->momentum, wd = (T)o->weight_decay, keep = (T)(1 - o->dampening);
    if (o->momentum == 0)
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, false, false>), blocks, RT_CUDA_THREADS, 0, *b, lr, m,
                              wd, keep);
    if (o->nesterov)
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, true, true>), blocks, RT_CUDA_THREADS, 0, *b, lr, m,
                              wd, keep);
    return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, true, false>), blocks, RT_CUDA_THREADS, 0, *b, lr, m, wd,
                          keep);
}

/* Deals the parameters' chunks out to batches of at most SGD_TENSORS parameters and SGD_BLOCKS
 * blocks, launching each batch when it is full; a parameter split across two batches is listed
 * in both. */
template <typename T>
static enum rt_status sgd_typed(int k, const struct rt_sgd_param *ps, const struct rt_sgd_opts *o)
{
    struct sgd_batch b;
    int nt = 0, nb = 0;
    enum rt_status st = RT_OK;
    for (int j = 0; j < k && st == RT_OK; j++) {
        int64_t chunks = (ps[j].n + SGD_CHUNK - 1) / SGD_CHUNK;
        for (int64_t c = 0; c < chunks && st == RT_OK; c++) {
            if (c == 0 || nt == 0) { /* list the parameter in this batch */
                b.g[nt] = ps[j].g, b.p[nt] = ps[j].p, b.buf[nt] = ps[j].buf, b.n[nt] = ps[j].n;
                b.first[nt] = ps[j].first;
                nt++;
            }
            b.tensor[nb] = (unsigned char)(nt - 1), b.chunk[nb] = (int)c;
            nb++;
            if (nb == SGD_BLOCKS || (nt == SGD_TENSORS && c == chunks - 1)) {
                st = sgd_launch<T>(&b, nb, o);
                nt = nb = 0;
            }
        }
    }
    if (st == RT_OK && nb > 0)
        st = sgd_launch<T>(&b, nb, o);
    return st;
}

enum rt_status rt_cuda_sgd_update(enum rt_dtype dt, int k, const struct rt_sgd_param *ps, const struct rt_sgd_opts *o)
{
    switch (dt) {
    case RT_F32: return sgd_typed<float>(k, ps, o);
    case RT_F64: return sgd_typed<double>(k, ps, o);
    default: return rt_error(RT_ERR_DTYPE, "sgd_update: dtype %s not supported", rt_dtype_name(dt));
    }
}
