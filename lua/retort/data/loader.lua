-- Loader: batches of a dataset, shuffled and augmented reproducibly per (seed, epoch).
--
--   local loader = retort.data.Loader(ds, {batchSize = 128, shuffle = true, seed = 1, dropLast = false,
--                                          normalize = {mean = 0.286, std = 0.353},
--                                          augment = {crop = 2, flip = true}})
--   loader:setEpoch(e)                      -- the epoch picks the shuffle and the augmentation
--   for x, y, idx in loader:batches() do ... end -- x float (B,C,H,W) or (B,D); y i64 (B), classes 1..C;
--                                                -- idx i64 (B): the examples' 1-based dataset indices
--
-- Options (defaults): batchSize (128), shuffle (false), seed (1), dropLast (false: the last batch
-- may be short), epoch (1), normalize (none; {mean, std} or {mean = , std = }, numbers or one
-- per channel), augment (none; {crop = pad, flip = true}: random crop with `pad` zeros on each
-- side and a horizontal flip, for (N,C,H,W) inputs), dtype ("f32"; "f64" for gradient checks),
-- views (none; V: epoch e augments as epoch (e - 1) % V + 1, so V augmentation views repeat in turn
-- while the shuffle still changes every epoch: a soft-target cache of V views replays them exactly),
-- device ("cpu"; "cuda", or "auto" for cuda when available: x and y arrive on that device, idx stays
-- on the CPU; images are gathered and augmented on the CPU and cross as bytes, then scaled and
-- normalised on the device), limit (0: all; n > 0 uses the dataset's first n examples only).
--
-- Inputs: u8 data is scaled to [0, 1] (value / 255) before normalisation, as torchvision's
-- ToTensor does; float data is used as it is. normalize computes (x - mean) / std.
--
-- Datasets: an in-memory dataset has x (N, ...) and y (N) tensors; batches are gathered from them
-- with indexSelect, never per example. A dataset too big for memory (imageFolder, hdf5) keeps only
-- y (N) in memory and has instead
--   shape           {N, ...}: the shape its x would have, dtype: its x's dtype ("u8", "f32", "f64")
--   read(idx)       the inputs of the examples idx (i64, 1-based, any order, repeats allowed) as a
--                   new CPU tensor (#idx, ...) of that dtype
--   fingerprint(n)  the hash of its first n examples' inputs and labels (a hex string, as
--                   core.fingerprint gives), which soft-target caches record and check
--
-- Determinism: the order of epoch e is a permutation drawn from (seed, e) alone, and an example's
-- crop and flip come from (seed, e, example index) alone (the core's counter-based generator), so
-- the same seed and epoch give the same batches on any thread count, and a resumed run replays
-- them. The default generator is neither used nor advanced. The epoch does not advance by
-- itself: call setEpoch(e) (the training loop does), or pass it: loader:batches(e).
--
-- Sharding (several ranks, retort.dist; retort.train.fit sets it): loader:setShard(rank, count) makes
-- each epoch this rank's part of the epoch's order, as PyTorch's DistributedSampler does. Every rank
-- draws the same order (same seed and epoch); it is made a multiple of count, by repeating its first
-- examples (dropLast = false: every example is seen, a few twice) or by dropping its last ones
-- (dropLast = true), and rank r (0-based) takes its positions r + 1, r + 1 + count, ... (interleaved), then
-- batches of batchSize. So every rank runs the same number of batches, step k of the ranks together
-- covers one contiguous block of count * batchSize examples of the order, and an example's crop and flip
-- (from seed, epoch and its index) do not depend on the sharding. setShard(rank, count, {even = false})
-- (evaluation) takes the interleaved positions without padding or dropping: every example exactly once
-- over the ranks, the counts differing by at most one. {skip = k} first drops the order's first k
-- examples (an epoch resumed under another number of ranks). setShard(nil) ends it. Counts
-- (numExamples, numBatches, batchCount, exampleCount) are this rank's.
local core = require "retort.core"
local options = require "retort.options"

local Loader = {}
Loader.__index = Loader
Loader.__name = "retort.data.Loader"

local AUGMENT_SALT = 0x6175676d656e74 -- "augment": crops do not reuse the shuffle's random stream

local function per_channel(v, what, xshape)
   if type(v) == "number" then return v end
   if type(v) ~= "table" or #v == 0 then
      error(("Loader: normalize.%s must be a number or a table of per-channel numbers"):format(what), 4)
   end
   local c = #xshape >= 2 and xshape[2] or 1
   if #v ~= c then
      error(("Loader: normalize.%s has %d values but the data has %d channels"):format(what, #v, c), 4)
   end
   local shape = {1, c}
   for _ = 3, #xshape do shape[#shape + 1] = 1 end
   return core.tensor(v):view(shape)
end

-- an in-memory dataset (x and y tensors) or one read on demand (y, shape, dtype, read, fingerprint)
local function dataset_kind(d)
   if type(d) ~= "table" or not core.isTensor(d.y) or d.y:dim() ~= 1 then return nil end
   if core.isTensor(d.x) then return "memory" end
   if type(d.read) == "function" and type(d.shape) == "table" and type(d.dtype) == "string"
      and type(d.fingerprint) == "function" then
      return "lazy"
   end
   return nil
end

local function new(dataset, opts)
   opts = opts or {}
   local kind = dataset_kind(dataset)
   if not kind then
      error("Loader: bad argument #1 (a dataset expected: x and y tensors, e.g. retort.data.tensorDataset(x, y), "
            .. "or y with shape, dtype, read and fingerprint, e.g. retort.data.imageFolder{...}; got "
            .. (type(dataset) == "table" and "a table without them" or type(dataset)) .. ")", 3)
   end
   if type(opts) ~= "table" then error("Loader: bad argument #2 (table of options expected)", 3) end
   local known = {batchSize = true, shuffle = true, seed = true, dropLast = true, normalize = true, augment = true,
                  epoch = true, dtype = true, views = true, device = true, limit = true}
   options.check("Loader", opts, known, 3)
   local x, y = dataset.x, dataset.y
   local shape = kind == "memory" and x:shape() or {table.unpack(dataset.shape)}
   if shape[1] ~= y:size(1) then
      error(("Loader: the dataset has %d inputs but %d labels"):format(shape[1], y:size(1)), 3)
   end
   local limit = opts.limit or 0
   if math.type(limit) ~= "integer" or limit < 0 then
      error(("Loader: limit must be an integer >= 0 (0: every example), got %s"):format(tostring(limit)), 3)
   end
   if limit > 0 and limit < shape[1] then
      shape[1] = limit
      y = y:narrow(1, 1, limit)
      if x then x = x:narrow(1, 1, limit) end
   end
   local self = setmetatable({dataset = dataset, x = x, y = y, n = shape[1], shape = shape,
                              xdtype = x and x:dtype() or dataset.dtype}, Loader)
   self.batchSize = opts.batchSize or 128
   if math.type(self.batchSize) ~= "integer" or self.batchSize < 1 then
      error("Loader: batchSize must be an integer >= 1", 3)
   end
   self.shuffle = opts.shuffle or false
   self.seed = opts.seed or 1
   if math.type(self.seed) ~= "integer" then error("Loader: seed must be an integer", 3) end
   self.dropLast = opts.dropLast or false
   self.epoch = opts.epoch or 1
   self.dtype = opts.dtype or "f32"
   self.views = opts.views
   if self.views ~= nil and (math.type(self.views) ~= "integer" or self.views < 1) then
      error(("Loader: views must be an integer >= 1, got %s"):format(tostring(self.views)), 3)
   end
   self.device = require("retort.cuda").resolveDevice(opts.device, "Loader: device")
   self.scale = self.xdtype == "u8"
   if opts.normalize then
      local nm = opts.normalize
      local mean, std = nm.mean or nm[1], nm.std or nm[2]
      if mean == nil or std == nil then error("Loader: normalize needs mean and std", 3) end
      self.mean = per_channel(mean, "mean", shape)
      self.std = per_channel(std, "std", shape)
      -- (x s - mean) / std = x a + b with a = s / std, b = -mean / std (s = 1/255 for u8 data): one
      -- pass over the batch for numbers, a multiply and an add for per-channel tensors
      local s = self.scale and 1 / 255 or 1
      self.norm_a, self.norm_b = (self.std ^ -1) * s, -(self.mean / self.std)
      for _, k in ipairs{"norm_a", "norm_b"} do
         if core.isTensor(self[k]) then self[k] = self[k]:to(self.dtype):to(self.device) end
      end
   end
   if opts.augment then
      local a = opts.augment
      if #shape ~= 4 then
         error(("Loader: augment needs image data (N,C,H,W), the dataset's x is %s"):format(
            table.concat(shape, "x")), 3)
      end
      self.pad = a.crop or 0
      self.flip = a.flip and true or false
      if math.type(self.pad) ~= "integer" or self.pad < 0 then
         error("Loader: augment.crop must be an integer >= 0", 3)
      end
   end
   return self
end

setmetatable(Loader, {__call = function(_, dataset, opts) return new(dataset, opts) end})

--- setShard(rank, count [, {even = true, skip = 0}]) or setShard(nil): see Sharding in the header.
function Loader:setShard(rank, count, opts)
   if rank == nil then self.shard = nil; return self end
   if math.type(count) ~= "integer" or count < 1 then
      error(("bad argument #2 to 'setShard' (a rank count >= 1 expected, got %s)"):format(tostring(count)), 2)
   end
   if math.type(rank) ~= "integer" or rank < 0 or rank >= count then
      error(("bad argument #1 to 'setShard' (a rank in 0..%d expected, got %s)"):format(count - 1, tostring(rank)), 2)
   end
   opts = opts or {}
   options.check("Loader:setShard", opts, {even = true, skip = true}, 2)
   local skip = opts.skip or 0
   if math.type(skip) ~= "integer" or skip < 0 then
      error(("Loader:setShard: skip must be an integer >= 0, got %s"):format(tostring(skip)), 2)
   end
   self.shard = {rank = rank, count = count, even = opts.even ~= false, skip = skip}
   return self
end

-- how many of an n-example epoch's examples this rank gets (n without sharding)
local function shard_count(self, n)
   local s = self.shard
   if not s then return n end
   n = math.max(0, n - s.skip)
   if n == 0 then return 0 end
   if not s.even then return n > s.rank and (n - s.rank + s.count - 1) // s.count or 0 end
   if self.dropLast then return n // s.count end
   return (n + s.count - 1) // s.count
end

-- this rank's part of an epoch's order (the order itself without sharding)
local function shard_order(self, order)
   local s = self.shard
   if not s then return order end
   local n = order:size(1)
   if s.skip > 0 then
      order = s.skip < n and order:narrow(1, s.skip + 1, n - s.skip) or core.zeros(0, "i64")
      n = order:size(1)
   end
   if n == 0 then return order end
   local total = n
   if s.even then
      total = self.dropLast and (n // s.count) * s.count or (n + s.count - 1) // s.count * s.count
      if total < n then
         order = order:narrow(1, 1, total)
      elseif total > n then -- pad with the order's first examples (again from the start when n < count)
         local parts, have = {order}, n
         while have < total do
            local k = math.min(n, total - have)
            parts[#parts + 1] = order:narrow(1, 1, k)
            have = have + k
         end
         order = core.cat(parts, 1)
      end
   end
   if total <= s.rank then return core.zeros(0, "i64") end
   return order:indexSelect(1, core.arange(s.rank + 1, total, s.count, "i64"))
end

function Loader:setEpoch(e)
   if math.type(e) ~= "integer" then error("Loader:setEpoch: an integer epoch is expected", 2) end
   self.epoch = e
   return self
end

--- batchCount(n), exampleCount(n): batches and examples an epoch of n examples gives with this
--- loader's batch size and drop-last (a curriculum loader's epochs take a part of the dataset).
function Loader:batchCount(n)
   n = shard_count(self, n)
   if self.dropLast then return n // self.batchSize end
   return (n + self.batchSize - 1) // self.batchSize
end

function Loader:exampleCount(n)
   if self.dropLast then return self:batchCount(n) * self.batchSize end
   return shard_count(self, n)
end

--- fingerprint(): the hash of the loader's examples (inputs and labels; its first `limit` with a
--- limit) that soft-target caches record: core.fingerprint(x, y) in memory, the dataset's own otherwise.
function Loader:fingerprint()
   if not self._fingerprint then
      self._fingerprint = self.x and core.fingerprint(self.x, self.y) or self.dataset:fingerprint(self.n)
   end
   return self._fingerprint
end

function Loader:numExamples() return self:exampleCount(self.n) end
function Loader:numBatches() return self:batchCount(self.n) end
Loader.__len = Loader.numBatches

--- order([epoch]): the i64 tensor of 1-based example indices in the order of that epoch.
function Loader:order(epoch)
   epoch = epoch or self.epoch
   if self.shuffle then return core.shufflePermutation(self.n, self.seed, epoch) end
   if self.n == 0 then return core.zeros(0, "i64") end
   return core.arange(1, self.n, "i64")
end

--- view(epoch): the augmentation view an epoch uses (the epoch itself unless views is set).
function Loader:view(epoch)
   epoch = epoch or self.epoch
   return self.views and (epoch - 1) % self.views + 1 or epoch
end

--- viewSeed(view): the seed of an augmentation view (nil without augmentation): example i (1-based
--- dataset index) of that view is cropped and flipped from core.rngBits(viewSeed(view), i).
function Loader:viewSeed(view)
   if not self.pad then return nil end
   return core.rngBits(self.seed ~ AUGMENT_SALT, view)
end

--- gather(idx [, epoch]): the batch of example indices idx (i64, 1-based), augmented as that epoch.
function Loader:gather(idx, epoch)
   local x = self.x and self.x:indexSelect(1, idx) or self.dataset:read(idx)
   if self.pad then
      x = core.augmentCropFlip(x, self.pad, self.flip, self.seed ~ AUGMENT_SALT, self:view(epoch), idx)
   end
   x = x:to(self.device)
   if x:dtype() ~= self.dtype then x = x:to(self.dtype) end
   if self.mean then -- the scale of u8 data folded in
      local a, b = self.norm_a, self.norm_b
      x = type(a) == "number" and type(b) == "number" and x:affine(a, b) or x * a + b
   elseif self.scale then
      x = x:affine(1 / 255)
   end
   return x, self.y:indexSelect(1, idx):to(self.device), idx
end

--- batches([epoch]): iterator of (x, y, idx) over one epoch; idx (i64) holds the dataset indices of
--- the batch's examples (soft-target caches and CRD's memory bank are keyed by them).
function Loader:batches(epoch)
   epoch = epoch or self.epoch
   return self:batchesOf(self:order(epoch), epoch)
end

--- batchesOf(order, epoch): the same iterator over the examples of `order` (i64, 1-based dataset
--- indices) in that order, augmented as that epoch: for loaders that choose the order themselves.
function Loader:batchesOf(order, epoch)
   order = shard_order(self, order)
   local n, bs = order:size(1), self.batchSize
   local last = self.dropLast and (n // bs) * bs or n
   local pos = 0
   return function()
      if pos >= last then return nil end
      local b = math.min(bs, last - pos)
      local idx = order:narrow(1, pos + 1, b)
      pos = pos + b
      return self:gather(idx, epoch)
   end
end

function Loader:__tostring()
   return ("retort.data.Loader(%d examples, batch %d, %d batches%s%s%s%s%s)"):format(self.n, self.batchSize,
      self:numBatches(), self.shuffle and (", shuffled, seed " .. self.seed) or "",
      self.pad and (", crop " .. self.pad .. (self.flip and " + flip" or "")) or "",
      self.mean and ", normalized" or "", self.device ~= "cpu" and (", on " .. self.device) or "",
      self.shard and (", rank %d of %d's shard"):format(self.shard.rank, self.shard.count) or "")
end

return Loader
