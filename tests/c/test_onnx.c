/* The ONNX encoder (retort/onnx.h): a small graph written and its bytes looked at without a protobuf
 * decoder (the leading ir_version field, initializer values found verbatim in the file, in row-major
 * order of the tensor as it was when added, little-endian); the size it reports equals the file's;
 * the atomic write (no temporary left, an unwritable folder named in the error); and every refusal
 * (names undefined or defined twice, empty or NULL names, bad dims, dtypes, attribute kinds, opset,
 * IR version, duplicate metadata keys and outputs), each leaving the graph as it was, with no leak.
 * The files themselves are checked by onnx.checker, shape inference, OpenCV's DNN and a numpy
 * evaluator in tests/lua/onnx_spec.lua. Built without protobuf-c, it checks that every call says
 * what to install. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "retort/onnx.h"

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(hay + i, needle, m))
            return true;
    return false;
}

/* float32 little-endian bytes of v[0..n) */
static void le_floats(const float *v, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            out[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
}

static const struct rt_onnx_info INFO = {.opset = 13, .ir_version = 7, .producer = "retort-test"};

static const struct rt_onnx_dim X_DIMS[2] = {{.param = "N"}, {.size = 3}};
static const struct rt_onnx_dim Y_DIMS[2] = {{.param = "N"}, {.size = 2}};

/* input x (N, 3) -> Gemm with w (2, 3), b (2) -> Relu -> y (N, 2) */
static enum rt_status build_small(struct rt_onnx_model *m, struct rt_tensor *w, struct rt_tensor *b)
{
    enum rt_status st;
    if ((st = rt_onnx_add_input(m, "x", RT_F32, 2, X_DIMS)) != RT_OK ||
        (st = rt_onnx_add_initializer(m, "w", w)) != RT_OK || (st = rt_onnx_add_initializer(m, "b", b)) != RT_OK)
        return st;
    struct rt_onnx_attr trans = {.name = "transB", .kind = RT_ONNX_INT, .i = 1};
    if ((st = rt_onnx_add_node(m, "Gemm", "fc", 3, (const char *[]){"x", "w", "b"}, 1, (const char *[]){"h"}, 1,
                               &trans)) != RT_OK)
        return st;
    if ((st = rt_onnx_add_node(m, "Relu", "act", 1, (const char *[]){"h"}, 1, (const char *[]){"y"}, 0, NULL)) !=
        RT_OK)
        return st;
    return rt_onnx_add_output(m, "y", RT_F32, 2, Y_DIMS);
}

static void test_not_built(void)
{
    struct rt_onnx_model *m = (struct rt_onnx_model *)1;
    CHECK_STATUS(rt_onnx_model_new(&INFO, &m), RT_ERR_ARG, "install protobuf-c-compiler, libprotobuf-c-dev and libonnx-dev");
    CHECK(m == NULL, "out must be NULL after a failure");
    CHECK_STATUS(rt_onnx_save(NULL, "x.onnx"), RT_ERR_ARG, "built without ONNX export");
    rt_onnx_model_free(NULL);
}

static void test_write_and_bytes(void)
{
    struct rt_tensor *w = h_tensor(RT_F32, 2, H_SHAPE(2, 3), H_VALS(0.5, -1.25, 3.0, 7.75, -0.125, 2.5));
    struct rt_tensor *b = h_tensor(RT_F32, 1, H_SHAPE(2), H_VALS(1.5, -2.0));
    struct rt_onnx_model *m = NULL;
    REQUIRE_OK(rt_onnx_model_new(&INFO, &m));
    CHECK_OK(rt_onnx_add_metadata(m, "retort.model", "test"));
    CHECK_OK(build_small(m, w, b));
    CHECK(rt_onnx_node_count(m) == 2 && rt_onnx_initializer_count(m) == 2, "counts %zu %zu", rt_onnx_node_count(m),
          rt_onnx_initializer_count(m));
    /* values are copied when added: changing w now must not change the file */
    CHECK_OK(rt_fill_(w, 42.0));
    size_t size = 0;
    CHECK_OK(rt_onnx_encoded_size(m, &size));
    const char *path = h_tmp_path("small.onnx");
    CHECK_OK(rt_onnx_save(m, path));
    rt_onnx_model_free(m);

    size_t n = 0;
    unsigned char *bytes = h_slurp(path, &n);
    REQUIRE(bytes != NULL, "cannot read %s back", path);
    CHECK(n == size && n > 0, "file has %zu bytes, the encoder said %zu", n, size);
    /* field 1 (ir_version, varint): tag 0x08, value 7 */
    CHECK(n >= 2 && bytes[0] == 0x08 && bytes[1] == 0x07, "first bytes %02x %02x", bytes[0], bytes[1]);
    unsigned char want[24], changed[4];
    le_floats((const float[]){0.5f, -1.25f, 3.0f, 7.75f, -0.125f, 2.5f}, 6, want);
    CHECK(contains(bytes, n, want, 24), "w's six values (as added) are not in the file");
    le_floats((const float[]){42.0f}, 1, changed);
    CHECK(!contains(bytes, n, changed, 4), "the value written into w after adding it reached the file");
    le_floats((const float[]){1.5f, -2.0f}, 2, want);
    CHECK(contains(bytes, n, want, 8), "b's values are not in the file");
    CHECK(contains(bytes, n, "Gemm", 4) && contains(bytes, n, "transB", 6) && contains(bytes, n, "retort-test", 11),
          "op type, attribute name or producer missing");
    free(bytes);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "the temporary %s was left behind", tmp);
    RELEASE(w, b);
}

static void test_strided_and_dtypes(void)
{
    /* a transposed view is written in its own row-major order; i64 and u8 keep their widths */
    struct rt_tensor *a = h_iota(RT_F32, 2, H_SHAPE(2, 3)), *t = NULL;
    REQUIRE_OK(rt_transpose(a, 0, 1, &t)); /* (3, 2): 0 3 / 1 4 / 2 5 */
    struct rt_tensor *l = h_tensor(RT_I64, 1, H_SHAPE(2), H_VALS(-2, 300000000000));
    struct rt_tensor *u = h_tensor(RT_U8, 1, H_SHAPE(3), H_VALS(7, 8, 255));
    struct rt_onnx_model *m = NULL;
    REQUIRE_OK(rt_onnx_model_new(&INFO, &m));
    CHECK_OK(rt_onnx_add_input(m, "x", RT_F32, 2, (struct rt_onnx_dim[]){{.size = 3}, {.size = 2}}));
    CHECK_OK(rt_onnx_add_initializer(m, "t", t));
    CHECK_OK(rt_onnx_add_initializer(m, "l", l));
    CHECK_OK(rt_onnx_add_initializer(m, "u", u));
    CHECK_OK(rt_onnx_add_node(m, "Add", "add", 2, (const char *[]){"x", "t"}, 1, (const char *[]){"y"}, 0, NULL));
    CHECK_OK(rt_onnx_add_output(m, "y", RT_F32, 2, (struct rt_onnx_dim[]){{.size = 3}, {.size = 2}}));
    const char *path = h_tmp_path("strided.onnx");
    CHECK_OK(rt_onnx_save(m, path));
    rt_onnx_model_free(m);
    size_t n = 0;
    unsigned char *bytes = h_slurp(path, &n);
    REQUIRE(bytes != NULL, "cannot read %s back", path);
    unsigned char want[24];
    le_floats((const float[]){0, 3, 1, 4, 2, 5}, 6, want);
    CHECK(contains(bytes, n, want, 24), "the transposed view's row-major values are not in the file");
    unsigned char l_bytes[16] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    int64_t big = 300000000000;
    for (int i = 0; i < 8; i++)
        l_bytes[8 + i] = (unsigned char)((uint64_t)big >> (8 * i));
    CHECK(contains(bytes, n, l_bytes, 16), "the i64 values are not in the file as 8-byte little-endian");
    CHECK(contains(bytes, n, (const unsigned char[]){7, 8, 255}, 3), "the u8 values are not in the file");
    free(bytes);
    RELEASE(a, t, l, u);
}

static void test_refusals(void)
{
    struct rt_tensor *w = h_tensor(RT_F32, 2, H_SHAPE(2, 3), H_VALS(1, 2, 3, 4, 5, 6));
    struct rt_tensor *b = h_tensor(RT_F32, 1, H_SHAPE(2), H_VALS(1, 2));
    struct rt_onnx_model *m = NULL;
    CHECK_STATUS(rt_onnx_model_new(NULL, &m), RT_ERR_ARG, "info is NULL");
    CHECK_STATUS(rt_onnx_model_new(&(struct rt_onnx_info){.opset = 0, .ir_version = 7}, &m), RT_ERR_ARG,
                 "opset must be >= 1");
    CHECK_STATUS(rt_onnx_model_new(&(struct rt_onnx_info){.opset = 13, .ir_version = 2}, &m), RT_ERR_ARG,
                 "ir_version must be >= 3");
    CHECK_STATUS(rt_onnx_model_new(&INFO, NULL), RT_ERR_ARG, "out is NULL");
    REQUIRE_OK(rt_onnx_model_new(&INFO, &m));
    CHECK_STATUS(rt_onnx_save(m, h_tmp_path("empty.onnx")), RT_ERR_ARG, "the graph has no output");
    CHECK_OK(build_small(m, w, b));

    /* names */
    CHECK_STATUS(rt_onnx_add_input(m, "w", RT_F32, 1, X_DIMS), RT_ERR_ARG, "a value named 'w' is already defined");
    CHECK_STATUS(rt_onnx_add_initializer(m, "x", w), RT_ERR_ARG, "a value named 'x' is already defined");
    CHECK_STATUS(rt_onnx_add_initializer(m, "", w), RT_ERR_ARG, "the initializer's name is empty");
    CHECK_STATUS(rt_onnx_add_initializer(m, NULL, w), RT_ERR_ARG, "the initializer's name is NULL");
    CHECK_STATUS(rt_onnx_add_initializer(m, "w2", NULL), RT_ERR_ARG, "'w2': tensor is NULL");
    char *longname = malloc(5000);
    memset(longname, 'a', 4999);
    longname[4999] = '\0';
    CHECK_STATUS(rt_onnx_add_input(m, longname, RT_F32, 1, X_DIMS), RT_ERR_ARG, "is 4999 bytes long");
    free(longname);

    /* nodes: undefined input, output defined twice (here or in the node), attribute twice, bad arrays */
    size_t nodes = rt_onnx_node_count(m);
    CHECK_STATUS(rt_onnx_add_node(m, "Relu", "r1", 1, (const char *[]){"nope"}, 1, (const char *[]){"z"}, 0, NULL),
                 RT_ERR_ARG, "input 1 'nope' is not defined");
    CHECK_STATUS(rt_onnx_add_node(m, "Relu", "r2", 1, (const char *[]){"y"}, 1, (const char *[]){"h"}, 0, NULL),
                 RT_ERR_ARG, "output 1: a value named 'h' is already defined");
    CHECK_STATUS(rt_onnx_add_node(m, "Split", "s", 1, (const char *[]){"y"}, 2, (const char *[]){"z", "z"}, 0, NULL),
                 RT_ERR_ARG, "outputs 1 and 2 are both named 'z'");
    struct rt_onnx_attr twice[2] = {{.name = "axis", .kind = RT_ONNX_INT}, {.name = "axis", .kind = RT_ONNX_INT}};
    CHECK_STATUS(rt_onnx_add_node(m, "Softmax", "sm", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 2, twice),
                 RT_ERR_ARG, "attribute 'axis' is given twice");
    struct rt_onnx_attr no_ints = {.name = "perm", .kind = RT_ONNX_INTS, .n = 2, .ints = NULL};
    CHECK_STATUS(rt_onnx_add_node(m, "Transpose", "t", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 1, &no_ints),
                 RT_ERR_ARG, "has 2 ints but no array");
    struct rt_onnx_attr no_floats = {.name = "f", .kind = RT_ONNX_FLOATS, .n = 1, .floats = NULL};
    CHECK_STATUS(rt_onnx_add_node(m, "X", "x1", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 1, &no_floats),
                 RT_ERR_ARG, "has 1 floats but no array");
    struct rt_onnx_attr no_string = {.name = "mode", .kind = RT_ONNX_STRING, .s = NULL};
    CHECK_STATUS(rt_onnx_add_node(m, "Pad", "p", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 1, &no_string),
                 RT_ERR_ARG, "string attribute 'mode' is NULL");
    struct rt_onnx_attr bad_kind = {.name = "k", .kind = (enum rt_onnx_attr_kind)99};
    CHECK_STATUS(rt_onnx_add_node(m, "X", "x2", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 1, &bad_kind),
                 RT_ERR_ARG, "unknown kind 99");
    struct rt_onnx_attr unnamed = {.name = "", .kind = RT_ONNX_INT};
    CHECK_STATUS(rt_onnx_add_node(m, "X", "x3", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 1, &unnamed),
                 RT_ERR_ARG, "an attribute name of node 'x3' is empty");
    CHECK_STATUS(rt_onnx_add_node(m, "Relu", "r3", 1, (const char *[]){"y"}, 0, (const char *[]){"z"}, 0, NULL),
                 RT_ERR_ARG, "at least one output is needed");
    CHECK_STATUS(rt_onnx_add_node(m, "Relu", "r4", -1, NULL, 1, (const char *[]){"z"}, 0, NULL), RT_ERR_ARG,
                 "-1 inputs");
    CHECK_STATUS(rt_onnx_add_node(m, "Relu", "r5", 1, (const char *[]){NULL}, 1, (const char *[]){"z"}, 0, NULL),
                 RT_ERR_ARG, "input 1 is NULL");
    CHECK_STATUS(rt_onnx_add_node(m, "", "r6", 1, (const char *[]){"y"}, 1, (const char *[]){"z"}, 0, NULL),
                 RT_ERR_ARG, "the op type is empty");
    CHECK_STATUS(rt_onnx_add_node(m, "Relu", "r7", 1, (const char *[]){"y"}, 1, (const char *[]){""}, 0, NULL),
                 RT_ERR_ARG, "output 1 of the node is empty");
    CHECK(rt_onnx_node_count(m) == nodes, "a refused node was added (%zu nodes, %zu before)", rt_onnx_node_count(m),
          nodes);
    /* none of the refused nodes defined "z": a node may still take that name, and "" is an omitted input */
    CHECK_OK(rt_onnx_add_node(m, "Clip", "clip", 3, (const char *[]){"y", "", ""}, 1, (const char *[]){"z"}, 0, NULL));

    /* inputs and outputs */
    CHECK_STATUS(rt_onnx_add_input(m, "x2", RT_F32, 9, X_DIMS), RT_ERR_ARG, "9 dims");
    CHECK_STATUS(rt_onnx_add_input(m, "x2", RT_F32, 1, (struct rt_onnx_dim[]){{.size = -3}}), RT_ERR_ARG,
                 "dim 1 has size -3");
    CHECK_STATUS(rt_onnx_add_input(m, "x2", RT_F32, 1, (struct rt_onnx_dim[]){{.param = ""}}), RT_ERR_ARG,
                 "a symbolic dimension's name is empty");
    CHECK_STATUS(rt_onnx_add_input(m, "x2", (enum rt_dtype)17, 1, X_DIMS), RT_ERR_DTYPE, "has no ONNX element type");
    CHECK_STATUS(rt_onnx_add_input(m, "x2", RT_F32, 2, NULL), RT_ERR_ARG, "dims is NULL");
    CHECK_STATUS(rt_onnx_add_output(m, "nowhere", RT_F32, 2, Y_DIMS), RT_ERR_ARG, "'nowhere' is not defined");
    CHECK_STATUS(rt_onnx_add_output(m, "y", RT_F32, 2, Y_DIMS), RT_ERR_ARG, "'y' is already an output");
    CHECK_OK(rt_onnx_add_metadata(m, "retort.model", "a"));
    CHECK_STATUS(rt_onnx_add_metadata(m, "retort.model", "b"), RT_ERR_ARG, "key 'retort.model' is already set");
    CHECK_STATUS(rt_onnx_add_metadata(m, "k", NULL), RT_ERR_ARG, "the value of 'k' is NULL");
    CHECK_STATUS(rt_onnx_add_input(NULL, "x", RT_F32, 0, NULL), RT_ERR_ARG, "model is NULL");
    CHECK_STATUS(rt_onnx_save(m, ""), RT_ERR_ARG, "empty path");

    /* an unwritable place: the error names the file; nothing is left behind */
    const char *bad = h_tmp_path("no-such-folder/m.onnx");
    CHECK_STATUS(rt_onnx_save(m, bad), RT_ERR_IO, "no-such-folder/m.onnx.tmp-");
    /* the model is still whole and saves elsewhere */
    CHECK_OK(rt_onnx_save(m, h_tmp_path("after-refusals.onnx")));
    rt_onnx_model_free(m);
    RELEASE(w, b);
}

/* many values: the name set grows through several rehashes and still finds every name */
static void test_many_names(void)
{
    struct rt_onnx_model *m = NULL;
    REQUIRE_OK(rt_onnx_model_new(&INFO, &m));
    CHECK_OK(rt_onnx_add_input(m, "v0", RT_F32, 1, (struct rt_onnx_dim[]){{.size = 4}}));
    char in[32], out[32], name[32];
    int n = 3000;
    for (int i = 1; i <= n; i++) {
        snprintf(in, sizeof in, "v%d", i - 1);
        snprintf(out, sizeof out, "v%d", i);
        snprintf(name, sizeof name, "relu%d", i);
        if (!CHECK_OK(rt_onnx_add_node(m, "Relu", name, 1, (const char *[]){in}, 1, (const char *[]){out}, 0, NULL)))
            break;
    }
    for (int i = 0; i <= n; i += 97) {
        snprintf(out, sizeof out, "v%d", i);
        CHECK_STATUS(rt_onnx_add_node(m, "Relu", "again", 1, (const char *[]){"v0"}, 1, (const char *[]){out}, 0, NULL),
                     RT_ERR_ARG, "is already defined");
    }
    snprintf(out, sizeof out, "v%d", n);
    CHECK_OK(rt_onnx_add_output(m, out, RT_F32, 1, (struct rt_onnx_dim[]){{.size = 4}}));
    CHECK(rt_onnx_node_count(m) == (size_t)n, "%zu nodes", rt_onnx_node_count(m));
    CHECK_OK(rt_onnx_save(m, h_tmp_path("chain.onnx")));
    rt_onnx_model_free(m);
}

int main(void)
{
    if (!rt_onnx_available()) {
        RUN(test_not_built);
        return h_finish();
    }
    h_tmpdir("onnx"); /* removed by h_finish */
    RUN(test_write_and_bytes);
    RUN(test_strided_and_dtypes);
    RUN(test_refusals);
    RUN(test_many_names);
    return h_finish();
}
