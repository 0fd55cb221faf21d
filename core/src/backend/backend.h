/* Internal backend vtable: one per device. Ops (core/src/ops_*.c) validate arguments, work out
 * shapes, make operands contiguous and record autograd nodes; backends only run kernels on
 * contiguous buffers of one dtype. Adding a device means filling in one of these tables. */
#ifndef RETORT_BACKEND_H
#define RETORT_BACKEND_H

#include "retort/nn_ops.h"
#include "retort/ops.h"
#include "retort/optim.h"
#include "retort/tensor.h"

enum rt_unary_op {
    RT_UN_NEG, RT_UN_EXP, RT_UN_LOG, RT_UN_SQRT, RT_UN_ABS, RT_UN_RELU, RT_UN_SIGMOID,
    RT_UN_TANH, RT_UN_RECIPROCAL, RT_UN_SIGN,
    RT_UN_POW,    /* x^a */
    RT_UN_CLAMP,  /* min(max(x, a), b) */
    RT_UN_AFFINE, /* x*a + b */
    RT_UN_LEAKY_RELU, /* x > 0 ? x : x*a (float only; a the slope) */
    RT_UN_CMP_EQ, RT_UN_CMP_NE, RT_UN_CMP_LT, RT_UN_CMP_LE, RT_UN_CMP_GT, RT_UN_CMP_GE /* x ? a -> u8 */
};

enum rt_binary_op {
    RT_BIN_ADD, RT_BIN_SUB, RT_BIN_MUL, RT_BIN_DIV, RT_BIN_MAX, RT_BIN_MIN,
    RT_BIN_CMP_EQ, RT_BIN_CMP_NE, RT_BIN_CMP_LT, RT_BIN_CMP_LE, RT_BIN_CMP_GT, RT_BIN_CMP_GE, /* -> u8 */
    /* gradient helpers: a is the incoming gradient, b a saved value */
    RT_BIN_RELU_BW,    /* a * (b > 0), b = relu input */
    RT_BIN_SIGMOID_BW, /* a * b * (1 - b), b = sigmoid output */
    RT_BIN_TANH_BW,    /* a * (1 - b*b), b = tanh output */
    RT_BIN_ABS_BW,     /* a * sign(b), b = input */
    RT_BIN_LEAKY_RELU_BW /* b > 0 ? a : a*s, b = leaky relu input, s the slope (float only) */
};

enum rt_reduce_op { RT_RED_SUM, RT_RED_MEAN, RT_RED_MAX, RT_RED_MIN, RT_RED_LOGSUMEXP, RT_RED_NORM };

/* A strided view described for a kernel: base pointer already offset, element strides. */
struct rt_strided {
    void *data;
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    int64_t stride[RT_MAX_DIMS];
};

/* Geometry of a 2-D convolution or pooling window over n images (or planes) of c channels of h x w.
 * For im2col/col2im image i of a chunk begins img_stride elements after image 0, and the kernel
 * sees channels [0, c) of each image (a group's channels when x points at its first channel). */
struct rt_conv_geom {
    int64_t n, c, h, w;    /* images in the chunk, channels, input height and width */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t oh, ow;        /* output height and width */
    int64_t img_stride;    /* elements between consecutive images in x */
};

/* A whole convolution for a backend's direct kernels: g covers the batch (g.n = N images of g.c = C
 * channels, img_stride C*H*W), o output channels in `groups` groups. */
struct rt_conv2d_shape {
    struct rt_conv_geom g;
    int64_t o, groups;
};

/* One parameter of a fused optimizer step: n contiguous elements of p, g and buf (NULL without
 * momentum); first: the momentum buffer starts as d on this step. */
struct rt_sgd_param {
    int64_t n;
    const void *g;
    void *p, *buf;
    bool first;
};

/* One parameter of a fused Adam step: n contiguous elements of p, g and the state m, v, vmax (NULL
 * without amsgrad); step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) for its t. */
struct rt_adam_param {
    int64_t n;
    const void *g;
    void *p, *m, *v, *vmax;
    double step_size, bc2_sqrt;
};

/* What rt_accumulate_ hands a backend, by value (a GPU kernel's argument): n one-element float
 * values (their dtypes), the accumulator slots they go to and their weights. */
struct rt_accumulate_args {
    int n;
    const void *v[RT_ACCUMULATE_MAX];
    unsigned char dt[RT_ACCUMULATE_MAX]; /* enum rt_dtype: RT_F32 or RT_F64 */
    int64_t slot[RT_ACCUMULATE_MAX];
    double w[RT_ACCUMULATE_MAX];
};

/* The kernel list, the one place a kernel's signature is written: X(WHERE, name, (parameters)), every
 * kernel returning enum rt_status. It generates the members of struct rt_backend below, the
 * prototypes of both backends (rt_cpu_<name> in cpu/cpu_internal.h, rt_cuda_<name> in
 * cuda/cuda_kernels.h) and their table entries (cpu_backend.c, cuda_backend.cu), so a definition
 * that differs from its line fails to compile. WHERE is ALL, or CPU_ONLY / CUDA_ONLY for a kernel
 * the other backend leaves NULL (the ops test for NULL and fall back).
 * To add a kernel: one line here (with a comment saying what it computes), then the definitions
 * rt_cpu_<name> (core/src/backend/cpu/) and rt_cuda_<name> (core/src/backend/cuda/). Nothing else
 * is declared or registered by hand. */
#define RT_BACKEND_KERNELS(X)                                                                                          \
    /* dst[i] = (dst dtype) src[i] over two strided views of equal shape: contiguous(), copy_, casts */                \
    X(ALL, copy, (const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,                    \
        enum rt_dtype src_dt))                                                                                         \
    X(ALL, fill, (enum rt_dtype dt, int64_t n, double value, void *dst))                                               \
    /* y = op(x, a, b); comparisons write u8; y may be x (in-place updates) */                                         \
    X(ALL, unary, (enum rt_unary_op op, enum rt_dtype dt, int64_t n, const void *x, void *y, double a, double b))      \
    /* out (contiguous, shape) = op(a, b); a and b contiguous with broadcast strides (0 on expanded dims); s the      \
     * op's parameter where it has one (RT_BIN_LEAKY_RELU_BW's slope), else unused */                                 \
    X(ALL, binary, (enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape, const void *a,             \
        const int64_t *astride, const void *b, const int64_t *bstride, void *out, double s))                           \
    /* out[c] = cond[c] ? a[c] : b[c], all contiguous of n elements */                                                 \
    X(ALL, where, (enum rt_dtype dt, int64_t n, const uint8_t *cond, const void *a, const void *b, void *out))         \
    /* x viewed as (outer, n, inner) reduced over n -> out (outer, inner); idx (i64) for max/min, may be NULL.         \
     * p is the norm order. */                                                                                         \
    X(ALL, reduce, (enum rt_reduce_op op, enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const void *x,    \
        void *out, int64_t *idx, double p))                                                                            \
    /* C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], row-major, batch strides in elements */                         \
    X(ALL, gemm, (enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,    \
        int64_t lda, int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,             \
        int64_t ldc, int64_t stride_c, int64_t batch))                                                                 \
    /* C (m, n) = op(A) op(B) + bias, bias (n, contiguous) added to every row, in one call (a GPU's                    \
     * GEMM epilogue; NULL where the backend has none). dt RT_BF16: A and B bf16, C and the bias f32                   \
     * (gemm_bf16's). *done = false with RT_OK when it cannot take this product: the caller then fills                 \
     * C with the bias and runs gemm (gemm_bf16) with beta 1. */                                                       \
    X(CUDA_ONLY, gemm_bias, (enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,       \
        int64_t lda, const void *b, int64_t ldb, const void *bias, void *c, int64_t ldc, bool *done))                  \
    /* softmax(x * inv_t) over n in (outer, n, inner); log selects log-softmax */                                      \
    X(ALL, softmax, (enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t, const void *x, \
        void *y))                                                                                                      \
    /* gx from gy and y (the forward output) */                                                                        \
    X(ALL, softmax_backward, (enum rt_dtype dt, bool log, int64_t outer, int64_t n, int64_t inner, double inv_t,       \
        const void *y, const void *gy, void *gx))                                                                      \
    /* Index and label checks, fused with the shift to 0-based: out[i] = ix[i] - base for ix[i] in                     \
     * [base, base + limit), and ix[i] == ignore (RT_NO_IGNORE: none) passes as ignore - base. A bad                   \
     * value is an RT_ERR_ARG (rt_backend_bad_index). The CPU returns it; a GPU records the first one,                 \
     * writes 0 in its place so later kernels stay in bounds, and reports it at the next wait                          \
     * (synchronize, download). out may be NULL (check only). */                                                       \
    X(ALL, check_index, (const char *op, const char *what, int64_t n, const int64_t *ix, int64_t base, int64_t limit,  \
        int64_t ignore, int64_t *out))                                                                                 \
    /* out (outer, m, inner) = x (outer, n, inner) at index[j] (checked < n beforehand) */                             \
    X(ALL, index_select, (enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index, int64_t m,  \
        const void *x, void *out))                                                                                     \
    /* index-copy, in place: out[o, index[j], :] = src[o, j, :], out (outer, n, inner), src (outer, m, inner);         \
     * a repeated index keeps the last row on the CPU, any one of them on a GPU */                                     \
    X(ALL, index_copy, (enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index, int64_t m,    \
        const void *src, void *out))                                                                                   \
    /* gather: out[o,j,i] = x[o, index[o,j,i], i], x (outer,n,inner), index/out (outer,m,inner) */                     \
    X(ALL, gather, (enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m, const int64_t *index,        \
        const void *x, void *out))                                                                                     \
    /* scatter-add: out[o, index[o,j,i], i] += src[o,j,i]; out (outer,n,inner), src/index (outer,m,inner) */           \
    X(ALL, scatter_add, (enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, int64_t m, const int64_t *index,   \
        const void *src, void *out))                                                                                   \
    /* index-select-add along dim of (outer, n, inner): out[o, index[j], i] += src[o, j, i] */                         \
    X(ALL, index_add, (enum rt_dtype dt, int64_t outer, int64_t n, int64_t inner, const int64_t *index, int64_t m,     \
        const void *src, void *out))                                                                                   \
    /* random fills at counter base (element i uses counter base + i) */                                               \
    X(ALL, uniform, (enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double lo, double hi, void *out))      \
    X(ALL, normal, (enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double mean, double std, void *out))    \
    /* inverted dropout of x (n) in one pass: mask[i] = (dt)scale where u_i < keep, else 0, u_i the f64                \
     * U[0, 1) draw at counter base + i (as uniform's), and y[i] = x[i] * mask[i] in dt */                             \
    X(ALL, dropout, (enum rt_dtype dt, int64_t n, uint64_t seed, uint64_t base, double keep, double scale,             \
        const void *x, void *y, void *mask))                                                                           \
    /* --- neural-network kernels (ops_conv.c, ops_pool.c, ops_norm.c, ops_loss.c) --- */                             \
    /* col (c*kh*kw, n*oh*ow) from x: row (ci, ki, kj), column (image, oy, ox); zero outside the image.                \
     * f32/f64, and bf16 where the backend has no conv2d_bf16 (CUDA) */                                                \
    X(ALL, im2col, (enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *col))                         \
    /* the adjoint: x (the chunk's n images, channels [0, c)) = the sum of the col entries that                        \
     * im2col took from each element, 0 for elements no window covers */                                               \
    X(ALL, col2im, (enum rt_dtype dt, const struct rt_conv_geom *g, const void *col, void *x))                         \
    /* Direct convolution, NULL where a backend has none: y (N,O,OH,OW) from x (N,C,H,W), w (O,C/groups,               \
     * kh,kw) and b (O) or NULL, all contiguous. *done = false with RT_OK when it leaves this shape or dtype           \
     * to im2col + GEMM (ops_conv.c); the backward fills gx and/or gw (either may be NULL) whole from gy. */           \
    X(CPU_ONLY, conv2d, (enum rt_dtype dt, const struct rt_conv2d_shape *s, const void *x, const void *w,              \
        const void *b, void *y, bool *done))                                                                           \
    X(CPU_ONLY, conv2d_backward, (enum rt_dtype dt, const struct rt_conv2d_shape *s, const void *x, const void *w,     \
        const void *gy, void *gx, void *gw, bool *done))                                                               \
    /* bf16 (retort/bf16.h): dst = src over two strided views of equal shape where either dtype is bf16                \
     * (f32 -> bf16 rounds to nearest even; other dtypes pass through f32) */                                          \
    X(ALL, cast_bf16, (const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,               \
        enum rt_dtype src_dt))                                                                                         \
    /* C (f32)[b] = op(A[b]) op(B[b]) + beta * C[b], A and B bf16, products accumulated in f32; row-major,             \
     * batch strides in elements (as gemm's) */                                                                        \
    X(ALL, gemm_bf16, (bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a, int64_t lda,                  \
        int64_t stride_a, const void *b, int64_t ldb, int64_t stride_b, double beta, void *c, int64_t ldc,             \
        int64_t stride_c, int64_t batch))                                                                              \
    /* conv2d with x and w bf16, b (f32) or NULL, y f32 (accumulated in f32); the backward takes x, w and              \
     * gy as bf16 and writes gx and/or gw (either may be NULL) in f32. NULL on CUDA: ops_conv.c then                   \
     * runs im2col in bf16 and gemm_bf16 */                                                                            \
    X(CPU_ONLY, conv2d_bf16, (const struct rt_conv2d_shape *s, const void *x, const void *w, const void *b,            \
        void *y))                                                                                                      \
    X(CPU_ONLY, conv2d_backward_bf16, (const struct rt_conv2d_shape *s, const void *x, const void *w,                  \
        const void *gy, void *gx, void *gw))                                                                           \
    /* pooling over planes (g->n planes of h x w, contiguous; g->c unused): max writes idx (i64 h*w+w                  \
     * within the plane); avg divides by the window clipped to the padded input (count_include_pad) or                 \
     * by the real elements in it */                                                                                   \
    X(ALL, max_pool2d, (enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y, int64_t *idx))         \
    /* the backward writes all of gx */                                                                                \
    X(ALL, max_pool2d_backward, (enum rt_dtype dt, const struct rt_conv_geom *g, const int64_t *idx, const void *gy,   \
        void *gx))                                                                                                     \
    X(ALL, avg_pool2d, (enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad, const void *x,         \
        void *y))                                                                                                      \
    /* the backward writes all of gx */                                                                                \
    X(ALL, avg_pool2d_backward, (enum rt_dtype dt, const struct rt_conv_geom *g, bool count_include_pad,               \
        const void *gy, void *gx))                                                                                     \
    /* adaptive average pooling of g->n planes h x w to oh x ow (PyTorch bins) and its backward */                     \
    X(ALL, adaptive_avg_pool2d, (enum rt_dtype dt, const struct rt_conv_geom *g, const void *x, void *y))              \
    /* the backward writes all of gx */                                                                                \
    X(ALL, adaptive_avg_pool2d_backward, (enum rt_dtype dt, const struct rt_conv_geom *g, const void *gy, void *gx))   \
    /* batch norm over x (n, c, s): per-channel mean and biased variance (dt arrays of c) */                           \
    X(ALL, batch_norm_stats, (enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x, void *mean,            \
        void *var))                                                                                                    \
    /* y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; weight/bias may be NULL (1, 0) */                          \
    X(ALL, batch_norm_apply, (enum rt_dtype dt, int64_t n, int64_t c, int64_t s, const void *x, const void *mean,      \
        const void *invstd, const void *weight, const void *bias, void *y))                                            \
    /* gradients (any of gx, gw, gb may be NULL). training: mean/invstd are batch statistics and gx takes              \
     * the fused formula w*invstd*(gy - mean(gy) - xhat*mean(gy*xhat)); else gx = gy*w*invstd. With gb                 \
     * alone, x, mean and invstd may be NULL: gb is then the per-channel sum of gy (a conv's bias grad) */             \
    X(ALL, batch_norm_backward, (enum rt_dtype dt, bool training, int64_t n, int64_t c, int64_t s, const void *x,      \
        const void *gy, const void *mean, const void *invstd, const void *weight, void *gx, void *gw, void *gb))       \
    /* Per-row weights of a class loss over labels (n) in [0, c): w[i] (dt) = cw ? cw[labels[i]] : 1, and              \
     * 0 where labels[i] == ignore; safe (may be NULL) = the labels with ignored rows as 0, for gathers.               \
     * Labels are checked as by check_index (base 0, limit c; "label"), bad ones count as ignored. */                  \
    X(ALL, class_rows, (const char *op, enum rt_dtype dt, int64_t n, int64_t c, const int64_t *labels, const void *cw, \
        int64_t ignore, void *w, int64_t *safe))                                                                       \
    /* cross entropy over logits (n, c) and labels (n) i64 in [0, c) or == ignore; weights (c) or NULL:                \
     * loss (n) per sample (0 when ignored), lse (n) the log-normalisers and rw (n) the row weights of a               \
     * mean (as class_rows). Labels are checked here, as by class_rows: no separate pass over them. */                 \
    X(ALL, cross_entropy, (const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *logits,                 \
        const int64_t *labels, const void *weights, int64_t ignore, double smoothing, void *loss, void *lse,           \
        void *rw))                                                                                                     \
    /* gx (n, c) = g_i * d loss_i / d logits[i, :] with g_i = gloss[i * gloss_stride] (stride 0: the                   \
     * gradient of a mean or sum, one value for every row), divided by gden[0] unless gden is NULL (a                  \
     * mean's gradient g / sum of the row weights, formed in the kernel) */                                            \
    X(ALL, cross_entropy_backward, (enum rt_dtype dt, int64_t n, int64_t c, const void *logits, const int64_t *labels, \
        const void *weights, int64_t ignore, double smoothing, const void *lse, const void *gloss,                     \
        int64_t gloss_stride, const void *gden, void *gx))                                                             \
    /* A class loss's mean in one pass: out[0] = sum_i rows[i] / den[0], den[0] = sum_i rw[i] (n >= 0;                 \
     * 0 / 0 is NaN, as a mean over no counted sample). Sums in double. */                                             \
    X(ALL, weighted_mean, (enum rt_dtype dt, int64_t n, const void *rows, const void *rw, void *out, void *den))       \
    /* out[0] (dt) = how many of the n rows of x (n, c) have their argmax (rt_argmax's rule) at                        \
     * labels[i] - base */                                                                                             \
    X(ALL, count_correct, (enum rt_dtype dt, int64_t n, int64_t c, const void *x, const int64_t *labels, int64_t base, \
        void *out))                                                                                                    \
    /* Hinton KD rows (formulas in retort/loss.h): s, t (n, c), t probabilities at temperature T when                  \
     * probs; labels (n) or NULL, checked here as by class_rows (bad ones count as ignored). kl[i] =                   \
     * KL(p_t,i || softmax(s_i / T)), ce[i] = CE(s_i, y_i) and keep[i] = 1 (dt, n); all three 0 at                     \
     * ignored rows, ce 0 without labels */                                                                            \
    X(ALL, kd, (const char *op, enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs,      \
        double T, const int64_t *labels, int64_t ignore, void *kl, void *ce, void *keep))                              \
    /* The batch reduction of the KD rows: with a_i = w_i keep_i / kept (w NULL: 1), kept = sum keep,                  \
     * loss[0] = sum_i a_i (soft kl_i + hard ce_i) (0 when n == 0) and terms = {sum kl / kept,                         \
     * sum ce / kept, kept, T2 sum kl / kept}. Sums in double. */                                                      \
    X(ALL, kd_reduce, (enum rt_dtype dt, int64_t n, const void *kl, const void *ce, const void *keep, const void *w,   \
        double soft, double hard, double T2, void *loss, void *terms))                                                 \
    /* gs[i, :] = g a_i (soft d kl_i / d s_i + hard d ce_i / d s_i), g = gloss[0], a_i = w_i keep_i / kept,            \
     * kept = terms[2] as kd_reduce left it; hard unused without labels */                                             \
    X(ALL, kd_backward, (enum rt_dtype dt, int64_t n, int64_t c, const void *s, const void *t, bool probs, double T,   \
        const int64_t *labels, const void *keep, const void *w, const void *terms, const void *gloss, double soft,     \
        double hard, void *gs))                                                                                        \
    /* attention maps of f (n, c, hw): y[i] = a_i / max(||a_i||, 1e-12), a_i = mean_c f[i, c]^p; norm[i] =             \
     * ||a_i|| (dt, n), kept for the backward: gf[i, c, s] = ga[i, s] * p f^(p-1) / c with                             \
     * ga = (gy - y (y . gy)) / norm, or gy / 1e-12 where the norm was clamped */                                      \
    X(ALL, attention_map, (enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p, const void *f, void *y,       \
        void *norm))                                                                                                   \
    X(ALL, attention_map_backward, (enum rt_dtype dt, int64_t n, int64_t c, int64_t hw, double p, const void *f,       \
        const void *y, const void *norm, const void *gy, void *gf))                                                    \
    /* y[i] += alpha * x[i] over n contiguous elements (in-place updates: optimizers, gradient sums) */                \
    X(ALL, axpy, (enum rt_dtype dt, int64_t n, double alpha, const void *x, void *y))                                  \
    /* running sums: acc[a->slot[i]] += a->w[i] * a->v[i][0] for i < a->n, the slots distinct (checked by              \
     * rt_accumulate_); one launch on a GPU for all of them */                                                         \
    X(ALL, accumulate, (double *acc, const struct rt_accumulate_args *a))                                              \
    /* fused SGD step over k parameters of one dtype at once (formula in retort/optim.h; each says                     \
     * whether it is its first step, o->first is not read): one launch on a GPU for all of them */                     \
    X(ALL, sgd_update, (enum rt_dtype dt, int k, const struct rt_sgd_param *ps, const struct rt_sgd_opts *o))          \
    /* fused Adam/AdamW step over k parameters of one dtype at once (retort/optim.h): one launch on a GPU */           \
    X(ALL, adam_update, (enum rt_dtype dt, int k, const struct rt_adam_param *ps, const struct rt_adam_opts *o))

/* RT_KERNEL_IF(WHERE, DEV, yes, no): `yes` when a kernel of the list is built for DEV (CPU or CUDA), else
 * `no` (neither may hold a comma outside parentheses). */
#define RT_KERNEL_IF(where, dev, yes, no) RT_KERNEL_IF_##where##_##dev(yes, no)
#define RT_KERNEL_IF_ALL_CPU(yes, no) yes
#define RT_KERNEL_IF_ALL_CUDA(yes, no) yes
#define RT_KERNEL_IF_CPU_ONLY_CPU(yes, no) yes
#define RT_KERNEL_IF_CPU_ONLY_CUDA(yes, no) no
#define RT_KERNEL_IF_CUDA_ONLY_CPU(yes, no) no
#define RT_KERNEL_IF_CUDA_ONLY_CUDA(yes, no) yes

/* One member of struct rt_backend per kernel of the list. */
#define RT_BACKEND_MEMBER(where, name, params) enum rt_status(*name) params;

struct rt_backend {
    const char *name;
    enum rt_device device;
    enum rt_status (*alloc)(size_t nbytes, void **out);
    void (*free)(void *p, size_t nbytes); /* nbytes as given to alloc: lets allocators cache by size */
    /* host <-> device byte copies (CPU: memcpy) */
    enum rt_status (*upload)(void *dst, const void *host_src, size_t nbytes);
    enum rt_status (*download)(void *host_dst, const void *src, size_t nbytes);

    /* the kernels, one member each (RT_BACKEND_KERNELS above) */
    RT_BACKEND_KERNELS(RT_BACKEND_MEMBER)

    /* --- device management (retort/device.h; NULL where a device has nothing to do) --- */
    /* whether the device can be used now; *why (static text) says why not */
    bool (*available)(const char **why);
    /* one line naming the hardware, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.2 GiB)" */
    const char *(*describe)(void);
    /* wait for all queued work; reports an asynchronous fault */
    enum rt_status (*synchronize)(void);
    /* work queued on the device so far: kernels, library calls and copies, one each */
    uint64_t (*launches)(void);
    /* give cached free blocks back to the system: bytes released */
    size_t (*empty_cache)(void);
    /* bytes held in the allocator's cache, and the most ever reserved from the system */
    void (*cache_stats)(size_t *cached, size_t *peak_reserved);
};

const struct rt_backend *rt_backend_for(enum rt_device d); /* NULL when not built */

/* --- argument checks and geometry every backend applies before its kernels (kernel_args.c) --- */

/* RT_ERR_DTYPE "<what>: unknown dtype <n>" (a dtype outside enum rt_dtype). */
enum rt_status rt_backend_unknown_dtype(const char *what, enum rt_dtype dt);
/* RT_ERR_ARG "<op>: <what> <v> at position <pos + base> out of range [base, base + limit - 1]"
 * (" (1-based)" added when base is 1), followed by `late` (a GPU's note that it was found after
 * the op returned; "" otherwise). */
enum rt_status rt_backend_bad_index(const char *op, const char *what, int64_t v, int64_t pos, int64_t base,
                                    int64_t limit, const char *late);
/* RT_ERR_ARG "<op>: <what> hold a non-finite value (NaN or infinity) in row <row + 1>", then `late`:
 * a loss refuses such inputs instead of returning NaN, or 0 where the value drops out. */
enum rt_status rt_backend_non_finite(const char *op, const char *what, int64_t row, const char *late);
/* How a KD loss's inputs are named in its messages (teacher: argument 2; student: argument 1). */
static inline const char *rt_kd_input_name(int teacher, bool probs)
{
    return !teacher ? "the student's logits (argument 1)"
           : probs  ? "the teacher's probabilities (argument 2)"
                    : "the teacher's logits (argument 2)";
}
/* RT_ERR_DTYPE "<what>: bf16 tensors are not supported; convert with :float()": bf16 is a storage
 * dtype (retort/bf16.h), taken only by copies/casts and the *_bf16 kernels. */
enum rt_status rt_backend_bf16_refused(const char *what);
/* RT_OK for f32/f64, else an RT_ERR_DTYPE naming `what` ("needs a float tensor"; bf16: refused as above). */
enum rt_status rt_backend_float_only(const char *what, enum rt_dtype dt);
/* Drops size-1 dims and merges neighbours that are contiguous with each other in every one of the
 * k stride arrays, so most broadcasts and copies reduce to 1-2 dims with a long inner loop.
 * Returns the new ndim (>= 1). numel must be > 0. */
int rt_backend_coalesce(int nd, const int64_t *shape, int k, const int64_t *const *strides, int64_t *oshape,
                        int64_t (*ostrides)[RT_MAX_DIMS]);
/* A copy's element count after checking it (*st set on a bad call, count 0 then); when > 0 the two
 * views coalesced: *nd dims of `shape`, strides[0] dst's, strides[1] src's. */
int64_t rt_backend_copy_geometry(const struct rt_strided *dst, enum rt_dtype dst_dt, const struct rt_strided *src,
                                 enum rt_dtype src_dt, enum rt_status *st, int *nd, int64_t *shape,
                                 int64_t (*strides)[RT_MAX_DIMS]);
/* The same for cast_bf16, whose views have one side bf16 (the other any dtype, bf16 included). */
int64_t rt_backend_cast_bf16_geometry(const struct rt_strided *dst, enum rt_dtype dst_dt,
                                      const struct rt_strided *src, enum rt_dtype src_dt, enum rt_status *st, int *nd,
                                      int64_t *shape, int64_t (*strides)[RT_MAX_DIMS]);
/* The same for a binary op whose contiguous output has `shape`: strides[0] out's, [1] a's, [2] b's. */
int64_t rt_backend_binary_geometry(enum rt_binary_op op, enum rt_dtype dt, int ndim, const int64_t *shape,
                                   const int64_t *astride, const int64_t *bstride, enum rt_status *st, int *nd,
                                   int64_t *cshape, int64_t (*strides)[RT_MAX_DIMS]);
/* Names for messages ("exp", "logsumexp", ...), and the op/dtype checks of unary and reduce. */
const char *rt_backend_unary_name(enum rt_unary_op op);
enum rt_status rt_backend_unary_args(enum rt_unary_op op, enum rt_dtype dt);
const char *rt_backend_reduce_name(enum rt_reduce_op op);
enum rt_status rt_backend_reduce_args(enum rt_reduce_op op, enum rt_dtype dt, int64_t n); /* n: the reduced size */
/* A gemm's sizes and leading dimensions; widens single-row leading dimensions to what BLAS wants.
 * *empty: m, n or batch is 0 (nothing to write). With k == 0 lda and ldb are left unchecked. */
enum rt_status rt_backend_gemm_args(enum rt_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                                    int64_t *lda, int64_t *ldb, int64_t *ldc, bool *empty);
/* The same for gemm_bf16 (and gemm_bias of bf16 operands): f32's element counts and strides. */
enum rt_status rt_backend_gemm_bf16_args(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                                         int64_t *lda, int64_t *ldb, int64_t *ldc, bool *empty);

/* Is the switch `name` (RETORT_CUDA_SYNC, ...) set in the environment to anything but "" or "0"? */
bool rt_backend_env_flag(const char *name);

const struct rt_backend *rt_backend_cpu(void);
/* The CPU kernels under the cuda tag when RETORT_EMULATE_CUDA=1, else NULL (emulated_cuda.c). */
const struct rt_backend *rt_backend_emulated_cuda(void);
#ifdef RETORT_HAVE_CUDA
const struct rt_backend *rt_backend_cuda(void);
#endif

#endif
