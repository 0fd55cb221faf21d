/* Tensor structs: lifetime, creation, queries and element access, and what every op asks of its
 * operands (same device, broadcast shape, in-place check, a contiguous or converted copy), kept
 * next to the tensor they describe. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int64_t live_tensors;

int64_t rt_tensor_live_count(void) { return live_tensors; }

struct rt_tensor *rt__tensor_struct(void)
{
    struct rt_tensor *t = calloc(1, sizeof *t);
    if (t) {
        t->refcount = 1;
        live_tensors++;
    }
    return t;
}

void rt_tensor_retain(struct rt_tensor *t)
{
    if (t)
        t->refcount++;
}

void rt_tensor_release(struct rt_tensor *t)
{
    if (!t || --t->refcount > 0)
        return;
    rt_tensor_release(t->grad);
    if (t->grad_fn)
        rt__node_release(t->grad_fn);
    if (t->grad_acc)
        t->grad_acc->leaf = NULL; /* cannot happen while the node owns t; defensive */
    rt__storage_release(t->storage);
    live_tensors--;
    free(t);
}

void rt__release_all(int n, struct rt_tensor **ts)
{
    for (int i = 0; i < n; i++)
        rt_tensor_release(ts[i]);
}

int64_t rt__numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

void rt__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

const char *rt_shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf + used, n - used, "(");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < n)
        snprintf(buf + used, n - used, ")");
    return buf;
}

enum rt_status rt__check_shape(const char *op, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > RT_MAX_DIMS)
        return rt_error(RT_ERR_SHAPE, "%s: %d dims requested, at most %d are supported", op, ndim, RT_MAX_DIMS);
    if (ndim > 0 && !shape)
        return rt_error(RT_ERR_ARG, "%s: shape is NULL", op);
    /* the product of the sizes with empty dims counted as 1 bounds both the element count and every
     * contiguous stride, so a (0, 2^40, 2^40) shape cannot overflow the strides either */
    int64_t span = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return rt_error(RT_ERR_SHAPE, "%s: negative size %lld in dim %d", op, (long long)shape[i], i);
        int64_t d = shape[i] > 0 ? shape[i] : 1;
        if (span > INT64_MAX / 16 / d) {
            char buf[160];
            return rt_error(RT_ERR_SHAPE, "%s: shape %s has too many elements (at most 2^59 per tensor)", op,
                            rt_shape_str(ndim, shape, buf, sizeof buf));
        }
        span *= d;
    }
    return RT_OK;
}

enum rt_status rt_tensor_empty(enum rt_dtype dt, enum rt_device dev, int ndim, const int64_t *shape,
                               struct rt_tensor **out)
{
    if ((unsigned)dt >= RT_DTYPE_COUNT)
        return rt_error(RT_ERR_DTYPE, "rt_tensor_new: invalid dtype %d", (int)dt);
    enum rt_status st = rt__check_shape("rt_tensor_new", ndim, shape);
    if (st != RT_OK)
        return st;
    struct rt_tensor *t = rt__tensor_struct();
    if (!t)
        return rt_error(RT_ERR_OOM, "rt_tensor_new: out of memory");
    st = rt__storage_new(dev, (size_t)rt__numel(ndim, shape) * rt_dtype_size(dt), &t->storage);
    if (st != RT_OK) {
        live_tensors--;
        free(t);
        return st;
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    rt__contiguous_strides(ndim, shape, t->stride);
    *out = t;
    return RT_OK;
}

enum rt_status rt_tensor_new(enum rt_dtype dt, enum rt_device dev, int ndim, const int64_t *shape,
                             struct rt_tensor **out)
{
    return rt_tensor_full(dt, dev, ndim, shape, 0.0, out);
}

enum rt_status rt_tensor_full(enum rt_dtype dt, enum rt_device dev, int ndim, const int64_t *shape,
                              double value, struct rt_tensor **out)
{
    struct rt_tensor *t;
    enum rt_status st = rt_tensor_empty(dt, dev, ndim, shape, &t);
    if (st != RT_OK)
        return st;
    st = dt == RT_BF16 ? rt__fill_bf16(t, value) : t->storage->backend->fill(dt, rt_tensor_numel(t), value,
                                                                              t->storage->data);
    if (st != RT_OK) {
        rt_tensor_release(t);
        return st;
    }
    *out = t;
    return RT_OK;
}

enum rt_status rt_tensor_empty_like(const struct rt_tensor *t, struct rt_tensor **out)
{
    return rt_tensor_empty(t->dtype, t->storage->device, t->ndim, t->shape, out);
}

enum rt_status rt_tensor_zeros_like(const struct rt_tensor *t, struct rt_tensor **out)
{
    return rt_tensor_new(t->dtype, t->storage->device, t->ndim, t->shape, out);
}

enum rt_status rt_tensor_from_data(enum rt_dtype dt, int ndim, const int64_t *shape, const void *data,
                                   struct rt_tensor **out)
{
    struct rt_tensor *t;
    enum rt_status st = rt_tensor_empty(dt, RT_CPU, ndim, shape, &t);
    if (st != RT_OK)
        return st;
    size_t n = (size_t)rt_tensor_numel(t) * rt_dtype_size(dt);
    if (n)
        memcpy(t->storage->data, data, n);
    *out = t;
    return RT_OK;
}

enum rt_status rt_tensor_scalar(enum rt_dtype dt, double value, struct rt_tensor **out)
{
    return rt_tensor_full(dt, RT_CPU, 0, NULL, value, out);
}

enum rt_status rt_tensor_arange(enum rt_dtype dt, double start, double end, double step, struct rt_tensor **out)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
        return rt_error(RT_ERR_ARG, "rt_tensor_arange: step must be nonzero and bounds finite (got %g, %g, %g)",
                        start, end, step);
    double count = ceil((end - start) / step);
    int64_t n = count > 0 ? (int64_t)count : 0;
    struct rt_tensor *t;
    enum rt_status st = rt_tensor_empty(dt, RT_CPU, 1, &n, &t);
    if (st != RT_OK)
        return st;
    for (int64_t i = 0; i < n; i++)
        rt_tensor_set(t, &i, start + (double)i * step);
    *out = t;
    return RT_OK;
}

int64_t rt_tensor_numel(const struct rt_tensor *t) { return rt__numel(t->ndim, t->shape); }

bool rt_tensor_is_contiguous(const struct rt_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

bool rt_tensor_same_shape(const struct rt_tensor *a, const struct rt_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

enum rt_device rt_tensor_device(const struct rt_tensor *t) { return t->storage->device; }

void *rt__ptr(const struct rt_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)rt_dtype_size(t->dtype);
}

void *rt_tensor_data(const struct rt_tensor *t) { return t->storage->device == RT_CPU ? rt__ptr(t) : NULL; }

struct rt_strided rt__strided(const struct rt_tensor *t)
{
    struct rt_strided s;
    s.data = rt__ptr(t);
    s.ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) {
        s.shape[i] = t->shape[i];
        s.stride[i] = t->stride[i];
    }
    return s;
}

const struct rt_backend *rt__backend(const struct rt_tensor *t) { return t->storage->backend; }

void rt_tensor_set_name(struct rt_tensor *t, const char *name)
{
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
}

enum rt_status rt__dim(const char *op, int dim, int ndim, int *out)
{
    int lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
    if (dim < lo || dim > hi)
        return rt_error(RT_ERR_ARG, "%s: dim %d out of range for a %d-dim tensor (expected %d..%d)", op, dim, ndim,
                        lo, hi);
    *out = dim < 0 ? dim + (ndim > 0 ? ndim : 1) : dim;
    return RT_OK;
}

/* --- what the ops ask of their operands: device, broadcast shape, writability, contiguous form --- */

enum rt_status rt__same_device(const char *op, const struct rt_tensor *a, const struct rt_tensor *b)
{
    if (a->storage->device != b->storage->device)
        return rt_error(RT_ERR_DEVICE, "%s: tensors are on different devices (%s and %s)", op,
                        rt_device_name(a->storage->device), rt_device_name(b->storage->device));
    return RT_OK;
}

enum rt_status rt__broadcast_shape(const char *op, const struct rt_tensor *a, const struct rt_tensor *b, int *ndim,
                                   int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
            return rt_error(RT_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast (sizes %lld and %lld meet)", op,
                            rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y),
                            (long long)sa, (long long)sb);
        }
        shape[i] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return RT_OK;
}

enum rt_status rt__check_inplace(const char *op, struct rt_tensor *t)
{
    if (t->requires_grad && rt_grad_enabled())
        return rt_error(RT_ERR_AUTOGRAD,
                        "%s: in-place write to a tensor that requires grad; wrap it in noGrad "
                        "or work on a detached copy",
                        op);
    return RT_OK;
}

enum rt_status rt__copy_as(const struct rt_tensor *t, enum rt_dtype dt, struct rt_tensor **out)
{
    struct rt_tensor *c = NULL;
    enum rt_status st;
    RT_TRY(rt_tensor_empty(dt, t->storage->device, t->ndim, t->shape, &c));
    struct rt_strided d = rt__strided(c), s = rt__strided(t);
    RT_TRY(rt__copy_strided(rt__backend(t), &d, dt, &s, t->dtype));
    *out = c, c = NULL;
done:
    rt_tensor_release(c);
    return st;
}

enum rt_status rt__contig_raw(struct rt_tensor *t, struct rt_tensor **out)
{
    if (rt_tensor_is_contiguous(t)) {
        rt_tensor_retain(t);
        *out = t;
        return RT_OK;
    }
    return rt__copy_as(t, t->dtype, out);
}

static enum rt_status element_offset(const char *op, const struct rt_tensor *t, const int64_t *index, int64_t *off)
{
    int64_t o = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i])
            return rt_error(RT_ERR_ARG, "%s: index %lld out of range for dim %d of size %lld", op,
                            (long long)index[i], i, (long long)t->shape[i]);
        o += index[i] * t->stride[i];
    }
    *off = o;
    return RT_OK;
}

static double load_as_double(enum rt_dtype dt, const void *p)
{
    switch (dt) {
    case RT_F32: return *(const float *)p;
    case RT_F64: return *(const double *)p;
    case RT_I64: return (double)*(const int64_t *)p;
    case RT_BF16: return rt_bf16_to_f32(*(const uint16_t *)p);
    default: return *(const uint8_t *)p;
    }
}

static void store_double(enum rt_dtype dt, void *p, double v)
{
    switch (dt) {
    case RT_F32: *(float *)p = (float)v; break;
    case RT_F64: *(double *)p = v; break;
    case RT_I64: *(int64_t *)p = (int64_t)v; break;
    case RT_BF16: *(uint16_t *)p = rt_bf16_from_f32((float)v); break;
    default: *(uint8_t *)p = (uint8_t)v; break;
    }
}

enum rt_status rt_tensor_get(const struct rt_tensor *t, const int64_t *index, double *out)
{
    int64_t off = 0;
    enum rt_status st = element_offset("rt_tensor_get", t, index, &off);
    if (st != RT_OK)
        return st;
    size_t es = rt_dtype_size(t->dtype);
    unsigned char buf[8];
    st = rt__download(t->storage->backend, buf, (char *)t->storage->data + off * (int64_t)es, es);
    if (st != RT_OK)
        return st;
    *out = load_as_double(t->dtype, buf);
    return RT_OK;
}

enum rt_status rt_tensor_set(struct rt_tensor *t, const int64_t *index, double value)
{
    int64_t off = 0;
    enum rt_status st = element_offset("rt_tensor_set", t, index, &off);
    if (st != RT_OK)
        return st;
    size_t es = rt_dtype_size(t->dtype);
    unsigned char buf[8];
    store_double(t->dtype, buf, value);
    st = t->storage->backend->upload((char *)t->storage->data + off * (int64_t)es, buf, es);
    if (st == RT_OK)
        rt__bump_version(t);
    return st;
}

enum rt_status rt_tensor_item(const struct rt_tensor *t, double *out)
{
    if (rt_tensor_numel(t) != 1) {
        char b[RT_SHAPE_STR_MAX];
        return rt_error(RT_ERR_SHAPE, "rt_item: a tensor with one element is needed, got shape %s",
                        rt_shape_str(t->ndim, t->shape, b, sizeof b));
    }
    int64_t zero[RT_MAX_DIMS] = {0};
    return rt_tensor_get(t, zero, out);
}

enum rt_status rt_tensor_to_host(const struct rt_tensor *t, enum rt_dtype dt, void *buf)
{
    struct rt_tensor *c = NULL;
    enum rt_status st;
    if (t->dtype == dt)
        RT_TRY(rt__contig_raw((struct rt_tensor *)t, &c));
    else
        RT_TRY(rt__copy_as(t, dt, &c));
    RT_TRY(rt__download(rt__backend(c), buf, rt__ptr(c), (size_t)rt_tensor_numel(c) * rt_dtype_size(dt)));
done:
    rt_tensor_release(c);
    return st;
}
