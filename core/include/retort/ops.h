/* Math on tensors. All ops return new tensors (new references) and are differentiable where
 * that makes sense: when grad mode is on and an input requires grad, a graph node is recorded.
 * Dims are 0-based; negative dims count from the end. Binary ops broadcast like NumPy. */
#ifndef RETORT_OPS_H
#define RETORT_OPS_H

#include "tensor.h"

/* --- element-wise, unary --- */
enum rt_status rt_neg(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_exp(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_log(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_sqrt(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_abs(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_relu(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_sigmoid(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_tanh(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_reciprocal(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_pow(struct rt_tensor *x, double exponent, struct rt_tensor **out);
/* lo/hi may be -INFINITY/INFINITY for a one-sided clamp. */
enum rt_status rt_clamp(struct rt_tensor *x, double lo, double hi, struct rt_tensor **out);
/* y = x * mul + add: scalar arithmetic (x + s, x * s, s - x, ...). */
enum rt_status rt_affine(struct rt_tensor *x, double mul, double add, struct rt_tensor **out);

/* --- element-wise, binary (broadcasting; both operands of one dtype) --- */
enum rt_status rt_add(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
enum rt_status rt_sub(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
enum rt_status rt_mul(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
enum rt_status rt_div(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
enum rt_status rt_maximum(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
enum rt_status rt_minimum(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
/* Comparisons give u8 tensors of 0/1 and are not differentiable. */
enum rt_cmp { RT_CMP_EQ, RT_CMP_NE, RT_CMP_LT, RT_CMP_LE, RT_CMP_GT, RT_CMP_GE };
enum rt_status rt_compare(struct rt_tensor *a, struct rt_tensor *b, enum rt_cmp op, struct rt_tensor **out);
enum rt_status rt_compare_scalar(struct rt_tensor *a, double s, enum rt_cmp op, struct rt_tensor **out);
/* cond (u8, nonzero = take a) ? a : b, all three broadcast. */
enum rt_status rt_where(struct rt_tensor *cond, struct rt_tensor *a, struct rt_tensor *b,
                        struct rt_tensor **out);

/* --- reductions: along dim (keepdim keeps it as size 1) or, with rt_*_all, over everything --- */
enum rt_status rt_sum(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out);
enum rt_status rt_mean(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out);
enum rt_status rt_logsumexp(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out);
enum rt_status rt_norm(struct rt_tensor *x, double p, int dim, bool keepdim, struct rt_tensor **out);
/* values and i64 indices (either out may be NULL); values are differentiable. */
enum rt_status rt_max(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **values,
                      struct rt_tensor **indices);
enum rt_status rt_min(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **values,
                      struct rt_tensor **indices);
enum rt_status rt_argmax(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out);
enum rt_status rt_argmin(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out);
enum rt_status rt_sum_all(struct rt_tensor *x, struct rt_tensor **out);  /* 0-dim results */
enum rt_status rt_mean_all(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_max_all(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_min_all(struct rt_tensor *x, struct rt_tensor **out);
enum rt_status rt_norm_all(struct rt_tensor *x, double p, struct rt_tensor **out);
enum rt_status rt_logsumexp_all(struct rt_tensor *x, struct rt_tensor **out);
/* Sum x down to shape (the reverse of broadcasting); used by autograd. */
enum rt_status rt_sum_to_shape(struct rt_tensor *x, int ndim, const int64_t *shape, struct rt_tensor **out);

/* --- linear algebra (oneDNN or OpenBLAS on CPU: RETORT_CPU_GEMM) --- */
/* (n,k)x(k,m); also (b,n,k)x(b,k,m), (b,n,k)x(k,m), and 1-D operands as vectors. */
enum rt_status rt_matmul(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
enum rt_status rt_bmm(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);
/* x (n,in) @ w^T (out,in) + bias (out) — the Linear layer in one GEMM. bias may be NULL. */
enum rt_status rt_linear(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias,
                         struct rt_tensor **out);
/* Reference triple loop (tests): same shapes as rt_matmul for 2-D operands, not differentiable. */
enum rt_status rt_matmul_naive(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out);

/* --- softmax family: softmax(x / T) along dim, computed stably --- */
enum rt_status rt_softmax(struct rt_tensor *x, int dim, double T, struct rt_tensor **out);
enum rt_status rt_log_softmax(struct rt_tensor *x, int dim, double T, struct rt_tensor **out);

/* --- indexing (index tensors are i64, 0-based) --- */
/* An index tensor given from `base` (1 for Lua's labels and indices) made 0-based and checked, on its
 * own device without a wait: out = ix - base, with every value in [base, base + limit) or equal to
 * ignore (RT_NO_IGNORE, INT64_MIN: none; it becomes ignore - base). A bad value is RT_ERR_ARG
 * "<op>: <what> <v> at position <p> out of range [base, base + limit - 1]", positions counted from
 * base. On the CPU it is returned here; on a GPU the check is a kernel, and the error is returned by
 * the next wait for the device (rt_device_synchronize, a read of a value), at once under
 * rt_device_set_sync_debug. */
enum rt_status rt_index_rebase(struct rt_tensor *ix, int64_t base, int64_t limit, int64_t ignore, const char *op,
                               const char *what, struct rt_tensor **out);
enum rt_status rt_index_select(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor **out);
/* In place: x[.., index[j], ..] = src[.., j, ..] along dim (x contiguous, src x's shape with index's
 * length along dim; a repeated index keeps one of its rows). No gradient flows: x must not need one. */
enum rt_status rt_index_copy_(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor *src);
/* out[..i..] = x[..index[..i..]..] along dim; index has x's shape except along dim. */
enum rt_status rt_gather(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor **out);
/* out = x, then out[..index[..i..]..] += src[..i..] along dim. */
enum rt_status rt_scatter_add(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor *src,
                              struct rt_tensor **out);

/* --- running sums --- */
#define RT_ACCUMULATE_MAX 16
/* acc[slot[i]] += w[i] * v[i] for i < n (at most RT_ACCUMULATE_MAX): acc an f64 vector, each v[i] a
 * one-element f32 or f64 tensor on acc's device, the slots distinct and in range. One kernel on a
 * GPU for all of them, and no wait: a training loop's loss, accuracy and term sums stay on the
 * device between reads. No autograd. */
enum rt_status rt_accumulate_(struct rt_tensor *acc, int n, struct rt_tensor *const *v, const double *w,
                              const int64_t *slot);

/* --- joining --- */
enum rt_status rt_cat(int n, struct rt_tensor *const *xs, int dim, struct rt_tensor **out);
enum rt_status rt_stack(int n, struct rt_tensor *const *xs, int dim, struct rt_tensor **out);

#endif
