/* Helpers shared by the CUDA kernels: the one stream, launch checks, grid sizing, dtype dispatch and
 * the element conversions that must agree bit for bit with the CPU backend's (cpu_internal.h).
 * Not part of any public API. Every kernel file includes this and nothing else from the backend. */
#ifndef RETORT_CUDA_INTERNAL_CUH
#define RETORT_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "backend/backend.h"
#include "backend/hostdev.h"
#include "retort/common.h"
}

/* --- context (cuda_backend.cu) --- */

/* Initialises the device on first use (device 0, one stream, the cuBLAS handle). RT_ERR_DEVICE with
 * the reason when there is no usable GPU; `op` names the caller in that message. */
enum rt_status rt_cuda_ready(const char *op);
/* The stream every kernel, copy and cuBLAS call runs on: one stream keeps all work in issue order,
 * so a freed block can be handed to the next op without waiting for the GPU. */
cudaStream_t rt_cuda_stream(void);
/* A CUDA error as a status with a message naming the op ("rt_cuda softmax: an illegal memory access..."). */
enum rt_status rt_cuda_error(cudaError_t e, const char *op);
/* After a launch: the launch error if any; in debug-sync mode (RETORT_CUDA_SYNC=1 or
 * rt_device_set_sync_debug) it also waits for the kernel, so a fault is reported at the op that caused it. */
enum rt_status rt_cuda_check(const char *op);
/* Multiprocessor count of the device (sizing grid-stride loops). */
int rt_cuda_sm_count(void);

/* --- bad values found by kernels (indices, labels): reported at the next wait, not at the op --- */

/* The first bad value a kernel found since the last wait; op and what are the host strings the
 * launch was given (stored as values, never read on the device). */
struct rt_cuda_fault {
    unsigned int set; /* 0: none; 1: being written; 2: complete */
    long long value, position, base, limit;
    const char *op, *what;
};
/* The record kernels write to: pinned host memory mapped into the device, read after each wait. */
struct rt_cuda_fault *rt_cuda_fault_slot(void);
/* Records v (at position pos, allowed [base, base + limit)) unless an earlier bad value is recorded. */
__device__ static inline void rt_cuda_report_bad_index(struct rt_cuda_fault *f, const char *op, const char *what,
                                                       int64_t v, int64_t pos, int64_t base, int64_t limit)
{
    if (atomicCAS(&f->set, 0u, 1u) == 0u) {
        f->value = v, f->position = pos, f->base = base, f->limit = limit, f->op = op, f->what = what;
        __threadfence_system();
        atomicExch(&f->set, 2u);
    }
}

/* Records that row `row` of the input `what` holds a NaN or an infinity (limit -1 marks this kind:
 * reported as rt_backend_non_finite). */
__device__ static inline void rt_cuda_report_non_finite(struct rt_cuda_fault *f, const char *op, const char *what,
                                                        int64_t row)
{
    rt_cuda_report_bad_index(f, op, what, 0, row, 0, -1);
}

/* Whether class label y of row i counts in a class loss (not ignore, in [0, c)); a bad one is
 * recorded for the next wait (the first report wins, so lanes sharing a row may all call this) and
 * counts as ignored. */
__device__ static inline bool rt_cuda_class_label(int64_t y, int64_t c, int64_t ignore, int64_t i,
                                                  struct rt_cuda_fault *f, const char *op)
{
    bool ignored = ignore != RT_NO_IGNORE && y == ignore, ok = ignored || (y >= 0 && y < c);
    if (!ok)
        rt_cuda_report_bad_index(f, op, "label", y, i, 0, c);
    return ok && !ignored;
}

/* --- memory (cuda_cache.cu) --- */
/* Under the simulator, bytes of a device block that no tensor owns are unusable to kernels (an
 * AddressSanitizer report in a sanitizer build), and a block handed out holds all-ones bytes (NaN,
 * -1), so a kernel that reads what nobody wrote gives an obvious mismatch. On a GPU these do nothing. */
#ifdef RETORT_CUDA_SIM
#define RT_CUDA_SIM_UNOWNED(p, n) rt_sim_poison(p, n)
#define RT_CUDA_SIM_OWNED(p, n) (rt_sim_unpoison(p, n), memset(p, 0xff, n))
#else
#define RT_CUDA_SIM_UNOWNED(p, n) ((void)(p), (void)(n))
#define RT_CUDA_SIM_OWNED(p, n) ((void)(p), (void)(n))
#endif
enum rt_status rt_cuda_alloc(size_t nbytes, void **out);
void rt_cuda_free(void *p, size_t nbytes);
/* Returns every cached block to the driver; bytes held by the cache before that. */
size_t rt_cuda_cache_flush(void);
void rt_cuda_cache_stats(size_t *cached, size_t *peak_reserved);

/* --- launch geometry --- */

#define RT_CUDA_THREADS 256

/* Blocks for a grid-stride loop over n items: enough to fill the device several times over, never
 * more than the work needs (a loop body runs for items i = blockIdx * blockDim + threadIdx, step
 * gridDim * blockDim). n must be > 0. */
static inline unsigned rt_cuda_blocks(int64_t n, int threads = RT_CUDA_THREADS)
{
    int64_t need = (n + threads - 1) / threads, cap = (int64_t)rt_cuda_sm_count() * 32;
    return (unsigned)(need < cap ? need : cap);
}

/* for (i in [0, n)) over the whole grid, 64-bit indices */
#define RT_CUDA_LOOP(i, n)                                                                                       \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, i##_step = (int64_t)gridDim.x * blockDim.x; \
         i < (n); i += i##_step)

/* Launch kernel<<<blocks, threads, smem, stream>>>(args...) and check it: yields a status. */
#ifdef RETORT_CUDA_SIM
#define RT_CUDA_LAUNCH(op, kernel, blocks, threads, smem, ...)                                                    \
    (RT_SIM_LAUNCH(kernel, blocks, threads, smem, __VA_ARGS__), rt_cuda_check(op))
#else
#define RT_CUDA_LAUNCH(op, kernel, blocks, threads, smem, ...)                                                    \
    (kernel<<<(blocks), (threads), (smem), rt_cuda_stream()>>>(__VA_ARGS__), rt_cuda_check(op))
#endif

/* `T name[]` in the launch's dynamic shared memory (its size is the launch's smem argument). */
#ifdef RETORT_CUDA_SIM
#define RT_CUDA_DYNAMIC_SHARED(T, name) T *name = (T *)rt_sim_dynamic_shared()
#else
#define RT_CUDA_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

/* Launches kernel<T, int32_t> over `work` items when `narrow` (every index fits 32 bits: 32-bit
 * division is several times cheaper), else kernel<T, int64_t>; the geometry goes by value as
 * geom_of<I>(g). Returns the status from the enclosing function. */
#define RT_CUDA_LAUNCH_INDEXED(op, kernel, narrow, geom_of, g, work, ...)                                          \
    do {                                                                                                          \
        if (narrow) {                                                                                             \
            auto k_ = kernel<T, int32_t>;                                                                         \
            return RT_CUDA_LAUNCH(op, k_, rt_cuda_blocks(work), RT_CUDA_THREADS, 0, geom_of<int32_t>(g),          \
                                  __VA_ARGS__);                                                                   \
        }                                                                                                         \
        auto k_ = kernel<T, int64_t>;                                                                             \
        return RT_CUDA_LAUNCH(op, k_, rt_cuda_blocks(work), RT_CUDA_THREADS, 0, geom_of<int64_t>(g), __VA_ARGS__); \
    } while (0)

/* --- dtypes --- */

/* A switch over the dtype that runs the statements after `what` with the element type named `T`
 * (variadic, so template arguments with commas pass through). The float variant refuses integers
 * with the CPU backend's message. */
#define RT_CUDA_DISPATCH_ALL(dt, what, ...)                                                                       \
    do {                                                                                                          \
        switch (dt) {                                                                                             \
        case RT_F32: { typedef float T; __VA_ARGS__; } break;                                                     \
        case RT_F64: { typedef double T; __VA_ARGS__; } break;                                                    \
        case RT_I64: { typedef int64_t T; __VA_ARGS__; } break;                                                   \
        case RT_U8: { typedef uint8_t T; __VA_ARGS__; } break;                                                    \
        default: return rt_backend_unknown_dtype(what, dt);                                                       \
        }                                                                                                         \
    } while (0)

#define RT_CUDA_DISPATCH_FLOAT(dt, what, ...)                                                                     \
    do {                                                                                                          \
        switch (dt) {                                                                                             \
        case RT_F32: { typedef float T; __VA_ARGS__; } break;                                                     \
        case RT_F64: { typedef double T; __VA_ARGS__; } break;                                                    \
        default: return rt_backend_float_only(what, dt);                                                          \
        }                                                                                                         \
    } while (0)

/* --- element conversions (same results as RT_CPU_CVT) --- */

template <typename D> struct rt_cuda_cvt_to;
template <> struct rt_cuda_cvt_to<float> {
    template <typename S> __host__ __device__ static float from(S v) { return (float)v; }
};
template <> struct rt_cuda_cvt_to<double> {
    template <typename S> __host__ __device__ static double from(S v) { return (double)v; }
};
template <> struct rt_cuda_cvt_to<int64_t> {
    __host__ __device__ static int64_t from(float v) { return rt__f2i64((double)v); }
    __host__ __device__ static int64_t from(double v) { return rt__f2i64(v); }
    __host__ __device__ static int64_t from(int64_t v) { return v; }
    __host__ __device__ static int64_t from(uint8_t v) { return (int64_t)v; }
};
template <> struct rt_cuda_cvt_to<uint8_t> {
    template <typename S> __host__ __device__ static uint8_t from(S v)
    {
        return (uint8_t)rt_cuda_cvt_to<int64_t>::from(v);
    }
};
/* Convert v to element type D (integer targets wrap like C conversions, floats saturate through int64). */
template <typename D, typename S> __host__ __device__ static inline D rt_cuda_cvt(S v)
{
    return rt_cuda_cvt_to<D>::from(v);
}

/* A bf16 element (retort/bf16.h): f32's upper 16 bits, as a type of its own so that conversions to
 * and from it round as the CPU's rt_bf16_from_f32 does (nearest even, NaN kept quiet) and every other
 * dtype passes through f32 on the way, as the CPU's cast_bf16 does. */
struct rt_cuda_bf16 {
    uint16_t bits;
};
template <> struct rt_cuda_cvt_to<rt_cuda_bf16> {
    template <typename S> __host__ __device__ static rt_cuda_bf16 from(S v)
    {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            return rt_cuda_bf16{(uint16_t)((u >> 16) | 0x0040u)};
        u += 0x7fffu + ((u >> 16) & 1u);
        return rt_cuda_bf16{(uint16_t)(u >> 16)};
    }
    __host__ __device__ static rt_cuda_bf16 from(rt_cuda_bf16 v) { return v; }
};
/* bf16 to any dtype: exactly to f32, then the f32 conversion (chosen over rt_cuda_cvt<D, S> above) */
template <typename D> __host__ __device__ static inline D rt_cuda_cvt(rt_cuda_bf16 v)
{
    uint32_t u = (uint32_t)v.bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return rt_cuda_cvt_to<D>::from(f);
}

template <typename T> __host__ __device__ static inline bool rt_cuda_lt0(T v) { return v < 0; }
template <> __host__ __device__ inline bool rt_cuda_lt0<uint8_t>(uint8_t v) { return (void)v, false; }

/* Wrapping integer arithmetic (i64 overflow would be undefined). */
template <typename T> __host__ __device__ static inline T rt_cuda_wadd(T x, T y) { return x + y; }
template <typename T> __host__ __device__ static inline T rt_cuda_wsub(T x, T y) { return x - y; }
template <typename T> __host__ __device__ static inline T rt_cuda_wmul(T x, T y) { return x * y; }
template <> __host__ __device__ inline int64_t rt_cuda_wadd(int64_t x, int64_t y)
{
    return (int64_t)((uint64_t)x + (uint64_t)y);
}
template <> __host__ __device__ inline int64_t rt_cuda_wsub(int64_t x, int64_t y)
{
    return (int64_t)((uint64_t)x - (uint64_t)y);
}
template <> __host__ __device__ inline int64_t rt_cuda_wmul(int64_t x, int64_t y)
{
    return (int64_t)((uint64_t)x * (uint64_t)y);
}
template <> __host__ __device__ inline uint8_t rt_cuda_wadd(uint8_t x, uint8_t y) { return (uint8_t)(x + y); }
template <> __host__ __device__ inline uint8_t rt_cuda_wsub(uint8_t x, uint8_t y) { return (uint8_t)(x - y); }
template <> __host__ __device__ inline uint8_t rt_cuda_wmul(uint8_t x, uint8_t y) { return (uint8_t)(x * y); }

/* x * y, never fused by nvcc into an FMA with a following add (the CPU build never fuses, so
 * results agree to the bit); integers wrap. */
template <typename T> __device__ static inline T rt_cuda_nc_mul(T x, T y) { return rt_cuda_wmul(x, y); }
template <> __device__ inline float rt_cuda_nc_mul(float x, float y) { return __fmul_rn(x, y); }
template <> __device__ inline double rt_cuda_nc_mul(double x, double y) { return __dmul_rn(x, y); }

/* --- reductions inside a block --- */

/* Sum of v over a warp (all 32 lanes active). */
template <typename T> __device__ static inline T rt_cuda_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename T> __device__ static inline T rt_cuda_warp_max(T v)
{
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_xor_sync(0xffffffffu, v, o);
        v = (w != w || w > v) ? w : v; /* NaN wins, as in the CPU max */
    }
    return v;
}

/* Sum of v over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
 * result. `scratch` is shared memory for 32 values; the call contains __syncthreads. */
template <typename T> __device__ static inline T rt_cuda_block_sum(T v, T *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = rt_cuda_warp_sum(v);
    __syncthreads(); /* scratch may still be read by a previous call */
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : (T)0;
    return rt_cuda_warp_sum(v);
}
template <typename T> __device__ static inline T rt_cuda_block_max(T v, T *scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = rt_cuda_warp_max(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : scratch[0];
    return rt_cuda_warp_max(v);
}

/* --- row-wise kernels (losses over (n, c) logits) --- */

/* Rows up to this many classes get a warp each, longer rows a block. */
#define RT_CUDA_WARP_ROW_MAX 1024

/* The threads sharing one row: a warp (WARP) or the whole block. Rows are dealt out grid-stride and
 * every thread of a group walks the same rows, so each reduction (full-warp shuffles, or the block's
 * __syncthreads) is reached by the whole group. */
template <bool WARP> struct rt_cuda_rowgroup {
    int lane, size;
    int64_t first, step;
    __device__ rt_cuda_rowgroup()
    {
        if (WARP) {
            int per = (int)(blockDim.x >> 5);
            lane = (int)(threadIdx.x & 31), size = 32;
            first = (int64_t)blockIdx.x * per + (threadIdx.x >> 5), step = (int64_t)gridDim.x * per;
        } else {
            lane = (int)threadIdx.x, size = (int)blockDim.x;
            first = blockIdx.x, step = gridDim.x;
        }
    }
    __device__ double sum(double v, double *scratch) const
    {
        return WARP ? rt_cuda_warp_sum(v) : rt_cuda_block_sum(v, scratch);
    }
    /* The CPU's row max skips NaN where these let it win; either way a NaN in the row makes the sum of
     * exp(x - max) NaN, so the log-normaliser is NaN on both. */
    __device__ double max(double v, double *scratch) const
    {
        return WARP ? rt_cuda_warp_max(v) : rt_cuda_block_max(v, scratch);
    }
};

/* Launches kernel<T, true> (a warp per row) over n rows of c elements when c <= RT_CUDA_WARP_ROW_MAX,
 * else kernel<T, false> (a block per row): the geometry rt_cuda_rowgroup<WARP> expects. Yields a
 * status; T is the element type in scope. */
#define RT_CUDA_LAUNCH_ROWS(op, kernel, n, c, ...)                                                                \
    ((c) <= RT_CUDA_WARP_ROW_MAX                                                                                  \
         ? RT_CUDA_LAUNCH(op, (kernel<T, true>), rt_cuda_blocks((n) * 32), RT_CUDA_THREADS, 0, __VA_ARGS__)       \
         : RT_CUDA_LAUNCH(op, (kernel<T, false>), rt_cuda_blocks((n), 1), RT_CUDA_THREADS, 0, __VA_ARGS__))

#endif
