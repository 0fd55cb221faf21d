/* NumPy .npy files from Lua (core: rt_npy_read in retort/data.h, core/src/npy.c).
 *
 *   local x, descr = retort.core.readNpy("x.npy")   -- tensor with the file's shape, and the dtype as
 *                                                   -- written ("<f4", "|u1", ...)
 * u8, f32, f64 and i64 arrays keep their dtype; the other integer dtypes (i8/i16/i32, u16/u32/u64)
 * arrive as i64. Every malformed file is an error naming the file (see rt_npy_read). */
#include "bind_internal.h"
#include "retort/data.h"

static int f_read_npy(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct rt_npy_header h;
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_npy_read(path, out, &h));
    lua_pushstring(L, h.descr);
    return 2;
}

static const luaL_Reg funcs[] = {{"readNpy", f_read_npy}, {NULL, NULL}};

void rtb_open_npy(lua_State *L, int module) { rtb_register(L, module, funcs); }
