/* Distributed runs on MPI (retort/dist.h): starting and ending MPI, rank queries, and the collectives on
 * tensors. Choices:
 *  - MPI starts only when a launcher started the process (its environment says so), so a plain run never
 *    loads a network stack's worth of state; MPI_THREAD_FUNNELED: only the thread that started it calls
 *    MPI (OpenMP's workers never do).
 *  - Every collective is non-blocking (MPI_I*) and waited for by rt__dist_wait: MPI_Testall in a loop that
 *    yields the core after a short spin (ranks oversubscribing cores must let the others run), checks
 *    Ctrl-C, and gives up at a deadline, so a rank that never arrives makes the others fail with a
 *    message instead of hanging. A rank that dies is the launcher's to notice (mpirun ends the job).
 *  - Collectives run on a duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN: an MPI failure becomes a
 *    status and a message, never an abort inside the core.
 *  - User-facing collectives first check, with one small all-reduce, that every rank passed a matching
 *    tensor (dtype, element count): MPI given mismatched buffers corrupts memory or hangs. Internal ones
 *    (gradient buckets) check their plan once, when it is built.
 *  - Tensors that are not contiguous CPU memory are staged: a contiguous copy (on the CPU, or on the GPU
 *    for NCCL), then written back. Counts above MPI's int are split into chunks.
 *  - OpenMPI's non-blocking all-reduce (libnbc) takes recursive doubling by default, which moves the whole
 *    buffer at each step: a 10 MB all-reduce of 2 ranks here took 10.7 ms, against 2.3 ms with the ring
 *    (reduce-scatter then all-gather in pieces, what NCCL, gloo and Horovod use for gradients; 0.8 against
 *    0.6 us for 64 bytes). rt_dist_init selects the ring (OMPI_MCA_coll_libnbc_iallreduce_algorithm=1)
 *    unless the environment chose an algorithm.
 *  - Between ranks of one machine OpenMPI's shared-memory transport (vader) moves large messages with
 *    one copy through the kernel (CMA, process_vm_readv) by default; here that took 1.6-2.2 ms for a 10 MB
 *    all-reduce of 2 ranks against 0.7-1.2 ms copying through its shared-memory buffers, so rt_dist_init
 *    selects those (OMPI_MCA_btl_vader_single_copy_mechanism=none) unless the environment chose.
 *  - Without MPI in the build every function is the identity of one rank. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* on_exit: finalize at a clean exit only */
#endif
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist_internal.h"
#include "internal.h"

#define DEFAULT_TIMEOUT 600.0
#define CHUNK ((int64_t)1 << 30) /* elements per MPI call: counts are ints */

static struct {
    bool started;   /* MPI runs and this module uses it */
    bool owned;     /* rt_dist_init started it (and finalizes it) */
    bool finalized;
    bool broken;    /* a collective failed, timed out or was interrupted: other ranks may be inside it */
    char broken_why[256];
    int rank, size, local_rank, local_size;
    char host[256];
    double timeout; /* 0: not read yet */
#ifdef RETORT_HAVE_MPI
    MPI_Comm comm, grad_comm;
#endif
} g = {.size = 1, .local_size = 1};

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

bool rt_dist_launched(void)
{
    const char *off = env("RETORT_DIST");
    if (off && strcmp(off, "0") == 0)
        return false;
    return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_SIZE") || env("PMI_RANK");
}

bool rt_dist_built_with_mpi(void)
{
#ifdef RETORT_HAVE_MPI
    return true;
#else
    return false;
#endif
}

bool rt_dist_built_with_nccl(void)
{
#ifdef RETORT_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

bool rt_dist_active(void) { return g.started && !g.finalized; }
int rt_dist_rank(void) { return rt_dist_active() ? g.rank : 0; }
int rt_dist_size(void) { return rt_dist_active() ? g.size : 1; }
int rt_dist_local_rank(void) { return rt_dist_active() ? g.local_rank : 0; }
int rt_dist_local_size(void) { return rt_dist_active() ? g.local_size : 1; }
const char *rt_dist_host(void) { return rt_dist_active() ? g.host : ""; }

void rt_dist_set_timeout(double seconds)
{
    if (seconds > 0 && isfinite(seconds))
        g.timeout = seconds;
}

double rt_dist_timeout(void)
{
    if (g.timeout <= 0) {
        const char *v = env("RETORT_DIST_TIMEOUT");
        char *end = NULL;
        double t = v ? strtod(v, &end) : 0;
        g.timeout = v && end && *end == '\0' && t > 0 && isfinite(t) ? t : DEFAULT_TIMEOUT;
    }
    return g.timeout;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Marks the module broken with the current error message (the first one is kept) and returns st. */
static enum rt_status broken(enum rt_status st)
{
    if (!g.broken) {
        g.broken = true;
        snprintf(g.broken_why, sizeof g.broken_why, "%s", rt_error_msg());
    }
    return st;
}

enum rt_status rt__dist_usable(const char *op)
{
    if (g.broken)
        return rt_error(RT_ERR_DEVICE,
                        "%s: an earlier collective failed on this rank (%s); the ranks are out of step and the "
                        "job must end",
                        op, g.broken_why);
    return RT_OK;
}

/* A GPU per local rank: CUDA_VISIBLE_DEVICES narrowed to entry local_rank mod its length (when it lists
 * several), or set to local_rank mod the number of GPUs the driver lists (when unset), before CUDA starts.
 * One GPU shared by every rank stays shared. */
static void pick_gpu(void)
{
    if (g.local_size <= 1)
        return;
    const char *list = getenv("CUDA_VISIBLE_DEVICES");
    char pick[64];
    if (list) {
        int n = 1;
        for (const char *p = list; *p; p++)
            n += *p == ',';
        if (n <= 1)
            return;
        int want = g.local_rank % n, i = 0;
        const char *p = list;
        while (i < want && (p = strchr(p, ',')) != NULL) {
            p++;
            i++;
        }
        if (!p)
            return;
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof pick)
            return;
        memcpy(pick, p, len);
        pick[len] = '\0';
    } else {
        DIR *d = opendir("/proc/driver/nvidia/gpus");
        if (!d)
            return;
        int n = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            n += e->d_name[0] != '.';
        closedir(d);
        if (n <= 1)
            return;
        snprintf(pick, sizeof pick, "%d", g.local_rank % n);
    }
    setenv("CUDA_VISIBLE_DEVICES", pick, 1);
}

#ifdef RETORT_HAVE_MPI

MPI_Comm rt__dist_comm(void) { return g.comm; }
MPI_Comm rt__dist_grad_comm(void) { return g.grad_comm; }

MPI_Datatype rt__dist_mpi_type(enum rt_dtype dt)
{
    switch (dt) {
    case RT_F32:
        return MPI_FLOAT;
    case RT_F64:
        return MPI_DOUBLE;
    case RT_I64:
        return MPI_INT64_T;
    default:
        return MPI_UINT8_T;
    }
}

enum rt_status rt__dist_mpi_error(const char *op, int code)
{
    char text[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        len = 0;
    text[len] = '\0';
    rt_error(RT_ERR_DEVICE, "%s: MPI failed on rank %d of %d: %s", op, g.rank, g.size, len ? text : "(no message)");
    return broken(RT_ERR_DEVICE);
}

void rt__dist_poke(int n, MPI_Request *reqs)
{
    int done = 0;
    if (n > 0)
        MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
}

enum rt_status rt__dist_wait(const char *op, int n, MPI_Request *reqs)
{
    double limit = rt_dist_timeout(), deadline = now() + limit;
    for (unsigned long spin = 0;; spin++) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS)
            return rt__dist_mpi_error(op, rc);
        if (done)
            return RT_OK;
        if (rt_interrupt_pending()) {
            rt_error(RT_ERR_INTERRUPTED, "%s: interrupted while waiting for the other ranks", op);
            return broken(RT_ERR_INTERRUPTED);
        }
        if (spin >= 2000)
            sched_yield(); /* another rank (or its threads) may need this core */
        if ((spin & 255) == 0 && now() > deadline) {
            rt_error(RT_ERR_DEVICE,
                     "%s: rank %d of %d waited %g s for the other ranks (one is stuck elsewhere or died); "
                     "RETORT_DIST_TIMEOUT or retort.dist.setTimeout sets the limit",
                     op, g.rank, g.size, limit);
            return broken(RT_ERR_DEVICE);
        }
    }
}

/* exit handler: a clean exit ends MPI (every rank gets there), and so does any exit of a job of one rank;
 * a failure among several leaves it to the launcher, which ends the job when a rank exits without
 * finalizing (finalizing here could wait forever for ranks that sit in a collective) */
static void at_exit(int status, void *arg)
{
    (void)arg;
    if ((status == 0 || g.size == 1) && g.owned && !g.finalized && !g.broken)
        rt_dist_finalize();
}

static enum rt_status start_mpi(void)
{
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag) {
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0); /* the ring (see the top of this file) */
        setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0); /* copy through shared memory (ditto) */
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return rt_error(RT_ERR_DEVICE, "rt_dist_init: MPI_Init_thread failed");
        g.owned = true;
        on_exit(at_exit, NULL);
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &g.comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(g.comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_dup(g.comm, &g.grad_comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(g.grad_comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(g.comm, &g.rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(g.comm, &g.size);
    MPI_Comm local = MPI_COMM_NULL;
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_split_type(g.comm, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &local);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(local, &g.local_rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(local, &g.local_size);
    if (local != MPI_COMM_NULL)
        MPI_Comm_free(&local);
    if (rc != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING + 1];
        int len = 0;
        MPI_Error_string(rc, text, &len);
        text[len > 0 ? len : 0] = '\0';
        return rt_error(RT_ERR_DEVICE, "rt_dist_init: setting up the ranks failed: %s", text);
    }
    int len = 0;
    char name[MPI_MAX_PROCESSOR_NAME + 1];
    if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS || len < 0)
        len = 0;
    name[len] = '\0';
    snprintf(g.host, sizeof g.host, "%.200s", name);
    g.started = true;
    pick_gpu();
    return RT_OK;
}
#endif

enum rt_status rt_dist_init(void)
{
    if (g.started || g.finalized)
        return RT_OK;
#ifdef RETORT_HAVE_MPI
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag && !rt_dist_launched())
        return RT_OK;
    return start_mpi();
#else
    if (!rt_dist_launched())
        return RT_OK;
    const char *size = env("OMPI_COMM_WORLD_SIZE") ? env("OMPI_COMM_WORLD_SIZE") : env("PMI_SIZE");
    const char *rank = env("OMPI_COMM_WORLD_RANK") ? env("OMPI_COMM_WORLD_RANK")
                                                   : (env("PMIX_RANK") ? env("PMIX_RANK") : env("PMI_RANK"));
    if ((size && strcmp(size, "1") != 0) || (rank && strcmp(rank, "0") != 0))
        return rt_error(RT_ERR_DEVICE,
                        "rt_dist_init: started by an MPI launcher with %s ranks, but this retort was built "
                        "without MPI; install libopenmpi-dev (Debian) and rebuild, or run one process",
                        size ? size : "several");
    return RT_OK;
#endif
}

enum rt_status rt_dist_finalize(void)
{
    if (!g.started || g.finalized)
        return RT_OK;
    g.finalized = true;
#ifdef RETORT_HAVE_MPI
    MPI_Comm_free(&g.grad_comm);
    MPI_Comm_free(&g.comm);
    if (g.owned) {
        int done = 0;
        MPI_Finalized(&done);
        if (!done && MPI_Finalize() != MPI_SUCCESS)
            return rt_error(RT_ERR_DEVICE, "rt_dist_finalize: MPI_Finalize failed");
    }
#endif
    return RT_OK;
}

void rt_dist_abort(int code)
{
#ifdef RETORT_HAVE_MPI
    if (rt_dist_active())
        MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)code;
#endif
}

/* ------------------------------------------------------------------------------------------------- */

#ifdef RETORT_HAVE_MPI
enum rt_status rt__dist_agree(const char *op, int n, const int64_t *values, const char *const *what)
{
    if (n <= 0 || n > 64)
        return rt_error(RT_ERR_INTERNAL, "%s: bad agreement size %d", op, n);
    int64_t v[128];
    for (int i = 0; i < n; i++) {
        v[i] = values[i];
        v[n + i] = values[i] == INT64_MIN ? INT64_MAX : -values[i];
    }
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, 2 * n, MPI_INT64_T, MPI_MAX, g.comm, &req);
    if (rc != MPI_SUCCESS)
        return rt__dist_mpi_error(op, rc);
    enum rt_status st = rt__dist_wait(op, 1, &req);
    if (st != RT_OK)
        return st;
    for (int i = 0; i < n; i++)
        if (v[i] != -v[n + i])
            return rt_error(RT_ERR_ARG, "%s: the ranks passed different tensors: %s %lld on some ranks, %lld on others",
                            op, what[i], (long long)-v[n + i], (long long)v[i]);
    return RT_OK;
}

enum rt_status rt__dist_broadcast_bytes(const char *op, void *buf, size_t n, int root)
{
    if (n > INT_MAX)
        return rt_error(RT_ERR_ARG, "%s: %zu bytes is too many to broadcast at once", op, n);
    MPI_Request req;
    int rc = MPI_Ibcast(buf, (int)n, MPI_BYTE, root, g.comm, &req);
    if (rc != MPI_SUCCESS)
        return rt__dist_mpi_error(op, rc);
    return rt__dist_wait(op, 1, &req);
}
#else
enum rt_status rt__dist_agree(const char *op, int n, const int64_t *values, const char *const *what)
{
    (void)op, (void)n, (void)values, (void)what;
    return RT_OK;
}

enum rt_status rt__dist_broadcast_bytes(const char *op, void *buf, size_t n, int root)
{
    (void)op, (void)buf, (void)n, (void)root;
    return RT_OK;
}
#endif

bool rt__dist_use_nccl(void)
{
#ifdef RETORT_HAVE_NCCL
    return rt_backend_emulated_cuda() == NULL;
#else
    return false;
#endif
}

#ifndef RETORT_HAVE_NCCL
enum rt_status rt__nccl_all_reduce(void *buf, int64_t n, enum rt_dtype dt, bool max)
{
    (void)buf, (void)n, (void)dt, (void)max;
    return rt_error(RT_ERR_DEVICE, "NCCL: this retort was built without NCCL");
}
enum rt_status rt__nccl_broadcast(void *buf, int64_t n, enum rt_dtype dt, int root)
{
    (void)buf, (void)n, (void)dt, (void)root;
    return rt_error(RT_ERR_DEVICE, "NCCL: this retort was built without NCCL");
}
enum rt_status rt__nccl_all_gather(const void *send, void *recv, int64_t n, enum rt_dtype dt)
{
    (void)send, (void)recv, (void)n, (void)dt;
    return rt_error(RT_ERR_DEVICE, "NCCL: this retort was built without NCCL");
}
#endif

/* --- tensors ------------------------------------------------------------------------------------- */

/* Where a collective reads and writes t: t itself when its memory is usable as it is (contiguous, on the
 * CPU, or on the GPU with NCCL), else a contiguous copy there (CPU staging for CUDA without NCCL) that
 * end_work writes back into t. */
struct work {
    struct rt_tensor *t, *buf;
    bool gpu; /* buf is device memory for NCCL */
};

static enum rt_status begin_work(struct rt_tensor *t, struct work *w)
{
    w->t = t;
    w->buf = NULL;
    w->gpu = t->storage->device != RT_CPU && rt__dist_use_nccl();
    if (t->storage->device == RT_CPU || w->gpu)
        return rt__contig_raw(t, &w->buf);
    struct rt_tensor *c = NULL;
    enum rt_status st = rt__contig_raw(t, &c);
    if (st == RT_OK)
        st = rt_to_device(c, RT_CPU, &w->buf);
    rt_tensor_release(c);
    return st;
}

/* write back (when staged) and release the buffer */
static enum rt_status end_work(struct work *w, enum rt_status st, bool write)
{
    if (st == RT_OK && write) {
        if (w->buf == w->t)
            rt__bump_version(w->t);
        else
            st = rt_copy_(w->t, w->buf);
    }
    rt_tensor_release(w->buf);
    w->buf = NULL;
    return st;
}

static enum rt_status check_tensor(const char *op, struct rt_tensor *t)
{
    if (!t)
        return rt_error(RT_ERR_ARG, "%s: tensor is NULL", op);
    return rt__dist_usable(op);
}

#ifdef RETORT_HAVE_MPI
/* an all-reduce (root < 0, with mop) or a broadcast from root, in place over n elements of host memory, as
 * non-blocking calls of at most CHUNK elements each, then one wait for all of them */
static enum rt_status host_collective(const char *op, void *data, int64_t n, enum rt_dtype dt, MPI_Op mop, int root)
{
    int64_t chunks = n == 0 ? 0 : (n + CHUNK - 1) / CHUNK;
    MPI_Request one, *reqs = chunks <= 1 ? &one : malloc((size_t)chunks * sizeof *reqs);
    if (!reqs)
        return rt_error(RT_ERR_OOM, "%s: out of memory", op);
    size_t es = rt_dtype_size(dt);
    int started = 0, rc = MPI_SUCCESS;
    for (int64_t c = 0; c < chunks && rc == MPI_SUCCESS; c++) {
        int64_t k = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;
        char *at = (char *)data + (size_t)(c * CHUNK) * es;
        rc = root < 0 ? MPI_Iallreduce(MPI_IN_PLACE, at, (int)k, rt__dist_mpi_type(dt), mop, g.comm, &reqs[started])
                      : MPI_Ibcast(at, (int)k, rt__dist_mpi_type(dt), root, g.comm, &reqs[started]);
        if (rc == MPI_SUCCESS)
            started++;
    }
    enum rt_status st = rc != MPI_SUCCESS ? rt__dist_mpi_error(op, rc) : rt__dist_wait(op, started, reqs);
    if (reqs != &one && st == RT_OK)
        free(reqs); /* else requests may be in flight: leave them their array */
    return st;
}
#endif

/* the reduction itself on the work buffer (identity with one rank) */
static enum rt_status reduce_buffer(const char *op, struct rt_tensor *buf, bool gpu, enum rt_dist_op o)
{
    if (rt_dist_size() == 1)
        return RT_OK;
    int64_t n = rt_tensor_numel(buf);
    enum rt_status st;
    if (gpu)
        st = rt__nccl_all_reduce(rt__ptr(buf), n, buf->dtype, o == RT_DIST_MAX);
    else
#ifdef RETORT_HAVE_MPI
        st = host_collective(op, rt__ptr(buf), n, buf->dtype, o == RT_DIST_MAX ? MPI_MAX : MPI_SUM, -1);
#else
        st = RT_OK;
#endif
    if (st == RT_OK && o == RT_DIST_MEAN)
        st = rt_mul_scalar_(buf, 1.0 / rt_dist_size());
    return st;
}

static enum rt_status check_op(const char *name, struct rt_tensor *t, enum rt_dist_op op)
{
    if (op != RT_DIST_SUM && op != RT_DIST_MEAN && op != RT_DIST_MAX)
        return rt_error(RT_ERR_ARG, "%s: unknown reduction %d (sum, mean or max)", name, (int)op);
    if (op == RT_DIST_MEAN && !rt_dtype_is_float(t->dtype))
        return rt_error(RT_ERR_DTYPE, "%s: mean needs a float tensor, got %s (use sum)", name, rt_dtype_name(t->dtype));
    return RT_OK;
}

static const char *const MATCH_WHAT[] = {"dtype code", "element count", "device code"};

/* What the in-place collectives share after their own argument checks: every rank agrees on the tensor,
 * then an all-reduce (root < 0, with op) or a broadcast from root runs on its work buffer, grad off; the
 * result is written back where the values changed (every rank but a broadcast's root). */
static enum rt_status in_place(const char *name, struct rt_tensor *t, enum rt_dist_op op, int root)
{
    int64_t key[] = {t->dtype, rt_tensor_numel(t), t->storage->device};
    enum rt_status st = rt__dist_agree(name, 3, key, MATCH_WHAT);
    if (st != RT_OK)
        return st;
    bool was = rt_grad_set_enabled(false);
    struct work w;
    st = begin_work(t, &w);
    if (st == RT_OK && root < 0)
        st = reduce_buffer(name, w.buf, w.gpu, op);
    else if (st == RT_OK && w.gpu)
        st = rt__nccl_broadcast(rt__ptr(w.buf), rt_tensor_numel(w.buf), w.buf->dtype, root);
#ifdef RETORT_HAVE_MPI
    else if (st == RT_OK)
        st = host_collective(name, rt__ptr(w.buf), rt_tensor_numel(w.buf), w.buf->dtype, MPI_OP_NULL, root);
#endif
    st = end_work(&w, st, root < 0 || rt_dist_rank() != root);
    rt_grad_set_enabled(was);
    return st;
}

enum rt_status rt_dist_all_reduce_(struct rt_tensor *t, enum rt_dist_op op)
{
    const char *name = "rt_dist_all_reduce_";
    enum rt_status st = check_tensor(name, t);
    if (st == RT_OK)
        st = check_op(name, t, op);
    if (st != RT_OK || rt_dist_size() == 1)
        return st;
    return in_place(name, t, op, -1);
}

enum rt_status rt_dist_broadcast_(struct rt_tensor *t, int root)
{
    const char *name = "rt_dist_broadcast_";
    enum rt_status st = check_tensor(name, t);
    if (st != RT_OK)
        return st;
    if (root < 0 || root >= rt_dist_size())
        return rt_error(RT_ERR_ARG, "%s: root %d is not a rank (0..%d)", name, root, rt_dist_size() - 1);
    if (rt_dist_size() == 1)
        return RT_OK;
    return in_place(name, t, RT_DIST_SUM, root);
}

enum rt_status rt_dist_barrier(void)
{
    enum rt_status st = rt__dist_usable("rt_dist_barrier");
    if (st != RT_OK || rt_dist_size() == 1)
        return st;
#ifdef RETORT_HAVE_MPI
    MPI_Request req;
    int rc = MPI_Ibarrier(g.comm, &req);
    if (rc != MPI_SUCCESS)
        return rt__dist_mpi_error("rt_dist_barrier", rc);
    return rt__dist_wait("rt_dist_barrier", 1, &req);
#else
    return RT_OK;
#endif
}

/* --- all-gather ----------------------------------------------------------------------------------- */

#ifdef RETORT_HAVE_MPI
/* rows of every rank (gathered), checked against MPI's int counts; total rows out */
static enum rt_status gather_counts(const char *op, int64_t rows, int64_t row_numel, int64_t *counts, int64_t *total)
{
    counts[g.rank] = rows;
    MPI_Request req;
    int rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, counts, 1, MPI_INT64_T, g.comm, &req);
    if (rc != MPI_SUCCESS)
        return rt__dist_mpi_error(op, rc);
    enum rt_status st = rt__dist_wait(op, 1, &req);
    if (st != RT_OK)
        return st;
    int64_t sum = 0;
    for (int r = 0; r < g.size; r++) {
        if (counts[r] < 0 || (row_numel > 0 && counts[r] > INT_MAX / row_numel))
            return rt_error(RT_ERR_ARG, "%s: rank %d's part (%lld rows of %lld elements) is more than one MPI call "
                            "carries (2^31 - 1 elements); gather it in pieces", op, r, (long long)counts[r],
                            (long long)row_numel);
        if (counts[r] > INT64_MAX - sum)
            return rt_error(RT_ERR_ARG, "%s: the gathered row count overflows", op);
        sum += counts[r];
    }
    *total = sum;
    return RT_OK;
}
#endif

enum rt_status rt_dist_all_gather(struct rt_tensor *t, struct rt_tensor **out)
{
    const char *name = "rt_dist_all_gather";
    enum rt_status st = check_tensor(name, t);
    if (st != RT_OK)
        return st;
    if (!out)
        return rt_error(RT_ERR_ARG, "%s: out is NULL", name);
    *out = NULL;
    /* the gathered shape: (rows, trailing dims); a 0-dim tensor is one row of nothing */
    int ndim = t->ndim == 0 ? 1 : t->ndim;
    int64_t shape[RT_MAX_DIMS];
    if (t->ndim == 0)
        shape[0] = 1;
    else
        memcpy(shape, t->shape, (size_t)t->ndim * sizeof *shape);
    int64_t row_numel = 1;
    for (int d = 1; d < ndim; d++)
        row_numel *= shape[d]; /* bounded: the tensor exists */
    bool was = rt_grad_set_enabled(false);
    struct rt_tensor *src = NULL;
    st = rt__contig_raw(t, &src);
    if (rt_dist_size() == 1) {
        if (st == RT_OK)
            st = rt_clone(src, out);
        if (st == RT_OK && t->ndim == 0) {
            struct rt_tensor *v = NULL;
            st = rt_reshape(*out, 1, shape, &v);
            rt_tensor_release(*out);
            *out = v;
        }
        rt_tensor_release(src);
        rt_grad_set_enabled(was);
        return st;
    }
#ifdef RETORT_HAVE_MPI
    int64_t key[3 + RT_MAX_DIMS];
    const char *what[3 + RT_MAX_DIMS];
    key[0] = t->dtype, what[0] = "dtype code";
    key[1] = ndim, what[1] = "dim count";
    key[2] = t->storage->device, what[2] = "device code";
    static const char *const trailing[RT_MAX_DIMS] = {"size of dim 1", "size of dim 2", "size of dim 3",
                                                       "size of dim 4", "size of dim 5", "size of dim 6",
                                                       "size of dim 7", "size of dim 8"};
    for (int d = 1; d < ndim; d++)
        key[2 + d] = shape[d], what[2 + d] = trailing[d];
    if (st == RT_OK)
        st = rt__dist_agree(name, 2 + ndim, key, what);
    int64_t *counts = NULL, total = 0;
    if (st == RT_OK && !(counts = calloc((size_t)g.size, sizeof *counts)))
        st = rt_error(RT_ERR_OOM, "%s: out of memory", name);
    if (st == RT_OK)
        st = gather_counts(name, shape[0], row_numel, counts, &total);
    bool equal = true;
    for (int r = 1; st == RT_OK && r < g.size; r++)
        equal = equal && counts[r] == counts[0];
    bool gpu = t->storage->device != RT_CPU && rt__dist_use_nccl() && equal;
    struct rt_tensor *host_src = NULL, *result = NULL;
    int64_t oshape[RT_MAX_DIMS];
    memcpy(oshape, shape, sizeof oshape);
    oshape[0] = total;
    if (st == RT_OK)
        st = rt__check_shape(name, ndim, oshape);
    if (st == RT_OK && gpu) {
        st = rt_tensor_empty(t->dtype, t->storage->device, ndim, oshape, &result);
        if (st == RT_OK)
            st = rt__nccl_all_gather(rt__ptr(src), rt__ptr(result), rt_tensor_numel(src), t->dtype);
    } else if (st == RT_OK) {
        if (src->storage->device == RT_CPU) {
            host_src = src;
            rt_tensor_retain(host_src);
        } else {
            st = rt_to_device(src, RT_CPU, &host_src);
        }
        if (st == RT_OK)
            st = rt_tensor_empty(t->dtype, RT_CPU, ndim, oshape, &result);
        int *cnt = NULL, *displ = NULL;
        if (st == RT_OK && (!(cnt = malloc((size_t)g.size * sizeof *cnt)) ||
                            !(displ = malloc((size_t)g.size * sizeof *displ))))
            st = rt_error(RT_ERR_OOM, "%s: out of memory", name);
        int64_t at = 0;
        for (int r = 0; st == RT_OK && r < g.size; r++) {
            if (at > INT_MAX) {
                st = rt_error(RT_ERR_ARG, "%s: the gathered tensor (%lld elements) is more than MPI's int offsets "
                              "reach; gather it in pieces", name, (long long)(total * row_numel));
                break;
            }
            cnt[r] = (int)(counts[r] * row_numel);
            displ[r] = (int)at;
            at += counts[r] * row_numel;
        }
        if (st == RT_OK) {
            MPI_Request req;
            MPI_Datatype ty = rt__dist_mpi_type(t->dtype);
            int rc = MPI_Iallgatherv(rt__ptr(host_src), cnt[g.rank], ty, rt__ptr(result), cnt, displ, ty, g.comm,
                                     &req);
            st = rc != MPI_SUCCESS ? rt__dist_mpi_error(name, rc) : rt__dist_wait(name, 1, &req);
        }
        if (st == RT_OK || !g.broken) {
            free(cnt);
            free(displ);
        }
        if (st == RT_OK && t->storage->device != RT_CPU) {
            struct rt_tensor *moved = NULL;
            st = rt_to_device(result, t->storage->device, &moved);
            rt_tensor_release(result);
            result = moved;
        }
    }
    if (st == RT_OK)
        *out = result, result = NULL;
    if (!g.broken) { /* a failed gather may still write into these */
        rt_tensor_release(result);
        rt_tensor_release(host_src);
    }
    free(counts);
#endif
    rt_tensor_release(src);
    rt_grad_set_enabled(was);
    return st;
}

/* --- the differentiable all-reduce ------------------------------------------------------------- */

static enum rt_status vjp_all_reduce(struct rt_node *n, struct rt_tensor *g, struct rt_tensor **gin)
{
    struct rt_tensor *c = NULL;
    enum rt_status st = rt_clone(g, &c);
    if (st == RT_OK)
        st = rt_dist_all_reduce_(c, (enum rt_dist_op)n->i[0]);
    if (st != RT_OK) {
        rt_tensor_release(c);
        return st;
    }
    gin[0] = c;
    return RT_OK;
}

enum rt_status rt_dist_all_reduce(struct rt_tensor *x, enum rt_dist_op op, struct rt_tensor **out)
{
    const char *name = "rt_dist_all_reduce";
    enum rt_status st = check_tensor(name, x);
    if (st == RT_OK)
        st = check_op(name, x, op);
    if (st == RT_OK && !out)
        st = rt_error(RT_ERR_ARG, "%s: out is NULL", name);
    if (st != RT_OK)
        return st;
    *out = NULL;
    bool graph = rt__needs_grad(1, &x);
    if (graph && op == RT_DIST_MAX)
        return rt_error(RT_ERR_AUTOGRAD, "%s: max has no gradient here; detach the tensor or reduce under noGrad",
                        name);
    struct rt_tensor *y = NULL;
    bool was = rt_grad_set_enabled(false);
    st = rt_clone(x, &y);
    rt_grad_set_enabled(was);
    if (st == RT_OK)
        st = rt_dist_all_reduce_(y, op);
    struct rt_node *node = NULL;
    if (st == RT_OK && graph && (st = rt__record(y, "AllReduceBackward", vjp_all_reduce, 1, &x, &node)) == RT_OK)
        node->i[0] = op;
    if (st != RT_OK) {
        rt_tensor_release(y);
        return st;
    }
    *out = y;
    return RT_OK;
}
