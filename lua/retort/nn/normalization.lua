-- Batch normalisation: nn.BatchNorm1d (input (N, C) or (N, C, L)) and nn.BatchNorm2d ((N, C, H, W)).
--
--   nn.BatchNorm2d(C [, {eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true}])
--   training:   y = (x - mean_b) / sqrt(var_b + eps) * weight + bias  (biased batch variance);
--               runningMean = (1 - momentum) runningMean + momentum mean_b,
--               runningVar  = (1 - momentum) runningVar + momentum var_b (unbiased), in place.
--   evaluation: the running statistics replace the batch ones.
-- Parameters weight (1s) and bias (0s) when affine; buffers runningMean (0s), runningVar (1s).
local retort = require "retort"
local Module = require "retort.nn.Module"

local function make(name, dims)
   local BN = Module.class(name, Module)

   function BN:__init(numFeatures, opts)
      Module.__init(self)
      if math.type(numFeatures) ~= "integer" or numFeatures < 1 then
         error(("nn.%s(C): a positive channel count is expected, got %s"):format(name, tostring(numFeatures)), 3)
      end
      opts = opts or {}
      self.numFeatures = numFeatures
      self.eps = opts.eps or 1e-5
      self.momentum = opts.momentum or 0.1
      self.affine = opts.affine ~= false
      self.trackRunningStats = opts.trackRunningStats ~= false
      if self.affine then
         self:registerParameter("weight", retort.ones(numFeatures))
         self:registerParameter("bias", retort.zeros(numFeatures))
      end
      if self.trackRunningStats then
         self:registerBuffer("runningMean", retort.zeros(numFeatures))
         self:registerBuffer("runningVar", retort.ones(numFeatures))
      end
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

   function BN:extraRepr()
      local s = tostring(self.numFeatures)
      if self.eps ~= 1e-5 then s = s .. ", eps " .. self.eps end
      if self.momentum ~= 0.1 then s = s .. ", momentum " .. self.momentum end
      if not self.affine then s = s .. ", no affine" end
      return s
   end

   return BN
end

return {BatchNorm1d = make("BatchNorm1d", {2, 3}), BatchNorm2d = make("BatchNorm2d", {4})}
