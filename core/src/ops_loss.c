/* Losses: fused cross entropy (log-softmax + NLL with class weights, ignore index and label
 * smoothing, PyTorch 1.13 semantics), NLL on log-probabilities, and mean squared error.
 * Labels are 0-based i64; they are checked on the host before any kernel runs. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"

/* Checks logits/labels/weights; returns a contiguous host copy of the labels (malloc'ed) and the
 * reduction divisor (sum of w[y_i] over non-ignored samples). */
static enum rt_status class_args(const char *op, struct rt_tensor *scores, struct rt_tensor *labels,
                                 struct rt_tensor *weights, int64_t ignore, enum rt_reduction red, int64_t **lab_out,
                                 double *denom)
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
    if (st != RT_OK)
        return st;
    int64_t *lab = malloc((size_t)(N > 0 ? N : 1) * sizeof *lab);
    double *w = weights ? malloc((size_t)(C > 0 ? C : 1) * sizeof *w) : NULL;
    if (!lab || (weights && !w)) {
        free(lab);
        free(w);
        return rt_error(RT_ERR_OOM, "%s: out of memory", op);
    }
    st = N > 0 ? rt_tensor_to_host(labels, RT_I64, lab) : RT_OK;
    if (st == RT_OK && w && C > 0)
        st = rt_tensor_to_host(weights, RT_F64, w);
    double d = 0;
    for (int64_t i = 0; st == RT_OK && i < N; i++) {
        if (lab[i] == ignore)
            continue;
        if (lab[i] < 0 || lab[i] >= C) {
            st = rt_error(RT_ERR_ARG, "%s: label %lld at position %lld is out of range [0, %lld)", op,
                          (long long)lab[i], (long long)i, (long long)C);
            break;
        }
        d += w ? w[lab[i]] : 1.0;
    }
    free(w);
    if (st != RT_OK) {
        free(lab);
        return st;
    }
    *lab_out = lab;
    *denom = d;
    return RT_OK;
}

/* saved: logits, labels (contiguous i64), lse, weights (optional); s[0] smoothing, s[1] scale of a
 * reduced loss; i[0] ignore index, i[1] reduction */
static enum rt_status vjp_cross_entropy(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *x = n->saved[0], *lab = n->saved[1], *lse = n->saved[2], *w = n->n_saved > 3 ? n->saved[3] : NULL;
    struct rt_tensor *gl = NULL, *gx = NULL;
    int64_t N = x->shape[0], C = x->shape[1];
    enum rt_status st;
    if (n->i[1] == RT_REDUCE_NONE)
        NN_TRY(rt__contig_raw(g, &gl));
    else { /* g * scale spread over the N rows, on the device: reading g on the host would wait for the GPU */
        struct rt_tensor *scaled = NULL, *spread = NULL;
        st = rt__unary_raw(RT_UN_AFFINE, g, n->s[1], 0, &scaled);
        if (st == RT_OK)
            st = rt_expand(scaled, 1, &N, &spread);
        if (st == RT_OK)
            st = rt__contig_raw(spread, &gl);
        rt__release_all(2, (struct rt_tensor *[]){scaled, spread});
        if (st != RT_OK)
            goto done;
    }
    NN_TRY(rt_tensor_empty_like(x, &gx));
    if (N * C > 0)
        NN_TRY(rt__backend(x)->cross_entropy_backward(x->dtype, N, C, rt__ptr(x), rt__ptr(lab), w ? rt__ptr(w) : NULL,
                                                      n->i[0], n->s[0], rt__ptr(lse), rt__ptr(gl), rt__ptr(gx)));
    gin[0] = gx, gx = NULL;
done:
    rt_tensor_release(gl);
    rt_tensor_release(gx);
    return st;
}

/* loss (N) -> reduced: sum * scale (0-dim), or loss itself for RT_REDUCE_NONE */
static enum rt_status reduce_loss(struct rt_tensor *loss, enum rt_reduction red, double scale, struct rt_tensor **out)
{
    if (red == RT_REDUCE_NONE) {
        rt_tensor_retain(loss);
        *out = loss;
        return RT_OK;
    }
    struct rt_tensor *s = NULL;
    enum rt_status st = rt__reduce_raw("loss", RT_RED_SUM, loss, 0, false, 0, &s, NULL);
    if (st != RT_OK)
        return st;
    if (scale == 1.0) {
        *out = s;
        return RT_OK;
    }
    st = rt__unary_raw(RT_UN_AFFINE, s, scale, 0, out);
    rt_tensor_release(s);
    return st;
}

enum rt_status rt_cross_entropy(struct rt_tensor *logits, struct rt_tensor *labels, struct rt_tensor *class_weights,
                                int64_t ignore_index, double label_smoothing, enum rt_reduction reduction,
                                struct rt_tensor **out)
{
    static const char *op = "rt_cross_entropy";
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
        return rt_error(RT_ERR_ARG, "%s: label_smoothing must be in [0, 1], got %g", op, label_smoothing);
    int64_t *lab = NULL;
    double denom;
    enum rt_status st = class_args(op, logits, labels, class_weights, ignore_index, reduction, &lab, &denom);
    if (st != RT_OK)
        return st;
    free(lab); /* checked; the kernel reads the device copy */
    st = rt__nn_kernel(op, logits, rt__backend(logits)->cross_entropy);
    if (st != RT_OK)
        return st;
    int64_t N = logits->shape[0], C = logits->shape[1];
    double scale = reduction == RT_REDUCE_MEAN ? 1.0 / denom : 1.0; /* NaN (0/0 sum) when every sample is ignored */
    struct rt_tensor *xc = NULL, *lc = NULL, *wc = NULL, *loss = NULL, *lse = NULL, *y = NULL;
    NN_TRY(rt__contig_raw(logits, &xc));
    NN_TRY(rt__contig_raw(labels, &lc));
    if (class_weights)
        NN_TRY(rt__contig_raw(class_weights, &wc));
    NN_TRY(rt_tensor_new(logits->dtype, rt_tensor_device(logits), 1, &N, &loss));
    NN_TRY(rt_tensor_new(logits->dtype, rt_tensor_device(logits), 1, &N, &lse));
    if (N * C > 0)
        NN_TRY(rt__backend(logits)->cross_entropy(logits->dtype, N, C, rt__ptr(xc), rt__ptr(lc),
                                                  wc ? rt__ptr(wc) : NULL, ignore_index, label_smoothing,
                                                  rt__ptr(loss), rt__ptr(lse)));
    NN_TRY(reduce_loss(loss, reduction, scale, &y));
    if (rt__needs_grad(1, &logits)) {
        struct rt_node *node;
        NN_TRY(rt__record(y, "CrossEntropyBackward", vjp_cross_entropy, 1, &logits, &node));
        node->s[0] = label_smoothing, node->s[1] = scale, node->i[0] = ignore_index, node->i[1] = reduction;
        NN_TRY(rt__save(node, xc));
        NN_TRY(rt__save(node, lc));
        NN_TRY(rt__save(node, lse));
        if (wc)
            NN_TRY(rt__save(node, wc));
    }
done:
    rt_tensor_release(xc);
    rt_tensor_release(lc);
    rt_tensor_release(wc);
    rt_tensor_release(loss);
    rt_tensor_release(lse);
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

/* Composed from differentiable ops: picked = gather(logp, 1, safe labels), loss = -picked * w_i. */
enum rt_status rt_nll_loss(struct rt_tensor *logp, struct rt_tensor *labels, struct rt_tensor *class_weights,
                           int64_t ignore_index, enum rt_reduction reduction, struct rt_tensor **out)
{
    static const char *op = "rt_nll_loss";
    int64_t *lab = NULL;
    double denom;
    enum rt_status st = class_args(op, logp, labels, class_weights, ignore_index, reduction, &lab, &denom);
    if (st != RT_OK)
        return st;
    int64_t N = logp->shape[0], C = logp->shape[1], shape2[2] = {N, 1};
    double *wi = malloc((size_t)(N > 0 ? N : 1) * sizeof *wi), *cw = NULL;
    struct rt_tensor *idx = NULL, *wt = NULL, *picked = NULL, *flat = NULL, *loss = NULL, *y = NULL;
    if (!wi)
        NN_TRY(rt_error(RT_ERR_OOM, "%s: out of memory", op));
    if (class_weights) {
        cw = malloc((size_t)(C > 0 ? C : 1) * sizeof *cw);
        if (!cw)
            NN_TRY(rt_error(RT_ERR_OOM, "%s: out of memory", op));
        if (C > 0)
            NN_TRY(rt_tensor_to_host(class_weights, RT_F64, cw));
    }
    for (int64_t i = 0; i < N; i++) {
        bool ign = lab[i] == ignore_index;
        wi[i] = ign ? 0.0 : -(cw ? cw[lab[i]] : 1.0);
        lab[i] = ign ? 0 : lab[i];
    }
    if (N * C == 0) { /* nothing to gather: zeros of the right shape */
        NN_TRY(rt_tensor_new(logp->dtype, rt_tensor_device(logp), 1, &N, &loss));
    } else {
        NN_TRY(rt_tensor_from_data(RT_I64, 2, shape2, lab, &idx));
        if (rt_tensor_device(logp) != RT_CPU) {
            struct rt_tensor *d = NULL;
            NN_TRY(rt_to_device(idx, rt_tensor_device(logp), &d));
            rt_tensor_release(idx);
            idx = d;
        }
        NN_TRY(rt__from_host_like(wi, 1, &N, logp, &wt));
        NN_TRY(rt_gather(logp, 1, idx, &picked));
        NN_TRY(rt_view(picked, 1, &N, &flat));
        NN_TRY(rt_mul(flat, wt, &loss));
    }
    if (reduction == RT_REDUCE_NONE) {
        y = loss, loss = NULL;
    } else {
        struct rt_tensor *s = NULL;
        NN_TRY(rt_sum_all(loss, &s));
        if (reduction == RT_REDUCE_MEAN) {
            st = rt_affine(s, 1.0 / denom, 0, &y);
            rt_tensor_release(s);
            if (st != RT_OK)
                goto done;
        } else
            y = s;
    }
done:
    free(lab);
    free(wi);
    free(cw);
    rt_tensor_release(idx);
    rt_tensor_release(wt);
    rt_tensor_release(picked);
    rt_tensor_release(flat);
    rt_tensor_release(loss);
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
