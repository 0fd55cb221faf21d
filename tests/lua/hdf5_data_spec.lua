-- retort.data.hdf5: files written at test time by h5py (/usr/bin/python3): u8 / f32 / f64 / f16
-- images, NCHW and NHWC, chunked+compressed and contiguous, grey (N,H,W) and vector (N,D) data,
-- labels of several integer types. Every read is checked element for element against the
-- arrays' raw little-endian bytes, which Python writes beside the file and this spec decodes
-- itself (string.unpack), through a naive index loop for the layouts; the streamed fingerprint
-- against core.fingerprint of the same data in memory; a Loader with shuffle, augment, normalize
-- and limit; a soft-target cache built over it and reopened (on demand and in memory); and every
-- refusal (missing dataset, rank, dtypes, labels, lengths, external and virtual storage, files
-- that are not HDF5 or are truncated). Skipped with a message when h5py is missing.
local retort = require "retort"
local core = retort.core
local data = retort.data
local nn = retort.nn
local support = require "support"

local have_h5py = support.python_has("h5py, numpy")
local H5PY_MISSING = "h5py is not installed for /usr/bin/python3 (Debian package python3-h5py)"

local N, C, H, W = 20, 3, 6, 5

local FIXTURES = [==[
import os, sys
import numpy as np, h5py
d = sys.argv[1]
N, C, H, W = 20, 3, 6, 5
rng = np.random.default_rng(11)
def P(name): return os.path.join(d, name)
def raw(name, a):
    with open(P(name + ".bin"), "wb") as f:
        f.write(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())
y = rng.integers(0, 6, N); y[2] = 5
raw("y", y.astype("<i8"))
x_u8 = rng.integers(0, 256, (N, C, H, W), dtype=np.uint8)
with h5py.File(P("u8.h5"), "w") as f:       # chunked (3 rows) and compressed, NCHW, int64 labels
    f.create_dataset("images", data=x_u8, chunks=(3, C, H, W), compression="gzip", shuffle=True)
    f.create_dataset("labels", data=y.astype(np.int64))
raw("u8", x_u8)
x_nhwc = rng.standard_normal((N, H, W, C)).astype("<f4")
with h5py.File(P("f32_nhwc.h5"), "w") as f: # chunked NHWC in a group, int32 labels, chunked too
    f.create_dataset("data/x", data=x_nhwc, chunks=(2, H, W, C), compression="lzf")
    f.create_dataset("data/y", data=y.astype(np.int32), chunks=(4,))
raw("f32_nhwc", x_nhwc)
x_f64 = rng.standard_normal((N, C, H, W))
with h5py.File(P("f64.h5"), "w") as f:      # contiguous, uint8 labels
    f["images"] = x_f64
    f["labels"] = y.astype(np.uint8)
raw("f64", x_f64)
x_f16 = rng.standard_normal((N, C, H, W)).astype(np.float16)
with h5py.File(P("f16.h5"), "w") as f:      # float16 (read as f32), big-endian int16 labels
    f["images"] = x_f16
    f["labels"] = y.astype(">i2")
raw("f16", x_f16.astype(np.float32))
x_nhw = rng.integers(0, 256, (N, H, W), dtype=np.uint8)
with h5py.File(P("nhw.h5"), "w") as f:      # grey images, chunks of 7 rows, uint16 labels
    f.create_dataset("images", data=x_nhw, chunks=(7, H, W))
    f["labels"] = y.astype(np.uint16)
raw("nhw", x_nhw)
x_vec = rng.standard_normal((N, 7)).astype("<f4")
with h5py.File(P("vec.h5"), "w") as f:
    f["x"] = x_vec
    f["y"] = y
raw("vec", x_vec)
with h5py.File(P("bad.h5"), "w") as f:
    f["images"] = x_u8
    f["labels"] = y
    f["short_labels"] = y[:N - 1]
    f["float_labels"] = y.astype(np.float32)
    f["labels_2d"] = y.reshape(N, 1)
    yn = y.copy(); yn[4] = -1
    f["negative_labels"] = yn
    yb = y.copy(); yb[8] = 2**31
    f["big_labels"] = yb
    f["i16_images"] = x_u8.astype(np.int16)
    f["string_images"] = np.array([b"abc"] * N)
    f.create_group("group")
    with open(P("external.raw"), "wb") as e:
        e.write(x_u8.tobytes())
    f.create_dataset("external", shape=x_u8.shape, dtype=np.uint8, external=[(P("external.raw"), 0, x_u8.nbytes)])
    layout = h5py.VirtualLayout(shape=x_u8.shape, dtype=np.uint8)
    layout[:] = h5py.VirtualSource(P("u8.h5"), "images", shape=x_u8.shape)
    f.create_virtual_dataset("virtual", layout)
with open(P("u8.h5"), "rb") as f:
    whole = f.read()
with open(P("truncated.h5"), "wb") as f:
    f.write(whole[: len(whole) // 2])
with open(P("text.h5"), "w") as f:
    f.write("not an HDF5 file\n")
]==]

local UNPACK = {u8 = {"B", 1}, f32 = {"<f", 4}, f64 = {"<d", 8}, i64 = {"<i8", 8}}

-- the values of a .bin file of element type t, decoded here (independently of HDF5)
local function raw(path, t)
   local s = support.slurp(path)
   local fmt, size = UNPACK[t][1], UNPACK[t][2]
   local out = {}
   for k = 1, #s // size do out[k] = (string.unpack(fmt, s, (k - 1) * size + 1)) end
   return out
end

local function flat(t) return t:contiguous():view(t:numel()):totable() end

-- element (n, c, h, w) (1-based, NCHW) of the raw values of an array stored in `layout`
local function raw_at(r, layout, n, c, h, w, ch, hh, ww)
   if layout == "NHWC" then return r[(((n - 1) * hh + h - 1) * ww + w - 1) * ch + c] end
   if layout == "NHW" then return r[((n - 1) * hh + h - 1) * ww + w] end
   return r[(((n - 1) * ch + c - 1) * hh + h - 1) * ww + w]
end

-- counts the elements of x (B, C, H, W) whose value differs from the raw file's rows idx
local function mismatches(x, idx, r, layout)
   local xs, bad = x:totable(), 0
   local ch, hh, ww = x:size(2), x:size(3), x:size(4)
   for b, n in ipairs(idx) do
      for c = 1, ch do for h = 1, hh do for w = 1, ww do
         if xs[b][c][h][w] ~= raw_at(r, layout, n, c, h, w, ch, hh, ww) then bad = bad + 1 end
      end end end
   end
   return bad
end

-- the in-memory tensor (N, C, H, W) a raw file holds, built from the raw values by the naive loop
local function reference(r, layout, dtype, ch)
   local vals = {}
   for n = 1, N do for c = 1, ch do for h = 1, H do for w = 1, W do
      vals[#vals + 1] = raw_at(r, layout, n, c, h, w, ch, H, W)
   end end end end
   return core.tensor(vals, dtype):view(N, ch, H, W)
end

describe("retort.data.hdf5", function()
   local dir, labels
   local function P(name) return dir .. "/" .. name end

   setup(function()
      if not have_h5py then return end
      dir = support.python_fixtures(FIXTURES)
      labels = raw(P("y.bin"), "i64")
      for k = 1, #labels do labels[k] = labels[k] + 1 end
   end)
   teardown(function() if dir then support.rmrf(dir) end end)

   local CASES = {
      {file = "u8.h5", bin = "u8", t = "u8", dtype = "u8", ch = C},
      {file = "f32_nhwc.h5", bin = "f32_nhwc", t = "f32", dtype = "f32", layout = "NHWC", x = "/data/x", y = "/data/y",
       ch = C},
      {file = "f64.h5", bin = "f64", t = "f64", dtype = "f64", layout = "NCHW", ch = C},
      {file = "f16.h5", bin = "f16", t = "f32", dtype = "f32", ch = C},
      {file = "nhw.h5", bin = "nhw", t = "u8", dtype = "u8", layout = "NHW", ch = 1},
   }
   local function open(case, extra)
      local o = {path = P(case.file), x = case.x, y = case.y, layout = case.layout}
      for k, v in pairs(extra or {}) do o[k] = v end
      return data.hdf5(o)
   end

   it("reads rows in any order, with repeats, element for element (u8/f32/f64/f16; NCHW, NHWC, NHW; chunked or not)",
      function()
      if not have_h5py then return pending(H5PY_MISSING) end
      local idx = {7, 3, 3, 20, 1, 2, 4, 12, 13, 14, 7}
      for _, case in ipairs(CASES) do
         local ds = open(case)
         assert.are.same({N, case.ch, H, W}, ds.shape, case.file)
         assert.are.equal(case.dtype, ds.dtype, case.file)
         assert.is_nil(ds.x) -- read on demand: only the labels are held
         assert.are.equal(N, ds:size()); assert.are.equal(N, #ds)
         assert.are.same(labels, ds.y:totable(), case.file)
         assert.are.equal(6, ds.numClasses)
         local r = raw(P(case.bin .. ".bin"), case.t)
         local x = ds:read(core.tensor(idx, "i64"))
         assert.are.same({#idx, case.ch, H, W}, x:shape())
         assert.are.equal(case.dtype, x:dtype())
         assert.is_true(x:isContiguous())
         assert.are.equal(0, mismatches(x, idx, r, case.layout), case.file)
         -- every row, in order, and one row through get
         local every = core.arange(1, N, "i64")
         assert.are.equal(0, mismatches(ds:read(every), every:totable(), r, case.layout))
         local xi, yi = ds:get(13)
         assert.are.same({case.ch, H, W}, xi:shape())
         assert.are.equal(0, mismatches(xi:view(1, case.ch, H, W), {13}, r, case.layout))
         assert.are.equal(labels[13], yi)
         assert.are.equal(0, ds:read(core.zeros(0, "i64")):size(1))
         ds:close()
      end
   end)

   it("reads 2-D (N, D) data as vectors", function()
      if not have_h5py then return pending(H5PY_MISSING) end
      for _, layout in ipairs{"NC", false} do
         local ds = data.hdf5{path = P("vec.h5"), x = "/x", y = "/y", layout = layout or nil}
         assert.are.same({N, 7}, ds.shape)
         local r = raw(P("vec.bin"), "f32")
         local got = flat(ds:read(core.tensor({5, 1}, "i64")))
         for d = 1, 7 do
            assert.are.equal(r[4 * 7 + d], got[d]); assert.are.equal(r[d], got[7 + d])
         end
      end
   end)

   it("fingerprints the first n examples as core.fingerprint(x, y) of the same data in memory (inMemory = true)",
      function()
      if not have_h5py then return pending(H5PY_MISSING) end
      for _, case in ipairs(CASES) do
         local ds = open(case)
         local ref = reference(raw(P(case.bin .. ".bin"), case.t), case.layout, case.dtype, case.ch)
         local y = core.tensor(labels, "i64")
         assert.are.equal(core.fingerprint(ref, y), ds:fingerprint(), case.file)
         assert.are.equal(core.fingerprint(ref:narrow(1, 1, 7), y:narrow(1, 1, 7)), ds:fingerprint(7), case.file)
         ds.fingerprintBlockBytes = 100 -- a block of one row (or of whole chunks): the same hash
         assert.are.equal(core.fingerprint(ref, y), ds:fingerprint(), case.file)
         assert.are.equal(core.fingerprint(ref:narrow(1, 1, 0), y:narrow(1, 1, 0)), ds:fingerprint(0), case.file)
         local mem = open(case, {inMemory = true})
         assert.are.equal(0, (mem.x:double() - ref:double()):abs():max():item())
         assert.are.equal(case.dtype, mem.x:dtype())
         assert.are.same(labels, mem.y:totable())
         assert.are.equal(ds:fingerprint(), data.Loader(mem):fingerprint())
         assert.are.equal(ds:fingerprint(7), data.Loader(ds, {limit = 7}):fingerprint())
      end
   end)

   it("goes through a Loader (shuffle, augment, normalize, limit) exactly as the same data in memory", function()
      if not have_h5py then return pending(H5PY_MISSING) end
      local case = CASES[2] -- f32 NHWC
      local ds = open(case)
      local ref = data.tensorDataset(reference(raw(P(case.bin .. ".bin"), "f32"), "NHWC", "f32", C),
                                     core.tensor(labels, "i64"))
      local o = {batchSize = 6, shuffle = true, seed = 5, augment = {crop = 2, flip = true}, limit = 15,
                 normalize = {mean = {0.1, 0.0, -0.1}, std = {1.1, 0.9, 1.0}}}
      local a, b = data.Loader(ds, o), data.Loader(ref, o)
      assert.are.equal(15, a.n); assert.are.equal(3, a:numBatches())
      for epoch = 1, 2 do
         local it, seen = b:batches(epoch), {}
         for xa, ya, ia in a:batches(epoch) do
            local xb, yb, ib = it()
            assert.are.same(ib:totable(), ia:totable()); assert.are.same(yb:totable(), ya:totable())
            assert.are.equal(0, (xa - xb):abs():max():item())
            for _, i in ipairs(ia:totable()) do seen[#seen + 1] = i end
         end
         table.sort(seen)
         assert.are.same(core.arange(1, 15, "i64"):totable(), seen)
      end
      assert.are.equal(b:fingerprint(), a:fingerprint())
      -- without augmentation the batch is (x - mean) / std of the file's values, u8 scaled by 1/255
      local u = open(CASES[1])
      local r = raw(P("u8.bin"), "u8")
      local l = data.Loader(u, {batchSize = 8, shuffle = true, seed = 2, normalize = {mean = 0.5, std = 0.25}})
      local bad = 0
      for x, y, idx in l:batches() do
         local xs, ys = x:totable(), y:totable()
         for k, n in ipairs(idx:totable()) do
            if ys[k] ~= labels[n] then bad = bad + 1 end
            for c = 1, C do for h = 1, H do for w = 1, W do
               local want = (raw_at(r, "NCHW", n, c, h, w, C, H, W) / 255 - 0.5) / 0.25
               if math.abs(xs[k][c][h][w] - want) > 1e-5 then bad = bad + 1 end
            end end end
         end
      end
      assert.are.equal(0, bad)
   end)

   it("builds a soft-target cache over the on-demand loader, which reopens on demand and in memory", function()
      if not have_h5py then return pending(H5PY_MISSING) end
      local state = retort.getRngState()
      retort.manualSeed(5)
      local teacher = nn.Sequential():add("flatten", nn.Flatten()):add("fc", nn.Linear(C * H * W, 6))
      retort.setRngState(state)
      local o = {batchSize = 7, shuffle = true, seed = 4, views = 2, augment = {crop = 1, flip = true},
                 normalize = {mean = 0.4, std = 0.3}}
      local loader = data.Loader(open(CASES[1]), o)
      local path = P("cache.h5")
      local c = retort.cache.build{teacher = teacher, data = loader, path = path, blockRows = 8, batchSize = 5,
                                   quiet = true}
      assert.are.equal(N, c.numExamples); assert.are.equal(2, c.views)
      local idx = core.tensor({3, 20, 1, 3}, "i64")
      for e = 1, 3 do
         local live = retort.noGrad(function() return teacher:forward(loader:gather(idx, e)) end)
         assert.is_true((c:teacherLogits(idx, e) - live):abs():max():item() < 1e-5)
      end
      local f = core.h5Open(path)
      assert.are.equal(loader:fingerprint(), f:getAttr("/", "dataset_fingerprint"))
      f:abort()
      -- reopened with a fresh on-demand loader, and with the same data loaded whole
      retort.cache.open(path, {loader = data.Loader(open(CASES[1]), o), teacher = teacher})
      retort.cache.open(path, {loader = data.Loader(open(CASES[1], {inMemory = true}), o)})
      -- other images of the same size and labels: refused
      local other = data.Loader(data.hdf5{path = P("f64.h5")}, o)
      local ok, err = pcall(retort.cache.open, path, {loader = other})
      assert.is_false(ok)
      assert.matches("built for another dataset", err, 1, true)
   end)

   it("builds fingerprints piece by piece (core.fingerprinter) equal to core.fingerprint of the whole", function()
      local x = core.randn(9, 2, 3):transpose(2, 3) -- not contiguous
      local y, tag = core.tensor({3, 1, 2}, "i64"), "tag"
      local want = core.fingerprint(x, y, tag)
      for _, k in ipairs{0, 1, 4, 9} do
         local fp = core.fingerprinter():header(x:dtype(), x:shape())
         if k > 0 then fp:data(x:narrow(1, 1, k)) end
         if k < 9 then fp:data(x:narrow(1, k + 1, 9 - k)) end
         assert.are.equal(want, fp:add(y, tag):hex())
      end
      assert.are.equal(core.fingerprint(y), tostring(core.fingerprinter():add(y)))
      assert.are_not.equal(want, core.fingerprinter():header("f64", x:shape()):data(x):add(y, tag):hex())
      assert.has_error(function() core.fingerprinter():add({}) end,
                       "bad argument #1 to 'add' (tensor or string expected, got table)")
   end)

   local function refused(o, ...)
      local ok, err = pcall(data.hdf5, o)
      assert.is_false(ok, "expected an error")
      for _, want in ipairs{...} do assert.matches(want, err, 1, true) end
      return err
   end

   it("refuses missing datasets, wrong ranks, unsupported dtypes and bad labels, naming the file and dataset",
      function()
      if not have_h5py then return pending(H5PY_MISSING) end
      local bad = P("bad.h5")
      refused({path = bad, x = "/pixels"},
              "hdf5: " .. bad .. " has no dataset /pixels (option x; the file's root holds "
              .. "/big_labels, /external, /float_labels, /group, /i16_images, /images, /labels")
      refused({path = P("u8.h5"), y = "/targets"},
              "has no dataset /targets (option y; the file's root holds /images, /labels)")
      refused({path = bad, x = "/group"}, "/group in " .. bad .. " is a group, not a dataset (option x)")
      refused({path = bad, layout = "NHW"},
              "/images in " .. bad .. " has shape (20,3,6,5) (4 dims); layout NHW expects 3 dims (N, H, W)")
      refused({path = P("vec.h5"), x = "/x", y = "/y", layout = "NHWC"},
              "/x in " .. P("vec.h5") .. " has shape (20,7) (2 dims); layout NHWC expects 4 dims")
      refused({path = bad, x = "/i16_images"},
              "/i16_images in " .. bad .. " holds int16 values; expected uint8, float32 or float64 inputs")
      refused({path = bad, x = "/string_images"}, "/string_images in " .. bad .. " holds string values")
      refused({path = bad, y = "/float_labels"},
              "/float_labels in " .. bad .. " holds float32 values; labels must be integers")
      refused({path = bad, y = "/labels_2d"}, "/labels_2d in " .. bad .. " has shape (20,1); labels must be 1-D")
      refused({path = bad, y = "/short_labels"},
              "/images in " .. bad .. " has 20 examples but /short_labels has 19 labels")
      refused({path = bad, y = "/negative_labels"},
              "/negative_labels in " .. bad .. " has a negative label -1 (example 5)")
      refused({path = bad, y = "/big_labels"},
              "/big_labels in " .. bad .. " has a label 2147483648 (example 9); labels must be 0-based class ids "
              .. "below 2^31")
      refused({path = bad, numClasses = 5}, "/labels in " .. bad .. " has a label 5 (example 3), but numClasses is 5")
   end)

   it("refuses data stored outside the file (external raw files, virtual datasets)", function()
      if not have_h5py then return pending(H5PY_MISSING) end
      local bad = P("bad.h5")
      refused({path = bad, x = "/external"},
              "/external in " .. bad .. " keeps its data in 1 external file(s); retort reads only data stored inside "
              .. "the HDF5 file")
      refused({path = bad, x = "/virtual"},
              "/virtual in " .. bad .. " is a virtual dataset (its data lives in other files)")
   end)

   it("refuses files that are missing, not HDF5 or truncated, and checks its options", function()
      if not have_h5py then return pending(H5PY_MISSING) end
      refused({path = P("missing.h5")}, "hdf5: h5_open: cannot open " .. P("missing.h5"))
      refused({path = P("text.h5")}, "hdf5: h5_open: " .. P("text.h5") .. " is not an HDF5 file")
      refused({path = P("truncated.h5")},
              "hdf5: h5_open: cannot read " .. P("truncated.h5") .. ": truncated or corrupt HDF5 file")
      assert.has_error(function() data.hdf5{path = P("u8.h5"), shuffle = true} end,
                       "hdf5: unknown option 'shuffle' (known: inMemory, layout, numClasses, path, x, y)")
      assert.has_error(function() data.hdf5{} end, "hdf5: option 'path' must be the path of an HDF5 file, got nil")
      assert.has_error(function() data.hdf5{path = P("u8.h5"), x = "images"} end,
                       "hdf5: option 'x' must be the absolute name of a dataset in the file (e.g. \"/images\"), "
                       .. "got images")
      assert.has_error(function() data.hdf5{path = P("u8.h5"), layout = "CHW"} end,
                       "hdf5: layout must be \"NCHW\", \"NHWC\", \"NHW\" or \"NC\" (or nil: as stored), got \"CHW\"")
      local ds = data.hdf5{path = P("u8.h5")}
      assert.has_error(function() ds:read(core.tensor({21}, "i64")) end)
      assert.has_error(function() ds:read(core.tensor({1.0})) end,
                       "hdf5(u8.h5:/images):read: bad argument #1 (a 1-D i64 tensor of example indices expected)")
      assert.has_error(function() ds:get(0) end, "hdf5(u8.h5:/images):get: index 0 out of range 1..20")
      assert.has_error(function() ds:fingerprint(21) end,
                       "hdf5(u8.h5:/images):fingerprint: n must be an integer in 0..20, got 21")
      ds:close()
      assert.has_error(function() ds:read(core.tensor({1}, "i64")) end,
                       "hdf5(u8.h5:/images):read: the dataset was closed")
   end)
end)
