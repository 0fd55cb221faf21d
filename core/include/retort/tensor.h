/* Tensors: a shape/stride/offset view over refcounted storage that carries its device.
 * Views share storage (and its version counter); kernels only ever see contiguous data.
 * Functions return new references through out-parameters; release them with rt_tensor_release. */
#ifndef RETORT_TENSOR_H
#define RETORT_TENSOR_H

#include "common.h"

struct rt_backend;
struct rt_node;

struct rt_storage {
    int32_t refcount;
    enum rt_device device;
    const struct rt_backend *backend;
    void *data;
    size_t nbytes;
    uint64_t version; /* bumped by every in-place write; autograd checks it */
};

struct rt_tensor {
    int32_t refcount;
    enum rt_dtype dtype;
    int ndim;
    int64_t shape[RT_MAX_DIMS];
    int64_t stride[RT_MAX_DIMS]; /* in elements */
    int64_t offset;              /* in elements */
    struct rt_storage *storage;
    /* autograd */
    bool requires_grad;
    struct rt_tensor *grad;   /* accumulated gradient (leaves) */
    struct rt_node *grad_fn;  /* node that produced this tensor (non-leaves), owned */
    struct rt_node *grad_acc; /* weak: accumulate node of a leaf, owned by the graph */
    char name[32];            /* debug name, may be empty */
};

/* --- lifetime --- */
void rt_tensor_retain(struct rt_tensor *t);
void rt_tensor_release(struct rt_tensor *t); /* NULL is fine */
/* Number of live rt_tensor structs (leak tests). */
int64_t rt_tensor_live_count(void);

/* --- creation (contents zeroed unless stated) --- */
enum rt_status rt_tensor_new(enum rt_dtype dt, enum rt_device dev, int ndim, const int64_t *shape,
                             struct rt_tensor **out);
/* Uninitialised contents: for kernels that overwrite every element. */
enum rt_status rt_tensor_empty(enum rt_dtype dt, enum rt_device dev, int ndim, const int64_t *shape,
                               struct rt_tensor **out);
enum rt_status rt_tensor_empty_like(const struct rt_tensor *t, struct rt_tensor **out);
enum rt_status rt_tensor_zeros_like(const struct rt_tensor *t, struct rt_tensor **out);
/* Copies numel host values of type dt (CPU tensor). */
enum rt_status rt_tensor_from_data(enum rt_dtype dt, int ndim, const int64_t *shape, const void *data,
                                   struct rt_tensor **out);
enum rt_status rt_tensor_full(enum rt_dtype dt, enum rt_device dev, int ndim, const int64_t *shape,
                              double value, struct rt_tensor **out);
enum rt_status rt_tensor_scalar(enum rt_dtype dt, double value, struct rt_tensor **out); /* 0-dim */
/* start, start+step, ... < end (like torch.arange). */
enum rt_status rt_tensor_arange(enum rt_dtype dt, double start, double end, double step,
                                struct rt_tensor **out);

/* --- queries --- */
int64_t rt_tensor_numel(const struct rt_tensor *t);
bool rt_tensor_is_contiguous(const struct rt_tensor *t);
bool rt_tensor_same_shape(const struct rt_tensor *a, const struct rt_tensor *b);
enum rt_device rt_tensor_device(const struct rt_tensor *t);
/* Pointer to the first element (CPU only). */
void *rt_tensor_data(const struct rt_tensor *t);
/* "(2,3)" into buf; returns buf. */
const char *rt_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
#define RT_SHAPE_STR_MAX 128
/* Element at a multi-index as double (any device; slow, for printing/tests). */
enum rt_status rt_tensor_get(const struct rt_tensor *t, const int64_t *index, double *out);
enum rt_status rt_tensor_set(struct rt_tensor *t, const int64_t *index, double value);
/* Single element tensor -> double. */
enum rt_status rt_tensor_item(const struct rt_tensor *t, double *out);
/* Copy all elements, in row-major order, converted to dt, into host buffer buf (numel * size). */
enum rt_status rt_tensor_to_host(const struct rt_tensor *t, enum rt_dtype dt, void *buf);
void rt_tensor_set_name(struct rt_tensor *t, const char *name);

/* --- views (share storage; differentiable) --- dims are 0-based; negative dims count from the end */
enum rt_status rt_view(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out);
/* view when strides allow, else a contiguous copy. One shape entry may be -1. */
enum rt_status rt_reshape(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out);
enum rt_status rt_narrow(struct rt_tensor *t, int dim, int64_t start, int64_t length,
                         struct rt_tensor **out);
enum rt_status rt_select(struct rt_tensor *t, int dim, int64_t index, struct rt_tensor **out);
enum rt_status rt_transpose(struct rt_tensor *t, int d0, int d1, struct rt_tensor **out);
enum rt_status rt_permute(struct rt_tensor *t, const int *dims, struct rt_tensor **out);
enum rt_status rt_expand(struct rt_tensor *t, int ndim, const int64_t *shape, struct rt_tensor **out);
enum rt_status rt_unsqueeze(struct rt_tensor *t, int dim, struct rt_tensor **out);
enum rt_status rt_squeeze(struct rt_tensor *t, int dim, struct rt_tensor **out); /* dim<0 with -99: all */
enum rt_status rt_flatten(struct rt_tensor *t, int start_dim, int end_dim, struct rt_tensor **out);

/* --- copies --- */
enum rt_status rt_contiguous(struct rt_tensor *t, struct rt_tensor **out); /* new ref to t if already */
enum rt_status rt_clone(struct rt_tensor *t, struct rt_tensor **out);
enum rt_status rt_to_dtype(struct rt_tensor *t, enum rt_dtype dt, struct rt_tensor **out);
enum rt_status rt_to_device(struct rt_tensor *t, enum rt_device dev, struct rt_tensor **out);
/* Returns a tensor sharing t's data but cut from the graph (requires_grad false). */
enum rt_status rt_detach(struct rt_tensor *t, struct rt_tensor **out);

/* --- fingerprints (soft-target caches check teachers and datasets with them) --- */
/* 64-bit FNV-1a of the dtype name, the shape and the elements' bytes in row-major order: equal for
 * equal tensors whatever their strides or device; *h holds the running hash (start with
 * RT_FINGERPRINT_INIT) so several tensors and strings can be chained into one fingerprint. */
#define RT_FINGERPRINT_INIT 0xcbf29ce484222325ULL
enum rt_status rt_tensor_fingerprint(const struct rt_tensor *t, uint64_t *h);
void rt_fingerprint_bytes(const void *data, size_t n, uint64_t *h);

/* --- in-place (bump the storage version; refused on tensors that need grad while grad mode is on) --- */
enum rt_status rt_copy_(struct rt_tensor *dst, struct rt_tensor *src); /* broadcasts src, converts dtype and device */
enum rt_status rt_fill_(struct rt_tensor *t, double value);
enum rt_status rt_zero_(struct rt_tensor *t);
enum rt_status rt_add_(struct rt_tensor *t, struct rt_tensor *other, double alpha); /* t += alpha*other */
enum rt_status rt_mul_scalar_(struct rt_tensor *t, double s);
enum rt_status rt_add_scalar_(struct rt_tensor *t, double s);

#endif
