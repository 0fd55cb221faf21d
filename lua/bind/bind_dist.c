/* Distributed runs from Lua (retort/dist.h): the table retort.core._dist, which lua/retort/dist.lua wraps
 * with the user-facing checks and names. Ranks are 0-based, as MPI and mpirun number them.
 *
 *   launched(), builtWithMpi(), builtWithNccl(), active(), rank(), size(), localRank(), localSize(), host()
 *   init()                      starts MPI when a launcher started us (the host already did; a plain
 *                               lua5.4 gets it here)
 *   allReduce(t, op)            new tensor, differentiable for "sum" and "mean"; op "sum" | "mean" | "max"
 *   allReduce_(t, op)           in place; returns t
 *   broadcast_(t, root)         in place; returns t
 *   allGather(t)                new tensor: the ranks' t along dim 1, in rank order
 *   barrier(), setTimeout(s), timeout(), abort(code), finalize()
 *   Reducer(params, bucketBytes, sum) -> reducer: r:begin() before backward, r:finish() after it (sum:
 *                               the gradients are left summed over the ranks, not averaged);
 *                               r:buckets() -> {{params =, bytes =}, ...}; r:early() (buckets started
 *                               during the last backward) */
#include <math.h>
#include <stdio.h>

#include "bind_internal.h"

#define REDUCER_MT "retort.dist.Reducer"

struct rtb_reducer {
    struct rt_dist_reducer *r;
};

static enum rt_dist_op check_op(lua_State *L, int arg)
{
    static const char *const names[] = {"sum", "mean", "max", NULL};
    static const enum rt_dist_op ops[] = {RT_DIST_SUM, RT_DIST_MEAN, RT_DIST_MAX};
    return ops[luaL_checkoption(L, arg, "sum", names)];
}

static int f_launched(lua_State *L)
{
    lua_pushboolean(L, rt_dist_launched());
    return 1;
}

static int f_built_with_mpi(lua_State *L)
{
    lua_pushboolean(L, rt_dist_built_with_mpi());
    return 1;
}

static int f_built_with_nccl(lua_State *L)
{
    lua_pushboolean(L, rt_dist_built_with_nccl());
    return 1;
}

static int f_active(lua_State *L)
{
    lua_pushboolean(L, rt_dist_active());
    return 1;
}

static int f_rank(lua_State *L)
{
    lua_pushinteger(L, rt_dist_rank());
    return 1;
}

static int f_size(lua_State *L)
{
    lua_pushinteger(L, rt_dist_size());
    return 1;
}

static int f_local_rank(lua_State *L)
{
    lua_pushinteger(L, rt_dist_local_rank());
    return 1;
}

static int f_local_size(lua_State *L)
{
    lua_pushinteger(L, rt_dist_local_size());
    return 1;
}

static int f_host(lua_State *L)
{
    lua_pushstring(L, rt_dist_host());
    return 1;
}

static int f_init(lua_State *L)
{
    RTB_CALL(L, rt_dist_init());
    lua_pushboolean(L, rt_dist_active());
    return 1;
}

static int f_all_reduce(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    enum rt_dist_op op = check_op(L, 2);
    struct rt_tensor **slot = rtb_slot(L);
    RTB_CALL(L, rt_dist_all_reduce(t, op, slot));
    return 1;
}

static int f_all_reduce_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    RTB_CALL(L, rt_dist_all_reduce_(t, check_op(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int f_broadcast_(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    lua_Integer root = luaL_optinteger(L, 2, 0);
    if (root < 0 || root >= rt_dist_size())
        return luaL_argerror(L, 2, lua_pushfstring(L, "root must be a rank in 0..%d, got %I", rt_dist_size() - 1,
                                                   root));
    RTB_CALL(L, rt_dist_broadcast_(t, (int)root));
    lua_settop(L, 1);
    return 1;
}

static int f_all_gather(lua_State *L)
{
    struct rt_tensor *t = rtb_check(L, 1);
    struct rt_tensor **slot = rtb_slot(L);
    RTB_CALL(L, rt_dist_all_gather(t, slot));
    return 1;
}

static int f_barrier(lua_State *L)
{
    RTB_CALL(L, rt_dist_barrier());
    return 0;
}

static int f_set_timeout(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    if (!(s > 0) || s == HUGE_VAL)
        return luaL_argerror(L, 1, "a positive number of seconds expected");
    rt_dist_set_timeout((double)s);
    return 0;
}

static int f_timeout(lua_State *L)
{
    lua_pushnumber(L, rt_dist_timeout());
    return 1;
}

static int f_abort(lua_State *L)
{
    lua_Integer code = luaL_optinteger(L, 1, 1);
    fflush(stdout);
    fflush(stderr);
    rt_dist_abort(code > 0 && code < 256 ? (int)code : 1);
    return 0; /* one process: nothing to end */
}

static int f_finalize(lua_State *L)
{
    RTB_CALL(L, rt_dist_finalize());
    return 0;
}

/* --- the gradient reducer --- */

static struct rtb_reducer *check_reducer(lua_State *L)
{
    struct rtb_reducer *u = luaL_checkudata(L, 1, REDUCER_MT);
    if (!u->r)
        luaL_error(L, "retort.dist.Reducer is closed");
    return u;
}

static int f_reducer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 0 || n > 1000000)
        return luaL_argerror(L, 1, "too many parameters");
    lua_Integer mb = luaL_optinteger(L, 2, 0);
    int sum = lua_toboolean(L, 3);
    if (mb < 0 || mb > ((lua_Integer)1 << 40))
        return luaL_argerror(L, 2, "bucket size in bytes must be >= 0 (0: the default)");
    struct rtb_reducer *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->r = NULL;
    luaL_setmetatable(L, REDUCER_MT);
    struct rt_tensor **ps = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *ps, 0); /* scratch, collected */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        ps[i - 1] = rtb_test(L, -1);
        if (!ps[i - 1])
            return luaL_argerror(L, 1, lua_pushfstring(L, "parameter %I is not a retort.Tensor (%s)", i,
                                                       luaL_typename(L, -1)));
        lua_pop(L, 1); /* the list keeps it alive */
    }
    RTB_CALL(L, rt_dist_reducer_new((int)n, ps, (size_t)mb, &u->r));
    rt_dist_reducer_set_sum(u->r, sum);
    lua_pop(L, 1);
    return 1;
}

static int m_reducer_begin(lua_State *L)
{
    RTB_CALL(L, rt_dist_reducer_begin(check_reducer(L)->r));
    return 0;
}

static int m_reducer_finish(lua_State *L)
{
    RTB_CALL(L, rt_dist_reducer_finish(check_reducer(L)->r));
    return 0;
}

static int m_reducer_buckets(lua_State *L)
{
    struct rt_dist_reducer *r = check_reducer(L)->r;
    int nb = rt_dist_reducer_buckets(r);
    lua_createtable(L, nb, 0);
    for (int i = 0; i < nb; i++) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, rt_dist_reducer_bucket_params(r, i));
        lua_setfield(L, -2, "params");
        lua_pushinteger(L, (lua_Integer)rt_dist_reducer_bucket_bytes(r, i));
        lua_setfield(L, -2, "bytes");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_reducer_early(lua_State *L)
{
    lua_pushinteger(L, rt_dist_reducer_early(check_reducer(L)->r));
    return 1;
}

static int m_reducer_gc(lua_State *L)
{
    struct rtb_reducer *u = luaL_checkudata(L, 1, REDUCER_MT);
    rt_dist_reducer_free(u->r);
    u->r = NULL;
    return 0;
}

static int m_reducer_tostring(lua_State *L)
{
    struct rtb_reducer *u = luaL_checkudata(L, 1, REDUCER_MT);
    if (!u->r) {
        lua_pushliteral(L, "retort.dist.Reducer (closed)");
        return 1;
    }
    int64_t bytes = 0;
    for (int i = 0; i < rt_dist_reducer_buckets(u->r); i++)
        bytes += rt_dist_reducer_bucket_bytes(u->r, i);
    lua_pushfstring(L, "retort.dist.Reducer(%d buckets, %f MiB of gradients, %d ranks)",
                    rt_dist_reducer_buckets(u->r), (double)bytes / 1048576.0, rt_dist_size());
    return 1;
}

void rtb_open_dist(lua_State *L, int module)
{
    static const luaL_Reg methods[] = {{"begin", m_reducer_begin},   {"finish", m_reducer_finish},
                                       {"buckets", m_reducer_buckets}, {"early", m_reducer_early},
                                       {"close", m_reducer_gc},      {NULL, NULL}};
    luaL_newmetatable(L, REDUCER_MT);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, m_reducer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, m_reducer_gc);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, m_reducer_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {
        {"launched", f_launched},   {"builtWithMpi", f_built_with_mpi}, {"builtWithNccl", f_built_with_nccl},
        {"active", f_active},       {"rank", f_rank},                   {"size", f_size},
        {"localRank", f_local_rank}, {"localSize", f_local_size},       {"host", f_host},
        {"init", f_init},           {"allReduce", f_all_reduce},        {"allReduce_", f_all_reduce_},
        {"broadcast_", f_broadcast_}, {"allGather", f_all_gather},      {"barrier", f_barrier},
        {"setTimeout", f_set_timeout}, {"timeout", f_timeout},          {"abort", f_abort},
        {"finalize", f_finalize},   {"Reducer", f_reducer},             {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
    lua_setfield(L, module, "_dist"); /* retort.dist (lua/retort/dist.lua) wraps it */
}
