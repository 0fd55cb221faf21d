/* Gradient buckets for data-parallel training (retort/dist.h, rt_dist_reducer_*): DDP's reducer.
 *
 * Why a hook per leaf and not one all-reduce per parameter after backward: small messages cost a
 * latency each and start only when backward is over. The engine calls the grad-ready hook when a
 * leaf's accumulate node has run (autograd.c): every contribution to that gradient has arrived, so the
 * gradient is final for this backward. The hook copies it into its bucket's flat buffer; when a bucket's
 * last parameter arrives its all-reduce starts at once (MPI_Iallreduce, or NCCL on the stream) while
 * backward goes on with earlier layers. Buckets start strictly in bucket order: every rank then issues
 * the same sequence of collectives even if its backward finished parameters in another order (a bucket
 * that completes early waits for the ones before it).
 *
 * Plan: parameters in reverse registration order (the output layer's gradients are ready first), one
 * dtype and device per bucket, the first bucket at most 1 MiB (its all-reduce starts early) and the rest
 * at most bucket_bytes (4 MiB by default; a larger parameter gets a bucket of its own). Every rank
 * checks at construction that all built the same plan.
 *
 * Parameters a rank's backward did not reach count as zeros there. A bitmap of which parameters got a
 * gradient is summed over the ranks at finish (one small all-reduce, started before the wait): a
 * parameter that no rank reached keeps no gradient (an optimizer then leaves it alone, as it would in one
 * process); the others get the sum over the ranks divided by the number of ranks, DDP's mean.
 *
 * Copies: a CPU bucket of one parameter is all-reduced in that parameter's gradient itself, and the mean
 * is taken there in place; other buckets are copied in (at the hook) and out (scaled, at finish). So a
 * parameter of at least half the bucket size gets a bucket of its own: the large weights, most of the
 * bytes, are never copied (DDP's gradient_as_bucket_view, without the aliasing).
 *
 * MPI progress: non-blocking collectives advance only inside MPI calls, so each hook call also tests the
 * buckets in flight. The gradient buckets use their own communicator (rt__dist_grad_comm), so a
 * collective a user issues between steps can never pair with a bucket. */
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "internal.h"

#define FIRST_BUCKET_BYTES ((size_t)1 << 20)
#define DEFAULT_BUCKET_BYTES ((size_t)4 << 20)

struct bucket {
    enum rt_dtype dt;
    enum rt_device dev;
    int first, count;        /* parameters r->p[first .. first + count) */
    int64_t numel;
    struct rt_tensor *flat;  /* the bucket: numel elements on dev */
    struct rt_tensor *host;  /* a CUDA bucket's host copy while MPI reduces it (no NCCL) */
    struct rt_tensor *direct; /* a one-parameter CPU bucket: its gradient, reduced in place (retained) */
    int ready;               /* parameters whose gradient arrived this step */
    bool launched, done;
#ifdef RETORT_HAVE_MPI
    int nreq;
    MPI_Request *reqs;
#endif
};

struct rt_dist_reducer {
    int n;
    struct rt_tensor **p;    /* parameters in plan order (retained) */
    struct rt_tensor **slot; /* p[i]'s place in its bucket, shaped as p[i] */
    int *bucket_of;
    struct rt_tensor **sorted; /* p by address, for the hook's lookup */
    int *sorted_index;
    bool *seen;
    int32_t *used;           /* which parameters got a gradient: summed over the ranks at finish */
    int nb;
    struct bucket *b;
    int next;                /* the next bucket to start */
    int early;               /* buckets started during the last backward */
    bool armed;
    bool sum;                /* leave the sum (the caller's loss was divided by the rank count) */
    bool in_flight_lost;     /* a failure left requests in flight: their buffers must never be freed */
};

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (struct rt_tensor *const *)a, y = (uintptr_t) * (struct rt_tensor *const *)b;
    return x < y ? -1 : x > y;
}

static int find(const struct rt_dist_reducer *r, const struct rt_tensor *t)
{
    int lo = 0, hi = r->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        uintptr_t m = (uintptr_t)r->sorted[mid], k = (uintptr_t)t;
        if (m == k)
            return r->sorted_index[mid];
        if (m < k)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

void rt_dist_reducer_free(struct rt_dist_reducer *r)
{
    if (!r)
        return;
    if (r->armed)
        rt_autograd_set_grad_ready_hook(NULL, NULL);
    if (r->in_flight_lost)
        return; /* MPI may still write into the buckets: leave everything (the job is ending) */
    for (int i = 0; i < r->n; i++) {
        rt_tensor_release(r->p ? r->p[i] : NULL);
        rt_tensor_release(r->slot ? r->slot[i] : NULL);
    }
    for (int k = 0; k < r->nb; k++) {
        rt_tensor_release(r->b[k].flat);
        rt_tensor_release(r->b[k].host);
        rt_tensor_release(r->b[k].direct);
#ifdef RETORT_HAVE_MPI
        free(r->b[k].reqs);
#endif
    }
    free(r->p);
    free(r->slot);
    free(r->bucket_of);
    free(r->sorted);
    free(r->sorted_index);
    free(r->seen);
    free(r->used);
    free(r->b);
    free(r);
}

int rt_dist_reducer_buckets(const struct rt_dist_reducer *r) { return r ? r->nb : 0; }

int64_t rt_dist_reducer_bucket_bytes(const struct rt_dist_reducer *r, int i)
{
    if (!r || i < 0 || i >= r->nb)
        return -1;
    return r->b[i].numel * (int64_t)rt_dtype_size(r->b[i].dt);
}

int rt_dist_reducer_bucket_params(const struct rt_dist_reducer *r, int i)
{
    if (!r || i < 0 || i >= r->nb)
        return -1;
    return r->b[i].count;
}

int rt_dist_reducer_early(const struct rt_dist_reducer *r) { return r ? r->early : 0; }

void rt_dist_reducer_set_sum(struct rt_dist_reducer *r, bool on)
{
    if (r)
        r->sum = on;
}

/* lays the parameters (already in plan order) into buckets */
static enum rt_status plan(struct rt_dist_reducer *r, size_t cap)
{
    if (!(r->b = calloc((size_t)(r->n > 0 ? r->n : 1), sizeof *r->b)))
        return rt_error(RT_ERR_OOM, "rt_dist_reducer_new: out of memory");
    struct bucket *open = NULL;
    size_t limit = FIRST_BUCKET_BYTES < cap ? FIRST_BUCKET_BYTES : cap;
    for (int i = 0; i < r->n; i++) {
        struct rt_tensor *t = r->p[i];
        size_t bytes = (size_t)rt_tensor_numel(t) * rt_dtype_size(t->dtype);
        bool alone = bytes >= cap / 2; /* reduced in its own gradient, not copied (see the top) */
        bool fits = open && !alone && open->dt == t->dtype && open->dev == t->storage->device &&
                    (open->count > 1 || (size_t)open->numel * rt_dtype_size(open->dt) < cap / 2) &&
                    (size_t)open->numel * rt_dtype_size(open->dt) + bytes <= limit;
        if (!fits) {
            if (open)
                limit = cap; /* the first bucket is closed */
            open = &r->b[r->nb++];
            open->dt = t->dtype;
            open->dev = t->storage->device;
            open->first = i;
        }
        r->bucket_of[i] = (int)(open - r->b);
        open->count++;
        open->numel += rt_tensor_numel(t);
    }
    /* the flat buffers and each parameter's slot in them */
    for (int k = 0; k < r->nb; k++) {
        struct bucket *b = &r->b[k];
        int64_t shape[1] = {b->numel};
        enum rt_status st = rt_tensor_new(b->dt, b->dev, 1, shape, &b->flat);
        int64_t at = 0;
        for (int i = b->first; st == RT_OK && i < b->first + b->count; i++) {
            struct rt_tensor *part = NULL;
            int64_t n = rt_tensor_numel(r->p[i]);
            st = rt_narrow(b->flat, 0, at, n, &part);
            if (st == RT_OK)
                st = rt_view(part, r->p[i]->ndim, r->p[i]->shape, &r->slot[i]);
            rt_tensor_release(part);
            at += n;
        }
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

enum rt_status rt_dist_reducer_new(int n, struct rt_tensor *const *params, size_t bucket_bytes,
                                   struct rt_dist_reducer **out)
{
    const char *name = "rt_dist_reducer_new";
    if (!out)
        return rt_error(RT_ERR_ARG, "%s: out is NULL", name);
    *out = NULL;
    if (n < 0 || (n > 0 && !params))
        return rt_error(RT_ERR_ARG, "%s: bad parameter list (%d)", name, n);
    for (int i = 0; i < n; i++) {
        if (!params[i])
            return rt_error(RT_ERR_ARG, "%s: parameter %d is NULL", name, i + 1);
        if (!rt_dtype_is_float(params[i]->dtype))
            return rt_error(RT_ERR_DTYPE, "%s: parameter %d is %s; gradients need a float dtype", name, i + 1,
                            rt_dtype_name(params[i]->dtype));
        for (int j = 0; j < i; j++)
            if (params[j] == params[i])
                return rt_error(RT_ERR_ARG, "%s: parameter %d is parameter %d again", name, i + 1, j + 1);
    }
    bool was = rt_grad_set_enabled(false);
    struct rt_dist_reducer *r = calloc(1, sizeof *r);
    enum rt_status st = RT_OK;
    size_t k = (size_t)(n > 0 ? n : 1);
    if (!r || !(r->p = calloc(k, sizeof *r->p)) || !(r->slot = calloc(k, sizeof *r->slot)) ||
        !(r->bucket_of = calloc(k, sizeof *r->bucket_of)) || !(r->sorted = calloc(k, sizeof *r->sorted)) ||
        !(r->sorted_index = calloc(k, sizeof *r->sorted_index)) || !(r->seen = calloc(k, sizeof *r->seen)) ||
        !(r->used = calloc(k, sizeof *r->used)))
        st = rt_error(RT_ERR_OOM, "%s: out of memory", name);
    if (st == RT_OK) {
        r->n = n;
        for (int i = 0; i < n; i++) { /* plan order: last parameter first */
            r->p[i] = params[n - 1 - i];
            rt_tensor_retain(r->p[i]);
            r->sorted[i] = r->p[i];
        }
        qsort(r->sorted, (size_t)n, sizeof *r->sorted, by_address);
        for (int i = 0; i < n; i++)
            r->sorted_index[i] = -1;
        for (int i = 0; i < n; i++) { /* sorted position -> plan index */
            int lo = 0, hi = n - 1;
            while (lo <= hi) {
                int mid = lo + (hi - lo) / 2;
                if (r->sorted[mid] == r->p[i]) {
                    r->sorted_index[mid] = i;
                    break;
                }
                if ((uintptr_t)r->sorted[mid] < (uintptr_t)r->p[i])
                    lo = mid + 1;
                else
                    hi = mid - 1;
            }
        }
        st = plan(r, bucket_bytes ? bucket_bytes : DEFAULT_BUCKET_BYTES);
    }
    if (st == RT_OK && rt_dist_size() > 1) { /* every rank must have built this plan */
        uint64_t h = RT_FINGERPRINT_INIT;
        int64_t total = 0;
        for (int i = 0; i < n; i++) {
            int64_t v[3] = {rt_tensor_numel(r->p[i]), r->p[i]->dtype, r->p[i]->storage->device};
            rt_fingerprint_bytes(v, sizeof v, &h);
            total += v[0];
        }
        int64_t key[] = {n, r->nb, total, (int64_t)(h >> 1)};
        static const char *const what[] = {"parameter count", "bucket count", "gradient element count",
                                           "parameter-shape hash"};
        st = rt__dist_agree(name, 4, key, what);
        if (st != RT_OK)
            rt_error_prefix("the ranks' models differ");
    }
    rt_grad_set_enabled(was);
    if (st != RT_OK) {
        rt_dist_reducer_free(r);
        return st;
    }
    *out = r;
    return RT_OK;
}

/* dst = src * scale over n contiguous float elements (the CPU's gradients after the sum) */
static void scale_copy(void *dst, const void *src, int64_t n, enum rt_dtype dt, double scale)
{
    if (dt == RT_F32) {
        float *d = dst, s = (float)scale;
        const float *x = src;
        for (int64_t i = 0; i < n; i++)
            d[i] = x[i] * s;
    } else {
        double *d = dst;
        const double *x = src;
        for (int64_t i = 0; i < n; i++)
            d[i] = x[i] * scale;
    }
}

/* starts bucket k's all-reduce */
static enum rt_status launch(struct rt_dist_reducer *r, int k)
{
    struct bucket *b = &r->b[k];
    b->launched = true;
    b->done = false;
    if (b->dev != RT_CPU && rt__dist_use_nccl()) {
        b->done = true; /* queued on the stream: nothing to wait for on the host */
        return rt__nccl_all_reduce(rt__ptr(b->flat), b->numel, b->dt, false);
    }
#ifdef RETORT_HAVE_MPI
    struct rt_tensor *buf = b->direct ? b->direct : b->flat;
    if (b->dev != RT_CPU) { /* staged through the host */
        rt_tensor_release(b->host);
        b->host = NULL;
        enum rt_status st = rt_to_device(b->flat, RT_CPU, &b->host);
        if (st != RT_OK)
            return st;
        buf = b->host;
    }
    const int64_t chunk = (int64_t)1 << 30;
    int need = (int)((b->numel + chunk - 1) / chunk);
    if (need < 1)
        need = 1;
    if (!b->reqs) {
        if (!(b->reqs = calloc((size_t)need, sizeof *b->reqs)))
            return rt_error(RT_ERR_OOM, "gradient all-reduce: out of memory");
    }
    b->nreq = 0;
    size_t es = rt_dtype_size(b->dt);
    for (int64_t at = 0; at < b->numel; at += chunk) {
        int64_t cnt = b->numel - at < chunk ? b->numel - at : chunk;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)rt__ptr(buf) + (size_t)at * es, (int)cnt, rt__dist_mpi_type(b->dt),
                                MPI_SUM, rt__dist_grad_comm(), &b->reqs[b->nreq]);
        if (rc != MPI_SUCCESS) {
            r->in_flight_lost = b->nreq > 0;
            return rt__dist_mpi_error("gradient all-reduce", rc);
        }
        b->nreq++;
    }
    if (b->nreq == 0)
        b->done = true;
    return RT_OK;
#else
    b->done = true;
    return RT_OK;
#endif
}

/* starts every bucket that is complete, in order */
static enum rt_status launch_ready(struct rt_dist_reducer *r)
{
    while (r->next < r->nb && r->b[r->next].ready == r->b[r->next].count) {
        enum rt_status st = launch(r, r->next++);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

static void poke(struct rt_dist_reducer *r)
{
#ifdef RETORT_HAVE_MPI
    for (int k = 0; k < r->next; k++) {
        struct bucket *b = &r->b[k];
        if (b->launched && !b->done && b->nreq > 0) {
            int flag = 0;
            MPI_Testall(b->nreq, b->reqs, &flag, MPI_STATUSES_IGNORE);
            b->done = flag != 0;
        }
    }
#else
    (void)r;
#endif
}

static enum rt_status on_grad_ready(void *ctx, struct rt_tensor *leaf)
{
    struct rt_dist_reducer *r = ctx;
    int i = find(r, leaf);
    if (i < 0 || r->seen[i] || !leaf->grad)
        return RT_OK;
    r->seen[i] = true;
    struct bucket *b = &r->b[r->bucket_of[i]];
    struct rt_tensor *g = leaf->grad;
    enum rt_status st = RT_OK;
    if (b->count == 1 && b->dev == RT_CPU && g->storage->device == RT_CPU && g->dtype == b->dt &&
        rt_tensor_numel(g) == b->numel && rt_tensor_is_contiguous(g)) {
        rt_tensor_retain(g); /* reduced where it is */
        b->direct = g;
    } else {
        bool was = rt_grad_set_enabled(false);
        st = rt_copy_(r->slot[i], g);
        rt_grad_set_enabled(was);
        if (st != RT_OK)
            return st;
    }
    b->ready++;
    int before = r->next;
    st = launch_ready(r);
    r->early += r->next - before;
    poke(r);
    return st;
}

enum rt_status rt_dist_reducer_begin(struct rt_dist_reducer *r)
{
    if (!r)
        return rt_error(RT_ERR_ARG, "rt_dist_reducer_begin: reducer is NULL");
    enum rt_status st = rt__dist_usable("rt_dist_reducer_begin");
    if (st != RT_OK || rt_dist_size() == 1)
        return st;
    if (r->next > 0 && r->armed)
        return rt_error(RT_ERR_AUTOGRAD, "rt_dist_reducer_begin: the last step's gradient exchange was started but "
                        "never finished (a backward failed between begin and finish); the ranks are out of step");
    for (int i = 0; i < r->n; i++)
        r->seen[i] = false;
    for (int k = 0; k < r->nb; k++) {
        r->b[k].ready = 0;
        r->b[k].launched = r->b[k].done = false;
        rt_tensor_release(r->b[k].direct);
        r->b[k].direct = NULL;
    }
    r->next = 0;
    r->early = 0;
    r->armed = true;
    rt_autograd_set_grad_ready_hook(on_grad_ready, r);
    return RT_OK;
}

enum rt_status rt_dist_reducer_finish(struct rt_dist_reducer *r)
{
    const char *name = "rt_dist_reducer_finish";
    if (!r)
        return rt_error(RT_ERR_ARG, "%s: reducer is NULL", name);
    if (rt_dist_size() == 1)
        return RT_OK;
    if (!r->armed)
        return rt_error(RT_ERR_ARG, "%s: begin was not called before this step's backward", name);
    rt_autograd_set_grad_ready_hook(NULL, NULL);
    bool was = rt_grad_set_enabled(false);
    enum rt_status st = RT_OK;
    /* what backward did not reach counts as zeros; start the rest in order */
    for (int i = 0; st == RT_OK && i < r->n; i++) {
        r->used[i] = r->seen[i];
        if (!r->seen[i] && r->bucket_of[i] >= r->next) {
            st = rt_zero_(r->slot[i]);
            r->b[r->bucket_of[i]].ready++;
        }
    }
    for (int k = r->next; st == RT_OK && k < r->nb; k++) {
        if (r->b[k].ready != r->b[k].count) /* a parameter whose bucket started early cannot be missing */
            st = rt_error(RT_ERR_INTERNAL, "%s: bucket %d is not complete", name, k);
    }
    if (st == RT_OK)
        st = launch_ready(r);
#ifdef RETORT_HAVE_MPI
    MPI_Request used_req = MPI_REQUEST_NULL;
    if (st == RT_OK) {
        int rc = MPI_Iallreduce(MPI_IN_PLACE, r->used, r->n, MPI_INT32_T, MPI_SUM, rt__dist_grad_comm(), &used_req);
        if (rc != MPI_SUCCESS)
            st = rt__dist_mpi_error("gradient all-reduce", rc);
    }
    for (int k = 0; st == RT_OK && k < r->nb; k++) {
        struct bucket *b = &r->b[k];
        if (!b->done && b->nreq > 0)
            st = rt__dist_wait("gradient all-reduce", b->nreq, b->reqs);
        b->done = true;
        if (st == RT_OK && b->host) { /* staged: back to the device */
            st = rt_copy_(b->flat, b->host);
            rt_tensor_release(b->host);
            b->host = NULL;
        }
    }
    if (st == RT_OK)
        st = rt__dist_wait("gradient all-reduce", 1, &used_req);
    if (st != RT_OK)
        r->in_flight_lost = true;
#endif
    /* the mean over the ranks, into each gradient: on the CPU one pass (sum * 1/ranks written into the
     * gradient backward made), elsewhere a scaled bucket copied out */
    double scale = r->sum ? 1.0 : 1.0 / rt_dist_size();
    for (int k = 0; st == RT_OK && k < r->nb; k++)
        if (r->b[k].dev != RT_CPU && scale != 1.0)
            st = rt_mul_scalar_(r->b[k].flat, scale);
    for (int i = 0; st == RT_OK && i < r->n; i++) {
        struct rt_tensor *p = r->p[i], *g = p->grad, *direct = r->b[r->bucket_of[i]].direct;
        if (r->used[i] == 0)
            continue;
        bool cpu = p->storage->device == RT_CPU;
        if (direct && g == direct) { /* reduced in the gradient itself */
            if (scale != 1.0)
                scale_copy(rt__ptr(g), rt__ptr(g), rt_tensor_numel(g), g->dtype, scale);
            rt__bump_version(g);
        } else if (direct) { /* the gradient was replaced during the step: keep the reduced one */
            struct rt_tensor *gnew = NULL;
            st = rt_clone(direct, &gnew);
            if (st == RT_OK) {
                scale_copy(rt__ptr(gnew), rt__ptr(gnew), rt_tensor_numel(gnew), gnew->dtype, scale);
                rt_tensor_release(p->grad);
                p->grad = gnew;
            }
        } else if (cpu && g && g->storage->device == RT_CPU && g->dtype == p->dtype && rt_tensor_same_shape(g, p) &&
            rt_tensor_is_contiguous(g)) {
            scale_copy(rt__ptr(g), rt__ptr(r->slot[i]), rt_tensor_numel(g), g->dtype, scale);
            rt__bump_version(g);
        } else {
            struct rt_tensor *gnew = NULL;
            st = rt_clone(r->slot[i], &gnew);
            if (st == RT_OK && cpu && scale != 1.0)
                st = rt_mul_scalar_(gnew, scale);
            if (st == RT_OK) {
                rt_tensor_release(p->grad);
                p->grad = gnew;
            } else {
                rt_tensor_release(gnew);
            }
        }
    }
    if (st == RT_OK || !r->in_flight_lost)
        for (int k = 0; k < r->nb; k++) {
            rt_tensor_release(r->b[k].direct);
            r->b[k].direct = NULL;
        }
    rt_grad_set_enabled(was);
    r->armed = false;
    r->next = 0;
    return st;
}
