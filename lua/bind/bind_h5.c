/* HDF5 files from Lua (the core API is retort/h5.h): the userdata "retort.H5File".
 *
 *   local f <close> = retort.core.h5Create("ckpt.h5")   -- writes ckpt.h5.tmp-<pid>-<n>
 *   f:createGroup("/model/fc1"); f:write("/model/fc1/weight", w)
 *   f:setAttr("/", "version", 1)                         -- integer -> int64, float -> double,
 *   f:close()                                            -- string, boolean -> h5py-style bool,
 *                                                        -- {integers} -> 1-D int64 array
 *   local g = retort.core.h5Open("ckpt.h5" [, "r" | "r+"])
 *   g:list("/model") --> {{name = "fc1", kind = "group", link = "hard", id = 1234}, ...} (name order;
 *                        soft/external links: kind "other", link "soft" | "external" | "other", no id)
 *   g:id(path) --> the object's address in the file (the same id: the same object, for cycle checks)
 *   g:kind(path) --> "group" | "dataset" | "other" | nil;  g:read(path) --> tensor
 *   g:getAttr(path, name) --> value or nil;  g:attrs(path) --> {name = value, ...}
 *   g:info(path) --> shape table, dtype;  g:createDataset(path, dtype, sizes)
 *   g:storage(path) --> {layout = "chunked", external = 0, chunk = {..}, shape = {..}, type = "uint8"}
 *   g:writeRows(path, firstRow, t);  g:readRows(path, firstRow, count)   (rows are 1-based)
 *
 * close() commits a created file (rename over the real path); abort() discards it. A file that is
 * garbage-collected without close() is aborted: only an explicit close() commits. As a to-be-closed
 * variable, leaving the scope normally closes (commits) and leaving it by an error aborts.
 *
 * Errors are raised as the core's message without a Lua position ("h5_read: /w not found in x.h5"): the
 * message names the file and the object, and callers (retort.load, retort.cache) put it in a sentence
 * of their own. */
#include <stdlib.h>
#include <string.h>

#include "bind_internal.h"
#include "retort/h5.h"

#define RTB_H5_MT "retort.H5File"

struct rtb_h5 {
    struct rt_h5 *f; /* NULL once closed */
};

/* Raises the core's error message, without "rt_" and without a Lua position. */
static int h5_raise(lua_State *L)
{
    const char *msg = rt_error_msg();
    if (!msg || !*msg)
        msg = "retort: the core reported an error without a message";
    if (strncmp(msg, "rt_", 3) == 0)
        msg += 3;
    lua_pushstring(L, msg);
    return lua_error(L);
}

#define H5_CALL(L, expr)                                                                                      \
    do {                                                                                                      \
        if ((expr) != RT_OK)                                                                                  \
            h5_raise(L);                                                                                      \
    } while (0)

static struct rt_h5 *check_h5(lua_State *L, int idx)
{
    struct rtb_h5 *u = luaL_checkudata(L, idx, RTB_H5_MT);
    if (!u->f)
        luaL_error(L, "retort.H5File is closed");
    return u->f;
}

static struct rtb_h5 *push_h5(lua_State *L)
{
    struct rtb_h5 *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->f = NULL;
    luaL_setmetatable(L, RTB_H5_MT);
    return u;
}

static int f_h5_create(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct rtb_h5 *u = push_h5(L);
    H5_CALL(L, rt_h5_create(path, &u->f));
    return 1;
}

static int f_h5_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    enum rt_h5_mode m;
    if (strcmp(mode, "r") == 0)
        m = RT_H5_READ;
    else if (strcmp(mode, "r+") == 0)
        m = RT_H5_RDWR;
    else
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown mode '%s' (expected \"r\" or \"r+\")", mode));
    struct rtb_h5 *u = push_h5(L);
    H5_CALL(L, rt_h5_open(path, m, &u->f));
    return 1;
}

static int m_close(lua_State *L)
{
    struct rtb_h5 *u = luaL_checkudata(L, 1, RTB_H5_MT);
    struct rt_h5 *f = u->f;
    u->f = NULL;
    if (f)
        H5_CALL(L, rt_h5_close(f));
    return 0;
}

static int m_abort(lua_State *L)
{
    struct rtb_h5 *u = luaL_checkudata(L, 1, RTB_H5_MT);
    rt_h5_abort(u->f);
    u->f = NULL;
    return 0;
}

/* __close(f, err): commit on a normal exit, abort when leaving by an error. */
static int m_toclose(lua_State *L)
{
    if (!lua_isnil(L, 2))
        return m_abort(L);
    return m_close(L);
}

static int m_path(lua_State *L)
{
    lua_pushstring(L, rt_h5_path(check_h5(L, 1)));
    return 1;
}

static int m_is_open(lua_State *L)
{
    struct rtb_h5 *u = luaL_checkudata(L, 1, RTB_H5_MT);
    lua_pushboolean(L, u->f != NULL);
    return 1;
}

static int m_create_group(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    H5_CALL(L, rt_h5_group_create(f, luaL_checkstring(L, 2)));
    return 0;
}

static int m_write(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    struct rt_tensor *t = rtb_check(L, 3);
    H5_CALL(L, rt_h5_write(f, path, t));
    return 0;
}

static int m_read(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    struct rt_tensor **out = rtb_slot(L);
    H5_CALL(L, rt_h5_read(f, path, out));
    return 1;
}

static const char *kind_name(enum rt_h5_kind k)
{
    return k == RT_H5_GROUP ? "group" : k == RT_H5_DATASET ? "dataset" : k == RT_H5_OTHER ? "other" : NULL;
}

static int m_kind(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    enum rt_h5_kind k;
    H5_CALL(L, rt_h5_kind(f, luaL_checkstring(L, 2), &k));
    const char *s = kind_name(k);
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
    return 1;
}

static int m_list(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_optstring(L, 2, "/");
    struct rt_h5_member *m;
    size_t n;
    H5_CALL(L, rt_h5_list(f, path, &m, &n));
    /* (the pushes below raise only on a memory error, which would leak this small listing) */
    lua_createtable(L, (int)n, 0);
    static const char *links[] = {"hard", "soft", "external", "other"};
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushstring(L, m[i].name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, kind_name(m[i].kind));
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, links[m[i].link]);
        lua_setfield(L, -2, "link");
        if (m[i].link == RT_H5_LINK_HARD) {
            lua_pushinteger(L, (lua_Integer)m[i].id);
            lua_setfield(L, -2, "id");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    rt_h5_members_free(m, n);
    return 1;
}

static int m_id(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    uint64_t id;
    H5_CALL(L, rt_h5_object_id(f, luaL_checkstring(L, 2), &id));
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static int m_set_attr(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    const char *as = luaL_optstring(L, 5, NULL);
    switch (lua_type(L, 4)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, 4) && !(as && strcmp(as, "double") == 0))
            H5_CALL(L, rt_h5_attr_set_int64(f, path, name, (int64_t)lua_tointeger(L, 4)));
        else
            H5_CALL(L, rt_h5_attr_set_double(f, path, name, (double)lua_tonumber(L, 4)));
        break;
    case LUA_TBOOLEAN: H5_CALL(L, rt_h5_attr_set_bool(f, path, name, lua_toboolean(L, 4))); break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, 4, &len);
        if (strlen(s) != len)
            return luaL_argerror(L, 4, "string attributes cannot hold zero bytes");
        H5_CALL(L, rt_h5_attr_set_string(f, path, name, s));
        break;
    }
    case LUA_TTABLE: { /* a non-empty sequence of integers: a 1-D int64 array */
        size_t n = (size_t)lua_rawlen(L, 4);
        if (n == 0)
            return luaL_argerror(L, 4, "an array attribute needs at least one value");
        int64_t *v = lua_newuserdatauv(L, n * sizeof *v, 0); /* freed by the GC, even on error */
        for (size_t i = 0; i < n; i++) {
            int ok;
            lua_Integer x = (lua_rawgeti(L, 4, (lua_Integer)i + 1), lua_tointegerx(L, -1, &ok));
            lua_pop(L, 1);
            if (!ok)
                return luaL_argerror(L, 4, lua_pushfstring(L, "array attributes hold integers (entry %d is not one)",
                                                           (int)i + 1));
            v[i] = (int64_t)x;
        }
        H5_CALL(L, rt_h5_attr_set_int64_array(f, path, name, v, n));
        break;
    }
    default: return luaL_typeerror(L, 4, "number, boolean, string or array of integers");
    }
    return 0;
}

/* Pushes an attribute's value (nil for unsupported types). */
static void push_attr(lua_State *L, struct rt_h5_attr *a)
{
    switch (a->type) {
    case RT_H5_ATTR_INT64: lua_pushinteger(L, (lua_Integer)a->i); break;
    case RT_H5_ATTR_DOUBLE: lua_pushnumber(L, (lua_Number)a->d); break;
    case RT_H5_ATTR_BOOL: lua_pushboolean(L, a->b); break;
    case RT_H5_ATTR_STRING: lua_pushstring(L, a->s ? a->s : ""); break;
    case RT_H5_ATTR_INT64_ARRAY:
        lua_createtable(L, (int)a->n, 0);
        for (size_t i = 0; i < a->n; i++) {
            lua_pushinteger(L, (lua_Integer)a->iv[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    default: lua_pushnil(L); break;
    }
}

static int m_get_attr(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char *name = luaL_checkstring(L, 3);
    char **names;
    enum rt_h5_attr_type *types;
    size_t n;
    H5_CALL(L, rt_h5_attr_list(f, path, &names, &types, &n));
    bool found = false, other = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) {
            found = true;
            other = types[i] == RT_H5_ATTR_OTHER;
        }
    rt_h5_names_free(names, types, n);
    if (!found || other) { /* missing, or not a scalar we read: nil */
        lua_pushnil(L);
        return 1;
    }
    struct rt_h5_attr a;
    H5_CALL(L, rt_h5_attr_get(f, path, name, &a));
    push_attr(L, &a);
    rt_h5_attr_clear(&a);
    return 1;
}

static int m_attrs(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_optstring(L, 2, "/");
    char **names;
    enum rt_h5_attr_type *types;
    size_t n;
    H5_CALL(L, rt_h5_attr_list(f, path, &names, &types, &n));
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        if (types[i] == RT_H5_ATTR_OTHER)
            continue;
        struct rt_h5_attr a;
        if (rt_h5_attr_get(f, path, names[i], &a) != RT_OK) {
            rt_h5_names_free(names, types, n);
            return h5_raise(L);
        }
        push_attr(L, &a);
        rt_h5_attr_clear(&a);
        lua_setfield(L, -2, names[i]);
    }
    rt_h5_names_free(names, types, n);
    return 1;
}

static void push_shape(lua_State *L, int ndim, const int64_t *shape)
{
    lua_createtable(L, ndim, 0);
    for (int i = 0; i < ndim; i++) {
        lua_pushinteger(L, (lua_Integer)shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int m_info(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    enum rt_dtype dt;
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    H5_CALL(L, rt_h5_dataset_info(f, luaL_checkstring(L, 2), &dt, &ndim, shape));
    push_shape(L, ndim, shape);
    lua_pushstring(L, rt_dtype_name(dt));
    return 2;
}

/* f:storage(path) --> {layout = "contiguous" | "chunked" | "compact" | "virtual" | "other", external = n,
 * chunk = {sizes} (chunked only), shape = {sizes}, type = "uint8" | "float32" | ... | "string" | ...} */
static int m_storage(lua_State *L)
{
    static const char *layouts[] = {"contiguous", "chunked", "compact", "virtual", "other"};
    struct rt_h5 *f = check_h5(L, 1);
    struct rt_h5_storage s;
    H5_CALL(L, rt_h5_dataset_storage(f, luaL_checkstring(L, 2), &s));
    lua_createtable(L, 0, 5);
    lua_pushstring(L, layouts[s.layout]);
    lua_setfield(L, -2, "layout");
    lua_pushinteger(L, s.external);
    lua_setfield(L, -2, "external");
    if (s.layout == RT_H5_LAYOUT_CHUNKED) {
        push_shape(L, s.chunk_ndim, s.chunk);
        lua_setfield(L, -2, "chunk");
    }
    push_shape(L, s.ndim, s.shape);
    lua_setfield(L, -2, "shape");
    lua_pushstring(L, s.type);
    lua_setfield(L, -2, "type");
    return 1;
}

static int m_create_dataset(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    enum rt_dtype dt = rtb_check_dtype(L, 3);
    int ndim, cdim = 0;
    int64_t shape[RT_MAX_DIMS], chunk[RT_MAX_DIMS];
    rtb_check_sizes(L, 4, &ndim, shape, 0);
    if (!lua_isnoneornil(L, 5)) {
        rtb_check_sizes(L, 5, &cdim, chunk, 0);
        if (cdim != ndim)
            return luaL_argerror(L, 5, lua_pushfstring(L, "chunk shape needs %d sizes, got %d", ndim, cdim));
    }
    H5_CALL(L, rt_h5_dataset_create_chunked(f, path, dt, ndim, shape, cdim ? chunk : NULL));
    return 0;
}

/* Optional argument arg: a list of 1-based leading indices ({v} picks view v of a [V, N, C] dataset);
 * stored 0-based into lead. Returns how many. */
static int check_lead(lua_State *L, int arg, int64_t *lead)
{
    if (lua_isnoneornil(L, arg))
        return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    int n = (int)luaL_len(L, arg);
    if (n >= RT_MAX_DIMS)
        luaL_argerror(L, arg, "too many leading indices");
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || v < 1)
            luaL_argerror(L, arg, "leading indices must be integers >= 1");
        lead[i] = v - 1;
    }
    return n;
}

/* f:writeRows(path, row, t [, lead]): rows row.. (1-based) of path, inside lead when given */
static int m_write_rows(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    lua_Integer row = luaL_checkinteger(L, 3);
    if (row < 1)
        return luaL_argerror(L, 3, "first row must be >= 1");
    struct rt_tensor *t = rtb_check(L, 4);
    int64_t lead[RT_MAX_DIMS];
    int nlead = check_lead(L, 5, lead);
    H5_CALL(L, rt_h5_write_rows_at(f, path, nlead, lead, row - 1, t));
    return 0;
}

static int m_read_rows(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    lua_Integer row = luaL_checkinteger(L, 3);
    lua_Integer count = luaL_checkinteger(L, 4);
    if (row < 1)
        return luaL_argerror(L, 3, "first row must be >= 1");
    if (count < 0)
        return luaL_argerror(L, 4, "count must be >= 0");
    int64_t lead[RT_MAX_DIMS];
    int nlead = check_lead(L, 5, lead);
    struct rt_tensor **out = rtb_slot(L);
    H5_CALL(L, rt_h5_read_rows_at(f, path, nlead, lead, row - 1, count, out));
    return 1;
}

/* f:readIndex(path, idx [, lead]): rows idx (an i64 tensor of 1-based rows, any order) of path */
static int m_read_index(lua_State *L)
{
    struct rt_h5 *f = check_h5(L, 1);
    const char *path = luaL_checkstring(L, 2);
    struct rt_tensor *idx = rtb_check(L, 3);
    if (idx->dtype != RT_I64 || idx->ndim != 1)
        return luaL_argerror(L, 3, "a 1-D i64 tensor of row indices expected");
    int64_t lead[RT_MAX_DIMS];
    int nlead = check_lead(L, 4, lead);
    int64_t n = idx->shape[0];
    /* a userdata, not malloc: collected if an error unwinds past it */
    int64_t *rows = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *rows, 0);
    RTB_CALL(L, rt_tensor_to_host(idx, RT_I64, rows));
    for (int64_t k = 0; k < n; k++) {
        if (rows[k] < 1) /* (and no INT64_MIN - 1) */
            return luaL_argerror(L, 3, lua_pushfstring(L, "row indices start at 1 (got %I)", (lua_Integer)rows[k]));
        rows[k] -= 1;
    }
    struct rt_tensor **out = rtb_slot(L);
    H5_CALL(L, rt_h5_read_index(f, path, nlead, lead, rows, n, out));
    return 1;
}

static int m_tostring(lua_State *L)
{
    struct rtb_h5 *u = luaL_checkudata(L, 1, RTB_H5_MT);
    if (u->f)
        lua_pushfstring(L, "retort.H5File(%s)", rt_h5_path(u->f));
    else
        lua_pushliteral(L, "retort.H5File(closed)");
    return 1;
}

static const luaL_Reg methods[] = {
    {"close", m_close},           {"abort", m_abort},     {"path", m_path},         {"isOpen", m_is_open},
    {"createGroup", m_create_group}, {"write", m_write},   {"read", m_read},         {"kind", m_kind},
    {"list", m_list},             {"setAttr", m_set_attr}, {"getAttr", m_get_attr}, {"attrs", m_attrs},
    {"info", m_info},             {"createDataset", m_create_dataset}, {"writeRows", m_write_rows},
    {"readRows", m_read_rows},    {"readIndex", m_read_index}, {"storage", m_storage}, {"id", m_id},
    {NULL, NULL}};

static const luaL_Reg funcs[] = {{"h5Create", f_h5_create}, {"h5Open", f_h5_open}, {NULL, NULL}};

void rtb_open_h5(lua_State *L, int module)
{
    luaL_newmetatable(L, RTB_H5_MT);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, m_abort); /* collected without close(): not committed */
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, m_toclose);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, m_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    rtb_register(L, module, funcs);
}
