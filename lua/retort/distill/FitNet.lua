-- FitNets hint learning (Romero et al. 2015): a regressor r joins the student's guided layer to the
-- teacher's hint layer, and the hint loss is 0.5 * mean((u_h - r(v_g))^2) (DESIGN.md §4).
--
--   retort.distill.FitNet{}                    the paper's regressor: for maps, a conv whose kernel
--                                              makes the shapes meet (k = H_g - H_h + 1, no padding,
--                                              stride 1); for vectors, a linear layer
--   retort.distill.FitNet{variant = "convreg"} RepDistiller's ConvReg: a conv (3x3 stride 2 to halve,
--                                              else kernel 1 + H_g - H_h) + BatchNorm + ReLU,
--                                              loss mean((u_h - r(v_g))^2) with beta = 100
-- The regressor is built by setup(guidedShape, hintShape) (the Distiller calls it from a sample
-- batch); shapes no regressor can join are an error saying why.
local nn = require "retort.nn"
local Method = require "retort.distill.Method"
local check = require "retort.distill.check"

local FitNet = nn.class("FitNet", Method)
FitNet.weight = 1

function FitNet:__init(opts)
   Method.__init(self, opts)
   self.variant = self.opts.variant or "paper"
   if self.variant ~= "paper" and self.variant ~= "convreg" then
      error(("FitNet: variant must be \"paper\" or \"convreg\", got %s"):format(tostring(self.variant)), 3)
   end
   if self.variant == "convreg" and not self.opts.weight then self.weight = 100 end
end

local function cannot(gs, hs, why)
   error(("FitNet: no regressor joins the guided layer %s to the hint %s: %s"):format(
      check.shape(gs), check.shape(hs), why), 4)
end

--- FitNet.convReg(guidedShape, hintShape, {relu = true}): RepDistiller's ConvReg, a conv that maps the
--- guided map onto the hint's shape (3x3 stride 2 padding 1 to halve; a 4x4 stride-2 padding-1
--- transposed conv to double; else kernel 1 + H_g - H_h), then BatchNorm and (with relu) ReLU. The AB
--- method's connector is the same without the ReLU.
function FitNet.convReg(gs, hs, opts)
   local cg, hg, wg, ch, hh, wh = gs[2], gs[3], gs[4], hs[2], hs[3], hs[4]
   local r = nn.Sequential()
   if hg == 2 * hh and wg == 2 * wh then
      r:add(nn.Conv2d(cg, ch, 3, {stride = 2, padding = 1}))
   elseif 2 * hg == hh and 2 * wg == wh then
      r:add(nn.ConvTranspose2d(cg, ch, 4, {stride = 2, padding = 1}))
   elseif hg >= hh and wg >= wh then
      r:add(nn.Conv2d(cg, ch, {hg - hh + 1, wg - wh + 1}))
   else
      cannot(gs, hs, "the guided map is smaller than the hint, and not half its size (which ConvReg's transposed "
             .. "conv doubles)")
   end
   r:add(nn.BatchNorm2d(ch))
   if opts and opts.relu then r:add(nn.ReLU()) end
   return r
end

--- setup(guidedShape, hintShape): build the regressor (shapes include the batch dimension).
function FitNet:setup(gs, hs)
   if #gs == 2 and #hs == 2 then
      self:addModule("regressor", nn.Linear(gs[2], hs[2]))
      return self
   end
   if #gs ~= 4 or #hs ~= 4 then cannot(gs, hs, "both must be feature maps (N, C, H, W) or vectors (N, D)") end
   local cg, hg, wg, ch, hh, wh = gs[2], gs[3], gs[4], hs[2], hs[3], hs[4]
   if self.variant == "paper" then
      if hg < hh or wg < wh then
         cannot(gs, hs, "the paper's regressor is a convolution without padding, so the guided map must be at least "
                .. "as large as the hint (use variant = \"convreg\" or guide a larger layer)")
      end
      self:addModule("regressor", nn.Conv2d(cg, ch, {hg - hh + 1, wg - wh + 1}))
   else
      self:addModule("regressor", FitNet.convReg(gs, hs, {relu = true}))
   end
   return self
end

function FitNet:loss(fs, ft)
   if not self._modules.regressor then
      error("FitNet: the regressor is not built yet; give the Distiller a sample batch (sample = x) or call "
            .. "setup(guidedShape, hintShape)", 2)
   end
   local r = self:runChild("regressor", fs)
   if not check.sameShape(r, ft) then
      error(("FitNet: the regressor maps %s to %s but the hint is %s"):format(check.shape(fs), check.shape(r),
         check.shape(ft)), 2)
   end
   local d = r - ft:detach()
   local mse = (d * d):mean()
   return self.variant == "paper" and mse * 0.5 or mse
end

return FitNet
