/* Distributed training in the core (retort/dist.h): collectives, the differentiable all-reduce, the
 * autograd grad-ready hook and the gradient reducer.
 *
 * Run plainly, the program checks one process (every collective the identity, argument errors, the hook,
 * the bucket plan), then starts itself under `mpirun -np 2` and `-np 3` (when mpirun exists and the build
 * has MPI; RETORT_TEST_DIST_CHILD=1 marks the children), where every rank checks the collectives and the
 * reducer against values computed here with plain loops: each rank's data is a function of (rank, index),
 * so every rank can compute what the reduction over all ranks must be. A child's exit status is its
 * failure count; the parent fails when a child run fails. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* rank r's value at i: distinct per rank, exact in f32 (small integers and halves) */
static double value(int r, int64_t i) { return (double)((i * 7 + r * 13) % 23) - 11.0 + 0.5 * (r % 2); }

static struct rt_tensor *rank_tensor(enum rt_dtype dt, int64_t n, int r)
{
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        v[i] = dt == RT_I64 ? (double)((i * 7 + r * 13) % 23) - 11 + r * 1000000000LL : value(r, i);
    struct rt_tensor *t = h_tensor(dt, 1, H_SHAPE(n), v);
    free(v);
    return t;
}

/* ------------------------------------------------------------------ one process */

static void test_one_rank_identity(void)
{
    CHECK(rt_dist_size() == 1 && rt_dist_rank() == 0 && rt_dist_local_size() == 1, "size %d rank %d",
          rt_dist_size(), rt_dist_rank());
    struct rt_tensor *t = h_iota(RT_F32, 2, H_SHAPE(3, 4)), *want = h_iota(RT_F32, 2, H_SHAPE(3, 4));
    struct rt_tensor *g = NULL, *y = NULL;
    REQUIRE(t && want, "build");
    for (int op = RT_DIST_SUM; op <= RT_DIST_MAX; op++)
        CHECK_OK(rt_dist_all_reduce_(t, (enum rt_dist_op)op));
    CHECK_OK(rt_dist_broadcast_(t, 0));
    CHECK_OK(rt_dist_barrier());
    CHECK_TENSOR_EQUAL(t, want);
    if (CHECK_OK(rt_dist_all_gather(t, &g)))
        CHECK_TENSOR_EQUAL(g, want);
    if (CHECK_OK(rt_dist_all_reduce(t, RT_DIST_MEAN, &y)))
        (void)(CHECK(y != t, "a new tensor") && CHECK_TENSOR_EQUAL(y, want));
    RELEASE(t, want, g, y);

    struct rt_tensor *s = h_tensor(RT_F64, 0, NULL, H_VALS(2.5)), *gs = NULL;
    REQUIRE(s, "build");
    if (CHECK_OK(rt_dist_all_gather(s, &gs)))
        (void)(CHECK_SHAPE(gs, 1, 1) && CHECK_CLOSE(h_elem(gs, 0), 2.5, 0));
    RELEASE(s, gs);
}

static void test_argument_errors(void)
{
    struct rt_tensor *f = h_iota(RT_F32, 1, H_SHAPE(4)), *i = h_iota(RT_I64, 1, H_SHAPE(4)), *out = NULL;
    REQUIRE(f && i, "build");
    CHECK_STATUS(rt_dist_all_reduce_(NULL, RT_DIST_SUM), RT_ERR_ARG, "NULL");
    CHECK_STATUS(rt_dist_all_reduce_(f, (enum rt_dist_op)7), RT_ERR_ARG, "unknown reduction 7");
    CHECK_STATUS(rt_dist_all_reduce_(i, RT_DIST_MEAN), RT_ERR_DTYPE, "mean needs a float tensor, got i64");
    CHECK_STATUS(rt_dist_broadcast_(f, 1), RT_ERR_ARG, "root 1 is not a rank (0..0)");
    CHECK_STATUS(rt_dist_all_gather(f, NULL), RT_ERR_ARG, "out is NULL");
    REQUIRE_OK(rt_requires_grad_(f, true));
    CHECK_STATUS(rt_dist_all_reduce(f, RT_DIST_MAX, &out), RT_ERR_AUTOGRAD, "max has no gradient");
    CHECK(out == NULL, "no result on failure");
    struct rt_dist_reducer *r = NULL;
    CHECK_STATUS(rt_dist_reducer_new(1, (struct rt_tensor *[]){i}, 0, &r), RT_ERR_DTYPE, "parameter 1 is i64");
    CHECK_STATUS(rt_dist_reducer_new(2, (struct rt_tensor *[]){f, f}, 0, &r), RT_ERR_ARG,
                 "parameter 2 is parameter 1 again");
    CHECK_STATUS(rt_dist_reducer_new(2, (struct rt_tensor *[]){f, NULL}, 0, &r), RT_ERR_ARG, "parameter 2 is NULL");
    CHECK(r == NULL, "no reducer on failure");
    CHECK_STATUS(rt_dist_reducer_begin(NULL), RT_ERR_ARG, "NULL");
    RELEASE(f, i);
}

/* records each leaf the hook saw, with the sum of its gradient at that moment */
static struct {
    int calls;
    struct rt_tensor *leaf[8];
    double sum[8];
} seen;

static enum rt_status record_leaf(void *ctx, struct rt_tensor *leaf)
{
    (void)ctx;
    if (seen.calls < 8) {
        double *v = h_values(leaf->grad);
        double s = 0;
        for (int64_t k = 0; v && k < rt_tensor_numel(leaf->grad); k++)
            s += v[k];
        free(v);
        seen.leaf[seen.calls] = leaf;
        seen.sum[seen.calls] = s;
    }
    seen.calls++;
    return RT_OK;
}

static enum rt_status fail_leaf(void *ctx, struct rt_tensor *leaf)
{
    (void)ctx, (void)leaf;
    return rt_error(RT_ERR_ARG, "hook says no");
}

/* loss = sum(x * w) + 3 sum(w) + sum(b): w's gradient has two contributions (x + 3), b's one (1) */
static enum rt_status make_loss(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *b, struct rt_tensor **loss)
{
    struct rt_tensor *xw = NULL, *s1 = NULL, *s2 = NULL, *s3 = NULL, *w3 = NULL, *t = NULL;
    enum rt_status st = rt_mul(x, w, &xw);
    if (st == RT_OK)
        st = rt_sum_all(xw, &s1);
    if (st == RT_OK)
        st = rt_add(w, w, &w3);
    if (st == RT_OK)
        st = rt_add(w3, w, &t);
    if (st == RT_OK)
        st = rt_sum_all(t, &s2);
    if (st == RT_OK)
        st = rt_sum_all(b, &s3);
    struct rt_tensor *a = NULL;
    if (st == RT_OK)
        st = rt_add(s1, s2, &a);
    if (st == RT_OK)
        st = rt_add(a, s3, loss);
    RELEASE(xw, s1, s2, s3, w3, t, a);
    return st;
}

static void test_grad_ready_hook(void)
{
    struct rt_tensor *x = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(1, 2, 4));
    struct rt_tensor *w = h_tensor(RT_F64, 1, H_SHAPE(3), H_VALS(0.5, -1, 2));
    struct rt_tensor *b = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(1, 1)), *loss = NULL;
    REQUIRE(x && w && b, "build");
    REQUIRE_OK(rt_requires_grad_(w, true));
    REQUIRE_OK(rt_requires_grad_(b, true));
    memset(&seen, 0, sizeof seen);
    rt_autograd_set_grad_ready_hook(record_leaf, NULL);
    if (CHECK_OK(make_loss(x, w, b, &loss)))
        CHECK_OK(rt_backward(loss, NULL, false));
    rt_autograd_set_grad_ready_hook(NULL, NULL);
    /* once per leaf that requires grad (x does not), with the whole gradient: w's is x + 3 (sum 7 + 9) */
    CHECK(seen.calls == 2, "calls %d", seen.calls);
    for (int k = 0; k < seen.calls && k < 2; k++) {
        if (seen.leaf[k] == w)
            CHECK_CLOSE(seen.sum[k], 16, 0);
        else
            (void)(CHECK(seen.leaf[k] == b, "leaf %d is neither w nor b", k) && CHECK_CLOSE(seen.sum[k], 2, 0));
    }
    rt_tensor_release(loss);
    loss = NULL;
    /* removed: no calls; an error from the hook stops backward with that error */
    seen.calls = 0;
    rt_tensor_zero_grad(w);
    rt_tensor_zero_grad(b);
    if (CHECK_OK(make_loss(x, w, b, &loss)))
        CHECK_OK(rt_backward(loss, NULL, true));
    CHECK(seen.calls == 0, "calls after removal %d", seen.calls);
    rt_autograd_set_grad_ready_hook(fail_leaf, NULL);
    CHECK_STATUS(rt_backward(loss, NULL, false), RT_ERR_ARG, "hook says no");
    rt_autograd_set_grad_ready_hook(NULL, NULL);
    RELEASE(x, w, b, loss);
}

/* the plan: reverse order, one dtype per bucket, the first bucket <= 1 MiB, the others <= bucket_bytes */
static void test_reducer_plan(void)
{
    struct rt_tensor *p[5] = {
        h_iota(RT_F32, 1, H_SHAPE(100)),        /* 400 B */
        h_iota(RT_F32, 2, H_SHAPE(600, 500)),   /* 1,200,000 B */
        h_iota(RT_F32, 1, H_SHAPE(10)),         /* 40 B */
        h_iota(RT_F64, 2, H_SHAPE(400, 500)),   /* 1,600,000 B */
        h_iota(RT_F32, 2, H_SHAPE(10, 100)),    /* 4,000 B */
    };
    for (int i = 0; i < 5; i++)
        REQUIRE(p[i] && CHECK_OK(rt_requires_grad_(p[i], true)), "build %d", i);
    struct rt_dist_reducer *r = NULL;
    REQUIRE_OK(rt_dist_reducer_new(5, p, 2u << 20, &r));
    /* p4 (f32, the first bucket) | p3 (f64; >= 1 MiB, half the cap: alone) | p2 | p1 (alone) | p0 */
    const int params[] = {1, 1, 1, 1, 1};
    const int64_t bytes[] = {4000, 1600000, 40, 1200000, 400};
    if (CHECK(rt_dist_reducer_buckets(r) == 5, "buckets %d", rt_dist_reducer_buckets(r)))
        for (int k = 0; k < 5; k++)
            CHECK(rt_dist_reducer_bucket_params(r, k) == params[k] && rt_dist_reducer_bucket_bytes(r, k) == bytes[k],
                  "bucket %d: %d params, %lld bytes", k, rt_dist_reducer_bucket_params(r, k),
                  (long long)rt_dist_reducer_bucket_bytes(r, k));
    CHECK(rt_dist_reducer_bucket_bytes(r, 5) == -1 && rt_dist_reducer_bucket_params(r, -1) == -1, "out of range");
    rt_dist_reducer_free(r);
    /* small parameters share buckets up to the cap (1 MiB for the first): 100 x 4 KB = 400 KB, one bucket */
    struct rt_tensor *small[100] = {0};
    for (int i = 0; i < 100; i++)
        REQUIRE((small[i] = h_iota(RT_F32, 1, H_SHAPE(1000))) && CHECK_OK(rt_requires_grad_(small[i], true)), "build");
    r = NULL;
    if (CHECK_OK(rt_dist_reducer_new(100, small, 0, &r)))
        CHECK(rt_dist_reducer_buckets(r) == 1 && rt_dist_reducer_bucket_params(r, 0) == 100, "%d buckets",
              rt_dist_reducer_buckets(r));
    rt_dist_reducer_free(r);
    h_release_array(small, 100);
    REQUIRE_OK(rt_dist_reducer_new(5, p, 2u << 20, &r));
    /* one rank: begin and finish leave the gradients as backward made them */
    struct rt_tensor *loss = NULL, *sq = NULL;
    CHECK_OK(rt_dist_reducer_begin(r));
    if (CHECK_OK(rt_mul(p[4], p[4], &sq)) && CHECK_OK(rt_sum_all(sq, &loss)))
        CHECK_OK(rt_backward(loss, NULL, false));
    CHECK_OK(rt_dist_reducer_finish(r));
    if (CHECK(p[4]->grad != NULL && p[0]->grad == NULL, "grads"))
        CHECK_CLOSE(h_elem(p[4]->grad, 999), 2 * 999, 0);
    rt_dist_reducer_free(r);
    RELEASE(loss, sq);
    h_release_array(p, 5);
}

/* ------------------------------------------------------------------ several ranks (children) */

static void test_all_reduce_against_loops(void)
{
    int R = rt_dist_size(), me = rt_dist_rank();
    const int64_t sizes[] = {1, 7, 1001};
    const enum rt_dtype dts[] = {RT_F32, RT_F64, RT_I64};
    for (int d = 0; d < 3; d++)
        for (int s = 0; s < 3; s++)
            for (int op = RT_DIST_SUM; op <= RT_DIST_MAX; op++) {
                if (op == RT_DIST_MEAN && dts[d] == RT_I64)
                    continue;
                int64_t n = sizes[s];
                struct rt_tensor *t = rank_tensor(dts[d], n, me);
                double *want = calloc((size_t)n, sizeof *want);
                if (!CHECK(t && want, "build")) {
                    rt_tensor_release(t);
                    free(want);
                    return;
                }
                for (int64_t i = 0; i < n; i++) {
                    double acc = op == RT_DIST_MAX ? -1e300 : 0;
                    for (int r = 0; r < R; r++) {
                        double v = dts[d] == RT_I64 ? (double)((i * 7 + r * 13) % 23) - 11 + r * 1000000000LL : value(r, i);
                        acc = op == RT_DIST_MAX ? (v > acc ? v : acc) : acc + v;
                    }
                    want[i] = op == RT_DIST_MEAN ? acc / R : acc;
                }
                if (CHECK_OK(rt_dist_all_reduce_(t, (enum rt_dist_op)op)))
                    CHECK_TENSOR_VALUES(t, want, n, dts[d] == RT_F32 ? 1e-6 : 1e-15, 0);
                rt_tensor_release(t);
                free(want);
            }
}

static void test_broadcast_strided_and_gather_uneven(void)
{
    int R = rt_dist_size(), me = rt_dist_rank();
    /* a transposed (non-contiguous) view: written back through its strides */
    struct rt_tensor *base = rank_tensor(RT_F64, 12, me), *m = NULL, *mt = NULL;
    REQUIRE(base, "build");
    REQUIRE_OK(rt_view(base, 2, H_SHAPE(3, 4), &m));
    REQUIRE_OK(rt_transpose(m, 0, 1, &mt));
    if (CHECK_OK(rt_dist_broadcast_(mt, R - 1)))
        for (int64_t i = 0; i < 12; i++)
            CHECK_CLOSE(h_elem(base, i), value(R - 1, i), 0);
    RELEASE(base, m, mt);
    /* rank r gathers r + 1 rows of 2 */
    struct rt_tensor *rows = NULL, *g = NULL, *flat = rank_tensor(RT_F32, 2 * (me + 1), me);
    REQUIRE(flat, "build");
    REQUIRE_OK(rt_view(flat, 2, H_SHAPE(me + 1, 2), &rows));
    if (CHECK_OK(rt_dist_all_gather(rows, &g)) && CHECK_SHAPE(g, 2, R * (R + 1) / 2, 2)) {
        int64_t at = 0;
        for (int r = 0; r < R; r++)
            for (int64_t i = 0; i < 2 * (r + 1); i++, at++)
                CHECK_CLOSE(h_elem(g, at), value(r, i), 0);
    }
    RELEASE(flat, rows, g);
}

static void test_mismatch_is_refused_everywhere(void)
{
    int me = rt_dist_rank();
    struct rt_tensor *t = rank_tensor(RT_F32, 5 + me, me), *ok = rank_tensor(RT_F32, 3, me);
    REQUIRE(t && ok, "build");
    CHECK_STATUS(rt_dist_all_reduce_(t, RT_DIST_SUM), RT_ERR_ARG, "the ranks passed different tensors: element count 5");
    /* the ranks are still in step */
    CHECK_OK(rt_dist_all_reduce_(ok, RT_DIST_SUM));
    RELEASE(t, ok);
}

/* y = allReduce(c_r x, sum); L_r = sum(d_r * y): x's gradient on rank r is c_r * sum over ranks of d */
static void test_differentiable_all_reduce(void)
{
    int R = rt_dist_size(), me = rt_dist_rank();
    struct rt_tensor *x = rank_tensor(RT_F64, 4, me), *c = h_tensor(RT_F64, 0, NULL, (double[]){me + 1.0});
    struct rt_tensor *d = rank_tensor(RT_F64, 4, me + 5), *cx = NULL, *y = NULL, *dy = NULL, *loss = NULL;
    REQUIRE(x && c && d, "build");
    REQUIRE_OK(rt_requires_grad_(x, true));
    if (CHECK_OK(rt_mul(x, c, &cx)) && CHECK_OK(rt_dist_all_reduce(cx, RT_DIST_SUM, &y)) && CHECK_OK(rt_mul(y, d, &dy)) &&
        CHECK_OK(rt_sum_all(dy, &loss)) && CHECK_OK(rt_backward(loss, NULL, false)) && CHECK(x->grad, "grad")) {
        for (int64_t i = 0; i < 4; i++) {
            double dsum = 0, ysum = 0;
            for (int r = 0; r < R; r++) {
                dsum += value(r + 5, i);
                ysum += (r + 1.0) * value(r, i);
            }
            CHECK_CLOSE(h_elem(y, i), ysum, 1e-14);
            CHECK_CLOSE(h_elem(x->grad, i), (me + 1.0) * dsum, 1e-14);
        }
    }
    RELEASE(x, c, d, cx, y, dy, loss);
}

/* loss_r = sum((x_r w + b)^2) over a (4, 3) x_r; u is used on rank 1 only, v by no rank. Gradients
 * after finish: the mean over the ranks of 2 x_r^T (x_r w + b), 2 sum_rows(x_r w + b), and for u
 * (sum over the ranks that use it) / R; v keeps none. Small buckets force several. */
static void test_reducer_means_gradients(void)
{
    int R = rt_dist_size(), me = rt_dist_rank();
    double wv[15], bv[3] = {0.5, -0.25, 1};
    for (int i = 0; i < 15; i++)
        wv[i] = 0.1 * (i % 7) - 0.3;
    struct rt_tensor *w = h_tensor(RT_F64, 2, H_SHAPE(5, 3), wv), *b = h_tensor(RT_F64, 1, H_SHAPE(3), bv);
    struct rt_tensor *u = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(1, 2)), *v = h_tensor(RT_F64, 1, H_SHAPE(2), H_VALS(3, 4));
    REQUIRE(w && b && u && v, "build");
    struct rt_tensor *params[] = {w, b, u, v};
    for (int i = 0; i < 4; i++)
        REQUIRE_OK(rt_requires_grad_(params[i], true));
    struct rt_dist_reducer *red = NULL;
    REQUIRE_OK(rt_dist_reducer_new(4, params, 64, &red));
    CHECK(rt_dist_reducer_buckets(red) == 2, "small buckets (v u b | w): %d", rt_dist_reducer_buckets(red));
    for (int step = 0; step < 2; step++) { /* twice: the buffers are reused */
        for (int i = 0; i < 4; i++)
            rt_tensor_zero_grad(params[i]);
        struct rt_tensor *xr = NULL, *x = rank_tensor(RT_F64, 20, me + step), *h = NULL, *hb = NULL, *sq = NULL;
        struct rt_tensor *loss = NULL, *us = NULL, *total = NULL;
        if (!CHECK(x, "build"))
            break;
        CHECK_OK(rt_view(x, 2, H_SHAPE(4, 5), &xr));
        CHECK_OK(rt_dist_reducer_begin(red));
        if (CHECK_OK(rt_matmul(xr, w, &h)) && CHECK_OK(rt_add(h, b, &hb)) && CHECK_OK(rt_mul(hb, hb, &sq)) &&
            CHECK_OK(rt_sum_all(sq, &loss))) {
            if (me == 1 && CHECK_OK(rt_sum_all(u, &us)) && CHECK_OK(rt_add(loss, us, &total)))
                CHECK_OK(rt_backward(total, NULL, false));
            else if (me != 1)
                CHECK_OK(rt_backward(loss, NULL, false));
        }
        CHECK_OK(rt_dist_reducer_finish(red));
        /* the reference, by loops over every rank's data */
        double gw[15] = {0}, gb[3] = {0};
        for (int r = 0; r < R; r++) {
            double xx[20];
            for (int i = 0; i < 20; i++)
                xx[i] = value(r + step, i);
            for (int n = 0; n < 4; n++)
                for (int j = 0; j < 3; j++) {
                    double o = bv[j];
                    for (int k = 0; k < 5; k++)
                        o += xx[n * 5 + k] * wv[k * 3 + j];
                    gb[j] += 2 * o / R;
                    for (int k = 0; k < 5; k++)
                        gw[k * 3 + j] += 2 * o * xx[n * 5 + k] / R;
                }
        }
        if (CHECK(w->grad && b->grad && u->grad, "gradients set"))
            (void)(CHECK_TENSOR_VALUES(w->grad, gw, 15, 1e-12, 1e-12) &&
                   CHECK_TENSOR_VALUES(b->grad, gb, 3, 1e-12, 1e-12) &&
                   CHECK_TENSOR_VALUES(u->grad, ((double[]){1.0 / R, 1.0 / R}), 2, 1e-15, 0));
        CHECK(v->grad == NULL, "a parameter no rank reached keeps no gradient");
        RELEASE(x, xr, h, hb, sq, loss, us, total);
    }
    rt_dist_reducer_free(red);
    h_release_array(params, 4);
}

static void test_reducer_refuses_different_models(void)
{
    int me = rt_dist_rank();
    struct rt_tensor *p = h_iota(RT_F32, 1, H_SHAPE(4 + (me == 0)));
    REQUIRE(p, "build");
    REQUIRE_OK(rt_requires_grad_(p, true));
    struct rt_dist_reducer *r = NULL;
    CHECK_STATUS(rt_dist_reducer_new(1, &p, 0, &r), RT_ERR_ARG, "the ranks' models differ");
    rt_tensor_release(p);
}

static const char *self_path;

/* the checks above under mpirun -np 2 and 3 (children of this program) */
static void test_several_ranks(void)
{
    if (!rt_dist_built_with_mpi() || system("command -v mpirun >/dev/null 2>&1") != 0) {
        h_note("several ranks: skipped (%s)", rt_dist_built_with_mpi() ? "no mpirun" : "built without MPI");
        return;
    }
    if (system("timeout 60 mpirun --oversubscribe --allow-run-as-root -np 2 true >/dev/null 2>&1") != 0) {
        h_note("several ranks: skipped (mpirun cannot start 2 ranks here)");
        return;
    }
    for (int np = 2; np <= 3; np++) {
        char cmd[4096];
        /* under LeakSanitizer, OpenMPI's leftovers are suppressed by library (tests/c/lsan.supp): keep its
         * components loaded and unwind fully, so that every leak's stack names them */
        const char *asan = getenv("ASAN_OPTIONS");
        int n = snprintf(cmd, sizeof cmd,
                         "ASAN_OPTIONS='%s:fast_unwind_on_malloc=0' OMPI_MCA_mca_base_component_disable_dlclose=1 "
                         "mpirun --oversubscribe --allow-run-as-root -np %d -x RETORT_TEST_DIST_CHILD=1 "
                         "-x OMP_NUM_THREADS=1 '%s'",
                         asan && !strchr(asan, '\'') ? asan : "", np, self_path);
        REQUIRE(n > 0 && (size_t)n < sizeof cmd && !strchr(self_path, '\''), "program path unusable: %s", self_path);
        fflush(stdout);
        int rc = system(cmd);
        CHECK(rc == 0, "mpirun -np %d: the ranks' checks failed (status %d)", np, rc);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    self_path = argv[0];
    if (getenv("RETORT_TEST_DIST_CHILD")) {
        if (rt_dist_init() != RT_OK) {
            fprintf(stderr, "rt_dist_init: %s\n", rt_error_msg());
            return 1;
        }
        printf("rank %d of %d\n", rt_dist_rank(), rt_dist_size());
        RUN(test_all_reduce_against_loops);
        RUN(test_broadcast_strided_and_gather_uneven);
        RUN(test_mismatch_is_refused_everywhere);
        RUN(test_differentiable_all_reduce);
        RUN(test_reducer_means_gradients);
        RUN(test_reducer_refuses_different_models);
        int status = h_finish();
        rt_dist_finalize();
        return status;
    }
    RUN(test_one_rank_identity);
    RUN(test_argument_errors);
    RUN(test_grad_ready_hook);
    RUN(test_reducer_plan);
    RUN(test_several_ranks);
    return h_finish();
}
