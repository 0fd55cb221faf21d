/* The CPU kernels of the neural-network ops (cpu_conv.c, cpu_pool.c, cpu_norm.c, cpu_loss.c, cpu_kd.c,
 * cpu_attention.c) are declared with the others from the kernel list in backend/backend.h; here only
 * oneDNN's, which are not table entries. Float dtypes only. */
#ifndef RETORT_CPU_NN_H
#define RETORT_CPU_NN_H

#include "backend/cpu/cpu_internal.h"

/* oneDNN's direct convolutions (cpu_conv_dnnl.c, built with RETORT_HAVE_DNNL): f32 only; *done false
 * when oneDNN has no kernel for the shape. Signatures as rt_cpu_conv2d's. */
enum rt_status rt_cpu_dnnl_conv2d(const struct rt_conv2d_shape *s, const float *x, const float *w, const float *b,
                                  float *y, bool *done);
enum rt_status rt_cpu_dnnl_conv2d_backward(const struct rt_conv2d_shape *s, const float *x, const float *w,
                                           const float *gy, float *gx, float *gw, bool *done);

#endif
