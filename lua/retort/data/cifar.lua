-- CIFAR-10 and CIFAR-100 from the binary versions as distributed (decoded in C: core/src/cifar.c).
--
--   local ds = retort.data.cifar{root = "data", variant = 100, split = "train", labels = "fine"}
--   ds.x  u8 (N, 3, 32, 32)   ds.y  i64 (N), classes 1..C   ds.classes  names   ds.numClasses  C
--
-- Options:
--   root     the folder holding the files, or holding their usual top folder (cifar-10-batches-bin/,
--            cifar-100-binary/, as the archives unpack). Default: $RETORT_DATA_ROOT, else
--            /usr/share/datasets (as fashionMnist).
--   variant  10 or 100. Default: whichever of the two sets is found under root (an error when both are).
--   split    "train" (CIFAR-10: data_batch_1..5.bin, 50000 images; CIFAR-100: train.bin) or "test"
--            (test_batch.bin / test.bin, 10000).
--   labels   "fine" (default) or "coarse" (CIFAR-100's 20 superclasses).
--
-- Files: any whole number of records per file is accepted, so a subset (or a test's small file) reads
-- like the real thing; `complete` says whether the split has its published size (50000 / 10000).
-- A size that is not a whole number of records, a label byte out of range or a missing file is an
-- error naming the file (and, when missing, every file that was looked for and where).
-- Class names come from batches.meta.txt (CIFAR-10) or fine_label_names.txt / coarse_label_names.txt
-- (CIFAR-100) when present, else they are the ids "0".."C-1". Everything is held in memory: the
-- training split is 50000 x 3072 bytes = 150 MB.
--
-- Normalisation constants (per channel, of the training images scaled to [0, 1]):
--   cifar100Mean, cifar100Std = RepDistiller's {0.5071, 0.4867, 0.4408}, {0.2675, 0.2565, 0.2761}
--   cifar10Mean, cifar10Std   = {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616} (the training set's
--   own per-channel std; the often copied 0.2023, 0.1994, 0.2010 is a mean of per-image stds)
local core = require "retort.core"
local options = require "retort.options"
local datasets = require "retort.data.datasets"

local M = {}

M.cifar100Mean = {0.5071, 0.4867, 0.4408}
M.cifar100Std = {0.2675, 0.2565, 0.2761}
M.cifar10Mean = {0.4914, 0.4822, 0.4465}
M.cifar10Std = {0.2470, 0.2435, 0.2616}

-- per variant: the top folder of the archive, the files of each split, the meta files, the sizes
local LAYOUT = {
   [10] = {top = "cifar-10-batches-bin",
           train = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
           test = {"test_batch.bin"}, meta = {fine = "batches.meta.txt"}, classes = {fine = 10},
           size = {train = 50000, test = 10000}},
   [100] = {top = "cifar-100-binary", train = {"train.bin"}, test = {"test.bin"},
            meta = {fine = "fine_label_names.txt", coarse = "coarse_label_names.txt"},
            classes = {fine = 100, coarse = 20}, size = {train = 50000, test = 10000}},
}

local function exists(p)
   local f = io.open(p, "rb")
   if f then f:close() return true end
   return false
end

-- the folders searched, in order: root itself and its top folder
local function candidates(root, variant)
   return {root, root .. "/" .. LAYOUT[variant].top}
end

-- the folder of `candidates` that holds every file of the split, or nil
local function find_dir(root, variant, split)
   for _, dir in ipairs(candidates(root, variant)) do
      local all = true
      for _, f in ipairs(LAYOUT[variant][split]) do
         if not exists(dir .. "/" .. f) then all = false break end
      end
      if all then return dir end
   end
   return nil
end

local function default_root()
   local env = os.getenv("RETORT_DATA_ROOT")
   if env and env ~= "" then return env end
   return datasets.DEFAULT_ROOT
end

local function missing(root, variant, split)
   local dirs = candidates(root, variant)
   return ("cifar: CIFAR-%d %s files not found: expected %s in %s or %s. Download the binary version from "
      .. "the CIFAR page, unpack it, and pass its folder as root= (or set RETORT_DATA_ROOT)"):format(
      variant, split, table.concat(LAYOUT[variant][split], ", "), dirs[1], dirs[2])
end

-- class names from a meta file: one per non-empty line, exactly `count` of them
local function read_names(path, count)
   local f = io.open(path, "r")
   if not f then return nil end
   local names = {}
   for line in f:lines() do
      line = line:gsub("%s+$", "")
      if line ~= "" then names[#names + 1] = line end
   end
   f:close()
   if #names ~= count then
      error(("cifar: %s holds %d class names, expected %d (one per line)"):format(path, #names, count), 4)
   end
   return names
end

--- cifar{root=, variant=, split="train"|"test", labels="fine"|"coarse"}: see the header.
function M.cifar(opts)
   opts = opts or {}
   if type(opts) ~= "table" then
      error("cifar: bad argument #1 (table of options expected, got " .. type(opts) .. ")", 2)
   end
   options.check("cifar", opts, {root = true, variant = true, split = true, labels = true}, 2)
   local split = opts.split or "train"
   if split ~= "train" and split ~= "test" then
      error(("cifar: split must be \"train\" or \"test\", got %s"):format(tostring(split)), 2)
   end
   local labels = opts.labels or "fine"
   if labels ~= "fine" and labels ~= "coarse" then
      error(("cifar: labels must be \"fine\" or \"coarse\", got %s"):format(tostring(labels)), 2)
   end
   local root = opts.root or default_root()
   if type(root) ~= "string" then error("cifar: root must be a string (a folder)", 2) end
   local variant, dir = opts.variant, nil
   if variant == nil then
      local d10, d100 = find_dir(root, 10, split), find_dir(root, 100, split)
      if d10 and d100 then
         error(("cifar: both CIFAR-10 (%s) and CIFAR-100 (%s) files are there: pass variant = 10 or 100"):format(
            d10, d100), 2)
      end
      if not (d10 or d100) then
         error(("cifar: no CIFAR files under %s: expected CIFAR-10's %s or CIFAR-100's %s, there or in %s/ or %s/ "
            .. "(the binary versions from the CIFAR page, unpacked; or set RETORT_DATA_ROOT)"):format(root,
            table.concat(LAYOUT[10][split], ", "), table.concat(LAYOUT[100][split], ", "), LAYOUT[10].top,
            LAYOUT[100].top), 2)
      end
      variant, dir = d10 and 10 or 100, d10 or d100
   elseif variant ~= 10 and variant ~= 100 then
      error(("cifar: variant must be 10 or 100, got %s"):format(tostring(variant)), 2)
   else
      dir = find_dir(root, variant, split)
      if not dir then error(missing(root, variant, split), 2) end
   end
   if labels == "coarse" and variant ~= 100 then
      error("cifar: labels = \"coarse\" exists in CIFAR-100 only (variant = 100)", 2)
   end
   local layout = LAYOUT[variant]
   local files = {}
   for i, f in ipairs(layout[split]) do files[i] = dir .. "/" .. f end
   local ok, x, y = pcall(core.readCifar, files, variant, labels)
   if not ok then error("cifar: " .. tostring(x), 2) end
   local numClasses = layout.classes[labels]
   local classes = read_names(dir .. "/" .. layout.meta[labels], numClasses)
   if not classes then
      classes = {}
      for c = 1, numClasses do classes[c] = tostring(c - 1) end
   end
   local ds = datasets.tensorDataset(x, y, ("cifar%d(%s)"):format(variant, split))
   ds.images, ds.labels = x, y
   ds.variant, ds.split, ds.labelKind, ds.root, ds.dir, ds.files = variant, split, labels, root, dir, files
   ds.classes, ds.numClasses = classes, numClasses
   ds.complete = x:size(1) == layout.size[split]
   ds.mean = variant == 100 and M.cifar100Mean or M.cifar10Mean
   ds.std = variant == 100 and M.cifar100Std or M.cifar10Std
   return ds
end

return M
