/* Reverse-mode autograd: an eager tape. Ops that see an input requiring grad record a node
 * (the op's VJP, its inputs' nodes, saved tensors with their storage versions). Backward walks
 * a non-recursive topological order from the root and accumulates into leaves' .grad. */
#ifndef RETORT_AUTOGRAD_H
#define RETORT_AUTOGRAD_H

#include "tensor.h"

/* Mark a leaf as requiring grad (float dtypes only). */
enum rt_status rt_requires_grad_(struct rt_tensor *t, bool on);
/* Backward from root. grad may be NULL when root has one element (then it is 1).
 * retain_graph keeps saved tensors so backward can run again through the same graph. */
enum rt_status rt_backward(struct rt_tensor *root, struct rt_tensor *grad, bool retain_graph);

/* Grad mode (per thread): returns the previous setting. */
bool rt_grad_set_enabled(bool on);
bool rt_grad_enabled(void);

/* The producing op's name ("MatmulBackward") or NULL for leaves. */
const char *rt_tensor_grad_fn_name(const struct rt_tensor *t);
/* Drop t's accumulated gradient. */
void rt_tensor_zero_grad(struct rt_tensor *t);

/* Hook called (on this thread) each time a backward has finished a leaf's gradient: after it was added to
 * leaf->grad, which holds it whole for this backward. Data-parallel training starts exchanging a bucket of
 * gradients as soon as all of its leaves are ready (retort/dist.h). An error status stops the backward.
 * fn NULL removes the hook. */
typedef enum rt_status (*rt_grad_ready_fn)(void *ctx, struct rt_tensor *leaf);
void rt_autograd_set_grad_ready_hook(rt_grad_ready_fn fn, void *ctx);

#endif
