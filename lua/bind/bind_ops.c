/* Math on tensors: element-wise ops, the arithmetic metamethods, reductions, softmax family,
 * linear algebra, indexing with 1-based index tensors, joining, and in-place methods.
 * Methods return new tensors; in-place methods end in '_' and return self.
 *
 * Numbers mix with tensors on either side: x + 2, 2 - x, 2 / x, x:maximum(0). Scalar
 * add/sub/mul go through rt_affine (one kernel); division builds a 0-dim tensor of x's dtype and
 * device so that x / 3 rounds exactly like x / retort.tensor(3). */
#include <math.h>
#include <string.h>

#include "bind_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers */

/* The tensor at arg, or a number there turned into a 0-dim tensor of like's dtype and device
 * (pushed on the stack, so it is owned by Lua). */
static struct rt_tensor *operand(lua_State *L, int arg, const struct rt_tensor *like)
{
    struct rt_tensor *t = rtb_test(L, arg);
    if (t)
        return t;
    if (lua_type(L, arg) != LUA_TNUMBER)
        luaL_typeerror(L, arg, "retort.Tensor or number");
    struct rt_tensor **slot = rtb_slot(L);
    RTB_CALL(L, rt_tensor_full(like ? like->dtype : RT_F32, like ? rt_tensor_device(like) : RT_CPU, 0, NULL,
                               lua_tonumber(L, arg), slot));
    return *slot;
}

/* A 1-based i64 index tensor at arg -> a new 0-based one, checked against [1, size] on its device
 * (a GPU reports a bad index at the next wait instead of now). */
static struct rt_tensor *index_arg(lua_State *L, int arg, const char *op, int64_t size)
{
    struct rt_tensor *idx = rtb_check(L, arg);
    if (idx->dtype != RT_I64)
        luaL_argerror(L, arg, lua_pushfstring(L, "index tensor must be i64 (a retort.LongTensor), got %s (use :long())",
                                              rt_dtype_name(idx->dtype)));
    struct rt_tensor **slot = rtb_slot(L);
    RTB_CALL(L, rt_index_rebase(idx, 1, size, RT_NO_IGNORE, op, "index", slot));
    return *slot;
}

/* Replaces the i64 index tensor in slot (0-based, from the core) by a 1-based copy. A copy, not
 * an in-place add: the core may have saved the indices for backward (MaxBackward does). */
static void one_based(lua_State *L, struct rt_tensor **slot)
{
    struct rt_tensor *c = NULL;
    RTB_CALL(L, rt_clone(*slot, &c));
    if (rt_add_scalar_(c, 1) != RT_OK) {
        rt_tensor_release(c);
        rtb_core_error(L);
    }
    struct rt_tensor *old = *slot;
    *slot = c;
    rt_tensor_release(old);
}

/* ------------------------------------------------------------------------------------------ */
/* arithmetic: methods and metamethods share these */

enum bop { B_ADD, B_SUB, B_MUL, B_DIV };

static int arith(lua_State *L, enum bop op)
{
    struct rt_tensor *a = rtb_test(L, 1), *b = rtb_test(L, 2);
    if (!a && !b)
        return luaL_typeerror(L, 1, "retort.Tensor");
    if (a && !b && lua_type(L, 2) != LUA_TNUMBER)
        return luaL_typeerror(L, 2, "retort.Tensor or number");
    if (b && !a && lua_type(L, 1) != LUA_TNUMBER)
        return luaL_typeerror(L, 1, "retort.Tensor or number");
    if (a && b) {
        struct rt_tensor **out = rtb_slot(L);
        enum rt_status st = op == B_ADD ? rt_add(a, b, out)
                            : op == B_SUB ? rt_sub(a, b, out)
                            : op == B_MUL ? rt_mul(a, b, out)
                                          : rt_div(a, b, out);
        RTB_CALL(L, st);
        return 1;
    }
    if (a) { /* tensor op number */
        double s = lua_tonumber(L, 2);
        if (op == B_DIV) {
            struct rt_tensor *sb = operand(L, 2, a);
            struct rt_tensor **out = rtb_slot(L);
            RTB_CALL(L, rt_div(a, sb, out));
            return 1;
        }
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, op == B_ADD ? rt_affine(a, 1.0, s, out)
                    : op == B_SUB ? rt_affine(a, 1.0, -s, out)
                                  : rt_affine(a, s, 0.0, out));
        return 1;
    }
    /* number op tensor */
    double s = lua_tonumber(L, 1);
    if (op == B_DIV) {
        struct rt_tensor *sa = operand(L, 1, b);
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, rt_div(sa, b, out));
        return 1;
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, op == B_ADD ? rt_affine(b, 1.0, s, out)
                : op == B_SUB ? rt_affine(b, -1.0, s, out)
                              : rt_affine(b, s, 0.0, out));
    return 1;
}

static int m_add(lua_State *L) { rtb_check(L, 1); return arith(L, B_ADD); }
static int m_sub(lua_State *L) { rtb_check(L, 1); return arith(L, B_SUB); }
static int m_mul(lua_State *L) { rtb_check(L, 1); return arith(L, B_MUL); }
static int m_div(lua_State *L) { rtb_check(L, 1); return arith(L, B_DIV); }
static int mm_add(lua_State *L) { return arith(L, B_ADD); }
static int mm_sub(lua_State *L) { return arith(L, B_SUB); }
static int mm_mul(lua_State *L) { return arith(L, B_MUL); }
static int mm_div(lua_State *L) { return arith(L, B_DIV); }

static int mm_pow(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double e = luaL_checknumber(L, 2);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_pow(t, e, out));
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* element-wise unary */

#define UNARY(lname, fn)                                                                           \
    static int lname(lua_State *L)                                                                 \
    {                                                                                              \
        struct rt_tensor *t = rtb_check(L, 1);                                                     \
        struct rt_tensor **out = rtb_slot(L);                                                      \
        RTB_CALL(L, fn(t, out));                                                                   \
        return 1;                                                                                  \
    }

UNARY(m_neg, rt_neg)
UNARY(m_exp, rt_exp)
UNARY(m_log, rt_log)
UNARY(m_sqrt, rt_sqrt)
UNARY(m_abs, rt_abs)
UNARY(m_relu, rt_relu)
UNARY(m_sigmoid, rt_sigmoid)
UNARY(m_tanh, rt_tanh)
UNARY(m_reciprocal, rt_reciprocal)

static int m_pow(lua_State *L) { return mm_pow(L); }

/* affine(mul [, add = 0]): x * mul + add in one pass (differentiable) */
static int m_affine(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double mul = luaL_checknumber(L, 2), add = luaL_optnumber(L, 3, 0);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_affine(t, mul, add, out));
    return 1;
}

/* clamp(lo, hi): either bound may be nil (unbounded on that side). */
static int m_clamp(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double lo = luaL_optnumber(L, 2, -INFINITY);
    double hi = luaL_optnumber(L, 3, INFINITY);
    if (lo > hi)
        return luaL_argerror(L, 3, lua_pushfstring(L, "upper bound %f is below lower bound %f", hi, lo));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_clamp(t, lo, hi, out));
    return 1;
}

static int minmax2(lua_State *L, int is_max)
{
    struct rt_tensor *a = rtb_check(L, 1);
    struct rt_tensor *b = operand(L, 2, a);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, is_max ? rt_maximum(a, b, out) : rt_minimum(a, b, out));
    return 1;
}

static int m_maximum(lua_State *L) { return minmax2(L, 1); }
static int m_minimum(lua_State *L) { return minmax2(L, 0); }

/* Comparisons with a tensor or a number: u8 tensors of 0/1. */
static int compare(lua_State *L, enum rt_cmp op)
{
    struct rt_tensor *a = rtb_check(L, 1);
    struct rt_tensor *b = rtb_test(L, 2);
    if (!b && lua_type(L, 2) != LUA_TNUMBER)
        return luaL_typeerror(L, 2, "retort.Tensor or number");
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, b ? rt_compare(a, b, op, out) : rt_compare_scalar(a, lua_tonumber(L, 2), op, out));
    return 1;
}

static int m_eq(lua_State *L) { return compare(L, RT_CMP_EQ); }
static int m_ne(lua_State *L) { return compare(L, RT_CMP_NE); }
static int m_lt(lua_State *L) { return compare(L, RT_CMP_LT); }
static int m_le(lua_State *L) { return compare(L, RT_CMP_LE); }
static int m_gt(lua_State *L) { return compare(L, RT_CMP_GT); }
static int m_ge(lua_State *L) { return compare(L, RT_CMP_GE); }

/* ------------------------------------------------------------------------------------------ */
/* reductions: without a dim they reduce everything to a 0-dim tensor (so autograd flows;
 * x:sum():item() is the number). With a dim, keepdim (default false) keeps it as size 1. */

typedef enum rt_status (*reduce_dim_fn)(struct rt_tensor *, int, bool, struct rt_tensor **);
typedef enum rt_status (*reduce_all_fn)(struct rt_tensor *, struct rt_tensor **);

static int reduce(lua_State *L, reduce_dim_fn fd, reduce_all_fn fa)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (lua_isnoneornil(L, 2)) {
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, fa(t, out));
        return 1;
    }
    int dim = rtb_check_dim(L, 2, t->ndim);
    bool keep = lua_toboolean(L, 3);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, fd(t, dim, keep, out));
    return 1;
}

static int m_sum(lua_State *L) { return reduce(L, rt_sum, rt_sum_all); }
static int m_mean(lua_State *L) { return reduce(L, rt_mean, rt_mean_all); }
static int m_logsumexp(lua_State *L) { return reduce(L, rt_logsumexp, rt_logsumexp_all); }

/* norm([p [, dim [, keepdim]]]): p defaults to 2. */
static int m_norm(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double p = luaL_optnumber(L, 2, 2.0);
    if (lua_isnoneornil(L, 3)) {
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, rt_norm_all(t, p, out));
        return 1;
    }
    int dim = rtb_check_dim(L, 3, t->ndim);
    bool keep = lua_toboolean(L, 4);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_norm(t, p, dim, keep, out));
    return 1;
}

/* max()/min(): 0-dim tensor. max(dim [, keepdim]): values, indices (i64, 1-based). */
static int minmax(lua_State *L, int is_max)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (lua_isnoneornil(L, 2)) {
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, is_max ? rt_max_all(t, out) : rt_min_all(t, out));
        return 1;
    }
    int dim = rtb_check_dim(L, 2, t->ndim);
    bool keep = lua_toboolean(L, 3);
    struct rt_tensor **vals = rtb_slot(L);
    struct rt_tensor **idx = rtb_slot(L);
    RTB_CALL(L, is_max ? rt_max(t, dim, keep, vals, idx) : rt_min(t, dim, keep, vals, idx));
    one_based(L, idx);
    return 2;
}

static int m_max(lua_State *L) { return minmax(L, 1); }
static int m_min(lua_State *L) { return minmax(L, 0); }

/* argmax([dim [, keepdim]]): 1-based i64 indices; without dim, the 1-based position in the
 * row-major flattening (a 0-dim tensor). */
static int argminmax(lua_State *L, int is_max)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor *src = t;
    int dim;
    bool keep = false;
    if (lua_isnoneornil(L, 2)) {
        int64_t all = -1;
        struct rt_tensor **flat = rtb_slot(L);
        RTB_CALL(L, rt_reshape(t, 1, &all, flat));
        src = *flat;
        dim = 0;
    } else {
        dim = rtb_check_dim(L, 2, t->ndim);
        keep = lua_toboolean(L, 3);
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, is_max ? rt_argmax(src, dim, keep, out) : rt_argmin(src, dim, keep, out));
    one_based(L, out);
    return 1;
}

static int m_argmax(lua_State *L) { return argminmax(L, 1); }
static int m_argmin(lua_State *L) { return argminmax(L, 0); }

/* softmax(dim, T) / logSoftmax(dim, T): softmax(x / T) along dim (default: the last dim);
 * T defaults to 1 and must be > 0. */
static int softmax(lua_State *L, int is_log)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (t->ndim == 0)
        return luaL_error(L, "%s: expected a tensor with at least 1 dim, got a 0-dim tensor",
                          is_log ? "logSoftmax" : "softmax");
    int dim = rtb_opt_dim(L, 2, t->ndim, t->ndim - 1);
    double T = luaL_optnumber(L, 3, 1.0);
    if (!(T > 0) || isinf(T))
        return luaL_argerror(L, 3, lua_pushfstring(L, "temperature T must be a finite number > 0, got %f", T));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, is_log ? rt_log_softmax(t, dim, T, out) : rt_softmax(t, dim, T, out));
    return 1;
}

static int m_softmax(lua_State *L) { return softmax(L, 0); }
static int m_log_softmax(lua_State *L) { return softmax(L, 1); }

/* ------------------------------------------------------------------------------------------ */
/* linear algebra */

static int m_matmul(lua_State *L)
{
    struct rt_tensor *a = rtb_check(L, 1), *b = rtb_check(L, 2);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_matmul(a, b, out));
    return 1;
}

static int m_bmm(lua_State *L)
{
    struct rt_tensor *a = rtb_check(L, 1), *b = rtb_check(L, 2);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_bmm(a, b, out));
    return 1;
}

/* linear(w [, b]): x @ w^T + b, w is (out, in). */
static int m_linear(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1), *w = rtb_check(L, 2);
    struct rt_tensor *b = lua_isnoneornil(L, 3) ? NULL : rtb_check(L, 3);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_linear(x, w, b, out));
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* indexing with 1-based i64 index tensors */

static int m_index_select(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, x->ndim);
    struct rt_tensor *idx = index_arg(L, 3, "indexSelect", x->shape[dim]);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_index_select(x, dim, idx, out));
    return 1;
}

static int m_gather(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, x->ndim);
    struct rt_tensor *idx = index_arg(L, 3, "gather", x->shape[dim]);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_gather(x, dim, idx, out));
    return 1;
}

/* scatterAdd(dim, index, src): a copy of x with src added at the 1-based positions. */
static int m_scatter_add(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, x->ndim);
    struct rt_tensor *src = rtb_check(L, 4);
    struct rt_tensor *idx = index_arg(L, 3, "scatterAdd", x->shape[dim]);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_scatter_add(x, dim, idx, src, out));
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* in-place: return self */

static int m_zero_(lua_State *L)
{
    RTB_CALL(L, rt_zero_(rtb_check(L, 1)));
    lua_settop(L, 1);
    return 1;
}

static int m_fill_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    RTB_CALL(L, rt_fill_(t, luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

/* indexCopy_(dim, index, src): x's rows at the 1-based positions along dim replaced by src's, in place */
static int m_index_copy_(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, x->ndim);
    struct rt_tensor *src = rtb_check(L, 4);
    struct rt_tensor *idx = index_arg(L, 3, "indexCopy_", x->shape[dim]);
    RTB_CALL(L, rt_index_copy_(x, dim, idx, src));
    lua_settop(L, 1);
    return 1;
}

static int m_copy_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1), *src = rtb_check(L, 2);
    RTB_CALL(L, rt_copy_(t, src));
    lua_settop(L, 1);
    return 1;
}

/* add_(number) or add_(tensor [, alpha]): x += alpha * other. sub_ is the same with -alpha. */
static int add_inplace(lua_State *L, double sign)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor *o = rtb_test(L, 2);
    if (o) {
        double alpha = luaL_optnumber(L, 3, 1.0);
        RTB_CALL(L, rt_add_(t, o, sign * alpha));
    } else if (lua_type(L, 2) == LUA_TNUMBER) {
        RTB_CALL(L, rt_add_scalar_(t, sign * lua_tonumber(L, 2)));
    } else {
        return luaL_typeerror(L, 2, "retort.Tensor or number");
    }
    lua_settop(L, 1);
    return 1;
}

static int m_add_(lua_State *L) { return add_inplace(L, 1.0); }
static int m_sub_(lua_State *L) { return add_inplace(L, -1.0); }

static int m_mul_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    RTB_CALL(L, rt_mul_scalar_(t, luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_uniform_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double lo = luaL_optnumber(L, 2, 0.0), hi = luaL_optnumber(L, 3, 1.0);
    if (!(lo <= hi))
        return luaL_argerror(L, 3, "upper bound must be >= lower bound");
    RTB_CALL(L, rt_uniform_(t, NULL, lo, hi));
    lua_settop(L, 1);
    return 1;
}

static int m_normal_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double mean = luaL_optnumber(L, 2, 0.0), std = luaL_optnumber(L, 3, 1.0);
    if (!(std >= 0))
        return luaL_argerror(L, 3, "std must be >= 0");
    RTB_CALL(L, rt_normal_(t, NULL, mean, std));
    lua_settop(L, 1);
    return 1;
}

static int m_bernoulli_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    double p = luaL_optnumber(L, 2, 0.5);
    if (!(p >= 0 && p <= 1))
        return luaL_argerror(L, 2, "probability p must be in [0, 1]");
    RTB_CALL(L, rt_bernoulli_(t, NULL, p));
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* module functions: cat, stack, where */

static struct rt_tensor **tensor_list(lua_State *L, int arg, int *n_out)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer n = luaL_len(L, arg);
    if (n < 1)
        luaL_argerror(L, arg, "expected a non-empty list of tensors");
    if (n > INT32_MAX / 2)
        luaL_argerror(L, arg, "too many tensors");
    struct rt_tensor **xs = lua_newuserdatauv(L, (size_t)n * sizeof *xs, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        struct rtb_tensor *u = luaL_testudata(L, -1, RTB_TENSOR_MT);
        if (!u || !u->t)
            luaL_argerror(L, arg, lua_pushfstring(L, "element %I is not an open retort.Tensor (got %s)", i + 1,
                                                  luaL_typename(L, -1)));
        xs[i] = u->t; /* kept alive by the list */
        lua_pop(L, 1);
    }
    *n_out = (int)n;
    return xs;
}

/* cat(list [, dim]): join along an existing dim (default 1). */
static int f_cat(lua_State *L)
{
    int n;
    lua_settop(L, 2); /* the list's pointer buffer goes above the arguments */
    struct rt_tensor **xs = tensor_list(L, 1, &n);
    int dim = rtb_opt_dim(L, 2, xs[0]->ndim, 0);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_cat(n, xs, dim, out));
    return 1;
}

/* stack(list [, dim]): join along a new dim (default 1; up to ndim+1). */
static int f_stack(lua_State *L)
{
    int n;
    lua_settop(L, 2); /* the list's pointer buffer goes above the arguments */
    struct rt_tensor **xs = tensor_list(L, 1, &n);
    int dim = rtb_opt_dim(L, 2, xs[0]->ndim + 1, 0);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_stack(n, xs, dim, out));
    return 1;
}

/* accumulate_(acc, values, weights, slots): acc[slots[i]] += weights[i] * values[i] in one kernel
 * (acc an f64 vector, values one-element tensors, slots 1-based and distinct). Returns acc. */
static int f_accumulate_(lua_State *L)
{
    struct rt_tensor *acc = rtb_check(L, 1);
    int n;
    lua_settop(L, 4); /* the list's pointer buffer goes above the arguments */
    struct rt_tensor **v = tensor_list(L, 2, &n);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_checktype(L, 4, LUA_TTABLE);
    if (n > RT_ACCUMULATE_MAX)
        luaL_argerror(L, 2, lua_pushfstring(L, "at most %d values at a time, got %d", RT_ACCUMULATE_MAX, n));
    if (luaL_len(L, 3) != n || luaL_len(L, 4) != n)
        luaL_argerror(L, 3, lua_pushfstring(L, "weights and slots must list one entry per value (%d), got %d and %d",
                                            n, (int)luaL_len(L, 3), (int)luaL_len(L, 4)));
    double w[RT_ACCUMULATE_MAX];
    int64_t slot[RT_ACCUMULATE_MAX];
    for (int i = 0; i < n; i++) {
        lua_geti(L, 3, i + 1);
        lua_geti(L, 4, i + 1);
        int isnum, isint;
        w[i] = lua_tonumberx(L, -2, &isnum);
        lua_Integer s = lua_tointegerx(L, -1, &isint);
        if (!isnum)
            luaL_argerror(L, 3, lua_pushfstring(L, "weight %d is not a number", i + 1));
        if (!isint)
            luaL_argerror(L, 4, lua_pushfstring(L, "slot %d is not an integer", i + 1));
        slot[i] = (int64_t)s - 1;
        lua_pop(L, 2);
    }
    RTB_CALL(L, rt_accumulate_(acc, n, v, w, slot));
    lua_pushvalue(L, 1);
    return 1;
}

/* where(cond, a, b): cond (u8, nonzero -> a) ? a : b; a or b may be numbers. */
static int f_where(lua_State *L)
{
    struct rt_tensor *cond = rtb_check(L, 1);
    struct rt_tensor *a = rtb_test(L, 2), *b = rtb_test(L, 3);
    if (!a)
        a = operand(L, 2, b);
    if (!b)
        b = operand(L, 3, a);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_where(cond, a, b, out));
    return 1;
}

static const luaL_Reg meta[] = {{"__add", mm_add}, {"__sub", mm_sub}, {"__mul", mm_mul},
                                {"__div", mm_div}, {"__unm", m_neg},  {"__pow", mm_pow},
                                {NULL, NULL}};

static const luaL_Reg methods[] = {
    {"add", m_add},           {"sub", m_sub},
    {"mul", m_mul},           {"div", m_div},
    {"pow", m_pow},           {"neg", m_neg},
    {"affine", m_affine},
    {"exp", m_exp},           {"log", m_log},
    {"sqrt", m_sqrt},         {"abs", m_abs},
    {"relu", m_relu},         {"sigmoid", m_sigmoid},
    {"tanh", m_tanh},         {"reciprocal", m_reciprocal},
    {"clamp", m_clamp},       {"maximum", m_maximum},
    {"minimum", m_minimum},   {"eq", m_eq},
    {"ne", m_ne},             {"lt", m_lt},
    {"le", m_le},             {"gt", m_gt},
    {"ge", m_ge},             {"sum", m_sum},
    {"mean", m_mean},         {"logsumexp", m_logsumexp},
    {"norm", m_norm},         {"max", m_max},
    {"min", m_min},           {"argmax", m_argmax},
    {"argmin", m_argmin},     {"softmax", m_softmax},
    {"logSoftmax", m_log_softmax}, {"matmul", m_matmul},
    {"bmm", m_bmm},           {"linear", m_linear},
    {"indexSelect", m_index_select}, {"gather", m_gather},
    {"scatterAdd", m_scatter_add}, {"indexCopy_", m_index_copy_}, {"zero_", m_zero_},
    {"fill_", m_fill_},       {"copy_", m_copy_},
    {"add_", m_add_},         {"sub_", m_sub_},
    {"mul_", m_mul_},         {"uniform_", m_uniform_},
    {"normal_", m_normal_},   {"bernoulli_", m_bernoulli_},
    {NULL, NULL}};

static const luaL_Reg funcs[] = {
    {"cat", f_cat}, {"stack", f_stack}, {"where", f_where}, {"accumulate_", f_accumulate_}, {NULL, NULL}};

void rtb_open_ops(lua_State *L, int methods_idx, int module_idx)
{
    luaL_getmetatable(L, RTB_TENSOR_MT);
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
    rtb_register(L, methods_idx, methods);
    rtb_register(L, module_idx, funcs);
}
