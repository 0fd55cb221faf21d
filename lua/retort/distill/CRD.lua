-- Contrastive representation distillation (Tian et al. 2020) as RepDistiller trains it.
--   es = normalize(W_s flat(fs) + b_s), et = normalize(W_t flat(ft) + b_t)   (dim 128, both trained)
-- Two memory banks (nData x dim, buffers) hold a momentum average of every training example's past
-- student and teacher embeddings. Each example is scored against the other network's memory at its
-- own index (the positive) and at K negatives drawn from examples of other classes, and the NCE loss
-- of features.crd pushes positives up and negatives down:
--   loss = nce(exp(memT[idx] . es / T) / Zs) + nce(exp(memS[idx] . et / T) / Zt),  T = 0.07,  weight 0.8
-- After each step the memories move to the batch's embeddings: m <- normalize(0.5 m + 0.5 e).
--
--   retort.distill.CRD{labels = trainSet.y}          -- the training labels, (nData) i64 1-based
--   options: dim (128), negatives (K, 16384), T (0.07), momentum (0.5), labels (required: the
--            negatives come from other classes, and its length is nData)
-- The loss needs the batch's dataset indices: the Distiller passes ctx.indices (train.fit gives them
-- from the loader). Negatives are drawn from the default generator, so runs are reproducible.
local retort = require "retort"
local nn = require "retort.nn"
local Method = require "retort.distill.Method"
local features = require "retort.distill.features"

local CRD = nn.class("CRD", Method)
CRD.weight = 0.8

local function numel(shape)
   local n = 1
   for i = 2, #shape do n = n * shape[i] end
   return n
end

function CRD:__init(opts)
   Method.__init(self, opts)
   local labels = self.opts.labels
   if not retort.isTensor(labels) or labels:dim() ~= 1 then
      error("CRD: option 'labels' must be the training set's labels, a 1-D tensor (e.g. trainLoader.y): "
            .. "negatives are drawn from the other classes", 3)
   end
   self.nData = labels:size(1)
   self.K = self.opts.negatives or 16384
   if math.type(self.K) ~= "integer" or self.K < 1 then error("CRD: negatives must be an integer >= 1", 3) end
   -- per class, the dataset indices of every other class (RepDistiller's cls_negative)
   local y = labels:long():totable()
   local by_class = {}
   for i, c in ipairs(y) do
      by_class[c] = by_class[c] or {}
      table.insert(by_class[c], i)
   end
   self.labelOf = y
   self.negatives = {}
   for c in pairs(by_class) do
      local others = {}
      for i, ci in ipairs(y) do if ci ~= c then others[#others + 1] = i end end
      if #others == 0 then error("CRD: the labels hold a single class; negatives must come from other classes", 3) end
      self.negatives[c] = retort.tensor(others, "i64")
   end
end

function CRD:setup(gs, hs)
   local dim = self.opts.dim or 128
   self:addModule("embedStudent", nn.Linear(numel(gs), dim))
   self:addModule("embedTeacher", nn.Linear(numel(hs), dim))
   local stdv = 1 / math.sqrt(dim / 3)
   self:registerBuffer("memoryStudent", retort.rand(self.nData, dim) * (2 * stdv) - stdv)
   self:registerBuffer("memoryTeacher", retort.rand(self.nData, dim) * (2 * stdv) - stdv)
   -- Zs, Zt: set on the first batch (negative: not yet), kept in checkpoints with the memories
   self:registerBuffer("normalizers", retort.tensor({-1, -1}))
   return self
end

-- idx (N, 1 + K): each example's own index, then K negatives of other classes
function CRD:sampleIndices(indices)
   local n = indices:size(1)
   local rows = {}
   for i = 1, n do
      local own = indices:get(i)
      local pool = self.negatives[self.labelOf[own]]
      local pick = pool:indexSelect(1, retort.randint(1, pool:size(1), self.K))
      rows[i] = retort.cat({retort.tensor({own}, "i64"), pick}, 1)
   end
   return retort.stack(rows, 1)
end

-- m[idx] <- normalize(momentum * m[idx] + (1 - momentum) * e), idx on the memory's device
local function update(memory, idx, e, momentum)
   local rows = features.normalize(memory:indexSelect(1, idx) * momentum + e * (1 - momentum), 2)
   memory:indexCopy_(1, idx, rows)
end

function CRD:loss(fs, ft, ctx)
   if not self._modules.embedStudent then
      error("CRD: not set up; give the Distiller a sample batch (sample = x)", 2)
   end
   local indices = ctx and ctx.indices
   if not retort.isTensor(indices) then
      error("CRD: needs the batch's dataset indices (ctx.indices): train with retort.train.fit and a "
            .. "retort.data.Loader, which pass them", 2)
   end
   local es = features.normalize(self:runChild("embedStudent", fs:reshape(fs:size(1), -1)), 2)
   local et = features.normalize(self:runChild("embedTeacher", ft:detach():reshape(ft:size(1), -1)), 2)
   local device = self.memoryStudent:device()
   local idx = self:sampleIndices(indices):to(device) -- drawn on the host, moved once
   local z = self.normalizers
   -- read once per run (they stay set once set); then used where they are, without a wait per step
   if not self._zKnown then self._zKnown = z:get(1) > 0 end
   local known = self._zKnown
   local loss, zs, zt = features.crd(es, et, self.memoryStudent, self.memoryTeacher, idx, {T = self.opts.T or 0.07,
      nData = self.nData, Zs = known and z:narrow(1, 1, 1) or nil, Zt = known and z:narrow(1, 2, 1) or nil})
   if not known then z:set(1, zs); z:set(2, zt); self._zKnown = true end
   local m = self.opts.momentum or 0.5
   local on_device = indices:to(device)
   retort.noGrad(function()
      update(self.memoryStudent, on_device, es:detach(), m)
      update(self.memoryTeacher, on_device, et:detach(), m)
   end)
   return loss
end

return CRD
