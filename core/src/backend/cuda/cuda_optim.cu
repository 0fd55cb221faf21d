/* Fused SGD and Adam steps on the GPU, the twins of cpu/cpu_optim.c: every parameter of a step in one
 * launch (a few for very many parameters), each element of a parameter, its gradient and its state
 * read and written once. The operations run in the CPU's order, and products that feed an
 * addition use __fmul_rn / __dmul_rn so nvcc cannot fuse them into FMAs (the CPU build never does),
 * so f32 and f64 results agree with the CPU's to the bit. */
#include "backend/cuda/cuda_kernels.h"

enum { SGD_PLAIN, SGD_FIRST_NESTEROV, SGD_FIRST, SGD_NESTEROV, SGD_MOMENTUM };

/* One element of the step; lr, m (momentum), wd (weight decay) and keep (1 - dampening) already in T,
 * as on the CPU. */
template <typename T, int CASE>
__device__ __forceinline__ void sgd_element(int64_t i, const T *__restrict__ g, T *__restrict__ p,
                                            T *__restrict__ buf, T lr, T m, T wd, T keep)
{
    T pi = p[i], d = g[i] + rt_cuda_nc_mul(wd, pi);
    if constexpr (CASE == SGD_PLAIN) {
        p[i] = pi - rt_cuda_nc_mul(lr, d);
    } else if constexpr (CASE == SGD_FIRST_NESTEROV) {
        buf[i] = d;
        p[i] = pi - rt_cuda_nc_mul(lr, d + rt_cuda_nc_mul(m, d));
    } else if constexpr (CASE == SGD_FIRST) {
        buf[i] = d;
        p[i] = pi - rt_cuda_nc_mul(lr, d);
    } else if constexpr (CASE == SGD_NESTEROV) {
        T b = rt_cuda_nc_mul(m, buf[i]) + rt_cuda_nc_mul(keep, d);
        buf[i] = b;
        p[i] = pi - rt_cuda_nc_mul(lr, d + rt_cuda_nc_mul(m, b));
    } else {
        T b = rt_cuda_nc_mul(m, buf[i]) + rt_cuda_nc_mul(keep, d);
        buf[i] = b;
        p[i] = pi - rt_cuda_nc_mul(lr, b);
    }
}

/* Many parameters in one launch (the multi-tensor pattern): the batch, passed by value as the
 * kernel's argument, lists up to MT_TENSORS parameters (P: rt_sgd_param or rt_adam_param) and gives
 * each block one chunk of one of them. Sized to stay under the 4 KB argument limit. */
#define MT_TENSORS 24
#define MT_BLOCKS 256
#define MT_CHUNK 8192 /* elements per block: 32 per thread */
template <typename P> struct mt_batch {
    P param[MT_TENSORS];
    unsigned char tensor[MT_BLOCKS]; /* block -> parameter */
    int chunk[MT_BLOCKS];            /* block -> chunk of it */
};

/* this block's parameter and its element range [*start, *end) */
template <typename P>
__device__ __forceinline__ const P &mt_block(const mt_batch<P> &b, int64_t *start, int64_t *end)
{
    const P &a = b.param[b.tensor[blockIdx.x]];
    *start = (int64_t)b.chunk[blockIdx.x] * MT_CHUNK;
    *end = *start + MT_CHUNK < a.n ? *start + MT_CHUNK : a.n;
    return a;
}

/* Deals the parameters' chunks out to batches of at most MT_TENSORS parameters and MT_BLOCKS blocks
 * and launches each batch when it is full (launch(batch, blocks)); a parameter split across two
 * batches is listed in both. */
template <typename P, typename L> static enum rt_status mt_apply(int k, const P *ps, L launch)
{
    mt_batch<P> b;
    int nt = 0, nb = 0;
    enum rt_status st = RT_OK;
    for (int j = 0; j < k && st == RT_OK; j++) {
        int64_t chunks = (ps[j].n + MT_CHUNK - 1) / MT_CHUNK;
        for (int64_t c = 0; c < chunks && st == RT_OK; c++) {
            if (c == 0 || nt == 0)
                b.param[nt++] = ps[j];
            b.tensor[nb] = (unsigned char)(nt - 1), b.chunk[nb] = (int)c;
            nb++;
            if (nb == MT_BLOCKS || (nt == MT_TENSORS && c == chunks - 1)) {
                st = launch(b, nb);
                nt = nb = 0;
            }
        }
    }
    if (st == RT_OK && nb > 0)
        st = launch(b, nb);
    return st;
}

/* --- SGD --- */

template <typename T, bool MOMENTUM, bool NESTEROV>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    sgd_kernel(const mt_batch<struct rt_sgd_param> b, T lr, T m, T wd, T keep)
{
    int64_t start, end;
    const struct rt_sgd_param &a = mt_block(b, &start, &end);
    const T *g = (const T *)a.g;
    T *p = (T *)a.p, *buf = (T *)a.buf;
    if (!MOMENTUM) {
        for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
            sgd_element<T, SGD_PLAIN>(i, g, p, buf, lr, m, wd, keep);
    } else if (a.first) { /* uniform over the block: every block holds one parameter */
        for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
            sgd_element<T, NESTEROV ? SGD_FIRST_NESTEROV : SGD_FIRST>(i, g, p, buf, lr, m, wd, keep);
    } else {
        for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
            sgd_element<T, NESTEROV ? SGD_NESTEROV : SGD_MOMENTUM>(i, g, p, buf, lr, m, wd, keep);
    }
}

template <typename T>
static enum rt_status sgd_typed(int k, const struct rt_sgd_param *ps, const struct rt_sgd_opts *o)
{
    const T lr = (T)o->lr, m = (T)o->momentum, wd = (T)o->weight_decay, keep = (T)(1 - o->dampening);
    return mt_apply(k, ps, [&](const mt_batch<struct rt_sgd_param> &b, int blocks) {
        if (o->momentum == 0)
            return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, false, false>), blocks, RT_CUDA_THREADS, 0, b,
                                  lr, m, wd, keep);
        if (o->nesterov)
            return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, true, true>), blocks, RT_CUDA_THREADS, 0, b, lr,
                                  m, wd, keep);
        return RT_CUDA_LAUNCH("cuda sgd_update", (sgd_kernel<T, true, false>), blocks, RT_CUDA_THREADS, 0, b, lr, m,
                              wd, keep);
    });
}

enum rt_status rt_cuda_sgd_update(enum rt_dtype dt, int k, const struct rt_sgd_param *ps, const struct rt_sgd_opts *o)
{
    RT_CUDA_DISPATCH_FLOAT(dt, "sgd_update", return sgd_typed<T>(k, ps, o));
    return RT_OK; /* not reached */
}

/* --- Adam: the CPU kernel's operations in its order (cpu_optim.c), products kept out of FMAs --- */

template <typename T, bool DECAY, bool DECOUPLED, bool AMS>
static __global__ void __launch_bounds__(RT_CUDA_THREADS)
    adam_kernel(const mt_batch<struct rt_adam_param> b, T b1, T c1, T b2, T c2, T wd, T shrink, T eps)
{
    int64_t start, end;
    const struct rt_adam_param &a = mt_block(b, &start, &end);
    const T *g = (const T *)a.g;
    T *p = (T *)a.p, *m = (T *)a.m, *v = (T *)a.v, *vmax = (T *)a.vmax;
    const T bc2 = (T)a.bc2_sqrt, step = (T)(-a.step_size);
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
        T pi = p[i], gi = g[i];
        if (DECAY && DECOUPLED)
            pi = rt_cuda_nc_mul(pi, shrink) + (T)0;
        else if (DECAY)
            gi = gi + (rt_cuda_nc_mul(pi, wd) + (T)0);
        T mi = rt_cuda_nc_mul(m[i], b1) + (T)0;
        mi = mi + rt_cuda_nc_mul(c1, gi);
        T vi = rt_cuda_nc_mul(v[i], b2) + (T)0;
        vi = vi + rt_cuda_nc_mul(c2, rt_cuda_nc_mul(gi, gi));
        m[i] = mi, v[i] = vi;
        T second = vi;
        if (AMS) {
            T w = vmax[i];
            second = (w != w || w > vi) ? w : vi;
            vmax[i] = second;
        }
        T denom = rt_cuda_nc_mul(sqrt(second) / bc2, (T)1) + eps;
        p[i] = pi + rt_cuda_nc_mul(step, mi / denom);
    }
}

template <typename T, bool DECAY, bool DECOUPLED>
static enum rt_status adam_launch(const mt_batch<struct rt_adam_param> &b, int blocks, const struct rt_adam_opts *o)
{
    const T b1 = (T)o->beta1, c1 = (T)(1 - o->beta1), b2 = (T)o->beta2, c2 = (T)(1 - o->beta2);
    const T wd = (T)o->weight_decay, shrink = (T)(1 - o->lr * o->weight_decay), eps = (T)o->eps;
    if (o->amsgrad)
        return RT_CUDA_LAUNCH("cuda adam_update", (adam_kernel<T, DECAY, DECOUPLED, true>), blocks, RT_CUDA_THREADS, 0,
                              b, b1, c1, b2, c2, wd, shrink, eps);
    return RT_CUDA_LAUNCH("cuda adam_update", (adam_kernel<T, DECAY, DECOUPLED, false>), blocks, RT_CUDA_THREADS, 0, b,
                          b1, c1, b2, c2, wd, shrink, eps);
}

template <typename T>
static enum rt_status adam_typed(int k, const struct rt_adam_param *ps, const struct rt_adam_opts *o)
{
    return mt_apply(k, ps, [&](const mt_batch<struct rt_adam_param> &b, int blocks) {
        if (o->weight_decay == 0)
            return adam_launch<T, false, false>(b, blocks, o);
        return o->decoupled ? adam_launch<T, true, true>(b, blocks, o) : adam_launch<T, true, false>(b, blocks, o);
    });
}

enum rt_status rt_cuda_adam_update(enum rt_dtype dt, int k, const struct rt_adam_param *ps,
                                   const struct rt_adam_opts *o)
{
    RT_CUDA_DISPATCH_FLOAT(dt, "adam_update", return adam_typed<T>(k, ps, o));
    return RT_OK; /* not reached */
}
