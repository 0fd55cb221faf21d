/* Fused optimizer kernels: each element of p, g and buf is read and written once. One loop per
 * case (no momentum, first step, Nesterov, plain momentum) with restrict pointers, so that the
 * compiler vectorizes them: with the branches inside a single loop it emitted scalar code. */
#include "backend/cpu/cpu_internal.h"

#define SGD_LOOP(BODY)                                                                                          \
    do {                                                                                                        \
        _Pragma("omp parallel for simd if (n >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t i = 0; i < n; i++) {                                                                       \
            BODY                                                                                                \
        }                                                                                                       \
    } while (0)

#define RT_SGD(NAME, T)                                                                                         \
    static void sgd_##NAME(int64_t n, const T *restrict g, T *restrict p, T *restrict buf,                     \
                           const struct rt_sgd_opts *o)                                                        \
    {                                                                                                           \
        const T lr = (T)o->lr, m = (T)o->momentum, wd = (T)o->weight_decay, keep = (T)(1 - o->dampening);    \
        if (!buf)                                                                                               \
            SGD_LOOP(p[i] -= lr * (g[i] + wd * p[i]););                                                         \
        else if (o->first && o->nesterov)                                                                       \
            SGD_LOOP(T d = g[i] + wd * p[i]; buf[i] = d; p[i] -= lr * (d + m * d););                           \
        else if (o->first)                                                                                      \
            SGD_LOOP(T d = g[i] + wd * p[i]; buf[i] = d; p[i] -= lr * d;);                                      \
        else if (o->nesterov)                                                                                   \
            SGD_LOOP(T d = g[i] + wd * p[i]; T b = m * buf[i] + keep * d; buf[i] = b; p[i] -= lr * (d + m * b);); \
        else                                                                                                    \
            SGD_LOOP(T b = m * buf[i] + keep * (g[i] + wd * p[i]); buf[i] = b; p[i] -= lr * b;);                \
    }
RT_SGD(f32, float)
RT_SGD(f64, double)

enum rt_status rt_cpu_sgd_update(enum rt_dtype dt, int k, const struct rt_sgd_param *ps, const struct rt_sgd_opts *o)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_error(RT_ERR_DTYPE, "sgd_update: dtype %s not supported", rt_dtype_name(dt));
    for (int j = 0; j < k; j++) {
        struct rt_sgd_opts oj = *o;
        oj.first = ps[j].first;
        if (dt == RT_F32)
            sgd_f32(ps[j].n, ps[j].g, ps[j].p, ps[j].buf, &oj);
        else
            sgd_f64(ps[j].n, ps[j].g, ps[j].p, ps[j].buf, &oj);
    }
    return RT_OK;
}
