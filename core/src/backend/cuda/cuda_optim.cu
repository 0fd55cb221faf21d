/* Fused SGD step on the GPU, the twin of cpu/cpu_optim.c: one element-wise kernel per case (no
 * momentum, first step with and without Nesterov, Nesterov, plain momentum), each element of p, g
 * and buf read and written once. The operations run in the CPU's order, and products that feed an
 * addition use __fmul_rn / __dmul_rn so nvcc cannot fuse them into FMAs (the CPU build never does),
 * so f32 and f64 results agree with the CPU's to the bit. */
#include "backend/cuda/cuda_kernels.h"

enum { SGD_PLAIN, SGD_FIRST_NESTEROV, SGD_FIRST, SGD_NESTEROV, SGD_MOMENTUM };

/* x * y, never fused with a following add */
__device__ __forceinline__ float nc_mul(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double nc_mul(double x, double y) { return __dmul_rn(x, y); }

/* lr, m (momentum), wd (weight decay) and keep (1 - dampening) already in T, as on the CPU. */
template <typename T, int CASE>
static __global__ void sgd_kernel(int64_t n, const T *__restrict__ g, T *__restrict__ p, T *__restrict__ buf, T lr,
                                  T m, T wd, T keep)
{
    RT_CUDA_LOOP(i, n)
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
}

template <typename T>
static enum rt_status sgd_typed(int64_t n, const void *gv, void *pv, void *bufv, const struct rt_sgd_opts *o)
{
    if (n <= 0)
        return RT_OK;
    const T lr = (T)o->lr, m = (T)o->momentum, wd = (T)o->weight_decay, keep = (T)(1 - o->dampening);
    const T *g = (const T *)gv;
    T *p = (T *)pv, *buf = (T *)bufv;
    unsigned blocks = rt_cuda_blocks(n);
    if (!buf)
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, SGD_PLAIN>), blocks, RT_CUDA_THREADS, 0, n, g, p, buf,
                              lr, m, wd, keep);
    if (o->first && o->nesterov)
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, SGD_FIRST_NESTEROV>), blocks, RT_CUDA_THREADS, 0, n, g,
                              p, buf, lr, m, wd, keep);
    if (o->first)
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, SGD_FIRST>), blocks, RT_CUDA_THREADS, 0, n, g, p, buf,
                              lr, m, wd, keep);
    if (o->nesterov)
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, SGD_NESTEROV>), blocks, RT_CUDA_THREADS, 0, n, g, p,
                              buf, lr, m, wd, keep);
    return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, SGD_MOMENTUM>), blocks, RT_CUDA_THREADS, 0, n, g, p, buf,
                          lr, m, wd, keep);
}

enum rt_status rt_cuda_sgd_update(enum rt_dtype dt, int64_t n, const void *g, void *p, void *buf,
                                  const struct rt_sgd_opts *o)
{
    switch (dt) {
    case RT_F32: return sgd_typed<float>(n, g, p, buf, o);
    case RT_F64: return sgd_typed<double>(n, g, p, buf, o);
    default: return rt_error(RT_ERR_DTYPE, "sgd_update: dtype %s not supported", rt_dtype_name(dt));
    }
}
