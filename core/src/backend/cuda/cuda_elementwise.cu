/* Element-wise CUDA kernels: strided copy with dtype conversion, fill, unary, broadcast binary, where,
 * axpy; the CUDA twin of cpu/cpu_elementwise.c, with the same results element for element.
 *
 * Each op is a template over (op, element type) so the per-element work is a few instructions; the
 * operand layout picks the kernel. Strided views are first coalesced as on the CPU (size-1 dims
 * dropped, mutually contiguous neighbours merged), so most copies and broadcasts become one flat
 * loop (contiguous or scalar operands), a two-dim "rows" loop (bias (1, C) over (N, C), column
 * broadcasts) or, rarely, the general loop that takes each element's offsets from its flat index.
 * Index division by a dimension size uses a precomputed multiply-shift (exact for 32-bit indices)
 * instead of a 64-bit division, which would cost more than the memory traffic.
 *
 * Floating-point products that feed an addition use __fmul_rn/__dmul_rn: nvcc would otherwise fuse
 * them into FMAs, and the CPU build (x86-64-v2, ISO C) never does, so results would differ by a
 * rounding. The intrinsics cost nothing in these memory-bound loops. */
#include <string.h>

#include <type_traits>

#include "backend/cuda/cuda_kernels.h"

/* ---- shared helpers ---- */

/* Status of a runtime-API call queued on the stream (memcpy, memset), checked like a launch. */
static enum rt_status api_status(cudaError_t e, const char *op)
{
    return e == cudaSuccess ? rt_cuda_check(op) : rt_cuda_error(e, op);
}

template <typename T> static constexpr bool is_flt = std::is_floating_point<T>::value;

template <typename T> __device__ __forceinline__ bool is_nan(T v)
{
    if constexpr (is_flt<T>)
        return v != v;
    else
        return (void)v, false;
}

/* Single or double precision math by overload, as tgmath picks it on the CPU. */
__device__ __forceinline__ float m_exp(float v) { return expf(v); }
__device__ __forceinline__ double m_exp(double v) { return exp(v); }
__device__ __forceinline__ float m_log(float v) { return logf(v); }
__device__ __forceinline__ double m_log(double v) { return log(v); }
__device__ __forceinline__ float m_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double m_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float m_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double m_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float m_fabs(float v) { return fabsf(v); }
__device__ __forceinline__ double m_fabs(double v) { return fabs(v); }
__device__ __forceinline__ float m_pow(float v, float e) { return powf(v, e); }
__device__ __forceinline__ double m_pow(double v, double e) { return pow(v, e); }

/* ---- index arithmetic ---- */

/* n / d for n < 2^31 and 1 <= d <= INT32_MAX as (umulhi(n, mul) + n) >> shr (Granlund-Montgomery;
 * the sum cannot overflow since umulhi(n, mul) <= n < 2^31). */
static void fdiv_init(int64_t d, uint32_t *mul, uint32_t *shr)
{
    uint32_t s = 0;
    while (s < 31 && ((int64_t)1 << s) < d)
        s++;
    uint64_t one = 1, magic = ((one << 32) * ((one << s) - (uint64_t)d)) / (uint64_t)d + 1;
    *mul = (uint32_t)magic;
    *shr = s;
}

__device__ __forceinline__ uint32_t fdiv(uint32_t n, uint32_t mul, uint32_t shr)
{
    return (__umulhi(n, mul) + n) >> shr;
}

/* Coalesced shape and K stride sets for the general loops, innermost dim first (so the unrolled
 * loop indexes the kernel parameters with constants), passed by value. */
template <int K> struct ew_geo {
    int nd;
    int64_t size[RT_MAX_DIMS];
    uint32_t mul[RT_MAX_DIMS], shr[RT_MAX_DIMS]; /* fast division by size[d]; used for 32-bit indices */
    int64_t st[K][RT_MAX_DIMS];
};

/* From coalesce's output (dims outermost first); stride sets first .. first + K - 1 of st. */
template <int K>
static ew_geo<K> make_geo(int nd, const int64_t *shape, const int64_t (*st)[RT_MAX_DIMS], int first)
{
    ew_geo<K> g;
    memset(&g, 0, sizeof g);
    g.nd = nd;
    for (int d = 0; d < nd; d++) {
        int r = nd - 1 - d;
        g.size[r] = shape[d];
        for (int k = 0; k < K; k++)
            g.st[k][r] = st[first + k][d];
        if (shape[d] <= INT32_MAX)
            fdiv_init(shape[d], &g.mul[r], &g.shr[r]);
    }
    return g;
}

/* Element offsets (one per stride set) of flat index i. SMALL: i < 2^31, so every division is the
 * 32-bit multiply-shift. */
template <int K, bool SMALL>
__device__ __forceinline__ void geo_offsets(const ew_geo<K> &g, int64_t i, int64_t *off)
{
#pragma unroll
    for (int k = 0; k < K; k++)
        off[k] = 0;
#pragma unroll
    for (int d = 0; d < RT_MAX_DIMS; d++) {
        if (d == g.nd - 1) { /* outermost dim: what is left of i is its index */
#pragma unroll
            for (int k = 0; k < K; k++)
                off[k] += i * g.st[k][d];
            break;
        }
        int64_t q, r;
        if constexpr (SMALL) {
            uint32_t q32 = fdiv((uint32_t)i, g.mul[d], g.shr[d]);
            q = q32;
            r = (uint32_t)i - q32 * (uint32_t)g.size[d];
        } else {
            q = i / g.size[d];
            r = i - q * g.size[d];
        }
#pragma unroll
        for (int k = 0; k < K; k++)
            off[k] += r * g.st[k][d];
        i = q;
    }
}

/* ---- copy ---- */

/* dst element from src element: same type copies the bits (same-dtype copies run on unsigned
 * types of the element size), else the CPU's conversion. */
template <typename D, typename S> __device__ __forceinline__ D copy_cvt(S v)
{
    if constexpr (std::is_same<D, S>::value)
        return v;
    else
        return rt_cuda_cvt<D>(v);
}

/* One coalesced dim: contiguous on both sides (CONTIG) or any strides. */
template <typename D, typename S, bool CONTIG>
static __global__ void copy_flat_kernel(int64_t n, D *dst, int64_t ds, const S *src, int64_t ss)
{
    RT_CUDA_LOOP(i, n)
    {
        if constexpr (CONTIG)
            dst[i] = copy_cvt<D>(src[i]);
        else
            dst[i * ds] = copy_cvt<D>(src[i * ss]);
    }
}

template <typename D, typename S, bool SMALL>
static __global__ void copy_general_kernel(int64_t n, ew_geo<2> g, D *dst, const S *src)
{
    RT_CUDA_LOOP(i, n)
    {
        int64_t off[2];
        geo_offsets<2, SMALL>(g, i, off);
        dst[off[0]] = copy_cvt<D>(src[off[1]]);
    }
}

/* Each element is read and written by one thread, so a self-copy (dst == src, same strides) is safe. */
template <typename D, typename S>
static enum rt_status copy_launch(int64_t n, int nd, const int64_t *shape, const int64_t (*st)[RT_MAX_DIMS],
                                  void *dst, const void *src)
{
    unsigned blocks = rt_cuda_blocks(n);
    D *d = (D *)dst;
    const S *s = (const S *)src;
    if (nd == 1) {
        if (st[0][0] == 1 && st[1][0] == 1)
            return RT_CUDA_LAUNCH("cuda copy", (copy_flat_kernel<D, S, true>), blocks, RT_CUDA_THREADS, 0, n, d, 1,
                                  s, 1);
        return RT_CUDA_LAUNCH("cuda copy", (copy_flat_kernel<D, S, false>), blocks, RT_CUDA_THREADS, 0, n, d,
                              st[0][0], s, st[1][0]);
    }
    ew_geo<2> g = make_geo<2>(nd, shape, st, 0);
    if (n <= INT32_MAX)
        return RT_CUDA_LAUNCH("cuda copy", (copy_general_kernel<D, S, true>), blocks, RT_CUDA_THREADS, 0, n, g, d, s);
    return RT_CUDA_LAUNCH("cuda copy", (copy_general_kernel<D, S, false>), blocks, RT_CUDA_THREADS, 0, n, g, d, s);
}

template <typename D>
static enum rt_status copy_from(enum rt_dtype src_dt, int64_t n, int nd, const int64_t *shape,
                                const int64_t (*st)[RT_MAX_DIMS], void *dst, const void *src)
{
    RT_CUDA_DISPATCH_ALL(src_dt, "copy", return copy_launch<D, T>(n, nd, shape, st, dst, src));
    return RT_OK; /* not reached: every case returns */
}

/* Same dtype on both sides: only bits move, so one kernel per element size (a plain device copy
 * when both views are contiguous). */
static enum rt_status copy_bits(size_t es, int64_t n, int nd, const int64_t *shape, const int64_t (*st)[RT_MAX_DIMS],
                                void *dst, const void *src)
{
    if (nd == 1 && st[0][0] == 1 && st[1][0] == 1) {
        if (dst == src) /* self-copy: nothing to move (memcpy may not overlap) */
            return RT_OK;
        return api_status(cudaMemcpyAsync(dst, src, (size_t)n * es, cudaMemcpyDeviceToDevice, rt_cuda_stream()),
                          "cuda copy");
    }
    switch (es) {
    case 1: return copy_launch<uint8_t, uint8_t>(n, nd, shape, st, dst, src);
    case 2: return copy_launch<uint16_t, uint16_t>(n, nd, shape, st, dst, src);
    case 4: return copy_launch<uint32_t, uint32_t>(n, nd, shape, st, dst, src);
    default: return copy_launch<uint64_t, uint64_t>(n, nd, shape, st, dst, src);
    }
}

/* dst = src over views already coalesced (n elements, nd dims): a same-dtype copy moves bits; bf16 on
 * either side converts through rt_cuda_bf16, which rounds as the CPU's cast_bf16 does. */
static enum rt_status copy_coalesced(enum rt_dtype dst_dt, enum rt_dtype src_dt, int64_t n, int nd,
                                     const int64_t *shape, const int64_t (*st)[RT_MAX_DIMS], void *dst, const void *src)
{
    if (dst_dt == src_dt)
        return copy_bits(rt_dtype_size(dst_dt), n, nd, shape, st, dst, src);
    if (dst_dt == RT_BF16)
        RT_CUDA_DISPATCH_ALL(src_dt, "cast_bf16", return copy_launch<rt_cuda_bf16, T>(n, nd, shape, st, dst, src));
    if (src_dt == RT_BF16)
        RT_CUDA_DISPATCH_ALL(dst_dt, "cast_bf16", return copy_launch<T, rt_cuda_bf16>(n, nd, shape, st, dst, src));
    RT_CUDA_DISPATCH_ALL(dst_dt, "copy", return copy_from<T>(src_dt, n, nd, shape, st, dst, src));
    return RT_OK; /* not reached: every case returns */
}

enum rt_status rt_cuda_copy(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                            enum rt_dtype src_dt)
{
    enum rt_status status;
    int nd;
    int64_t shape[RT_MAX_DIMS], st[2][RT_MAX_DIMS];
    int64_t n = rt_backend_copy_geometry(dst, dst_dt, src, src_dt, &status, &nd, shape, st);
    return n == 0 ? status : copy_coalesced(dst_dt, src_dt, n, nd, shape, st, dst->data, src->data);
}

enum rt_status rt_cuda_cast_bf16(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                                 enum rt_dtype src_dt)
{
    enum rt_status status;
    int nd;
    int64_t shape[RT_MAX_DIMS], st[2][RT_MAX_DIMS];
    int64_t n = rt_backend_cast_bf16_geometry(dst, dst_dt, src, src_dt, &status, &nd, shape, st);
    return n == 0 ? status : copy_coalesced(dst_dt, src_dt, n, nd, shape, st, dst->data, src->data);
}

/* ---- fill ---- */

template <typename U> static __global__ void fill_kernel(int64_t n, U bits, U *p)
{
    RT_CUDA_LOOP(i, n)
    {
        p[i] = bits;
    }
}

enum rt_status rt_cuda_fill(enum rt_dtype dt, int64_t n, double value, void *dst)
{
    /* Fill by bit pattern of the element size, so one kernel serves every dtype. */
    uint64_t b64 = 0;
    uint32_t b32 = 0;
    uint8_t u = 0;
    switch (dt) {
    case RT_F32: {
        float f = (float)value;
        memcpy(&b32, &f, sizeof b32);
    } break;
    case RT_F64: memcpy(&b64, &value, sizeof b64); break;
    case RT_I64: {
        int64_t i = rt__f2i64(value);
        memcpy(&b64, &i, sizeof b64);
    } break;
    case RT_U8: u = (uint8_t)rt__f2i64(value); break;
    default: return rt_backend_unknown_dtype("fill", dt);
    }
    if (n <= 0)
        return RT_OK;
    bool zero = dt == RT_U8 ? u == 0 : dt == RT_F32 ? b32 == 0 : b64 == 0;
    if (zero || dt == RT_U8)
        return api_status(cudaMemsetAsync(dst, zero ? 0 : u, (size_t)n * rt_dtype_size(dt), rt_cuda_stream()),
                          "cuda fill");
    if (dt == RT_F32)
        return RT_CUDA_LAUNCH("cuda fill", fill_kernel<uint32_t>, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, b32,
                              (uint32_t *)dst);
    return RT_CUDA_LAUNCH("cuda fill", fill_kernel<uint64_t>, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, b64,
                          (uint64_t *)dst);
}

/* ---- unary ---- */

/* RT_UN_POW split by exponent as on the CPU: x^2 -> x*x, x^0.5 -> sqrt, x^1 -> x, else pow. */
enum { UN_POW2 = 100, UN_POW_HALF, UN_POW1 };

static constexpr bool un_float_only(int op)
{
    return op == RT_UN_EXP || op == RT_UN_LOG || op == RT_UN_SQRT || op == RT_UN_SIGMOID || op == RT_UN_TANH ||
           op == RT_UN_RECIPROCAL || op == RT_UN_POW || op == UN_POW2 || op == UN_POW_HALF || op == UN_POW1 ||
           op == RT_UN_LEAKY_RELU;
}
static constexpr bool un_is_compare(int op) { return op >= RT_UN_CMP_EQ && op <= RT_UN_CMP_GE; }

template <int OP, typename T> using un_out_t = typename std::conditional<un_is_compare(OP), uint8_t, T>::type;

template <int OP, typename T> __device__ __forceinline__ un_out_t<OP, T> un_apply(T v, double a, double b)
{
    if constexpr (OP == RT_UN_NEG)
        return rt_cuda_wsub((T)0, v);
    else if constexpr (OP == RT_UN_ABS) {
        if constexpr (is_flt<T>)
            return m_fabs(v);
        else
            return rt_cuda_lt0(v) ? rt_cuda_wsub((T)0, v) : v;
    } else if constexpr (OP == RT_UN_RELU)
        return v > 0 ? v : (T)0;
    else if constexpr (OP == RT_UN_SIGN)
        return is_nan(v) ? v : (T)((v > 0) - rt_cuda_lt0(v)); /* NaN stays NaN */
    else if constexpr (OP == RT_UN_CLAMP) {
        /* NaN passes through; integer bounds compared in double so +-inf work */
        if constexpr (is_flt<T>)
            return v < (T)a ? (T)a : (v > (T)b ? (T)b : v);
        else
            return (double)v < a ? rt_cuda_cvt<T>(ceil(a)) : ((double)v > b ? rt_cuda_cvt<T>(floor(b)) : v);
    } else if constexpr (OP == RT_UN_AFFINE) {
        if constexpr (is_flt<T>)
            return rt_cuda_nc_mul(v, (T)a) + (T)b;
        else
            return rt_cuda_cvt<T>(__dmul_rn((double)v, a) + b);
    } else if constexpr (OP == RT_UN_LEAKY_RELU)
        return v > 0 ? v : v * (T)a; /* as on the CPU */
    else if constexpr (OP == RT_UN_CMP_EQ)
        return (double)v == a;
    else if constexpr (OP == RT_UN_CMP_NE)
        return (double)v != a;
    else if constexpr (OP == RT_UN_CMP_LT)
        return (double)v < a;
    else if constexpr (OP == RT_UN_CMP_LE)
        return (double)v <= a;
    else if constexpr (OP == RT_UN_CMP_GT)
        return (double)v > a;
    else if constexpr (OP == RT_UN_CMP_GE)
        return (double)v >= a;
    else if constexpr (is_flt<T>) { /* float-only ops: never instantiated for integers */
        if constexpr (OP == RT_UN_EXP)
            return m_exp(v);
        else if constexpr (OP == RT_UN_LOG)
            return m_log(v);
        else if constexpr (OP == RT_UN_SQRT || OP == UN_POW_HALF)
            return m_sqrt(v);
        /* sigmoid never exponentiates a positive number, so large |x| cannot overflow */
        else if constexpr (OP == RT_UN_SIGMOID)
            return !(v < 0) ? (T)1 / ((T)1 + m_exp(-v)) : m_exp(v) / ((T)1 + m_exp(v));
        else if constexpr (OP == RT_UN_TANH)
            return m_tanh(v);
        else if constexpr (OP == RT_UN_RECIPROCAL)
            return (T)1 / v;
        else if constexpr (OP == UN_POW2)
            return v * v;
        else if constexpr (OP == UN_POW1)
            return v;
        else
            return m_pow(v, (T)a);
    } else
        return v; /* not reached: float-only ops are refused for integers */
}

template <int OP, typename T>
static __global__ void unary_kernel(int64_t n, const T *x, un_out_t<OP, T> *y, double a, double b)
{
    RT_CUDA_LOOP(i, n)
    {
        y[i] = un_apply<OP, T>(x[i], a, b);
    }
}

template <int OP, typename T>
static enum rt_status unary_launch(int64_t n, const void *x, void *y, double a, double b)
{
    if constexpr (un_float_only(OP) && !is_flt<T>)
        return rt_error(RT_ERR_INTERNAL, "unary: op %d reached an integer kernel", OP); /* refused earlier */
    else
        return RT_CUDA_LAUNCH("cuda unary", (unary_kernel<OP, T>), rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n,
                              (const T *)x, (un_out_t<OP, T> *)y, a, b);
}

template <typename T>
static enum rt_status unary_typed(enum rt_unary_op op, int64_t n, const void *x, void *y, double a, double b)
{
#define UN_CASE(OP)                                                                                               \
    case OP: return unary_launch<OP, T>(n, x, y, a, b)
    switch (op) {
        UN_CASE(RT_UN_NEG);
        UN_CASE(RT_UN_EXP);
        UN_CASE(RT_UN_LOG);
        UN_CASE(RT_UN_SQRT);
        UN_CASE(RT_UN_ABS);
        UN_CASE(RT_UN_RELU);
        UN_CASE(RT_UN_SIGMOID);
        UN_CASE(RT_UN_TANH);
        UN_CASE(RT_UN_RECIPROCAL);
        UN_CASE(RT_UN_SIGN);
    case RT_UN_POW:
        if (a == 2)
            return unary_launch<UN_POW2, T>(n, x, y, a, b);
        if (a == 0.5)
            return unary_launch<UN_POW_HALF, T>(n, x, y, a, b);
        if (a == 1)
            return unary_launch<UN_POW1, T>(n, x, y, a, b);
        return unary_launch<RT_UN_POW, T>(n, x, y, a, b);
        UN_CASE(RT_UN_CLAMP);
        UN_CASE(RT_UN_AFFINE);
        UN_CASE(RT_UN_LEAKY_RELU);
        UN_CASE(RT_UN_CMP_EQ);
        UN_CASE(RT_UN_CMP_NE);
        UN_CASE(RT_UN_CMP_LT);
        UN_CASE(RT_UN_CMP_LE);
        UN_CASE(RT_UN_CMP_GT);
        UN_CASE(RT_UN_CMP_GE);
    }
#undef UN_CASE
    return rt_error(RT_ERR_INTERNAL, "unary: unknown op %d", (int)op);
}

enum rt_status rt_cuda_unary(enum rt_unary_op op, enum rt_dtype dt, int64_t n, const void *x, void *y, double a,
                             double b)
{
    enum rt_status st = rt_backend_unary_args(op, dt);
    if (st != RT_OK)
        return st;
    if (n <= 0)
        return RT_OK;
    RT_CUDA_DISPATCH_ALL(dt, rt_backend_unary_name(op), return unary_typed<T>(op, n, x, y, a, b));
    return RT_OK; /* not reached */
}

/* ---- binary ---- */

static constexpr bool bin_is_compare(int op) { return op >= RT_BIN_CMP_EQ && op <= RT_BIN_CMP_GE; }

template <int OP, typename T> using bin_out_t = typename std::conditional<bin_is_compare(OP), uint8_t, T>::type;

/* s: the op's parameter (RT_BIN_LEAKY_RELU_BW's slope), unused by the others */
template <int OP, typename T> __device__ __forceinline__ bin_out_t<OP, T> bin_apply(T x, T y, double s)
{
    if constexpr (OP == RT_BIN_ADD)
        return rt_cuda_wadd(x, y);
    else if constexpr (OP == RT_BIN_SUB)
        return rt_cuda_wsub(x, y);
    else if constexpr (OP == RT_BIN_MUL)
        return rt_cuda_wmul(x, y);
    else if constexpr (OP == RT_BIN_DIV) {
        /* integers: C truncation, x/0 -> 0 and INT64_MIN/-1 -> INT64_MIN instead of a trap */
        if constexpr (std::is_same<T, int64_t>::value)
            return y == 0 ? 0 : (y == -1 ? rt_cuda_wsub((int64_t)0, x) : x / y);
        else if constexpr (std::is_same<T, uint8_t>::value)
            return y ? (uint8_t)(x / y) : (uint8_t)0;
        else
            return x / y;
    } else if constexpr (OP == RT_BIN_MAX)
        return (is_nan(x) || x > y) ? x : y; /* NaN propagates from either side */
    else if constexpr (OP == RT_BIN_MIN)
        return (is_nan(x) || x < y) ? x : y;
    else if constexpr (OP == RT_BIN_CMP_EQ)
        return x == y;
    else if constexpr (OP == RT_BIN_CMP_NE)
        return x != y;
    else if constexpr (OP == RT_BIN_CMP_LT)
        return x < y;
    else if constexpr (OP == RT_BIN_CMP_LE)
        return x <= y;
    else if constexpr (OP == RT_BIN_CMP_GT)
        return x > y;
    else if constexpr (OP == RT_BIN_CMP_GE)
        return x >= y;
    else if constexpr (OP == RT_BIN_RELU_BW)
        return y > 0 ? x : (T)0;
    else if constexpr (OP == RT_BIN_SIGMOID_BW) /* (x * y) * (1 - y), as on the CPU */
        return rt_cuda_wmul(rt_cuda_wmul(x, y), rt_cuda_wsub((T)1, y));
    else if constexpr (OP == RT_BIN_TANH_BW)
        return rt_cuda_wmul(x, rt_cuda_wsub((T)1, rt_cuda_nc_mul(y, y)));
    else if constexpr (OP == RT_BIN_ABS_BW)
        return y > 0 ? x : (rt_cuda_lt0(y) ? rt_cuda_wsub((T)0, x) : (T)0);
    else /* RT_BIN_LEAKY_RELU_BW, float only (refused earlier for integers) */
        return y > 0 ? x : rt_cuda_nc_mul(x, (T)s);
}

/* One coalesced dim; SA / SB: 1 contiguous operand, 0 a scalar (stride 0). */
template <int OP, typename T, int SA, int SB>
static __global__ void binary_flat_kernel(int64_t n, const T *a, const T *b, bin_out_t<OP, T> *out, double s)
{
    T a0 = SA ? (T)0 : a[0], b0 = SB ? (T)0 : b[0];
    RT_CUDA_LOOP(i, n)
    {
        out[i] = bin_apply<OP, T>(SA ? a[i] : a0, SB ? b[i] : b0, s);
    }
}

/* Two coalesced dims (rows x cols), 32-bit flat index: row broadcasts such as a bias (1, C) over
 * (N, C), column broadcasts (N, 1) over (N, C), and any other pair of strides. */
template <int OP, typename T>
static __global__ void binary_rows_kernel(int64_t n, uint32_t cols, uint32_t mul, uint32_t shr, const T *a,
                                          int64_t ar, int64_t ac, const T *b, int64_t br, int64_t bc,
                                          bin_out_t<OP, T> *out, double s)
{
    RT_CUDA_LOOP(i, n)
    {
        uint32_t r = fdiv((uint32_t)i, mul, shr), c = (uint32_t)i - r * cols;
        out[i] = bin_apply<OP, T>(a[r * ar + c * ac], b[r * br + c * bc], s);
    }
}

/* Any layout: a's and b's offsets from the flat index (out is contiguous, so its offset is i). */
template <int OP, typename T, bool SMALL>
static __global__ void binary_general_kernel(int64_t n, ew_geo<2> g, const T *a, const T *b, bin_out_t<OP, T> *out,
                                             double s)
{
    RT_CUDA_LOOP(i, n)
    {
        int64_t off[2];
        geo_offsets<2, SMALL>(g, i, off);
        out[i] = bin_apply<OP, T>(a[off[0]], b[off[1]], s);
    }
}

/* shape / st: the coalesced dims, st[0] out's strides, st[1] a's, st[2] b's. */
template <int OP, typename T>
static enum rt_status binary_launch(int64_t n, int nd, const int64_t *shape, const int64_t (*st)[RT_MAX_DIMS],
                                    const void *av, const void *bv, void *outv, double s)
{
    typedef bin_out_t<OP, T> OT;
    const T *a = (const T *)av, *b = (const T *)bv;
    OT *out = (OT *)outv;
    unsigned blocks = rt_cuda_blocks(n);
    if (nd == 1) {
        int64_t as = st[1][0], bs = st[2][0];
        if (as == 1 && bs == 1)
            return RT_CUDA_LAUNCH("cuda binary", (binary_flat_kernel<OP, T, 1, 1>), blocks, RT_CUDA_THREADS, 0, n,
                                  a, b, out, s);
        if (as == 1 && bs == 0)
            return RT_CUDA_LAUNCH("cuda binary", (binary_flat_kernel<OP, T, 1, 0>), blocks, RT_CUDA_THREADS, 0, n,
                                  a, b, out, s);
        if (as == 0 && bs == 1)
            return RT_CUDA_LAUNCH("cuda binary", (binary_flat_kernel<OP, T, 0, 1>), blocks, RT_CUDA_THREADS, 0, n,
                                  a, b, out, s);
    }
    if (nd == 2 && n <= INT32_MAX) {
        uint32_t mul, shr;
        fdiv_init(shape[1], &mul, &shr);
        return RT_CUDA_LAUNCH("cuda binary", (binary_rows_kernel<OP, T>), blocks, RT_CUDA_THREADS, 0, n,
                              (uint32_t)shape[1], mul, shr, a, st[1][0], st[1][1], b, st[2][0], st[2][1], out, s);
    }
    ew_geo<2> g = make_geo<2>(nd, shape, st, 1);
    if (n <= INT32_MAX)
        return RT_CUDA_LAUNCH("cuda binary", (binary_general_kernel<OP, T, true>), blocks, RT_CUDA_THREADS, 0, n, g,
                              a, b, out, s);
    return RT_CUDA_LAUNCH("cuda binary", (binary_general_kernel<OP, T, false>), blocks, RT_CUDA_THREADS, 0, n, g, a,
                          b, out, s);
}

template <typename T>
static enum rt_status binary_typed(enum rt_binary_op op, int64_t n, int nd, const int64_t *shape,
                                   const int64_t (*st)[RT_MAX_DIMS], const void *a, const void *b, void *out,
                                   double s)
{
#define BIN_CASE(OP) \
    case OP: return binary_launch<OP, T>(n, nd, shape, st, a, b, out, s);
    switch (op) {
    BIN_CASE(RT_BIN_ADD)
    BIN_CASE(RT_BIN_SUB)
    BIN_CASE(RT_BIN_MUL)
    BIN_CASE(RT_BIN_DIV)
    BIN_CASE(RT_BIN_MAX)
    BIN_CASE(RT_BIN_MIN)
    BIN_CASE(RT_BIN_CMP_EQ)
    BIN_CASE(RT_BIN_CMP_NE)
    BIN_CASE(RT_BIN_CMP_LT)
    BIN_CASE(RT_BIN_CMP_LE)
    BIN_CASE(RT_BIN_CMP_GT)
    BIN_CASE(RT_BIN_CMP_GE)
    BIN_CASE(RT_BIN_RELU_BW)
    BIN_CASE(RT_BIN_SIGMOID_BW)
    BIN_CASE(RT_BIN_TANH_BW)
    BIN_CASE(RT_BIN_ABS_BW)
    BIN_CASE(RT_BIN_LEAKY_RELU_BW)
    }
#undef BIN_CASE
    return rt_error(RT_ERR_INTERNAL, "binary: unknown op %d", (int)op);
}

enum rt_status rt_cuda_binary(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape, const void *a,
                              const int64_t *astride, const void *b, const int64_t *bstride, void *out, double s)
{
    enum rt_status status;
    int nd;
    int64_t cshape[RT_MAX_DIMS], st[3][RT_MAX_DIMS];
    int64_t n = rt_backend_binary_geometry(op, dt, ndim, shape, astride, bstride, &status, &nd, cshape, st);
    if (n == 0)
        return status;
    RT_CUDA_DISPATCH_ALL(dt, "binary", return binary_typed<T>(op, n, nd, cshape, st, a, b, out, s));
    return RT_OK; /* not reached */
}

/* ---- where ---- */

/* Selection only moves bits, so one kernel per element size. */
template <typename U>
static __global__ void where_kernel(int64_t n, const uint8_t *cond, const U *a, const U *b, U *out)
{
    RT_CUDA_LOOP(i, n)
    {
        out[i] = cond[i] ? a[i] : b[i];
    }
}

template <typename U>
static enum rt_status where_launch(int64_t n, const uint8_t *cond, const void *a, const void *b, void *out)
{
    if (n <= 0)
        return RT_OK;
    return RT_CUDA_LAUNCH("cuda where", where_kernel<U>, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, cond,
                          (const U *)a, (const U *)b, (U *)out);
}

enum rt_status rt_cuda_where(enum rt_dtype dt, int64_t n, const uint8_t *cond, const void *a, const void *b,
                             void *out)
{
    switch (dt) {
    case RT_U8: return where_launch<uint8_t>(n, cond, a, b, out);
    case RT_F32: return where_launch<uint32_t>(n, cond, a, b, out);
    case RT_F64:
    case RT_I64: return where_launch<uint64_t>(n, cond, a, b, out);
    default: return rt_backend_unknown_dtype("where", dt);
    }
}

/* ---- axpy: y += alpha * x (float types; integer tensors go through the generic path) ---- */

template <typename T> static __global__ void axpy_kernel(int64_t n, T alpha, const T *x, T *y)
{
    RT_CUDA_LOOP(i, n)
    {
        y[i] += rt_cuda_nc_mul(alpha, x[i]);
    }
}

enum rt_status rt_cuda_axpy(enum rt_dtype dt, int64_t n, double alpha, const void *x, void *y)
{
    RT_CUDA_DISPATCH_FLOAT(dt, "axpy", {
        if (n <= 0)
            return RT_OK;
        return RT_CUDA_LAUNCH("cuda axpy", axpy_kernel<T>, rt_cuda_blocks(n), RT_CUDA_THREADS, 0, n, (T)alpha,
                              (const T *)x, (T *)y);
    });
    return RT_OK; /* not reached */
}

/* ---- accumulate: running sums, one thread per value (the slots are distinct) ---- */

static __global__ void accumulate_kernel(double *acc, const struct rt_accumulate_args a)
{
    int i = (int)threadIdx.x;
    if (i < a.n)
        acc[a.slot[i]] += a.w[i] * rt__float_at(a.dt[i] == RT_F32, a.v[i], 0);
}

enum rt_status rt_cuda_accumulate(double *acc, const struct rt_accumulate_args *a)
{
    if (a->n <= 0)
        return RT_OK;
    return RT_CUDA_LAUNCH("cuda accumulate", accumulate_kernel, 1, 32, 0, acc, *a);
}
