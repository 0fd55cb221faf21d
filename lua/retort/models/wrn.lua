-- Wide ResNets (Zagoruyko & Komodakis 2016) as in RepDistiller's models/wrn.py:
--   WRN-d-k: n = (d - 4) / 6 pre-activation blocks per group, widths {16, 16k, 32k, 64k};
--   conv1 3x3 - block1 (16k) - block2 (32k, stride 2) - block3 (64k, stride 2) - bn - relu
--   - global average pool - fc.
--   Block: o = relu(bn1(x)); y = conv2(dropout(relu(bn2(conv1(o))))); y + (x or conv1x1(o)),
--   the 1x1 projection (no bias) where the width or stride changes.
-- models.wrn{depth = 40, widen = 2, classes = 100, dropout = 0}; wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2.
-- Taps: child paths (conv1, block1, block1.1, ...), "pool" (N, C), "logits".
-- featureTaps: RepDistiller's is_feat list [f0..f4] = conv1, block1..3, pool; preactTaps: its
-- preact=True list, where f1..f3 pass through the BN that follows them (the next group's first
-- block's bn1, the final bn): conv1, block2.1.bn1, block3.1.bn1, bn, pool. Weights start as
-- RepDistiller's: conv N(0, sqrt(2 / (9 out))), BN 1 / 0, linear bias 0.
local nn = require "retort.nn"
local preset = require "retort.models.preset"
local repinit = require "retort.models.repinit"
local options = require "retort.options"

local WideBlock = nn.class("WideBlock", nn.Module)

function WideBlock:__init(inPlanes, outPlanes, stride, dropout)
   nn.Module.__init(self)
   self.inPlanes, self.outPlanes, self.stride = inPlanes, outPlanes, stride
   self.equal = inPlanes == outPlanes and stride == 1
   self:addModule("bn1", nn.BatchNorm2d(inPlanes))
   self:addModule("conv1", nn.Conv2d(inPlanes, outPlanes, 3, {stride = stride, padding = 1, bias = false}))
   self:addModule("bn2", nn.BatchNorm2d(outPlanes))
   if dropout and dropout > 0 then self:addModule("drop", nn.Dropout(dropout)) end
   self:addModule("conv2", nn.Conv2d(outPlanes, outPlanes, 3, {padding = 1, bias = false}))
   if not self.equal then
      self:addModule("shortcut", nn.Conv2d(inPlanes, outPlanes, 1, {stride = stride, bias = false}))
   end
end

function WideBlock:apply(x, ctx)
   local o = self:runChild("bn1", x, ctx):relu()
   local y = self:runChild("conv1", o, ctx)
   y = self:runChild("bn2", y, ctx):relu()
   if self._modules.drop then y = self:runChild("drop", y, ctx) end
   y = self:runChild("conv2", y, ctx)
   if self.equal then return y + x end
   return y + self:runChild("shortcut", o, ctx)
end

function WideBlock:extraRepr()
   return ("%d -> %d%s"):format(self.inPlanes, self.outPlanes, self.stride ~= 1 and (", stride " .. self.stride) or "")
end

local WRN = nn.class("WideResNet", nn.Module)

function WRN:__init(o)
   nn.Module.__init(self)
   o = o or {}
   options.check("models.wrn", o, {depth = true, widen = true, classes = true, dropout = true, inChannels = true}, 4)
   local depth, k = o.depth or 40, o.widen or 2
   if (depth - 4) % 6 ~= 0 then error(("models.wrn: depth must be 6n + 4, got %d"):format(depth), 3) end
   local n = (depth - 4) // 6
   local w = {16, 16 * k, 32 * k, 64 * k}
   self.depth, self.widen, self.classes = depth, k, o.classes or 100
   self:addModule("conv1", nn.Conv2d(o.inChannels or 3, w[1], 3, {padding = 1, bias = false}))
   for g = 1, 3 do
      local group = nn.Sequential()
      for b = 1, n do
         group:add(WideBlock(b == 1 and w[g] or w[g + 1], w[g + 1], (b == 1 and g > 1) and 2 or 1, o.dropout))
      end
      self:addModule("block" .. g, group)
   end
   self:addModule("bn", nn.BatchNorm2d(w[4]))
   self:addModule("fc", nn.Linear(w[4], self.classes))
   self:declareTap("pool")
   self:declareTap("logits")
   self.featureTaps = {"conv1", "block1", "block2", "block3", "pool"}
   self.preactTaps = {"conv1", "block2.1.bn1", "block3.1.bn1", "bn", "pool"}
   repinit(self, {linear = "zeroBias"})
end

function WRN:apply(x, ctx)
   x = self:runChild("conv1", x, ctx)
   for g = 1, 3 do x = self:runChild("block" .. g, x, ctx) end
   x = self:runChild("bn", x, ctx):relu()
   local pooled = self:emit(ctx, "pool", x:adaptiveAvgPool2d(1):flatten(2))
   return self:emit(ctx, "logits", self:runChild("fc", pooled, ctx))
end

function WRN:extraRepr() return ("WRN-%d-%d, %d classes"):format(self.depth, self.widen, self.classes) end

local M = {WideResNet = WRN, WideBlock = WideBlock}

function M.wrn(o) return WRN(o) end

for _, dk in ipairs{{16, 1}, {16, 2}, {40, 1}, {40, 2}} do
   M[("wrn_%d_%d"):format(dk[1], dk[2])] = preset(WRN, {depth = dk[1], widen = dk[2]})
end

return M
