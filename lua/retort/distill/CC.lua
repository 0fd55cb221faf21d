-- Correlation congruence (Peng et al. 2019) as RepDistiller trains it: both features are embedded
-- by a linear layer to `dim` (128) and L2-normalised, then features.cc compares them:
--   e(f) = normalize(W f + b);  loss = mean_i sum_j |e_s - e_t|_ij * |e_s - e_t|_(i+1)j;  weight 0.02
local nn = require "retort.nn"
local Method = require "retort.distill.Method"
local features = require "retort.distill.features"

local CC = nn.class("CC", Method)
CC.weight = 0.02

local function numel(shape, from)
   local n = 1
   for i = from, #shape do n = n * shape[i] end
   return n
end

function CC:setup(gs, hs)
   local dim = self.opts.dim or 128
   self:addModule("embedStudent", nn.Linear(numel(gs, 2), dim))
   self:addModule("embedTeacher", nn.Linear(numel(hs, 2), dim))
   return self
end

function CC:loss(fs, ft)
   if not self._modules.embedStudent then error("CC: not set up; give the Distiller a sample batch (sample = x)", 2) end
   local es = features.normalize(self:runChild("embedStudent", fs:reshape(fs:size(1), -1)), 2)
   local et = features.normalize(self:runChild("embedTeacher", ft:detach():reshape(ft:size(1), -1)), 2)
   return features.cc(es, et)
end

return CC
