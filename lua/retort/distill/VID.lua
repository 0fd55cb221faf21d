-- Variational information distillation (Ahn et al. 2019) as RepDistiller writes it: a 1x1-conv
-- regressor predicts the teacher map's mean from the student's, with a learned per-channel variance
--   mu = conv1x1(relu(conv1x1(relu(conv1x1(fs)))))          (no biases, mid channels = C_t)
--   var = softplus(log_scale) + eps,   loss = mean(0.5 * ((mu - ft)^2 / var + log var)),  weight 1
-- log_scale starts at softplus^-1(5 - eps), so the initial variance is 5. Maps of different sizes
-- are pooled to the smaller one first.
local retort = require "retort"
local nn = require "retort.nn"
local Method = require "retort.distill.Method"
local features = require "retort.distill.features"

local VID = nn.class("VID", Method)
VID.weight = 1

local EPS = 1e-5

function VID:setup(gs, hs)
   if #gs ~= 4 or #hs ~= 4 then error("VID: needs feature maps (N, C, H, W) for both layers", 3) end
   local cin, cout = gs[2], hs[2]
   local mid = self.opts.midChannels or cout
   self:addModule("regressor", nn.Sequential()
      :add(nn.Conv2d(cin, mid, 1, {bias = false})):add(nn.ReLU())
      :add(nn.Conv2d(mid, mid, 1, {bias = false})):add(nn.ReLU())
      :add(nn.Conv2d(mid, cout, 1, {bias = false})))
   local init = math.log(math.exp((self.opts.initVariance or 5) - EPS) - 1)
   self:registerParameter("logScale", retort.full({cout}, init))
   return self
end

function VID:loss(fs, ft)
   if not self._modules.regressor then error("VID: not set up; give the Distiller a sample batch (sample = x)", 2) end
   fs, ft = features.matchSpatial(fs, ft:detach())
   local mu = self:runChild("regressor", fs)
   local ls = self.logScale
   local var = (ls:relu() + ((ls:abs() * -1):exp() + 1):log() + EPS):view(1, -1, 1, 1) -- stable softplus
   local d = mu - ft
   return ((d * d / var + var:log()) * 0.5):mean()
end

return VID
