/* Reductions over the middle axis of (outer, n, inner), mirroring cpu_reduce.c: the same
 * accumulation types (floating sums in double, f32 included; integer sums in wrapping int64), the
 * same NaN and tie rules (the first NaN wins, else the first extremum), the same n == 0 results.
 *
 * Every op is an accumulator (init, add one element, merge two partial results, finish), so one
 * set of kernels serves all ops and the results do not depend on how the work is split:
 *  - inner == 1, rows: a warp per row (short rows or many of them) or a block per row, merged with
 *    shuffles; a few long rows are cut into chunks, one block per chunk, whose partial results go
 *    to scratch and are merged in chunk order by a second kernel (a deterministic split-K).
 *  - inner > 1, columns: a thread per output walking n with stride inner, so that a warp reads
 *    consecutive addresses; when there are too few outputs to fill the GPU, tiles of 32 columns
 *    with up to 16 threads along n each (and, for very long n, chunks with partials as above).
 * Merges keep the CPU's answer: sums are associative up to rounding (double), integer wrap-around
 * is exact, max/min break ties by the smaller index, logsumexp merges (max, scaled sum) pairs. */
#include "backend/cuda/cuda_kernels.h"

/* Norm order p, classified once on the host (the CPU's special cases, in its order). */
enum { NP_TWO, NP_ONE, NP_ZERO, NP_MAX, NP_MIN, NP_POW };

/* Everything a kernel needs, by value. The row (or column) is split into s_count chunks of chunk
 * elements; s_count == 1 means no split and the kernel writes the outputs itself. */
struct red_par {
    int64_t outer, n, inner, chunk, s_count;
    int pmode;
    double p;
};

/* --- element helpers --- */

template <typename T> struct red_sum_type { typedef double type; };
template <> struct red_sum_type<int64_t> { typedef int64_t type; };
template <> struct red_sum_type<uint8_t> { typedef int64_t type; };

template <typename T> __device__ static inline bool red_isnan(T v) { return v != v; }
template <> __device__ inline bool red_isnan<int64_t>(int64_t v) { return (void)v, false; }
template <> __device__ inline bool red_isnan<uint8_t>(uint8_t v) { return (void)v, false; }

/* The CPU's BEATS_MAX / BEATS_MIN: a NaN beats everything but a NaN; otherwise strictly greater
 * (smaller), so the first extremum stays. */
template <bool MAX, typename T> __device__ static inline bool red_beats(T v, T best)
{
    return red_isnan(v) ? !red_isnan(best) : MAX ? v > best : v < best;
}

/* __shfl_xor_sync for every field type (no 8-bit or `long` overloads are relied on). */
template <typename V> __device__ static inline V red_shfl(V v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
template <> __device__ inline int64_t red_shfl<int64_t>(int64_t v, int o)
{
    return (int64_t)__shfl_xor_sync(0xffffffffu, (long long)v, o);
}
template <> __device__ inline uint8_t red_shfl<uint8_t>(uint8_t v, int o)
{
    return (uint8_t)__shfl_xor_sync(0xffffffffu, (unsigned)v, o);
}

/* --- accumulators: plain structs (they live in shared memory and scratch) --- */

/* sum and mean */
template <typename T, int OP> struct red_sum {
    typedef typename red_sum_type<T>::type A;
    A s;
    __device__ void init(const red_par &) { s = 0; }
    __device__ void add(T v, int64_t, const red_par &) { s = rt_cuda_wadd(s, (A)v); }
    __device__ void merge(const red_sum &o, const red_par &) { s = rt_cuda_wadd(s, o.s); }
    __device__ red_sum shfl(int o) const { return red_sum{red_shfl(s, o)}; }
    __device__ void finish(const red_par &P, T *out, int64_t *) const
    {
        *out = OP == RT_RED_MEAN ? rt_cuda_cvt<T>((double)s / (double)P.n) : rt_cuda_cvt<T>(s);
    }
};

/* max and min with the index of the winner; i < 0: nothing seen yet */
template <typename T, bool MAX> struct red_ext {
    T v;
    int64_t i;
    __device__ void init(const red_par &) { v = (T)0, i = -1; }
    /* a thread adds its elements in increasing j, so a strict win keeps the first */
    __device__ void add(T x, int64_t j, const red_par &)
    {
        if (i < 0 || red_beats<MAX>(x, v))
            v = x, i = j;
    }
    /* equal (or both NaN): the smaller index, as a sequential scan would find */
    __device__ void merge(const red_ext &o, const red_par &)
    {
        if (o.i >= 0 && (i < 0 || red_beats<MAX>(o.v, v) || (!red_beats<MAX>(v, o.v) && o.i < i)))
            v = o.v, i = o.i;
    }
    __device__ red_ext shfl(int o) const { return red_ext{red_shfl(v, o), red_shfl(i, o)}; }
    __device__ void finish(const red_par &, T *out, int64_t *idx) const
    {
        *out = v;
        if (idx)
            *idx = i;
    }
};

/* logsumexp as a running (max m, sum s of exp(x - m)): rescaled when the max grows. The CPU takes
 * the max first and sums afterwards; this differs only by rounding (in double). NaN, +inf and
 * all -inf (or empty) rows give m itself, as there. Invariant: m == -inf implies s == 0. */
template <typename T> struct red_lse {
    double m, s;
    __device__ void init(const red_par &) { m = -INFINITY, s = 0; }
    __device__ void add(T x, int64_t, const red_par &)
    {
        double v = (double)x;
        if (red_beats<true>(v, m)) {
            s = (m == -INFINITY ? 0.0 : s * exp(m - v)) + 1.0;
            m = v;
        } else if (m > -INFINITY) { /* skips -inf into an all -inf prefix (exp(nan)) and NaN m */
            s += exp(v - m);
        }
    }
    __device__ void merge(const red_lse &o, const red_par &)
    {
        double M = red_beats<true>(o.m, m) ? o.m : m;
        if (M != M || isinf(M)) { /* the answer is M whatever the sums */
            m = M, s = 0;
            return;
        }
        s = s * exp(m - M) + o.s * exp(o.m - M); /* a -inf side has s == 0 and exp(-inf) == 0 */
        m = M;
    }
    __device__ red_lse shfl(int o) const { return red_lse{red_shfl(m, o), red_shfl(s, o)}; }
    __device__ void finish(const red_par &, T *out, int64_t *) const
    {
        *out = rt_cuda_cvt<T>(m != m || isinf(m) ? m : m + log(s));
    }
};

/* norm of order p: a sum of terms, or max |x| (p = inf) / min |x| (p = -inf) with NaN propagating */
template <typename T> struct red_norm {
    double a;
    __device__ void init(const red_par &P) { a = P.pmode == NP_MIN ? INFINITY : 0.0; }
    __device__ void add(T x, int64_t, const red_par &P)
    {
        double v = (double)x, f = fabs(v);
        switch (P.pmode) {
        case NP_TWO: a += v * v; break;
        case NP_ONE: a += f; break;
        case NP_ZERO: a += v != 0 ? 1.0 : 0.0; break; /* number of non-zeros (NaN counts) */
        case NP_MAX: a = red_beats<true>(f, a) ? f : a; break;
        case NP_MIN: a = red_beats<false>(f, a) ? f : a; break;
        default: a += pow(f, P.p); break;
        }
    }
    __device__ void merge(const red_norm &o, const red_par &P)
    {
        if (P.pmode == NP_MAX)
            a = red_beats<true>(o.a, a) ? o.a : a;
        else if (P.pmode == NP_MIN)
            a = red_beats<false>(o.a, a) ? o.a : a;
        else
            a += o.a;
    }
    __device__ red_norm shfl(int o) const { return red_norm{red_shfl(a, o)}; }
    __device__ void finish(const red_par &P, T *out, int64_t *) const
    {
        double r = a;
        if ((P.pmode == NP_MAX || P.pmode == NP_MIN) && P.n == 0)
            r = 0;
        if (P.pmode == NP_TWO)
            r = sqrt(r);
        else if (P.pmode == NP_POW)
            r = pow(r, 1.0 / P.p);
        *out = rt_cuda_cvt<T>(r);
    }
};

/* --- kernels, generic over the accumulator --- */

template <typename Acc> __device__ static inline Acc red_warp(Acc a, const red_par &P)
{
    for (int o = 16; o > 0; o >>= 1)
        a.merge(a.shfl(o), P);
    return a;
}

/* Writes the result of chunk s of output q: the output itself, or its partial. */
template <typename T, typename Acc>
__device__ static inline void red_emit(const Acc &a, const red_par &P, int64_t q, int64_t s, T *out, int64_t *idx,
                                       Acc *part)
{
    if (P.s_count == 1)
        a.finish(P, out + q, idx ? idx + q : nullptr);
    else
        part[q * P.s_count + s] = a;
}

/* inner == 1. BLOCK: a block per task, else a warp per task; task t is chunk t % s_count of row
 * t / s_count. Consecutive threads read consecutive elements. */
template <typename T, typename Acc, bool BLOCK>
__global__ void red_rows_kernel(red_par P, const T *__restrict__ x, T *out, int64_t *idx, Acc *part)
{
    __shared__ Acc sh[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    int tid = BLOCK ? (int)threadIdx.x : lane, step = BLOCK ? (int)blockDim.x : 32;
    int64_t per = BLOCK ? 1 : nwarps, tasks = P.outer * P.s_count;
    for (int64_t t = (int64_t)blockIdx.x * per + (BLOCK ? 0 : warp); t < tasks; t += (int64_t)gridDim.x * per) {
        int64_t r = t / P.s_count, s = t - r * P.s_count;
        int64_t j0 = s * P.chunk, j1 = j0 + P.chunk < P.n ? j0 + P.chunk : P.n;
        const T *px = x + r * P.n;
        Acc a;
        a.init(P);
#pragma unroll 4
        for (int64_t j = j0 + tid; j < j1; j += step)
            a.add(px[j], j, P);
        a = red_warp(a, P);
        if (BLOCK) {
            __syncthreads(); /* sh may still be read for the previous task */
            if (lane == 0)
                sh[warp] = a;
            __syncthreads();
            if (warp == 0) {
                if (lane < nwarps)
                    a = sh[lane];
                else
                    a.init(P);
                a = red_warp(a, P);
            }
        }
        if (tid == 0)
            red_emit(a, P, r, s, out, idx, part);
    }
}

/* A thread per output (o, i), walking n with stride inner: neighbouring threads, neighbouring
 * addresses. Also serves very short rows (inner == 1, n tiny). */
template <typename T, typename Acc>
__global__ void red_cols_kernel(red_par P, const T *__restrict__ x, T *out, int64_t *idx)
{
    RT_CUDA_LOOP(q, P.outer * P.inner)
    {
        int64_t o = q / P.inner, i = q - o * P.inner;
        const T *px = x + o * P.n * P.inner + i;
        Acc a;
        a.init(P);
#pragma unroll 4
        for (int64_t j = 0; j < P.n; j++)
            a.add(px[j * P.inner], j, P);
        a.finish(P, out + q, idx ? idx + q : nullptr);
    }
}

/* Few outputs, long n: blocks of (32, Y) threads over tiles of 32 neighbouring columns; thread
 * (x, y) takes rows j = y, y + Y, ... of its chunk, and the Y partials of a column are merged in
 * shared memory (a fixed tree). Task t is chunk t % s_count of tile t / s_count. */
template <typename T, typename Acc>
__global__ void red_tiles_kernel(red_par P, const T *__restrict__ x, T *out, int64_t *idx, Acc *part)
{
    __shared__ Acc sh[512];
    int tx = threadIdx.x, ty = threadIdx.y, ny = blockDim.y;
    int64_t tiles_i = (P.inner + 31) / 32, tasks = P.outer * tiles_i * P.s_count;
    for (int64_t t = blockIdx.x; t < tasks; t += gridDim.x) {
        int64_t tile = t / P.s_count, s = t - tile * P.s_count;
        int64_t o = tile / tiles_i, i = (tile - o * tiles_i) * 32 + tx;
        int64_t j0 = s * P.chunk, j1 = j0 + P.chunk < P.n ? j0 + P.chunk : P.n;
        Acc a;
        a.init(P);
        if (i < P.inner) {
            const T *px = x + o * P.n * P.inner + i;
#pragma unroll 4
            for (int64_t j = j0 + ty; j < j1; j += ny)
                a.add(px[j * P.inner], j, P);
        }
        __syncthreads(); /* sh may still be read for the previous task */
        sh[ty * 32 + tx] = a;
        __syncthreads();
        for (int h = ny >> 1; h > 0; h >>= 1) {
            if (ty < h) {
                a.merge(sh[(ty + h) * 32 + tx], P);
                sh[ty * 32 + tx] = a;
            }
            __syncthreads();
        }
        if (ty == 0 && i < P.inner)
            red_emit(a, P, o * P.inner + i, s, out, idx, part);
    }
}

/* Merges the s_count partials of each output and writes it: a warp per output, lane l taking
 * partials l, l + 32, ..., then the shuffle tree (a fixed order, so the result is reproducible). */
template <typename T, typename Acc>
__global__ void red_finish_kernel(red_par P, const Acc *__restrict__ part, T *out, int64_t *idx)
{
    int lane = threadIdx.x & 31;
    int64_t per = blockDim.x >> 5, outputs = P.outer * P.inner;
    for (int64_t q = (int64_t)blockIdx.x * per + (threadIdx.x >> 5); q < outputs; q += (int64_t)gridDim.x * per) {
        const Acc *pq = part + q * P.s_count;
        Acc a;
        a.init(P);
#pragma unroll 4
        for (int64_t s = lane; s < P.s_count; s += 32)
            a.merge(pq[s], P);
        a = red_warp(a, P);
        if (lane == 0)
            a.finish(P, out + q, idx ? idx + q : nullptr);
    }
}

/* --- host: pick the layout --- */

static int64_t red_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t red_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* Cuts n into about `want` chunks of at least `least` elements; sets chunk and s_count. */
static void red_split(red_par *P, int64_t want, int64_t least)
{
    int64_t s = red_min(red_min(want, P->n / least), 1024);
    if (s < 2)
        return;
    P->chunk = red_cdiv(P->n, s);
    P->s_count = red_cdiv(P->n, P->chunk); /* no empty chunk */
}

template <typename T, typename Acc> static enum rt_status red_run(red_par P, const T *x, T *out, int64_t *idx)
{
    const char *op = "cuda reduce";
    int64_t sms = rt_cuda_sm_count(), fill = sms * 2048; /* threads resident on a full GPU */
    int64_t outputs = P.outer * P.inner;
    P.chunk = P.n, P.s_count = 1;

    enum { ROWS_WARP, ROWS_BLOCK, COLS, TILES } kind;
    int ty = 1;
    if (P.inner == 1 && P.n > 8) {
        if (P.n <= 512 || P.outer >= sms * 32) {
            kind = ROWS_WARP;
        } else {
            kind = ROWS_BLOCK;
            if (P.outer < sms * 8) /* too few rows for the GPU: split them */
                red_split(&P, red_cdiv(sms * 8, P.outer), 4096);
        }
    } else if (outputs >= fill / 2 || P.n <= 32) {
        kind = COLS;
    } else {
        kind = TILES;
        ty = P.n >= 256 ? 16 : P.n >= 64 ? 8 : 4;
        int64_t threads = P.outer * red_cdiv(P.inner, 32) * 32 * ty;
        if (threads < fill)
            red_split(&P, red_cdiv(fill, threads), 1024);
    }

    Acc *part = nullptr;
    size_t part_bytes = (size_t)outputs * (size_t)P.s_count * sizeof(Acc);
    if (P.s_count > 1) {
        enum rt_status st = rt_cuda_alloc(part_bytes, (void **)&part);
        if (st != RT_OK)
            return st;
    }
    enum rt_status st;
    int64_t tasks = P.outer * P.s_count;
    switch (kind) {
    case ROWS_WARP:
        st = RT_CUDA_LAUNCH(op, (red_rows_kernel<T, Acc, false>), (unsigned)red_min(red_cdiv(tasks, 4), sms * 64), 128,
                            0, P, x, out, idx, part);
        break;
    case ROWS_BLOCK:
        st = RT_CUDA_LAUNCH(op, (red_rows_kernel<T, Acc, true>), (unsigned)red_min(tasks, sms * 32), 256, 0, P, x,
                            out, idx, part);
        break;
    case COLS:
        st = RT_CUDA_LAUNCH(op, (red_cols_kernel<T, Acc>), rt_cuda_blocks(outputs), RT_CUDA_THREADS, 0, P, x, out,
                            idx);
        break;
    default:
        st = RT_CUDA_LAUNCH(op, (red_tiles_kernel<T, Acc>),
                            (unsigned)red_min(P.outer * red_cdiv(P.inner, 32) * P.s_count, sms * 32), dim3(32, ty), 0,
                            P, x, out, idx, part);
        break;
    }
    if (st == RT_OK && P.s_count > 1)
        st = RT_CUDA_LAUNCH(op, (red_finish_kernel<T, Acc>), (unsigned)red_min(red_cdiv(outputs, 4), sms * 64), 128,
                            0, P, (const Acc *)part, out, idx);
    if (part) /* one stream: the kernels above run before the block is reused */
        rt_cuda_free(part, part_bytes);
    return st;
}

enum rt_status rt_cuda_reduce(enum rt_reduce_op op, enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner,
                              const void *x, void *out, int64_t *idx, double p)
{
    enum rt_status st = rt_backend_reduce_args(op, dt, n);
    if (st != RT_OK)
        return st;
    if (outer <= 0 || inner <= 0)
        return RT_OK;
    /* n == 0 still writes the outputs: sum -> 0, mean -> 0/0 = NaN, logsumexp -> -inf, norm -> 0
     * (or pow(0, 1/p) for a negative finite p), as on the CPU. */
    red_par P = {outer, n, inner, n, 1, NP_POW, p};
    if (isinf(p))
        P.pmode = p > 0 ? NP_MAX : NP_MIN;
    else if (p == 2)
        P.pmode = NP_TWO;
    else if (p == 1)
        P.pmode = NP_ONE;
    else if (p == 0)
        P.pmode = NP_ZERO;

    switch (op) {
    case RT_RED_SUM:
        RT_CUDA_DISPATCH_ALL(dt, "reduce", return red_run<T, red_sum<T, RT_RED_SUM>>(P, (const T *)x, (T *)out, idx));
        break;
    case RT_RED_MEAN:
        RT_CUDA_DISPATCH_FLOAT(dt, "mean",
                               return red_run<T, red_sum<T, RT_RED_MEAN>>(P, (const T *)x, (T *)out, idx));
        break;
    case RT_RED_MAX:
        RT_CUDA_DISPATCH_ALL(dt, "reduce", return red_run<T, red_ext<T, true>>(P, (const T *)x, (T *)out, idx));
        break;
    case RT_RED_MIN:
        RT_CUDA_DISPATCH_ALL(dt, "reduce", return red_run<T, red_ext<T, false>>(P, (const T *)x, (T *)out, idx));
        break;
    case RT_RED_LOGSUMEXP:
        RT_CUDA_DISPATCH_FLOAT(dt, "logsumexp", return red_run<T, red_lse<T>>(P, (const T *)x, (T *)out, idx));
        break;
    default:
        RT_CUDA_DISPATCH_FLOAT(dt, "norm", return red_run<T, red_norm<T>>(P, (const T *)x, (T *)out, idx));
        break;
    }
    return RT_OK;
}
