/* The CUDA simulator itself (RETORT_CUDA=SIM builds only): barriers, warp shuffles, atomics and 2-D
 * blocks mean what they mean on a GPU; the kernel bugs a GPU would hang or fault on become launch
 * errors; copies, frees and cuBLAS calls are checked against the memory they name; cuBLAS's products
 * equal a naive loop. test_cuda then runs every backend kernel on it against the CPU backend. */
#include "backend/cuda/cuda_internal.cuh"

#include <cublas_v2.h>

extern "C" {
#include "harness.h"
}

/* --- kernels --- */

static __global__ void block_sum_kernel(const double *x, double *out)
{
    __shared__ double scratch[32];
    double s = rt_cuda_block_sum(x[blockIdx.x * blockDim.x + threadIdx.x], scratch);
    if (threadIdx.x == 0)
        out[blockIdx.x] = s;
}

static __global__ void warp_max_kernel(const double *x, double *out)
{
    double m = rt_cuda_warp_max(x[threadIdx.x]);
    out[threadIdx.x] = m;
}

/* out[t] = what thread t + 1 wrote before the barrier (wrapping) */
static __global__ void rotate_kernel(int *out)
{
    __shared__ int shared[256];
    shared[threadIdx.x] = (int)threadIdx.x * 10;
    __syncthreads();
    out[threadIdx.x] = shared[(threadIdx.x + 1) % blockDim.x];
}

/* Each thread reads both neighbours' shared values, after a barrier or (a race) without one. The
 * values differ with `salt`: shared memory here keeps what the previous launch left. */
static __global__ void neighbours_kernel(bool barrier, int salt, int *out)
{
    __shared__ int shared[256];
    unsigned t = threadIdx.x, n = blockDim.x;
    shared[t] = (int)t * 10 + salt;
    if (barrier)
        __syncthreads();
    out[t] = shared[(t + 1) % n] + shared[(t + n - 1) % n];
}

/* Block reduction whose scratch is reused by a second reduction with no barrier between the last
 * read of the first and the first write of the second (rt_cuda_block_sum has one). */
static __global__ void reused_scratch_kernel(bool barrier, const double *x, double *out)
{
    __shared__ double scratch[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    double v = x[threadIdx.x];
    for (int round = 0; round < 2; round++) {
        if (barrier)
            __syncthreads();
        double w = rt_cuda_warp_sum(v);
        if (lane == 0)
            scratch[warp] = w;
        __syncthreads();
        w = lane < nwarps ? scratch[lane] : 0.0;
        v = rt_cuda_warp_sum(w) + v; /* round 2 adds the block's sum to every value */
    }
    out[threadIdx.x] = v;
}

/* Threads at or past `live` exit before the barrier: on Volta and later the rest still pass it. */
static __global__ void early_exit_kernel(int live, int *out)
{
    __shared__ int shared[256];
    if ((int)threadIdx.x >= live)
        return;
    shared[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = shared[live - 1 - (int)threadIdx.x];
}

/* Lanes 0-15 shuffle while lanes 16-31 wait at the barrier: a hang on a GPU. */
static __global__ void divergent_shuffle_kernel(double *out)
{
    if ((threadIdx.x & 31) < 16)
        out[threadIdx.x] = rt_cuda_warp_sum(1.0);
    else
        __syncthreads();
}

/* Lane 31 exits while the others shuffle with a full mask: undefined on a GPU. */
static __global__ void exited_lane_kernel(double *out)
{
    if (threadIdx.x == 31)
        return;
    out[threadIdx.x] = rt_cuda_warp_sum(1.0);
}

static __global__ void atomic_count_kernel(unsigned long long *count, double *sum)
{
    atomicAdd(count, 1ull);
    atomicAdd(sum, 0.5);
}

static __global__ void coords_kernel(unsigned *out)
{
    unsigned t = threadIdx.x + threadIdx.y * blockDim.x, b = blockIdx.x + blockIdx.y * gridDim.x;
    out[b * blockDim.x * blockDim.y + t] = threadIdx.y * 1000 + threadIdx.x + 100000 * (blockIdx.y * 10 + blockIdx.x);
}

static __global__ void noop_kernel(int x) { (void)x; }

/* --- helpers --- */

template <typename T> static T *device_copy(const T *host, size_t n)
{
    T *d = NULL;
    if (cudaMalloc(&d, n * sizeof(T)) != cudaSuccess)
        return NULL;
    cudaMemcpyAsync(d, host, n * sizeof(T), cudaMemcpyHostToDevice, NULL);
    return d;
}

template <typename T> static void host_copy(T *host, const T *dev, size_t n)
{
    cudaMemcpyAsync(host, dev, n * sizeof(T), cudaMemcpyDeviceToHost, NULL);
}

/* --- tests --- */

static void test_block_and_warp_reductions(void)
{
    double x[512], sums[2], want[2] = {0, 0};
    for (int i = 0; i < 512; i++) {
        x[i] = (i % 7) * 0.25 - 0.5;
        want[i / 256] += x[i];
    }
    double *dx = device_copy(x, 512), *dout = NULL;
    REQUIRE(dx, "cudaMalloc");
    cudaMalloc(&dout, 2 * sizeof(double));
    RT_SIM_LAUNCH(block_sum_kernel, 2, 256, 0, (const double *)dx, dout);
    CHECK(cudaGetLastError() == cudaSuccess, "launch");
    host_copy(sums, dout, 2);
    CHECK_CLOSE(sums[0], want[0], 1e-12);
    CHECK_CLOSE(sums[1], want[1], 1e-12);

    double y[64], m[64];
    for (int i = 0; i < 64; i++)
        y[i] = i == 40 ? NAN : (double)((i * 37) % 64);
    double *dy = device_copy(y, 64), *dm = NULL;
    cudaMalloc(&dm, 64 * sizeof(double));
    RT_SIM_LAUNCH(warp_max_kernel, 1, 64, 0, (const double *)dy, dm);
    host_copy(m, dm, 64);
    double max0 = 0;
    for (int i = 0; i < 32; i++)
        max0 = y[i] > max0 ? y[i] : max0;
    for (int i = 0; i < 32; i++)
        CHECK(m[i] == max0, "warp 0 lane %d: %g, want %g", i, m[i], max0);
    for (int i = 32; i < 64; i++)
        CHECK(isnan(m[i]), "warp 1 lane %d: %g, want NaN (NaN wins)", i, m[i]);
    cudaFree(dx), cudaFree(dout), cudaFree(dy), cudaFree(dm);
}

static void test_barriers(void)
{
    int out[256], *d = NULL;
    REQUIRE(cudaMalloc(&d, sizeof out) == cudaSuccess, "cudaMalloc");
    RT_SIM_LAUNCH(rotate_kernel, 1, 256, 0, d);
    host_copy(out, d, 256);
    for (int t = 0; t < 256; t++) {
        int want = ((t + 1) % 256) * 10;
        CHECK(out[t] == want, "thread %d read %d, want %d", t, out[t], want);
    }

    RT_SIM_LAUNCH(early_exit_kernel, 1, 256, 0, 100, d);
    CHECK(cudaGetLastError() == cudaSuccess, "threads that exit do not hold up the barrier");
    host_copy(out, d, 256);
    for (int t = 0; t < 100; t++)
        CHECK(out[t] == 99 - t, "thread %d read %d", t, out[t]);
    cudaFree(d);
}

/* Warps run as far ahead as the barriers let them (in either order), so a missing barrier changes
 * the result; with the barrier every thread gets the race-free one. */
static void test_races_show(void)
{
    int out[256], *d = NULL;
    REQUIRE(cudaMalloc(&d, sizeof out) == cudaSuccess, "cudaMalloc");
    for (int barrier = 1; barrier >= 0; barrier--) {
        int salt = 2 - barrier;
        RT_SIM_LAUNCH(neighbours_kernel, 1, 256, 0, barrier != 0, salt, d);
        host_copy(out, d, 256);
        int wrong = 0;
        for (int t = 0; t < 256; t++)
            wrong += out[t] != ((t + 1) % 256) * 10 + ((t + 255) % 256) * 10 + 2 * salt;
        if (barrier)
            CHECK(wrong == 0, "%d threads read a wrong neighbour after the barrier", wrong);
        else
            CHECK(wrong > 0, "without the barrier every thread read its neighbours in time");
    }
    cudaFree(d);

    double x[256], y[256], *dx = NULL, *dy = NULL, sum = 0;
    for (int i = 0; i < 256; i++)
        sum += x[i] = (i % 5) + 1;
    dx = device_copy(x, 256);
    REQUIRE(dx && cudaMalloc(&dy, sizeof y) == cudaSuccess, "cudaMalloc");
    for (int barrier = 1; barrier >= 0; barrier--) {
        RT_SIM_LAUNCH(reused_scratch_kernel, 1, 256, 0, barrier != 0, (const double *)dx, dy);
        host_copy(y, dy, 256);
        /* race-free: every value becomes x + S; their sum is 257 S, added again: x + 258 S */
        int wrong = 0;
        for (int i = 0; i < 256; i++)
            wrong += y[i] != x[i] + 258 * sum;
        if (barrier)
            CHECK(wrong == 0, "%d values wrong with the barrier", wrong);
        else
            CHECK(wrong > 0, "scratch reused without a barrier gave the race-free result everywhere");
    }
    cudaFree(dx), cudaFree(dy);
}

static void test_kernel_bugs_become_launch_errors(void)
{
    double *d = NULL;
    REQUIRE(cudaMalloc(&d, 64 * sizeof(double)) == cudaSuccess, "cudaMalloc");
    fprintf(stderr, "  (two simulator reports expected:)\n");
    RT_SIM_LAUNCH(divergent_shuffle_kernel, 1, 64, 0, d);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "a shuffle half the warp never reaches is a launch failure");
    RT_SIM_LAUNCH(exited_lane_kernel, 1, 32, 0, d);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "a shuffle after a lane exited is a launch failure");
    CHECK(cudaGetLastError() == cudaSuccess, "the error is returned once");
    RT_SIM_LAUNCH(block_sum_kernel, 1, 64, 0, (const double *)d, d);
    CHECK(cudaGetLastError() == cudaSuccess, "the next launch runs");
    cudaFree(d);
}

static void test_launch_geometry(void)
{
    fprintf(stderr, "  (three simulator reports expected:)\n");
    RT_SIM_LAUNCH(noop_kernel, 1, 2048, 0, 1);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "2048 threads in a block");
    RT_SIM_LAUNCH(noop_kernel, 0, 32, 0, 1);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "an empty grid");
    RT_SIM_LAUNCH(noop_kernel, 1, 32, (size_t)64 << 10, 1);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "64 KiB of dynamic shared memory");

    unsigned out[2 * 3 * 8 * 4], *d = NULL;
    REQUIRE(cudaMalloc(&d, sizeof out) == cudaSuccess, "cudaMalloc");
    RT_SIM_LAUNCH(coords_kernel, dim3(2, 3), dim3(8, 4), 0, d);
    host_copy(out, d, 2 * 3 * 8 * 4);
    for (unsigned by = 0; by < 3; by++)
        for (unsigned bx = 0; bx < 2; bx++)
            for (unsigned ty = 0; ty < 4; ty++)
                for (unsigned tx = 0; tx < 8; tx++) {
                    unsigned at = (by * 2 + bx) * 32 + ty * 8 + tx, want = ty * 1000 + tx + 100000 * (by * 10 + bx);
                    CHECK(out[at] == want, "block (%u,%u) thread (%u,%u): %u, want %u", bx, by, tx, ty, out[at], want);
                }
    cudaFree(d);
}

static void test_atomics(void)
{
    unsigned long long count = 0, *dc = device_copy(&count, 1);
    double sum = 0, *ds = device_copy(&sum, 1);
    REQUIRE(dc && ds, "cudaMalloc");
    RT_SIM_LAUNCH(atomic_count_kernel, 4, 256, 0, dc, ds);
    host_copy(&count, dc, 1);
    host_copy(&sum, ds, 1);
    CHECK(count == 1024, "count %llu", count);
    CHECK(sum == 512.0, "sum %g", sum);
    cudaFree(dc), cudaFree(ds);
}

static void test_memory_checks(void)
{
    float host[4] = {1, 2, 3, 4}, back[4] = {0, 0, 0, 0}, *d = NULL;
    REQUIRE(cudaMalloc(&d, sizeof host) == cudaSuccess, "cudaMalloc");
    fprintf(stderr, "  (four simulator reports expected:)\n");
    CHECK(cudaMemcpyAsync(back, host, sizeof host, cudaMemcpyHostToDevice, NULL) == cudaErrorInvalidValue,
          "an upload into host memory");
    CHECK(cudaMemcpyAsync(d, host, 2 * sizeof host, cudaMemcpyHostToDevice, NULL) == cudaErrorInvalidValue,
          "an upload past the end of the block");
    CHECK(cudaMemcpyAsync(back, d, sizeof host, cudaMemcpyHostToDevice, NULL) == cudaErrorInvalidValue,
          "a download named as an upload");
    CHECK(cudaFree(host) == cudaErrorInvalidValue, "freeing what cudaMalloc did not return");
    cudaGetLastError();
    CHECK(cudaMemcpyAsync(d, host, sizeof host, cudaMemcpyHostToDevice, NULL) == cudaSuccess, "upload");
    CHECK(cudaMemcpyAsync(back, d, sizeof host, cudaMemcpyDeviceToHost, NULL) == cudaSuccess, "download");
    CHECK(memcmp(back, host, sizeof host) == 0, "round trip");
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    void *big = NULL;
    CHECK(cudaMalloc(&big, total_b + 1) == cudaErrorMemoryAllocation, "more than the device has");
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation, "the failed allocation is the last error");
    cudaFree(d);
}

/* The backend's allocator hands out blocks of all-ones bytes here, so a read of an unwritten element
 * shows (NaN for floats, -1 for integers), even from a block a freed tensor held. */
static void test_handed_out_blocks_hold_ones(void)
{
    int64_t shape[1] = {37};
    for (int round = 0; round < 2; round++) {
        struct rt_tensor *t = NULL;
        REQUIRE_OK(rt_tensor_empty(RT_I64, RT_CUDA, 1, shape, &t));
        int64_t host[37];
        enum rt_status st = rt_tensor_to_host(t, RT_I64, host);
        if (CHECK_OK(st))
            for (int i = 0; i < 37; i++)
                CHECK(host[i] == -1, "round %d element %d: %lld", round, i, (long long)host[i]);
        if (round == 0)
            CHECK_OK(rt_fill_(t, 5)); /* the next round gets this block back from the cache */
        rt_tensor_release(t);
    }
}

/* C = op(A) op(B), column-major, against a loop */
static void test_cublas_against_a_loop(void)
{
    cublasHandle_t h = NULL;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
    const int m = 3, n = 4, k = 5;
    double a[k * m], b[n * k], c[m * n];
    for (int i = 0; i < k * m; i++)
        a[i] = (i % 5) - 1.5;
    for (int i = 0; i < n * k; i++)
        b[i] = (i % 3) * 0.5 + 0.25;
    for (int i = 0; i < m * n; i++)
        c[i] = 1.0;
    double *da = device_copy(a, k * m), *db = device_copy(b, n * k), *dc = device_copy(c, m * n), got[m * n];
    double alpha = 2.0, beta = 0.5;
    /* A stored transposed: k x m with lda = k; B as is: k x n with ldb = k */
    CHECK(cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, da, k, db, k, &beta, dc, m) ==
              CUBLAS_STATUS_SUCCESS,
          "dgemm");
    host_copy(got, dc, m * n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int l = 0; l < k; l++)
                s += a[i * k + l] * b[j * k + l];
            CHECK_CLOSE(got[j * m + i], alpha * s + beta * 1.0, 1e-14);
        }
    CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, m - 1, db, k, &beta, dc, m) ==
              CUBLAS_STATUS_INVALID_VALUE,
          "lda below the row count");
    fprintf(stderr, "  (one simulator report expected:)\n");
    CHECK(cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a, k, db, k, &beta, dc, m) ==
              CUBLAS_STATUS_EXECUTION_FAILED,
          "a host operand");
    cublasDestroy(h);
    cudaFree(da), cudaFree(db), cudaFree(dc);
}

int main(void)
{
    RUN(test_block_and_warp_reductions);
    RUN(test_barriers);
    RUN(test_races_show);
    RUN(test_kernel_bugs_become_launch_errors);
    RUN(test_launch_geometry);
    RUN(test_atomics);
    RUN(test_memory_checks);
    RUN(test_handed_out_blocks_hold_ones);
    RUN(test_cublas_against_a_loop);
    return h_finish();
}
