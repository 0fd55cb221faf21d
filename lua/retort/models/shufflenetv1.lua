-- ShuffleNetV1 for CIFAR as in RepDistiller's models/ShuffleNetv1.py (ShuffleV1: groups 3, stages of
-- 240, 480, 960 channels with 4, 8, 4 blocks), a student of resnet32x4 and wrn_40_2 in its table.
--   conv1: 1x1 conv 3 -> 24 (no bias) + bn1 + relu (32x32 kept)
--   layer1..3: Bottleneck blocks; the first of each has stride 2 and concatenates its output with a
--   3x3 stride-2 average pool of its input (so it produces out - in channels itself), the others add
--   the input. Bottleneck(in, out, stride, g): mid = floor(out / 4);
--     conv1 1x1 grouped (1 group when in = 24, else g) + bn1 + relu, channel shuffle, conv2 3x3
--     depthwise (stride) + bn2 + relu, conv3 1x1 grouped (g) + bn3; then cat or add; then relu.
--   global average pool (4x4), linear 960 -> classes.
-- Weights: PyTorch's layer defaults (RepDistiller's file sets none).
-- models.shufflenetv1{outPlanes = {240, 480, 960}, blocks = {4, 8, 4}, groups = 3, classes = 100}; ShuffleV1.
-- Taps: children (conv1, bn1, relu, layer1 .. layer3, layer1.1, layer1.1.shuffle ...), each block's
-- "preact" (before its last relu), "pool" (N, 960), "logits". featureTaps: relu, layer1..3, pool;
-- preactTaps: the last block's preact of each layer in place of the layer.
local nn = require "retort.nn"
local retort = require "retort"
local preset = require "retort.models.preset"
local ChannelShuffle = require "retort.models.channel_shuffle"
local options = require "retort.options"

local Bottleneck = nn.class("ShuffleV1Bottleneck", nn.Module)

function Bottleneck:__init(inPlanes, outPlanes, stride, groups)
   nn.Module.__init(self)
   self.inPlanes, self.outPlanes, self.stride = inPlanes, outPlanes, stride
   local mid = outPlanes // 4
   local g = inPlanes == 24 and 1 or groups
   self:addModule("conv1", nn.Conv2d(inPlanes, mid, 1, {groups = g, bias = false}))
   self:addModule("bn1", nn.BatchNorm2d(mid))
   self:addModule("shuffle", ChannelShuffle(g))
   self:addModule("conv2", nn.Conv2d(mid, mid, 3, {stride = stride, padding = 1, groups = mid, bias = false}))
   self:addModule("bn2", nn.BatchNorm2d(mid))
   self:addModule("conv3", nn.Conv2d(mid, outPlanes, 1, {groups = groups, bias = false}))
   self:addModule("bn3", nn.BatchNorm2d(outPlanes))
   if stride == 2 then self:addModule("shortcut", nn.AvgPool2d(3, {stride = 2, padding = 1})) end
   self:declareTap("preact")
end

function Bottleneck:apply(x, ctx)
   local out = self:runChild("bn1", self:runChild("conv1", x, ctx), ctx):relu()
   out = self:runChild("shuffle", out, ctx)
   out = self:runChild("bn2", self:runChild("conv2", out, ctx), ctx):relu()
   out = self:runChild("bn3", self:runChild("conv3", out, ctx), ctx)
   local preact
   if self.stride == 2 then
      preact = retort.cat({out, self:runChild("shortcut", x, ctx)}, 2)
   else
      preact = out + x
   end
   return self:emit(ctx, "preact", preact):relu()
end

function Bottleneck:extraRepr()
   return ("%d -> %d%s"):format(self.inPlanes, self.outPlanes + (self.stride == 2 and self.inPlanes or 0),
      self.stride == 2 and ", stride 2, concat" or "")
end

local ShuffleNetV1 = nn.class("ShuffleNetV1", nn.Module)

function ShuffleNetV1:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.shufflenetv1", o, {outPlanes = true, blocks = true, groups = true, classes = true,
                                            inChannels = true}, 4)
   local outPlanes, blocks, groups = o.outPlanes or {240, 480, 960}, o.blocks or {4, 8, 4}, o.groups or 3
   self.classes, self.groups = o.classes or 100, groups
   self:addModule("conv1", nn.Conv2d(o.inChannels or 3, 24, 1, {bias = false}))
   self:addModule("bn1", nn.BatchNorm2d(24))
   self:addModule("relu", nn.ReLU())
   local inPlanes = 24
   self.featureTaps, self.preactTaps = {"relu"}, {"relu"}
   for l = 1, 3 do
      local layer = nn.Sequential()
      for i = 1, blocks[l] do
         local cat = i == 1 and inPlanes or 0
         layer:add(Bottleneck(inPlanes, outPlanes[l] - cat, i == 1 and 2 or 1, groups))
         inPlanes = outPlanes[l]
      end
      self:addModule("layer" .. l, layer)
      self.featureTaps[#self.featureTaps + 1] = "layer" .. l
      self.preactTaps[#self.preactTaps + 1] = ("layer%d.%d.preact"):format(l, blocks[l])
   end
   self.featureTaps[5], self.preactTaps[5] = "pool", "pool"
   self:addModule("linear", nn.Linear(outPlanes[3], self.classes))
   self:declareTap("pool")
   self:declareTap("logits")
end

function ShuffleNetV1:apply(x, ctx)
   x = self:runChild("relu", self:runChild("bn1", self:runChild("conv1", x, ctx), ctx), ctx)
   for l = 1, 3 do x = self:runChild("layer" .. l, x, ctx) end
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("linear", pooled, ctx))
end

function ShuffleNetV1:extraRepr() return ("groups %d, %d classes"):format(self.groups, self.classes) end

local M = {ShuffleNetV1 = ShuffleNetV1}

function M.shufflenetv1(o) return ShuffleNetV1(o) end
M.ShuffleV1 = preset(ShuffleNetV1, {})

return M
