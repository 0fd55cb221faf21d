/* Inverted dropout. The keep mask is drawn with rt_bernoulli_ from the counter-based generator, so
 * a seed reproduces it on any thread count; kept elements are scaled by 1/(1-p) so the expectation
 * is unchanged and evaluation is the identity. */
#include "nn_internal.h"

static enum rt_status vjp_dropout(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    return rt__binary_raw("DropoutBackward", RT_BIN_MUL, g, n->saved[0], &gin[0]);
}

enum rt_status rt_dropout(struct rt_tensor *x, double p, bool training, struct rt_rng *g, struct rt_tensor **out)
{
    static const char *op = "rt_dropout";
    if (!(p >= 0 && p <= 1))
        return rt_error(RT_ERR_ARG, "%s: p must be in [0, 1], got %g", op, p);
    enum rt_status st = rt__nn_float(op, "input", x);
    if (st != RT_OK)
        return st;
    if (!training || p == 0) {
        rt_tensor_retain(x);
        *out = x;
        return RT_OK;
    }
    struct rt_tensor *mask = NULL, *y = NULL;
    NN_TRY(rt_tensor_empty(x->dtype, rt_tensor_device(x), x->ndim, x->shape, &mask));
    if (p < 1) {
        NN_TRY(rt_bernoulli_(mask, g, 1.0 - p));
        NN_TRY(rt_mul_scalar_(mask, 1.0 / (1.0 - p)));
    } else
        NN_TRY(rt_zero_(mask));
    NN_TRY(rt__binary_raw(op, RT_BIN_MUL, x, mask, &y));
    if (rt__needs_grad(1, &x)) {
        struct rt_node *node;
        NN_TRY(rt__record(y, "DropoutBackward", vjp_dropout, 1, &x, &node));
        NN_TRY(rt__save(node, mask));
    }
done:
    rt_tensor_release(mask);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
