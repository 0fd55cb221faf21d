-- ShuffleNetV2 for CIFAR as in RepDistiller's models/ShuffleNetv2.py (ShuffleV2: net size 1, stages
-- of 116, 232, 464 channels with 3, 7, 3 basic blocks after a down block, then a 1x1 conv to 1024),
-- a student of resnet32x4 in its table.
--   conv1: 1x1 conv 3 -> 24 (no bias) + bn1 + relu (32x32 kept)
--   layer k: DownBlock(in, out) then n BasicBlocks(out), each ending in a channel shuffle of 2 groups.
--     DownBlock: left  = 3x3 depthwise stride 2 + bn1, 1x1 to out/2 + bn2 + relu;
--                right = 1x1 to out/2 + bn3 + relu, 3x3 depthwise stride 2 + bn4, 1x1 + bn5 + relu;
--                shuffle(cat(left, right)).
--     BasicBlock: split the channels in halves x1, x2; x2 -> 1x1 + bn1 + relu, 3x3 depthwise + bn2,
--                1x1 + bn3 (the "preact" half), relu; shuffle(cat(x1, that)). Its preact tap is
--                cat(x1, bn3 output), as RepDistiller returns it.
--   conv2: 1x1 464 -> 1024 + bn2 + relu; global average pool (4x4); linear 1024 -> classes.
-- Weights: PyTorch's layer defaults (RepDistiller's file sets none).
-- models.shufflenetv2{netSize = 1, classes = 100} (net sizes 0.2, 0.3, 0.5, 1, 1.5, 2 as there); ShuffleV2.
-- Taps: children (conv1, bn1, relu, layer1 .. layer3, layer1.1 (the down block), layer1.2 ...,
-- conv2, bn2), each basic block's "preact", "pool" (N, 1024), "logits". featureTaps: relu,
-- layer1..3, pool; preactTaps: the last basic block's preact of each layer in place of the layer.
local nn = require "retort.nn"
local retort = require "retort"
local preset = require "retort.models.preset"
local ChannelShuffle = require "retort.models.channel_shuffle"
local options = require "retort.options"

local CONFIGS = {
   [0.2] = {out = {40, 80, 160, 512}, blocks = {3, 3, 3}},
   [0.3] = {out = {40, 80, 160, 512}, blocks = {3, 7, 3}},
   [0.5] = {out = {48, 96, 192, 1024}, blocks = {3, 7, 3}},
   [1] = {out = {116, 232, 464, 1024}, blocks = {3, 7, 3}},
   [1.5] = {out = {176, 352, 704, 1024}, blocks = {3, 7, 3}},
   [2] = {out = {224, 488, 976, 2048}, blocks = {3, 7, 3}},
}

local function conv(cin, cout, k, o)
   o = o or {}
   return nn.Conv2d(cin, cout, k, {stride = o.stride, padding = (k - 1) // 2, groups = o.groups, bias = false})
end

local BasicBlock = nn.class("ShuffleV2Block", nn.Module)

function BasicBlock:__init(channels)
   nn.Module.__init(self)
   self.channels, self.split = channels, channels // 2 -- RepDistiller: int(C * 0.5)
   local c = channels - self.split
   self:addModule("conv1", conv(c, c, 1))
   self:addModule("bn1", nn.BatchNorm2d(c))
   self:addModule("conv2", conv(c, c, 3, {groups = c}))
   self:addModule("bn2", nn.BatchNorm2d(c))
   self:addModule("conv3", conv(c, c, 1))
   self:addModule("bn3", nn.BatchNorm2d(c))
   self:addModule("shuffle", ChannelShuffle(2))
   self:declareTap("preact")
end

function BasicBlock:apply(x, ctx)
   local x1, x2 = x:narrow(2, 1, self.split), x:narrow(2, self.split + 1, self.channels - self.split)
   local out = self:runChild("bn1", self:runChild("conv1", x2, ctx), ctx):relu()
   out = self:runChild("bn2", self:runChild("conv2", out, ctx), ctx)
   local pre = self:runChild("bn3", self:runChild("conv3", out, ctx), ctx)
   if ctx then self:emit(ctx, "preact", retort.cat({x1, pre}, 2)) end
   return self:runChild("shuffle", retort.cat({x1, pre:relu()}, 2), ctx)
end

function BasicBlock:extraRepr() return ("%d channels"):format(self.channels) end

local DownBlock = nn.class("ShuffleV2DownBlock", nn.Module)

function DownBlock:__init(cin, cout)
   nn.Module.__init(self)
   self.cin, self.cout = cin, cout
   local mid = cout // 2
   self:addModule("conv1", conv(cin, cin, 3, {stride = 2, groups = cin}))
   self:addModule("bn1", nn.BatchNorm2d(cin))
   self:addModule("conv2", conv(cin, mid, 1))
   self:addModule("bn2", nn.BatchNorm2d(mid))
   self:addModule("conv3", conv(cin, mid, 1))
   self:addModule("bn3", nn.BatchNorm2d(mid))
   self:addModule("conv4", conv(mid, mid, 3, {stride = 2, groups = mid}))
   self:addModule("bn4", nn.BatchNorm2d(mid))
   self:addModule("conv5", conv(mid, mid, 1))
   self:addModule("bn5", nn.BatchNorm2d(mid))
   self:addModule("shuffle", ChannelShuffle(2))
end

function DownBlock:apply(x, ctx)
   local function cb(i, y) return self:runChild("bn" .. i, self:runChild("conv" .. i, y, ctx), ctx) end
   local left = cb(2, cb(1, x)):relu()
   local right = cb(3, x):relu()
   right = cb(5, cb(4, right)):relu()
   return self:runChild("shuffle", retort.cat({left, right}, 2), ctx)
end

function DownBlock:extraRepr() return ("%d -> %d, stride 2"):format(self.cin, self.cout) end

local ShuffleNetV2 = nn.class("ShuffleNetV2", nn.Module)

function ShuffleNetV2:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.shufflenetv2", o, {netSize = true, classes = true, inChannels = true}, 4)
   local size = o.netSize or 1
   local cfg = CONFIGS[size]
   if not cfg then
      error(("models.shufflenetv2: netSize must be 0.2, 0.3, 0.5, 1, 1.5 or 2, got %s"):format(tostring(size)), 3)
   end
   self.netSize, self.classes = size, o.classes or 100
   self:addModule("conv1", nn.Conv2d(o.inChannels or 3, 24, 1, {bias = false}))
   self:addModule("bn1", nn.BatchNorm2d(24))
   self:addModule("relu", nn.ReLU())
   local cin = 24
   self.featureTaps, self.preactTaps = {"relu"}, {"relu"}
   for l = 1, 3 do
      local layer = nn.Sequential():add(DownBlock(cin, cfg.out[l]))
      for _ = 1, cfg.blocks[l] do layer:add(BasicBlock(cfg.out[l])) end
      cin = cfg.out[l]
      self:addModule("layer" .. l, layer)
      self.featureTaps[#self.featureTaps + 1] = "layer" .. l
      self.preactTaps[#self.preactTaps + 1] = ("layer%d.%d.preact"):format(l, cfg.blocks[l] + 1)
   end
   self.featureTaps[5], self.preactTaps[5] = "pool", "pool"
   self:addModule("conv2", conv(cin, cfg.out[4], 1))
   self:addModule("bn2", nn.BatchNorm2d(cfg.out[4]))
   self:addModule("linear", nn.Linear(cfg.out[4], self.classes))
   self:declareTap("pool")
   self:declareTap("logits")
end

function ShuffleNetV2:apply(x, ctx)
   x = self:runChild("relu", self:runChild("bn1", self:runChild("conv1", x, ctx), ctx), ctx)
   for l = 1, 3 do x = self:runChild("layer" .. l, x, ctx) end
   x = self:runChild("bn2", self:runChild("conv2", x, ctx), ctx):relu()
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("linear", pooled, ctx))
end

function ShuffleNetV2:extraRepr() return ("net size %g, %d classes"):format(self.netSize, self.classes) end

local M = {ShuffleNetV2 = ShuffleNetV2}

function M.shufflenetv2(o) return ShuffleNetV2(o) end
M.ShuffleV2 = preset(ShuffleNetV2, {netSize = 1})

return M
