/* The CUDA runtime as the simulator provides it (RETORT_CUDA=SIM): the part of the runtime API and of
 * the device language that the backend uses, so that the .cu files compile with the host's C++
 * compiler and their kernels run on the CPU. Blocks run one after another; the threads of a block
 * run as fibers that switch only at __syncthreads and warp shuffles, so barriers and shuffles keep
 * their meaning. See ../README.md for what it checks and what it cannot. */
#ifndef RETORT_CUDA_SIM_RUNTIME_H
#define RETORT_CUDA_SIM_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <utility>

/* --- the device language --- */

#define __global__
#define __device__
#define __host__
#define __forceinline__
#define __launch_bounds__(...)
/* Blocks run one at a time, so a function's static is one block's shared memory. */
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

/* Vector types, with CUDA's alignment (kernels move 8 and 16 bytes at a time through them). */
struct alignas(8) uint2 {
    unsigned x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};

/* The running thread's coordinates: set by the scheduler before it resumes a fiber. */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

void __syncthreads(void);
static inline void __threadfence(void) {}
static inline void __threadfence_system(void) {}

/* Warp shuffle through the running warp's exchange slots (every lane of the warp must take part). */
uint64_t rt_sim_shfl_xor(unsigned mask, uint64_t bits, int lane_mask, int width);
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a value wider than 64 bits");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = rt_sim_shfl_xor(mask, bits, lane_mask, width);
    T r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* Fibers never switch inside these, so plain read-modify-writes are atomic. */
template <typename T> static inline T rt_sim_atomic_add(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
static inline float atomicAdd(float *p, float v) { return rt_sim_atomic_add(p, v); }
static inline double atomicAdd(double *p, double v) { return rt_sim_atomic_add(p, v); }
static inline int atomicAdd(int *p, int v) { return rt_sim_atomic_add(p, v); }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return rt_sim_atomic_add(p, v); }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v)
{
    return rt_sim_atomic_add(p, v);
}
template <typename T> static inline T atomicCAS(T *p, T expected, T desired)
{
    T old = *p;
    if (old == expected)
        *p = desired;
    return old;
}
template <typename T> static inline T atomicExch(T *p, T v)
{
    T old = *p;
    *p = v;
    return old;
}

/* Rounded arithmetic that is never contracted into an FMA (the build passes -ffp-contract=off). */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }

/* Dynamic shared memory of the running launch (its size is the launch's smem argument). */
void *rt_sim_dynamic_shared(void);

/* --- launches --- */

/* Runs body(ctx) for every thread of the grid; a bad geometry, a barrier or shuffle that not every
 * thread reaches, becomes the error cudaGetLastError returns (with a diagnostic on stderr). */
void rt_sim_run(const char *kernel, dim3 grid, dim3 block, size_t smem, void (*body)(void *), void *ctx);

template <typename F> static inline void rt_sim_launch(const char *kernel, dim3 grid, dim3 block, size_t smem, F f)
{
    rt_sim_run(kernel, grid, block, smem, [](void *c) { (*(F *)c)(); }, (void *)&f);
}

/* kernel<<<grid, block, smem>>>(args...): the arguments are evaluated once, on the host, and every
 * thread gets its own copy, as kernel parameters are passed by value. */
#define RT_SIM_LAUNCH(kernel, grid, block, smem, ...)                                                              \
    rt_sim_launch(#kernel, (grid), (block), (smem), [=, rt_args_ = std::make_tuple(__VA_ARGS__)]() {                        \
        std::apply([&](auto... a_) { kernel(a_...); }, rt_args_);                                                   \
    })

/* --- the runtime API --- */

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorIllegalAddress = 700,
    cudaErrorAssert = 710,
    cudaErrorHardwareStackError = 714,
    cudaErrorIllegalInstruction = 715,
    cudaErrorMisalignedAddress = 716,
    cudaErrorInvalidPc = 718,
    cudaErrorLaunchFailure = 719,
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

typedef struct rt_sim_stream *cudaStream_t;
typedef struct rt_sim_event *cudaEvent_t;

struct cudaDeviceProp {
    char name[256];
    int major, minor;
    int multiProcessorCount;
    size_t totalGlobalMem;
};

#define cudaStreamNonBlocking 0x01u
#define cudaHostAllocDefault 0x00u
#define cudaHostAllocMapped 0x02u
#define cudaEventDisableTiming 0x02u

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);

cudaError_t cudaMalloc(void **p, size_t nbytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaHostAlloc(void **p, size_t nbytes, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaHostGetDevicePointer(void **dev, void *host, unsigned flags);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t nbytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t nbytes, cudaStream_t s);
template <typename T> static inline cudaError_t cudaMalloc(T **p, size_t nbytes)
{
    return cudaMalloc((void **)p, nbytes);
}

/* Marks [p, p + n) of a device block unusable (a freed or unused tail) or usable again: a kernel
 * that touches unusable bytes is an AddressSanitizer report in a sanitizer build. */
void rt_sim_poison(const void *p, size_t n);
void rt_sim_unpoison(const void *p, size_t n);

#endif
