-- Datasets: Fashion-MNIST (and MNIST) from IDX files, in-memory tensor datasets, and seeded
-- synthetic datasets for tests. A dataset is a table with
--   x, y            the whole inputs (N, ...) and labels (N) as tensors (the Loader gathers from them)
--   size()          N
--   get(i)          the i-th example (1-based): input tensor, label (an integer, 1-based class)
-- Fashion-MNIST datasets also name them images (u8 (N,1,28,28)) and labels (i64 (N), classes 1..10;
-- the files hold 0-based ids, the Lua side is 1-based as everywhere in retort).
local core = require "retort.core"

local M = {}

local Dataset = {}
Dataset.__index = Dataset
Dataset.__name = "retort.data.Dataset"

function Dataset:size() return self.x:size(1) end
Dataset.__len = Dataset.size

function Dataset:get(i)
   local n = self:size()
   if math.type(i) ~= "integer" or i < 1 or i > n then
      error(("%s:get: index %s out of range 1..%d"):format(self.name, tostring(i), n), 2)
   end
   local y = self.y:get(i)
   return self.x:select(1, i), math.tointeger(y) or y
end

function Dataset:tensors() return self.x, self.y end

function Dataset:__tostring()
   return ("%s: %d examples, x %s (%s), y %s (%s)"):format(self.name, self:size(), table.concat(self.x:shape(), "x"),
      self.x:dtype(), table.concat(self.y:shape(), "x"), self.y:dtype())
end

local function new_dataset(name, x, y, extra)
   local d = setmetatable({name = name, x = x, y = y}, Dataset)
   for k, v in pairs(extra or {}) do d[k] = v end
   return d
end

--- tensorDataset(x, y [, name]): x (N, ...) any dtype, y (N) labels (integers, 1-based classes).
function M.tensorDataset(x, y, name)
   if not core.isTensor(x) then error("tensorDataset: bad argument #1 (tensor expected, got " .. type(x) .. ")", 2) end
   if not core.isTensor(y) then error("tensorDataset: bad argument #2 (tensor expected, got " .. type(y) .. ")", 2) end
   if x:dim() < 1 then error("tensorDataset: x must have at least one dim (examples first)", 2) end
   if y:dim() ~= 1 then
      error(("tensorDataset: y must be 1-D (one label per example), got %d dims"):format(y:dim()), 2)
   end
   if x:size(1) ~= y:size(1) then
      error(("tensorDataset: x has %d examples, y has %d labels"):format(x:size(1), y:size(1)), 2)
   end
   return new_dataset(name or "tensorDataset", x, y)
end

-- ------------------------------------------------------------------------------------------
-- IDX datasets

M.DEFAULT_ROOT = "/usr/share/datasets"

local function file_exists(p)
   local f = io.open(p, "rb")
   if f then f:close() return true end
   return false
end

local function find_file(dir, base)
   for _, name in ipairs{base .. ".gz", base} do
      local p = dir .. "/" .. name
      if file_exists(p) then return p end
   end
   return nil
end

-- The directory holding a dataset: opts.root, else $RETORT_DATA_ROOT/<sub> (or $RETORT_DATA_ROOT
-- itself when it holds the files), else /usr/share/datasets/<sub>.
local function resolve_root(opts, sub, probe)
   if opts.root then return opts.root end
   local env = os.getenv("RETORT_DATA_ROOT")
   if env and env ~= "" then
      if find_file(env .. "/" .. sub, probe) then return env .. "/" .. sub end
      if find_file(env, probe) then return env end
      return env .. "/" .. sub
   end
   return M.DEFAULT_ROOT .. "/" .. sub
end

local function idx_dataset(fname, opts, sub, package, classes)
   opts = opts or {}
   if type(opts) ~= "table" then error(fname .. ": bad argument #1 (table of options expected)", 3) end
   local split = opts.split or "train"
   local prefix = ({train = "train", test = "t10k"})[split]
   if not prefix then error(("%s: split must be \"train\" or \"test\", got %s"):format(fname, tostring(split)), 3) end
   local root = resolve_root(opts, sub, prefix .. "-images-idx3-ubyte")
   local paths = {}
   for _, kind in ipairs{"images-idx3-ubyte", "labels-idx1-ubyte"} do
      local base = prefix .. "-" .. kind
      local p = find_file(root, base)
      if not p then
         error(("%s: %s/%s(.gz) not found; install Debian's %s package (apt-get install %s), or pass root= "
            .. "or set RETORT_DATA_ROOT"):format(fname, root, base, package, package), 3)
      end
      paths[#paths + 1] = p
   end
   local ok, images = pcall(core.readIdx, paths[1])
   if not ok then error(fname .. ": " .. tostring(images), 3) end
   local ok2, labels = pcall(core.readIdx, paths[2])
   if not ok2 then error(fname .. ": " .. tostring(labels), 3) end
   if images:dim() ~= 3 then
      error(("%s: %s holds %d-dim data, expected (N, H, W) images"):format(fname, paths[1], images:dim()), 3)
   end
   if labels:dim() ~= 1 or labels:size(1) ~= images:size(1) then
      error(("%s: %s has %d images but %s has %s labels"):format(fname, paths[1], images:size(1), paths[2],
         table.concat(labels:shape(), "x")), 3)
   end
   if labels:numel() > 0 and labels:max():item() >= classes then
      error(("%s: %s has a label %d, expected 0..%d"):format(fname, paths[2], labels:max():item(), classes - 1), 3)
   end
   local n, h, w = images:size(1), images:size(2), images:size(3)
   local x = images:view(n, 1, h, w)
   local y = labels:long() + 1
   return new_dataset(("%s(%s)"):format(fname, split), x, y,
      {images = x, labels = y, split = split, root = root, numClasses = classes, files = paths})
end

--- fashionMnist{root=, split="train"|"test"}: 60000 / 10000 images u8 (N,1,28,28), labels 1..10.
function M.fashionMnist(opts) return idx_dataset("fashionMnist", opts, "fashion-mnist", "dataset-fashion-mnist", 10) end

M.fashionMnistClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
   "Bag", "Ankle boot"}
-- Per-channel statistics of the Fashion-MNIST training images scaled to [0, 1].
M.fashionMnistMean, M.fashionMnistStd = 0.2860, 0.3530

--- mnist{root=, split=}: the same layout under <root>/mnist.
function M.mnist(opts) return idx_dataset("mnist", opts, "mnist", "dataset-mnist", 10) end

-- ------------------------------------------------------------------------------------------
-- synthetic datasets (seeded; the default generator's state is left as it was)

local function with_seed(seed, fn)
   local saved = core.getRngState()
   core.manualSeed(seed)
   local ok, a, b = pcall(fn)
   core.setRngState(saved)
   if not ok then error(a, 0) end
   return a, b
end

--- blobs{n=, classes=, dim=, seed=, spread=, separation=}: Gaussian blobs for classification.
--- Class centres are N(0, separation^2) in `dim` dims; points are centre + N(0, spread^2); labels
--- 1..classes, balanced (example i has class (i-1) % classes + 1, then the order is shuffled).
function M.blobs(opts)
   opts = opts or {}
   local n, c, d = opts.n or 512, opts.classes or 3, opts.dim or 2
   local seed, spread, sep = opts.seed or 1, opts.spread or 1.0, opts.separation or 4.0
   if c < 1 or n < 1 or d < 1 then error("blobs: n, classes and dim must be >= 1", 2) end
   local x, y = with_seed(seed, function()
      local centres = core.randn(c, d) * sep
      local ids = {}
      for i = 1, n do ids[i] = (i - 1) % c + 1 end
      local labels = core.tensor(ids, "i64"):indexSelect(1, core.randperm(n))
      local pts = centres:indexSelect(1, labels) + core.randn(n, d) * spread
      return pts, labels
   end)
   return new_dataset("blobs", x, y, {numClasses = c})
end

--- randomImages{n=, classes=, channels=, height=, width=, seed=, dtype="u8"|"f32"}: images whose
--- class shows as a brighter square at a class-dependent position (learnable, for tests).
function M.randomImages(opts)
   opts = opts or {}
   local n, c = opts.n or 64, opts.classes or 4
   local ch, h, w = opts.channels or 1, opts.height or 8, opts.width or 8
   local dtype = opts.dtype or "u8"
   local x, y = with_seed(opts.seed or 1, function()
      local labels = core.randint(1, c, n)
      local noise = core.rand(n, ch, h, w) * 100
      local mark = core.zeros(c, ch, h, w)
      for k = 1, c do
         local r = ((k - 1) * 2) % math.max(h - 1, 1) + 1
         mark:narrow(1, k, 1):narrow(3, r, math.min(2, h - r + 1)):fill_(150)
      end
      local imgs = noise + mark:indexSelect(1, labels)
      if dtype == "u8" or dtype == "byte" then imgs = imgs:byte() end
      return imgs, labels
   end)
   return new_dataset("randomImages", x, y, {numClasses = c})
end

return M
