-- optim.RMSProp (PyTorch's torch.optim.RMSprop, exactly):
--   g = g + weightDecay * p
--   s = alpha * s + (1 - alpha) * g^2
--   centered: a = alpha * a + (1 - alpha) * g;  denom = sqrt(s - a^2) + eps   else denom = sqrt(s) + eps
--   momentum > 0: buf = momentum * buf + g / denom;  p = p - lr * buf     else p = p - lr * g / denom
-- Options: lr = 1e-2, alpha = 0.99, eps = 1e-8, weightDecay = 0, momentum = 0, centered = false.
local retort = require "retort"
local Optimizer = require "retort.optim.Optimizer"

local RMSProp = Optimizer.class("RMSProp", {lr = 1e-2, alpha = 0.99, eps = 1e-8, weightDecay = 0, momentum = 0,
                                            centered = false})

-- the tensors a parameter's state holds after a step with options o (loadStateDict checks them)
function RMSProp.stateKeys(o)
   local keys = {"squareAvg"}
   if o.centered then keys[#keys + 1] = "gradAvg" end
   if o.momentum > 0 then keys[#keys + 1] = "momentumBuffer" end
   return keys
end

function RMSProp:update(p, g, st, o)
   if o.weightDecay ~= 0 then g = g + p * o.weightDecay end
   if st.squareAvg == nil then st.squareAvg = retort.zerosLike(p) end
   local s = st.squareAvg
   s:mul_(o.alpha):add_(g * g, 1 - o.alpha)
   local avg
   if o.centered then
      if st.gradAvg == nil then st.gradAvg = retort.zerosLike(p) end
      local a = st.gradAvg
      a:mul_(o.alpha):add_(g, 1 - o.alpha)
      avg = (s - a * a):sqrt() + o.eps
   else
      avg = s:sqrt() + o.eps
   end
   if o.momentum > 0 then
      if st.momentumBuffer == nil then st.momentumBuffer = retort.zerosLike(p) end
      st.momentumBuffer:mul_(o.momentum):add_(g / avg)
      p:add_(st.momentumBuffer, -o.lr)
   else
      p:add_(g / avg, -o.lr)
   end
end

return RMSProp
