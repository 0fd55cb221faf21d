-- CIFAR ResNets (He et al. 2016) as in RepDistiller's models/resnet.py:
--   resnet8/14/20/32/44/56/110: filters {16, 16, 32, 64}; resnet8x4/32x4: {32, 64, 128, 256}
--   conv1 3x3 (3 -> f0, no bias) - bn1 - relu - layer1 (n blocks, f0 -> f1) - layer2 (f2, stride 2)
--   - layer3 (f3, stride 2) - global average pool - fc; n = (depth - 2) / 6 BasicBlocks per layer,
--   1x1 conv + BN shortcuts where the shape changes.
-- models.resnet{depth = 20, filters = {...}, classes = 100} or models.resnet20{classes = 10}.
-- Taps: every child path (conv1, layer1, layer1.1, layer1.1.preact, ...), "pool" (N, C) and "logits".
-- featureTaps: RepDistiller's is_feat list [f0..f4] = relu, layer1..3, pool; preactTaps: the same with
-- each layer's last block's preact (its preact=True list). Weights start as RepDistiller's: conv
-- kaiming normal (fan_out, relu), BN 1 / 0, linear PyTorch's default.
local nn = require "retort.nn"
local preset = require "retort.models.preset"
local repinit = require "retort.models.repinit"
local options = require "retort.options"

local ResNet = nn.class("ResNet", nn.Module)

function ResNet:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.resnet", o, {depth = true, filters = true, classes = true, inChannels = true}, 4)
   local depth = o.depth or 20
   if (depth - 2) % 6 ~= 0 then error(("models.resnet: depth must be 6n + 2, got %d"):format(depth), 3) end
   local n = (depth - 2) // 6
   local f = o.filters or {16, 16, 32, 64}
   self.depth, self.filters, self.classes = depth, f, o.classes or 100
   self:addModule("conv1", nn.Conv2d(o.inChannels or 3, f[1], 3, {padding = 1, bias = false}))
   self:addModule("bn1", nn.BatchNorm2d(f[1]))
   self:addModule("relu", nn.ReLU())
   local inPlanes = f[1]
   for l = 1, 3 do
      local layer = nn.Sequential()
      for b = 1, n do
         layer:add(nn.BasicBlock(inPlanes, f[l + 1], {stride = (b == 1 and l > 1) and 2 or 1}))
         inPlanes = f[l + 1]
      end
      self:addModule("layer" .. l, layer)
   end
   self:addModule("fc", nn.Linear(f[4], self.classes))
   self:declareTap("pool")
   self:declareTap("logits")
   self.featureTaps = {"relu", "layer1", "layer2", "layer3", "pool"}
   self.preactTaps = {"relu", ("layer1.%d.preact"):format(n), ("layer2.%d.preact"):format(n),
                      ("layer3.%d.preact"):format(n), "pool"}
   repinit(self)
end

function ResNet:apply(x, ctx)
   x = self:runChild("conv1", x, ctx)
   x = self:runChild("bn1", x, ctx)
   x = self:runChild("relu", x, ctx)
   for l = 1, 3 do x = self:runChild("layer" .. l, x, ctx) end
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("fc", pooled, ctx))
end

function ResNet:extraRepr()
   return ("depth %d, filters %s, %d classes"):format(self.depth, table.concat(self.filters, "/"), self.classes)
end

local M = {ResNet = ResNet}

function M.resnet(o) return ResNet(o) end

for _, d in ipairs{8, 14, 20, 32, 44, 56, 110} do M["resnet" .. d] = preset(ResNet, {depth = d}) end
M.resnet8x4 = preset(ResNet, {depth = 8, filters = {32, 64, 128, 256}})
M.resnet32x4 = preset(ResNet, {depth = 32, filters = {32, 64, 128, 256}})

return M
