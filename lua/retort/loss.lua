-- retort.loss: classification and regression losses (thin, argument-checked wrappers over the
-- core functions) and evaluation helpers.
--
--   loss.crossEntropy(logits, labels [, {weights, ignoreIndex, labelSmoothing, reduction}])
--       logits (N, C); labels i64 (N) with classes 1..C; ignoreIndex in the same label space
--       (e.g. 0 or -100); reduction "mean" (default: weighted mean over non-ignored rows), "sum",
--       "none". Same semantics as PyTorch's F.cross_entropy with 1-based labels.
--   loss.weightedCrossEntropy(logits, labels, w)  sum_i w_i CE_i / N with per-example weights w (N)
--       (a curriculum's); crossEntropy's mean when w is nil
--   loss.nll(logp, labels [, opts])          negative log-likelihood of log-probabilities
--   loss.mse(a, b [, {reduction = "mean"}])  mean squared error
--   loss.accuracy(logits, labels) -> number  fraction of rows whose argmax is the label (no grad)
--   loss.topk(logits, labels, k)  -> number  fraction of rows whose label is among the k largest
--       logits (a label tied with the k-th largest counts as a hit: ranks are "how many logits
--       are strictly larger", so no arbitrary tie order is involved).
local retort = require "retort"

local loss = {}

local function check_tensor(fn, i, x, what)
   if not retort.isTensor(x) then
      error(("loss.%s: argument #%d (%s) must be a tensor, got %s"):format(fn, i, what, type(x)), 3)
   end
end

local function shape(x) return "(" .. table.concat(x:shape(), "x") .. ")" end

local function check_class_args(fn, scores, labels)
   check_tensor(fn, 1, scores, "scores")
   check_tensor(fn, 2, labels, "labels")
   if scores:dim() ~= 2 then
      error(("loss.%s: expected scores (N, C), got %s"):format(fn, shape(scores)), 3)
   end
   if labels:dim() ~= 1 or labels:size(1) ~= scores:size(1) then
      error(("loss.%s: labels must be (N) = (%d), got %s"):format(fn, scores:size(1), shape(labels)), 3)
   end
   if labels:dtype() ~= "i64" then
      error(("loss.%s: labels must be an i64 tensor of classes 1..C, got %s"):format(fn, labels:dtype()), 3)
   end
end

local function core(name)
   local f = retort[name]
   if f == nil then error(("loss: this build has no retort.%s yet"):format(name), 3) end
   return f
end

local REDUCTIONS = {mean = true, sum = true, none = true}

local function check_opts(fn, opts)
   if opts ~= nil and type(opts) ~= "table" then error(("loss.%s: options must be a table"):format(fn), 3) end
   if opts and opts.reduction and not REDUCTIONS[opts.reduction] then
      error(("loss.%s: reduction must be \"mean\", \"sum\" or \"none\", got '%s'"):format(
         fn, tostring(opts.reduction)), 3)
   end
end

function loss.crossEntropy(logits, labels, opts)
   check_class_args("crossEntropy", logits, labels)
   check_opts("crossEntropy", opts)
   if opts and opts.labelSmoothing and not (opts.labelSmoothing >= 0 and opts.labelSmoothing <= 1) then
      error(("loss.crossEntropy: labelSmoothing must be in [0, 1], got %s"):format(tostring(opts.labelSmoothing)), 2)
   end
   return core("crossEntropy")(logits, labels, opts)
end

function loss.nll(logp, labels, opts)
   check_class_args("nll", logp, labels)
   check_opts("nll", opts)
   return core("nllLoss")(logp, labels, opts)
end

function loss.weightedCrossEntropy(logits, labels, w)
   if w == nil then return loss.crossEntropy(logits, labels) end
   check_tensor("weightedCrossEntropy", 3, w, "example weights")
   if w:dim() ~= 1 or w:size(1) ~= labels:size(1) then
      error(("loss.weightedCrossEntropy: example weights must be (N) = (%d), got %s"):format(
         labels:size(1), shape(w)), 2)
   end
   return (loss.crossEntropy(logits, labels, {reduction = "none"}) * w):mean()
end

function loss.mse(a, b, opts)
   check_tensor("mse", 1, a, "input")
   check_tensor("mse", 2, b, "target")
   check_opts("mse", opts)
   local sa, sb = a:shape(), b:shape()
   local same = #sa == #sb
   for i = 1, #sa do same = same and sa[i] == sb[i] end
   if not same then error(("loss.mse: shapes differ: %s vs %s"):format(shape(a), shape(b)), 2) end
   return core("mseLoss")(a, b, opts)
end

--- correct(logits, labels) -> 0-dim tensor on the logits' device: how many rows have their largest
--- logit at the label. No wait for a GPU (accuracy() reads it back).
function loss.correct(logits, labels)
   check_class_args("correct", logits, labels)
   return core("countCorrect")(logits, labels) -- one kernel; labels out of range count as wrong
end

--- topkCorrect(logits, labels, k) -> 0-dim tensor: how many rows have the label among the k largest
--- logits (ties counted in the label's favour). No wait for a GPU.
function loss.topkCorrect(logits, labels, k)
   check_class_args("topkCorrect", logits, labels)
   if math.type(k) ~= "integer" or k < 1 then
      error(("loss.topkCorrect: k must be a positive integer, got %s"):format(tostring(k)), 2)
   end
   return retort.noGrad(function()
      local n = labels:size(1)
      local target = logits:gather(2, labels:view(n, 1))          -- (N, 1) logit of the label
      local larger = logits:gt(target):to(logits):sum(2)         -- how many logits beat it
      return larger:lt(k):to(logits):sum()
   end)
end

--- accuracy(logits, labels) -> fraction of rows predicted right (a number: reads the device)
function loss.accuracy(logits, labels)
   check_class_args("accuracy", logits, labels)
   local n = labels:size(1)
   return n == 0 and 0 or loss.correct(logits, labels):item() / n
end

--- topk(logits, labels, k) -> fraction of rows with the label among the k largest logits
function loss.topk(logits, labels, k)
   if math.type(k) ~= "integer" or k < 1 then
      error(("loss.topk: k must be a positive integer, got %s"):format(tostring(k)), 2)
   end
   check_class_args("topk", logits, labels)
   local n = labels:size(1)
   return n == 0 and 0 or loss.topkCorrect(logits, labels, k):item() / n
end

return loss
