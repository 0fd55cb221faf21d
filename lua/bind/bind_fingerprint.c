/* Fingerprints built piece by piece (core: rt_tensor_fingerprint, rt_fingerprint_bytes in
 * retort/tensor.h): for datasets too large to hold, whose fingerprint must still equal
 * core.fingerprint(x, y) of the same data in memory.
 *
 *   local fp = retort.core.fingerprinter()
 *   fp:header("u8", {n, c, h, w})  -- what core.fingerprint hashes before a tensor's elements:
 *                                  -- its dtype name, its dim count and its sizes
 *   fp:data(block)                 -- then the elements of the tensor, block after block (rows in
 *                                  -- order, each block's elements in row-major order, any strides)
 *   fp:add(y)                      -- a whole tensor (header and elements) or a string, as core.fingerprint
 *   fp:hex()                       -- "0123456789abcdef"
 * so fingerprinter():header(x:dtype(), x:shape()):data(x:narrow(1, 1, k)):data(x:narrow(1, k + 1, n - k))
 * :add(y):hex() == core.fingerprint(x, y). The methods return the fingerprinter. */
#include <stdio.h>
#include <string.h>

#include "bind_internal.h"

#define RTB_FP_MT "retort.Fingerprinter"

struct rtb_fp {
    uint64_t h;
};

static struct rtb_fp *check_fp(lua_State *L) { return luaL_checkudata(L, 1, RTB_FP_MT); }

static int f_fingerprinter(lua_State *L)
{
    struct rtb_fp *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->h = RT_FINGERPRINT_INIT;
    luaL_setmetatable(L, RTB_FP_MT);
    return 1;
}

/* fp:header(dtype, sizes): the bytes rt_tensor_fingerprint hashes before a tensor's elements (the
 * dtype name with its NUL, the dim count and the sizes as int64) */
static int m_header(lua_State *L)
{
    struct rtb_fp *u = check_fp(L);
    enum rt_dtype dt = rtb_check_dtype(L, 2);
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    rtb_check_sizes(L, 3, &ndim, shape, 0);
    const char *name = rt_dtype_name(dt);
    int64_t nd = ndim;
    rt_fingerprint_bytes(name, strlen(name) + 1, &u->h);
    rt_fingerprint_bytes(&nd, sizeof nd, &u->h);
    rt_fingerprint_bytes(shape, (size_t)ndim * sizeof shape[0], &u->h);
    lua_settop(L, 1);
    return 1;
}

/* fp:data(t): t's elements in row-major order (a contiguous CPU copy is made when needed) */
static int m_data(lua_State *L)
{
    struct rtb_fp *u = check_fp(L);
    struct rt_tensor *t = rtb_check(L, 2);
    if (rt_tensor_numel(t) > 0) {
        struct rt_tensor **cpu = rtb_slot(L), **c = rtb_slot(L); /* owned by Lua: no leak on error */
        RTB_CALL(L, rt_to_device(t, RT_CPU, cpu));
        RTB_CALL(L, rt_contiguous(*cpu, c));
        rt_fingerprint_bytes(rt_tensor_data(*c), (size_t)rt_tensor_numel(*c) * rt_dtype_size((*c)->dtype), &u->h);
    }
    lua_settop(L, 1);
    return 1;
}

/* fp:add(...): tensors and strings, hashed as core.fingerprint hashes them */
static int m_add(lua_State *L)
{
    struct rtb_fp *u = check_fp(L);
    int n = lua_gettop(L);
    for (int i = 2; i <= n; i++) {
        if (lua_type(L, i) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            rt_fingerprint_bytes(s, len + 1, &u->h);
        } else {
            struct rt_tensor *t = rtb_test(L, i);
            if (!t)
                return luaL_argerror(L, i,
                                     lua_pushfstring(L, "tensor or string expected, got %s", luaL_typename(L, i)));
            RTB_CALL(L, rt_tensor_fingerprint(t, &u->h));
        }
    }
    lua_settop(L, 1);
    return 1;
}

static int m_hex(lua_State *L)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)check_fp(L)->h);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg methods[] = {
    {"header", m_header}, {"data", m_data}, {"add", m_add}, {"hex", m_hex}, {NULL, NULL}};

static const luaL_Reg funcs[] = {{"fingerprinter", f_fingerprinter}, {NULL, NULL}};

void rtb_open_fingerprint(lua_State *L, int module)
{
    luaL_newmetatable(L, RTB_FP_MT);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, m_hex);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    rtb_register(L, module, funcs);
}
