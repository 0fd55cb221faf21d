/* luaopen_retort_core: the `retort.core` module table. It holds the constructors
 * (bind_create.c), cat/stack/where (bind_ops.c), grad mode (bind_autograd.c), and here:
 * isTensor, memoryInUse, setNumThreads/getNumThreads, version, and Tensor (the methods table
 * shared by every tensor; Lua modules may add methods to it). */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE, RTLD_NOLOAD */
#include <dlfcn.h>
#include <string.h>

#include "bind_internal.h"

/* A plain lua5.4 dlcloses C modules in lua_close. The core runs OpenMP worker threads that live
 * until the process exits; unloading the module (and with it libgomp) under them crashes at exit.
 * So the module pins itself: once loaded it stays loaded. (In the `retort` host the binding is
 * linked in statically and this finds nothing to pin.) */
static void pin_module(void)
{
#if defined(RTLD_NODELETE) && defined(RTLD_NOLOAD)
    Dl_info info;
    if (dladdr((void *)&pin_module, &info) && info.dli_fname) {
        void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
        (void)h; /* the extra reference is never dropped, on purpose */
    }
#endif
}

static int f_is_tensor(lua_State *L)
{
    struct rtb_tensor *u = luaL_testudata(L, 1, RTB_TENSOR_MT);
    lua_pushboolean(L, u != NULL && u->t != NULL);
    return 1;
}

/* memoryInUse([device]): bytes held by tensor storages ("cpu", "cuda"; default: all devices). */
static int f_memory_in_use(lua_State *L)
{
    if (lua_isnoneornil(L, 1))
        lua_pushinteger(L, (lua_Integer)rtb_memory_total());
    else
        lua_pushinteger(L, (lua_Integer)rt_memory_in_use(rtb_check_device(L, 1)));
    return 1;
}

static int f_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0 || n > 4096)
        return luaL_argerror(L, 1, "thread count must be in [0, 4096] (0: library default)");
    rt_set_num_threads((int)n);
    return 0;
}

static int f_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, rt_get_num_threads());
    return 1;
}

/* liveTensors(): number of core tensor structs alive (leak checks in tests). */
static int f_live_tensors(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rt_tensor_live_count());
    return 1;
}

/* fingerprint(...): FNV-1a 64 over the tensors and strings given, in order, as 16 hex digits */
static int f_fingerprint(lua_State *L)
{
    uint64_t h = RT_FINGERPRINT_INIT;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (lua_type(L, i) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, i, &len);
            rt_fingerprint_bytes(s, len + 1, &h);
        } else {
            struct rt_tensor *t = rtb_test(L, i);
            if (!t)
                return luaL_argerror(L, i, lua_pushfstring(L, "tensor or string expected, got %s", luaL_typename(L, i)));
            RTB_CALL(L, rt_tensor_fingerprint(t, &h));
        }
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg funcs[] = {{"isTensor", f_is_tensor},
                                 {"fingerprint", f_fingerprint},
                                 {"memoryInUse", f_memory_in_use},
                                 {"setNumThreads", f_set_num_threads},
                                 {"getNumThreads", f_get_num_threads},
                                 {"liveTensors", f_live_tensors},
                                 {NULL, NULL}};

int luaopen_retort_core(lua_State *L)
{
    pin_module();
    lua_newtable(L); /* module */
    int module = lua_gettop(L);
    /* Opening the module again (a second require after package.loaded was cleared) refills the
     * same registry metatable with a fresh methods table; existing tensors pick it up. */
    lua_newtable(L);
    int methods = lua_gettop(L);
    rtb_open_tensor(L, methods);
    rtb_open_view(L, methods);
    rtb_open_ops(L, methods, module);
    rtb_open_create(L, module);
    rtb_open_autograd(L, methods, module);
    rtb_open_print(L, methods);
    rtb_open_sys(L, module);
    rtb_open_optim(L, module);
    rtb_open_h5(L, module);
    rtb_open_npy(L, module);
    rtb_open_fingerprint(L, module);
    rtb_open_data(L, module);
    rtb_open_image(L, module);
    rtb_open_cifar(L, module);
    rtb_open_nn(L, methods, module);
    rtb_open_device(L, module);
    rtb_open_onnx(L, module);
    rtb_open_dist(L, module);
    rtb_open_bf16(L, module);
    lua_setfield(L, module, "Tensor");
    luaL_setfuncs(L, funcs, 0);
    lua_pushliteral(L, RT_VERSION_STRING);
    lua_setfield(L, module, "version");
    return 1;
}
