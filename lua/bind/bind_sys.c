/* Small system services the Lua layer needs and plain Lua lacks: a monotonic wall clock (for
 * examples/s and ETAs; os.clock is CPU time), isatty (progress bar vs plain log lines), and
 * directories (run folders, a cache build's folder of finished blocks). */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
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

/* mkdir(path): creates the directory and its missing parents (mkdir -p); true, or nil + message. */
static int f_mkdir(lua_State *L)
{
    size_t n;
    const char *path = luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n + 1);
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && !(errno == EEXIST && stat(p, &st) == 0 && S_ISDIR(st.st_mode))) {
            int e = errno == EEXIST ? ENOTDIR : errno;
            lua_pushnil(L);
            lua_pushfstring(L, "cannot create directory %s: %s", p, strerror(e));
            return 2;
        }
        p[i] = c;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* listDir(path): the names in a directory (without . and ..), sorted; nil + message on failure. */
static int f_list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot list %s: %s", path, strerror(errno));
        return 2;
    }
    lua_newtable(L);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return 1;
}

static const luaL_Reg funcs[] = {{"clock", f_clock}, {"isatty", f_isatty}, {"mkdir", f_mkdir},
                                 {"listDir", f_list_dir}, {NULL, NULL}};

void rtb_open_sys(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
