/* Indexing kernels over (outer, n, inner) layouts, mirroring cpu_index.c. Indices are device
 * pointers, checked by the check_index kernel queued before (which records a bad one). Selection,
 * copy and gather only move bytes (dispatch on element size; index_select and index_copy move whole
 * rows in the widest unit, up to 16 bytes, that the row length and the pointers allow); the adds
 * are typed.
 *
 * Layout: a row is one (o, j) pair of the output (or source) and holds `len` units. Blocks are
 * (tx, ty) with tx a power of two covering the row (at most 256) and ty rows side by side, so short
 * rows still fill a warp and the (o, j) split costs one division per row, not per element. When
 * there are few long rows, grid.y cuts each row into chunks.
 *
 * scatter_add and index_add use atomic adds, since indices may repeat: float/double atomicAdd,
 * int64 through the unsigned 64-bit atomicAdd (wraps like the CPU's), u8 through a compare-and-swap
 * on the aligned 32-bit word holding the byte. Integer results are exact and reproducible; for
 * floats the order of the adds into one output, hence its rounding, varies between runs (PyTorch's
 * CUDA index_add_/scatter_add_ behave the same). */
#include "backend/cuda/cuda_kernels.h"

/* --- launch geometry --- */

struct ix_geo {
    dim3 grid, block;
    int64_t chunk; /* units of a row per grid.y slice */
};

static int64_t ix_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* rows > 0 rows of len > 0 units */
static ix_geo ix_geometry(int64_t rows, int64_t len)
{
    int64_t sms = rt_cuda_sm_count();
    int tx = 1;
    while (tx < len && tx < 256)
        tx <<= 1;
    int ty = 256 / tx;
    int64_t gx = ix_cdiv(rows, ty), gy = 1, chunk = len;
    if (gx > sms * 32)
        gx = sms * 32; /* grid-stride over rows */
    if (gx < sms * 4 && len > (int64_t)tx * 16) { /* few long rows: cut them */
        gy = ix_cdiv(sms * 4, gx);
        int64_t most = len / ((int64_t)tx * 8); /* at least 8 units per thread */
        gy = gy < most ? gy : most;
        gy = gy < 65535 ? gy : 65535;
        chunk = ix_cdiv(len, gy);
        gy = ix_cdiv(len, chunk);
    }
    ix_geo g;
    g.grid = dim3((unsigned)gx, (unsigned)gy);
    g.block = dim3((unsigned)tx, (unsigned)ty);
    g.chunk = chunk;
    return g;
}

/* End of this block's slice of a row: units [blockIdx.y * chunk, end). */
__device__ static inline int64_t ix_slice_end(int64_t len, int64_t chunk)
{
    int64_t e = ((int64_t)blockIdx.y + 1) * chunk;
    return e < len ? e : len;
}

/* Loop over this thread's rows r, then over the units i of the row's slice. */
#define IX_ROWS(r, rows)                                                                                          \
    for (int64_t r = (int64_t)blockIdx.x * blockDim.y + threadIdx.y, r##_step = (int64_t)gridDim.x * blockDim.y;  \
         r < (rows); r += r##_step)
#define IX_UNITS(i, len, chunk)                                                                                   \
    for (int64_t i##_end = ix_slice_end(len, chunk), i = (int64_t)blockIdx.y * (chunk) + threadIdx.x; i < i##_end; \
         i += blockDim.x)

/* Runs the statements with U the unsigned unit type of `bytes` (16, 8, 4, 2, else 1) bytes: for the
 * kernels that only move bytes. The statements must return. */
#define IX_DISPATCH_UNIT(bytes, ...)                                                                             \
    switch (bytes) {                                                                                              \
    case 16: { typedef uint4 U; __VA_ARGS__; }                                                                    \
    case 8: { typedef uint2 U; __VA_ARGS__; }                                                                     \
    case 4: { typedef uint32_t U; __VA_ARGS__; }                                                                  \
    case 2: { typedef uint16_t U; __VA_ARGS__; }                                                                  \
    default: { typedef uint8_t U; __VA_ARGS__; }                                                                  \
    }

/* --- check_index: out[i] = ix[i] - base, a bad value recorded for the next wait and written as 0 --- */

__global__ void ix_check_kernel(int64_t n, const int64_t *__restrict__ ix, int64_t base, int64_t limit,
                                int64_t ignore, int64_t *__restrict__ out, struct rt_cuda_fault *fault,
                                const char *op, const char *what)
{
    RT_CUDA_LOOP(i, n)
    {
        int64_t v = ix[i];
        bool ok = (ignore != RT_NO_IGNORE && v == ignore) || (v >= base && v - base < limit);
        if (!ok)
            rt_cuda_report_bad_index(fault, op, what, v, i, base, limit);
        if (out)
            out[i] = ok ? rt_cuda_wsub(v, base) : 0;
    }
}

enum rt_status rt_cuda_check_index(const char *op, const char *what, int64_t n, const int64_t *ix, int64_t base,
                                   int64_t limit, int64_t ignore, int64_t *out)
{
    if (n <= 0)
        return RT_OK;
    return RT_CUDA_LAUNCH("cuda check_index", ix_check_kernel, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, ix, base,
                          limit, ignore, out, rt_cuda_fault_slot(), op, what);
}

/* The index kernels below stay in bounds on a bad index (0 for a read, nothing for an add): the check
 * before them has recorded it, and it is reported at the next wait. */

/* --- whole rows by index: index_select (out[o, j, :] = x[o, index[j], :]) and index_copy
 * (out[o, index[j], :] = src[o, j, :]), the same move in opposite directions --- */

template <typename U, bool TO_INDEX>
__global__ void ix_rows_kernel(int64_t rows, int64_t m, int64_t n, int64_t len, int64_t chunk,
                               const int64_t *__restrict__ index, const U *__restrict__ from, U *to)
{
    IX_ROWS(r, rows)
    {
        int64_t o = r / m, j = r - o * m, k = index[j];
        bool ok = (uint64_t)k < (uint64_t)n;
        if (TO_INDEX) {
            if (!ok)
                continue;
            const U *s = from + r * len;
            U *dst = to + (o * n + k) * len;
            IX_UNITS(i, len, chunk) dst[i] = s[i];
        } else {
            const U *s = ok ? from + (o * n + k) * len : NULL;
            U *dst = to + r * len;
            IX_UNITS(i, len, chunk) dst[i] = s ? s[i] : U();
        }
    }
}

template <bool TO_INDEX>
static enum rt_status ix_rows(const char *what, const char *op, enum rt_dtype dt, int64_t outer, int64_t n,
                              int64_t inner, const int64_t *index, int64_t m, const void *from, void *to)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype(what, dt);
    if (outer <= 0 || m <= 0 || inner <= 0)
        return RT_OK;
    /* the widest unit dividing the row's bytes and both addresses */
    size_t bytes = (size_t)inner * rt_dtype_size(dt), u = 16;
    while (u > 1 && (bytes % u || ((uintptr_t)from | (uintptr_t)to) % u))
        u >>= 1;
    int64_t rows = outer * m, len = (int64_t)(bytes / u);
    ix_geo g = ix_geometry(rows, len);
    IX_DISPATCH_UNIT(u, return RT_CUDA_LAUNCH(op, (ix_rows_kernel<U, TO_INDEX>), g.grid, g.block, 0, rows, m, n, len,
                                              g.chunk, index, (const U *)from, (U *)to));
}

enum rt_status rt_cuda_index_select(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                    int64_t m, const void *x, void *out)
{
    return ix_rows<false>("index_select", "cuda index_select", dt, outer, n, inner, index, m, x, out);
}

enum rt_status rt_cuda_index_copy(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                  int64_t m, const void *src, void *out)
{
    return ix_rows<true>("index_copy", "cuda index_copy", dt, outer, n, inner, index, m, src, out);
}

/* --- gather: out[o, j, i] = x[o, index[o, j, i], i] --- */

template <typename U>
__global__ void ix_gather_kernel(int64_t rows, int64_t m, int64_t n, int64_t inner, int64_t chunk,
                                 const int64_t *__restrict__ index, const U *__restrict__ x, U *__restrict__ out)
{
    IX_ROWS(r, rows)
    {
        const U *src = x + r / m * n * inner; /* x[o] */
        const int64_t *ix = index + r * inner;
        U *dst = out + r * inner;
        IX_UNITS(i, inner, chunk) dst[i] = (uint64_t)ix[i] < (uint64_t)n ? src[ix[i] * inner + i] : U();
    }
}

enum rt_status rt_cuda_gather(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                              const int64_t *index, const void *x, void *out)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype("gather", dt);
    if (outer <= 0 || m <= 0 || inner <= 0)
        return RT_OK;
    int64_t rows = outer * m;
    ix_geo g = ix_geometry(rows, inner);
    IX_DISPATCH_UNIT(rt_dtype_size(dt), return RT_CUDA_LAUNCH("cuda gather", ix_gather_kernel<U>, g.grid, g.block, 0,
                                                              rows, m, n, inner, g.chunk, index, (const U *)x,
                                                              (U *)out));
}

/* --- atomic adds (see the header comment) --- */

__device__ static inline void ix_atomic_add(float *p, float v) { atomicAdd(p, v); }
__device__ static inline void ix_atomic_add(double *p, double v) { atomicAdd(p, v); }
__device__ static inline void ix_atomic_add(int64_t *p, int64_t v)
{
    atomicAdd((unsigned long long *)p, (unsigned long long)v); /* two's complement: wraps like the CPU */
}
/* No 8-bit atomics: swap the whole aligned word with only our byte changed, until no other thread
 * changed the word in between. GPUs are little-endian: byte k of the word is bits 8k..8k+7. */
__device__ static inline void ix_atomic_add(uint8_t *p, uint8_t v)
{
    unsigned *w = (unsigned *)((uintptr_t)p & ~(uintptr_t)3);
    unsigned shift = (unsigned)((uintptr_t)p & 3) * 8, mask = 0xffu << shift;
    unsigned old = *w, seen;
    do {
        seen = old;
        unsigned sum = ((seen >> shift) + v) & 0xffu;
        old = atomicCAS(w, seen, (seen & ~mask) | (sum << shift));
    } while (old != seen);
}

/* --- scatter_add: out[o, index[o, j, i], i] += src[o, j, i] --- */

template <typename T>
__global__ void ix_scatter_add_kernel(int64_t rows, int64_t m, int64_t n, int64_t inner, int64_t chunk,
                                      const int64_t *__restrict__ index, const T *__restrict__ src, T *out)
{
    IX_ROWS(r, rows)
    {
        T *dst = out + r / m * n * inner; /* out[o] */
        const int64_t *ix = index + r * inner;
        const T *s = src + r * inner;
        IX_UNITS(i, inner, chunk) if ((uint64_t)ix[i] < (uint64_t)n) ix_atomic_add(&dst[ix[i] * inner + i], s[i]);
    }
}

enum rt_status rt_cuda_scatter_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                                   const int64_t *index, const void *src, void *out)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype("scatter_add", dt);
    if (outer <= 0 || m <= 0 || inner <= 0)
        return RT_OK;
    int64_t rows = outer * m;
    ix_geo g = ix_geometry(rows, inner);
    RT_CUDA_DISPATCH_ALL(dt, "scatter_add",
                         return RT_CUDA_LAUNCH("cuda scatter_add", ix_scatter_add_kernel<T>, g.grid, g.block, 0, rows,
                                               m, n, inner, g.chunk, index, (const T *)src, (T *)out));
    return RT_OK;
}

/* --- index_add: out[o, index[j], i] += src[o, j, i] --- */

template <typename T>
__global__ void ix_index_add_kernel(int64_t rows, int64_t m, int64_t n, int64_t inner, int64_t chunk,
                                    const int64_t *__restrict__ index, const T *__restrict__ src, T *out)
{
    IX_ROWS(r, rows)
    {
        int64_t o = r / m, j = r - o * m, k = index[j];
        if ((uint64_t)k >= (uint64_t)n)
            continue;
        T *dst = out + (o * n + k) * inner;
        const T *s = src + r * inner;
        IX_UNITS(i, inner, chunk) ix_atomic_add(&dst[i], s[i]);
    }
}

enum rt_status rt_cuda_index_add(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                 int64_t m, const void *src, void *out)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype("index_add", dt);
    if (outer <= 0 || m <= 0 || inner <= 0)
        return RT_OK;
    int64_t rows = outer * m;
    ix_geo g = ix_geometry(rows, inner);
    RT_CUDA_DISPATCH_ALL(dt, "index_add",
                         return RT_CUDA_LAUNCH("cuda index_add", ix_index_add_kernel<T>, g.grid, g.block, 0, rows, m,
                                               n, inner, g.chunk, index, (const T *)src, (T *)out));
    return RT_OK;
}
