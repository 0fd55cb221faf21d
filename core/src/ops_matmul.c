/* Matrix products through the backend GEMM (OpenBLAS on CPU). Transposed views are passed to
 * GEMM as transposed operands instead of being copied.
 *
 * bf16 (retort/bf16.h): a product with a bf16 operand runs on the backend's gemm_bf16 (the other
 * operand, f32, rounded to a bf16 copy first) and returns f32, accumulated in f32. Under autocast
 * (rt_autocast_get() == RT_BF16) rt_matmul/rt_bmm/rt_linear round their f32 operands to bf16 copies
 * and record the usual backward node saving those copies: the VJPs (grad_fns.c) then multiply the
 * incoming f32 gradient with bf16 operands, so the backward GEMMs run in bf16 too and write f32
 * gradients, without the backward needing to know about autocast. */
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

/* RT_ERR_SHAPE unless op(a) and op(b) multiply: inner dims agree, and so do the batches of two 3-D operands. */
static enum rt_status check_inner(const char *name, const struct rt_tensor *a, const struct rt_tensor *b,
                                  const struct gemm_operand *oa, const struct gemm_operand *ob)
{
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    if (oa->cols != ob->rows)
        return rt_error(RT_ERR_SHAPE, "%s: inner dims differ: %s x %s", name,
                        rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y));
    if (a->ndim == 3 && b->ndim == 3 && oa->batch != ob->batch)
        return rt_error(RT_ERR_SHAPE, "%s: batch sizes differ: %s x %s", name,
                        rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y));
    return RT_OK;
}

/* The product's output (batch, rows, cols), or (rows, cols) when neither operand is batched, of dtype dt. */
static enum rt_status product_out(enum rt_dtype dt, const struct rt_tensor *a, bool batched, int64_t batch,
                                  const struct gemm_operand *oa, const struct gemm_operand *ob, struct rt_tensor **c)
{
    int64_t shape[3] = {batch, oa->rows, ob->cols};
    return batched ? rt_tensor_empty(dt, a->storage->device, 3, shape, c)
                   : rt_tensor_empty(dt, a->storage->device, 2, shape + 1, c);
}

/* c[..., i, :] = bias for every row i (bias 1-D of c's last size, any stride or float dtype): the C a GEMM
 * with beta 1 then adds the product to. */
static enum rt_status fill_bias_rows(const struct rt_backend *be, struct rt_tensor *c, const struct rt_tensor *bias)
{
    struct rt_strided dst = rt__strided(c), src = rt__strided(bias);
    src.ndim = dst.ndim;
    for (int i = 0; i < dst.ndim; i++) {
        src.shape[i] = dst.shape[i];
        src.stride[i] = i == dst.ndim - 1 ? bias->stride[0] : 0;
    }
    return rt__copy_strided(be, &dst, c->dtype, &src, bias->dtype);
}

/* out = op(a) @ op(b) [+ bias broadcast over rows] for 2-D or 3-D (batched; a 2-D side is shared by
 * every batch; product_into says how the bias goes in). No autograd. */
static enum rt_status gemm_nd_bias(const char *name, struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb,
                                   struct rt_tensor *bias, struct rt_tensor **out);

/* c = op(A) op(B) [+ bias rows] for the operands' dtype dt (RT_BF16: gemm_bf16, c f32): the bias in
 * the backend's GEMM epilogue where it takes it (one call), else written into c first and the product
 * added to it (beta 1), which saves the separate pass that adding it afterwards costs. With k == 0, c
 * is the bias rows, or zeros. */
static enum rt_status product_into(const struct rt_backend *be, enum rt_dtype dt, const struct gemm_operand *oa,
                                   const struct gemm_operand *ob, int64_t batch, bool batched,
                                   const struct rt_tensor *bias, struct rt_tensor *c)
{
    int64_t m = oa->rows, n = ob->cols, k = oa->cols;
    if (m * n == 0)
        return RT_OK;
    bool written = false;
    if (bias && be->gemm_bias && !batched && k > 0 && bias->stride[0] == 1 && bias->dtype == c->dtype) {
        enum rt_status st = be->gemm_bias(dt, oa->trans, ob->trans, m, n, k, oa->ptr, oa->ld, ob->ptr, ob->ld,
                                          rt__ptr(bias), rt__ptr(c), n, &written);
        if (st != RT_OK || written)
            return st;
    }
    double beta = 0.0;
    if (bias) {
        enum rt_status st = fill_bias_rows(be, c, bias);
        if (st != RT_OK)
            return st;
        beta = 1.0;
    }
    if (dt == RT_BF16)
        return be->gemm_bf16(oa->trans, ob->trans, m, n, k, oa->ptr, oa->ld, oa->bstride, ob->ptr, ob->ld,
                             ob->bstride, beta, rt__ptr(c), n, m * n, batch);
    return be->gemm(dt, oa->trans, ob->trans, m, n, k, 1.0, oa->ptr, oa->ld, oa->bstride, ob->ptr, ob->ld,
                    ob->bstride, beta, rt__ptr(c), n, m * n, batch);
}

/* A bf16 copy of an f32 (or bf16) operand, without autograd (new ref). */
static enum rt_status to_bf16(const char *name, struct rt_tensor *t, struct rt_tensor **out)
{
    if (t->dtype == RT_BF16) {
        rt_tensor_retain(t);
        *out = t;
        return RT_OK;
    }
    if (t->dtype != RT_F32)
        return rt_error(RT_ERR_DTYPE, "%s: a bf16 product takes f32 or bf16 operands, got %s", name,
                        rt_dtype_name(t->dtype));
    bool was = rt_grad_set_enabled(false);
    enum rt_status st = rt_to_dtype(t, RT_BF16, out);
    rt_grad_set_enabled(was);
    return st;
}

/* The bf16 product: both operands as bf16, C f32 (with the bias as product_into adds it). */
static enum rt_status gemm_bf16(const char *name, struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb,
                                struct rt_tensor *bias, struct rt_tensor **out)
{
    struct rt_tensor *ab = NULL, *bb = NULL, *c = NULL;
    struct gemm_operand oa = {0}, ob = {0};
    const struct rt_backend *be = rt__backend(a);
    enum rt_status st;
    RT_TRY(to_bf16(name, a, &ab));
    RT_TRY(to_bf16(name, b, &bb));
    RT_TRY(operand(ab, ta, &oa));
    RT_TRY(operand(bb, tb, &ob));
    RT_TRY(check_inner(name, a, b, &oa, &ob));
    int64_t batch = oa.batch > ob.batch ? oa.batch : ob.batch;
    bool batched = a->ndim == 3 || b->ndim == 3;
    RT_TRY(product_out(RT_F32, a, batched, batch, &oa, &ob, &c));
    RT_TRY(product_into(be, RT_BF16, &oa, &ob, batch, batched, bias, c));
    *out = c, c = NULL;
done:
    rt_tensor_release(oa.held);
    rt_tensor_release(ob.held);
    rt_tensor_release(ab);
    rt_tensor_release(bb);
    rt_tensor_release(c);
    return st;
}

static enum rt_status gemm_nd_bias(const char *name, struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb,
                                   struct rt_tensor *bias, struct rt_tensor **out)
{
    enum rt_status st = rt__same_device(name, a, b);
    if (st != RT_OK)
        return st;
    if (a->dtype == RT_BF16 || b->dtype == RT_BF16)
        return gemm_bf16(name, a, ta, b, tb, bias, out);
    if (a->dtype != b->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: dtypes differ (%s and %s)", name, rt_dtype_name(a->dtype),
                        rt_dtype_name(b->dtype));
    if (!rt_dtype_is_float(a->dtype))
        return rt_error(RT_ERR_DTYPE, "%s: needs float tensors, got %s", name, rt_dtype_name(a->dtype));
    struct gemm_operand oa = {0}, ob = {0};
    struct rt_tensor *c = NULL;
    RT_TRY(operand(a, ta, &oa));
    RT_TRY(operand(b, tb, &ob));
    RT_TRY(check_inner(name, a, b, &oa, &ob));
    int64_t batch = oa.batch > ob.batch ? oa.batch : ob.batch;
    bool batched = a->ndim == 3 || b->ndim == 3;
    RT_TRY(product_out(a->dtype, a, batched, batch, &oa, &ob, &c));
    RT_TRY(product_into(rt__backend(c), a->dtype, &oa, &ob, batch, batched, bias, c));
    *out = c, c = NULL;
done:
    rt_tensor_release(oa.held);
    rt_tensor_release(ob.held);
    rt_tensor_release(c);
    return st;
}

enum rt_status rt__gemm_2d(struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb, struct rt_tensor **out)
{
    return gemm_nd_bias("rt_matmul", a, ta, b, tb, NULL, out);
}

/* The differentiable core product: 2-D x 2-D or 3-D batched (one side may be 2-D). */
/* Under bf16 autocast, the bf16 copies (new refs) an op multiplies and saves in place of its f32
 * operands; other dtypes and autocast off: the operands themselves (new refs). */
static enum rt_status autocast_operands(const char *name, int k, struct rt_tensor *const *in, struct rt_tensor **use)
{
    bool cast = rt_autocast_get() == RT_BF16;
    for (int i = 0; i < k; i++)
        cast = cast && (in[i]->dtype == RT_F32 || in[i]->dtype == RT_BF16);
    enum rt_status st = RT_OK;
    for (int i = 0; i < k; i++) {
        use[i] = NULL;
        if (st == RT_OK && cast)
            st = to_bf16(name, in[i], &use[i]);
        else if (st == RT_OK)
            rt_tensor_retain(use[i] = in[i]);
    }
    if (st != RT_OK)
        rt__release_all(k, use);
    return st;
}

/* The backward node of a product y of the n inputs `in` (when they need grad), saving the two operands it
 * multiplied (use: the inputs themselves, or their bf16 copies under autocast). */
static enum rt_status record_product(struct rt_tensor *y, const char *node_name, rt_vjp_fn vjp, int n,
                                     struct rt_tensor *const *in, struct rt_tensor *const *use)
{
    if (!rt__needs_grad(n, in))
        return RT_OK;
    struct rt_node *node;
    enum rt_status st;
    RT_TRY(rt__record(y, node_name, vjp, n, in, &node));
    RT_TRY(rt__save(node, use[0]));
    RT_TRY(rt__save(node, use[1]));
done:
    return st;
}

static enum rt_status mm(const char *name, struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    struct rt_tensor *c = NULL, *in[2] = {a, b}, *use[2] = {NULL, NULL};
    enum rt_status st;
    RT_TRY(autocast_operands(name, 2, in, use));
    RT_TRY(gemm_nd_bias(name, use[0], false, use[1], false, NULL, &c));
    RT_TRY(record_product(c, "MatmulBackward", rt__vjp_matmul, 2, in, use));
    *out = c, c = NULL;
done:
    rt__release_all(2, use);
    rt_tensor_release(c);
    return st;
}

enum rt_status rt_matmul(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    char x[RT_SHAPE_STR_MAX], y[RT_SHAPE_STR_MAX];
    if (a->ndim < 1 || a->ndim > 3 || b->ndim < 1 || b->ndim > 3)
        return rt_error(RT_ERR_SHAPE, "rt_matmul: operands must have 1 to 3 dims, got %s x %s",
                        rt_shape_str(a->ndim, a->shape, x, sizeof x), rt_shape_str(b->ndim, b->shape, y, sizeof y));
    /* Promote vectors to matrices, multiply, then drop the added dims (all differentiable views). */
    struct rt_tensor *a2 = NULL, *b2 = NULL, *c = NULL, *af = NULL, *cf = NULL, *s = NULL;
    enum rt_status st;
    if (a->ndim == 1)
        RT_TRY(rt_unsqueeze(a, 0, &a2));
    else
        rt_tensor_retain(a2 = a);
    if (b->ndim == 1)
        RT_TRY(rt_unsqueeze(b, 1, &b2));
    else
        rt_tensor_retain(b2 = b);
    if (a2->ndim == 3 && b2->ndim == 2 && a2->shape[2] == b2->shape[0]) {
        /* (B,n,k) x (k,m): one big GEMM over B*n rows. */
        int64_t flat[2] = {a2->shape[0] * a2->shape[1], a2->shape[2]};
        int64_t shape[3] = {a2->shape[0], a2->shape[1], b2->shape[1]};
        RT_TRY(rt_reshape(a2, 2, flat, &af));
        RT_TRY(mm("rt_matmul", af, b2, &cf));
        RT_TRY(rt_view(cf, 3, shape, &c));
    } else {
        RT_TRY(mm("rt_matmul", a2, b2, &c));
    }
    if (a->ndim == 1 || b->ndim == 1) {
        int64_t shape[RT_MAX_DIMS];
        int k = 0;
        for (int i = 0; i < c->ndim; i++) {
            bool drop = (a->ndim == 1 && i == c->ndim - 2) || (b->ndim == 1 && i == c->ndim - 1);
            if (!drop)
                shape[k++] = c->shape[i];
        }
        RT_TRY(rt_view(c, k, shape, &s));
        rt_tensor_release(c);
        c = s, s = NULL;
    }
    *out = c, c = NULL;
done:
    if (st != RT_OK && (strstr(rt_error_msg(), "inner dims") || strstr(rt_error_msg(), "batch sizes")))
        rt_error(RT_ERR_SHAPE, "rt_matmul: inner dims differ: %s x %s", rt_shape_str(a->ndim, a->shape, x, sizeof x),
                 rt_shape_str(b->ndim, b->shape, y, sizeof y));
    rt__release_all(6, (struct rt_tensor *[]){a2, b2, c, af, cf, s});
    return st;
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
    bool bf16 = x->dtype == RT_BF16 || w->dtype == RT_BF16 || rt_autocast_get() == RT_BF16;
    if (st == RT_OK && bias && bias->dtype != w->dtype && !(bf16 && (bias->dtype == RT_F32 || bias->dtype == RT_BF16)))
        st = rt_error(RT_ERR_DTYPE, "rt_linear: bias dtype %s differs from weight dtype %s",
                      rt_dtype_name(bias->dtype), rt_dtype_name(w->dtype));
    struct rt_tensor *y = NULL, *in[3] = {x, w, bias}, *use[2] = {NULL, NULL};
    if (st != RT_OK)
        return st;
    RT_TRY(autocast_operands("rt_linear", 2, in, use));
    RT_TRY(gemm_nd_bias("rt_linear", use[0], false, use[1], true, bias, &y)); /* validates device/dtype */
    RT_TRY(record_product(y, "LinearBackward", rt__vjp_linear, bias ? 3 : 2, in, use));
    *out = y, y = NULL;
done:
    rt__release_all(2, use);
    rt_tensor_release(y);
    return st;
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
    struct rt_tensor *c64 = NULL;
    int64_t shape[2] = {n, m};
    enum rt_status st;
    RT_TRY(A && B && C ? RT_OK : rt_error(RT_ERR_OOM, "rt_matmul_naive: out of memory"));
    RT_TRY(rt_tensor_to_host(a, RT_F64, A));
    RT_TRY(rt_tensor_to_host(b, RT_F64, B));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += A[i * k + p] * B[p * m + j];
            C[i * m + j] = s;
        }
    RT_TRY(rt_tensor_from_data(RT_F64, 2, shape, C, &c64));
    bool was = rt_grad_set_enabled(false);
    st = rt_to_dtype(c64, a->dtype, out);
    rt_grad_set_enabled(was);
done:
    free(A);
    free(B);
    free(C);
    rt_tensor_release(c64);
    return st;
}
