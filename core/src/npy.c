/* NumPy .npy reader (see retort/data.h for the format and what is accepted).
 *
 * Choices: the header is parsed by a small recursive-descent parser of exactly the Python literal
 * numpy writes (a dict of string keys to a string, True/False, or a tuple of non-negative ints;
 * Python 2's "3L" longs accepted), never evaluated. The file's size is checked against the header
 * before anything is allocated, so a header that claims a huge shape is refused without trying to
 * allocate it. u1, f4, f8 and i8 are read straight into the tensor; the other integers (and u8,
 * whose values above 2^63 - 1 must be refused) are decoded from little-endian blocks into i64 (the
 * labels dtype). Headers longer than NPY_MAX_HEADER are refused (numpy's own reader
 * refuses over 10000 bytes by default). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "retort/data.h"

#define NPY_MAX_HEADER (1 << 20)
#define NPY_BLOCK_BYTES ((size_t)1 << 20)

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

struct parser {
    const char *path;
    const char *s;
    size_t n, pos;
};

/* "'x'" or "byte 0x93" or "the end of the header" for the character at the parser's position */
static const char *found(const struct parser *p, char *buf, size_t len)
{
    if (p->pos >= p->n)
        snprintf(buf, len, "the end of the header");
    else if (p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x7f)
        snprintf(buf, len, "'%c'", p->s[p->pos]);
    else
        snprintf(buf, len, "byte 0x%02x", (unsigned char)p->s[p->pos]);
    return buf;
}

static enum rt_status parse_error(const struct parser *p, const char *expected)
{
    char f[32];
    return rt_error(RT_ERR_FORMAT, "rt_npy_read: %s: the header does not parse: expected %s at byte %zu, found %s",
                    p->path, expected, p->pos, found(p, f, sizeof f));
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->n &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static bool accept(struct parser *p, char c)
{
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == c) {
        p->pos++;
        return true;
    }
    return false;
}

static bool accept_word(struct parser *p, const char *w)
{
    skip_ws(p);
    size_t k = strlen(w);
    if (p->n - p->pos >= k && memcmp(p->s + p->pos, w, k) == 0) {
        p->pos += k;
        return true;
    }
    return false;
}

/* A quoted string without escapes into buf (NUL-terminated; longer ones are an error). */
static enum rt_status parse_string(struct parser *p, char *buf, size_t len, const char *what)
{
    skip_ws(p);
    if (p->pos >= p->n || (p->s[p->pos] != '\'' && p->s[p->pos] != '"'))
        return parse_error(p, what);
    char q = p->s[p->pos++];
    size_t start = p->pos;
    while (p->pos < p->n && p->s[p->pos] != q) {
        if (p->s[p->pos] == '\\')
            return parse_error(p, "a string without escapes");
        p->pos++;
    }
    if (p->pos >= p->n)
        return parse_error(p, "the closing quote of a string");
    size_t k = p->pos - start;
    if (k + 1 > len) {
        p->pos = start - 1;
        return rt_error(RT_ERR_FORMAT,
                        "rt_npy_read: %s: the header has a string of %zu bytes at byte %zu where %s "
                        "(at most %zu bytes) was expected",
                        p->path, k, start - 1, what, len - 1);
    }
    memcpy(buf, p->s + start, k);
    buf[k] = '\0';
    p->pos++;
    return RT_OK;
}

/* A tuple of non-negative integers: (), (3,), (3, 4), (3L, 4L). */
static enum rt_status parse_shape(struct parser *p, int *ndim, int64_t *shape)
{
    *ndim = 0;
    if (!accept(p, '('))
        return parse_error(p, "'(' opening the shape tuple");
    if (accept(p, ')'))
        return RT_OK;
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return parse_error(p, "a non-negative integer in the shape");
        int64_t v = 0;
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            int d = p->s[p->pos] - '0';
            if (v > (INT64_MAX - d) / 10)
                return rt_error(RT_ERR_FORMAT,
                                "rt_npy_read: %s: a dim of the shape at byte %zu does not fit in 64 bits", p->path,
                                p->pos);
            v = v * 10 + d;
            p->pos++;
        }
        if (p->pos < p->n && p->s[p->pos] == 'L') /* Python 2 long */
            p->pos++;
        if (*ndim == RT_MAX_DIMS)
            return rt_error(RT_ERR_FORMAT,
                            "rt_npy_read: %s: the shape has more than %d dims (retort tensors have at most %d)",
                            p->path, RT_MAX_DIMS, RT_MAX_DIMS);
        shape[(*ndim)++] = v;
        if (accept(p, ')'))
            return RT_OK;
        if (!accept(p, ','))
            return parse_error(p, "',' or ')' in the shape tuple");
        if (accept(p, ')'))
            return RT_OK;
    }
}

enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };

/* The header dict: exactly the keys descr, fortran_order and shape, once each, in any order. */
static enum rt_status parse_header(struct parser *p, struct rt_npy_header *h, bool *fortran)
{
    enum rt_status st;
    int seen = 0;
    if (!accept(p, '{'))
        return parse_error(p, "'{' opening the header dict");
    while (!accept(p, '}')) {
        char key[32];
        size_t key_at = (skip_ws(p), p->pos);
        if ((st = parse_string(p, key, sizeof key, "a quoted key or '}'")) != RT_OK)
            return st;
        int k = strcmp(key, "descr") == 0           ? KEY_DESCR
                : strcmp(key, "fortran_order") == 0 ? KEY_FORTRAN
                : strcmp(key, "shape") == 0         ? KEY_SHAPE
                                                    : 0;
        if (!k)
            return rt_error(RT_ERR_FORMAT,
                            "rt_npy_read: %s: the header has a key '%s' at byte %zu; a .npy header has "
                            "exactly the keys 'descr', 'fortran_order' and 'shape'",
                            p->path, key, key_at);
        if (seen & k)
            return rt_error(RT_ERR_FORMAT, "rt_npy_read: %s: the header has the key '%s' twice", p->path, key);
        seen |= k;
        if (!accept(p, ':'))
            return parse_error(p, "':' after a key");
        if (k == KEY_DESCR) {
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == '[')
                return rt_error(RT_ERR_DTYPE,
                                "rt_npy_read: %s: a structured dtype (a list of fields) is not supported; "
                                "expected a plain numeric dtype such as '<f4'",
                                p->path);
            if ((st = parse_string(p, h->descr, sizeof h->descr, "the quoted dtype of 'descr'")) != RT_OK)
                return st;
        } else if (k == KEY_FORTRAN) {
            if (accept_word(p, "True"))
                *fortran = true;
            else if (accept_word(p, "False"))
                *fortran = false;
            else
                return parse_error(p, "True or False for 'fortran_order'");
        } else if ((st = parse_shape(p, &h->ndim, h->shape)) != RT_OK) {
            return st;
        }
        if (accept(p, '}'))
            break;
        if (!accept(p, ','))
            return parse_error(p, "',' or '}' after a value");
    }
    skip_ws(p);
    if (p->pos < p->n)
        return parse_error(p, "only spaces and a newline after the header dict");
    if (seen != (KEY_DESCR | KEY_FORTRAN | KEY_SHAPE))
        return rt_error(RT_ERR_FORMAT,
                        "rt_npy_read: %s: the header lacks the key '%s' (a .npy header has 'descr', "
                        "'fortran_order' and 'shape')",
                        p->path,
                        !(seen & KEY_DESCR)     ? "descr"
                        : !(seen & KEY_FORTRAN) ? "fortran_order"
                                                : "shape");
    return RT_OK;
}

/* The on-disk element type of a descr: kind 'u', 'i' or 'f' and its size; the dtype it reads as. */
static enum rt_status parse_descr(const char *path, const char *d, char *kind, int *size, enum rt_dtype *dt)
{
    static const char *expected = "expected '|u1', '<f4', '<f8' or '<i8' (or another integer: '|i1', '<i2', '<u2', "
                                  "'<i4', '<u4', '<u8')";
    size_t n = strlen(d);
    bool digits = n >= 3;
    for (size_t i = 2; i < n; i++)
        digits = digits && d[i] >= '0' && d[i] <= '9';
    int sz = digits && n <= 4 ? atoi(d + 2) : 0;
    char order = n ? d[0] : '\0', k = n > 1 ? d[1] : '\0';
    bool known_kind = (k == 'u' || k == 'i') ? (sz == 1 || sz == 2 || sz == 4 || sz == 8)
                      : k == 'f'             ? (sz == 4 || sz == 8)
                                             : false;
    if (!known_kind || order == '\0' || !strchr("<>|=", order))
        return rt_error(RT_ERR_DTYPE, "rt_npy_read: %s: unsupported dtype '%s'; %s", path, d, expected);
    if (order == '>' && sz > 1)
        return rt_error(RT_ERR_DTYPE,
                        "rt_npy_read: %s: big-endian dtype '%s'; expected little-endian '<%c%d' (convert "
                        "with a.astype('<%c%d'))",
                        path, d, k, sz, k, sz);
    if (order == '|' && sz > 1)
        return rt_error(RT_ERR_DTYPE, "rt_npy_read: %s: dtype '%s' has no byte order for a %d-byte type; %s", path, d,
                        sz, expected);
    *kind = k;
    *size = sz;
    *dt = k == 'f' ? (sz == 4 ? RT_F32 : RT_F64) : (k == 'u' && sz == 1) ? RT_U8 : RT_I64;
    return RT_OK;
}

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static uint64_t load_le(const unsigned char *p, int size)
{
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Opens path and reads the header; on success *fp is the open file positioned at the data. */
static enum rt_status open_npy(const char *path, struct rt_npy_header *h, char *kind, int *isize, FILE **fp)
{
    enum rt_status st = RT_OK;
    char *hdr = NULL;
    *fp = NULL;
    memset(h, 0, sizeof *h);
    if (!path)
        return rt_error(RT_ERR_ARG, "rt_npy_read: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_error(RT_ERR_IO, "rt_npy_read: cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = rt_error(RT_ERR_IO, "rt_npy_read: cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = rt_error(RT_ERR_IO, "rt_npy_read: cannot read %s: not a regular file", path);
        goto done;
    }
    unsigned char pre[12];
    size_t got = fread(pre, 1, 8, f);
    size_t shown_n = got < 6 ? got : 6;
    if (got < 8 || memcmp(pre, NPY_MAGIC, 6) != 0) {
        char shown[64] = "";
        for (size_t i = 0; i < shown_n; i++)
            snprintf(shown + strlen(shown), sizeof shown - strlen(shown), "%s%02x", i ? " " : "", pre[i]);
        if (memcmp(pre, NPY_MAGIC, shown_n) == 0) /* a prefix of the magic, then the end */
            st = rt_error(RT_ERR_FORMAT,
                          "rt_npy_read: %s is not a .npy file: it has %zu bytes, fewer than the preamble "
                          "(\\x93NUMPY, a version, a header length)",
                          path, got);
        else
            st = rt_error(RT_ERR_FORMAT,
                          "rt_npy_read: %s is not a .npy file: it starts with bytes %s, expected the magic "
                          "93 4e 55 4d 50 59 (\\x93NUMPY)",
                          path, shown);
        goto done;
    }
    h->major = pre[6];
    h->minor = pre[7];
    if (!((h->major == 1 || h->major == 2 || h->major == 3) && h->minor == 0)) {
        st =
            rt_error(RT_ERR_FORMAT, "rt_npy_read: %s: unsupported .npy format version %d.%d (expected 1.0, 2.0 or 3.0)",
                     path, h->major, h->minor);
        goto done;
    }
    int lenbytes = h->major == 1 ? 2 : 4;
    if (fread(pre + 8, 1, (size_t)lenbytes, f) != (size_t)lenbytes) {
        st = rt_error(RT_ERR_FORMAT, "rt_npy_read: %s is truncated: it ends inside the %d-byte header length", path,
                      lenbytes);
        goto done;
    }
    uint64_t hlen = load_le(pre + 8, lenbytes);
    h->data_offset = 8 + lenbytes + (int64_t)hlen;
    if (hlen > NPY_MAX_HEADER) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_npy_read: %s: the preamble declares a header of %" PRIu64 " bytes (at most %d "
                      "expected; corrupt file?)",
                      path, hlen, NPY_MAX_HEADER);
        goto done;
    }
    if ((int64_t)sb.st_size < h->data_offset) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_npy_read: %s is truncated: the preamble declares a %" PRIu64 "-byte header, "
                      "the file has %lld bytes in all",
                      path, hlen, (long long)sb.st_size);
        goto done;
    }
    hdr = malloc(hlen ? (size_t)hlen : 1);
    if (!hdr) {
        st = rt_error(RT_ERR_OOM, "rt_npy_read: out of memory");
        goto done;
    }
    if (fread(hdr, 1, (size_t)hlen, f) != (size_t)hlen) {
        st = rt_error(RT_ERR_IO, "rt_npy_read: cannot read the header of %s: %s", path,
                      ferror(f) ? strerror(errno) : "the file ended early");
        goto done;
    }
    bool fortran = false;
    struct parser p = {path, hdr, (size_t)hlen, 0};
    if ((st = parse_header(&p, h, &fortran)) != RT_OK)
        goto done;
    if ((st = parse_descr(path, h->descr, kind, isize, &h->dtype)) != RT_OK)
        goto done;
    char sbuf[RT_SHAPE_STR_MAX];
    rt_shape_str(h->ndim, h->shape, sbuf, sizeof sbuf);
    if (fortran) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_npy_read: %s: a Fortran-order array (fortran_order: True, shape %s); only C order "
                      "is read (save np.ascontiguousarray(a) instead)",
                      path, sbuf);
        goto done;
    }
    int64_t numel = 1, bytes, total;
    for (int i = 0; i < h->ndim; i++)
        if (__builtin_mul_overflow(numel, h->shape[i], &numel)) {
            numel = -1;
            break;
        }
    if (numel < 0 || __builtin_mul_overflow(numel, (int64_t)*isize, &bytes) ||
        __builtin_add_overflow(bytes, h->data_offset, &total)) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_npy_read: %s: shape %s of '%s' overflows: its byte count does not fit in 64 bits", path, sbuf,
                      h->descr);
        goto done;
    }
    h->data_bytes = bytes;
    if ((int64_t)sb.st_size != total) {
        st = rt_error(RT_ERR_FORMAT,
                      "rt_npy_read: %s: %s: the header says shape %s of '%s' = %lld bytes of data after "
                      "%lld bytes of header, %lld bytes in all; the file has %lld bytes",
                      path, (int64_t)sb.st_size < total ? "is truncated" : "has trailing bytes", sbuf, h->descr,
                      (long long)bytes, (long long)h->data_offset, (long long)total, (long long)sb.st_size);
        goto done;
    }
done:
    free(hdr);
    if (st != RT_OK)
        fclose(f);
    else
        *fp = f;
    return st;
}

enum rt_status rt_npy_read_header(const char *path, struct rt_npy_header *out)
{
    char kind;
    int isize;
    FILE *f;
    enum rt_status st = open_npy(path, out, &kind, &isize, &f);
    if (st == RT_OK)
        fclose(f);
    return st;
}

static enum rt_status short_read(const char *path, FILE *f)
{
    return rt_error(RT_ERR_IO, "rt_npy_read: cannot read the data of %s: %s", path,
                    ferror(f) ? strerror(errno) : "the file ended early (changed while being read?)");
}

enum rt_status rt_npy_read(const char *path, struct rt_tensor **out, struct rt_npy_header *hdr)
{
    struct rt_npy_header h;
    struct rt_tensor *t = NULL;
    unsigned char *buf = NULL;
    char kind;
    int isize;
    FILE *f;
    *out = NULL;
    enum rt_status st = open_npy(path, &h, &kind, &isize, &f);
    if (st != RT_OK)
        return st;
    if ((st = rt_tensor_empty(h.dtype, RT_CPU, h.ndim, h.shape, &t)) != RT_OK)
        goto done;
    int64_t numel = rt_tensor_numel(t);
    size_t es = rt_dtype_size(h.dtype);
    if (numel > 0 && (size_t)isize == es && !(kind == 'u' && isize == 8)) { /* read as is */
        if (fread(rt_tensor_data(t), 1, (size_t)h.data_bytes, f) != (size_t)h.data_bytes) {
            st = short_read(path, f);
            goto done;
        }
        if (!host_little_endian() && es > 1) {
            unsigned char *p = rt_tensor_data(t);
            for (int64_t i = 0; i < numel; i++, p += es)
                for (size_t a = 0, b = es - 1; a < b; a++, b--) {
                    unsigned char c = p[a];
                    p[a] = p[b];
                    p[b] = c;
                }
        }
    } else if (numel > 0) { /* a narrower integer, or a uint64 (range-checked): decoded into i64 */
        size_t per = NPY_BLOCK_BYTES / (size_t)isize;
        buf = malloc(per * (size_t)isize);
        if (!buf) {
            st = rt_error(RT_ERR_OOM, "rt_npy_read: out of memory");
            goto done;
        }
        int64_t *dst = rt_tensor_data(t);
        for (int64_t at = 0; at < numel;) {
            size_t k = (size_t)(numel - at) < per ? (size_t)(numel - at) : per;
            if (fread(buf, (size_t)isize, k, f) != k) {
                st = short_read(path, f);
                goto done;
            }
            for (size_t i = 0; i < k; i++) {
                uint64_t v = load_le(buf + i * (size_t)isize, isize);
                if (kind == 'i' && isize < 8 && (v >> (8 * isize - 1)) & 1) /* sign-extend */
                    v |= ~(uint64_t)0 << (8 * isize);
                if (kind == 'u' && v > (uint64_t)INT64_MAX) {
                    st = rt_error(RT_ERR_FORMAT,
                                  "rt_npy_read: %s: element %lld (counting from 0) is %" PRIu64 ", which "
                                  "does not fit in i64 (the dtype '%s' is read as i64)",
                                  path, (long long)(at + (int64_t)i), v, h.descr);
                    goto done;
                }
                dst[at + (int64_t)i] = (int64_t)v;
            }
            at += (int64_t)k;
        }
    }
done:
    free(buf);
    fclose(f);
    if (st != RT_OK) {
        rt_tensor_release(t);
        return st;
    }
    if (hdr)
        *hdr = h;
    *out = t;
    return RT_OK;
}
