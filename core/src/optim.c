/* Fused optimizer updates (see optim.h). */
#include <stdio.h>
#include <stdlib.h>

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

/* The checks of one parameter's update (nothing written). */
static enum rt_status check_sgd(const char *op, struct rt_tensor *p, struct rt_tensor *g, struct rt_tensor *buf,
                                const struct rt_sgd_opts *o)
{
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
    return st;
}

enum rt_status rt_sgd_update_many_(int k, struct rt_tensor *const *p, struct rt_tensor *const *g,
                                   struct rt_tensor *const *buf, const bool *first, const struct rt_sgd_opts *o)
{
    static const char *op = "rt_sgd_update_";
    if (k < 0)
        return rt_error(RT_ERR_ARG, "%s: %d parameters", op, k);
    for (int j = 0; j < k; j++) { /* every check before any write: a bad entry updates nothing */
        enum rt_status st = check_sgd(op, p[j], g[j], buf ? buf[j] : NULL, o);
        if (st != RT_OK) {
            if (k > 1) {
                char where[48];
                snprintf(where, sizeof where, "parameter %d of %d", j + 1, k);
                rt_error_prefix(where);
            }
            return st;
        }
    }
    struct rt_sgd_param *ps = malloc((size_t)(k > 0 ? k : 1) * sizeof *ps);
    if (!ps)
        return rt_error(RT_ERR_OOM, "%s: out of memory", op);
    enum rt_status st = RT_OK;
    /* one backend call per run of parameters on the same device with the same dtype */
    for (int j = 0; j < k && st == RT_OK;) {
        int e = j, m = 0;
        while (e < k && p[e]->dtype == p[j]->dtype && rt_tensor_device(p[e]) == rt_tensor_device(p[j])) {
            bool momentum = o->momentum != 0;
            ps[m++] = (struct rt_sgd_param){.n = rt_tensor_numel(p[e]), .g = rt__ptr(g[e]), .p = rt__ptr(p[e]),
                                            .buf = momentum ? rt__ptr(buf[e]) : NULL,
                                            .first = first ? first[e] : o->first};
            e++;
        }
        /* an optimizer step writes parameters in place by design and is never part of a graph */
        st = rt__backend(p[j])->sgd_update(p[j]->dtype, m, ps, o);
        for (int i = j; st == RT_OK && i < e; i++) {
            rt__bump_version(p[i]);
            if (o->momentum != 0)
                rt__bump_version(buf[i]);
        }
        j = e;
    }
    free(ps);
    return st;
}

enum rt_status rt_sgd_update_(struct rt_tensor *p, struct rt_tensor *g, struct rt_tensor *buf,
                              const struct rt_sgd_opts *o)
{
    return rt_sgd_update_many_(1, &p, &g, &buf, NULL, o);
}
