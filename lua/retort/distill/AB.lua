-- Activation boundaries (Heo et al. 2019) as RepDistiller trains it: the student's pre-activation map
-- goes through a connector (RepDistiller's ConvReg without ReLU: conv + BatchNorm; none when channels
-- and size already agree) and features.ab compares it with the teacher's pre-activation map:
--   loss = sum((c(fs) + m)^2 [c(fs) > -m, ft <= 0] + (c(fs) - m)^2 [c(fs) <= m, ft > 0]) / N,  m = 1
-- Weight 3e-3 (RepDistiller's 3/1000; it also weights the k-th of n layers by 2^(k - n), which is a
-- pair weight here). AB is an init-stage method (phase "init"): it trains the student up to the
-- guided layer before the main stage, which then uses only CE and KD (Distiller:setStage).
local nn = require "retort.nn"
local Method = require "retort.distill.Method"
local FitNet = require "retort.distill.FitNet"
local features = require "retort.distill.features"
local check = require "retort.distill.check"

local AB = nn.class("AB", Method)
AB.weight = 3e-3
AB.phase = "init"

function AB:setup(gs, hs)
   if #gs ~= 4 or #hs ~= 4 then
      error(("AB: needs feature maps (N, C, H, W) for both layers, got %s and %s"):format(check.shape(gs),
         check.shape(hs)), 3)
   end
   if gs[2] ~= hs[2] or gs[3] ~= hs[3] or gs[4] ~= hs[4] then
      self:addModule("connector", FitNet.convReg(gs, hs, {relu = false}))
   end
   return self
end

function AB:loss(fs, ft)
   if self._modules.connector then fs = self:runChild("connector", fs) end
   return features.ab(fs, ft, self.opts)
end

return AB
