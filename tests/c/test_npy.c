/* NumPy .npy reader (rt_npy_read): files written byte by byte by the test itself, following the
 * format's specification (numpy.lib.format), so the reader is checked against the spec rather
 * than against itself: every accepted dtype (values from a formula, decoded here by hand), format
 * versions 1.0/2.0/3.0, header spellings numpy and Python 2 produce, scalars and empty arrays; and
 * every refusal (status + the words of the message): bad magic, short files, unknown versions,
 * headers that do not parse, missing/extra/repeated keys, Fortran order, big-endian and unsupported
 * dtypes, too many dims, a shape whose byte count overflows, truncated data, trailing bytes, a
 * uint64 beyond i64. The numpy-written files are checked in tests/lua/npy_spec.lua. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "retort/data.h"

static const char *dir; /* h_tmpdir(): removed by h_finish */

/* Writes a .npy file: magic, version (major.0), the header dict text padded with spaces to a
 * multiple of 64 bytes and ended by '\n' (as numpy does), then ndata bytes of data. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t ndata)
{
    size_t lenbytes = major == 1 ? 2 : 4, pre = 8 + lenbytes, n = strlen(dict);
    size_t total = pre + n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = n + pad + 1;
    FILE *f = fopen(path, "wb");
    fwrite("\x93NUMPY", 1, 6, f);
    unsigned char v[6] = {(unsigned char)major,
                          0,
                          (unsigned char)(hlen & 0xff),
                          (unsigned char)((hlen >> 8) & 0xff),
                          (unsigned char)((hlen >> 16) & 0xff),
                          (unsigned char)((hlen >> 24) & 0xff)};
    fwrite(v, 1, 2 + lenbytes, f);
    fwrite(dict, 1, n, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (ndata)
        fwrite(data, 1, ndata, f);
    fclose(f);
}

static void write_raw(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
}

/* element k of the test arrays, as a signed value that fits every integer type when reduced */
static int64_t value_of(int64_t k) { return (k * 37 + 11) % 241 - 120; }

/* little-endian bytes of v in `size` bytes */
static void store_le(unsigned char *p, uint64_t v, int size)
{
    for (int i = 0; i < size; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_integer_dtypes(void)
{
    static const struct {
        const char *descr;
        int size;
        bool is_signed;
        enum rt_dtype dt;
    } cases[] = {{"|u1", 1, false, RT_U8},  {"|i1", 1, true, RT_I64}, {"<i2", 2, true, RT_I64},
                 {"<u2", 2, false, RT_I64}, {"<i4", 4, true, RT_I64}, {"<u4", 4, false, RT_I64},
                 {"<i8", 8, true, RT_I64},  {"<u8", 8, false, RT_I64}};
    const int64_t n = 2 * 3 * 4;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char data[24 * 8];
        double want[24];
        for (int64_t k = 0; k < n; k++) {
            int64_t v = value_of(k);
            if (!cases[c].is_signed)
                v = v < 0 ? -v : v;
            if (cases[c].size == 1 && !cases[c].is_signed)
                v += 100; /* 0..220: a u8 */
            store_le(data + k * cases[c].size, (uint64_t)v, cases[c].size);
            want[k] = (double)v;
        }
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3, 4), }", cases[c].descr);
        const char *p = h_tmp_path("int.npy");
        write_npy(p, 1, dict, data, (size_t)(n * cases[c].size));
        struct rt_tensor *t = NULL;
        struct rt_npy_header h;
        if (!CHECK_OK(rt_npy_read(p, &t, &h)))
            continue;
        CHECK(t->dtype == cases[c].dt, "%s reads as %s", cases[c].descr, rt_dtype_name(t->dtype));
        CHECK_SHAPE(t, 3, 2, 3, 4);
        CHECK_TENSOR_VALUES(t, want, n, 0, 0);
        CHECK(strcmp(h.descr, cases[c].descr) == 0 && h.major == 1 && h.data_bytes == n * cases[c].size,
              "header of %s: descr %s, version %d, %lld data bytes", cases[c].descr, h.descr, h.major,
              (long long)h.data_bytes);
        RELEASE(t);
    }
}

static void test_float_dtypes_and_versions(void)
{
    float f4[6];
    double f8[6], want[6];
    for (int k = 0; k < 6; k++) {
        f4[k] = (float)(k - 2.5) / 3.0f;
        f8[k] = (double)(k - 2.5) / 7.0;
    }
    for (int major = 1; major <= 3; major++) {
        const char *p = h_tmp_path("f4.npy");
        write_npy(p, major, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f4, sizeof f4);
        struct rt_tensor *t = NULL;
        struct rt_npy_header h;
        if (CHECK_OK(rt_npy_read(p, &t, &h))) {
            for (int k = 0; k < 6; k++)
                want[k] = f4[k];
            CHECK(t->dtype == RT_F32 && h.major == major, "f32, version %d", h.major);
            CHECK_SHAPE(t, 2, 3, 2);
            CHECK_TENSOR_VALUES(t, want, 6, 0, 0);
            CHECK((h.data_offset & 63) == 0, "data offset %lld (numpy aligns to 64)", (long long)h.data_offset);
            RELEASE(t);
        }
        p = h_tmp_path("f8.npy");
        write_npy(p, major, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", f8, sizeof f8);
        if (CHECK_OK(rt_npy_read(p, &t, NULL))) {
            CHECK(t->dtype == RT_F64, "f64");
            CHECK_SHAPE(t, 1, 6);
            CHECK_TENSOR_VALUES(t, f8, 6, 0, 0);
            RELEASE(t);
        }
    }
}

static void test_header_spellings(void)
{
    int64_t v[6] = {5, -4, 3, 2, 1, 0};
    double want[6] = {5, -4, 3, 2, 1, 0};
    /* key order, double quotes, no trailing comma, Python 2 longs, spaces and a 1-tuple */
    const char *dicts[] = {
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<i8'}",
        "{\"descr\":\"<i8\",\"fortran_order\":False,\"shape\":(2,3)}",
        "{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 3L), }",
        "  { 'descr' : '<i8' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }  ",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        const char *p = h_tmp_path("h.npy");
        write_npy(p, 1, dicts[i], v, sizeof v);
        struct rt_tensor *t = NULL;
        if (CHECK_OK(rt_npy_read(p, &t, NULL))) {
            CHECK_SHAPE(t, 2, 2, 3);
            CHECK_TENSOR_VALUES(t, want, 6, 0, 0);
            RELEASE(t);
        }
    }
    /* a 1-tuple, a scalar () and an empty array */
    const char *p = h_tmp_path("one.npy");
    write_npy(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }", v, sizeof v);
    struct rt_tensor *t = NULL;
    if (CHECK_OK(rt_npy_read(p, &t, NULL))) {
        CHECK_SHAPE(t, 1, 6);
        RELEASE(t);
    }
    write_npy(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", v, 8);
    if (CHECK_OK(rt_npy_read(p, &t, NULL))) {
        CHECK_SHAPE0(t);
        CHECK(h_elem(t, 0) == 5, "scalar value %g", h_elem(t, 0));
        RELEASE(t);
    }
    write_npy(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", NULL, 0);
    if (CHECK_OK(rt_npy_read(p, &t, NULL))) {
        CHECK_SHAPE(t, 2, 0, 3);
        RELEASE(t);
    }
    /* rt_npy_read_header gives the same header without the data */
    write_npy(p, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 1), }", want, 24);
    struct rt_npy_header h;
    if (CHECK_OK(rt_npy_read_header(p, &h)))
        CHECK(h.major == 2 && h.dtype == RT_F64 && h.ndim == 2 && h.shape[0] == 3 && h.shape[1] == 1 &&
                  h.data_bytes == 24 && strcmp(h.descr, "<f8") == 0,
              "header of a 2.0 file");
}

/* writes dict + ndata zero bytes of data and expects status st with substr in the message */
static void refused(const char *dict, int major, size_t ndata, enum rt_status st, const char *substr)
{
    const char *p = h_tmp_path("bad.npy");
    unsigned char *data = calloc(ndata ? ndata : 1, 1);
    write_npy(p, major, dict, data, ndata);
    free(data);
    struct rt_tensor *t = NULL;
    CHECK_STATUS(rt_npy_read(p, &t, NULL), st, substr);
    CHECK(t == NULL, "no tensor on failure");
    CHECK(strstr(rt_error_msg(), p) != NULL, "the message names the file: %s", rt_error_msg());
}

static void test_refused_headers(void)
{
    refused("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 1, 24, RT_ERR_FORMAT,
            "a Fortran-order array (fortran_order: True, shape (2,3)); only C order is read");
    refused("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 1, 24, RT_ERR_DTYPE,
            "big-endian dtype '>f4'; expected little-endian '<f4'");
    refused("{'descr': '>i8', 'fortran_order': False, 'shape': (3,), }", 1, 24, RT_ERR_DTYPE, "big-endian dtype '>i8'");
    const char *unsupported[] = {"<c8", "|b1", "<f2", "<U3", "|S4", "|O", "<M8[ns]", "<f16", "", "<i3"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        char dict[128], want[64];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", unsupported[i]);
        snprintf(want, sizeof want, "unsupported dtype '%s'; expected '|u1', '<f4'", unsupported[i]);
        refused(dict, 1, 0, RT_ERR_DTYPE, want);
    }
    refused("{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (2,), }", 1, 24, RT_ERR_DTYPE,
            "a structured dtype (a list of fields) is not supported");
    refused("{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", 1, 8, RT_ERR_FORMAT,
            "the header does not parse: expected ',' or '}' after a value at byte 16, found '''");
    refused("{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, RT_ERR_FORMAT,
            "expected ':' after a key at byte 9");
    refused("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 1, 8, RT_ERR_FORMAT,
            "expected True or False for 'fortran_order'");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 1, 8, RT_ERR_FORMAT,
            "expected '(' opening the shape tuple");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 1, 8, RT_ERR_FORMAT,
            "expected a non-negative integer in the shape");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 1, 8, RT_ERR_FORMAT,
            "expected only spaces and a newline after the header dict");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 1, 8, RT_ERR_FORMAT,
            "found the end of the header");
    refused("{'descr': 'a\\b', 'fortran_order': False, 'shape': (2,), }", 1, 8, RT_ERR_FORMAT,
            "expected a string without escapes");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", 1, 8, RT_ERR_FORMAT,
            "the header has a key 'extra' at byte 56; a .npy header has exactly the keys");
    refused("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, RT_ERR_FORMAT,
            "the header has the key 'descr' twice");
    refused("{'descr': '<f4', 'shape': (2,), }", 1, 8, RT_ERR_FORMAT, "the header lacks the key 'fortran_order'");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 1, 4, RT_ERR_FORMAT,
            "the shape has more than 8 dims");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 1, 4, RT_ERR_FORMAT,
            "does not fit in 64 bits");
    refused("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 1, 8, RT_ERR_FORMAT,
            "shape (4294967296,4294967296) of '<f8' overflows: its byte count does not fit in 64 bits");
    refused("{'descr': '<f8', 'fortran_order': False, 'shape': (1152921504606846976,), }", 1, 8, RT_ERR_FORMAT,
            "overflows");
    refused("{'descr': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'fortran_order': False, 'shape': (2,), }",
            1, 8, RT_ERR_FORMAT, "the header has a string of 49 bytes at byte 10");
}

static void test_refused_sizes(void)
{
    /* data shorter and longer than the header says; the numbers are in the message */
    refused(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }", 1, 100, RT_ERR_FORMAT,
        "is truncated: the header says shape (10,3) of '<f4' = 120 bytes of data after 128 bytes of header, 248 bytes "
        "in all; the file has 228 bytes");
    refused("{'descr': '<f4', 'fortran_order': False, 'shape': (10, 3), }", 1, 121, RT_ERR_FORMAT,
            "has trailing bytes: the header says shape (10,3)");
    refused("{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }", 2, 16, RT_ERR_FORMAT,
            "is truncated");
    /* a uint64 beyond i64 */
    unsigned char big[16];
    store_le(big, 7, 8);
    store_le(big + 8, UINT64_MAX, 8);
    const char *p = h_tmp_path("u8.npy");
    write_npy(p, 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }", big, 16);
    struct rt_tensor *t = NULL;
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT,
                 "element 1 (counting from 0) is 18446744073709551615, which does not fit in i64");
}

static void test_refused_preambles(void)
{
    struct rt_tensor *t = NULL;
    const char *p = h_tmp_path("pre.npy");
    CHECK_STATUS(rt_npy_read(h_tmp_path("missing.npy"), &t, NULL), RT_ERR_IO, "cannot open");
    CHECK_STATUS(rt_npy_read(dir, &t, NULL), RT_ERR_IO, "not a regular file");
    write_raw(p, "", 0);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT,
                 "is not a .npy file: it has 0 bytes, fewer than the preamble");
    write_raw(p, "\x93NUM", 4);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT, "it has 4 bytes, fewer than the preamble");
    write_raw(p, "\x89PNG\r\n\x1a\n0000", 12);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT,
                 "is not a .npy file: it starts with bytes 89 50 4e 47 0d 0a, expected the magic 93 4e 55 4d 50 59");
    write_raw(p, "\x93NUMPY\x04\x00\x10\x00", 10);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT,
                 "unsupported .npy format version 4.0 (expected 1.0, 2.0 or 3.0)");
    write_raw(p, "\x93NUMPY\x01\x01\x10\x00", 10);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT, "version 1.1");
    write_raw(p, "\x93NUMPY\x02\x00\x10", 9);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT, "is truncated: it ends inside the 4-byte header length");
    write_raw(p, "\x93NUMPY\x01\x00\x40\x00{'descr'", 17);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT,
                 "is truncated: the preamble declares a 64-byte header, the file has 17 bytes in all");
    write_raw(p, "\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12);
    CHECK_STATUS(rt_npy_read(p, &t, NULL), RT_ERR_FORMAT, "declares a header of 2147483647 bytes");
    CHECK(t == NULL, "no tensor on failure");
}

int main(void)
{
    dir = h_tmpdir("npy");
    RUN(test_integer_dtypes);
    RUN(test_float_dtypes_and_versions);
    RUN(test_header_spellings);
    RUN(test_refused_headers);
    RUN(test_refused_sizes);
    RUN(test_refused_preambles);
    return h_finish();
}
