-- nn.SyncBatchNorm: batch normalisation whose training statistics are those of the whole batch over
-- every rank (retort.dist), as PyTorch's torch.nn.SyncBatchNorm. Plain BatchNorm under several ranks
-- normalises each rank's part of the batch on its own (the default, and DistributedDataParallel's);
-- with a small per-rank batch those statistics are noisy, and SyncBatchNorm makes N ranks of batch B/N
-- train as one process of batch B.
--
--   nn.SyncBatchNorm(C [, {eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true}])
--   nn.SyncBatchNorm.convert(net)   -- every BatchNorm1d/2d inside net becomes a SyncBatchNorm sharing its
--                                   -- weights and statistics (train.fit{syncBatchNorm = true} does this)
--
-- Input (N, C, ...) of any rank >= 2. Training, several ranks: with M = the elements per channel summed
-- over the ranks, mean = allReduce(sum x) / M, var = allReduce(sum (x - mean)^2) / M (two passes: no
-- cancellation), y = (x - mean) / sqrt(var + eps) * weight + bias; the running statistics take the global
-- mean and the unbiased global variance (var * M / (M - 1)), the same on every rank. The reductions are
-- retort.dist.allReduce, which is differentiable: backward sums the gradients of the statistics over the
-- ranks, so each rank's input gradient is that of the whole batch's loss. One rank, or evaluation: the
-- fused batch-norm op, exactly nn.BatchNorm's. Parameters and buffers have BatchNorm's names, so
-- checkpoints load into either.
local retort = require "retort"
local Module = require "retort.nn.Module"
local state = require "retort.nn.batchnorm_state"

local SyncBN = Module.class("SyncBatchNorm", Module)

function SyncBN:__init(numFeatures, opts)
   Module.__init(self)
   require("retort.options").check("nn.SyncBatchNorm", opts or {},
      {eps = true, momentum = true, affine = true, trackRunningStats = true}, 3)
   state.init(self, "SyncBatchNorm", numFeatures, opts)
end

-- the statistics of the whole batch over the ranks, and the normalised x (N, C, ...)
local function sync_forward(self, x)
   local dist = retort.dist
   local C = self.numFeatures
   local shape = x:shape()
   shape[1], shape[2] = shape[2], shape[1]
   local xc = x:transpose(1, 2):reshape(C, -1) -- (C, elements per channel on this rank)
   local count = dist.allReduceNumbers({xc:size(2)})[1]
   if count < 2 then
      error(("nn.SyncBatchNorm(%d): training needs more than one value per channel over all ranks, got %d"):format(
         C, count), 3)
   end
   local mean = dist.allReduce(xc:sum(2), "sum") / count
   local d = xc - mean:view(C, 1)
   local var = dist.allReduce((d * d):sum(2), "sum") / count
   local y = d * (var + self.eps):pow(-0.5):view(C, 1)
   if self.affine then y = y * self.weight:view(C, 1) + self.bias:view(C, 1) end
   if self.trackRunningStats then
      local m = self.momentum
      retort.noGrad(function()
         self.runningMean:copy_(self.runningMean * (1 - m) + mean:detach() * m)
         self.runningVar:copy_(self.runningVar * (1 - m) + var:detach() * (m * count / (count - 1)))
      end)
   end
   return y:view(shape):transpose(1, 2)
end

function SyncBN:apply(x)
   if x:dim() < 2 or x:size(2) ~= self.numFeatures then
      error(("nn.SyncBatchNorm(%d): expected input (N, C, ...) with %d channels in dim 2, got (%s)"):format(
         self.numFeatures, self.numFeatures, table.concat(x:shape(), "x")), 3)
   end
   local training = self._training or not self.trackRunningStats
   if training and retort.dist.isDistributed() then return sync_forward(self, x) end
   if x:dim() > 4 then
      error(("nn.SyncBatchNorm(%d): one process normalises inputs of 2 to 4 dims, got (%s)"):format(
         self.numFeatures, table.concat(x:shape(), "x")), 3)
   end
   return x:batchNorm(self.runningMean, self.runningVar, self.weight, self.bias,
      {training = training, momentum = self.momentum, eps = self.eps})
end

SyncBN.extraRepr = state.extraRepr

-- a SyncBatchNorm holding bn's tensors and settings
local function from_batchnorm(bn)
   local s = setmetatable({}, SyncBN)
   Module.__init(s)
   s.numFeatures, s.eps, s.momentum = bn.numFeatures, bn.eps, bn.momentum
   s.affine, s.trackRunningStats = bn.affine, bn.trackRunningStats
   s._training = bn._training
   for _, name in ipairs(bn._params) do s:registerParameter(name, bn[name]) end
   for _, name in ipairs(bn._buffers) do s:registerBuffer(name, bn[name]) end
   return s
end

--- SyncBatchNorm.convert(module): replaces every nn.BatchNorm1d / nn.BatchNorm2d inside module (module
--- itself included) by a SyncBatchNorm sharing its parameters and buffers; returns the module (or its
--- replacement) and the number replaced.
function SyncBN.convert(m)
   local nn = require "retort.nn"
   local function is_bn(x)
      local mt = getmetatable(x)
      return mt == nn.BatchNorm1d or mt == nn.BatchNorm2d
   end
   if not nn.isModule(m) then
      error(("bad argument #1 to 'convert' (nn.Module expected, got %s)"):format(type(m)), 2)
   end
   if is_bn(m) then return from_batchnorm(m), 1 end
   local n = 0
   local function walk(mod)
      for _, name in ipairs(mod._children) do
         local child = mod._modules[name]
         if is_bn(child) then
            mod._modules[name] = from_batchnorm(child)
            if rawget(mod, name) == child then rawset(mod, name, mod._modules[name]) end
            n = n + 1
         else
            walk(child)
         end
      end
   end
   walk(m)
   return m, n
end

return {SyncBatchNorm = SyncBN}
