/* Argument checks and geometry that every backend applies before its kernels, written once so the
 * CPU and CUDA backends refuse the same inputs with the same messages. */
#include <limits.h>

#include "backend/backend.h"

enum rt_status rt_backend_bad_index(const char *op, const char *what, int64_t v, int64_t pos, int64_t base,
                                    int64_t limit, const char *late)
{
    return rt_error(RT_ERR_ARG, "%s: %s %lld at position %lld out of range [%lld, %lld]%s%s", op, what, (long long)v,
                    (long long)(pos + base), (long long)base, (long long)(base + limit - 1),
                    base == 1 ? " (1-based)" : "", late ? late : "");
}

enum rt_status rt_backend_non_finite(const char *op, const char *what, int64_t row, const char *late)
{
    return rt_error(RT_ERR_ARG, "%s: %s hold a non-finite value (NaN or infinity) in row %lld%s", op, what,
                    (long long)row + 1, late ? late : "");
}

enum rt_status rt_backend_bf16_refused(const char *what)
{
    return rt_error(RT_ERR_DTYPE, "%s: bf16 tensors are not supported; convert with :float()", what);
}

enum rt_status rt_backend_float_only(const char *what, enum rt_dtype dt)
{
    if (dt == RT_F32 || dt == RT_F64)
        return RT_OK;
    if (dt == RT_BF16)
        return rt_backend_bf16_refused(what);
    if ((unsigned)dt < RT_DTYPE_COUNT)
        return rt_error(RT_ERR_DTYPE, "%s: dtype %s not supported (needs a float tensor)", what, rt_dtype_name(dt));
    return rt_error(RT_ERR_DTYPE, "%s: unknown dtype %d", what, (int)dt);
}

enum rt_status rt_backend_unknown_dtype(const char *what, enum rt_dtype dt)
{
    return rt_error(RT_ERR_DTYPE, "%s: unknown dtype %d", what, (int)dt);
}

static int64_t numel_of(int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= shape[d];
    return n;
}

int rt_backend_coalesce(int nd, const int64_t *shape, int k, const int64_t *const *strides, int64_t *oshape,
                        int64_t (*ostrides)[RT_MAX_DIMS])
{
    int o = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1)
            continue;
        bool merge = o > 0;
        for (int s = 0; s < k && merge; s++)
            merge = ostrides[s][o - 1] == strides[s][d] * shape[d];
        if (merge) {
            oshape[o - 1] *= shape[d];
            for (int s = 0; s < k; s++)
                ostrides[s][o - 1] = strides[s][d];
        } else {
            oshape[o] = shape[d];
            for (int s = 0; s < k; s++)
                ostrides[s][o] = strides[s][d];
            o++;
        }
    }
    if (o == 0) { /* all dims size 1: one element */
        oshape[0] = 1;
        for (int s = 0; s < k; s++)
            ostrides[s][0] = 1;
        o = 1;
    }
    return o;
}

/* What a copy and a bf16 cast share once their dtypes are checked: equal ranks, then the coalesced dims. */
static int64_t views_geometry(const char *op, const struct rt_strided *dst, const struct rt_strided *src,
                              enum rt_status *st, int *nd, int64_t *shape, int64_t (*strides)[RT_MAX_DIMS])
{
    if (dst->ndim != src->ndim) {
        *st = rt_error(RT_ERR_INTERNAL, "%s: views have %d and %d dims", op, dst->ndim, src->ndim);
        return 0;
    }
    int64_t n = numel_of(dst->ndim, dst->shape);
    if (n > 0) {
        const int64_t *in[2] = {dst->stride, src->stride};
        *nd = rt_backend_coalesce(dst->ndim, dst->shape, 2, in, shape, strides);
    }
    return n > 0 ? n : 0;
}

int64_t rt_backend_copy_geometry(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                                 enum rt_dtype src_dt, enum rt_status *st, int *nd, int64_t *shape,
                                 int64_t (*strides)[RT_MAX_DIMS])
{
    *st = RT_OK;
    if ((unsigned)dst_dt >= RT_DTYPE_COUNT || (unsigned)src_dt >= RT_DTYPE_COUNT) {
        *st = rt_backend_unknown_dtype("copy", (unsigned)dst_dt >= RT_DTYPE_COUNT ? dst_dt : src_dt);
        return 0;
    }
    if (dst_dt == RT_BF16 || src_dt == RT_BF16) { /* casts to and from bf16 are cast_bf16's */
        *st = rt_backend_bf16_refused("copy");
        return 0;
    }
    return views_geometry("copy", dst, src, st, nd, shape, strides);
}

int64_t rt_backend_cast_bf16_geometry(const struct rt_strided *dst, enum rt_dtype dst_dt,
                                      const struct rt_strided *src, enum rt_dtype src_dt, enum rt_status *st, int *nd,
                                      int64_t *shape, int64_t (*strides)[RT_MAX_DIMS])
{
    *st = RT_OK;
    if ((unsigned)dst_dt >= RT_DTYPE_COUNT || (unsigned)src_dt >= RT_DTYPE_COUNT) {
        *st = rt_backend_unknown_dtype("cast_bf16", (unsigned)dst_dt >= RT_DTYPE_COUNT ? dst_dt : src_dt);
        return 0;
    }
    if (dst_dt != RT_BF16 && src_dt != RT_BF16) {
        *st = rt_error(RT_ERR_INTERNAL, "cast_bf16: neither side is bf16 (%s <- %s)", rt_dtype_name(dst_dt),
                       rt_dtype_name(src_dt));
        return 0;
    }
    return views_geometry("cast_bf16", dst, src, st, nd, shape, strides);
}

int64_t rt_backend_binary_geometry(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape,
                                   const int64_t *astride, const int64_t *bstride, enum rt_status *st, int *nd,
                                   int64_t *cshape, int64_t (*strides)[RT_MAX_DIMS])
{
    *st = RT_OK;
    if ((unsigned)dt >= RT_DTYPE_COUNT) {
        *st = rt_backend_unknown_dtype("binary", dt);
        return 0;
    }
    if (dt == RT_BF16) {
        *st = rt_backend_bf16_refused("binary");
        return 0;
    }
    if ((unsigned)op > RT_BIN_LEAKY_RELU_BW) {
        *st = rt_error(RT_ERR_INTERNAL, "binary: unknown op %d", (int)op);
        return 0;
    }
    if (op == RT_BIN_LEAKY_RELU_BW && (*st = rt_backend_float_only("leaky_relu backward", dt)) != RT_OK)
        return 0;
    int64_t n = numel_of(ndim, shape);
    if (n <= 0)
        return 0;
    /* out is contiguous: give it its strides and coalesce all three views together */
    int64_t ostride[RT_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--)
        ostride[d] = d == ndim - 1 ? 1 : ostride[d + 1] * shape[d + 1];
    const int64_t *in[3] = {ostride, astride, bstride};
    *nd = rt_backend_coalesce(ndim, shape, 3, in, cshape, strides);
    return n;
}

const char *rt_backend_unary_name(enum rt_unary_op op)
{
    static const char *names[] = {"neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "reciprocal",
                                  "sign", "pow", "clamp", "affine", "leaky_relu", "eq", "ne", "lt", "le", "gt", "ge"};
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "unary";
}

enum rt_status rt_backend_unary_args(enum rt_unary_op op, enum rt_dtype dt)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype(rt_backend_unary_name(op), dt);
    if (dt == RT_BF16)
        return rt_backend_bf16_refused(rt_backend_unary_name(op));
    if ((unsigned)op > RT_UN_CMP_GE)
        return rt_error(RT_ERR_INTERNAL, "unary: unknown op %d", (int)op);
    switch (op) {
    case RT_UN_EXP: case RT_UN_LOG: case RT_UN_SQRT: case RT_UN_SIGMOID: case RT_UN_TANH:
    case RT_UN_RECIPROCAL: case RT_UN_POW: case RT_UN_LEAKY_RELU:
        return rt_backend_float_only(rt_backend_unary_name(op), dt);
    default:
        return RT_OK;
    }
}

const char *rt_backend_reduce_name(enum rt_reduce_op op)
{
    static const char *names[] = {"sum", "mean", "max", "min", "logsumexp", "norm"};
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "reduce";
}

enum rt_status rt_backend_reduce_args(enum rt_reduce_op op, enum rt_dtype dt, int64_t n)
{
    if ((unsigned)op > RT_RED_NORM)
        return rt_error(RT_ERR_INTERNAL, "reduce: unknown op %d", (int)op);
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype("reduce", dt);
    if (dt == RT_BF16)
        return rt_backend_bf16_refused(rt_backend_reduce_name(op));
    bool float_only = op == RT_RED_MEAN || op == RT_RED_LOGSUMEXP || op == RT_RED_NORM;
    if (float_only)
        return rt_backend_float_only(rt_backend_reduce_name(op), dt);
    if (n == 0 && (op == RT_RED_MAX || op == RT_RED_MIN))
        return rt_error(RT_ERR_SHAPE, "reduce: %s of an empty dimension", rt_backend_reduce_name(op));
    return RT_OK;
}

/* A row-major matrix with `rows` rows of `cols` elements: any leading dimension serves a single
 * row, otherwise it must cover a whole row (and fit BLAS's int). */
static bool ld_ok(int64_t ld, int64_t rows, int64_t cols)
{
    return ld <= INT_MAX && (rows <= 1 || ld >= cols) && ld >= 1;
}

/* BLAS insists on ld >= cols even for one row, where ld is never used: widen it there. */
static int64_t ld_fix(int64_t ld, int64_t rows, int64_t cols) { return rows <= 1 && ld < cols ? cols : ld; }

enum rt_status rt_backend_gemm_args(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                                    int64_t *lda, int64_t *ldb, int64_t *ldc, bool *empty)
{
    *empty = false;
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_backend_unknown_dtype("matmul", dt);
    if (dt == RT_BF16) /* bf16 products are gemm_bf16's */
        return rt_backend_bf16_refused("matmul");
    if (m < 0 || n < 0 || k < 0 || batch < 0)
        return rt_error(RT_ERR_INTERNAL, "gemm: negative size (m=%lld n=%lld k=%lld batch=%lld)", (long long)m,
                        (long long)n, (long long)k, (long long)batch);
    if (m == 0 || n == 0 || batch == 0) {
        *empty = true;
        return RT_OK;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return rt_error(RT_ERR_SHAPE, "matmul: dimensions too large for BLAS (m=%lld n=%lld k=%lld)", (long long)m,
                        (long long)n, (long long)k);
    if (!ld_ok(*ldc, m, n))
        return rt_error(RT_ERR_INTERNAL, "gemm: ldc=%lld too small for %lld columns", (long long)*ldc, (long long)n);
    *ldc = ld_fix(*ldc, m, n);
    if (k == 0) /* nothing is read from A or B */
        return RT_OK;
    /* A is stored (m x k), or (k x m) when transposed; likewise B (k x n) or (n x k). */
    if (!ld_ok(*lda, ta ? k : m, ta ? m : k) || !ld_ok(*ldb, tb ? n : k, tb ? k : n))
        return rt_error(RT_ERR_INTERNAL, "gemm: leading dimension too small (lda=%lld ldb=%lld, m=%lld n=%lld k=%lld)",
                        (long long)*lda, (long long)*ldb, (long long)m, (long long)n, (long long)k);
    *lda = ld_fix(*lda, ta ? k : m, ta ? m : k);
    *ldb = ld_fix(*ldb, tb ? n : k, tb ? k : n);
    return RT_OK;
}

enum rt_status rt_backend_gemm_bf16_args(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                                         int64_t *lda, int64_t *ldb, int64_t *ldc, bool *empty)
{
    return rt_backend_gemm_args(RT_F32, ta, tb, m, n, k, batch, lda, ldb, ldc, empty);
}
