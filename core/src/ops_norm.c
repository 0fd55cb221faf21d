/* Batch normalisation over (N, C) or (N, C, ...): statistics per channel over N and the trailing
 * dims. Training normalises with the batch mean and biased variance and updates the running
 * statistics in place (unbiased variance, outside autograd), as PyTorch; evaluation uses the
 * running statistics. Backward is the fused per-channel formula in the backend. */
#include <math.h>

#include "nn_internal.h"

/* saved: x, mean, invstd (C, x's dtype), weight (when given); i[0] training; i[1] has weight */
static enum rt_status vjp_batch_norm(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *x = n->saved[0], *mean = n->saved[1], *invstd = n->saved[2];
    struct rt_tensor *w = n->i[1] ? n->saved[3] : NULL, *gc = NULL, *xc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
    int64_t N = x->shape[0], C = x->shape[1], S = rt_tensor_numel(x) / (N * C > 0 ? N * C : 1);
    bool nx = n->next[0] != NULL, nw = n->n_inputs > 1 && n->next[1], nb = n->n_inputs > 2 && n->next[2];
    enum rt_status st;
    RT_TRY(rt__contig_raw(g, &gc));
    RT_TRY(rt__contig_raw(x, &xc));
    if (nx)
        RT_TRY(rt_tensor_empty_like(x, &gx));
    if (nw)
        RT_TRY(rt_tensor_empty(x->dtype, rt_tensor_device(x), 1, &C, &gw));
    if (nb)
        RT_TRY(rt_tensor_empty(x->dtype, rt_tensor_device(x), 1, &C, &gb));
    RT_TRY(rt__backend(x)->batch_norm_backward(x->dtype, n->i[0] != 0, N, C, S, rt__ptr(xc), rt__ptr(gc),
                                               rt__ptr(mean), rt__ptr(invstd), w ? rt__ptr(w) : NULL,
                                               gx ? rt__ptr(gx) : NULL, gw ? rt__ptr(gw) : NULL,
                                               gb ? rt__ptr(gb) : NULL));
    gin[0] = gx, gx = NULL;
    if (nw)
        gin[1] = gw, gw = NULL;
    if (nb)
        gin[2] = gb, gb = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(xc);
    rt_tensor_release(gx);
    rt_tensor_release(gw);
    rt_tensor_release(gb);
    return st;
}

/* r = (1 - m) * r + m * s, in place, outside autograd */
static enum rt_status blend_(struct rt_tensor *r, struct rt_tensor *s, double m)
{
    bool was = rt_grad_set_enabled(false);
    enum rt_status st = rt_mul_scalar_(r, 1.0 - m);
    if (st == RT_OK)
        st = rt_add_(r, s, m);
    rt_grad_set_enabled(was);
    return st;
}

enum rt_status rt_batch_norm(struct rt_tensor *x, struct rt_tensor *running_mean, struct rt_tensor *running_var,
                             struct rt_tensor *weight, struct rt_tensor *bias, bool training, double momentum,
                             double eps, struct rt_tensor **out)
{
    static const char *op = "rt_batch_norm";
    char a[RT_SHAPE_STR_MAX];
    if (x->ndim < 2)
        return rt_error(RT_ERR_SHAPE, "%s: input must be (N,C) or (N,C,...), got %s", op,
                        rt_shape_str(x->ndim, x->shape, a, sizeof a));
    if (!(eps >= 0) || !isfinite(eps))
        return rt_error(RT_ERR_ARG, "%s: eps must be a finite number >= 0, got %g", op, eps);
    if (!(momentum >= 0 && momentum <= 1))
        return rt_error(RT_ERR_ARG, "%s: momentum must be in [0, 1], got %g", op, momentum);
    int64_t N = x->shape[0], C = x->shape[1], S = 1;
    for (int i = 2; i < x->ndim; i++)
        S *= x->shape[i];
    enum rt_status st = rt__nn_float(op, "input", x);
    struct rt_tensor *args[4] = {running_mean, running_var, weight, bias};
    static const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
    for (int i = 0; i < 4 && st == RT_OK; i++) {
        st = rt__nn_like(op, names[i], args[i], x);
        if (st == RT_OK)
            st = rt__nn_vec(op, names[i], args[i], C);
    }
    if (st != RT_OK)
        return st;
    if (!training && (!running_mean || !running_var))
        return rt_error(RT_ERR_ARG, "%s: evaluation mode needs running_mean and running_var", op);
    if (training && N * S <= 1)
        return rt_error(RT_ERR_SHAPE, "%s: training needs more than 1 value per channel, got input %s", op,
                        rt_shape_str(x->ndim, x->shape, a, sizeof a));
    if ((running_mean && running_mean->requires_grad) || (running_var && running_var->requires_grad))
        if (rt_grad_enabled() && training)
            return rt_error(RT_ERR_AUTOGRAD, "%s: running statistics must not require grad", op);
    const struct rt_backend *be = rt__backend(x);
    st = rt__nn_kernel(op, x, be->batch_norm_stats);
    if (st != RT_OK)
        return st;
    enum rt_dtype dt = x->dtype;
    struct rt_tensor *xc = NULL, *mean = NULL, *var = NULL, *invstd = NULL, *y = NULL, *wc = NULL, *bc = NULL,
                     *uv = NULL;
    RT_TRY(rt__contig_raw(x, &xc));
    if (training) {
        RT_TRY(rt_tensor_empty(dt, rt_tensor_device(x), 1, &C, &mean));
        RT_TRY(rt_tensor_empty(dt, rt_tensor_device(x), 1, &C, &var));
        if (C > 0)
            RT_TRY(be->batch_norm_stats(dt, N, C, S, rt__ptr(xc), rt__ptr(mean), rt__ptr(var)));
    } else {
        RT_TRY(rt__contig_raw(running_mean, &mean));
        RT_TRY(rt__contig_raw(running_var, &var));
    }
    RT_TRY(rt__unary_raw(RT_UN_AFFINE, var, 1.0, eps, &uv)); /* var + eps */
    RT_TRY(rt__unary_raw(RT_UN_POW, uv, -0.5, 0, &invstd));
    if (weight)
        RT_TRY(rt__contig_raw(weight, &wc));
    if (bias)
        RT_TRY(rt__contig_raw(bias, &bc));
    RT_TRY(rt_tensor_empty(dt, rt_tensor_device(x), x->ndim, x->shape, &y));
    if (rt_tensor_numel(y) > 0)
        RT_TRY(be->batch_norm_apply(dt, N, C, S, rt__ptr(xc), rt__ptr(mean), rt__ptr(invstd), wc ? rt__ptr(wc) : NULL,
                                    bc ? rt__ptr(bc) : NULL, rt__ptr(y)));
    if (training && running_mean)
        RT_TRY(blend_(running_mean, mean, momentum));
    if (training && running_var) {
        struct rt_tensor *unb = NULL;
        double M = (double)(N * S);
        RT_TRY(rt__unary_raw(RT_UN_AFFINE, var, M / (M - 1), 0, &unb));
        st = blend_(running_var, unb, momentum);
        rt_tensor_release(unb);
        if (st != RT_OK)
            goto done;
    }
    struct rt_tensor *in[3] = {x, weight, bias};
    if (rt__needs_grad(3, in)) {
        struct rt_node *node;
        int nin = bias ? 3 : weight ? 2 : 1;
        RT_TRY(rt__record(y, "BatchNormBackward", vjp_batch_norm, nin, in, &node));
        node->i[0] = training, node->i[1] = weight != NULL;
        RT_TRY(rt__save(node, xc));
        RT_TRY(rt__save(node, mean));
        RT_TRY(rt__save(node, invstd));
        if (weight)
            RT_TRY(rt__save(node, wc));
    }
done:
    rt_tensor_release(xc);
    rt_tensor_release(mean);
    rt_tensor_release(var);
    rt_tensor_release(uv);
    rt_tensor_release(invstd);
    rt_tensor_release(wc);
    rt_tensor_release(bc);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
