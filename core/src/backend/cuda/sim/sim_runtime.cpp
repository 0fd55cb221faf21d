/* The CUDA simulator's runtime (RETORT_CUDA=SIM): kernel launches on fibers, device memory in host
 * memory with the checks a GPU would fail on (cuBLAS: sim_cublas.cpp). Work is synchronous:
 * a launch or copy is done when the call returns, which the one-stream backend cannot tell apart
 * from a queue that drains at once. */
#include <cuda_runtime.h>

#include "sim_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <map>
#include <mutex>

using rt_sim::device_addressable;
using rt_sim::report;

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SIM_ASAN 1
#else
#define SIM_ASAN 0
#endif

#if !defined(__x86_64__)
#error "the CUDA simulator switches fibers with x86-64 code"
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* Saves the callee-saved registers, the SSE and x87 control words and the stack pointer to *save,
 * then resumes the fiber whose stack pointer is `load` (System V x86-64: what a call may not
 * clobber is all a switch keeps). Unlike swapcontext it makes no system call. */
extern "C" void rt_sim_switch(void **save, void *load);
asm(".text\n"
    ".globl rt_sim_switch\n"
    ".type rt_sim_switch, @function\n"
    "rt_sim_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size rt_sim_switch, .-rt_sim_switch\n");

namespace {

constexpr int MAX_THREADS = 1024;
constexpr size_t STACK_BYTES = (size_t)256 << 10;
constexpr size_t MAX_DYNAMIC_SHARED = (size_t)48 << 10; /* without the opt-in the backend never asks for */

enum wait_kind { RUNNING, AT_SYNCTHREADS, AT_SHUFFLE };

struct fiber {
    void *sp; /* saved stack pointer while switched out */
    char *stack;
    bool done;
    wait_kind wait;
    unsigned gen; /* the barrier generation it waits to see pass */
    uint3 tid;
    int linear;
    void *fake_stack; /* AddressSanitizer's bookkeeping across switches */
};

struct warp {
    unsigned gen;
    int arrived, exited;
    uint64_t slot[32];
};

struct {
    std::mutex launch;
    fiber fibers[MAX_THREADS];
    warp warps[MAX_THREADS / 32];
    int threads, live, current;
    unsigned bar_gen;
    int bar_arrived;
    void *sched_sp;
    const void *sched_bottom;
    size_t sched_size;
    void *sched_fake;
    void (*body)(void *);
    void *ctx;
    const char *kernel;
    void *dynamic_shared;
    bool failed;
    bool opened; /* a barrier or shuffle opened while the last fiber ran */
} S;

/* Errors: the last one, returned and cleared by cudaGetLastError (none of the simulator's is sticky). */
cudaError_t last_error = cudaSuccess;

cudaError_t set_error(cudaError_t e)
{
    if (e != cudaSuccess)
        last_error = e;
    return e;
}


/* RETORT_CUDA_SIM_ORDER=reverse runs blocks, and the threads of a block, last first: a kernel
 * whose result depends on the order (a race a GPU may or may not show) then gives another one. */
bool reversed(void)
{
    static int rev = -1;
    if (rev < 0) {
        const char *env = getenv("RETORT_CUDA_SIM_ORDER");
        rev = env && strcmp(env, "reverse") == 0;
    }
    return rev;
}

/* --- fibers --- */

void switch_to_scheduler(fiber &f, bool dying)
{
#if SIM_ASAN
    __sanitizer_start_switch_fiber(dying ? nullptr : &f.fake_stack, S.sched_bottom, S.sched_size);
#else
    (void)dying;
#endif
    rt_sim_switch(&f.sp, S.sched_sp);
#if SIM_ASAN
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
}

void resume(int i)
{
    fiber &f = S.fibers[i];
    S.current = i;
    threadIdx = f.tid;
#if SIM_ASAN
    __sanitizer_start_switch_fiber(&S.sched_fake, f.stack, STACK_BYTES);
#endif
    rt_sim_switch(&S.sched_sp, f.sp);
#if SIM_ASAN
    __sanitizer_finish_switch_fiber(S.sched_fake, nullptr, nullptr);
#endif
}

fiber &running(void) { return S.fibers[S.current]; }

/* A kernel bug the hardware would hang or fault on: ends the launch with cudaErrorLaunchFailure. */
[[noreturn]] void fail_in_kernel(const char *what)
{
    fiber &f = running();
    report("kernel %s, block (%u,%u,%u) thread (%u,%u,%u): %s", S.kernel, blockIdx.x, blockIdx.y, blockIdx.z, f.tid.x,
           f.tid.y, f.tid.z, what);
    S.failed = true;
    switch_to_scheduler(f, true);
    abort(); /* never resumed */
}

void complete_barrier_if_all_arrived(void)
{
    if (S.bar_arrived > 0 && S.bar_arrived >= S.live) {
        S.bar_arrived = 0;
        S.bar_gen++;
        S.opened = true;
    }
}

void fiber_main(void)
{
#if SIM_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &S.sched_bottom, &S.sched_size);
#endif
    S.body(S.ctx);
    fiber &f = running();
    f.done = true;
    /* Volta and later: __syncthreads waits for the threads that have not exited */
    S.live--;
    complete_barrier_if_all_arrived();
    warp &w = S.warps[f.linear >> 5];
    w.exited++;
    if (w.arrived > 0)
        fail_in_kernel("exited while other lanes of its warp wait at a full-warp shuffle");
    switch_to_scheduler(f, true);
    abort();
}

bool runnable(const fiber &f)
{
    switch (f.wait) {
    case RUNNING:
        return true;
    case AT_SYNCTHREADS:
        return S.bar_gen != f.gen;
    case AT_SHUFFLE:
        return S.warps[f.linear >> 5].gen != f.gen;
    }
    return false;
}

char *new_stack(void)
{
    void *p = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? nullptr : (char *)p;
}

/* The frame rt_sim_switch pops to enter fiber_main on a fresh stack: control words, six zeroed
 * registers, then fiber_main as the return address, at a 16-byte boundary so that fiber_main
 * starts with the stack alignment of a called function. */
void start_frame(fiber &f)
{
    uint64_t *top = (uint64_t *)(f.stack + STACK_BYTES);
    uint64_t *ret = top - 2;
    *ret = (uint64_t)(uintptr_t)fiber_main;
    for (int i = 1; i <= 6; i++)
        ret[-i] = 0;
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    uint64_t *controls = ret - 7;
    *controls = mxcsr | (uint64_t)fpucw << 32;
    f.sp = controls;
}

/* Runs one block to completion; false when the launch failed. */
bool run_block(void)
{
    int n = S.threads;
    S.live = n;
    S.bar_arrived = 0;
    for (int w = 0; w < (n + 31) / 32; w++)
        S.warps[w].arrived = S.warps[w].exited = 0;
    for (int i = 0; i < n; i++) {
        fiber &f = S.fibers[i];
        if (!f.stack && !(f.stack = new_stack())) {
            report("kernel %s: no memory for %d thread stacks", S.kernel, n);
            return false;
        }
        start_frame(f);
        f.done = false;
        f.wait = RUNNING;
        f.linear = i;
        f.tid = {(unsigned)i % blockDim.x, (unsigned)i / blockDim.x % blockDim.y,
                 (unsigned)i / (blockDim.x * blockDim.y)};
    }
    /* The first thread (in run order) that can go, goes; after a barrier or shuffle opens the scan
     * starts over, so the first warps run as far ahead of the others as the barriers allow. That
     * exposes a missing barrier better than taking turns, which keeps every warp in step. */
    int k = 0;
    for (;;) {
        for (; k < n; k++) {
            fiber &f = S.fibers[reversed() ? n - 1 - k : k];
            if (!f.done && runnable(f))
                break;
        }
        if (k < n) {
            S.opened = false;
            resume(reversed() ? n - 1 - k : k);
            if (S.failed)
                return false;
            k = S.opened ? 0 : k + 1;
            continue;
        }
        /* nothing left to run: a waiting fiber only becomes runnable when a barrier or shuffle
         * opens, and that restarts the scan, so the threads passed over still wait */
        int at_bar = 0, at_shfl = 0;
        for (int i = 0; i < n; i++)
            if (!S.fibers[i].done)
                (S.fibers[i].wait == AT_SYNCTHREADS ? at_bar : at_shfl)++;
        if (at_bar + at_shfl == 0)
            return true;
        report("kernel %s, block (%u,%u,%u): deadlock: %d threads wait at __syncthreads and %d at a warp shuffle "
               "that the other threads never reach",
               S.kernel, blockIdx.x, blockIdx.y, blockIdx.z, at_bar, at_shfl);
        return false;
    }
}

/* --- device memory: host memory the simulator knows by address, to check copies --- */

struct allocation {
    size_t size;
    bool device; /* cudaMalloc (true) or cudaHostAlloc (false) */
    bool mapped; /* pinned and mapped: the device may use it too */
};
std::mutex mem_lock;
std::map<uintptr_t, allocation> allocations;
size_t device_used, device_limit;

size_t memory_limit(void)
{
    if (!device_limit) {
        const char *env = getenv("RETORT_CUDA_SIM_MIB");
        long long mib = env ? atoll(env) : 0;
        device_limit = (size_t)(mib > 0 ? mib : 4096) << 20;
    }
    return device_limit;
}

/* The allocation that holds all of [p, p + n), if one does. */
bool find_allocation(const void *p, size_t n, allocation *out)
{
    std::lock_guard<std::mutex> g(mem_lock);
    uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin())
        return false;
    --it;
    if (a - it->first > it->second.size || n > it->second.size - (a - it->first))
        return false;
    *out = it->second;
    return true;
}


/* Is p inside a cudaMalloc block? */
bool is_device_memory(const void *p)
{
    allocation a;
    return find_allocation(p, 1, &a) && a.device;
}

/* Is [p, p + n) the kind of memory a copy's side names: device memory, or host memory the device
 * does not own? */
bool copy_side_ok(const void *p, size_t n, bool device)
{
    return device ? device_addressable(p, n) : !device_addressable(p, n) && !is_device_memory(p);
}

const char *kind_name(cudaMemcpyKind k)
{
    static const char *names[] = {"host to host", "host to device", "device to host", "device to device", "default"};
    return (unsigned)k < 5 ? names[k] : "unknown";
}

} // namespace

void rt_sim::report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("retort CUDA simulator: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool rt_sim::device_addressable(const void *p, size_t n)
{
    allocation a;
    return find_allocation(p, n, &a) && (a.device || a.mapped);
}

/* --- the device language --- */

void __syncthreads(void)
{
    fiber &f = running();
    f.gen = S.bar_gen;
    f.wait = AT_SYNCTHREADS;
    if (++S.bar_arrived >= S.live) { /* the last to arrive opens it, then lets the scan start over */
        S.bar_arrived = 0;
        S.bar_gen++;
        S.opened = true;
    }
    switch_to_scheduler(f, false);
    f.wait = RUNNING;
}

static void warp_barrier(warp &w, fiber &f)
{
    f.gen = w.gen;
    f.wait = AT_SHUFFLE;
    if (++w.arrived == 32) {
        w.arrived = 0;
        w.gen++;
        S.opened = true;
    }
    switch_to_scheduler(f, false);
    f.wait = RUNNING;
}

uint64_t rt_sim_shfl_xor(unsigned mask, uint64_t bits, int lane_mask, int width)
{
    fiber &f = running();
    int lane = f.linear & 31;
    warp &w = S.warps[f.linear >> 5];
    if (mask != 0xffffffffu || width != 32)
        fail_in_kernel("only full-warp shuffles (mask 0xffffffff, width 32) are simulated");
    if ((f.linear | 31) >= S.threads)
        fail_in_kernel("full-warp shuffle in a partial warp (the block size is not a multiple of 32)");
    if (w.exited)
        fail_in_kernel("full-warp shuffle after a lane of the warp has exited");
    w.slot[lane] = bits;
    warp_barrier(w, f);
    uint64_t r = w.slot[(lane ^ lane_mask) & 31];
    warp_barrier(w, f); /* nobody writes its slot again before every lane has read */
    return r;
}

void *rt_sim_dynamic_shared(void) { return S.dynamic_shared; }

void rt_sim_run(const char *kernel, dim3 grid, dim3 block, size_t smem, void (*body)(void *), void *ctx)
{
    std::lock_guard<std::mutex> g(S.launch);
    uint64_t threads = (uint64_t)block.x * block.y * block.z;
    if (threads == 0 || threads > MAX_THREADS || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || smem > MAX_DYNAMIC_SHARED) {
        report("kernel %s: invalid launch: grid (%u,%u,%u), block (%u,%u,%u), %zu bytes of dynamic shared memory",
               kernel, grid.x, grid.y, grid.z, block.x, block.y, block.z, smem);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    S.kernel = kernel;
    S.body = body;
    S.ctx = ctx;
    S.threads = (int)threads;
    S.failed = false;
    gridDim = grid;
    blockDim = block;
    S.dynamic_shared = smem ? malloc(smem) : nullptr; /* exact size: an overrun is a sanitizer report */
    if (smem && !S.dynamic_shared) {
        set_error(cudaErrorMemoryAllocation);
        return;
    }
    bool ok = true;
    uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
    for (uint64_t k = 0; k < blocks && ok; k++) {
        uint64_t b = reversed() ? blocks - 1 - k : k;
        blockIdx = {(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y), (unsigned)(b / grid.x / grid.y)};
        ok = run_block();
    }
    free(S.dynamic_shared);
    S.dynamic_shared = nullptr;
    if (!ok)
        set_error(cudaErrorLaunchFailure);
}

/* --- the runtime API --- */

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return set_error(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
    if (device != 0)
        return set_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "retort CUDA simulator on the CPU");
    prop->major = 9;
    prop->minor = 0;
    const char *env = getenv("RETORT_CUDA_SIM_SMS");
    int sms = env ? atoi(env) : 0;
    prop->multiProcessorCount = sms > 0 ? sms : 2;
    prop->totalGlobalMem = memory_limit();
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
        RT_SIM_CASE_NAME(cudaSuccess)
        RT_SIM_CASE_NAME(cudaErrorInvalidValue)
        RT_SIM_CASE_NAME(cudaErrorMemoryAllocation)
        RT_SIM_CASE_NAME(cudaErrorInvalidConfiguration)
        RT_SIM_CASE_NAME(cudaErrorInvalidDevicePointer)
        RT_SIM_CASE_NAME(cudaErrorNoDevice)
        RT_SIM_CASE_NAME(cudaErrorInvalidDevice)
        RT_SIM_CASE_NAME(cudaErrorIllegalAddress)
        RT_SIM_CASE_NAME(cudaErrorAssert)
        RT_SIM_CASE_NAME(cudaErrorHardwareStackError)
        RT_SIM_CASE_NAME(cudaErrorIllegalInstruction)
        RT_SIM_CASE_NAME(cudaErrorMisalignedAddress)
        RT_SIM_CASE_NAME(cudaErrorInvalidPc)
        RT_SIM_CASE_NAME(cudaErrorLaunchFailure)
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorMemoryAllocation:
        return "out of memory";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
        return "invalid device pointer";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure";
    default:
        return "simulated CUDA error";
    }
}

/* Streams and events are placeholders: every call has finished when it returns. */
struct rt_sim_stream {
    int unused;
};
struct rt_sim_event {
    int unused;
};

template <typename H> static cudaError_t new_handle(H **h)
{
    *h = new H();
    return cudaSuccess;
}
template <typename H> static cudaError_t delete_handle(H *h)
{
    delete h;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return new_handle(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { return delete_handle(s); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { return new_handle(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { return delete_handle(e); }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

static cudaError_t allocate(void **p, size_t nbytes, bool device, bool mapped)
{
    *p = nullptr;
    std::unique_lock<std::mutex> g(mem_lock);
    if (device && (nbytes > memory_limit() || device_used > memory_limit() - nbytes))
        return set_error(cudaErrorMemoryAllocation);
    g.unlock();
    void *q = aligned_alloc(256, (nbytes + 255) / 256 * 256 + (nbytes == 0 ? 256 : 0));
    if (!q)
        return set_error(cudaErrorMemoryAllocation);
    g.lock();
    allocations[(uintptr_t)q] = allocation{nbytes, device, mapped};
    if (device)
        device_used += nbytes;
    *p = q;
    return cudaSuccess;
}

static cudaError_t release(void *p, bool device)
{
    if (!p)
        return cudaSuccess;
    std::unique_lock<std::mutex> g(mem_lock);
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end() || it->second.device != device) {
        g.unlock();
        report("%s of %p, which %s did not return", device ? "cudaFree" : "cudaFreeHost", p,
               device ? "cudaMalloc" : "cudaHostAlloc");
        return set_error(cudaErrorInvalidValue);
    }
    if (device)
        device_used -= it->second.size;
    size_t size = it->second.size;
    allocations.erase(it);
    g.unlock();
    rt_sim_unpoison(p, size);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t nbytes) { return allocate(p, nbytes, true, false); }
cudaError_t cudaFree(void *p) { return release(p, true); }

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    std::lock_guard<std::mutex> g(mem_lock);
    *total_bytes = memory_limit();
    *free_bytes = memory_limit() - device_used;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t nbytes, unsigned flags)
{
    return allocate(p, nbytes, false, (flags & cudaHostAllocMapped) != 0);
}
cudaError_t cudaFreeHost(void *p) { return release(p, false); }

cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned flags)
{
    (void)flags;
    if (!device_addressable(host, 1) || is_device_memory(host))
        return set_error(cudaErrorInvalidValue);
    *dev = host;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t nbytes, cudaMemcpyKind kind, cudaStream_t s)
{
    (void)s;
    if (nbytes == 0)
        return cudaSuccess;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    bool dst_ok = copy_side_ok(dst, nbytes, dst_dev), src_ok = copy_side_ok(src, nbytes, src_dev);
    if (kind < cudaMemcpyHostToDevice || kind > cudaMemcpyDeviceToDevice || !dst_ok || !src_ok) {
        report("cudaMemcpyAsync %s of %zu bytes from %p to %p: %s is not %s memory of that size", kind_name(kind),
               nbytes, src, dst, !dst_ok ? "the destination" : "the source",
               (!dst_ok ? dst_dev : src_dev) ? "device" : "host");
        return set_error(cudaErrorInvalidValue);
    }
    memmove(dst, src, nbytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t nbytes, cudaStream_t s)
{
    (void)s;
    if (nbytes == 0)
        return cudaSuccess;
    if (!device_addressable(dst, nbytes)) {
        report("cudaMemsetAsync of %zu bytes at %p: not device memory of that size", nbytes, dst);
        return set_error(cudaErrorInvalidValue);
    }
    memset(dst, value, nbytes);
    return cudaSuccess;
}

void rt_sim_poison(const void *p, size_t n)
{
#if SIM_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#else
    (void)p, (void)n;
#endif
}

void rt_sim_unpoison(const void *p, size_t n)
{
#if SIM_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
    (void)p, (void)n;
#endif
}
