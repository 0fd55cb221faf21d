/* The kernels behind the CUDA backend table, declared from the kernel list RT_BACKEND_KERNELS in
 * backend/backend.h (pointers are device memory). Files: cuda_elementwise.cu (copy, fill,
 * unary, binary, where, axpy), cuda_reduce.cu, cuda_gemm.cu, cuda_softmax.cu, cuda_index.cu,
 * cuda_random.cu, cuda_conv.cu (im2col, col2im), cuda_pool.cu, cuda_norm.cu, cuda_loss.cu (cross
 * entropy), cuda_kd.cu, cuda_attention.cu, cuda_optim.cu (sgd). */
#ifndef RETORT_CUDA_KERNELS_H
#define RETORT_CUDA_KERNELS_H

#include "backend/cuda/cuda_internal.cuh"

/* cuBLAS handle on the backend's stream (cuda_gemm.cu); on failure writes why and returns an error */
enum rt_status rt_cuda_blas_start(cudaStream_t stream, char *why, size_t why_len);

/* rt_cuda_<name> for each line of RT_BACKEND_KERNELS (backend/backend.h) built for CUDA */
#define RT_CUDA_KERNEL_PROTO(where, name, params) RT_KERNEL_IF(where, CUDA, enum rt_status rt_cuda_##name params;, )
RT_BACKEND_KERNELS(RT_CUDA_KERNEL_PROTO)
#undef RT_CUDA_KERNEL_PROTO

#endif
