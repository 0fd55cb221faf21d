/* Fused optimizer updates (see optim.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "retort/optim.h"

static enum rt_status check_operand(const char *op, const char *what, const struct rt_tensor *p,
                                    const struct rt_tensor *t)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (!rt_tensor_same_shape(p, t))
        return rt_error(RT_ERR_SHAPE, "%s: %s shape %s differs from the parameter's %s", op, what,
                        rt_shape_str(t->ndim, t->shape, a, sizeof a), rt_shape_str(p->ndim, p->shape, b, sizeof b));
    if (t->dtype != p->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: %s dtype %s differs from the parameter's %s", op, what,
                        rt_dtype_name(t->dtype), rt_dtype_name(p->dtype));
    if (!rt_tensor_is_contiguous(t))
        return rt_error(RT_ERR_ARG, "%s: %s must be contiguous", op, what);
    if (t->storage == p->storage) /* the kernel reads and writes them as separate arrays */
        return rt_error(RT_ERR_ARG, "%s: %s shares the parameter's storage", op, what);
    return rt__same_device(op, p, t);
}

/* The checks of one parameter's update (nothing written). */
static enum rt_status check_sgd(const char *op, struct rt_tensor *p, struct rt_tensor *g, struct rt_tensor *buf,
                                const struct rt_sgd_opts *o)
{
    if (!rt_dtype_is_float(p->dtype))
        return rt_error(RT_ERR_DTYPE, "%s: parameters must be float, got %s", op, rt_dtype_name(p->dtype));
    if (!rt_tensor_is_contiguous(p))
        return rt_error(RT_ERR_ARG, "%s: the parameter must be contiguous", op);
    enum rt_status st = check_operand(op, "gradient", p, g);
    if (st == RT_OK && o->momentum != 0) {
        if (!buf)
            return rt_error(RT_ERR_ARG, "%s: momentum %g needs a momentum buffer", op, o->momentum);
        st = check_operand(op, "momentum buffer", p, buf);
        if (st == RT_OK && buf->storage == g->storage)
            return rt_error(RT_ERR_ARG, "%s: the momentum buffer shares the gradient's storage", op);
    }
    return st;
}

/* st, with "parameter j+1 of k: " put before the message when there are several */
static enum rt_status which_parameter(enum rt_status st, int j, int k)
{
    if (st != RT_OK && k > 1) {
        char where[48];
        snprintf(where, sizeof where, "parameter %d of %d", j + 1, k);
        rt_error_prefix(where);
    }
    return st;
}

/* the end of the run of parameters from j sharing p[j]'s device and dtype (one backend call each) */
static int run_end(struct rt_tensor *const *p, int j, int k)
{
    int e = j;
    while (e < k && p[e]->dtype == p[j]->dtype && rt_tensor_device(p[e]) == rt_tensor_device(p[j]))
        e++;
    return e;
}

enum rt_status rt_sgd_update_many_(int k, struct rt_tensor *const *p, struct rt_tensor *const *g,
                                   struct rt_tensor *const *buf, const bool *first, const struct rt_sgd_opts *o)
{
    static const char *op = "rt_sgd_update_";
    if (k < 0)
        return rt_error(RT_ERR_ARG, "%s: %d parameters", op, k);
    for (int j = 0; j < k; j++) { /* every check before any write: a bad entry updates nothing */
        enum rt_status st = which_parameter(check_sgd(op, p[j], g[j], buf ? buf[j] : NULL, o), j, k);
        if (st != RT_OK)
            return st;
    }
    struct rt_sgd_param *ps = malloc((size_t)(k > 0 ? k : 1) * sizeof *ps);
    if (!ps)
        return rt_error(RT_ERR_OOM, "%s: out of memory", op);
    enum rt_status st = RT_OK;
    for (int j = 0; j < k && st == RT_OK;) {
        int e = run_end(p, j, k);
        for (int i = j; i < e; i++)
            ps[i - j] = (struct rt_sgd_param){.n = rt_tensor_numel(p[i]), .g = rt__ptr(g[i]), .p = rt__ptr(p[i]),
                                              .buf = o->momentum != 0 ? rt__ptr(buf[i]) : NULL,
                                              .first = first ? first[i] : o->first};
        /* an optimizer step writes parameters in place by design and is never part of a graph */
        st = rt__backend(p[j])->sgd_update(p[j]->dtype, e - j, ps, o);
        for (int i = j; st == RT_OK && i < e; i++) {
            rt__bump_version(p[i]);
            if (o->momentum != 0)
                rt__bump_version(buf[i]);
        }
        j = e;
    }
    free(ps);
    return st;
}

enum rt_status rt_sgd_update_(struct rt_tensor *p, struct rt_tensor *g, struct rt_tensor *buf,
                              const struct rt_sgd_opts *o)
{
    return rt_sgd_update_many_(1, &p, &g, &buf, NULL, o);
}

enum rt_status rt_adam_update_many_(int k, struct rt_tensor *const *p, struct rt_tensor *const *g,
                                    struct rt_tensor *const *m, struct rt_tensor *const *v,
                                    struct rt_tensor *const *vmax, const int64_t *step, const struct rt_adam_opts *o)
{
    static const char *op = "rt_adam_update_";
    if (k < 0)
        return rt_error(RT_ERR_ARG, "%s: %d parameters", op, k);
    if (o->amsgrad && k > 0 && !vmax)
        return rt_error(RT_ERR_ARG, "%s: amsgrad needs the running maxima (vmax)", op);
    for (int j = 0; j < k; j++) { /* every check before any write: a bad entry updates nothing */
        enum rt_status st = RT_OK;
        if (!rt_dtype_is_float(p[j]->dtype))
            st = rt_error(RT_ERR_DTYPE, "%s: parameters must be float, got %s", op, rt_dtype_name(p[j]->dtype));
        else if (!rt_tensor_is_contiguous(p[j]))
            st = rt_error(RT_ERR_ARG, "%s: the parameter must be contiguous", op);
        else if (step[j] < 1)
            st = rt_error(RT_ERR_ARG, "%s: step %lld (the count including this step) must be >= 1", op,
                          (long long)step[j]);
        if (st == RT_OK)
            st = check_operand(op, "gradient", p[j], g[j]);
        if (st == RT_OK)
            st = check_operand(op, "first moment", p[j], m[j]);
        if (st == RT_OK)
            st = check_operand(op, "second moment", p[j], v[j]);
        if (st == RT_OK && o->amsgrad)
            st = check_operand(op, "running maximum", p[j], vmax[j]);
        if (st == RT_OK && (m[j]->storage == v[j]->storage || m[j]->storage == g[j]->storage ||
                            v[j]->storage == g[j]->storage))
            st = rt_error(RT_ERR_ARG, "%s: the gradient and the moments must be separate tensors", op);
        if (which_parameter(st, j, k) != RT_OK)
            return st;
    }
    struct rt_adam_param *ps = malloc((size_t)(k > 0 ? k : 1) * sizeof *ps);
    if (!ps)
        return rt_error(RT_ERR_OOM, "%s: out of memory", op);
    enum rt_status st = RT_OK;
    for (int j = 0; j < k && st == RT_OK;) {
        int e = run_end(p, j, k);
        for (int i = j; i < e; i++) {
            double t = (double)step[i];
            ps[i - j] = (struct rt_adam_param){.n = rt_tensor_numel(p[i]), .g = rt__ptr(g[i]), .p = rt__ptr(p[i]),
                                               .m = rt__ptr(m[i]), .v = rt__ptr(v[i]),
                                               .vmax = o->amsgrad ? rt__ptr(vmax[i]) : NULL,
                                               .step_size = o->lr / (1 - pow(o->beta1, t)),
                                               .bc2_sqrt = sqrt(1 - pow(o->beta2, t))};
        }
        st = rt__backend(p[j])->adam_update(p[j]->dtype, e - j, ps, o);
        for (int i = j; st == RT_OK && i < e; i++) {
            rt__bump_version(p[i]);
            rt__bump_version(m[i]);
            rt__bump_version(v[i]);
            if (o->amsgrad)
                rt__bump_version(vmax[i]);
        }
        j = e;
    }
    free(ps);
    return st;
}
