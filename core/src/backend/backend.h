/* Internal backend vtable: one per device. Ops (core/src/ops_*.c) validate arguments, work out
 * shapes, make operands contiguous and record autograd nodes; backends only run kernels on
 * contiguous buffers of one dtype. Adding a device means filling in one of these tables. */
#ifndef RETORT_BACKEND_H
#define RETORT_BACKEND_H

#include "retort/tensor.h"

enum rt_unary_op {
    RT_UN_NEG, RT_UN_EXP, RT_UN_LOG, RT_UN_SQRT, RT_UN_ABS, RT_UN_RELU, RT_UN_SIGMOID,
    RT_UN_TANH, RT_UN_RECIPROCAL, RT_UN_SIGN,
    RT_UN_POW,    /* x^a */
    RT_UN_CLAMP,  /* min(max(x, a), b) */
    RT_UN_AFFINE, /* x*a + b */
    RT_UN_CMP_EQ, RT_UN_CMP_NE, RT_UN_CMP_LT, RT_UN_CMP_LE, RT_UN_CMP_GT, RT_UN_CMP_GE /* x ? a -> u8 */
};

enum rt_binary_op {
    RT_BIN_ADD, RT_BIN_SUB, RT_BIN_MUL, RT_BIN_DIV, RT_BIN_MAX, RT_BIN_MIN,
    RT_BIN_CMP_EQ, RT_BIN_CMP_NE, RT_BIN_CMP_LT, RT_BIN_CMP_LE, RT_BIN_CMP_GT, RT_BIN_CMP_GE, /* -> u8 */
    /* gradient helpers: a is the incoming gradient, b a saved value */
    RT_BIN_RELU_BW,    /* a * (b > 0), b = relu input */
    RT_BIN_SIGMOID_BW, /* a * b * (1 - b), b = sigmoid output */
    RT_BIN_TANH_BW,    /* a * (1 - b*b), b = tanh output */
    RT_BIN_ABS_BW      /* a * sign(b), b = input */
};

enum rt_reduce_op { RT_RED_SUM, RT_RED_MEAN, RT_RED_MAX, RT_RED_MIN, RT_RED_LOGSUMEXP, RT_RED_NORM };

/* A strided view described for a kernel: base pointer already offset, element strides. */
struct rt_strided {
    void *data;
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    int64_t stride[RT_MAX_DIMS];
};

struct rt_backend {
    const char *name;
    enum rt_device device;
    enum rt_status (*alloc)(size_t nbytes, void **out);
    void (*free)(void *p, size_t nbytes); /* nbytes as given to alloc: lets allocators cache by size */
    /* host <-> device byte copies (CPU: memcpy) */
    enum rt_status (*upload)(void *dst, const void *host_src, size_t nbytes);
    enum rt_status (*download)(void *host_dst, const void *src, size_t nbytes);

    /* dst[i] = (dst dtype) src[i] over two strided views of equal shape: contiguous(), copy_, casts */
    enum rt_status (*copy)(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                           enum rt_dtype src_dt);
    enum rt_status (*fill)(enum rt_dtype dt, int64_t n, double value, void *dst);
    /* y = op(x, a, b); comparisons write u8 */
    enum rt_status (*unary)(enum rt_unary_op op, enum rt_dtype dt, int64_t n, const void *x, void *y,
                            double a, double b);
    /* out (contiguous, shape) = op(a, b); a and b contiguous with broadcast strides (0 on expanded dims) */
    enum rt_status (*binary)(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape,
                             const void *a, const int64_t *astride, const void *b, const int64_t *bstride,
                             void *out);
    /* out[c] = cond[c] ? a[c] : b[c], all contiguous of n elements */
    enum rt_status (*where)(enum rt_dtype dt, int64_t n, const uint8_t *cond, const void *a, const void *b,
                            void *out);
    /* x viewed as (outer, n, inner) reduced over n -> out (outer, inner); idx (i64) for max/min, may be NULL.
     * p is the norm order. */
    enum rt_status (*reduce)(enum rt_reduce_op op, enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner,
                             const void *x, void *out, int64_t *idx, double p);
    /* C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], row-major, batch strides in elements */
    enum rt_status (*gemm)(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                           const void *a, int64_t lda, int64_t stride_a, const void *b, int64_t ldb,
                           int64_t stride_b, double beta, void *c, int64_t ldc, int64_t stride_c,
                           int64_t batch);
    /* softmax(x * inv_t) over n in (outer, n, inner); log selects log-softmax */
    enum rt_status (*softmax)(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t,
                              const void *x, void *y);
    /* gx from gy and y (the forward output) */
    enum rt_status (*softmax_backward)(enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner,
                                       double inv_t, const void *y, const void *gy, void *gx);
    /* out (outer, m, inner) = x (outer, n, inner) at index[j] (checked < n beforehand) */
    enum rt_status (*index_select)(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                   int64_t m, const void *x, void *out);
    /* gather: out[o,j,i] = x[o, index[o,j,i], i], x (outer,n,inner), index/out (outer,m,inner) */
    enum rt_status (*gather)(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                             const int64_t *index, const void *x, void *out);
    /* scatter-add: out[o, index[o,j,i], i] += src[o,j,i]; out (outer,n,inner), src/index (outer,m,inner) */
    enum rt_status (*scatter_add)(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m,
                                  const int64_t *index, const void *src, void *out);
    /* index-select-add along dim of (outer, n, inner): out[o, index[j], i] += src[o, j, i] */
    enum rt_status (*index_add)(enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index,
                                int64_t m, const void *src, void *out);
    /* random fills at counter base (element i uses counter base + i) */
    enum rt_status (*uniform)(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double lo, double hi,
                              void *out);
    enum rt_status (*normal)(enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double mean, double std,
                             void *out);
};

const struct rt_backend *rt_backend_for(enum rt_device d); /* NULL when not built */
const struct rt_backend *rt_backend_cpu(void);
#ifdef RETORT_HAVE_CUDA
const struct rt_backend *rt_backend_cuda(void);
#endif

#endif
