/* Tensors: creation, element access, views (shared storage, index arithmetic checked against a
 * naive computation), copies and dtype conversion, in-place writes, up to 8 dims, error paths. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Row-major flat index of a multi-index. */
static int64_t flat_of(int ndim, const int64_t *shape, const int64_t *idx)
{
    int64_t f = 0;
    for (int d = 0; d < ndim; d++)
        f = f * shape[d] + idx[d];
    return f;
}
static void unflat(int ndim, const int64_t *shape, int64_t flat, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? flat % shape[d] : 0;
        flat = shape[d] ? flat / shape[d] : 0;
    }
}

/* For a view v of base (an iota: value == row-major flat index), check each element of v against
 * map(view index) -> base index, by hand (h_elem) and through rt_tensor_get. */
typedef void (*idx_map_fn)(const int64_t *vi, int64_t *bi, const void *ctx);
static bool check_view(struct rt_tensor *v, struct rt_tensor *base, idx_map_fn map, const void *ctx, const char *what)
{
    bool ok = CHECK(v->storage == base->storage, "%s does not share storage", what);
    int64_t n = rt_tensor_numel(v);
    int bad = 0;
    for (int64_t k = 0; k < n && bad < 5; k++) {
        int64_t vi[RT_MAX_DIMS], bi[RT_MAX_DIMS];
        unflat(v->ndim, v->shape, k, vi);
        map(vi, bi, ctx);
        double want = (double)flat_of(base->ndim, base->shape, bi);
        double got = h_elem(v, k), got2 = NAN;
        rt_tensor_get(v, vi, &got2);
        if (got != want || got2 != want) {
            ok = h_fail(__FILE__, __LINE__, "%s: element %lld: strides give %g, rt_tensor_get %g, expected %g", what,
                        (long long)k, got, got2, want);
            bad++;
        }
    }
    if (ok)
        h_pass();
    return ok;
}

/* ------------------------------------------------------------------ creation */

static void test_new_and_queries(void)
{
    static const enum rt_dtype dts[] = {RT_F32, RT_F64, RT_I64, RT_U8};
    for (int i = 0; i < 4; i++) {
        struct rt_tensor *t;
        REQUIRE_OK(rt_tensor_new(dts[i], RT_CPU, 3, H_SHAPE(2, 3, 4), &t));
        CHECK(t->dtype == dts[i], "dtype");
        CHECK_SHAPE(t, 3, 2, 3, 4);
        CHECK(t->stride[0] == 12 && t->stride[1] == 4 && t->stride[2] == 1, "strides %lld %lld %lld",
              (long long)t->stride[0], (long long)t->stride[1], (long long)t->stride[2]);
        CHECK(t->offset == 0, "offset");
        CHECK(rt_tensor_numel(t) == 24, "numel");
        CHECK(rt_tensor_is_contiguous(t), "contiguous");
        CHECK(rt_tensor_device(t) == RT_CPU, "device");
        CHECK(t->refcount == 1, "refcount %d", t->refcount);
        CHECK(!t->requires_grad && !t->grad && !t->grad_fn, "autograd fields");
        CHECK(t->storage->nbytes >= 24 * rt_dtype_size(dts[i]), "nbytes %zu", t->storage->nbytes);
        bool zero = true;
        for (int64_t k = 0; k < 24; k++)
            zero &= h_elem(t, k) == 0;
        CHECK(zero, "rt_tensor_new zeroes %s", rt_dtype_name(dts[i]));
        struct rt_tensor *z, *e;
        REQUIRE_OK(rt_tensor_zeros_like(t, &z));
        REQUIRE_OK(rt_tensor_empty_like(t, &e));
        CHECK(z->dtype == t->dtype && rt_tensor_same_shape(z, t) && z->storage != t->storage, "zeros_like");
        CHECK(e->dtype == t->dtype && rt_tensor_same_shape(e, t) && rt_tensor_is_contiguous(e), "empty_like");
        h_release(3, t, z, e);
    }
    CHECK(rt_dtype_size(RT_F32) == 4 && rt_dtype_size(RT_F64) == 8 && rt_dtype_size(RT_I64) == 8 &&
              rt_dtype_size(RT_U8) == 1,
          "dtype sizes");
    CHECK(!strcmp(rt_dtype_name(RT_F32), "f32") && !strcmp(rt_dtype_name(RT_U8), "u8"), "dtype names");
    enum rt_dtype dt;
    CHECK(rt_dtype_parse("double", &dt) == RT_OK && dt == RT_F64, "parse double");
    CHECK(rt_dtype_parse("long", &dt) == RT_OK && dt == RT_I64, "parse long");
    CHECK(rt_dtype_parse("byte", &dt) == RT_OK && dt == RT_U8, "parse byte");
    CHECK(rt_dtype_parse("float", &dt) == RT_OK && dt == RT_F32, "parse float");
    CHECK(rt_dtype_is_float(RT_F64) && !rt_dtype_is_float(RT_I64), "is_float");
    CHECK_STATUS(rt_dtype_parse("complex", &dt), RT_ERR_ARG, "complex");
    char buf[RT_SHAPE_STR_MAX];
    CHECK(!strcmp(rt_shape_str(2, H_SHAPE(2, 3), buf, sizeof buf), "(2,3)"), "shape_str %s", buf);
    CHECK(!strcmp(rt_device_name(RT_CPU), "cpu"), "device name");
}

static void test_full_scalar_arange_from_data(void)
{
    struct rt_tensor *f, *s, *a, *b, *c, *d;
    REQUIRE_OK(rt_tensor_full(RT_F64, RT_CPU, 2, H_SHAPE(2, 2), -1.5, &f));
    CHECK_TENSOR_VALUES(f, H_VALS(-1.5, -1.5, -1.5, -1.5), 4, 0, 0);
    REQUIRE_OK(rt_tensor_scalar(RT_F32, 3.25, &s));
    CHECK_SHAPE0(s);
    CHECK(rt_tensor_numel(s) == 1, "0-dim numel");
    double v = 0;
    CHECK_OK(rt_tensor_item(s, &v));
    CHECK(v == 3.25, "item %g", v);
    REQUIRE_OK(rt_tensor_arange(RT_I64, 0, 5, 1, &a));
    CHECK_SHAPE(a, 1, 5);
    CHECK_TENSOR_VALUES(a, H_VALS(0, 1, 2, 3, 4), 5, 0, 0);
    REQUIRE_OK(rt_tensor_arange(RT_F64, 1.5, 3, 0.5, &b));
    CHECK_TENSOR_VALUES(b, H_VALS(1.5, 2, 2.5), 3, 0, 0);
    REQUIRE_OK(rt_tensor_arange(RT_F32, 3, 0, -1, &c));
    CHECK_TENSOR_VALUES(c, H_VALS(3, 2, 1), 3, 0, 0);
    int64_t raw[6] = {5, -4, 3, -2, 1, 0};
    REQUIRE_OK(rt_tensor_from_data(RT_I64, 2, H_SHAPE(3, 2), raw, &d));
    CHECK_TENSOR_VALUES(d, H_VALS(5, -4, 3, -2, 1, 0), 6, 0, 0);
    raw[0] = 99; /* copied, not aliased */
    CHECK(h_elem(d, 0) == 5, "from_data copies");
    int64_t idx[2] = {2, 0};
    CHECK_OK(rt_tensor_get(d, idx, &v));
    CHECK(v == 1, "get (2,0) = %g", v);
    CHECK_OK(rt_tensor_set(d, idx, -7));
    CHECK(h_elem(d, 4) == -7, "set");
    int64_t host[6];
    CHECK_OK(rt_tensor_to_host(d, RT_I64, host));
    CHECK(host[4] == -7 && host[1] == -4, "to_host");
    float hf[6];
    CHECK_OK(rt_tensor_to_host(d, RT_F32, hf));
    CHECK(hf[4] == -7.0f && hf[0] == 5.0f, "to_host converting");
    rt_tensor_set_name(d, "labels");
    CHECK(!strcmp(d->name, "labels"), "name");
    h_release(6, f, s, a, b, c, d);
}

static void test_refcount(void)
{
    int64_t live = rt_tensor_live_count();
    size_t mem = rt_memory_in_use(RT_CPU);
    struct rt_tensor *t, *v;
    REQUIRE_OK(rt_tensor_new(RT_F64, RT_CPU, 1, H_SHAPE(1000), &t));
    CHECK(rt_tensor_live_count() == live + 1, "live count +1");
    CHECK(rt_memory_in_use(RT_CPU) >= mem + 8000, "memory in use grows by the storage");
    REQUIRE_OK(rt_narrow(t, 0, 10, 20, &v));
    CHECK(rt_tensor_live_count() == live + 2, "a view is a tensor");
    CHECK(v->storage->refcount == 2, "storage shared: refcount %d", v->storage->refcount);
    rt_tensor_release(t); /* the view keeps the storage alive */
    CHECK(rt_memory_in_use(RT_CPU) >= mem + 8000, "view keeps storage");
    CHECK(h_elem(v, 0) == 0, "view still readable");
    rt_tensor_retain(v);
    CHECK(v->refcount == 2, "retain");
    rt_tensor_release(v);
    rt_tensor_release(v);
    rt_tensor_release(NULL);
    CHECK(rt_tensor_live_count() == live, "back to %lld", (long long)live);
    CHECK(rt_memory_in_use(RT_CPU) == mem, "memory back");
}

/* ------------------------------------------------------------------ views */

struct perm_ctx {
    int nd;
    int perm[RT_MAX_DIMS];
};
static void map_perm(const int64_t *vi, int64_t *bi, const void *c)
{
    const struct perm_ctx *p = c;
    for (int d = 0; d < p->nd; d++)
        bi[p->perm[d]] = vi[d];
}
struct narrow_ctx {
    int nd, dim;
    int64_t start;
};
static void map_narrow(const int64_t *vi, int64_t *bi, const void *c)
{
    const struct narrow_ctx *p = c;
    for (int d = 0; d < p->nd; d++)
        bi[d] = vi[d] + (d == p->dim ? p->start : 0);
}
struct select_ctx {
    int nd, dim; /* nd of the base */
    int64_t index;
};
static void map_select(const int64_t *vi, int64_t *bi, const void *c)
{
    const struct select_ctx *p = c;
    for (int d = 0, k = 0; d < p->nd; d++)
        bi[d] = d == p->dim ? p->index : vi[k++];
}
struct reshape_ctx {
    int vnd, bnd;
    int64_t vshape[RT_MAX_DIMS], bshape[RT_MAX_DIMS];
};
static void map_reshape(const int64_t *vi, int64_t *bi, const void *c)
{
    const struct reshape_ctx *p = c;
    unflat(p->bnd, p->bshape, flat_of(p->vnd, p->vshape, vi), bi);
}

static void test_views_index_naively(void)
{
    struct rt_tensor *b = h_iota(RT_F64, 4, H_SHAPE(2, 3, 4, 5));
    REQUIRE(b, "iota");
    struct rt_tensor *v;

    /* transpose and permute */
    REQUIRE_OK(rt_transpose(b, 1, 3, &v));
    CHECK_SHAPE(v, 4, 2, 5, 4, 3);
    CHECK(!rt_tensor_is_contiguous(v), "transpose is not contiguous");
    check_view(v, b, map_perm, &(struct perm_ctx){4, {0, 3, 2, 1}}, "transpose(1,3)");
    rt_tensor_release(v);
    REQUIRE_OK(rt_transpose(b, -1, 0, &v));
    check_view(v, b, map_perm, &(struct perm_ctx){4, {3, 1, 2, 0}}, "transpose(-1,0)");
    rt_tensor_release(v);
    REQUIRE_OK(rt_permute(b, (const int[]){2, 0, 3, 1}, &v));
    CHECK_SHAPE(v, 4, 4, 2, 5, 3);
    check_view(v, b, map_perm, &(struct perm_ctx){4, {2, 0, 3, 1}}, "permute(2,0,3,1)");
    rt_tensor_release(v);

    /* narrow, every dim */
    for (int d = 0; d < 4; d++) {
        int64_t start = b->shape[d] > 2 ? 1 : 0, len = b->shape[d] - start - (b->shape[d] > 3 ? 1 : 0);
        REQUIRE_OK(rt_narrow(b, d, start, len, &v));
        CHECK(v->shape[d] == len, "narrow length");
        check_view(v, b, map_narrow, &(struct narrow_ctx){4, d, start}, "narrow");
        rt_tensor_release(v);
    }
    /* select, every dim and a negative dim */
    for (int d = -1; d < 4; d++) {
        int dd = d < 0 ? d + 4 : d;
        int64_t idx = b->shape[dd] - 1;
        REQUIRE_OK(rt_select(b, d, idx, &v));
        CHECK(v->ndim == 3, "select drops a dim");
        check_view(v, b, map_select, &(struct select_ctx){4, dd, idx}, "select");
        rt_tensor_release(v);
    }
    /* view / reshape / flatten / unsqueeze / squeeze of contiguous data share storage, row-major */
    struct {
        int nd;
        int64_t shape[RT_MAX_DIMS];
    } shapes[] = {{2, {6, 20}}, {1, {120}}, {5, {2, 3, 2, 2, 5}}, {3, {4, 3, 10}}, {6, {1, 2, 1, 60, 1, 1}}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        REQUIRE_OK(rt_view(b, shapes[i].nd, shapes[i].shape, &v));
        struct reshape_ctx rc = {shapes[i].nd, 4, {0}, {2, 3, 4, 5}};
        memcpy(rc.vshape, shapes[i].shape, sizeof rc.vshape);
        check_view(v, b, map_reshape, &rc, "view");
        rt_tensor_release(v);
        REQUIRE_OK(rt_reshape(b, shapes[i].nd, shapes[i].shape, &v));
        check_view(v, b, map_reshape, &rc, "reshape (contiguous)");
        rt_tensor_release(v);
    }
    REQUIRE_OK(rt_view(b, 3, H_SHAPE(-1, 4, 5), &v));
    CHECK_SHAPE(v, 3, 6, 4, 5);
    rt_tensor_release(v);
    REQUIRE_OK(rt_flatten(b, 1, 2, &v));
    CHECK_SHAPE(v, 3, 2, 12, 5);
    check_view(v, b, map_reshape, &(struct reshape_ctx){3, 4, {2, 12, 5}, {2, 3, 4, 5}}, "flatten(1,2)");
    rt_tensor_release(v);
    REQUIRE_OK(rt_flatten(b, 0, -1, &v));
    CHECK_SHAPE(v, 1, 120);
    rt_tensor_release(v);
    REQUIRE_OK(rt_unsqueeze(b, 2, &v));
    CHECK_SHAPE(v, 5, 2, 3, 1, 4, 5);
    check_view(v, b, map_reshape, &(struct reshape_ctx){5, 4, {2, 3, 1, 4, 5}, {2, 3, 4, 5}}, "unsqueeze(2)");
    struct rt_tensor *w;
    REQUIRE_OK(rt_squeeze(v, 2, &w));
    CHECK_SHAPE(w, 4, 2, 3, 4, 5);
    check_view(w, b, map_reshape, &(struct reshape_ctx){4, 4, {2, 3, 4, 5}, {2, 3, 4, 5}}, "squeeze(2)");
    rt_tensor_release(w);
    REQUIRE_OK(rt_squeeze(v, 0, &w)); /* size 2: unchanged */
    CHECK_SHAPE(w, 5, 2, 3, 1, 4, 5);
    rt_tensor_release(w);
    rt_tensor_release(v);
    REQUIRE_OK(rt_unsqueeze(b, -1, &v));
    CHECK_SHAPE(v, 5, 2, 3, 4, 5, 1);
    rt_tensor_release(v);

    /* expand: broadcast view with stride 0 */
    struct rt_tensor *col;
    REQUIRE_OK(rt_narrow(b, 1, 1, 1, &col)); /* (2,1,4,5) */
    REQUIRE_OK(rt_expand(col, 5, H_SHAPE(3, 2, 3, 4, 5), &v));
    CHECK(v->stride[0] == 0 && v->stride[2] == 0, "expanded strides are 0");
    {
        /* map via col then narrow */
        int64_t n = rt_tensor_numel(v);
        bool ok = v->storage == b->storage;
        for (int64_t k = 0; k < n && ok; k++) {
            int64_t vi[5];
            unflat(5, v->shape, k, vi);
            int64_t bi[4] = {vi[1], 1, vi[3], vi[4]};
            ok = h_elem(v, k) == (double)flat_of(4, b->shape, bi);
        }
        CHECK(ok, "expand indexes like a broadcast");
    }
    rt_tensor_release(v);
    REQUIRE_OK(rt_expand(col, 4, H_SHAPE(-1, 7, -1, -1), &v));
    CHECK_SHAPE(v, 4, 2, 7, 4, 5);
    rt_tensor_release(v);
    rt_tensor_release(col);
    struct rt_tensor *s0;
    REQUIRE_OK(rt_tensor_scalar(RT_F64, 4, &s0));
    REQUIRE_OK(rt_expand(s0, 2, H_SHAPE(2, 3), &v));
    CHECK_TENSOR_VALUES(v, H_VALS(4, 4, 4, 4, 4, 4), 6, 0, 0);
    h_release(2, v, s0);

    /* chains of views: narrow of a transpose of a select */
    struct rt_tensor *a1, *a2, *a3;
    REQUIRE_OK(rt_select(b, 0, 1, &a1));       /* (3,4,5): b[1] */
    REQUIRE_OK(rt_transpose(a1, 0, 2, &a2));   /* (5,4,3) */
    REQUIRE_OK(rt_narrow(a2, 1, 1, 2, &a3));   /* (5,2,3) */
    CHECK_SHAPE(a3, 3, 5, 2, 3);
    {
        bool ok = true;
        for (int64_t k = 0; k < 30 && ok; k++) {
            int64_t vi[3];
            unflat(3, a3->shape, k, vi);
            int64_t bi[4] = {1, vi[2], vi[1] + 1, vi[0]};
            ok = h_elem(a3, k) == (double)flat_of(4, b->shape, bi);
        }
        CHECK(ok, "select/transpose/narrow chain");
    }
    /* reshape of a non-contiguous view copies and keeps the values in row-major order */
    REQUIRE_OK(rt_reshape(a3, 2, H_SHAPE(10, 3), &v));
    CHECK(v->storage != b->storage, "reshape of non-contiguous makes a copy");
    {
        bool ok = true;
        for (int64_t k = 0; k < 30; k++)
            ok &= h_elem(v, k) == h_elem(a3, k);
        CHECK(ok, "reshape copy values");
    }
    rt_tensor_release(v);
    REQUIRE_OK(rt_flatten(a3, 0, -1, &v));
    {
        bool ok = true;
        for (int64_t k = 0; k < 30; k++)
            ok &= h_elem(v, k) == h_elem(a3, k);
        CHECK(ok, "flatten of non-contiguous values");
    }
    rt_tensor_release(v);
    h_release(4, a1, a2, a3, b);
}

static void test_views_write_through(void)
{
    struct rt_tensor *b = h_iota(RT_F32, 2, H_SHAPE(3, 4)), *t, *n, *s;
    REQUIRE(b, "iota");
    REQUIRE_OK(rt_transpose(b, 0, 1, &t)); /* (4,3) */
    REQUIRE_OK(rt_narrow(t, 0, 1, 2, &n)); /* rows 1..2 of t = cols 1..2 of b */
    CHECK_OK(rt_fill_(n, -1));
    CHECK_TENSOR_VALUES(b, H_VALS(0, -1, -1, 3, 4, -1, -1, 7, 8, -1, -1, 11), 12, 0, 0);
    REQUIRE_OK(rt_select(b, 0, 2, &s));
    CHECK_OK(rt_add_scalar_(s, 100));
    CHECK_TENSOR_VALUES(b, H_VALS(0, -1, -1, 3, 4, -1, -1, 7, 108, 99, 99, 111), 12, 0, 0);
    int64_t idx[2] = {3, 0};
    CHECK_OK(rt_tensor_set(t, idx, 42)); /* t[3][0] == b[0][3] */
    CHECK(h_elem(b, 3) == 42, "set through transpose");
    uint64_t v0 = b->storage->version;
    CHECK_OK(rt_mul_scalar_(n, 2));
    CHECK(b->storage->version > v0, "in-place write through a view bumps the shared version");
    CHECK(h_elem(b, 1) == -2, "mul_scalar_ through view");
    h_release(4, b, t, n, s);
}

static void test_detach_shares(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 2, H_SHAPE(2, 3), -1, 1, 1), *d;
    REQUIRE(x, "x");
    REQUIRE_OK(rt_requires_grad_(x, true));
    REQUIRE_OK(rt_detach(x, &d));
    CHECK(!d->requires_grad, "detached does not require grad");
    CHECK(d->storage == x->storage, "detach shares data");
    CHECK(rt_tensor_grad_fn_name(d) == NULL, "no grad_fn");
    CHECK_OK(rt_fill_(d, 3)); /* allowed: d does not require grad */
    CHECK(h_elem(x, 5) == 3, "write visible in x");
    h_release(2, x, d);
}

/* ------------------------------------------------------------------ copies */

static void test_contiguous_clone(void)
{
    struct rt_tensor *b = h_iota(RT_F64, 3, H_SHAPE(2, 3, 4)), *c, *p, *pc, *cl;
    REQUIRE(b, "iota");
    REQUIRE_OK(rt_contiguous(b, &c));
    CHECK(c == b, "contiguous of a contiguous tensor is the same tensor");
    CHECK(b->refcount == 2, "... with a new reference");
    rt_tensor_release(c);
    REQUIRE_OK(rt_permute(b, (const int[]){2, 0, 1}, &p));
    REQUIRE_OK(rt_contiguous(p, &pc));
    CHECK(pc != p && pc->storage != b->storage && rt_tensor_is_contiguous(pc), "contiguous copy");
    CHECK_SHAPE(pc, 3, 4, 2, 3);
    {
        bool ok = true;
        for (int64_t k = 0; k < 24; k++)
            ok &= h_elem(pc, k) == h_elem(p, k);
        CHECK(ok, "contiguous values");
    }
    REQUIRE_OK(rt_clone(p, &cl));
    CHECK(cl->storage != b->storage, "clone has its own storage");
    CHECK_TENSOR_EQUAL(cl, p);
    CHECK_OK(rt_fill_(cl, 0));
    CHECK(h_elem(b, 5) == 5, "clone does not alias");
    h_release(4, b, p, pc, cl);
}

static void test_to_dtype_all_pairs(void)
{
    static const enum rt_dtype dts[] = {RT_F32, RT_F64, RT_I64, RT_U8};
    const double vals[8] = {0, 1, 2, 3, 7, 100, 200, 255}; /* exact in every dtype */
    for (int i = 0; i < 4; i++) {
        struct rt_tensor *src = h_tensor(dts[i], 2, H_SHAPE(2, 4), vals), *srcT;
        REQUIRE(src, "src");
        REQUIRE_OK(rt_transpose(src, 0, 1, &srcT)); /* strided source too */
        for (int j = 0; j < 4; j++) {
            struct rt_tensor *d, *dT;
            REQUIRE_OK(rt_to_dtype(src, dts[j], &d));
            CHECK(d->dtype == dts[j], "to_dtype %s->%s dtype", rt_dtype_name(dts[i]), rt_dtype_name(dts[j]));
            CHECK_TENSOR_VALUES(d, vals, 8, 0, 0);
            REQUIRE_OK(rt_to_dtype(srcT, dts[j], &dT));
            CHECK_SHAPE(dT, 2, 4, 2);
            CHECK_TENSOR_VALUES(dT, H_VALS(0, 7, 1, 100, 2, 200, 3, 255), 8, 0, 0);
            /* copy_ between every pair, including into a strided destination */
            struct rt_tensor *dst, *dstT;
            REQUIRE_OK(rt_tensor_new(dts[j], RT_CPU, 2, H_SHAPE(4, 2), &dst));
            REQUIRE_OK(rt_transpose(dst, 0, 1, &dstT)); /* (2,4) view */
            CHECK_OK(rt_copy_(dstT, src));
            CHECK_TENSOR_VALUES(dst, H_VALS(0, 7, 1, 100, 2, 200, 3, 255), 8, 0, 0);
            h_release(4, d, dT, dst, dstT);
        }
        h_release(2, src, srcT);
    }
    /* rounding and truncation */
    struct rt_tensor *x = h_tensor(RT_F64, 1, H_SHAPE(5), H_VALS(0.1, -2.7, 2.7, 1e300, 1.0 / 3)), *f, *l;
    REQUIRE_OK(rt_to_dtype(x, RT_F32, &f));
    CHECK(h_elem(f, 0) == (double)0.1f && h_elem(f, 4) == (double)(float)(1.0 / 3), "f64->f32 rounds to nearest");
    CHECK(isinf(h_elem(f, 3)), "f64 1e300 -> f32 inf");
    REQUIRE_OK(rt_to_dtype(x, RT_I64, &l));
    CHECK(h_elem(l, 1) == -2 && h_elem(l, 2) == 2 && h_elem(l, 0) == 0, "float->int truncates toward zero: %g %g",
          h_elem(l, 1), h_elem(l, 2));
    h_release(3, x, f, l);
}

static void test_copy_fill_inplace(void)
{
    struct rt_tensor *dst, *row, *s;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(3, 4), &dst));
    row = h_tensor(RT_F64, 1, H_SHAPE(4), H_VALS(1, 2, 3, 4));
    uint64_t v0 = dst->storage->version;
    CHECK_OK(rt_copy_(dst, row)); /* broadcast + convert */
    CHECK(dst->storage->version > v0, "copy_ bumps version");
    CHECK_TENSOR_VALUES(dst, H_VALS(1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4), 12, 0, 0);
    CHECK_OK(rt_add_(dst, dst, 0.5)); /* aliasing: t += 0.5 t */
    CHECK_TENSOR_VALUES(dst, H_VALS(1.5, 3, 4.5, 6, 1.5, 3, 4.5, 6, 1.5, 3, 4.5, 6), 12, 0, 0);
    struct rt_tensor *r32;
    REQUIRE_OK(rt_to_dtype(row, RT_F32, &r32));
    CHECK_OK(rt_add_(dst, r32, -1)); /* broadcast other */
    CHECK_TENSOR_VALUES(dst, H_VALS(0.5, 1, 1.5, 2, 0.5, 1, 1.5, 2, 0.5, 1, 1.5, 2), 12, 0, 0);
    CHECK_OK(rt_mul_scalar_(dst, 4));
    CHECK_OK(rt_add_scalar_(dst, -2));
    CHECK_TENSOR_VALUES(dst, H_VALS(0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6), 12, 0, 0);
    REQUIRE_OK(rt_select(dst, 1, 3, &s));
    CHECK_OK(rt_zero_(s));
    CHECK_TENSOR_VALUES(dst, H_VALS(0, 2, 4, 0, 0, 2, 4, 0, 0, 2, 4, 0), 12, 0, 0);
    CHECK_OK(rt_fill_(s, 9));
    CHECK_TENSOR_VALUES(dst, H_VALS(0, 2, 4, 9, 0, 2, 4, 9, 0, 2, 4, 9), 12, 0, 0);
    struct rt_tensor *u;
    REQUIRE_OK(rt_tensor_new(RT_U8, RT_CPU, 1, H_SHAPE(3), &u));
    CHECK_OK(rt_fill_(u, 200));
    CHECK_TENSOR_VALUES(u, H_VALS(200, 200, 200), 3, 0, 0);
    h_release(5, dst, row, s, r32, u);
}

/* ------------------------------------------------------------------ 8 dims */

static void test_eight_dims(void)
{
    const int64_t shape[8] = {2, 1, 3, 1, 2, 2, 1, 2};
    struct rt_tensor *b = h_iota(RT_F64, 8, shape), *p, *c, *u, *s;
    REQUIRE(b, "8-dim iota");
    CHECK(rt_tensor_numel(b) == 48, "numel");
    int perm[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    REQUIRE_OK(rt_permute(b, perm, &p));
    check_view(p, b, map_perm, &(struct perm_ctx){8, {7, 6, 5, 4, 3, 2, 1, 0}}, "permute 8 dims");
    REQUIRE_OK(rt_contiguous(p, &c));
    {
        bool ok = rt_tensor_is_contiguous(c);
        for (int64_t k = 0; k < 48; k++)
            ok &= h_elem(c, k) == h_elem(p, k);
        CHECK(ok, "contiguous of an 8-dim permutation");
    }
    struct rt_tensor *sum;
    REQUIRE_OK(rt_sum_all(c, &sum));
    double v;
    CHECK_OK(rt_tensor_item(sum, &v));
    CHECK(v == 47 * 48 / 2, "sum over 8 dims %g", v);
    REQUIRE_OK(rt_squeeze(b, -99, &s));
    CHECK_SHAPE(s, 5, 2, 3, 2, 2, 2);
    struct rt_tensor *s7;
    REQUIRE_OK(rt_select(b, 0, 1, &s7));
    REQUIRE_OK(rt_unsqueeze(s7, 3, &u));
    CHECK(u->ndim == 8, "unsqueeze to 8 dims");
    int64_t idx[8] = {1, 0, 2, 0, 1, 1, 0, 1};
    CHECK_OK(rt_tensor_get(b, idx, &v));
    CHECK(v == (double)flat_of(8, shape, idx), "get in 8 dims");
    h_release(7, b, p, c, sum, s, s7, u);
}

/* ------------------------------------------------------------------ errors */

static void test_errors_dims(void)
{
    struct rt_tensor *t = h_iota(RT_F32, 3, H_SHAPE(2, 3, 4)), *o = NULL;
    REQUIRE(t, "t");
    CHECK_STATUS(rt_transpose(t, 0, 3, &o), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_transpose(t, -4, 0, &o), RT_ERR_ARG, "rt_transpose");
    CHECK_STATUS(rt_select(t, 1, 3, &o), RT_ERR_ARG, "index 3 out of range");
    CHECK_STATUS(rt_select(t, 1, -1, &o), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_narrow(t, 2, 3, 2, &o), RT_ERR_ARG, "out of bounds");
    CHECK_STATUS(rt_narrow(t, 2, -1, 2, &o), RT_ERR_ARG, "rt_narrow");
    CHECK_STATUS(rt_narrow(t, 5, 0, 1, &o), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_permute(t, (const int[]){0, 0, 1}, &o), RT_ERR_ARG, "twice");
    CHECK_STATUS(rt_permute(t, (const int[]){0, 1, 3}, &o), RT_ERR_ARG, "rt_permute");
    CHECK_STATUS(rt_unsqueeze(t, 5, &o), RT_ERR_ARG, "rt_unsqueeze");
    CHECK_STATUS(rt_squeeze(t, 3, &o), RT_ERR_ARG, "rt_squeeze");
    CHECK_STATUS(rt_flatten(t, 2, 1, &o), RT_ERR_ARG, "after end dim");
    CHECK(o == NULL, "out untouched on failure");
    int64_t bad[3] = {0, 3, 0};
    double v;
    CHECK_STATUS(rt_tensor_get(t, bad, &v), RT_ERR_ARG, "index 3 out of range for dim 1");
    int64_t oob[3] = {2, 0, 0};
    CHECK_STATUS(rt_tensor_get(t, oob, &v), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_tensor_set(t, oob, 1), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_tensor_item(t, &v), RT_ERR_SHAPE, "one element");
    rt_tensor_release(t);
}

static void test_errors_shapes(void)
{
    struct rt_tensor *t = h_iota(RT_F32, 2, H_SHAPE(3, 4)), *tt = NULL, *o = NULL;
    REQUIRE(t, "t");
    CHECK_STATUS(rt_view(t, 2, H_SHAPE(5, 3), &o), RT_ERR_SHAPE, "invalid for input of shape (3,4)");
    CHECK_STATUS(rt_view(t, 2, H_SHAPE(-1, -1), &o), RT_ERR_SHAPE, "only one dim may be -1");
    CHECK_STATUS(rt_view(t, 2, H_SHAPE(-1, 5), &o), RT_ERR_SHAPE, "invalid");
    CHECK_STATUS(rt_reshape(t, 2, H_SHAPE(-3, 4), &o), RT_ERR_SHAPE, "invalid size");
    REQUIRE_OK(rt_transpose(t, 0, 1, &tt));
    CHECK_STATUS(rt_view(tt, 1, H_SHAPE(12), &o), RT_ERR_SHAPE, "non-contiguous");
    CHECK_STATUS(rt_view(tt, 2, H_SHAPE(2, 6), &o), RT_ERR_SHAPE, "reshape");
    CHECK_STATUS(rt_expand(t, 2, H_SHAPE(3, 8), &o), RT_ERR_SHAPE, "cannot expand shape (3,4) to (3,8)");
    CHECK_STATUS(rt_expand(t, 1, H_SHAPE(4), &o), RT_ERR_SHAPE, "rt_expand");
    CHECK_STATUS(rt_expand(t, 3, H_SHAPE(-1, 3, 4), &o), RT_ERR_SHAPE, "-1");
    CHECK_STATUS(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(2, -3), &o), RT_ERR_SHAPE, "negative size");
    /* an empty leading dim must not hide sizes whose strides overflow (2^40 cubed) */
    const int64_t big = (int64_t)1 << 40;
    CHECK_STATUS(rt_tensor_new(RT_F32, RT_CPU, 4, H_SHAPE(0, big, big, big), &o), RT_ERR_SHAPE, "too many elements");
    CHECK_STATUS(rt_tensor_new(RT_F32, RT_CPU, 3, H_SHAPE(0, (int64_t)1 << 31, big), &o), RT_ERR_SHAPE, "(0,");
    struct rt_tensor *empty = NULL;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(0, (int64_t)1 << 20), &empty));
    CHECK_SHAPE(empty, 2, 0, (int64_t)1 << 20);
    CHECK(empty->stride[0] == ((int64_t)1 << 20) && empty->stride[1] == 1, "strides of an empty tensor");
    CHECK_STATUS(rt_view(empty, 4, H_SHAPE(0, big, big, big), &o), RT_ERR_SHAPE, "too many elements");
    CHECK_STATUS(rt_view(empty, 3, H_SHAPE(big, big, 0), &o), RT_ERR_SHAPE, "too many elements");
    rt_tensor_release(empty);
    struct rt_tensor *row = h_iota(RT_F32, 1, H_SHAPE(3));
    CHECK_STATUS(rt_copy_(t, row), RT_ERR_SHAPE, "(3,4)");
    CHECK_STATUS(rt_add_(t, row, 1), RT_ERR_SHAPE, "rt_add_");
    CHECK_STATUS(rt_tensor_arange(RT_F32, 0, 1, 0, &o), RT_ERR_ARG, "step");
    CHECK_STATUS(rt_to_dtype(t, (enum rt_dtype)17, &o), RT_ERR_DTYPE, "invalid dtype");
    CHECK_STATUS(rt_tensor_new((enum rt_dtype)9, RT_CPU, 1, H_SHAPE(2), &o), RT_ERR_DTYPE, "invalid dtype");
    CHECK(o == NULL, "out untouched on failure");
    h_release(3, t, tt, row);
}

static void test_errors_nine_dims(void)
{
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
    struct rt_tensor *o = NULL;
    CHECK_STATUS(rt_tensor_new(RT_F32, RT_CPU, 9, nine, &o), RT_ERR_SHAPE, "at most 8");
    CHECK_STATUS(rt_tensor_full(RT_F32, RT_CPU, 9, nine, 1, &o), RT_ERR_SHAPE, "at most 8");
    struct rt_tensor *t = h_iota(RT_F32, 1, H_SHAPE(2)), *e = NULL;
    CHECK_STATUS(rt_view(t, 9, nine, &o), RT_ERR_SHAPE, "at most 8");
    CHECK_STATUS(rt_reshape(t, 9, nine, &o), RT_ERR_SHAPE, "at most 8");
    CHECK_STATUS(rt_expand(t, 9, nine, &o), RT_ERR_SHAPE, "rt_expand");
    REQUIRE_OK(rt_view(t, 8, nine + 1, &e));
    CHECK_STATUS(rt_unsqueeze(e, 0, &o), RT_ERR_SHAPE, "already has 8 dims");
    CHECK(o == NULL, "out untouched on failure");
    h_release(2, t, e);
}

static void test_errors_autograd_inplace(void)
{
    struct rt_tensor *x = h_rand(RT_F32, 1, H_SHAPE(4), -1, 1, 3), *i = h_iota(RT_I64, 1, H_SHAPE(3));
    REQUIRE_OK(rt_requires_grad_(x, true));
    CHECK_STATUS(rt_fill_(x, 0), RT_ERR_AUTOGRAD, "in-place");
    CHECK_STATUS(rt_add_scalar_(x, 1), RT_ERR_AUTOGRAD, "requires grad");
    CHECK_STATUS(rt_mul_scalar_(x, 1), RT_ERR_AUTOGRAD, "in-place");
    CHECK_STATUS(rt_zero_(x), RT_ERR_AUTOGRAD, "in-place");
    CHECK_STATUS(rt_uniform_(x, NULL, 0, 1), RT_ERR_AUTOGRAD, "in-place");
    bool was = rt_grad_set_enabled(false);
    CHECK_OK(rt_add_scalar_(x, 1)); /* allowed under no-grad (optimizer steps) */
    rt_grad_set_enabled(was);
    CHECK_STATUS(rt_requires_grad_(i, true), RT_ERR_DTYPE, "float");
    h_release(2, x, i);
}

static void test_devices(void)
{
    struct rt_tensor *t = h_iota(RT_F32, 1, H_SHAPE(3)), *o = NULL, *c = NULL;
    REQUIRE_OK(rt_to_device(t, RT_CPU, &c));
    CHECK_TENSOR_EQUAL(c, t);
    if (!rt_device_available(RT_CUDA, NULL)) { /* no CUDA build, or no GPU: a clear error, nothing written */
        CHECK_STATUS(rt_to_device(t, RT_CUDA, &o), RT_ERR_DEVICE, "cuda");
        CHECK_STATUS(rt_tensor_new(RT_F32, RT_CUDA, 1, H_SHAPE(2), &o), RT_ERR_DEVICE, "cuda");
        CHECK(o == NULL, "out untouched");
    } else {
        struct rt_tensor *back = NULL;
        REQUIRE_OK(rt_to_device(t, RT_CUDA, &o));
        CHECK(rt_tensor_device(o) == RT_CUDA, "on cuda");
        REQUIRE_OK(rt_to_device(o, RT_CPU, &back));
        CHECK_TENSOR_EQUAL(back, t);
        RELEASE(o, back);
    }
    RELEASE(t, c);
}

int main(void)
{
    RUN(test_new_and_queries);
    RUN(test_full_scalar_arange_from_data);
    RUN(test_refcount);
    RUN(test_views_index_naively);
    RUN(test_views_write_through);
    RUN(test_detach_shares);
    RUN(test_contiguous_clone);
    RUN(test_to_dtype_all_pairs);
    RUN(test_copy_fill_inplace);
    RUN(test_eight_dims);
    RUN(test_errors_dims);
    RUN(test_errors_shapes);
    RUN(test_errors_nine_dims);
    RUN(test_errors_autograd_inplace);
    RUN(test_devices);
    return h_finish();
}
