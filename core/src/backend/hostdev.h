/* Functions both backends compile: plain C for the CPU, __host__ __device__ under nvcc, so the GPU
 * computes bit for bit what the CPU does (random draws, conversions to integers). */
#ifndef RETORT_BACKEND_HOSTDEV_H
#define RETORT_BACKEND_HOSTDEV_H

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
