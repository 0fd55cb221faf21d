/* Mixed precision from Lua: the autocast mode and the bf16 unit (retort/bf16.h).
 *
 *   retort.autocast("bf16", fn, ...)  -> fn(...)'s results, run with bf16 autocast on; the previous
 *                                        mode is restored when fn returns or raises (the error
 *                                        propagates). "f32" (or "off") runs fn with autocast off.
 *   retort.autocastMode()             -> "bf16" or "f32" (this thread's mode)
 *   retort.bf16Info()                 -> {unit = "amx" | "avx512_bf16" | nil, isa = oneDNN's ISA name,
 *                                         library = "oneDNN 2.6.3", available = bool,
 *                                         reason = why not (when unavailable), kernelCalls = bf16
 *                                         GEMMs and convolutions run so far (forward and backward)}
 * Asking for bf16 on a CPU without a bf16 unit raises "autocast_set: bf16 autocast needs a CPU bf16
 * unit: ..." (no silent f32 fallback: mixed precision that is not faster would only lose accuracy).
 * t:bf16() and t:to("bf16") live with the other conversions (bind_view.c). */
#include <string.h>

#include "bind_internal.h"

static enum rt_dtype check_mode(lua_State *L, int arg)
{
    const char *s = luaL_checkstring(L, arg);
    if (strcmp(s, "bf16") == 0 || strcmp(s, "bfloat16") == 0)
        return RT_BF16;
    if (strcmp(s, "f32") == 0 || strcmp(s, "float") == 0 || strcmp(s, "float32") == 0 || strcmp(s, "off") == 0)
        return RT_F32;
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown precision '%s' (expected \"bf16\" or \"f32\")", s));
    return RT_F32;
}

static int autocast_done(lua_State *L, int status, lua_KContext prev)
{
    rt_autocast_set((enum rt_dtype)prev, NULL); /* back to a mode that was set before: cannot fail */
    if (status != LUA_OK && status != LUA_YIELD)
        return lua_error(L);
    return lua_gettop(L) - 1;
}

static int f_autocast(lua_State *L)
{
    enum rt_dtype mode = check_mode(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    enum rt_dtype prev = RT_F32;
    RTB_CALL(L, rt_autocast_set(mode, &prev));
    /* stack: mode, fn, args...: call fn(args...) above the mode string */
    int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, (lua_KContext)prev, autocast_done);
    return autocast_done(L, status, (lua_KContext)prev);
}

static int f_autocast_mode(lua_State *L)
{
    lua_pushstring(L, rt_autocast_get() == RT_BF16 ? "bf16" : "f32");
    return 1;
}

static int f_bf16_info(lua_State *L)
{
    const char *isa = NULL, *lib = NULL, *why = NULL;
    const char *unit = rt_bf16_unit(&isa, &lib, &why);
    lua_createtable(L, 0, 6);
    if (unit) {
        lua_pushstring(L, unit);
        lua_setfield(L, -2, "unit");
    }
    lua_pushstring(L, isa);
    lua_setfield(L, -2, "isa");
    lua_pushstring(L, lib);
    lua_setfield(L, -2, "library");
    lua_pushboolean(L, unit != NULL);
    lua_setfield(L, -2, "available");
    if (why) {
        lua_pushstring(L, why);
        lua_setfield(L, -2, "reason");
    }
    lua_pushinteger(L, (lua_Integer)rt_bf16_kernel_calls());
    lua_setfield(L, -2, "kernelCalls");
    return 1;
}

static const luaL_Reg funcs[] = {
    {"autocast", f_autocast}, {"autocastMode", f_autocast_mode}, {"bf16Info", f_bf16_info}, {NULL, NULL}};

void rtb_open_bf16(lua_State *L, int module)
{
    lua_pushvalue(L, module);
    luaL_setfuncs(L, funcs, 0);
    lua_pop(L, 1);
}
