-- A small, seeded world for the soft-target cache specs (and the builds they run in child
-- processes and kill): 8x8 images of 4 classes, a loader that can augment with V views, and a
-- little CNN teacher. The same arguments give the same loader and teacher in every process.
local retort = require "retort"
local nn = retort.nn

local M = {}

--- loader{n = 600, views = nil, seed = 1, batchSize = 32, dataSeed = 3}
function M.loader(o)
   o = o or {}
   local d = retort.data.randomImages{n = o.n or 600, classes = 4, seed = o.dataSeed or 3}
   return retort.data.Loader(d, {batchSize = o.batchSize or 32, shuffle = true, seed = o.seed or 1,
                                 normalize = {mean = 0.3, std = 0.3}, views = o.views,
                                 augment = o.views and {crop = 1, flip = true} or nil})
end

--- teacher([seed]): conv 1->6 (3x3) - relu - pool - flatten - linear 96->4, seeded weights
function M.teacher(seed)
   local state = retort.getRngState()
   retort.manualSeed(seed or 11)
   local net = nn.Sequential()
      :add("conv", nn.Conv2d(1, 6, 3, {padding = 1})):add("relu", nn.ReLU()):add("pool", nn.MaxPool2d(2))
      :add("flatten", nn.Flatten()):add("fc", nn.Linear(96, 4))
   retort.setRngState(state)
   return net
end

return M
