-- What every batch normalisation holds (nn.BatchNorm1d/2d, nn.SyncBatchNorm): its settings, the
-- parameters weight (1s) and bias (0s) when affine, the buffers runningMean (0s) and runningVar (1s)
-- when it tracks running statistics, and how it prints them. One place, so checkpoints of either
-- kind have the same names and load into the other.
local retort = require "retort"

local M = {}

--- init(self, name, numFeatures, opts): checks the channel count and fills self.
function M.init(self, name, numFeatures, opts)
   if math.type(numFeatures) ~= "integer" or numFeatures < 1 then
      error(("nn.%s(C): a positive channel count is expected, got %s"):format(name, tostring(numFeatures)), 4)
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

--- extraRepr(self): "C[, eps e][, momentum m][, no affine]"
function M.extraRepr(self)
   local s = tostring(self.numFeatures)
   if self.eps ~= 1e-5 then s = s .. ", eps " .. self.eps end
   if self.momentum ~= 0.1 then s = s .. ", momentum " .. self.momentum end
   if not self.affine then s = s .. ", no affine" end
   return s
end

return M
