/* Neural-network ops as tensor methods and module functions (core/include/retort/nn_ops.h):
 *   x:conv2d(w, b, {stride=, padding=, dilation=, groups=})   each pair a number or {h, w}; b may be nil
 *   x:maxPool2d(k, {stride=k, padding=0})    x:avgPool2d(k, {stride=k, padding=0, countIncludePad=true})
 *   x:adaptiveAvgPool2d(oh [, ow])           x:batchNorm(runningMean, runningVar, weight, bias,
 *                                                        {training=true, momentum=0.1, eps=1e-5})
 *   x:dropout(p=0.5, training=true)          x:leakyRelu(slope=0.01)
 *   x:attentionMap(p=2)                      (N, H*W) rows of normalize(mean_c x^p), attention transfer
 *   x:pairwise(kind="gram", eps=0)           (N, N) "gram" x x^T, "cosine", "distance" (retort/loss.h)
 *   crossEntropy(logits, labels, {weights=, ignoreIndex=, labelSmoothing=0, reduction="mean"})
 *   nllLoss(logp, labels, {weights=, ignoreIndex=, reduction=})   mseLoss(a, b, {reduction=})
 *   kdLoss(s, t, labels or nil, {T=4, alpha=1, ignoreIndex=, teacherProbs=false, weights=}) -> loss, terms
 * Labels are 1-based (1..C), as an i64 tensor or a Lua table of integers; ignoreIndex lives in the
 * same 1-based label space (0 ignores samples labelled 0). The binding checks them and hands the
 * core 0-based labels. Dropout draws from the default generator (retort.manualSeed). */
#include <string.h>

#include "bind_internal.h"

/* The options table at arg (nil/none: no options). Leaves nothing on the stack. */
static bool opts_at(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return false;
    luaL_checktype(L, arg, LUA_TTABLE);
    return true;
}

/* value at stack top: a positive/non-negative integer pair from a number or {h, w} */
static bool pair_value(lua_State *L, int idx, int64_t out[2])
{
    if (lua_isinteger(L, idx)) {
        out[0] = out[1] = (int64_t)lua_tointeger(L, idx);
        return true;
    }
    if (!lua_istable(L, idx) || luaL_len(L, idx) != 2)
        return false;
    for (int i = 0; i < 2; i++) {
        lua_geti(L, idx, i + 1);
        bool ok = lua_isinteger(L, -1);
        out[i] = ok ? (int64_t)lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
        if (!ok)
            return false;
    }
    return true;
}

/* the pair at arg (a number or {h, w}) */
static void check_pair(lua_State *L, int arg, const char *what, int64_t out[2])
{
    if (!pair_value(L, arg, out))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or {h, w}", what));
}

/* opts[key] as a pair (def when absent) */
static void opt_pair(lua_State *L, int arg, bool has, const char *key, const int64_t def[2], int64_t out[2])
{
    out[0] = def[0], out[1] = def[1];
    if (!has)
        return;
    lua_getfield(L, arg, key);
    if (!lua_isnil(L, -1) && !pair_value(L, -1, out))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or {h, w}", key));
    lua_pop(L, 1);
}

static lua_Number opt_number(lua_State *L, int arg, bool has, const char *key, lua_Number def)
{
    if (!has)
        return def;
    lua_getfield(L, arg, key);
    lua_Number v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a number", key));
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static bool opt_bool(lua_State *L, int arg, bool has, const char *key, bool def)
{
    if (!has)
        return def;
    lua_getfield(L, arg, key);
    bool v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* opts[key]: a tensor or nil (kept referenced by the options table while we run) */
static struct rt_tensor *opt_tensor(lua_State *L, int arg, bool has, const char *key)
{
    if (!has)
        return NULL;
    lua_getfield(L, arg, key);
    struct rt_tensor *t = NULL;
    if (!lua_isnil(L, -1) && !(t = rtb_test(L, -1)))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a retort.Tensor", key));
    lua_pop(L, 1);
    return t;
}

/* a tensor or nil at arg */
static struct rt_tensor *opt_tensor_arg(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NULL : rtb_check(L, arg);
}

static enum rt_reduction opt_reduction(lua_State *L, int arg, bool has)
{
    if (!has)
        return RT_REDUCE_MEAN;
    lua_getfield(L, arg, "reduction");
    enum rt_reduction r = RT_REDUCE_MEAN;
    if (!lua_isnil(L, -1)) {
        const char *s = lua_tostring(L, -1);
        if (s && !strcmp(s, "mean"))
            r = RT_REDUCE_MEAN;
        else if (s && !strcmp(s, "sum"))
            r = RT_REDUCE_SUM;
        else if (s && !strcmp(s, "none"))
            r = RT_REDUCE_NONE;
        else
            luaL_argerror(L, arg, lua_pushfstring(L, "reduction must be \"mean\", \"sum\" or \"none\", got %s",
                                                  s ? s : luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return r;
}

/* ------------------------------------------------------------------------------------------ */

static int m_conv2d(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1), *w = rtb_check(L, 2), *b = opt_tensor_arg(L, 3);
    bool has = opts_at(L, 4);
    int64_t stride[2], padding[2], dilation[2];
    opt_pair(L, 4, has, "stride", (const int64_t[2]){1, 1}, stride);
    opt_pair(L, 4, has, "padding", (const int64_t[2]){0, 0}, padding);
    opt_pair(L, 4, has, "dilation", (const int64_t[2]){1, 1}, dilation);
    lua_Number groups = opt_number(L, 4, has, "groups", 1);
    if (groups != (lua_Number)(int64_t)groups)
        luaL_argerror(L, 4, "groups must be an integer");
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_conv2d(x, w, b, stride, padding, dilation, (int64_t)groups, out));
    return 1;
}

static int pool(lua_State *L, bool max)
{
    struct rt_tensor *x = rtb_check(L, 1);
    int64_t k[2], stride[2], padding[2];
    check_pair(L, 2, "kernel size", k);
    bool has = opts_at(L, 3);
    opt_pair(L, 3, has, "stride", k, stride);
    opt_pair(L, 3, has, "padding", (const int64_t[2]){0, 0}, padding);
    bool cip = opt_bool(L, 3, has, "countIncludePad", true);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, max ? rt_max_pool2d(x, k, stride, padding, out, NULL) : rt_avg_pool2d(x, k, stride, padding, cip, out));
    return 1;
}
static int m_max_pool2d(lua_State *L) { return pool(L, true); }
static int m_avg_pool2d(lua_State *L) { return pool(L, false); }

static int m_adaptive_avg_pool2d(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    lua_Integer oh = luaL_checkinteger(L, 2), ow = luaL_optinteger(L, 3, oh);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_adaptive_avg_pool2d(x, (int64_t)oh, (int64_t)ow, out));
    return 1;
}

static int m_batch_norm(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    struct rt_tensor *rm = opt_tensor_arg(L, 2), *rv = opt_tensor_arg(L, 3), *w = opt_tensor_arg(L, 4),
                     *b = opt_tensor_arg(L, 5);
    bool has = opts_at(L, 6);
    bool training = opt_bool(L, 6, has, "training", true);
    double momentum = opt_number(L, 6, has, "momentum", 0.1), eps = opt_number(L, 6, has, "eps", 1e-5);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_batch_norm(x, rm, rv, w, b, training, momentum, eps, out));
    return 1;
}

static int m_dropout(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    double p = luaL_optnumber(L, 2, 0.5);
    bool training = lua_isnoneornil(L, 3) ? true : lua_toboolean(L, 3);
    if (!(p >= 0 && p <= 1))
        return luaL_argerror(L, 2, lua_pushfstring(L, "p must be in [0, 1], got %f", p));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_dropout(x, p, training, NULL, out));
    return 1;
}

static int m_leaky_relu(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    double slope = luaL_optnumber(L, 2, 0.01);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_leaky_relu(x, slope, out));
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* losses */

/* 1-based labels at arg (an i64 tensor, or a table of integers) -> 0-based labels on like's device,
 * checked against [1, C] (ignore1 passes when has_ignore) on that device: no wait for a GPU, which
 * reports a bad label at the next wait instead. */
static struct rt_tensor *labels_arg(lua_State *L, int arg, const char *op, const struct rt_tensor *like,
                                    bool has_ignore, lua_Integer ignore1)
{
    int64_t C = like->ndim == 2 ? like->shape[1] : 0;
    struct rt_tensor *t = rtb_test(L, arg);
    if (t) {
        if (t->dtype != RT_I64)
            luaL_argerror(L, arg, lua_pushfstring(L, "labels must be i64 (a retort.LongTensor), got %s (use :long())",
                                                  rt_dtype_name(t->dtype)));
        if (t->ndim != 1)
            luaL_argerror(L, arg, "labels must be a 1-D tensor");
    } else if (lua_istable(L, arg)) {
        int64_t n = (int64_t)luaL_len(L, arg);
        int64_t *buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *buf, 0);
        for (int64_t i = 0; i < n; i++) {
            lua_geti(L, arg, (lua_Integer)(i + 1));
            if (!lua_isinteger(L, -1))
                luaL_argerror(L, arg, lua_pushfstring(L, "label %I is not an integer", (lua_Integer)(i + 1)));
            buf[i] = (int64_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        struct rt_tensor **host = rtb_slot(L), **moved = host;
        RTB_CALL(L, rt_tensor_from_data(RT_I64, 1, &n, buf, host));
        if (rt_tensor_device(like) != RT_CPU) {
            moved = rtb_slot(L);
            RTB_CALL(L, rt_to_device(*host, rt_tensor_device(like), moved));
        }
        t = *moved;
    } else
        return (luaL_typeerror(L, arg, "retort.LongTensor or table of labels"), NULL);
    struct rt_tensor **slot = rtb_slot(L);
    RTB_CALL(L, rt_index_rebase(t, 1, C, has_ignore ? (int64_t)ignore1 : RT_NO_IGNORE, op, "label", slot));
    return *slot;
}

/* opts.ignoreIndex at arg: true and the 1-based label in *ignore1 when given */
static bool opt_ignore(lua_State *L, int arg, bool has, lua_Integer *ignore1)
{
    bool given = false;
    *ignore1 = 0;
    if (!has)
        return false;
    lua_getfield(L, arg, "ignoreIndex");
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1))
            luaL_argerror(L, arg, "ignoreIndex must be an integer (a 1-based label)");
        *ignore1 = lua_tointeger(L, -1);
        given = *ignore1 != LUA_MININTEGER;
    }
    lua_pop(L, 1);
    return given;
}

static int class_loss(lua_State *L, bool ce)
{
    struct rt_tensor *x = rtb_check(L, 1);
    bool has = opts_at(L, 3);
    struct rt_tensor *w = opt_tensor(L, 3, has, "weights");
    lua_Integer ignore1;
    bool has_ignore = opt_ignore(L, 3, has, &ignore1);
    double smoothing = ce ? opt_number(L, 3, has, "labelSmoothing", 0) : 0;
    enum rt_reduction red = opt_reduction(L, 3, has);
    if (x->ndim != 2) {
        char b[RT_SHAPE_STR_MAX];
        return luaL_argerror(L, 1, lua_pushfstring(L, "expected scores (N, C), got %s",
                                                   rt_shape_str(x->ndim, x->shape, b, sizeof b)));
    }
    struct rt_tensor *lab = labels_arg(L, 2, ce ? "crossEntropy" : "nllLoss", x, has_ignore, ignore1);
    int64_t ignore0 = has_ignore ? (int64_t)ignore1 - 1 : RT_NO_IGNORE;
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, ce ? rt_cross_entropy(x, lab, w, ignore0, smoothing, red, out)
                   : rt_nll_loss(x, lab, w, ignore0, red, out));
    return 1;
}
static int f_cross_entropy(lua_State *L) { return class_loss(L, true); }
static int f_nll_loss(lua_State *L) { return class_loss(L, false); }

/* kdLoss(s, t, labels or nil, {T=4, alpha=1, ignoreIndex=, teacherProbs=false, weights=})
 *   -> loss, {kl = unscaled KL mean, ce = CE mean, kept = samples counted, klScaled = kl * T^2}:
 *   0-dim tensors on the loss's device (:item() reads one; on a GPU that waits, so a training step
 *   should not) */
static int f_kd_loss(lua_State *L)
{
    struct rt_tensor *s = rtb_check(L, 1), *t = rtb_check(L, 2);
    bool has = opts_at(L, 4);
    lua_Integer ignore1;
    bool has_ignore = opt_ignore(L, 4, has, &ignore1);
    struct rt_kd_opts o = {
        .T = opt_number(L, 4, has, "T", 4),
        .alpha = opt_number(L, 4, has, "alpha", 1),
        .ignore_index = has_ignore ? (int64_t)ignore1 - 1 : RT_NO_IGNORE,
        .teacher_probs = opt_bool(L, 4, has, "teacherProbs", false),
    };
    struct rt_tensor *w = opt_tensor(L, 4, has, "weights");
    if (s->ndim != 2) {
        char b[RT_SHAPE_STR_MAX];
        return luaL_argerror(L, 1, lua_pushfstring(L, "expected student logits (batch, classes), got %s",
                                                   rt_shape_str(s->ndim, s->shape, b, sizeof b)));
    }
    struct rt_tensor *lab = lua_isnoneornil(L, 3) ? NULL : labels_arg(L, 3, "kdLoss", s, has_ignore, ignore1);
    struct rt_tensor **out = rtb_slot(L);
    int loss_at = lua_gettop(L);
    struct rt_tensor **kl = rtb_slot(L), **ce = rtb_slot(L), **kept = rtb_slot(L), **kls = rtb_slot(L);
    struct rt_kd_terms terms;
    RTB_CALL(L, rt_kd_loss(s, t, lab, w, &o, out, &terms));
    *kl = terms.kl, *ce = terms.ce, *kept = terms.kept, *kls = terms.kl_scaled;
    lua_createtable(L, 0, 4);
    static const char *const names[] = {"kl", "ce", "kept", "klScaled"};
    for (int i = 0; i < 4; i++) {
        lua_pushvalue(L, loss_at + 1 + i);
        lua_setfield(L, -2, names[i]);
    }
    lua_pushvalue(L, loss_at);
    lua_insert(L, -2);
    return 2;
}

static int f_mse_loss(lua_State *L)
{
    struct rt_tensor *a = rtb_check(L, 1), *b = rtb_check(L, 2);
    enum rt_reduction red = opt_reduction(L, 3, opts_at(L, 3));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_mse_loss(a, b, red, out));
    return 1;
}

/* countCorrect(scores, labels) -> 0-dim tensor: rows whose largest score is at their (1-based) label */
static int f_count_correct(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1), *lab = rtb_check(L, 2);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_count_correct(x, lab, 1, out));
    return 1;
}

static int m_pairwise(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    static const char *const kinds[] = {"gram", "cosine", "distance", NULL};
    int kind = luaL_checkoption(L, 2, "gram", kinds);
    double eps = luaL_optnumber(L, 3, 0);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_pairwise(x, (enum rt_pairwise)kind, eps, out));
    return 1;
}

static int m_attention_map(lua_State *L)
{
    struct rt_tensor *f = rtb_check(L, 1);
    double p = luaL_optnumber(L, 2, 2);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_attention_map(f, p, out));
    return 1;
}

static const luaL_Reg methods[] = {{"conv2d", m_conv2d},
                                   {"attentionMap", m_attention_map}, {"pairwise", m_pairwise},
                                   {"maxPool2d", m_max_pool2d},
                                   {"avgPool2d", m_avg_pool2d},
                                   {"adaptiveAvgPool2d", m_adaptive_avg_pool2d},
                                   {"batchNorm", m_batch_norm},
                                   {"dropout", m_dropout},
                                   {"leakyRelu", m_leaky_relu},
                                   {NULL, NULL}};

static const luaL_Reg funcs[] = {
    {"crossEntropy", f_cross_entropy}, {"nllLoss", f_nll_loss}, {"mseLoss", f_mse_loss}, {"kdLoss", f_kd_loss},
    {"countCorrect", f_count_correct}, {NULL, NULL}};

void rtb_open_nn(lua_State *L, int methods_idx, int module_idx)
{
    rtb_register(L, methods_idx, methods);
    rtb_register(L, module_idx, funcs);
}
