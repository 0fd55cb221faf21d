/* Vector-Jacobian products. Backward runs with grad mode off, so these compose public ops
 * freely without recording anything. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_fns.h"

#define NEED(i) (n->next[(i)] != NULL)

RT_VJP(identity)
{
    for (int i = 0; i < n->n_inputs; i++)
        if (NEED(i)) {
            rt_tensor_retain(g);
            gin[i] = g;
        }
    return RT_OK;
}

RT_VJP(to_device) { return rt_to_device(g, (enum rt_device)n->i[0], &gin[0]); }

RT_VJP(reshape) { return rt_reshape(g, n->in_ndim[0], n->in_shape[0], &gin[0]); }

/* zeros of the input's shape with g written into the part the view selected */
static enum rt_status embed(struct rt_node *n, struct rt_tensor *g, bool select, struct rt_tensor **out)
{
    struct rt_tensor *z, *part;
    enum rt_status st = rt_tensor_new(g->dtype, g->storage->device, n->in_ndim[0], n->in_shape[0], &z);
    if (st != RT_OK)
        return st;
    st = select ? rt_select(z, (int)n->i[0], n->i[1], &part)
                : rt_narrow(z, (int)n->i[0], n->i[1], g->ndim ? g->shape[n->i[0]] : 1, &part);
    if (st == RT_OK) {
        st = rt_copy_(part, g);
        rt_tensor_release(part);
    }
    if (st != RT_OK) {
        rt_tensor_release(z);
        return st;
    }
    *out = z;
    return RT_OK;
}

RT_VJP(narrow) { return embed(n, g, false, &gin[0]); }
RT_VJP(select) { return embed(n, g, true, &gin[0]); }

RT_VJP(permute)
{
    int inv[RT_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++)
        inv[n->i[i]] = i;
    return rt_permute(g, inv, &gin[0]);
}

RT_VJP(to_dtype) { return rt_to_dtype(g, n->in_dtype[0], &gin[0]); }
RT_VJP(neg) { return rt_neg(g, &gin[0]); }
RT_VJP(exp) { return rt_mul(g, n->saved[0], &gin[0]); }
RT_VJP(log) { return rt_div(g, n->saved[0], &gin[0]); }

RT_VJP(sqrt)
{
    struct rt_tensor *twice;
    enum rt_status st = rt_affine(n->saved[0], 2.0, 0.0, &twice);
    if (st != RT_OK)
        return st;
    st = rt_div(g, twice, &gin[0]);
    rt_tensor_release(twice);
    return st;
}

static enum rt_status helper_bw(enum rt_binary_op op, struct rt_tensor *g, struct rt_tensor *saved,
                                struct rt_tensor **out)
{
    return rt__binary_raw("backward", op, g, saved, out);
}

RT_VJP(abs) { return helper_bw(RT_BIN_ABS_BW, g, n->saved[0], &gin[0]); }
RT_VJP(relu) { return helper_bw(RT_BIN_RELU_BW, g, n->saved[0], &gin[0]); }
RT_VJP(sigmoid) { return helper_bw(RT_BIN_SIGMOID_BW, g, n->saved[0], &gin[0]); }
RT_VJP(tanh) { return helper_bw(RT_BIN_TANH_BW, g, n->saved[0], &gin[0]); }

RT_VJP(reciprocal) /* d(1/x) = -1/x^2 = -y^2 */
{
    struct rt_tensor *y2 = NULL, *t = NULL;
    enum rt_status st;
    RT_TRY(rt_mul(n->saved[0], n->saved[0], &y2));
    RT_TRY(rt_mul(g, y2, &t));
    RT_TRY(rt_neg(t, &gin[0]));
done:
    rt_tensor_release(y2);
    rt_tensor_release(t);
    return st;
}

RT_VJP(pow) /* e * x^(e-1) */
{
    double e = n->s[0];
    struct rt_tensor *p = NULL, *t = NULL;
    enum rt_status st;
    if (e == 0.0)
        return rt_tensor_zeros_like(g, &gin[0]);
    RT_TRY(rt_pow(n->saved[0], e - 1.0, &p));
    RT_TRY(rt_affine(p, e, 0.0, &t));
    RT_TRY(rt_mul(g, t, &gin[0]));
done:
    rt_tensor_release(p);
    rt_tensor_release(t);
    return st;
}

/* float mask (x's dtype) of a u8 comparison result */
static enum rt_status float_mask(struct rt_tensor *u8, enum rt_dtype dt, struct rt_tensor **out)
{
    return rt_to_dtype(u8, dt, out);
}

RT_VJP(clamp) /* gradient passes where lo <= x <= hi */
{
    struct rt_tensor *x = n->saved[0], *ge = NULL, *le = NULL, *both = NULL, *m = NULL;
    enum rt_status st;
    RT_TRY(rt_compare_scalar(x, n->s[0], RT_CMP_GE, &ge));
    RT_TRY(rt_compare_scalar(x, n->s[1], RT_CMP_LE, &le));
    RT_TRY(rt_mul(ge, le, &both));
    RT_TRY(float_mask(both, g->dtype, &m));
    RT_TRY(rt_mul(g, m, &gin[0]));
done:
    rt_tensor_release(ge);
    rt_tensor_release(le);
    rt_tensor_release(both);
    rt_tensor_release(m);
    return st;
}

RT_VJP(affine) { return rt_affine(g, n->s[0], 0.0, &gin[0]); }

RT_VJP(sub)
{
    enum rt_status st = RT_OK;
    if (NEED(0)) {
        rt_tensor_retain(g);
        gin[0] = g;
    }
    if (NEED(1))
        st = rt_neg(g, &gin[1]);
    return st;
}

RT_VJP(mul)
{
    enum rt_status st = RT_OK;
    if (NEED(0))
        st = rt_mul(g, n->saved[1], &gin[0]);
    if (st == RT_OK && NEED(1))
        st = rt_mul(g, n->saved[0], &gin[1]);
    return st;
}

RT_VJP(div) /* d(a/b) = da/b - a db/b^2 */
{
    struct rt_tensor *a = n->saved[0], *b = n->saved[1], *q = NULL, *t = NULL;
    enum rt_status st = RT_OK;
    if (NEED(0))
        RT_TRY(rt_div(g, b, &gin[0]));
    if (NEED(1)) {
        RT_TRY(rt_div(a, b, &q));  /* a/b */
        RT_TRY(rt_div(q, b, &t));  /* a/b^2 */
        rt_tensor_release(q);
        q = NULL;
        RT_TRY(rt_mul(g, t, &q));
        RT_TRY(rt_neg(q, &gin[1]));
    }
done:
    rt_tensor_release(q);
    rt_tensor_release(t);
    return st;
}

RT_VJP(minmax) /* gradient to the operand that was chosen; ties share it equally */
{
    struct rt_tensor *a = n->saved[0], *b = n->saved[1], *y = n->saved[2];
    struct rt_tensor *ea = NULL, *eb = NULL, *ma = NULL, *mb = NULL, *cnt = NULL, *w = NULL;
    enum rt_status st;
    RT_TRY(rt_compare(a, y, RT_CMP_EQ, &ea));
    RT_TRY(rt_compare(b, y, RT_CMP_EQ, &eb));
    RT_TRY(float_mask(ea, g->dtype, &ma));
    RT_TRY(float_mask(eb, g->dtype, &mb));
    RT_TRY(rt_add(ma, mb, &cnt));
    for (int i = 0; i < 2; i++) {
        if (!NEED(i))
            continue;
        RT_TRY(rt_div(i == 0 ? ma : mb, cnt, &w));
        RT_TRY(rt_mul(g, w, &gin[i]));
        rt_tensor_release(w);
        w = NULL;
    }
done:
    rt_tensor_release(ea);
    rt_tensor_release(eb);
    rt_tensor_release(ma);
    rt_tensor_release(mb);
    rt_tensor_release(cnt);
    rt_tensor_release(w);
    return st;
}

RT_VJP(where)
{
    struct rt_tensor *zero;
    enum rt_status st = rt_tensor_full(g->dtype, g->storage->device, 0, NULL, 0.0, &zero);
    if (st != RT_OK)
        return st;
    if (NEED(1))
        st = rt_where(n->saved[0], g, zero, &gin[1]);
    if (st == RT_OK && NEED(2))
        st = rt_where(n->saved[0], zero, g, &gin[2]);
    rt_tensor_release(zero);
    return st;
}

/* g (reduced shape) viewed with the reduced dim kept as size 1, ready to broadcast. */
static enum rt_status unreduce(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **out)
{
    int dim = (int)n->i[0];
    if (dim < 0 || n->i[1]) { /* all-reduction (0-dim g) or keepdim: broadcasting already lines up */
        rt_tensor_retain(g);
        *out = g;
        return RT_OK;
    }
    return rt_unsqueeze(g, dim, out);
}

static enum rt_status expand_to_input(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **out)
{
    struct rt_tensor *u;
    enum rt_status st = unreduce(n, g, &u);
    if (st != RT_OK)
        return st;
    st = rt_expand(u, n->in_ndim[0], n->in_shape[0], out);
    rt_tensor_release(u);
    return st;
}

RT_VJP(sum) { return expand_to_input(n, g, &gin[0]); }

RT_VJP(mean)
{
    struct rt_tensor *e;
    enum rt_status st = expand_to_input(n, g, &e);
    if (st != RT_OK)
        return st;
    st = rt_affine(e, 1.0 / n->s[0], 0.0, &gin[0]);
    rt_tensor_release(e);
    return st;
}

RT_VJP(logsumexp) /* softmax of the input along the dim */
{
    struct rt_tensor *gu = NULL, *yu = NULL, *d = NULL, *e = NULL;
    enum rt_status st;
    RT_TRY(unreduce(n, g, &gu));
    RT_TRY(unreduce(n, n->saved[1], &yu));
    RT_TRY(rt_sub(n->saved[0], yu, &d));
    RT_TRY(rt_exp(d, &e));
    RT_TRY(rt_mul(gu, e, &gin[0]));
done:
    rt_tensor_release(gu);
    rt_tensor_release(yu);
    rt_tensor_release(d);
    rt_tensor_release(e);
    return st;
}

RT_VJP(norm) /* d||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1); zero where the norm is zero */
{
    double p = n->s[0];
    struct rt_tensor *x = n->saved[0], *gu = NULL, *yu = NULL, *num = NULL, *den = NULL, *sg = NULL, *ax = NULL,
                     *t = NULL, *scale = NULL, *nz = NULL, *zero = NULL, *safe = NULL;
    enum rt_status st;
    RT_TRY(unreduce(n, g, &gu));
    RT_TRY(unreduce(n, n->saved[1], &yu));
    if (isinf(p)) { /* gradient to the elements of largest magnitude, shared between ties */
        RT_TRY(rt_abs(x, &ax));
        RT_TRY(rt_compare(ax, yu, RT_CMP_EQ, &nz));
        RT_TRY(float_mask(nz, x->dtype, &t));
        RT_TRY(rt_sum(t, n->i[0] < 0 ? 0 : (int)n->i[0], true, &den));
        if (n->i[0] < 0) { /* all elements: count over everything */
            rt_tensor_release(den);
            den = NULL;
            RT_TRY(rt_sum_all(t, &den));
        }
        RT_TRY(rt__unary_raw(RT_UN_SIGN, x, 0, 0, &sg));
        RT_TRY(rt_mul(t, sg, &num));
        rt_tensor_release(t);
        t = NULL;
        RT_TRY(rt_div(num, den, &t));
        RT_TRY(rt_mul(gu, t, &gin[0]));
        goto done;
    }
    RT_TRY(rt__unary_raw(RT_UN_SIGN, x, 0, 0, &sg));
    RT_TRY(rt_abs(x, &ax));
    RT_TRY(rt_pow(ax, p - 1.0, &t));
    RT_TRY(rt_mul(sg, t, &num));
    rt_tensor_release(t);
    t = NULL;
    RT_TRY(rt_tensor_full(x->dtype, x->storage->device, 0, NULL, 1.0, &zero));
    RT_TRY(rt_compare_scalar(yu, 0.0, RT_CMP_NE, &nz));
    RT_TRY(rt_where(nz, yu, zero, &safe)); /* avoid 0/0: the numerator is 0 there anyway */
    RT_TRY(rt_pow(safe, p - 1.0, &den));
    RT_TRY(rt_div(gu, den, &scale));
    RT_TRY(rt_mul(num, scale, &gin[0]));
done:
    rt_tensor_release(gu);
    rt_tensor_release(yu);
    rt_tensor_release(num);
    rt_tensor_release(den);
    rt_tensor_release(sg);
    rt_tensor_release(ax);
    rt_tensor_release(t);
    rt_tensor_release(scale);
    rt_tensor_release(nz);
    rt_tensor_release(zero);
    rt_tensor_release(safe);
    return st;
}

RT_VJP(select_reduce) /* max/min along a dim: the gradient goes to the selected index */
{
    struct rt_tensor *z = NULL, *gu = NULL, *iu = NULL;
    enum rt_status st;
    int dim = (int)n->i[0];
    if (dim < 0) { /* 0-dim input */
        rt_tensor_retain(g);
        gin[0] = g;
        return RT_OK;
    }
    RT_TRY(rt_tensor_new(g->dtype, g->storage->device, n->in_ndim[0], n->in_shape[0], &z));
    RT_TRY(unreduce(n, g, &gu));
    RT_TRY(unreduce(n, n->saved[0], &iu));
    RT_TRY(rt_scatter_add(z, dim, iu, gu, &gin[0]));
done:
    rt_tensor_release(z);
    rt_tensor_release(gu);
    rt_tensor_release(iu);
    return st;
}

RT_VJP(extreme_all) /* max/min over all elements: shared equally between ties */
{
    struct rt_tensor *eq = NULL, *m = NULL, *cnt = NULL, *w = NULL;
    enum rt_status st;
    RT_TRY(rt_compare(n->saved[0], n->saved[1], RT_CMP_EQ, &eq));
    RT_TRY(float_mask(eq, g->dtype, &m));
    RT_TRY(rt_sum_all(m, &cnt));
    RT_TRY(rt_div(m, cnt, &w));
    RT_TRY(rt_mul(w, g, &gin[0]));
done:
    rt_tensor_release(eq);
    rt_tensor_release(m);
    rt_tensor_release(cnt);
    rt_tensor_release(w);
    return st;
}

RT_VJP(matmul) /* C = A B: dA = dC B^T, dB = A^T dC */
{
    enum rt_status st = RT_OK;
    if (NEED(0))
        st = rt__gemm_2d(g, false, n->saved[1], true, &gin[0]);
    if (st == RT_OK && NEED(1))
        st = rt__gemm_2d(n->saved[0], true, g, false, &gin[1]);
    return st;
}

RT_VJP(linear) /* y = x W^T + b: dx = dy W, dW = dy^T x, db = sum_rows dy */
{
    enum rt_status st = RT_OK;
    if (NEED(0))
        st = rt__gemm_2d(g, false, n->saved[1], false, &gin[0]);
    if (st == RT_OK && NEED(1))
        st = rt__gemm_2d(g, true, n->saved[0], false, &gin[1]);
    if (st == RT_OK && n->n_inputs == 3 && NEED(2))
        st = rt__reduce_raw("backward", RT_RED_SUM, g, 0, false, 0, &gin[2], NULL);
    return st;
}

RT_VJP(softmax)
{
    struct rt_tensor *y = n->saved[0], *gc = NULL, *gx = NULL;
    int d = (int)n->i[0];
    int64_t outer = 1, len = y->ndim ? y->shape[d] : 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= y->shape[i];
    for (int i = d + 1; i < y->ndim; i++)
        inner *= y->shape[i];
    enum rt_status st;
    RT_TRY(rt__contig_raw(g, &gc));
    RT_TRY(rt_tensor_empty_like(y, &gx));
    if (len > 0)
        RT_TRY(rt__backend(y)->softmax_backward(y->dtype, n->i[1] != 0, outer, len, inner, n->s[0], rt__ptr(y),
                                             rt__ptr(gc), rt__ptr(gx)));
    gin[0] = gx;
    gx = NULL;
done:
    rt_tensor_release(gc);
    rt_tensor_release(gx);
    return st;
}

RT_VJP(index_select)
{
    struct rt_tensor *z = NULL, *gc = NULL, *ix = n->saved[0];
    int d = (int)n->i[0];
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= n->in_shape[0][i];
    for (int i = d + 1; i < n->in_ndim[0]; i++)
        inner *= n->in_shape[0][i];
    enum rt_status st;
    RT_TRY(rt_tensor_new(g->dtype, g->storage->device, n->in_ndim[0], n->in_shape[0], &z));
    RT_TRY(rt__contig_raw(g, &gc));
    RT_TRY(rt__backend(z)->index_add(g->dtype, outer, n->in_shape[0][d], inner, rt__ptr(ix), ix->shape[0], rt__ptr(gc),
                                  rt__ptr(z)));
    gin[0] = z;
    z = NULL;
done:
    rt_tensor_release(z);
    rt_tensor_release(gc);
    return st;
}

RT_VJP(gather)
{
    struct rt_tensor *z;
    enum rt_status st = rt_tensor_new(g->dtype, g->storage->device, n->in_ndim[0], n->in_shape[0], &z);
    if (st != RT_OK)
        return st;
    st = rt_scatter_add(z, (int)n->i[0], n->saved[0], g, &gin[0]);
    rt_tensor_release(z);
    return st;
}

RT_VJP(scatter_add)
{
    enum rt_status st = RT_OK;
    if (NEED(0)) {
        rt_tensor_retain(g);
        gin[0] = g;
    }
    if (NEED(1))
        st = rt_gather(g, (int)n->i[0], n->saved[0], &gin[1]);
    return st;
}

RT_VJP(cat)
{
    int d = (int)n->i[0];
    int64_t at = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        int64_t len = n->in_shape[i][d];
        if (NEED(i)) {
            enum rt_status st = rt_narrow(g, d, at, len, &gin[i]);
            if (st != RT_OK)
                return st;
        }
        at += len;
    }
    return RT_OK;
}
