/* rt_kd_loss: values against a naive loop over the formula in retort/loss.h (softmax written out
 * with exp and a division, on host doubles), f64 finite-difference gradients for every option
 * combination, f32 stability for extreme logits, and argument errors (status, message, no leak). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"

#define IN(...) ((struct rt_tensor *const[]){__VA_ARGS__})

enum { N = 6, C = 5 };

struct kd_case {
    double T, alpha;
    int64_t ignore;
    bool probs, labels, weights;
};

static const struct kd_case cases[] = {
    {4, 0.9, RT_NO_IGNORE, false, true, false}, {1, 0.5, RT_NO_IGNORE, false, true, false},
    {20, 1.0, RT_NO_IGNORE, false, false, false}, {3, 0.7, 2, false, true, false},
    {4, 0.9, RT_NO_IGNORE, true, true, false},  {2, 0.6, 1, false, true, true},
    {5, 1.0, RT_NO_IGNORE, true, false, true},
};

struct kd_ctx {
    const struct kd_case *k;
    struct rt_tensor *t, *labels, *weights; /* constants: not differentiated */
};

static enum rt_status f_kd(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct kd_ctx *x = c;
    struct rt_kd_opts o = {.T = x->k->T, .alpha = x->k->alpha, .ignore_index = x->k->ignore,
                           .teacher_probs = x->k->probs};
    return rt_kd_loss(in[0], x->t, x->k->labels ? x->labels : NULL, x->k->weights ? x->weights : NULL, &o, out, NULL);
}

/* softmax of row r / T into p (plain exp and divide after subtracting the max) */
static void softmax_row(const double *r, double T, double *p)
{
    double m = -INFINITY, z = 0;
    for (int j = 0; j < C; j++)
        m = fmax(m, r[j] / T);
    for (int j = 0; j < C; j++)
        z += p[j] = exp(r[j] / T - m);
    for (int j = 0; j < C; j++)
        p[j] /= z;
}

static double kd_ref(const struct kd_case *k, const double *s, const double *t, const int64_t *y, const double *w,
                     double *kl_mean)
{
    double tot = 0, kls = 0;
    int kept = 0;
    for (int i = 0; i < N; i++) {
        if (k->labels && y[i] == k->ignore)
            continue;
        double ps[C], pt[C], p1[C];
        softmax_row(s + i * C, k->T, ps);
        softmax_row(s + i * C, 1, p1);
        if (k->probs)
            for (int j = 0; j < C; j++)
                pt[j] = t[i * C + j];
        else
            softmax_row(t + i * C, k->T, pt);
        double kl = 0;
        for (int j = 0; j < C; j++)
            kl += pt[j] > 0 ? pt[j] * log(pt[j] / ps[j]) : 0;
        double ce = k->labels ? -log(p1[y[i]]) : 0;
        tot += (k->weights ? w[i] : 1) * (k->alpha * k->T * k->T * kl + (1 - k->alpha) * ce);
        kls += kl;
        kept++;
    }
    *kl_mean = kls / kept;
    return tot / kept;
}

static void test_kd_values_and_grads(void)
{
    const double labv[N] = {0, 2, 4, 2, 1, 3};
    int64_t y[N];
    for (int i = 0; i < N; i++)
        y[i] = (int64_t)labv[i];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct kd_case *k = &cases[c];
        struct rt_tensor *s = h_rand(RT_F64, 2, H_SHAPE(N, C), -3, 3, 10 + c);
        struct rt_tensor *tl = h_rand(RT_F64, 2, H_SHAPE(N, C), -3, 3, 20 + c), *t = NULL, *loss = NULL;
        struct rt_tensor *lab = h_tensor(RT_I64, 1, H_SHAPE(N), labv);
        struct rt_tensor *w = h_rand(RT_F64, 1, H_SHAPE(N), 0.2, 2, 30 + c);
        if (k->probs) { /* teacher probabilities at T, with one exact zero (0 log 0 = 0) */
            REQUIRE_OK(rt_softmax(tl, 1, k->T, &t));
            double *tv = h_values(t);
            tv[1] += tv[0], tv[0] = 0;
            rt_tensor_release(t);
            t = h_tensor(RT_F64, 2, H_SHAPE(N, C), tv);
            free(tv);
        } else
            t = (rt_tensor_retain(tl), tl);
        struct kd_ctx ctx = {k, t, lab, w};
        double *sv = h_values(s), *tv = h_values(t), *wv = h_values(w), kl_want, kl_got;
        double want = kd_ref(k, sv, tv, y, wv, &kl_want);
        struct rt_kd_opts o = {k->T, k->alpha, k->ignore, k->probs};
        struct rt_kd_terms terms = {0};
        if (CHECK_OK(rt_kd_loss(s, t, k->labels ? lab : NULL, k->weights ? w : NULL, &o, &loss, &terms))) {
            CHECK_TENSOR_VALUES(loss, &want, 1, 1e-12, 1e-12);
            double kept_got = -1;
            CHECK_OK(rt_tensor_item(terms.kl, &kl_got));
            CHECK_CLOSE(kl_got, kl_want, 1e-12);
            int64_t kept = 0;
            for (int i = 0; i < N; i++)
                kept += !(k->labels && y[i] == k->ignore);
            CHECK_OK(rt_tensor_item(terms.kept, &kept_got));
            CHECK(kept_got == (double)kept, "kept %g, want %lld", kept_got, (long long)kept);
            double kls_got;
            CHECK_OK(rt_tensor_item(terms.kl_scaled, &kls_got));
            CHECK_CLOSE(kls_got, kl_want * k->T * k->T, 1e-12);
            RELEASE(terms.kl, terms.ce, terms.kept, terms.kl_scaled);
        }
        char what[64];
        snprintf(what, sizeof what, "kd case %zu", c);
        CHECK(GRADCHECK(what, f_kd, &ctx, 1, IN(s), GC_STRIDED), "%s", what);
        free(sv), free(tv), free(wv);
        RELEASE(s, tl, t, lab, w, loss);
    }
}

/* logits of +-1e4 with T = 1, f32 and f64: the loss is the exact value and the gradients are finite */
static void test_kd_extreme_logits_f32(void)
{
    const double sv[6] = {1e4, -1e4, 0, -1e4, 1e4, 5e3}, tv[6] = {-1e4, 1e4, 0, 1e4, -1e4, 0};
    for (int prec = 0; prec < 2; prec++) {
        enum rt_dtype dt = prec ? RT_F64 : RT_F32;
        struct rt_tensor *s = h_tensor(dt, 2, H_SHAPE(2, 3), sv), *t = h_tensor(dt, 2, H_SHAPE(2, 3), tv);
        struct rt_tensor *loss = NULL;
        REQUIRE_OK(rt_requires_grad_(s, true));
        struct rt_kd_opts o = {1, 1, RT_NO_IGNORE, false};
        /* each teacher row is one-hot (to 1e-8686) on a class where the student's log-softmax is
         * -2e4, so both row KLs are 2e4 */
        double want = 2e4;
        if (CHECK_OK(rt_kd_loss(s, t, NULL, NULL, &o, &loss, NULL))) {
            CHECK_TENSOR_VALUES(loss, &want, 1, 1e-6, 0);
            if (CHECK_OK(rt_backward(loss, NULL, false))) {
                double *g = h_values(s->grad);
                for (int i = 0; i < 6; i++)
                    CHECK(isfinite(g[i]), "grad[%d] = %g", i, g[i]);
                free(g);
            }
        }
        RELEASE(s, t, loss);
    }
}

static void test_kd_errors(void)
{
    struct rt_tensor *s = h_rand(RT_F32, 2, H_SHAPE(4, 3), -1, 1, 1), *t4 = h_rand(RT_F32, 2, H_SHAPE(4, 4), -1, 1, 2);
    struct rt_tensor *t = h_rand(RT_F32, 2, H_SHAPE(4, 3), -1, 1, 3), *t64 = h_rand(RT_F64, 2, H_SHAPE(4, 3), -1, 1, 4);
    const double bad[4] = {0, 1, 3, 2};
    struct rt_tensor *lab = h_tensor(RT_I64, 1, H_SHAPE(4), bad), *out = NULL;
    int64_t live = rt_tensor_live_count();
    struct rt_kd_opts o = {4, 0.9, RT_NO_IGNORE, false}, zero = {0, 1, RT_NO_IGNORE, false};
    struct rt_kd_opts one = {4, 1, RT_NO_IGNORE, false}, bad_alpha = {4, 1.5, RT_NO_IGNORE, false};
    CHECK_STATUS(rt_kd_loss(s, t, NULL, NULL, &zero, &out, NULL), RT_ERR_ARG, "T must be a positive finite number, got 0");
    CHECK_STATUS(rt_kd_loss(s, t, NULL, NULL, &bad_alpha, &out, NULL), RT_ERR_ARG, "alpha must be in [0, 1], got 1.5");
    CHECK_STATUS(rt_kd_loss(s, t, NULL, NULL, &o, &out, NULL), RT_ERR_ARG, "but no labels were given");
    CHECK_STATUS(rt_kd_loss(s, t4, NULL, NULL, &one, &out, NULL), RT_ERR_SHAPE,
                 "the student predicts 3 classes and the teacher 4");
    CHECK_STATUS(rt_kd_loss(s, t64, NULL, NULL, &one, &out, NULL), RT_ERR_DTYPE, "teacher dtype f64");
    CHECK_STATUS(rt_kd_loss(s, t, lab, NULL, &o, &out, NULL), RT_ERR_ARG, "label 3 at position 2 out of range [0, 2]");
    struct rt_kd_terms junk; /* whatever the caller's struct held, a failure leaves it empty */
    memset(&junk, 0x5a, sizeof junk);
    CHECK_STATUS(rt_kd_loss(s, t, lab, NULL, &o, &out, &junk), RT_ERR_ARG, "label 3 at position 2");
    CHECK(!junk.kl && !junk.ce && !junk.kept && !junk.kl_scaled, "terms cleared on failure");
    CHECK_STATUS(rt_kd_loss(s, t, NULL, NULL, NULL, &out, NULL), RT_ERR_ARG, "options are required");
    CHECK(out == NULL, "no output on error");
    CHECK(rt_tensor_live_count() == live, "no leak on error paths");
    RELEASE(s, t4, t, t64, lab);
}

int main(void)
{
    RUN(test_kd_values_and_grads);
    RUN(test_kd_extreme_logits_f32);
    RUN(test_kd_errors);
    return h_finish();
}
