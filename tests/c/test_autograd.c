/* Autograd: finite-difference gradient checks (f64) for every differentiable op and view, on
 * contiguous, transposed, narrowed and expanded inputs; then the engine's behaviour: accumulation,
 * no-grad, detach, explicit gradients, misuse errors, retain_graph, deep graphs, leaks. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "gradcheck.h"

typedef enum rt_status (*unary_fn)(struct rt_tensor *, struct rt_tensor **);
typedef enum rt_status (*binary_fn)(struct rt_tensor *, struct rt_tensor *, struct rt_tensor **);

/* ------------------------------------------------------------------ function adapters */

struct un_ctx {
    unary_fn f;
};
static enum rt_status f_unary(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return ((struct un_ctx *)c)->f(in[0], out);
}
struct bin_ctx {
    binary_fn f;
};
static enum rt_status f_binary(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return ((struct bin_ctx *)c)->f(in[0], in[1], out);
}
struct par {
    double a, b;
    int dim, dim2;
    bool keepdim;
    int n;
    int64_t shape[RT_MAX_DIMS];
    int nd;
    int dims[RT_MAX_DIMS];
};
static enum rt_status f_pow(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_pow(in[0], ((struct par *)c)->a, out);
}
static enum rt_status f_clamp(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_clamp(in[0], ((struct par *)c)->a, ((struct par *)c)->b, out);
}
static enum rt_status f_affine(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_affine(in[0], ((struct par *)c)->a, ((struct par *)c)->b, out);
}
static enum rt_status f_where(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    return rt_where(in[0], in[1], in[2], out);
}
typedef enum rt_status (*reduce_fn)(struct rt_tensor *, int, bool, struct rt_tensor **);
struct red_ctx {
    reduce_fn f;
    int dim;
    bool keepdim;
};
static enum rt_status f_reduce(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct red_ctx *r = c;
    return r->f(in[0], r->dim, r->keepdim, out);
}
static enum rt_status f_norm(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_norm(in[0], p->a, p->dim, p->keepdim, out);
}
static enum rt_status f_norm_all(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_norm_all(in[0], ((struct par *)c)->a, out);
}
static enum rt_status f_max(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_max(in[0], p->dim, p->keepdim, out, NULL);
}
static enum rt_status f_min(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    struct rt_tensor *ix = NULL;
    enum rt_status st = rt_min(in[0], p->dim, p->keepdim, out, &ix);
    rt_tensor_release(ix);
    return st;
}
static enum rt_status f_sum_to_shape(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_sum_to_shape(in[0], p->nd, p->shape, out);
}
static enum rt_status f_linear(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_linear(in[0], in[1], ((struct par *)c)->n > 2 ? in[2] : NULL, out);
}
static enum rt_status f_softmax(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_softmax(in[0], p->dim, p->a, out);
}
static enum rt_status f_log_softmax(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_log_softmax(in[0], p->dim, p->a, out);
}
static enum rt_status f_index_select(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_index_select(in[0], ((struct par *)c)->dim, in[1], out);
}
static enum rt_status f_gather(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_gather(in[0], ((struct par *)c)->dim, in[1], out);
}
static enum rt_status f_scatter_add(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_scatter_add(in[0], ((struct par *)c)->dim, in[1], in[2], out);
}
static enum rt_status f_cat(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_cat(p->n, in, p->dim, out);
}
static enum rt_status f_stack(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_stack(p->n, in, p->dim, out);
}
static enum rt_status f_view(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_view(in[0], p->nd, p->shape, out);
}
static enum rt_status f_reshape(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_reshape(in[0], p->nd, p->shape, out);
}
static enum rt_status f_expand(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_expand(in[0], p->nd, p->shape, out);
}
static enum rt_status f_narrow(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_narrow(in[0], p->dim, (int64_t)p->a, (int64_t)p->b, out);
}
static enum rt_status f_select(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_select(in[0], p->dim, (int64_t)p->a, out);
}
static enum rt_status f_transpose(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_transpose(in[0], p->dim, p->dim2, out);
}
static enum rt_status f_permute(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_permute(in[0], ((struct par *)c)->dims, out);
}
static enum rt_status f_unsqueeze(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_unsqueeze(in[0], ((struct par *)c)->dim, out);
}
static enum rt_status f_squeeze(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    return rt_squeeze(in[0], ((struct par *)c)->dim, out);
}
static enum rt_status f_flatten(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct par *p = c;
    return rt_flatten(in[0], p->dim, p->dim2, out);
}
static enum rt_status f_to_f64(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    return rt_to_dtype(in[0], RT_F64, out);
}
/* y = op(x) * x: makes the gradient of a view op depend on where each element lands */
static enum rt_status f_view_then_mul(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct rt_tensor *t, *u;
    enum rt_status st = rt_transpose(in[0], 0, 1, &t);
    if (st != RT_OK)
        return st;
    st = rt_contiguous(t, &u);
    rt_tensor_release(t);
    if (st != RT_OK)
        return st;
    st = rt_mul(u, u, out);
    rt_tensor_release(u);
    (void)c;
    return st;
}

#define IN(...) ((struct rt_tensor *const[]){__VA_ARGS__})
#define NIN(...) (int)(sizeof((struct rt_tensor *const[]){__VA_ARGS__}) / sizeof(struct rt_tensor *))
#define GC(what, f, ctx, modes, ...) GRADCHECK((what), (f), (ctx), NIN(__VA_ARGS__), IN(__VA_ARGS__), (modes))

static struct rt_tensor *R(int nd, const int64_t *shape, double lo, double hi, uint64_t seed)
{
    return h_rand(RT_F64, nd, shape, lo, hi, seed);
}

/* ------------------------------------------------------------------ gradient checks */

/* The checker itself must catch a wrong gradient: x * detach(x) has value x^2 but autograd gives x. */
static enum rt_status f_wrong_square(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    struct rt_tensor *d;
    enum rt_status st = rt_detach(in[0], &d);
    if (st == RT_OK)
        st = rt_mul(in[0], d, out);
    rt_tensor_release(d);
    return st;
}
static void test_gradcheck_catches_errors(void)
{
    struct rt_tensor *x = h_rand(RT_F64, 2, H_SHAPE(2, 3), 0.5, 1, 1);
    h_expect_failures_begin();
    bool ok = GRADCHECK("wrong square", f_wrong_square, NULL, 1, IN(x), GC_ALL);
    int n = h_expect_failures_end();
    CHECK(!ok && n == 4, "gradcheck flags a wrong gradient in all 4 layouts (%d failures)", n);
    struct un_ctx e = {rt_exp};
    CHECK(GRADCHECK("exp", f_unary, &e, 1, IN(x), GC_ALL), "and passes a right one");
    rt_tensor_release(x);
}

static void test_grad_unary(void)
{
    struct rt_tensor *x = R(2, H_SHAPE(3, 4), -2, 2, 1), *p = R(2, H_SHAPE(3, 4), 0.5, 2, 2);
    struct rt_tensor *s = R(0, NULL, 0.5, 2, 3);
    struct {
        const char *name;
        unary_fn f;
        bool positive;
    } ops[] = {{"neg", rt_neg, false},         {"exp", rt_exp, false},     {"log", rt_log, true},
               {"sqrt", rt_sqrt, true},        {"abs", rt_abs, false},     {"relu", rt_relu, false},
               {"sigmoid", rt_sigmoid, false}, {"tanh", rt_tanh, false},   {"reciprocal", rt_reciprocal, true},
               {"contiguous", rt_contiguous, false}, {"clone", rt_clone, false}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        struct un_ctx c = {ops[k].f};
        GC(ops[k].name, f_unary, &c, GC_ALL, ops[k].positive ? p : x);
        GC(ops[k].name, f_unary, &c, GC_CONTIG, s); /* 0-dim */
    }
    double exps[] = {2, 3, 0.5, -1.5, 2.5, 1};
    for (size_t k = 0; k < sizeof exps / sizeof exps[0]; k++) {
        struct par c = {.a = exps[k]};
        GC("pow", f_pow, &c, GC_ALL, (exps[k] == 2 || exps[k] == 3) ? x : p);
    }
    struct par cl = {.a = -0.5, .b = 0.7}, cl_lo = {.a = -0.3, .b = INFINITY}, cl_hi = {.a = -INFINITY, .b = 0.2};
    GC("clamp", f_clamp, &cl, GC_ALL, x);
    GC("clamp lo", f_clamp, &cl_lo, GC_ALL, x);
    GC("clamp hi", f_clamp, &cl_hi, GC_ALL, x);
    struct par af = {.a = 2.5, .b = -1}, af0 = {.a = 0, .b = 3};
    GC("affine", f_affine, &af, GC_ALL, x);
    GC("affine mul 0", f_affine, &af0, GC_ALL, x);
    GC("to_dtype f64", f_to_f64, NULL, GC_ALL, x);
    GC("transpose+contiguous+mul", f_view_then_mul, NULL, GC_ALL, x);
    RELEASE(x, p, s);
}

static void test_grad_binary_broadcast(void)
{
    struct {
        const char *name;
        binary_fn f;
    } ops[] = {{"add", rt_add}, {"sub", rt_sub}, {"mul", rt_mul}, {"div", rt_div}, {"maximum", rt_maximum},
               {"minimum", rt_minimum}};
    struct {
        int na, nb;
        int64_t sa[3], sb[3];
    } shapes[] = {{2, 2, {3, 4}, {3, 4}}, {2, 1, {3, 4}, {4}},   {3, 2, {2, 1, 4}, {3, 1}},
                  {0, 2, {0}, {2, 3}},    {2, 2, {3, 1}, {1, 4}}, {2, 2, {3, 4}, {3, 1}}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        struct rt_tensor *a = R(shapes[s].na, shapes[s].sa, -2, 2, 10 + s);
        struct rt_tensor *b = R(shapes[s].nb, shapes[s].sb, 0.5, 2, 20 + s); /* positive: safe divisor */
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            struct bin_ctx c = {ops[k].f};
            char what[64];
            snprintf(what, sizeof what, "%s shapes #%zu", ops[k].name, s);
            GC(what, f_binary, &c, GC_ALL, a, b);
            GC(what, f_binary, &c, GC_ALL, b, a);
        }
        RELEASE(a, b);
    }
    /* the same tensor twice: x*x, x-x, x/x */
    struct rt_tensor *x = R(2, H_SHAPE(2, 3), 0.5, 2, 30);
    struct bin_ctx mul = {rt_mul}, sub = {rt_sub}, dv = {rt_div};
    GC("mul(x,x)", f_binary, &mul, GC_ALL, x, x);
    GC("sub(x,x)", f_binary, &sub, GC_ALL, x, x);
    GC("div(x,x)", f_binary, &dv, GC_ALL, x, x);
    /* where with a broadcast condition */
    struct rt_tensor *cond = h_tensor(RT_U8, 2, H_SHAPE(3, 1), H_VALS(1, 0, 1));
    struct rt_tensor *a = R(2, H_SHAPE(3, 4), -1, 1, 31), *b = R(1, H_SHAPE(4), -1, 1, 32);
    struct rt_tensor *cond2 = h_tensor(RT_U8, 2, H_SHAPE(3, 4), H_VALS(1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0));
    GC("where", f_where, NULL, GC_ALL, cond, a, b);
    GC("where", f_where, NULL, GC_ALL, cond2, b, a);
    RELEASE(x, cond, a, b, cond2);
}

static void test_grad_reductions(void)
{
    struct rt_tensor *x = R(3, H_SHAPE(2, 3, 4), -2, 2, 40);
    struct rt_tensor *p = R(3, H_SHAPE(2, 3, 4), 0.3, 2, 41);
    struct {
        const char *name;
        reduce_fn f;
    } ops[] = {{"sum", rt_sum}, {"mean", rt_mean}, {"logsumexp", rt_logsumexp}};
    for (int dim = -1; dim < 3; dim++)
        for (int kd = 0; kd < 2; kd++) {
            char what[64];
            for (size_t k = 0; k < 3; k++) {
                struct red_ctx c = {ops[k].f, dim, kd};
                snprintf(what, sizeof what, "%s dim %d keepdim %d", ops[k].name, dim, kd);
                GC(what, f_reduce, &c, GC_ALL, x);
            }
            double ps[] = {1, 2, 3, 0.5, INFINITY};
            for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
                struct par c = {.a = ps[k], .dim = dim, .keepdim = kd};
                snprintf(what, sizeof what, "norm p %g dim %d keepdim %d", ps[k], dim, kd);
                /* p = inf is max |x|: expanded inputs repeat values and make ties */
                GC(what, f_norm, &c, isinf(ps[k]) ? GC_STRIDED : GC_ALL, ps[k] == 0.5 ? p : x);
            }
            struct par c = {.dim = dim, .keepdim = kd};
            snprintf(what, sizeof what, "max dim %d keepdim %d", dim, kd);
            GC(what, f_max, &c, GC_STRIDED, x);
            snprintf(what, sizeof what, "min dim %d keepdim %d", dim, kd);
            GC(what, f_min, &c, GC_STRIDED, x);
        }
    struct un_ctx all[] = {{rt_sum_all}, {rt_mean_all}, {rt_logsumexp_all}, {rt_max_all}, {rt_min_all}};
    const char *names[] = {"sum_all", "mean_all", "logsumexp_all", "max_all", "min_all"};
    for (int k = 0; k < 5; k++)
        GC(names[k], f_unary, &all[k], k >= 3 ? GC_STRIDED : GC_ALL, x);
    double ps[] = {1, 2, 3, 0.5};
    for (int k = 0; k < 4; k++) {
        struct par c = {.a = ps[k]};
        GC("norm_all", f_norm_all, &c, GC_ALL, k == 3 ? p : x);
    }
    struct par inf = {.a = INFINITY};
    GC("norm_all inf", f_norm_all, &inf, GC_STRIDED, x);
    /* reductions of 0-dim and 1-D tensors */
    struct rt_tensor *s = R(0, NULL, -1, 1, 42), *v = R(1, H_SHAPE(5), -1, 1, 43);
    struct red_ctx sum0 = {rt_sum, 0, false}, lse0 = {rt_logsumexp, -1, true};
    GC("sum of 1-D", f_reduce, &sum0, GC_ALL, v);
    GC("logsumexp of 1-D keepdim", f_reduce, &lse0, GC_ALL, v);
    GC("sum_all of 0-dim", f_unary, &all[0], GC_ALL, s);
    /* sum_to_shape (the reverse of broadcasting) */
    struct par st1 = {.nd = 2, .shape = {3, 1}}, st2 = {.nd = 1, .shape = {4}}, st3 = {.nd = 0};
    GC("sum_to_shape (3,1)", f_sum_to_shape, &st1, GC_ALL, x);
    GC("sum_to_shape (4)", f_sum_to_shape, &st2, GC_ALL, x);
    GC("sum_to_shape ()", f_sum_to_shape, &st3, GC_ALL, x);
    RELEASE(x, p, s, v);
}

static void test_grad_matmul(void)
{
    struct bin_ctx mm = {rt_matmul}, bmm = {rt_bmm};
    struct {
        int na, nb;
        int64_t sa[3], sb[3];
    } shapes[] = {{2, 2, {3, 4}, {4, 5}}, {3, 3, {2, 3, 4}, {2, 4, 5}}, {3, 2, {2, 3, 4}, {4, 5}},
                  {1, 2, {4}, {4, 5}},    {2, 1, {3, 4}, {4}},          {1, 1, {4}, {4}},
                  {2, 2, {1, 1}, {1, 1}}, {2, 2, {5, 1}, {1, 3}}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        struct rt_tensor *a = R(shapes[s].na, shapes[s].sa, -1, 1, 50 + s), *b = R(shapes[s].nb, shapes[s].sb, -1, 1, 60 + s);
        char what[64];
        snprintf(what, sizeof what, "matmul shapes #%zu", s);
        GC(what, f_binary, &mm, GC_ALL, a, b);
        if (shapes[s].na == 3 && shapes[s].nb == 3)
            GC("bmm", f_binary, &bmm, GC_ALL, a, b);
        RELEASE(a, b);
    }
    struct rt_tensor *x = R(2, H_SHAPE(4, 3), -1, 1, 70), *w = R(2, H_SHAPE(5, 3), -1, 1, 71), *bias = R(1, H_SHAPE(5), -1, 1, 72);
    struct par with = {.n = 3}, without = {.n = 2};
    GC("linear", f_linear, &with, GC_ALL, x, w, bias);
    GC("linear without bias", f_linear, &without, GC_ALL, x, w);
    RELEASE(x, w, bias);
}

static void test_grad_softmax(void)
{
    struct rt_tensor *x = R(3, H_SHAPE(2, 3, 4), -3, 3, 80);
    for (int dim = -1; dim < 3; dim++)
        for (int t = 0; t < 3; t++) {
            struct par c = {.dim = dim, .a = t == 0 ? 1 : t == 1 ? 2.5 : 0.5};
            char what[64];
            snprintf(what, sizeof what, "softmax dim %d T %g", dim, c.a);
            GC(what, f_softmax, &c, GC_ALL, x);
            snprintf(what, sizeof what, "log_softmax dim %d T %g", dim, c.a);
            GC(what, f_log_softmax, &c, GC_ALL, x);
        }
    /* large logits: gradients stay finite and correct */
    struct rt_tensor *big = h_tensor(RT_F64, 2, H_SHAPE(2, 3), H_VALS(1e4, -1e4, 9999.5, -1e4, -1e4 + 1, -1e4 + 0.5));
    struct par c = {.dim = 1, .a = 1};
    /* inputs of 1e4 carry only ~1e-12 absolute precision: a larger step keeps differences exact enough */
    gradcheck_ex("softmax extreme", f_softmax, &c, 1, IN(big), GC_STRIDED, 1e-4, 1e-6, __FILE__, __LINE__);
    gradcheck_ex("log_softmax extreme", f_log_softmax, &c, 1, IN(big), GC_STRIDED, 1e-4, 1e-6, __FILE__, __LINE__);
    RELEASE(x, big);
}

static void test_grad_indexing(void)
{
    struct rt_tensor *x = R(3, H_SHAPE(4, 3, 5), -1, 1, 90);
    for (int dim = 0; dim < 3; dim++) {
        int64_t sz = x->shape[dim];
        struct rt_tensor *idx = h_tensor(RT_I64, 1, H_SHAPE(5), H_VALS(0, (double)(sz - 1), 1, 1, 0));
        struct par c = {.dim = dim};
        char what[64];
        snprintf(what, sizeof what, "index_select dim %d (repeats)", dim);
        GC(what, f_index_select, &c, GC_ALL, x, idx);
        int64_t ishape[3] = {4, 3, 5};
        ishape[dim] = 3;
        int64_t n = ishape[0] * ishape[1] * ishape[2];
        double *iv = malloc(sizeof(double) * (size_t)n);
        uint64_t st = 99 + dim;
        for (int64_t i = 0; i < n; i++)
            iv[i] = (double)(int64_t)(h_uniform(&st) * (double)sz);
        struct rt_tensor *gi = h_tensor(RT_I64, 3, ishape, iv), *src = R(3, ishape, -1, 1, 95 + dim);
        free(iv);
        snprintf(what, sizeof what, "gather dim %d", dim);
        GC(what, f_gather, &c, GC_ALL, x, gi);
        snprintf(what, sizeof what, "scatter_add dim %d (x and src)", dim);
        GC(what, f_scatter_add, &c, GC_ALL, x, gi, src);
        RELEASE(idx, gi, src);
    }
    struct rt_tensor *neg = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(4, 0));
    struct par cm = {.dim = -1};
    GC("index_select dim -1", f_index_select, &cm, GC_ALL, x, neg);
    RELEASE(x, neg);
}

static void test_grad_join(void)
{
    struct rt_tensor *a = R(2, H_SHAPE(2, 3), -1, 1, 100), *b = R(2, H_SHAPE(1, 3), -1, 1, 101);
    struct rt_tensor *c = R(2, H_SHAPE(3, 3), -1, 1, 102), *d = R(2, H_SHAPE(2, 2), -1, 1, 103);
    struct par c0 = {.n = 3, .dim = 0}, c1 = {.n = 2, .dim = 1}, cm = {.n = 2, .dim = -1};
    GC("cat dim 0", f_cat, &c0, GC_ALL, a, b, c);
    GC("cat dim 1", f_cat, &c1, GC_ALL, a, d);
    GC("cat dim -1", f_cat, &cm, GC_ALL, d, a);
    struct rt_tensor *p = R(2, H_SHAPE(2, 3), -1, 1, 104), *q = R(2, H_SHAPE(2, 3), -1, 1, 105);
    for (int dim = -1; dim < 3; dim++) {
        struct par s = {.n = 3, .dim = dim};
        char what[64];
        snprintf(what, sizeof what, "stack dim %d", dim);
        GC(what, f_stack, &s, GC_ALL, a, p, q);
    }
    struct par same = {.n = 2, .dim = 0};
    GC("cat(x, x)", f_cat, &same, GC_ALL, a, a);
    GC("stack(x, x)", f_stack, &same, GC_ALL, a, a);
    RELEASE(a, b, c, d, p, q);
}

static void test_grad_views(void)
{
    struct rt_tensor *x = R(3, H_SHAPE(2, 3, 4), -1, 1, 110);
    struct par v1 = {.nd = 2, .shape = {6, 4}}, v2 = {.nd = 3, .shape = {4, -1, 2}}, v3 = {.nd = 1, .shape = {24}};
    GC("view (6,4)", f_view, &v1, GC_CONTIG, x); /* view needs compatible strides */
    GC("view (4,-1,2)", f_view, &v2, GC_CONTIG, x);
    GC("reshape (6,4)", f_reshape, &v1, GC_ALL, x);
    GC("reshape (24)", f_reshape, &v3, GC_ALL, x);
    GC("reshape (4,-1,2)", f_reshape, &v2, GC_ALL, x);
    for (int dim = 0; dim < 3; dim++) {
        struct par n = {.dim = dim, .a = 1, .b = x->shape[dim] - 1}, s = {.dim = dim, .a = x->shape[dim] - 1};
        GC("narrow", f_narrow, &n, GC_ALL, x);
        GC("select", f_select, &s, GC_ALL, x);
    }
    struct par sm = {.dim = -2, .a = 0};
    GC("select dim -2", f_select, &sm, GC_ALL, x);
    struct par t01 = {.dim = 0, .dim2 = 1}, t02 = {.dim = 0, .dim2 = -1}, t12 = {.dim = 1, .dim2 = 2};
    GC("transpose 0 1", f_transpose, &t01, GC_ALL, x);
    GC("transpose 0 -1", f_transpose, &t02, GC_ALL, x);
    GC("transpose 1 2", f_transpose, &t12, GC_ALL, x);
    struct par pm = {.dims = {2, 0, 1}}, pm2 = {.dims = {1, 2, 0}};
    GC("permute (2,0,1)", f_permute, &pm, GC_ALL, x);
    GC("permute (1,2,0)", f_permute, &pm2, GC_ALL, x);
    struct rt_tensor *col = R(2, H_SHAPE(3, 1), -1, 1, 111);
    struct par e1 = {.nd = 3, .shape = {2, 3, 4}}, e2 = {.nd = 2, .shape = {-1, 5}};
    GC("expand (3,1)->(2,3,4)", f_expand, &e1, GC_ALL, col);
    GC("expand (3,1)->(3,5)", f_expand, &e2, GC_ALL, col);
    for (int dim = -1; dim < 4; dim++) {
        struct par u = {.dim = dim};
        GC("unsqueeze", f_unsqueeze, &u, GC_ALL, x);
    }
    struct rt_tensor *y = R(4, H_SHAPE(2, 1, 3, 1), -1, 1, 112);
    struct par q1 = {.dim = 1}, q3 = {.dim = -1}, qa = {.dim = -99}, q0 = {.dim = 0};
    GC("squeeze 1", f_squeeze, &q1, GC_ALL, y);
    GC("squeeze -1", f_squeeze, &q3, GC_ALL, y);
    GC("squeeze all", f_squeeze, &qa, GC_ALL, y);
    GC("squeeze 0 (no-op)", f_squeeze, &q0, GC_ALL, y);
    struct par f01 = {.dim = 0, .dim2 = 1}, f12 = {.dim = 1, .dim2 = -1}, fall = {.dim = 0, .dim2 = -1};
    GC("flatten 0 1", f_flatten, &f01, GC_ALL, x);
    GC("flatten 1 -1", f_flatten, &f12, GC_ALL, x);
    GC("flatten all", f_flatten, &fall, GC_ALL, x);
    RELEASE(x, col, y);
}

/* A small network: log_softmax(relu(x W1^T + b1) W2^T + b2), NLL via gather, mean. */
static enum rt_status f_mlp_nll(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    (void)c;
    struct rt_tensor *h = NULL, *r = NULL, *z = NULL, *ls = NULL, *g = NULL, *m = NULL;
    enum rt_status st = rt_linear(in[0], in[1], in[2], &h);
    if (st == RT_OK)
        st = rt_tanh(h, &r);
    if (st == RT_OK)
        st = rt_linear(r, in[3], in[4], &z);
    if (st == RT_OK)
        st = rt_log_softmax(z, 1, 2.0, &ls);
    if (st == RT_OK)
        st = rt_gather(ls, 1, in[5], &g);
    if (st == RT_OK)
        st = rt_mean_all(g, &m);
    if (st == RT_OK)
        st = rt_neg(m, out);
    RELEASE(h, r, z, ls, g, m);
    return st;
}

static void test_grad_composite(void)
{
    struct rt_tensor *x = R(2, H_SHAPE(4, 5), -1, 1, 120), *w1 = R(2, H_SHAPE(6, 5), -1, 1, 121);
    struct rt_tensor *b1 = R(1, H_SHAPE(6), -1, 1, 122), *w2 = R(2, H_SHAPE(3, 6), -1, 1, 123);
    struct rt_tensor *b2 = R(1, H_SHAPE(3), -1, 1, 124), *lab = h_tensor(RT_I64, 2, H_SHAPE(4, 1), H_VALS(0, 2, 1, 2));
    GC("mlp nll", f_mlp_nll, NULL, GC_ALL, x, w1, b1, w2, b2, lab);
    RELEASE(x, w1, b1, w2, b2, lab);
}

/* f32 -> f64 conversion passes gradients through (checked directly: finite differences in f32 are too coarse) */
static void test_grad_to_dtype_f32(void)
{
    struct rt_tensor *x = h_rand(RT_F64, 2, H_SHAPE(2, 3), -1, 1, 130), *f = NULL, *d = NULL, *w = NULL, *y = NULL;
    struct rt_tensor *s = NULL;
    REQUIRE_OK(rt_requires_grad_(x, true));
    REQUIRE_OK(rt_to_dtype(x, RT_F32, &f));
    CHECK(f->dtype == RT_F32 && f->requires_grad, "f32 copy requires grad");
    REQUIRE_OK(rt_to_dtype(f, RT_F64, &d));
    w = h_tensor(RT_F64, 2, H_SHAPE(2, 3), H_VALS(1, 2, 3, 4, 5, 6));
    REQUIRE_OK(rt_mul(d, w, &y));
    REQUIRE_OK(rt_sum_all(y, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    REQUIRE(x->grad, "x has a grad");
    CHECK(x->grad->dtype == RT_F64, "grad in the leaf's dtype: %s", rt_dtype_name(x->grad->dtype));
    CHECK_TENSOR_VALUES(x->grad, H_VALS(1, 2, 3, 4, 5, 6), 6, 0, 0);
    RELEASE(x, f, d, w, y, s);
}

/* ------------------------------------------------------------------ engine behaviour */

static struct rt_tensor *leaf(int nd, const int64_t *shape, uint64_t seed)
{
    struct rt_tensor *t = h_rand(RT_F64, nd, shape, -1, 1, seed);
    if (t && rt_requires_grad_(t, true) != RT_OK)
        h_fail(__FILE__, __LINE__, "requires_grad: %s", rt_error_msg());
    return t;
}

static void test_accumulation_two_backwards(void)
{
    struct rt_tensor *x = leaf(1, H_SHAPE(4), 140);
    double *xv = h_values(x);
    for (int round = 1; round <= 2; round++) {
        struct rt_tensor *y, *s;
        REQUIRE_OK(rt_mul(x, x, &y));
        REQUIRE_OK(rt_sum_all(y, &s));
        REQUIRE_OK(rt_backward(s, NULL, false));
        double want[4];
        for (int i = 0; i < 4; i++)
            want[i] = 2 * xv[i] * round;
        CHECK_TENSOR_VALUES(x->grad, want, 4, 1e-15, 1e-15);
        RELEASE(y, s);
    }
    rt_tensor_zero_grad(x);
    CHECK(x->grad == NULL || (h_elem(x->grad, 0) == 0 && h_elem(x->grad, 3) == 0), "zero_grad");
    /* a diamond: y = exp(x); z = y*y + y -> dz/dx = (2y + 1) y */
    struct rt_tensor *y, *yy, *z, *s;
    REQUIRE_OK(rt_exp(x, &y));
    REQUIRE_OK(rt_mul(y, y, &yy));
    REQUIRE_OK(rt_add(yy, y, &z));
    REQUIRE_OK(rt_sum_all(z, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    double want[4];
    for (int i = 0; i < 4; i++)
        want[i] = (2 * exp(xv[i]) + 1) * exp(xv[i]);
    CHECK_TENSOR_VALUES(x->grad, want, 4, 1e-14, 1e-14);
    free(xv);
    RELEASE(x, y, yy, z, s);
}

static void test_no_grad_and_names(void)
{
    struct rt_tensor *x = leaf(2, H_SHAPE(2, 3), 150), *y = NULL, *z = NULL, *v = NULL, *c = NULL;
    CHECK(rt_grad_enabled(), "grad on by default");
    CHECK(rt_tensor_grad_fn_name(x) == NULL, "a leaf has no grad_fn");
    REQUIRE_OK(rt_exp(x, &y));
    CHECK(y->requires_grad && rt_tensor_grad_fn_name(y) != NULL, "exp records a node");
    if (rt_tensor_grad_fn_name(y))
        CHECK(strstr(rt_tensor_grad_fn_name(y), "Exp") != NULL, "name %s", rt_tensor_grad_fn_name(y));
    REQUIRE_OK(rt_transpose(x, 0, 1, &v));
    CHECK(rt_tensor_grad_fn_name(v) != NULL, "views record nodes");
    bool was = rt_grad_set_enabled(false);
    CHECK(was && !rt_grad_enabled(), "grad off");
    REQUIRE_OK(rt_exp(x, &z));
    CHECK(rt_tensor_grad_fn_name(z) == NULL && !z->requires_grad, "no-grad records nothing");
    struct rt_tensor *z2, *z3;
    REQUIRE_OK(rt_matmul(x, v, &z2));
    REQUIRE_OK(rt_narrow(x, 1, 0, 2, &z3));
    CHECK(rt_tensor_grad_fn_name(z2) == NULL && !z2->requires_grad, "no-grad matmul");
    CHECK(rt_tensor_grad_fn_name(z3) == NULL, "no-grad view");
    CHECK_STATUS(rt_backward(z2, NULL, false), RT_ERR_AUTOGRAD, "does not require grad");
    rt_grad_set_enabled(was);
    /* an op on tensors that do not need grad records nothing even with grad on */
    struct rt_tensor *p = h_rand(RT_F64, 1, H_SHAPE(3), 0, 1, 1);
    REQUIRE_OK(rt_exp(p, &c));
    CHECK(!c->requires_grad && rt_tensor_grad_fn_name(c) == NULL, "no inputs need grad");
    CHECK_STATUS(rt_backward(c, NULL, false), RT_ERR_AUTOGRAD, "does not require grad");
    RELEASE(x, y, z, v, c, z2, z3, p);
}

static void test_partial_requires_grad(void)
{
    struct rt_tensor *a = leaf(1, H_SHAPE(3), 160), *b = h_rand(RT_F64, 1, H_SHAPE(3), 1, 2, 161), *y, *s;
    REQUIRE_OK(rt_mul(a, b, &y));
    REQUIRE_OK(rt_sum_all(y, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    CHECK(b->grad == NULL, "no grad for a tensor that does not require it");
    double *bv = h_values(b);
    CHECK_TENSOR_VALUES(a->grad, bv, 3, 0, 0);
    free(bv);
    RELEASE(a, b, y, s);
}

static void test_detach(void)
{
    struct rt_tensor *x = leaf(1, H_SHAPE(3), 170), *d, *y, *s;
    REQUIRE_OK(rt_detach(x, &d));
    CHECK(!d->requires_grad && rt_tensor_grad_fn_name(d) == NULL, "detached");
    REQUIRE_OK(rt_mul(x, d, &y)); /* d/dx (x * const) = const = x */
    REQUIRE_OK(rt_sum_all(y, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    double *xv = h_values(x);
    CHECK_TENSOR_VALUES(x->grad, xv, 3, 0, 0);
    free(xv);
    CHECK(d->grad == NULL, "a detached tensor gets no grad");
    /* detach of a non-leaf cuts the graph */
    struct rt_tensor *e, *ed, *z, *t;
    REQUIRE_OK(rt_exp(x, &e));
    REQUIRE_OK(rt_detach(e, &ed));
    REQUIRE_OK(rt_mul(ed, x, &z));
    REQUIRE_OK(rt_sum_all(z, &t));
    rt_tensor_zero_grad(x);
    REQUIRE_OK(rt_backward(t, NULL, false));
    double *ev = h_values(e);
    CHECK_TENSOR_VALUES(x->grad, ev, 3, 1e-15, 0);
    free(ev);
    RELEASE(x, d, y, s, e, ed, z, t);
}

static void test_backward_explicit_grad(void)
{
    struct rt_tensor *x = leaf(2, H_SHAPE(2, 3), 180), *y, *g;
    REQUIRE_OK(rt_affine(x, 3, 1, &y));
    g = h_tensor(RT_F64, 2, H_SHAPE(2, 3), H_VALS(1, -1, 2, 0, 0.5, 4));
    CHECK_STATUS(rt_backward(y, NULL, false), RT_ERR_AUTOGRAD, "single element");
    struct rt_tensor *bad = h_tensor(RT_F64, 1, H_SHAPE(6), H_VALS(1, 1, 1, 1, 1, 1));
    CHECK_STATUS(rt_backward(y, bad, false), RT_ERR_SHAPE, "gradient shape (6)");
    REQUIRE_OK(rt_backward(y, g, false));
    CHECK_TENSOR_VALUES(x->grad, H_VALS(3, -3, 6, 0, 1.5, 12), 6, 0, 0);
    /* a one-element non-scalar root needs no gradient */
    struct rt_tensor *one, *r;
    REQUIRE_OK(rt_narrow(x, 1, 0, 1, &one));
    REQUIRE_OK(rt_narrow(one, 0, 1, 1, &r)); /* (1,1) */
    rt_tensor_zero_grad(x);
    REQUIRE_OK(rt_backward(r, NULL, false));
    CHECK_TENSOR_VALUES(x->grad, H_VALS(0, 0, 0, 1, 0, 0), 6, 0, 0);
    /* an f32 gradient for an f64 root is converted */
    struct rt_tensor *y2, *g32;
    REQUIRE_OK(rt_mul(x, x, &y2));
    REQUIRE_OK(rt_to_dtype(g, RT_F32, &g32));
    rt_tensor_zero_grad(x);
    REQUIRE_OK(rt_backward(y2, g32, false));
    double *xv = h_values(x), want[6], gv[6] = {1, -1, 2, 0, 0.5, 4};
    for (int i = 0; i < 6; i++)
        want[i] = 2 * xv[i] * gv[i];
    CHECK_TENSOR_VALUES(x->grad, want, 6, 1e-15, 0);
    free(xv);
    RELEASE(x, y, g, bad, one, r, y2, g32);
}

static void test_inplace_saved_tensor(void)
{
    struct rt_tensor *x = leaf(1, H_SHAPE(3), 190), *y, *s;
    REQUIRE_OK(rt_exp(x, &y)); /* ExpBackward saves its output y */
    REQUIRE_OK(rt_sum_all(y, &s));
    /* the sum does not need y's values, but exp's backward does */
    struct rt_tensor *y2, *s2;
    REQUIRE_OK(rt_mul(y, y, &y2));
    REQUIRE_OK(rt_sum_all(y2, &s2));
    bool was = rt_grad_set_enabled(false);
    CHECK_OK(rt_add_scalar_(y, 1));
    rt_grad_set_enabled(was);
    CHECK_STATUS(rt_backward(s2, NULL, false), RT_ERR_AUTOGRAD, "modified in place");
    CHECK(strstr(rt_error_msg(), "version") != NULL, "message mentions the version: %s", rt_error_msg());
    CHECK(x->grad == NULL || h_elem(x->grad, 0) == 0, "no gradient from a refused backward");
    /* also through a view of the saved tensor */
    struct rt_tensor *a, *b, *sa, *v;
    REQUIRE_OK(rt_sigmoid(x, &a)); /* saves output a */
    REQUIRE_OK(rt_affine(a, 2, 0, &b));
    REQUIRE_OK(rt_sum_all(b, &sa));
    REQUIRE_OK(rt_detach(a, &v)); /* shares a's storage and version */
    CHECK_OK(rt_mul_scalar_(v, 2));
    CHECK_STATUS(rt_backward(sa, NULL, false), RT_ERR_AUTOGRAD, "in place");
    RELEASE(x, y, s, y2, s2, a, b, sa, v);
}

static void test_retain_graph(void)
{
    struct rt_tensor *x = leaf(1, H_SHAPE(3), 200), *y, *s;
    REQUIRE_OK(rt_tanh(x, &y));
    REQUIRE_OK(rt_sum_all(y, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    CHECK_STATUS(rt_backward(s, NULL, false), RT_ERR_AUTOGRAD, "second time");
    CHECK(strstr(rt_error_msg(), "retain") != NULL, "message suggests retaining the graph: %s", rt_error_msg());
    RELEASE(y, s);
    rt_tensor_zero_grad(x);
    REQUIRE_OK(rt_tanh(x, &y));
    REQUIRE_OK(rt_sum_all(y, &s));
    REQUIRE_OK(rt_backward(s, NULL, true));
    double *g1 = h_values(x->grad);
    REQUIRE_OK(rt_backward(s, NULL, true));
    REQUIRE_OK(rt_backward(s, NULL, false));
    double want[3];
    for (int i = 0; i < 3; i++)
        want[i] = 3 * g1[i];
    CHECK_TENSOR_VALUES(x->grad, want, 3, 1e-15, 0);
    double xv = h_elem(x, 0);
    CHECK_CLOSE(g1[0], 1 - tanh(xv) * tanh(xv), 1e-15);
    free(g1);
    RELEASE(x, y, s);
}

static void test_deep_chain(void)
{
    struct rt_tensor *x = leaf(0, NULL, 210), *y;
    REQUIRE(x, "leaf");
    rt_tensor_retain(x);
    y = x;
    for (int i = 0; i < 10000; i++) {
        struct rt_tensor *n;
        REQUIRE_OK(rt_affine(y, 1.0001, 0.001, &n));
        rt_tensor_release(y);
        y = n;
    }
    REQUIRE_OK(rt_backward(y, NULL, false));
    double g = x->grad ? h_elem(x->grad, 0) : NAN;
    CHECK_CLOSE(g, pow(1.0001, 10000), 1e-10);
    RELEASE(x, y);
}

static void test_deep_graph_dropped(void)
{
    /* 100000 recorded ops never backwarded: releasing the root frees the graph without recursion */
    struct rt_tensor *x = leaf(1, H_SHAPE(2), 220), *y;
    rt_tensor_retain(x);
    y = x;
    for (int i = 0; i < 100000; i++) {
        struct rt_tensor *n;
        REQUIRE_OK(i % 2 ? rt_neg(y, &n) : rt_tanh(y, &n));
        rt_tensor_release(y);
        y = n;
    }
    rt_tensor_release(y);
    CHECK(rt_tensor_live_count() >= 1, "x alive");
    /* and a 100000-deep backward */
    rt_tensor_retain(x);
    y = x;
    for (int i = 0; i < 100000; i++) {
        struct rt_tensor *n;
        REQUIRE_OK(rt_neg(y, &n));
        rt_tensor_release(y);
        y = n;
    }
    struct rt_tensor *s;
    REQUIRE_OK(rt_sum_all(y, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    CHECK_TENSOR_VALUES(x->grad, H_VALS(1, 1), 2, 0, 0);
    RELEASE(x, y, s);
}

static void test_no_leaks(void)
{
    int64_t live = rt_tensor_live_count();
    size_t mem = rt_memory_in_use(RT_CPU);
    {
        /* backwarded graph */
        struct rt_tensor *x = leaf(2, H_SHAPE(3, 4), 230), *w = leaf(2, H_SHAPE(5, 4), 231), *y, *z, *s;
        REQUIRE_OK(rt_linear(x, w, NULL, &y));
        REQUIRE_OK(rt_log_softmax(y, 1, 1, &z));
        REQUIRE_OK(rt_mean_all(z, &s));
        REQUIRE_OK(rt_backward(s, NULL, false));
        RELEASE(x, w, y, z, s);
    }
    CHECK(rt_tensor_live_count() == live && rt_memory_in_use(RT_CPU) == mem, "backwarded graph freed");
    {
        /* un-backwarded graph, released leaves first, then the root */
        struct rt_tensor *x = leaf(2, H_SHAPE(3, 4), 232), *y, *z, *s;
        REQUIRE_OK(rt_exp(x, &y));
        REQUIRE_OK(rt_softmax(y, 0, 2, &z));
        REQUIRE_OK(rt_sum_all(z, &s));
        RELEASE(x, y, z);
        rt_tensor_release(s);
    }
    CHECK(rt_tensor_live_count() == live && rt_memory_in_use(RT_CPU) == mem, "dropped graph freed");
    {
        /* retained graph released without a final backward */
        struct rt_tensor *x = leaf(1, H_SHAPE(4), 233), *y, *s;
        REQUIRE_OK(rt_sigmoid(x, &y));
        REQUIRE_OK(rt_sum_all(y, &s));
        REQUIRE_OK(rt_backward(s, NULL, true));
        RELEASE(s, y, x);
    }
    CHECK(rt_tensor_live_count() == live && rt_memory_in_use(RT_CPU) == mem, "retained graph freed");
    {
        /* failed backward (modified saved tensor) frees everything too */
        struct rt_tensor *x = leaf(1, H_SHAPE(4), 234), *y, *s;
        REQUIRE_OK(rt_exp(x, &y));
        REQUIRE_OK(rt_sum_all(y, &s));
        bool was = rt_grad_set_enabled(false);
        CHECK_OK(rt_fill_(y, 0));
        rt_grad_set_enabled(was);
        CHECK_STATUS(rt_backward(s, NULL, false), RT_ERR_AUTOGRAD, "modified");
        RELEASE(x, y, s);
    }
    CHECK(rt_tensor_live_count() == live && rt_memory_in_use(RT_CPU) == mem, "failed backward freed");
}

static void test_interrupt_backward(void)
{
    struct rt_tensor *x = leaf(1, H_SHAPE(3), 240), *y, *s;
    REQUIRE_OK(rt_exp(x, &y));
    REQUIRE_OK(rt_sum_all(y, &s));
    rt_interrupt_request();
    CHECK_STATUS(rt_backward(s, NULL, true), RT_ERR_INTERRUPTED, "interrupted");
    rt_interrupt_clear();
    RELEASE(x, y, s);
}

/* Gradients at kinks, ties and -inf follow PyTorch 1.13 (values checked there). */
static void grad_of(struct rt_tensor *x, enum rt_status (*build)(struct rt_tensor *, struct rt_tensor **),
                    const double *want, const char *what)
{
    struct rt_tensor *y = NULL, *s = NULL;
    rt_tensor_zero_grad(x);
    if (CHECK_OK(build(x, &y)) && CHECK_OK(rt_sum_all(y, &s)) && CHECK_OK(rt_backward(s, NULL, false))) {
        if (CHECK(x->grad != NULL, "%s: no grad", what))
            h_tensor_values(x->grad, want, rt_tensor_numel(x), 1e-6, 1e-7, what, __FILE__, __LINE__);
    }
    RELEASE(y, s);
}
static enum rt_status b_norm2(struct rt_tensor *x, struct rt_tensor **o) { return rt_norm_all(x, 2, o); }
static enum rt_status b_norm1(struct rt_tensor *x, struct rt_tensor **o) { return rt_norm_all(x, 1, o); }
static enum rt_status b_norm2d(struct rt_tensor *x, struct rt_tensor **o) { return rt_norm(x, 2, 0, false, o); }
static enum rt_status b_clamp01(struct rt_tensor *x, struct rt_tensor **o) { return rt_clamp(x, 0, 1, o); }
static enum rt_status b_lse(struct rt_tensor *x, struct rt_tensor **o) { return rt_logsumexp(x, 0, false, o); }
static enum rt_status b_softmax_w(struct rt_tensor *x, struct rt_tensor **o)
{
    struct rt_tensor *sm = NULL, *w = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(1, 2, 3));
    enum rt_status st = rt_softmax(x, 0, 1, &sm);
    if (st == RT_OK)
        st = rt_mul(sm, w, o);
    RELEASE(sm, w);
    return st;
}
static enum rt_status b_log_softmax_w(struct rt_tensor *x, struct rt_tensor **o)
{
    struct rt_tensor *sm = NULL, *w = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(1, 2, 3));
    enum rt_status st = rt_log_softmax(x, 0, 1, &sm);
    /* the -inf entry times a weight stays -inf in the sum; take only the finite part via narrow */
    struct rt_tensor *fin = NULL, *wn = NULL;
    if (st == RT_OK)
        st = rt_narrow(sm, 0, 1, 2, &fin);
    if (st == RT_OK)
        st = rt_narrow(w, 0, 1, 2, &wn);
    if (st == RT_OK)
        st = rt_mul(fin, wn, o);
    RELEASE(sm, w, fin, wn);
    return st;
}
static enum rt_status b_max_dim(struct rt_tensor *x, struct rt_tensor **o) { return rt_max(x, 0, false, o, NULL); }
static enum rt_status b_maximum_tie(struct rt_tensor *x, struct rt_tensor **o)
{
    struct rt_tensor *b = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(2, 0, 1));
    enum rt_status st = rt_maximum(x, b, o);
    rt_tensor_release(b);
    return st;
}

static void test_subgradients_match_torch(void)
{
    struct rt_tensor *z = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(0, 0, 0));
    REQUIRE_OK(rt_requires_grad_(z, true));
    grad_of(z, b_norm2, H_VALS(0, 0, 0), "norm2 at 0");
    grad_of(z, b_norm2d, H_VALS(0, 0, 0), "norm2 along dim at 0");
    grad_of(z, b_norm1, H_VALS(0, 0, 0), "norm1 at 0");
    grad_of(z, rt_relu, H_VALS(0, 0, 0), "relu at 0");
    grad_of(z, rt_abs, H_VALS(0, 0, 0), "abs at 0");
    grad_of(z, b_clamp01, H_VALS(1, 1, 1), "clamp at its lower bound");
    struct rt_tensor *m = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(-INFINITY, 0, 1));
    REQUIRE_OK(rt_requires_grad_(m, true));
    grad_of(m, b_lse, H_VALS(0, 0.2689414213699951, 0.7310585786300049), "logsumexp with -inf");
    grad_of(m, b_softmax_w, H_VALS(0, -0.19661193324148185, 0.19661193324148185), "softmax with -inf");
    grad_of(m, b_log_softmax_w, H_VALS(0, 2 - 5 * 0.2689414213699951, 3 - 5 * 0.7310585786300049),
            "log_softmax with -inf");
    struct rt_tensor *t = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(2, 2, 1));
    REQUIRE_OK(rt_requires_grad_(t, true));
    grad_of(t, rt_max_all, H_VALS(0.5, 0.5, 0), "max_all with a tie (evenly split)");
    grad_of(t, b_max_dim, H_VALS(1, 0, 0), "max along a dim with a tie (to the returned index)");
    grad_of(t, b_maximum_tie, H_VALS(0.5, 1, 0.5), "maximum with a tie (halved)");
    struct rt_tensor *ix, *v;
    REQUIRE_OK(rt_max(t, 0, false, &v, &ix));
    CHECK_TENSOR_VALUES(ix, H_VALS(0), 1, 0, 0);
    RELEASE(z, m, t, ix, v);
}

static void test_requires_grad_rules(void)
{
    struct rt_tensor *a = leaf(1, H_SHAPE(2), 250), *y;
    REQUIRE_OK(rt_exp(a, &y));
    CHECK_STATUS(rt_requires_grad_(y, false), RT_ERR_AUTOGRAD, "non-leaf");
    CHECK_OK(rt_requires_grad_(a, false));
    CHECK(!a->requires_grad, "turned off on a leaf");
    /* a leaf that is a view of a plain tensor */
    struct rt_tensor *base = h_rand(RT_F64, 2, H_SHAPE(3, 4), -1, 1, 251), *v, *s;
    REQUIRE_OK(rt_transpose(base, 0, 1, &v));
    REQUIRE_OK(rt_requires_grad_(v, true));
    REQUIRE_OK(rt_sum_all(v, &s));
    REQUIRE_OK(rt_backward(s, NULL, false));
    REQUIRE(v->grad, "grad of a view leaf");
    CHECK_SHAPE(v->grad, 2, 4, 3);
    CHECK(base->grad == NULL, "the base does not get it");
    RELEASE(a, y, base, v, s);
}

int main(void)
{
    RUN(test_gradcheck_catches_errors);
    RUN(test_grad_unary);
    RUN(test_grad_binary_broadcast);
    RUN(test_grad_reductions);
    RUN(test_grad_matmul);
    RUN(test_grad_softmax);
    RUN(test_grad_indexing);
    RUN(test_grad_join);
    RUN(test_grad_views);
    RUN(test_grad_composite);
    RUN(test_grad_to_dtype_f32);
    RUN(test_accumulation_two_backwards);
    RUN(test_no_grad_and_names);
    RUN(test_partial_requires_grad);
    RUN(test_detach);
    RUN(test_backward_explicit_grad);
    RUN(test_inplace_saved_tensor);
    RUN(test_retain_graph);
    RUN(test_deep_chain);
    RUN(test_deep_graph_dropped);
    RUN(test_no_leaks);
    RUN(test_interrupt_backward);
    RUN(test_subgradients_match_torch);
    RUN(test_requires_grad_rules);
    return h_finish();
}
