/* Attention maps for attention transfer (formula in retort/loss.h): one fused kernel computes the
 * channel mean of f^p and its L2 normalisation per sample; the backward reuses the saved map and
 * norms, so neither f^p nor the unnormalised map is ever materialised. */
#include <math.h>

#include "nn_internal.h"
#include "retort/loss.h"

/* saved: f (contiguous), y (N, HW), norm (N); s[0] = p */
static enum rt_status vjp_attention(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *f = n->saved[0], *y = n->saved[1], *norm = n->saved[2], *gc = NULL, *gf = NULL;
    enum rt_status st;
    int64_t hw = f->shape[2] * f->shape[3];
    RT_TRY(rt__contig_raw(g, &gc));
    RT_TRY(rt_tensor_empty_like(f, &gf));
    RT_TRY(rt__backend(f)->attention_map_backward(f->dtype, f->shape[0], f->shape[1], hw, n->s[0], rt__ptr(f),
                                                  rt__ptr(y), rt__ptr(norm), rt__ptr(gc), rt__ptr(gf)));
    gin[0] = gf, gf = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(gf);
    return st;
}

enum rt_status rt_attention_map(struct rt_tensor *f, double p, struct rt_tensor **out)
{
    static const char *op = "rt_attention_map";
    char a[RT_SHAPE_STR_MAX];
    if (!(p > 0) || isinf(p))
        return rt_error(RT_ERR_ARG, "%s: the power p must be a positive finite number, got %g", op, p);
    enum rt_status st = rt__nn_float(op, "features", f);
    if (st != RT_OK)
        return st;
    if (f->ndim != 4)
        return rt_error(RT_ERR_SHAPE, "%s: features must be (batch, channels, height, width), got %s", op,
                        rt_shape_str(f->ndim, f->shape, a, sizeof a));
    if ((st = rt__nn_kernel(op, f, rt__backend(f)->attention_map)) != RT_OK)
        return st;
    int64_t N = f->shape[0], C = f->shape[1], hw = f->shape[2] * f->shape[3], yshape[2] = {N, hw};
    struct rt_tensor *fc = NULL, *y = NULL, *norm = NULL;
    RT_TRY(rt__contig_raw(f, &fc));
    RT_TRY(rt_tensor_empty(f->dtype, rt_tensor_device(f), 2, yshape, &y));
    RT_TRY(rt_tensor_empty(f->dtype, rt_tensor_device(f), 1, &N, &norm));
    if (C == 0 && N * hw > 0)
        RT_TRY(rt_error(RT_ERR_SHAPE, "%s: features have no channels: %s", op,
                        rt_shape_str(f->ndim, f->shape, a, sizeof a)));
    if (N * hw > 0)
        RT_TRY(rt__backend(f)->attention_map(f->dtype, N, C, hw, p, rt__ptr(fc), rt__ptr(y), rt__ptr(norm)));
    if (rt__needs_grad(1, &f)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "AttentionMapBackward", vjp_attention, 1, &f, &node));
        node->s[0] = p;
        RT_TRY(rt__save(node, fc));
        RT_TRY(rt__save(node, y));
        RT_TRY(rt__save(node, norm));
    }
done:
    rt_tensor_release(fc);
    rt_tensor_release(norm);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
