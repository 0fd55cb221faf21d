/* View ops: new geometry over the same storage, differentiable. */
#include <stdlib.h>
#include <string.h>

#include "grad_fns.h"

enum rt_status rt__alias(const struct rt_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                         int64_t offset, struct rt_tensor **out)
{
    struct rt_tensor *v = rt__tensor_struct();
    if (!v)
        return rt_error(RT_ERR_OOM, "out of memory allocating a tensor view");
    v->dtype = t->dtype;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        v->shape[i] = shape[i];
        v->stride[i] = stride[i];
    }
    v->offset = offset;
    v->storage = t->storage;
    t->storage->refcount++;
    *out = v;
    return RT_OK;
}

/* Wrap a freshly made alias with its autograd node. */
static enum rt_status finish_view(struct rt_tensor *t, struct rt_tensor *v, const char *name, rt_vjp_fn vjp,
                                  const int64_t *params, int nparams, struct rt_tensor **out)
{
    if (rt__needs_grad(1, &t)) {
        struct rt_node *n;
        enum rt_status st = rt__record(v, name, vjp, 1, &t, &n);
        if (st != RT_OK) {
            rt_tensor_release(v);
            return st;
        }
        for (int i = 0; i < nparams; i++)
            n->i[i] = params[i];
    }
    *out = v;
    return RT_OK;
}

/* Strides for viewing t as shape without copying, or false (PyTorch's computeStride idea:
 * each run of dims that is contiguous in memory may be re-split freely). */
static bool view_strides(const struct rt_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t numel = rt_tensor_numel(t);
    if (numel == 0 || rt_tensor_is_contiguous(t)) {
        rt__contiguous_strides(ndim, shape, stride);
        return true;
    }
    int vi = ndim - 1;
    int64_t base = t->stride[t->ndim - 1], tensor_numel = 1, view_numel = 1;
    for (int ti = t->ndim - 1; ti >= 0; ti--) {
        tensor_numel *= t->shape[ti];
        bool chunk_ends = ti == 0 || (t->shape[ti - 1] != 1 && t->stride[ti - 1] != tensor_numel * base);
        if (!chunk_ends)
            continue;
        while (vi >= 0 && (view_numel < tensor_numel || shape[vi] == 1)) {
            stride[vi] = view_numel * base;
            view_numel *= shape[vi];
            vi--;
        }
        if (view_numel != tensor_numel)
            return false;
        if (ti > 0) {
            base = t->stride[ti - 1];
            tensor_numel = view_numel = 1;
        }
    }
    if (vi != -1)
        return false;
    return true;
}

static enum rt_status resolve_shape(const char *op, const struct rt_tensor *t, int ndim, const int64_t *shape,
                                    int64_t *resolved)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (ndim < 0 || ndim > RT_MAX_DIMS)
        return rt_error(RT_ERR_SHAPE, "%s: %d dims requested, at most %d are supported", op, ndim, RT_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0)
                return rt_error(RT_ERR_SHAPE, "%s: only one dim may be -1 in %s", op,
                                rt_shape_str(ndim, shape, a, sizeof a));
            infer = i;
        } else if (shape[i] < 0) {
            return rt_error(RT_ERR_SHAPE, "%s: invalid size %lld", op, (long long)shape[i]);
        } else if (__builtin_mul_overflow(known, shape[i], &known)) {
            return rt_error(RT_ERR_SHAPE, "%s: shape %s has too many elements", op, rt_shape_str(ndim, shape, a, sizeof a));
        }
        resolved[i] = shape[i];
    }
    int64_t numel = rt_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return rt_error(RT_ERR_SHAPE, "%s: shape %s is invalid for %lld elements of %s", op,
                            rt_shape_str(ndim, shape, a, sizeof a), (long long)numel,
                            rt_shape_str(t->ndim, t->shape, b, sizeof b));
        resolved[infer] = numel / known;
        known *= resolved[infer];
    }
    if (known != numel)
        return rt_error(RT_ERR_SHAPE, "%s: shape %s is invalid for input of shape %s (%lld elements)", op,
                        rt_shape_str(ndim, shape, a, sizeof a), rt_shape_str(t->ndim, t->shape, b, sizeof b),
                        (long long)numel);
    return rt__check_shape(op, ndim, resolved); /* an empty view's strides must not overflow either */
}

static enum rt_status view_impl(const char *op, struct rt_tensor *t, int ndim, const int64_t *shape, bool may_copy,
                                struct rt_tensor **out)
{
    int64_t rs[RT_MAX_DIMS], stride[RT_MAX_DIMS];
    enum rt_status st = resolve_shape(op, t, ndim, shape, rs);
    if (st != RT_OK)
        return st;
    if (!view_strides(t, ndim, rs, stride)) {
        if (!may_copy) {
            char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
            return rt_error(RT_ERR_SHAPE,
                            "%s: cannot view a non-contiguous tensor of shape %s as %s; call contiguous() first "
                            "or use reshape",
                            op, rt_shape_str(t->ndim, t->shape, a, sizeof a), rt_shape_str(ndim, rs, b, sizeof b));
        }
        struct rt_tensor *c;
        st = rt_contiguous(t, &c);
        if (st != RT_OK)
            return st;
        st = view_impl(op, c, ndim, rs, false, out);
        rt_tensor_release(c);
        return st;
    }
    struct rt_tensor *v;
    st = rt__alias(t, ndim, rs, stride, t->offset, &v);
    if (st != RT_OK)
        return st;
    return finish_view(t, v, "ViewBackward", rt__vjp_reshape, NULL, 0, out);
}

enum rt_status rt_view(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out)
{
    return view_impl("rt_view", t, ndim, shape, false, out);
}

enum rt_status rt_reshape(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out)
{
    return view_impl("rt_reshape", t, ndim, shape, true, out);
}

enum rt_status rt_narrow(struct rt_tensor *t, int dim, int64_t start, int64_t length, struct rt_tensor **out)
{
    int d;
    enum rt_status st = rt__dim("rt_narrow", dim, t->ndim, &d);
    if (st != RT_OK)
        return st;
    if (t->ndim == 0)
        return rt_error(RT_ERR_SHAPE, "rt_narrow: cannot narrow a 0-dim tensor");
    if (start < 0 || length < 0 || start + length > t->shape[d])
        return rt_error(RT_ERR_ARG, "rt_narrow: range [%lld, %lld) out of bounds for dim %d of size %lld",
                        (long long)start, (long long)(start + length), d, (long long)t->shape[d]);
    int64_t shape[RT_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[d] = length;
    struct rt_tensor *v;
    st = rt__alias(t, t->ndim, shape, t->stride, t->offset + start * t->stride[d], &v);
    if (st != RT_OK)
        return st;
    int64_t params[2] = {d, start};
    return finish_view(t, v, "NarrowBackward", rt__vjp_narrow, params, 2, out);
}

enum rt_status rt_select(struct rt_tensor *t, int dim, int64_t index, struct rt_tensor **out)
{
    int d;
    enum rt_status st = rt__dim("rt_select", dim, t->ndim, &d);
    if (st != RT_OK)
        return st;
    if (t->ndim == 0)
        return rt_error(RT_ERR_SHAPE, "rt_select: cannot select from a 0-dim tensor");
    if (index < 0 || index >= t->shape[d])
        return rt_error(RT_ERR_ARG, "rt_select: index %lld out of range for dim %d of size %lld",
                        (long long)index, d, (long long)t->shape[d]);
    int64_t shape[RT_MAX_DIMS], stride[RT_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d) {
            shape[k] = t->shape[i];
            stride[k++] = t->stride[i];
        }
    struct rt_tensor *v;
    st = rt__alias(t, t->ndim - 1, shape, stride, t->offset + index * t->stride[d], &v);
    if (st != RT_OK)
        return st;
    int64_t params[2] = {d, index};
    return finish_view(t, v, "SelectBackward", rt__vjp_select, params, 2, out);
}

enum rt_status rt_permute(struct rt_tensor *t, const int *dims, struct rt_tensor **out)
{
    int64_t shape[RT_MAX_DIMS], stride[RT_MAX_DIMS], params[RT_MAX_DIMS];
    bool seen[RT_MAX_DIMS] = {false};
    for (int i = 0; i < t->ndim; i++) {
        int d;
        enum rt_status st = rt__dim("rt_permute", dims[i], t->ndim, &d);
        if (st != RT_OK)
            return st;
        if (seen[d])
            return rt_error(RT_ERR_ARG, "rt_permute: dim %d appears twice", d);
        seen[d] = true;
        shape[i] = t->shape[d];
        stride[i] = t->stride[d];
        params[i] = d;
    }
    struct rt_tensor *v;
    enum rt_status st = rt__alias(t, t->ndim, shape, stride, t->offset, &v);
    if (st != RT_OK)
        return st;
    return finish_view(t, v, "PermuteBackward", rt__vjp_permute, params, t->ndim, out);
}

enum rt_status rt_transpose(struct rt_tensor *t, int d0, int d1, struct rt_tensor **out)
{
    int a, b;
    enum rt_status st = rt__dim("rt_transpose", d0, t->ndim, &a);
    if (st == RT_OK)
        st = rt__dim("rt_transpose", d1, t->ndim, &b);
    if (st != RT_OK)
        return st;
    int dims[RT_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = i;
    if (t->ndim > 0) {
        dims[a] = b;
        dims[b] = a;
    }
    return rt_permute(t, dims, out);
}

enum rt_status rt_expand(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (ndim < t->ndim || ndim > RT_MAX_DIMS)
        return rt_error(RT_ERR_SHAPE, "rt_expand: cannot expand shape %s to %s",
                        rt_shape_str(t->ndim, t->shape, a, sizeof a), rt_shape_str(ndim, shape, b, sizeof b));
    int64_t ns[RT_MAX_DIMS], nst[RT_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t want = shape[i];
        if (i < lead) {
            if (want < 0)
                return rt_error(RT_ERR_SHAPE, "rt_expand: size -1 not allowed in new leading dim %d", i);
            ns[i] = want;
            nst[i] = 0;
            continue;
        }
        int64_t have = t->shape[i - lead];
        if (want == -1 || want == have) {
            ns[i] = have;
            nst[i] = t->stride[i - lead];
        } else if (have == 1 && want >= 0) {
            ns[i] = want;
            nst[i] = 0;
        } else {
            return rt_error(RT_ERR_SHAPE, "rt_expand: cannot expand shape %s to %s (only sizes of 1 can grow, found %lld)",
                            rt_shape_str(t->ndim, t->shape, a, sizeof a), rt_shape_str(ndim, shape, b, sizeof b),
                            (long long)have);
        }
    }
    struct rt_tensor *v;
    enum rt_status st = rt__alias(t, ndim, ns, nst, t->offset, &v);
    if (st != RT_OK)
        return st;
    return finish_view(t, v, "ExpandBackward", rt__vjp_identity, NULL, 0, out);
}

enum rt_status rt_unsqueeze(struct rt_tensor *t, int dim, struct rt_tensor **out)
{
    int d;
    enum rt_status st = rt__dim("rt_unsqueeze", dim, t->ndim + 1, &d);
    if (st != RT_OK)
        return st;
    if (t->ndim >= RT_MAX_DIMS)
        return rt_error(RT_ERR_SHAPE, "rt_unsqueeze: tensor already has %d dims", RT_MAX_DIMS);
    int64_t shape[RT_MAX_DIMS];
    for (int i = 0, k = 0; i <= t->ndim; i++)
        shape[i] = i == d ? 1 : t->shape[k++];
    return rt_reshape(t, t->ndim + 1, shape, out);
}

enum rt_status rt_squeeze(struct rt_tensor *t, int dim, struct rt_tensor **out)
{
    int64_t shape[RT_MAX_DIMS];
    int k = 0;
    if (dim == -99) {
        for (int i = 0; i < t->ndim; i++)
            if (t->shape[i] != 1)
                shape[k++] = t->shape[i];
    } else {
        int d;
        enum rt_status st = rt__dim("rt_squeeze", dim, t->ndim, &d);
        if (st != RT_OK)
            return st;
        for (int i = 0; i < t->ndim; i++)
            if (i != d || t->shape[i] != 1)
                shape[k++] = t->shape[i];
    }
    return rt_reshape(t, k, shape, out);
}

enum rt_status rt_flatten(struct rt_tensor *t, int start_dim, int end_dim, struct rt_tensor **out)
{
    if (t->ndim == 0) {
        int64_t one = 1;
        return rt_reshape(t, 1, &one, out);
    }
    int s, e;
    enum rt_status st = rt__dim("rt_flatten", start_dim, t->ndim, &s);
    if (st == RT_OK)
        st = rt__dim("rt_flatten", end_dim, t->ndim, &e);
    if (st != RT_OK)
        return st;
    if (s > e)
        return rt_error(RT_ERR_ARG, "rt_flatten: start dim %d is after end dim %d", s, e);
    int64_t shape[RT_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < s; i++)
        shape[k++] = t->shape[i];
    shape[k] = 1;
    for (int i = s; i <= e; i++)
        shape[k] *= t->shape[i];
    k++;
    for (int i = e + 1; i < t->ndim; i++)
        shape[k++] = t->shape[i];
    return rt_reshape(t, k, shape, out);
}
