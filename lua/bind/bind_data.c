/* Data pipeline and RNG-state functions on the module table (core: retort/data.h, retort/random.h).
 *
 *   readIdx(path)                     -> u8 tensor with the IDX file's dims (plain or .gz)
 *   augmentCropFlip(x, pad, flip, seed, epoch [, ids])
 *                                     -> new tensor: random crop with zero padding + horizontal flip,
 *                                        per example a pure function of (seed, epoch, ids[i]);
 *                                        x u8/f32/f64 (N,C,H,W); ids an i64 tensor of N example ids
 *                                        (any integers; default 1..N)
 *   shufflePermutation(n, seed, epoch) -> i64 permutation of 1..n, a pure function of (seed, epoch)
 *   rngBits(seed, counter)            -> the 64 random bits rt_rng_bits gives (an integer; all bits kept):
 *                                        augmentCropFlip draws example id's crop and flip from
 *                                        rngBits(rngBits(seed, epoch), id)
 *   getRngState()                     -> {seed = s, offset = o} of the default generator (integers;
 *                                        64-bit values keep their bits)
 *   setRngState(state)                -> restores it (the table getRngState returned) */
#include "bind_internal.h"
#include "retort/data.h"

static int f_read_idx(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_idx_read(path, out));
    return 1;
}

static int f_augment_crop_flip(lua_State *L)
{
    struct rt_tensor *x = rtb_check(L, 1);
    lua_Integer pad = luaL_checkinteger(L, 2);
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    int flip = lua_toboolean(L, 3);
    lua_Integer seed = luaL_checkinteger(L, 4);
    lua_Integer epoch = luaL_checkinteger(L, 5);
    if (pad < 0)
        return luaL_argerror(L, 2, "pad must be >= 0");
    const int64_t *ids = NULL;
    struct rt_tensor **idc = NULL;
    if (!lua_isnoneornil(L, 6)) {
        struct rt_tensor *idt = rtb_check(L, 6);
        if (idt->dtype != RT_I64 || idt->ndim != 1 || x->ndim < 1 || idt->shape[0] != x->shape[0])
            return luaL_argerror(L, 6, lua_pushfstring(L, "example ids must be an i64 tensor of %I entries (one per example)",
                                                       (lua_Integer)(x->ndim ? x->shape[0] : 0)));
        idc = rtb_slot(L); /* a contiguous CPU copy owned by Lua */
        RTB_CALL(L, rt_to_device(idt, RT_CPU, idc));
        struct rt_tensor *c = NULL;
        RTB_CALL(L, rt_contiguous(*idc, &c));
        rt_tensor_release(*idc);
        *idc = c;
        ids = rt_tensor_data(c);
    }
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_augment_crop_flip(x, pad, flip, (uint64_t)seed, (uint64_t)epoch, ids, out));
    return 1;
}

static int f_shuffle_permutation(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    lua_Integer seed = luaL_checkinteger(L, 2);
    lua_Integer epoch = luaL_checkinteger(L, 3);
    if (n < 0)
        return luaL_argerror(L, 1, "n must be >= 0");
    struct rt_rng g;
    rt_rng_init(&g, rt_rng_bits((uint64_t)seed, (uint64_t)epoch));
    struct rt_tensor **out = rtb_slot(L);
    RTB_CALL(L, rt_randperm(n, &g, out));
    RTB_CALL(L, rt_add_scalar_(*out, 1));
    return 1;
}

static int f_rng_bits(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1);
    lua_Integer counter = luaL_checkinteger(L, 2);
    lua_pushinteger(L, (lua_Integer)rt_rng_bits((uint64_t)seed, (uint64_t)counter));
    return 1;
}

static int f_get_rng_state(lua_State *L)
{
    struct rt_rng *g = rt_rng_default();
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)g->seed);
    lua_setfield(L, -2, "seed");
    lua_pushinteger(L, (lua_Integer)g->offset);
    lua_setfield(L, -2, "offset");
    return 1;
}

static int f_set_rng_state(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int isint_s, isint_o;
    lua_getfield(L, 1, "seed");
    lua_getfield(L, 1, "offset");
    lua_Integer seed = lua_tointegerx(L, -2, &isint_s);
    lua_Integer offset = lua_tointegerx(L, -1, &isint_o);
    if (!isint_s || !isint_o)
        return luaL_argerror(L, 1, "expected {seed = integer, offset = integer} (a table from getRngState)");
    struct rt_rng *g = rt_rng_default();
    g->seed = (uint64_t)seed;
    g->offset = (uint64_t)offset;
    return 0;
}

static const luaL_Reg funcs[] = {{"readIdx", f_read_idx},
                                 {"augmentCropFlip", f_augment_crop_flip},
                                 {"shufflePermutation", f_shuffle_permutation},
                                 {"rngBits", f_rng_bits},
                                 {"getRngState", f_get_rng_state},
                                 {"setRngState", f_set_rng_state},
                                 {NULL, NULL}};

void rtb_open_data(lua_State *L, int module)
{
    rtb_register(L, module, funcs);
}
