/* Ops, forward values: PyTorch fixtures (contiguous and strided inputs), naive loops, broadcasting,
 * reductions, BLAS vs naive GEMM, softmax stability, indexing, joining, comparisons, RNG, threads,
 * error paths. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "fixtures.h"

static int64_t numel_of(int nd, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= s[i];
    return n;
}
static void unflat(int nd, const int64_t *shape, int64_t flat, int64_t *idx)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
}
static int64_t flat_of(int nd, const int64_t *shape, const int64_t *idx)
{
    int64_t f = 0;
    for (int d = 0; d < nd; d++)
        f = f * shape[d] + idx[d];
    return f;
}
/* Broadcast a's element for an output multi-index (right-aligned, size-1 dims stick at 0). */
static double bcast_elem(const struct rt_tensor *a, int ond, const int64_t *oidx)
{
    int64_t ai[RT_MAX_DIMS];
    int lead = ond - a->ndim;
    for (int d = 0; d < a->ndim; d++)
        ai[d] = a->shape[d] == 1 ? 0 : oidx[d + lead];
    return h_elem(a, flat_of(a->ndim, a->shape, ai));
}

/* ------------------------------------------------------------------ fixtures */

static void test_fixtures_load(void)
{
    struct fx_file FX;
    REQUIRE(fx_load(RETORT_FIXTURES_DIR "/ops.txt", &FX), "fixtures loaded");
    CHECK(FX.n > 300, "%d cases", FX.n);
    for (int i = 0; i < FX.n; i++)
        CHECK(fx_known_op(FX.cases[i].op), "case %s: op %s has a runner", FX.cases[i].name, FX.cases[i].op);
    /* every runnable op has at least one case */
    for (int k = 0; k < fx_op_count(); k++) {
        bool seen = false;
        for (int i = 0; i < FX.n && !seen; i++)
            seen = !strcmp(FX.cases[i].op, fx_op_name(k));
        CHECK(seen, "op %s has a fixture case", fx_op_name(k));
    }
    fx_free(&FX);
}

static void test_fixtures_contiguous(void)
{
    struct fx_file FX;
    REQUIRE(fx_load(RETORT_FIXTURES_DIR "/ops.txt", &FX), "fixtures loaded");
    int failed = 0;
    for (int i = 0; i < FX.n; i++)
        failed += !fx_run_case(&FX.cases[i], FX.cases[i].in);
    CHECK(failed == 0, "%d of %d fixture cases failed", failed, FX.n);
    fx_free(&FX);
}

static void test_fixtures_strided(void)
{
    struct fx_file FX;
    REQUIRE(fx_load(RETORT_FIXTURES_DIR "/ops.txt", &FX), "fixtures loaded");
    int failed = 0;
    for (int i = 0; i < FX.n; i++) {
        const struct fx_case *c = &FX.cases[i];
        struct rt_tensor *s[FX_MAX_TENSORS] = {0};
        bool ok = true;
        for (int k = 0; k < c->n_in; k++) {
            s[k] = fx_strided_copy(c->in[k]);
            ok &= s[k] != NULL;
        }
        if (!CHECK(ok, "strided copies for %s", c->name))
            failed++;
        else
            failed += !fx_run_case(c, s);
        for (int k = 0; k < c->n_in; k++)
            rt_tensor_release(s[k]);
    }
    CHECK(failed == 0, "%d of %d fixture cases failed with strided inputs", failed, FX.n);
    fx_free(&FX);
}

/* ------------------------------------------------------------------ element-wise vs naive */

typedef enum rt_status (*unary_fn)(struct rt_tensor *, struct rt_tensor **);
static double sigm(double x) { return 1 / (1 + exp(-x)); }
static double relu_d(double x) { return x > 0 ? x : 0; }
static double neg_d(double x) { return -x; }
static double recip_d(double x) { return 1 / x; }

static void test_unary_naive(void)
{
    struct {
        const char *name;
        unary_fn f;
        double (*ref)(double);
        bool positive;
    } ops[] = {{"neg", rt_neg, neg_d, false},     {"exp", rt_exp, exp, false},         {"log", rt_log, log, true},
               {"sqrt", rt_sqrt, sqrt, true},     {"abs", rt_abs, fabs, false},        {"relu", rt_relu, relu_d, false},
               {"sigmoid", rt_sigmoid, sigm, false}, {"tanh", rt_tanh, tanh, false},
               {"reciprocal", rt_reciprocal, recip_d, true}};
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-14 : 1e-6;
        struct rt_tensor *x = h_rand(dt, 2, H_SHAPE(7, 9), -4, 4, 11), *p = h_rand(dt, 2, H_SHAPE(7, 9), 0.1, 5, 12);
        /* a big one to cross any OpenMP threshold */
        struct rt_tensor *xb = h_rand(dt, 1, H_SHAPE(300000), -4, 4, 13);
        struct rt_tensor *pb = h_rand(dt, 1, H_SHAPE(300000), 0.1, 5, 14);
        for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            for (int big = 0; big < 2; big++) {
                struct rt_tensor *in = ops[k].positive ? (big ? pb : p) : (big ? xb : x), *y;
                REQUIRE_OK(ops[k].f(in, &y));
                CHECK(y->dtype == dt, "%s keeps dtype", ops[k].name);
                int64_t n = rt_tensor_numel(in);
                double *want = malloc(sizeof(double) * (size_t)n);
                for (int64_t i = 0; i < n; i++)
                    want[i] = ops[k].ref(h_elem(in, i));
                char what[64];
                snprintf(what, sizeof what, "%s %s%s", ops[k].name, rt_dtype_name(dt), big ? " (large)" : "");
                h_tensor_values(y, want, n, tol, tol, what, __FILE__, __LINE__);
                free(want);
                rt_tensor_release(y);
            }
        }
        /* pow, clamp, affine */
        struct rt_tensor *y;
        REQUIRE_OK(rt_pow(p, 2.5, &y));
        {
            double w[63];
            for (int i = 0; i < 63; i++)
                w[i] = pow(h_elem(p, i), 2.5);
            CHECK_TENSOR_VALUES(y, w, 63, tol, tol);
        }
        rt_tensor_release(y);
        REQUIRE_OK(rt_pow(x, 3, &y));
        {
            double w[63];
            for (int i = 0; i < 63; i++)
                w[i] = pow(h_elem(x, i), 3);
            CHECK_TENSOR_VALUES(y, w, 63, tol, tol);
        }
        rt_tensor_release(y);
        REQUIRE_OK(rt_clamp(x, -1, 2, &y));
        {
            double w[63];
            for (int i = 0; i < 63; i++)
                w[i] = fmin(fmax(h_elem(x, i), -1), 2);
            CHECK_TENSOR_VALUES(y, w, 63, 0, 0);
        }
        rt_tensor_release(y);
        REQUIRE_OK(rt_clamp(x, -INFINITY, 0.5, &y));
        {
            double w[63];
            for (int i = 0; i < 63; i++)
                w[i] = fmin(h_elem(x, i), 0.5);
            CHECK_TENSOR_VALUES(y, w, 63, 0, 0);
        }
        rt_tensor_release(y);
        REQUIRE_OK(rt_affine(x, -3, 0.25, &y));
        {
            double w[63];
            for (int i = 0; i < 63; i++)
                w[i] = h_elem(x, i) * -3 + 0.25;
            CHECK_TENSOR_VALUES(y, w, 63, tol, tol);
        }
        rt_tensor_release(y);
        h_release(4, x, p, xb, pb);
    }
    /* integer neg/abs/relu/affine keep integer dtype */
    struct rt_tensor *i = h_tensor(RT_I64, 1, H_SHAPE(4), H_VALS(-3, 0, 2, -7)), *y;
    REQUIRE_OK(rt_abs(i, &y));
    CHECK(y->dtype == RT_I64, "abs i64 dtype");
    CHECK_TENSOR_VALUES(y, H_VALS(3, 0, 2, 7), 4, 0, 0);
    h_release(2, i, y);
}

typedef enum rt_status (*binary_fn)(struct rt_tensor *, struct rt_tensor *, struct rt_tensor **);
static double add_d(double a, double b) { return a + b; }
static double sub_d(double a, double b) { return a - b; }
static double mul_d(double a, double b) { return a * b; }
static double div_d(double a, double b) { return a / b; }

static void test_binary_broadcast_naive(void)
{
    struct {
        const char *name;
        binary_fn f;
        double (*ref)(double, double);
    } ops[] = {{"add", rt_add, add_d}, {"sub", rt_sub, sub_d}, {"mul", rt_mul, mul_d},
               {"div", rt_div, div_d}, {"maximum", rt_maximum, fmax}, {"minimum", rt_minimum, fmin}};
    struct {
        int na, nb;
        int64_t sa[4], sb[4];
    } cases[] = {{2, 2, {3, 4}, {3, 4}},       {2, 1, {3, 4}, {4}},          {3, 2, {2, 1, 4}, {3, 1}},
                 {0, 2, {0}, {2, 3}},          {2, 2, {4, 1}, {1, 5}},       {4, 3, {2, 1, 3, 1}, {4, 1, 5}},
                 {1, 3, {1}, {2, 3, 2}},       {2, 0, {3, 3}, {0}}};
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-15 : 1e-6;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            struct rt_tensor *a = h_rand(dt, cases[c].na, cases[c].sa, -2, 2, 100 + c);
            struct rt_tensor *b = h_rand(dt, cases[c].nb, cases[c].sb, 0.5, 2, 200 + c);
            /* the same values through non-contiguous layouts */
            struct rt_tensor *as = fx_strided_copy(a), *bs = fx_strided_copy(b);
            int ond = cases[c].na > cases[c].nb ? cases[c].na : cases[c].nb;
            int64_t os[RT_MAX_DIMS];
            for (int d = 0; d < ond; d++) {
                int da = d - (ond - cases[c].na), db = d - (ond - cases[c].nb);
                int64_t xa = da >= 0 ? cases[c].sa[da] : 1, xb = db >= 0 ? cases[c].sb[db] : 1;
                os[d] = xa == 1 ? xb : xa;
            }
            int64_t n = numel_of(ond, os);
            double *want = malloc(sizeof(double) * (size_t)n);
            for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
                for (int64_t i = 0; i < n; i++) {
                    int64_t oi[RT_MAX_DIMS];
                    unflat(ond, os, i, oi);
                    want[i] = ops[k].ref(bcast_elem(a, ond, oi), bcast_elem(b, ond, oi));
                }
                for (int strided = 0; strided < 2; strided++) {
                    struct rt_tensor *y, *y2;
                    REQUIRE_OK(ops[k].f(strided ? as : a, strided ? bs : b, &y));
                    char what[96];
                    snprintf(what, sizeof what, "%s case %zu %s%s", ops[k].name, c, rt_dtype_name(dt),
                             strided ? " strided" : "");
                    if (h_check_shape(y, ond, os, what, __FILE__, __LINE__))
                        h_tensor_values(y, want, n, tol, tol, what, __FILE__, __LINE__);
                    /* swapped operands broadcast the same way */
                    REQUIRE_OK(ops[k].f(strided ? bs : b, strided ? as : a, &y2));
                    h_check_shape(y2, ond, os, what, __FILE__, __LINE__);
                    h_release(2, y, y2);
                }
            }
            free(want);
            h_release(4, a, b, as, bs);
        }
    }
    /* expanded (stride 0) operands */
    struct rt_tensor *r = h_rand(RT_F32, 2, H_SHAPE(1, 5), -1, 1, 7), *e, *m = h_rand(RT_F32, 2, H_SHAPE(4, 5), -1, 1, 8);
    struct rt_tensor *y1, *y2;
    REQUIRE_OK(rt_expand(r, 2, H_SHAPE(4, 5), &e));
    REQUIRE_OK(rt_mul(e, m, &y1));
    REQUIRE_OK(rt_mul(r, m, &y2));
    CHECK_TENSOR_EQUAL(y1, y2);
    h_release(5, r, e, m, y1, y2);
    /* integer arithmetic */
    struct rt_tensor *ia = h_tensor(RT_I64, 2, H_SHAPE(2, 2), H_VALS(1, -2, 3, 4)), *ib = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(10, 20));
    REQUIRE_OK(rt_add(ia, ib, &y1));
    CHECK(y1->dtype == RT_I64, "i64 add dtype");
    CHECK_TENSOR_VALUES(y1, H_VALS(11, 18, 13, 24), 4, 0, 0);
    h_release(3, ia, ib, y1);
}

static void test_compare_where_naive(void)
{
    struct rt_tensor *a = h_tensor(RT_F32, 2, H_SHAPE(2, 3), H_VALS(1, 2, 3, 3, 2, 1));
    struct rt_tensor *b = h_tensor(RT_F32, 1, H_SHAPE(3), H_VALS(2, 2, 2));
    const double want[6][6] = {
        {0, 1, 0, 0, 1, 0}, /* eq */
        {1, 0, 1, 1, 0, 1}, /* ne */
        {1, 0, 0, 0, 0, 1}, /* lt */
        {1, 1, 0, 0, 1, 1}, /* le */
        {0, 0, 1, 1, 0, 0}, /* gt */
        {0, 1, 1, 1, 1, 0}, /* ge */
    };
    for (int op = 0; op < 6; op++) {
        struct rt_tensor *y, *ys;
        REQUIRE_OK(rt_compare(a, b, (enum rt_cmp)op, &y));
        CHECK(y->dtype == RT_U8, "compare gives u8");
        CHECK_TENSOR_VALUES(y, want[op], 6, 0, 0);
        REQUIRE_OK(rt_compare_scalar(a, 2, (enum rt_cmp)op, &ys));
        CHECK_TENSOR_VALUES(ys, want[op], 6, 0, 0);
        CHECK(rt_tensor_grad_fn_name(y) == NULL, "compare is not differentiable");
        h_release(2, y, ys);
    }
    struct rt_tensor *c, *y, *z = h_tensor(RT_F32, 0, NULL, H_VALS(-9));
    REQUIRE_OK(rt_compare(a, b, RT_CMP_GT, &c));
    REQUIRE_OK(rt_where(c, a, z, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(-9, -9, 3, 3, -9, -9), 6, 0, 0);
    rt_tensor_release(y);
    /* broadcast condition (2,1) against (2,3) and (3) */
    struct rt_tensor *c2 = h_tensor(RT_U8, 2, H_SHAPE(2, 1), H_VALS(1, 0));
    REQUIRE_OK(rt_where(c2, a, b, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(1, 2, 3, 2, 2, 2), 6, 0, 0);
    rt_tensor_release(y);
    struct rt_tensor *o = NULL;
    CHECK_STATUS(rt_where(a, a, b, &o), RT_ERR_DTYPE, "u8");
    struct rt_tensor *d = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(1, 2, 3));
    CHECK_STATUS(rt_where(c, a, d, &o), RT_ERR_DTYPE, "dtypes differ");
    /* NaN compares unequal */
    struct rt_tensor *nan = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(NAN, 1));
    REQUIRE_OK(rt_compare(nan, nan, RT_CMP_EQ, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(0, 1), 2, 0, 0);
    h_release(8, a, b, c, z, c2, d, nan, y);
}

/* ------------------------------------------------------------------ reductions vs naive */

enum red { R_SUM, R_MEAN, R_LSE, R_NORM1, R_NORM2, R_NORM3, R_MAX, R_MIN };

static double naive_reduce(enum red r, const double *v, int64_t n, int64_t *arg)
{
    double acc = 0, m = -INFINITY;
    int64_t ai = 0;
    switch (r) {
    case R_SUM: case R_MEAN:
        for (int64_t i = 0; i < n; i++)
            acc += v[i];
        return r == R_MEAN ? acc / (double)n : acc;
    case R_LSE:
        for (int64_t i = 0; i < n; i++)
            m = fmax(m, v[i]);
        for (int64_t i = 0; i < n; i++)
            acc += exp(v[i] - m);
        return m + log(acc);
    case R_NORM1: case R_NORM2: case R_NORM3: {
        double p = r == R_NORM1 ? 1 : r == R_NORM2 ? 2 : 3;
        for (int64_t i = 0; i < n; i++)
            acc += pow(fabs(v[i]), p);
        return pow(acc, 1 / p);
    }
    case R_MAX: case R_MIN:
        acc = v[0];
        for (int64_t i = 1; i < n; i++)
            if (r == R_MAX ? v[i] > acc : v[i] < acc)
                acc = v[i], ai = i;
        if (arg)
            *arg = ai;
        return acc;
    }
    return NAN;
}

static enum rt_status run_reduce(enum red r, struct rt_tensor *x, int dim, bool kd, struct rt_tensor **y,
                                 struct rt_tensor **ix)
{
    switch (r) {
    case R_SUM: return rt_sum(x, dim, kd, y);
    case R_MEAN: return rt_mean(x, dim, kd, y);
    case R_LSE: return rt_logsumexp(x, dim, kd, y);
    case R_NORM1: return rt_norm(x, 1, dim, kd, y);
    case R_NORM2: return rt_norm(x, 2, dim, kd, y);
    case R_NORM3: return rt_norm(x, 3, dim, kd, y);
    case R_MAX: return rt_max(x, dim, kd, y, ix);
    case R_MIN: return rt_min(x, dim, kd, y, ix);
    }
    return RT_ERR_INTERNAL;
}

static void test_reductions_naive(void)
{
    static const char *names[] = {"sum", "mean", "logsumexp", "norm1", "norm2", "norm3", "max", "min"};
    const int64_t shape[4] = {3, 4, 5, 6};
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-13 : 2e-6;
        struct rt_tensor *x = h_rand(dt, 4, shape, -3, 3, 31 + dtk);
        struct rt_tensor *xs = fx_strided_copy(x);
        for (int r = 0; r < 8; r++) {
            for (int dim = -1; dim < 4; dim++) {
                int d = dim < 0 ? dim + 4 : dim;
                for (int kd = 0; kd < 2; kd++) {
                    int64_t os[4], on = 0;
                    int ond = 0;
                    for (int i = 0; i < 4; i++)
                        if (i != d)
                            os[ond++] = shape[i];
                        else if (kd)
                            os[ond++] = 1;
                    on = numel_of(4, shape) / shape[d];
                    double *want = malloc(sizeof(double) * (size_t)on), *wix = malloc(sizeof(double) * (size_t)on);
                    double buf[16];
                    for (int64_t o = 0; o < on; o++) {
                        /* o enumerates the other dims in order */
                        int64_t rest[3], k = 0, idx[4];
                        int64_t rs[3];
                        for (int i = 0; i < 4; i++)
                            if (i != d)
                                rs[k++] = shape[i];
                        unflat(3, rs, o, rest);
                        for (int64_t j = 0; j < shape[d]; j++) {
                            for (int i = 0, q = 0; i < 4; i++)
                                idx[i] = i == d ? j : rest[q++];
                            buf[j] = h_elem(x, flat_of(4, shape, idx));
                        }
                        int64_t arg = -1;
                        want[o] = naive_reduce((enum red)r, buf, shape[d], &arg);
                        wix[o] = (double)arg;
                    }
                    for (int strided = 0; strided < 2; strided++) {
                        struct rt_tensor *y = NULL, *ix = NULL;
                        REQUIRE_OK(run_reduce((enum red)r, strided ? xs : x, dim, kd, &y, &ix));
                        char what[96];
                        snprintf(what, sizeof what, "%s dim %d keepdim %d %s%s", names[r], dim, kd, rt_dtype_name(dt),
                                 strided ? " strided" : "");
                        if (h_check_shape(y, ond, os, what, __FILE__, __LINE__))
                            h_tensor_values(y, want, on, tol, tol, what, __FILE__, __LINE__);
                        CHECK(y->dtype == dt, "%s dtype", what);
                        if (ix) {
                            CHECK(ix->dtype == RT_I64, "indices are i64");
                            h_check_shape(ix, ond, os, what, __FILE__, __LINE__);
                            h_tensor_values(ix, wix, on, 0, 0, what, __FILE__, __LINE__);
                            struct rt_tensor *am;
                            REQUIRE_OK((r == R_MAX ? rt_argmax : rt_argmin)(strided ? xs : x, dim, kd, &am));
                            h_tensor_values(am, wix, on, 0, 0, "argmax/argmin", __FILE__, __LINE__);
                            rt_tensor_release(am);
                        }
                        h_release(2, y, ix);
                    }
                    free(want);
                    free(wix);
                }
            }
        }
        /* _all variants */
        int64_t n = rt_tensor_numel(x);
        double *all = h_values(x);
        struct {
            enum rt_status (*f)(struct rt_tensor *, struct rt_tensor **);
            enum red r;
        } alls[] = {{rt_sum_all, R_SUM}, {rt_mean_all, R_MEAN}, {rt_logsumexp_all, R_LSE},
                    {rt_max_all, R_MAX}, {rt_min_all, R_MIN}};
        for (size_t k = 0; k < sizeof alls / sizeof alls[0]; k++) {
            struct rt_tensor *y;
            REQUIRE_OK(alls[k].f(xs, &y));
            CHECK_SHAPE0(y);
            double w = naive_reduce(alls[k].r, all, n, NULL);
            CHECK_TENSOR_VALUES(y, &w, 1, tol * 10, tol * 10);
            rt_tensor_release(y);
        }
        for (int p = 1; p <= 3; p++) {
            struct rt_tensor *y;
            REQUIRE_OK(rt_norm_all(xs, p, &y));
            double w = naive_reduce((enum red)(R_NORM1 + p - 1), all, n, NULL);
            CHECK_TENSOR_VALUES(y, &w, 1, tol * 10, tol * 10);
            rt_tensor_release(y);
        }
        free(all);
        h_release(2, x, xs);
    }
    /* a long f32 sum stays accurate (pairwise or f64 accumulation) */
    struct rt_tensor *ones, *y;
    REQUIRE_OK(rt_tensor_full(RT_F32, RT_CPU, 1, H_SHAPE((1 << 24) + 4), 1.0, &ones));
    REQUIRE_OK(rt_sum_all(ones, &y));
    CHECK_TENSOR_VALUES(y, H_VALS((double)((1 << 24) + 4)), 1, 0, 0);
    h_release(2, ones, y);
    /* logsumexp with -inf everywhere in a row, and huge values */
    struct rt_tensor *e = h_tensor(RT_F64, 2, H_SHAPE(2, 3), H_VALS(-INFINITY, -INFINITY, -INFINITY, 1e308, 1e308, 0));
    REQUIRE_OK(rt_logsumexp(e, 1, false, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(-INFINITY, 1e308 + log(2.0)), 2, 1e-15, 0);
    h_release(2, e, y);
}

static void test_sum_to_shape(void)
{
    struct rt_tensor *x = h_iota(RT_F64, 3, H_SHAPE(2, 3, 4)), *y;
    REQUIRE_OK(rt_sum_to_shape(x, 2, H_SHAPE(3, 1), &y));
    CHECK_SHAPE(y, 2, 3, 1);
    CHECK_TENSOR_VALUES(y, H_VALS(0 + 1 + 2 + 3 + 12 + 13 + 14 + 15, 4 + 5 + 6 + 7 + 16 + 17 + 18 + 19,
                                  8 + 9 + 10 + 11 + 20 + 21 + 22 + 23),
                        3, 0, 0);
    rt_tensor_release(y);
    REQUIRE_OK(rt_sum_to_shape(x, 3, H_SHAPE(2, 3, 4), &y));
    CHECK_TENSOR_EQUAL(y, x);
    rt_tensor_release(y);
    REQUIRE_OK(rt_sum_to_shape(x, 0, NULL, &y));
    CHECK_SHAPE0(y);
    CHECK_TENSOR_VALUES(y, H_VALS(276), 1, 0, 0);
    rt_tensor_release(y);
    struct rt_tensor *o = NULL;
    CHECK_STATUS(rt_sum_to_shape(x, 2, H_SHAPE(3, 2), &o), RT_ERR_SHAPE, "cannot sum shape (2,3,4) down to (3,2)");
    rt_tensor_release(x);
}

/* ------------------------------------------------------------------ matmul */

/* naive C = A B for 2-D tensors of any strides, in double */
static double *naive_mm(const struct rt_tensor *a, const struct rt_tensor *b)
{
    int64_t n = a->shape[0], k = a->shape[1], m = b->shape[1];
    double *c = calloc((size_t)(n * m > 0 ? n * m : 1), sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double acc = 0;
            for (int64_t l = 0; l < k; l++)
                acc += h_elem(a, i * k + l) * h_elem(b, l * m + j);
            c[i * m + j] = acc;
        }
    return c;
}

static void test_matmul_blas_vs_naive(void)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 4}, {7, 13, 5}, {64, 33, 70}, {128, 256, 10}, {1, 50, 1},
                                 {300, 1, 2}, {5, 0, 3}};
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-12 : 2e-5;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t n = shapes[s][0], k = shapes[s][1], m = shapes[s][2];
            struct rt_tensor *a = h_rand(dt, 2, H_SHAPE(n, k), -1, 1, 40 + s), *b = h_rand(dt, 2, H_SHAPE(k, m), -1, 1, 50 + s);
            /* transposed storage: at = (k,n) contiguous, a_t = at^T is (n,k) with strides (1,n) */
            struct rt_tensor *a_t = fx_strided_copy(a), *b_t = fx_strided_copy(b);
            /* row-strided: narrow of a wider matrix */
            struct rt_tensor *wide, *a_n;
            REQUIRE_OK(rt_tensor_new(dt, RT_CPU, 2, H_SHAPE(n, k + 3), &wide));
            REQUIRE_OK(rt_narrow(wide, 1, 2, k, &a_n));
            REQUIRE_OK(rt_copy_(a_n, a));
            double *want = naive_mm(a, b);
            struct rt_tensor *ref;
            REQUIRE_OK(rt_matmul_naive(a, b, &ref));
            char what[96];
            snprintf(what, sizeof what, "rt_matmul_naive (%lld,%lld)x(%lld,%lld) %s", (long long)n, (long long)k,
                     (long long)k, (long long)m, rt_dtype_name(dt));
            h_tensor_values(ref, want, n * m, tol, tol, what, __FILE__, __LINE__);
            struct rt_tensor *ops_a[3] = {a, a_t, a_n}, *ops_b[2] = {b, b_t};
            for (int ia = 0; ia < 3; ia++)
                for (int ib = 0; ib < 2; ib++) {
                    struct rt_tensor *c;
                    REQUIRE_OK(rt_matmul(ops_a[ia], ops_b[ib], &c));
                    snprintf(what, sizeof what, "rt_matmul (%lld,%lld)x(%lld,%lld) %s a%d b%d", (long long)n,
                             (long long)k, (long long)k, (long long)m, rt_dtype_name(dt), ia, ib);
                    if (h_check_shape(c, 2, H_SHAPE(n, m), what, __FILE__, __LINE__))
                        h_tensor_close(c, ref, tol, tol, what, __FILE__, __LINE__);
                    rt_tensor_release(c);
                }
            free(want);
            h_release(7, a, b, a_t, b_t, wide, a_n, ref);
        }
    }
}

/* Products large enough to be split over the OpenMP team (column tiles when rows <= columns, row
 * tiles otherwise; whole products per thread when the batch covers the team), with transposed
 * operands and sizes that leave ragged last tiles: against the naive loop for 1 to 3 threads, and
 * bit-identical when repeated with the same thread count. */
/* rt_sgd_update_many_ equals one rt_sgd_update_ per parameter, bit for bit (mixed first steps, an
 * empty parameter, f32 and f64 in one call); a bad entry anywhere updates nothing */
static void test_sgd_many(void)
{
    enum { K = 5 };
    static const int64_t sizes[K] = {7, 0, 300, 1, 64};
    static const enum rt_dtype dts[K] = {RT_F32, RT_F32, RT_F64, RT_F64, RT_F32};
    static const bool first[K] = {true, false, false, true, false};
    struct rt_sgd_opts o = {0.05, 0.9, 0.1, 1e-3, true, false};
    struct rt_tensor *p[K], *g[K], *b[K], *pw[K], *bw[K];
    for (int j = 0; j < K; j++) {
        p[j] = h_rand(dts[j], 1, &sizes[j], -1, 1, 11 + j);
        g[j] = h_rand(dts[j], 1, &sizes[j], -1, 1, 31 + j);
        b[j] = h_rand(dts[j], 1, &sizes[j], -1, 1, 51 + j);
        REQUIRE_OK(rt_clone(p[j], &pw[j]));
        REQUIRE_OK(rt_clone(b[j], &bw[j]));
        struct rt_sgd_opts oj = o;
        oj.first = first[j];
        REQUIRE_OK(rt_sgd_update_(pw[j], g[j], bw[j], &oj));
    }
    if (CHECK_OK(rt_sgd_update_many_(K, p, g, b, first, &o)))
        for (int j = 0; j < K; j++) {
            CHECK_TENSOR_EQUAL(p[j], pw[j]);
            CHECK_TENSOR_EQUAL(b[j], bw[j]);
        }
    /* the fourth gradient has the wrong shape: the first three parameters stay as they are */
    struct rt_tensor *bad = h_rand(RT_F64, 1, H_SHAPE(2), -1, 1, 99), *g4 = g[3], *before = NULL;
    REQUIRE_OK(rt_clone(p[0], &before));
    g[3] = bad;
    CHECK_STATUS(rt_sgd_update_many_(K, p, g, b, NULL, &o), RT_ERR_SHAPE, "parameter 4 of 5: rt_sgd_update_: gradient");
    CHECK_TENSOR_EQUAL(p[0], before);
    g[3] = g4;
    h_release(2, bad, before);
    for (int j = 0; j < K; j++)
        h_release(5, p[j], g[j], b[j], pw[j], bw[j]);
}

/* rt_adam_update_many_ refuses bad calls before writing anything */
static void test_adam_errors(void)
{
    struct rt_tensor *p = h_rand(RT_F64, 1, H_SHAPE(4), -1, 1, 3), *g = h_rand(RT_F64, 1, H_SHAPE(4), -1, 1, 4);
    struct rt_tensor *m = h_rand(RT_F64, 1, H_SHAPE(4), -1, 1, 5), *v = h_rand(RT_F64, 1, H_SHAPE(4), 0, 1, 6);
    struct rt_tensor *short_v = h_rand(RT_F64, 1, H_SHAPE(3), 0, 1, 7), *before = NULL;
    REQUIRE_OK(rt_clone(p, &before));
    struct rt_adam_opts o = {1e-3, 0.9, 0.999, 1e-8, 0, false, false}, ams = o;
    ams.amsgrad = true;
    int64_t zero = 0, one = 1;
    CHECK_STATUS(rt_adam_update_many_(1, &p, &g, &m, &v, NULL, &zero, &o), RT_ERR_ARG, "step 0");
    CHECK_STATUS(rt_adam_update_many_(1, &p, &g, &m, &v, NULL, &one, &ams), RT_ERR_ARG, "amsgrad needs");
    CHECK_STATUS(rt_adam_update_many_(1, &p, &g, &m, &short_v, NULL, &one, &o), RT_ERR_SHAPE, "second moment shape");
    CHECK_STATUS(rt_adam_update_many_(1, &p, &g, &m, &m, NULL, &one, &o), RT_ERR_ARG, "separate tensors");
    CHECK_TENSOR_EQUAL(p, before);
    h_release(6, p, g, m, v, short_v, before);
}

static void test_matmul_tiles(void)
{
    const int64_t shapes[][4] = {/* batch, n, k, m */ {1, 67, 129, 150}, {1, 150, 97, 83}, {1, 40, 150, 601},
                                 {2, 90, 70, 133}, {4, 70, 65, 71}};
    int saved = rt_get_num_threads();
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-12 : 2e-5;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t bt = shapes[s][0], n = shapes[s][1], k = shapes[s][2], m = shapes[s][3];
            struct rt_tensor *a = h_rand(dt, 3, H_SHAPE(bt, n, k), -1, 1, 70 + s);
            struct rt_tensor *b = h_rand(dt, 3, H_SHAPE(bt, k, m), -1, 1, 80 + s);
            struct rt_tensor *a_t = fx_strided_copy(a), *b_t = fx_strided_copy(b);
            struct rt_tensor *ops_a[2] = {a, a_t}, *ops_b[2] = {b, b_t};
            double *want = malloc(sizeof(double) * (size_t)(bt * n * m));
            for (int64_t i = 0; i < bt; i++) {
                struct rt_tensor *ai, *bi;
                REQUIRE_OK(rt_select(a, 0, i, &ai));
                REQUIRE_OK(rt_select(b, 0, i, &bi));
                double *wi = naive_mm(ai, bi);
                memcpy(want + i * n * m, wi, sizeof(double) * (size_t)(n * m));
                free(wi);
                h_release(2, ai, bi);
            }
            for (int threads = 1; threads <= 3; threads++) {
                rt_set_num_threads(threads);
                for (int v = 0; v < 4; v++) {
                    struct rt_tensor *c, *again;
                    REQUIRE_OK(rt_bmm(ops_a[v / 2], ops_b[v % 2], &c));
                    REQUIRE_OK(rt_bmm(ops_a[v / 2], ops_b[v % 2], &again));
                    char what[112];
                    snprintf(what, sizeof what, "rt_bmm %lldx(%lld,%lld)x(%lld,%lld) %s a%d b%d, %d threads",
                             (long long)bt, (long long)n, (long long)k, (long long)k, (long long)m, rt_dtype_name(dt),
                             v / 2, v % 2, threads);
                    if (h_check_shape(c, 3, H_SHAPE(bt, n, m), what, __FILE__, __LINE__)) {
                        h_tensor_close(again, c, 0, 0, what, __FILE__, __LINE__);
                        h_tensor_values(c, want, bt * n * m, tol, tol, what, __FILE__, __LINE__);
                    }
                    h_release(2, c, again);
                }
            }
            free(want);
            h_release(4, a, b, a_t, b_t);
        }
    }
    rt_set_num_threads(saved);
}

static void test_matmul_batched_and_vectors(void)
{
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-12 : 2e-5;
        struct rt_tensor *a = h_rand(dt, 3, H_SHAPE(3, 4, 5), -1, 1, 61), *b = h_rand(dt, 3, H_SHAPE(3, 5, 2), -1, 1, 62);
        struct rt_tensor *w = h_rand(dt, 2, H_SHAPE(5, 2), -1, 1, 63);
        struct rt_tensor *c, *c2, *cw, *bs = fx_strided_copy(b);
        REQUIRE_OK(rt_bmm(a, b, &c));
        /* batched operands with transposed matrices and a permuted (non-leading-stride) batch dim */
        struct rt_tensor *as = fx_strided_copy(a), *ap0, *ap, *c3, *c4;
        REQUIRE_OK(rt_tensor_new(dt, RT_CPU, 3, H_SHAPE(4, 3, 5), &ap0));
        REQUIRE_OK(rt_permute(ap0, (const int[]){1, 0, 2}, &ap));
        REQUIRE_OK(rt_copy_(ap, a));
        REQUIRE_OK(rt_matmul(as, bs, &c3));
        REQUIRE_OK(rt_bmm(ap, bs, &c4));
        CHECK_TENSOR_CLOSE(c3, c, tol, tol);
        CHECK_TENSOR_CLOSE(c4, c, tol, tol);
        RELEASE(as, ap0, ap, c3, c4);
        REQUIRE_OK(rt_matmul(a, bs, &c2));
        REQUIRE_OK(rt_matmul(a, w, &cw));
        CHECK_SHAPE(c, 3, 3, 4, 2);
        CHECK_SHAPE(cw, 3, 3, 4, 2);
        for (int64_t i = 0; i < 3; i++) {
            struct rt_tensor *ai, *bi, *ci, *c2i, *cwi, *r, *rw;
            REQUIRE_OK(rt_select(a, 0, i, &ai));
            REQUIRE_OK(rt_select(b, 0, i, &bi));
            REQUIRE_OK(rt_select(c, 0, i, &ci));
            REQUIRE_OK(rt_select(c2, 0, i, &c2i));
            REQUIRE_OK(rt_select(cw, 0, i, &cwi));
            REQUIRE_OK(rt_matmul_naive(ai, bi, &r));
            REQUIRE_OK(rt_matmul_naive(ai, w, &rw));
            CHECK_TENSOR_CLOSE(ci, r, tol, tol);
            CHECK_TENSOR_CLOSE(c2i, r, tol, tol);
            CHECK_TENSOR_CLOSE(cwi, rw, tol, tol);
            h_release(7, ai, bi, ci, c2i, cwi, r, rw);
        }
        h_release(6, c, c2, cw, bs, a, b);
        rt_tensor_release(w);
        /* 1-D operands */
        struct rt_tensor *v = h_rand(dt, 1, H_SHAPE(4), -1, 1, 64), *m = h_rand(dt, 2, H_SHAPE(4, 3), -1, 1, 65);
        struct rt_tensor *m2 = h_rand(dt, 2, H_SHAPE(3, 4), -1, 1, 66), *y, *vr, *vc, *r;
        REQUIRE_OK(rt_view(v, 2, H_SHAPE(1, 4), &vr));
        REQUIRE_OK(rt_view(v, 2, H_SHAPE(4, 1), &vc));
        REQUIRE_OK(rt_matmul(v, m, &y)); /* (4)x(4,3) -> (3) */
        REQUIRE_OK(rt_matmul_naive(vr, m, &r));
        CHECK_SHAPE(y, 1, 3);
        {
            double *rv = h_values(r);
            CHECK_TENSOR_VALUES(y, rv, 3, tol, tol);
            free(rv);
        }
        h_release(2, y, r);
        REQUIRE_OK(rt_matmul(m2, v, &y)); /* (3,4)x(4) -> (3) */
        REQUIRE_OK(rt_matmul_naive(m2, vc, &r));
        CHECK_SHAPE(y, 1, 3);
        {
            double *rv = h_values(r);
            CHECK_TENSOR_VALUES(y, rv, 3, tol, tol);
            free(rv);
        }
        h_release(2, y, r);
        REQUIRE_OK(rt_matmul(v, v, &y)); /* dot -> 0-dim */
        CHECK_SHAPE0(y);
        double dot = 0;
        for (int i = 0; i < 4; i++)
            dot += h_elem(v, i) * h_elem(v, i);
        CHECK_TENSOR_VALUES(y, &dot, 1, tol, tol);
        h_release(6, y, v, m, m2, vr, vc);
    }
}

static void test_linear_vs_matmul(void)
{
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        double tol = dtk ? 1e-12 : 2e-5;
        struct rt_tensor *x = h_rand(dt, 2, H_SHAPE(16, 30), -1, 1, 71), *w = h_rand(dt, 2, H_SHAPE(10, 30), -1, 1, 72);
        struct rt_tensor *bias = h_rand(dt, 1, H_SHAPE(10), -1, 1, 73), *wt, *mm, *ref, *y, *y0;
        REQUIRE_OK(rt_transpose(w, 0, 1, &wt));
        REQUIRE_OK(rt_matmul(x, wt, &mm));
        REQUIRE_OK(rt_add(mm, bias, &ref));
        REQUIRE_OK(rt_linear(x, w, bias, &y));
        CHECK_SHAPE(y, 2, 16, 10);
        CHECK_TENSOR_CLOSE(y, ref, tol, tol);
        REQUIRE_OK(rt_linear(x, w, NULL, &y0));
        CHECK_TENSOR_CLOSE(y0, mm, tol, tol);
        /* strided input */
        struct rt_tensor *xs = fx_strided_copy(x), *ys;
        REQUIRE_OK(rt_linear(xs, w, bias, &ys));
        CHECK_TENSOR_CLOSE(ys, ref, tol, tol);
        struct rt_tensor *o = NULL, *bad = h_rand(dt, 1, H_SHAPE(9), 0, 1, 1);
        CHECK_STATUS(rt_linear(x, w, bad, &o), RT_ERR_SHAPE, "bias (9)");
        CHECK_STATUS(rt_linear(wt, w, NULL, &o), RT_ERR_SHAPE, "rt_linear: input (30,10) does not fit weight (10,30)");
        h_release(11, x, w, bias, wt, mm, ref, y, y0, xs, ys, bad);
    }
}

/* ------------------------------------------------------------------ softmax */

static void test_softmax_naive_and_extreme(void)
{
    for (int dtk = 0; dtk < 2; dtk++) {
        enum rt_dtype dt = dtk ? RT_F64 : RT_F32;
        /* logits of 1e4/T: rounding of x/T alone is ~1e-12 absolute in f64 */
        double tol = dtk ? 1e-11 : 1e-6;
        const double vals[12] = {1e4, -1e4, 0, 5, -1e4, -1e4, -1e4, -1e4 + 1, 3, 1, 2, 0.5};
        struct rt_tensor *x = h_tensor(dt, 2, H_SHAPE(3, 4), vals);
        for (int Tk = 0; Tk < 3; Tk++) {
            double T = Tk == 0 ? 1 : Tk == 1 ? 2.5 : 0.3;
            struct rt_tensor *s, *ls;
            REQUIRE_OK(rt_softmax(x, 1, T, &s));
            REQUIRE_OK(rt_log_softmax(x, -1, T, &ls));
            double ws[12], wl[12];
            for (int r = 0; r < 3; r++) {
                double m = -INFINITY, z = 0;
                for (int j = 0; j < 4; j++)
                    m = fmax(m, vals[r * 4 + j] / T);
                for (int j = 0; j < 4; j++)
                    z += exp(vals[r * 4 + j] / T - m);
                for (int j = 0; j < 4; j++) {
                    wl[r * 4 + j] = vals[r * 4 + j] / T - m - log(z);
                    ws[r * 4 + j] = exp(wl[r * 4 + j]);
                }
            }
            bool finite = true;
            double *sv = h_values(s), *lv = h_values(ls);
            for (int i = 0; i < 12; i++)
                finite &= isfinite(sv[i]) && isfinite(lv[i]);
            CHECK(finite, "softmax/log_softmax of +-1e4 logits are finite (T %g, %s)", T, rt_dtype_name(dt));
            for (int r = 0; r < 3; r++)
                CHECK_CLOSE(sv[r * 4] + sv[r * 4 + 1] + sv[r * 4 + 2] + sv[r * 4 + 3], 1.0, tol * 4);
            free(sv);
            free(lv);
            CHECK_TENSOR_VALUES(s, ws, 12, tol, tol);
            /* log_softmax values reach -2e4/T: relative tolerance of the dtype */
            CHECK_TENSOR_VALUES(ls, wl, 12, tol, tol);
            h_release(2, s, ls);
        }
        /* along dim 0 of a strided tensor equals along dim 1 of its transpose */
        struct rt_tensor *r = h_rand(dt, 2, H_SHAPE(5, 7), -3, 3, 81), *rt_, *a, *b, *bt;
        REQUIRE_OK(rt_transpose(r, 0, 1, &rt_));
        REQUIRE_OK(rt_softmax(rt_, 0, 2.0, &a)); /* (7,5) softmax over dim 0 */
        REQUIRE_OK(rt_softmax(r, 1, 2.0, &b));   /* (5,7) over dim 1 */
        REQUIRE_OK(rt_transpose(b, 0, 1, &bt));
        CHECK_TENSOR_CLOSE(a, bt, tol, tol);
        h_release(6, r, rt_, a, b, bt, x);
        struct rt_tensor *o = NULL;
        struct rt_tensor *y = h_rand(dt, 1, H_SHAPE(3), 0, 1, 1);
        CHECK_STATUS(rt_softmax(y, 0, 0, &o), RT_ERR_ARG, "temperature");
        CHECK_STATUS(rt_log_softmax(y, 0, -1, &o), RT_ERR_ARG, "temperature");
        CHECK_STATUS(rt_softmax(y, 1, 1, &o), RT_ERR_ARG, "out of range");
        rt_tensor_release(y);
    }
}

/* ------------------------------------------------------------------ indexing */

static void test_index_ops_naive(void)
{
    struct rt_tensor *x = h_rand(RT_F64, 3, H_SHAPE(4, 3, 5), -1, 1, 91);
    struct rt_tensor *xs = fx_strided_copy(x);
    for (int dim = 0; dim < 3; dim++) {
        int64_t sz = x->shape[dim];
        /* index_select with repeats */
        double iv[6] = {0, (double)(sz - 1), 1, 1, 0, (double)(sz - 1)};
        struct rt_tensor *idx = h_tensor(RT_I64, 1, H_SHAPE(6), iv), *y, *ys;
        REQUIRE_OK(rt_index_select(x, dim, idx, &y));
        REQUIRE_OK(rt_index_select(xs, dim, idx, &ys));
        int64_t n = rt_tensor_numel(y);
        double *want = malloc(sizeof(double) * (size_t)n);
        for (int64_t f = 0; f < n; f++) {
            int64_t oi[3];
            unflat(3, y->shape, f, oi);
            oi[dim] = (int64_t)iv[oi[dim]];
            want[f] = h_elem(x, flat_of(3, x->shape, oi));
        }
        CHECK(y->shape[dim] == 6, "index_select shape");
        CHECK_TENSOR_VALUES(y, want, n, 0, 0);
        CHECK_TENSOR_VALUES(ys, want, n, 0, 0);
        free(want);
        h_release(3, idx, y, ys);

        /* gather / scatter_add with an index of x's shape except 2 along dim */
        int64_t ishape[3] = {4, 3, 5};
        ishape[dim] = 2;
        int64_t in_ = numel_of(3, ishape);
        double *gv = malloc(sizeof(double) * (size_t)in_);
        uint64_t st = 5 + dim;
        for (int64_t i = 0; i < in_; i++)
            gv[i] = (double)(int64_t)(h_uniform(&st) * (double)sz);
        struct rt_tensor *gi = h_tensor(RT_I64, 3, ishape, gv), *g, *src = h_rand(RT_F64, 3, ishape, -1, 1, 95), *sa;
        REQUIRE_OK(rt_gather(xs, dim, gi, &g));
        CHECK_SHAPE(g, 3, ishape[0], ishape[1], ishape[2]);
        double *wg = malloc(sizeof(double) * (size_t)in_);
        for (int64_t f = 0; f < in_; f++) {
            int64_t oi[3];
            unflat(3, ishape, f, oi);
            oi[dim] = (int64_t)gv[f];
            wg[f] = h_elem(x, flat_of(3, x->shape, oi));
        }
        CHECK_TENSOR_VALUES(g, wg, in_, 0, 0);
        REQUIRE_OK(rt_scatter_add(xs, dim, gi, src, &sa));
        double *ws = h_values(x);
        for (int64_t f = 0; f < in_; f++) {
            int64_t oi[3];
            unflat(3, ishape, f, oi);
            oi[dim] = (int64_t)gv[f];
            ws[flat_of(3, x->shape, oi)] += h_elem(src, f);
        }
        CHECK_TENSOR_VALUES(sa, ws, 60, 1e-15, 1e-15);
        CHECK(h_elem(xs, 0) == h_elem(x, 0), "scatter_add leaves its input alone");
        free(gv);
        free(wg);
        free(ws);
        h_release(4, gi, g, src, sa);

        /* index_copy_ in place, a repeated index keeping its last row, against a loop */
        double cv[3] = {(double)(sz - 1), 0, (double)(sz - 1)};
        int64_t cshape[3] = {4, 3, 5};
        cshape[dim] = 3;
        struct rt_tensor *ci = h_tensor(RT_I64, 1, H_SHAPE(3), cv), *csrc = h_rand(RT_F64, 3, cshape, -1, 1, 97);
        struct rt_tensor *dst = NULL;
        REQUIRE_OK(rt_clone(x, &dst));
        double *wc = h_values(x);
        int64_t cn = numel_of(3, cshape);
        for (int64_t f = 0; f < cn; f++) {
            int64_t oi[3];
            unflat(3, cshape, f, oi);
            oi[dim] = (int64_t)cv[oi[dim]];
            wc[flat_of(3, x->shape, oi)] = h_elem(csrc, f);
        }
        if (CHECK_OK(rt_index_copy_(dst, dim, ci, csrc)))
            CHECK_TENSOR_VALUES(dst, wc, 60, 0, 0);
        free(wc);
        h_release(3, ci, csrc, dst);
    }
    /* errors: out-of-range and negative indices, wrong dtype, wrong shapes */
    struct rt_tensor *o = NULL;
    struct rt_tensor *bad = h_tensor(RT_I64, 1, H_SHAPE(3), H_VALS(0, 4, 1));
    CHECK_STATUS(rt_index_select(x, 0, bad, &o), RT_ERR_ARG, "rt_index_select: index 4 at position 1 out of range [0, 3]");
    struct rt_tensor *neg = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(-1, 0));
    CHECK_STATUS(rt_index_select(x, 1, neg, &o), RT_ERR_ARG, "out of range");
    struct rt_tensor *fi = h_tensor(RT_F32, 1, H_SHAPE(2), H_VALS(0, 1));
    CHECK_STATUS(rt_index_select(x, 0, fi, &o), RT_ERR_DTYPE, "i64");
    struct rt_tensor *gbad = h_tensor(RT_I64, 3, H_SHAPE(1, 3, 5), (double[15]){0, 1, 2, 3, 1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0});
    CHECK_STATUS(rt_gather(x, 0, gbad, &o), RT_ERR_ARG, "rt_gather: index 4 at position 7 out of range [0, 3]");
    {
        struct rt_tensor *row = h_rand(RT_F64, 3, H_SHAPE(3, 3, 5), -1, 1, 98), *xc = NULL, *xt = NULL;
        struct rt_tensor *row32 = h_rand(RT_F32, 3, H_SHAPE(3, 3, 5), -1, 1, 98);
        REQUIRE_OK(rt_clone(x, &xc));
        CHECK_STATUS(rt_index_copy_(xc, 0, bad, row), RT_ERR_ARG, "rt_index_copy_: index 4 at position 1 out of range");
        CHECK_STATUS(rt_index_copy_(xc, 0, bad, row32), RT_ERR_DTYPE, "src is f32 but the destination is f64");
        CHECK_STATUS(rt_index_copy_(xc, 1, bad, row), RT_ERR_SHAPE, "does not fit the destination");
        REQUIRE_OK(rt_transpose(xc, 0, 1, &xt));
        CHECK_STATUS(rt_index_copy_(xt, 0, bad, row), RT_ERR_ARG, "must be contiguous");
        h_release(4, row, row32, xc, xt);
    }
    struct rt_tensor *gshape = h_tensor(RT_I64, 2, H_SHAPE(1, 3), H_VALS(0, 0, 0));
    CHECK_STATUS(rt_gather(x, 0, gshape, &o), RT_ERR_SHAPE, "rt_gather");
    struct rt_tensor *src = h_rand(RT_F64, 3, H_SHAPE(1, 3, 5), 0, 1, 2), *src32 = h_rand(RT_F32, 3, H_SHAPE(1, 3, 5), 0, 1, 2);
    CHECK_STATUS(rt_scatter_add(x, 0, gbad, src, &o), RT_ERR_ARG, "out of range");
    struct rt_tensor *g0 = h_tensor(RT_I64, 3, H_SHAPE(1, 3, 5), (double[15]){0});
    CHECK_STATUS(rt_scatter_add(x, 0, g0, src32, &o), RT_ERR_DTYPE, "rt_scatter_add");
    CHECK(o == NULL, "out untouched");
    h_release(10, x, xs, bad, neg, fi, gbad, gshape, src, src32, g0);
}

/* ------------------------------------------------------------------ joining */

static void test_cat_stack(void)
{
    struct rt_tensor *a = h_iota(RT_F32, 2, H_SHAPE(2, 3)), *b = h_rand(RT_F32, 2, H_SHAPE(1, 3), 5, 6, 1);
    struct rt_tensor *c = h_rand(RT_F32, 2, H_SHAPE(2, 2), 7, 8, 2), *y;
    struct rt_tensor *bs = fx_strided_copy(b), *as = fx_strided_copy(a);
    struct rt_tensor *xs[3] = {as, bs, a};
    REQUIRE_OK(rt_cat(3, xs, 0, &y));
    CHECK_SHAPE(y, 2, 5, 3);
    {
        bool ok = true;
        for (int64_t k = 0; k < 6; k++)
            ok &= h_elem(y, k) == h_elem(a, k) && h_elem(y, 9 + k) == h_elem(a, k);
        for (int64_t k = 0; k < 3; k++)
            ok &= h_elem(y, 6 + k) == h_elem(b, k);
        CHECK(ok, "cat dim 0");
    }
    rt_tensor_release(y);
    struct rt_tensor *ys[2] = {a, c};
    REQUIRE_OK(rt_cat(2, ys, -1, &y));
    CHECK_SHAPE(y, 2, 2, 5);
    {
        bool ok = true;
        for (int64_t r = 0; r < 2; r++) {
            for (int64_t j = 0; j < 3; j++)
                ok &= h_elem(y, r * 5 + j) == h_elem(a, r * 3 + j);
            for (int64_t j = 0; j < 2; j++)
                ok &= h_elem(y, r * 5 + 3 + j) == h_elem(c, r * 2 + j);
        }
        CHECK(ok, "cat dim -1");
    }
    rt_tensor_release(y);
    struct rt_tensor *one[1] = {a};
    REQUIRE_OK(rt_cat(1, one, 1, &y));
    CHECK_TENSOR_EQUAL(y, a);
    rt_tensor_release(y);
    /* stack at every position */
    struct rt_tensor *p = h_rand(RT_F64, 2, H_SHAPE(2, 3), 0, 1, 3), *q = h_rand(RT_F64, 2, H_SHAPE(2, 3), 0, 1, 4);
    struct rt_tensor *qs = fx_strided_copy(q), *pq[2] = {p, qs};
    for (int dim = 0; dim < 3; dim++) {
        REQUIRE_OK(rt_stack(2, pq, dim, &y));
        CHECK(y->ndim == 3 && y->shape[dim] == 2, "stack dim %d", dim);
        bool ok = true;
        for (int64_t f = 0; f < 12; f++) {
            int64_t oi[3], si[2];
            unflat(3, y->shape, f, oi);
            for (int d = 0, k = 0; d < 3; d++)
                if (d != dim)
                    si[k++] = oi[d];
            ok &= h_elem(y, f) == h_elem(oi[dim] ? q : p, si[0] * 3 + si[1]);
        }
        CHECK(ok, "stack values dim %d", dim);
        rt_tensor_release(y);
    }
    /* errors */
    struct rt_tensor *o = NULL;
    struct rt_tensor *bad[2] = {a, c};
    CHECK_STATUS(rt_cat(2, bad, 0, &o), RT_ERR_SHAPE, "does not match");
    CHECK_STATUS(rt_stack(2, bad, 0, &o), RT_ERR_SHAPE, "rt_stack");
    struct rt_tensor *mixed[2] = {a, p};
    CHECK_STATUS(rt_cat(2, mixed, 1, &o), RT_ERR_DTYPE, "dtype");
    CHECK_STATUS(rt_cat(0, mixed, 0, &o), RT_ERR_ARG, "at least one");
    CHECK_STATUS(rt_cat(2, pq, 2, &o), RT_ERR_ARG, "out of range");
    CHECK(o == NULL, "out untouched");
    h_release(8, a, b, c, bs, as, p, q, qs);
}

/* ------------------------------------------------------------------ RNG */

static void test_rng_determinism_and_stats(void)
{
    struct rt_rng g1, g2;
    rt_rng_init(&g1, 42);
    rt_rng_init(&g2, 42);
    struct rt_tensor *a, *b;
    REQUIRE_OK(rt_tensor_new(RT_F64, RT_CPU, 1, H_SHAPE(100000), &a));
    REQUIRE_OK(rt_tensor_new(RT_F64, RT_CPU, 1, H_SHAPE(100000), &b));
    CHECK_OK(rt_uniform_(a, &g1, 0, 1));
    CHECK_OK(rt_uniform_(b, &g2, 0, 1));
    CHECK_TENSOR_EQUAL(a, b);
    CHECK(g1.offset > 0 && g1.offset == g2.offset, "offset advances");
    double *v = h_values(a), mean = 0, var = 0, mn = 1, mx = 0;
    for (int i = 0; i < 100000; i++)
        mean += v[i], mn = fmin(mn, v[i]), mx = fmax(mx, v[i]);
    mean /= 100000;
    for (int i = 0; i < 100000; i++)
        var += (v[i] - mean) * (v[i] - mean);
    var /= 100000;
    CHECK(fabs(mean - 0.5) < 0.005, "uniform mean %g", mean);
    CHECK(fabs(var - 1.0 / 12) < 0.002, "uniform var %g", var);
    CHECK(mn >= 0 && mx < 1, "uniform range [%g, %g]", mn, mx);
    free(v);
    /* the next draw differs */
    CHECK_OK(rt_uniform_(b, &g2, 0, 1));
    CHECK(h_elem(a, 0) != h_elem(b, 0) || h_elem(a, 1) != h_elem(b, 1), "second draw differs");
    /* uniform with bounds */
    CHECK_OK(rt_uniform_(a, &g1, -3, -2));
    v = h_values(a);
    mn = 0, mx = -10;
    for (int i = 0; i < 100000; i++)
        mn = fmin(mn, v[i]), mx = fmax(mx, v[i]);
    CHECK(mn >= -3 && mx < -2, "uniform(-3,-2) range [%g, %g]", mn, mx);
    free(v);
    /* normal */
    rt_rng_init(&g1, 7);
    CHECK_OK(rt_normal_(a, &g1, 2, 3));
    v = h_values(a);
    mean = 0, var = 0;
    for (int i = 0; i < 100000; i++)
        mean += v[i];
    mean /= 100000;
    for (int i = 0; i < 100000; i++)
        var += (v[i] - mean) * (v[i] - mean);
    double sd = sqrt(var / 100000);
    CHECK(fabs(mean - 2) < 0.05, "normal mean %g", mean);
    CHECK(fabs(sd - 3) < 0.05, "normal std %g", sd);
    int within1 = 0;
    for (int i = 0; i < 100000; i++)
        within1 += fabs(v[i] - 2) < 3;
    CHECK(fabs(within1 / 1e5 - 0.6827) < 0.01, "normal: %g within 1 sd", within1 / 1e5);
    free(v);
    /* f32 and strided targets */
    struct rt_tensor *f, *ft;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(100, 50), &f));
    REQUIRE_OK(rt_transpose(f, 0, 1, &ft));
    CHECK_OK(rt_uniform_(ft, NULL, 0, 1));
    v = h_values(f);
    mean = 0;
    for (int i = 0; i < 5000; i++)
        mean += v[i];
    CHECK(fabs(mean / 5000 - 0.5) < 0.03, "strided uniform mean %g", mean / 5000);
    free(v);
    /* bernoulli */
    struct rt_tensor *u8;
    REQUIRE_OK(rt_tensor_new(RT_U8, RT_CPU, 1, H_SHAPE(100000), &u8));
    rt_rng_init(&g1, 9);
    CHECK_OK(rt_bernoulli_(u8, &g1, 0.3));
    v = h_values(u8);
    mean = 0;
    bool binary = true;
    for (int i = 0; i < 100000; i++)
        mean += v[i], binary &= v[i] == 0 || v[i] == 1;
    CHECK(binary && fabs(mean / 1e5 - 0.3) < 0.01, "bernoulli(0.3) mean %g", mean / 1e5);
    free(v);
    /* manual_seed resets the default generator */
    rt_manual_seed(123);
    CHECK_OK(rt_normal_(a, NULL, 0, 1));
    rt_manual_seed(123);
    CHECK_OK(rt_normal_(b, NULL, 0, 1));
    CHECK_TENSOR_EQUAL(a, b);
    struct rt_tensor *o = NULL;
    CHECK_STATUS(rt_uniform_(a, NULL, 1, 0), RT_ERR_ARG, "lower bound");
    CHECK_STATUS(rt_normal_(a, NULL, 0, -1), RT_ERR_ARG, "std");
    CHECK_STATUS(rt_bernoulli_(u8, NULL, 1.5), RT_ERR_ARG, "[0, 1]");
    CHECK_STATUS(rt_randint(3, 3, 1, H_SHAPE(2), NULL, &o), RT_ERR_ARG, "empty range");
    CHECK_STATUS(rt_randperm(-1, NULL, &o), RT_ERR_ARG, "n must be");
    struct rt_tensor *li;
    REQUIRE_OK(rt_tensor_new(RT_I64, RT_CPU, 1, H_SHAPE(3), &li));
    CHECK_STATUS(rt_uniform_(li, NULL, 0, 1), RT_ERR_DTYPE, "float");
    h_release(6, a, b, f, ft, u8, li);
}

static void test_randperm_randint(void)
{
    struct rt_rng g;
    rt_rng_init(&g, 2024);
    for (int64_t n = 0; n <= 1000; n = n ? n * 10 : 1) {
        struct rt_tensor *p;
        REQUIRE_OK(rt_randperm(n, &g, &p));
        CHECK(p->dtype == RT_I64 && p->ndim == 1 && p->shape[0] == n, "randperm shape");
        char *seen = calloc((size_t)n + 1, 1);
        bool ok = true;
        int64_t fixed = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)h_elem(p, i);
            ok &= v >= 0 && v < n && !seen[v];
            if (v >= 0 && v < n)
                seen[v] = 1;
            fixed += v == i;
        }
        CHECK(ok, "randperm(%lld) is a permutation", (long long)n);
        if (n == 1000)
            CHECK(fixed < 20, "randperm shuffles (%lld fixed points)", (long long)fixed);
        free(seen);
        rt_tensor_release(p);
    }
    struct rt_tensor *r;
    REQUIRE_OK(rt_randint(-3, 4, 2, H_SHAPE(100, 100), &g, &r));
    int counts[7] = {0};
    bool in_range = true;
    for (int64_t i = 0; i < 10000; i++) {
        int64_t v = (int64_t)h_elem(r, i);
        in_range &= v >= -3 && v < 4;
        if (v >= -3 && v < 4)
            counts[v + 3]++;
    }
    CHECK(in_range, "randint range");
    for (int k = 0; k < 7; k++)
        CHECK(abs(counts[k] - 10000 / 7) < 200, "randint bucket %d: %d", k - 3, counts[k]);
    rt_tensor_release(r);
}

static void test_thread_count_independence(void)
{
    int saved = rt_get_num_threads();
    struct rt_tensor *u[2], *nrm[2], *perm[2], *ex[2], *sm[2], *mm[2], *sum[2];
    const int64_t N = 1 << 20;
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(1024, 1024), -2, 2, 5);
    struct rt_tensor *a = h_rand(RT_F32, 2, H_SHAPE(200, 300), -1, 1, 6), *b = h_rand(RT_F32, 2, H_SHAPE(300, 100), -1, 1, 7);
    for (int t = 0; t < 2; t++) {
        rt_set_num_threads(t + 1);
        struct rt_rng g;
        rt_rng_init(&g, 77);
        REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 1, &N, &u[t]));
        REQUIRE_OK(rt_tensor_new(RT_F64, RT_CPU, 1, &N, &nrm[t]));
        CHECK_OK(rt_uniform_(u[t], &g, -1, 1));
        CHECK_OK(rt_normal_(nrm[t], &g, 0, 1));
        REQUIRE_OK(rt_randperm(100000, &g, &perm[t]));
        REQUIRE_OK(rt_exp(x, &ex[t]));
        REQUIRE_OK(rt_softmax(x, 1, 1.0, &sm[t]));
        REQUIRE_OK(rt_matmul(a, b, &mm[t]));
        REQUIRE_OK(rt_sum(x, 0, false, &sum[t]));
    }
    rt_set_num_threads(saved);
    CHECK_TENSOR_EQUAL(u[1], u[0]);
    CHECK_TENSOR_EQUAL(nrm[1], nrm[0]);
    CHECK_TENSOR_EQUAL(perm[1], perm[0]);
    CHECK_TENSOR_EQUAL(ex[1], ex[0]);
    CHECK_TENSOR_CLOSE(sm[1], sm[0], 1e-6, 1e-7);
    /* each thread's GEMM tile may take another OpenBLAS kernel (another summation order; on a Zen 5
     * the one- and two-tile shapes do): equal to rounding of a 300-term dot product of terms up to 1 */
    CHECK_TENSOR_CLOSE(mm[1], mm[0], 1e-5, 300 * 6e-8);
    CHECK_TENSOR_CLOSE(sum[1], sum[0], 1e-5, 1e-5);
    for (int t = 0; t < 2; t++)
        h_release(7, u[t], nrm[t], perm[t], ex[t], sm[t], mm[t], sum[t]);
    h_release(3, x, a, b);
}

/* ------------------------------------------------------------------ op errors */

static void test_op_errors(void)
{
    struct rt_tensor *a = h_rand(RT_F32, 2, H_SHAPE(2, 3), 0, 1, 1), *b = h_rand(RT_F32, 2, H_SHAPE(4, 5), 0, 1, 2);
    struct rt_tensor *d = h_rand(RT_F64, 2, H_SHAPE(2, 3), 0, 1, 3), *i = h_iota(RT_I64, 1, H_SHAPE(3));
    struct rt_tensor *r = h_rand(RT_F32, 1, H_SHAPE(2), 0, 1, 4), *o = NULL;
    CHECK_STATUS(rt_matmul(a, b, &o), RT_ERR_SHAPE, "rt_matmul: inner dims differ: (2,3) x (4,5)");
    CHECK_STATUS(rt_matmul_naive(a, b, &o), RT_ERR_SHAPE, "inner dims differ");
    CHECK_STATUS(rt_bmm(a, a, &o), RT_ERR_SHAPE, "3-D");
    CHECK_STATUS(rt_matmul(a, d, &o), RT_ERR_DTYPE, "dtypes differ");
    CHECK_STATUS(rt_add(a, d, &o), RT_ERR_DTYPE, "dtypes differ (f32 and f64)");
    CHECK_STATUS(rt_add(a, b, &o), RT_ERR_SHAPE, "cannot be broadcast");
    CHECK_STATUS(rt_mul(a, r, &o), RT_ERR_SHAPE, "(2,3) and (2)");
    CHECK_STATUS(rt_log(i, &o), RT_ERR_DTYPE, "float");
    CHECK_STATUS(rt_mean(i, 0, false, &o), RT_ERR_DTYPE, "float");
    CHECK_STATUS(rt_sum(a, 2, false, &o), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_max(a, -3, false, &o, NULL), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_norm(a, 0, 0, false, &o), RT_ERR_ARG, "p must be positive");
    CHECK_STATUS(rt_norm_all(a, -1, &o), RT_ERR_ARG, "p must be positive");
    CHECK_STATUS(rt_clamp(a, 1, 0, &o), RT_ERR_ARG, "lower bound");
    CHECK_STATUS(rt_compare(a, d, RT_CMP_EQ, &o), RT_ERR_DTYPE, "differ");
    struct rt_tensor *e;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(2, 0), &e));
    CHECK_STATUS(rt_max(e, 1, false, &o, NULL), RT_ERR_SHAPE, "empty");
    CHECK(o == NULL, "out untouched on failure");
    h_release(6, a, b, d, i, r, e);
}

static void test_empty_tensors(void)
{
    struct rt_tensor *e, *y, *z;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(0, 3), &e));
    REQUIRE_OK(rt_exp(e, &y));
    CHECK_SHAPE(y, 2, 0, 3);
    rt_tensor_release(y);
    REQUIRE_OK(rt_sum(e, 0, false, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(0, 0, 0), 3, 0, 0);
    rt_tensor_release(y);
    REQUIRE_OK(rt_sum_all(e, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(0), 1, 0, 0);
    struct rt_tensor *k;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(3, 4), &k));
    REQUIRE_OK(rt_matmul(e, k, &z));
    CHECK_SHAPE(z, 2, 0, 4);
    h_release(4, e, y, k, z);
}

/* Sizes above any OpenMP threshold, with odd outer/inner splits, against naive double loops. */
static void test_large_parallel_paths(void)
{
    int saved = rt_get_num_threads();
    rt_set_num_threads(2);
    const int64_t R = 1001, C = 1503;
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(R, C), -2, 2, 300);
    double *xv = h_values(x);
    double *rs = calloc((size_t)R, sizeof(double)), *cs = calloc((size_t)C, sizeof(double));
    double *rmax = malloc(sizeof(double) * (size_t)R), *rlse = calloc((size_t)R, sizeof(double));
    for (int64_t i = 0; i < R; i++) {
        rmax[i] = -INFINITY;
        for (int64_t j = 0; j < C; j++) {
            rs[i] += xv[i * C + j];
            cs[j] += xv[i * C + j];
            rmax[i] = fmax(rmax[i], xv[i * C + j]);
        }
        for (int64_t j = 0; j < C; j++)
            rlse[i] += exp(xv[i * C + j] - rmax[i]);
        rlse[i] = rmax[i] + log(rlse[i]);
    }
    struct rt_tensor *y;
    REQUIRE_OK(rt_sum(x, 1, false, &y));
    CHECK_TENSOR_VALUES(y, rs, R, 1e-5, 1e-3);
    rt_tensor_release(y);
    REQUIRE_OK(rt_sum(x, 0, true, &y));
    CHECK_SHAPE(y, 2, 1, C);
    CHECK_TENSOR_VALUES(y, cs, C, 1e-5, 1e-3);
    rt_tensor_release(y);
    REQUIRE_OK(rt_max(x, 1, false, &y, NULL));
    CHECK_TENSOR_VALUES(y, rmax, R, 0, 0);
    rt_tensor_release(y);
    REQUIRE_OK(rt_logsumexp(x, -1, false, &y));
    CHECK_TENSOR_VALUES(y, rlse, R, 1e-5, 1e-5);
    rt_tensor_release(y);
    /* softmax rows sum to one and match exp(x - lse) */
    REQUIRE_OK(rt_softmax(x, 1, 1.0, &y));
    {
        double *sv = h_values(y), worst = 0, worst_v = 0;
        for (int64_t i = 0; i < R; i++) {
            double acc = 0;
            for (int64_t j = 0; j < C; j++) {
                acc += sv[i * C + j];
                worst_v = fmax(worst_v, fabs(sv[i * C + j] - exp(xv[i * C + j] - rlse[i])) / exp(xv[i * C + j] - rlse[i]));
            }
            worst = fmax(worst, fabs(acc - 1));
        }
        CHECK(worst < 1e-4, "large softmax rows sum to 1 (worst %g)", worst);
        CHECK(worst_v < 1e-5, "large softmax values (worst rel %g)", worst_v);
        free(sv);
    }
    rt_tensor_release(y);
    /* transposed copy and element-wise on a strided large tensor */
    struct rt_tensor *t, *tc, *e;
    REQUIRE_OK(rt_transpose(x, 0, 1, &t));
    REQUIRE_OK(rt_contiguous(t, &tc));
    {
        bool ok = true;
        for (int64_t i = 0; i < R && ok; i += 7)
            for (int64_t j = 0; j < C && ok; j += 5)
                ok = h_elem(tc, j * R + i) == xv[i * C + j];
        CHECK(ok, "large transposed contiguous copy");
    }
    REQUIRE_OK(rt_affine(t, 2, 1, &e));
    {
        bool ok = true;
        for (int64_t i = 0; i < R && ok; i += 3)
            for (int64_t j = 0; j < C && ok; j += 11)
                ok = h_elem(e, j * R + i) == (double)(float)(xv[i * C + j] * 2 + 1);
        CHECK(ok, "large strided affine");
    }
    struct rt_tensor *row = h_rand(RT_F32, 1, H_SHAPE(R), -1, 1, 301), *bc;
    REQUIRE_OK(rt_mul(t, row, &bc)); /* (C,R) * (R) */
    {
        bool ok = true;
        for (int64_t j = 0; j < C && ok; j += 13)
            for (int64_t i = 0; i < R && ok; i += 7)
                ok = h_elem(bc, j * R + i) == (double)((float)xv[i * C + j] * (float)h_elem(row, i));
        CHECK(ok, "large broadcast multiply on a transposed operand");
    }
    rt_set_num_threads(saved);
    free(xv);
    free(rs);
    free(cs);
    free(rmax);
    free(rlse);
    RELEASE(x, t, tc, e, row, bc);
}

/* Index tensors and conditions that are themselves strided views. */
static void test_strided_index_tensors(void)
{
    struct rt_tensor *x = h_iota(RT_F64, 2, H_SHAPE(4, 5));
    /* idx2 (3,2) = [[3,9],[0,9],[2,9]]: column 0 is a stride-2 index vector */
    struct rt_tensor *idx2 = h_tensor(RT_I64, 2, H_SHAPE(3, 2), H_VALS(3, 9, 0, 9, 2, 9)), *idx, *y;
    REQUIRE_OK(rt_select(idx2, 1, 0, &idx));
    CHECK(!rt_tensor_is_contiguous(idx), "index is strided");
    REQUIRE_OK(rt_index_select(x, 0, idx, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(15, 16, 17, 18, 19, 0, 1, 2, 3, 4, 10, 11, 12, 13, 14), 15, 0, 0);
    rt_tensor_release(y);
    /* gather with a transposed index: gi = giT^T, giT (2,4) */
    struct rt_tensor *giT = h_tensor(RT_I64, 2, H_SHAPE(2, 4), H_VALS(0, 1, 2, 3, 4, 3, 2, 1)), *gi;
    REQUIRE_OK(rt_transpose(giT, 0, 1, &gi)); /* (4,2): rows [0,4],[1,3],[2,2],[3,1] */
    REQUIRE_OK(rt_gather(x, 1, gi, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(0, 4, 6, 8, 12, 12, 18, 16), 8, 0, 0);
    rt_tensor_release(y);
    struct rt_tensor *srcT = h_tensor(RT_F64, 2, H_SHAPE(2, 4), H_VALS(1, 2, 3, 4, 10, 20, 30, 40)), *src;
    REQUIRE_OK(rt_transpose(srcT, 0, 1, &src)); /* (4,2): [1,10],[2,20],[3,30],[4,40] */
    REQUIRE_OK(rt_scatter_add(x, 1, gi, src, &y));
    {
        double *w = h_values(x);
        w[0 * 5 + 0] += 1, w[0 * 5 + 4] += 10, w[1 * 5 + 1] += 2, w[1 * 5 + 3] += 20;
        w[2 * 5 + 2] += 3 + 30, w[3 * 5 + 3] += 4, w[3 * 5 + 1] += 40;
        CHECK_TENSOR_VALUES(y, w, 20, 0, 0);
        free(w);
    }
    rt_tensor_release(y);
    /* a strided u8 condition */
    struct rt_tensor *c2 = h_tensor(RT_U8, 2, H_SHAPE(5, 4), H_VALS(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1));
    struct rt_tensor *c, *z;
    REQUIRE_OK(rt_transpose(c2, 0, 1, &c)); /* (4,5) */
    REQUIRE_OK(rt_tensor_full(RT_F64, RT_CPU, 0, NULL, -1, &z));
    REQUIRE_OK(rt_where(c, x, z, &y));
    CHECK_TENSOR_VALUES(y, H_VALS(0, -1, -1, -1, 4, -1, 6, -1, -1, 9, -1, -1, 12, -1, 14, -1, -1, -1, 18, 19), 20, 0, 0);
    RELEASE(x, idx2, idx, y, giT, gi, srcT, src, c2, c, z);
}

static void test_element_access_on_views(void)
{
    struct rt_tensor *x = h_iota(RT_F32, 3, H_SHAPE(2, 3, 4)), *a, *b, *t, *e;
    REQUIRE_OK(rt_select(x, 0, 1, &a)); /* offset 12 */
    REQUIRE_OK(rt_select(a, 1, 2, &b)); /* (3): 14, 18, 22 */
    struct rt_tensor *one;
    REQUIRE_OK(rt_select(b, 0, 2, &one)); /* 0-dim, offset 22 */
    double v;
    CHECK_OK(rt_tensor_item(one, &v));
    CHECK(v == 22, "item of an offset 0-dim view: %g", v);
    float host[3];
    CHECK_OK(rt_tensor_to_host(b, RT_F32, host));
    CHECK(host[0] == 14 && host[1] == 18 && host[2] == 22, "to_host of a strided view: %g %g %g", host[0], host[1],
          host[2]);
    REQUIRE_OK(rt_transpose(a, 0, 1, &t)); /* (4,3) */
    double hd[12];
    CHECK_OK(rt_tensor_to_host(t, RT_F64, hd));
    CHECK(hd[0] == 12 && hd[1] == 16 && hd[2] == 20 && hd[3] == 13, "to_host of a transposed view");
    struct rt_tensor *s1;
    REQUIRE_OK(rt_narrow(b, 0, 1, 1, &s1));
    REQUIRE_OK(rt_expand(s1, 2, H_SHAPE(2, 3), &e));
    int64_t idx[2] = {1, 2};
    CHECK_OK(rt_tensor_get(e, idx, &v));
    CHECK(v == 18, "get on an expanded view: %g", v);
    int64_t hi[6];
    CHECK_OK(rt_tensor_to_host(e, RT_I64, hi));
    CHECK(hi[0] == 18 && hi[5] == 18, "to_host of an expanded view");
    RELEASE(x, a, b, one, t, s1, e);
}

int main(void)
{
    RUN(test_fixtures_load);
    RUN(test_fixtures_contiguous);
    RUN(test_fixtures_strided);
    RUN(test_unary_naive);
    RUN(test_binary_broadcast_naive);
    RUN(test_compare_where_naive);
    RUN(test_reductions_naive);
    RUN(test_sum_to_shape);
    RUN(test_matmul_blas_vs_naive);
    RUN(test_matmul_tiles);
    RUN(test_sgd_many);
    RUN(test_adam_errors);
    RUN(test_matmul_batched_and_vectors);
    RUN(test_linear_vs_matmul);
    RUN(test_softmax_naive_and_extreme);
    RUN(test_index_ops_naive);
    RUN(test_cat_stack);
    RUN(test_rng_determinism_and_stats);
    RUN(test_randperm_randint);
    RUN(test_thread_count_independence);
    RUN(test_op_errors);
    RUN(test_empty_tensors);
    RUN(test_large_parallel_paths);
    RUN(test_strided_index_tensors);
    RUN(test_element_access_on_views);
    return h_finish();
}
