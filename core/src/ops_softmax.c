/* softmax(x / T) and log-softmax along a dim, computed stably by the backend. */
#include <math.h>

#include "grad_fns.h"

static enum rt_status softmax_impl(const char *name, bool log, struct rt_tensor *x, int dim, double T,
                                   struct rt_tensor **out)
{
    if (!(T > 0) || !isfinite(T))
        return rt_error(RT_ERR_ARG, "%s: temperature T must be a positive number, got %g", name, T);
    if (!rt_dtype_is_float(x->dtype))
        return rt__not_float(name, x->dtype);
    int d;
    enum rt_status st = rt__dim(name, dim, x->ndim, &d);
    if (st != RT_OK)
        return st;
    int64_t outer = 1, n = x->ndim ? x->shape[d] : 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++)
        inner *= x->shape[i];
    struct rt_tensor *c = NULL, *y = NULL;
    RT_TRY(rt__contig_raw(x, &c));
    RT_TRY(rt_tensor_empty_like(x, &y));
    if (n > 0)
        RT_TRY(rt__backend(c)->softmax(x->dtype, log, outer, n, inner, 1.0 / T, rt__ptr(c), rt__ptr(y)));
    if (rt__needs_grad(1, &x)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, log ? "LogSoftmaxBackward" : "SoftmaxBackward", rt__vjp_softmax, 1, &x, &node));
        node->i[0] = d;
        node->i[1] = log;
        node->s[0] = 1.0 / T;
        RT_TRY(rt__save(node, y));
    }
    *out = y, y = NULL;
done:
    rt_tensor_release(c);
    rt_tensor_release(y);
    return st;
}

enum rt_status rt_softmax(struct rt_tensor *x, int dim, double T, struct rt_tensor **out)
{
    return softmax_impl("rt_softmax", false, x, dim, T, out);
}

enum rt_status rt_log_softmax(struct rt_tensor *x, int dim, double T, struct rt_tensor **out)
{
    return softmax_impl("rt_log_softmax", true, x, dim, T, out);
}
