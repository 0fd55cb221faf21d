/* ONNX files from Lua: the graph that retort.onnx traced, handed to the core's encoder
 * (core/include/retort/onnx.h) in one call.
 *
 *   core.onnxAvailable()  -> true, or false and the reason (this build has no protobuf-c)
 *   core.onnxSave(path, {
 *      opset = 13, irVersion = 7, producer = "retort", producerVersion = "0.1.0", graphName = "mlp",
 *      doc = "...", metadata = {{"key", "value"}, ...},
 *      inputs = {{name = "input", dtype = "f32", shape = {"N", 784}}},      -- a string is a symbolic dim
 *      initializers = {{name = "fc1.weight", tensor = w}, ...},
 *      nodes = {{op = "Gemm", name = "fc1/Gemm", inputs = {"input", "fc1.weight", "fc1.bias"},
 *                outputs = {"fc1/Gemm"}, attrs = {{"transB", "int", 1}, {"pads", "ints", {1, 1, 1, 1}}}}},
 *      outputs = {{name = "fc1/Gemm", dtype = "f32", shape = {"N", 800}}},
 *   })  -> {bytes = file size, nodes = n, initializers = k}
 *
 * Attributes are {name, kind, value} with kind "int", "float", "ints", "floats" or "string": the kind
 * is explicit because a Lua number alone cannot say whether 1 is an INT or a FLOAT attribute and an
 * empty table whether it lists ints or floats. The model under construction is held by a userdata
 * whose __gc frees it, and every scratch array is a Lua userdata too, so a Lua error part-way (a bad
 * entry in the table) leaks nothing. Messages name the entry: "onnxSave: nodes[3] ('fc1/Gemm'):
 * input 2 'w' is not defined ...". */
#include <string.h>

#include "bind_internal.h"
#include "retort/onnx.h"

#define MODEL_MT "retort.OnnxModelBuilder"

struct model_box {
    struct rt_onnx_model *m;
};

static int box_gc(lua_State *L)
{
    struct model_box *b = luaL_checkudata(L, 1, MODEL_MT);
    rt_onnx_model_free(b->m);
    b->m = NULL;
    return 0;
}

static const char *const NOT_BUILT =
    "built without ONNX export: install protobuf-c-compiler, libprotobuf-c-dev and libonnx-dev and rebuild";

static int f_onnx_available(lua_State *L)
{
    if (rt_onnx_available()) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, NOT_BUILT);
    return 2;
}

/* Raises "onnxSave: <where>: <core message without its function name>". */
static int core_fail(lua_State *L, const char *where)
{
    const char *msg = rt_error_msg();
    const char *colon = strstr(msg, ": ");
    if (!strncmp(msg, "rt_onnx_", 8) && colon)
        msg = colon + 2; /* the core's function name says less than `where` */
    return luaL_error(L, "onnxSave: %s: %s", where, msg);
}

/* scratch memory owned by a userdata left on the stack (collected with it) */
static void *scratch(lua_State *L, size_t n, size_t size)
{
    if (n > 0 && size > (size_t)-1 / n)
        luaL_error(L, "onnxSave: too many entries");
    return lua_newuserdatauv(L, n * size > 0 ? n * size : 1, 0);
}

/* t[key] as a string (required); leaves nothing on the stack (the string stays alive in t) */
static const char *field_string(lua_State *L, int t, const char *key, const char *where)
{
    lua_getfield(L, t, key);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "onnxSave: %s: field '%s' must be a string, got %s", where, key, luaL_typename(L, -1));
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1);
    return s;
}

static const char *opt_field_string(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    const char *s = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "onnxSave: field '%s' must be a string, got %s", key, luaL_typename(L, -1));
        s = lua_tostring(L, -1);
    }
    lua_pop(L, 1);
    return s;
}

/* the list t[key] pushed on the stack (an empty one when absent); returns its length */
static lua_Integer push_list(lua_State *L, int t, const char *key, const char *where)
{
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "onnxSave: %s: field '%s' must be a list, got %s", where, key, luaL_typename(L, -1));
    lua_Integer n = luaL_len(L, -1);
    if (n > INT32_MAX)
        luaL_error(L, "onnxSave: %s: field '%s' has too many entries (%I)", where, key, n);
    return n;
}

/* What each_entry calls for one entry of a list: the entry (a table) is at stack index e and `where`
 * ("nodes[3]") names it in errors; each_entry pops whatever it leaves on the stack. */
typedef void (*entry_fn)(lua_State *L, struct rt_onnx_model *m, int e, const char *where);

/* Calls add on every entry of the list desc[key] (absent: none): the model's lists share one walk and
 * one message for an entry that is not a table, "onnxSave: <key>[i] must be <expected>, got <type>". */
static void each_entry(lua_State *L, struct rt_onnx_model *m, int desc, const char *key, const char *expected,
                       entry_fn add)
{
    lua_Integer n = push_list(L, desc, key, "the model");
    int list = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        char where[64];
        snprintf(where, sizeof where, "%s[%lld]", key, (long long)i);
        if (lua_geti(L, list, i) != LUA_TTABLE)
            luaL_error(L, "onnxSave: %s must be %s, got %s", where, expected, luaL_typename(L, -1));
        add(L, m, lua_gettop(L), where);
        lua_settop(L, list);
    }
    lua_pop(L, 1);
}

/* an inputs / outputs entry: {name =, dtype =, shape = {"N", 3, 32, 32}} */
static void add_value(lua_State *L, struct rt_onnx_model *m, int e, const char *where, bool output)
{
    const char *name = field_string(L, e, "name", where);
    lua_getfield(L, e, "dtype");
    enum rt_dtype dt = lua_isnil(L, -1) ? RT_F32 : rtb_check_dtype(L, lua_gettop(L));
    lua_pop(L, 1);
    lua_getfield(L, e, "shape");
    if (!lua_istable(L, -1))
        luaL_error(L, "onnxSave: %s ('%s'): field 'shape' must be a list, got %s", where, name,
                   luaL_typename(L, -1));
    int shape = lua_gettop(L);
    lua_Integer nd = luaL_len(L, shape);
    if (nd > RT_MAX_DIMS)
        luaL_error(L, "onnxSave: %s ('%s'): %I dims (at most %d)", where, name, nd, RT_MAX_DIMS);
    struct rt_onnx_dim dims[RT_MAX_DIMS];
    for (int d = 0; d < (int)nd; d++) {
        lua_geti(L, shape, d + 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            dims[d].param = lua_tostring(L, -1); /* stays alive in the shape table */
            dims[d].size = 0;
        } else if (lua_isinteger(L, -1)) {
            dims[d].param = NULL;
            dims[d].size = (int64_t)lua_tointeger(L, -1);
        } else {
            luaL_error(L, "onnxSave: %s ('%s'): dim %d must be an integer or a name, got %s", where, name, d + 1,
                       luaL_typename(L, -1));
        }
        lua_pop(L, 1);
    }
    enum rt_status st = output ? rt_onnx_add_output(m, name, dt, (int)nd, dims)
                               : rt_onnx_add_input(m, name, dt, (int)nd, dims);
    if (st != RT_OK)
        core_fail(L, where);
}

static void add_input(lua_State *L, struct rt_onnx_model *m, int e, const char *where)
{
    add_value(L, m, e, where, false);
}

static void add_output(lua_State *L, struct rt_onnx_model *m, int e, const char *where)
{
    add_value(L, m, e, where, true);
}

/* an initializers entry: {name =, tensor =} */
static void add_initializer(lua_State *L, struct rt_onnx_model *m, int e, const char *where)
{
    const char *name = field_string(L, e, "name", where);
    lua_getfield(L, e, "tensor");
    struct rt_tensor *t = rtb_test(L, -1);
    if (!t)
        luaL_error(L, "onnxSave: %s ('%s'): field 'tensor' must be a retort.Tensor, got %s", where, name,
                   luaL_typename(L, -1));
    if (rt_onnx_add_initializer(m, name, t) != RT_OK)
        core_fail(L, where);
}

/* the list at stack index idx as strings in a scratch array (pushed); where names it in errors */
static const char **string_array(lua_State *L, int idx, lua_Integer n, const char *where, const char *what)
{
    const char **v = scratch(L, (size_t)n, sizeof *v);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "onnxSave: %s: %s %I must be a string, got %s", where, what, i, luaL_typename(L, -1));
        v[i - 1] = lua_tostring(L, -1); /* alive: the list holds it */
        lua_pop(L, 1);
    }
    return v;
}

static const char *const ATTR_KINDS[] = {"int", "float", "ints", "floats", "string", NULL};

/* attrs entry at stack top -> a (its arrays in scratch userdata left on the stack) */
static void read_attr(lua_State *L, int e, struct rt_onnx_attr *a, const char *where)
{
    if (!lua_istable(L, e))
        luaL_error(L, "onnxSave: %s must be {name, kind, value}, got %s", where, luaL_typename(L, e));
    lua_geti(L, e, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "onnxSave: %s: the name (entry 1) must be a string, got %s", where, luaL_typename(L, -1));
    a->name = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_geti(L, e, 2);
    const char *kind = lua_tostring(L, -1);
    int k = -1;
    for (int i = 0; kind && ATTR_KINDS[i]; i++)
        if (!strcmp(kind, ATTR_KINDS[i]))
            k = i;
    lua_pop(L, 1);
    if (k < 0)
        luaL_error(L, "onnxSave: %s ('%s'): the kind (entry 2) must be int, float, ints, floats or string", where,
                   a->name);
    a->kind = (enum rt_onnx_attr_kind)k;
    lua_geti(L, e, 3);
    int v = lua_gettop(L);
    switch (a->kind) {
    case RT_ONNX_INT:
        if (!lua_isinteger(L, v))
            luaL_error(L, "onnxSave: %s ('%s'): an integer value expected, got %s", where, a->name,
                       luaL_typename(L, v));
        a->i = (int64_t)lua_tointeger(L, v);
        break;
    case RT_ONNX_FLOAT:
        if (lua_type(L, v) != LUA_TNUMBER)
            luaL_error(L, "onnxSave: %s ('%s'): a number value expected, got %s", where, a->name, luaL_typename(L, v));
        a->f = lua_tonumber(L, v);
        break;
    case RT_ONNX_STRING:
        if (lua_type(L, v) != LUA_TSTRING)
            luaL_error(L, "onnxSave: %s ('%s'): a string value expected, got %s", where, a->name, luaL_typename(L, v));
        a->s = lua_tostring(L, v);
        break;
    case RT_ONNX_INTS:
    case RT_ONNX_FLOATS: {
        if (!lua_istable(L, v))
            luaL_error(L, "onnxSave: %s ('%s'): a list value expected, got %s", where, a->name, luaL_typename(L, v));
        lua_Integer n = luaL_len(L, v);
        bool ints = a->kind == RT_ONNX_INTS;
        void *arr = scratch(L, (size_t)n, ints ? sizeof(int64_t) : sizeof(double));
        lua_insert(L, v); /* keep the scratch below the value: the caller pops down to it */
        v++;
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, v, i);
            if (ints ? !lua_isinteger(L, -1) : lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "onnxSave: %s ('%s'): entry %I must be %s, got %s", where, a->name, i,
                           ints ? "an integer" : "a number", luaL_typename(L, -1));
            if (ints)
                ((int64_t *)arr)[i - 1] = (int64_t)lua_tointeger(L, -1);
            else
                ((double *)arr)[i - 1] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        a->n = (size_t)n;
        if (ints)
            a->ints = arr;
        else
            a->floats = arr;
        break;
    }
    }
    lua_pop(L, 1); /* the value (strings stay alive in the attrs table) */
}

/* a nodes entry: {op =, name =, inputs =, outputs =, attrs =} */
static void add_node(lua_State *L, struct rt_onnx_model *m, int e, const char *where)
{
    const char *op = field_string(L, e, "op", where);
    const char *name = field_string(L, e, "name", where);
    char named[64 + 256];
    snprintf(named, sizeof named, "%s ('%.200s')", where, name);
    lua_Integer nin = push_list(L, e, "inputs", named);
    const char **in = string_array(L, lua_gettop(L), nin, named, "input");
    lua_Integer nout = push_list(L, e, "outputs", named);
    const char **out = string_array(L, lua_gettop(L), nout, named, "output");
    lua_Integer nattr = push_list(L, e, "attrs", named);
    int attrs = lua_gettop(L);
    struct rt_onnx_attr *av = scratch(L, (size_t)nattr, sizeof *av);
    memset(av, 0, (size_t)nattr * sizeof *av);
    for (lua_Integer a = 1; a <= nattr; a++) {
        char awhere[64 + 320];
        snprintf(awhere, sizeof awhere, "%s: attrs[%lld]", named, (long long)a);
        luaL_checkstack(L, 4, "onnxSave: too many attributes");
        lua_geti(L, attrs, a);
        read_attr(L, lua_gettop(L), &av[a - 1], awhere);
        /* the entry table stays on the stack, with any scratch array read_attr pushed */
    }
    if (rt_onnx_add_node(m, op, name, (int)nin, in, (int)nout, out, (int)nattr, av) != RT_OK)
        core_fail(L, named);
}

/* a metadata entry: {key, value} */
static void add_metadata_entry(lua_State *L, struct rt_onnx_model *m, int e, const char *where)
{
    lua_geti(L, e, 1);
    lua_geti(L, e, 2);
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "onnxSave: %s must be {key, value} with two strings", where);
    if (rt_onnx_add_metadata(m, lua_tostring(L, -2), lua_tostring(L, -1)) != RT_OK)
        core_fail(L, where);
}

static lua_Integer opt_int_field(lua_State *L, int t, const char *key, lua_Integer def)
{
    lua_getfield(L, t, key);
    lua_Integer v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1))
            luaL_error(L, "onnxSave: field '%s' must be an integer, got %s", key, luaL_typename(L, -1));
        v = lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static int f_onnx_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (!rt_onnx_available())
        return luaL_error(L, "onnxSave: %s", NOT_BUILT);
    struct rt_onnx_info info = {
        .opset = opt_int_field(L, 2, "opset", 13),
        .ir_version = opt_int_field(L, 2, "irVersion", 7),
        .producer = opt_field_string(L, 2, "producer"),
        .producer_version = opt_field_string(L, 2, "producerVersion"),
        .graph_name = opt_field_string(L, 2, "graphName"),
        .doc = opt_field_string(L, 2, "doc"),
    };
    struct model_box *box = lua_newuserdatauv(L, sizeof *box, 0); /* index 3 */
    box->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    if (rt_onnx_model_new(&info, &box->m) != RT_OK)
        return core_fail(L, "the model");
    each_entry(L, box->m, 2, "metadata", "{key, value}", add_metadata_entry);
    each_entry(L, box->m, 2, "inputs", "a table", add_input);
    each_entry(L, box->m, 2, "initializers", "a table", add_initializer);
    each_entry(L, box->m, 2, "nodes", "a table", add_node);
    each_entry(L, box->m, 2, "outputs", "a table", add_output);
    size_t bytes = 0;
    if (rt_onnx_encoded_size(box->m, &bytes) != RT_OK)
        return core_fail(L, path);
    if (rt_onnx_save(box->m, path) != RT_OK) {
        /* the core's message names the file: only its function name is replaced */
        const char *msg = rt_error_msg(), *colon = strstr(msg, ": ");
        return luaL_error(L, "onnxSave: %s", !strncmp(msg, "rt_onnx_", 8) && colon ? colon + 2 : msg);
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)rt_onnx_node_count(box->m));
    lua_setfield(L, -2, "nodes");
    lua_pushinteger(L, (lua_Integer)rt_onnx_initializer_count(box->m));
    lua_setfield(L, -2, "initializers");
    rt_onnx_model_free(box->m); /* now, not at the next collection: a model may hold its weights' copy */
    box->m = NULL;
    return 1;
}

static const luaL_Reg funcs[] = {{"onnxAvailable", f_onnx_available}, {"onnxSave", f_onnx_save}, {NULL, NULL}};

void rtb_open_onnx(lua_State *L, int module)
{
    if (luaL_newmetatable(L, MODEL_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    rtb_register(L, module, funcs);
}
