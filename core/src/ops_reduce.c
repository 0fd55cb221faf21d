/* Reductions along one dim or over all elements. */
#include <math.h>
#include <string.h>

#include "grad_fns.h"

#define RT_DIM_ALL (-1000)

/* Reduce x over dim (or all elements when dim == RT_DIM_ALL) without autograd. */
enum rt_status rt__reduce_raw(const char *name, enum rt_reduce_op op, struct rt_tensor *x, int dim, bool keepdim,
                              double p, struct rt_tensor **out, struct rt_tensor **idx)
{
    int64_t outer = 1, n, inner = 1;
    int64_t shape[RT_MAX_DIMS];
    int ndim = 0;
    enum rt_status st;
    if (dim == RT_DIM_ALL) {
        n = rt_tensor_numel(x);
    } else {
        int d;
        st = rt__dim(name, dim, x->ndim, &d);
        if (st != RT_OK)
            return st;
        if (x->ndim == 0) {
            n = 1;
        } else {
            for (int i = 0; i < d; i++)
                outer *= x->shape[i];
            n = x->shape[d];
            for (int i = d + 1; i < x->ndim; i++)
                inner *= x->shape[i];
            for (int i = 0; i < x->ndim; i++)
                if (i != d)
                    shape[ndim++] = x->shape[i];
                else if (keepdim)
                    shape[ndim++] = 1;
        }
    }
    if ((op == RT_RED_MAX || op == RT_RED_MIN) && n == 0)
        return rt_error(RT_ERR_SHAPE, "%s: cannot take the %s of an empty dimension", name,
                        op == RT_RED_MAX ? "max" : "min");
    bool float_only = op == RT_RED_MEAN || op == RT_RED_LOGSUMEXP || op == RT_RED_NORM;
    if (float_only && !rt_dtype_is_float(x->dtype))
        return rt__not_float(name, x->dtype);
    struct rt_tensor *c = NULL, *y = NULL, *ix = NULL;
    RT_TRY(rt__contig_raw(x, &c));
    RT_TRY(rt_tensor_empty(x->dtype, x->storage->device, ndim, shape, &y));
    if (idx)
        RT_TRY(rt_tensor_empty(RT_I64, x->storage->device, ndim, shape, &ix));
    RT_TRY(rt__backend(c)->reduce(op, x->dtype, outer, n, inner, rt__ptr(c), rt__ptr(y), ix ? rt__ptr(ix) : NULL,
                                  p));
    *out = y, y = NULL;
    if (idx)
        *idx = ix, ix = NULL;
done:
    rt_tensor_release(c);
    rt_tensor_release(y);
    rt_tensor_release(ix);
    return st;
}

/* A reduction with autograd. save: bit 1 input, bit 2 output, bit 4 indices. */
static enum rt_status reduce(const char *name, const char *node_name, enum rt_reduce_op op, rt_vjp_fn vjp, int save,
                             struct rt_tensor *x, int dim, bool keepdim, double p, struct rt_tensor **out,
                             struct rt_tensor **idx_out)
{
    struct rt_tensor *y = NULL, *idx = NULL;
    bool want_idx = idx_out || (save & 4);
    enum rt_status st;
    RT_TRY(rt__reduce_raw(name, op, x, dim, keepdim, p, &y, want_idx ? &idx : NULL));
    if (vjp && rt__needs_grad(1, &x)) {
        struct rt_node *n;
        RT_TRY(rt__record(y, node_name, vjp, 1, &x, &n));
        int d = 0;
        if (dim != RT_DIM_ALL)
            rt__dim(name, dim, x->ndim, &d);
        n->i[0] = dim == RT_DIM_ALL || x->ndim == 0 ? -1 : d;
        n->i[1] = keepdim;
        n->s[0] = op == RT_RED_NORM ? p : (double)(rt_tensor_numel(x) / (rt_tensor_numel(y) ? rt_tensor_numel(y) : 1));
        if (save & 1)
            RT_TRY(rt__save(n, x));
        if (save & 2)
            RT_TRY(rt__save(n, y));
        if (save & 4)
            RT_TRY(rt__save(n, idx));
    }
    *out = y, y = NULL;
    if (idx_out)
        *idx_out = idx, idx = NULL;
done:
    rt_tensor_release(y);
    rt_tensor_release(idx);
    return st;
}

enum rt_status rt_sum(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out)
{
    return reduce("rt_sum", "SumBackward", RT_RED_SUM, rt__vjp_sum, 0, x, dim, keepdim, 0, out, NULL);
}
enum rt_status rt_mean(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out)
{
    return reduce("rt_mean", "MeanBackward", RT_RED_MEAN, rt__vjp_mean, 0, x, dim, keepdim, 0, out, NULL);
}
enum rt_status rt_logsumexp(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out)
{
    return reduce("rt_logsumexp", "LogsumexpBackward", RT_RED_LOGSUMEXP, rt__vjp_logsumexp, 3, x, dim, keepdim, 0,
                  out, NULL);
}
enum rt_status rt_norm(struct rt_tensor *x, double p, int dim, bool keepdim, struct rt_tensor **out)
{
    if (!(p > 0))
        return rt_error(RT_ERR_ARG, "rt_norm: p must be positive, got %g", p);
    return reduce("rt_norm", "NormBackward", RT_RED_NORM, rt__vjp_norm, 3, x, dim, keepdim, p, out, NULL);
}

static enum rt_status extreme(const char *name, const char *node, enum rt_reduce_op op, struct rt_tensor *x, int dim,
                              bool keepdim, struct rt_tensor **values, struct rt_tensor **indices)
{
    struct rt_tensor *v, *ix;
    enum rt_status st = reduce(name, node, op, rt__vjp_select_reduce, 4, x, dim, keepdim, 0, &v, &ix);
    if (st != RT_OK)
        return st;
    if (values)
        *values = v;
    else
        rt_tensor_release(v);
    if (indices)
        *indices = ix;
    else
        rt_tensor_release(ix);
    return RT_OK;
}

enum rt_status rt_max(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **values,
                      struct rt_tensor **indices)
{
    return extreme("rt_max", "MaxBackward", RT_RED_MAX, x, dim, keepdim, values, indices);
}
enum rt_status rt_min(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **values,
                      struct rt_tensor **indices)
{
    return extreme("rt_min", "MinBackward", RT_RED_MIN, x, dim, keepdim, values, indices);
}
enum rt_status rt_argmax(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out)
{
    struct rt_tensor *v;
    enum rt_status st = rt__reduce_raw("rt_argmax", RT_RED_MAX, x, dim, keepdim, 0, &v, out);
    if (st == RT_OK)
        rt_tensor_release(v);
    return st;
}
enum rt_status rt_argmin(struct rt_tensor *x, int dim, bool keepdim, struct rt_tensor **out)
{
    struct rt_tensor *v;
    enum rt_status st = rt__reduce_raw("rt_argmin", RT_RED_MIN, x, dim, keepdim, 0, &v, out);
    if (st == RT_OK)
        rt_tensor_release(v);
    return st;
}

enum rt_status rt_sum_all(struct rt_tensor *x, struct rt_tensor **out)
{
    return reduce("rt_sum", "SumBackward", RT_RED_SUM, rt__vjp_sum, 0, x, RT_DIM_ALL, false, 0, out, NULL);
}
enum rt_status rt_mean_all(struct rt_tensor *x, struct rt_tensor **out)
{
    return reduce("rt_mean", "MeanBackward", RT_RED_MEAN, rt__vjp_mean, 0, x, RT_DIM_ALL, false, 0, out, NULL);
}
enum rt_status rt_logsumexp_all(struct rt_tensor *x, struct rt_tensor **out)
{
    return reduce("rt_logsumexp", "LogsumexpBackward", RT_RED_LOGSUMEXP, rt__vjp_logsumexp, 3, x, RT_DIM_ALL, false,
                  0, out, NULL);
}
enum rt_status rt_norm_all(struct rt_tensor *x, double p, struct rt_tensor **out)
{
    if (!(p > 0))
        return rt_error(RT_ERR_ARG, "rt_norm: p must be positive, got %g", p);
    return reduce("rt_norm", "NormBackward", RT_RED_NORM, rt__vjp_norm, 3, x, RT_DIM_ALL, false, p, out, NULL);
}
enum rt_status rt_max_all(struct rt_tensor *x, struct rt_tensor **out)
{
    return reduce("rt_max", "MaxBackward", RT_RED_MAX, rt__vjp_extreme_all, 3, x, RT_DIM_ALL, false, 0, out, NULL);
}
enum rt_status rt_min_all(struct rt_tensor *x, struct rt_tensor **out)
{
    return reduce("rt_min", "MinBackward", RT_RED_MIN, rt__vjp_extreme_all, 3, x, RT_DIM_ALL, false, 0, out, NULL);
}

/* Sum of x over the dims [d0, d1) at once, viewed as (outer, n, inner), reshaped to shape: one pass
 * (and one reduction kernel) where summing dim by dim would make a pass and a temporary per dim. */
static enum rt_status sum_run(struct rt_tensor *x, int d0, int d1, int ndim, const int64_t *shape,
                              struct rt_tensor **out)
{
    int64_t dims[3] = {1, 1, 1};
    for (int d = 0; d < x->ndim; d++)
        dims[d < d0 ? 0 : d < d1 ? 1 : 2] *= x->shape[d];
    struct rt_tensor *v = NULL, *s = NULL;
    enum rt_status st = rt_reshape(x, 3, dims, &v);
    if (st == RT_OK)
        st = rt_sum(v, 1, false, &s);
    if (st == RT_OK)
        st = rt_reshape(s, ndim, shape, out);
    rt_tensor_release(v);
    rt_tensor_release(s);
    return st;
}

enum rt_status rt_sum_to_shape(struct rt_tensor *x, int ndim, const int64_t *shape, struct rt_tensor **out)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (ndim > x->ndim)
        goto bad;
    /* The dims of x that are summed: the leading ones shape lacks, and those where shape has 1. When
     * they are one run of two or more neighbours (a bias (C) added over (N, T, C), a scale (1, 1, C)
     * over the same), they are summed in one pass; otherwise dim by dim below. */
    int first = -1, last = -1, runs = 0;
    for (int d = 0; d < x->ndim; d++) {
        int t = d - (x->ndim - ndim);
        bool summed = t < 0 || (x->shape[d] != shape[t] && shape[t] == 1);
        if (t >= 0 && x->shape[d] != shape[t] && shape[t] != 1)
            goto bad;
        if (summed && (last != d - 1 || first < 0)) {
            runs++;
            first = d;
        }
        if (summed)
            last = d;
    }
    if (runs == 1 && last > first)
        return sum_run(x, first, last + 1, ndim, shape, out);
    struct rt_tensor *cur = x;
    rt_tensor_retain(cur);
    int lead = x->ndim - ndim;
    for (int i = 0; i < lead; i++) { /* drop leading broadcast dims */
        struct rt_tensor *s;
        enum rt_status st = rt_sum(cur, 0, false, &s);
        rt_tensor_release(cur);
        if (st != RT_OK)
            return st;
        cur = s;
    }
    for (int i = 0; i < ndim; i++) {
        if (cur->shape[i] == shape[i])
            continue;
        if (shape[i] != 1) {
            rt_tensor_release(cur);
            goto bad;
        }
        struct rt_tensor *s;
        enum rt_status st = rt_sum(cur, i, true, &s);
        rt_tensor_release(cur);
        if (st != RT_OK)
            return st;
        cur = s;
    }
    *out = cur;
    return RT_OK;
bad:
    return rt_error(RT_ERR_SHAPE, "rt_sum_to_shape: cannot sum shape %s down to %s",
                    rt_shape_str(x->ndim, x->shape, a, sizeof a), rt_shape_str(ndim, shape, b, sizeof b));
}
