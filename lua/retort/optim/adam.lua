-- optim.Adam (Kingma & Ba; PyTorch's torch.optim.Adam, exactly), L2 weight decay added to the
-- gradient. With t the parameter's step count:
--   g = g + weightDecay * p
--   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
--   amsgrad: vmax = max(vmax, v), used in place of v below
--   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
-- Options: lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weightDecay = 0, amsgrad = false.
-- optim.AdamW (Loshchilov & Hutter; PyTorch's AdamW) decays the weights directly instead:
--   p = p * (1 - lr * weightDecay), then the Adam step without the L2 term (weightDecay = 1e-2).
local retort = require "retort"
local Optimizer = require "retort.optim.Optimizer"

local function adam_step(p, g, st, o, decoupled)
   local b1, b2 = o.betas[1], o.betas[2]
   if o.weightDecay ~= 0 then
      if decoupled then p:mul_(1 - o.lr * o.weightDecay) else g = g + p * o.weightDecay end
   end
   if st.expAvg == nil then
      st.expAvg = retort.zerosLike(p)
      st.expAvgSq = retort.zerosLike(p)
      if o.amsgrad then st.maxExpAvgSq = retort.zerosLike(p) end
   end
   local m, v = st.expAvg, st.expAvgSq
   m:mul_(b1):add_(g, 1 - b1)
   v:mul_(b2):add_(g * g, 1 - b2)
   local t = st.step
   local bc1, bc2 = 1 - b1 ^ t, 1 - b2 ^ t
   local second = v
   if o.amsgrad then
      if st.maxExpAvgSq == nil then st.maxExpAvgSq = v:clone() end
      st.maxExpAvgSq:copy_(st.maxExpAvgSq:maximum(v))
      second = st.maxExpAvgSq
   end
   local denom = second:sqrt() / math.sqrt(bc2) + o.eps
   p:add_(m / denom, -o.lr / bc1)
end

local function check(g)
   if type(g.betas) ~= "table" or #g.betas ~= 2 then return "betas must be {beta1, beta2}" end
end

-- The fused kernel, for the parameters Optimizer:step gives it, in one call: the same operations as
-- adam_step in one pass, one launch on a GPU for all of them.
local function adam_all(ps, gs, sts, o, decoupled)
   local ms, vs, maxima, steps = {}, {}, {}, {}
   for i, st in ipairs(sts) do
      if st.expAvg == nil then
         st.expAvg, st.expAvgSq = retort.zerosLike(ps[i]), retort.zerosLike(ps[i])
      end
      if o.amsgrad and st.maxExpAvgSq == nil then st.maxExpAvgSq = retort.zerosLike(ps[i]) end
      ms[i], vs[i], maxima[i], steps[i] = st.expAvg, st.expAvgSq, st.maxExpAvgSq, st.step
   end
   retort.adamUpdate(ps, gs, ms, vs, o.amsgrad and maxima or nil, steps, {lr = o.lr, beta1 = o.betas[1],
      beta2 = o.betas[2], eps = o.eps, weightDecay = o.weightDecay, amsgrad = o.amsgrad, decoupled = decoupled})
end

local defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weightDecay = 0, amsgrad = false}
-- the tensors a parameter's state holds after a step with options o (loadStateDict checks them)
local function state_keys(o)
   return o.amsgrad and {"expAvg", "expAvgSq", "maxExpAvgSq"} or {"expAvg", "expAvgSq"}
end

local Adam = Optimizer.class("Adam", defaults)
Adam.check, Adam.stateKeys = check, state_keys
function Adam:update(p, g, st, o) adam_step(p, g, st, o, false) end
function Adam:updateAll(ps, gs, sts, o) adam_all(ps, gs, sts, o, false) end

local wdefaults = {}
for k, v in pairs(defaults) do wdefaults[k] = v end
wdefaults.weightDecay = 1e-2
local AdamW = Optimizer.class("AdamW", wdefaults)
AdamW.check, AdamW.stateKeys = check, state_keys
function AdamW:update(p, g, st, o) adam_step(p, g, st, o, true) end
function AdamW:updateAll(ps, gs, sts, o) adam_all(ps, gs, sts, o, true) end

return {Adam = Adam, AdamW = AdamW}
