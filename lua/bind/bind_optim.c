/* Fused optimizer updates for the Lua optimizers (lua/retort/optim/). */
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

/* sgdUpdate(p, g, buf|nil, {lr=, momentum=, dampening=, weightDecay=, nesterov=, first=}) */
static int f_sgd_update(lua_State *L)
{
    struct rt_tensor *p = rtb_check(L, 1), *g = rtb_check(L, 2);
    struct rt_tensor *buf = lua_isnoneornil(L, 3) ? NULL : rtb_check(L, 3);
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
    RTB_CALL(L, rt_sgd_update_(p, g, buf, &o));
    return 0;
}

static const luaL_Reg funcs[] = {{"sgdUpdate", f_sgd_update}, {NULL, NULL}};

void rtb_open_optim(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
