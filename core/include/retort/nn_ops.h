/* Neural-network ops: convolution, pooling, batch normalisation, dropout, leaky ReLU and the
 * classification/regression losses. Same rules as ops.h: new references through out-parameters,
 * differentiable w.r.t. every float tensor argument (f32, f64) except where stated, errors name the
 * op and the shapes. Image tensors are (N, C, H, W); spatial pairs are {h, w}. Semantics follow
 * PyTorch 1.13 (the fixtures in tests/fixtures/ops.txt are computed with it). */
#ifndef RETORT_NN_OPS_H
#define RETORT_NN_OPS_H

#include "random.h"
#include "tensor.h"

/* out (N, O, OH, OW), OH = (H + 2*padding[0] - dilation[0]*(kh-1) - 1) / stride[0] + 1 (likewise OW).
 * w (O, C/groups, kh, kw); bias (O) or NULL. im2col + backend GEMM over chunks of images (the
 * column buffer of a chunk stays under RT_CONV_CHUNK_BYTES); backward: dx by GEMM + col2im,
 * dw by GEMM, db by a sum. */
#define RT_CONV_CHUNK_BYTES ((size_t)64 << 20)
enum rt_status rt_conv2d(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias, const int64_t stride[2],
                         const int64_t padding[2], const int64_t dilation[2], int64_t groups, struct rt_tensor **out);

/* Max pooling (implicit -inf padding, padding at most half the kernel). indices_out, when not NULL,
 * receives i64 (N, C, OH, OW) positions h * W + w within each input plane (as PyTorch). */
enum rt_status rt_max_pool2d(struct rt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                             const int64_t padding[2], struct rt_tensor **out, struct rt_tensor **indices_out);
/* Average pooling with zero padding; count_include_pad divides by the window size clipped to the
 * padded input, otherwise by the number of real input elements in the window (as PyTorch). */
enum rt_status rt_avg_pool2d(struct rt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                             const int64_t padding[2], bool count_include_pad, struct rt_tensor **out);
/* Output (N, C, oh, ow); bin i covers [floor(i*H/oh), ceil((i+1)*H/oh)) (likewise along W). */
enum rt_status rt_adaptive_avg_pool2d(struct rt_tensor *x, int64_t oh, int64_t ow, struct rt_tensor **out);

/* Batch normalisation over (N, C) or (N, C, ...) (statistics per channel, dim 1).
 * training: normalise with the batch mean and biased variance; running_mean/var (C), when given,
 * are updated in place (not recorded by autograd) as r = (1 - momentum) * r + momentum * s with the
 * unbiased variance. Evaluation: normalise with running_mean/var (both required). weight/bias (C)
 * may be NULL (1 and 0). Differentiable w.r.t. x, weight and bias (fused backward). */
enum rt_status rt_batch_norm(struct rt_tensor *x, struct rt_tensor *running_mean, struct rt_tensor *running_var,
                             struct rt_tensor *weight, struct rt_tensor *bias, bool training, double momentum,
                             double eps, struct rt_tensor **out);

/* Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p). The mask
 * comes from the counter-based generator g (NULL: the default), so a seed reproduces it exactly.
 * Identity (a new reference to x) when !training or p == 0. */
enum rt_status rt_dropout(struct rt_tensor *x, double p, bool training, struct rt_rng *g, struct rt_tensor **out);

/* x where x > 0, slope * x elsewhere. */
enum rt_status rt_leaky_relu(struct rt_tensor *x, double slope, struct rt_tensor **out);

/* --- losses --- */
enum rt_reduction { RT_REDUCE_MEAN, RT_REDUCE_SUM, RT_REDUCE_NONE };
#define RT_NO_IGNORE INT64_MIN

/* Cross entropy of logits (N, C) against 0-based i64 labels (N): fused log-softmax + NLL.
 * class_weights (C) or NULL; samples labelled ignore_index contribute 0 (RT_NO_IGNORE: none).
 * label_smoothing e in [0, 1] mixes the target with the uniform distribution as PyTorch 1.13:
 *   loss_i = (1 - e) * w[y_i] * -logp[y_i] + e / C * sum_j w[j] * -logp[j].
 * RT_REDUCE_MEAN divides the sum by the sum of w[y_i] over non-ignored samples (NaN when none),
 * RT_REDUCE_NONE returns the (N) per-sample losses (0 at ignored samples). Differentiable w.r.t.
 * logits only. A label outside [0, C) other than ignore_index is RT_ERR_ARG naming it and its row. */
enum rt_status rt_cross_entropy(struct rt_tensor *logits, struct rt_tensor *labels, struct rt_tensor *class_weights,
                                int64_t ignore_index, double label_smoothing, enum rt_reduction reduction,
                                struct rt_tensor **out);
/* Negative log-likelihood of log-probabilities logp (N, C): loss_i = -w[y_i] * logp[i, y_i];
 * same weights, ignore_index and reductions as rt_cross_entropy. */
enum rt_status rt_nll_loss(struct rt_tensor *logp, struct rt_tensor *labels, struct rt_tensor *class_weights,
                           int64_t ignore_index, enum rt_reduction reduction, struct rt_tensor **out);
/* (a - b)^2, a and b of the same shape, reduced (mean over all elements, sum) or not. */
enum rt_status rt_mse_loss(struct rt_tensor *a, struct rt_tensor *b, enum rt_reduction reduction,
                           struct rt_tensor **out);
/* How many rows of scores (N, C) have their largest score (the first of equal ones; a NaN beats
 * every number, as rt_argmax) at their label, labels (N) i64 counted from base (1 for Lua's): a 0-dim
 * tensor of scores' dtype on their device, in one kernel and without a wait. A label out of range is
 * a wrong prediction, not an error. No autograd. */
enum rt_status rt_count_correct(struct rt_tensor *scores, struct rt_tensor *labels, int64_t base,
                                struct rt_tensor **out);

#endif
