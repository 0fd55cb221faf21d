-- retort.data.npy: .npy files written at test time by numpy (/usr/bin/python3), in every dtype
-- retort reads and both header versions (numpy.lib.format.write_array version (1,0) and (2,0)),
-- checked element for element against the same arrays' raw little-endian bytes (which Python
-- writes beside them and this spec decodes itself with string.unpack) and against the sums numpy
-- printed; NHWC/NHW layouts against a naive index loop; a Loader with shuffle, augment, normalize
-- and limit; and every malformed file (each a clear error that names the file). Skipped with a
-- message when numpy is missing.
local retort = require "retort"
local core = retort.core
local data = retort.data
local support = require "support"

local have_numpy = support.python_has("numpy")
local NUMPY_MISSING = "numpy is not installed for /usr/bin/python3 (Debian package python3-numpy)"

-- The fixtures: every array as name.npy plus name.bin (raw C-order little-endian bytes); the
-- manifest lists name, dims and numpy's float64 sum.
local FIXTURES = [==[
import os, sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
N, C, H, W = 12, 3, 5, 4
manifest = []
def save(name, a, version=None):
    with open(os.path.join(d, name + ".npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=version)
    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
    with open(os.path.join(d, name + ".bin"), "wb") as f:
        f.write(le.tobytes())
    dims = " ".join(str(s) for s in (a.ndim,) + a.shape)
    manifest.append("%s %s %r" % (name, dims, float(a.astype(np.float64).sum())))
xs = {
    "u8": rng.integers(0, 256, (N, C, H, W), dtype=np.uint8),
    "f32": rng.standard_normal((N, C, H, W)).astype("<f4"),
    "f64": rng.standard_normal((N, C, H, W)).astype("<f8"),
    "i64": rng.integers(-2**40, 2**40, (N, C, H, W)).astype("<i8"),
}
for v in (1, 2):
    for k, a in xs.items():
        save("x_%s_v%d" % (k, v), a, (v, 0))
y = rng.integers(0, 5, N)
y[3] = 4
for k, t in (("i64", "<i8"), ("u8", "|u1"), ("i32", "<i4"), ("u16", "<u2")):
    save("y_%s" % k, y.astype(t), (2, 0) if k == "i32" else None)
save("x_nhwc", rng.integers(0, 256, (N, H, W, C), dtype=np.uint8))
save("x_nhw", rng.standard_normal((N, H, W)).astype("<f4"))
save("x_vec", rng.standard_normal((N, 7)).astype("<f4"))
# malformed or refused files
np.save(os.path.join(d, "fortran.npy"), np.asfortranarray(rng.random((N, 6)).astype("<f4")))
np.save(os.path.join(d, "bigendian.npy"), np.arange(N * 2, dtype=">f4").reshape(N, 2))
np.save(os.path.join(d, "complex.npy"), np.arange(N).astype(np.complex64))
np.save(os.path.join(d, "y_float.npy"), y.astype(np.float32))
np.save(os.path.join(d, "y_bool.npy"), y > 2)
yn = y.copy(); yn[5] = -1
np.save(os.path.join(d, "y_negative.npy"), yn)
yb = y.copy(); yb[6] = 2**31
np.save(os.path.join(d, "y_big.npy"), yb)
yu = y.astype("<u8"); yu[7] = 2**64 - 1
np.save(os.path.join(d, "y_u64max.npy"), yu)
np.save(os.path.join(d, "y_2d.npy"), y.reshape(N, 1))
np.save(os.path.join(d, "y_short.npy"), y[:N - 1])
np.savez(os.path.join(d, "archive.npz"), x=xs["u8"])
with open(os.path.join(d, "x_u8_v1.npy"), "rb") as f:
    whole = f.read()
with open(os.path.join(d, "truncated.npy"), "wb") as f:
    f.write(whole[:-7])
with open(os.path.join(d, "trailing.npy"), "wb") as f:
    f.write(whole + b"\0\0\0")
hdr = b"{'descr': '<f4', 'fortran_order': False 'shape': (2,), }"
hdr = hdr + b" " * (118 - len(hdr)) + b"\n"
with open(os.path.join(d, "badheader.npy"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + b"\0" * 8)
with open(os.path.join(d, "notnpy.npy"), "wb") as f:
    f.write(b"P5\n4 4\n255\n" + bytes(16))
with open(os.path.join(d, "manifest.txt"), "w") as f:
    f.write("\n".join(manifest) + "\n")
]==]

local UNPACK = {u8 = "B", f32 = "<f", f64 = "<d", i64 = "<i8", u16 = "<I2", i32 = "<i4"}
local SIZE = {u8 = 1, f32 = 4, f64 = 8, i64 = 8, u16 = 2, i32 = 4}

-- the values of a .bin file of element type t, decoded here (independently of the C reader)
local function raw(path, t)
   local s = support.slurp(path)
   local fmt, size, out = UNPACK[t], SIZE[t], {}
   for k = 1, #s // size do out[k] = (string.unpack(fmt, s, (k - 1) * size + 1)) end
   return out
end

local function flat(t) return t:contiguous():view(t:numel()):totable() end

local function same_values(got, want, what)
   assert.are.equal(#want, #got, what .. ": element count")
   local bad = 0
   for k = 1, #want do if got[k] ~= want[k] then bad = bad + 1 end end
   assert.are.equal(0, bad, what .. ": elements that differ")
end

describe("retort.data.npy", function()
   local dir, manifest
   local function P(name) return dir .. "/" .. name end

   setup(function()
      if not have_numpy then return end
      dir = support.python_fixtures(FIXTURES)
      manifest = {}
      for line in support.slurp(P("manifest.txt")):gmatch("[^\n]+") do
         local words = {}
         for w in line:gmatch("%S+") do words[#words + 1] = w end
         local nd = tonumber(words[2])
         local shape = {}
         for i = 1, nd do shape[i] = math.tointeger(tonumber(words[2 + i])) end
         manifest[words[1]] = {shape = shape, sum = tonumber(words[3 + nd])}
      end
   end)
   teardown(function() if dir then support.rmrf(dir) end end)

   local function npy(o)
      local opts = {}
      for k, v in pairs(o) do opts[k] = (k == "x" or k == "y") and P(v) or v end
      return data.npy(opts)
   end

   it("reads u8, f32, f64 and i64 inputs in header versions 1.0 and 2.0, element for element", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      local labels = raw(P("y_i64.bin"), "i64")
      for _, v in ipairs{1, 2} do
         for _, t in ipairs{"u8", "f32", "f64", "i64"} do
            local name = ("x_%s_v%d"):format(t, v)
            local ds = npy{x = name .. ".npy", y = "y_i64.npy"}
            assert.are.equal(t, ds.x:dtype(), name)
            assert.are.same(manifest[name].shape, ds.x:shape())
            same_values(flat(ds.x), raw(P(name .. ".bin"), t), name)
            local sum = manifest[name].sum
            assert.is_true(math.abs(ds.x:double():sum():item() - sum) <= 1e-9 * (1 + math.abs(sum)), name)
            local x, y = ds:get(4)
            assert.are.same(flat(ds.x:select(1, 4)), flat(x))
            assert.are.equal(labels[4] + 1, y)
            assert.are.equal(({u8 = "|u1", f32 = "<f4", f64 = "<f8", i64 = "<i8"})[t], ds.descr.x)
         end
      end
   end)

   it("reads i64, u8, i32 (version 2.0) and u16 labels as i64 classes 1..C; numClasses is the largest + 1", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      local want = raw(P("y_i64.bin"), "i64")
      for k = 1, #want do want[k] = want[k] + 1 end
      for _, t in ipairs{"i64", "u8", "i32", "u16"} do
         local ds = npy{x = "x_u8_v1.npy", y = "y_" .. t .. ".npy"}
         assert.are.equal("i64", ds.y:dtype())
         assert.are.same(want, ds.y:totable(), t)
         assert.are.equal(5, ds.numClasses)
         assert.are.equal(12, ds:size())
      end
      assert.are.equal(9, npy{x = "x_u8_v1.npy", y = "y_i64.npy", numClasses = 9}.numClasses)
      assert.has_error(function() npy{x = "x_u8_v1.npy", y = "y_i64.npy", numClasses = 4} end,
         ("npy: %s has a label 4 (example 4), but numClasses is 4 (labels 0..3)"):format(P("y_i64.npy")))
   end)

   it("transposes NHWC to NCHW and sees NHW as one channel, against a naive index loop", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      local N, H, W, C = 12, 5, 4, 3
      local ds = npy{x = "x_nhwc.npy", y = "y_i64.npy", layout = "NHWC"}
      assert.are.same({N, C, H, W}, ds.x:shape())
      local r, got = raw(P("x_nhwc.bin"), "u8"), flat(ds.x)
      local bad = 0
      for n = 0, N - 1 do for c = 0, C - 1 do for h = 0, H - 1 do for w = 0, W - 1 do
         if got[((n * C + c) * H + h) * W + w + 1] ~= r[((n * H + h) * W + w) * C + c + 1] then bad = bad + 1 end
      end end end end
      assert.are.equal(0, bad)
      local g = npy{x = "x_nhw.npy", y = "y_i64.npy", layout = "NHW"}
      assert.are.same({N, 1, H, W}, g.x:shape())
      same_values(flat(g.x), raw(P("x_nhw.bin"), "f32"), "NHW")
      local v = npy{x = "x_vec.npy", y = "y_i64.npy", layout = "NC"}
      assert.are.same({N, 7}, v.x:shape())
      assert.has_error(function() npy{x = "x_vec.npy", y = "y_i64.npy", layout = "NHWC"} end,
         ("npy: %s has shape (12,7) (2 dims); layout NHWC expects 4 dims (N, H, W, C)"):format(P("x_vec.npy")))
      assert.has_error(function() npy{x = "x_vec.npy", y = "y_i64.npy", layout = "HWC"} end,
         "npy: layout must be \"NCHW\", \"NHWC\", \"NHW\" or \"NC\" (or nil: as stored), got \"HWC\"")
   end)

   it("goes through a Loader: shuffled, normalised per channel, augmented, limited", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      local ds = npy{x = "x_nhwc.npy", y = "y_u8.npy", layout = "NHWC"}
      local r, labels = raw(P("x_nhwc.bin"), "u8"), raw(P("y_i64.bin"), "i64")
      local mean, std = {0.5, 0.4, 0.3}, {0.2, 0.25, 0.3}
      local loader = data.Loader(ds, {batchSize = 5, shuffle = true, seed = 9, normalize = {mean = mean, std = std}})
      local seen, bad = {}, 0
      for x, y, idx in loader:batches(2) do
         local xs, ys, is = x:totable(), y:totable(), idx:totable()
         for b, i in ipairs(is) do
            seen[#seen + 1] = i
            if ys[b] ~= labels[i] + 1 then bad = bad + 1 end
            for c = 1, 3 do for h = 1, 5 do for w = 1, 4 do
               local want = (r[(((i - 1) * 5 + h - 1) * 4 + w - 1) * 3 + c] / 255 - mean[c]) / std[c]
               if math.abs(xs[b][c][h][w] - want) > 1e-5 then bad = bad + 1 end
            end end end
         end
      end
      assert.are.equal(0, bad)
      table.sort(seen)
      assert.are.same(core.arange(1, 12, "i64"):totable(), seen)
      -- augmented and limited: the batches of the same loader over an in-memory reference built from the raw bytes
      local ref = data.tensorDataset(core.tensor(r, "u8"):view(12, 5, 4, 3):permute(1, 4, 2, 3):contiguous(),
                                     core.tensor(labels, "i64") + 1)
      local o = {batchSize = 4, shuffle = true, seed = 3, augment = {crop = 1, flip = true}, limit = 9,
                 normalize = {mean = mean, std = std}}
      local a, b = data.Loader(ds, o), data.Loader(ref, o)
      assert.are.equal(9, a.n); assert.are.equal(3, a:numBatches())
      local it, n = b:batches(3), 0
      for xa, ya, ia in a:batches(3) do
         local xb, yb, ib = it()
         n = n + xa:size(1)
         assert.are.same(ib:totable(), ia:totable()); assert.are.same(yb:totable(), ya:totable())
         assert.are.equal(0, (xa - xb):abs():max():item())
         assert.is_true(ia:max():item() <= 9)
      end
      assert.are.equal(9, n)
      assert.are.equal(b:fingerprint(), a:fingerprint())
   end)

   local function refused(o, ...)
      local ok, err = pcall(npy, o)
      assert.is_false(ok, "expected an error")
      for _, want in ipairs{...} do assert.matches(want, err, 1, true) end
      return err
   end

   it("refuses malformed files with a message that names the file, what was expected and what was found", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      refused({x = "fortran.npy", y = "y_i64.npy"}, P("fortran.npy"),
              "a Fortran-order array (fortran_order: True, shape (12,6)); only C order is read")
      refused({x = "bigendian.npy", y = "y_i64.npy"}, P("bigendian.npy"),
              "big-endian dtype '>f4'; expected little-endian '<f4'")
      refused({x = "complex.npy", y = "y_i64.npy"},
              P("complex.npy"), "unsupported dtype '<c8'; expected '|u1', '<f4', '<f8' or '<i8'")
      refused({x = "truncated.npy", y = "y_i64.npy"},
              P("truncated.npy"), "is truncated: the header says shape (12,3,5,4) of '|u1' = 720 bytes of data")
      refused({x = "trailing.npy", y = "y_i64.npy"}, P("trailing.npy"), "has trailing bytes")
      refused({x = "badheader.npy", y = "y_i64.npy"}, P("badheader.npy"),
              "the header does not parse: expected ',' or '}' after a value at byte 40, found '''")
      refused({x = "notnpy.npy", y = "y_i64.npy"},
              P("notnpy.npy"), "is not a .npy file: it starts with bytes 50 35 0a 34 20 34")
      refused({x = "archive.npz", y = "y_i64.npy"},
              P("archive.npz"), "is not a .npy file: it starts with bytes 50 4b 03 04")
      refused({x = "missing.npy", y = "y_i64.npy"}, "cannot open " .. P("missing.npy"))
   end)

   it("refuses labels that are not 0-based integer class ids, and x/y of different lengths", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      local x = "x_u8_v1.npy"
      refused({x = x, y = "y_float.npy"}, P("y_float.npy") .. " holds '<f4' values; labels must be integers")
      refused({x = x, y = "y_bool.npy"}, P("y_bool.npy"), "unsupported dtype '|b1'")
      refused({x = x, y = "y_negative.npy"}, P("y_negative.npy") .. " has a negative label -1 (example 6)")
      refused({x = x, y = "y_big.npy"},
              P("y_big.npy") .. " has a label 2147483648 (example 7); labels must be 0-based class ids below 2^31")
      refused({x = x, y = "y_u64max.npy"},
              P("y_u64max.npy"), "element 7 (counting from 0) is 18446744073709551615, which does not fit in i64")
      refused({x = x, y = "y_2d.npy"}, P("y_2d.npy") .. " has shape (12,1); labels must be 1-D")
      refused({x = x, y = "y_short.npy"}, P(x) .. " has 12 examples but " .. P("y_short.npy") .. " has 11 labels")
   end)

   it("checks its options", function()
      if not have_numpy then return pending(NUMPY_MISSING) end
      assert.has_error(function() data.npy{x = P("x_u8_v1.npy"), y = P("y_i64.npy"), shuffle = true} end,
                       "npy: unknown option 'shuffle' (known: layout, numClasses, x, y)")
      assert.has_error(function() data.npy{x = P("x_u8_v1.npy")} end,
                       "npy: option 'y' must be the path of a .npy file, got nil")
      assert.has_error(function() data.npy("x.npy") end, "npy: bad argument #1 (table of options expected, got string)")
      assert.has_error(function() npy{x = "x_u8_v1.npy", y = "y_i64.npy", numClasses = 0} end,
                       "npy: numClasses must be an integer >= 1, got 0")
   end)
end)
