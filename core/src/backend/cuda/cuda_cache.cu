/* A caching allocator for device memory. cudaMalloc and cudaFree synchronise the device and cost
 * tens of microseconds each; a training step asks for the same few sizes every step, so freed
 * blocks are kept per rounded size and handed out again. All work runs on one stream, in issue
 * order, so a block freed by the host can be reused at once: any kernel still reading it was
 * queued before the kernel that will next write it. Sizes round up to 512 bytes below 1 MiB and to
 * 2 MiB above, so that shapes that vary a little (the last batch of an epoch) share blocks. When
 * cudaMalloc fails, the cache is emptied and the allocation tried once more before out-of-memory
 * is reported. */
#include <stdlib.h>

#include "backend/cuda/cuda_internal.cuh"

extern "C" {
#include "backend/block_bins.h"
}

#define SMALL_ROUND ((size_t)512)
#define LARGE_ROUND ((size_t)2 << 20)
#define LARGE_FROM ((size_t)1 << 20)

static struct {
    struct rt_block_bins bins;
    size_t reserved, peak_reserved; /* bytes held from the driver: in use + cached */
} cache;

static size_t rounded_size(size_t nbytes)
{
    size_t r = nbytes < LARGE_FROM ? SMALL_ROUND : LARGE_ROUND;
    return nbytes == 0 ? SMALL_ROUND : (nbytes + r - 1) / r * r;
}

static void release(void *p) { cudaFree(p); }

size_t rt_cuda_cache_flush(void)
{
    size_t released = rt_block_bins_drain(&cache.bins, release);
    cache.reserved -= released;
    return released;
}

void rt_cuda_cache_stats(size_t *cached, size_t *peak_reserved)
{
    *cached = cache.bins.cached;
    *peak_reserved = cache.peak_reserved;
}

/* A block of `size` bytes handed out for nbytes: under the simulator the tail past the tensor's
 * bytes (rounded to 8, for kernels that read a whole aligned word around a byte) is unusable. */
static void *owned(void *p, size_t nbytes, size_t size)
{
    size_t used = (nbytes + 7) / 8 * 8;
    RT_CUDA_SIM_OWNED(p, used);
    RT_CUDA_SIM_UNOWNED((char *)p + used, size - used);
    return p;
}

enum rt_status rt_cuda_alloc(size_t nbytes, void **out)
{
    enum rt_status st = rt_cuda_ready("cuda alloc");
    if (st != RT_OK)
        return st;
    if (nbytes > SIZE_MAX - LARGE_ROUND)
        return rt_error(RT_ERR_OOM, "cuda alloc: cannot allocate %zu bytes", nbytes);
    size_t size = rounded_size(nbytes);
    void *p = rt_block_bins_take(&cache.bins, size);
    if (p) {
        *out = owned(p, nbytes, size);
        return RT_OK;
    }
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation && cache.bins.cached > 0) {
        cudaGetLastError(); /* clear it: the retry decides */
        rt_cuda_cache_flush();
        e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (e != cudaErrorMemoryAllocation)
            return rt_cuda_error(e, "cuda alloc");
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError();
        return rt_error(RT_ERR_OOM,
                        "cuda alloc: out of GPU memory allocating %.1f MiB (%.1f MiB held by retort, %.1f MiB free of "
                        "%.1f MiB)",
                        (double)size / 1048576.0, (double)cache.reserved / 1048576.0, (double)free_b / 1048576.0,
                        (double)total_b / 1048576.0);
    }
    cache.reserved += size;
    if (cache.reserved > cache.peak_reserved)
        cache.peak_reserved = cache.reserved;
    *out = owned(p, nbytes, size);
    return RT_OK;
}

void rt_cuda_free(void *p, size_t nbytes)
{
    if (!p)
        return;
    size_t size = rounded_size(nbytes);
    if (rt_block_bins_put(&cache.bins, size, p)) {
        RT_CUDA_SIM_UNOWNED(p, size);
        return;
    }
    /* no memory to remember it: give it back (cudaFree waits for the device, so it is safe) */
    cudaFree(p);
    cache.reserved -= size;
}
