/* Attention maps for attention transfer, forward and backward, mirroring cpu_attention.c (formulas in
 * backend.h and retort/loss.h): powers and sums in double for both dtypes. Layout of a block over one
 * sample: P positions side by side (consecutive threads read consecutive positions of a channel,
 * coalesced) times G = threads / P groups of channels, so a small map (hw = 49, 196) still keeps the
 * whole block loading. Forward: one block per sample; channel sums per position (partials of the G
 * groups combined in shared memory, in a fixed order), the map kept in shared memory (global scratch
 * for very large maps) until a block reduction has given its norm. Backward: a grid of samples times
 * channel slices; each block forms y . gy itself, then writes its slice. Deterministic: no atomics. */
#include "backend/cuda/cuda_kernels.h"

#define AT_EPS 1e-12
#define AT_FWD_THREADS 1024
#define AT_BWD_THREADS 512
/* maps of up to this many positions stay in shared memory (32 KiB of doubles) */
#define AT_SMEM_HW 4096

/* x^p, with the common p = 1, 2 exact and cheap (as the CPU's power()) */
__device__ static inline double power(double x, double p) { return p == 2 ? x * x : p == 1 ? x : pow(x, p); }
/* d x^p / dx (as the CPU's dpower()) */
__device__ static inline double dpower(double x, double p) { return p == 2 ? 2 * x : p == 1 ? 1 : p * pow(x, p - 1); }

/* positions side by side in a block of `threads`: all of them when they fit, at least 1 */
static int at_positions(int64_t hw, int threads) { return hw < 1 ? 1 : hw < threads ? (int)hw : threads; }

/* y[i] = a_i / max(||a_i||, 1e-12), a_i[s] = sum_k f[i, k, s]^p / c, norm[i] = ||a_i||. Thread t
 * handles position pl = t % P of each chunk of P positions and channels cg, cg + G, ... (cg = t / P;
 * threads with cg >= G only join the reductions). G > 1 only when P = hw, so then there is one chunk. */
template <typename T>
static __global__ void __launch_bounds__(AT_FWD_THREADS)
    at_fwd_kernel(int64_t n, int64_t c, int64_t hw, double p, int P, int G, const T *__restrict__ f,
                  T *__restrict__ y, T *__restrict__ nrm, double *__restrict__ gbuf)
{
    __shared__ double part[AT_FWD_THREADS];
    __shared__ double scratch[32];
    RT_CUDA_DYNAMIC_SHARED(double, sbuf);
    double *a = gbuf ? gbuf + (int64_t)blockIdx.x * hw : sbuf; /* this block's map */
    int t = (int)threadIdx.x, pl = t % P, cg = t / P;
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        double ss = 0;
        for (int64_t base = 0; base < hw; base += P) {
            int64_t s = base + pl;
            bool mine = cg < G && s < hw;
            double acc = 0;
            if (mine) {
                const T *fp = f + (i * c + cg) * hw + s;
                int64_t jump = (int64_t)G * hw;
#pragma unroll 4
                for (int64_t k = cg; k < c; k += G, fp += jump)
                    acc += power((double)*fp, p);
            }
            if (G > 1) { /* uniform: combine the groups' partial sums in group order */
                part[t] = acc;
                __syncthreads();
                if (cg == 0 && mine)
                    for (int q = 1; q < G; q++)
                        acc += part[q * P + pl];
                __syncthreads(); /* part is written again by the next sample */
            }
            if (cg == 0 && mine) {
                double v = acc / (double)c;
                a[s] = v;
                ss += v * v;
            }
        }
        /* the block sum's barriers also publish a[] to the whole block */
        double norm = sqrt(rt_cuda_block_sum(ss, scratch)), d = norm > AT_EPS ? norm : AT_EPS;
        T *yr = y + i * hw;
        for (int64_t s = t; s < hw; s += blockDim.x)
            yr[s] = (T)(a[s] / d);
        if (t == 0)
            nrm[i] = (T)norm;
        __syncthreads(); /* a[] is written again by the next sample */
    }
}

/* gf[i, k, s] = ga[s] * d f^p / df with ga = (gy - y (y . gy)) / (norm c), or gy / (1e-12 c) where
 * the norm was clamped. Block (bx, by) takes samples bx, bx + gridDim.x, ... and channels
 * [by * cper, (by + 1) * cper); threads are laid out as in the forward. */
template <typename T>
static __global__ void __launch_bounds__(AT_BWD_THREADS)
    at_bwd_kernel(int64_t n, int64_t c, int64_t hw, double p, int P, int G, int64_t cper, const T *__restrict__ f,
                  const T *__restrict__ y, const T *__restrict__ nrm, const T *__restrict__ gy, T *__restrict__ gf)
{
    __shared__ double scratch[32];
    int t = (int)threadIdx.x, pl = t % P, cg = t / P;
    int64_t k0 = (int64_t)blockIdx.y * cper, k1 = k0 + cper < c ? k0 + cper : c;
    double cd = (double)c;
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const T *yr = y + i * hw, *gr = gy + i * hw;
        double norm = (double)nrm[i], dot = 0;
        bool clamped = !(norm > AT_EPS); /* uniform over the block */
        if (!clamped) {
            for (int64_t s = t; s < hw; s += blockDim.x)
                dot += (double)yr[s] * (double)gr[s];
            dot = rt_cuda_block_sum(dot, scratch);
        }
        if (cg >= G)
            continue;
        for (int64_t s = pl; s < hw; s += P) {
            double ga = clamped ? (double)gr[s] / (AT_EPS * cd) : ((double)gr[s] - (double)yr[s] * dot) / (norm * cd);
            int64_t off = (i * c + k0 + cg) * hw + s, jump = (int64_t)G * hw;
#pragma unroll 4
            for (int64_t k = k0 + cg; k < k1; k += G, off += jump)
                gf[off] = (T)(ga * dpower((double)f[off], p));
        }
    }
}

template <typename T>
static enum rt_status at_fwd(int64_t n, int64_t c, int64_t hw, double p, const T *f, T *y, T *nrm)
{
    static const char *op = "cuda attention_map";
    int P = at_positions(hw, AT_FWD_THREADS), G = AT_FWD_THREADS / P;
    unsigned blocks = rt_cuda_blocks(n, 1);
    double *gbuf = NULL;
    size_t smem = (size_t)hw * sizeof(double), gbytes = 0;
    if (hw > AT_SMEM_HW) { /* too big for shared memory: one map per block in global scratch */
        unsigned resident = (unsigned)rt_cuda_sm_count() * 2; /* 2 blocks of 1024 threads fill an SM */
        blocks = blocks < resident ? blocks : resident;
        gbytes = (size_t)blocks * (size_t)hw * sizeof(double), smem = 0;
        enum rt_status st = rt_cuda_alloc(gbytes, (void **)&gbuf);
        if (st != RT_OK)
            return st;
    }
    enum rt_status st = RT_CUDA_LAUNCH(op, at_fwd_kernel<T>, blocks, AT_FWD_THREADS, smem, n, c, hw, p, P, G, f, y,
                                       nrm, gbuf);
    if (gbuf) /* queued after the kernel on the one stream: safe to hand back now */
        rt_cuda_free(gbuf, gbytes);
    return st;
}

template <typename T>
static enum rt_status at_bwd(int64_t n, int64_t c, int64_t hw, double p, const T *f, const T *y, const T *nrm,
                             const T *gy, T *gf)
{
    static const char *op = "cuda attention_map backward";
    int P = at_positions(hw, AT_BWD_THREADS), G = AT_BWD_THREADS / P;
    /* enough blocks to fill the device (4 of 512 threads per SM) when the batch alone does not: split
     * the channels into slices of at least G (one channel per thread and position) */
    int64_t want = (int64_t)rt_cuda_sm_count() * 4, slices = (want + n - 1) / n, most = (c + G - 1) / G;
    slices = slices < most ? slices : most;
    slices = slices < 65535 ? slices : 65535;
    slices = slices > 1 ? slices : 1;
    int64_t cper = (c + slices - 1) / slices;
    slices = (c + cper - 1) / cper; /* no empty slice */
    dim3 grid(rt_cuda_blocks(n, 1), (unsigned)slices);
    return RT_CUDA_LAUNCH(op, at_bwd_kernel<T>, grid, AT_BWD_THREADS, 0, n, c, hw, p, P, G, cper, f, y, nrm, gy, gf);
}

enum rt_status rt_cuda_attention_map(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p, const void *f,
                                     void *y, void *norm)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("attention_map", dt);
    if (n <= 0) /* hw == 0 still writes the norms (0), as on the CPU */
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "attention_map",
                           return at_fwd<T>(n, c, hw, p, (const T *)f, (T *)y, (T *)norm));
    return RT_OK;
}

enum rt_status rt_cuda_attention_map_backward(enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p,
                                              const void *f, const void *y, const void *norm, const void *gy,
                                              void *gf)
{
    if (dt != RT_F32 && dt != RT_F64)
        return rt_backend_float_only("attention_map backward", dt);
    if (n <= 0 || c <= 0 || hw <= 0) /* gf is empty */
        return RT_OK;
    RT_CUDA_DISPATCH_FLOAT(dt, "attention_map backward",
                           return at_bwd<T>(n, c, hw, p, (const T *)f, (const T *)y, (const T *)norm, (const T *)gy,
                                            (T *)gf));
    return RT_OK;
}
