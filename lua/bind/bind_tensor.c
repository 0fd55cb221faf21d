/* The "retort.Tensor" userdata: lifetime (__gc/__close), push/check helpers, dims and sizes
 * arguments, GC pressure, the __index/__newindex fields, and queries (shape, size, item, ...). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bind_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* GC pressure. Tensor memory is allocated by the core, outside Lua's allocator, so Lua's GC only
 * sees a few bytes per tensor and a loop creating large temporaries would balloon. Every time a
 * tensor userdata is created we look at the bytes the core holds; when they have grown by more
 * than max(64 MiB, what was live after the last collection) since that collection, we run a full
 * collection. That bounds garbage by about the live size (at least 64 MiB) and the cost stays
 * amortised: a collection happens only after the heap has at least doubled. */

#define RTB_GC_MIN_ALLOWANCE ((size_t)64 << 20)

static size_t gc_baseline; /* bytes held by the core after the last collection we triggered */

size_t rtb_memory_total(void) { return rt_memory_in_use(RT_CPU) + rt_memory_in_use(RT_CUDA); }

static void gc_pressure(lua_State *L)
{
    size_t used = rtb_memory_total();
    if (used < gc_baseline) /* memory was released without the GC (closed tensors, ...) */
        gc_baseline = used;
    size_t allowance = gc_baseline > RTB_GC_MIN_ALLOWANCE ? gc_baseline : RTB_GC_MIN_ALLOWANCE;
    if (used - gc_baseline > allowance) {
        lua_gc(L, LUA_GCCOLLECT);
        gc_baseline = rtb_memory_total();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* userdata */

struct rt_tensor **rtb_slot(lua_State *L)
{
    gc_pressure(L);
    struct rtb_tensor *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->t = NULL;
    luaL_setmetatable(L, RTB_TENSOR_MT);
    return &u->t;
}

void rtb_push_ref(lua_State *L, struct rt_tensor *t)
{
    struct rt_tensor **slot = rtb_slot(L);
    rt_tensor_retain(t);
    *slot = t;
}

struct rt_tensor *rtb_test(lua_State *L, int idx)
{
    struct rtb_tensor *u = luaL_testudata(L, idx, RTB_TENSOR_MT);
    if (!u)
        return NULL;
    if (!u->t)
        luaL_argerror(L, idx, "retort.Tensor is closed");
    return u->t;
}

struct rt_tensor *rtb_check(lua_State *L, int idx)
{
    struct rtb_tensor *u = luaL_testudata(L, idx, RTB_TENSOR_MT);
    if (!u)
        luaL_typeerror(L, idx, RTB_TENSOR_MT);
    if (!u->t)
        luaL_argerror(L, idx, "retort.Tensor is closed");
    return u->t;
}

static const char *core_message(void)
{
    const char *msg = rt_error_msg();
    if (!msg || !*msg)
        msg = "retort: the core reported an error without a message";
    if (strncmp(msg, "rt_", 3) == 0)
        msg += 3;
    return msg;
}

int rtb_core_error(lua_State *L)
{
    return luaL_error(L, "%s", core_message());
}

int rtb_status_error(lua_State *L, enum rt_status st)
{
    if (st == RT_ERR_INTERRUPTED) {
        rt_interrupt_clear();
        return luaL_error(L, "interrupted! (%s)", core_message());
    }
    return rtb_core_error(L);
}

const char *rtb_type_name(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32: return "retort.FloatTensor";
    case RT_F64: return "retort.DoubleTensor";
    case RT_I64: return "retort.LongTensor";
    case RT_U8: return "retort.ByteTensor";
    case RT_BF16: return "retort.BFloat16Tensor";
    default: return "retort.Tensor";
    }
}

enum rt_dtype rtb_check_dtype(lua_State *L, int arg)
{
    const char *s = luaL_checkstring(L, arg);
    enum rt_dtype dt;
    if (rt_dtype_parse(s, &dt) != RT_OK)
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "unknown dtype '%s' (expected \"f32\"/\"float\", \"f64\"/\"double\", "
                                         "\"i64\"/\"long\", \"u8\"/\"byte\" or \"bf16\"/\"bfloat16\")",
                                      s));
    return dt;
}

enum rt_dtype rtb_opt_dtype(lua_State *L, int arg, enum rt_dtype def)
{
    return lua_isnoneornil(L, arg) ? def : rtb_check_dtype(L, arg);
}

int rtb_dim_value(lua_State *L, int arg, lua_Integer d, int ndim)
{
    if (d >= 1 && d <= ndim)
        return (int)(d - 1);
    if (d < 0 && -d <= ndim)
        return (int)(ndim + d);
    return luaL_argerror(L, arg,
                         lua_pushfstring(L, "dim %I out of range for a %d-D tensor (dims are 1-based, -1 is the last)",
                                         d, ndim));
}

int rtb_check_dim(lua_State *L, int arg, int ndim)
{
    return rtb_dim_value(L, arg, luaL_checkinteger(L, arg), ndim);
}

int rtb_opt_dim(lua_State *L, int arg, int ndim, int def0)
{
    return lua_isnoneornil(L, arg) ? def0 : rtb_check_dim(L, arg, ndim);
}

static int64_t size_entry(lua_State *L, int arg, int k, int allow_minus1, int *seen_minus1)
{
    int isint = 0;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint)
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "size %d must be an integer, got %s", k, luaL_typename(L, -1)));
    if (v == -1 && allow_minus1) {
        if ((*seen_minus1)++)
            luaL_argerror(L, arg, "only one size may be -1");
    } else if (v < 0) {
        luaL_argerror(L, arg, lua_pushfstring(L, "size %d is %I; sizes must be >= 0", k, v));
    }
    return (int64_t)v;
}

int rtb_check_sizes(lua_State *L, int first, int *ndim, int64_t *shape, int allow_minus1)
{
    int n = 0, seen = 0;
    if (lua_istable(L, first)) {
        lua_Integer len = luaL_len(L, first);
        if (len > RT_MAX_DIMS)
            luaL_argerror(L, first, lua_pushfstring(L, "%I sizes given, at most %d dims are supported", len,
                                                    RT_MAX_DIMS));
        for (n = 0; n < (int)len; n++) {
            lua_geti(L, first, n + 1);
            shape[n] = size_entry(L, first, n + 1, allow_minus1, &seen);
            lua_pop(L, 1);
        }
        *ndim = n;
        return first + 1;
    }
    int arg = first;
    while (lua_type(L, arg) == LUA_TNUMBER) {
        if (n == RT_MAX_DIMS)
            luaL_argerror(L, arg, lua_pushfstring(L, "too many sizes: at most %d dims are supported", RT_MAX_DIMS));
        lua_pushvalue(L, arg);
        shape[n] = size_entry(L, arg, n + 1, allow_minus1, &seen);
        lua_pop(L, 1);
        n++;
        arg++;
    }
    if (n == 0 && !lua_isnoneornil(L, first) && lua_type(L, first) != LUA_TSTRING)
        luaL_typeerror(L, first, "sizes (integers or a table of integers)");
    *ndim = n;
    return arg;
}

/* ------------------------------------------------------------------------------------------ */
/* metamethods */

static int t_gc(lua_State *L)
{
    struct rtb_tensor *u = luaL_checkudata(L, 1, RTB_TENSOR_MT);
    struct rt_tensor *t = u->t;
    u->t = NULL;
    rt_tensor_release(t);
    return 0;
}

static int t_eq(lua_State *L)
{
    /* Identity: the same core tensor (x.grad == x.grad holds). Element-wise equality is x:eq(y). */
    struct rtb_tensor *a = luaL_testudata(L, 1, RTB_TENSOR_MT);
    struct rtb_tensor *b = luaL_testudata(L, 2, RTB_TENSOR_MT);
    lua_pushboolean(L, a && b && a->t && a->t == b->t);
    return 1;
}

static int t_len(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (t->ndim == 0)
        return luaL_error(L, "retort.Tensor: # of a 0-dim tensor (use x:item() or x:numel())");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

static int t_tostring(lua_State *L)
{
    struct rtb_tensor *u = luaL_checkudata(L, 1, RTB_TENSOR_MT);
    if (!u->t) {
        lua_pushliteral(L, "retort.Tensor (closed)");
        return 1;
    }
    rtb_push_tostring(L, u->t);
    return 1;
}

/* The 1-based row index at stack slot 2 of x[i] (negative counts from the end), checked. */
static lua_Integer check_row_index(lua_State *L, struct rt_tensor *t)
{
    if (t->ndim == 0)
        return luaL_error(L, "retort.Tensor: cannot index a 0-dim tensor (use x:item())");
    int isint = 0;
    lua_Integer i = lua_tointegerx(L, 2, &isint);
    if (!isint)
        return luaL_error(L, "retort.Tensor: index must be an integer");
    if (i < 0)
        i += t->shape[0] + 1;
    if (i < 1 || i > t->shape[0])
        return luaL_error(L, "retort.Tensor: index %I out of range [1, %I]", (lua_Integer)i,
                          (lua_Integer)t->shape[0]);
    return i;
}

/* x[i]: 1-based select along dim 1 (a number for 1-D tensors, a view otherwise). */
static int index_number(lua_State *L, struct rt_tensor *t)
{
    lua_Integer i = check_row_index(L, t);
    if (t->ndim == 1) {
        int64_t idx = i - 1;
        double v;
        RTB_CALL(L, rt_tensor_get(t, &idx, &v));
        if (rtb_dtype_real(t->dtype))
            lua_pushnumber(L, v);
        else
            lua_pushinteger(L, (lua_Integer)v);
        return 1;
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_select(t, 0, i - 1, out));
    return 1;
}

static int t_index(lua_State *L)
{
    struct rtb_tensor *u = luaL_checkudata(L, 1, RTB_TENSOR_MT);
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
            return 1;
        if (strcmp(lua_tostring(L, 2), "grad") == 0) {
            if (!u->t)
                luaL_argerror(L, 1, "retort.Tensor is closed");
            if (u->t->grad)
                rtb_push_ref(L, u->t->grad);
            else
                lua_pushnil(L);
            return 1;
        }
        lua_pushnil(L);
        return 1;
    }
    if (lua_type(L, 2) == LUA_TNUMBER)
        return index_number(L, rtb_check(L, 1));
    lua_pushnil(L);
    return 1;
}

static int t_newindex(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "grad") == 0) {
        if (!lua_isnil(L, 3))
            return luaL_error(L, "retort.Tensor: field 'grad' can only be set to nil (to clear it)");
        rt_tensor_zero_grad(t);
        return 0;
    }
    if (lua_type(L, 2) == LUA_TNUMBER) {
        /* x[i] = v: fills (number) or copies into (tensor) the slice x:select(1, i). */
        lua_Integer i = check_row_index(L, t);
        struct rt_tensor *src = rtb_test(L, 3);
        if (!src && lua_type(L, 3) != LUA_TNUMBER)
            return luaL_error(L, "retort.Tensor: x[i] = v needs a number or a tensor, got %s", luaL_typename(L, 3));
        struct rt_tensor **view = rtb_slot(L);
        RTB_CALL(L, rt_select(t, 0, i - 1, view));
        RTB_CALL(L, src ? rt_copy_(*view, src) : rt_fill_(*view, lua_tonumber(L, 3)));
        return 0;
    }
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "retort.Tensor: cannot set field '%s'", lua_tostring(L, 2));
    return luaL_error(L, "retort.Tensor: cannot set a field with a %s key", luaL_typename(L, 2));
}

/* ------------------------------------------------------------------------------------------ */
/* queries */

static int m_shape(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_size(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (lua_isnoneornil(L, 2))
        return m_shape(L);
    lua_pushinteger(L, t->shape[rtb_check_dim(L, 2, t->ndim)]);
    return 1;
}

static int m_stride(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->stride[rtb_check_dim(L, 2, t->ndim)]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->stride[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_dim(lua_State *L)
{
    lua_pushinteger(L, rtb_check(L, 1)->ndim);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, rt_tensor_numel(rtb_check(L, 1)));
    return 1;
}

static int m_dtype(lua_State *L)
{
    lua_pushstring(L, rt_dtype_name(rtb_check(L, 1)->dtype));
    return 1;
}

static int m_device(lua_State *L)
{
    lua_pushstring(L, rt_device_name(rt_tensor_device(rtb_check(L, 1))));
    return 1;
}

/* t:replace_(other): t now holds other's core tensor (data, shape, dtype, device, autograd state),
 * so every Lua reference to t sees the change. net:cuda() moves parameters this way: an optimizer
 * built before the move keeps working on the moved tensors, as in PyTorch. */
static int m_replace_(lua_State *L)
{
    struct rtb_tensor *u = luaL_checkudata(L, 1, RTB_TENSOR_MT);
    rtb_check(L, 1); /* not closed */
    struct rt_tensor *src = rtb_check(L, 2);
    rt_tensor_retain(src);
    rt_tensor_release(u->t);
    u->t = src;
    lua_settop(L, 1);
    return 1;
}

static int m_type(lua_State *L)
{
    lua_pushstring(L, rtb_type_name(rtb_check(L, 1)->dtype));
    return 1;
}

static int m_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, rt_tensor_is_contiguous(rtb_check(L, 1)));
    return 1;
}

static void push_elem(lua_State *L, enum rt_dtype dt, const void *buf, int64_t i)
{
    if (rtb_dtype_real(dt))
        lua_pushnumber(L, ((const double *)buf)[i]);
    else
        lua_pushinteger(L, (lua_Integer)((const int64_t *)buf)[i]);
}

/* Nested tables from a host copy (doubles for float dtypes, int64 for integer dtypes). */
static void build_table(lua_State *L, const struct rt_tensor *t, const void *buf, int d, int64_t *pos)
{
    int64_t n = t->shape[d];
    lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        if (d == t->ndim - 1)
            push_elem(L, t->dtype, buf, (*pos)++);
        else
            build_table(L, t, buf, d + 1, pos);
        lua_rawseti(L, -2, i + 1);
    }
}

/* Pushes a GC-owned host copy of t's elements (f64 or i64) and returns it. */
static void *host_copy(lua_State *L, struct rt_tensor *t)
{
    int64_t n = rt_tensor_numel(t);
    void *buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * 8, 0);
    if (n > 0)
        RTB_CALL(L, rt_tensor_to_host(t, rtb_dtype_real(t->dtype) ? RT_F64 : RT_I64, buf));
    return buf;
}

static int m_totable(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    void *buf = host_copy(L, t);
    if (t->ndim == 0) {
        push_elem(L, t->dtype, buf, 0);
        return 1;
    }
    luaL_checkstack(L, t->ndim + 4, "tensor too deep");
    int64_t pos = 0;
    build_table(L, t, buf, 0, &pos);
    return 1;
}

static int m_item(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int64_t n = rt_tensor_numel(t);
    if (n != 1) {
        char sh[RT_SHAPE_STR_MAX];
        return luaL_error(L, "item: expected a tensor with one element, got %I elements %s", (lua_Integer)n,
                          rt_shape_str(t->ndim, t->shape, sh, sizeof sh));
    }
    void *buf = host_copy(L, t);
    push_elem(L, t->dtype, buf, 0);
    return 1;
}

/* Reads ndim 1-based (or negative) indices starting at stack position first. */
static void check_index(lua_State *L, struct rt_tensor *t, int first, int64_t *idx)
{
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 0)
            i += t->shape[d] + 1;
        if (i < 1 || i > t->shape[d])
            luaL_argerror(L, first + d,
                          lua_pushfstring(L, "index %I out of range [1, %I] for dim %d", luaL_checkinteger(L, first + d),
                                          (lua_Integer)t->shape[d], d + 1));
        idx[d] = i - 1;
    }
}

static int m_get(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (nargs != t->ndim)
        return luaL_error(L, "get: a %d-D tensor needs %d indices, got %d", t->ndim, t->ndim, nargs);
    int64_t idx[RT_MAX_DIMS];
    check_index(L, t, 2, idx);
    if (t->dtype == RT_I64 && rt_tensor_device(t) == RT_CPU) {
        const int64_t *p = rt_tensor_data(t);
        for (int d = 0; d < t->ndim; d++)
            p += idx[d] * t->stride[d];
        lua_pushinteger(L, (lua_Integer)*p);
        return 1;
    }
    double v;
    RTB_CALL(L, rt_tensor_get(t, idx, &v));
    if (rtb_dtype_real(t->dtype))
        lua_pushnumber(L, v);
    else
        lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

static int m_set(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (nargs != t->ndim + 1)
        return luaL_error(L, "set: a %d-D tensor needs %d indices and a value, got %d arguments", t->ndim, t->ndim,
                          nargs);
    int64_t idx[RT_MAX_DIMS];
    check_index(L, t, 2, idx);
    double v = luaL_checknumber(L, t->ndim + 2);
    RTB_CALL(L, rt_tensor_set(t, idx, v));
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg meta[] = {
    {"__gc", t_gc},   {"__close", t_gc},           {"__eq", t_eq},        {"__len", t_len},
    {"__tostring", t_tostring}, {"__newindex", t_newindex}, {NULL, NULL}};

static const luaL_Reg methods[] = {
    {"shape", m_shape},   {"size", m_size},         {"stride", m_stride},
    {"dim", m_dim},       {"nDimension", m_dim},    {"numel", m_numel},
    {"nElement", m_numel}, {"dtype", m_dtype},      {"device", m_device},
    {"type", m_type},     {"isContiguous", m_is_contiguous}, {"totable", m_totable},
    {"item", m_item},     {"get", m_get},           {"set", m_set},
    {"replace_", m_replace_}, {NULL, NULL}};

void rtb_open_tensor(lua_State *L, int methods_idx)
{
    luaL_newmetatable(L, RTB_TENSOR_MT); /* sets __name = "retort.Tensor"; reused when it exists */
    luaL_setfuncs(L, meta, 0);
    lua_pushvalue(L, methods_idx);
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    rtb_register(L, methods_idx, methods);
}

void rtb_register(lua_State *L, int idx, const luaL_Reg *l)
{
    lua_pushvalue(L, idx);
    luaL_setfuncs(L, l, 0);
    lua_pop(L, 1);
}
