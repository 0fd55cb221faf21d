/* Internal to the CPU backend's bf16 kernels (cpu_bf16.c, cpu_gemm_dnnl.c, cpu_conv_dnnl.c). */
#ifndef RETORT_CPU_BF16_H
#define RETORT_CPU_BF16_H

#include "backend/cpu/cpu_internal.h"

/* Counts one bf16 kernel run (rt_bf16_kernel_calls). */
void rt_cpu_bf16_count(void);

/* RT_OK when the CPU has a bf16 unit, else RT_ERR_DEVICE "<op>: ... needs a CPU bf16 unit: <why>". */
enum rt_status rt_cpu_bf16_ready(const char *op);

#ifdef RETORT_HAVE_DNNL
/* oneDNN's bf16 convolutions (cpu_conv_dnnl.c): x, w, gy bf16; b, y, gx, gw f32. */
enum rt_status rt_cpu_dnnl_conv2d_bf16(const struct rt_conv2d_shape *s, const void *x, const void *w, const float *b,
                                       float *y);
enum rt_status rt_cpu_dnnl_conv2d_backward_bf16(const struct rt_conv2d_shape *s, const void *x, const void *w,
                                                const void *gy, float *gx, float *gw);
#endif

#endif
