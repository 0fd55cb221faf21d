/* ONNX files (see retort/onnx.h): a graph description turned into protobuf-c structs generated from
 * ONNX's own onnx.proto, packed to a file.
 *
 * Choices:
 *  - Every string and small struct of the model lives in one arena owned by the model (freed at
 *    once); the growing lists (nodes, initializers, inputs, outputs, metadata) are malloc'ed arrays
 *    of pointers that the GraphProto points at after each append, so the protobuf-c structs are a
 *    packable message at every moment and nothing needs converting at save time.
 *  - Initializer values are copied when they are added (rt_tensor_to_host: any layout, any device)
 *    into an arena block of their own, so the caller's tensors may change or go away afterwards.
 *  - Value names are kept in a hash set: each is defined once, and a node's inputs must already be
 *    defined. That is ONNX's single-assignment rule, and it keeps the nodes topologically sorted.
 *  - The file is packed straight into a FILE (a ProtobufCBuffer whose append is fwrite), so a large
 *    model is never held twice in memory; written to path.tmp-<pid>, flushed, fsync'ed and renamed,
 *    like every other file retort writes.
 * Without protobuf-c (RETORT_HAVE_ONNX undefined) the same functions exist and say what to install. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "retort/onnx.h"

#define ONNX_NAME_MAX 4096

#ifndef RETORT_HAVE_ONNX

#define NOT_BUILT                                                                                            \
    "built without ONNX export: install protobuf-c-compiler, libprotobuf-c-dev and libonnx-dev and rebuild"

bool rt_onnx_available(void) { return false; }

enum rt_status rt_onnx_model_new(const struct rt_onnx_info *info, struct rt_onnx_model **out)
{
    (void)info;
    if (out)
        *out = NULL;
    return rt_error(RT_ERR_ARG, "rt_onnx_model_new: " NOT_BUILT);
}

void rt_onnx_model_free(struct rt_onnx_model *m) { (void)m; }

static enum rt_status not_built(const char *fn) { return rt_error(RT_ERR_ARG, "%s: " NOT_BUILT, fn); }

enum rt_status rt_onnx_add_metadata(struct rt_onnx_model *m, const char *key, const char *value)
{
    (void)m, (void)key, (void)value;
    return not_built("rt_onnx_add_metadata");
}
enum rt_status rt_onnx_add_input(struct rt_onnx_model *m, const char *name, enum rt_dtype dt, int ndim,
                                 const struct rt_onnx_dim *dims)
{
    (void)m, (void)name, (void)dt, (void)ndim, (void)dims;
    return not_built("rt_onnx_add_input");
}
enum rt_status rt_onnx_add_output(struct rt_onnx_model *m, const char *name, enum rt_dtype dt, int ndim,
                                  const struct rt_onnx_dim *dims)
{
    (void)m, (void)name, (void)dt, (void)ndim, (void)dims;
    return not_built("rt_onnx_add_output");
}
enum rt_status rt_onnx_add_initializer(struct rt_onnx_model *m, const char *name, const struct rt_tensor *t)
{
    (void)m, (void)name, (void)t;
    return not_built("rt_onnx_add_initializer");
}
enum rt_status rt_onnx_add_node(struct rt_onnx_model *m, const char *op_type, const char *name, int n_inputs,
                                const char *const *inputs, int n_outputs, const char *const *outputs, int n_attrs,
                                const struct rt_onnx_attr *attrs)
{
    (void)m, (void)op_type, (void)name, (void)n_inputs, (void)inputs, (void)n_outputs, (void)outputs;
    (void)n_attrs, (void)attrs;
    return not_built("rt_onnx_add_node");
}
size_t rt_onnx_node_count(const struct rt_onnx_model *m) { (void)m; return 0; }
size_t rt_onnx_initializer_count(const struct rt_onnx_model *m) { (void)m; return 0; }
enum rt_status rt_onnx_encoded_size(const struct rt_onnx_model *m, size_t *out)
{
    (void)m;
    if (out)
        *out = 0;
    return not_built("rt_onnx_encoded_size");
}
enum rt_status rt_onnx_save(const struct rt_onnx_model *m, const char *path)
{
    (void)m, (void)path;
    return not_built("rt_onnx_save");
}

#else /* RETORT_HAVE_ONNX */

#include "onnx.pb-c.h"

/* ---------------------------------------------------------------------------------------------- */
/* arena */

#define ARENA_BLOCK ((size_t)64 << 10)

struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    _Alignas(max_align_t) unsigned char data[];
};

static void arena_free(struct arena_block *b)
{
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* zeroed memory of n bytes (n may be 0), aligned for any type; NULL when out of memory */
static void *arena_alloc(struct arena_block **head, size_t n)
{
    const size_t align = _Alignof(max_align_t);
    if (n > SIZE_MAX - align - sizeof(struct arena_block))
        return NULL;
    size_t need = (n + align - 1) / align * align;
    if (need == 0)
        need = align;
    struct arena_block *b = *head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;
        struct arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->cap = cap;
        nb->used = 0;
        if (need > ARENA_BLOCK / 4 && b) {
            /* a large allocation gets a block of its own behind the current one, which stays open */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            *head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, n);
    return p;
}

static char *arena_strdup(struct arena_block **head, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(head, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* ---------------------------------------------------------------------------------------------- */
/* growing pointer lists and a set of names */

struct vec {
    void **items;
    size_t n, cap;
};

static bool vec_push(struct vec *v, void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(void *))
            return false;
        void **items = realloc(v->items, cap * sizeof(void *));
        if (!items)
            return false;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = item;
    return true;
}

struct name_set {
    const char **slots; /* open addressing; the strings live in the model's arena */
    size_t cap, count;  /* cap: 0 or a power of two */
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool set_has(const struct name_set *set, const char *s)
{
    if (!set->cap)
        return false;
    for (size_t i = name_hash(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (!set->slots[i])
            return false;
        if (!strcmp(set->slots[i], s))
            return true;
    }
}

static void set_place(const char **slots, size_t cap, const char *s)
{
    size_t i = name_hash(s) & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = s;
}

/* room for `extra` more names without growing (false: out of memory; the set is unchanged) */
static bool set_reserve(struct name_set *set, size_t extra)
{
    if (extra > SIZE_MAX / 4 || set->count > SIZE_MAX / 4 - extra)
        return false;
    size_t cap = set->cap ? set->cap : 64;
    while ((set->count + extra) * 2 > cap)
        cap *= 2;
    if (cap == set->cap)
        return true;
    if (cap > SIZE_MAX / sizeof(char *))
        return false;
    const char **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < set->cap; i++)
        if (set->slots[i])
            set_place(slots, cap, set->slots[i]);
    free(set->slots);
    set->slots = slots;
    set->cap = cap;
    return true;
}

/* adds s, which must not be present yet and must outlive the set, into room set_reserve made */
static void set_insert(struct name_set *set, const char *s)
{
    set_place(set->slots, set->cap, s);
    set->count++;
}

/* ---------------------------------------------------------------------------------------------- */
/* the model */

struct rt_onnx_model {
    struct arena_block *arena;
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    struct vec nodes, initializers, inputs, outputs, metadata;
    struct name_set values;   /* defined value names: inputs, initializers, node outputs */
    struct name_set meta_keys;
};

bool rt_onnx_available(void) { return true; }

void rt_onnx_model_free(struct rt_onnx_model *m)
{
    if (!m)
        return;
    free(m->nodes.items);
    free(m->initializers.items);
    free(m->inputs.items);
    free(m->outputs.items);
    free(m->metadata.items);
    free(m->values.slots);
    free(m->meta_keys.slots);
    arena_free(m->arena);
    free(m);
}

/* points the GraphProto and ModelProto at the current lists */
static void sync_lists(struct rt_onnx_model *m)
{
    m->graph.n_node = m->nodes.n;
    m->graph.node = (Onnx__NodeProto **)m->nodes.items;
    m->graph.n_initializer = m->initializers.n;
    m->graph.initializer = (Onnx__TensorProto **)m->initializers.items;
    m->graph.n_input = m->inputs.n;
    m->graph.input = (Onnx__ValueInfoProto **)m->inputs.items;
    m->graph.n_output = m->outputs.n;
    m->graph.output = (Onnx__ValueInfoProto **)m->outputs.items;
    m->model.n_metadata_props = m->metadata.n;
    m->model.metadata_props = (Onnx__StringStringEntryProto **)m->metadata.items;
}

static enum rt_status oom(const char *fn) { return rt_error(RT_ERR_OOM, "%s: out of memory", fn); }

/* a non-empty name of at most ONNX_NAME_MAX bytes; what names the thing in messages */
static enum rt_status check_name(const char *fn, const char *what, const char *name)
{
    if (!name)
        return rt_error(RT_ERR_ARG, "%s: %s is NULL", fn, what);
    size_t n = strlen(name);
    if (n == 0)
        return rt_error(RT_ERR_ARG, "%s: %s is empty", fn, what);
    if (n > ONNX_NAME_MAX)
        return rt_error(RT_ERR_ARG, "%s: %s is %zu bytes long (at most %d)", fn, what, n, ONNX_NAME_MAX);
    return RT_OK;
}

enum rt_status rt_onnx_model_new(const struct rt_onnx_info *info, struct rt_onnx_model **out)
{
    const char *fn = "rt_onnx_model_new";
    if (!out)
        return rt_error(RT_ERR_ARG, "%s: out is NULL", fn);
    *out = NULL;
    if (!info)
        return rt_error(RT_ERR_ARG, "%s: info is NULL", fn);
    if (info->opset < 1)
        return rt_error(RT_ERR_ARG, "%s: opset must be >= 1, got %lld", fn, (long long)info->opset);
    if (info->ir_version < 3)
        return rt_error(RT_ERR_ARG, "%s: ir_version must be >= 3, got %lld", fn, (long long)info->ir_version);
    struct rt_onnx_model *m = calloc(1, sizeof *m);
    if (!m)
        return oom(fn);
    m->model = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    m->graph = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    m->opset = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    m->opset.domain = NULL; /* the default domain "" (ai.onnx) */
    m->opset.has_version = 1;
    m->opset.version = info->opset;
    m->opsets[0] = &m->opset;
    m->model.has_ir_version = 1;
    m->model.ir_version = info->ir_version;
    m->model.n_opset_import = 1;
    m->model.opset_import = m->opsets;
    m->model.graph = &m->graph;
    const char *graph_name = info->graph_name ? info->graph_name : "graph";
    if (!(m->graph.name = arena_strdup(&m->arena, graph_name)) ||
        (info->producer && !(m->model.producer_name = arena_strdup(&m->arena, info->producer))) ||
        (info->producer_version && !(m->model.producer_version = arena_strdup(&m->arena, info->producer_version))) ||
        (info->doc && !(m->model.doc_string = arena_strdup(&m->arena, info->doc)))) {
        rt_onnx_model_free(m);
        return oom(fn);
    }
    *out = m;
    return RT_OK;
}

size_t rt_onnx_node_count(const struct rt_onnx_model *m) { return m ? m->nodes.n : 0; }
size_t rt_onnx_initializer_count(const struct rt_onnx_model *m) { return m ? m->initializers.n : 0; }

enum rt_status rt_onnx_add_metadata(struct rt_onnx_model *m, const char *key, const char *value)
{
    const char *fn = "rt_onnx_add_metadata";
    enum rt_status st;
    if (!m)
        return rt_error(RT_ERR_ARG, "%s: model is NULL", fn);
    if ((st = check_name(fn, "the key", key)) != RT_OK)
        return st;
    if (!value)
        return rt_error(RT_ERR_ARG, "%s: the value of '%s' is NULL", fn, key);
    if (set_has(&m->meta_keys, key))
        return rt_error(RT_ERR_ARG, "%s: key '%s' is already set", fn, key);
    Onnx__StringStringEntryProto *e = arena_alloc(&m->arena, sizeof *e);
    if (!e)
        return oom(fn);
    *e = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    if (!(e->key = arena_strdup(&m->arena, key)) || !(e->value = arena_strdup(&m->arena, value)) ||
        !set_reserve(&m->meta_keys, 1) || !vec_push(&m->metadata, e))
        return oom(fn);
    set_insert(&m->meta_keys, e->key);
    sync_lists(m);
    return RT_OK;
}

static bool onnx_elem_type(enum rt_dtype dt, int32_t *out)
{
    switch (dt) {
    case RT_F32: *out = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT; return true;
    case RT_F64: *out = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE; return true;
    case RT_I64: *out = ONNX__TENSOR_PROTO__DATA_TYPE__INT64; return true;
    case RT_U8: *out = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8; return true;
    default: return false;
    }
}

/* a graph input or output: a ValueInfoProto with a tensor type and shape */
static enum rt_status value_info(struct rt_onnx_model *m, const char *fn, const char *name, enum rt_dtype dt,
                                 int ndim, const struct rt_onnx_dim *dims, Onnx__ValueInfoProto **out)
{
    int32_t elem;
    if (!onnx_elem_type(dt, &elem))
        return rt_error(RT_ERR_DTYPE, "%s: '%s': dtype %d has no ONNX element type", fn, name, (int)dt);
    if (ndim < 0 || ndim > RT_MAX_DIMS)
        return rt_error(RT_ERR_ARG, "%s: '%s': %d dims (0..%d expected)", fn, name, ndim, RT_MAX_DIMS);
    if (ndim > 0 && !dims)
        return rt_error(RT_ERR_ARG, "%s: '%s': dims is NULL", fn, name);
    for (int i = 0; i < ndim; i++) {
        if (dims[i].param) {
            enum rt_status st = check_name(fn, "a symbolic dimension's name", dims[i].param);
            if (st != RT_OK)
                return st;
        } else if (dims[i].size < 0) {
            return rt_error(RT_ERR_ARG, "%s: '%s': dim %d has size %lld (>= 0 or a symbolic name expected)", fn,
                            name, i + 1, (long long)dims[i].size);
        }
    }
    Onnx__ValueInfoProto *vi = arena_alloc(&m->arena, sizeof *vi);
    Onnx__TypeProto *type = arena_alloc(&m->arena, sizeof *type);
    Onnx__TypeProto__Tensor *tt = arena_alloc(&m->arena, sizeof *tt);
    Onnx__TensorShapeProto *shape = arena_alloc(&m->arena, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dimv = arena_alloc(&m->arena, (size_t)ndim * sizeof *dimv);
    if (!vi || !type || !tt || !shape || !dimv)
        return oom(fn);
    *vi = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    *type = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    *shape = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = arena_alloc(&m->arena, sizeof *d);
        if (!d)
            return oom(fn);
        *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (dims[i].param) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            if (!(d->dim_param = arena_strdup(&m->arena, dims[i].param)))
                return oom(fn);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i].size;
        }
        dimv[i] = d;
    }
    shape->n_dim = (size_t)ndim;
    shape->dim = dimv;
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    tt->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    vi->type = type;
    if (!(vi->name = arena_strdup(&m->arena, name)))
        return oom(fn);
    *out = vi;
    return RT_OK;
}

enum rt_status rt_onnx_add_input(struct rt_onnx_model *m, const char *name, enum rt_dtype dt, int ndim,
                                 const struct rt_onnx_dim *dims)
{
    const char *fn = "rt_onnx_add_input";
    enum rt_status st;
    if (!m)
        return rt_error(RT_ERR_ARG, "%s: model is NULL", fn);
    if ((st = check_name(fn, "the input's name", name)) != RT_OK)
        return st;
    if (set_has(&m->values, name))
        return rt_error(RT_ERR_ARG, "%s: a value named '%s' is already defined", fn, name);
    Onnx__ValueInfoProto *vi;
    if ((st = value_info(m, fn, name, dt, ndim, dims, &vi)) != RT_OK)
        return st;
    if (!set_reserve(&m->values, 1) || !vec_push(&m->inputs, vi))
        return oom(fn);
    set_insert(&m->values, vi->name);
    sync_lists(m);
    return RT_OK;
}

enum rt_status rt_onnx_add_output(struct rt_onnx_model *m, const char *name, enum rt_dtype dt, int ndim,
                                  const struct rt_onnx_dim *dims)
{
    const char *fn = "rt_onnx_add_output";
    enum rt_status st;
    if (!m)
        return rt_error(RT_ERR_ARG, "%s: model is NULL", fn);
    if ((st = check_name(fn, "the output's name", name)) != RT_OK)
        return st;
    if (!set_has(&m->values, name))
        return rt_error(RT_ERR_ARG, "%s: '%s' is not defined (no input, initializer or node output has that name)",
                        fn, name);
    for (size_t i = 0; i < m->outputs.n; i++)
        if (!strcmp(((Onnx__ValueInfoProto *)m->outputs.items[i])->name, name))
            return rt_error(RT_ERR_ARG, "%s: '%s' is already an output", fn, name);
    Onnx__ValueInfoProto *vi;
    if ((st = value_info(m, fn, name, dt, ndim, dims, &vi)) != RT_OK)
        return st;
    if (!vec_push(&m->outputs, vi))
        return oom(fn);
    sync_lists(m);
    return RT_OK;
}

enum rt_status rt_onnx_add_initializer(struct rt_onnx_model *m, const char *name, const struct rt_tensor *t)
{
    const char *fn = "rt_onnx_add_initializer";
    enum rt_status st;
    if (!m)
        return rt_error(RT_ERR_ARG, "%s: model is NULL", fn);
    if ((st = check_name(fn, "the initializer's name", name)) != RT_OK)
        return st;
    if (!t)
        return rt_error(RT_ERR_ARG, "%s: '%s': tensor is NULL", fn, name);
    if (set_has(&m->values, name))
        return rt_error(RT_ERR_ARG, "%s: a value named '%s' is already defined", fn, name);
    int32_t elem;
    if (!onnx_elem_type(t->dtype, &elem))
        return rt_error(RT_ERR_DTYPE, "%s: '%s': dtype %s has no ONNX element type", fn, name,
                        rt_dtype_name(t->dtype));
    int64_t numel = rt_tensor_numel(t);
    size_t esize = rt_dtype_size(t->dtype);
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / esize)
        return rt_error(RT_ERR_ARG, "%s: '%s': %lld elements do not fit in memory", fn, name, (long long)numel);
    size_t nbytes = (size_t)numel * esize;
    Onnx__TensorProto *tp = arena_alloc(&m->arena, sizeof *tp);
    int64_t *dims = arena_alloc(&m->arena, (size_t)t->ndim * sizeof *dims);
    uint8_t *data = arena_alloc(&m->arena, nbytes);
    if (!tp || !dims || !data)
        return oom(fn);
    *tp = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    if (nbytes > 0 && (st = rt_tensor_to_host(t, t->dtype, data)) != RT_OK) {
        rt_error_prefix(fn);
        return st;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t off = 0; esize > 1 && off < nbytes; off += esize)
        for (size_t a = off, b = off + esize - 1; a < b; a++, b--) {
            uint8_t tmp = data[a];
            data[a] = data[b];
            data[b] = tmp;
        }
#endif
    for (int i = 0; i < t->ndim; i++)
        dims[i] = t->shape[i];
    tp->n_dims = (size_t)t->ndim;
    tp->dims = dims;
    tp->has_data_type = 1;
    tp->data_type = elem;
    tp->has_raw_data = 1;
    tp->raw_data.len = nbytes;
    tp->raw_data.data = data;
    if (!(tp->name = arena_strdup(&m->arena, name)))
        return oom(fn);
    if (!set_reserve(&m->values, 1) || !vec_push(&m->initializers, tp))
        return oom(fn);
    set_insert(&m->values, tp->name);
    sync_lists(m);
    return RT_OK;
}

static enum rt_status make_attr(struct rt_onnx_model *m, const char *fn, const char *node,
                                const struct rt_onnx_attr *a, Onnx__AttributeProto **out)
{
    enum rt_status st;
    char what[64 + ONNX_NAME_MAX];
    snprintf(what, sizeof what, "an attribute name of node '%s'", node);
    if ((st = check_name(fn, what, a->name)) != RT_OK)
        return st;
    Onnx__AttributeProto *ap = arena_alloc(&m->arena, sizeof *ap);
    if (!ap)
        return oom(fn);
    *ap = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    if (!(ap->name = arena_strdup(&m->arena, a->name)))
        return oom(fn);
    ap->has_type = 1;
    switch (a->kind) {
    case RT_ONNX_INT:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case RT_ONNX_FLOAT:
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        ap->has_f = 1;
        ap->f = (float)a->f;
        break;
    case RT_ONNX_INTS:
        if (a->n > 0 && !a->ints)
            return rt_error(RT_ERR_ARG, "%s: node '%s': attribute '%s' has %zu ints but no array", fn, node,
                            a->name, a->n);
        if (a->n > SIZE_MAX / sizeof(int64_t))
            return oom(fn);
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        if (!(ap->ints = arena_alloc(&m->arena, a->n * sizeof(int64_t))))
            return oom(fn);
        if (a->n)
            memcpy(ap->ints, a->ints, a->n * sizeof(int64_t));
        ap->n_ints = a->n;
        break;
    case RT_ONNX_FLOATS:
        if (a->n > 0 && !a->floats)
            return rt_error(RT_ERR_ARG, "%s: node '%s': attribute '%s' has %zu floats but no array", fn, node,
                            a->name, a->n);
        if (a->n > SIZE_MAX / sizeof(float))
            return oom(fn);
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
        if (!(ap->floats = arena_alloc(&m->arena, a->n * sizeof(float))))
            return oom(fn);
        for (size_t i = 0; i < a->n; i++)
            ap->floats[i] = (float)a->floats[i];
        ap->n_floats = a->n;
        break;
    case RT_ONNX_STRING:
        if (!a->s)
            return rt_error(RT_ERR_ARG, "%s: node '%s': string attribute '%s' is NULL", fn, node, a->name);
        ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        ap->has_s = 1;
        ap->s.len = strlen(a->s);
        if (!(ap->s.data = (uint8_t *)arena_strdup(&m->arena, a->s)))
            return oom(fn);
        break;
    default:
        return rt_error(RT_ERR_ARG, "%s: node '%s': attribute '%s' has an unknown kind %d", fn, node, a->name,
                        (int)a->kind);
    }
    *out = ap;
    return RT_OK;
}

enum rt_status rt_onnx_add_node(struct rt_onnx_model *m, const char *op_type, const char *name, int n_inputs,
                                const char *const *inputs, int n_outputs, const char *const *outputs, int n_attrs,
                                const struct rt_onnx_attr *attrs)
{
    const char *fn = "rt_onnx_add_node";
    enum rt_status st;
    if (!m)
        return rt_error(RT_ERR_ARG, "%s: model is NULL", fn);
    if ((st = check_name(fn, "the op type", op_type)) != RT_OK)
        return st;
    if ((st = check_name(fn, "the node's name", name)) != RT_OK)
        return st;
    if (n_inputs < 0 || (n_inputs > 0 && !inputs))
        return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): %d inputs%s", fn, name, op_type, n_inputs,
                        n_inputs > 0 ? " but no array" : "");
    if (n_outputs < 1 || !outputs)
        return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): at least one output is needed, got %d", fn, name, op_type,
                        n_outputs);
    if (n_attrs < 0 || (n_attrs > 0 && !attrs))
        return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): %d attributes%s", fn, name, op_type, n_attrs,
                        n_attrs > 0 ? " but no array" : "");
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i])
            return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): input %d is NULL", fn, name, op_type, i + 1);
        if (inputs[i][0] && !set_has(&m->values, inputs[i]))
            return rt_error(RT_ERR_ARG,
                            "%s: node '%s' (%s): input %d '%s' is not defined (no input, initializer or earlier "
                            "node output has that name)",
                            fn, name, op_type, i + 1, inputs[i]);
    }
    for (int i = 0; i < n_outputs; i++) {
        char what[64];
        snprintf(what, sizeof what, "output %d of the node", i + 1);
        if ((st = check_name(fn, what, outputs[i])) != RT_OK)
            return st;
        if (set_has(&m->values, outputs[i]))
            return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): output %d: a value named '%s' is already defined", fn,
                            name, op_type, i + 1, outputs[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(outputs[j], outputs[i]))
                return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): outputs %d and %d are both named '%s'", fn, name,
                                op_type, j + 1, i + 1, outputs[i]);
    }
    for (int i = 0; i < n_attrs; i++)
        for (int j = 0; j < i; j++)
            if (attrs[i].name && attrs[j].name && !strcmp(attrs[i].name, attrs[j].name))
                return rt_error(RT_ERR_ARG, "%s: node '%s' (%s): attribute '%s' is given twice", fn, name, op_type,
                                attrs[i].name);
    Onnx__NodeProto *node = arena_alloc(&m->arena, sizeof *node);
    char **in = arena_alloc(&m->arena, (size_t)n_inputs * sizeof *in);
    char **outv = arena_alloc(&m->arena, (size_t)n_outputs * sizeof *outv);
    Onnx__AttributeProto **attrv = arena_alloc(&m->arena, (size_t)n_attrs * sizeof *attrv);
    if (!node || !in || !outv || !attrv)
        return oom(fn);
    *node = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    if (!(node->op_type = arena_strdup(&m->arena, op_type)) || !(node->name = arena_strdup(&m->arena, name)))
        return oom(fn);
    for (int i = 0; i < n_inputs; i++)
        if (!(in[i] = arena_strdup(&m->arena, inputs[i])))
            return oom(fn);
    for (int i = 0; i < n_outputs; i++)
        if (!(outv[i] = arena_strdup(&m->arena, outputs[i])))
            return oom(fn);
    for (int i = 0; i < n_attrs; i++)
        if ((st = make_attr(m, fn, name, &attrs[i], &attrv[i])) != RT_OK)
            return st;
    node->n_input = (size_t)n_inputs;
    node->input = in;
    node->n_output = (size_t)n_outputs;
    node->output = outv;
    node->n_attribute = (size_t)n_attrs;
    node->attribute = attrv;
    /* the outputs become defined only once the node is complete: a failure above leaves the graph as
     * it was (what was allocated stays in the arena until the model is freed) */
    if (!set_reserve(&m->values, (size_t)n_outputs) || !vec_push(&m->nodes, node))
        return oom(fn);
    for (int i = 0; i < n_outputs; i++)
        set_insert(&m->values, outv[i]);
    sync_lists(m);
    return RT_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* writing */

#define ONNX_MAX_BYTES ((size_t)INT32_MAX) /* protobuf's limit for one message */

enum rt_status rt_onnx_encoded_size(const struct rt_onnx_model *m, size_t *out)
{
    if (!m || !out)
        return rt_error(RT_ERR_ARG, "rt_onnx_encoded_size: %s is NULL", m ? "out" : "model");
    *out = onnx__model_proto__get_packed_size(&m->model);
    return RT_OK;
}

struct file_buffer {
    ProtobufCBuffer base;
    FILE *f;
    int err; /* errno of the first failed write, 0 while all went well */
};

static void file_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    struct file_buffer *fb = (struct file_buffer *)buffer;
    if (fb->err || len == 0)
        return;
    errno = 0;
    if (fwrite(data, 1, len, fb->f) != len)
        fb->err = errno ? errno : EIO;
}

enum rt_status rt_onnx_save(const struct rt_onnx_model *m, const char *path)
{
    const char *fn = "rt_onnx_save";
    if (!m)
        return rt_error(RT_ERR_ARG, "%s: model is NULL", fn);
    if (!path || !path[0])
        return rt_error(RT_ERR_ARG, "%s: empty path", fn);
    if (m->outputs.n == 0)
        return rt_error(RT_ERR_ARG, "%s: %s: the graph has no output", fn, path);
    size_t size = onnx__model_proto__get_packed_size(&m->model);
    if (size > ONNX_MAX_BYTES)
        return rt_error(RT_ERR_ARG,
                        "%s: %s: the model takes %zu bytes, more than protobuf's 2 GiB limit for one message "
                        "(ONNX's external data files are not written)",
                        fn, path, size);
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return oom(fn);
    snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    enum rt_status st = RT_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = rt_error(RT_ERR_IO, "%s: cannot create %s: %s", fn, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    struct file_buffer fb = {.base = {.append = file_append}, .f = f, .err = 0};
    size_t written = onnx__model_proto__pack_to_buffer(&m->model, &fb.base);
    if (!fb.err && fflush(f) != 0)
        fb.err = errno ? errno : EIO;
    if (!fb.err && fsync(fileno(f)) != 0)
        fb.err = errno ? errno : EIO;
    if (fclose(f) != 0 && !fb.err)
        fb.err = errno ? errno : EIO;
    if (fb.err) {
        st = rt_error(RT_ERR_IO, "%s: cannot write %s: %s", fn, tmp, strerror(fb.err));
    } else if (written != size) {
        st = rt_error(RT_ERR_INTERNAL, "%s: %s: packed %zu bytes, expected %zu", fn, tmp, written, size);
    } else if (rename(tmp, path) != 0) {
        st = rt_error(RT_ERR_IO, "%s: cannot rename %s to %s: %s", fn, tmp, path, strerror(errno));
    }
    if (st != RT_OK)
        remove(tmp);
    free(tmp);
    return st;
}

#endif /* RETORT_HAVE_ONNX */
