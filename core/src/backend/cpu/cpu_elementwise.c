/* Element-wise CPU kernels: strided copy with dtype conversion, fill, unary, broadcast binary, where.
 * Typed inner loops are macro templates instantiated per dtype; parallel loops are written once
 * over chunks/rows and call the typed loop through a function pointer (per chunk, not per element).
 * The typed loops are multi-versioned for AVX2 and AVX-512 (cpu_clones.h).
 *
 * Threads: a loop of one add, compare or copy per element streams memory at about 0.1-0.2 ns per
 * element on one core, so a batch's activations (128 x 1200 = 153,600 elements, ~25 us) gain at most
 * ~10 us from a second thread, and lose far more whenever that thread must first be woken or is
 * descheduled by another process: on the shared 2-core AMD EPYC, adding a bias to (128, 1200) took
 * 1.9 ns/element on 2 threads against 0.19 on 1 (tests/bench/bench_elementwise.lua, best of 20).
 * Such cheap loops go parallel only from CHEAP_PARALLEL_MIN elements (a 1200 x 1200 weight's
 * update, a whole dataset's normalisation); transcendental ones (exp, log, tanh, ...) keep the
 * general RT_CPU_PARALLEL_MIN. */
#include <tgmath.h> /* exp(float) -> expf etc., so f32 stays in single precision */

#include "backend/cpu/cpu_clones.h"
#include "backend/cpu/cpu_internal.h"

#define CHEAP_PARALLEL_MIN ((int64_t)1 << 18)

/* Element offsets (per stride array) of the start of task t, where tasks are (row, chunk) pairs:
 * rows enumerate all dims but the last, chunks split the last dim. Returns the chunk's length. */
static int64_t task_offsets(int64_t t, int nd, const int64_t *shape, int k, int64_t (*strides)[RT_MAX_DIMS],
                            int64_t nchunks, int64_t *off)
{
    int64_t row = t / nchunks, c = t % nchunks, len = shape[nd - 1];
    int64_t start = c * RT_CPU_CHUNK;
    for (int s = 0; s < k; s++)
        off[s] = start * strides[s][nd - 1];
    for (int d = nd - 2; d >= 0; d--) {
        int64_t q = row % shape[d];
        row /= shape[d];
        for (int s = 0; s < k; s++)
            off[s] += q * strides[s][d];
    }
    return len - start < RT_CPU_CHUNK ? len - start : RT_CPU_CHUNK;
}

/* ---- copy ---- */

typedef void (*copy_row_fn)(void *dst, int64_t ds, const void *src, int64_t ss, int64_t len);

#define DEF_COPY_ROW(DN, D, SN, S)                                                                                \
    RT_CPU_CLONES static void copy_##DN##_##SN(void *dv, int64_t ds, const void *sv, int64_t ss, int64_t len)                 \
    {                                                                                                             \
        D *dp = dv;                                                                                               \
        const S *sp = sv;                                                                                         \
        if (ds == 1 && ss == 1)                                                                                   \
            for (int64_t i = 0; i < len; i++)                                                                     \
                dp[i] = RT_CPU_CVT(D, sp[i]);                                                                     \
        else if (ds == 1)                                                                                         \
            for (int64_t i = 0; i < len; i++)                                                                     \
                dp[i] = RT_CPU_CVT(D, sp[i * ss]);                                                                \
        else                                                                                                      \
            for (int64_t i = 0; i < len; i++)                                                                     \
                dp[i * ds] = RT_CPU_CVT(D, sp[i * ss]);                                                           \
    }
#define DEF_COPY_FROM(DN, D)                                                                                      \
    DEF_COPY_ROW(DN, D, f32, float) DEF_COPY_ROW(DN, D, f64, double) DEF_COPY_ROW(DN, D, i64, int64_t)           \
    DEF_COPY_ROW(DN, D, u8, uint8_t)
RT_CPU_FOR_EACH_DTYPE(DEF_COPY_FROM)

static const copy_row_fn copy_rows[RT_DTYPE_COUNT][RT_DTYPE_COUNT] = {
    [RT_F32] = {copy_f32_f32, copy_f32_f64, copy_f32_i64, copy_f32_u8},
    [RT_F64] = {copy_f64_f32, copy_f64_f64, copy_f64_i64, copy_f64_u8},
    [RT_I64] = {copy_i64_f32, copy_i64_f64, copy_i64_i64, copy_i64_u8},
    [RT_U8] = {copy_u8_f32, copy_u8_f64, copy_u8_i64, copy_u8_u8},
};

enum rt_status rt_cpu_copy(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                           enum rt_dtype src_dt)
{
    enum rt_status status;
    int nd;
    int64_t shape[RT_MAX_DIMS], st[2][RT_MAX_DIMS];
    int64_t n = rt_backend_copy_geometry(dst, dst_dt, src, src_dt, &status, &nd, shape, st);
    if (n == 0)
        return status;
    if (nd == 1 && st[0][0] == 1 && st[1][0] == 1 && dst_dt == src_dt) {
        memmove(dst->data, src->data, (size_t)n * rt_dtype_size(dst_dt)); /* memmove: self-copies are harmless */
        return RT_OK;
    }
    copy_row_fn fn = copy_rows[dst_dt][src_dt];
    size_t dsz = rt_dtype_size(dst_dt), ssz = rt_dtype_size(src_dt);
    int64_t nchunks = (shape[nd - 1] + RT_CPU_CHUNK - 1) / RT_CPU_CHUNK, ntasks = n / shape[nd - 1] * nchunks;
#pragma omp parallel for if (n >= CHEAP_PARALLEL_MIN) schedule(static)
    for (int64_t t = 0; t < ntasks; t++) {
        int64_t off[2];
        int64_t len = task_offsets(t, nd, shape, 2, st, nchunks, off);
        fn((char *)dst->data + off[0] * (int64_t)dsz, st[0][nd - 1], (const char *)src->data + off[1] * (int64_t)ssz,
           st[1][nd - 1], len);
    }
    return RT_OK;
}

/* ---- fill ---- */

enum rt_status rt_cpu_fill(enum rt_dtype dt, int64_t n, double value, void *dst)
{
    /* Fill by bit pattern of the element size, so one loop serves every dtype. */
    union {
        float f;
        double d;
        int64_t i;
        uint8_t u;
        uint32_t b32;
        uint64_t b64;
    } v;
    switch (dt) {
    case RT_F32: v.f = (float)value; break;
    case RT_F64: v.d = value; break;
    case RT_I64: v.i = RT_CPU_TO_I64(value); break;
    case RT_U8: v.u = RT_CPU_TO_U8(value); break;
    default: return rt_backend_unknown_dtype("fill", dt);
    }
    if (n <= 0)
        return RT_OK;
    bool zero = dt == RT_U8 ? v.u == 0 : dt == RT_F32 ? v.b32 == 0 : v.b64 == 0;
    if (zero) { /* memset is the fastest way to clear memory (and warms it for the writer) */
        memset(dst, 0, (size_t)n * rt_dtype_size(dt));
    } else if (dt == RT_U8) {
        memset(dst, v.u, (size_t)n);
    } else if (dt == RT_F32) {
        uint32_t b = v.b32, *p = dst;
#pragma omp parallel for if (n >= CHEAP_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++)
            p[i] = b;
    } else {
        uint64_t b = v.b64, *p = dst;
#pragma omp parallel for if (n >= CHEAP_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++)
            p[i] = b;
    }
    return RT_OK;
}

/* ---- unary ---- */

typedef void (*unary_fn)(enum rt_unary_op op, int64_t n, const void *x, void *y, double a, double b);

#define UN_LOOP(OT, EXPR)                                                                                         \
    do {                                                                                                          \
        OT *yo = yv;                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                                         \
            elem v = x[i];                                                                                        \
            yo[i] = (OT)(EXPR);                                                                                   \
        }                                                                                                         \
    } while (0)

/* Float-only cases also compile for integer T (tgmath promotes to double) but are refused before
 * they can run. Integer results of double expressions go through RT_CPU_CVT (no UB on overflow). */
#define DEF_UNARY(SUF, T)                                                                                         \
    RT_CPU_CLONES static void unary_##SUF(enum rt_unary_op op, int64_t n, const void *xv, void *yv, double a, double b)       \
    {                                                                                                             \
        typedef T elem; /* the loop macros name the element type elem */                                         \
        const T *x = xv;                                                                                          \
        const bool flt = RT_CPU_IS_FLOAT(T);                                                                      \
        switch (op) {                                                                                             \
        case RT_UN_NEG: UN_LOOP(T, RT_CPU_WSUB((T)0, v)); break;                                                  \
        case RT_UN_EXP: UN_LOOP(T, exp(v)); break;                                                                \
        case RT_UN_LOG: UN_LOOP(T, log(v)); break;                                                                \
        case RT_UN_SQRT: UN_LOOP(T, sqrt(v)); break;                                                              \
        case RT_UN_ABS: UN_LOOP(T, flt ? (T)fabs(v) : (T)(RT_CPU_LT0(v) ? RT_CPU_WSUB((T)0, v) : v)); break;             \
        case RT_UN_RELU: UN_LOOP(T, v > 0 ? v : (T)0); break;                                                     \
        /* sigmoid never exponentiates a positive number, so large |x| cannot overflow */                         \
        case RT_UN_SIGMOID: UN_LOOP(T, !RT_CPU_LT0(v) ? (T)1 / ((T)1 + exp(-v)) : exp(v) / ((T)1 + exp(v))); break;      \
        case RT_UN_TANH: UN_LOOP(T, tanh(v)); break;                                                              \
        case RT_UN_RECIPROCAL: UN_LOOP(T, (T)1 / v); break;                                                       \
        case RT_UN_SIGN: UN_LOOP(T, v != v ? v : (T)((v > 0) - RT_CPU_LT0(v))); break; /* NaN stays NaN */             \
        case RT_UN_POW:                                                                                           \
            if (a == 2)                                                                                           \
                UN_LOOP(T, v * v);                                                                                \
            else if (a == 0.5)                                                                                    \
                UN_LOOP(T, sqrt(v));                                                                              \
            else if (a == 1)                                                                                      \
                UN_LOOP(T, v);                                                                                    \
            else                                                                                                  \
                UN_LOOP(T, pow(v, (T)a));                                                                         \
            break;                                                                                                \
        case RT_UN_CLAMP: /* NaN passes through; bounds compared in double so +-inf work on integers */          \
            if (flt)                                                                                              \
                UN_LOOP(T, v < (T)a ? (T)a : (v > (T)b ? (T)b : v));                                              \
            else                                                                                                  \
                UN_LOOP(T, (double)v < a ? RT_CPU_CVT(T, ceil(a)) : ((double)v > b ? RT_CPU_CVT(T, floor(b)) : v));\
            break;                                                                                                \
        case RT_UN_AFFINE:                                                                                        \
            if (flt)                                                                                              \
                UN_LOOP(T, v * (T)a + (T)b);                                                                      \
            else                                                                                                  \
                UN_LOOP(T, RT_CPU_CVT(T, (double)v * a + b));                                                     \
            break;                                                                                                \
        case RT_UN_LEAKY_RELU: UN_LOOP(T, v > 0 ? v : v * (T)a); break;                                          \
        case RT_UN_CMP_EQ: UN_LOOP(uint8_t, (double)v == a); break;                                               \
        case RT_UN_CMP_NE: UN_LOOP(uint8_t, (double)v != a); break;                                               \
        case RT_UN_CMP_LT: UN_LOOP(uint8_t, (double)v < a); break;                                                \
        case RT_UN_CMP_LE: UN_LOOP(uint8_t, (double)v <= a); break;                                               \
        case RT_UN_CMP_GT: UN_LOOP(uint8_t, (double)v > a); break;                                                \
        case RT_UN_CMP_GE: UN_LOOP(uint8_t, (double)v >= a); break;                                               \
        }                                                                                                         \
    }
RT_CPU_FOR_EACH_DTYPE(DEF_UNARY)

static const unary_fn unary_fns[RT_DTYPE_COUNT] = {unary_f32, unary_f64, unary_i64, unary_u8};

static bool unary_is_compare(enum rt_unary_op op) { return op >= RT_UN_CMP_EQ && op <= RT_UN_CMP_GE; }

/* one add, multiply or compare per element (exp, log, tanh, 1/x, general powers, and any op not
 * listed, cost more and keep the general threshold) */
static bool unary_is_cheap(enum rt_unary_op op, double a)
{
    switch (op) {
    case RT_UN_NEG: case RT_UN_ABS: case RT_UN_RELU: case RT_UN_SIGN: case RT_UN_CLAMP: case RT_UN_AFFINE:
    case RT_UN_LEAKY_RELU:
        return true;
    case RT_UN_POW:
        return a == 2 || a == 1;
    default:
        return unary_is_compare(op);
    }
}

enum rt_status rt_cpu_unary(enum rt_unary_op op, enum rt_dtype dt, int64_t n, const void *x, void *y, double a,
                            double b)
{
    enum rt_status st = rt_backend_unary_args(op, dt);
    if (st != RT_OK)
        return st;
    if (n <= 0)
        return RT_OK;
    unary_fn fn = unary_fns[dt];
    size_t xs = rt_dtype_size(dt), ys = unary_is_compare(op) ? 1 : xs;
    int64_t nchunks = (n + RT_CPU_CHUNK - 1) / RT_CPU_CHUNK;
    int64_t par_min = unary_is_cheap(op, a) ? CHEAP_PARALLEL_MIN : RT_CPU_PARALLEL_MIN;
#pragma omp parallel for if (n >= par_min) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t start = c * RT_CPU_CHUNK, len = n - start < RT_CPU_CHUNK ? n - start : RT_CPU_CHUNK;
        fn(op, len, (const char *)x + start * (int64_t)xs, (char *)y + start * (int64_t)ys, a, b);
    }
    return RT_OK;
}

/* ---- binary ---- */

typedef void (*binary_fn)(enum rt_binary_op op, int64_t n, const void *a, int64_t as, const void *b, int64_t bs,
                          void *out, double s);

/* One loop per operand layout so the common ones (both contiguous, b or a a scalar) vectorise. */
#define BIN_LOOP(OT, EXPR)                                                                                        \
    do {                                                                                                          \
        OT *o = outv;                                                                                             \
        if (as == 1 && bs == 1)                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                elem x = a[i], y = b[i];                                                                          \
                o[i] = (OT)(EXPR);                                                                                \
            }                                                                                                     \
        else if (as == 1 && bs == 0) {                                                                            \
            const elem y = b[0];                                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                elem x = a[i];                                                                                    \
                o[i] = (OT)(EXPR);                                                                                \
            }                                                                                                     \
        } else if (as == 0 && bs == 1) {                                                                          \
            const elem x = a[0];                                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                elem y = b[i];                                                                                    \
                o[i] = (OT)(EXPR);                                                                                \
            }                                                                                                     \
        } else                                                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                                     \
                elem x = a[i * as], y = b[i * bs];                                                                \
                o[i] = (OT)(EXPR);                                                                                \
            }                                                                                                     \
    } while (0)

/* Integer division: C truncation, with x/0 -> 0 and INT64_MIN/-1 -> INT64_MIN instead of a trap. */
static inline int64_t idiv_i64(int64_t x, int64_t y)
{
    return y == 0 ? 0 : (y == -1 ? RT_CPU_WSUB((int64_t)0, x) : x / y);
}
#define SAFE_DIV(x, y)                                                                                            \
    _Generic((x), int64_t: idiv_i64((int64_t)(x), (int64_t)(y)), uint8_t: ((y) ? (x) / (y) : 0), default: (x) / (y))

#define DEF_BINARY(SUF, T)                                                                                        \
    RT_CPU_CLONES static void binary_##SUF(enum rt_binary_op op, int64_t n, const void *av, int64_t as, const void *bv,        \
                             int64_t bs, void *outv, double s)                                                    \
    {                                                                                                             \
        typedef T elem;                                                                                           \
        const T *a = av, *b = bv;                                                                                 \
        switch (op) {                                                                                             \
        case RT_BIN_ADD: BIN_LOOP(T, RT_CPU_WADD(x, y)); break;                                                   \
        case RT_BIN_SUB: BIN_LOOP(T, RT_CPU_WSUB(x, y)); break;                                                   \
        case RT_BIN_MUL: BIN_LOOP(T, RT_CPU_WMUL(x, y)); break;                                                   \
        case RT_BIN_DIV: BIN_LOOP(T, SAFE_DIV(x, y)); break;                                                      \
        case RT_BIN_MAX: BIN_LOOP(T, (x != x || x > y) ? x : y); break; /* NaN propagates from either side */  \
        case RT_BIN_MIN: BIN_LOOP(T, (x != x || x < y) ? x : y); break;                                           \
        case RT_BIN_CMP_EQ: BIN_LOOP(uint8_t, x == y); break;                                                     \
        case RT_BIN_CMP_NE: BIN_LOOP(uint8_t, x != y); break;                                                     \
        case RT_BIN_CMP_LT: BIN_LOOP(uint8_t, x < y); break;                                                      \
        case RT_BIN_CMP_LE: BIN_LOOP(uint8_t, x <= y); break;                                                     \
        case RT_BIN_CMP_GT: BIN_LOOP(uint8_t, x > y); break;                                                      \
        case RT_BIN_CMP_GE: BIN_LOOP(uint8_t, x >= y); break;                                                     \
        case RT_BIN_RELU_BW: BIN_LOOP(T, y > 0 ? x : (T)0); break;                                                \
        case RT_BIN_SIGMOID_BW: BIN_LOOP(T, x * y * ((T)1 - y)); break;                                           \
        case RT_BIN_TANH_BW: BIN_LOOP(T, x * ((T)1 - y * y)); break;                                              \
        case RT_BIN_ABS_BW: BIN_LOOP(T, y > 0 ? x : (RT_CPU_LT0(y) ? RT_CPU_WSUB((T)0, x) : (T)0)); break;              \
        case RT_BIN_LEAKY_RELU_BW: BIN_LOOP(T, y > 0 ? x : x * (T)s); break; /* float only (checked) */           \
        }                                                                                                         \
    }
RT_CPU_FOR_EACH_DTYPE(DEF_BINARY)

static const binary_fn binary_fns[RT_DTYPE_COUNT] = {binary_f32, binary_f64, binary_i64, binary_u8};

enum rt_status rt_cpu_binary(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape, const void *a,
                             const int64_t *astride, const void *b, const int64_t *bstride, void *out, double s)
{
    enum rt_status status;
    int nd;
    int64_t cshape[RT_MAX_DIMS], st[3][RT_MAX_DIMS];
    int64_t n = rt_backend_binary_geometry(op, dt, ndim, shape, astride, bstride, &status, &nd, cshape, st);
    if (n == 0)
        return status;
    bool cmp = op >= RT_BIN_CMP_EQ && op <= RT_BIN_CMP_GE;
    size_t es = rt_dtype_size(dt), os = cmp ? 1 : es;
    binary_fn fn = binary_fns[dt];
    int64_t nchunks = (cshape[nd - 1] + RT_CPU_CHUNK - 1) / RT_CPU_CHUNK, ntasks = n / cshape[nd - 1] * nchunks;
#pragma omp parallel for if (n >= CHEAP_PARALLEL_MIN) schedule(static)
    for (int64_t t = 0; t < ntasks; t++) {
        int64_t off[3];
        int64_t len = task_offsets(t, nd, cshape, 3, st, nchunks, off);
        fn(op, len, (const char *)a + off[1] * (int64_t)es, st[1][nd - 1], (const char *)b + off[2] * (int64_t)es,
           st[2][nd - 1], (char *)out + off[0] * (int64_t)os, s);
    }
    return RT_OK;
}

/* ---- where ---- */

#define WHERE_LOOP(U)                                                                                             \
    do {                                                                                                          \
        const U *pa = a, *pb = b;                                                                                 \
        U *po = out;                                                                                              \
        _Pragma("omp parallel for if (n >= CHEAP_PARALLEL_MIN) schedule(static)")                                \
        for (int64_t i = 0; i < n; i++)                                                                           \
            po[i] = cond[i] ? pa[i] : pb[i];                                                                      \
    } while (0)

enum rt_status rt_cpu_where(enum rt_dtype dt, int64_t n, const uint8_t *cond, const void *a, const void *b,
                            void *out)
{
    /* Selection only moves bits, so dispatch on element size, not dtype. */
    switch (rt_dtype_size(dt)) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    case 8: WHERE_LOOP(uint64_t); break;
    default: return rt_backend_unknown_dtype("where", dt);
    }
    return RT_OK;
}

/* ---- axpy: y += alpha * x (float types; integer tensors go through the generic path) ---- */
/* one chunk (multi-versioned) per task */
#define RT_AXPY(NAME, T)                                                                                            \
    RT_CPU_CLONES static void axpy_chunk_##NAME(int64_t n, T alpha, const T *x, T *y)                            \
    {                                                                                                               \
        for (int64_t i = 0; i < n; i++)                                                                             \
            y[i] += alpha * x[i];                                                                                   \
    }                                                                                                               \
    static void axpy_##NAME(int64_t n, T alpha, const T *x, T *y)                                                \
    {                                                                                                               \
        int64_t nchunks = (n + RT_CPU_CHUNK - 1) / RT_CPU_CHUNK;                                                    \
        _Pragma("omp parallel for if (n >= CHEAP_PARALLEL_MIN) schedule(static)")                                \
        for (int64_t c = 0; c < nchunks; c++) {                                                                     \
            int64_t start = c * RT_CPU_CHUNK;                                                                       \
            axpy_chunk_##NAME(n - start < RT_CPU_CHUNK ? n - start : RT_CPU_CHUNK, alpha, x + start, y + start);   \
        }                                                                                                           \
    }
RT_AXPY(f32, float)
RT_AXPY(f64, double)

enum rt_status rt_cpu_axpy(enum rt_dtype dt, int64_t n, double alpha, const void *x, void *y)
{
    switch (dt) {
    case RT_F32: axpy_f32(n, (float)alpha, x, y); return RT_OK;
    case RT_F64: axpy_f64(n, alpha, x, y); return RT_OK;
    default: return rt_error(RT_ERR_DTYPE, "axpy: dtype %s not supported (needs a float tensor)", rt_dtype_name(dt));
    }
}

enum rt_status rt_cpu_accumulate(double *acc, const struct rt_accumulate_args *a)
{
    for (int i = 0; i < a->n; i++)
        acc[a->slot[i]] += a->w[i] * rt__float_at(a->dt[i] == RT_F32, a->v[i], 0);
    return RT_OK;
}
