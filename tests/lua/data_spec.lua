-- retort.data: IDX reading (through tiny fixture files written here), Fashion-MNIST when installed,
-- tensor and synthetic datasets, and the Loader: shapes, dtypes, 1-based labels, normalisation
-- values, seeded shuffles that depend on the epoch only, augmentation determinism, dropLast.
local retort = require "retort"
local core = retort.core
local data = retort.data
local support = require "support"

-- Writes a plain IDX ubyte file with the given dims and byte values.
local function write_idx(path, dims, bytes)
   local parts = {string.char(0, 0, 8, #dims)}
   for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
   for _, b in ipairs(bytes) do parts[#parts + 1] = string.char(b) end
   local f = assert(io.open(path, "wb"))
   f:write(table.concat(parts))
   f:close()
end

local function tmpdir()
   local d = support.tmpdir()
   assert(os.execute("mkdir -p " .. support.shquote(d)))
   return d
end

-- A fake Fashion-MNIST directory: n images of 28x28 whose pixels all equal the image index,
-- labels 0..9 cycling.
local function fake_fashion(dir, n, split)
   local prefix = split == "test" and "t10k" or "train"
   local px, lb = {}, {}
   for i = 0, n - 1 do
      for _ = 1, 28 * 28 do px[#px + 1] = i % 256 end
      lb[#lb + 1] = i % 10
   end
   write_idx(dir .. "/" .. prefix .. "-images-idx3-ubyte", {n, 28, 28}, px)
   write_idx(dir .. "/" .. prefix .. "-labels-idx1-ubyte", {n}, lb)
end

describe("retort.data IDX datasets", function()
   it("reads IDX files into u8 tensors and reports corrupt ones", function()
      local d = tmpdir()
      write_idx(d .. "/a", {2, 3}, {1, 2, 3, 4, 5, 255})
      local t = core.readIdx(d .. "/a")
      assert.are.equal("u8", t:dtype())
      assert.are.same({{1, 2, 3}, {4, 5, 255}}, t:totable())
      write_idx(d .. "/b", {2, 3}, {1, 2, 3})
      local ok, err = pcall(core.readIdx, d .. "/b")
      assert.is_false(ok)
      assert.matches("idx_read: " .. d .. "/b is truncated", err, 1, true)
      support.rmrf(d)
   end)

   it("builds Fashion-MNIST-shaped datasets with 1-based labels from a root directory", function()
      local d = tmpdir()
      fake_fashion(d, 25, "train")
      fake_fashion(d, 5, "test")
      local ds = data.fashionMnist{root = d}
      assert.are.equal(25, ds:size())
      assert.are.same({25, 1, 28, 28}, ds.images:shape())
      assert.are.equal("u8", ds.images:dtype())
      assert.are.equal("i64", ds.labels:dtype())
      assert.are.equal(1, ds.labels:min():item())
      assert.are.equal(10, ds.labels:max():item())
      local x, y = ds:get(13)
      assert.are.same({1, 28, 28}, x:shape())
      assert.are.equal(12, x:max():item())
      assert.are.equal(3, y) -- file label 2 -> class 3
      assert.are.equal(5, data.fashionMnist{root = d, split = "test"}:size())
      -- RETORT_DATA_ROOT is honoured by a child process
      local r = support.run({"-e", "print(require('retort').data.fashionMnist{split = 'test'}:size())"},
                            {env = {RETORT_DATA_ROOT = d}})
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("5\n", r.stdout)
      support.rmrf(d)
   end)

   it("says which package provides a missing dataset", function()
      local ok, err = pcall(data.fashionMnist, {root = "/nonexistent/fm"})
      assert.is_false(ok)
      assert.matches("/nonexistent/fm/train-images-idx3-ubyte(.gz) not found; install Debian's dataset-fashion-mnist",
                     err, 1, true)
      ok, err = pcall(data.fashionMnist, {split = "val"})
      assert.is_false(ok)
      assert.matches('split must be "train" or "test"', err, 1, true)
   end)

   it("loads the installed Fashion-MNIST (dataset-fashion-mnist) and gives a whole epoch", function()
      local root = "/usr/share/datasets/fashion-mnist"
      if not io.open(root .. "/train-images-idx3-ubyte.gz", "rb") then
         return pending("Debian's dataset-fashion-mnist is not installed")
      end
      local tr = data.fashionMnist{root = root}
      local te = data.fashionMnist{root = root, split = "test"}
      assert.are.equal(60000, tr:size()); assert.are.equal(10000, te:size())
      assert.are.same({60000, 1, 28, 28}, tr.images:shape())
      assert.are.equal(1, tr.labels:min():item()); assert.are.equal(10, tr.labels:max():item())
      local loader = data.Loader(tr, {batchSize = 128, shuffle = true, seed = 1,
                                      normalize = {data.fashionMnistMean, data.fashionMnistStd}})
      local n, batches = 0, 0
      for _, y in loader:batches() do
         n = n + y:size(1)
         batches = batches + 1
      end
      assert.are.equal(60000, n); assert.are.equal(469, batches)
   end)
end)

describe("retort.data datasets", function()
   it("tensorDataset checks its arguments", function()
      local ds = data.tensorDataset(retort.randn(4, 2), retort.tensor({1, 2, 1, 2}, "i64"))
      assert.are.equal(4, ds:size())
      local x, y = ds:get(2)
      assert.are.same({2}, x:shape()); assert.are.equal(2, y)
      assert.has_error(function() ds:get(5) end)
      local ok, err = pcall(data.tensorDataset, retort.randn(4, 2), retort.tensor({1, 2}, "i64"))
      assert.is_false(ok); assert.matches("x has 4 examples, y has 2 labels", err, 1, true)
   end)

   it("synthetic blobs are seeded, balanced and leave the default generator alone", function()
      retort.manualSeed(1)
      local before = retort.getRngState()
      local a = data.blobs{n = 90, classes = 3, dim = 4, seed = 7}
      assert.are.same(before, retort.getRngState())
      local b = data.blobs{n = 90, classes = 3, dim = 4, seed = 7}
      local c = data.blobs{n = 90, classes = 3, dim = 4, seed = 8}
      assert.are.same(a.x:totable(), b.x:totable())
      assert.are_not.same(a.x:totable(), c.x:totable())
      assert.are.same({90, 4}, a.x:shape())
      local counts = {0, 0, 0}
      for _, l in ipairs(a.y:totable()) do counts[l] = counts[l] + 1 end
      assert.are.same({30, 30, 30}, counts)
      local imgs = data.randomImages{n = 10, classes = 4, channels = 3, height = 6, width = 5, seed = 2}
      assert.are.same({10, 3, 6, 5}, imgs.x:shape()); assert.are.equal("u8", imgs.x:dtype())
   end)
end)

describe("retort.data.Loader", function()
   local N = 10
   local function ds()
      -- example i: every pixel is i (u8), label (i - 1) % 3 + 1
      local x = retort.arange(1, N):view(N, 1, 1, 1):expand(N, 2, 3, 3):contiguous():byte()
      local y = {}
      for i = 1, N do y[i] = (i - 1) % 3 + 1 end
      return data.tensorDataset(x, retort.tensor(y, "i64"))
   end

   local function epoch_ids(loader, e)
      local ids, sizes = {}, {}
      for x, y in loader:batches(e) do
         sizes[#sizes + 1] = y:size(1)
         for _, v in ipairs(x:view(x:size(1), -1):max(2):totable()) do
            ids[#ids + 1] = math.floor((type(v) == "table" and v[1] or v) * 255 + 0.5)
         end
      end
      return ids, sizes
   end

   it("gives float inputs in [0, 1], i64 1-based labels, and the batch sizes", function()
      local loader = data.Loader(ds(), {batchSize = 4})
      local ids, sizes = epoch_ids(loader, 1)
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, ids)
      assert.are.same({4, 4, 2}, sizes)
      assert.are.equal(3, loader:numBatches()); assert.are.equal(10, loader:numExamples())
      local x, y = loader:batches()()
      assert.are.same({4, 2, 3, 3}, x:shape())
      assert.are.equal("f32", x:dtype()); assert.are.equal("i64", y:dtype())
      assert.are.same({1, 2, 3, 1}, y:totable())
      assert.is_true(math.abs(x:max():item() - 4 / 255) < 1e-7)
      local dl = data.Loader(ds(), {batchSize = 4, dropLast = true})
      local _, s2 = epoch_ids(dl, 1)
      assert.are.same({4, 4}, s2)
      assert.are.equal(2, dl:numBatches()); assert.are.equal(8, dl:numExamples())
   end)

   it("normalises with (x / 255 - mean) / std, per channel too", function()
      local x = data.Loader(ds(), {batchSize = 10, normalize = {0.5, 0.25}}):batches()()
      local v = x:select(1, 3):select(1, 1):get(1, 1) -- example 3: pixel 3/255
      assert.is_true(math.abs(v - (3 / 255 - 0.5) / 0.25) < 1e-6)
      local xc = data.Loader(ds(), {batchSize = 10, normalize = {mean = {0.1, 0.2}, std = {1, 2}}}):batches()()
      assert.is_true(math.abs(xc:select(1, 3):select(1, 1):get(1, 1) - (3 / 255 - 0.1) / 1) < 1e-6)
      assert.is_true(math.abs(xc:select(1, 3):select(1, 2):get(1, 1) - (3 / 255 - 0.2) / 2) < 1e-6)
      local xm = data.Loader(ds(), {batchSize = 10, normalize = {mean = {0.1, 0.2}, std = 2}}):batches()()
      assert.is_true(math.abs(xm:select(1, 3):select(1, 2):get(1, 1) - (3 / 255 - 0.2) / 2) < 1e-6)
      local ok, err = pcall(data.Loader, ds(), {normalize = {mean = {0.1, 0.2, 0.3}, std = 1}})
      assert.is_false(ok); assert.matches("normalize.mean has 3 values but the data has 2 channels", err, 1, true)
      -- float data is not rescaled
      local fx = data.Loader(data.tensorDataset(retort.tensor{{2, 4}}, retort.tensor({1}, "i64")),
                             {normalize = {1, 2}}):batches()()
      assert.are.same({{0.5, 1.5}}, fx:totable())
   end)

   it("shuffles reproducibly per (seed, epoch), differently across epochs and seeds", function()
      local a = data.Loader(ds(), {batchSize = 3, shuffle = true, seed = 4})
      local b = data.Loader(ds(), {batchSize = 7, shuffle = true, seed = 4})
      local e1 = epoch_ids(a, 1)
      assert.are.same(e1, (epoch_ids(a, 1)))
      assert.are.same(e1, (epoch_ids(b, 1))) -- the order does not depend on the batch size
      local sorted = {table.unpack(e1)}
      table.sort(sorted)
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, sorted)
      local differ = 0
      for e = 2, 6 do
         a:setEpoch(e)
         if table.concat(epoch_ids(a), ",") ~= table.concat(e1, ",") then differ = differ + 1 end
      end
      assert.is_true(differ >= 4)
      local c = data.Loader(ds(), {batchSize = 3, shuffle = true, seed = 5})
      assert.are_not.same(e1, (epoch_ids(c, 1)))
      -- the default generator is not consumed
      retort.manualSeed(3)
      local s = retort.getRngState()
      epoch_ids(a, 1)
      assert.are.same(s, retort.getRngState())
   end)

   it("augments with crops and flips that depend on (seed, epoch, example) only", function()
      local x = retort.arange(1, 6 * 16):view(6, 1, 4, 4):byte()
      local d = data.tensorDataset(x, retort.tensor({1, 1, 1, 2, 2, 2}, "i64"))
      local function by_example(loader, e)
         local out = {}
         local order = loader:order(e)
         local pos = 0
         for bx in loader:batches(e) do
            for i = 1, bx:size(1) do out[order:get(pos + i)] = bx:select(1, i):totable() end
            pos = pos + bx:size(1)
         end
         return out
      end
      local l1 = data.Loader(d, {batchSize = 2, shuffle = true, seed = 9, augment = {crop = 1, flip = true}})
      local l2 = data.Loader(d, {batchSize = 5, shuffle = true, seed = 9, augment = {crop = 1, flip = true}})
      local a, b = by_example(l1, 1), by_example(l2, 1)
      assert.are.same(a, b)
      assert.are.same(a, by_example(l1, 1))
      local changed = 0
      for e = 2, 4 do
         local c = by_example(l1, e)
         for i = 1, 6 do
            if table.concat(c[i][1][1], ",") .. table.concat(c[i][1][2], ",") ~=
               table.concat(a[i][1][1], ",") .. table.concat(a[i][1][2], ",") then changed = changed + 1 end
         end
      end
      assert.is_true(changed > 6)
      -- the kernel: pad 0 without flip is the identity
      assert.are.same(x:totable(), core.augmentCropFlip(x, 0, false, 1, 1):totable())
      local ok, err = pcall(data.Loader, data.blobs{n = 4}, {augment = {crop = 2}})
      assert.is_false(ok); assert.matches("augment needs image data (N,C,H,W)", err, 1, true)
   end)

   it("replays V augmentation views in turn with views = V, while the shuffle still changes", function()
      local x = retort.arange(1, 6 * 16):view(6, 1, 4, 4):byte()
      local d = data.tensorDataset(x, retort.tensor({1, 1, 1, 2, 2, 2}, "i64"))
      local plain = data.Loader(d, {batchSize = 6, seed = 3, augment = {crop = 1, flip = true}})
      local viewed = data.Loader(d, {batchSize = 6, seed = 3, augment = {crop = 1, flip = true}, views = 2,
                                     shuffle = true})
      assert.are.equal(1, viewed:view(3)); assert.are.equal(2, viewed:view(4)); assert.are.equal(5, plain:view(5))
      local idx = retort.arange(1, 6, "i64")
      for e = 1, 5 do
         -- epoch e of the viewed loader augments each example as epoch view(e) of the plain one
         assert.are.same(plain:gather(idx, (e - 1) % 2 + 1):totable(), viewed:gather(idx, e):totable())
      end
      assert.are_not.same(viewed:order(1):totable(), viewed:order(3):totable())
      local ok, err = pcall(data.Loader, d, {views = 0})
      assert.is_false(ok); assert.matches("views must be an integer >= 1, got 0", err, 1, true)
   end)

   it("rejects unknown options and bad datasets", function()
      local ok, err = pcall(data.Loader, ds(), {batchsize = 3})
      assert.is_false(ok); assert.matches("unknown option 'batchsize' (known: augment, batchSize,", err, 1, true)
      ok, err = pcall(data.Loader, {}, {})
      assert.is_false(ok); assert.matches("a dataset expected: x and y tensors", err, 1, true)
   end)

   it("drives retort.train.fit on synthetic blobs", function()
      if not (retort.train and retort.nn) then return pending("needs retort.train") end
      retort.manualSeed(1)
      local d = data.blobs{n = 240, classes = 3, dim = 2, seed = 3, spread = 0.5}
      local net = retort.nn.Sequential():add("fc1", retort.nn.Linear(2, 16)):add("relu", retort.nn.ReLU())
         :add("fc2", retort.nn.Linear(16, 3))
      local sink = io.open("/dev/null", "w")
      local r = retort.train.fit{model = net,
         optimizer = retort.optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9}),
         train = data.Loader(d, {batchSize = 32, shuffle = true, seed = 2}), test = data.Loader(d, {batchSize = 64}),
         epochs = 3, log = sink}
      sink:close()
      assert.is_true(r.history[3].test_acc > 0.9, "accuracy " .. r.history[3].test_acc)
   end)
end)

-- A dataset read on demand (the protocol imageFolder and hdf5 follow), built over an in-memory
-- one, so every batch can be compared with the in-memory loader's.
local function lazy_over(ds, reads)
   return {
      y = ds.y, shape = ds.x:shape(), dtype = ds.x:dtype(),
      read = function(_, idx)
         reads[#reads + 1] = idx:numel()
         return ds.x:indexSelect(1, idx)
      end,
      fingerprint = function(_, n) return core.fingerprint(ds.x:narrow(1, 1, n), ds.y:narrow(1, 1, n)) end,
   }
end

describe("retort.data.Loader over a dataset read on demand", function()
   local ds = data.randomImages{n = 37, classes = 3, channels = 3, height = 6, width = 5, seed = 4}

   it("gives the in-memory loader's batches, augmented and normalised alike, reading one batch at a time", function()
      local reads = {}
      local o = {batchSize = 8, shuffle = true, seed = 3, augment = {crop = 1, flip = true},
                 normalize = {mean = {0.5, 0.4, 0.3}, std = {0.2, 0.25, 0.3}}}
      local a, b = data.Loader(ds, o), data.Loader(lazy_over(ds, reads), o)
      assert.are.equal(a:numBatches(), b:numBatches())
      local na = 0
      local it = b:batches(2)
      for xa, ya, ia in a:batches(2) do
         local xb, yb, ib = it()
         na = na + 1
         assert.are.same(ia:totable(), ib:totable())
         assert.are.same(ya:totable(), yb:totable())
         assert.are.equal(0, (xa - xb):abs():max():item())
      end
      assert.are.equal(5, na)
      assert.are.same({8, 8, 8, 8, 5}, reads)
      assert.are.equal(a:fingerprint(), b:fingerprint())
   end)

   it("limit keeps the first n examples, in memory and on demand, and the fingerprint covers just those", function()
      local a = data.Loader(ds, {batchSize = 4, limit = 10})
      local b = data.Loader(lazy_over(ds, {}), {batchSize = 4, limit = 10})
      assert.are.equal(10, a.n); assert.are.equal(10, b.n); assert.are.equal(3, b:numBatches())
      local seen = {}
      for _, _, idx in b:batches() do for _, i in ipairs(idx:totable()) do seen[#seen + 1] = i end end
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, seen)
      assert.are.equal(core.fingerprint(ds.x:narrow(1, 1, 10), ds.y:narrow(1, 1, 10)), a:fingerprint())
      assert.are.equal(a:fingerprint(), b:fingerprint())
      assert.are_not.equal(a:fingerprint(), data.Loader(ds):fingerprint())
      assert.are.equal(37, data.Loader(ds, {limit = 100}).n)
      assert.has_error(function() data.Loader(ds, {limit = -1}) end,
                       "Loader: limit must be an integer >= 0 (0: every example), got -1")
   end)

   it("refuses a table that is neither kind of dataset", function()
      local ok, err = pcall(data.Loader, {y = ds.y})
      assert.is_false(ok)
      assert.matches("a dataset expected: x and y tensors", err)
   end)
end)
