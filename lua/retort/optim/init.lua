-- retort.optim: optimizers with PyTorch's update rules (formulas in each file), parameter
-- groups and schedules for any number option (Optimizer.lua has the shared protocol).
--   optim.SGD, optim.Adam, optim.AdamW, optim.RMSProp   (optim.RMSprop is an alias)
local adam = require "retort.optim.adam"

local optim = {
   Optimizer = require "retort.optim.Optimizer",
   SGD = require "retort.optim.sgd",
   Adam = adam.Adam,
   AdamW = require "retort.optim.adamw",
   RMSProp = require "retort.optim.rmsprop",
}
optim.RMSprop = optim.RMSProp
return optim
