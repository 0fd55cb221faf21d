-- retort.nn: modules (layers and containers) on top of the tensor API. See Module.lua for the
-- module protocol (forward with taps, parameters, state dicts, conversions, printing) and each
-- family's file for its layers:
--   Module.lua         nn.Module, nn.class
--   Sequential.lua     nn.Container, nn.Sequential
--   linear.lua         nn.Linear, nn.Maxout
--   conv.lua           nn.Conv2d, nn.MaxoutConv2d
--   conv_transpose.lua nn.ConvTranspose2d
--   normalization.lua  nn.BatchNorm1d, nn.BatchNorm2d
--   sync_batchnorm.lua nn.SyncBatchNorm (statistics over every rank of a distributed run)
--   activation.lua     nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Softmax, nn.LogSoftmax
--   pooling.lua        nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d
--   misc.lua           nn.Flatten, nn.Identity, nn.Dropout
--   residual.lua       nn.Residual, nn.BasicBlock
--   initializers.lua   nn.init (kaimingUniform, xavierNormal, ...)
local Module = require "retort.nn.Module"

local nn = {
   Module = Module,
   class = Module.class,
   isModule = function(x) return Module.isInstance(x, Module) end,
   init = require "retort.nn.initializers",
}

for _, file in ipairs{"Sequential", "linear", "conv", "conv_transpose", "normalization", "activation", "pooling",
                      "misc", "residual", "sync_batchnorm"} do
   for name, value in pairs(require("retort.nn." .. file)) do
      if type(value) == "table" then nn[name] = value end
   end
end

return nn
