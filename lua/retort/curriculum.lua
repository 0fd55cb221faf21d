-- Curriculum learning (DESIGN.md §5b): a difficulty score per example, a pacing function that says
-- which fraction of the easiest examples an epoch draws from, and a loader that applies both.
--
--   local scores = retort.curriculum.scores(cache, {kind = "loss"})   -- or (teacher, {data = loader})
--   local pace = retort.curriculum.pacing{kind = "root", start = 0.3, epochs = 5}
--   local train = retort.curriculum.Loader(loader, {scores = scores, pacing = pace})
--   retort.train.fit{model = d, optimizer = opt, train = train, epochs = 10}
--
-- Scores (larger = harder), from the teacher's logits z and the true class y (p = softmax(z)):
--   loss      -log p_y                        (the teacher's cross-entropy on the true label)
--   entropy   -sum_k p_k log p_k               (how unsure the teacher is)
--   margin    -(p_y - max_{k != y} p_k)        (a small or negative margin is hard)
-- read from a soft-target cache (view 1) or computed with a live teacher over the loader.
--
-- Pacing: a retort.schedule of progress giving the fraction f in (0, 1] of the examples, easiest
-- first, that epoch e draws from (evaluated at the start of the epoch, t = e - 1 elapsed epochs):
--   linear  f = start + (1 - start) * min(1, t / epochs)
--   root    f = sqrt(start^2 + (1 - start^2) * min(1, t / epochs))   (Platanios et al. 2019)
--   step    f = start + (1 - start) * floor(min(1, t / epochs) * steps) / steps
-- Any schedule works as pacing (retort.schedule.linear{...}, a function of progress).
--
-- Loader options: scores (a tensor [N]) or selfPaced (the model being trained: before each epoch its
-- own loss on every example becomes the score, Kumar et al. 2010's self-paced learning), pacing,
-- anti (true: hardest first, anti-curriculum), weights (instead of dropping the examples outside
-- the fraction, keep every example and weight those outside by minWeight, default 0.25; train.fit
-- passes the weights to the loss as ctx.weights). The subset is reshuffled every epoch from the
-- base loader's seed; everything else (augmentation, views, normalisation) is the base loader's.
local core = require "retort.core"
local schedule = require "retort.schedule"
local options = require "retort.options"

local M = {}

-- --------------------------------------------------------------------------------------------
-- scores

local KINDS = {loss = true, entropy = true, margin = true}

local function score_logits(z, y, kind)
   if kind == "loss" then return require("retort.loss").crossEntropy(z, y, {reduction = "none"}) end
   local logp = z:logSoftmax(2)
   if kind == "entropy" then
      return -(logp:exp() * logp):sum(2):view(-1)
   end
   local p = logp:exp()
   local py = p:gather(2, y:view(-1, 1)):view(-1)
   local onehot = core.arange(1, z:size(2), "i64"):view(1, -1):eq(y:view(-1, 1)):float()
   local others = p - onehot * 2 -- the true class never wins the max over the others
   return -(py - others:max(2):view(-1))
end

--- scores(source, {kind = "loss", data = loader, batchSize = 500}): difficulty per example, f32 [N].
--- source: a soft-target cache (retort.cache), or a teacher network run over `data` in dataset order.
function M.scores(source, o)
   o = o or {}
   local kind = o.kind or "loss"
   if not KINDS[kind] then
      error(("curriculum.scores: kind must be \"loss\", \"entropy\" or \"margin\", got %s"):format(tostring(kind)), 2)
   end
   if require("retort.cache").isCache(source) then
      if not source.complete then error("curriculum.scores: the cache is partial; scores need every example", 2) end
      return core.noGrad(function() return score_logits(source:logitsOfView(1), source.labels + 1, kind) end)
   end
   if type(source) ~= "table" or type(source.forward) ~= "function" then
      error("curriculum.scores: bad argument #1 (a soft-target cache or a teacher network expected)", 2)
   end
   local loader = o.data
   if type(loader) ~= "table" or type(loader.gather) ~= "function" then
      error("curriculum.scores: a live teacher needs data = a retort.data.Loader", 2)
   end
   return M.modelScores(source, loader, kind, 1, o.batchSize)
end

-- the model's score of every example of loader (dataset order, that epoch's augmentation), run in
-- evaluation mode (the model's mode is restored)
function M.modelScores(model, loader, kind, epoch, batch)
   batch = batch or 500
   local was = model:isTraining()
   model:evaluate()
   local parts, device = {}, model.device and model:device() or "cpu"
   core.noGrad(function()
      for at = 1, loader.n, batch do
         local idx = core.arange(at, math.min(at + batch - 1, loader.n), "i64")
         local x, y = loader:gather(idx, epoch)
         parts[#parts + 1] = score_logits(model:forward(x:to(device)), y:to(device), kind):cpu()
      end
   end)
   if was then model:training() end
   return core.cat(parts, 1):float()
end

-- --------------------------------------------------------------------------------------------
-- pacing

--- pacing{kind = "linear" | "root" | "step", start = 0.2, epochs = 5, steps = 4}: a schedule of the
--- fraction of examples (easiest first) each epoch draws from.
function M.pacing(o)
   o = o or {}
   local kind, start, epochs, steps = o.kind or "linear", o.start or 0.2, o.epochs or 5, o.steps or 4
   if type(start) ~= "number" or start <= 0 or start > 1 then
      error(("curriculum.pacing: start must be in (0, 1], got %s"):format(tostring(start)), 2)
   end
   if type(epochs) ~= "number" or epochs <= 0 then
      error(("curriculum.pacing: epochs must be > 0, got %s"):format(tostring(epochs)), 2)
   end
   local function u(p) return math.min(1, math.max(0, ((p.epoch or 1) - 1) / epochs)) end
   local fn
   if kind == "linear" then
      fn = function(p) return start + (1 - start) * u(p) end
   elseif kind == "root" then
      fn = function(p) return math.sqrt(start * start + (1 - start * start) * u(p)) end
   elseif kind == "step" then
      if math.type(steps) ~= "integer" or steps < 1 then
         error("curriculum.pacing: steps must be an integer >= 1", 2)
      end
      fn = function(p) return start + (1 - start) * math.floor(u(p) * steps + 1e-9) / steps end
   else
      error(("curriculum.pacing: kind must be \"linear\", \"root\" or \"step\", got %s"):format(tostring(kind)), 2)
   end
   return fn
end

-- --------------------------------------------------------------------------------------------
-- the loader

local CLoader = {}

-- example indices ordered easiest first (hardest first when anti); ties by index, so it is stable
local function ranking(scores, anti)
   local s = scores:totable()
   local idx = {}
   for i = 1, #s do idx[i] = i end
   table.sort(idx, function(a, b)
      if s[a] ~= s[b] then
         if anti then return s[a] > s[b] end
         return s[a] < s[b]
      end
      return a < b
   end)
   return core.tensor(idx, "i64")
end

--- Loader(base, {scores | selfPaced, pacing, anti = false, weights = false, minWeight = 0.25})
function M.Loader(base, o)
   if type(base) ~= "table" or type(base.gather) ~= "function" then
      error("curriculum.Loader: bad argument #1 (a retort.data.Loader expected)", 2)
   end
   if type(o) ~= "table" then error("curriculum.Loader: bad argument #2 (table of options expected)", 2) end
   local known = {scores = true, selfPaced = true, pacing = true, anti = true, weights = true, minWeight = true}
   options.check("curriculum.Loader", o, known, 2)
   if (o.scores == nil) == (o.selfPaced == nil) then
      error("curriculum.Loader: give scores (a tensor of difficulties) or selfPaced (the model), one of them", 2)
   end
   if o.scores ~= nil and (not core.isTensor(o.scores) or o.scores:dim() ~= 1 or o.scores:size(1) ~= base.n) then
      error(("curriculum.Loader: scores must be a 1-D tensor of %d difficulties (one per example), got %s"):format(
         base.n, core.isTensor(o.scores) and table.concat(o.scores:shape(), "x") or type(o.scores)), 2)
   end
   if o.pacing == nil or not schedule.isSchedule(o.pacing) then
      error("curriculum.Loader: pacing must be a schedule (retort.curriculum.pacing{...}) or a function of progress", 2)
   end
   local self = setmetatable({base = base, pacing = o.pacing, anti = o.anti and true or false,
                              selfPaced = o.selfPaced, useWeights = o.weights and true or false,
                              minWeight = o.minWeight or 0.25, epoch = base.epoch or 1}, CLoader)
   if o.scores then self.rank = ranking(o.scores, self.anti) end
   return self
end

CLoader.__index = function(self, k)
   local v = rawget(CLoader, k)
   if v ~= nil then return v end
   return rawget(self, "base")[k] -- dataset fields (x, y, n, seed, pad, views) and other methods
end

--- fraction(epoch): the fraction of examples the epoch draws from.
function CLoader:fraction(epoch)
   local f = schedule.value(self.pacing, {epoch = epoch or self.epoch, step = 0})
   return math.min(1, math.max(0, f))
end

-- how many of the easiest examples the epoch uses
function CLoader:count(epoch)
   return math.max(1, math.min(self.base.n, math.ceil(self:fraction(epoch) * self.base.n - 1e-9)))
end

function CLoader:setEpoch(e)
   self.epoch = e
   self.base:setEpoch(e)
   if self.selfPaced then
      self.rank = ranking(M.modelScores(self.selfPaced, self.base, "loss", e), self.anti)
   end
   return self
end

--- order(epoch): the epoch's example indices: its subset of the easiest, shuffled (all of them, in
--- the base loader's order, with weights = true).
function CLoader:order(epoch)
   epoch = epoch or self.epoch
   if not self.rank then self:setEpoch(epoch) end
   if self.useWeights then return self.base:order(epoch) end
   local k = self:count(epoch)
   local subset = self.rank:narrow(1, 1, k)
   if self.base.shuffle then return subset:indexSelect(1, core.shufflePermutation(k, self.base.seed, epoch)) end
   return subset
end

--- weights(idx, epoch): per-example loss weights (weights = true): 1 inside the epoch's fraction,
--- minWeight outside. nil when the loader selects instead.
function CLoader:weights(idx, epoch)
   if not self.useWeights then return nil end
   epoch = epoch or self.epoch
   if self._wEpoch ~= epoch then
      local w = {}
      for i = 1, self.base.n do w[i] = self.minWeight end
      for _, i in ipairs(self.rank:narrow(1, 1, self:count(epoch)):totable()) do w[i] = 1 end
      self._w, self._wEpoch = core.tensor(w), epoch
   end
   return self._w:indexSelect(1, idx)
end

function CLoader:numExamples()
   if self.useWeights then return self.base:numExamples() end
   return self.base:exampleCount(self:count(self.epoch))
end

function CLoader:numBatches()
   if self.useWeights then return self.base:numBatches() end
   return self.base:batchCount(self:count(self.epoch))
end

function CLoader:batches(epoch)
   epoch = epoch or self.epoch
   return self.base:batchesOf(self:order(epoch), epoch)
end

function CLoader:__tostring()
   return ("retort.curriculum.Loader(%s%s, epoch %d: %.0f%% of %d examples%s)"):format(
      self.selfPaced and "self-paced" or "scores", self.anti and ", anti" or "", self.epoch,
      100 * self:fraction(self.epoch), self.base.n, self.useWeights and (", others weighted " .. self.minWeight) or "")
end

return M
