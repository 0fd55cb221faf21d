-- retort.data.imageFolder: PNG and JPEG folders decoded in C, checked against PIL. The fixtures are
-- written at test time by /usr/bin/python3 with PIL and numpy (the generator is FIXTURES below):
-- PNGs in every colour type and depth (PIL's modes 1, L, LA, RGB, RGBA, P with and without
-- transparency, I;16, and 2-bit grey, 4-bit palette, 16-bit RGB/RGBA/grey+alpha written by a
-- small PNG encoder of the script's own), JPEGs in L, RGB (4:2:0, 4:4:4, progressive) and CMYK,
-- and PIL's own decode of each (convert("RGB") and convert("L"); for 16-bit grey, whose
-- convert("L") PIL clamps, numpy's high byte of PIL's 16-bit values) and its
-- resize(size, Image.BILINEAR), saved as IDX files this spec reads with core.readIdx.
-- Measured: retort's pixels equal PIL's exactly (max |difference| 0 u8 levels) for every file,
-- at native size and resized, so every comparison here is exact.
-- Then: the folder rules (classes, order, extensions, hidden files), batches through a Loader
-- (shuffle, crop + flip, normalize, limit) against the same Loader over PIL's pixels in memory,
-- fingerprints, a soft-target cache built over the folder and opened over PIL's pixels, and every
-- malformed file (truncated, garbage, empty, unsupported format), strict and with skipBad.
-- Skipped with a message when PIL or numpy is missing.
local retort = require "retort"
local core = retort.core
local data = retort.data
local nn = retort.nn
local support = require "support"

local have_pil = support.python_has("PIL.Image, numpy")
local PIL_MISSING = "PIL or numpy is not installed for /usr/bin/python3 (Debian packages python3-pil, python3-numpy)"

local FIXTURES = [==[
import os, struct, sys, warnings, zlib
import numpy as np
from PIL import Image

warnings.simplefilter("ignore")  # PIL's advice on palette transparency
root = sys.argv[1]
rng = np.random.default_rng(5)
H, W = 23, 37  # every image of formats/ has this size

def mkdir(*p):
    d = os.path.join(root, *p)
    os.makedirs(d, exist_ok=True)
    return d

def picture(h, w, c):
    """smooth gradients plus noise: something for JPEG to compress, every value range touched"""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 7) % 256], -1)
    noise = rng.integers(-40, 41, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)[..., :c]

def write_png(path, arr, color, depth, palette=None, trns=None):
    """a minimal PNG encoder for what PIL cannot write: 16-bit colour, 2-/4-bit samples"""
    h, w = arr.shape[:2]
    if depth == 16:
        raw = arr.astype(">u2").reshape(h, -1).view(np.uint8)
    elif depth < 8:
        per = 8 // depth
        a = arr.reshape(h, w).astype(np.uint8)
        pad = (-w) % per
        a = np.pad(a, ((0, 0), (0, pad)))
        a = a.reshape(h, -1, per)
        raw = np.zeros(a.shape[:2], np.uint8)
        for k in range(per):
            raw |= a[:, :, k] << (8 - depth * (k + 1))
    else:
        raw = arr.reshape(h, -1).astype(np.uint8)
    body = b"".join(b"\x00" + raw[y].tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")
    open(path, "wb").write(out)

def write_idx(path, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes())

def pil_pixels(path):
    """PIL's decode as retort should give it: (rgb HxWx3, grey HxW)"""
    im = Image.open(path)
    if im.mode in ("I", "I;16", "I;16B"):  # 16-bit grey: PIL's convert("L") clamps; take the high byte
        g = (np.asarray(im).astype(np.int64) >> 8).astype(np.uint8)
        return np.stack([g, g, g], -1), g
    return np.asarray(im.convert("RGB")), np.asarray(im.convert("L"))

# formats/<png|jpeg>/<name>: every colour type, H x W
rgb = picture(H, W, 3)
grey = picture(H, W, 1)[..., 0]
made = {}
d = mkdir("formats", "png")
Image.fromarray(grey).save(os.path.join(d, "L.png"))
Image.fromarray(np.dstack([grey, rgb[..., 0]]), "LA").save(os.path.join(d, "LA.png"))
Image.fromarray(rgb).save(os.path.join(d, "RGB.png"))
Image.fromarray(np.dstack([rgb, grey])).save(os.path.join(d, "RGBA.png"))
pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=60)
pal.save(os.path.join(d, "P.png"))
pal.save(os.path.join(d, "P_trns_index.png"), transparency=3)
pal.save(os.path.join(d, "P_trns_bytes.png"), transparency=bytes(range(0, 250, 5)))
Image.fromarray(grey > 128).save(os.path.join(d, "bilevel.png"))            # mode "1": 1-bit grey
Image.fromarray(grey).save(os.path.join(d, "L_trns.png"), transparency=17)    # grey with a tRNS value
Image.fromarray(rgb).save(os.path.join(d, "RGB_trns.png"), transparency=(1, 2, 3))
g16 = rng.integers(0, 65536, (H, W)).astype(np.uint16)
g16[0, :4] = [0, 255, 256, 65535]
Image.fromarray(g16, "I;16").save(os.path.join(d, "I16.png"))
write_png(os.path.join(d, "L2.png"), rng.integers(0, 4, (H, W)), 0, 2)
write_png(os.path.join(d, "P4.png"), rng.integers(0, 16, (H, W)), 3, 4, palette=rng.integers(0, 256, (16, 3)))
write_png(os.path.join(d, "RGB16.png"), rng.integers(0, 65536, (H, W, 3)), 2, 16)
write_png(os.path.join(d, "RGBA16.png"), rng.integers(0, 65536, (H, W, 4)), 6, 16)
write_png(os.path.join(d, "LA16.png"), rng.integers(0, 65536, (H, W, 2)), 4, 16)
Image.fromarray(rgb).save(os.path.join(d, "png_named.jpg"))                    # a PNG with a JPEG's name
d = mkdir("formats", "jpeg")
Image.fromarray(grey).save(os.path.join(d, "L.jpg"), quality=90)
Image.fromarray(rgb).save(os.path.join(d, "RGB.jpg"), quality=85)                # 4:2:0
Image.fromarray(rgb).save(os.path.join(d, "RGB444.JPEG"), quality=95, subsampling=0)
Image.fromarray(rgb).save(os.path.join(d, "RGBprog.jpeg"), quality=80, progressive=True)
Image.fromarray(rgb).convert("CMYK").save(os.path.join(d, "CMYK.jpg"), quality=90)
# ignored: another extension, a hidden file (garbage with an image's name), a file outside any class
open(os.path.join(d, "notes.txt"), "w").write("not an image")
open(os.path.join(d, ".hidden.jpg"), "wb").write(b"garbage")
open(os.path.join(root, "formats", "README"), "w").write("loose file")

ref = mkdir("ref")
lines = ["return {"]
for cls in ("jpeg", "png"):
    for name in sorted(os.listdir(os.path.join(root, "formats", cls)), key=lambda s: s.encode()):
        if name.startswith(".") or name.endswith(".txt"):
            continue
        p = os.path.join(root, "formats", cls, name)
        r, g = pil_pixels(p)
        assert r.shape == (H, W, 3), (p, r.shape)
        key = cls + "_" + name.replace(".", "_")
        write_idx(os.path.join(ref, key + ".rgb"), r)
        write_idx(os.path.join(ref, key + ".l"), g)
        lines.append('  {file = "%s/%s", key = "%s", mode = "%s"},' % (cls, name, key, Image.open(p).mode))
lines.append("}")
open(os.path.join(root, "formats.lua"), "w").write("\n".join(lines) + "\n")

# resize/<class>/<name>: sizes around the target (SH, SW): shrink by non-integer and large factors,
# enlarge, one axis each way, one axis unchanged, and the target size itself
SH, SW = 24, 40
d = mkdir("resize", "a")
shapes = {"a/shrink.png": (61, 97), "a/big.jpg": (203, 311), "a/same.png": (SH, SW), "b/grow.png": (7, 9),
          "b/mixed.jpg": (90, 17), "b/tall_same_w.png": (50, SW), "b/wide_same_h.png": (SH, 13),
          "c/grey.png": (33, 71)}
for rel, (h, w) in shapes.items():
    os.makedirs(os.path.join(root, "resize", os.path.dirname(rel)), exist_ok=True)
    p = os.path.join(root, "resize", rel)
    im = Image.fromarray(picture(h, w, 3)) if not rel.startswith("c/") else Image.fromarray(picture(h, w, 1)[..., 0])
    im.save(p, quality=90) if p.endswith(".jpg") else im.save(p)
order = sorted(shapes, key=lambda s: s.encode())
xs = {}
for mode, ch in (("RGB", 3), ("L", 1)):
    x = np.stack([np.asarray(Image.open(os.path.join(root, "resize", r)).convert(mode).resize((SW, SH), Image.BILINEAR))
                  .reshape(SH, SW, ch).transpose(2, 0, 1) for r in order])
    write_idx(os.path.join(ref, "resize_%d" % ch), x)
labels = [ord(r[0]) - ord("a") + 1 for r in order]
open(os.path.join(root, "resize.lua"), "w").write(
    "return {files = {%s}, labels = {%s}, h = %d, w = %d}\n" % (
        ", ".join('"%s"' % r for r in order), ", ".join(map(str, labels)), SH, SW))

# bad/<class>/...: malformed files among good ones
good = Image.fromarray(picture(12, 10, 3))
d = mkdir("bad", "one")
good.save(os.path.join(d, "a_good.png"))
good.save(os.path.join(d, "b_good.jpg"))
png = open(os.path.join(d, "a_good.png"), "rb").read()
jpg = open(os.path.join(d, "b_good.jpg"), "rb").read()
open(os.path.join(d, "c_truncated.png"), "wb").write(png[: len(png) // 2])
open(os.path.join(d, "d_truncated.jpg"), "wb").write(jpg[: len(jpg) * 2 // 3])
d = mkdir("bad", "two")
good.save(os.path.join(d, "a_good.png"))
open(os.path.join(d, "b_garbage.jpg"), "wb").write(b"this is not a JPEG at all, just text" * 3)
open(os.path.join(d, "c_empty.png"), "wb").close()
good.save(os.path.join(d, "d_gif_named_png.png"), format="GIF")
d = mkdir("unsupported", "one")
good.save(os.path.join(d, "a.png"))
good.save(os.path.join(d, "b.gif"))
good.save(os.path.join(d, "c.bmp"))
d = mkdir("unsupported", "two")
good.save(os.path.join(d, "a.jpg"))
# a class folder without images, and one whose only image is bad
mkdir("noimages", "full")
good.save(os.path.join(root, "noimages", "full", "x.png"))
d = mkdir("noimages", "docs")
open(os.path.join(d, "readme.txt"), "w").write("no images here")
mkdir("noimages", "void")
mkdir("allbad", "ok")
good.save(os.path.join(root, "allbad", "ok", "x.png"))
d = mkdir("allbad", "broken")
open(os.path.join(d, "x.png"), "wb").write(png[:40])
mkdir("empty")
]==]

-- x (N,C,H,W) u8 over a PIL reference read as (H,W,C) or (H,W)
local function max_diff(a, b) return (a:long() - b:long()):abs():max():item() end

describe("retort.data.imageFolder", function()
   local root, formats, resize
   setup(function()
      if not have_pil then return end
      root = support.python_fixtures(FIXTURES)
      formats = dofile(root .. "/formats.lua")
      resize = dofile(root .. "/resize.lua")
   end)
   teardown(function() if root then support.rmrf(root) end end)

   local function need()
      if not have_pil then pending(PIL_MISSING) return false end
      return true
   end
   local function ref(name) return core.readIdx(root .. "/ref/" .. name) end

   it("decodes every PNG and JPEG colour type pixel for pixel as PIL does (RGB and grey)", function()
      if not need() then return end
      local modes = {}
      for _, f in ipairs(formats) do modes[f.mode] = true end
      for _, m in ipairs{"1", "L", "LA", "RGB", "RGBA", "P", "I", "CMYK"} do
         assert.is_true(modes[m], "no fixture in PIL mode " .. m)
      end
      for _, f in ipairs(formats) do
         local path = root .. "/formats/" .. f.file
         local rgb, l = ref(f.key .. ".rgb"), ref(f.key .. ".l")
         local x3, x1 = core.decodeImage(path, 3), core.decodeImage(path, 1)
         assert.are.same({3, 23, 37}, x3:shape())
         assert.are.same({1, 23, 37}, x1:shape())
         assert.are.equal("u8", x3:dtype())
         local d3, d1 = max_diff(x3:permute(2, 3, 1), rgb), max_diff(x1:select(1, 1), l)
         assert.are.equal(0, d3, f.file .. " (PIL mode " .. f.mode .. ") differs from PIL's RGB by " .. d3)
         assert.are.equal(0, d1, f.file .. " (PIL mode " .. f.mode .. ") differs from PIL's L by " .. d1)
      end
   end)

   it("takes class folders in byte order and their images recursively, in byte order of their paths", function()
      if not need() then return end
      local ds = data.imageFolder{root = root .. "/formats/", size = {23, 37}}
      assert.are.same({"jpeg", "png"}, ds.classes)
      assert.are.equal(2, ds.numClasses)
      assert.are.same({jpeg = 1, png = 2}, ds.classToIndex)
      local files, labels = {}, {}
      for i, f in ipairs(formats) do files[i] = f.file; labels[i] = f.file:match("^png/") and 2 or 1 end
      assert.are.same(files, ds.files) -- notes.txt, .hidden.jpg and the loose README are not taken
      assert.are.same(labels, ds.y:totable())
      assert.are.equal("i64", ds.y:dtype())
      assert.are.same({#files, 3, 23, 37}, ds.shape)
      assert.are.equal("u8", ds.dtype)
      assert.are.equal(#files, ds:size())
      assert.is_nil(ds.x)
      -- at native size nothing is resampled: a batch equals PIL's decode, in the order asked
      local idx = retort.tensor({3, 1, #files, 3}, "i64")
      local x = ds:read(idx)
      assert.are.same({4, 3, 23, 37}, x:shape())
      for k, i in ipairs(idx:totable()) do
         assert.are.equal(0, max_diff(x:select(1, k):permute(2, 3, 1), ref(formats[i].key .. ".rgb")))
      end
      local img, label = ds:get(#files)
      assert.are.same({3, 23, 37}, img:shape())
      assert.are.equal(2, label)
      local grey = data.imageFolder{root = root .. "/formats", size = {23, 37}, channels = 1}
      assert.are.same({#files, 1, 23, 37}, grey.shape)
      local g = grey:read(idx)
      for k, i in ipairs(idx:totable()) do
         assert.are.equal(0, max_diff(g:select(1, k):select(1, 1), ref(formats[i].key .. ".l")))
      end
   end)

   it("walks sub-folders, follows symbolic links, skips hidden names and a link that loops", function()
      if not need() then return end
      local t = root .. "/tree"
      local png, jpg = root .. "/resize/a/same.png", root .. "/resize/a/big.jpg"
      local cmd = table.concat({
         ("mkdir -p %s/a %s/z/sub/deeper %s/z/.hidden %s/.git"):format(t, t, t, t),
         ("cp %s %s/a/b.png"):format(png, t), ("cp %s %s/z/x.png"):format(png, t), ("cp %s %s/z/B.png"):format(png, t),
         ("cp %s %s/z/sub/y.PNG"):format(png, t), ("cp %s %s/z/sub/deeper/w.jpg"):format(jpg, t),
         ("cp %s %s/z/.hidden/v.png"):format(png, t), ("cp %s %s/.git/c.png"):format(png, t),
         ("ln -s %s %s/z/link.png"):format(jpg, t), ("ln -s . %s/z/loop"):format(t),
         ("ln -s ../../a %s/z/sub/alias"):format(t)}, " && ")
      assert.is_true(os.execute(cmd))
      local ds = data.imageFolder{root = t, size = 8}
      assert.are.same({"a", "z"}, ds.classes) -- .git is hidden
      assert.are.same({"a/b.png", "z/B.png", "z/link.png", "z/sub/alias/b.png", "z/sub/deeper/w.jpg", "z/sub/y.PNG",
                       "z/x.png"}, ds.files)
      assert.are.same({1, 2, 2, 2, 2, 2, 2}, ds.y:totable())
      assert.are.equal(0, max_diff(ds:read(retort.tensor({3}, "i64")), ds:read(retort.tensor({5}, "i64"))))
      assert.are.same({"a", "z"}, core.listSubdirs(t))
      assert.are.same({"alias/b.png", "deeper/w.jpg", "y.PNG"}, core.listFiles(t .. "/z/sub"))
      local none, err = core.listFiles(t .. "/none")
      assert.is_nil(none); assert.matches("cannot list " .. t .. "/none: No such file or directory", err, 1, true)
   end)

   it("resizes as PIL's Image.resize(size, Image.BILINEAR) does: shrinking, enlarging, one axis each way", function()
      if not need() then return end
      for _, ch in ipairs{3, 1} do
         local ds = data.imageFolder{root = root .. "/resize", size = {resize.h, resize.w}, channels = ch}
         assert.are.same(resize.files, ds.files)
         assert.are.same(resize.labels, ds.y:totable())
         local want = ref("resize_" .. ch)
         local got = ds:read(retort.arange(1, ds:size(), "i64"))
         assert.are.same(want:shape(), got:shape())
         for i = 1, ds:size() do
            local d = max_diff(got:select(1, i), want:select(1, i))
            assert.are.equal(0, d, ("%s (%d channels) differs from PIL's resize by %d levels")
               :format(ds.files[i], ch, d))
         end
         -- a square size may be given as one number
         local square = data.imageFolder{root = root .. "/resize", size = 16, channels = ch}
         assert.are.same({ds:size(), ch, 16, 16}, square.shape)
      end
   end)

   it("decodes the same on 1 thread as on 2, and reads repeated and shuffled indices", function()
      if not need() then return end
      local ds = data.imageFolder{root = root .. "/resize", size = {20, 30}}
      local idx = retort.tensor({8, 2, 2, 5, 1, 7, 3, 6, 4, 8}, "i64")
      local threads = retort.getNumThreads()
      retort.setNumThreads(1)
      local one = ds:read(idx)
      retort.setNumThreads(2)
      local two = ds:read(idx)
      retort.setNumThreads(threads)
      assert.are.equal(0, max_diff(one, two))
      assert.are.equal(0, max_diff(one:select(1, 2), one:select(1, 3)))
      assert.are.equal(0, max_diff(one:select(1, 1), ds:read(retort.tensor({8}, "i64")):select(1, 1)))
   end)

   it("gives a Loader the batches (shuffled, cropped, flipped, normalised, limited) of PIL's pixels", function()
      if not need() then return end
      local ds = data.imageFolder{root = root .. "/resize", size = {resize.h, resize.w}}
      local mem = data.tensorDataset(ref("resize_3"), retort.tensor(resize.labels, "i64"))
      local inmem = data.imageFolder{root = root .. "/resize", size = {resize.h, resize.w}, inMemory = true}
      assert.is_true(core.isTensor(inmem.x))
      assert.are.equal(0, max_diff(inmem.x, mem.x))
      for _, limit in ipairs{0, 5} do
         local o = {batchSize = 3, shuffle = true, seed = 9, augment = {crop = 3, flip = true}, limit = limit,
                    normalize = {mean = {0.5, 0.4, 0.3}, std = {0.2, 0.25, 0.3}}}
         local a, b, c = data.Loader(ds, o), data.Loader(mem, o), data.Loader(inmem, o)
         assert.are.equal(limit > 0 and limit or 8, a.n)
         for epoch = 1, 2 do
            local itb, itc, n = b:batches(epoch), c:batches(epoch), 0
            for xa, ya, ia in a:batches(epoch) do
               local xb, yb, ib = itb()
               local xc = itc()
               n = n + xa:size(1)
               assert.are.equal("f32", xa:dtype())
               assert.are.same(ib:totable(), ia:totable())
               assert.are.same(yb:totable(), ya:totable())
               assert.are.equal(0, (xa - xb):abs():max():item())
               assert.are.equal(0, (xa - xc):abs():max():item())
            end
            assert.are.equal(a.n, n)
         end
         -- the fingerprint is that of the pixels and labels: the same over the files, in memory, and PIL's
         assert.are.equal(b:fingerprint(), a:fingerprint())
         assert.are.equal(b:fingerprint(), c:fingerprint())
      end
      local n = ds:size()
      assert.are.equal(core.fingerprint(mem.x, mem.y), ds:fingerprint())
      assert.are.equal(core.fingerprint(mem.x:narrow(1, 1, 3), mem.y:narrow(1, 1, 3)), ds:fingerprint(3))
      assert.are_not.equal(ds:fingerprint(), data.imageFolder{root = root .. "/resize", size = {resize.h, resize.w + 1}}
         :fingerprint())
      assert.has_error(function() ds:fingerprint(n + 1) end)
   end)

   it("feeds a soft-target cache that opens over the same pixels and refuses other ones", function()
      if not need() then return end
      local dir = support.tmpdir()
      assert(core.mkdir(dir))
      local ds = data.imageFolder{root = root .. "/resize", size = {resize.h, resize.w}}
      local o = {batchSize = 3, shuffle = true, seed = 2, augment = {crop = 2, flip = true}, views = 2,
                 normalize = {mean = 0.5, std = 0.25}}
      local loader = data.Loader(ds, o)
      local state = retort.getRngState()
      retort.manualSeed(3)
      local teacher = nn.Sequential():add("flatten", nn.Flatten()):add("fc", nn.Linear(3 * resize.h * resize.w, 3))
      retort.setRngState(state)
      local path = dir .. "/t.h5"
      local c = retort.cache.build{teacher = teacher, data = loader, path = path, quiet = true, blockRows = 3}
      assert.are.equal(8, c.numExamples)
      -- the stored logits are the teacher's on the batches the loader gives
      teacher:evaluate()
      local all = retort.arange(1, 8, "i64")
      for e = 1, 2 do
         local live = retort.noGrad(function() return teacher:forward(loader:gather(all, e)) end)
         assert.is_true((c:teacherLogits(all, e) - live):abs():max():item() < 1e-5)
      end
      -- opens over PIL's pixels in memory (same fingerprint), and over the folder with inMemory
      local mem = data.tensorDataset(ref("resize_3"), retort.tensor(resize.labels, "i64"))
      retort.cache.open(path, {loader = data.Loader(mem, o), teacher = teacher})
      retort.cache.open(path, {loader = data.Loader(data.imageFolder{root = root .. "/resize",
         size = {resize.h, resize.w}, inMemory = true}, o), teacher = teacher})
      -- refused over the same files at another size
      local other = data.Loader(data.imageFolder{root = root .. "/resize", size = {resize.h, resize.w - 1}}, o)
      local ok, err = pcall(retort.cache.open, path, {loader = other, teacher = teacher})
      assert.is_false(ok)
      assert.matches("built for another dataset (dataset fingerprint", err, 1, true)
      support.rmrf(dir)
   end)

   describe("malformed files", function()
      it("a read that meets one is an error naming the file and what is wrong with it", function()
         if not need() then return end
         local ds = data.imageFolder{root = root .. "/bad", size = {12, 10}}
         assert.are.same({"one/a_good.png", "one/b_good.jpg", "one/c_truncated.png", "one/d_truncated.jpg",
                          "two/a_good.png", "two/b_garbage.jpg", "two/c_empty.png", "two/d_gif_named_png.png"},
                         ds.files)
         assert.are.same({3, 3, 12, 10}, ds:read(retort.tensor({1, 2, 5}, "i64")):shape())
         local cases = {
            {3, "one/c_truncated.png: truncated PNG: the file ends after"},
            {4, "one/d_truncated.jpg: truncated JPEG: the data ends after"},
            {6, "two/b_garbage.jpg: not a PNG or JPEG image (its 108 bytes start with 74 68 69 73"},
            {7, "two/c_empty.png: empty file (0 bytes), expected a PNG or JPEG image"},
            {8, "two/d_gif_named_png.png: not a PNG or JPEG image (it looks like a GIF image)"},
         }
         for _, case in ipairs(cases) do
            local ok, err = pcall(ds.read, ds, retort.tensor({1, case[1], 2}, "i64"))
            assert.is_false(ok)
            assert.matches(root .. "/bad/" .. case[2], err, 1, true)
            local ok2, err2 = pcall(ds.get, ds, case[1])
            assert.is_false(ok2)
            assert.matches(case[2], err2, 1, true)
         end
         -- several bad files in one read: the first (in the order asked) is named
         local ok, err = pcall(ds.read, ds, retort.tensor({1, 7, 3}, "i64"))
         assert.is_false(ok)
         assert.matches("c_empty.png", err, 1, true)
         -- inMemory decodes everything at construction: the first bad file stops it
         local ok3, err3 = pcall(data.imageFolder, {root = root .. "/bad", size = {12, 10}, inMemory = true})
         assert.is_false(ok3)
         assert.matches("one/c_truncated.png: truncated PNG", err3, 1, true)
      end)

      it("skipBad probes every file at construction, drops the bad ones and warns once on stderr", function()
         if not need() then return end
         local script = support.tmpfile(([[
local retort = require("retort")
local data = retort.data
for _, mem in ipairs{false, true} do
   local ds = data.imageFolder{root = %q, size = {12, 10}, skipBad = true, inMemory = mem}
   print(table.concat(ds.files, ","), table.concat(ds.y:totable(), ","), table.concat(ds.skipped, ","),
         table.concat(ds.shape, "x"), ds:read(retort.arange(1, 3, "i64")):size(1), ds.x ~= nil)
end
]]):format(root .. "/bad"), ".lua")
         local r = support.run({script})
         os.remove(script)
         assert.are.equal(0, r.status, r.stderr)
         local want = "one/a_good.png,one/b_good.jpg,two/a_good.png\t1,1,2\t"
            .. "one/c_truncated.png,one/d_truncated.jpg,two/b_garbage.jpg,two/c_empty.png,two/d_gif_named_png.png\t"
            .. "3x3x12x10\t3\t"
         assert.are.equal(want .. "false\n" .. want .. "true\n", r.stdout)
         -- one warning line per dataset: the count and the first names with their reasons
         local lines = {}
         for l in r.stderr:gmatch("[^\n]+") do lines[#lines + 1] = l end
         assert.are.equal(2, #lines, r.stderr)
         assert.matches("^imageFolder: skipped 5 of 8 files under .-/bad that could not be decoded: "
            .. "one/c_truncated.png %(truncated PNG: the file ends after %d+ bytes, before the image is complete%), "
            .. "one/d_truncated.jpg %(truncated JPEG", lines[1])
         assert.matches("two/c_empty.png (empty file", lines[1], 1, true)
         -- the skipped pixels are not in the fingerprint: it equals the good files' own
         local ds = data.imageFolder{root = root .. "/bad", size = {12, 10}}
         local good = ds:read(retort.tensor({1, 2, 5}, "i64"))
         local quiet = support.run({"-e", ([[
local d = require("retort").data.imageFolder{root = %q, size = {12, 10}, skipBad = true}
io.write(d:fingerprint())]]):format(root .. "/bad")})
         assert.are.equal(core.fingerprint(good, retort.tensor({1, 1, 2}, "i64")), quiet.stdout)
      end)

      it("files of another image format are refused by name, unless skipBad", function()
         if not need() then return end
         local ok, err = pcall(data.imageFolder, {root = root .. "/unsupported", size = 8})
         assert.is_false(ok)
         assert.matches("2 files under .-/unsupported are in an image format retort does not decode %(PNG and JPEG "
            .. "only%): one/b%.gif, one/c%.bmp; convert them, or pass skipBad = true", err)
         local r = support.run({"-e", ([[
local d = require("retort").data.imageFolder{root = %q, size = 8, skipBad = true}
print(table.concat(d.files, ","), table.concat(d.skipped, ","))]]):format(root .. "/unsupported")})
         assert.are.equal(0, r.status, r.stderr)
         assert.are.equal("one/a.png,two/a.jpg\tone/b.gif,one/c.bmp\n", r.stdout)
         assert.matches("skipped 2 of 4 files", r.stderr, 1, true)
      end)
   end)

   describe("refuses", function()
      local function refused(opts, want)
         local ok, err = pcall(data.imageFolder, opts)
         assert.is_false(ok)
         assert.matches(want, err, 1, true)
      end

      it("a missing or empty root, a root without class folders, classes without images", function()
         if not need() then return end
         refused({root = root .. "/nowhere", size = 8}, "imageFolder: cannot list " .. root .. "/nowhere: No such file")
         refused({root = root .. "/empty", size = 8}, root .. "/empty has no class folders (expected "
            .. root .. "/empty/<class>/<image>, one folder per class; it is empty)")
         refused({root = root .. "/bad/one", size = 8}, "has no class folders")
         refused({root = root .. "/bad/one", size = 8}, "it holds 4 files outside any folder, e.g. a_good.png")
         refused({root = root .. "/noimages", size = 8}, "2 of the 3 class folders under " .. root
            .. "/noimages hold no .png/.jpg/.jpeg image: docs (1 other files, e.g. readme.txt), void (empty)")
         local r = support.run({"-e", ([[require("retort").data.imageFolder{root = %q, size = 8, skipBad = true}]])
            :format(root .. "/allbad")})
         assert.are_not.equal(0, r.status)
         assert.matches("after skipping bad files, 1 classes under .-/allbad have no image left: broken", r.stderr)
      end)

      it("bad options, each with a message that says what is expected", function()
         if not need() then return end
         local dir = root .. "/resize"
         refused({root = dir}, "size must be {H, W} (two integers >= 1, the size every image is resized to) or one "
            .. "integer, got nil")
         refused({root = dir, size = {0, 4}}, "got {0, 4}")
         refused({root = dir, size = {4, 4, 4}}, "got {4, 4, 4}")
         refused({root = dir, size = {4.5, 4}}, "size must be {H, W}")
         refused({root = dir, size = {20000, 9000}},
                 "size {20000, 9000} is more than the 178956970 pixels an image may have")
         refused({root = dir, size = 4, channels = 2}, "channels must be 1 (grey) or 3 (RGB), got 2")
         refused({size = 4}, "root (the folder of class folders) is required")
         refused({root = dir, size = 4, chanels = 1}, "unknown option 'chanels'")
         refused({root = dir, size = 4, chanels = 1}, "did you mean 'channels'?")
         local ok, err = pcall(data.imageFolder, "dir")
         assert.is_false(ok); assert.matches("bad argument #1 (table of options expected, got string)", err, 1, true)
         local ds = data.imageFolder{root = dir, size = 4}
         assert.has_error(function() ds:get(0) end, ds.name .. ":get: index 0 out of range 1..8")
         ok, err = pcall(ds.read, ds, retort.tensor({9}, "i64"))
         assert.is_false(ok); assert.matches("index 9 out of range 1..8", err, 1, true)
         ok, err = pcall(ds.read, ds, {1})
         assert.is_false(ok); assert.matches("a 1-D i64 tensor of indices expected", err, 1, true)
      end)

      it("core.decodeImages' arguments and core.decodeImage on a missing file", function()
         if not need() then return end
         local p = root .. "/resize/a/same.png"
         local function fails(f, want, ...)
            local ok, err = pcall(f, ...)
            assert.is_false(ok)
            assert.matches(want, err, 1, true)
         end
         fails(core.decodeImages, "(path 2 is a number, a string expected)", {p, 3}, 4, 4, 3)
         fails(core.decodeImages, "height must be >= 1", {p}, 0, 4, 3)
         fails(core.decodeImages, "channels must be 1 or 3, got 4", {p}, 4, 4, 4)
         fails(core.decodeImage, "image_decode: cannot open " .. root .. "/missing.png: No such file or directory",
               root .. "/missing.png")
         fails(core.decodeImage, "is not a regular file", root)
         assert.are.same({0, 3, 4, 5}, core.decodeImages({}, 4, 5, 3):shape())
         local x, report = core.decodeImages({p, root .. "/missing.png", p}, 4, 5, 1, true)
         assert.are.same({3, 1, 4, 5}, x:shape())
         assert.are.equal(1, report.count)
         assert.are.same({2}, report.indices)
         assert.matches("cannot open " .. root .. "/missing.png", report.messages[1], 1, true)
         assert.are.equal(0, x:select(1, 2):sum():item())
      end)
   end)
end)
