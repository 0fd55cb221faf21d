/* The CPU backend table, plus memory: host memory is the device memory, so upload/download are
 * plain copies. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"

/* 64-byte alignment: a cache line and a full AVX-512 vector, what OpenBLAS and vector loops like. */
#define RT_CPU_ALIGN ((size_t)64)

static enum rt_status cpu_alloc(size_t nbytes, void **out)
{
    /* aligned_alloc needs a multiple of the alignment; size 0 still gets a real block so callers
     * can treat every storage pointer as valid. */
    if (nbytes > SIZE_MAX - RT_CPU_ALIGN)
        return rt_error(RT_ERR_OOM, "cpu alloc: out of memory allocating %zu bytes", nbytes);
    size_t rounded = nbytes == 0 ? RT_CPU_ALIGN : (nbytes + RT_CPU_ALIGN - 1) & ~(RT_CPU_ALIGN - 1);
    void *p = aligned_alloc(RT_CPU_ALIGN, rounded);
    if (!p)
        return rt_error(RT_ERR_OOM, "cpu alloc: out of memory allocating %zu bytes", nbytes);
    *out = p;
    return RT_OK;
}

static void cpu_free(void *p) { free(p); }

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
    .alloc = cpu_alloc,
    .free = cpu_free,
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
