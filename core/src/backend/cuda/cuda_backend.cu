/* The CUDA backend table and its context: device 0, one non-blocking stream that every kernel, copy
 * and cuBLAS call is queued on, and the error plumbing. The context starts on first use, so a build
 * with CUDA runs unchanged on a machine without a GPU: the first CUDA tensor gets a clear error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.cuh"
#include "backend/cuda/cuda_kernels.h"

extern "C" {
#include "retort/device.h"
}

static struct {
    int state; /* 0: not tried, 1: ready, -1: failed (why says why) */
    cudaStream_t stream;
    struct rt_cuda_fault *fault_host, *fault_dev; /* one mapped record (rt_cuda_fault_slot) */
    uint64_t launches; /* every launch, library call and copy passes rt_cuda_check once */
    int sms;
    char why[256];
    char desc[384];
} ctx;

static bool start(void)
{
    if (ctx.state != 0)
        return ctx.state > 0;
    ctx.state = -1;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(ctx.why, sizeof ctx.why, "no usable CUDA driver or GPU (cudaGetDeviceCount: %s)",
                 cudaGetErrorString(e));
        cudaGetLastError(); /* not sticky: leave no stale error for later calls */
        return false;
    }
    if (count == 0) {
        snprintf(ctx.why, sizeof ctx.why, "no GPU found");
        return false;
    }
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(ctx.why, sizeof ctx.why, "the GPU could not be set up: %s", cudaGetErrorString(e));
        cudaGetLastError();
        return false;
    }
    ctx.sms = prop.multiProcessorCount;
    snprintf(ctx.desc, sizeof ctx.desc, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
             prop.multiProcessorCount, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    if ((e = cudaHostAlloc((void **)&ctx.fault_host, sizeof *ctx.fault_host, cudaHostAllocMapped)) != cudaSuccess ||
        (memset(ctx.fault_host, 0, sizeof *ctx.fault_host),
         (e = cudaHostGetDevicePointer((void **)&ctx.fault_dev, ctx.fault_host, 0)) != cudaSuccess)) {
        snprintf(ctx.why, sizeof ctx.why, "the GPU could not map host memory: %s", cudaGetErrorString(e));
        cudaGetLastError();
        if (ctx.fault_host)
            cudaFreeHost(ctx.fault_host);
        ctx.fault_host = NULL;
        cudaStreamDestroy(ctx.stream);
        return false;
    }
    if (rt_cuda_blas_start(ctx.stream, ctx.why, sizeof ctx.why) != RT_OK) {
        cudaFreeHost(ctx.fault_host);
        ctx.fault_host = NULL;
        cudaStreamDestroy(ctx.stream);
        return false;
    }
    ctx.state = 1;
    return true;
}

enum rt_status rt_cuda_ready(const char *op)
{
    if (start())
        return RT_OK;
    return rt_error(RT_ERR_DEVICE, "%s: CUDA is not available: %s", op, ctx.why);
}

cudaStream_t rt_cuda_stream(void) { return ctx.stream; }
int rt_cuda_sm_count(void) { return ctx.sms > 0 ? ctx.sms : 1; }

/* Errors after which the context is unusable: every later CUDA call fails the same way. */
static bool is_sticky(cudaError_t e)
{
    return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorIllegalInstruction ||
           e == cudaErrorMisalignedAddress || e == cudaErrorHardwareStackError || e == cudaErrorAssert ||
           e == cudaErrorInvalidPc;
}

enum rt_status rt_cuda_error(cudaError_t e, const char *op)
{
    enum rt_status st = e == cudaErrorMemoryAllocation ? RT_ERR_OOM : RT_ERR_DEVICE;
    return rt_error(st, "%s: CUDA error %s (%s)%s", op, cudaGetErrorName(e), cudaGetErrorString(e),
                    is_sticky(e) ? "; the GPU context is lost, restart the process (run with RETORT_CUDA_SYNC=1 "
                                   "to find the op that faulted)"
                                 : "");
}

struct rt_cuda_fault *rt_cuda_fault_slot(void) { return ctx.fault_dev; }

/* After a wait: the bad value a kernel recorded since the last one, as the CPU would have reported
 * it (then the record is cleared: the context stays usable). */
static enum rt_status take_fault(void)
{
    volatile struct rt_cuda_fault *f = ctx.fault_host;
    if (!f || f->set == 0)
        return RT_OK;
    struct rt_cuda_fault c = {f->set, f->value, f->position, f->base, f->limit, f->op, f->what};
    memset(ctx.fault_host, 0, sizeof *ctx.fault_host);
    const char *late = rt_device_sync_debug() ? ""
                                              : " (found on the GPU after the op returned: ops run asynchronously; "
                                                "RETORT_CUDA_SYNC=1 stops at the op)";
    if (c.limit < 0)
        return rt_backend_non_finite(c.op, c.what, c.position, late);
    return rt_backend_bad_index(c.op, c.what, c.value, c.position, c.base, c.limit, late);
}

/* Waits for the stream; a CUDA error or a recorded bad value becomes the status. */
static enum rt_status wait_stream(const char *op)
{
    cudaError_t e = cudaStreamSynchronize(ctx.stream);
    return e == cudaSuccess ? take_fault() : rt_cuda_error(e, op);
}

/* RETORT_CUDA_TRACE=1: one line on stderr per launch, library call and copy, naming its op. */
static bool tracing(void)
{
    static int on = -1;
    if (on < 0)
        on = rt_backend_env_flag("RETORT_CUDA_TRACE");
    return on;
}

enum rt_status rt_cuda_check(const char *op)
{
    ctx.launches++;
    if (tracing())
        fprintf(stderr, "retort cuda: %s\n", op);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return rt_cuda_error(e, op);
    return rt_device_sync_debug() ? wait_stream(op) : RT_OK;
}

/* --- table entries that are not kernels --- */

/* Uploads up to a slot's size go through pinned staging slots. From pageable memory the driver may
 * wait for the stream before it copies, which would stall the queue at every batch a loader sends;
 * a copy from pinned memory is queued like a kernel. A slot is reused once the copy that last read
 * it has run (its event; with 8 slots that is long done unless the host is far ahead). */
#define STAGE_SLOTS 8
#define STAGE_SLOT_BYTES ((size_t)4 << 20)
static struct {
    int state; /* 0: not tried, 1: ready, -1: unavailable (uploads copy from pageable memory) */
    char *base;
    cudaEvent_t done[STAGE_SLOTS];
    int next;
} stage;

static bool stage_ready(void)
{
    if (stage.state != 0)
        return stage.state > 0;
    stage.state = -1;
    if (cudaHostAlloc((void **)&stage.base, STAGE_SLOTS * STAGE_SLOT_BYTES, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        stage.base = NULL;
        return false;
    }
    for (int i = 0; i < STAGE_SLOTS; i++)
        if (cudaEventCreateWithFlags(&stage.done[i], cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            while (i-- > 0)
                cudaEventDestroy(stage.done[i]);
            cudaFreeHost(stage.base);
            stage.base = NULL;
            return false;
        }
    stage.state = 1;
    return true;
}

static enum rt_status cuda_upload(void *dst, const void *host_src, size_t nbytes)
{
    if (!nbytes)
        return RT_OK;
    cudaError_t e;
    if (nbytes <= STAGE_SLOT_BYTES && stage_ready()) {
        int k = stage.next;
        stage.next = (k + 1) % STAGE_SLOTS;
        char *slot = stage.base + (size_t)k * STAGE_SLOT_BYTES;
        e = cudaEventSynchronize(stage.done[k]); /* an event never recorded is complete */
        if (e == cudaSuccess) {
            memcpy(slot, host_src, nbytes);
            e = cudaMemcpyAsync(dst, slot, nbytes, cudaMemcpyHostToDevice, ctx.stream);
        }
        if (e == cudaSuccess)
            e = cudaEventRecord(stage.done[k], ctx.stream);
    } else { /* from pageable memory the call returns once the source is staged: the caller may free it */
        e = cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, ctx.stream);
    }
    return e == cudaSuccess ? rt_cuda_check("cuda upload") : rt_cuda_error(e, "cuda upload");
}

static enum rt_status cuda_download(void *host_dst, const void *src, size_t nbytes)
{
    if (!nbytes)
        return RT_OK;
    cudaError_t e = cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost, ctx.stream);
    return e == cudaSuccess ? wait_stream("cuda download") : rt_cuda_error(e, "cuda download");
}

static bool cuda_available(const char **why)
{
    bool ok = start();
    *why = ok ? NULL : ctx.why;
    return ok;
}

static const char *cuda_describe(void) { return ctx.desc; }

static enum rt_status cuda_synchronize(void) { return wait_stream("rt_device_synchronize"); }

static uint64_t cuda_launches(void) { return ctx.launches; }

/* .name = rt_cuda_name for each kernel of the list, NULL for those CUDA leaves out (in the list's
 * order, as C++ wants) */
#define CUDA_ENTRY(where, name, params) .name = RT_KERNEL_IF(where, CUDA, rt_cuda_##name, NULL),

static const struct rt_backend cuda_backend = {
    .name = "cuda",
    .device = RT_CUDA,
    .alloc = rt_cuda_alloc,
    .free = rt_cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    RT_BACKEND_KERNELS(CUDA_ENTRY)
    .available = cuda_available,
    .describe = cuda_describe,
    .synchronize = cuda_synchronize,
    .launches = cuda_launches,
    .empty_cache = rt_cuda_cache_flush,
    .cache_stats = rt_cuda_cache_stats,
};

extern "C" const struct rt_backend *rt_backend_cuda(void) { return &cuda_backend; }
