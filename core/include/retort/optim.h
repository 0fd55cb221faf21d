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

#endif
