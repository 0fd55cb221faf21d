/* The CPU backend table. Host memory is the device memory, so upload/download are plain copies;
 * allocation goes through the block cache in cpu_cache.c. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_nn.h"

static enum rt_status cpu_upload(void *dst, const void *host_src, size_t nbytes)
{
    if (nbytes)
        memcpy(dst, host_src, nbytes);
    return RT_OK;
}

static enum rt_status cpu_download(void *host_dst, const void *src, size_t nbytes)
{
    if (nbytes)
        memcpy(host_dst, src, nbytes);
    return RT_OK;
}

static const struct rt_backend cpu_backend = {
    .name = "cpu",
    .device = RT_CPU,
    .alloc = rt_cpu_alloc,
    .free = rt_cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = rt_cpu_copy,
    .fill = rt_cpu_fill,
    .unary = rt_cpu_unary,
    .binary = rt_cpu_binary,
    .where = rt_cpu_where,
    .reduce = rt_cpu_reduce,
    .gemm = rt_cpu_gemm,
    .softmax = rt_cpu_softmax,
    .softmax_backward = rt_cpu_softmax_backward,
    .check_index = rt_cpu_check_index,
    .index_select = rt_cpu_index_select,
    .index_copy = rt_cpu_index_copy,
    .gather = rt_cpu_gather,
    .scatter_add = rt_cpu_scatter_add,
    .index_add = rt_cpu_index_add,
    .uniform = rt_cpu_uniform,
    .normal = rt_cpu_normal,
    .dropout = rt_cpu_dropout,
    .im2col = rt_cpu_im2col,
    .col2im = rt_cpu_col2im,
    .conv2d = rt_cpu_conv2d,
    .conv2d_backward = rt_cpu_conv2d_backward,
    .max_pool2d = rt_cpu_max_pool2d,
    .max_pool2d_backward = rt_cpu_max_pool2d_backward,
    .avg_pool2d = rt_cpu_avg_pool2d,
    .avg_pool2d_backward = rt_cpu_avg_pool2d_backward,
    .adaptive_avg_pool2d = rt_cpu_adaptive_avg_pool2d,
    .adaptive_avg_pool2d_backward = rt_cpu_adaptive_avg_pool2d_backward,
    .batch_norm_stats = rt_cpu_batch_norm_stats,
    .batch_norm_apply = rt_cpu_batch_norm_apply,
    .batch_norm_backward = rt_cpu_batch_norm_backward,
    .class_rows = rt_cpu_class_rows,
    .cross_entropy = rt_cpu_cross_entropy,
    .cross_entropy_backward = rt_cpu_cross_entropy_backward,
    .weighted_mean = rt_cpu_weighted_mean,
    .count_correct = rt_cpu_count_correct,
    .kd = rt_cpu_kd,
    .kd_reduce = rt_cpu_kd_reduce,
    .kd_backward = rt_cpu_kd_backward,
    .attention_map = rt_cpu_attention_map,
    .attention_map_backward = rt_cpu_attention_map_backward,
    .leaky_relu = rt_cpu_leaky_relu,
    .leaky_relu_backward = rt_cpu_leaky_relu_backward,
    .axpy = rt_cpu_axpy,
    .accumulate = rt_cpu_accumulate,
    .sgd_update = rt_cpu_sgd_update,
    .adam_update = rt_cpu_adam_update,
    .empty_cache = rt_cpu_cache_flush,
    .cache_stats = rt_cpu_cache_stats,
};

const struct rt_backend *rt_backend_cpu(void) { return &cpu_backend; }
