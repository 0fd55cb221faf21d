-- VGG with BatchNorm for CIFAR as in RepDistiller's models/vgg.py (its vgg8_bn .. vgg19_bn, which
-- its model_dict names vgg8 .. vgg19): five blocks of 3x3 convs (with bias) + BN + ReLU, the last
-- ReLU of each block left out (RepDistiller applies it after the block, so the block's output is the
-- pre-activation); 2x2 max pools after blocks 0, 1, 2 (and after block 3 only for 64x64 inputs, as
-- there), global average pool, one linear layer 512 -> classes (no FC stack).
--   cfg S (vgg8):  {64}, {128}, {256}, {512}, {512}
--   cfg A (vgg11): {64}, {128}, {256, 256}, {512, 512}, {512, 512}
--   cfg B (vgg13): {64, 64}, {128, 128}, {256, 256}, {512, 512}, {512, 512}
--   cfg D (vgg16): three convs in blocks 2-4;  cfg E (vgg19): four
-- models.vgg{cfg = "S", classes = 100}; vgg8, vgg11, vgg13, vgg16, vgg19.
-- Weights start as RepDistiller's: conv N(0, sqrt(2 / (9 out))), bias 0; linear N(0, 0.01), bias 0.
-- Taps: children (block0..block4: pre-activation outputs, block0.1 ...; pool0..pool3), relu0..relu4 (the
-- blocks after their ReLU), "pool" (N, 512), "logits". featureTaps / preactTaps: RepDistiller's
-- is_feat lists [f0..f5] (preact: block1..4 before the ReLU).
local nn = require "retort.nn"
local preset = require "retort.models.preset"
local repinit = require "retort.models.repinit"
local options = require "retort.options"

local CFG = {
   S = {{64}, {128}, {256}, {512}, {512}},
   A = {{64}, {128}, {256, 256}, {512, 512}, {512, 512}},
   B = {{64, 64}, {128, 128}, {256, 256}, {512, 512}, {512, 512}},
   D = {{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}},
   E = {{64, 64}, {128, 128}, {256, 256, 256, 256}, {512, 512, 512, 512}, {512, 512, 512, 512}},
}

local VGG = nn.class("VGG", nn.Module)

function VGG:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.vgg", o, {cfg = true, classes = true, inChannels = true}, 4)
   local cfg = CFG[o.cfg or "S"]
   if not cfg then error(("models.vgg: cfg must be S, A, B, D or E, got %s"):format(tostring(o.cfg)), 3) end
   self.cfg, self.classes = o.cfg or "S", o.classes or 100
   local cin = o.inChannels or 3
   for b = 0, 4 do
      local block = nn.Sequential()
      for i, v in ipairs(cfg[b + 1]) do
         block:add(nn.Conv2d(cin, v, 3, {padding = 1}))
         block:add(nn.BatchNorm2d(v))
         if i < #cfg[b + 1] then block:add(nn.ReLU()) end
         cin = v
      end
      self:addModule("block" .. b, block)
      if b < 4 then self:addModule("pool" .. b, nn.MaxPool2d(2, {stride = 2})) end
   end
   self:addModule("classifier", nn.Linear(512, self.classes))
   for b = 0, 4 do self:declareTap("relu" .. b) end
   self:declareTap("pool")
   self:declareTap("logits")
   self.featureTaps = {"relu0", "relu1", "relu2", "relu3", "relu4", "pool"}
   self.preactTaps = {"relu0", "block1", "block2", "block3", "block4", "pool"}
   repinit(self, {linear = "normal"})
end

function VGG:apply(x, ctx)
   local h = x:size(3)
   for b = 0, 4 do
      x = self:emit(ctx, "relu" .. b, self:runChild("block" .. b, x, ctx):relu())
      if b < 3 or (b == 3 and h == 64) then x = self:runChild("pool" .. b, x, ctx) end
   end
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("classifier", pooled, ctx))
end

function VGG:extraRepr() return ("cfg %s, %d classes"):format(self.cfg, self.classes) end

local M = {VGG = VGG}

function M.vgg(o) return VGG(o) end

for name, cfg in pairs{vgg8 = "S", vgg11 = "A", vgg13 = "B", vgg16 = "D", vgg19 = "E"} do
   M[name] = preset(VGG, {cfg = cfg})
end

return M
