-- RepDistiller's CIFAR-100 protocol (its train_student.py, helper/loops.py, helper/pretrain.py and
-- scripts/run_cifar_distill.sh) as Distiller options: which features each method pairs, with which
-- loss and weights. Features are named by position in the models' feature lists (featureTaps:
-- RepDistiller's is_feat list f0 .. fK, the pooled features last; preactTaps: its preact=True list;
-- see lua/retort/models/init.lua), so any teacher/student pair of the zoo works; lists of different
-- lengths are zipped from the front, as Python's zip does.
--
--   local spec = require("retort.distill.repdistiller").spec("at", teacher, student, {trainLabels = y})
--   local d = retort.distill.Distiller{teacher = teacher, student = student, sample = x, pairs = spec.pairs,
--                                      gamma = spec.gamma, alpha = spec.alpha, beta = spec.beta, T = spec.T}
--   if spec.init then d:setStage("init") ... train spec.initEpochs ... d:setStage("main") end
--
-- The loss is gamma * CE + alpha * T^2 KL + beta * sum_k w_k L_k (Distiller.lua), beta = 1 and each
-- pair's w_k = the method's published weight (RepDistiller's -b), T = 4:
--   method  features (f = featureTaps, p = preactTaps; f[-1] the last)     gamma alpha  w_k
--   kd      logits only                                                   0.1   0.9    -
--   fitnet  f[hintLayer], default f2, through ConvReg (conv + BN + ReLU)  1     0      100
--   at      f1 .. f[-2], each pair                                        1     0      1000
--   sp      f[-2]                                                         1     0      3000
--   cc      f[-1], linear embeddings to 128                               1     0      0.02
--   vid     f1 .. f[-2], each pair                                        1     0      1
--   rkd     f[-1]                                                         1     0      1 (distance 25, angle 50)
--   pkt     f[-1]                                                         1     0      30000
--   ab      p1 .. p[-2] through connectors, init stage only               1     0      3e-3 * 2^(k - n)
--   ft      f[-2]: paraphraser (init stage), translator (main stage)      1     0      200
--   fsp     (f0, f1), (f1, f2), ... up to f[-2], init stage only          1     0      1 (summed, as pretrain.py)
--   nst     f1 .. f[-2], each pair                                        1     0      50
--   crd     f[-1], embeddings to 128, 16384 negatives                     1     0      0.8
--   dkd     logits (mdistiller: alpha 1, beta 8, T 4), weight ramped      1     0      1
--           linearly from 0 over the first 20 epochs
-- Init stage (ab, ft, fsp): 30 epochs (--init_epochs) at a constant learning rate (0.01 for FT with a
-- resnet/wrn student, else the student's), then the main stage with CE (+ KD when alpha > 0): AB and FSP
-- add nothing there (loss_kd = 0 in loops.py). Combining a method with KD is alpha = 1 (RepDistiller's
-- "-a 1"): pass alpha in the overrides.
local distill = require "retort.distill"
local schedule = require "retort.schedule"

local M = {}

-- gamma, alpha and the stage of each method; pairs are built below
M.methods = {
   kd = {gamma = 0.1, alpha = 0.9},
   fitnet = {}, at = {}, sp = {}, cc = {}, vid = {}, rkd = {}, pkt = {}, nst = {}, crd = {}, dkd = {},
   ab = {init = true}, ft = {init = true}, fsp = {init = true},
}

--- names(): the method names, sorted.
function M.names()
   local out = {}
   for k in pairs(M.methods) do out[#out + 1] = k end
   table.sort(out)
   return out
end

local function list(net, field, role)
   local l = net[field]
   if type(l) ~= "table" or #l < 3 then
      error(("repdistiller: the %s (%s) has no %s list: RepDistiller's feature list, which retort.models' CIFAR "
             .. "models carry"):format(role, net.__typename or "?", field), 3)
   end
   return l
end

-- pairs of entries from..(#list + to) of both lists (to = 0: through the last), zipped from the front
local function zip(s, t, from, to, loss, weight)
   local out = {}
   local ns, nt = #s + to - from + 1, #t + to - from + 1
   for k = 1, math.min(ns, nt) do
      out[k] = {guided = s[from + k - 1], hint = t[from + k - 1], loss = loss, weight = weight}
   end
   return out
end

--- spec(method, teacher, student [, o]) -> {pairs, gamma, alpha, beta = 1, T = 4, init, initEpochs, initLr}
--- o: trainLabels (i64 1..C, for crd), crdNegatives (16384), hintLayer (2), dkdWarmup (20 epochs),
--- studentName (the model name: FT's init learning rate), lr (the student's learning rate).
function M.spec(method, teacher, student, o)
   o = o or {}
   local m = M.methods[method]
   if not m then
      error(("repdistiller: unknown method '%s'; known: %s"):format(tostring(method), table.concat(M.names(), ", ")), 2)
   end
   local out = {gamma = m.gamma or 1, alpha = m.alpha or 0, beta = 1, T = 4, init = m.init or false, pairs = {}}
   if method == "kd" then return out end
   if method == "dkd" then
      out.pairs = {{hint = "logits", guided = "logits", loss = "dkd",
                    weight = schedule.linear{from = 0, to = 1, epochs = o.dkdWarmup or 20}}}
      return out
   end
   local fs, ft = list(student, "featureTaps", "student"), list(teacher, "featureTaps", "teacher")
   local ns, nt = #fs, #ft
   if method == "fitnet" then
      local h = (o.hintLayer or 2) + 1 -- RepDistiller's hint_layer indexes f0..fK
      if h < 1 or h > math.min(ns, nt) then
         error(("repdistiller: hintLayer must be in 0..%d for these models"):format(math.min(ns, nt) - 1), 2)
      end
      out.pairs = {{guided = fs[h], hint = ft[h], loss = distill.FitNet{variant = "convreg"}}}
   elseif method == "at" or method == "vid" or method == "nst" then
      out.pairs = zip(fs, ft, 2, -1, method)
   elseif method == "sp" or method == "ft" then
      out.pairs = {{guided = fs[ns - 1], hint = ft[nt - 1], loss = method}}
   elseif method == "cc" or method == "rkd" or method == "pkt" then
      out.pairs = {{guided = fs[ns], hint = ft[nt], loss = method}}
   elseif method == "crd" then
      if not o.trainLabels then error("repdistiller: crd needs trainLabels (the training set's labels)", 2) end
      out.pairs = {{guided = fs[ns], hint = ft[nt],
                    loss = distill.CRD{labels = o.trainLabels, negatives = o.crdNegatives or 16384}}}
   elseif method == "ab" then
      local ps, pt = list(student, "preactTaps", "student"), list(teacher, "preactTaps", "teacher")
      out.pairs = zip(ps, pt, 2, -1, "ab")
      local n = #out.pairs
      for k, p in ipairs(out.pairs) do p.weight = 3e-3 * 2 ^ (k - n) end
   elseif method == "fsp" then
      for k = 1, math.min(ns, nt) - 2 do
         out.pairs[k] = {guided = {fs[k], fs[k + 1]}, hint = {ft[k], ft[k + 1]}, loss = "fsp"}
      end
   end
   if out.init then
      out.initEpochs = 30
      local small = (o.studentName or ""):match("^resnet%d") or (o.studentName or ""):match("^wrn_")
      out.initLr = (method == "ft" and small) and 0.01 or o.lr
   end
   return out
end

return M
