/* Random fills on the GPU, the twin of cpu/cpu_random.c. Counter-based: element i is a pure function
 * of (seed, base + i) through rt__rng_mix (backend/hostdev.h, the mix behind rt_rng_bits), so one
 * thread per element (grid-stride) reproduces the CPU's values: uniform bit for bit, normal to within
 * an ulp. Sums of products are written with __dmul_rn so that nvcc cannot fuse them into FMAs, which
 * the CPU build never uses: a fused multiply-add would round differently. */
#include "backend/cuda/cuda_kernels.h"

#define TWO_PI 6.283185307179586476925286766559

/* U[lo, hi) from the top 24 (f32) or 53 (f64) bits: exactly representable steps in [0, 1). */
static __global__ void uniform_f32_kernel(int64_t n, uint64_t seed, uint64_t base, double lo, double span, float flo,
                                          float fhi, float *p)
{
    RT_CUDA_LOOP(i, n)
    {
        double u = (double)(rt__rng_mix(seed, base + (uint64_t)i) >> 40) * 0x1p-24;
        float v = (float)(lo + __dmul_rn(span, u));
        /* rounding to float may land on hi; keep the interval half-open */
        p[i] = v >= fhi && fhi > flo ? nextafterf(fhi, flo) : v;
    }
}

static __global__ void uniform_f64_kernel(int64_t n, uint64_t seed, uint64_t base, double lo, double hi, double span,
                                          double *p)
{
    RT_CUDA_LOOP(i, n)
    {
        double u = rt__rng_unit53(seed, base + (uint64_t)i);
        double v = lo + __dmul_rn(span, u);
        p[i] = v >= hi && hi > lo ? nextafter(hi, lo) : v;
    }
}

enum rt_status rt_cuda_uniform(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double lo, double hi,
                               void *out)
{
    enum rt_status st = rt_backend_float_only("uniform", dt);
    if (st != RT_OK || n <= 0)
        return st;
    double span = hi - lo;
    if (dt == RT_F32)
        return RT_CUDA_LAUNCH("cuda uniform", uniform_f32_kernel, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, seed,
                              base, lo, span, (float)lo, (float)hi, (float *)out);
    return RT_CUDA_LAUNCH("cuda uniform", uniform_f64_kernel, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, seed, base,
                          lo, hi, span, (double *)out);
}

/* Box-Muller from one 64-bit draw per element (no pairing between elements): u1 in (0, 1] from
 * bits 40..63 (+1 so log never sees 0), u2 in [0, 1) from bits 0..23. Computed in double as on the
 * CPU. sqrt is correctly rounded on both sides, but CUDA's double log (1 ulp) and cos (2 ulp) may
 * differ from glibc's by an ulp or two in double: f64 results agree to a few ulps, and f32 results,
 * rounded from those doubles, agree exactly except within an ulp of a rounding boundary. */
__device__ __forceinline__ double normal_at(uint64_t seed, uint64_t c)
{
    uint64_t r = rt__rng_mix(seed, c);
    double u1 = (double)((r >> 40) + 1) * 0x1p-24;
    double u2 = (double)(r & 0xFFFFFF) * 0x1p-24;
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

template <typename T>
static __global__ void normal_kernel(int64_t n, uint64_t seed, uint64_t base, double mean, double std, T *p)
{
    RT_CUDA_LOOP(i, n)
    {
        p[i] = (T)(mean + __dmul_rn(std, normal_at(seed, base + (uint64_t)i)));
    }
}

enum rt_status rt_cuda_normal(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double mean, double std,
                              void *out)
{
    enum rt_status st = rt_backend_float_only("normal", dt);
    if (st != RT_OK || n <= 0)
        return st;
    RT_CUDA_DISPATCH_FLOAT(dt, "normal",
                           return RT_CUDA_LAUNCH("cuda normal", normal_kernel<T>, rt_cuda_blocks(n), RT_CUDA_THREADS,
                                                 0, n, seed, base, mean, std, (T *)out));
    return RT_OK; /* not reached */
}

/* the mask from uniform's f64 draw (u = bits * 2^-53, exactly as lo + span * u with lo 0, span 1) */
template <typename T>
static __global__ void dropout_kernel(int64_t n, uint64_t seed, uint64_t base, double keep, T scale,
                                      const T *__restrict__ x, T *__restrict__ y, T *__restrict__ mask)
{
    RT_CUDA_LOOP(i, n)
    {
        double u = rt__rng_unit53(seed, base + (uint64_t)i);
        T m = u < keep ? scale : (T)0;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

enum rt_status rt_cuda_dropout(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double keep, double scale,
                               const void *x, void *y, void *mask)
{
    enum rt_status st = rt_backend_float_only("dropout", dt);
    if (st != RT_OK || n <= 0)
        return st;
    RT_CUDA_DISPATCH_FLOAT(dt, "dropout",
                           return RT_CUDA_LAUNCH("cuda dropout", dropout_kernel<T>, rt_cuda_blocks(n),
                                                 RT_CUDA_THREADS, 0, n, seed, base, keep, (T)scale, (const T *)x,
                                                 (T *)y, (T *)mask));
    return RT_OK;
}
