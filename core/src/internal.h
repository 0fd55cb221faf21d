/* Helpers shared by the op files of the core (not public API). */
#ifndef RETORT_INTERNAL_H
#define RETORT_INTERNAL_H

#include "retort/retort.h"
#include "backend/backend.h"

/* The ops' one error idiom: a function holds `enum rt_status st` and its owned references (NULL
 * until set), wraps each fallible call in RT_TRY, and has a single `done:` block that releases them
 * all and returns st. RT_TRY stores the call's status and jumps there on the first failure. */
#define RT_TRY(expr)                                                                                              \
    do {                                                                                                          \
        st = (expr);                                                                                              \
        if (st != RT_OK)                                                                                          \
            goto done;                                                                                            \
    } while (0)

#define RT_NODE_MAX_SAVED 6

typedef enum rt_status (*rt_vjp_fn)(struct rt_node *n, struct rt_tensor *gout, struct rt_tensor **gin);

/* A graph node: the VJP of one op that produced one tensor. */
struct rt_node {
    int32_t refcount;
    const char *name;
    rt_vjp_fn vjp;          /* NULL for a leaf's accumulate node */
    int n_inputs;
    struct rt_node **next;  /* per input: node that receives its gradient, or NULL (owned refs) */
    int *in_ndim;           /* per input shape: gradients are summed back to it (broadcasting) */
    int64_t (*in_shape)[RT_MAX_DIMS];
    enum rt_dtype *in_dtype;
    struct rt_tensor *saved[RT_NODE_MAX_SAVED];
    uint64_t saved_version[RT_NODE_MAX_SAVED];
    int n_saved;
    bool released;          /* saved tensors dropped after a backward without retain_graph */
    double s[4];            /* op parameters */
    int64_t i[RT_MAX_DIMS + 2];
    struct rt_tensor *leaf; /* accumulate nodes: the leaf (owned) */
    /* engine scratch */
    struct rt_tensor *pending;
    int deps;
    uint64_t mark;
};

/* --- tensor internals --- */
struct rt_tensor *rt__tensor_struct(void);             /* zeroed struct, refcount 1, counted */
enum rt_status rt__storage_new(enum rt_device dev, size_t nbytes, struct rt_storage **out);
void rt__storage_release(struct rt_storage *s);
size_t rt__memory_peak(enum rt_device d); /* most bytes held by storages since start or the last reset */
void rt__memory_reset_peak(enum rt_device d);
/* A new tensor struct aliasing t's storage with the given geometry (no autograd). */
enum rt_status rt__alias(const struct rt_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                         int64_t offset, struct rt_tensor **out);
void rt__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
/* RT_OK when a tensor of this shape can exist: 0..RT_MAX_DIMS dims, sizes >= 0, and the product of the
 * sizes (empty dims counted as 1) small enough that no element count, byte count or stride overflows */
enum rt_status rt__check_shape(const char *op, int ndim, const int64_t *shape);
int64_t rt__numel(int ndim, const int64_t *shape);
void *rt__ptr(const struct rt_tensor *t);              /* data + offset (any device) */
struct rt_strided rt__strided(const struct rt_tensor *t);
const struct rt_backend *rt__backend(const struct rt_tensor *t);
/* Copies nbytes of device memory to the host through be: the one way values reach the host, so a
 * GPU's waits are counted here (rt_device_waits). */
enum rt_status rt__download(const struct rt_backend *be, void *host_dst, const void *src, size_t nbytes);
/* Normalises a possibly negative dim against ndim; error names the op. */
enum rt_status rt__dim(const char *op, int dim, int ndim, int *out);
/* dst <- src (equal shapes, any strides) through be's copy kernel, or its cast_bf16 where either dtype is
 * bf16 (an RT_ERR_DEVICE on a backend without one); rt__fill_bf16 fills a bf16 tensor with value. */
enum rt_status rt__copy_strided(const struct rt_backend *be, const struct rt_strided *dst, enum rt_dtype dst_dt,
                                const struct rt_strided *src, enum rt_dtype src_dt);
enum rt_status rt__fill_bf16(struct rt_tensor *t, double value);
/* RT_ERR_DTYPE for an op that needs f32/f64: "<op>: needs a float tensor, got <dt>", or for bf16 (a
 * storage dtype, retort/bf16.h) "<op>: bf16 tensors are not supported; convert with :float()". */
enum rt_status rt__not_float(const char *op, enum rt_dtype dt);
/* Contiguous version of t without recording autograd (new ref). */
enum rt_status rt__contig_raw(struct rt_tensor *t, struct rt_tensor **out);
/* A new contiguous tensor on t's device holding t's values converted to dt (no autograd). */
enum rt_status rt__copy_as(const struct rt_tensor *t, enum rt_dtype dt, struct rt_tensor **out);
/* A new tensor of like's dtype and device holding the host doubles v (shape given; no autograd). */
enum rt_status rt__from_host_like(const double *v, int ndim, const int64_t *shape, const struct rt_tensor *like,
                                  struct rt_tensor **out);
/* Refuse in-place writes that autograd cannot see. */
enum rt_status rt__check_inplace(const char *op, struct rt_tensor *t);
static inline void rt__bump_version(struct rt_tensor *t) { t->storage->version++; }
enum rt_status rt__same_device(const char *op, const struct rt_tensor *a, const struct rt_tensor *b);
/* Broadcast shape of a and b; error message names op and both shapes. */
enum rt_status rt__broadcast_shape(const char *op, const struct rt_tensor *a, const struct rt_tensor *b, int *ndim,
                                   int64_t *shape);

/* --- autograd recording --- */
/* True when grad mode is on and any of the inputs requires grad. */
bool rt__needs_grad(int n, struct rt_tensor *const *inputs);
/* Attach a node computing out's VJP to out (sets out->requires_grad). node_out may be NULL. */
enum rt_status rt__record(struct rt_tensor *out, const char *name, rt_vjp_fn vjp, int n,
                          struct rt_tensor *const *inputs, struct rt_node **node_out);
/* Save a tensor for backward (an alias sharing storage, with its current version). */
enum rt_status rt__save(struct rt_node *n, struct rt_tensor *t);
void rt__node_release(struct rt_node *n);

/* Release a list of tensors (NULLs allowed). */
void rt__release_all(int n, struct rt_tensor **ts);

/* Elementwise/reduce kernels shared by several op files (no autograd). */
enum rt_status rt__unary_raw(enum rt_unary_op op, struct rt_tensor *x, double a, double b, struct rt_tensor **out);
enum rt_status rt__binary_raw(const char *name, enum rt_binary_op op, struct rt_tensor *a, struct rt_tensor *b,
                              struct rt_tensor **out);
/* The same for an op with a parameter s (RT_BIN_LEAKY_RELU_BW's slope). */
enum rt_status rt__binary_param_raw(const char *name, enum rt_binary_op op, struct rt_tensor *a, struct rt_tensor *b,
                                    double s, struct rt_tensor **out);
enum rt_status rt__reduce_raw(const char *name, enum rt_reduce_op op, struct rt_tensor *x, int dim, bool keepdim,
                              double p, struct rt_tensor **out, struct rt_tensor **idx);
enum rt_status rt__gemm_2d(struct rt_tensor *a, bool ta, struct rt_tensor *b, bool tb, struct rt_tensor **out);

#endif
