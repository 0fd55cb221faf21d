-- The CIFAR "ImageNet-style" ResNets of RepDistiller's models/resnetv2.py (ResNet18/34/50/101/152 for
-- 32x32 inputs): ResNet50 is the teacher of MobileNetV2 and vgg8 in its table.
--   conv1 3x3 (3 -> 64, no bias, stride 1: no max pool) + bn1 + relu
--   layer1..4: planes 64, 128, 256, 512, first strides 1, 2, 2, 2; blocks {3, 4, 6, 3} Bottlenecks for
--   ResNet50 ({2, 2, 2, 2} / {3, 4, 6, 3} BasicBlocks for ResNet18 / 34)
--   global average pool, linear 512 * expansion -> classes.
--   Bottleneck(in, planes, stride): 1x1 to planes + bn1 + relu, 3x3 (stride) + bn2 + relu, 1x1 to
--   4 planes + bn3, plus the input (or a 1x1 stride conv + BN projection when the shape changes), relu.
-- Weights start as RepDistiller's: conv kaiming normal (fan_out, relu), BN 1 / 0, linear PyTorch's.
-- models.resnetv2{block = "bottleneck" | "basic", blocks = {3, 4, 6, 3}, classes = 100};
-- ResNet18, ResNet34, ResNet50, ResNet101, ResNet152.
-- Taps: children (conv1, bn1, relu, layer1..4, layer1.1, layer1.1.conv1, ...), each block's "preact",
-- "pool" (N, 2048), "logits". featureTaps: relu, layer1..4, pool; preactTaps: the last block's preact
-- of each layer in place of the layer.
local nn = require "retort.nn"
local preset = require "retort.models.preset"
local repinit = require "retort.models.repinit"
local options = require "retort.options"

local Bottleneck = nn.class("Bottleneck", nn.Module)
Bottleneck.expansion = 4

function Bottleneck:__init(inPlanes, planes, stride)
   nn.Module.__init(self)
   local out = 4 * planes
   self.inPlanes, self.planes, self.stride = inPlanes, planes, stride
   self:addModule("conv1", nn.Conv2d(inPlanes, planes, 1, {bias = false}))
   self:addModule("bn1", nn.BatchNorm2d(planes))
   self:addModule("conv2", nn.Conv2d(planes, planes, 3, {stride = stride, padding = 1, bias = false}))
   self:addModule("bn2", nn.BatchNorm2d(planes))
   self:addModule("conv3", nn.Conv2d(planes, out, 1, {bias = false}))
   self:addModule("bn3", nn.BatchNorm2d(out))
   if stride ~= 1 or inPlanes ~= out then
      self:addModule("shortcut", nn.Sequential()
         :add("conv", nn.Conv2d(inPlanes, out, 1, {stride = stride, bias = false}))
         :add("bn", nn.BatchNorm2d(out)))
   end
   self:declareTap("preact")
end

function Bottleneck:apply(x, ctx)
   local y = self:runChild("bn1", self:runChild("conv1", x, ctx), ctx):relu()
   y = self:runChild("bn2", self:runChild("conv2", y, ctx), ctx):relu()
   y = self:runChild("bn3", self:runChild("conv3", y, ctx), ctx)
   y = y + (self._modules.shortcut and self:runChild("shortcut", x, ctx) or x)
   return self:emit(ctx, "preact", y):relu()
end

function Bottleneck:extraRepr()
   return ("%d -> %d -> %d%s"):format(self.inPlanes, self.planes, 4 * self.planes,
      self.stride ~= 1 and (", stride " .. self.stride) or "")
end

local ResNetV2 = nn.class("ResNetV2", nn.Module)

function ResNetV2:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.resnetv2", o, {block = true, blocks = true, classes = true, inChannels = true}, 4)
   local kind = o.block or "bottleneck"
   if kind ~= "bottleneck" and kind ~= "basic" then
      error(("models.resnetv2: block must be \"bottleneck\" or \"basic\", got %s"):format(tostring(kind)), 3)
   end
   local blocks = o.blocks or {3, 4, 6, 3}
   if type(blocks) ~= "table" or #blocks ~= 4 then error("models.resnetv2: blocks must list 4 block counts", 3) end
   local expansion = kind == "bottleneck" and 4 or 1
   self.block, self.blocks, self.classes = kind, blocks, o.classes or 100
   self:addModule("conv1", nn.Conv2d(o.inChannels or 3, 64, 3, {padding = 1, bias = false}))
   self:addModule("bn1", nn.BatchNorm2d(64))
   self:addModule("relu", nn.ReLU())
   local inPlanes = 64
   self.featureTaps, self.preactTaps = {"relu"}, {"relu"}
   for l, planes in ipairs{64, 128, 256, 512} do
      local layer = nn.Sequential()
      for b = 1, blocks[l] do
         local stride = (b == 1 and l > 1) and 2 or 1
         if kind == "bottleneck" then
            layer:add(Bottleneck(inPlanes, planes, stride))
         else
            layer:add(nn.BasicBlock(inPlanes, planes, {stride = stride}))
         end
         inPlanes = planes * expansion
      end
      self:addModule("layer" .. l, layer)
      self.featureTaps[#self.featureTaps + 1] = "layer" .. l
      self.preactTaps[#self.preactTaps + 1] = ("layer%d.%d.preact"):format(l, blocks[l])
   end
   self.featureTaps[6], self.preactTaps[6] = "pool", "pool"
   self:addModule("linear", nn.Linear(512 * expansion, self.classes))
   self:declareTap("pool")
   self:declareTap("logits")
   repinit(self)
end

function ResNetV2:apply(x, ctx)
   x = self:runChild("relu", self:runChild("bn1", self:runChild("conv1", x, ctx), ctx), ctx)
   for l = 1, 4 do x = self:runChild("layer" .. l, x, ctx) end
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("linear", pooled, ctx))
end

function ResNetV2:extraRepr()
   return ("%s blocks %s, %d classes"):format(self.block, table.concat(self.blocks, "/"), self.classes)
end

local M = {ResNetV2 = ResNetV2, Bottleneck = Bottleneck}

function M.resnetv2(o) return ResNetV2(o) end
M.ResNet18 = preset(ResNetV2, {block = "basic", blocks = {2, 2, 2, 2}})
M.ResNet34 = preset(ResNetV2, {block = "basic", blocks = {3, 4, 6, 3}})
M.ResNet50 = preset(ResNetV2, {block = "bottleneck", blocks = {3, 4, 6, 3}})
M.ResNet101 = preset(ResNetV2, {block = "bottleneck", blocks = {3, 4, 23, 3}})
M.ResNet152 = preset(ResNetV2, {block = "bottleneck", blocks = {3, 8, 36, 3}})

return M
