/* Function multi-versioning for the element-wise and reduction loops. The library is built for
 * x86-64-v2 (SSE4.2) so that it runs on any x86-64 machine of the last decade; the hot typed loops
 * (add, mul, relu, affine, axpy, the bias gradient's column sums) are also compiled for x86-64-v3
 * (AVX2, FMA) and x86-64-v4 (AVX-512), and the dynamic loader picks the widest the CPU has on first
 * call (GCC's target_clones, an ifunc). Loops that stream memory gain little from it; loops over
 * data already in cache (a batch's activations, a bias gradient) run up to 2-3x faster. GCC only:
 * other compilers (clang's fuzz builds) get the plain x86-64-v2 code. */
#ifndef RETORT_CPU_CLONES_H
#define RETORT_CPU_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RETORT_NO_CLONES)
#define RT_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RT_CPU_CLONES
#endif

#endif
