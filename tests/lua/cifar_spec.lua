-- retort.data.cifar: small CIFAR-10 and CIFAR-100 files in both layouts (files in root itself, and in
-- the archive's top folder) written at test time by /usr/bin/python3 with numpy, read pixel for pixel
-- against numpy's reshape(-1, 3, 32, 32) of the same bytes (compared in (N, H, W, C) order, so that the
-- layout, not only the byte order, is checked); fine and coarse labels; class names from the meta
-- files; the default root ($RETORT_DATA_ROOT); a Loader with crop 4 + flip, per-channel normalisation
-- and limit against a naive crop computed here from the documented per-example draw; malformed files.
local retort = require "retort"
local core = require "retort.core"
local support = require "support"
local data = retort.data

local GEN = [[
import sys, os, numpy as np
root, alt = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
def lua(v):
    if isinstance(v, np.ndarray): v = v.tolist()
    if isinstance(v, list): return "{" + ",".join(lua(e) for e in v) + "}"
    if isinstance(v, str): return '"' + v + '"'
    return str(int(v))
def records(n, nlab, hi):
    lab = np.stack([rng.integers(0, h, n) for h in hi], 1).astype(np.uint8) if nlab else None
    px = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    return lab, px
out = {}
# CIFAR-10 in root itself: five training batches of 3, 2, 1, 2, 2 records, a test batch of 4
os.makedirs(root, exist_ok=True)
xs, ys = [], []
for k, n in enumerate([3, 2, 1, 2, 2]):
    lab, px = records(n, 1, [10])
    np.concatenate([lab, px], 1).tofile(os.path.join(root, "data_batch_%d.bin" % (k + 1)))
    xs.append(px); ys.append(lab[:, 0])
lab, px = records(4, 1, [10])
np.concatenate([lab, px], 1).tofile(os.path.join(root, "test_batch.bin"))
names10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
open(os.path.join(root, "batches.meta.txt"), "w").write("\n".join(names10) + "\n\n")
def nhwc(b): return np.frombuffer(b.tobytes(), np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
out["c10"] = {"train": {"x": nhwc(np.concatenate(xs)), "y": np.concatenate(ys)},
              "test": {"x": nhwc(px), "y": lab[:, 0]}}
out["names10"] = names10
# CIFAR-100 in root/cifar-100-binary/
d = os.path.join(root, "cifar-100-binary"); os.makedirs(d, exist_ok=True)
for split, n in [("train", 6), ("test", 3)]:
    lab, px = records(n, 2, [20, 100])
    rec = np.concatenate([lab, px], 1)
    rec.tofile(os.path.join(d, split + ".bin"))
    raw = np.fromfile(os.path.join(d, split + ".bin"), np.uint8).reshape(-1, 3074)
    out["c100" + split] = {"x": raw[:, 2:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
                           "coarse": raw[:, 0], "fine": raw[:, 1]}
fine = ["fine%02d" % i for i in range(100)]; coarse = ["coarse%02d" % i for i in range(20)]
open(os.path.join(d, "fine_label_names.txt"), "w").write("\n".join(fine) + "\n")
open(os.path.join(d, "coarse_label_names.txt"), "w").write("\n".join(coarse) + "\n")
out["fine"], out["coarse"] = fine, coarse
# alt: only CIFAR-10, in its top folder, without the meta file
a = os.path.join(alt, "cifar-10-batches-bin"); os.makedirs(a, exist_ok=True)
for f in os.listdir(root):
    if f.endswith(".bin"): open(os.path.join(a, f), "wb").write(open(os.path.join(root, f), "rb").read())
with open(os.path.join(root, "expected.lua"), "w") as f:
    f.write("return {" + ",".join("%s=%s" % (k, lua(v) if not isinstance(v, dict) else
        "{" + ",".join("%s=%s" % (k2, lua(v2) if not isinstance(v2, dict) else
        "{" + ",".join("%s=%s" % (k3, lua(v3)) for k3, v3 in v2.items()) + "}") for k2, v2 in v.items()) + "}")
        for k, v in out.items()) + "}\n")
]]


local function plus_one(list)
   local out = {}
   for i, v in ipairs(list) do out[i] = v + 1 end
   return out
end

describe("retort.data.cifar", function()
   local root, alt, expected

   setup(function()
      if not support.python_has("numpy") then return end
      root, alt = support.tmpdir(), support.tmpdir()
      local r = support.python_run(GEN, {root, alt})
      assert(r.status == 0, "fixture generator failed: " .. r.stderr)
      expected = dofile(root .. "/expected.lua")
   end)

   teardown(function()
      if root then support.rmrf(root) end
      if alt then support.rmrf(alt) end
   end)

   local function need()
      if not expected then
         pending("numpy is not installed for /usr/bin/python3 (Debian package python3-numpy): CIFAR fixtures not made")
         return false
      end
      return true
   end

   it("reads CIFAR-10's five training batches in order, pixel for pixel as numpy reshapes them", function()
      if not need() then return end
      local ds = data.cifar{root = root, variant = 10}
      assert.are.same({10, 3, 32, 32}, ds.x:shape())
      assert.are.equal("u8", ds.x:dtype())
      assert.are.equal("i64", ds.y:dtype())
      assert.are.same(expected.c10.train.x, ds.x:permute(1, 3, 4, 2):totable())
      assert.are.same(plus_one(expected.c10.train.y), ds.y:totable())
      assert.are.equal(10, ds.numClasses)
      assert.are.same(expected.names10, ds.classes)
      assert.is_false(ds.complete) -- 10 of the published 50000
      assert.are.equal(10, ds:size())
      local img, label = ds:get(4)
      assert.are.same(expected.c10.train.x[4], img:permute(2, 3, 1):totable())
      assert.are.equal(expected.c10.train.y[4] + 1, label)
      local test = data.cifar{root = root, variant = 10, split = "test"}
      assert.are.same(expected.c10.test.x, test.x:permute(1, 3, 4, 2):totable())
      assert.are.same(plus_one(expected.c10.test.y), test.y:totable())
   end)

   it("reads CIFAR-100 fine and coarse labels from the archive's top folder", function()
      if not need() then return end
      for _, split in ipairs{"train", "test"} do
         local e = expected["c100" .. split]
         local fine = data.cifar{root = root, variant = 100, split = split}
         assert.are.equal(root .. "/cifar-100-binary", fine.dir)
         assert.are.same(e.x, fine.x:permute(1, 3, 4, 2):totable())
         assert.are.same(plus_one(e.fine), fine.y:totable())
         assert.are.equal(100, fine.numClasses)
         assert.are.same(expected.fine, fine.classes)
         local coarse = data.cifar{root = root, variant = 100, split = split, labels = "coarse"}
         assert.are.same(plus_one(e.coarse), coarse.y:totable())
         assert.are.equal(20, coarse.numClasses)
         assert.are.same(expected.coarse, coarse.classes)
         assert.are.same(e.x, coarse.x:permute(1, 3, 4, 2):totable())
      end
      -- also when root is the top folder itself
      local direct = data.cifar{root = root .. "/cifar-100-binary", split = "test"}
      assert.are.equal(100, direct.variant)
      assert.are.same(plus_one(expected.c100test.fine), direct.y:totable())
   end)

   it("finds the variant, and names classes by id without a meta file", function()
      if not need() then return end
      local ds = data.cifar{root = alt}
      assert.are.equal(10, ds.variant)
      assert.are.equal(alt .. "/cifar-10-batches-bin", ds.dir)
      assert.are.same({"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, ds.classes)
      assert.are.same(expected.c10.train.x, ds.x:permute(1, 3, 4, 2):totable())
      local ok, err = pcall(data.cifar, {root = root})
      assert.is_false(ok)
      assert.matches("both CIFAR-10 (" .. root .. ") and CIFAR-100 (" .. root .. "/cifar-100-binary) files are there: "
                     .. "pass variant = 10 or 100", err, 1, true)
   end)

   it("defaults root to $RETORT_DATA_ROOT", function()
      if not need() then return end
      local script = 'local d = require("retort").data.cifar{split = "test"} print(d.variant, d:size(), d.dir)'
      local r = support.run({"-e", script},
                            {env = {RETORT_DATA_ROOT = alt}})
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal(("10\t4\t%s/cifar-10-batches-bin\n"):format(alt), r.stdout)
   end)

   it("feeds a Loader: crop 4 + flip, per-channel normalisation and limit, against a naive crop", function()
      if not need() then return end
      local ds = data.cifar{root = root, variant = 100}
      local mean, std = data.cifar100Mean, data.cifar100Std
      assert.are.same({0.5071, 0.4867, 0.4408}, mean)
      assert.are.same({0.2675, 0.2565, 0.2761}, std)
      local pad, epoch = 4, 2
      local loader = data.Loader(ds, {batchSize = 2, shuffle = true, seed = 3, limit = 5,
                                      augment = {crop = pad, flip = true}, normalize = {mean = mean, std = std}})
      local e = expected.c100train
      local seen, count, worst = {}, 0, 0
      for x, y, idx in loader:batches(epoch) do
         assert.are.same({idx:size(1), 3, 32, 32}, x:shape())
         local xs, ids, labels = x:totable(), idx:totable(), y:totable()
         for k, i in ipairs(ids) do
            assert.is_true(i >= 1 and i <= 5, "index within the limit")
            assert.is_nil(seen[i]); seen[i] = true
            count = count + 1
            assert.are.equal(e.fine[i] + 1, labels[k])
            -- the documented draw: r = rngBits(viewSeed(view), i); row, column offsets, flip from r's bits
            local r = core.rngBits(loader:viewSeed(loader:view(epoch)), i)
            local dy, dx = (r & 0xffffff) % (2 * pad + 1), ((r >> 24) & 0xffffff) % (2 * pad + 1)
            local flip = (r >> 63) & 1 == 1
            for c = 1, 3 do
               for h = 1, 32 do
                  for w = 1, 32 do
                     local sh = h + dy - pad
                     local cw = flip and 33 - w or w
                     local sw = cw + dx - pad
                     local v = (sh >= 1 and sh <= 32 and sw >= 1 and sw <= 32) and e.x[i][sh][sw][c] or 0
                     local want = (v / 255 - mean[c]) / std[c]
                     worst = math.max(worst, math.abs(xs[k][c][h][w] - want))
                  end
               end
            end
         end
      end
      assert.are.equal(5, count)
      assert.is_true(worst < 1e-5, "largest difference " .. worst)
   end)

   describe("malformed files", function()
      local bad

      before_each(function()
         if not expected then return end
         bad = support.tmpdir()
         os.execute("mkdir -p " .. support.shquote(bad))
      end)

      after_each(function()
         if bad then support.rmrf(bad) end
      end)

      local function fails(opts, needle)
         local ok, err = pcall(data.cifar, opts)
         assert.is_false(ok)
         assert.matches(needle, err, 1, true)
         return err
      end

      it("a truncated file: not a whole number of records, named with its size", function()
         if not need() then return end
         local s = support.read_file(root .. "/cifar-100-binary/train.bin")
         support.write_file(bad .. "/train.bin", s:sub(1, #s - 10))
         fails({root = bad, variant = 100},
               ("%s/train.bin has %d bytes, not a whole number of CIFAR-100 records of 3074 bytes: %d records and "
                .. "3064 bytes left over (truncated or not a CIFAR file)"):format(bad, #s - 10, (#s - 10) // 3074))
      end)

      it("a file of the wrong size or variant", function()
         if not need() then return end
         local s = support.read_file(root .. "/data_batch_1.bin") -- 3 CIFAR-10 records given as CIFAR-100
         support.write_file(bad .. "/train.bin", s)
         fails({root = bad, variant = 100}, "it looks like a CIFAR-10 file: 3073-byte records")
         support.write_file(bad .. "/train.bin", "")
         fails({root = bad, variant = 100}, bad .. "/train.bin is empty")
      end)

      it("a label byte out of range names the file, the record and the label", function()
         if not need() then return end
         local s = support.read_file(root .. "/cifar-100-binary/train.bin")
         local at = 3074 * 2 + 2 -- record 2 (0-based), fine label byte
         support.write_file(bad .. "/train.bin", s:sub(1, at - 1) .. string.char(100) .. s:sub(at + 1))
         fails({root = bad, variant = 100}, bad .. "/train.bin: record 2 has fine label 100, expected 0..99")
         support.write_file(bad .. "/train.bin", string.char(20) .. s:sub(2))
         fails({root = bad, variant = 100, labels = "coarse"}, "record 0 has coarse label 20, expected 0..19")
         for k = 1, 5 do
            support.write_file(("%s/data_batch_%d.bin"):format(bad, k),
                               support.read_file(("%s/data_batch_%d.bin"):format(root, k)))
         end
         local b4 = support.read_file(root .. "/data_batch_4.bin")
         support.write_file(bad .. "/data_batch_4.bin", b4:sub(1, 3073) .. string.char(10) .. b4:sub(3075))
         fails({root = bad, variant = 10}, bad .. "/data_batch_4.bin: record 1 has label 10, expected 0..9")
      end)

      it("a missing file lists the files it expected and where", function()
         if not need() then return end
         for _, k in ipairs{1, 2, 4, 5} do
            support.write_file(("%s/data_batch_%d.bin"):format(bad, k),
                               support.read_file(("%s/data_batch_%d.bin"):format(root, k)))
         end
         fails({root = bad, variant = 10}, ("CIFAR-10 train files not found: expected data_batch_1.bin, "
            .. "data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin in %s or "
            .. "%s/cifar-10-batches-bin"):format(bad, bad))
         fails({root = bad .. "/nowhere"},
               "no CIFAR files under " .. bad .. "/nowhere: expected CIFAR-10's data_batch_1.bin")
      end)

      it("a meta file with the wrong number of names, and bad options", function()
         if not need() then return end
         support.write_file(bad .. "/test.bin", support.read_file(root .. "/cifar-100-binary/test.bin"))
         support.write_file(bad .. "/coarse_label_names.txt", "a\nb\n")
         fails({root = bad, split = "test", labels = "coarse"},
               bad .. "/coarse_label_names.txt holds 2 class names, expected 20 (one per line)")
         fails({root = bad, split = "valid"}, 'split must be "train" or "test", got valid')
         fails({root = bad, labels = "fine2"}, 'labels must be "fine" or "coarse"')
         fails({root = bad, variant = 20}, "variant must be 10 or 100, got 20")
         fails({root = root, variant = 10, labels = "coarse"}, "exists in CIFAR-100 only")
         fails({root = bad, split = "test", varient = 100}, "varient")
      end)
   end)
end)
