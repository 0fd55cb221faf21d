-- retort.distill: distillation losses (DESIGN.md §4, pinned semantics).
--
--   local loss, terms = retort.distill.kd(studentLogits, teacherLogits, {T = 4, alpha = 0.9, labels = y})
--   terms.kl (unscaled KL), terms.klScaled (T^2 * KL), terms.ce (hard-label cross-entropy)
--
-- Hinton KD, as RepDistiller writes it (alpha weights the soft term):
--   kd = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)
-- KL is summed over classes and averaged over the batch, computed from log-softmax (never the log
-- of a softmax, so extreme logits stay finite). Samples whose label equals ignoreIndex are left
-- out of both terms and of the count they are averaged over. The teacher is never part of the
-- graph: its logits are detached here. Labels are 1-based class ids (as everywhere in Lua).
local retort = require "retort"

local distill = {}

local function check_logits(fn, s, t)
   if not retort.isTensor(s) then error(("bad argument #1 to '%s' (student logits tensor expected)"):format(fn), 3) end
   if not retort.isTensor(t) then error(("bad argument #2 to '%s' (teacher logits tensor expected)"):format(fn), 3) end
   local ss, ts = s:shape(), t:shape()
   if #ss ~= 2 or #ts ~= 2 then
      error(("%s: logits must be (batch, classes); got student %s and teacher %s"):format(
         fn, "(" .. table.concat(ss, "x") .. ")", "(" .. table.concat(ts, "x") .. ")"), 3)
   end
   if ss[2] ~= ts[2] then
      error(("%s: the student has %d classes and the teacher %d; they must predict the same classes"):format(
         fn, ss[2], ts[2]), 3)
   end
   if ss[1] ~= ts[1] then
      error(("%s: batch sizes differ: student %d, teacher %d"):format(fn, ss[1], ts[1]), 3)
   end
end

local function check_T(fn, T)
   if type(T) ~= "number" or not (T > 0) or T == math.huge then
      error(("%s: temperature T must be a positive number, got %s"):format(fn, tostring(T)), 3)
   end
end

-- Per-sample KL(softmax(t/T) || softmax(s/T)), shape (batch).
local function kl_rows(s, t, T)
   local log_pt = retort.noGrad(function() return t:detach():logSoftmax(2, T) end)
   local pt = retort.noGrad(function() return log_pt:exp() end)
   return (pt * (log_pt - s:logSoftmax(2, T))):sum(2)
end

-- Mean over the samples kept by the ignore mask (all samples without one).
local function masked_mean(rows, mask)
   if not mask then return rows:mean() end
   return (rows * mask):sum() / mask:sum()
end

--- kl(s, t, {T = 1}): T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes, batch mean.
function distill.kl(s, t, opts)
   opts = opts or {}
   local T = opts.T or 1
   check_logits("kl", s, t)
   check_T("kl", T)
   return kl_rows(s, t, T):mean() * (T * T)
end

--- kd(s, t, {T = 4, alpha = 0.9 (1 without labels), labels = y, ignoreIndex = nil}): the loss and
--- its terms {kl = unscaled KL, klScaled = T^2 * KL, ce = hard-label CE or nil}, terms detached.
function distill.kd(s, t, opts)
   opts = opts or {}
   local T = opts.T or 4
   local labels = opts.labels
   local alpha = opts.alpha or (labels and 0.9 or 1)
   check_logits("kd", s, t)
   check_T("kd", T)
   if type(alpha) ~= "number" or alpha < 0 or alpha > 1 then
      error(("kd: alpha must be a number in [0, 1], got %s"):format(tostring(alpha)), 2)
   end
   if alpha < 1 and not labels then
      error(("kd: alpha = %g gives the hard-label term a weight of %g, but no labels were given"):format(
         alpha, 1 - alpha), 2)
   end
   if labels and not retort.isTensor(labels) then labels = retort.tensor(labels, "i64") end
   local mask
   if labels and opts.ignoreIndex ~= nil then
      mask = labels:ne(opts.ignoreIndex):to(s:dtype())
   end
   local kl = masked_mean(kl_rows(s, t, T), mask)
   local loss = kl * (alpha * T * T)
   local ce
   if labels and alpha < 1 then
      ce = retort.loss.crossEntropy(s, labels, {ignoreIndex = opts.ignoreIndex})
      loss = loss + ce * (1 - alpha)
   end
   local terms = {kl = kl:detach(), klScaled = (kl * (T * T)):detach(), ce = ce and ce:detach() or nil}
   return loss, terms
end

return distill
