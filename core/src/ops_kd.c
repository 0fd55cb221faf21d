/* Hinton knowledge distillation loss (DESIGN.md §4, formulas in retort/loss.h): one fused kernel
 * for the per-sample KL and CE, the batch reduction on the device (no wait for a GPU), and a VJP
 * that recomputes the softmaxes from the saved logits instead of keeping (N, C) probabilities. */
#include <math.h>
#include <stdlib.h>

#include "nn_internal.h"
#include "retort/loss.h"

static enum rt_status check_args(const char *op, struct rt_tensor *s, struct rt_tensor *t, struct rt_tensor *labels,
                                 struct rt_tensor *weights, const struct rt_kd_opts *o)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (!o)
        return rt_error(RT_ERR_ARG, "%s: options are required", op);
    if (!(o->T > 0) || isinf(o->T))
        return rt_error(RT_ERR_ARG, "%s: temperature T must be a positive finite number, got %g", op, o->T);
    if (!(o->alpha >= 0 && o->alpha <= 1))
        return rt_error(RT_ERR_ARG, "%s: alpha must be in [0, 1], got %g", op, o->alpha);
    if (o->alpha < 1 && !labels)
        return rt_error(RT_ERR_ARG, "%s: alpha = %g weights the hard-label term by %g, but no labels were given", op,
                        o->alpha, 1 - o->alpha);
    enum rt_status st = rt__nn_float(op, "student logits", s);
    if (st == RT_OK)
        st = rt__nn_like(op, "teacher", t, s);
    if (st != RT_OK)
        return st;
    if (s->ndim != 2 || t->ndim != 2)
        return rt_error(RT_ERR_SHAPE, "%s: logits must be (batch, classes); got student %s and teacher %s", op,
                        rt_shape_str(s->ndim, s->shape, a, sizeof a), rt_shape_str(t->ndim, t->shape, b, sizeof b));
    if (s->shape[1] != t->shape[1])
        return rt_error(RT_ERR_SHAPE, "%s: the student predicts %lld classes and the teacher %lld; they must predict "
                        "the same classes", op, (long long)s->shape[1], (long long)t->shape[1]);
    if (s->shape[0] != t->shape[0])
        return rt_error(RT_ERR_SHAPE, "%s: batch sizes differ: student %lld, teacher %lld", op,
                        (long long)s->shape[0], (long long)t->shape[0]);
    if (labels) {
        if (labels->dtype != RT_I64)
            return rt_error(RT_ERR_DTYPE, "%s: labels must be i64, got %s", op, rt_dtype_name(labels->dtype));
        if (labels->ndim != 1 || labels->shape[0] != s->shape[0])
            return rt_error(RT_ERR_SHAPE, "%s: labels %s do not fit the batch of %lld", op,
                            rt_shape_str(labels->ndim, labels->shape, a, sizeof a), (long long)s->shape[0]);
        st = rt__same_device(op, s, labels);
    }
    if (st == RT_OK)
        st = rt__nn_like(op, "sample weights", weights, s);
    if (st == RT_OK)
        st = rt__nn_vec(op, "sample weights", weights, s->shape[0]);
    if (st == RT_OK)
        st = rt__nn_kernel(op, s, rt__backend(s)->kd);
    return st;
}

/* saved: s, t, ab (2, N) = per-row d loss / d kl_i and d loss / d ce_i, labels (optional);
 * s[0] T; i[0] teacher_probs */
static enum rt_status vjp_kd(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *s = n->saved[0], *t = n->saved[1], *ab = n->saved[2], *lab = n->n_saved > 3 ? n->saved[3] : NULL;
    struct rt_tensor *scaled = NULL, *gs = NULL;
    int64_t N = s->shape[0], C = s->shape[1];
    enum rt_status st;
    NN_TRY(rt__binary_raw("rt_kd_loss backward", RT_BIN_MUL, ab, g, &scaled)); /* on the device: no wait for g */
    NN_TRY(rt_tensor_empty_like(s, &gs));
    if (N * C > 0) {
        void *a = rt__ptr(scaled);
        NN_TRY(rt__backend(s)->kd_backward(s->dtype, N, C, rt__ptr(s), rt__ptr(t), n->i[0] != 0, n->s[0],
                                           lab ? rt__ptr(lab) : NULL, a, rt__nn_at(a, s->dtype, N), rt__ptr(gs)));
    }
    gin[0] = gs, gs = NULL;
done:
    rt_tensor_release(scaled);
    rt_tensor_release(gs);
    return st;
}

enum rt_status rt_kd_loss(struct rt_tensor *s, struct rt_tensor *t, struct rt_tensor *labels,
                          struct rt_tensor *weights, const struct rt_kd_opts *o, struct rt_tensor **out,
                          struct rt_kd_terms *terms)
{
    static const char *op = "rt_kd_loss";
    if (terms)
        *terms = (struct rt_kd_terms){0};
    enum rt_status st = check_args(op, s, t, labels, weights, o);
    if (st != RT_OK)
        return st;
    int64_t N = s->shape[0], C = s->shape[1], rows_shape[2] = {3, N}, ab_shape[2] = {2, N}, flat = 2 * N;
    enum rt_dtype dt = s->dtype;
    enum rt_device dev = rt_tensor_device(s);
    const struct rt_backend *be = rt__backend(s);
    struct rt_tensor *sc = NULL, *tc = NULL, *lc = NULL, *rows = NULL, *sums = NULL, *kept = NULL, *keep = NULL,
                     *wk = NULL, *wkn = NULL, *abt = NULL, *klce = NULL, *prod = NULL, *prod_flat = NULL,
                     *part = NULL, *means = NULL, *y = NULL;
    NN_TRY(rt__contig_raw(s, &sc));
    NN_TRY(rt__contig_raw(t, &tc));
    if (labels)
        NN_TRY(rt__contig_raw(labels, &lc));
    /* rows (3, N): kl_i, ce_i, keep_i (1, or 0 for an ignored sample); one reduction sums all three */
    /* the kernels write every row unless there are no classes (then kl and ce are 0) */
    NN_TRY((N * C > 0 ? rt_tensor_empty : rt_tensor_new)(dt, dev, 2, rows_shape, &rows));
    void *klp = rt__ptr(rows), *keepp = rt__nn_at(klp, dt, 2 * N);
    if (N > 0) {
        if (lc)
            NN_TRY(be->class_rows(op, dt, N, C, rt__ptr(lc), NULL, o->ignore_index, keepp, NULL));
        else
            NN_TRY(be->fill(dt, N, 1.0, keepp));
    }
    if (N * C > 0)
        NN_TRY(be->kd(dt, N, C, rt__ptr(sc), rt__ptr(tc), o->teacher_probs, o->T, lc ? rt__ptr(lc) : NULL,
                      o->ignore_index, klp, rt__nn_at(klp, dt, N)));
    NN_TRY(rt__reduce_raw(op, RT_RED_SUM, rows, 1, false, 0, &sums, NULL)); /* (3): sum kl, sum ce, kept */
    NN_TRY(rt_narrow(sums, 0, 2, 1, &kept));

    /* loss = sum_i a_i kl_i + b_i ce_i with a_i = w_i keep_i alpha T^2 / kept, b_i = w_i keep_i (1 - alpha) / kept */
    NN_TRY(rt_select(rows, 0, 2, &keep));
    if (weights)
        NN_TRY(rt__binary_raw(op, RT_BIN_MUL, keep, weights, &wk));
    NN_TRY(rt__binary_raw(op, RT_BIN_DIV, wk ? wk : keep, kept, &wkn));
    NN_TRY(rt_tensor_empty(dt, dev, 2, ab_shape, &abt));
    double soft = o->alpha * o->T * o->T, hard = labels ? 1 - o->alpha : 0;
    if (N > 0) {
        NN_TRY(be->unary(RT_UN_AFFINE, dt, N, rt__ptr(wkn), rt__ptr(abt), soft, 0));
        NN_TRY(be->unary(RT_UN_AFFINE, dt, N, rt__ptr(wkn), rt__nn_at(rt__ptr(abt), dt, N), hard, 0));
    }
    NN_TRY(rt_narrow(rows, 0, 0, 2, &klce));
    NN_TRY(rt__binary_raw(op, RT_BIN_MUL, abt, klce, &prod));
    NN_TRY(rt_view(prod, 1, &flat, &prod_flat));
    NN_TRY(rt__reduce_raw(op, RT_RED_SUM, prod_flat, 0, false, 0, &y, NULL));
    if (rt__needs_grad(1, &s)) {
        struct rt_node *node;
        NN_TRY(rt__record(y, "KDBackward", vjp_kd, 1, &s, &node));
        node->s[0] = o->T, node->i[0] = o->teacher_probs;
        NN_TRY(rt__save(node, sc));
        NN_TRY(rt__save(node, tc));
        NN_TRY(rt__save(node, abt));
        if (lc)
            NN_TRY(rt__save(node, lc));
    }
    if (terms) { /* the means over kept samples: NaN when none is kept */
        NN_TRY(rt_narrow(sums, 0, 0, 2, &part));
        NN_TRY(rt__binary_raw(op, RT_BIN_DIV, part, kept, &means));
        NN_TRY(rt_select(means, 0, 0, &terms->kl));
        NN_TRY(rt_select(means, 0, 1, &terms->ce));
        NN_TRY(rt_select(sums, 0, 2, &terms->kept));
    }
done:
    rt__release_all(15, (struct rt_tensor *[]){sc, tc, lc, rows, sums, kept, keep, wk, wkn, abt, klce, prod,
                                               prod_flat, part, means});
    if (st != RT_OK) {
        rt_tensor_release(y);
        if (terms) {
            rt__release_all(3, (struct rt_tensor *[]){terms->kl, terms->ce, terms->kept});
            *terms = (struct rt_kd_terms){0};
        }
        return st;
    }
    *out = y;
    return RT_OK;
}
