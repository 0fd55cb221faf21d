/* index_select, gather and scatter_add: index tensors are i64 and 0-based, checked here on their
 * device; rt_index_rebase makes them 0-based from another base (Lua's 1). */
#include <string.h>

#include "grad_fns.h"

/* Checks index against [0, limit) on its device (no wait: a GPU reports a bad value at the next one). */
static enum rt_status check_index(const char *name, struct rt_tensor *x, struct rt_tensor *index, int64_t limit,
                                  struct rt_tensor **contig)
{
    if (index->dtype != RT_I64)
        return rt_error(RT_ERR_DTYPE, "%s: index must be an i64 tensor, got %s", name, rt_dtype_name(index->dtype));
    enum rt_status st;
    *contig = NULL;
    RT_TRY(rt__same_device(name, x, index));
    RT_TRY(rt__contig_raw(index, contig));
    int64_t n = rt_tensor_numel(*contig);
    if (n > 0)
        RT_TRY(rt__backend(*contig)->check_index(name, "index", n, rt__ptr(*contig), 0, limit, RT_NO_IGNORE, NULL));
    return RT_OK;
done:
    rt_tensor_release(*contig);
    *contig = NULL;
    return st;
}

enum rt_status rt_index_rebase(struct rt_tensor *ix, int64_t base, int64_t limit, int64_t ignore, const char *op,
                               const char *what, struct rt_tensor **out)
{
    if (ix->dtype != RT_I64)
        return rt_error(RT_ERR_DTYPE, "%s: %s must be an i64 tensor, got %s", op, what, rt_dtype_name(ix->dtype));
    struct rt_tensor *c = NULL, *y = NULL;
    enum rt_status st;
    RT_TRY(rt__contig_raw(ix, &c));
    RT_TRY(rt_tensor_empty(RT_I64, rt_tensor_device(ix), ix->ndim, ix->shape, &y));
    int64_t n = rt_tensor_numel(ix);
    if (n > 0)
        RT_TRY(rt__backend(c)->check_index(op, what, n, rt__ptr(c), base, limit, ignore, rt__ptr(y)));
    *out = y, y = NULL;
done:
    rt_tensor_release(c);
    rt_tensor_release(y);
    return st;
}

static void split(const struct rt_tensor *t, int d, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < d; i++)
        *outer *= t->shape[i];
    for (int i = d + 1; i < t->ndim; i++)
        *inner *= t->shape[i];
}

static enum rt_status record_index_op(struct rt_tensor *y, const char *node_name, rt_vjp_fn vjp, int n,
                                      struct rt_tensor **in, struct rt_tensor *index, int d)
{
    if (!rt__needs_grad(n, in))
        return RT_OK;
    struct rt_node *node;
    enum rt_status st;
    RT_TRY(rt__record(y, node_name, vjp, n, in, &node));
    node->i[0] = d;
    RT_TRY(rt__save(node, index));
done:
    return st;
}

enum rt_status rt_index_select(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor **out)
{
    int d;
    enum rt_status st = rt__dim("rt_index_select", dim, x->ndim, &d);
    if (st != RT_OK)
        return st;
    if (x->ndim == 0 || index->ndim != 1)
        return rt_error(RT_ERR_SHAPE, "rt_index_select: needs a tensor with dims and a 1-D index (got %d-D index)",
                        index->ndim);
    struct rt_tensor *ix = NULL, *c = NULL, *y = NULL;
    int64_t shape[RT_MAX_DIMS], outer, inner;
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = index->shape[0];
    split(x, d, &outer, &inner);
    RT_TRY(check_index("rt_index_select", x, index, x->shape[d], &ix));
    RT_TRY(rt__contig_raw(x, &c));
    RT_TRY(rt_tensor_empty(x->dtype, x->storage->device, x->ndim, shape, &y));
    RT_TRY(rt__backend(c)->index_select(x->dtype, outer, x->shape[d], inner, rt__ptr(ix), shape[d], rt__ptr(c),
                                        rt__ptr(y)));
    RT_TRY(record_index_op(y, "IndexSelectBackward", rt__vjp_index_select, 1, &x, ix, d));
    *out = y, y = NULL;
done:
    rt_tensor_release(c);
    rt_tensor_release(ix);
    rt_tensor_release(y);
    return st;
}

enum rt_status rt_index_copy_(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor *src)
{
    static const char *op = "rt_index_copy_";
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    int d;
    enum rt_status st = rt__dim(op, dim, x->ndim, &d);
    if (st == RT_OK)
        st = rt__check_inplace(op, x);
    if (st != RT_OK)
        return st;
    if (index->ndim != 1)
        return rt_error(RT_ERR_SHAPE, "%s: needs a 1-D index, got %d-D", op, index->ndim);
    if (!rt_tensor_is_contiguous(x))
        return rt_error(RT_ERR_ARG, "%s: the destination must be contiguous (a buffer or a parameter)", op);
    if (src->dtype != x->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: src is %s but the destination is %s", op, rt_dtype_name(src->dtype),
                        rt_dtype_name(x->dtype));
    bool fits = src->ndim == x->ndim;
    for (int i = 0; fits && i < x->ndim; i++)
        fits = src->shape[i] == (i == d ? index->shape[0] : x->shape[i]);
    if (!fits)
        return rt_error(RT_ERR_SHAPE, "%s: src %s does not fit the destination %s with %lld indices along dim %d", op,
                        rt_shape_str(src->ndim, src->shape, a, sizeof a), rt_shape_str(x->ndim, x->shape, b, sizeof b),
                        (long long)index->shape[0], d);
    st = rt__same_device(op, x, src);
    if (st != RT_OK)
        return st;
    struct rt_tensor *ix = NULL, *c = NULL;
    int64_t outer, inner;
    split(x, d, &outer, &inner);
    RT_TRY(check_index(op, x, index, x->shape[d], &ix));
    RT_TRY(rt__contig_raw(src, &c));
    if (rt_tensor_numel(c) > 0)
        RT_TRY(rt__backend(x)->index_copy(x->dtype, outer, x->shape[d], inner, rt__ptr(ix), index->shape[0],
                                          rt__ptr(c), rt__ptr(x)));
    rt__bump_version(x);
done:
    rt_tensor_release(ix);
    rt_tensor_release(c);
    return st;
}

/* index must have x's shape in every dim except d. */
static enum rt_status check_gather_shape(const char *name, const struct rt_tensor *x, const struct rt_tensor *index,
                                         int d)
{
    bool ok = index->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++)
        ok = i == d || index->shape[i] == x->shape[i];
    if (ok)
        return RT_OK;
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    return rt_error(RT_ERR_SHAPE, "%s: index shape %s must match input shape %s except in dim %d", name,
                    rt_shape_str(index->ndim, index->shape, a, sizeof a), rt_shape_str(x->ndim, x->shape, b, sizeof b),
                    d);
}

enum rt_status rt_gather(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor **out)
{
    int d;
    enum rt_status st = rt__dim("rt_gather", dim, x->ndim, &d);
    if (st == RT_OK && x->ndim == 0)
        st = rt_error(RT_ERR_SHAPE, "rt_gather: cannot gather from a 0-dim tensor");
    if (st == RT_OK)
        st = check_gather_shape("rt_gather", x, index, d);
    if (st != RT_OK)
        return st;
    struct rt_tensor *ix = NULL, *c = NULL, *y = NULL;
    int64_t outer, inner;
    split(x, d, &outer, &inner);
    RT_TRY(check_index("rt_gather", x, index, x->shape[d], &ix));
    RT_TRY(rt__contig_raw(x, &c));
    RT_TRY(rt_tensor_empty(x->dtype, x->storage->device, index->ndim, index->shape, &y));
    RT_TRY(rt__backend(c)->gather(x->dtype, outer, x->shape[d], inner, index->shape[d], rt__ptr(ix), rt__ptr(c),
                                  rt__ptr(y)));
    RT_TRY(record_index_op(y, "GatherBackward", rt__vjp_gather, 1, &x, ix, d));
    *out = y, y = NULL;
done:
    rt_tensor_release(c);
    rt_tensor_release(ix);
    rt_tensor_release(y);
    return st;
}

enum rt_status rt_scatter_add(struct rt_tensor *x, int dim, struct rt_tensor *index, struct rt_tensor *src,
                              struct rt_tensor **out)
{
    int d;
    enum rt_status st = rt__dim("rt_scatter_add", dim, x->ndim, &d);
    if (st == RT_OK && x->ndim == 0)
        st = rt_error(RT_ERR_SHAPE, "rt_scatter_add: cannot scatter into a 0-dim tensor");
    if (st == RT_OK)
        st = check_gather_shape("rt_scatter_add", x, index, d);
    if (st == RT_OK && !rt_tensor_same_shape(index, src)) {
        char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
        st = rt_error(RT_ERR_SHAPE, "rt_scatter_add: src shape %s must equal index shape %s",
                      rt_shape_str(src->ndim, src->shape, a, sizeof a),
                      rt_shape_str(index->ndim, index->shape, b, sizeof b));
    }
    if (st == RT_OK && src->dtype != x->dtype)
        st = rt_error(RT_ERR_DTYPE, "rt_scatter_add: src dtype %s differs from %s", rt_dtype_name(src->dtype),
                      rt_dtype_name(x->dtype));
    if (st == RT_OK)
        st = rt__same_device("rt_scatter_add", x, src);
    if (st != RT_OK)
        return st;
    struct rt_tensor *ix = NULL, *cs = NULL, *y = NULL, *in[2] = {x, src};
    int64_t outer, inner;
    split(x, d, &outer, &inner);
    RT_TRY(check_index("rt_scatter_add", x, index, x->shape[d], &ix));
    RT_TRY(rt__contig_raw(src, &cs));
    bool was = rt_grad_set_enabled(false);
    st = rt_clone(x, &y);
    rt_grad_set_enabled(was);
    if (st != RT_OK)
        goto done;
    RT_TRY(rt__backend(y)->scatter_add(x->dtype, outer, x->shape[d], inner, index->shape[d], rt__ptr(ix),
                                       rt__ptr(cs), rt__ptr(y)));
    RT_TRY(record_index_op(y, "ScatterAddBackward", rt__vjp_scatter_add, 2, in, ix, d));
    *out = y, y = NULL;
done:
    rt_tensor_release(cs);
    rt_tensor_release(ix);
    rt_tensor_release(y);
    return st;
}
