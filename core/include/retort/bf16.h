/* bfloat16 and mixed precision (autocast).
 *
 * bf16 is a storage dtype (RT_BF16): f32's top 16 bits. f32 -> bf16 rounds to nearest, ties to even;
 * NaN stays NaN (quiet, sign kept); infinities and signed zeros are kept; f32 subnormals round like
 * any other value (bf16 has the same subnormal range, shorter mantissa). bf16 -> f32 is exact.
 *
 * Autocast works as PyTorch's CPU autocast, with f32 master weights: while it is on (a per-thread
 * mode, like grad mode), rt_matmul/rt_bmm/rt_linear and rt_conv2d round their f32 operands to bf16
 * copies, multiply on the CPU's bf16 unit (oneDNN: AMX or AVX512-BF16) or a GPU's tensor cores
 * (cuBLAS; convolutions as im2col in bf16 + those products) and accumulate in f32; their
 * backward GEMMs/convolutions take the incoming gradient as bf16 too and write f32 gradients. Their
 * OUTPUT IS F32 (not bf16 as in PyTorch): every op after them (softmax, losses, norms, reductions)
 * then runs in f32 unchanged, and nothing downstream needs to learn bf16 promotion rules; the
 * products and their operands are where bf16 saves time. */
#ifndef RETORT_BF16_H
#define RETORT_BF16_H

#include <string.h>

#include "common.h"

/* f32 -> bf16 bits, round to nearest even; NaN -> quiet NaN of the same sign. */
static inline uint16_t rt_bf16_from_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 bits -> f32 (exact). */
static inline float rt_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Bulk conversions of n contiguous values (vectorised loops). */
void rt_bf16_from_f32_n(int64_t n, const float *src, uint16_t *dst);
void rt_bf16_to_f32_n(int64_t n, const uint16_t *src, float *dst);

/* Autocast mode of the calling thread: RT_F32 (off, the default) or RT_BF16. rt_autocast_set
 * returns the previous mode; it refuses bf16 (RT_ERR_DEVICE, saying why) where neither the CPU has a
 * bf16 unit (rt_bf16_unit) nor a GPU is available, and any dtype other than f32/bf16 (RT_ERR_ARG). */
enum rt_status rt_autocast_set(enum rt_dtype mode, enum rt_dtype *previous);
enum rt_dtype rt_autocast_get(void);

/* The bf16 matrix unit the CPU kernels use: "amx", "avx512_bf16", or NULL when there is none (then
 * *why says so; bf16 GEMMs and autocast are refused, casts still work). isa: oneDNN's name of the
 * instruction set it runs on ("avx512_core_amx", "avx512_core_bf16", ...), library: "oneDNN x.y.z".
 * oneDNN's own ONEDNN_MAX_CPU_ISA (e.g. AVX512_CORE) caps it, which is how a CPU without the unit is
 * tested on one that has it. Any argument may be NULL. */
const char *rt_bf16_unit(const char **isa, const char **library, const char **why);

/* Counters of the bf16 kernels run since start (GEMMs, convolutions forward and backward): lets
 * tests see which ops ran in bf16. */
uint64_t rt_bf16_kernel_calls(void);

#endif
