/* Concatenation and stacking. */
#include <stdlib.h>
#include <string.h>

#include "grad_fns.h"

enum rt_status rt_cat(int n, struct rt_tensor *const *xs, int dim, struct rt_tensor **out)
{
    if (n < 1 || !xs)
        return rt_error(RT_ERR_ARG, "rt_cat: needs at least one tensor");
    const struct rt_tensor *x0 = xs[0];
    if (x0->ndim == 0)
        return rt_error(RT_ERR_SHAPE, "rt_cat: cannot concatenate 0-dim tensors (use stack)");
    int d;
    enum rt_status st = rt__dim("rt_cat", dim, x0->ndim, &d);
    if (st != RT_OK)
        return st;
    int64_t shape[RT_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const struct rt_tensor *x = xs[i];
        char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
        if (x->dtype != x0->dtype)
            return rt_error(RT_ERR_DTYPE, "rt_cat: tensor %d of %d has dtype %s, the first has %s (counted from 1)", i + 1,
                            n, rt_dtype_name(x->dtype), rt_dtype_name(x0->dtype));
        if ((st = rt__same_device("rt_cat", x0, x)) != RT_OK)
            return st;
        bool ok = x->ndim == x0->ndim;
        for (int k = 0; ok && k < x->ndim; k++)
            ok = k == d || x->shape[k] == x0->shape[k];
        if (!ok)
            return rt_error(RT_ERR_SHAPE,
                            "rt_cat: tensor %d of %d has shape %s, which does not match the first's %s outside dim %d "
                            "(tensors and dims counted from 1)",
                            i + 1, n, rt_shape_str(x->ndim, x->shape, a, sizeof a),
                            rt_shape_str(x0->ndim, x0->shape, b, sizeof b), d + 1);
        shape[d] += x->shape[d];
    }
    struct rt_tensor *y = NULL, *part = NULL;
    RT_TRY(rt_tensor_empty(x0->dtype, x0->storage->device, x0->ndim, shape, &y));
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t pshape[RT_MAX_DIMS];
        memcpy(pshape, shape, sizeof pshape);
        pshape[d] = xs[i]->shape[d];
        RT_TRY(rt__alias(y, y->ndim, pshape, y->stride, at * y->stride[d], &part));
        struct rt_strided dst = rt__strided(part), src = rt__strided(xs[i]);
        RT_TRY(rt__backend(y)->copy(&dst, y->dtype, &src, xs[i]->dtype));
        rt_tensor_release(part), part = NULL;
        at += xs[i]->shape[d];
    }
    if (rt__needs_grad(n, xs)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "CatBackward", rt__vjp_cat, n, xs, &node));
        node->i[0] = d;
    }
    *out = y, y = NULL;
done:
    rt_tensor_release(part);
    rt_tensor_release(y);
    return st;
}

enum rt_status rt_stack(int n, struct rt_tensor *const *xs, int dim, struct rt_tensor **out)
{
    if (n < 1 || !xs)
        return rt_error(RT_ERR_ARG, "rt_stack: needs at least one tensor");
    for (int i = 1; i < n; i++)
        if (!rt_tensor_same_shape(xs[i], xs[0])) {
            char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
            return rt_error(RT_ERR_SHAPE, "rt_stack: tensor %d of %d has shape %s, the first has %s (counted from 1)",
                            i + 1, n, rt_shape_str(xs[i]->ndim, xs[i]->shape, a, sizeof a),
                            rt_shape_str(xs[0]->ndim, xs[0]->shape, b, sizeof b));
        }
    int d;
    enum rt_status st = rt__dim("rt_stack", dim, xs[0]->ndim + 1, &d);
    if (st != RT_OK)
        return st;
    struct rt_tensor **us = calloc((size_t)n, sizeof *us);
    if (!us)
        return rt_error(RT_ERR_OOM, "rt_stack: out of memory");
    for (int i = 0; i < n; i++)
        RT_TRY(rt_unsqueeze(xs[i], d, &us[i]));
    RT_TRY(rt_cat(n, us, d, out));
done:
    rt__release_all(n, us);
    free(us);
    if (st != RT_OK && !strstr(rt_error_msg(), "rt_stack"))
        rt_error_prefix("rt_stack");
    return st;
}
