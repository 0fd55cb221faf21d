/* Checks of HDF5 structures that libhdf5 1.10 decodes without bounds checks, run before it reads them.
 *
 * libhdf5 trusts two things it reads from a file: the sizes inside an attribute message (it copies the
 * value with memcpy using a size computed from the message's own datatype and dataspace, whatever the
 * message's length), and the global heap collections that hold variable-length strings (an object index
 * past the collection, an object larger than the string's recorded length, or an object of size 0 make
 * it read out of bounds or loop forever). In a file whose object headers carry checksums (version 2,
 * written with the 1.8 format bounds or later, as retort writes them) a damaged attribute message is
 * caught by the checksum, but the global heap has no checksum in any version. One flipped byte in a
 * checkpoint written by retort 0.1 (version-1 headers, variable-length strings) crashed retort.load.
 *
 * rt__h5_verify_attributes reads the object header itself (pread, every offset and size checked against
 * the chunk and the file) and checks what libhdf5 will rely on:
 *   - version-1 headers (no checksum): every message lies inside its chunk; each attribute message's
 *     name is terminated inside the message, its datatype is a plain class (integer, float, string,
 *     enum of at most 1024 members, variable-length string) of a sane size, its dataspace has at most 32
 *     dims and fits, and the value (elements x element size) fits in what is left of the message; shared
 *     datatypes and dataspaces, and other classes, are refused (they cannot be checked here);
 *   - both versions: every variable-length string value points to a global heap collection that parses
 *     cleanly from start to end (signature, version, objects that each fit, none of size 0) and holds the
 *     object named, whose size is the string's recorded length.
 * Attributes in dense storage (a fractal heap, version-2 headers only, checksummed) are not reached;
 * *dense reports that some exist, and their variable-length strings are then not read (h5.c).
 *
 * An attribute name must hold exactly one terminator at the end of its recorded length (a NUL inside made
 * libhdf5's attribute table free a garbage pointer, a fuzzer-found crash).
 *
 * rt__h5_verify_root (before H5Fopen, the root group found through the superblock) and rt__h5_verify_object
 * (before h5.c opens a member) check only structure: every chunk of the header lies inside the file (libhdf5
 * allocates a chunk's or continuation's recorded length: 20 GB from a 5 KB file), and an old-format group's
 * symbol table points to a B-tree node and a local heap whose data segment lie inside the file (libhdf5
 * copies into the allocation of a heap's recorded size even when it failed).
 *
 * Limits: at most 64 header chunks of at most 1 MiB each (structure checks: of at most the file's size),
 * 4096 variable-length values per attribute, and global heap collections of at most 64 MiB. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5_internal.h"

#define MAX_CHUNKS 64
#define MAX_CHUNK_BYTES (1u << 20)
#define MAX_VLEN_VALUES 4096
#define MAX_HEAP_BYTES (64u << 20)
#define UNDEF_ADDR UINT64_MAX

struct ctx {
    bool unsupported; /* the reason is a structure retort cannot check, not damage */
    int fd;
    uint64_t eof;   /* file size */
    uint64_t base;  /* physical offset of address 0 (the user block) */
    unsigned sa, ss; /* sizes of addresses and lengths in the file */
    bool strict;    /* a version-1 header: nothing in it is checksummed */
    bool dense;
    bool structure; /* rt__h5_verify_object: chunk extents and group heaps only, attributes not parsed */
    char *why;
    size_t why_n;
};

static bool fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->why_n, fmt, ap);
    va_end(ap);
    return false;
}

static uint64_t le(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* An address field: all bits set means undefined. */
static uint64_t le_addr(const unsigned char *p, unsigned n)
{
    uint64_t v = le(p, n);
    return n < 8 && v == (((uint64_t)1 << (8 * n)) - 1) ? UNDEF_ADDR : v;
}

/* Reads n bytes at file address addr (relative to the base) into a new buffer; NULL (with why) when they
 * are not all in the file. */
static unsigned char *read_at(struct ctx *c, uint64_t addr, uint64_t n, const char *what)
{
    if (addr == UNDEF_ADDR || addr > c->eof || c->base > c->eof - addr || n > c->eof - c->base - addr) {
        fail(c, "%s at address %llu runs past the end of the file", what, (unsigned long long)addr);
        return NULL;
    }
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fail(c, "out of memory");
        return NULL;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(c->fd, buf + got, n - got, (off_t)(c->base + addr + got));
        if (r <= 0) {
            free(buf);
            fail(c, "cannot read %s at address %llu", what, (unsigned long long)addr);
            return NULL;
        }
        got += (size_t)r;
    }
    return buf;
}

static uint64_t pad8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

/* One global heap collection at addr: parsed as libhdf5 parses it (H5HG deserialize), with every object
 * inside the collection; object idx must exist and hold exactly len bytes. */
static bool check_heap_object(struct ctx *c, uint64_t addr, uint64_t idx, uint64_t len)
{
    unsigned hdr = 8 + c->ss, objhdr = 8 + c->ss;
    unsigned char *h = read_at(c, addr, hdr, "a global heap collection");
    if (!h)
        return false;
    bool sig = memcmp(h, "GCOL", 4) == 0 && h[4] == 1;
    uint64_t size = le(h + 8, c->ss);
    free(h);
    if (!sig)
        return fail(c, "a variable-length string points to address %llu, which holds no global heap collection",
                    (unsigned long long)addr);
    if (size < hdr || size > MAX_HEAP_BYTES)
        return fail(c, "the global heap collection at %llu has a size of %llu bytes", (unsigned long long)addr,
                    (unsigned long long)size);
    unsigned char *heap = read_at(c, addr, size, "a global heap collection");
    if (!heap)
        return false;
    bool found = false, ok = true;
    uint64_t found_size = 0;
    uint64_t p = hdr;
    while (ok && p < size) {
        if (size - p < objhdr) { /* the tail, too small for an object header: free space */
            p = size;
            break;
        }
        uint64_t id = le(heap + p, 2), osize = le(heap + p + 8, c->ss);
        uint64_t need;
        if (id > 0) {
            if (osize > size) {
                ok = fail(c, "object %llu of the global heap collection at %llu claims %llu bytes", (unsigned long long)id,
                          (unsigned long long)addr, (unsigned long long)osize);
                break;
            }
            need = objhdr + pad8(osize);
        } else {
            need = osize; /* the free space object's size includes its header */
        }
        if (need == 0 || need > size - p) {
            ok = fail(c, "object %llu of the global heap collection at %llu runs past the collection",
                      (unsigned long long)id, (unsigned long long)addr);
            break;
        }
        if (id == idx && id > 0) {
            found = true;
            found_size = osize;
        }
        p += need;
    }
    free(heap);
    if (!ok)
        return false;
    if (!found)
        return fail(c, "a variable-length string names object %llu of the global heap collection at %llu, which "
                       "does not exist",
                    (unsigned long long)idx, (unsigned long long)addr);
    if (found_size != len)
        return fail(c, "a variable-length string of %llu bytes names a global heap object of %llu bytes",
                    (unsigned long long)len, (unsigned long long)found_size);
    return true;
}

/* A datatype message: its class, element size on disk (for variable-length: the heap id's size), and whether
 * it is a variable-length string. Strict: only the classes retort reads, each checked. */
struct dtype {
    int cls;
    uint64_t size;
    bool vlen_string;
    bool known;
};

static bool check_dtype(struct ctx *c, const unsigned char *d, uint64_t n, struct dtype *t, int depth)
{
    memset(t, 0, sizeof *t);
    if (n < 8)
        return fail(c, "an attribute's datatype has %llu bytes", (unsigned long long)n);
    int cls = d[0] & 0x0f, version = d[0] >> 4;
    uint64_t size = le(d + 4, 4);
    t->cls = cls;
    t->size = size;
    if (version < 1 || version > 4 || cls > 10)
        return c->strict ? fail(c, "an attribute's datatype has class %d and version %d", cls, version) : true;
    switch (cls) {
    case 0: /* integer: offset, precision */
    case 4: /* bitfield */
        t->known = n >= 12 && size >= 1 && size <= 16;
        break;
    case 1: /* float: offset, precision, exponent and mantissa fields, bias */
        t->known = n >= 20 && size >= 1 && size <= 16;
        break;
    case 3: /* string: no properties */
        t->known = size >= 1;
        break;
    case 2: /* time, opaque, compound, reference, array: not read by retort; their values are copied with */
    case 5: /* the size in the datatype's header, which is what must fit in the message */
    case 6:
    case 7:
    case 10:
        t->known = depth == 0 && size >= 1;
        break;
    case 8: { /* enum: base type, then member names and values */
        uint64_t members = le(d + 1, 2);
        if (depth > 0 || members > 1024)
            break;
        struct dtype base;
        uint64_t bsize = 12; /* an integer base type: 8 header bytes + offset and precision */
        if (n < 8 + bsize || !check_dtype(c, d + 8, bsize, &base, depth + 1) || base.cls != 0 || base.size != size)
            break;
        uint64_t p = 8 + bsize;
        for (uint64_t m = 0; m < members; m++) {
            const unsigned char *z = p < n ? memchr(d + p, 0, n - p) : NULL;
            if (!z)
                return fail(c, "an enum member name of an attribute's datatype is not terminated");
            uint64_t len = (uint64_t)(z - (d + p)) + 1;
            p += version < 3 ? pad8(len) : len;
        }
        t->known = p <= n && members * size <= n - p;
        break;
    }
    case 9: { /* variable-length: a sequence (type 0) or a string (type 1) of its base type */
        if (depth > 0)
            break;
        t->size = 4 + c->sa + 4; /* on disk: length, heap address, object index */
        t->known = true;
        if ((d[1] & 0x0f) != 1)
            break; /* a sequence: retort does not read its values (only strings reach the heap) */
        struct dtype base;
        if (n < 20 || !check_dtype(c, d + 8, n - 8, &base, depth + 1) || base.size != 1)
            return fail(c, "a variable-length string attribute has a bad base type");
        t->vlen_string = true;
        break;
    }
    default: break;
    }
    if (!t->known && c->strict)
        return fail(c, "an attribute's datatype (class %d) has a size of %llu bytes", cls, (unsigned long long)size);
    return true;
}

/* A dataspace message: the number of elements (0 for a null dataspace). */
static bool check_dspace(struct ctx *c, const unsigned char *d, uint64_t n, uint64_t *npoints)
{
    if (n < 4)
        return fail(c, "an attribute's dataspace has %llu bytes", (unsigned long long)n);
    int version = d[0], rank = d[1], flags = d[2];
    uint64_t p;
    bool null = false;
    if (version == 1)
        p = 8;
    else if (version == 2) {
        p = 4;
        null = d[3] == 2;
    } else
        return fail(c, "an attribute's dataspace has version %d", version);
    if (rank > 32)
        return fail(c, "an attribute's dataspace has %d dims", rank);
    uint64_t count = (uint64_t)rank * (flags & 1 ? 2 : 1) + (version == 1 && (flags & 2) ? (uint64_t)rank : 0);
    if (p > n || count * c->ss > n - p)
        return fail(c, "an attribute's dataspace runs past its message");
    uint64_t total = 1;
    for (int i = 0; i < rank; i++) {
        uint64_t dim = le(d + p + (uint64_t)i * c->ss, c->ss);
        if (dim != 0 && total > UINT64_MAX / dim)
            return fail(c, "an attribute's dataspace has too many elements");
        total *= dim;
    }
    *npoints = null ? 0 : total;
    return true;
}

/* One attribute message (data d of n bytes, message flags mflags). */
/* A structure that is valid HDF5 but cannot be checked here. */
static bool unsupported(struct ctx *c, const char *what)
{
    c->unsupported = true;
    return fail(c, "%s, which retort cannot check in a file without checksums", what);
}

static bool check_attribute(struct ctx *c, const unsigned char *d, uint64_t n, unsigned mflags)
{
    if (mflags & 0x02) /* the whole message is shared (stored elsewhere) */
        return c->strict ? unsupported(c, "an attribute message is shared") : true;
    if (n < 8)
        return fail(c, "an attribute message has %llu bytes", (unsigned long long)n);
    int version = d[0], aflags = d[1];
    uint64_t name_n = le(d + 2, 2), dt_n = le(d + 4, 2), ds_n = le(d + 6, 2), p;
    bool padded = version == 1;
    if (version == 1 || version == 2)
        p = 8;
    else if (version == 3)
        p = 9;
    else
        return fail(c, "an attribute message has version %d", version);
    if (version >= 2 && (aflags & 0x03))
        return c->strict ? unsupported(c, "an attribute has a shared datatype or dataspace") : true;
    uint64_t name_at = p, dt_at = name_at + (padded ? pad8(name_n) : name_n);
    uint64_t ds_at = dt_at + (padded ? pad8(dt_n) : dt_n), data_at = ds_at + (padded ? pad8(ds_n) : ds_n);
    if (data_at > n)
        return fail(c, "an attribute message's parts run past the message");
    if (name_n == 0 || !memchr(d + name_at, 0, name_n))
        return fail(c, "an attribute's name is not terminated inside its message");
    /* the recorded length includes exactly one terminator: a name with a NUL inside makes libhdf5 1.10 free a
     * garbage pointer when it builds its attribute table (a fuzzer-found crash in H5Aiterate2) */
    if (memchr(d + name_at, 0, name_n) != d + name_at + name_n - 1)
        return fail(c, "attribute '%.60s' has a name of %llu bytes with a NUL inside", (const char *)(d + name_at),
                    (unsigned long long)name_n);
    struct dtype t;
    uint64_t npoints = 0;
    if (!check_dtype(c, d + dt_at, dt_n, &t, 0) || !check_dspace(c, d + ds_at, ds_n, &npoints))
        return false;
    if (!t.known)
        return true; /* (not strict) a type retort does not read: libhdf5 checked its header's checksum */
    if (npoints > 0 && t.size > (n - data_at) / npoints)
        return fail(c, "attribute '%.60s' holds %llu values of %llu bytes but its message has room for %llu bytes",
                    (const char *)(d + name_at), (unsigned long long)npoints, (unsigned long long)t.size,
                    (unsigned long long)(n - data_at));
    if (t.vlen_string) {
        if (npoints > MAX_VLEN_VALUES)
            return fail(c, "attribute '%.60s' holds %llu variable-length strings", (const char *)(d + name_at),
                        (unsigned long long)npoints);
        for (uint64_t i = 0; i < npoints; i++) {
            const unsigned char *v = d + data_at + i * t.size;
            uint64_t len = le(v, 4), addr = le_addr(v + 4, c->sa), idx = le(v + 4 + c->sa, 4);
            if (addr == 0 || addr == UNDEF_ADDR) /* a null string: libhdf5 reads nothing */
                continue;
            if (!check_heap_object(c, addr, idx, len))
                return false;
        }
    }
    return true;
}

/* A symbol table message (an old-format group): its B-tree node and local heap must be in the file, and the
 * heap's data segment too. libhdf5 1.10 allocates a heap's size as its data segment says, and copies into
 * the buffer even when that allocation failed (a fuzzer-found crash). */
static bool check_symbol_table(struct ctx *c, const unsigned char *d, uint64_t n)
{
    if (n < 2 * (uint64_t)c->sa)
        return fail(c, "a group's symbol table message has %llu bytes", (unsigned long long)n);
    uint64_t btree = le_addr(d, c->sa), heap = le_addr(d + c->sa, c->sa);
    unsigned char *t = read_at(c, btree, 4, "a group's B-tree node");
    if (!t)
        return false;
    bool tree_ok = memcmp(t, "TREE", 4) == 0;
    free(t);
    if (!tree_ok)
        return fail(c, "a group's B-tree at address %llu has no TREE signature", (unsigned long long)btree);
    unsigned hn = 8 + 2 * c->ss + c->sa;
    unsigned char *h = read_at(c, heap, hn, "a group's local heap");
    if (!h)
        return false;
    bool sig = memcmp(h, "HEAP", 4) == 0 && h[4] == 0;
    uint64_t dsize = le(h + 8, c->ss), daddr = le_addr(h + 8 + 2 * c->ss, c->sa);
    free(h);
    if (!sig)
        return fail(c, "a group's local heap at address %llu has no HEAP signature", (unsigned long long)heap);
    if (daddr == UNDEF_ADDR || dsize > c->eof || daddr > c->eof || c->base > c->eof - daddr ||
        dsize > c->eof - c->base - daddr)
        return fail(c, "a group's local heap at address %llu claims %llu bytes at address %llu, past the end of the file",
                    (unsigned long long)heap, (unsigned long long)dsize, (unsigned long long)daddr);
    return true;
}

/* The messages of one chunk (buf[0..n)); continuation messages add chunks to the queue. */
static bool check_messages(struct ctx *c, const unsigned char *buf, uint64_t n, int version, bool crt_order,
                           uint64_t (*queue)[2], int *nq)
{
    unsigned mh = version == 1 ? 8 : 4 + (crt_order ? 2 : 0);
    uint64_t p = 0;
    while (n - p >= mh) {
        unsigned type, mflags;
        uint64_t size;
        if (version == 1) {
            type = (unsigned)le(buf + p, 2);
            size = le(buf + p + 2, 2);
            mflags = buf[p + 4];
        } else {
            type = buf[p];
            size = le(buf + p + 1, 2);
            mflags = buf[p + 3];
        }
        const unsigned char *d = buf + p + mh;
        if (size > n - p - mh)
            return fail(c, "a header message of %llu bytes runs past its chunk", (unsigned long long)size);
        if (type == 0x10) { /* continuation: address and length of the next chunk */
            if (size < (uint64_t)c->sa + c->ss)
                return fail(c, "a header continuation message is too short");
            if (*nq >= MAX_CHUNKS)
                return fail(c, "the object header has more than %d chunks", MAX_CHUNKS);
            queue[*nq][0] = le_addr(d, c->sa);
            queue[*nq][1] = le(d + c->sa, c->ss);
            (*nq)++;
        } else if (type == 0x11 && c->structure) {
            if (!check_symbol_table(c, d, size))
                return false;
        } else if (type == 0x0c && !c->structure) {
            if (!check_attribute(c, d, size, mflags))
                return false;
        } else if (type == 0x15 && size >= 2 + (uint64_t)c->sa) { /* attribute info: dense storage? */
            uint64_t at = 2 + ((d[1] & 1) ? 2 : 0);
            if (at + c->sa <= size && le_addr(d + at, c->sa) != UNDEF_ADDR)
                c->dense = true;
        }
        p += mh + size;
    }
    return true;
}

/* The object header at addr: its chunks, breadth first. */
static bool check_header(struct ctx *c, uint64_t addr)
{
    unsigned char *pre = read_at(c, addr, 16, "an object header");
    if (!pre)
        return false;
    uint64_t queue[MAX_CHUNKS][2];
    int nq = 0, version;
    bool crt_order = false;
    bool ok = true;
    if (memcmp(pre, "OHDR", 4) == 0) {
        version = 2;
        unsigned flags = pre[5];
        crt_order = flags & 0x04;
        uint64_t p = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
        unsigned w = 1u << (flags & 3);
        free(pre);
        unsigned char *sz = read_at(c, addr + p, w, "an object header");
        if (!sz)
            return false;
        queue[nq][0] = addr + p + w;
        queue[nq][1] = le(sz, w);
        nq++;
        free(sz);
    } else if (pre[0] == 1) {
        version = 1;
        queue[nq][0] = addr + 16;
        queue[nq][1] = le(pre + 8, 4);
        nq++;
        free(pre);
    } else {
        free(pre);
        return fail(c, "the object header at %llu has an unknown version", (unsigned long long)addr);
    }
    c->strict = version == 1;
    for (int i = 0; ok && i < nq; i++) {
        uint64_t at = queue[i][0], len = queue[i][1];
        if (len > (c->structure ? c->eof : MAX_CHUNK_BYTES)) /* read_at checks it against the file */
            return fail(c, "an object header chunk of %llu bytes", (unsigned long long)len);
        unsigned char *chunk = read_at(c, at, len, "an object header chunk");
        if (!chunk)
            return false;
        const unsigned char *msgs = chunk;
        uint64_t n = len;
        if (version == 2) {
            if (i > 0) { /* "OCHK" + messages + checksum */
                if (len < 8 || memcmp(chunk, "OCHK", 4) != 0) {
                    free(chunk);
                    return fail(c, "an object header continuation chunk has no OCHK signature");
                }
                msgs += 4;
                n -= 8;
            }
            /* the first chunk's length excludes its checksum, which follows it */
        }
        ok = check_messages(c, msgs, n, version, crt_order, queue, &nq);
        free(chunk);
    }
    return ok;
}

int rt__h5_verify_attributes(hid_t file, hid_t obj, const char *path, bool *dense, char *why, size_t why_n)
{
    struct ctx c = {.fd = -1, .why = why, .why_n = why_n};
    bool ok = false;
    int own_fd = -1;
    *dense = false;
    snprintf(why, why_n, "%s", "");
    H5O_info_t oi;
    hsize_t ub = 0;
    size_t sa = 0, ss = 0;
    hid_t fcpl = H5Fget_create_plist(file);
    if (fcpl < 0 || H5Pget_sizes(fcpl, &sa, &ss) < 0 || H5Pget_userblock(fcpl, &ub) < 0 ||
        H5Oget_info2(obj, &oi, H5O_INFO_BASIC) < 0) {
        fail(&c, "cannot read the object's header");
        goto done;
    }
    if (sa < 2 || sa > 8 || ss < 2 || ss > 8) {
        c.unsupported = true;
        fail(&c, "the file uses %zu-byte addresses and %zu-byte lengths", sa, ss);
        goto done;
    }
    c.sa = (unsigned)sa;
    c.ss = (unsigned)ss;
    c.base = ub;
    /* the descriptor libhdf5 reads through (retort's driver gives it; the same file whatever happened to its
     * name since it was opened), else the file opened again by name */
    void *handle = NULL;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle)
        c.fd = *(int *)handle;
    else
        c.fd = own_fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (c.fd < 0 || fstat(c.fd, &sb) != 0) {
        fail(&c, "cannot read the file to check it");
        goto done;
    }
    c.eof = (uint64_t)sb.st_size;
    ok = check_header(&c, (uint64_t)oi.addr);
    *dense = c.dense;
done:
    if (own_fd >= 0)
        close(own_fd);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    H5Eclear2(H5E_DEFAULT);
    return ok ? RT__H5_VERIFIED : c.unsupported ? RT__H5_UNSUPPORTED : RT__H5_DAMAGED;
}

/* The object header at addr of a file open on fd (sa, ss: its address and length sizes; base: the physical
 * offset of address 0): every chunk inside the file, and the local heap and B-tree of an old-format group. */
static int verify_object_fd(int fd, unsigned sa, unsigned ss, uint64_t base, uint64_t addr, char *why, size_t why_n)
{
    struct ctx c = {.fd = fd, .sa = sa, .ss = ss, .base = base, .structure = true, .why = why, .why_n = why_n};
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        fail(&c, "cannot read the file to check it");
        return RT__H5_DAMAGED;
    }
    c.eof = (uint64_t)sb.st_size;
    if (c.base > c.eof)
        return fail(&c, "the file's base address %llu is past its end", (unsigned long long)base), RT__H5_DAMAGED;
    return check_header(&c, addr) ? RT__H5_VERIFIED : c.unsupported ? RT__H5_UNSUPPORTED : RT__H5_DAMAGED;
}

int rt__h5_verify_object(hid_t file, const char *path, uint64_t addr, char *why, size_t why_n)
{
    snprintf(why, why_n, "%s", "");
    hsize_t ub = 0;
    size_t sa = 0, ss = 0;
    int own_fd = -1, fd = -1, r = RT__H5_DAMAGED;
    hid_t fcpl = H5Fget_create_plist(file);
    if (fcpl < 0 || H5Pget_sizes(fcpl, &sa, &ss) < 0 || H5Pget_userblock(fcpl, &ub) < 0) {
        snprintf(why, why_n, "%s", "cannot read the file's creation properties");
        goto done;
    }
    if (sa < 2 || sa > 8 || ss < 2 || ss > 8) {
        snprintf(why, why_n, "the file uses %zu-byte addresses and %zu-byte lengths", sa, ss);
        r = RT__H5_UNSUPPORTED;
        goto done;
    }
    void *handle = NULL;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle)
        fd = *(int *)handle;
    else
        fd = own_fd = open(path, O_RDONLY | O_CLOEXEC);
    r = verify_object_fd(fd, (unsigned)sa, (unsigned)ss, ub, addr, why, why_n);
done:
    if (own_fd >= 0)
        close(own_fd);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    H5Eclear2(H5E_DEFAULT);
    return r;
}

int rt__h5_verify_root(const char *path, char *why, size_t why_n)
{
    snprintf(why, why_n, "%s", "");
    int fd = open(path, O_RDONLY | O_CLOEXEC), r = RT__H5_DAMAGED;
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(why, why_n, "%s", "cannot read the file to check it");
        goto done;
    }
    uint64_t eof = (uint64_t)sb.st_size;
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char sb_[96];
    for (uint64_t at = 0; at < eof; at = at ? 2 * at : 512) { /* where libhdf5 looks for the superblock */
        ssize_t got = pread(fd, sb_, sizeof sb_, (off_t)at);
        if (got < 8 || memcmp(sb_, sig, 8) != 0)
            continue;
        unsigned version = sb_[8], sa, ss;
        uint64_t base, root;
        if (version <= 1) {
            sa = sb_[13];
            ss = sb_[14];
            unsigned p = version == 0 ? 24 : 28;
            if (sa < 2 || sa > 8 || ss < 2 || ss > 8 || (uint64_t)got < p + 5u * sa + ss)
                break;
            base = le(sb_ + p, sa);
            root = le_addr(sb_ + p + 4 * sa + ss, sa);
        } else if (version <= 3) {
            sa = sb_[9];
            ss = sb_[10];
            if (sa < 2 || sa > 8 || ss < 2 || ss > 8 || (uint64_t)got < 12 + 4u * sa)
                break;
            base = le(sb_ + 12, sa);
            root = le_addr(sb_ + 12 + 3 * sa, sa);
        } else {
            r = RT__H5_UNSUPPORTED; /* a newer format: libhdf5 refuses it itself */
            goto done;
        }
        r = verify_object_fd(fd, sa, ss, base, root, why, why_n);
        if (r != RT__H5_VERIFIED) {
            char inner[300];
            snprintf(inner, sizeof inner, "%s", why);
            snprintf(why, why_n, "the root group's header: %s", inner);
        }
        goto done;
    }
    r = RT__H5_UNSUPPORTED; /* no superblock found here: libhdf5 says what is wrong */
done:
    if (fd >= 0)
        close(fd);
    return r;
}
