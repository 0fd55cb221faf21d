/* Random fills. Counter-based: element i is a pure function of (seed, base + i) through
 * rt_rng_bits, so the values never depend on thread count, chunking or device. dropout draws its
 * mask as uniform's f64 values and applies it in the same pass. */
#include "backend/cpu/cpu_internal.h"

#define TWO_PI 6.283185307179586476925286766559

/* U[lo, hi) from the top 24 (f32) or 53 (f64) bits: exactly representable steps in [0, 1). */
enum rt_status rt_cpu_uniform(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double lo, double hi,
                              void *out)
{
    enum rt_status st = rt_backend_float_only("uniform", dt);
    if (st != RT_OK)
        return st;
    double span = hi - lo;
    if (dt == RT_F32) {
        float *p = out, flo = (float)lo, fhi = (float)hi;
#pragma omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double u = (double)(rt__rng_mix(seed, base + (uint64_t)i) >> 40) * 0x1p-24;
            float v = (float)(lo + span * u);
            /* rounding to float may land on hi; keep the interval half-open */
            p[i] = v >= fhi && fhi > flo ? nextafterf(fhi, flo) : v;
        }
    } else {
        double *p = out;
#pragma omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double u = rt__rng_unit53(seed, base + (uint64_t)i);
            double v = lo + span * u;
            p[i] = v >= hi && hi > lo ? nextafter(hi, lo) : v;
        }
    }
    return RT_OK;
}

/* Box-Muller from one 64-bit draw per element (no pairing between elements): u1 in (0, 1] from
 * bits 40..63 (+1 so log never sees 0), u2 in [0, 1) from bits 0..23. */
static inline double normal_at(uint64_t seed, uint64_t c)
{
    uint64_t r = rt__rng_mix(seed, c);
    double u1 = (double)((r >> 40) + 1) * 0x1p-24;
    double u2 = (double)(r & 0xFFFFFF) * 0x1p-24;
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

enum rt_status rt_cpu_normal(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double mean, double std,
                             void *out)
{
    enum rt_status st = rt_backend_float_only("normal", dt);
    if (st != RT_OK)
        return st;
    if (dt == RT_F32) {
        float *p = out;
#pragma omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)(mean + std * normal_at(seed, base + (uint64_t)i));
    } else {
        double *p = out;
#pragma omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++)
            p[i] = mean + std * normal_at(seed, base + (uint64_t)i);
    }
    return RT_OK;
}

#define DEF_DROPOUT(SUF, T)                                                                                       \
    static void dropout_##SUF(int64_t n, uint64_t seed, uint64_t base, double keep, T scale, const T *x, T *y,   \
                              T *mask)                                                                            \
    {                                                                                                             \
        _Pragma("omp parallel for if (n >= RT_CPU_PARALLEL_MIN) schedule(static)")                               \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            double u = rt__rng_unit53(seed, base + (uint64_t)i);                                              \
            T m = u < keep ? scale : (T)0;                                                                        \
            mask[i] = m;                                                                                          \
            y[i] = x[i] * m;                                                                                      \
        }                                                                                                         \
    }
DEF_DROPOUT(f32, float)
DEF_DROPOUT(f64, double)

enum rt_status rt_cpu_dropout(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double keep, double scale,
                              const void *x, void *y, void *mask)
{
    enum rt_status st = rt_backend_float_only("dropout", dt);
    if (st == RT_OK && dt == RT_F32)
        dropout_f32(n, seed, base, keep, (float)scale, x, y, mask);
    else if (st == RT_OK)
        dropout_f64(n, seed, base, keep, scale, x, y, mask);
    return st;
}
