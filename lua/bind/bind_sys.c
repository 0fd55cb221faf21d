/* Small system services the Lua layer needs and plain Lua lacks: a monotonic wall clock (for
 * examples/s and ETAs; os.clock is CPU time) and isatty (progress bar vs plain log lines). */
#include <time.h>
#include <unistd.h>

#include "bind_internal.h"

/* clock(): seconds on a monotonic clock, as a float. */
static int f_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
    return 1;
}

/* isatty([fd = 1]): whether the file descriptor is a terminal. */
static int f_isatty(lua_State *L)
{
    lua_Integer fd = luaL_optinteger(L, 1, 1);
    if (fd < 0 || fd > 1024)
        return luaL_argerror(L, 1, "file descriptor out of range");
    lua_pushboolean(L, isatty((int)fd) == 1);
    return 1;
}

static const luaL_Reg funcs[] = {{"clock", f_clock}, {"isatty", f_isatty}, {NULL, NULL}};

void rtb_open_sys(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
