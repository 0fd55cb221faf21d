/* Data-parallel training across processes (DESIGN.md §11): the same program runs as N ranks, started by
 * an MPI launcher (mpirun, srun); each rank trains on its shard of the data and the ranks agree on the
 * gradients through collectives. MPI (Debian's OpenMPI) carries CPU tensors; NCCL carries CUDA tensors
 * when the build has both (bootstrapped over MPI, as Horovod does), else CUDA tensors are staged
 * through the host.
 *
 * Without a launcher, or in a build without MPI, there is one rank: rank 0 of 1, and every collective is
 * the identity. Ranks are 0-based, as MPI, mpirun's messages and PyTorch number them.
 *
 * Collectives must be called by every rank in the same order with matching tensors (dtype and element
 * count; allGather may differ in the first dim). The user-facing ones check that first and fail on every
 * rank with a message that names what differed. Every wait has a deadline (rt_dist_set_timeout, default
 * 600 s or $RETORT_DIST_TIMEOUT): a rank that never arrives makes the others fail with RT_ERR_DEVICE
 * instead of waiting forever; a collective that failed or timed out leaves the module unusable (other
 * ranks may be inside it), and the program is expected to end the job (the retort host calls
 * rt_dist_abort). The core itself never aborts or exits.
 *
 * Thread use: MPI is initialised with MPI_THREAD_FUNNELED; call these from the thread that called
 * rt_dist_init. */
#ifndef RETORT_DIST_H
#define RETORT_DIST_H

#include "tensor.h"

enum rt_dist_op { RT_DIST_SUM = 0, RT_DIST_MEAN, RT_DIST_MAX };

/* Whether the environment says an MPI launcher started this process (OMPI_COMM_WORLD_SIZE, PMIX_RANK,
 * PMI_SIZE) and RETORT_DIST is not 0. */
bool rt_dist_launched(void);
/* Whether this build has MPI / NCCL. */
bool rt_dist_built_with_mpi(void);
bool rt_dist_built_with_nccl(void);
/* Starts MPI when launched (before any thread: the retort host calls it first thing); idempotent. A
 * build without MPI started with more than one rank fails, saying so. Also points each rank at the GPU
 * of its local rank (CUDA_VISIBLE_DEVICES, when unset, gets local rank mod the GPU count) before CUDA
 * starts. Without a launcher: nothing, RT_OK. */
enum rt_status rt_dist_init(void);
/* MPI is running (rt_dist_init started it and it has not been finalized). */
bool rt_dist_active(void);
int rt_dist_rank(void);       /* 0 without MPI */
int rt_dist_size(void);       /* 1 without MPI */
int rt_dist_local_rank(void); /* rank among the ranks of this machine */
int rt_dist_local_size(void);
/* The machine's name as MPI reports it ("" without MPI). */
const char *rt_dist_host(void);
/* Ends MPI normally (every rank must call it); idempotent. Registered at exit by rt_dist_init for a clean
 * exit (status 0); an exit with another status skips it, so the launcher ends the job. */
enum rt_status rt_dist_finalize(void);
/* Ends the whole job (MPI_Abort) with that exit code: for a program that failed on one rank. Returns only
 * when MPI is not running. */
void rt_dist_abort(int code);

/* Deadline of every wait, in seconds (> 0). */
void rt_dist_set_timeout(double seconds);
double rt_dist_timeout(void);

/* --- collectives on tensors (any dtype; CPU, or CUDA through NCCL or the host) --- */

/* In place: t becomes the element-wise sum / mean / max over the ranks. */
enum rt_status rt_dist_all_reduce_(struct rt_tensor *t, enum rt_dist_op op);
/* In place: t becomes root's t. */
enum rt_status rt_dist_broadcast_(struct rt_tensor *t, int root);
/* New tensor: the ranks' t concatenated along dim 0 in rank order (a 0-dim t counts as one element of
 * shape (1)); first dims may differ, the rest of the shape and the dtype must not. */
enum rt_status rt_dist_all_gather(struct rt_tensor *t, struct rt_tensor **out);
enum rt_status rt_dist_barrier(void);
/* New tensor: the reduction of x (sum or mean). Recorded for autograd when x requires grad: the
 * gradient of every rank's output reaches every rank's input (backward all-reduces the incoming
 * gradient the same way), as SyncBatchNorm's statistics need. max is refused for a tensor that requires
 * grad (it has no gradient here). */
enum rt_status rt_dist_all_reduce(struct rt_tensor *x, enum rt_dist_op op, struct rt_tensor **out);

/* --- gradient buckets (DistributedDataParallel's reducer) ---
 * Parameters are laid into buckets in reverse order (the order backward tends to finish them), at most
 * bucket_bytes each (the first 1 MiB, so the first all-reduce starts early), one dtype and device per
 * bucket. Between begin and finish, the autograd hook (rt_autograd_set_grad_ready_hook) copies each
 * parameter's gradient into its bucket as backward finishes it, and a full bucket's all-reduce starts at
 * once (non-blocking MPI, or NCCL on the stream), in bucket order so that every rank issues the same
 * sequence whatever order its backward took. finish() starts what is left (a parameter that got no
 * gradient on this rank counts as zeros), waits, and sets each gradient to the mean over the ranks; a
 * parameter no rank gave a gradient keeps none. With one rank, begin and finish do nothing. */
struct rt_dist_reducer;
/* bucket_bytes 0: 4 MiB. Checks that every rank built the same plan (count, sizes, dtypes). */
enum rt_status rt_dist_reducer_new(int n, struct rt_tensor *const *params, size_t bucket_bytes,
                                   struct rt_dist_reducer **out);
enum rt_status rt_dist_reducer_begin(struct rt_dist_reducer *r);
enum rt_status rt_dist_reducer_finish(struct rt_dist_reducer *r);
/* on: finish leaves each gradient the sum over the ranks, not the mean; for a caller that divided its loss
 * by the number of ranks before backward (then the sum is the mean, and no pass over the gradients is
 * needed to scale them; retort.train.fit does this). Off by default. */
void rt_dist_reducer_set_sum(struct rt_dist_reducer *r, bool on);
/* Number of buckets and bucket i's parameter count and bytes (-1 when i is out of range). */
int rt_dist_reducer_buckets(const struct rt_dist_reducer *r);
int64_t rt_dist_reducer_bucket_bytes(const struct rt_dist_reducer *r, int i);
int rt_dist_reducer_bucket_params(const struct rt_dist_reducer *r, int i);
/* How many buckets the last step started during backward (before finish). */
int rt_dist_reducer_early(const struct rt_dist_reducer *r);
void rt_dist_reducer_free(struct rt_dist_reducer *r);

#endif
