-- retort.data: datasets and loaders (DESIGN.md §3; data/README.md has the dataset notes).
--
--   local data = retort.data
--   local train = data.fashionMnist{split = "train"}      -- images u8 (N,1,28,28), labels 1..10
--   local loader = data.Loader(train, {batchSize = 128, shuffle = true, seed = 1,
--                                      normalize = {data.fashionMnistMean, data.fashionMnistStd}})
--   for x, y in loader:batches() do ... end
--
-- datasets.lua: fashionMnist, mnist, tensorDataset, blobs, randomImages; loader.lua: Loader.
local datasets = require "retort.data.datasets"
local Loader = require "retort.data.loader"

local M = {Loader = Loader}
for k, v in pairs(datasets) do M[k] = v end
return M
