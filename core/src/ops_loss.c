/* Losses: fused cross entropy (log-softmax + NLL with class weights, ignore index and label
 * smoothing, PyTorch 1.13 semantics), NLL on log-probabilities, and mean squared error.
 * Labels are 0-based i64, checked on their device (class_rows): nothing waits for a GPU. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"

/* Checks logits/labels/weights, then computes on their device the per-row weights of the class loss
 * (w[y_i], 0 for ignored samples: their sum divides a mean) and, with safe, the labels with ignored
 * rows as 0. Nothing is read back to the host: a GPU reports a bad label at the next wait. */
static enum rt_status class_rows(const char *op, struct rt_tensor *scores, struct rt_tensor *labels,
                                 struct rt_tensor *weights, int64_t ignore, enum rt_reduction red,
                                 struct rt_tensor **lc, struct rt_tensor **wc, struct rt_tensor **rw,
                                 struct rt_tensor **safe)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if ((unsigned)red > RT_REDUCE_NONE)
        return rt_error(RT_ERR_ARG, "%s: unknown reduction %d", op, (int)red);
    if (scores->ndim != 2)
        return rt_error(RT_ERR_SHAPE, "%s: input must be (N,C), got %s", op,
                        rt_shape_str(scores->ndim, scores->shape, a, sizeof a));
    enum rt_status st = rt__nn_float(op, "input", scores);
    if (st != RT_OK)
        return st;
    if (labels->dtype != RT_I64)
        return rt_error(RT_ERR_DTYPE, "%s: labels must be i64, got %s", op, rt_dtype_name(labels->dtype));
    int64_t N = scores->shape[0], C = scores->shape[1];
    if (labels->ndim != 1 || labels->shape[0] != N)
        return rt_error(RT_ERR_SHAPE, "%s: labels %s do not fit input %s (expected (%lld))", op,
                        rt_shape_str(labels->ndim, labels->shape, a, sizeof a),
                        rt_shape_str(scores->ndim, scores->shape, b, sizeof b), (long long)N);
    st = rt__same_device(op, scores, labels);
    if (st == RT_OK)
        st = rt__nn_like(op, "class weights", weights, scores);
    if (st == RT_OK)
        st = rt__nn_vec(op, "class weights", weights, C);
    if (st == RT_OK)
        st = rt__nn_kernel(op, scores, rt__backend(scores)->class_rows);
    if (st != RT_OK)
        return st;
    enum rt_device dev = rt_tensor_device(scores);
    NN_TRY(rt__contig_raw(labels, lc));
    if (weights)
        NN_TRY(rt__contig_raw(weights, wc));
    /* the kernel writes every row: no zero fill (on a GPU, a launch) */
    NN_TRY(rt_tensor_empty(scores->dtype, dev, 1, &N, rw));
    if (safe)
        NN_TRY(rt_tensor_empty(RT_I64, dev, 1, &N, safe));
    if (N > 0)
        NN_TRY(rt__backend(scores)->class_rows(op, scores->dtype, N, C, rt__ptr(*lc), *wc ? rt__ptr(*wc) : NULL,
                                               ignore, rt__ptr(*rw), safe ? rt__ptr(*safe) : NULL));
done:
    if (st != RT_OK) {
        rt__release_all(4, (struct rt_tensor *[]){*lc, *wc, *rw, safe ? *safe : NULL});
        *lc = *wc = *rw = NULL;
        if (safe)
            *safe = NULL;
    }
    return st;
}

/* rows (N) reduced: itself (none), their sum, or their sum over the sum of the row weights (mean;
 * NaN when every sample is ignored). Differentiable through rows; the weights carry no gradient. */
static enum rt_status reduce_rows(struct rt_tensor *rows, struct rt_tensor *rw, enum rt_reduction red,
                                  struct rt_tensor **out)
{
    if (red == RT_REDUCE_NONE) {
        rt_tensor_retain(rows);
        *out = rows;
        return RT_OK;
    }
    struct rt_tensor *s = NULL, *d = NULL;
    enum rt_status st = rt_sum_all(rows, &s);
    if (st != RT_OK || red == RT_REDUCE_SUM) {
        *out = s;
        return st;
    }
    st = rt__reduce_raw("loss", RT_RED_SUM, rw, 0, false, 0, &d, NULL);
    if (st == RT_OK)
        st = rt_div(s, d, out);
    rt_tensor_release(s);
    rt_tensor_release(d);
    return st;
}

/* saved: logits, labels (contiguous i64), lse, weights (optional); s[0] smoothing; i[0] ignore index.
 * The node's output is the per-sample loss (N); reductions are ops after it. */
static enum rt_status vjp_cross_entropy(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *x = n->saved[0], *lab = n->saved[1], *lse = n->saved[2], *w = n->n_saved > 3 ? n->saved[3] : NULL;
    struct rt_tensor *gl = NULL, *gx = NULL;
    int64_t N = x->shape[0], C = x->shape[1];
    enum rt_status st;
    /* a mean's or sum's gradient is one value expanded over the rows (stride 0): read it in place */
    if (g->dtype == x->dtype && (g->stride[0] == 0 || g->stride[0] == 1))
        rt_tensor_retain(gl = g);
    else
        NN_TRY(rt__contig_raw(g, &gl));
    NN_TRY(rt_tensor_empty_like(x, &gx));
    if (N * C > 0)
        NN_TRY(rt__backend(x)->cross_entropy_backward(x->dtype, N, C, rt__ptr(x), rt__ptr(lab), w ? rt__ptr(w) : NULL,
                                                      n->i[0], n->s[0], rt__ptr(lse), rt__ptr(gl), gl->stride[0],
                                                      rt__ptr(gx)));
    gin[0] = gx, gx = NULL;
done:
    rt_tensor_release(gl);
    rt_tensor_release(gx);
    return st;
}

enum rt_status rt_cross_entropy(struct rt_tensor *logits, struct rt_tensor *labels, struct rt_tensor *class_weights,
                                int64_t ignore_index, double label_smoothing, enum rt_reduction reduction,
                                struct rt_tensor **out)
{
    static const char *op = "rt_cross_entropy";
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
        return rt_error(RT_ERR_ARG, "%s: label_smoothing must be in [0, 1], got %g", op, label_smoothing);
    struct rt_tensor *xc = NULL, *lc = NULL, *wc = NULL, *rw = NULL, *loss = NULL, *lse = NULL, *y = NULL;
    enum rt_status st = class_rows(op, logits, labels, class_weights, ignore_index, reduction, &lc, &wc, &rw, NULL);
    if (st != RT_OK)
        return st;
    NN_TRY(rt__nn_kernel(op, logits, rt__backend(logits)->cross_entropy));
    int64_t N = logits->shape[0], C = logits->shape[1];
    NN_TRY(rt__contig_raw(logits, &xc));
    /* the kernel writes every row unless there are no classes (then the rows are 0) */
    NN_TRY((N * C > 0 ? rt_tensor_empty : rt_tensor_new)(logits->dtype, rt_tensor_device(logits), 1, &N, &loss));
    NN_TRY((N * C > 0 ? rt_tensor_empty : rt_tensor_new)(logits->dtype, rt_tensor_device(logits), 1, &N, &lse));
    if (N * C > 0)
        NN_TRY(rt__backend(logits)->cross_entropy(logits->dtype, N, C, rt__ptr(xc), rt__ptr(lc),
                                                  wc ? rt__ptr(wc) : NULL, ignore_index, label_smoothing,
                                                  rt__ptr(loss), rt__ptr(lse)));
    if (rt__needs_grad(1, &logits)) {
        struct rt_node *node;
        NN_TRY(rt__record(loss, "CrossEntropyBackward", vjp_cross_entropy, 1, &logits, &node));
        node->s[0] = label_smoothing, node->i[0] = ignore_index;
        NN_TRY(rt__save(node, xc));
        NN_TRY(rt__save(node, lc));
        NN_TRY(rt__save(node, lse));
        if (wc)
            NN_TRY(rt__save(node, wc));
    }
    NN_TRY(reduce_rows(loss, rw, reduction, &y));
done:
    rt__release_all(6, (struct rt_tensor *[]){xc, lc, wc, rw, loss, lse});
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

/* Composed from differentiable ops: loss_i = -w[y_i] logp[i, y_i] = gather(logp, 1, safe labels) * -w_i. */
enum rt_status rt_nll_loss(struct rt_tensor *logp, struct rt_tensor *labels, struct rt_tensor *class_weights,
                           int64_t ignore_index, enum rt_reduction reduction, struct rt_tensor **out)
{
    static const char *op = "rt_nll_loss";
    struct rt_tensor *lc = NULL, *wc = NULL, *rw = NULL, *safe = NULL, *idx = NULL, *negw = NULL, *picked = NULL,
                     *flat = NULL, *loss = NULL, *y = NULL;
    enum rt_status st = class_rows(op, logp, labels, class_weights, ignore_index, reduction, &lc, &wc, &rw, &safe);
    if (st != RT_OK)
        return st;
    int64_t N = logp->shape[0], C = logp->shape[1], shape2[2] = {N, 1};
    if (N * C == 0) { /* nothing to gather: zeros of the right shape */
        NN_TRY(rt_tensor_new(logp->dtype, rt_tensor_device(logp), 1, &N, &loss));
    } else {
        NN_TRY(rt_view(safe, 2, shape2, &idx));
        NN_TRY(rt__unary_raw(RT_UN_AFFINE, rw, -1, 0, &negw));
        NN_TRY(rt_gather(logp, 1, idx, &picked));
        NN_TRY(rt_view(picked, 1, &N, &flat));
        NN_TRY(rt_mul(flat, negw, &loss));
    }
    NN_TRY(reduce_rows(loss, rw, reduction, &y));
done:
    rt__release_all(9, (struct rt_tensor *[]){lc, wc, rw, safe, idx, negw, picked, flat, loss});
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

enum rt_status rt_mse_loss(struct rt_tensor *a, struct rt_tensor *b, enum rt_reduction reduction,
                           struct rt_tensor **out)
{
    static const char *op = "rt_mse_loss";
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    if ((unsigned)reduction > RT_REDUCE_NONE)
        return rt_error(RT_ERR_ARG, "%s: unknown reduction %d", op, (int)reduction);
    enum rt_status st = rt__nn_float(op, "input", a);
    if (st == RT_OK)
        st = rt__nn_like(op, "target", b, a);
    if (st != RT_OK)
        return st;
    if (!rt_tensor_same_shape(a, b))
        return rt_error(RT_ERR_SHAPE, "%s: shapes differ: %s vs %s", op, rt_shape_str(a->ndim, a->shape, x, sizeof x),
                        rt_shape_str(b->ndim, b->shape, y, sizeof y));
    struct rt_tensor *d = NULL, *sq = NULL;
    NN_TRY(rt_sub(a, b, &d));
    NN_TRY(rt_mul(d, d, &sq));
    if (reduction == RT_REDUCE_NONE) {
        *out = sq, sq = NULL;
    } else
        NN_TRY(reduction == RT_REDUCE_MEAN ? rt_mean_all(sq, out) : rt_sum_all(sq, out));
done:
    rt_tensor_release(d);
    rt_tensor_release(sq);
    return st;
}
