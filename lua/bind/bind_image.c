/* Image files on the module table (core: retort/image.h), for retort.data.imageFolder:
 *
 *   decodeImage(path [, channels = 3])      -> u8 tensor (channels, H, W) at the file's own size
 *   decodeImages(paths, h, w, channels)     -> u8 tensor (#paths, channels, h, w), each image converted
 *                                              and resized as PIL does; decoded on the OpenMP team.
 *                                              The first bad file (lowest index) raises its message.
 *   decodeImages(paths, h, w, channels, true)
 *                                           -> tensor, failures: bad files leave zeros and are reported
 *                                              as {count = n, indices = {i, ...} (1-based, all of them,
 *                                              ascending), messages = {first few, for indices[1..]}}
 *   listFiles(dir)                          -> the files under dir, recursively, as paths relative to
 *                                              dir ("a/b.png"), sorted in byte order (strcmp); nil + message
 *                                              when dir cannot be listed
 *   listSubdirs(dir)                        -> the directories directly in dir (names), sorted in byte order
 *
 * Listing rules: names starting with "." are skipped (hidden files, macOS "._x.jpg" resource forks,
 * .git); symbolic links are followed (a link to a file is a file, one to a directory is walked),
 * except a link back to a directory being walked (a loop), which is skipped; a link that points
 * nowhere counts as a file (decoding it then names it). The walk itself calls no Lua API, so a
 * Lua error cannot leave a directory open; its results are owned by a userdata until pushed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bind_internal.h"

#define LIST_MT "retort.image.FileList"
#define MAX_DEPTH 64

/* ------------------------------------------------------------------------------------------ */
/* paths tables -> C arrays */

/* The strings of the table at arg as a C array owned by a new userdata (pushed); the strings stay
 * owned by the table, which the caller keeps on the stack. */
static const char **check_paths(lua_State *L, int arg, int64_t *n)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_Integer len = luaL_len(L, arg);
    if (len < 0 || (uint64_t)len > SIZE_MAX / sizeof(char *) / 2)
        luaL_argerror(L, arg, "too many paths");
    const char **paths = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof(char *), 0);
    for (lua_Integer i = 1; i <= len; i++) {
        if (lua_rawgeti(L, arg, i) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "path %I is a %s, a string expected", i, luaL_typename(L, -1)));
        paths[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
    }
    *n = (int64_t)len;
    return paths;
}

static int check_channels(lua_State *L, int arg, int def)
{
    lua_Integer c = luaL_optinteger(L, arg, def);
    if (c != 1 && c != 3)
        luaL_argerror(L, arg, lua_pushfstring(L, "channels must be 1 or 3, got %I", c));
    return (int)c;
}

static int f_decode_image(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int channels = check_channels(L, 2, 3);
    struct rt_tensor **out = rtb_slot(L); /* before decoding: no Lua error can strike while pixels are held */
    struct rt_image img;
    RTB_CALL(L, rt_image_decode_file(path, channels, &img));
    int64_t plane = img.height * img.width;
    enum rt_status st = rt_tensor_empty(RT_U8, RT_CPU, 3, (int64_t[]){channels, img.height, img.width}, out);
    if (st == RT_OK) {
        uint8_t *d = rt_tensor_data(*out);
        for (int64_t p = 0; p < plane; p++)
            for (int c = 0; c < channels; c++)
                d[c * plane + p] = img.pixels[p * channels + c];
    }
    rt_image_free(&img);
    if (st != RT_OK)
        return rtb_core_error(L);
    return 1;
}

static int f_decode_images(lua_State *L)
{
    lua_settop(L, 5); /* the path array goes above the arguments */
    int64_t n;
    const char **paths = check_paths(L, 1, &n);
    lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
    if (h < 1)
        return luaL_argerror(L, 2, "height must be >= 1");
    if (w < 1)
        return luaL_argerror(L, 3, "width must be >= 1");
    int channels = check_channels(L, 4, 3);
    int tolerant = lua_toboolean(L, 5);
    struct rt_tensor **out = rtb_slot(L);
    if (!tolerant) {
        RTB_CALL(L, rt_image_decode_batch(paths, n, h, w, channels, NULL, NULL, out));
        return 1;
    }
    struct rt_image_failures *rep = lua_newuserdatauv(L, sizeof *rep, 0);
    uint8_t *failed = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1), 0);
    RTB_CALL(L, rt_image_decode_batch(paths, n, h, w, channels, rep, failed, out));
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)rep->count);
    lua_setfield(L, -2, "count");
    lua_createtable(L, (int)(rep->count < INT32_MAX ? rep->count : 0), 0);
    lua_Integer k = 0;
    for (int64_t i = 0; i < n; i++)
        if (failed[i]) {
            lua_pushinteger(L, (lua_Integer)(i + 1));
            lua_rawseti(L, -2, ++k);
        }
    lua_setfield(L, -2, "indices");
    lua_createtable(L, rep->kept, 0);
    for (int i = 0; i < rep->kept; i++) {
        const char *m = rep->message[i];
        lua_pushstring(L, strncmp(m, "rt_", 3) == 0 ? m + 3 : m);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "messages");
    lua_pushvalue(L, -4); /* the tensor first, then the report */
    lua_insert(L, -2);
    return 2;
}

/* ------------------------------------------------------------------------------------------ */
/* directory listings */

struct file_list {
    char **items;
    size_t n, cap;
};

static void list_clear(struct file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static int list_gc(lua_State *L)
{
    list_clear(luaL_checkudata(L, 1, LIST_MT));
    return 0;
}

static struct file_list *new_list(lua_State *L)
{
    struct file_list *l = lua_newuserdatauv(L, sizeof *l, 0);
    memset(l, 0, sizeof *l);
    if (luaL_newmetatable(L, LIST_MT)) {
        lua_pushcfunction(L, list_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return l;
}

static int list_add(struct file_list *l, const char *prefix, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return -1;
        l->items = items, l->cap = cap;
    }
    size_t a = strlen(prefix), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return -1;
    memcpy(s, prefix, a);
    if (a)
        s[a++] = '/';
    memcpy(s + a, name, b + 1);
    l->items[l->n++] = s;
    return 0;
}

struct walk {
    struct file_list *out;
    int dirs_only;             /* listSubdirs: the directories of one level */
    dev_t dev[MAX_DEPTH + 1];  /* the directories being walked, root first (loop check) */
    ino_t ino[MAX_DEPTH + 1];
    char err[2 * 4096 + 256]; /* two paths and some words: no truncation warnings */
};

/* Walks root/rel (depth levels down); 0, or -1 with w->err set. Calls no Lua API. */
static int walk_dir(struct walk *w, const char *root, const char *rel, int depth)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel) >= sizeof path) {
        snprintf(w->err, sizeof w->err, "path too long under %s", root);
        return -1;
    }
    DIR *d = opendir(path);
    if (!d) {
        snprintf(w->err, sizeof w->err, "cannot list %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(dirfd(d), &sb) != 0) {
        snprintf(w->err, sizeof w->err, "cannot stat %s: %s", path, strerror(errno));
        closedir(d);
        return -1;
    }
    w->dev[depth] = sb.st_dev, w->ino[depth] = sb.st_ino;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (errno = 0, e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", hidden */
        int isdir = 0;
        struct stat es;
        if (fstatat(dirfd(d), e->d_name, &es, 0) == 0) /* follows links */
            isdir = S_ISDIR(es.st_mode);
        if (w->dirs_only) {
            if (isdir && list_add(w->out, "", e->d_name) != 0)
                rc = -2;
            continue;
        }
        if (!isdir) {
            if (list_add(w->out, rel, e->d_name) != 0)
                rc = -2;
            continue;
        }
        int loop = 0;
        for (int i = 0; i <= depth; i++)
            loop |= w->dev[i] == es.st_dev && w->ino[i] == es.st_ino;
        if (loop)
            continue;
        if (depth + 1 > MAX_DEPTH) {
            snprintf(w->err, sizeof w->err, "%s/%s: folders nested more than %d deep", path, e->d_name, MAX_DEPTH);
            rc = -1;
            break;
        }
        char sub[4096];
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >= sizeof sub) {
            snprintf(w->err, sizeof w->err, "path too long under %s", path);
            rc = -1;
            break;
        }
        rc = walk_dir(w, root, sub, depth + 1);
    }
    if (rc == 0 && errno != 0) {
        snprintf(w->err, sizeof w->err, "cannot list %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == -2)
        snprintf(w->err, sizeof w->err, "out of memory listing %s", path);
    closedir(d);
    return rc < 0 ? -1 : 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_common(lua_State *L, int dirs_only)
{
    const char *dir = luaL_checkstring(L, 1);
    struct file_list *l = new_list(L);
    struct walk *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    w->out = l, w->dirs_only = dirs_only;
    if (walk_dir(w, dir, "", 0) != 0) {
        list_clear(l);
        lua_pushnil(L);
        lua_pushstring(L, w->err);
        return 2;
    }
    if (l->n)
        qsort(l->items, l->n, sizeof *l->items, cmp_str);
    lua_createtable(L, l->n < INT32_MAX ? (int)l->n : 0, 0);
    for (size_t i = 0; i < l->n; i++) {
        lua_pushstring(L, l->items[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    list_clear(l);
    return 1;
}

static int f_list_files(lua_State *L) { return list_common(L, 0); }
static int f_list_subdirs(lua_State *L) { return list_common(L, 1); }

static const luaL_Reg funcs[] = {{"decodeImage", f_decode_image},
                                 {"decodeImages", f_decode_images},
                                 {"listFiles", f_list_files},
                                 {"listSubdirs", f_list_subdirs},
                                 {NULL, NULL}};

void rtb_open_image(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
