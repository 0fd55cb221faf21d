/* Distillation loss primitives (DESIGN.md §4): fused forward and backward, sums in double, stable
 * for extreme logits (everything goes through log-softmax with the row maximum subtracted). */
#ifndef RETORT_LOSS_H
#define RETORT_LOSS_H

#include "tensor.h"

/* Options of rt_kd_loss. T > 0 (finite), alpha in [0, 1]; ignore_index is a 0-based label or
 * RT_NO_IGNORE (INT64_MIN); teacher_probs: the teacher tensor holds probabilities at temperature T
 * (rows of softmax(t / T)) rather than logits. */
struct rt_kd_opts {
    double T, alpha;
    int64_t ignore_index;
    bool teacher_probs;
};

/* The parts of a KD loss, for logging: means over the kept samples, unweighted. 0-dim tensors on the
 * loss's device (reading one waits for a GPU); the caller releases them. */
struct rt_kd_terms {
    struct rt_tensor *kl;   /* KL(p_t || softmax(s / T)), not scaled by T^2 */
    struct rt_tensor *ce;   /* hard-label cross-entropy of s at T = 1 (0 without labels) */
    struct rt_tensor *kept; /* samples not ignored (a count in s's dtype) */
    struct rt_tensor *kl_scaled; /* kl * T^2, the soft term's scale in the loss */
};

/* Hinton knowledge distillation of student logits s (N, C) from teacher t (N, C):
 *   l_i  = alpha * T^2 * KL(p_t,i || softmax(s_i / T)) + (1 - alpha) * CE(s_i, y_i)
 *   loss = sum_i w_i * l_i / kept
 * KL summed over classes; p_t = softmax(t / T), or t itself with teacher_probs (0 * log 0 = 0).
 * labels (N) 0-based i64, or NULL (then alpha must be 1); samples labelled ignore_index add nothing
 * and are not counted in kept (all ignored: NaN). weights (N) per-sample weights or NULL (all 1):
 * curricula scale samples without changing the divisor. out: a 0-dim tensor differentiable w.r.t. s
 * only (the teacher is never part of the graph). terms may be NULL. */
enum rt_status rt_kd_loss(struct rt_tensor *s, struct rt_tensor *t, struct rt_tensor *labels,
                          struct rt_tensor *weights, const struct rt_kd_opts *opts, struct rt_tensor **out,
                          struct rt_kd_terms *terms);

/* Attention map of activation-based attention transfer (Zagoruyko & Komodakis 2017) of f (N, C, H, W):
 *   a_n = mean_c f[n, c]^p  (flattened to H*W),   out_n = a_n / max(||a_n||_2, 1e-12)
 * (F.normalize). out (N, H*W), differentiable w.r.t. f; one pass over f, no (N, C, H, W) temporary.
 * p > 0; for non-integer p, f must be >= 0 (a negative base has no real power). */
enum rt_status rt_attention_map(struct rt_tensor *f, double p, struct rt_tensor **out);

/* Batch pairwise matrices of x (N, D) for the relational losses, (N, N), differentiable w.r.t. x:
 *   RT_PAIR_GRAM       x x^T                                              (SP)
 *   RT_PAIR_COSINE     xh xh^T,  xh_i = x_i / (||x_i|| + eps)             (PKT's cosine kernel)
 *   RT_PAIR_DISTANCE   sqrt(max(||x_i||^2 + ||x_j||^2 - 2 x_i . x_j, eps)), 0 on the diagonal (RKD)
 * One graph node each, with the backward written out: GRAM dx = (g + g^T) x; COSINE dx = dxh / s -
 * xh rowsum(dxh xh) / ||x|| with dxh = (g + g^T) xh, s = ||x|| + eps; DISTANCE S = g / (2 d) where
 * the clamp and the diagonal let it through, dx = 2 (x rowsum(S + S^T) - (S + S^T) x). */
enum rt_pairwise { RT_PAIR_GRAM = 0, RT_PAIR_COSINE, RT_PAIR_DISTANCE };
enum rt_status rt_pairwise(struct rt_tensor *x, enum rt_pairwise kind, double eps, struct rt_tensor **out);

#endif
