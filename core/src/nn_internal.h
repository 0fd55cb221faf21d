/* Helpers shared by the neural-network op files (ops_conv.c, ops_pool.c, ops_norm.c, ops_loss.c,
 * ops_metrics.c, ops_activation.c, ops_dropout.c). Not public API. */
#ifndef RETORT_NN_INTERNAL_H
#define RETORT_NN_INTERNAL_H

#include <string.h>

#include "internal.h"

/* element pointer p + k elements of dt */
static inline void *rt__nn_at(const void *p, enum rt_dtype dt, int64_t k)
{
    return (char *)p + k * (int64_t)rt_dtype_size(dt);
}

/* A float tensor (f32/f64), or RT_ERR_DTYPE naming op and what. */
static inline enum rt_status rt__nn_float(const char *op, const char *what, const struct rt_tensor *t)
{
    if (rt_dtype_is_float(t->dtype))
        return RT_OK;
    if (t->dtype == RT_BF16) /* a storage dtype (retort/bf16.h) */
        return rt_error(RT_ERR_DTYPE, "%s: bf16 tensors are not supported; convert with :float()", op);
    return rt_error(RT_ERR_DTYPE, "%s: %s must be a float tensor, got %s", op, what, rt_dtype_name(t->dtype));
}

/* t (may be NULL) has ref's dtype and device. */
static inline enum rt_status rt__nn_like(const char *op, const char *what, const struct rt_tensor *t,
                                         const struct rt_tensor *ref)
{
    if (!t)
        return RT_OK;
    if (t->dtype != ref->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: %s dtype %s differs from the input's %s", op, what, rt_dtype_name(t->dtype),
                        rt_dtype_name(ref->dtype));
    return rt__same_device(op, ref, t);
}

/* The backend of t has the kernel (fn != NULL), else RT_ERR_DEVICE. */
static inline enum rt_status rt__nn_kernel(const char *op, const struct rt_tensor *t, const void *fn)
{
    if (fn)
        return RT_OK;
    return rt_error(RT_ERR_DEVICE, "%s: not implemented on %s", op, rt_device_name(rt_tensor_device(t)));
}

/* A (1-D) tensor of n elements, or RT_ERR_SHAPE. */
static inline enum rt_status rt__nn_vec(const char *op, const char *what, const struct rt_tensor *t, int64_t n)
{
    char b[RT_SHAPE_STR_MAX];
    if (!t || (t->ndim == 1 && t->shape[0] == n))
        return RT_OK;
    return rt_error(RT_ERR_SHAPE, "%s: %s must be (%lld), got %s", op, what, (long long)n,
                    rt_shape_str(t->ndim, t->shape, b, sizeof b));
}

/* A classification's arguments: what (the scores) a float (N, C) tensor, labels an i64 (N) on its device. */
static inline enum rt_status rt__nn_class_args(const char *op, const char *what, const struct rt_tensor *scores,
                                               const struct rt_tensor *labels)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (scores->ndim != 2)
        return rt_error(RT_ERR_SHAPE, "%s: %s must be (N,C), got %s", op, what,
                        rt_shape_str(scores->ndim, scores->shape, a, sizeof a));
    enum rt_status st = rt__nn_float(op, what, scores);
    if (st != RT_OK)
        return st;
    if (labels->dtype != RT_I64)
        return rt_error(RT_ERR_DTYPE, "%s: labels must be i64, got %s", op, rt_dtype_name(labels->dtype));
    if (labels->ndim != 1 || labels->shape[0] != scores->shape[0])
        return rt_error(RT_ERR_SHAPE, "%s: labels %s do not fit %s %s (expected (%lld))", op,
                        rt_shape_str(labels->ndim, labels->shape, a, sizeof a), what,
                        rt_shape_str(scores->ndim, scores->shape, b, sizeof b), (long long)scores->shape[0]);
    return rt__same_device(op, scores, labels);
}

/* dst (shape, dst strides) = src (shape, src strides), through the backend's strided copy. */
static inline enum rt_status rt__nn_copy(const struct rt_backend *be, enum rt_dtype dt, int nd, const int64_t *shape,
                                         void *dst, const int64_t *dstride, const void *src, const int64_t *sstride)
{
    struct rt_strided d = {.data = dst, .ndim = nd}, s = {.data = (void *)src, .ndim = nd};
    memcpy(d.shape, shape, (size_t)nd * sizeof *shape);
    memcpy(s.shape, shape, (size_t)nd * sizeof *shape);
    memcpy(d.stride, dstride, (size_t)nd * sizeof *dstride);
    memcpy(s.stride, sstride, (size_t)nd * sizeof *sstride);
    return rt__copy_strided(be, &d, dt, &s, dt); /* bf16 included */
}

#endif
