/* Fused optimizer kernels: each element of p, g and buf is read and written once. */
#include "backend/cpu/cpu_internal.h"

#define RT_SGD(NAME, T)                                                                                         \
    static void sgd_##NAME(int64_t n, const T *g, T *p, T *buf, const struct rt_sgd_opts *o)                   \
    {                                                                                                           \
        const T lr = (T)o->lr, m = (T)o->momentum, wd = (T)o->weight_decay, keep = (T)(1 - o->dampening);    \
        const bool nesterov = o->nesterov, first = o->first;                                                  \
        _Pragma("omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)")                            \
        for (int64_t i = 0; i < n; i++) {                                                                       \
            T d = g[i] + wd * p[i];                                                                             \
            if (buf) {                                                                                          \
                T b = first ? d : m * buf[i] + keep * d;                                                        \
                buf[i] = b;                                                                                     \
                d = nesterov ? d + m * b : b;                                                                   \
            }                                                                                                   \
            p[i] -= lr * d;                                                                                     \
        }                                                                                                       \
    }
RT_SGD(f32, float)
RT_SGD(f64, double)

enum rt_status rt_cpu_sgd_update(enum rt_dtype dt, int64_t n, const void *g, void *p, void *buf,
                                 const struct rt_sgd_opts *o)
{
    switch (dt) {
    case RT_F32: sgd_f32(n, g, p, buf, o); return RT_OK;
    case RT_F64: sgd_f64(n, g, p, buf, o); return RT_OK;
    default: return rt_error(RT_ERR_DTYPE, "sgd_update: dtype %s not supported", rt_dtype_name(dt));
    }
}
