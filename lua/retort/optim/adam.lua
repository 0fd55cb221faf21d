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

local defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weightDecay = 0, amsgrad = false}
local Adam = Optimizer.class("Adam", defaults)
Adam.check = check
function Adam:update(p, g, st, o) adam_step(p, g, st, o, false) end

local wdefaults = {}
for k, v in pairs(defaults) do wdefaults[k] = v end
wdefaults.weightDecay = 1e-2
local AdamW = Optimizer.class("AdamW", wdefaults)
AdamW.check = check
function AdamW:update(p, g, st, o) adam_step(p, g, st, o, true) end

return {Adam = Adam, AdamW = AdamW}
