/* Shared by the distributed files of the core (dist.c, dist_reducer.c, backend/cuda/cuda_dist.cu); not
 * public API. dist.c owns MPI's state; NCCL lives in the CUDA backend because it runs on its stream. */
#ifndef RETORT_DIST_INTERNAL_H
#define RETORT_DIST_INTERNAL_H

#include "retort/dist.h"

#ifdef RETORT_HAVE_MPI
#include <mpi.h>

/* The communicator every retort collective runs on (a duplicate of MPI_COMM_WORLD whose errors are
 * returned, not fatal), and a second one for the gradient buckets, so a user's collective issued between
 * two training steps can never pair with a bucket of another rank. */
MPI_Comm rt__dist_comm(void);
MPI_Comm rt__dist_grad_comm(void);
MPI_Datatype rt__dist_mpi_type(enum rt_dtype dt);
/* Waits for n requests with the deadline; on failure, timeout or interrupt the module is marked broken
 * (the requests may still be in flight: their buffers must then stay allocated) and the message names
 * op. */
enum rt_status rt__dist_wait(const char *op, int n, MPI_Request *reqs);
/* Drives MPI's progress on started requests without waiting (non-blocking collectives advance only
 * inside MPI calls). */
void rt__dist_poke(int n, MPI_Request *reqs);
/* An MPI failure as a status naming op (marks the module broken). */
enum rt_status rt__dist_mpi_error(const char *op, int code);
#endif

/* RT_OK while collectives may run; else the error of the one that failed first, named for op. */
enum rt_status rt__dist_usable(const char *op);
/* Every rank holds the same n values (one small all-reduce); else an error naming op and what: "element
 * count" with the smallest and largest value seen. */
enum rt_status rt__dist_agree(const char *op, int n, const int64_t *values, const char *const *what);
/* Bytes from root to every rank (NCCL's unique id), blocking with the deadline. */
enum rt_status rt__dist_broadcast_bytes(const char *op, void *buf, size_t n, int root);
/* Whether CUDA tensors go through NCCL here (built with it, a real GPU backend, not the emulated one). */
bool rt__dist_use_nccl(void);

/* NCCL on the CUDA backend's stream (backend/cuda/cuda_dist.cu; built with RETORT_HAVE_NCCL). The
 * communicator starts on first use, its unique id broadcast over MPI. Buffers are device pointers to
 * n contiguous elements; the calls enqueue and return (the stream orders them with the kernels). */
enum rt_status rt__nccl_all_reduce(void *buf, int64_t n, enum rt_dtype dt, bool max);
enum rt_status rt__nccl_broadcast(void *buf, int64_t n, enum rt_dtype dt, int root);
enum rt_status rt__nccl_all_gather(const void *send, void *recv, int64_t n, enum rt_dtype dt);

#endif
