-- Losses between student and teacher logits (DESIGN.md §4). The teacher never enters the graph.
-- Labels are 1-based class ids, as everywhere in Lua.
local retort = require "retort"
local check = require "retort.distill.check"

local M = {}

--- kd(s, t, {T = 4, alpha = 0.9 (1 without labels), labels, ignoreIndex, teacherProbs, weights})
--- Hinton KD, alpha weighting the soft term (RepDistiller's convention), one fused C kernel:
---   l_i  = alpha * T^2 * KL(p_t || softmax(s_i / T)) + (1 - alpha) * CE(s_i, y_i)
---   loss = sum_i w_i * l_i / (number of samples not ignored)
--- p_t = softmax(t / T), or t itself when teacherProbs (cached soft targets at temperature T).
--- Returns the loss and its terms as 0-dim tensors on the loss's device: {kl = unscaled KL, klScaled =
--- T^2 * KL, ce, kept}. t:item() reads one; on a GPU that waits for the queue, so log them sparingly.
function M.kd(s, t, opts)
   opts = check.options("kd", 3, opts, {"T", "alpha", "labels", "ignoreIndex", "teacherProbs", "weights"})
   local labels = opts.labels
   local T = opts.T or 4
   local alpha = opts.alpha or (labels and 0.9 or 1)
   check.logits("kd", s, t)
   check.T("kd", T)
   if type(alpha) ~= "number" or not (alpha >= 0 and alpha <= 1) then
      error(("kd: alpha must be a number in [0, 1], got %s"):format(tostring(alpha)), 2)
   end
   if alpha < 1 and not labels then
      error(("kd: alpha = %g gives the hard-label term a weight of %g, but no labels were given"):format(
         alpha, 1 - alpha), 2)
   end
   local loss, terms = retort.kdLoss(s, t, labels, {T = T, alpha = alpha, ignoreIndex = opts.ignoreIndex,
                                                    teacherProbs = opts.teacherProbs, weights = opts.weights})
   return loss, terms
end

--- kl(s, t, {T = 1}): T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes, batch mean.
function M.kl(s, t, opts)
   local T = check.options("kl", 3, opts, {"T"}).T or 1
   check.logits("kl", s, t)
   check.T("kl", T)
   return (retort.kdLoss(s, t, nil, {T = T, alpha = 1}))
end

--- logitL2(s, t): Ba & Caruana's logit matching, mean over the batch of 0.5 * ||s_i - t_i||^2.
--- The T -> infinity limit of kd: T^2 * KL -> ||s - t||^2 / (2C) for zero-mean logits.
function M.logitL2(s, t)
   check.logits("logitL2", s, t)
   local d = s - t:detach()
   return (d * d):sum(2):mean() * 0.5
end

-- (N, C) one-hot float mask of 1-based labels, in x's dtype
local function onehot(labels, x)
   if not retort.isTensor(labels) then labels = retort.tensor(labels, "i64") end
   local n, c = x:size(1), x:size(2)
   if labels:dim() ~= 1 or labels:size(1) ~= n then
      error(("dkd: labels must be (%d), got %s"):format(n, check.shape(labels)), 3)
   end
   return labels:view(n, 1):eq(retort.arange(1, c, 1, "i64"):to(labels):view(1, c)):to(x:dtype())
end

--- dkd(s, t, labels, {alpha = 1, beta = 8, T = 4}): decoupled KD (Zhao et al. 2022, mdistiller):
---   TCKD = T^2 * KL([p_gt, 1 - p_gt]_t || [p_gt, 1 - p_gt]_s)            (target class vs the rest)
---   NCKD = T^2 * KL(softmax(t/T - 1000 gt) || softmax(s/T - 1000 gt))    (among the other classes)
---   loss = alpha * TCKD + beta * NCKD, both summed over classes and averaged over the batch.
--- The binary log-probabilities come from log-sum-exps (mdistiller takes the log of a softmax sum).
function M.dkd(s, t, labels, opts)
   opts = check.options("dkd", 4, opts, {"alpha", "beta", "T"})
   local alpha, beta, T = opts.alpha or 1, opts.beta or 8, opts.T or 4
   check.logits("dkd", s, t)
   check.T("dkd", T)
   local gt = onehot(labels, s)
   local n = s:size(1)
   local st, tt = s / T, t:detach() / T
   local masked_s, masked_t = st - gt * 1000, tt - gt * 1000
   local zs, zt = st:logsumexp(2, true), tt:logsumexp(2, true)
   -- log of [p_gt, p_other] for student and teacher, (N, 2)
   local log_bs = retort.cat({(st * gt):sum(2, true) - zs, masked_s:logsumexp(2, true) - zs}, 2)
   local log_bt = retort.cat({(tt * gt):sum(2, true) - zt, masked_t:logsumexp(2, true) - zt}, 2)
   local tckd = (log_bt:exp() * (log_bt - log_bs)):sum() * (T * T / n)
   local log_pt2 = masked_t:logSoftmax(2)
   local nckd = (log_pt2:exp() * (log_pt2 - masked_s:logSoftmax(2))):sum() * (T * T / n)
   return tckd * alpha + nckd * beta, {tckd = tckd:detach(), nckd = nckd:detach()}
end

return M
