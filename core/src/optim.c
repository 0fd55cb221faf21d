/* Fused optimizer updates (see optim.h). */
#include "internal.h"
#include "retort/optim.h"

static enum rt_status check_operand(const char *op, const char *what, const struct rt_tensor *p,
                                    const struct rt_tensor *t)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (!rt_tensor_same_shape(p, t))
        return rt_error(RT_ERR_SHAPE, "%s: %s shape %s differs from the parameter's %s", op, what,
                        rt_shape_str(t->ndim, t->shape, a, sizeof a), rt_shape_str(p->ndim, p->shape, b, sizeof b));
    if (t->dtype != p->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: %s dtype %s differs from the parameter's %s", op, what,
                        rt_dtype_name(t->dtype), rt_dtype_name(p->dtype));
    if (!rt_tensor_is_contiguous(t))
        return rt_error(RT_ERR_ARG, "%s: %s must be contiguous", op, what);
    if (t->storage == p->storage) /* the kernel reads and writes them as separate arrays */
        return rt_error(RT_ERR_ARG, "%s: %s shares the parameter's storage", op, what);
    return rt__same_device(op, p, t);
}

enum rt_status rt_sgd_update_(struct rt_tensor *p, struct rt_tensor *g, struct rt_tensor *buf,
                              const struct rt_sgd_opts *o)
{
    static const char *op = "rt_sgd_update_";
    if (!rt_dtype_is_float(p->dtype))
        return rt_error(RT_ERR_DTYPE, "%s: parameters must be float, got %s", op, rt_dtype_name(p->dtype));
    if (!rt_tensor_is_contiguous(p))
        return rt_error(RT_ERR_ARG, "%s: the parameter must be contiguous", op);
    enum rt_status st = check_operand(op, "gradient", p, g);
    if (st == RT_OK && o->momentum != 0) {
        if (!buf)
            return rt_error(RT_ERR_ARG, "%s: momentum %g needs a momentum buffer", op, o->momentum);
        st = check_operand(op, "momentum buffer", p, buf);
        if (st == RT_OK && buf->storage == g->storage)
            return rt_error(RT_ERR_ARG, "%s: the momentum buffer shares the gradient's storage", op);
    }
    if (st != RT_OK)
        return st;
    /* an optimizer step writes parameters in place by design and is never part of a graph */
    st = rt__backend(p)->sgd_update(p->dtype, rt_tensor_numel(p), rt__ptr(g), rt__ptr(p),
                                    o->momentum != 0 ? rt__ptr(buf) : NULL, o);
    if (st == RT_OK) {
        rt__bump_version(p);
        if (buf && o->momentum != 0)
            rt__bump_version(buf);
    }
    return st;
}
