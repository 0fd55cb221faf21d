/* 2-D convolution (forward, backward-data, backward-weights) through oneDNN's C API, in f32 or in bf16.
 *
 * bf16 (mixed precision, retort/bf16.h): the inputs x, w and the incoming gradient gy are bf16, the
 * results y, gx and gw are f32 (accumulated in f32), the bias f32. The backward primitives are built
 * against a forward hint whose dst is bf16, as oneDNN's bf16 training recipes do.
 *
 * Layout: retort's tensors stay NCHW and (O, C/groups, kh, kw). Each oneDNN primitive is created with
 * format "any", so it picks its fastest layout (blocked nChw16c / OIhw16i16o on AVX-512); where that
 * differs from the plain one, the operand is reordered into a scratch block (from rt_cpu_alloc's
 * block cache, so no fresh allocation per step) before the primitive and back after it. Where the
 * primitive takes the plain layout, it works on the tensor's memory directly.
 *
 * Cache: building a primitive (descriptor, implementation search, JIT) costs far more than a small
 * convolution, so primitives and their reorders are kept in a small LRU table keyed by the shape,
 * the kind of primitive and the OpenMP thread count (oneDNN fixes its work split when it builds one,
 * so rt_set_num_threads must give a new one). One mutex guards the table and the memory objects it
 * holds (their data handles are set per call); the primitives themselves run on the calling
 * thread's OpenMP team: Debian's libdnnl is built on OpenMP (CMake checks dnnl_config.h), the
 * same pool as every other CPU kernel, so no second pool spins on the cores.
 *
 * Padding: retort's output size is floor((H + 2p - eff_k) / s) + 1; oneDNN checks the same formula
 * with padding_r in place of the second p, so padding_r = padding_l describes the same convolution
 * (the rows a stride leaves over at the end are simply not reached). oneDNN's dilation counts the
 * gaps (retort's d - 1). */
#ifdef RETORT_HAVE_DNNL

#include <omp.h>
#include <pthread.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/cpu_bf16.h"
#include "backend/cpu/cpu_dnnl.h"
#include "backend/cpu/cpu_nn.h"

enum prim_kind { KIND_FWD, KIND_FWD_BIAS, KIND_BWD_DATA, KIND_BWD_WEIGHTS };

struct prim_key {
    int64_t n, c, h, w, o, groups, kh, kw, sh, sw, ph, pw, dh, dw;
    int kind, threads, bf16;
};

/* One operand of a primitive: the user's plain memory and, when the primitive wants another
 * layout, its own memory and the reorder between the two (user -> inner for inputs, back for
 * outputs). Data handles are set on each call. */
struct prim_arg {
    int arg; /* DNNL_ARG_* */
    bool out;
    dnnl_memory_t user, inner;
    dnnl_memory_desc_t inner_md; /* the primitive's layout, when inner */
    dnnl_primitive_t reorder;
    size_t bytes;
};

#define PRIM_MAX_ARGS 4
#define CACHE_SLOTS 32

struct prim_entry {
    struct prim_key key;
    uint64_t used; /* LRU clock; 0: empty slot */
    dnnl_primitive_t prim;
    int nargs;
    struct prim_arg a[PRIM_MAX_ARGS];
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct prim_entry cache[CACHE_SLOTS];
static uint64_t cache_clock;
static dnnl_engine_t engine;
static dnnl_stream_t stream;

static void entry_clear(struct prim_entry *e)
{
    for (int i = 0; i < e->nargs; i++) {
        struct prim_arg *a = &e->a[i];
        if (a->reorder)
            dnnl_primitive_destroy(a->reorder);
        if (a->inner)
            dnnl_memory_destroy(a->inner);
        if (a->user)
            dnnl_memory_destroy(a->user);
    }
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

/* Plain memory descriptors of the convolution's operands (NCHW, (G,)OIHW, X) or, with any, the
 * same dims in format "any" for the primitive to choose. */
static dnnl_status_t md_src(const struct rt_conv2d_shape *s, bool any, dnnl_data_type_t t, dnnl_memory_desc_t *md)
{
    dnnl_dims_t d = {s->g.n, s->g.c, s->g.h, s->g.w};
    return dnnl_memory_desc_init_by_tag(md, 4, d, t, any ? dnnl_format_tag_any : dnnl_nchw);
}

static dnnl_status_t md_dst(const struct rt_conv2d_shape *s, bool any, dnnl_data_type_t t, dnnl_memory_desc_t *md)
{
    dnnl_dims_t d = {s->g.n, s->o, s->g.oh, s->g.ow};
    return dnnl_memory_desc_init_by_tag(md, 4, d, t, any ? dnnl_format_tag_any : dnnl_nchw);
}

static dnnl_status_t md_weights(const struct rt_conv2d_shape *s, bool any, dnnl_data_type_t t,
                                dnnl_memory_desc_t *md)
{
    int64_t G = s->groups;
    if (G == 1) {
        dnnl_dims_t d = {s->o, s->g.c, s->g.kh, s->g.kw};
        return dnnl_memory_desc_init_by_tag(md, 4, d, t, any ? dnnl_format_tag_any : dnnl_oihw);
    }
    dnnl_dims_t d = {G, s->o / G, s->g.c / G, s->g.kh, s->g.kw};
    return dnnl_memory_desc_init_by_tag(md, 5, d, t, any ? dnnl_format_tag_any : dnnl_goihw);
}

static dnnl_status_t md_bias(const struct rt_conv2d_shape *s, dnnl_memory_desc_t *md)
{
    dnnl_dims_t d = {s->o};
    return dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_x);
}

/* operand i of e: user memory of plain layout `user_md`, the primitive's choice queried from pd */
static enum rt_status arg_setup(const char *op, struct prim_entry *e, const_dnnl_primitive_desc_t pd,
                                dnnl_query_t q, int qi, int argid, bool out, const dnnl_memory_desc_t *user_md)
{
    enum rt_status st = RT_OK;
    struct prim_arg *a = &e->a[e->nargs++];
    dnnl_primitive_desc_t rpd = NULL;
    a->arg = argid, a->out = out;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, q, qi);
    if (!want) {
        st = rt_error(RT_ERR_INTERNAL, "%s: oneDNN primitive has no operand %d", op, argid);
        goto out;
    }
    RT_DNNL_TRY(op, dnnl_memory_create(&a->user, user_md, engine, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(want, user_md))
        goto out;
    a->bytes = dnnl_memory_desc_get_size(want);
    a->inner_md = *want;
    RT_DNNL_TRY(op, dnnl_memory_create(&a->inner, want, engine, DNNL_MEMORY_NONE));
    if (out)
        RT_DNNL_TRY(op, dnnl_reorder_primitive_desc_create(&rpd, want, engine, user_md, engine, NULL));
    else
        RT_DNNL_TRY(op, dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, want, engine, NULL));
    RT_DNNL_TRY(op, dnnl_primitive_create(&a->reorder, rpd));
out:
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    return st;
}

/* Builds e's primitive for kind k (bf16: the mixed-precision types above). *none: oneDNN has no
 * implementation (the caller falls back). */
static enum rt_status entry_build(const char *op, const struct rt_conv2d_shape *s, int k, bool bf16,
                                  struct prim_entry *e, bool *none)
{
    enum rt_status st = RT_OK;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    dnnl_memory_desc_t src_any, wei_any, dst_any, bias_md, src_md, wei_md, dst_md;
    dnnl_convolution_desc_t fd, bd;
    dnnl_dims_t strides = {s->g.sh, s->g.sw}, dil = {s->g.dh - 1, s->g.dw - 1}, pad = {s->g.ph, s->g.pw};
    bool fwd = k == KIND_FWD || k == KIND_FWD_BIAS;
    /* the types of src, weights and dst as this kind reads or writes them */
    dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t t_src = k == KIND_BWD_DATA ? dnnl_f32 : in, t_wei = k == KIND_BWD_WEIGHTS ? dnnl_f32 : in;
    dnnl_data_type_t t_dst = fwd ? dnnl_f32 : in;
    *none = false;
    RT_DNNL_TRY(op, md_src(s, true, in, &src_any)); /* the forward (hint) primitive's */
    RT_DNNL_TRY(op, md_weights(s, true, in, &wei_any));
    RT_DNNL_TRY(op, md_dst(s, true, fwd ? dnnl_f32 : in, &dst_any));
    RT_DNNL_TRY(op, md_bias(s, &bias_md));
    RT_DNNL_TRY(op, md_src(s, false, t_src, &src_md));
    RT_DNNL_TRY(op, md_weights(s, false, t_wei, &wei_md));
    RT_DNNL_TRY(op, md_dst(s, false, t_dst, &dst_md));
    RT_DNNL_TRY(op, dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                         &src_any, &wei_any, k == KIND_FWD_BIAS ? &bias_md : NULL,
                                                         &dst_any, strides, dil, pad, pad));
    dnnl_status_t ds = dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL);
    if (ds == dnnl_unimplemented) {
        *none = true;
        goto out;
    }
    RT_DNNL_TRY(op, ds);
    if (k == KIND_FWD || k == KIND_FWD_BIAS) {
        pd = fpd, fpd = NULL;
        st = arg_setup(op, e, pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, false, &src_md);
        if (st == RT_OK)
            st = arg_setup(op, e, pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, false, &wei_md);
        if (st == RT_OK && k == KIND_FWD_BIAS)
            st = arg_setup(op, e, pd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, false, &bias_md);
        if (st == RT_OK)
            st = arg_setup(op, e, pd, dnnl_query_dst_md, 0, DNNL_ARG_DST, true, &dst_md);
    } else if (k == KIND_BWD_DATA) {
        dnnl_memory_desc_t dsrc_any;
        RT_DNNL_TRY(op, md_src(s, true, t_src, &dsrc_any));
        RT_DNNL_TRY(op, dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &dsrc_any,
                                                                   &wei_any, &dst_any, strides, dil, pad, pad));
        ds = dnnl_primitive_desc_create(&pd, &bd, NULL, engine, fpd);
        if (ds == dnnl_unimplemented) {
            *none = true;
            goto out;
        }
        RT_DNNL_TRY(op, ds);
        st = arg_setup(op, e, pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, false, &dst_md);
        if (st == RT_OK)
            st = arg_setup(op, e, pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, false, &wei_md);
        if (st == RT_OK)
            st = arg_setup(op, e, pd, dnnl_query_diff_src_md, 0, DNNL_ARG_DIFF_SRC, true, &src_md);
    } else {
        dnnl_memory_desc_t dwei_any;
        RT_DNNL_TRY(op, md_weights(s, true, t_wei, &dwei_any));
        RT_DNNL_TRY(op, dnnl_dilated_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &src_any,
                                                                      &dwei_any, NULL, &dst_any, strides, dil, pad,
                                                                      pad));
        ds = dnnl_primitive_desc_create(&pd, &bd, NULL, engine, fpd);
        if (ds == dnnl_unimplemented) {
            *none = true;
            goto out;
        }
        RT_DNNL_TRY(op, ds);
        st = arg_setup(op, e, pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, false, &src_md);
        if (st == RT_OK)
            st = arg_setup(op, e, pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, false, &dst_md);
        if (st == RT_OK)
            st = arg_setup(op, e, pd, dnnl_query_diff_weights_md, 0, DNNL_ARG_DIFF_WEIGHTS, true, &wei_md);
    }
    if (st == RT_OK)
        RT_DNNL_TRY(op, dnnl_primitive_create(&e->prim, pd));
out:
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

static struct prim_key key_of(const struct rt_conv2d_shape *s, int kind, bool bf16)
{
    struct prim_key k;
    memset(&k, 0, sizeof k); /* the key is compared with memcmp: no stray padding bytes */
    k.n = s->g.n, k.c = s->g.c, k.h = s->g.h, k.w = s->g.w, k.o = s->o, k.groups = s->groups;
    k.kh = s->g.kh, k.kw = s->g.kw, k.sh = s->g.sh, k.sw = s->g.sw, k.ph = s->g.ph, k.pw = s->g.pw;
    k.dh = s->g.dh, k.dw = s->g.dw, k.kind = kind, k.threads = omp_get_max_threads();
    k.bf16 = bf16;
    return k;
}

/* The cached entry for (s, kind), built on a miss in the least recently used slot. *e NULL: oneDNN
 * has no implementation for it. Called with cache_lock held. */
static enum rt_status entry_get(const char *op, const struct rt_conv2d_shape *s, int kind, bool bf16,
                               struct prim_entry **e)
{
    struct prim_key k = key_of(s, kind, bf16);
    struct prim_entry *lru = &cache[0];
    *e = NULL;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].used && memcmp(&cache[i].key, &k, sizeof k) == 0) {
            cache[i].used = ++cache_clock;
            *e = &cache[i];
            return RT_OK;
        }
        if (cache[i].used < lru->used)
            lru = &cache[i];
    }
    enum rt_status st = rt_cpu_dnnl_ready(op, &engine, &stream);
    if (st != RT_OK)
        return st;
    entry_clear(lru);
    bool none;
    st = entry_build(op, s, kind, bf16, lru, &none);
    if (st != RT_OK || none) {
        entry_clear(lru);
        return st;
    }
    lru->key = k;
    lru->used = ++cache_clock;
    *e = lru;
    return RT_OK;
}

/* Runs e on the user buffers ptr[i] (operand i as arg_setup added it): inputs reordered into
 * scratch where the primitive wants another layout, the primitive, then outputs reordered back.
 * share (may be NULL) passes an input's reordered scratch between two primitives (the backward's
 * gy): share->arg's scratch is taken from share->buf when that is set (no reorder), else it is
 * kept there for the caller to free (rt_cpu_free, share->bytes). */
struct shared_input {
    int arg;
    void *buf;
    size_t bytes;
};

static enum rt_status entry_run(const char *op, struct prim_entry *e, void *const *ptr, struct shared_input *share)
{
    enum rt_status st = RT_OK;
    void *buf[PRIM_MAX_ARGS] = {0};
    dnnl_exec_arg_t args[PRIM_MAX_ARGS];
    for (int i = 0; i < e->nargs; i++) {
        struct prim_arg *a = &e->a[i];
        RT_DNNL_TRY(op, dnnl_memory_set_data_handle(a->user, ptr[i]));
        args[i].arg = a->arg, args[i].memory = a->user;
        if (!a->inner)
            continue;
        bool shared = share && share->arg == a->arg && !a->out;
        if (shared && share->buf) {
            RT_DNNL_TRY(op, dnnl_memory_set_data_handle(a->inner, share->buf));
            args[i].memory = a->inner;
            continue;
        }
        st = rt_cpu_alloc(a->bytes, &buf[i]);
        if (st != RT_OK)
            goto out;
        if (shared) /* the caller frees it, whatever happens next */
            share->buf = buf[i], share->bytes = a->bytes, buf[i] = NULL;
        RT_DNNL_TRY(op, dnnl_memory_set_data_handle(a->inner, shared ? share->buf : buf[i]));
        args[i].memory = a->inner;
        if (!a->out) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->inner}};
            RT_DNNL_TRY(op, dnnl_primitive_execute(a->reorder, stream, 2, r));
        }
    }
    RT_DNNL_TRY(op, dnnl_primitive_execute(e->prim, stream, e->nargs, args));
    for (int i = 0; i < e->nargs; i++) {
        struct prim_arg *a = &e->a[i];
        if (a->inner && a->out) {
            dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->inner}, {DNNL_ARG_TO, a->user}};
            RT_DNNL_TRY(op, dnnl_primitive_execute(a->reorder, stream, 2, r));
        }
    }
    RT_DNNL_TRY(op, dnnl_stream_wait(stream));
out:
    for (int i = 0; i < e->nargs; i++)
        if (buf[i])
            rt_cpu_free(buf[i], e->a[i].bytes);
    return st;
}

/* dims every operand must be able to count in oneDNN's int64 (dnnl_dim_t) and size_t arithmetic */
static bool sizes_fit(const struct rt_conv2d_shape *s)
{
    const int64_t lim = INT64_C(1) << 40; /* far above any buffer rt_cpu_alloc can give */
    int64_t in = s->g.n * s->g.c * s->g.h * s->g.w, outn = s->g.n * s->o * s->g.oh * s->g.ow;
    return in > 0 && outn > 0 && in < lim && outn < lim;
}

enum rt_status rt_cpu_dnnl_conv2d(const struct rt_conv2d_shape *s, const float *x, const float *w, const float *b,
                                  float *y, bool *done)
{
    static const char *op = "rt_conv2d";
    *done = false;
    if (!sizes_fit(s))
        return RT_OK;
    pthread_mutex_lock(&cache_lock);
    struct prim_entry *e;
    enum rt_status st = entry_get(op, s, b ? KIND_FWD_BIAS : KIND_FWD, false, &e);
    if (st == RT_OK && e) {
        void *ptr[PRIM_MAX_ARGS] = {(void *)x, (void *)w, b ? (void *)b : y, y};
        st = entry_run(op, e, ptr, NULL);
        *done = st == RT_OK;
    }
    pthread_mutex_unlock(&cache_lock);
    return st;
}

/* Runs the backward-data (ed, into gx) and backward-weights (ew, into gw) primitives looked up for one
 * convolution, either may be NULL; gy is reordered once when both want it in the same layout. */
static enum rt_status run_backward(const char *op, struct prim_entry *ed, struct prim_entry *ew, const void *x,
                                   const void *w, const void *gy, void *gx, void *gw)
{
    enum rt_status st = RT_OK;
    struct shared_input share = {DNNL_ARG_DIFF_DST, NULL, 0};
    bool same = ed && ew && ed->a[0].inner && ew->a[1].inner &&
                dnnl_memory_desc_equal(&ed->a[0].inner_md, &ew->a[1].inner_md);
    if (gx) {
        void *ptr[3] = {(void *)gy, (void *)w, gx};
        st = entry_run(op, ed, ptr, same ? &share : NULL);
    }
    if (st == RT_OK && gw) {
        void *ptr[3] = {(void *)x, (void *)gy, gw};
        st = entry_run(op, ew, ptr, same ? &share : NULL);
    }
    if (share.buf)
        rt_cpu_free(share.buf, share.bytes);
    return st;
}

enum rt_status rt_cpu_dnnl_conv2d_backward(const struct rt_conv2d_shape *s, const float *x, const float *w,
                                           const float *gy, float *gx, float *gw, bool *done)
{
    static const char *op = "Conv2dBackward";
    *done = false;
    if (!sizes_fit(s))
        return RT_OK;
    pthread_mutex_lock(&cache_lock);
    struct prim_entry *ed = NULL, *ew = NULL;
    enum rt_status st = RT_OK;
    /* both looked up before either runs: all or nothing, so a fallback never redoes half the work
     * (a slot the second lookup evicts is never the first's: that one was just used) */
    if (gx)
        st = entry_get(op, s, KIND_BWD_DATA, false, &ed);
    if (st == RT_OK && gw)
        st = entry_get(op, s, KIND_BWD_WEIGHTS, false, &ew);
    if (st == RT_OK && (!gx || ed) && (!gw || ew)) {
        st = run_backward(op, ed, ew, x, w, gy, gx, gw);
        *done = st == RT_OK;
    }
    pthread_mutex_unlock(&cache_lock);
    return st;
}

/* bf16: no fallback (im2col has no bf16 kernels), so a shape oneDNN leaves out is an error */
enum rt_status rt_cpu_dnnl_conv2d_bf16(const struct rt_conv2d_shape *s, const void *x, const void *w, const float *b,
                                       float *y)
{
    static const char *op = "rt_conv2d";
    if (!sizes_fit(s))
        return rt_error(RT_ERR_SHAPE, "%s: bf16 convolution too large or empty for oneDNN", op);
    pthread_mutex_lock(&cache_lock);
    struct prim_entry *e;
    enum rt_status st = entry_get(op, s, b ? KIND_FWD_BIAS : KIND_FWD, true, &e);
    if (st == RT_OK && !e)
        st = rt_error(RT_ERR_DTYPE, "%s: oneDNN has no bf16 convolution for this shape; use f32", op);
    if (st == RT_OK) {
        void *ptr[PRIM_MAX_ARGS] = {(void *)x, (void *)w, b ? (void *)b : y, y};
        st = entry_run(op, e, ptr, NULL);
    }
    pthread_mutex_unlock(&cache_lock);
    return st;
}

enum rt_status rt_cpu_dnnl_conv2d_backward_bf16(const struct rt_conv2d_shape *s, const void *x, const void *w,
                                                const void *gy, float *gx, float *gw)
{
    static const char *op = "Conv2dBackward";
    if (!sizes_fit(s))
        return rt_error(RT_ERR_SHAPE, "%s: bf16 convolution too large or empty for oneDNN", op);
    pthread_mutex_lock(&cache_lock);
    struct prim_entry *ed = NULL, *ew = NULL;
    enum rt_status st = RT_OK;
    if (gx)
        st = entry_get(op, s, KIND_BWD_DATA, true, &ed);
    if (st == RT_OK && gw)
        st = entry_get(op, s, KIND_BWD_WEIGHTS, true, &ew);
    if (st == RT_OK && ((gx && !ed) || (gw && !ew)))
        st = rt_error(RT_ERR_DTYPE, "%s: oneDNN has no bf16 convolution backward for this shape; use f32", op);
    if (st == RT_OK)
        st = run_backward(op, ed, ew, x, w, gy, gx, gw);
    pthread_mutex_unlock(&cache_lock);
    return st;
}

#else
typedef int rt_cpu_conv_dnnl_off; /* built without oneDNN: ISO C wants a declaration */
#endif /* RETORT_HAVE_DNNL */
