/* Losses: fused cross entropy (log-softmax + NLL with class weights, ignore index and label
 * smoothing, PyTorch 1.13 semantics), NLL on log-probabilities, and mean squared error.
 * Labels are 0-based i64, checked on their device by the loss's own kernel (class_rows for NLL): a GPU
 * reports a bad one at the next wait, and nothing waits for it. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"

/* Checks a class loss's scores (N, C), labels (N) i64 on their device, class weights (C) and reduction. */
static enum rt_status check_class_loss(const char *op, struct rt_tensor *scores, struct rt_tensor *labels,
                                       struct rt_tensor *weights, enum rt_reduction red)
{
    if ((unsigned)red > RT_REDUCE_NONE)
        return rt_error(RT_ERR_ARG, "%s: unknown reduction %d", op, (int)red);
    enum rt_status st = rt__nn_class_args(op, "input", scores, labels);
    if (st == RT_OK)
        st = rt__nn_like(op, "class weights", weights, scores);
    if (st == RT_OK)
        st = rt__nn_vec(op, "class weights", weights, scores->shape[1]);
    return st;
}

/* saved: den, the sum of the row weights; the gradient of every row is g / den */
static enum rt_status vjp_weighted_mean(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *q = NULL;
    enum rt_status st;
    RT_TRY(rt__binary_raw("WeightedMeanBackward", RT_BIN_DIV, g, n->saved[0], &q));
    RT_TRY(rt_expand(q, n->in_ndim[0], n->in_shape[0], &gin[0]));
done:
    rt_tensor_release(q);
    return st;
}

/* A class loss's mean: *y = sum_i rows_i / sum_i rw_i in one kernel (NaN when every sample is
 * ignored) and *den = sum_i rw_i, both 0-dim; no autograd. */
static enum rt_status weighted_mean_raw(const char *op, struct rt_tensor *rows, struct rt_tensor *rw,
                                        struct rt_tensor **y, struct rt_tensor **den)
{
    enum rt_device dev = rt_tensor_device(rows);
    enum rt_status st;
    *y = *den = NULL;
    RT_TRY(rt__nn_kernel(op, rows, rt__backend(rows)->weighted_mean));
    RT_TRY(rt_tensor_empty(rows->dtype, dev, 0, NULL, y));
    RT_TRY(rt_tensor_empty(rows->dtype, dev, 0, NULL, den));
    RT_TRY(rt__backend(rows)->weighted_mean(rows->dtype, rows->shape[0], rt__ptr(rows), rt__ptr(rw), rt__ptr(*y),
                                            rt__ptr(*den)));
    return RT_OK;
done:
    rt__release_all(2, (struct rt_tensor *[]){*y, *den});
    *y = *den = NULL;
    return st;
}

/* weighted_mean_raw, differentiable through rows; the weights carry no gradient */
static enum rt_status weighted_mean(const char *op, struct rt_tensor *rows, struct rt_tensor *rw,
                                    struct rt_tensor **out)
{
    struct rt_tensor *y = NULL, *den = NULL;
    enum rt_status st;
    RT_TRY(weighted_mean_raw(op, rows, rw, &y, &den));
    if (rt__needs_grad(1, &rows)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "WeightedMeanBackward", vjp_weighted_mean, 1, &rows, &node));
        RT_TRY(rt__save(node, den));
    }
done:
    rt_tensor_release(den);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

/* rows (N) reduced: itself (none), their sum, or their mean over the row weights rw */
static enum rt_status reduce_rows(const char *op, struct rt_tensor *rows, struct rt_tensor *rw,
                                  enum rt_reduction red, struct rt_tensor **out)
{
    if (red == RT_REDUCE_MEAN)
        return weighted_mean(op, rows, rw, out);
    if (red == RT_REDUCE_SUM)
        return rt_sum_all(rows, out);
    rt_tensor_retain(rows);
    *out = rows;
    return RT_OK;
}

/* saved: logits, labels (contiguous i64), lse, then the class weights when i[1] and, for a mean, the
 * sum of the row weights when i[2]; s[0] smoothing; i[0] ignore index. The node's output is the
 * per-sample loss (N), or with i[2] its mean (0-dim), whose gradient every row reads as g / den. */
static enum rt_status vjp_cross_entropy(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    int k = 3;
    struct rt_tensor *x = n->saved[0], *lab = n->saved[1], *lse = n->saved[2], *w = n->i[1] ? n->saved[k++] : NULL,
                     *den = n->i[2] ? n->saved[k++] : NULL;
    struct rt_tensor *gl = NULL, *gx = NULL;
    int64_t N = x->shape[0], C = x->shape[1];
    enum rt_status st;
    /* a mean's gradient is one value; a sum's is one value expanded over the rows (stride 0): both are
     * read in place */
    if (g->dtype == x->dtype && (den || g->stride[0] == 0 || g->stride[0] == 1))
        rt_tensor_retain(gl = g);
    else
        RT_TRY(rt__contig_raw(g, &gl));
    RT_TRY(rt_tensor_empty_like(x, &gx));
    if (N * C > 0)
        RT_TRY(rt__backend(x)->cross_entropy_backward(x->dtype, N, C, rt__ptr(x), rt__ptr(lab), w ? rt__ptr(w) : NULL,
                                                      n->i[0], n->s[0], rt__ptr(lse), rt__ptr(gl),
                                                      den ? 0 : gl->stride[0], den ? rt__ptr(den) : NULL,
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
    struct rt_tensor *xc = NULL, *lc = NULL, *wc = NULL, *rw = NULL, *loss = NULL, *lse = NULL, *den = NULL,
                     *y = NULL;
    enum rt_status st = check_class_loss(op, logits, labels, class_weights, reduction);
    if (st == RT_OK)
        st = rt__nn_kernel(op, logits, rt__backend(logits)->cross_entropy);
    if (st != RT_OK)
        return st;
    int64_t N = logits->shape[0], C = logits->shape[1];
    enum rt_device dev = rt_tensor_device(logits);
    RT_TRY(rt__contig_raw(logits, &xc));
    RT_TRY(rt__contig_raw(labels, &lc));
    if (class_weights)
        RT_TRY(rt__contig_raw(class_weights, &wc));
    /* the kernel checks the labels and writes every row (loss, lse and the row weights of a mean); with
     * no classes there is nothing to read, the rows are 0, and every label is bad unless ignored */
    RT_TRY(rt_tensor_empty(logits->dtype, dev, 1, &N, &loss));
    RT_TRY(rt_tensor_empty(logits->dtype, dev, 1, &N, &lse));
    if (reduction == RT_REDUCE_MEAN)
        RT_TRY(rt_tensor_empty(logits->dtype, dev, 1, &N, &rw));
    if (N > 0)
        RT_TRY(rt__backend(logits)->cross_entropy(op, logits->dtype, N, C, rt__ptr(xc), rt__ptr(lc),
                                                  wc ? rt__ptr(wc) : NULL, ignore_index, label_smoothing,
                                                  rt__ptr(loss), rt__ptr(lse), rw ? rt__ptr(rw) : NULL));
    /* a mean is part of the node: its backward is one kernel, with no division before it */
    if (reduction == RT_REDUCE_MEAN)
        RT_TRY(weighted_mean_raw(op, loss, rw, &y, &den));
    if (rt__needs_grad(1, &logits)) {
        struct rt_node *node;
        RT_TRY(rt__record(den ? y : loss, "CrossEntropyBackward", vjp_cross_entropy, 1, &logits, &node));
        node->s[0] = label_smoothing, node->i[0] = ignore_index, node->i[1] = wc != NULL, node->i[2] = den != NULL;
        struct rt_tensor *saved[5] = {xc, lc, lse, wc, den};
        for (int k = 0; k < 5; k++)
            if (saved[k])
                RT_TRY(rt__save(node, saved[k]));
    }
    if (!den) /* a sum (SumBackward feeds the node on the rows) or the rows themselves */
        RT_TRY(reduce_rows(op, loss, NULL, reduction, &y));
done:
    rt__release_all(7, (struct rt_tensor *[]){xc, lc, wc, rw, loss, lse, den});
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
    enum rt_status st = check_class_loss(op, logp, labels, class_weights, reduction);
    if (st == RT_OK)
        st = rt__nn_kernel(op, logp, rt__backend(logp)->class_rows);
    if (st != RT_OK)
        return st;
    int64_t N = logp->shape[0], C = logp->shape[1], shape2[2] = {N, 1};
    enum rt_device dev = rt_tensor_device(logp);
    RT_TRY(rt__contig_raw(labels, &lc));
    if (class_weights)
        RT_TRY(rt__contig_raw(class_weights, &wc));
    /* per-row weights (w[y_i], 0 when ignored) and the labels with ignored rows as 0, for the gather;
     * the kernel checks the labels and writes every row */
    RT_TRY(rt_tensor_empty(logp->dtype, dev, 1, &N, &rw));
    RT_TRY(rt_tensor_empty(RT_I64, dev, 1, &N, &safe));
    if (N > 0)
        RT_TRY(rt__backend(logp)->class_rows(op, logp->dtype, N, C, rt__ptr(lc), wc ? rt__ptr(wc) : NULL,
                                             ignore_index, rt__ptr(rw), rt__ptr(safe)));
    if (N * C == 0) { /* nothing to gather: zeros of the right shape */
        RT_TRY(rt_tensor_new(logp->dtype, rt_tensor_device(logp), 1, &N, &loss));
    } else {
        RT_TRY(rt_view(safe, 2, shape2, &idx));
        RT_TRY(rt__unary_raw(RT_UN_AFFINE, rw, -1, 0, &negw));
        RT_TRY(rt_gather(logp, 1, idx, &picked));
        RT_TRY(rt_view(picked, 1, &N, &flat));
        RT_TRY(rt_mul(flat, negw, &loss));
    }
    RT_TRY(reduce_rows(op, loss, rw, reduction, &y));
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
    RT_TRY(rt_sub(a, b, &d));
    RT_TRY(rt_mul(d, d, &sq));
    if (reduction == RT_REDUCE_NONE) {
        *out = sq, sq = NULL;
    } else
        RT_TRY(reduction == RT_REDUCE_MEAN ? rt_mean_all(sq, out) : rt_sum_all(sq, out));
done:
    rt_tensor_release(d);
    rt_tensor_release(sq);
    return st;
}
