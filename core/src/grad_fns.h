/* Vector-Jacobian products of every differentiable op (implemented in grad_fns.c).
 * Each takes the node (saved tensors, parameters) and the output gradient, and fills gin[i]
 * for the inputs that need a gradient (n->next[i] != NULL) with new references. Gradients in a
 * broadcast shape are summed back to the input's shape by the engine. */
#ifndef RETORT_GRAD_FNS_H
#define RETORT_GRAD_FNS_H

#include "internal.h"

#define RT_VJP(name) enum rt_status rt__vjp_##name(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)

RT_VJP(identity);   /* contiguous, clone, expand, add */
RT_VJP(to_device);  /* i[0] the input's device */
RT_VJP(reshape);    /* view, reshape, flatten, squeeze, unsqueeze */
RT_VJP(narrow);     /* i[0] dim, i[1] start */
RT_VJP(select);     /* i[0] dim, i[1] index */
RT_VJP(permute);    /* i[0..ndim-1] the permutation */
RT_VJP(to_dtype);
RT_VJP(neg);
RT_VJP(exp);        /* saved[0] = output */
RT_VJP(log);        /* saved[0] = input */
RT_VJP(sqrt);       /* saved[0] = output */
RT_VJP(abs);        /* saved[0] = input */
RT_VJP(relu);       /* saved[0] = output */
RT_VJP(sigmoid);    /* saved[0] = output */
RT_VJP(tanh);       /* saved[0] = output */
RT_VJP(reciprocal); /* saved[0] = output */
RT_VJP(pow);        /* saved[0] = input, s[0] exponent */
RT_VJP(clamp);      /* saved[0] = input, s[0] lo, s[1] hi */
RT_VJP(affine);     /* s[0] mul */
RT_VJP(sub);
RT_VJP(mul);        /* saved a, b */
RT_VJP(div);        /* saved a, b */
RT_VJP(minmax);     /* saved a, b, output: gradient to the selected operand (ties split) */
RT_VJP(where);      /* saved cond */
RT_VJP(sum);        /* i[0] dim (-1: all), i[1] keepdim */
RT_VJP(mean);       /* i[0] dim (-1: all), i[1] keepdim, s[0] count */
RT_VJP(logsumexp);  /* saved input, output; i[0] dim (-1: all), i[1] keepdim */
RT_VJP(norm);       /* saved input, output; s[0] p; i[0] dim (-1: all), i[1] keepdim */
RT_VJP(select_reduce); /* max/min along a dim: saved indices; i[0] dim, i[1] keepdim */
RT_VJP(extreme_all);   /* max_all/min_all: saved input, output (ties split evenly) */
RT_VJP(matmul);     /* saved a, b (2-D or batched 3-D after promotion); i[0]/i[1]: a/b were 1-D */
RT_VJP(linear);     /* saved x, w; has bias if n_inputs == 3 */
RT_VJP(softmax);    /* saved output; i[0] dim; s[0] 1/T; i[1] log */
RT_VJP(index_select); /* saved index; i[0] dim */
RT_VJP(gather);     /* saved index; i[0] dim */
RT_VJP(scatter_add); /* saved index; i[0] dim */
RT_VJP(cat);        /* i[0] dim; sizes along dim taken from in_shape */

#endif
