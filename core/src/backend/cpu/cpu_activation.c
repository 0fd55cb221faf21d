/* Leaky ReLU and its backward: flat element-wise loops, OpenMP above the size threshold. */
#include "backend/cpu/cpu_nn.h"

#define DEF_LEAKY(SUF, T)                                                                                         \
    static void leaky_##SUF(int64_t n, double slope, const T *x, const T *gy, T *out)                             \
    {                                                                                                             \
        T a = (T)slope;                                                                                           \
        _Pragma("omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)")                               \
        for (int64_t i = 0; i < n; i++)                                                                           \
            out[i] = gy ? (x[i] > 0 ? gy[i] : gy[i] * a) : (x[i] > 0 ? x[i] : x[i] * a);                          \
    }
DEF_LEAKY(f32, float)
DEF_LEAKY(f64, double)

enum rt_status rt_cpu_leaky_relu(enum rt_dtype dt, int64_t n, double slope, const void *x, void *y)
{
    enum rt_status st = rt_backend_float_only("leaky_relu", dt);
    if (st == RT_OK && dt == RT_F32)
        leaky_f32(n, slope, x, NULL, y);
    else if (st == RT_OK)
        leaky_f64(n, slope, x, NULL, y);
    return st;
}

enum rt_status rt_cpu_leaky_relu_backward(enum rt_dtype dt, int64_t n, double slope, const void *x, const void *gy,
                                          void *gx)
{
    enum rt_status st = rt_backend_float_only("leaky_relu backward", dt);
    if (st == RT_OK && dt == RT_F32)
        leaky_f32(n, slope, x, gy, gx);
    else if (st == RT_OK)
        leaky_f64(n, slope, x, gy, gx);
    return st;
}
