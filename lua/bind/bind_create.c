/* Constructors on the module table: tensor (nested tables), zeros, ones, empty, full, randn,
 * rand, randperm, randint, arange, manualSeed.
 *
 * Sizes are given as varargs or as one table: zeros(2, 3) == zeros{2, 3}; an optional trailing
 * dtype string ("f32"/"float", "f64"/"double", "i64"/"long", "u8"/"byte") follows; f32 is the
 * default. No sizes at all gives a 0-dim tensor. Randomness uses the default generator
 * (reseeded by manualSeed). Ranges follow Torch7, i.e. include both ends:
 *   arange(1, 10) is 1, 2, ..., 10 (like Torch7's torch.range; unlike PyTorch's arange),
 *   arange(n) is 1..n, randint(lo, hi, sizes) draws from lo..hi inclusive,
 *   randperm(n) is a permutation of 1..n. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bind_internal.h"

/* ------------------------------------------------------------------------------------------ */
/* tensor(nested tables [, dtype]) */

struct parse {
    enum rt_dtype dt;
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    int64_t path[RT_MAX_DIMS]; /* 1-based position of the table being read */
    unsigned char *buf;
    int64_t pos;
};

static const char *path_str(const struct parse *p, int depth, char *s, size_t n)
{
    size_t used = 0;
    s[0] = '\0';
    for (int i = 0; i < depth && used < n; i++)
        used += (size_t)snprintf(s + used, n - used, i ? ",%lld" : "%lld", (long long)p->path[i]);
    return s;
}

static void store(lua_State *L, struct parse *p, int depth)
{
    char ps[160];
    int t = lua_type(L, -1);
    double d;
    int isint = 0;
    lua_Integer iv = 0;
    if (t == LUA_TBOOLEAN) {
        iv = lua_toboolean(L, -1);
        d = (double)iv;
        isint = 1;
    } else if (t == LUA_TNUMBER) {
        d = lua_tonumber(L, -1);
        iv = lua_tointegerx(L, -1, &isint);
    } else {
        luaL_error(L, "retort.tensor: entry %s is a %s, expected a number", path_str(p, depth, ps, sizeof ps),
                   luaL_typename(L, -1));
        return;
    }
    switch (p->dt) {
    case RT_F32: ((float *)p->buf)[p->pos] = (float)d; break;
    case RT_F64: ((double *)p->buf)[p->pos] = d; break;
    case RT_I64:
        if (!isint)
            luaL_error(L, "retort.tensor: entry %s is %f, not an integer (dtype i64)", path_str(p, depth, ps, sizeof ps),
                       d);
        ((int64_t *)p->buf)[p->pos] = (int64_t)iv;
        break;
    case RT_U8:
        if (!isint || iv < 0 || iv > 255)
            luaL_error(L, "retort.tensor: entry %s is %s, not an integer in [0, 255] (dtype u8)",
                       path_str(p, depth, ps, sizeof ps), luaL_tolstring(L, -1, NULL));
        ((uint8_t *)p->buf)[p->pos] = (uint8_t)iv;
        break;
    default: break;
    }
    p->pos++;
}

/* The table on top of the stack sits at depth `depth` (0 = the outermost table). */
static void fill(lua_State *L, struct parse *p, int depth)
{
    char ps[160];
    int64_t len = (int64_t)lua_rawlen(L, -1);
    if (len != p->shape[depth])
        luaL_error(L, "retort.tensor: ragged nested table: row %s has %I elements, expected %I",
                   path_str(p, depth, ps, sizeof ps), (lua_Integer)len, (lua_Integer)p->shape[depth]);
    for (int64_t i = 1; i <= len; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        p->path[depth] = i;
        if (depth + 1 < p->ndim) {
            if (!lua_istable(L, -1))
                luaL_error(L, "retort.tensor: ragged nested table: row %s is a %s, expected a table of %I elements",
                           path_str(p, depth + 1, ps, sizeof ps), luaL_typename(L, -1),
                           (lua_Integer)p->shape[depth + 1]);
            fill(L, p, depth + 1);
        } else {
            if (lua_istable(L, -1))
                luaL_error(L, "retort.tensor: ragged nested table: entry %s is a table, expected a number",
                           path_str(p, depth + 1, ps, sizeof ps));
            store(L, p, depth + 1);
        }
        lua_pop(L, 1);
    }
}

static int f_tensor(lua_State *L)
{
    struct rt_tensor *src = rtb_test(L, 1);
    enum rt_dtype dt = rtb_opt_dtype(L, 2, src ? src->dtype : RT_F32);
    if (src) { /* tensor(x [, dtype]): a copy */
        struct rt_tensor **out = rtb_slot(L);
        RTB_CALL(L, dt == src->dtype ? rt_clone(src, out) : rt_to_dtype(src, dt, out));
        return 1;
    }
    struct parse p = {.dt = dt, .ndim = 0};
    if (lua_type(L, 1) == LUA_TNUMBER || lua_type(L, 1) == LUA_TBOOLEAN) {
        p.buf = lua_newuserdatauv(L, 8, 0);
        lua_pushvalue(L, 1);
        store(L, &p, 0);
        lua_pop(L, 1);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        /* shape from the first element at each depth */
        lua_pushvalue(L, 1);
        int pushed = 1;
        while (lua_istable(L, -1)) {
            if (p.ndim == RT_MAX_DIMS)
                return luaL_error(L, "retort.tensor: nested more than %d levels deep", RT_MAX_DIMS);
            p.shape[p.ndim++] = (int64_t)lua_rawlen(L, -1);
            if (p.shape[p.ndim - 1] == 0)
                break;
            lua_rawgeti(L, -1, 1);
            pushed++;
        }
        lua_pop(L, pushed);
        int64_t n = 1;
        for (int i = 0; i < p.ndim; i++)
            n *= p.shape[i];
        p.buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * rt_dtype_size(dt), 0);
        lua_pushvalue(L, 1);
        fill(L, &p, 0);
        lua_pop(L, 1);
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_tensor_from_data(dt, p.ndim, p.shape, p.buf, out));
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* filled tensors */

static void no_extra(lua_State *L, int next)
{
    if (lua_gettop(L) > next)
        luaL_argerror(L, next + 1, "unexpected extra argument");
}

/* Reads sizes and an optional trailing dtype from argument 1 on. */
static enum rt_dtype sizes_dtype(lua_State *L, int *ndim, int64_t *shape, enum rt_dtype def)
{
    int next = rtb_check_sizes(L, 1, ndim, shape, 0);
    enum rt_dtype dt = rtb_opt_dtype(L, next, def);
    no_extra(L, next);
    return dt;
}

static int filled(lua_State *L, double value, int uninit)
{
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    enum rt_dtype dt = sizes_dtype(L, &ndim, shape, RT_F32);
    struct rt_tensor **out = rtb_slot(L);
    if (uninit)
        RTB_CALL(L, rt_tensor_empty(dt, RT_CPU, ndim, shape, out));
    else if (value == 0)
        RTB_CALL(L, rt_tensor_new(dt, RT_CPU, ndim, shape, out));
    else
        RTB_CALL(L, rt_tensor_full(dt, RT_CPU, ndim, shape, value, out));
    return 1;
}

static int f_zeros(lua_State *L) { return filled(L, 0.0, 0); }
static int f_ones(lua_State *L) { return filled(L, 1.0, 0); }
static int f_empty(lua_State *L) { return filled(L, 0.0, 1); }

/* full(sizes, value [, dtype]) or full(s1, s2, ..., value [, dtype]): the last number is the value. */
static int f_full(lua_State *L)
{
    int ndim = 0;
    int64_t shape[RT_MAX_DIMS];
    double value;
    int next;
    if (lua_istable(L, 1)) {
        rtb_check_sizes(L, 1, &ndim, shape, 0);
        value = luaL_checknumber(L, 2);
        next = 3;
    } else {
        int nnum = 0;
        while (lua_type(L, nnum + 1) == LUA_TNUMBER)
            nnum++;
        if (nnum == 0)
            return luaL_typeerror(L, 1, "sizes and a value");
        if (nnum - 1 > RT_MAX_DIMS)
            return luaL_argerror(L, 1, "too many sizes");
        for (int i = 0; i < nnum - 1; i++) {
            int isint;
            lua_Integer v = lua_tointegerx(L, i + 1, &isint);
            if (!isint || v < 0)
                return luaL_argerror(L, i + 1, "sizes must be integers >= 0");
            shape[ndim++] = v;
        }
        value = lua_tonumber(L, nnum);
        next = nnum + 1;
    }
    enum rt_dtype dt = rtb_opt_dtype(L, next, RT_F32);
    no_extra(L, next);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_tensor_full(dt, RT_CPU, ndim, shape, value, out));
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* random */

static int random_tensor(lua_State *L, int normal)
{
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    enum rt_dtype dt = sizes_dtype(L, &ndim, shape, RT_F32);
    if (!rt_dtype_is_float(dt))
        return luaL_error(L, "%s: dtype must be f32 or f64, got %s", normal ? "randn" : "rand", rt_dtype_name(dt));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_tensor_empty(dt, RT_CPU, ndim, shape, out));
    RTB_CALL(L, normal ? rt_normal_(*out, NULL, 0.0, 1.0) : rt_uniform_(*out, NULL, 0.0, 1.0));
    return 1;
}

static int f_randn(lua_State *L) { return random_tensor(L, 1); }
static int f_rand(lua_State *L) { return random_tensor(L, 0); }

static int f_randperm(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0)
        return luaL_argerror(L, 1, "n must be >= 0");
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_randperm(n, NULL, out));
    RTB_CALL(L, rt_add_scalar_(*out, 1));
    return 1;
}

/* randint(lo, hi, sizes...): i64 integers uniform in lo..hi, both included. */
static int f_randint(lua_State *L)
{
    lua_Integer lo = luaL_checkinteger(L, 1);
    lua_Integer hi = luaL_checkinteger(L, 2);
    if (hi < lo)
        return luaL_argerror(L, 2, lua_pushfstring(L, "upper bound %I is below lower bound %I", hi, lo));
    if (hi == LUA_MAXINTEGER)
        return luaL_argerror(L, 2, "upper bound too large");
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    int next = rtb_check_sizes(L, 3, &ndim, shape, 0);
    if (lua_gettop(L) >= next)
        return luaL_argerror(L, next, "unexpected extra argument");
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_randint(lo, hi + 1, ndim, shape, NULL, out));
    return 1;
}

/* arange(start, end [, step] [, dtype]) -> start, start+step, ..., up to and including end
 * (Torch7's torch.range convention); arange(n) -> 1..n. Default dtype f32. */
static int f_arange(lua_State *L)
{
    int nnum = 0;
    while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER)
        nnum++;
    if (nnum == 0)
        return luaL_typeerror(L, 1, "number");
    double start = 1, end, step = 1;
    if (nnum == 1) {
        end = lua_tonumber(L, 1);
    } else {
        start = lua_tonumber(L, 1);
        end = lua_tonumber(L, 2);
        if (nnum == 3)
            step = lua_tonumber(L, 3);
    }
    enum rt_dtype dt = rtb_opt_dtype(L, nnum + 1, RT_F32);
    no_extra(L, nnum + 1);
    if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(end))
        return luaL_argerror(L, nnum >= 3 ? 3 : 1, "start, end and step must be finite, and step nonzero");
    double span = (end - start) / step;
    if (span < -1e-9)
        return luaL_error(L, "arange: end %f cannot be reached from start %f with step %f", end, start, step);
    double count = floor(span + 1e-9) + 1; /* tolerate rounding in (end - start) / step */
    if (count > 1e12)
        return luaL_error(L, "arange: too many elements (%f)", count);
    /* the core's arange excludes its end: put the end half a step after the last element */
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_tensor_arange(dt, start, start + (count - 0.5) * step, step, out));
    return 1;
}

static int f_manual_seed(lua_State *L)
{
    lua_Integer s = luaL_checkinteger(L, 1);
    rt_manual_seed((uint64_t)s);
    return 0;
}

/* emptyLike(t) / zerosLike(t): a new tensor of t's shape, dtype and device (empty: contents unset,
 * for kernels that overwrite every element) */
static int like(lua_State *L, bool zero)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, zero ? rt_tensor_zeros_like(t, out) : rt_tensor_empty_like(t, out));
    return 1;
}
static int f_empty_like(lua_State *L) { return like(L, false); }
static int f_zeros_like(lua_State *L) { return like(L, true); }

static const luaL_Reg funcs[] = {
    {"tensor", f_tensor}, {"zeros", f_zeros},       {"ones", f_ones},         {"empty", f_empty},
    {"full", f_full},     {"randn", f_randn},       {"rand", f_rand},         {"randperm", f_randperm},
    {"randint", f_randint}, {"arange", f_arange},   {"manualSeed", f_manual_seed},
    {"emptyLike", f_empty_like}, {"zerosLike", f_zeros_like}, {NULL, NULL}};

void rtb_open_create(lua_State *L, int module_idx)
{
    rtb_register(L, module_idx, funcs);
}
