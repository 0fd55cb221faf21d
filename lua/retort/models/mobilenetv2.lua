-- MobileNetV2 for CIFAR as in RepDistiller's models/mobilenetv2.py (from "Knowledge Distillation via
-- Route Constrained Optimization"); `mobile_half` (width 0.5, expansion 6) is the student of vgg13
-- and ResNet50 in RepDistiller's table, where it is called MobileNetV2.
--   conv1: 3x3 stride 2 conv (no bias) + BN + ReLU, 32w channels
--   blocks.1..7 (t = expansion, c = channels x w, n blocks, s = first stride):
--     {1, 16, 1, 1}, {t, 24, 2, 1}, {t, 32, 3, 2}, {t, 64, 4, 2}, {t, 96, 3, 1}, {t, 160, 3, 2}, {t, 320, 1, 1}
--   each an inverted residual: 1x1 conv to in*t + BN + ReLU, 3x3 depthwise (stride) + BN + ReLU, 1x1 conv
--   to out + BN; plus the input when stride 1 and in == out. (As there, the first block keeps its 1x1
--   expansion conv although t = 1.)
--   conv2: 1x1 conv to 1280 (1280w when w > 1) + BN + ReLU; global average pool; classifier: a linear layer.
-- Channel counts are floor(c * w). The average pool is global: RepDistiller's AvgPool2d(input/16,
-- ceil_mode) is the same on 32x32 inputs.
-- models.mobilenetv2{widthMult = 1, expansion = 6, classes = 100}; mobile_half (= MobileNetV2) is
-- {widthMult = 0.5}, mobile_full {widthMult = 1}.
-- Weights start as RepDistiller's: conv N(0, sqrt(2 / (k k out))), linear N(0, 0.01), biases 0.
-- Taps: children (conv1, blocks, blocks.1 .. blocks.7, blocks.2.1.conv ...), "pool" (N, 1280), "logits".
-- featureTaps / preactTaps (the same, as there): conv1, blocks.2, blocks.3, blocks.5, blocks.7, pool.
local nn = require "retort.nn"
local preset = require "retort.models.preset"
local repinit = require "retort.models.repinit"
local options = require "retort.options"

local function conv_bn_relu(cin, cout, k, stride)
   return nn.Sequential()
      :add(nn.Conv2d(cin, cout, k, {stride = stride, padding = (k - 1) // 2, bias = false}))
      :add(nn.BatchNorm2d(cout))
      :add(nn.ReLU())
end

local InvertedResidual = nn.class("InvertedResidual", nn.Module)

function InvertedResidual:__init(inp, oup, stride, t)
   nn.Module.__init(self)
   self.inp, self.oup, self.stride, self.t = inp, oup, stride, t
   self.residual = stride == 1 and inp == oup
   local hidden = inp * t
   self:addModule("conv", nn.Sequential()
      :add(nn.Conv2d(inp, hidden, 1, {bias = false})):add(nn.BatchNorm2d(hidden)):add(nn.ReLU())
      :add(nn.Conv2d(hidden, hidden, 3, {stride = stride, padding = 1, groups = hidden, bias = false}))
      :add(nn.BatchNorm2d(hidden)):add(nn.ReLU())
      :add(nn.Conv2d(hidden, oup, 1, {bias = false})):add(nn.BatchNorm2d(oup)))
end

function InvertedResidual:apply(x, ctx)
   local y = self:runChild("conv", x, ctx)
   if self.residual then return x + y end
   return y
end

function InvertedResidual:extraRepr()
   return ("%d -> %d, expand %d%s%s"):format(self.inp, self.oup, self.t, self.stride ~= 1 and ", stride 2" or "",
      self.residual and ", residual" or "")
end

local SETTING = {{1, 16, 1, 1}, {nil, 24, 2, 1}, {nil, 32, 3, 2}, {nil, 64, 4, 2}, {nil, 96, 3, 1}, {nil, 160, 3, 2},
                 {nil, 320, 1, 1}}

local MobileNetV2 = nn.class("MobileNetV2", nn.Module)

function MobileNetV2:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.mobilenetv2", o, {widthMult = true, expansion = true, classes = true, inChannels = true}, 4)
   local w, t = o.widthMult or 1, o.expansion or 6
   if type(w) ~= "number" or w <= 0 then error("models.mobilenetv2: widthMult must be a positive number", 3) end
   if math.type(t) ~= "integer" or t < 1 then error("models.mobilenetv2: expansion must be an integer >= 1", 3) end
   self.widthMult, self.expansion, self.classes = w, t, o.classes or 100
   local cin = math.floor(32 * w)
   self:addModule("conv1", conv_bn_relu(o.inChannels or 3, cin, 3, 2))
   local blocks = nn.Sequential()
   for _, s in ipairs(SETTING) do
      local cout = math.floor(s[2] * w)
      local stage = nn.Sequential()
      for i = 1, s[3] do
         stage:add(InvertedResidual(cin, cout, i == 1 and s[4] or 1, s[1] or t))
         cin = cout
      end
      blocks:add(stage)
   end
   self:addModule("blocks", blocks)
   self.lastChannel = w > 1 and math.floor(1280 * w) or 1280
   self:addModule("conv2", conv_bn_relu(cin, self.lastChannel, 1, 1))
   self:addModule("classifier", nn.Sequential():add(nn.Linear(self.lastChannel, self.classes)))
   self:declareTap("pool")
   self:declareTap("logits")
   self.featureTaps = {"conv1", "blocks.2", "blocks.3", "blocks.5", "blocks.7", "pool"}
   self.preactTaps = self.featureTaps
   repinit(self, {linear = "normal"})
end

function MobileNetV2:apply(x, ctx)
   x = self:runChild("conv1", x, ctx)
   x = self:runChild("blocks", x, ctx)
   x = self:runChild("conv2", x, ctx)
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("classifier", pooled, ctx))
end

function MobileNetV2:extraRepr()
   return ("width %g, expansion %d, %d classes"):format(self.widthMult, self.expansion, self.classes)
end

local M = {MobileNetV2 = MobileNetV2, InvertedResidual = InvertedResidual}

function M.mobilenetv2(o) return MobileNetV2(o) end
M.mobile_half = preset(MobileNetV2, {widthMult = 0.5})
M.mobile_full = preset(MobileNetV2, {widthMult = 1})

return M
