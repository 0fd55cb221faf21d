/* readCifar on the module table (core: rt_cifar_read in retort/data.h).
 *
 *   readCifar(paths, variant [, labels = "fine"])  -> x, y
 *     paths    a list of file names read in order (CIFAR-10's data_batch_1..5.bin, or one file)
 *     variant  10 or 100 (the record layout: 1 label byte, or coarse + fine label bytes)
 *     labels   "fine" or "coarse" (CIFAR-100 only)
 *     x        u8 (N, 3, 32, 32), y i64 (N) with classes 1..C (the files hold 0-based ids; Lua is
 *              1-based, as everywhere in retort)
 * The Lua dataset (lua/retort/data/cifar.lua) finds the files and the class names. */
#include "bind_internal.h"
#include "retort/data.h"

static int f_read_cifar(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer variant = luaL_checkinteger(L, 2);
    static const char *const kinds[] = {"fine", "coarse", NULL};
    int coarse = luaL_checkoption(L, 3, "fine", kinds);
    if (variant != 10 && variant != 100)
        return luaL_argerror(L, 2, "variant must be 10 or 100");
    if (coarse && variant != 100)
        return luaL_argerror(L, 3, "coarse labels exist in CIFAR-100 only");
    lua_Integer n = luaL_len(L, 1);
    if (n < 1 || n > RT_CIFAR_MAX_FILES)
        return luaL_argerror(L, 1, lua_pushfstring(L, "a list of 1..%d file names expected, got %I",
                                                   RT_CIFAR_MAX_FILES, n));
    const char *paths[RT_CIFAR_MAX_FILES];
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 1, lua_pushfstring(L, "entry %I is a %s, a file name expected", i,
                                                       luaL_typename(L, -1)));
        paths[i - 1] = lua_tostring(L, -1); /* the string stays referenced by the table */
        lua_pop(L, 1);
    }
    struct rt_tensor **x = rtb_slot(L);
    struct rt_tensor **y = rtb_slot(L);
    RTB_CALL(L, rt_cifar_read(paths, (int)n, (int)variant, coarse != 0, x, y));
    RTB_CALL(L, rt_add_scalar_(*y, 1));
    return 2;
}

static const luaL_Reg funcs[] = {{"readCifar", f_read_cifar}, {NULL, NULL}};

void rtb_open_cifar(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
