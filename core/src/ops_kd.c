/* Hinton knowledge distillation loss (DESIGN.md §4, formulas in retort/loss.h): one fused kernel
 * for the per-sample KL and CE, the batch reduction on the host (N numbers), and a VJP that
 * recomputes the softmaxes from the saved logits instead of keeping (N, C) probabilities. */
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
    enum rt_status st = check_args(op, s, t, labels, weights, o);
    if (st != RT_OK)
        return st;
    int64_t N = s->shape[0], C = s->shape[1], ab_shape[2] = {2, N};
    int64_t *lab = NULL;
    double *w = NULL, *rows = NULL, *ab = NULL;
    struct rt_tensor *sc = NULL, *tc = NULL, *lc = NULL, *kl = NULL, *ce = NULL, *abt = NULL, *y = NULL;
    size_t n1 = (size_t)(N > 0 ? N : 1);
    lab = labels ? malloc(n1 * sizeof *lab) : NULL;
    w = malloc(n1 * sizeof *w);
    rows = malloc(2 * n1 * sizeof *rows);
    ab = malloc(2 * n1 * sizeof *ab);
    if ((labels && !lab) || !w || !rows || !ab)
        NN_TRY(rt_error(RT_ERR_OOM, "%s: out of memory", op));
    if (labels && N > 0)
        NN_TRY(rt_tensor_to_host(labels, RT_I64, lab));
    for (int64_t i = 0; labels && i < N; i++)
        if (lab[i] != o->ignore_index && (lab[i] < 0 || lab[i] >= C))
            NN_TRY(rt_error(RT_ERR_ARG, "%s: label %lld at position %lld is out of range [0, %lld)", op,
                            (long long)lab[i], (long long)i, (long long)C));
    for (int64_t i = 0; i < N; i++)
        w[i] = 1.0;
    if (weights && N > 0)
        NN_TRY(rt_tensor_to_host(weights, RT_F64, w));

    NN_TRY(rt__contig_raw(s, &sc));
    NN_TRY(rt__contig_raw(t, &tc));
    if (labels)
        NN_TRY(rt__contig_raw(labels, &lc));
    NN_TRY(rt_tensor_empty(s->dtype, rt_tensor_device(s), 1, &N, &kl));
    NN_TRY(rt_tensor_empty(s->dtype, rt_tensor_device(s), 1, &N, &ce));
    if (N * C > 0)
        NN_TRY(rt__backend(s)->kd(s->dtype, N, C, rt__ptr(sc), rt__ptr(tc), o->teacher_probs, o->T,
                                  lc ? rt__ptr(lc) : NULL, o->ignore_index, rt__ptr(kl), rt__ptr(ce)));
    else if (N > 0) { /* no classes: every KL and CE is 0 */
        NN_TRY(rt_fill_(kl, 0));
        NN_TRY(rt_fill_(ce, 0));
    }
    if (N > 0) {
        NN_TRY(rt_tensor_to_host(kl, RT_F64, rows));
        NN_TRY(rt_tensor_to_host(ce, RT_F64, rows + N));
    }

    /* reduce: loss = sum_i w_i (alpha T^2 kl_i + (1 - alpha) ce_i) / kept */
    int64_t kept = 0;
    for (int64_t i = 0; i < N; i++)
        kept += !(lab && lab[i] == o->ignore_index);
    double soft = o->alpha * o->T * o->T, hard = labels ? 1 - o->alpha : 0, loss = 0, klm = 0, cem = 0;
    for (int64_t i = 0; i < N; i++) {
        bool keep = !(lab && lab[i] == o->ignore_index);
        ab[i] = keep ? w[i] * soft / (double)kept : 0;
        ab[N + i] = keep ? w[i] * hard / (double)kept : 0;
        loss += ab[i] * rows[i] + ab[N + i] * rows[N + i];
        klm += keep ? rows[i] : 0;
        cem += keep ? rows[N + i] : 0;
    }
    if (kept == 0)
        loss = klm = cem = NAN;
    else
        klm /= (double)kept, cem /= (double)kept;
    NN_TRY(rt_tensor_full(s->dtype, rt_tensor_device(s), 0, NULL, loss, &y));
    if (rt__needs_grad(1, &s)) {
        struct rt_node *node;
        NN_TRY(rt__from_host_like(ab, 2, ab_shape, s, &abt));
        NN_TRY(rt__record(y, "KDBackward", vjp_kd, 1, &s, &node));
        node->s[0] = o->T, node->i[0] = o->teacher_probs;
        NN_TRY(rt__save(node, sc));
        NN_TRY(rt__save(node, tc));
        NN_TRY(rt__save(node, abt));
        if (lc)
            NN_TRY(rt__save(node, lc));
    }
    if (terms)
        *terms = (struct rt_kd_terms){.kl = klm, .ce = labels ? cem : 0, .kept = kept};
done:
    free(lab);
    free(w);
    free(rows);
    free(ab);
    rt__release_all(6, (struct rt_tensor *[]){sc, tc, lc, kl, ce, abt});
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
