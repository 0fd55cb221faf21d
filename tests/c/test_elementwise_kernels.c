/* The CPU element-wise and reduction kernels against naive loops, at the sizes where their fast
 * paths and thread thresholds switch: broadcast binary ops (a bias row, a per-row column, a
 * same-shape pair, both sides broadcast, a scalar) with odd sizes, non-contiguous inputs and every
 * dtype; the cheap unary ops; sums and means over the batch with full and partial 64-lane blocks;
 * rt_sum_to_shape's one-pass path for a run of summed dims against the sum dim by dim and against a
 * loop, with its gradient by finite differences; and rt_add_(t, g, alpha), the optimizer's in-place
 * update. Each runs on 1 and 2 threads: the results must agree with the reference (exactly for
 * integers and sums, whose order is fixed) whatever the thread count. References are computed
 * here in double (int64 for integers) from the inputs' values read element by element. */
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "gradcheck.h"
#include "harness.h"

static const enum rt_dtype all_dtypes[] = {RT_F32, RT_F64, RT_I64, RT_U8};

static int64_t numel(int nd, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= s[i];
    return n;
}

/* value of t at the output index oi (of an nd-dim output), with t broadcast over it */
static double bcast_at(const struct rt_tensor *t, int nd, const int64_t *oi)
{
    int64_t flat = 0;
    for (int d = 0; d < t->ndim; d++) {
        int od = d + nd - t->ndim;
        flat = flat * t->shape[d] + (t->shape[d] == 1 ? 0 : oi[od]);
    }
    return h_elem(t, flat);
}

static void unflat(int nd, const int64_t *s, int64_t i, int64_t *oi)
{
    for (int d = nd - 1; d >= 0; d--) {
        oi[d] = s[d] ? i % s[d] : 0;
        i = s[d] ? i / s[d] : 0;
    }
}

/* the result of op on x, y in dtype dt, as the kernels define it (integers wrap, x / 0 = 0) */
static double ref_binary(int op, enum rt_dtype dt, double x, double y)
{
    if (dt == RT_F32 || dt == RT_F64) {
        double r = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : op == 3 ? x / y : op == 4 ? fmax(x, y) : fmin(x, y);
        return dt == RT_F32 ? (double)(float)r : r;
    }
    int64_t a = (int64_t)x, b = (int64_t)y;
    int64_t r = op == 0 ? a + b : op == 1 ? a - b : op == 2 ? a * b : op == 3 ? (b ? a / b : 0) : op == 4 ? (a > b ? a : b) : (a < b ? a : b);
    return dt == RT_U8 ? (double)(uint8_t)(uint64_t)r : (double)r;
}

typedef enum rt_status (*binary_fn)(struct rt_tensor *, struct rt_tensor *, struct rt_tensor **);

static void test_binary_broadcast_kernels(void)
{
    static const binary_fn fns[] = {rt_add, rt_sub, rt_mul, rt_div, rt_maximum, rt_minimum};
    static const char *names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
    struct {
        int na, nb;
        int64_t sa[3], sb[3];
    } cases[] = {
        {2, 1, {300, 1201}, {1201}},       /* a bias row over a batch; 360,300 elements: parallel */
        {2, 2, {129, 37}, {129, 1}},       /* a per-row scale */
        {2, 2, {1000, 263}, {1000, 263}},  /* same shape, 263,000 elements: just above the cheap threshold */
        {3, 3, {7, 1, 9}, {1, 5, 1}},      /* both broadcast */
        {0, 1, {0}, {513}},                /* a scalar */
        {2, 1, {5, 4099}, {4099}},         /* rows longer than a 4096-element chunk */
    };
    for (int th = 1; th <= 2; th++) {
        rt_set_num_threads(th);
        for (size_t k = 0; k < sizeof all_dtypes / sizeof all_dtypes[0]; k++) {
            enum rt_dtype dt = all_dtypes[k];
            bool flt = dt == RT_F32 || dt == RT_F64;
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                /* integers: small values so i64 products stay exact; divisors never 0 */
                struct rt_tensor *a = h_rand(dt, cases[c].na, cases[c].sa, flt ? -3 : 0, flt ? 3 : 40, 11 + c);
                struct rt_tensor *b = h_rand(dt, cases[c].nb, cases[c].sb, flt ? 0.5 : 1, flt ? 2 : 9, 23 + c);
                struct rt_tensor *as = fx_strided_copy(a);
                int nd = cases[c].na > cases[c].nb ? cases[c].na : cases[c].nb;
                int64_t os[3];
                for (int d = 0; d < nd; d++) {
                    int da = d - (nd - cases[c].na), db = d - (nd - cases[c].nb);
                    int64_t xa = da >= 0 ? cases[c].sa[da] : 1, xb = db >= 0 ? cases[c].sb[db] : 1;
                    os[d] = xa == 1 ? xb : xa;
                }
                int64_t n = numel(nd, os);
                double *want = malloc(sizeof(double) * (size_t)n);
                REQUIRE(want != NULL, "out of memory");
                for (int op = 0; op < 6; op++) {
                    for (int64_t i = 0; i < n; i++) {
                        int64_t oi[3];
                        unflat(nd, os, i, oi);
                        want[i] = ref_binary(op, dt, bcast_at(a, nd, oi), bcast_at(b, nd, oi));
                    }
                    for (int strided = 0; strided < 2; strided++) {
                        struct rt_tensor *y = NULL;
                        char what[128];
                        snprintf(what, sizeof what, "%s (case %zu) %s%s, %d thread(s)", names[op], c, rt_dtype_name(dt),
                                 strided ? " on a transposed a" : "", th);
                        if (CHECK_OK(fns[op](strided ? as : a, b, &y)) && h_check_shape(y, nd, os, what, __FILE__, __LINE__))
                            h_tensor_values(y, want, n, dt == RT_F32 ? 1e-7 : 0, 0, what, __FILE__, __LINE__);
                        rt_tensor_release(y);
                    }
                }
                free(want);
                RELEASE(a, b, as);
            }
        }
    }
    rt_set_num_threads(2);
}

typedef enum rt_status (*unary_fn)(struct rt_tensor *, struct rt_tensor **);
static enum rt_status affine_k(struct rt_tensor *x, struct rt_tensor **y) { return rt_affine(x, -0.37, 1.25, y); }
static enum rt_status clamp_k(struct rt_tensor *x, struct rt_tensor **y) { return rt_clamp(x, -0.5, 0.75, y); }
static enum rt_status square_k(struct rt_tensor *x, struct rt_tensor **y) { return rt_pow(x, 2, y); }

static void test_unary_kernels(void)
{
    static const unary_fn fns[] = {rt_relu, rt_neg, rt_abs, affine_k, clamp_k, square_k, rt_exp};
    static const char *names[] = {"relu", "neg", "abs", "affine", "clamp", "pow 2", "exp"};
    const int64_t sizes[] = {1, 4097, 300001}; /* one element, past a chunk, past the cheap threshold */
    for (int th = 1; th <= 2; th++) {
        rt_set_num_threads(th);
        for (int dk = 0; dk < 2; dk++) {
            enum rt_dtype dt = dk ? RT_F64 : RT_F32;
            for (size_t s = 0; s < 3; s++) {
                struct rt_tensor *x = h_rand(dt, 1, &sizes[s], -2, 2, 5 + s);
                double *xv = h_values(x), *want = malloc(sizeof(double) * (size_t)sizes[s]);
                REQUIRE(xv && want, "out of memory");
                for (int op = 0; op < 7; op++) {
                    for (int64_t i = 0; i < sizes[s]; i++) {
                        double v = xv[i];
                        double r = op == 0 ? (v > 0 ? v : 0) : op == 1 ? -v : op == 2 ? fabs(v)
                                 : op == 3 ? v * -0.37 + 1.25 : op == 4 ? fmin(fmax(v, -0.5), 0.75)
                                 : op == 5 ? v * v : exp(v);
                        want[i] = r;
                    }
                    struct rt_tensor *y = NULL;
                    char what[96];
                    snprintf(what, sizeof what, "%s %s n=%lld, %d thread(s)", names[op], rt_dtype_name(dt),
                             (long long)sizes[s], th);
                    if (CHECK_OK(fns[op](x, &y)))
                        h_tensor_values(y, want, sizes[s], dt == RT_F32 ? 2e-7 : 1e-15, 0, what, __FILE__, __LINE__);
                    rt_tensor_release(y);
                }
                free(xv);
                free(want);
                rt_tensor_release(x);
            }
        }
        /* integer relu / neg / abs / affine on i64 */
        struct rt_tensor *xi = h_rand(RT_I64, 1, H_SHAPE(300001), -50, 50, 9), *y = NULL;
        double *xv = h_values(xi), *want = malloc(sizeof(double) * 300001);
        REQUIRE(xv && want, "out of memory");
        for (int64_t i = 0; i < 300001; i++)
            want[i] = xv[i] > 0 ? xv[i] : 0;
        if (CHECK_OK(rt_relu(xi, &y)))
            CHECK_TENSOR_VALUES(y, want, 300001, 0, 0);
        rt_tensor_release(y);
        for (int64_t i = 0; i < 300001; i++)
            want[i] = 3 * xv[i] - 7;
        if (CHECK_OK(rt_affine(xi, 3, -7, &y)))
            CHECK_TENSOR_VALUES(y, want, 300001, 0, 0);
        rt_tensor_release(y);
        free(xv);
        free(want);
        rt_tensor_release(xi);
    }
    rt_set_num_threads(2);
}

/* sums (and means) over dim 1 of (outer, n, inner): full 64-lane blocks, partial ones, inner = 1 */
static void test_sum_over_batch(void)
{
    const int64_t inners[] = {1, 63, 64, 65, 200, 1201}, ns[] = {1, 3, 128};
    for (int th = 1; th <= 2; th++) {
        rt_set_num_threads(th);
        for (size_t k = 0; k < sizeof all_dtypes / sizeof all_dtypes[0]; k++) {
            enum rt_dtype dt = all_dtypes[k];
            bool flt = dt == RT_F32 || dt == RT_F64;
            for (size_t ii = 0; ii < 6; ii++)
                for (size_t ni = 0; ni < 3; ni++)
                    for (int64_t outer = 1; outer <= 2; outer++) {
                        int64_t shape[3] = {outer, ns[ni], inners[ii]}, m = outer * inners[ii];
                        struct rt_tensor *x = h_rand(dt, 3, shape, flt ? -1 : 0, flt ? 1 : 200, 31 + ii * 7 + ni);
                        double *xv = h_values(x), *sum = calloc((size_t)m, sizeof(double));
                        REQUIRE(xv && sum, "out of memory");
                        for (int64_t o = 0; o < outer; o++)
                            for (int64_t j = 0; j < ns[ni]; j++)
                                for (int64_t l = 0; l < inners[ii]; l++)
                                    sum[o * inners[ii] + l] += xv[(o * ns[ni] + j) * inners[ii] + l];
                        /* the kernel sums in double (f32 too) and rounds once; u8 wraps modulo 256 */
                        double *want = malloc(sizeof(double) * (size_t)m);
                        REQUIRE(want != NULL, "out of memory");
                        for (int64_t i = 0; i < m; i++)
                            want[i] = dt == RT_F32 ? (double)(float)sum[i] : dt == RT_U8 ? (double)((int64_t)sum[i] % 256) : sum[i];
                        struct rt_tensor *y = NULL;
                        char what[96];
                        snprintf(what, sizeof what, "sum %s (%lld,%lld,%lld), %d thread(s)", rt_dtype_name(dt),
                                 (long long)outer, (long long)ns[ni], (long long)inners[ii], th);
                        if (CHECK_OK(rt_sum(x, 1, false, &y)))
                            h_tensor_values(y, want, m, dt == RT_F64 ? 1e-15 : 0, 0, what, __FILE__, __LINE__);
                        rt_tensor_release(y);
                        if (flt) { /* the mean divides the double sum, then rounds once */
                            for (int64_t i = 0; i < m; i++)
                                want[i] = dt == RT_F32 ? (double)(float)(sum[i] / (double)ns[ni]) : sum[i] / (double)ns[ni];
                            if (CHECK_OK(rt_mean(x, 1, false, &y)))
                                h_tensor_values(y, want, m, dt == RT_F64 ? 1e-15 : 0, 0, what, __FILE__, __LINE__);
                            rt_tensor_release(y);
                        }
                        free(xv);
                        free(sum);
                        free(want);
                        rt_tensor_release(x);
                    }
        }
    }
    rt_set_num_threads(2);
}

/* rt_sum_to_shape: the one-pass path against the sum dim by dim (rt_sum, one dim at a time) and a loop */
static void test_sum_to_shape_fused(void)
{
    struct {
        int nx, nt;
        int64_t sx[4], st[4];
    } cases[] = {
        {3, 1, {4, 5, 6}, {6}},                /* leading run of 2: fused */
        {3, 3, {4, 5, 6}, {1, 1, 6}},          /* kept ones: fused */
        {4, 3, {2, 3, 4, 5}, {1, 4, 5}},       /* leading + a kept one: fused */
        {3, 1, {3, 70, 129}, {129}},           /* a bias over (N, T, C) */
        {4, 3, {2, 3, 4, 5}, {3, 1, 1}},       /* two runs: dim by dim */
        {2, 0, {3, 4}, {0}},                   /* everything */
        {3, 2, {4, 5, 6}, {5, 6}},             /* one dim */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int dk = 0; dk < 2; dk++) {
            enum rt_dtype dt = dk ? RT_F64 : RT_F32;
            struct rt_tensor *x = h_rand(dt, cases[c].nx, cases[c].sx, -1, 1, 77 + c), *xs = fx_strided_copy(x);
            int64_t n = numel(cases[c].nx, cases[c].sx), m = numel(cases[c].nt, cases[c].st);
            double *xv = h_values(x), *want = calloc((size_t)m, sizeof(double));
            REQUIRE(xv && want, "out of memory");
            for (int64_t i = 0; i < n; i++) { /* each element into its target slot */
                int64_t xi[4], flat = 0;
                unflat(cases[c].nx, cases[c].sx, i, xi);
                for (int d = 0; d < cases[c].nt; d++) {
                    int xd = d + cases[c].nx - cases[c].nt;
                    flat = flat * cases[c].st[d] + (cases[c].st[d] == 1 ? 0 : xi[xd]);
                }
                want[flat] += xv[i];
            }
            for (int strided = 0; strided < 2; strided++) {
                struct rt_tensor *y = NULL;
                char what[64];
                snprintf(what, sizeof what, "sum_to_shape case %zu %s%s", c, rt_dtype_name(dt), strided ? " strided" : "");
                if (CHECK_OK(rt_sum_to_shape(strided ? xs : x, cases[c].nt, cases[c].st, &y)) &&
                    h_check_shape(y, cases[c].nt, cases[c].st, what, __FILE__, __LINE__))
                    h_tensor_values(y, want, m, dt == RT_F32 ? 1e-6 : 1e-14, 1e-6, what, __FILE__, __LINE__);
                rt_tensor_release(y);
            }
            /* the unfused way: drop leading dims one by one, then keepdim sums */
            struct rt_tensor *cur = x, *s = NULL;
            rt_tensor_retain(cur);
            for (int d = 0; d < cases[c].nx - cases[c].nt && cur; d++) {
                if (!CHECK_OK(rt_sum(cur, 0, false, &s)))
                    s = NULL;
                rt_tensor_release(cur);
                cur = s;
            }
            for (int d = 0; d < cases[c].nt && cur; d++)
                if (cur->shape[d] != cases[c].st[d]) {
                    if (!CHECK_OK(rt_sum(cur, d, true, &s)))
                        s = NULL;
                    rt_tensor_release(cur);
                    cur = s;
                }
            struct rt_tensor *y = NULL;
            if (cur && CHECK_OK(rt_sum_to_shape(x, cases[c].nt, cases[c].st, &y)))
                CHECK_TENSOR_CLOSE(y, cur, dt == RT_F32 ? 1e-6 : 1e-14, 1e-6);
            RELEASE(y, cur, x, xs);
            free(xv);
            free(want);
        }
    }
    /* a target that is not a broadcast of the shape is refused, naming both */
    struct rt_tensor *x = h_rand(RT_F32, 3, H_SHAPE(2, 3, 4), 0, 1, 3), *y = NULL;
    CHECK_STATUS(rt_sum_to_shape(x, 2, H_SHAPE(2, 4), &y), RT_ERR_SHAPE, "(2,3,4)");
    rt_tensor_release(x);
}

struct shape_ctx {
    int nd;
    int64_t shape[4];
};
static enum rt_status f_sum_to(struct rt_tensor *const *in, void *c, struct rt_tensor **out)
{
    struct shape_ctx *p = c;
    return rt_sum_to_shape(in[0], p->nd, p->shape, out);
}

static void test_sum_to_shape_grad(void)
{
    struct shape_ctx c1 = {1, {4}}, c2 = {3, {1, 1, 4}}, c3 = {3, {1, 3, 4}};
    struct rt_tensor *x = h_rand(RT_F64, 3, H_SHAPE(2, 3, 4), -1, 1, 5);
    GRADCHECK("sum_to_shape (2,3,4) -> (4)", f_sum_to, &c1, 1, &x, GC_ALL);
    GRADCHECK("sum_to_shape (2,3,4) -> (1,1,4)", f_sum_to, &c2, 1, &x, GC_ALL);
    GRADCHECK("sum_to_shape (2,3,4) -> (1,3,4)", f_sum_to, &c3, 1, &x, GC_ALL);
    rt_tensor_release(x);
}

/* rt_add_(t, g, alpha): t += alpha * g, the optimizer's update (one pass when both are contiguous) */
static void test_add_inplace_alpha(void)
{
    const double alpha = -0.01;
    for (int th = 1; th <= 2; th++) {
        rt_set_num_threads(th);
        for (size_t k = 0; k < sizeof all_dtypes / sizeof all_dtypes[0]; k++) {
            enum rt_dtype dt = all_dtypes[k];
            bool flt = dt == RT_F32 || dt == RT_F64;
            double al = flt ? alpha : 3;
            struct {
                int nt, ng;
                int64_t st[2], sg[2];
                bool transposed;
            } cases[] = {{2, 2, {600, 501}, {600, 501}, false}, /* 300,600 elements: the parallel one-pass path */
                         {2, 2, {37, 5}, {37, 5}, false},
                         {2, 2, {37, 5}, {37, 5}, true},       /* t non-contiguous: through a temporary */
                         {2, 1, {9, 130}, {130}, false}};      /* g broadcast over t */
            for (size_t c = 0; c < 4; c++) {
                struct rt_tensor *t0 = h_rand(dt, cases[c].nt, cases[c].st, flt ? -1 : 0, flt ? 1 : 50, 41 + c);
                struct rt_tensor *g = h_rand(dt, cases[c].ng, cases[c].sg, flt ? -1 : 0, flt ? 1 : 50, 43 + c);
                struct rt_tensor *t = cases[c].transposed ? fx_strided_copy(t0) : NULL;
                if (!t)
                    REQUIRE_OK(rt_clone(t0, &t));
                int64_t n = numel(cases[c].nt, cases[c].st);
                double *want = malloc(sizeof(double) * (size_t)n);
                REQUIRE(want != NULL, "out of memory");
                for (int64_t i = 0; i < n; i++) {
                    int64_t oi[2];
                    unflat(cases[c].nt, cases[c].st, i, oi);
                    double v = h_elem(t0, i) + al * bcast_at(g, cases[c].nt, oi);
                    want[i] = dt == RT_F32 ? (double)(float)v : dt == RT_U8 ? (double)((int64_t)v % 256) : v;
                }
                uint64_t v0 = t->storage->version;
                char what[64];
                snprintf(what, sizeof what, "add_ case %zu %s, %d thread(s)", c, rt_dtype_name(dt), th);
                if (CHECK_OK(rt_add_(t, g, al))) {
                    h_tensor_values(t, want, n, dt == RT_F32 ? 1e-6 : 1e-15, dt == RT_F32 ? 1e-7 : 0, what, __FILE__,
                                    __LINE__);
                    CHECK(t->storage->version > v0, "%s: the version counter moved", what);
                }
                free(want);
                RELEASE(t0, g, t);
            }
        }
    }
    rt_set_num_threads(2);
    /* autograd's rule for in-place ops: refused on a tensor that requires grad while grad mode is on,
     * allowed under no-grad (the optimizer's case); a value saved for backward and then updated in
     * place makes backward fail instead of using the new value */
    struct rt_tensor *p = h_rand(RT_F32, 1, H_SHAPE(5), -1, 1, 1), *g = h_rand(RT_F32, 1, H_SHAPE(5), -1, 1, 2);
    REQUIRE_OK(rt_requires_grad_(p, true));
    CHECK_STATUS(rt_add_(p, g, 0.5), RT_ERR_AUTOGRAD, "in-place");
    bool was = rt_grad_set_enabled(false);
    CHECK_OK(rt_add_(p, g, 0.5));
    rt_grad_set_enabled(was);
    struct rt_tensor *sq = NULL, *l = NULL;
    REQUIRE_OK(rt_mul(p, p, &sq)); /* saves p */
    REQUIRE_OK(rt_sum_all(sq, &l));
    was = rt_grad_set_enabled(false);
    CHECK_OK(rt_add_(p, g, 0.5));
    rt_grad_set_enabled(was);
    CHECK_STATUS(rt_backward(l, NULL, false), RT_ERR_AUTOGRAD, "modified in place");
    RELEASE(p, g, sq, l);
}

int main(void)
{
    RUN(test_binary_broadcast_kernels);
    RUN(test_unary_kernels);
    RUN(test_sum_over_batch);
    RUN(test_sum_to_shape_fused);
    RUN(test_sum_to_shape_grad);
    RUN(test_add_inplace_alpha);
    return h_finish();
}
