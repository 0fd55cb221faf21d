/* 2-D pooling: max (with argmax indices), average (zero padding, count_include_pad as PyTorch) and
 * adaptive average. The op makes the input contiguous and hands the backend N*C planes. */
#include "nn_internal.h"

/* x (N,C,H,W) float; fills the geometry for N*C planes (oh/ow computed by the caller when adaptive). */
static enum rt_status pool_input(const char *op, struct rt_tensor *x, struct rt_conv_geom *g)
{
    char a[RT_SHAPE_STR_MAX];
    if (x->ndim != 4)
        return rt_error(RT_ERR_SHAPE, "%s: input must be (N,C,H,W), got %s", op, rt_shape_str(x->ndim, x->shape, a, sizeof a));
    enum rt_status st = rt__nn_float(op, "input", x);
    if (st != RT_OK)
        return st;
    *g = (struct rt_conv_geom){.n = x->shape[0] * x->shape[1], .c = 1, .h = x->shape[2], .w = x->shape[3], .kh = 1,
                               .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1, .img_stride = x->shape[2] * x->shape[3]};
    return RT_OK;
}

static enum rt_status pool_window(const char *op, struct rt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                                  const int64_t padding[2], bool max, struct rt_conv_geom *g)
{
    char a[RT_SHAPE_STR_MAX];
    enum rt_status st = pool_input(op, x, g);
    if (st != RT_OK)
        return st;
    if (!kernel || !stride || !padding)
        return rt_error(RT_ERR_ARG, "%s: kernel, stride and padding must not be NULL", op);
    for (int i = 0; i < 2; i++) {
        if (kernel[i] < 1 || stride[i] < 1 || padding[i] < 0)
            return rt_error(RT_ERR_ARG, "%s: kernel (%lld,%lld) and stride (%lld,%lld) must be >= 1, padding (%lld,%lld) >= 0",
                            op, (long long)kernel[0], (long long)kernel[1], (long long)stride[0], (long long)stride[1],
                            (long long)padding[0], (long long)padding[1]);
        if (padding[i] > kernel[i] / 2)
            return rt_error(RT_ERR_ARG, "%s: padding (%lld,%lld) must be at most half the kernel (%lld,%lld)", op,
                            (long long)padding[0], (long long)padding[1], (long long)kernel[0], (long long)kernel[1]);
    }
    g->kh = kernel[0], g->kw = kernel[1], g->sh = stride[0], g->sw = stride[1], g->ph = padding[0], g->pw = padding[1];
    int64_t ph = g->h + 2 * g->ph, pw = g->w + 2 * g->pw;
    if (g->kh > ph || g->kw > pw)
        return rt_error(RT_ERR_SHAPE, "%s: kernel (%lld,%lld) is larger than the padded input (%lld,%lld) of %s", op,
                        (long long)g->kh, (long long)g->kw, (long long)ph, (long long)pw,
                        rt_shape_str(x->ndim, x->shape, a, sizeof a));
    g->oh = (ph - g->kh) / g->sh + 1, g->ow = (pw - g->kw) / g->sw + 1;
    const struct rt_backend *be = rt__backend(x);
    return rt__nn_kernel(op, x, max ? (const void *)be->max_pool2d : (const void *)be->avg_pool2d);
}

enum pool_kind { POOL_MAX, POOL_AVG, POOL_ADAPTIVE };

static enum rt_status vjp_pool(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_conv_geom geom = {.n = n->in_shape[0][0] * n->in_shape[0][1], .c = 1, .h = n->in_shape[0][2],
                                .w = n->in_shape[0][3], .kh = n->i[1], .kw = n->i[2], .sh = n->i[3], .sw = n->i[4],
                                .ph = n->i[5], .pw = n->i[6], .dh = 1, .dw = 1, .oh = g->shape[2], .ow = g->shape[3]};
    geom.img_stride = geom.h * geom.w;
    struct rt_tensor *gc = NULL, *gx = NULL, *ic = NULL;
    enum rt_status st;
    RT_TRY(rt__contig_raw(g, &gc));
    RT_TRY(rt_tensor_empty(g->dtype, rt_tensor_device(g), 4, n->in_shape[0], &gx)); /* the kernels write it all */
    const struct rt_backend *be = rt__backend(gx);
    enum rt_dtype dt = g->dtype;
    if (n->i[0] == POOL_MAX) {
        RT_TRY(rt__contig_raw(n->saved[0], &ic));
        RT_TRY(be->max_pool2d_backward(dt, &geom, rt__ptr(ic), rt__ptr(gc), rt__ptr(gx)));
    } else if (n->i[0] == POOL_AVG)
        RT_TRY(be->avg_pool2d_backward(dt, &geom, n->i[7] != 0, rt__ptr(gc), rt__ptr(gx)));
    else
        RT_TRY(be->adaptive_avg_pool2d_backward(dt, &geom, rt__ptr(gc), rt__ptr(gx)));
    gin[0] = gx, gx = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(gx);
    rt_tensor_release(ic);
    return st;
}

static const char *const pool_names[] = {"MaxPool2dBackward", "AvgPool2dBackward", "AdaptiveAvgPool2dBackward"};

/* Runs the forward kernel on planes and records the node (indices saved for max). */
static enum rt_status pool_run(enum pool_kind kind, struct rt_tensor *x, const struct rt_conv_geom *g, bool cip,
                               struct rt_tensor **out, struct rt_tensor **indices_out)
{
    struct rt_tensor *xc = NULL, *y = NULL, *idx = NULL;
    int64_t shape[4] = {x->shape[0], x->shape[1], g->oh, g->ow};
    const struct rt_backend *be = rt__backend(x);
    enum rt_status st;
    bool grad = rt__needs_grad(1, &x);
    RT_TRY(rt__contig_raw(x, &xc));
    RT_TRY(rt_tensor_empty(x->dtype, rt_tensor_device(x), 4, shape, &y));
    if (kind == POOL_MAX && (grad || indices_out))
        RT_TRY(rt_tensor_empty(RT_I64, rt_tensor_device(x), 4, shape, &idx));
    if (rt_tensor_numel(y) > 0) {
        if (kind == POOL_MAX)
            RT_TRY(be->max_pool2d(x->dtype, g, rt__ptr(xc), rt__ptr(y), idx ? rt__ptr(idx) : NULL));
        else if (kind == POOL_AVG)
            RT_TRY(be->avg_pool2d(x->dtype, g, cip, rt__ptr(xc), rt__ptr(y)));
        else
            RT_TRY(be->adaptive_avg_pool2d(x->dtype, g, rt__ptr(xc), rt__ptr(y)));
    }
    if (grad) {
        struct rt_node *node;
        RT_TRY(rt__record(y, pool_names[kind], vjp_pool, 1, &x, &node));
        node->i[0] = kind, node->i[1] = g->kh, node->i[2] = g->kw, node->i[3] = g->sh, node->i[4] = g->sw;
        node->i[5] = g->ph, node->i[6] = g->pw, node->i[7] = cip;
        if (kind == POOL_MAX)
            RT_TRY(rt__save(node, idx));
    }
done:
    rt_tensor_release(xc);
    if (st != RT_OK) {
        rt_tensor_release(y);
        rt_tensor_release(idx);
        return st;
    }
    *out = y;
    if (indices_out)
        *indices_out = idx;
    else
        rt_tensor_release(idx);
    return RT_OK;
}

enum rt_status rt_max_pool2d(struct rt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                             const int64_t padding[2], struct rt_tensor **out, struct rt_tensor **indices_out)
{
    struct rt_conv_geom g;
    enum rt_status st = pool_window("rt_max_pool2d", x, kernel, stride, padding, true, &g);
    return st != RT_OK ? st : pool_run(POOL_MAX, x, &g, false, out, indices_out);
}

enum rt_status rt_avg_pool2d(struct rt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                             const int64_t padding[2], bool count_include_pad, struct rt_tensor **out)
{
    struct rt_conv_geom g;
    enum rt_status st = pool_window("rt_avg_pool2d", x, kernel, stride, padding, false, &g);
    return st != RT_OK ? st : pool_run(POOL_AVG, x, &g, count_include_pad, out, NULL);
}

enum rt_status rt_adaptive_avg_pool2d(struct rt_tensor *x, int64_t oh, int64_t ow, struct rt_tensor **out)
{
    static const char *op = "rt_adaptive_avg_pool2d";
    struct rt_conv_geom g;
    enum rt_status st = pool_input(op, x, &g);
    if (st != RT_OK)
        return st;
    if (oh < 1 || ow < 1)
        return rt_error(RT_ERR_ARG, "%s: output size (%lld,%lld) must be >= 1", op, (long long)oh, (long long)ow);
    if (g.h < 1 || g.w < 1) {
        char a[RT_SHAPE_STR_MAX];
        return rt_error(RT_ERR_SHAPE, "%s: empty input plane in %s", op, rt_shape_str(x->ndim, x->shape, a, sizeof a));
    }
    g.oh = oh, g.ow = ow;
    st = rt__nn_kernel(op, x, rt__backend(x)->adaptive_avg_pool2d);
    return st != RT_OK ? st : pool_run(POOL_ADAPTIVE, x, &g, false, out, NULL);
}
