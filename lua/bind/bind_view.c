/* Views (share storage with their source: view, reshape when strides allow, narrow, select,
 * transpose, t, permute, expand, unsqueeze, squeeze, flatten) and copies (contiguous, clone,
 * detach, dtype and device conversions). Dims and positions are 1-based (see bind_internal.h). */
#include <string.h>

#include "bind_internal.h"

static int m_view(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    rtb_check_sizes(L, 2, &ndim, shape, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_view(t, ndim, shape, out));
    return 1;
}

static int m_reshape(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    rtb_check_sizes(L, 2, &ndim, shape, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_reshape(t, ndim, shape, out));
    return 1;
}

/* narrow(dim, start, length): elements start .. start+length-1 (1-based) along dim. */
static int m_narrow(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, t->ndim);
    lua_Integer start = luaL_checkinteger(L, 3);
    lua_Integer len = luaL_checkinteger(L, 4);
    lua_Integer size = t->shape[dim];
    if (start < 1 || start > size + 1)
        return luaL_argerror(L, 3, lua_pushfstring(L, "start %I out of range [1, %I] for dim %d of size %I", start,
                                                   size + 1, dim + 1, size));
    if (len < 0 || start - 1 + len > size)
        return luaL_argerror(L, 4, lua_pushfstring(L, "length %I out of range: start %I + length %I - 1 exceeds size %I "
                                                      "of dim %d",
                                                   len, start, len, size, dim + 1));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_narrow(t, dim, start - 1, len, out));
    return 1;
}

/* select(dim, index): the slice at 1-based index (negative counts from the end); drops dim. */
static int m_select(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, t->ndim);
    lua_Integer i = luaL_checkinteger(L, 3);
    lua_Integer size = t->shape[dim];
    lua_Integer j = i < 0 ? i + size + 1 : i;
    if (j < 1 || j > size)
        return luaL_argerror(L, 3, lua_pushfstring(L, "index %I out of range [1, %I] for dim %d", i, size, dim + 1));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_select(t, dim, j - 1, out));
    return 1;
}

static int m_transpose(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int d0 = rtb_check_dim(L, 2, t->ndim);
    int d1 = rtb_check_dim(L, 3, t->ndim);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_transpose(t, d0, d1, out));
    return 1;
}

static int m_t(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (t->ndim != 2)
        return luaL_error(L, "t: expected a 2-D tensor, got %d-D (use transpose(d1, d2))", t->ndim);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_transpose(t, 0, 1, out));
    return 1;
}

static int m_permute(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int n = 0;
    lua_Integer d1[RT_MAX_DIMS];
    if (lua_istable(L, 2)) { /* permute{3, 1, 2} */
        lua_Integer len = luaL_len(L, 2);
        if (len != t->ndim)
            return luaL_argerror(L, 2, lua_pushfstring(L, "a %d-D tensor needs %d dims, got %I", t->ndim, t->ndim, len));
        for (n = 0; n < (int)len; n++) {
            lua_geti(L, 2, n + 1);
            int ok;
            d1[n] = lua_tointegerx(L, -1, &ok);
            if (!ok)
                return luaL_argerror(L, 2, "dims must be integers");
            lua_pop(L, 1);
        }
    } else { /* permute(3, 1, 2) */
        n = lua_gettop(L) - 1;
        if (n != t->ndim)
            return luaL_argerror(L, 2, lua_pushfstring(L, "a %d-D tensor needs %d dims, got %d", t->ndim, t->ndim, n));
        for (int i = 0; i < n; i++)
            d1[i] = luaL_checkinteger(L, 2 + i);
    }
    int dims[RT_MAX_DIMS];
    int seen[RT_MAX_DIMS] = {0};
    for (int i = 0; i < n; i++) {
        dims[i] = rtb_dim_value(L, 2, d1[i], t->ndim);
        if (seen[dims[i]]++)
            return luaL_argerror(L, 2, lua_pushfstring(L, "dim %d repeated", dims[i] + 1));
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_permute(t, dims, out));
    return 1;
}

static int m_expand(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    /* -1 keeps a dim's size; any number of them is fine */
    if (lua_istable(L, 2)) {
        lua_Integer len = luaL_len(L, 2);
        if (len > RT_MAX_DIMS)
            return luaL_argerror(L, 2, "too many sizes");
        ndim = (int)len;
        for (int i = 0; i < ndim; i++) {
            lua_geti(L, 2, i + 1);
            int ok;
            shape[i] = lua_tointegerx(L, -1, &ok);
            if (!ok || shape[i] < -1)
                return luaL_argerror(L, 2, "sizes must be integers >= -1");
            lua_pop(L, 1);
        }
    } else {
        ndim = lua_gettop(L) - 1;
        if (ndim > RT_MAX_DIMS)
            return luaL_argerror(L, 2 + RT_MAX_DIMS, "too many sizes");
        for (int i = 0; i < ndim; i++) {
            shape[i] = luaL_checkinteger(L, 2 + i);
            if (shape[i] < -1)
                return luaL_argerror(L, 2 + i, "sizes must be integers >= -1");
        }
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_expand(t, ndim, shape, out));
    return 1;
}

static int m_unsqueeze(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int dim = rtb_check_dim(L, 2, t->ndim + 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_unsqueeze(t, dim, out));
    return 1;
}

/* squeeze(): drop all size-1 dims; squeeze(d): drop dim d if its size is 1. */
static int m_squeeze(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    int dim = lua_isnoneornil(L, 2) ? -99 : rtb_check_dim(L, 2, t->ndim);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_squeeze(t, dim, out));
    return 1;
}

/* flatten([startDim [, endDim]]): defaults 1 and -1. */
static int m_flatten(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (t->ndim == 0) {
        int64_t one = 1;
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, rt_reshape(t, 1, &one, out));
        return 1;
    }
    int s = rtb_opt_dim(L, 2, t->ndim, 0);
    int e = rtb_opt_dim(L, 3, t->ndim, t->ndim - 1);
    if (e < s)
        return luaL_argerror(L, 3, lua_pushfstring(L, "end dim %d comes before start dim %d", e + 1, s + 1));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_flatten(t, s, e, out));
    return 1;
}

static int m_contiguous(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_contiguous(t, out));
    return 1;
}

static int m_clone(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_clone(t, out));
    return 1;
}

static int m_detach(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_detach(t, out));
    return 1;
}

static int convert(lua_State *L, enum rt_dtype dt)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (t->dtype == dt) { /* Torch7: a no-op conversion returns the tensor itself */
        lua_settop(L, 1);
        return 1;
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_to_dtype(t, dt, out));
    return 1;
}

static int m_float(lua_State *L) { return convert(L, RT_F32); }
static int m_double(lua_State *L) { return convert(L, RT_F64); }
static int m_long(lua_State *L) { return convert(L, RT_I64); }
static int m_byte(lua_State *L) { return convert(L, RT_U8); }
static int m_bf16(lua_State *L) { return convert(L, RT_BF16); }

static int move(lua_State *L, enum rt_device dev)
{
    struct rt_tensor *t = rtb_check(L, 1);
    if (rt_tensor_device(t) == dev) {
        lua_settop(L, 1);
        return 1;
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_to_device(t, dev, out));
    return 1;
}

static int m_cuda(lua_State *L) { return move(L, RT_CUDA); }
static int m_cpu(lua_State *L) { return move(L, RT_CPU); }

/* to(dtype | "cpu" | "cuda" | other tensor): convert dtype or move; with a tensor, match both. */
static int m_to(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor *like = rtb_test(L, 2);
    if (like) {
        lua_settop(L, 1);
        struct rt_tensor *cur = t;
        if (cur->dtype != like->dtype) {
            struct rt_tensor **out = rtb_slot(L);
            RTB_CALL(L, rt_to_dtype(cur, like->dtype, out));
            cur = *out;
        }
        if (rt_tensor_device(cur) != rt_tensor_device(like)) {
            struct rt_tensor **out = rtb_slot(L);
            RTB_CALL(L, rt_to_device(cur, rt_tensor_device(like), out));
        }
        return 1;
    }
    const char *s = luaL_checkstring(L, 2);
    if (strcmp(s, "cpu") == 0 || strcmp(s, "cuda") == 0)
        return move(L, rtb_check_device(L, 2));
    enum rt_dtype dt;
    if (rt_dtype_parse(s, &dt) != RT_OK) /* neither: say both what devices and what dtypes there are */
        return luaL_argerror(L, 2,
                             lua_pushfstring(L, "unknown device or dtype '%s' (devices: \"cpu\", \"cuda\"; dtypes: "
                                                "\"f32\", \"f64\", \"i64\", \"u8\", \"bf16\" and their Torch names)",
                                             s));
    return convert(L, dt);
}

static const luaL_Reg methods[] = {
    {"view", m_view},         {"reshape", m_reshape},       {"narrow", m_narrow},   {"select", m_select},
    {"transpose", m_transpose}, {"t", m_t},                 {"permute", m_permute}, {"expand", m_expand},
    {"unsqueeze", m_unsqueeze}, {"squeeze", m_squeeze},     {"flatten", m_flatten}, {"contiguous", m_contiguous},
    {"clone", m_clone},       {"detach", m_detach},         {"float", m_float},     {"double", m_double},
    {"long", m_long},         {"byte", m_byte},             {"to", m_to},           {"cuda", m_cuda},
    {"cpu", m_cpu},           {"bf16", m_bf16},             {NULL, NULL}};

void rtb_open_view(lua_State *L, int methods_idx)
{
    rtb_register(L, methods_idx, methods);
}
