-- optim.SGD: stochastic gradient descent with momentum (PyTorch's torch.optim.SGD, exactly).
--   d = g + weightDecay * p
--   momentum ~= 0:  buf = d (first step), else buf = momentum * buf + (1 - dampening) * d
--                   d = nesterov and (d + momentum * buf) or buf
--   p = p - lr * d
-- Options: lr (required), momentum = 0, dampening = 0, nesterov = false, weightDecay = 0.
local retort = require "retort"
local Optimizer = require "retort.optim.Optimizer"

local SGD = Optimizer.class("SGD", {lr = "required", momentum = 0, dampening = 0, nesterov = false, weightDecay = 0})

function SGD.check(g)
   if g.nesterov and (type(g.momentum) ~= "number" or g.momentum <= 0 or g.dampening ~= 0) then
      return "nesterov needs momentum > 0 and dampening = 0"
   end
end

function SGD:update(p, g, st, o)
   if p:isContiguous() and g:isContiguous() and g:dtype() == p:dtype() then
      -- the fused kernel: one pass over p, g and the buffer (same formula as below)
      local first = o.momentum ~= 0 and st.momentumBuffer == nil
      if first then st.momentumBuffer = retort.emptyLike(p) end -- the kernel writes it
      local k = o.fused -- the kernel's options, built once per group and step (o is fresh each step)
      if not k then
         k = {lr = o.lr, momentum = o.momentum, dampening = o.dampening, weightDecay = o.weightDecay,
              nesterov = o.nesterov}
         o.fused = k
      end
      k.first = first
      retort.sgdUpdate(p, g, st.momentumBuffer, k)
      return
   end
   local d = g
   if o.weightDecay ~= 0 then d = g + p * o.weightDecay end
   if o.momentum ~= 0 then
      local buf = st.momentumBuffer
      if buf == nil then
         buf = d:clone()
         st.momentumBuffer = buf
      else
         buf:mul_(o.momentum):add_(d, 1 - o.dampening)
      end
      if o.nesterov then d = d + buf * o.momentum else d = buf end
   end
   p:add_(d, -o.lr)
end

return SGD
