/* ONNX models, written with protobuf-c against ONNX's own schema (libonnx-dev's onnx.proto, turned
 * into C by protoc-c when the core is built). This is the encoder only: the graph is described by
 * the caller (retort.onnx traces a model in Lua and calls this through the binding) as inputs,
 * initializers (tensors), nodes with attributes, and outputs, in that order.
 *
 *   struct rt_onnx_model *m;
 *   rt_onnx_model_new(&(struct rt_onnx_info){.opset = 13, .ir_version = 7, .producer = "retort"}, &m);
 *   rt_onnx_add_input(m, "input", RT_F32, 2, (struct rt_onnx_dim[]){{.param = "N"}, {.size = 784}});
 *   rt_onnx_add_initializer(m, "fc.weight", w);                 // a copy of w's values is kept
 *   rt_onnx_add_node(m, "Gemm", "fc/Gemm", 3, (const char *[]){"input", "fc.weight", "fc.bias"}, 1,
 *                    (const char *[]){"logits"}, 1, &(struct rt_onnx_attr){.name = "transB", .kind = RT_ONNX_INT, .i = 1});
 *   rt_onnx_add_output(m, "logits", RT_F32, 2, (struct rt_onnx_dim[]){{.param = "N"}, {.size = 10}});
 *   rt_onnx_save(m, "model.onnx");                              // written to model.onnx.tmp-<pid>, renamed
 *   rt_onnx_model_free(m);
 *
 * What is checked (so that the file is a well-formed graph whatever the caller gives): names are
 * non-empty and each value name (input, initializer, node output) is defined once; a node's inputs
 * name values already defined (the empty string stands for an omitted optional input), which also
 * keeps the nodes in topological order; attribute names are non-empty and distinct within a node;
 * graph outputs name defined values; sizes are >= 0 and counts fit. Operator semantics (which
 * attributes an op takes, shapes) are not checked here: onnx.checker does that (tests/lua/onnx_spec.lua).
 *
 * Tensor data is stored little-endian in raw_data, as ONNX requires, in the tensor's own dtype
 * (f32 -> FLOAT, f64 -> DOUBLE, i64 -> INT64, u8 -> UINT8), copied from any device. A model larger
 * than protobuf's 2 GiB message limit is refused (ONNX's external data is not written).
 *
 * Built without protobuf-c (CMake did not find protoc-c, libprotobuf-c or onnx.proto),
 * rt_onnx_available() is false and rt_onnx_model_new fails with RT_ERR_ARG and a message that says
 * what to install. No protobuf-c type appears in this header. */
#ifndef RETORT_ONNX_H
#define RETORT_ONNX_H

#include "tensor.h"

struct rt_onnx_model;

/* true when this build writes ONNX files (protobuf-c and onnx.proto were found) */
bool rt_onnx_available(void);

struct rt_onnx_info {
    int64_t opset;            /* the default domain's opset version (>= 1) */
    int64_t ir_version;       /* ONNX IR version (>= 3) */
    const char *producer;     /* producer_name (NULL: none) */
    const char *producer_version;
    const char *graph_name;   /* NULL: "graph" */
    const char *doc;          /* the model's doc_string (NULL: none) */
};

enum rt_onnx_attr_kind { RT_ONNX_INT = 0, RT_ONNX_FLOAT, RT_ONNX_INTS, RT_ONNX_FLOATS, RT_ONNX_STRING };

struct rt_onnx_attr {
    const char *name;
    enum rt_onnx_attr_kind kind;
    int64_t i;             /* RT_ONNX_INT */
    double f;              /* RT_ONNX_FLOAT (stored as float, as ONNX does) */
    const int64_t *ints;   /* RT_ONNX_INTS: n values */
    const double *floats;  /* RT_ONNX_FLOATS: n values */
    size_t n;
    const char *s;         /* RT_ONNX_STRING */
};

/* One dimension of a graph input or output: symbolic when param is non-NULL (e.g. "N", the batch),
 * else of fixed size (>= 0). */
struct rt_onnx_dim {
    int64_t size;
    const char *param;
};

enum rt_status rt_onnx_model_new(const struct rt_onnx_info *info, struct rt_onnx_model **out);
void rt_onnx_model_free(struct rt_onnx_model *m); /* NULL is fine */

/* metadata_props entry (key unique) */
enum rt_status rt_onnx_add_metadata(struct rt_onnx_model *m, const char *key, const char *value);
enum rt_status rt_onnx_add_input(struct rt_onnx_model *m, const char *name, enum rt_dtype dt, int ndim,
                                 const struct rt_onnx_dim *dims);
/* a constant of the graph; t's values are copied now (t may be strided or on any device) */
enum rt_status rt_onnx_add_initializer(struct rt_onnx_model *m, const char *name, const struct rt_tensor *t);
enum rt_status rt_onnx_add_node(struct rt_onnx_model *m, const char *op_type, const char *name, int n_inputs,
                                const char *const *inputs, int n_outputs, const char *const *outputs, int n_attrs,
                                const struct rt_onnx_attr *attrs);
enum rt_status rt_onnx_add_output(struct rt_onnx_model *m, const char *name, enum rt_dtype dt, int ndim,
                                  const struct rt_onnx_dim *dims);

/* Counts so far (for summaries and tests). */
size_t rt_onnx_node_count(const struct rt_onnx_model *m);
size_t rt_onnx_initializer_count(const struct rt_onnx_model *m);

/* The serialized size in bytes (what rt_onnx_save writes). */
enum rt_status rt_onnx_encoded_size(const struct rt_onnx_model *m, size_t *out);
/* Writes the model to path atomically: path.tmp-<pid> first, synced, then renamed over path. */
enum rt_status rt_onnx_save(const struct rt_onnx_model *m, const char *path);

#endif
