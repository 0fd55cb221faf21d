/* Element-wise ops: unary, binary with broadcasting, comparisons, where. */
#include <math.h>
#include <string.h>

#include "grad_fns.h"

static bool is_float_only(enum rt_unary_op op)
{
    switch (op) {
    case RT_UN_EXP: case RT_UN_LOG: case RT_UN_SQRT: case RT_UN_SIGMOID: case RT_UN_TANH:
    case RT_UN_RECIPROCAL: case RT_UN_POW:
        return true;
    default:
        return false;
    }
}

static bool is_compare(enum rt_unary_op op) { return op >= RT_UN_CMP_EQ && op <= RT_UN_CMP_GE; }

enum rt_status rt__unary_raw(enum rt_unary_op op, struct rt_tensor *x, double a, double b, struct rt_tensor **out)
{
    struct rt_tensor *c = NULL, *y = NULL;
    enum rt_status st;
    RT_TRY(rt__contig_raw(x, &c));
    RT_TRY(rt_tensor_empty(is_compare(op) ? RT_U8 : x->dtype, x->storage->device, x->ndim, x->shape, &y));
    RT_TRY(rt__backend(c)->unary(op, c->dtype, rt_tensor_numel(c), rt__ptr(c), rt__ptr(y), a, b));
    *out = y, y = NULL;
done:
    rt_tensor_release(c);
    rt_tensor_release(y);
    return st;
}

/* A unary op with autograd: save selects what the VJP needs (0 none, 1 input, 2 output). */
static enum rt_status unary(const char *op_name, const char *node_name, enum rt_unary_op op, rt_vjp_fn vjp,
                            int save, struct rt_tensor *x, double a, double b, struct rt_tensor **out)
{
    if (is_float_only(op) && !rt_dtype_is_float(x->dtype))
        return rt__not_float(op_name, x->dtype);
    struct rt_tensor *y = NULL;
    enum rt_status st = rt__unary_raw(op, x, a, b, &y);
    if (st != RT_OK) {
        rt_error_prefix(op_name);
        return st;
    }
    if (vjp && rt__needs_grad(1, &x)) {
        struct rt_node *n;
        RT_TRY(rt__record(y, node_name, vjp, 1, &x, &n));
        n->s[0] = a;
        n->s[1] = b;
        if (save)
            RT_TRY(rt__save(n, save == 1 ? x : y));
    }
    *out = y, y = NULL;
done:
    rt_tensor_release(y);
    return st;
}

enum rt_status rt_neg(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_neg", "NegBackward", RT_UN_NEG, rt__vjp_neg, 0, x, 0, 0, out);
}
enum rt_status rt_exp(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_exp", "ExpBackward", RT_UN_EXP, rt__vjp_exp, 2, x, 0, 0, out);
}
enum rt_status rt_log(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_log", "LogBackward", RT_UN_LOG, rt__vjp_log, 1, x, 0, 0, out);
}
enum rt_status rt_sqrt(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_sqrt", "SqrtBackward", RT_UN_SQRT, rt__vjp_sqrt, 2, x, 0, 0, out);
}
enum rt_status rt_abs(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_abs", "AbsBackward", RT_UN_ABS, rt__vjp_abs, 1, x, 0, 0, out);
}
enum rt_status rt_relu(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_relu", "ReluBackward", RT_UN_RELU, rt__vjp_relu, 2, x, 0, 0, out);
}
enum rt_status rt_sigmoid(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_sigmoid", "SigmoidBackward", RT_UN_SIGMOID, rt__vjp_sigmoid, 2, x, 0, 0, out);
}
enum rt_status rt_tanh(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_tanh", "TanhBackward", RT_UN_TANH, rt__vjp_tanh, 2, x, 0, 0, out);
}
enum rt_status rt_reciprocal(struct rt_tensor *x, struct rt_tensor **out)
{
    return unary("rt_reciprocal", "ReciprocalBackward", RT_UN_RECIPROCAL, rt__vjp_reciprocal, 2, x, 0, 0, out);
}
enum rt_status rt_pow(struct rt_tensor *x, double e, struct rt_tensor **out)
{
    return unary("rt_pow", "PowBackward", RT_UN_POW, rt__vjp_pow, 1, x, e, 0, out);
}
enum rt_status rt_clamp(struct rt_tensor *x, double lo, double hi, struct rt_tensor **out)
{
    if (lo > hi)
        return rt_error(RT_ERR_ARG, "rt_clamp: lower bound %g is above upper bound %g", lo, hi);
    return unary("rt_clamp", "ClampBackward", RT_UN_CLAMP, rt__vjp_clamp, 1, x, lo, hi, out);
}
enum rt_status rt_affine(struct rt_tensor *x, double mul, double add, struct rt_tensor **out)
{
    return unary("rt_affine", "AffineBackward", RT_UN_AFFINE, rt__vjp_affine, 0, x, mul, add, out);
}

enum rt_status rt__binary_raw(const char *name, enum rt_binary_op op, struct rt_tensor *a, struct rt_tensor *b,
                              struct rt_tensor **out)
{
    return rt__binary_param_raw(name, op, a, b, 0, out);
}

enum rt_status rt__binary_param_raw(const char *name, enum rt_binary_op op, struct rt_tensor *a, struct rt_tensor *b,
                                    double s, struct rt_tensor **out)
{
    enum rt_status st = rt__same_device(name, a, b);
    if (st != RT_OK)
        return st;
    if (a->dtype != b->dtype)
        return rt_error(RT_ERR_DTYPE, "%s: dtypes differ (%s and %s); convert one with float()/double()/long()",
                        name, rt_dtype_name(a->dtype), rt_dtype_name(b->dtype));
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    st = rt__broadcast_shape(name, a, b, &ndim, shape);
    if (st != RT_OK)
        return st;
    struct rt_tensor *ca = NULL, *cb = NULL, *y = NULL;
    bool cmp = op >= RT_BIN_CMP_EQ && op <= RT_BIN_CMP_GE;
    RT_TRY(rt__contig_raw(a, &ca));
    RT_TRY(rt__contig_raw(b, &cb));
    RT_TRY(rt_tensor_empty(cmp ? RT_U8 : a->dtype, a->storage->device, ndim, shape, &y));
    /* Broadcast strides of each contiguous operand over the output shape. */
    int64_t as[RT_MAX_DIMS], bs[RT_MAX_DIMS], ca_st[RT_MAX_DIMS], cb_st[RT_MAX_DIMS];
    rt__contiguous_strides(ca->ndim, ca->shape, ca_st);
    rt__contiguous_strides(cb->ndim, cb->shape, cb_st);
    for (int i = 0; i < ndim; i++) {
        int ia = i - (ndim - ca->ndim), ib = i - (ndim - cb->ndim);
        as[i] = ia >= 0 && ca->shape[ia] != 1 ? ca_st[ia] : 0;
        bs[i] = ib >= 0 && cb->shape[ib] != 1 ? cb_st[ib] : 0;
    }
    RT_TRY(rt__backend(ca)->binary(op, a->dtype, ndim, shape, rt__ptr(ca), as, rt__ptr(cb), bs, rt__ptr(y), s));
    *out = y, y = NULL;
done:
    rt_tensor_release(ca);
    rt_tensor_release(cb);
    rt_tensor_release(y);
    return st;
}

static enum rt_status binary(const char *name, const char *node_name, enum rt_binary_op op, rt_vjp_fn vjp,
                             bool save_inputs, bool save_output, struct rt_tensor *a, struct rt_tensor *b,
                             struct rt_tensor **out)
{
    struct rt_tensor *y = NULL, *in[2] = {a, b};
    enum rt_status st;
    RT_TRY(rt__binary_raw(name, op, a, b, &y));
    if (vjp && rt__needs_grad(2, in)) {
        struct rt_node *n;
        RT_TRY(rt__record(y, node_name, vjp, 2, in, &n));
        if (save_inputs) {
            RT_TRY(rt__save(n, a));
            RT_TRY(rt__save(n, b));
        }
        if (save_output)
            RT_TRY(rt__save(n, y));
    }
    *out = y, y = NULL;
done:
    rt_tensor_release(y);
    return st;
}

enum rt_status rt_add(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    return binary("rt_add", "AddBackward", RT_BIN_ADD, rt__vjp_identity, false, false, a, b, out);
}
enum rt_status rt_sub(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    return binary("rt_sub", "SubBackward", RT_BIN_SUB, rt__vjp_sub, false, false, a, b, out);
}
enum rt_status rt_mul(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    return binary("rt_mul", "MulBackward", RT_BIN_MUL, rt__vjp_mul, true, false, a, b, out);
}
enum rt_status rt_div(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    return binary("rt_div", "DivBackward", RT_BIN_DIV, rt__vjp_div, true, false, a, b, out);
}
enum rt_status rt_maximum(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    return binary("rt_maximum", "MaximumBackward", RT_BIN_MAX, rt__vjp_minmax, true, true, a, b, out);
}
enum rt_status rt_minimum(struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    return binary("rt_minimum", "MinimumBackward", RT_BIN_MIN, rt__vjp_minmax, true, true, a, b, out);
}

enum rt_status rt_compare(struct rt_tensor *a, struct rt_tensor *b, enum rt_cmp op, struct rt_tensor **out)
{
    if ((unsigned)op > RT_CMP_GE)
        return rt_error(RT_ERR_ARG, "rt_compare: invalid comparison %d", (int)op);
    return rt__binary_raw("rt_compare", (enum rt_binary_op)(RT_BIN_CMP_EQ + op), a, b, out);
}

enum rt_status rt_compare_scalar(struct rt_tensor *a, double s, enum rt_cmp op, struct rt_tensor **out)
{
    if ((unsigned)op > RT_CMP_GE)
        return rt_error(RT_ERR_ARG, "rt_compare: invalid comparison %d", (int)op);
    return rt__unary_raw((enum rt_unary_op)(RT_UN_CMP_EQ + op), a, s, 0, out);
}

/* Expand t to shape and make it contiguous (no autograd). */
static enum rt_status materialize(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out)
{
    struct rt_tensor *e;
    bool was = rt_grad_set_enabled(false);
    enum rt_status st = rt_expand(t, ndim, shape, &e);
    if (st == RT_OK) {
        st = rt__contig_raw(e, out);
        rt_tensor_release(e);
    }
    rt_grad_set_enabled(was);
    return st;
}

enum rt_status rt_where(struct rt_tensor *cond, struct rt_tensor *a, struct rt_tensor *b, struct rt_tensor **out)
{
    if (cond->dtype != RT_U8)
        return rt_error(RT_ERR_DTYPE, "rt_where: condition must be u8 (a comparison result), got %s",
                        rt_dtype_name(cond->dtype));
    if (a->dtype != b->dtype)
        return rt_error(RT_ERR_DTYPE, "rt_where: dtypes differ (%s and %s)", rt_dtype_name(a->dtype),
                        rt_dtype_name(b->dtype));
    enum rt_status st = rt__same_device("rt_where", cond, a);
    if (st == RT_OK)
        st = rt__same_device("rt_where", a, b);
    if (st != RT_OK)
        return st;
    int n1, n2;
    int64_t s1[RT_MAX_DIMS], s2[RT_MAX_DIMS];
    st = rt__broadcast_shape("rt_where", a, b, &n1, s1);
    if (st != RT_OK)
        return st;
    struct rt_tensor shape_of_ab = {0};
    shape_of_ab.ndim = n1;
    memcpy(shape_of_ab.shape, s1, sizeof s1);
    st = rt__broadcast_shape("rt_where", cond, &shape_of_ab, &n2, s2);
    if (st != RT_OK)
        return st;
    struct rt_tensor *c = NULL, *x = NULL, *y = NULL, *r = NULL, *in[3] = {NULL, a, b};
    RT_TRY(materialize(cond, n2, s2, &c));
    RT_TRY(materialize(a, n2, s2, &x));
    RT_TRY(materialize(b, n2, s2, &y));
    RT_TRY(rt_tensor_empty(a->dtype, a->storage->device, n2, s2, &r));
    RT_TRY(rt__backend(r)->where(a->dtype, rt_tensor_numel(r), rt__ptr(c), rt__ptr(x), rt__ptr(y), rt__ptr(r)));
    if (rt__needs_grad(3, in)) {
        struct rt_node *n;
        RT_TRY(rt__record(r, "WhereBackward", rt__vjp_where, 3, in, &n));
        RT_TRY(rt__save(n, c));
    }
    *out = r, r = NULL;
done:
    rt_tensor_release(x);
    rt_tensor_release(y);
    rt_tensor_release(c);
    rt_tensor_release(r);
    return st;
}
