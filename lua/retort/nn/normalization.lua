-- Batch normalisation: nn.BatchNorm1d (input (N, C) or (N, C, L)) and nn.BatchNorm2d ((N, C, H, W)).
--
--   nn.BatchNorm2d(C [, {eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true}])
--   training:   y = (x - mean_b) / sqrt(var_b + eps) * weight + bias  (biased batch variance);
--               runningMean = (1 - momentum) runningMean + momentum mean_b,
--               runningVar  = (1 - momentum) runningVar + momentum var_b (unbiased), in place.
--   evaluation: the running statistics replace the batch ones.
-- Parameters weight (1s) and bias (0s) when affine; buffers runningMean (0s), runningVar (1s).
local Module = require "retort.nn.Module"
local state = require "retort.nn.batchnorm_state"

local function make(name, dims)
   local BN = Module.class(name, Module)

   function BN:__init(numFeatures, opts)
      Module.__init(self)
      state.init(self, name, numFeatures, opts)
   end

   function BN:apply(x)
      if x.batchNorm == nil then error(("nn.%s: this build's tensors have no batchNorm yet"):format(name), 3) end
      local d = x:dim()
      local ok = false
      for _, nd in ipairs(dims) do if d == nd then ok = true end end
      if not ok or x:size(2) ~= self.numFeatures then
         error(("nn.%s(%d): expected input %s with %d channels in dim 2, got (%s)"):format(name, self.numFeatures,
            dims[1] == 4 and "(N, C, H, W)" or "(N, C) or (N, C, L)", self.numFeatures,
            table.concat(x:shape(), "x")), 3)
      end
      local training = self._training or not self.trackRunningStats
      return x:batchNorm(self.runningMean, self.runningVar, self.weight, self.bias,
         {training = training, momentum = self.momentum, eps = self.eps})
   end

   BN.extraRepr = state.extraRepr

   return BN
end

return {BatchNorm1d = make("BatchNorm1d", {2, 3}), BatchNorm2d = make("BatchNorm2d", {4})}
