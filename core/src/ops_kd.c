/* Hinton knowledge distillation loss (DESIGN.md §4, formulas in retort/loss.h): one fused kernel
 * for the per-sample KL and CE (it checks the labels too), one for the batch reduction on the device
 * (no wait for a GPU), and a VJP that recomputes the softmaxes from the saved logits instead of
 * keeping (N, C) probabilities, and reads the incoming gradient on the device. */
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

/* saved: s, t, rows (3, N: kl, ce, keep), terms (4: kl mean, ce mean, kept, kl mean T^2), then the labels when
 * i[1] and the sample weights when i[2]; s[0] T, s[1] soft, s[2] hard; i[0] teacher_probs. The
 * gradient g stays on the device: the kernel reads it there. */
static enum rt_status vjp_kd(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    int k = 4;
    struct rt_tensor *s = n->saved[0], *t = n->saved[1], *rows = n->saved[2], *terms = n->saved[3],
                     *lab = n->i[1] ? n->saved[k++] : NULL, *w = n->i[2] ? n->saved[k++] : NULL, *gc = NULL,
                     *gs = NULL;
    int64_t N = s->shape[0], C = s->shape[1];
    enum rt_status st;
    RT_TRY(rt__contig_raw(g, &gc));
    RT_TRY(rt_tensor_empty_like(s, &gs));
    if (N * C > 0)
        RT_TRY(rt__backend(s)->kd_backward(s->dtype, N, C, rt__ptr(s), rt__ptr(t), n->i[0] != 0, n->s[0],
                                           lab ? rt__ptr(lab) : NULL, rt__nn_at(rt__ptr(rows), s->dtype, 2 * N),
                                           w ? rt__ptr(w) : NULL, rt__ptr(terms), rt__ptr(gc), n->s[1], n->s[2],
                                           rt__ptr(gs)));
    gin[0] = gs, gs = NULL;
done:
    rt_tensor_release(gc);
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
    int64_t N = s->shape[0], C = s->shape[1], rows_shape[2] = {3, N}, four = 4;
    enum rt_dtype dt = s->dtype;
    enum rt_device dev = rt_tensor_device(s);
    const struct rt_backend *be = rt__backend(s);
    struct rt_tensor *sc = NULL, *tc = NULL, *lc = NULL, *wc = NULL, *rows = NULL, *sums = NULL, *y = NULL;
    RT_TRY(rt__contig_raw(s, &sc));
    RT_TRY(rt__contig_raw(t, &tc));
    if (labels)
        RT_TRY(rt__contig_raw(labels, &lc));
    if (weights)
        RT_TRY(rt__contig_raw(weights, &wc));
    /* rows (3, N): kl_i, ce_i, keep_i (1, or 0 for an ignored sample), all written by the kernel, which
     * also checks the labels; then one reduction gives the loss and the terms {kl, ce, kept, kl T^2} */
    RT_TRY(rt_tensor_empty(dt, dev, 2, rows_shape, &rows));
    RT_TRY(rt_tensor_empty(dt, dev, 1, &four, &sums));
    RT_TRY(rt_tensor_empty(dt, dev, 0, NULL, &y));
    void *klp = rt__ptr(rows), *cep = rt__nn_at(klp, dt, N), *keepp = rt__nn_at(klp, dt, 2 * N);
    if (N > 0)
        RT_TRY(be->kd(op, dt, N, C, rt__ptr(sc), rt__ptr(tc), o->teacher_probs, o->T, lc ? rt__ptr(lc) : NULL,
                      o->ignore_index, klp, cep, keepp));
    /* loss = sum_i a_i (soft kl_i + hard ce_i), a_i = w_i keep_i / kept */
    double soft = o->alpha * o->T * o->T, hard = labels ? 1 - o->alpha : 0;
    RT_TRY(be->kd_reduce(dt, N, klp, cep, keepp, wc ? rt__ptr(wc) : NULL, soft, hard, o->T * o->T, rt__ptr(y),
                         rt__ptr(sums)));
    if (rt__needs_grad(1, &s)) {
        struct rt_node *node;
        RT_TRY(rt__record(y, "KDBackward", vjp_kd, 1, &s, &node));
        node->s[0] = o->T, node->s[1] = soft, node->s[2] = hard;
        node->i[0] = o->teacher_probs, node->i[1] = lc != NULL, node->i[2] = wc != NULL;
        struct rt_tensor *saved[6] = {sc, tc, rows, sums, lc, wc};
        for (int k = 0; k < 6; k++)
            if (saved[k])
                RT_TRY(rt__save(node, saved[k]));
    }
    if (terms) { /* the means over kept samples: NaN when none is kept */
        RT_TRY(rt_select(sums, 0, 0, &terms->kl));
        RT_TRY(rt_select(sums, 0, 1, &terms->ce));
        RT_TRY(rt_select(sums, 0, 2, &terms->kept));
        RT_TRY(rt_select(sums, 0, 3, &terms->kl_scaled));
    }
done:
    rt__release_all(6, (struct rt_tensor *[]){sc, tc, lc, wc, rows, sums});
    if (st != RT_OK) {
        rt_tensor_release(y);
        if (terms) {
            rt__release_all(4, (struct rt_tensor *[]){terms->kl, terms->ce, terms->kept, terms->kl_scaled});
            *terms = (struct rt_kd_terms){0};
        }
        return st;
    }
    *out = y;
    return RT_OK;
}
