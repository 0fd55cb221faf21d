/* Leaky ReLU: x where x > 0, slope * x elsewhere (the gradient at 0 is slope, as PyTorch). */
#include <math.h>

#include "nn_internal.h"

static enum rt_status vjp_leaky_relu(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *x = n->saved[0], *gc = NULL, *gx = NULL;
    enum rt_status st;
    NN_TRY(rt__contig_raw(g, &gc));
    NN_TRY(rt_tensor_empty_like(x, &gx));
    NN_TRY(rt__backend(x)->leaky_relu_backward(x->dtype, rt_tensor_numel(x), n->s[0], rt__ptr(x), rt__ptr(gc),
                                                rt__ptr(gx)));
    gin[0] = gx, gx = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(gx);
    return st;
}

enum rt_status rt_leaky_relu(struct rt_tensor *x, double slope, struct rt_tensor **out)
{
    static const char *op = "rt_leaky_relu";
    if (!isfinite(slope))
        return rt_error(RT_ERR_ARG, "%s: slope must be finite, got %g", op, slope);
    enum rt_status st = rt__nn_float(op, "input", x);
    if (st == RT_OK)
        st = rt__nn_kernel(op, x, rt__backend(x)->leaky_relu);
    if (st != RT_OK)
        return st;
    struct rt_tensor *xc = NULL, *y = NULL;
    NN_TRY(rt__contig_raw(x, &xc));
    NN_TRY(rt_tensor_empty(x->dtype, rt_tensor_device(x), x->ndim, x->shape, &y));
    NN_TRY(rt__backend(x)->leaky_relu(x->dtype, rt_tensor_numel(x), slope, rt__ptr(xc), rt__ptr(y)));
    if (rt__needs_grad(1, &x)) {
        struct rt_node *node;
        NN_TRY(rt__record(y, "LeakyReluBackward", vjp_leaky_relu, 1, &x, &node));
        node->s[0] = slope;
        NN_TRY(rt__save(node, xc)); /* contiguous: the backward kernel reads it flat */
    }
done:
    rt_tensor_release(xc);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
