/* Small system services the Lua layer needs and plain Lua lacks: a monotonic wall clock (for
 * examples/s and ETAs; os.clock is CPU time), isatty (progress bar vs plain log lines),
 * directories (run folders, a cache build's folder of finished blocks), advisory locks (one run
 * per output) and whether a process is alive (stale temporaries of killed runs).
 *
 *   lock(path)       -> a lock object (lk:release(); also released by __close/__gc and at exit), or
 *                       nil, message, pid when another process holds it (pid: the holder's, read
 *                       from the file, or nil). flock(2) on path (created), which then holds our pid.
 *   pidAlive(pid)    -> whether a process with that pid exists (kill(pid, 0)) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

#define LOCK_MT "retort.Lock"

struct lock {
    int fd; /* -1 once released */
};

static int lock_release(lua_State *L)
{
    struct lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    if (lk->fd >= 0) {
        flock(lk->fd, LOCK_UN);
        close(lk->fd);
        lk->fd = -1;
    }
    return 0;
}

/* the pid written in a lock file, or 0 */
static long lock_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 ? pid : 0;
}

static int f_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
    lk->fd = -1;
    luaL_setmetatable(L, LOCK_MT);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open the lock file %s: %s", path, strerror(errno));
        return 2;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = lock_holder(fd);
        close(fd);
        lua_pushnil(L);
        if (e == EWOULDBLOCK && pid > 0)
            lua_pushfstring(L, "%s is held by process %d", path, (int)pid);
        else if (e == EWOULDBLOCK)
            lua_pushfstring(L, "%s is held by another process", path);
        else
            lua_pushfstring(L, "cannot lock %s: %s", path, strerror(e));
        if (pid > 0)
            lua_pushinteger(L, pid);
        else
            lua_pushnil(L);
        return 3;
    }
    lk->fd = fd;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* the lock holds without the pid; a second run then cannot name us, nothing worse */
    }
    return 1;
}

static int f_pid_alive(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    if (pid <= 0 || pid > 0x7fffffff)
        return luaL_argerror(L, 1, "a process id (a positive integer) expected");
    lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno == EPERM);
    return 1;
}

static const luaL_Reg funcs[] = {{"clock", f_clock},   {"isatty", f_isatty},        {"mkdir", f_mkdir},
                                 {"listDir", f_list_dir}, {"lock", f_lock},       {"pidAlive", f_pid_alive},
                                 {NULL, NULL}};

void rtb_open_sys(lua_State *L, int module)
{
    luaL_newmetatable(L, LOCK_MT);
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "release");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    rtb_register(L, module, funcs);
}
