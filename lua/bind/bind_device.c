/* Device functions of retort.core: deviceAvailable, deviceDescribe, synchronize, deviceMemory,
 * resetPeakMemory, emptyCache, setSyncDebug, deviceWaits,
 * deviceLaunches. lua/retort/cuda.lua wraps them as retort.cuda. */
#include <string.h>

#include "bind_internal.h"

enum rt_device rtb_check_device(lua_State *L, int arg)
{
    const char *d = luaL_checkstring(L, arg);
    if (strcmp(d, "cpu") == 0)
        return RT_CPU;
    if (strcmp(d, "cuda") == 0)
        return RT_CUDA;
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown device '%s' (expected \"cpu\" or \"cuda\")", d));
    return RT_CPU; /* not reached */
}

/* deviceAvailable(dev) -> true | false, why */
static int f_available(lua_State *L)
{
    const char *why = NULL;
    bool ok = rt_device_available(rtb_check_device(L, 1), &why);
    lua_pushboolean(L, ok);
    if (ok)
        return 1;
    lua_pushstring(L, why);
    return 2;
}

/* deviceDescribe(dev) -> one line naming the hardware ("" when unavailable) */
static int f_describe(lua_State *L)
{
    lua_pushstring(L, rt_device_describe(rtb_check_device(L, 1)));
    return 1;
}

static int f_synchronize(lua_State *L)
{
    RTB_CALL(L, rt_device_synchronize(rtb_check_device(L, 1)));
    return 0;
}

/* deviceMemory(dev) -> {inUse, peakInUse, cached, peakReserved} in bytes */
static int f_memory(lua_State *L)
{
    struct rt_device_memory m;
    rt_device_memory(rtb_check_device(L, 1), &m);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)m.in_use);
    lua_setfield(L, -2, "inUse");
    lua_pushinteger(L, (lua_Integer)m.peak_in_use);
    lua_setfield(L, -2, "peakInUse");
    lua_pushinteger(L, (lua_Integer)m.cached);
    lua_setfield(L, -2, "cached");
    lua_pushinteger(L, (lua_Integer)m.peak_reserved);
    lua_setfield(L, -2, "peakReserved");
    return 1;
}

static int f_reset_peak(lua_State *L)
{
    rt_device_reset_peak(rtb_check_device(L, 1));
    return 0;
}

/* emptyCache(dev) -> bytes given back */
static int f_empty_cache(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rt_device_empty_cache(rtb_check_device(L, 1)));
    return 1;
}

/* deviceWaits(dev) -> times the host has waited for dev (reads of its memory, synchronize) */
static int f_waits(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rt_device_waits(rtb_check_device(L, 1)));
    return 1;
}

/* deviceLaunches(dev) -> work queued on dev so far (kernels, library calls, copies); 0 if not counted */
static int f_launches(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rt_device_launches(rtb_check_device(L, 1)));
    return 1;
}

static int f_set_sync_debug(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    rt_device_set_sync_debug(lua_toboolean(L, 1));
    return 0;
}

static const luaL_Reg funcs[] = {{"deviceAvailable", f_available}, {"deviceDescribe", f_describe},
                                 {"synchronize", f_synchronize},    {"deviceMemory", f_memory},
                                 {"resetPeakMemory", f_reset_peak}, {"emptyCache", f_empty_cache},
                                 {"setSyncDebug", f_set_sync_debug}, {"deviceWaits", f_waits},
                                 {"deviceLaunches", f_launches},
                                 {NULL, NULL}};

void rtb_open_device(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
