/* Matrix products through the backend GEMM (OpenBLAS on CPU). Transposed views are passed to
 * GEMM as transposed operands instead of being copied. */
#include <stdlib.h>
#include <string.h>

#include "grad_fns.h"

struct gemm_operand {
    struct rt_tensor *held; /* contiguous copy when the view could not be passed as is */
    const void *ptr;
    int64_t ld, bstride, batch;
    int64_t rows, cols; /* of op(X), i.e. after the requested transpose */
    bool trans;         /* what GEMM is told */
};

/* Describe the last two dims of t (2-D or 3-D) as a GEMM operand, transposed when want_t. */
static enum rt_status operand(struct rt_tensor *t, bool want_t, struct gemm_operand *o)
{
    memset(o, 0, sizeof *o);
    int nd = t->ndim;
    int64_t r = t->shape[nd - 2], c = t->shape[nd - 1], sr = t->stride[nd - 2], sc = t->stride[nd - 1];
    int64_t rr = r > 1 ? r : 1, cc = c > 1 ? c : 1;
    bool stored_t;
    if ((c <= 1 || sc == 1) && (r <= 1 || sr >= cc)) {
        stored_t = false;
        o->ld = r <= 1 ? cc : sr;
    } else if ((r <= 1 || sr == 1) && (c <= 1 || sc >= rr)) {
        stored_t = true;
        o->ld = c <= 1 ? rr : sc;
    } else {
        enum rt_status st = rt__contig_raw(t, &o->held);
        if (st != RT_OK)
            return st;
        t = o->held;
        stored_t = false;
        o->ld = cc;
    }
    o->ptr = rt__ptr(t);
    o->batch = nd == 3 ? t->shape[0] : 1;
    o->bstride = nd == 3 ? (o->held ? r * c : t->stride[0]) : 0;
    o->trans = stored_t != want_t;
    o->rows = want_t ? c : r;
    o->cols = want_t ? r : c;
    return RT_OK;
}

/* out = op(a) @ op(b) [+ bias broadcast over rows] for 2-D or 3-D (batched; a 2-D side is shared by
 * every batch). The bias is written into out first and GEMM adds to it (beta = 1), which saves the
 * separate pass over the output that adding it afterwards costs. No autograd. */
static enum rt_status gemm_nd_bias(const char *name, struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb,
                                   struct rt_tensor *bias, struct rt_tensor **out)
{
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    enum rt_status st = rt__same_device(name, a, b);
    if (st != RT_OK)
        return st;
    if (a->dtype != b->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: dtypes differ (%s and %s)", name, rt_dtype_name(a->dtype),
                        rt_dtype_name(b->dtype));
    if (!rt_dtype_is_float(a->dtype))
        return rt_error(RT_ERR_DTYPE, "%s: needs float tensors, got %s", name, rt_dtype_name(a->dtype));
    struct gemm_operand oa, ob;
    st = operand(a, ta, &oa);
    if (st != RT_OK)
        return st;
    st = operand(b, tb, &ob);
    if (st != RT_OK) {
        rt_tensor_release(oa.held);
        return st;
    }
    struct rt_tensor *c = NULL;
    if (oa.cols != ob.rows)
        st = rt_error(RT_ERR_SHAPE, "%s: inner dims differ: %s x %s", name, rt_shape_str(a->ndim, a->shape, x, sizeof x),
                      rt_shape_str(b->ndim, b->shape, y, sizeof y));
    else if (a->ndim == 3 && b->ndim == 3 && oa.batch != ob.batch)
        st = rt_error(RT_ERR_SHAPE, "%s: batch sizes differ: %s x %s", name, rt_shape_str(a->ndim, a->shape, x, sizeof x),
                      rt_shape_str(b->ndim, b->shape, y, sizeof y));
    int64_t batch = oa.batch > ob.batch ? oa.batch : ob.batch;
    bool batched = a->ndim == 3 || b->ndim == 3;
    if (st == RT_OK) {
        int64_t shape[3] = {batch, oa.rows, ob.cols};
        st = batched ? rt_tensor_empty(a->dtype, a->storage->device, 3, shape, &c)
                     : rt_tensor_empty(a->dtype, a->storage->device, 2, shape + 1, &c);
    }
    double beta = 0.0;
    bool done = false; /* the product is written */
    const struct rt_backend *be = st == RT_OK ? rt__backend(c) : NULL;
    if (st == RT_OK && bias && be->gemm_bias && !batched && oa.cols > 0 && oa.rows * ob.cols > 0 &&
        bias->stride[0] == 1 && bias->dtype == c->dtype) /* the bias in the product's epilogue: one call */
        st = be->gemm_bias(a->dtype, oa.trans, ob.trans, oa.rows, ob.cols, oa.cols, oa.ptr, oa.ld, ob.ptr, ob.ld,
                           rt__ptr(bias), rt__ptr(c), ob.cols, &done);
    if (st == RT_OK && !done && bias && oa.rows * ob.cols > 0) { /* c[i, :] = bias */
        struct rt_strided dst = rt__strided(c), src = rt__strided(bias);
        src.ndim = dst.ndim;
        for (int i = 0; i < dst.ndim; i++) {
            src.shape[i] = dst.shape[i];
            src.stride[i] = i == dst.ndim - 1 ? bias->stride[0] : 0;
        }
        st = be->copy(&dst, c->dtype, &src, bias->dtype);
        beta = 1.0;
    }
    if (st == RT_OK && !done && oa.rows * ob.cols > 0) /* with k == 0: C = bias rows, or zeros */
        st = be->gemm(a->dtype, oa.trans, ob.trans, oa.rows, ob.cols, oa.cols, 1.0, oa.ptr, oa.ld, oa.bstride, ob.ptr,
                      ob.ld, ob.bstride, beta, rt__ptr(c), ob.cols, oa.rows * ob.cols, batch);
    rt_tensor_release(oa.held);
    rt_tensor_release(ob.held);
    if (st != RT_OK) {
        rt_tensor_release(c);
        return st;
    }
    *out = c;
    return RT_OK;
}

enum rt_status rt__gemm_2d(struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb, struct rt_tensor **out)
{
    return gemm_nd_bias("rt_matmul", a, ta, b, tb, NULL, out);
}

/* The differentiable core product: 2-D x 2-D or 3-D batched (one side may be 2-D). */
static enum rt_status mm(const char *name, struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    struct rt_tensor *c;
    enum rt_status st = gemm_nd_bias(name, a, false, b, false, NULL, &c);
    if (st != RT_OK)
        return st;
    struct rt_tensor *in[2] = {a, b};
    if (rt__needs_grad(2, in)) {
        struct rt_node *n;
        st = rt__record(c, "MatmulBackward", rt__vjp_matmul, 2, in, &n);
        if (st == RT_OK)
            st = rt__save(n, a);
        if (st == RT_OK)
            st = rt__save(n, b);
        if (st != RT_OK) {
            rt_tensor_release(c);
            return st;
        }
    }
    *out = c;
    return RT_OK;
}

enum rt_status rt_matmul(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    if (a->ndim < 1 || a->ndim > 3 || b->ndim < 1 || b->ndim > 3)
        return rt_error(RT_ERR_SHAPE, "rt_matmul: operands must have 1 to 3 dims, got %s x %s",
                        rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y));
    /* Promote vectors to matrices, multiply, then drop the added dims (all differentiable views). */
    struct rt_tensor *a2 = NULL, *b2 = NULL, *c = NULL;
    enum rt_status st = a->ndim == 1 ? rt_unsqueeze(a, 0, &a2) : (rt_tensor_retain(a), a2 = a, RT_OK);
    if (st == RT_OK)
        st = b->ndim == 1 ? rt_unsqueeze(b, 1, &b2) : (rt_tensor_retain(b), b2 = b, RT_OK);
    if (st == RT_OK && a2->ndim == 3 && b2->ndim == 2 && a2->shape[2] == b2->shape[0]) {
        /* (B,n,k) x (k,m): one big GEMM over B*n rows. */
        int64_t flat[2] = {a2->shape[0] * a2->shape[1], a2->shape[2]};
        struct rt_tensor *af, *cf;
        st = rt_reshape(a2, 2, flat, &af);
        if (st == RT_OK) {
            st = mm("rt_matmul", af, b2, &cf);
            rt_tensor_release(af);
            if (st == RT_OK) {
                int64_t shape[3] = {a2->shape[0], a2->shape[1], b2->shape[1]};
                st = rt_view(cf, 3, shape, &c);
                rt_tensor_release(cf);
            }
        }
    } else if (st == RT_OK) {
        st = mm("rt_matmul", a2, b2, &c);
    }
    if (st == RT_OK && (a->ndim == 1 || b->ndim == 1)) {
        int64_t shape[RT_MAX_DIMS];
        int k = 0;
        for (int i = 0; i < c->ndim; i++) {
            bool drop = (a->ndim == 1 && i == c->ndim - 2) || (b->ndim == 1 && i == c->ndim - 1);
            if (!drop)
                shape[k++] = c->shape[i];
        }
        struct rt_tensor *s;
        st = rt_view(c, k, shape, &s);
        rt_tensor_release(c);
        c = st == RT_OK ? s : NULL;
    }
    rt_tensor_release(a2);
    rt_tensor_release(b2);
    if (st != RT_OK) {
        if (strstr(rt_error_msg(), "inner dims") || strstr(rt_error_msg(), "batch sizes"))
            rt_error(RT_ERR_SHAPE, "rt_matmul: inner dims differ: %s x %s", rt_shape_str(a->ndim, a->shape, x, sizeof x),
                     rt_shape_str(b->ndim, b->shape, y, sizeof y));
        rt_tensor_release(c);
        return st;
    }
    *out = c;
    return RT_OK;
}

enum rt_status rt_bmm(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    if (a->ndim != 3 || b->ndim != 3)
        return rt_error(RT_ERR_SHAPE, "rt_bmm: operands must be 3-D, got %s x %s",
                        rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y));
    return mm("rt_bmm", a, b, out);
}

enum rt_status rt_linear(struct rt_tensor *x, struct rt_tensor *w, struct rt_tensor *bias, struct rt_tensor **out)
{
    char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        return rt_error(RT_ERR_SHAPE, "rt_linear: input %s does not fit weight %s (expected (n,%lld))",
                        rt_shape_str(x->ndim, x->shape, a, sizeof a), rt_shape_str(w->ndim, w->shape, b, sizeof b),
                        (long long)(w->ndim == 2 ? w->shape[1] : -1));
    if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
        return rt_error(RT_ERR_SHAPE, "rt_linear: bias %s does not fit weight %s (expected (%lld))",
                        rt_shape_str(bias->ndim, bias->shape, a, sizeof a),
                        rt_shape_str(w->ndim, w->shape, b, sizeof b), (long long)w->shape[0]);
    enum rt_status st = bias ? rt__same_device("rt_linear", w, bias) : RT_OK;
    if (st == RT_OK && bias && bias->dtype != w->dtype)
        st = rt_error(RT_ERR_DTYPE, "rt_linear: bias dtype %s differs from weight dtype %s",
                      rt_dtype_name(bias->dtype), rt_dtype_name(w->dtype));
    struct rt_tensor *y = NULL;
    if (st == RT_OK)
        st = gemm_nd_bias("rt_linear", x, false, w, true, bias, &y); /* validates device/dtype */
    struct rt_tensor *in[3] = {x, w, bias};
    if (st == RT_OK && rt__needs_grad(bias ? 3 : 2, in)) {
        struct rt_node *n;
        st = rt__record(y, "LinearBackward", rt__vjp_linear, bias ? 3 : 2, in, &n);
        if (st == RT_OK)
            st = rt__save(n, x);
        if (st == RT_OK)
            st = rt__save(n, w);
    }
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}

enum rt_status rt_matmul_naive(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0])
        return rt_error(RT_ERR_SHAPE, "rt_matmul_naive: inner dims differ: %s x %s",
                        rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y));
    int64_t n = a->shape[0], k = a->shape[1], m = b->shape[1];
    double *A = malloc((size_t)(n * k + 1) * sizeof *A), *B = malloc((size_t)(k * m + 1) * sizeof *B),
           *C = calloc((size_t)(n * m + 1), sizeof *C);
    enum rt_status st = A && B && C ? RT_OK : rt_error(RT_ERR_OOM, "rt_matmul_naive: out of memory");
    if (st == RT_OK)
        st = rt_tensor_to_host(a, RT_F64, A);
    if (st == RT_OK)
        st = rt_tensor_to_host(b, RT_F64, B);
    if (st == RT_OK)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < m; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += A[i * k + p] * B[p * m + j];
                C[i * m + j] = s;
            }
    struct rt_tensor *c64 = NULL;
    int64_t shape[2] = {n, m};
    if (st == RT_OK)
        st = rt_tensor_from_data(RT_F64, 2, shape, C, &c64);
    free(A);
    free(B);
    free(C);
    if (st != RT_OK)
        return st;
    bool was = rt_grad_set_enabled(false);
    st = rt_to_dtype(c64, a->dtype, out);
    rt_grad_set_enabled(was);
    rt_tensor_release(c64);
    return st;
}
