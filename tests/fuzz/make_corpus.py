#!/usr/bin/python3
"""Seed corpus of the C readers and of the HDF5 dataset reader, written by other implementations:
    /usr/bin/python3 tests/fuzz/make_corpus.py OUT
writes OUT/idx (IDX, plain and gzip), OUT/cifar (CIFAR-10/100 records), OUT/npy (numpy.save),
OUT/image (PNG from the encoder below, JPEG from PIL) and OUT/hdf5_dataset (h5py);
    /usr/bin/python3 tests/fuzz/make_corpus.py --resave OUT
(after make_corpus.lua) adds h5py copies of retort's checkpoints and caches (see resave).

IDX, CIFAR and PNG need only the standard library (the PNG encoder here writes what PIL cannot:
Adam7 interlacing, 1/2/4-bit grey, 16-bit RGB); npy needs numpy, JPEG needs PIL, HDF5 needs h5py:
a missing package skips its files with a message (the fuzzer then starts that target from
whatever seeds exist, or from nothing). Files are small (the fuzzer mutates every byte, and its
-max_len follows the largest seed) and seeded: the same bytes every run."""
import gzip
import io
import os
import random
import struct
import sys
import zlib

rng = random.Random(5)


def write(out, kind, name, data):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


def skip(kind, package):
    print(f"make_corpus.py: {kind} seeds skipped: python3 module {package} is missing", file=sys.stderr)


def idx(out):
    def file(dims, data):
        return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)

    images = file([3, 4, 5], [rng.randrange(256) for _ in range(60)])
    labels = file([3], [2, 0, 9])
    write(out, "idx", "images.idx", images)
    write(out, "idx", "labels.idx", labels)
    write(out, "idx", "empty.idx", file([0, 28, 28], []))
    write(out, "idx", "images.idx.gz", gzip.compress(images, mtime=0))
    write(out, "idx", "labels.idx.gz", gzip.compress(labels, mtime=0))


def cifar(out):
    def record(labels):
        return bytes(labels) + bytes(rng.randrange(256) for _ in range(3072))

    write(out, "cifar", "cifar10.bin", record([3]) + record([9]))
    write(out, "cifar", "cifar100.bin", record([19, 99]) + record([0, 42]))


def npy(out):
    try:
        import numpy as np
    except ImportError:
        return skip("npy", "numpy")
    arrays = {
        "u1": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "f4": np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
        "f8": np.array([0.5, -2.0, np.inf], dtype=np.float64),
        "i8": np.array([[-3, 0], [2**40, 7]], dtype=np.int64),
        "i1": np.array([-128, 0, 127], dtype=np.int8),
        "i2": np.array([-300, 5], dtype="<i2"),
        "u2": np.array([65535, 1], dtype="<u2"),
        "i4": np.array([-70000, 1, 2], dtype="<i4"),
        "u4": np.array([4000000000], dtype="<u4"),
        "u8": np.array([2**63 - 1, 3], dtype="<u8"),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "nchw": np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2),
    }
    for name, a in arrays.items():
        b = io.BytesIO()
        np.save(b, a)
        write(out, "npy", name + ".npy", b.getvalue())
    for version in [(2, 0), (3, 0)]:
        b = io.BytesIO()
        np.lib.format.write_array(b, arrays["f4"], version=version)
        write(out, "npy", "f4_v%d.npy" % version[0], b.getvalue())


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, color, depth, rows, interlace=False, extra=b""):
    """PNG of the given colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA) and depth;
    rows[y][x] is a tuple of samples (a palette index for type 3). Rows are stored unfiltered, but
    under varied filter types (any bytes are valid under each), so the decoder runs every filter."""

    def scanlines(xs, ys):
        raw = bytearray()
        for y in ys:
            raw.append(rng.choice([0, 1, 2, 3, 4]))
            bits = []
            for x in xs:
                bits.extend(rows[y][x])
            if depth == 16:
                raw += b"".join(struct.pack(">H", v) for v in bits)
            elif depth == 8:
                raw += bytes(bits)
            else:
                acc, n = 0, 0
                for v in bits:
                    acc, n = (acc << depth) | v, n + depth
                    if n == 8:
                        raw.append(acc)
                        acc, n = 0, 0
                if n:
                    raw.append(acc << (8 - n))
        return raw

    if interlace:  # Adam7: 7 passes, each its own sub-image of scanlines
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = bytearray()
        for x0, y0, dx, dy in passes:
            xs, ys = range(x0, width, dx), range(y0, height, dy)
            if len(xs) and len(ys):
                raw += scanlines(xs, ys)
    else:
        raw = scanlines(range(width), range(height))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 1 if interlace else 0)
    idat = png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + idat + png_chunk(b"IEND", b"")


def images(out):
    w, h = 5, 4

    def pixels(channels, maxv):
        return [[tuple(rng.randrange(maxv + 1) for _ in range(channels)) for _ in range(w)] for _ in range(h)]

    def plte(n):
        return png_chunk(b"PLTE", bytes(rng.randrange(256) for _ in range(3 * n)))

    def trns(body):
        return png_chunk(b"tRNS", body)

    for depth in (1, 2, 4, 8, 16):
        write(out, "image", f"grey{depth}.png", png(w, h, 0, depth, pixels(1, 2**depth - 1)))
    write(out, "image", "rgb8.png", png(w, h, 2, 8, pixels(3, 255)))
    write(out, "image", "rgb16.png", png(w, h, 2, 16, pixels(3, 65535)))
    write(out, "image", "grey_alpha8.png", png(w, h, 4, 8, pixels(2, 255)))
    write(out, "image", "rgba8.png", png(w, h, 6, 8, pixels(4, 255)))
    write(out, "image", "rgba16.png", png(w, h, 6, 16, pixels(4, 65535)))
    write(out, "image", "palette4.png", png(w, h, 3, 4, pixels(1, 9), extra=plte(10) + trns(b"\x00\x80")))
    write(out, "image", "palette8_interlaced.png", png(9, 9, 3, 8, [[(rng.randrange(4),) for _ in range(9)]
                                                                   for _ in range(9)], True, plte(4)))
    write(out, "image", "rgb8_interlaced.png", png(9, 9, 2, 8, [[tuple(rng.randrange(256) for _ in range(3))
                                                                for _ in range(9)] for _ in range(9)], True))
    write(out, "image", "grey8_trns.png", png(w, h, 0, 8, pixels(1, 255), extra=trns(b"\x00\x07")))
    try:
        from PIL import Image
    except ImportError:
        return skip("JPEG", "PIL")
    rgb = Image.new("RGB", (16, 16))
    rgb.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(256)])
    jpegs = {
        "rgb420.jpg": (rgb, {"quality": 50}),
        "rgb444.jpg": (rgb, {"quality": 50, "subsampling": 0}),
        "rgb_progressive.jpg": (rgb, {"quality": 50, "progressive": True}),
        "rgb_optimized.jpg": (rgb, {"quality": 30, "optimize": True}),
        "grey.jpg": (rgb.convert("L"), {"quality": 50}),
        "cmyk.jpg": (rgb.convert("CMYK"), {"quality": 50}),
    }
    for name, (img, opts) in jpegs.items():
        b = io.BytesIO()
        try:
            img.save(b, "JPEG", **opts)
        except (TypeError, ValueError, OSError):  # an older PIL without the option
            continue
        write(out, "image", name, b.getvalue())


def hdf5(out):
    try:
        import h5py
        import numpy as np
    except ImportError:
        return skip("HDF5 dataset", "h5py")
    n = 4

    def labels(dtype):
        return np.array([0, 2, 1, 2], dtype=dtype)

    def file(name, x, y, **kw):
        with h5py.File(os.path.join(out, "hdf5_dataset", name), "w") as f:
            f.create_dataset("images", data=x, **kw)
            f.create_dataset("labels", data=y)

    os.makedirs(os.path.join(out, "hdf5_dataset"), exist_ok=True)
    u8 = np.array([rng.randrange(256) for _ in range(n * 3 * 3)], dtype=np.uint8)
    file("nchw_u8.h5", u8.reshape(n, 1, 3, 3), labels(np.int64))
    file("nhwc_u8_chunked.h5", u8.reshape(n, 3, 3, 1), labels(np.int32), chunks=(1, 3, 3, 1))
    file("nchw_u8_gzip.h5", u8.reshape(n, 1, 3, 3), labels(np.uint8), chunks=(2, 1, 3, 3), compression="gzip",
         shuffle=True)
    file("vectors_f32_fletcher.h5", np.linspace(-1, 1, n * 3, dtype=np.float32).reshape(n, 3), labels(np.int16),
         chunks=(2, 3), fletcher32=True)
    file("vectors_f16.h5", np.linspace(-1, 1, n * 3).astype(np.float16).reshape(n, 3), labels(np.uint32))
    file("vectors_f64.h5", np.linspace(-1, 1, n * 2).reshape(n, 2), labels(np.int64), chunks=(n, 2),
         compression="gzip", compression_opts=9)


def resave(out):
    """Each checkpoint and cache retort wrote (make_corpus.lua) written again by h5py in HDF5's
    earliest format: no metadata checksums (retort's files have them, and most mutations of those
    are refused by the checksum), datasets without filters. Mutations of these reach the checks
    retort itself makes on attributes, shapes and values."""
    try:
        import h5py
    except ImportError:
        return skip("h5py copies of checkpoint and cache", "h5py")

    def copy_attrs(a, b):
        for k in a.attrs:
            b.attrs.create(k, a.attrs[k], dtype=a.attrs.get_id(k).dtype)

    def copy(a, b):
        copy_attrs(a, b)
        for k, v in a.items():
            if isinstance(v, h5py.Group):
                copy(v, b.create_group(k))
            else:
                copy_attrs(v, b.create_dataset(k, data=v[()], dtype=v.dtype))

    for kind in ("checkpoint", "cache"):
        folder = os.path.join(out, kind)
        for name in sorted(os.listdir(folder)):
            if name.startswith("h5py_"):
                continue
            with h5py.File(os.path.join(folder, name), "r") as src, \
                    h5py.File(os.path.join(folder, "h5py_" + name), "w", libver="earliest") as dst:
                copy(src, dst)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--resave":
        return resave(sys.argv[2])
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py OUT | make_corpus.py --resave OUT")
    out = sys.argv[1]
    for make in (idx, cifar, npy, images, hdf5):
        make(out)


if __name__ == "__main__":
    main()
