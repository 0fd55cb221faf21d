/* Finite-difference gradient checks: see gradcheck.h. Included by the tests that use it. */
#include "gradcheck.h"

#include <stdlib.h>
#include <string.h>

#define GC_MAX_IN 8

static const char *gc_mode_name(unsigned m)
{
    switch (m) {
    case GC_CONTIG: return "contiguous";
    case GC_TRANSPOSE: return "transposed";
    case GC_NARROW: return "narrowed";
    case GC_EXPAND: return "expanded";
    default: return "?";
    }
}

struct gc_state {
    gc_fn f;
    void *ctx;
    int n;
    struct rt_tensor *const *inputs;
    unsigned mode;
    struct rt_tensor *base[GC_MAX_IN]; /* leaves (diff inputs) or NULL */
};

/* Build the leaf for input x in the given layout, filling its data by hand (h_elem). */
static struct rt_tensor *gc_make_base(const struct rt_tensor *x, unsigned mode)
{
    int nd = x->ndim;
    int64_t shape[RT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    int64_t n = rt_tensor_numel(x);
    struct rt_tensor *b = NULL;
    if (mode == GC_TRANSPOSE && nd >= 2) {
        int64_t ts[RT_MAX_DIMS];
        memcpy(ts, shape, sizeof ts);
        ts[nd - 1] = shape[nd - 2];
        ts[nd - 2] = shape[nd - 1];
        if (rt_tensor_new(RT_F64, RT_CPU, nd, ts, &b) != RT_OK)
            return NULL;
        /* b[..., j, i] = x[..., i, j]: walk b's row-major positions */
        double *p = rt_tensor_data(b);
        int64_t R = ts[nd - 2], C = ts[nd - 1];
        for (int64_t k = 0; k < n; k++) {
            int64_t outer = k / (R * C), r = (k / C) % R, c = k % C; /* b index (outer, r=j, c=i) */
            p[k] = h_elem(x, outer * R * C + c * R + r);             /* x index (outer, i=c, j=r) */
        }
    } else if (mode == GC_TRANSPOSE && nd == 1) {
        int64_t s2[2] = {shape[0], 2};
        if (rt_tensor_new(RT_F64, RT_CPU, 2, s2, &b) != RT_OK)
            return NULL;
        double *p = rt_tensor_data(b);
        for (int64_t k = 0; k < n; k++) {
            p[2 * k] = h_elem(x, k);
            p[2 * k + 1] = 0.25;
        }
    } else if (mode == GC_NARROW && nd >= 1) {
        int64_t ps[RT_MAX_DIMS];
        memcpy(ps, shape, sizeof ps);
        int64_t L = shape[nd - 1];
        ps[nd - 1] = L + 3;
        if (rt_tensor_new(RT_F64, RT_CPU, nd, ps, &b) != RT_OK)
            return NULL;
        double *p = rt_tensor_data(b);
        int64_t rows = L ? n / L : 0;
        for (int64_t r = 0; r < rows; r++) {
            p[r * (L + 3)] = 0.5;
            for (int64_t c = 0; c < L; c++)
                p[r * (L + 3) + 1 + c] = h_elem(x, r * L + c);
            p[r * (L + 3) + L + 1] = 0.75;
            p[r * (L + 3) + L + 2] = 1.25;
        }
    } else if (mode == GC_EXPAND && nd >= 1 && shape[0] > 1) {
        int64_t es[RT_MAX_DIMS];
        memcpy(es, shape, sizeof es);
        es[0] = 1;
        if (rt_tensor_new(RT_F64, RT_CPU, nd, es, &b) != RT_OK)
            return NULL;
        double *p = rt_tensor_data(b);
        int64_t m = n / shape[0];
        for (int64_t k = 0; k < m; k++)
            p[k] = h_elem(x, k);
    } else {
        if (rt_tensor_new(RT_F64, RT_CPU, nd, shape, &b) != RT_OK)
            return NULL;
        double *p = rt_tensor_data(b);
        for (int64_t k = 0; k < n; k++)
            p[k] = h_elem(x, k);
    }
    if (rt_requires_grad_(b, true) != RT_OK) {
        rt_tensor_release(b);
        return NULL;
    }
    return b;
}

/* The view of base that the function sees (shape of the original input x). */
static enum rt_status gc_make_view(struct rt_tensor *base, const struct rt_tensor *x, unsigned mode,
                                   struct rt_tensor **out)
{
    int nd = x->ndim;
    if (mode == GC_TRANSPOSE && nd >= 2)
        return rt_transpose(base, -1, -2, out);
    if (mode == GC_TRANSPOSE && nd == 1)
        return rt_select(base, 1, 0, out);
    if (mode == GC_NARROW && nd >= 1)
        return rt_narrow(base, -1, 1, x->shape[nd - 1], out);
    if (mode == GC_EXPAND && nd >= 1 && x->shape[0] > 1)
        return rt_expand(base, nd, x->shape, out);
    rt_tensor_retain(base);
    *out = base;
    return RT_OK;
}

static enum rt_status gc_eval(struct gc_state *s, struct rt_tensor **out)
{
    struct rt_tensor *views[GC_MAX_IN] = {0};
    enum rt_status st = RT_OK;
    for (int i = 0; i < s->n && st == RT_OK; i++) {
        if (s->base[i]) {
            st = gc_make_view(s->base[i], s->inputs[i], s->mode, &views[i]);
        } else {
            views[i] = s->inputs[i];
            rt_tensor_retain(views[i]);
        }
    }
    if (st == RT_OK)
        st = s->f(views, s->ctx, out);
    for (int i = 0; i < s->n; i++)
        rt_tensor_release(views[i]);
    return st;
}

static bool gc_loss(struct gc_state *s, const double *w, int64_t wn, double *L)
{
    struct rt_tensor *y = NULL;
    enum rt_status st = gc_eval(s, &y);
    if (st != RT_OK) {
        h_fail(__FILE__, __LINE__, "gradcheck: forward failed under no-grad: %s", rt_error_msg());
        return false;
    }
    bool ok = rt_tensor_numel(y) == wn;
    double *v = ok ? h_values(y) : NULL;
    double acc = 0;
    if (v)
        for (int64_t i = 0; i < wn; i++)
            acc += v[i] * w[i];
    else
        ok = false;
    free(v);
    rt_tensor_release(y);
    *L = acc;
    return ok;
}

static bool gc_one_mode(const char *what, struct gc_state *s, double eps, double tol, const char *file, int line)
{
    const char *mname = gc_mode_name(s->mode);
    bool ok = true;
    double *W = NULL;
    struct rt_tensor *y = NULL, *Wt = NULL;
    int64_t wn = 0;

    for (int i = 0; i < s->n; i++) {
        s->base[i] = NULL;
        if (s->inputs[i]->dtype != RT_F64)
            continue;
        s->base[i] = gc_make_base(s->inputs[i], s->mode);
        if (!s->base[i]) {
            ok = h_fail(file, line, "%s [%s]: could not build input %d: %s", what, mname, i, rt_error_msg());
            goto done;
        }
    }

    /* analytic */
    bool was = rt_grad_set_enabled(true);
    enum rt_status st = gc_eval(s, &y);
    rt_grad_set_enabled(was);
    if (st != RT_OK) {
        ok = h_fail(file, line, "%s [%s]: forward failed: %s", what, mname, rt_error_msg());
        goto done;
    }
    wn = rt_tensor_numel(y);
    W = malloc(sizeof(double) * (size_t)(wn > 0 ? wn : 1));
    uint64_t seed = 12345;
    for (int64_t i = 0; i < wn; i++)
        W[i] = 0.5 + h_uniform(&seed); /* in [0.5, 1.5): keeps signs fixed, so no cancellation hides a bug */
    Wt = h_tensor(RT_F64, y->ndim, y->shape, W);
    if (!y->requires_grad) {
        ok = h_fail(file, line, "%s [%s]: output does not require grad (grad_fn %s)", what, mname,
                    rt_tensor_grad_fn_name(y) ? rt_tensor_grad_fn_name(y) : "NULL");
        goto done;
    }
    st = rt_backward(y, Wt, false);
    if (st != RT_OK) {
        ok = h_fail(file, line, "%s [%s]: backward failed: %s", what, mname, rt_error_msg());
        goto done;
    }
    rt_tensor_release(y);
    y = NULL;

    /* numeric, per differentiated input */
    rt_grad_set_enabled(false);
    for (int i = 0; i < s->n && ok; i++) {
        struct rt_tensor *b = s->base[i];
        if (!b)
            continue;
        int64_t n = rt_tensor_numel(b);
        double *ga = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
        double *gn = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
        if (b->grad) {
            if (!h_check_shape(b->grad, b->ndim, b->shape, "gradient", file, line)) {
                ok = false;
            } else {
                if (b->grad->dtype != RT_F64)
                    ok = h_fail(file, line, "%s [%s]: gradient of input %d has dtype %s", what, mname, i,
                                rt_dtype_name(b->grad->dtype));
                double *g = h_values(b->grad);
                if (g)
                    memcpy(ga, g, sizeof(double) * (size_t)n);
                free(g);
            }
        }
        double *p = rt_tensor_data(b);
        for (int64_t j = 0; j < n && ok; j++) {
            double orig = p[j], Lp = 0, Lm = 0;
            p[j] = orig + eps;
            bool e1 = gc_loss(s, W, wn, &Lp);
            p[j] = orig - eps;
            bool e2 = gc_loss(s, W, wn, &Lm);
            p[j] = orig;
            if (!e1 || !e2) {
                ok = false;
                break;
            }
            gn[j] = (Lp - Lm) / (2 * eps);
        }
        if (ok) {
            int bad = 0;
            for (int64_t j = 0; j < n; j++) {
                if (fabs(ga[j] - gn[j]) <= tol * (1 + fabs(gn[j])) && !isnan(ga[j]))
                    continue;
                if (bad == 0)
                    h_fail(file, line, "%s [%s]: gradient of input %d differs from finite differences (%s):", what,
                           mname, i, b->grad ? "autograd" : "autograd gave no grad, read as 0");
                if (bad < 5)
                    printf("    [%lld] autograd %.12g numeric %.12g\n", (long long)j, ga[j], gn[j]);
                bad++;
            }
            if (bad) {
                printf("    %d of %lld elements differ\n", bad, (long long)n);
                ok = false;
            } else {
                h_pass();
            }
        }
        free(ga);
        free(gn);
    }
    rt_grad_set_enabled(was);

done:
    rt_tensor_release(y);
    rt_tensor_release(Wt);
    free(W);
    for (int i = 0; i < s->n; i++) {
        rt_tensor_release(s->base[i]);
        s->base[i] = NULL;
    }
    return ok;
}

bool gradcheck_ex(const char *what, gc_fn f, void *ctx, int n, struct rt_tensor *const *inputs, unsigned modes,
                  double eps, double tol, const char *file, int line)
{
    if (n > GC_MAX_IN)
        return h_fail(file, line, "gradcheck: too many inputs");
    for (int i = 0; i < n; i++)
        if (!inputs[i])
            return h_fail(file, line, "%s: input %d is NULL", what, i);
    struct gc_state s = {.f = f, .ctx = ctx, .n = n, .inputs = inputs};
    bool ok = true;
    for (unsigned m = GC_CONTIG; m <= GC_EXPAND; m <<= 1) {
        if (!(modes & m))
            continue;
        if (m == GC_EXPAND) { /* skip when no input can be expanded */
            bool any = false;
            for (int i = 0; i < n; i++)
                any |= inputs[i]->dtype == RT_F64 && inputs[i]->ndim >= 1 && inputs[i]->shape[0] > 1;
            if (!any)
                continue;
        }
        s.mode = m;
        ok &= gc_one_mode(what, &s, eps, tol, file, line);
    }
    return ok;
}
