/* Fused optimizer updates for the Lua optimizers (lua/retort/optim/). */
#include <limits.h>

#include "bind_internal.h"

static double opt_number(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = luaL_optnumber(L, -1, def);
    lua_pop(L, 1);
    return v;
}

static bool opt_bool(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    bool v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The tensor at index i of the list at arg (an argument error naming the list otherwise). */
static struct rt_tensor *list_tensor(lua_State *L, int arg, lua_Integer i, const char *what)
{
    lua_geti(L, arg, i);
    struct rt_tensor *t = rtb_test(L, -1);
    if (!t)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s[%I] must be a retort.Tensor, got %s", what, i,
                                              luaL_typename(L, -1)));
    lua_pop(L, 1); /* the list keeps it alive */
    return t;
}

/* The list at arg, which must hold n entries (what: the entries' name in the error). */
static void check_list(lua_State *L, int arg, lua_Integer n, const char *what)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    if (luaL_len(L, arg) != n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%I %s for %I parameters", luaL_len(L, arg), what, n));
}

/* sgdUpdate(p, g, buf|nil, {lr=, momentum=, dampening=, weightDecay=, nesterov=, first=}), or with
 * lists {p...}, {g...}, {buf...}|nil and first a boolean or a list of them: every parameter in one
 * call (one launch on a GPU). */
static int f_sgd_update(lua_State *L)
{
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "lr");
    if (!lua_isnumber(L, -1))
        return luaL_argerror(L, 4, "field 'lr' must be a number");
    lua_pop(L, 1);
    struct rt_sgd_opts o = {
        .lr = opt_number(L, 4, "lr", 0), .momentum = opt_number(L, 4, "momentum", 0),
        .dampening = opt_number(L, 4, "dampening", 0), .weight_decay = opt_number(L, 4, "weightDecay", 0),
        .nesterov = opt_bool(L, 4, "nesterov"), .first = opt_bool(L, 4, "first"),
    };
    bool has_buf = !lua_isnoneornil(L, 3);
    if (!lua_istable(L, 1)) {
        struct rt_tensor *p = rtb_check(L, 1), *g = rtb_check(L, 2), *buf = has_buf ? rtb_check(L, 3) : NULL;
        RTB_CALL(L, rt_sgd_update_(p, g, buf, &o));
        return 0;
    }
    lua_Integer n = luaL_len(L, 1);
    check_list(L, 2, n, "gradients");
    if (has_buf)
        check_list(L, 3, n, "buffers");
    if (n > INT_MAX / 4)
        return luaL_argerror(L, 1, "too many parameters");
    /* one block for the four arrays, a userdata: collected if an error unwinds past it */
    size_t k = (size_t)(n > 0 ? n : 1);
    struct rt_tensor **ps = lua_newuserdatauv(L, k * (3 * sizeof(struct rt_tensor *) + sizeof(bool)), 0);
    struct rt_tensor **gs = ps + k, **bs = gs + k;
    bool *first = (bool *)(bs + k);
    lua_getfield(L, 4, "first");
    bool listed = lua_istable(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        ps[i - 1] = list_tensor(L, 1, i, "params");
        gs[i - 1] = list_tensor(L, 2, i, "grads");
        bs[i - 1] = has_buf ? list_tensor(L, 3, i, "buffers") : NULL;
        if (listed) {
            lua_geti(L, -1, i);
            first[i - 1] = lua_toboolean(L, -1);
            lua_pop(L, 1);
        } else
            first[i - 1] = o.first;
    }
    RTB_CALL(L, rt_sgd_update_many_((int)n, ps, gs, has_buf ? bs : NULL, first, &o));
    return 0;
}

/* adamUpdate({p...}, {g...}, {m...}, {v...}, {vmax...}|nil, {t...}, {lr=, beta1=, beta2=, eps=,
 * weightDecay=, amsgrad=, decoupled=}): one fused Adam/AdamW step of every parameter (t: each one's
 * step count including this step) */
static int f_adam_update(lua_State *L)
{
    luaL_checktype(L, 7, LUA_TTABLE);
    struct rt_adam_opts o = {
        .lr = opt_number(L, 7, "lr", 1e-3), .beta1 = opt_number(L, 7, "beta1", 0.9),
        .beta2 = opt_number(L, 7, "beta2", 0.999), .eps = opt_number(L, 7, "eps", 1e-8),
        .weight_decay = opt_number(L, 7, "weightDecay", 0), .amsgrad = opt_bool(L, 7, "amsgrad"),
        .decoupled = opt_bool(L, 7, "decoupled"),
    };
    static const char *const names[] = {"params", "grads", "firstMoments", "secondMoments", "maxima", "steps"};
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    bool has_max = !lua_isnoneornil(L, 5);
    for (int a = 2; a <= 6; a++)
        if (a != 5 || has_max)
            check_list(L, a, n, names[a - 1]);
    if (o.amsgrad && !has_max)
        return luaL_argerror(L, 5, "amsgrad needs the running maxima");
    if (n > INT_MAX / 8)
        return luaL_argerror(L, 1, "too many parameters");
    size_t k = (size_t)(n > 0 ? n : 1);
    struct rt_tensor **ts = lua_newuserdatauv(L, k * (5 * sizeof(struct rt_tensor *) + sizeof(int64_t)), 0);
    int64_t *steps = (int64_t *)(ts + 5 * k);
    for (lua_Integer i = 1; i <= n; i++) {
        for (int a = 0; a < 5; a++)
            ts[(size_t)a * k + (size_t)(i - 1)] = a == 4 && !has_max ? NULL : list_tensor(L, a + 1, i, names[a]);
        lua_geti(L, 6, i);
        if (!lua_isinteger(L, -1))
            return luaL_argerror(L, 6, lua_pushfstring(L, "steps[%I] must be an integer", i));
        steps[i - 1] = (int64_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    RTB_CALL(L, rt_adam_update_many_((int)n, ts, ts + k, ts + 2 * k, ts + 3 * k, has_max ? ts + 4 * k : NULL, steps,
                                     &o));
    return 0;
}

static const luaL_Reg funcs[] = {{"sgdUpdate", f_sgd_update}, {"adamUpdate", f_adam_update}, {NULL, NULL}};

void rtb_open_optim(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
