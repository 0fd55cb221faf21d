/* Fused optimizer updates: one pass over a parameter, its gradient and its state instead of a
 * chain of in-place ops (each a full pass over memory). The Lua optimizers in
 * lua/retort/optim/ call these for contiguous parameters; formulas follow PyTorch. */
#ifndef RETORT_OPTIM_H
#define RETORT_OPTIM_H

#include "tensor.h"

struct rt_sgd_opts {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
    bool first; /* the momentum buffer is initialised to d on the first step */
};

/* torch.optim.SGD on one parameter, in place:
 *   d = g + weight_decay * p
 *   momentum != 0: buf = first ? d : momentum * buf + (1 - dampening) * d;  d = nesterov ? d + momentum * buf : buf
 *   p -= lr * d
 * p, g (and buf, required when momentum != 0) must be contiguous, of one float dtype and shape. */
enum rt_status rt_sgd_update_(struct rt_tensor *p, struct rt_tensor *g, struct rt_tensor *buf,
                              const struct rt_sgd_opts *o);
/* The same step for k parameters at once: one backend call per run of parameters sharing a device
 * and dtype (one launch on a GPU). buf may be NULL without momentum; first (k flags) says which
 * parameters take their first step, NULL: o->first for all. Every parameter is checked before
 * any is written; an error names the parameter by position. */
enum rt_status rt_sgd_update_many_(int k, struct rt_tensor *const *p, struct rt_tensor *const *g,
                                   struct rt_tensor *const *buf, const bool *first, const struct rt_sgd_opts *o);

struct rt_adam_opts {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad;
    bool decoupled; /* AdamW: p *= 1 - lr * weight_decay instead of adding weight_decay * p to g */
};

/* torch.optim.Adam / AdamW on k parameters at once, in place, with t = step[j] (>= 1, the count
 * including this step):
 *   decoupled: p *= 1 - lr * wd;   else g = g + wd * p
 *   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
 *   amsgrad: vmax = max(vmax, v), used in place of v below
 *   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * m, v (and vmax with amsgrad; else vmax may be NULL) are the state, of p's shape and dtype, all
 * contiguous. Same operations in the same order as the composed Lua step, so results agree to the
 * bit on the CPU. Every parameter is checked before any is written. */
enum rt_status rt_adam_update_many_(int k, struct rt_tensor *const *p, struct rt_tensor *const *g,
                                    struct rt_tensor *const *m, struct rt_tensor *const *v,
                                    struct rt_tensor *const *vmax, const int64_t *step, const struct rt_adam_opts *o);

#endif
