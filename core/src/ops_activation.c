/* Leaky ReLU: x where x > 0, slope * x elsewhere (the gradient at 0 is slope, as PyTorch). A case
 * of the element-wise families (RT_UN_LEAKY_RELU forward, RT_BIN_LEAKY_RELU_BW backward, the slope
 * carried as their parameter), so it has no kernels of its own. */
#include <math.h>

#include "nn_internal.h"

static enum rt_status vjp_leaky_relu(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    return rt__binary_param_raw("rt_leaky_relu backward", RT_BIN_LEAKY_RELU_BW, g, n->saved[0], n->s[0], &gin[0]);
}

enum rt_status rt_leaky_relu(struct rt_tensor *x, double slope, struct rt_tensor **out)
{
    static const char *op = "rt_leaky_relu";
    if (!isfinite(slope))
        return rt_error(RT_ERR_ARG, "%s: slope must be finite, got %g", op, slope);
    struct rt_tensor *y = NULL;
    enum rt_status st;
    RT_TRY(rt__nn_float(op, "input", x));
    RT_TRY(rt__unary_raw(RT_UN_LEAKY_RELU, x, slope, 0, &y));
    if (rt__needs_grad(1, &x)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "LeakyReluBackward", vjp_leaky_relu, 1, &x, &node));
        node->s[0] = slope;
        RT_TRY(rt__save(node, x));
    }
    *out = y, y = NULL;
done:
    rt_tensor_release(y);
    return st;
}
