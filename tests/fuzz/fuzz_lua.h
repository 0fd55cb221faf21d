/* The fuzz targets of the readers written in Lua (checkpoints, soft-target caches, HDF5
 * datasets): one Lua state for the whole run, with the standard libraries, retort.core preloaded
 * (linked in, as the `retort` host does: lua/host/main.c) and package.path at the source tree's
 * lua/ folder. A target gives a chunk that returns the function to call on each input's path.
 *
 * Each input: the file is written, the function runs under pcall, then two full collections run
 * the finalizers (tensors, HDF5 files left to the collector) and fuzz_expect_released checks that
 * no tensor or HDF5 object outlives the input. Any Lua error is a refusal and fine; a crash, a
 * sanitizer report, a leak or a hang is a bug. With FUZZ_LUA_ERRORS=1 in the environment each
 * distinct error message (the file's path replaced by FILE) is printed once to stderr, to see
 * what the refusals say, and which are Lua runtime errors ("attempt to index a nil value")
 * rather than messages written for the user. */
#ifndef RETORT_FUZZ_LUA_H
#define RETORT_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz_common.h"
#include "retort_bind.h"

#ifndef RETORT_FUZZ_LUA_DIR
#error "RETORT_FUZZ_LUA_DIR (the source tree's lua/ folder) is set by cmake/RetortFuzz.cmake"
#endif

static lua_State *fuzz_L;
static int fuzz_fn_ref = LUA_NOREF;
static int fuzz_show_errors;

/* Runs `driver` (a chunk returning the per-input function) in a new state; exits on failure
 * (a broken harness, not a finding). */
static void fuzz_lua_init(const char *name, const char *driver)
{
    fuzz_show_errors = getenv("FUZZ_LUA_ERRORS") && strcmp(getenv("FUZZ_LUA_ERRORS"), "1") == 0;
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "%s: cannot create a Lua state\n", name);
        exit(1);
    }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, RETORT_FUZZ_LUA_DIR "/?.lua;" RETORT_FUZZ_LUA_DIR "/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath"); /* retort.core is the linked-in one, never a .so found on disk */
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_retort_core);
    lua_setfield(L, -2, "retort.core");
    lua_pop(L, 2);
    if (luaL_loadbufferx(L, driver, strlen(driver), name, "t") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK ||
        !lua_isfunction(L, -1)) {
        fprintf(stderr, "%s: the driver chunk failed: %s\n", name,
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "it did not return a function");
        exit(1);
    }
    fuzz_fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    fuzz_L = L;
}

/* error messages already shown (FUZZ_LUA_ERRORS=1): a Lua table in the registry */
static void fuzz_show_error(lua_State *L, const char *path)
{
    if (!lua_isstring(L, -1)) {
        fprintf(stderr, "FUZZ_LUA_ERROR (a %s, not a string)\n", luaL_typename(L, -1));
        return;
    }
    luaL_gsub(L, lua_tostring(L, -1), path, "FILE");
    if (lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.seen") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.seen");
    }
    lua_pushvalue(L, -2);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        fprintf(stderr, "FUZZ_LUA_ERROR %s\n", lua_tostring(L, -3));
        lua_pushvalue(L, -3);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
    }
    lua_pop(L, 3);
}

/* One input: the driver's function on the file holding it. */
static void fuzz_lua_run(const char *tag, const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_L;
    const char *path = fuzz_write_input(tag, ".h5", data, size);
    struct fuzz_alive before = fuzz_alive_now();
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_fn_ref);
    lua_pushstring(L, path);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fuzz_expect_accepted(false, tag, lua_isstring(L, -1) ? lua_tostring(L, -1) : "(an error that is no string)");
        if (fuzz_show_errors)
            fuzz_show_error(L, path);
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    rt_error_clear();
    fuzz_expect_released(before, tag);
}

#endif
