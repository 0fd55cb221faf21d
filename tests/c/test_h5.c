/* HDF5 files: round trips of every dtype, nested groups, attributes, row I/O, the atomic rename,
 * and the error paths (truncated, not HDF5, missing object) with no HDF5 identifier leaked. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "retort/h5.h"

static const char *dir; /* h_tmpdir(): removed by h_finish */

static bool exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Whether this process has a temporary of path (path.tmp-PID-N, any N) in path's folder. */
static bool temp_exists(const char *path)
{
    char dir[512], prefix[600];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    snprintf(prefix, sizeof prefix, "%s.tmp-%ld-", slash ? slash + 1 : path, (long)getpid());
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        found = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return found;
}

#define CHECK_NO_IDS() CHECK(rt_h5_open_ids() == 0, "%lld HDF5 ids still open", (long long)rt_h5_open_ids())

static void test_roundtrip_dtypes(void)
{
    const char *p = h_tmp_path("dtypes.h5");
    struct rt_tensor *f32 = h_rand(RT_F32, 2, H_SHAPE(3, 4), -2, 2, 1);
    struct rt_tensor *f64 = h_rand(RT_F64, 3, H_SHAPE(2, 3, 2), -2, 2, 2);
    struct rt_tensor *i64 = h_tensor(RT_I64, 1, H_SHAPE(4), H_VALS(-5, 0, 7, 1e15));
    struct rt_tensor *u8 = h_tensor(RT_U8, 2, H_SHAPE(2, 2), H_VALS(0, 1, 128, 255));
    struct rt_tensor *sc = NULL, *empty = NULL, *tr = NULL;
    REQUIRE_OK(rt_tensor_scalar(RT_F64, 3.25, &sc));
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(0, 5), &empty));
    REQUIRE_OK(rt_transpose(f32, 0, 1, &tr)); /* strided */
    struct rt_h5 *f;
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_write(f, "/f32", f32));
    CHECK_OK(rt_h5_write(f, "/a/f64", f64));
    CHECK_OK(rt_h5_write(f, "/a/b/i64", i64));
    CHECK_OK(rt_h5_write(f, "/a/b/c/u8", u8));
    CHECK_OK(rt_h5_write(f, "/scalar", sc));
    CHECK_OK(rt_h5_write(f, "/empty", empty));
    CHECK_OK(rt_h5_write(f, "/transposed", tr));
    CHECK_STATUS(rt_h5_write(f, "/f32", f32), RT_ERR_ARG, "/f32 already exists");
    CHECK_OK(rt_h5_close(f));
    CHECK(exists(p), "file written");

    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    const char *names[] = {"/f32", "/a/f64", "/a/b/i64", "/a/b/c/u8", "/scalar", "/empty", "/transposed"};
    struct rt_tensor *want[] = {f32, f64, i64, u8, sc, empty, tr};
    for (int i = 0; i < 7; i++) {
        struct rt_tensor *got = NULL;
        if (CHECK_OK(rt_h5_read(f, names[i], &got))) {
            CHECK(got->dtype == want[i]->dtype, "%s dtype %s", names[i], rt_dtype_name(got->dtype));
            CHECK_TENSOR_EQUAL(got, want[i]);
        }
        rt_tensor_release(got);
    }
    enum rt_dtype dt;
    int nd;
    int64_t shape[RT_MAX_DIMS];
    CHECK_OK(rt_h5_dataset_info(f, "/a/f64", &dt, &nd, shape));
    CHECK(dt == RT_F64 && nd == 3 && shape[0] == 2 && shape[1] == 3 && shape[2] == 2, "info");
    CHECK_STATUS(rt_h5_write(f, "/x", f32), RT_ERR_ARG, "read-only");
    rt_h5_abort(f);
    CHECK(exists(p), "abort of a read-only file keeps it");
    RELEASE(f32, f64, i64, u8, sc, empty, tr);
    CHECK_NO_IDS();
    unlink(p);
}

static void test_groups_and_list(void)
{
    const char *p = h_tmp_path("groups.h5");
    struct rt_h5 *f;
    struct rt_tensor *t = h_iota(RT_F32, 1, H_SHAPE(3));
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_group_create(f, "/model/fc1"));
    CHECK_OK(rt_h5_group_create(f, "/model/fc1")); /* existing: fine */
    CHECK_OK(rt_h5_group_create(f, "/"));
    CHECK_OK(rt_h5_write(f, "/model/fc1/weight", t));
    CHECK_OK(rt_h5_write(f, "/model/fc1/bias", t));
    CHECK_OK(rt_h5_group_create(f, "/model/fc2"));
    CHECK_STATUS(rt_h5_group_create(f, "/model/fc1/weight"), RT_ERR_ARG, "is a dataset, not a group");
    CHECK_STATUS(rt_h5_group_create(f, "model"), RT_ERR_ARG, "must start with '/'");
    CHECK_OK(rt_h5_close(f));

    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    struct rt_h5_member *m;
    size_t n;
    if (CHECK_OK(rt_h5_list(f, "/model", &m, &n))) {
        CHECK(n == 2 && strcmp(m[0].name, "fc1") == 0 && m[0].kind == RT_H5_GROUP && strcmp(m[1].name, "fc2") == 0,
              "members of /model");
        rt_h5_members_free(m, n);
    }
    if (CHECK_OK(rt_h5_list(f, "/model/fc1", &m, &n))) {
        CHECK(n == 2 && strcmp(m[0].name, "bias") == 0 && m[0].kind == RT_H5_DATASET, "members of fc1");
        rt_h5_members_free(m, n);
    }
    enum rt_h5_kind k;
    CHECK_OK(rt_h5_kind(f, "/model/fc1/weight", &k));
    CHECK(k == RT_H5_DATASET, "kind dataset");
    CHECK_OK(rt_h5_kind(f, "/", &k));
    CHECK(k == RT_H5_GROUP, "kind root");
    CHECK_OK(rt_h5_kind(f, "/nope/deeper", &k));
    CHECK(k == RT_H5_MISSING, "kind missing");
    CHECK_STATUS(rt_h5_list(f, "/model/fc1/weight", &m, &n), RT_ERR_ARG, "is a dataset, not a group");
    CHECK_STATUS(rt_h5_list(f, "/missing", &m, &n), RT_ERR_ARG, "/missing not found in");
    struct rt_tensor *got = NULL;
    CHECK_STATUS(rt_h5_read(f, "/model/fc3/weight", &got), RT_ERR_ARG, "rt_h5_read: /model/fc3/weight not found in ");
    CHECK(strstr(rt_error_msg(), "groups.h5") != NULL, "message names the file: %s", rt_error_msg());
    CHECK_STATUS(rt_h5_read(f, "/model", &got), RT_ERR_ARG, "is a group, not a dataset");
    CHECK(got == NULL, "no tensor on failure");
    rt_h5_abort(f);
    rt_tensor_release(t);
    CHECK_NO_IDS();
    unlink(p);
}

static void test_attributes(void)
{
    const char *p = h_tmp_path("attrs.h5");
    struct rt_h5 *f;
    struct rt_tensor *t = h_iota(RT_I64, 1, H_SHAPE(2));
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_write(f, "/g/d", t));
    CHECK_OK(rt_h5_attr_set_string(f, "/", "format", "retort.checkpoint"));
    CHECK_OK(rt_h5_attr_set_int64(f, "/", "version", 1));
    CHECK_OK(rt_h5_attr_set_int64(f, "/", "version", INT64_MIN)); /* replaced */
    CHECK_OK(rt_h5_attr_set_double(f, "/g", "lr", 0.1));
    CHECK_OK(rt_h5_attr_set_bool(f, "/g", "nesterov", true));
    CHECK_OK(rt_h5_attr_set_string(f, "/g/d", "note", "h\xc3\xa9llo, utf-8"));
    CHECK_OK(rt_h5_attr_set_string(f, "/g/d", "empty", ""));
    CHECK_STATUS(rt_h5_attr_set_int64(f, "/nope", "x", 1), RT_ERR_ARG, "/nope not found");
    const int64_t seeds[3] = {INT64_MIN, -1, 42};
    CHECK_OK(rt_h5_attr_set_int64_array(f, "/", "seeds", seeds, 3));
    CHECK_OK(rt_h5_attr_set_int64_array(f, "/", "one", seeds + 2, 1)); /* 1-D, not a scalar */
    CHECK_STATUS(rt_h5_attr_set_int64_array(f, "/", "none", seeds, 0), RT_ERR_ARG, "needs at least one value");
    CHECK_OK(rt_h5_close(f));

    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    struct rt_h5_attr a;
    if (CHECK_OK(rt_h5_attr_get(f, "/", "format", &a)))
        CHECK(a.type == RT_H5_ATTR_STRING && strcmp(a.s, "retort.checkpoint") == 0, "format");
    rt_h5_attr_clear(&a);
    if (CHECK_OK(rt_h5_attr_get(f, "/", "version", &a)))
        CHECK(a.type == RT_H5_ATTR_INT64 && a.i == INT64_MIN, "version %lld", (long long)a.i);
    if (CHECK_OK(rt_h5_attr_get(f, "/g", "lr", &a)))
        CHECK(a.type == RT_H5_ATTR_DOUBLE && a.d == 0.1, "lr");
    if (CHECK_OK(rt_h5_attr_get(f, "/g", "nesterov", &a)))
        CHECK(a.type == RT_H5_ATTR_BOOL && a.b, "bool");
    if (CHECK_OK(rt_h5_attr_get(f, "/g/d", "note", &a)))
        CHECK(a.type == RT_H5_ATTR_STRING && strcmp(a.s, "h\xc3\xa9llo, utf-8") == 0, "utf-8 string");
    rt_h5_attr_clear(&a);
    if (CHECK_OK(rt_h5_attr_get(f, "/g/d", "empty", &a)))
        CHECK(a.type == RT_H5_ATTR_STRING && a.s[0] == '\0', "empty string");
    rt_h5_attr_clear(&a);
    CHECK_STATUS(rt_h5_attr_get(f, "/g", "missing", &a), RT_ERR_ARG, "attribute missing of /g not found in");
    if (CHECK_OK(rt_h5_attr_get(f, "/", "seeds", &a)))
        CHECK(a.type == RT_H5_ATTR_INT64_ARRAY && a.n == 3 && a.iv[0] == INT64_MIN && a.iv[1] == -1 && a.iv[2] == 42,
              "int64 array");
    rt_h5_attr_clear(&a);
    if (CHECK_OK(rt_h5_attr_get(f, "/", "one", &a)))
        CHECK(a.type == RT_H5_ATTR_INT64_ARRAY && a.n == 1 && a.iv[0] == 42, "int64 array of one");
    rt_h5_attr_clear(&a);
    char **names;
    enum rt_h5_attr_type *types;
    size_t n;
    if (CHECK_OK(rt_h5_attr_list(f, "/g", &names, &types, &n))) {
        CHECK(n == 2 && strcmp(names[0], "lr") == 0 && types[0] == RT_H5_ATTR_DOUBLE &&
                  strcmp(names[1], "nesterov") == 0 && types[1] == RT_H5_ATTR_BOOL,
              "attr list");
        rt_h5_names_free(names, types, n);
    }
    rt_h5_abort(f);
    rt_tensor_release(t);
    CHECK_NO_IDS();
    unlink(p);
}

static void test_large_chunked(void)
{
    const char *p = h_tmp_path("large.h5");
    struct rt_h5 *f;
    /* 1000 x 300 f32 = 1.2 MB: chunked and compressed; zeros compress well */
    struct rt_tensor *z = NULL, *r = h_rand(RT_F32, 2, H_SHAPE(1000, 300), -1, 1, 5), *got = NULL;
    REQUIRE_OK(rt_tensor_new(RT_F32, RT_CPU, 2, H_SHAPE(1000, 300), &z));
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_write(f, "/zeros", z));
    CHECK_OK(rt_h5_write(f, "/rand", r));
    CHECK_OK(rt_h5_close(f));
    struct stat sb;
    stat(p, &sb);
    CHECK(sb.st_size < 1200000 + 600000, "zeros compressed: file is %lld bytes", (long long)sb.st_size);
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    if (CHECK_OK(rt_h5_read(f, "/rand", &got)))
        CHECK_TENSOR_EQUAL(got, r);
    rt_h5_abort(f);
    RELEASE(z, r, got);
    CHECK_NO_IDS();
    unlink(p);
}

static void test_rows(void)
{
    const char *p = h_tmp_path("rows.h5");
    struct rt_h5 *f;
    struct rt_tensor *a = h_iota(RT_F32, 2, H_SHAPE(3, 4)), *b = h_iota(RT_F64, 2, H_SHAPE(2, 4)), *got = NULL;
    struct rt_tensor *bad = h_iota(RT_F32, 2, H_SHAPE(2, 5));
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_dataset_create(f, "/logits", RT_F32, 2, H_SHAPE(10, 4)));
    CHECK_OK(rt_h5_write_rows(f, "/logits", 0, a));
    CHECK_OK(rt_h5_write_rows(f, "/logits", 8, b)); /* converted to f32 */
    CHECK_STATUS(rt_h5_write_rows(f, "/logits", 9, b), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_h5_write_rows(f, "/logits", 0, bad), RT_ERR_SHAPE, "do not fit /logits (10,4)");
    CHECK_OK(rt_h5_close(f));
    REQUIRE_OK(rt_h5_open(p, RT_H5_RDWR, &f));
    CHECK_OK(rt_h5_write_rows(f, "/logits", 3, a)); /* resume in place */
    CHECK_OK(rt_h5_close(f));
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    if (CHECK_OK(rt_h5_read_rows(f, "/logits", 2, 3, &got))) {
        CHECK_TENSOR_VALUES(got, H_VALS(8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7), 12, 0, 0);
        rt_tensor_release(got);
    }
    if (CHECK_OK(rt_h5_read_rows(f, "/logits", 6, 4, &got))) {
        CHECK_TENSOR_VALUES(got, H_VALS(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7), 16, 0, 0);
        rt_tensor_release(got);
    }
    rt_h5_abort(f);
    RELEASE(a, b, bad);
    CHECK_NO_IDS();
    unlink(p);
}

/* rows of one view of a [V, N, C] dataset, against the whole dataset read back and indexed by hand */
static void test_rows_at(void)
{
    const char *p = h_tmp_path("rows_at.h5");
    struct rt_h5 *f;
    struct rt_tensor *a = h_iota(RT_F32, 2, H_SHAPE(2, 3)), *got = NULL;
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_dataset_create(f, "/logits", RT_F32, 3, H_SHAPE(3, 4, 3)));
    CHECK_OK(rt_h5_write_rows_at(f, "/logits", 1, (int64_t[]){2}, 1, a)); /* view 3, rows 2..3 */
    CHECK_OK(rt_h5_write_rows_at(f, "/logits", 1, (int64_t[]){0}, 0, a)); /* view 1, rows 1..2 */
    CHECK_STATUS(rt_h5_write_rows_at(f, "/logits", 1, (int64_t[]){3}, 0, a), RT_ERR_ARG, "index 4 of dim 1 out of range");
    CHECK_STATUS(rt_h5_write_rows_at(f, "/logits", 1, (int64_t[]){0}, 3, a), RT_ERR_ARG, "out of range");
    CHECK_STATUS(rt_h5_write_rows_at(f, "/logits", 3, (int64_t[]){0, 0, 0}, 0, a), RT_ERR_SHAPE, "no rows after 3");
    CHECK_OK(rt_h5_close(f));
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    if (CHECK_OK(rt_h5_read(f, "/logits", &got))) {
        const float *v = rt_tensor_data(got);
        float want[36] = {0};
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 3; c++) {
                want[(0 * 4 + r) * 3 + c] = (float)(r * 3 + c);
                want[(2 * 4 + r + 1) * 3 + c] = (float)(r * 3 + c);
            }
        int bad = 0;
        for (int i = 0; i < 36; i++)
            bad += v[i] != want[i];
        CHECK(bad == 0, "view rows land at (view, row) of the [V, N, C] dataset");
        rt_tensor_release(got);
    }
    if (CHECK_OK(rt_h5_read_rows_at(f, "/logits", 1, (int64_t[]){2}, 1, 3, &got))) {
        CHECK_TENSOR_VALUES(got, H_VALS(0, 1, 2, 3, 4, 5, 0, 0, 0), 9, 0, 0);
        rt_tensor_release(got);
    }
    rt_h5_abort(f);
    RELEASE(a);
    CHECK_NO_IDS();
    unlink(p);
}

/* rows in any order with repeats, from a row-chunked [V, N, C] dataset, against the rows read in order */
static void test_read_index(void)
{
    const char *p = h_tmp_path("index.h5");
    struct rt_h5 *f;
    struct rt_tensor *all = h_iota(RT_F32, 3, H_SHAPE(2, 6, 3)), *got = NULL;
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_dataset_create_chunked(f, "/feat", RT_F32, 3, H_SHAPE(2, 6, 3), H_SHAPE(1, 1, 3)));
    CHECK_STATUS(rt_h5_dataset_create_chunked(f, "/bad", RT_F32, 2, H_SHAPE(4, 3), H_SHAPE(5, 3)), RT_ERR_ARG,
                 "chunk size 5 of dim 1 is outside 1..4");
    for (int64_t v = 0; v < 2; v++) {
        struct rt_tensor *view = NULL;
        REQUIRE_OK(rt_select(all, 0, v, &view));
        CHECK_OK(rt_h5_write_rows_at(f, "/feat", 1, &v, 0, view));
        rt_tensor_release(view);
    }
    CHECK_OK(rt_h5_close(f));
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    const int64_t idx[5] = {4, 0, 4, 5, 2};
    if (CHECK_OK(rt_h5_read_index(f, "/feat", 1, (int64_t[]){1}, idx, 5, &got))) {
        double want[15];
        for (int k = 0; k < 5; k++)
            for (int c = 0; c < 3; c++)
                want[k * 3 + c] = (double)((1 * 6 + idx[k]) * 3 + c); /* iota: value = flat index */
        CHECK(got->ndim == 2 && got->shape[0] == 5 && got->shape[1] == 3, "shape (5, 3)");
        CHECK_TENSOR_VALUES(got, want, 15, 0, 0);
        rt_tensor_release(got);
    }
    if (CHECK_OK(rt_h5_read_index(f, "/feat", 1, (int64_t[]){0}, idx, 0, &got))) {
        CHECK(got->ndim == 2 && got->shape[0] == 0, "no rows asked, none given");
        rt_tensor_release(got);
    }
    CHECK_STATUS(rt_h5_read_index(f, "/feat", 1, (int64_t[]){0}, (int64_t[]){6}, 1, &got), RT_ERR_ARG,
                 "row 7 out of range for /feat with 6 rows");
    CHECK_STATUS(rt_h5_read_index(f, "/feat", 1, (int64_t[]){2}, idx, 1, &got), RT_ERR_ARG, "index 3 of dim 1 out of range");
    rt_h5_abort(f);
    RELEASE(all);
    CHECK_NO_IDS();
    unlink(p);
}

static void test_atomic(void)
{
    const char *p = h_tmp_path("atomic.h5");
    struct rt_tensor *one = h_iota(RT_F32, 1, H_SHAPE(1)), *two = h_iota(RT_F32, 1, H_SHAPE(2)), *got = NULL;
    struct rt_h5 *f;
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_write(f, "/x", one));
    CHECK(temp_exists(p) && !exists(p), "written under the temporary name until closed");
    CHECK_OK(rt_h5_close(f));
    CHECK(!temp_exists(p) && exists(p), "renamed on close");
    /* an aborted second write leaves the first file intact and no temporary behind */
    REQUIRE_OK(rt_h5_create(p, &f));
    CHECK_OK(rt_h5_write(f, "/x", two));
    rt_h5_abort(f);
    CHECK(!temp_exists(p), "temporary removed on abort");
    REQUIRE_OK(rt_h5_open(p, RT_H5_READ, &f));
    if (CHECK_OK(rt_h5_read(f, "/x", &got)))
        CHECK_SHAPE(got, 1, 1);
    rt_h5_abort(f);
    /* a directory that does not exist */
    CHECK_STATUS(rt_h5_create("/nonexistent-dir-retort/x.h5", &f), RT_ERR_IO, "cannot create /nonexistent-dir-retort/x.h5.tmp-");
    RELEASE(one, two, got);
    CHECK_NO_IDS();
    unlink(p);
}

static void test_bad_files(void)
{
    struct rt_h5 *f = NULL;
    CHECK_STATUS(rt_h5_open(h_tmp_path("missing.h5"), RT_H5_READ, &f), RT_ERR_IO, "No such file");
    const char *txt = h_tmp_path("text.h5");
    FILE *fp = fopen(txt, "wb");
    fputs("this is not an HDF5 file, just some text that is long enough to look like something\n", fp);
    fclose(fp);
    CHECK_STATUS(rt_h5_open(txt, RT_H5_READ, &f), RT_ERR_FORMAT, "text.h5 is not an HDF5 file");
    const char *emp = h_tmp_path("empty.h5");
    fp = fopen(emp, "wb");
    fclose(fp);
    CHECK_STATUS(rt_h5_open(emp, RT_H5_READ, &f), RT_ERR_FORMAT, "is not an HDF5 file (it is empty)");
    CHECK_STATUS(rt_h5_open(dir, RT_H5_READ, &f), RT_ERR_IO, "is a directory");

    /* a good file, then truncated copies of it */
    const char *good = h_tmp_path("good.h5");
    struct rt_tensor *t = h_rand(RT_F32, 2, H_SHAPE(64, 64), 0, 1, 3);
    REQUIRE_OK(rt_h5_create(good, &f));
    CHECK_OK(rt_h5_write(f, "/w", t));
    CHECK_OK(rt_h5_attr_set_int64(f, "/", "version", 1));
    CHECK_OK(rt_h5_close(f));
    fp = fopen(good, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    CHECK(fread(buf, 1, (size_t)size, fp) == (size_t)size, "read back");
    fclose(fp);
    const char *cut = h_tmp_path("cut.h5");
    long cuts[] = {size / 2, size - 100, 200, 8};
    for (int i = 0; i < 4; i++) {
        fp = fopen(cut, "wb");
        fwrite(buf, 1, (size_t)cuts[i], fp);
        fclose(fp);
        enum rt_status st = rt_h5_open(cut, RT_H5_READ, &f);
        if (st == RT_OK) { /* opened: then reading must fail cleanly */
            struct rt_tensor *got = NULL;
            st = rt_h5_read(f, "/w", &got);
            rt_tensor_release(got);
            rt_h5_abort(f);
        }
        CHECK(st == RT_ERR_FORMAT, "cut at %ld of %ld: status %s (%s)", cuts[i], size, rt_status_name(st),
              rt_error_msg());
        CHECK(strstr(rt_error_msg(), "cut.h5") != NULL, "message names the file: %s", rt_error_msg());
    }
    free(buf);
    rt_tensor_release(t);
    CHECK_NO_IDS();
    unlink(txt);
    unlink(emp);
    unlink(good);
    unlink(cut);
}

int main(void)
{
    dir = h_tmpdir("h5");
    RUN(test_roundtrip_dtypes);
    RUN(test_groups_and_list);
    RUN(test_attributes);
    RUN(test_large_chunked);
    RUN(test_rows);
    RUN(test_rows_at);
    RUN(test_read_index);
    RUN(test_atomic);
    RUN(test_bad_files);
    return h_finish();
}
