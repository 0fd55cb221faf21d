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

/* .name = rt_cpu_name for each kernel of the list, NULL for those the CPU leaves out */
#define CPU_ENTRY(where, name, params) .name = RT_KERNEL_IF(where, CPU, rt_cpu_##name, NULL),

static const struct rt_backend cpu_backend = {
    .name = "cpu",
    .device = RT_CPU,
    .alloc = rt_cpu_alloc,
    .free = rt_cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    RT_BACKEND_KERNELS(CPU_ENTRY)
    .empty_cache = rt_cpu_cache_flush,
    .cache_stats = rt_cpu_cache_stats,
};

const struct rt_backend *rt_backend_cpu(void) { return &cpu_backend; }
