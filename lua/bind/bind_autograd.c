/* Autograd from Lua: requiresGrad, backward, zeroGrad, the grad field (in bind_tensor.c's
 * __index/__newindex), and grad mode: noGrad(fn, ...) / noGrad() guards, isGradEnabled,
 * setGradEnabled.
 *
 *   local w = retort.randn(3, 2):requiresGrad()    -- sets the flag, returns w
 *   w:requiresGrad(false)                           -- clears it
 *   loss:backward()                                 -- root with one element: gradient 1
 *   y:backward(gradY [, retainGraph])               -- any root, with its gradient
 *   w.grad, w:zeroGrad() or w.grad = nil            -- accumulated gradient (nil until a backward)
 *   w:isLeaf(), w:gradFn() ("MatmulBackward" or nil), w:needsGrad()
 *
 * noGrad(fn, ...) runs fn(...) with grad mode off and returns its results; the previous mode is
 * restored when fn returns or raises (the error propagates). fn may yield (grad mode stays off
 * until it finishes). noGrad() with no
 * argument switches grad mode off and returns a to-be-closed guard that restores the previous
 * mode when closed:  local g <close> = retort.noGrad(). A guard that is never closed leaves grad
 * mode off (garbage collection does not restore it: when that would happen is unpredictable). */
#include "bind_internal.h"

struct guard {
    int prev;
    int active;
};

static int m_requires_grad(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    RTB_CALL(L, rt_requires_grad_(t, on));
    lua_settop(L, 1);
    return 1;
}

static int m_is_leaf(lua_State *L)
{
    lua_pushboolean(L, rtb_check(L, 1)->grad_fn == NULL);
    return 1;
}

static int m_needs_grad(lua_State *L)
{
    lua_pushboolean(L, rtb_check(L, 1)->requires_grad);
    return 1;
}

static int m_grad_fn(lua_State *L)
{
    const char *name = rt_tensor_grad_fn_name(rtb_check(L, 1));
    if (name)
        lua_pushstring(L, name);
    else
        lua_pushnil(L);
    return 1;
}

/* backward([grad [, retainGraph]]); backward(true) also means "retain the graph". */
static int m_backward(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor *grad = NULL;
    int retain = 0;
    if (lua_type(L, 2) == LUA_TBOOLEAN) {
        retain = lua_toboolean(L, 2);
    } else {
        if (!lua_isnoneornil(L, 2))
            grad = rtb_check(L, 2);
        retain = lua_toboolean(L, 3);
    }
    if (!grad && rt_tensor_numel(t) != 1) {
        char sh[RT_SHAPE_STR_MAX];
        return luaL_error(L,
                          "backward: the root has %I elements %s; a non-scalar root needs a gradient: "
                          "x:backward(gradOutput)",
                          (lua_Integer)rt_tensor_numel(t), rt_shape_str(t->ndim, t->shape, sh, sizeof sh));
    }
    RTB_CALL(L, rt_backward(t, grad, retain));
    return 0;
}

static int m_zero_grad(lua_State *L)
{
    rt_tensor_zero_grad(rtb_check(L, 1));
    lua_settop(L, 1);
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* grad mode */

static int no_grad_done(lua_State *L, int status, lua_KContext prev)
{
    rt_grad_set_enabled(prev != 0);
    if (status != LUA_OK && status != LUA_YIELD)
        return lua_error(L);
    return lua_gettop(L);
}

static int guard_close(lua_State *L)
{
    struct guard *g = luaL_checkudata(L, 1, RTB_GUARD_MT);
    if (g->active) {
        g->active = 0;
        rt_grad_set_enabled(g->prev != 0);
    }
    return 0;
}

static int guard_tostring(lua_State *L)
{
    struct guard *g = luaL_checkudata(L, 1, RTB_GUARD_MT);
    lua_pushstring(L, g->active ? "retort.GradGuard (grad off; restores on close)" : "retort.GradGuard (closed)");
    return 1;
}

static int f_no_grad(lua_State *L)
{
    if (lua_isnoneornil(L, 1)) {
        struct guard *g = lua_newuserdatauv(L, sizeof *g, 0);
        g->prev = rt_grad_enabled();
        g->active = 1;
        luaL_setmetatable(L, RTB_GUARD_MT);
        rt_grad_set_enabled(false);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_KContext prev = rt_grad_set_enabled(false);
    int status = lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, prev, no_grad_done);
    return no_grad_done(L, status, prev);
}

static int f_is_grad_enabled(lua_State *L)
{
    lua_pushboolean(L, rt_grad_enabled());
    return 1;
}

/* setGradEnabled(on) -> previous setting */
static int f_set_grad_enabled(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, rt_grad_set_enabled(lua_toboolean(L, 1)));
    return 1;
}

static const luaL_Reg methods[] = {{"requiresGrad", m_requires_grad}, {"isLeaf", m_is_leaf},
                                   {"needsGrad", m_needs_grad},       {"gradFn", m_grad_fn},
                                   {"backward", m_backward},          {"zeroGrad", m_zero_grad},
                                   {NULL, NULL}};

static const luaL_Reg funcs[] = {{"noGrad", f_no_grad},
                                 {"isGradEnabled", f_is_grad_enabled},
                                 {"setGradEnabled", f_set_grad_enabled},
                                 {NULL, NULL}};

static const luaL_Reg guard_meta[] = {{"__close", guard_close}, {"__tostring", guard_tostring}, {NULL, NULL}};

void rtb_open_autograd(lua_State *L, int methods_idx, int module_idx)
{
    if (luaL_newmetatable(L, RTB_GUARD_MT))
        luaL_setfuncs(L, guard_meta, 0);
    lua_pop(L, 1);
    rtb_register(L, methods_idx, methods);
    rtb_register(L, module_idx, funcs);
}
