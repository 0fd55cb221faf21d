/* Functions both backends compile: plain C for the CPU, __host__ __device__ under nvcc, so the GPU
 * computes bit for bit what the CPU does (random draws, conversions to integers, f32/f64 elements
 * read and written as doubles). */
#ifndef RETORT_BACKEND_HOSTDEV_H
#define RETORT_BACKEND_HOSTDEV_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __CUDACC__
#define RT_HOSTDEV __host__ __device__
#else
#define RT_HOSTDEV
#endif

/* 64 random bits for counter value c under seed (splitmix64-style mixing): rt_rng_bits. */
RT_HOSTDEV static inline uint64_t rt__rng_mix(uint64_t seed, uint64_t c)
{
    uint64_t z = c * 0x9E3779B97F4A7C15ull + (seed ^ 0xD1B54A32D192ED03ull) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* U[0, 1) from the top 53 bits of draw c: uniform's f64 values, and the draws behind dropout's mask */
RT_HOSTDEV static inline double rt__rng_unit53(uint64_t seed, uint64_t c)
{
    return (double)(rt__rng_mix(seed, c) >> 11) * 0x1p-53;
}

/* Element i of an f32 (f32 true) or f64 array as a double, and a double stored into one (rounded) */
RT_HOSTDEV static inline double rt__float_at(bool f32, const void *p, int64_t i)
{
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
RT_HOSTDEV static inline void rt__float_set(bool f32, void *p, int64_t i, double v)
{
    if (f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* double -> int64 without undefined behaviour: NaN gives 0, out-of-range values saturate. */
RT_HOSTDEV static inline int64_t rt__f2i64(double v)
{
    if (v != v)
        return 0;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

#endif
