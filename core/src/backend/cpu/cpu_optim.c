/* Fused optimizer kernels (SGD, Adam): each element of a parameter, its gradient and its state is
 * read and written once. One loop per
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
    enum rt_status st = rt_backend_float_only("sgd_update", dt);
    if (st != RT_OK)
        return st;
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

/* Adam's three weight-decay cases of loop(a, o, decay, decoupled, ams), every flag a constant */
#define ADAM_CASES(loop, a, o, ams)                                                                             \
    do {                                                                                                        \
        if ((o)->weight_decay == 0)                                                                             \
            loop(a, o, false, false, ams);                                                                      \
        else if ((o)->decoupled)                                                                                \
            loop(a, o, true, true, ams);                                                                        \
        else                                                                                                    \
            loop(a, o, true, false, ams);                                                                       \
    } while (0)

/* Adam: the composed Lua step's operations fused, in its order and in T, so both agree to the bit:
 * p*(1-lr*wd) or g + p*wd, m*b1 + (1-b1)*g, v*b2 + (1-b2)*(g*g), max with vmax, sqrt, / bc2_sqrt,
 * + eps, m / denom, p + (-step_size) * that. One loop per case (the flags are constants after
 * inlining), so each vectorizes. */
#define RT_ADAM(NAME, T)                                                                                        \
    static inline __attribute__((always_inline)) void adam_loop_##NAME(                                        \
        const struct rt_adam_param *a, const struct rt_adam_opts *o, bool decay, bool decoupled, bool ams)    \
    {                                                                                                           \
        const int64_t n = a->n;                                                                                 \
        const T *restrict g = a->g;                                                                             \
        T *restrict p = a->p, *restrict m = a->m, *restrict v = a->v, *restrict vmax = a->vmax;                 \
        const T b1 = (T)o->beta1, c1 = (T)(1 - o->beta1), b2 = (T)o->beta2, c2 = (T)(1 - o->beta2);            \
        const T wd = (T)o->weight_decay, shrink = (T)(1 - o->lr * o->weight_decay), eps = (T)o->eps;          \
        const T bc2 = (T)a->bc2_sqrt, step = (T)(-a->step_size);                                                \
        _Pragma("omp parallel for simd if (n >= RT_CPU_PARALLEL_MIN) schedule(static)")                       \
        for (int64_t i = 0; i < n; i++) {                                                                       \
            T pi = p[i], gi = g[i];                                                                             \
            if (decay && decoupled)                                                                             \
                pi = pi * shrink + (T)0;                                                                        \
            else if (decay)                                                                                     \
                gi = gi + (pi * wd + (T)0);                                                                     \
            T mi = m[i] * b1 + (T)0;                                                                            \
            mi += c1 * gi;                                                                                      \
            T vi = v[i] * b2 + (T)0;                                                                            \
            vi += c2 * (gi * gi);                                                                               \
            m[i] = mi, v[i] = vi;                                                                               \
            T second = vi;                                                                                      \
            if (ams) {                                                                                          \
                T w = vmax[i];                                                                                  \
                second = (w != w || w > vi) ? w : vi; /* NaN wins, as the composed maximum */                   \
                vmax[i] = second;                                                                               \
            }                                                                                                   \
            T denom = (T)sqrt(second) / bc2 * (T)1 + eps;                                                       \
            p[i] = pi + step * (mi / denom);                                                                    \
        }                                                                                                       \
    }                                                                                                           \
    static void adam_##NAME(const struct rt_adam_param *a, const struct rt_adam_opts *o)                       \
    {                                                                                                           \
        if (o->amsgrad)                                                                                         \
            ADAM_CASES(adam_loop_##NAME, a, o, true);                                                           \
        else                                                                                                    \
            ADAM_CASES(adam_loop_##NAME, a, o, false);                                                          \
    }
RT_ADAM(f32, float)
RT_ADAM(f64, double)

enum rt_status rt_cpu_adam_update(enum rt_dtype dt, int k, const struct rt_adam_param *ps,
                                  const struct rt_adam_opts *o)
{
    enum rt_status st = rt_backend_float_only("adam_update", dt);
    if (st != RT_OK)
        return st;
    for (int j = 0; j < k; j++) {
        if (dt == RT_F32)
            adam_f32(&ps[j], o);
        else
            adam_f64(&ps[j], o);
    }
    return RT_OK;
}
