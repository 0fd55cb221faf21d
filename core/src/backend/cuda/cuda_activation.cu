/* Leaky ReLU and its backward on the GPU, the twin of cpu/cpu_activation.c: flat element-wise
 * grid-stride loops, float dtypes only. */
#include "backend/cuda/cuda_kernels.h"

/* BACKWARD: out = gy * (x > 0 ? 1 : slope), else out = x > 0 ? x : slope * x; a = (T)slope as on the CPU. */
template <typename T, bool BACKWARD>
static __global__ void leaky_kernel(int64_t n, T a, const T *x, const T *gy, T *out)
{
    RT_CUDA_LOOP(i, n)
    {
        T v = x[i];
        if constexpr (BACKWARD)
            out[i] = v > 0 ? gy[i] : gy[i] * a;
        else
            out[i] = v > 0 ? v : v * a;
    }
}

enum rt_status rt_cuda_leaky_relu(enum rt_dtype dt, int64_t n, double slope, const void *x, void *y)
{
    RT_CUDA_DISPATCH_FLOAT(dt, "leaky_relu", {
        if (n <= 0)
            return RT_OK;
        return RT_CUDA_LAUNCH("cuda leaky_relu", (leaky_kernel<T, false>), rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n,
                              (T)slope, (const T *)x, (const T *)NULL, (T *)y);
    });
    return RT_OK; /* not reached */
}

enum rt_status rt_cuda_leaky_relu_backward(enum rt_dtype dt, int64_t n, double slope, const void *x, const void *gy,
                                           void *gx)
{
    RT_CUDA_DISPATCH_FLOAT(dt, "leaky_relu backward", {
        if (n <= 0)
            return RT_OK;
        return RT_CUDA_LAUNCH("cuda leaky_relu backward", (leaky_kernel<T, true>), rt_cuda_blocks(n), RT_CUDA_THREADS,
                              0, n, (T)slope, (const T *)x, (const T *)gy, (T *)gx);
    });
    return RT_OK; /* not reached */
}
