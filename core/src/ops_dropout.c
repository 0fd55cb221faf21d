/* Inverted dropout in one kernel. The keep mask is drawn as rt_bernoulli_ draws it (uniform f64
 * values of the counter-based generator below 1 - p), so a seed reproduces it on any thread count
 * and device; kept elements are scaled by 1/(1-p) so the expectation is unchanged and evaluation is
 * the identity. */
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
    struct rt_tensor *xc = NULL, *mask = NULL, *y = NULL;
    RT_TRY(rt__nn_kernel(op, x, rt__backend(x)->dropout));
    RT_TRY(rt__contig_raw(x, &xc));
    RT_TRY(rt_tensor_empty_like(xc, &mask));
    RT_TRY(rt_tensor_empty_like(xc, &y));
    if (!g)
        g = rt_rng_default();
    int64_t n = rt_tensor_numel(xc);
    /* p == 1 drops everything and draws nothing: keep 0 makes every mask value 0 */
    if (n > 0)
        RT_TRY(rt__backend(x)->dropout(x->dtype, n, g->seed, g->offset, 1.0 - p, p < 1 ? 1.0 / (1.0 - p) : 0.0,
                                       rt__ptr(xc), rt__ptr(y), rt__ptr(mask)));
    if (p < 1)
        g->offset += (uint64_t)n;
    if (rt__needs_grad(1, &x)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "DropoutBackward", vjp_dropout, 1, &x, &node));
        RT_TRY(rt__save(node, mask));
    }
done:
    rt_tensor_release(xc);
    rt_tensor_release(mask);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
