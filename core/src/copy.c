/* Copies between layouts, dtypes and devices, and the in-place writes. */
#include <math.h>
#include <string.h>

#include "grad_fns.h"

enum rt_status rt__copy_strided(const struct rt_backend *be, const struct rt_strided *dst, enum rt_dtype dst_dt,
                                const struct rt_strided *src, enum rt_dtype src_dt)
{
    if (dst_dt != RT_BF16 && src_dt != RT_BF16)
        return be->copy(dst, dst_dt, src, src_dt);
    return be->cast_bf16(dst, dst_dt, src, src_dt);
}

enum rt_status rt__fill_bf16(struct rt_tensor *t, double value)
{
    struct rt_tensor *s = NULL;
    enum rt_status st = rt_tensor_from_data(RT_F32, 0, NULL, &(float){(float)value}, &s);
    if (st == RT_OK && t->storage->device != RT_CPU) {
        struct rt_tensor *moved = NULL;
        st = rt_to_device(s, t->storage->device, &moved);
        rt_tensor_release(s);
        s = moved;
    }
    if (st == RT_OK) {
        struct rt_strided d = rt__strided(t), src = rt__strided(s);
        src.ndim = d.ndim;
        for (int i = 0; i < d.ndim; i++)
            src.shape[i] = d.shape[i], src.stride[i] = 0;
        st = rt__copy_strided(rt__backend(t), &d, t->dtype, &src, RT_F32);
    }
    rt_tensor_release(s);
    return st;
}

/* dst (any strides) <- src of the same shape, converting dtype. */
static enum rt_status copy_raw(struct rt_tensor *dst, struct rt_tensor *src)
{
    struct rt_strided d = rt__strided(dst), s = rt__strided(src);
    return rt__copy_strided(rt__backend(dst), &d, dst->dtype, &s, src->dtype);
}

enum rt_status rt__from_host_like(const double *v, int ndim, const int64_t *shape, const struct rt_tensor *like,
                                  struct rt_tensor **out)
{
    struct rt_tensor *h = NULL, *d = NULL;
    enum rt_status st = rt_tensor_from_data(RT_F64, ndim, shape, v, &h);
    if (st == RT_OK && like->storage->device != RT_CPU) {
        st = rt_to_device(h, like->storage->device, &d);
        rt_tensor_release(h);
        h = d;
    }
    if (st == RT_OK)
        st = rt__copy_as(h, like->dtype, out);
    rt_tensor_release(h);
    return st;
}

static enum rt_status record_unary(struct rt_tensor *in, struct rt_tensor *out, const char *name, rt_vjp_fn vjp)
{
    if (!rt__needs_grad(1, &in))
        return RT_OK;
    return rt__record(out, name, vjp, 1, &in, NULL);
}

enum rt_status rt_contiguous(struct rt_tensor *t, struct rt_tensor **out)
{
    if (rt_tensor_is_contiguous(t)) {
        rt_tensor_retain(t);
        *out = t;
        return RT_OK;
    }
    return rt_clone(t, out);
}

enum rt_status rt_clone(struct rt_tensor *t, struct rt_tensor **out)
{
    struct rt_tensor *c = NULL;
    enum rt_status st = rt__copy_as(t, t->dtype, &c);
    if (st == RT_OK)
        st = record_unary(t, c, "CloneBackward", rt__vjp_identity);
    if (st != RT_OK) {
        rt_tensor_release(c);
        return st;
    }
    *out = c;
    return RT_OK;
}

enum rt_status rt_to_dtype(struct rt_tensor *t, enum rt_dtype dt, struct rt_tensor **out)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_error(RT_ERR_DTYPE, "rt_to_dtype: invalid dtype %d", (int)dt);
    if (dt == t->dtype) {
        rt_tensor_retain(t);
        *out = t;
        return RT_OK;
    }
    struct rt_tensor *c;
    enum rt_status st = rt__copy_as(t, dt, &c);
    if (st != RT_OK)
        return st;
    if (rt_dtype_is_float(dt))
        st = record_unary(t, c, "ToDtypeBackward", rt__vjp_to_dtype);
    if (st != RT_OK) {
        rt_tensor_release(c);
        return st;
    }
    *out = c;
    return RT_OK;
}

enum rt_status rt_to_device(struct rt_tensor *t, enum rt_device dev, struct rt_tensor **out)
{
    if (dev == t->storage->device) {
        rt_tensor_retain(t);
        *out = t;
        return RT_OK;
    }
    const char *why;
    if (!rt_device_available(dev, &why))
        return rt_error(RT_ERR_DEVICE, "rt_to_device: %s is not available: %s", rt_device_name(dev), why);
    /* Device transfers go through host memory of a contiguous copy. */
    struct rt_tensor *c = NULL, *r = NULL;
    enum rt_status st = rt__contig_raw(t, &c);
    if (st == RT_OK)
        st = rt_tensor_empty(t->dtype, dev, t->ndim, t->shape, &r);
    if (st == RT_OK) {
        size_t n = (size_t)rt_tensor_numel(c) * rt_dtype_size(c->dtype);
        if (dev == RT_CPU)
            st = rt__download(rt__backend(c), rt__ptr(r), rt__ptr(c), n);
        else
            st = rt__backend(r)->upload(rt__ptr(r), rt__ptr(c), n);
    }
    if (st == RT_OK && rt__needs_grad(1, &t)) {
        struct rt_node *node;
        st = rt__record(r, "ToDeviceBackward", rt__vjp_to_device, 1, &t, &node);
        if (st == RT_OK)
            node->i[0] = t->storage->device; /* the gradient goes back to where the input lives */
    }
    rt_tensor_release(c);
    if (st != RT_OK) {
        rt_tensor_release(r);
        return st;
    }
    *out = r;
    return RT_OK;
}

enum rt_status rt_detach(struct rt_tensor *t, struct rt_tensor **out)
{
    return rt__alias(t, t->ndim, t->shape, t->stride, t->offset, out);
}

enum rt_status rt_copy_(struct rt_tensor *dst, struct rt_tensor *src)
{
    enum rt_status st = rt__check_inplace("rt_copy_", dst);
    if (st != RT_OK)
        return st;
    if (src->storage->device != dst->storage->device) { /* e.g. loading CPU weights into a GPU model */
        struct rt_tensor *moved = NULL;
        bool was = rt_grad_set_enabled(false);
        st = rt_to_device(src, dst->storage->device, &moved);
        rt_grad_set_enabled(was);
        if (st == RT_OK)
            st = rt_copy_(dst, moved);
        rt_tensor_release(moved);
        return st;
    }
    struct rt_tensor *e = NULL;
    if (!rt_tensor_same_shape(dst, src)) {
        /* Broadcast src over dst without autograd. */
        bool was = rt_grad_set_enabled(false);
        st = rt_expand(src, dst->ndim, dst->shape, &e);
        rt_grad_set_enabled(was);
        if (st != RT_OK) {
            rt_error_prefix("rt_copy_");
            return st;
        }
    }
    st = copy_raw(dst, e ? e : src);
    rt_tensor_release(e);
    if (st == RT_OK)
        rt__bump_version(dst);
    return st;
}

enum rt_status rt_fill_(struct rt_tensor *t, double value)
{
    enum rt_status st = rt__check_inplace("rt_fill_", t);
    if (st != RT_OK)
        return st;
    if (t->dtype == RT_BF16) {
        st = rt__fill_bf16(t, value);
    } else if (rt_tensor_is_contiguous(t)) {
        st = rt__backend(t)->fill(t->dtype, rt_tensor_numel(t), value, rt__ptr(t));
    } else {
        struct rt_tensor *s;
        st = rt_tensor_full(t->dtype, t->storage->device, 0, NULL, value, &s);
        if (st != RT_OK)
            return st;
        bool was = rt_grad_set_enabled(false);
        st = rt_copy_(t, s);
        rt_grad_set_enabled(was);
        rt_tensor_release(s);
    }
    if (st == RT_OK)
        rt__bump_version(t);
    return st;
}

enum rt_status rt_zero_(struct rt_tensor *t) { return rt_fill_(t, 0.0); }

/* Applies an out-of-place result back into t. */
static enum rt_status assign_result(const char *op, struct rt_tensor *t, enum rt_status st, struct rt_tensor *r)
{
    if (st != RT_OK)
        return st;
    bool was = rt_grad_set_enabled(false);
    st = rt_copy_(t, r);
    rt_grad_set_enabled(was);
    rt_tensor_release(r);
    if (st != RT_OK)
        rt_error_prefix(op);
    return st;
}

enum rt_status rt_add_(struct rt_tensor *t, struct rt_tensor *other, double alpha)
{
    enum rt_status st = rt__check_inplace("rt_add_", t);
    if (st != RT_OK)
        return st;
    if (rt_dtype_is_float(t->dtype) && other->dtype == t->dtype && rt_tensor_same_shape(t, other) &&
        rt_tensor_is_contiguous(t) && rt_tensor_is_contiguous(other) &&
        t->storage->device == other->storage->device) {
        /* the common case (optimizer updates): one pass, no temporary */
        st = rt__backend(t)->axpy(t->dtype, rt_tensor_numel(t), alpha, rt__ptr(other), rt__ptr(t));
        if (st == RT_OK)
            rt__bump_version(t);
        return st;
    }
    struct rt_tensor *r = NULL, *scaled = NULL;
    bool was = rt_grad_set_enabled(false);
    if (alpha != 1.0)
        st = rt__unary_raw(RT_UN_AFFINE, other, alpha, 0.0, &scaled);
    if (st == RT_OK)
        st = rt__binary_raw("rt_add_", RT_BIN_ADD, t, scaled ? scaled : other, &r);
    rt_grad_set_enabled(was);
    rt_tensor_release(scaled);
    if (st == RT_OK && !rt_tensor_same_shape(r, t)) {
        char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
        st = rt_error(RT_ERR_SHAPE, "rt_add_: result shape %s differs from the tensor's %s",
                      rt_shape_str(r->ndim, r->shape, a, sizeof a), rt_shape_str(t->ndim, t->shape, b, sizeof b));
        rt_tensor_release(r);
        return st;
    }
    return assign_result("rt_add_", t, st, r);
}

/* t = t * mul + add in place: one pass over contiguous data, else through a temporary. */
static enum rt_status affine_(const char *op, struct rt_tensor *t, double mul, double add)
{
    enum rt_status st = rt__check_inplace(op, t);
    if (st != RT_OK)
        return st;
    if (rt_tensor_is_contiguous(t)) {
        st = rt__backend(t)->unary(RT_UN_AFFINE, t->dtype, rt_tensor_numel(t), rt__ptr(t), rt__ptr(t), mul, add);
        if (st == RT_OK)
            rt__bump_version(t);
        return st;
    }
    struct rt_tensor *r = NULL;
    st = rt__unary_raw(RT_UN_AFFINE, t, mul, add, &r);
    return assign_result(op, t, st, r);
}

enum rt_status rt_mul_scalar_(struct rt_tensor *t, double s) { return affine_("rt_mul_scalar_", t, s, 0.0); }

enum rt_status rt_add_scalar_(struct rt_tensor *t, double s) { return affine_("rt_add_scalar_", t, 1.0, s); }
