/* The CPU backend table. Host memory is the device memory, so upload/download are plain copies;
 * allocation goes through the block cache in cpu_cache.c. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

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
    .index_select = rt_cpu_index_select,
    .gather = rt_cpu_gather,
    .scatter_add = rt_cpu_scatter_add,
    .index_add = rt_cpu_index_add,
    .uniform = rt_cpu_uniform,
    .normal = rt_cpu_normal,
};

const struct rt_backend *rt_backend_cpu(void) { return &cpu_backend; }
