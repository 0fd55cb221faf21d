/* Row gathers from HDF5 datasets (rt_h5_read_index) across chunk geometries, against a naive gather
 * from the tensor that was written: contiguous storage, chunks of 1, 3 and 7 rows, one chunk of
 * all rows, chunks that cut rows apart (as h5py's chunks=True does for images), and rows inside a
 * leading index ([V, N, D]); indices shuffled, repeated and in runs, so reads group runs that share
 * chunks and runs that do not. Also rt_h5_dataset_storage (layout, chunk shape, shape, element
 * type), and that no HDF5 identifier is left open. External and virtual datasets, which need
 * h5py to write, are checked in tests/lua/hdf5_data_spec.lua. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "retort/h5.h"

#define CHECK_NO_IDS() CHECK(rt_h5_open_ids() == 0, "%lld HDF5 ids still open", (long long)rt_h5_open_ids())

/* the rows idx[0..n) of src (rows along dim 0) gathered by hand: element-wise from h_elem */
static bool gathered(const struct rt_tensor *got, const struct rt_tensor *src, const int64_t *idx, int64_t n)
{
    int64_t row = rt_tensor_numel(src) / src->shape[0];
    double *want = malloc((size_t)(n * row > 0 ? n * row : 1) * sizeof *want);
    for (int64_t k = 0; k < n; k++)
        for (int64_t e = 0; e < row; e++)
            want[k * row + e] = h_elem(src, idx[k] * row + e);
    bool ok = CHECK_TENSOR_VALUES(got, want, n * row, 0, 0);
    free(want);
    return ok;
}

/* a shuffled batch with repeats and runs of consecutive rows, all in [0, rows) */
static int64_t batch_of(int64_t rows, int64_t *idx, uint64_t seed)
{
    int64_t n = 0;
    for (int64_t i = 0; i < 40; i++)
        idx[n++] = (int64_t)(h_uniform(&seed) * (double)rows);
    for (int64_t r = rows / 3; r < rows / 3 + 9 && r < rows; r++) /* a run */
        idx[n++] = r;
    idx[n++] = idx[0]; /* repeats */
    idx[n++] = idx[0];
    idx[n++] = rows - 1;
    idx[n++] = 0;
    for (int64_t i = n - 1; i > 0; i--) { /* shuffle */
        int64_t j = (int64_t)(h_uniform(&seed) * (double)(i + 1)), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    return n;
}

static void test_geometries(void)
{
    const char *p = h_tmp_path("geom.h5");
    const int64_t N = 101;
    struct rt_h5 *f = NULL;
    struct rt_tensor *src = h_iota(RT_U8, 4, H_SHAPE(N, 2, 3, 4)),
                     *fsrc = h_rand(RT_F32, 4, H_SHAPE(N, 2, 3, 4), -1, 1, 5);
    struct {
        const char *name;
        const int64_t *chunk; /* NULL: contiguous (rt_h5_write of a small dataset) */
    } cases[] = {{"/contiguous", NULL},           {"/rows1", H_SHAPE(1, 2, 3, 4)}, {"/rows3", H_SHAPE(3, 2, 3, 4)},
                 {"/rows7", H_SHAPE(7, 2, 3, 4)}, {"/all", H_SHAPE(101, 2, 3, 4)}, {"/cut", H_SHAPE(40, 1, 2, 2)}};
    REQUIRE_OK(rt_h5_create(p, &f));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (!cases[c].chunk) {
            CHECK_OK(rt_h5_write(f, cases[c].name, src)); /* under RT_H5_COMPACT_MAX_BYTES: compact */
            continue;
        }
        CHECK_OK(rt_h5_dataset_create_chunked(f, cases[c].name, RT_U8, 4, src->shape, cases[c].chunk));
        CHECK_OK(rt_h5_write_rows(f, cases[c].name, 0, src));
    }
    CHECK_OK(rt_h5_dataset_create_chunked(f, "/float_rows3", RT_F32, 4, fsrc->shape, H_SHAPE(3, 2, 3, 4)));
    CHECK_OK(rt_h5_write_rows(f, "/float_rows3", 0, fsrc));
    CHECK_OK(rt_h5_close(f));
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    int64_t idx[64];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        int64_t n = batch_of(N, idx, seed);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            struct rt_tensor *got = NULL;
            if (!CHECK_OK(rt_h5_read_index(f, cases[c].name, 0, NULL, idx, n, &got)))
                continue;
            CHECK_SHAPE(got, 4, n, 2, 3, 4);
            if (!gathered(got, src, idx, n))
                h_fail(__FILE__, __LINE__, "dataset %s, seed %llu", cases[c].name, (unsigned long long)seed);
            RELEASE(got);
        }
        struct rt_tensor *got = NULL;
        if (CHECK_OK(rt_h5_read_index(f, "/float_rows3", 0, NULL, idx, n, &got))) {
            gathered(got, fsrc, idx, n);
            RELEASE(got);
        }
    }
    /* every row once, in order: one run */
    int64_t all[101];
    for (int64_t i = 0; i < N; i++)
        all[i] = i;
    struct rt_tensor *got = NULL;
    if (CHECK_OK(rt_h5_read_index(f, "/rows7", 0, NULL, all, N, &got))) {
        CHECK_TENSOR_EQUAL(got, src);
        RELEASE(got);
    }
    /* storage descriptions */
    struct rt_h5_storage s;
    if (CHECK_OK(rt_h5_dataset_storage(f, "/rows7", &s)))
        CHECK(s.layout == RT_H5_LAYOUT_CHUNKED && s.chunk_ndim == 4 && s.chunk[0] == 7 && s.chunk[3] == 4 &&
                  s.external == 0 && s.ndim == 4 && s.shape[0] == N && strcmp(s.type, "uint8") == 0,
              "rows7: layout %d, chunk (%lld,...), type %s", (int)s.layout, (long long)s.chunk[0], s.type);
    if (CHECK_OK(rt_h5_dataset_storage(f, "/contiguous", &s)))
        CHECK(s.layout == RT_H5_LAYOUT_COMPACT && s.chunk_ndim == 0 && s.ndim == 4, "compact: layout %d",
              (int)s.layout);
    if (CHECK_OK(rt_h5_dataset_storage(f, "/float_rows3", &s)))
        CHECK(strcmp(s.type, "float32") == 0, "type %s", s.type);
    CHECK_STATUS(rt_h5_dataset_storage(f, "/nothing", &s), RT_ERR_ARG, "/nothing not found in");
    rt_h5_close(f);
    RELEASE(src, fsrc);
    CHECK_NO_IDS();
}

static void test_leading_index(void)
{
    /* [V, N, D] chunked a row at a time, as a soft-target cache's features are */
    const char *p = h_tmp_path("lead.h5");
    struct rt_h5 *f = NULL;
    struct rt_tensor *src = h_iota(RT_F32, 3, H_SHAPE(3, 50, 6));
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_dataset_create_chunked(f, "/feat", RT_F32, 3, src->shape, H_SHAPE(1, 4, 6)));
    for (int64_t v = 0; v < 3; v++) {
        struct rt_tensor *view = NULL;
        if (CHECK_OK(rt_select(src, 0, v, &view)))
            CHECK_OK(rt_h5_write_rows_at(f, "/feat", 1, (int64_t[]){v}, 0, view));
        RELEASE(view);
    }
    CHECK_OK(rt_h5_close(f));
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    int64_t idx[64];
    int64_t n = batch_of(50, idx, 9);
    for (int64_t v = 0; v < 3; v++) {
        struct rt_tensor *got = NULL, *view = NULL;
        if (CHECK_OK(rt_h5_read_index(f, "/feat", 1, (int64_t[]){v}, idx, n, &got)) &&
            CHECK_OK(rt_select(src, 0, v, &view))) {
            CHECK_SHAPE(got, 2, n, 6);
            gathered(got, view, idx, n);
        }
        RELEASE(got, view);
    }
    rt_h5_close(f);
    RELEASE(src);
    CHECK_NO_IDS();
}

int main(void)
{
    h_tmpdir("h5-index"); /* removed by h_finish */
    RUN(test_geometries);
    RUN(test_leading_index);
    return h_finish();
}
