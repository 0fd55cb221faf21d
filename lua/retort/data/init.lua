-- retort.data: datasets and loaders (DESIGN.md §3; data/README.md has the dataset notes).
--
--   local data = retort.data
--   local train = data.fashionMnist{split = "train"}      -- images u8 (N,1,28,28), labels 1..10
--   local loader = data.Loader(train, {batchSize = 128, shuffle = true, seed = 1,
--                                      normalize = {data.fashionMnistMean, data.fashionMnistStd}})
--   for x, y in loader:batches() do ... end
--
-- datasets.lua: fashionMnist, mnist, tensorDataset, blobs, randomImages; loader.lua: Loader;
-- cifar.lua: cifar{root, variant, split, labels}, cifar10Mean/Std, cifar100Mean/Std;
-- npy.lua: npy{x, y, layout, numClasses} (.npy files, in memory); hdf5.lua: hdf5{path, x, y, layout,
-- numClasses, inMemory} (read on demand); arrays.lua: the layouts and label checks they share;
-- image_folder.lua: imageFolder{root, size, channels, inMemory, skipBad} (PNG/JPEG folders, decoded in C);
-- here: fashionMnistLoaders (the train/test loaders the recipes use).
local datasets = require "retort.data.datasets"
local Loader = require "retort.data.loader"

local M = {Loader = Loader}
for k, v in pairs(datasets) do M[k] = v end
M.npy = require "retort.data.npy"   -- npy{x = "x.npy", y = "y.npy"}
M.hdf5 = require "retort.data.hdf5" -- hdf5{path = "train.h5", x = "/images", y = "/labels", layout = "NHWC"}
for k, v in pairs(require "retort.data.cifar") do M[k] = v end -- cifar{...}, cifar10/100 mean and std
M.imageFolder = require "retort.data.image_folder" -- imageFolder{root = "pets", size = {64, 64}}

--- fashionMnistLoaders{batchSize = 128, seed = 1, limit = 0, augment = nil, views = nil, testBatchSize = 1000,
--- root = nil, device = "cpu"}:
--- the train loader (shuffled, normalised with the training set's mean/std, optionally augmented)
--- and the test loader that recipes use. limit > 0 keeps the first `limit` examples of each split
--- (quick runs and smoke tests); device ("cpu", "cuda" or "auto") is where their batches arrive.
function M.fashionMnistLoaders(opts)
   opts = opts or {}
   local train = datasets.fashionMnist{split = "train", root = opts.root}
   local test = datasets.fashionMnist{split = "test", root = opts.root}
   local limit = opts.limit or 0
   if limit > 0 then
      train = datasets.tensorDataset(train.x:narrow(1, 1, math.min(limit, train:size())),
                                     train.y:narrow(1, 1, math.min(limit, train:size())))
      test = datasets.tensorDataset(test.x:narrow(1, 1, math.min(limit, test:size())),
                                    test.y:narrow(1, 1, math.min(limit, test:size())))
   end
   local norm = {mean = datasets.fashionMnistMean, std = datasets.fashionMnistStd}
   return Loader(train, {batchSize = opts.batchSize or 128, shuffle = true, seed = opts.seed or 1, normalize = norm,
                         augment = opts.augment, views = opts.views, device = opts.device}),
          Loader(test, {batchSize = opts.testBatchSize or 1000, normalize = norm, device = opts.device})
end

return M
