/* Batch pairwise matrices of the relational distillation losses (formulas in retort/loss.h): one
 * graph node per matrix, whose backward is written out (below) instead of being replayed through
 * the products, norms, clamps and masks that build it. The work goes through the tensor ops with
 * autograd off, so every backend that has them runs it; the GEMMs dominate. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"
#include "retort/autograd.h"
#include "retort/loss.h"
#include "retort/ops.h"

/* temporaries of one computation, released together */
#define PW_TMP_MAX 32
struct pw_tmp {
    struct rt_tensor *t[PW_TMP_MAX];
    int n;
};

static struct rt_tensor *keep(struct pw_tmp *k, struct rt_tensor *t)
{
    if (t && k->n < PW_TMP_MAX)
        k->t[k->n++] = t;
    return t;
}

static void release_tmp(struct pw_tmp *k) { rt__release_all(k->n, k->t); }

/* out = fn(args..., &result), the result joining the temporaries; on failure goto done */
#define PW(out, fn, ...)                  \
    do {                                  \
        struct rt_tensor *r_ = NULL;      \
        st = fn(__VA_ARGS__, &r_);        \
        if (st != RT_OK)                  \
            goto done;                    \
        (out) = keep(&tmp, r_);           \
    } while (0)

/* mask (N, N) of the off-diagonal entries, in x's dtype and device */
static enum rt_status off_diagonal(struct rt_tensor *x, int64_t n, struct rt_tensor **out)
{
    double *v = malloc((size_t)(n * n > 0 ? n * n : 1) * sizeof *v);
    if (!v)
        return rt_error(RT_ERR_OOM, "rt_pairwise: out of memory");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            v[i * n + j] = i != j;
    int64_t shape[2] = {n, n};
    enum rt_status st = rt__from_host_like(v, 2, shape, x, out);
    free(v);
    return st;
}

/* saved: GRAM: x | COSINE: xh, s (N,1) = ||x|| + eps, r (N,1) = max(||x||, tiny) | DISTANCE: x, d, live
 * (d > sqrt(eps): off the diagonal and above the clamp, where the gradient flows) */
static enum rt_status vjp_pairwise(struct rt_node *node, struct rt_tensor *g, struct rt_tensor **gin)
{
    enum rt_status st = RT_OK;
    struct pw_tmp tmp = {{0}, 0};
    enum rt_pairwise kind = (enum rt_pairwise)node->s[0];
    struct rt_tensor *x = node->saved[0], *gt, *gs, *dx = NULL, *t1, *t2;
    bool prev = rt_grad_set_enabled(false);
    PW(gt, rt_transpose, g, 0, 1);
    if (kind == RT_PAIR_DISTANCE) {
        /* S = g / d where live; dx = x * rowsum(S + S^T) - (S + S^T) x (the 1/2 of d's derivative and
         * the 2 of |x_i - x_j|^2's cancel) */
        struct rt_tensor *d = node->saved[1], *live = node->saved[2], *safe, *S, *zero;
        PW(safe, rt_clamp, d, 1e-30, INFINITY);
        PW(t1, rt_div, g, safe);
        double z = 0;
        PW(zero, rt__from_host_like, &z, 0, NULL, t1);
        PW(S, rt_where, live, t1, zero);
        PW(t2, rt_transpose, S, 0, 1);
        PW(gs, rt_add, S, t2);
        PW(t1, rt_sum, gs, 1, true);
        PW(t1, rt_mul, x, t1);
        PW(t2, rt_matmul, gs, x);
        RT_TRY(rt_sub(t1, t2, &dx));
    } else {
        PW(gs, rt_add, g, gt);
        if (kind == RT_PAIR_GRAM) {
            RT_TRY(rt_matmul(gs, x, &dx)); /* d(x x^T) = (g + g^T) x */
        } else {
            /* xh = x / s: dxh = (g + g^T) xh; dx = dxh / s - xh * rowsum(dxh * xh) / r */
            struct rt_tensor *s = node->saved[1], *r = node->saved[2], *dxh;
            PW(dxh, rt_matmul, gs, x);
            PW(t1, rt_mul, dxh, x);
            PW(t1, rt_sum, t1, 1, true);
            PW(t1, rt_div, t1, r);
            PW(t1, rt_mul, x, t1);
            PW(t2, rt_div, dxh, s);
            RT_TRY(rt_sub(t2, t1, &dx));
        }
    }
    gin[0] = dx, dx = NULL;
done:
    rt_grad_set_enabled(prev);
    rt_tensor_release(dx);
    release_tmp(&tmp);
    return st;
}

enum rt_status rt_pairwise(struct rt_tensor *x, enum rt_pairwise kind, double eps, struct rt_tensor **out)
{
    static const char *op = "rt_pairwise";
    char a[RT_SHAPE_STR_MAX];
    if (kind != RT_PAIR_GRAM && kind != RT_PAIR_COSINE && kind != RT_PAIR_DISTANCE)
        return rt_error(RT_ERR_ARG, "%s: unknown kind %d", op, (int)kind);
    if (!(eps >= 0) || isinf(eps))
        return rt_error(RT_ERR_ARG, "%s: eps must be a finite number >= 0, got %g", op, eps);
    enum rt_status st = rt__nn_float(op, "x", x);
    if (st != RT_OK)
        return st;
    if (x->ndim != 2)
        return rt_error(RT_ERR_SHAPE, "%s: x must be (batch, features), got %s", op,
                        rt_shape_str(x->ndim, x->shape, a, sizeof a));
    struct pw_tmp tmp = {{0}, 0};
    struct rt_tensor *xc = NULL, *y = NULL, *save1 = NULL, *save2 = NULL, *base, *t1, *t2;
    int64_t n = x->shape[0];
    bool prev = rt_grad_set_enabled(false);
    PW(xc, rt__contig_raw, x);
    base = xc;
    if (kind == RT_PAIR_COSINE) {
        struct rt_tensor *nrm;
        PW(nrm, rt_norm, xc, 2, 1, true);
        PW(save1, rt_affine, nrm, 1, eps);        /* s = ||x|| + eps */
        PW(save2, rt_clamp, nrm, 1e-30, INFINITY); /* r: the norm, kept off 0 for the backward */
        PW(base, rt_div, xc, save1);              /* xh */
    }
    if (kind == RT_PAIR_DISTANCE) {
        /* d = sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i . x_j, eps)), 0 on the diagonal */
        struct rt_tensor *sq, *sqt, *mask;
        PW(t1, rt_mul, xc, xc);
        PW(sq, rt_sum, t1, 1, true);
        PW(sqt, rt_transpose, sq, 0, 1);
        PW(t1, rt_add, sq, sqt);
        PW(t2, rt__gemm_2d, xc, false, xc, true); /* x x^T */
        PW(t2, rt_affine, t2, -2, 0);
        PW(t1, rt_add, t1, t2);
        PW(t1, rt_clamp, t1, eps, INFINITY);
        PW(t1, rt_sqrt, t1);
        PW(mask, off_diagonal, xc, n);
        RT_TRY(rt_mul(t1, mask, &y));
        /* live: off the diagonal and above the clamp, where the gradient flows */
        PW(save2, rt_compare_scalar, y, sqrt(eps), RT_CMP_GT);
        save1 = y;
    } else {
        RT_TRY(rt__gemm_2d(base, false, base, true, &y)); /* x x^T */
    }
    rt_grad_set_enabled(prev);
    if (rt__needs_grad(1, &x)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, kind == RT_PAIR_GRAM ? "GramBackward" : kind == RT_PAIR_COSINE ? "CosineSimilarityBackward"
                                                                                             : "PairwiseDistanceBackward",
                          vjp_pairwise, 1, &x, &node));
        node->s[0] = (double)kind;
        RT_TRY(rt__save(node, kind == RT_PAIR_COSINE ? base : xc));
        if (kind != RT_PAIR_GRAM) {
            RT_TRY(rt__save(node, save1));
            RT_TRY(rt__save(node, save2));
        }
    }
done:
    rt_grad_set_enabled(prev);
    release_tmp(&tmp);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
