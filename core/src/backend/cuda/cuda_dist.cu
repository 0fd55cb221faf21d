/* NCCL collectives for CUDA tensors (core/src/dist.c calls these through dist_internal.h). Built when the
 * build has CUDA and found nccl.h (RETORT_HAVE_NCCL); otherwise dist.c stages CUDA tensors through the
 * host. Choices:
 *  - One communicator over all ranks, started on the first CUDA collective: rank 0 makes the unique id,
 *    MPI broadcasts it (Horovod's bootstrap), every rank joins with ncclCommInitRank on its GPU (dist.c
 *    narrowed CUDA_VISIBLE_DEVICES to the local rank's GPU before CUDA started, so it is device 0 here).
 *  - Every call is queued on the backend's one stream (rt_cuda_stream), so it runs after the kernels
 *    that produced its buffer and before those that read it: no host wait, as for any other op.
 *  - sum and max are NCCL's; dist.c makes a mean from the sum (one scale kernel). */
#ifdef RETORT_HAVE_NCCL
#define OMPI_SKIP_MPICXX 1 /* mpi.h's C API only: it is included in extern "C" below */
#define MPICH_SKIP_MPICXX 1
#include <nccl.h>
#include <stdio.h>

#include "backend/cuda/cuda_internal.cuh"

extern "C" {
#include "dist_internal.h"
}

static struct {
    int state; /* 0: not started, 1: ready, -1: failed */
    ncclComm_t comm;
} nccl;

static enum rt_status nccl_error(const char *op, ncclResult_t r)
{
    return rt_error(RT_ERR_DEVICE, "%s: NCCL failed on rank %d of %d: %s", op, rt_dist_rank(), rt_dist_size(),
                    ncclGetErrorString(r));
}

static enum rt_status start(const char *op)
{
    if (nccl.state > 0)
        return RT_OK;
    if (nccl.state < 0)
        return rt_error(RT_ERR_DEVICE, "%s: NCCL could not start earlier on this rank", op);
    nccl.state = -1;
    enum rt_status st = rt_cuda_ready(op);
    if (st != RT_OK)
        return st;
    ncclUniqueId id;
    if (rt_dist_rank() == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess)
            return nccl_error(op, r); /* the other ranks then time out in the broadcast */
    }
    st = rt__dist_broadcast_bytes(op, &id, sizeof id, 0);
    if (st != RT_OK)
        return st;
    ncclResult_t r = ncclCommInitRank(&nccl.comm, rt_dist_size(), id, rt_dist_rank());
    if (r != ncclSuccess)
        return nccl_error(op, r);
    nccl.state = 1;
    return RT_OK;
}

static ncclDataType_t nccl_type(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32:
        return ncclFloat32;
    case RT_F64:
        return ncclFloat64;
    case RT_I64:
        return ncclInt64;
    default:
        return ncclUint8;
    }
}

extern "C" enum rt_status rt__nccl_all_reduce(void *buf, int64_t n, enum rt_dtype dt, bool max)
{
    const char *op = "all-reduce (NCCL)";
    enum rt_status st = start(op);
    if (st != RT_OK)
        return st;
    ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, nccl_type(dt), max ? ncclMax : ncclSum, nccl.comm,
                                   rt_cuda_stream());
    if (r != ncclSuccess)
        return nccl_error(op, r);
    return rt_cuda_check(op);
}

extern "C" enum rt_status rt__nccl_broadcast(void *buf, int64_t n, enum rt_dtype dt, int root)
{
    const char *op = "broadcast (NCCL)";
    enum rt_status st = start(op);
    if (st != RT_OK)
        return st;
    ncclResult_t r = ncclBroadcast(buf, buf, (size_t)n, nccl_type(dt), root, nccl.comm, rt_cuda_stream());
    if (r != ncclSuccess)
        return nccl_error(op, r);
    return rt_cuda_check(op);
}

extern "C" enum rt_status rt__nccl_all_gather(const void *send, void *recv, int64_t n, enum rt_dtype dt)
{
    const char *op = "all-gather (NCCL)";
    enum rt_status st = start(op);
    if (st != RT_OK)
        return st;
    ncclResult_t r = ncclAllGather(send, recv, (size_t)n, nccl_type(dt), nccl.comm, rt_cuda_stream());
    if (r != ncclSuccess)
        return nccl_error(op, r);
    return rt_cuda_check(op);
}
#else
/* built without NCCL: core/src/dist.c provides the rt__nccl_* stubs */
typedef int rt_cuda_dist_unused_;
#endif
