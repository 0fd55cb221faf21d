-- optim.SGD: stochastic gradient descent with momentum (PyTorch's torch.optim.SGD, exactly).
--   d = g + weightDecay * p
--   momentum ~= 0:  buf = d (first step), else buf = momentum * buf + (1 - dampening) * d
--                   d = nesterov and (d + momentum * buf) or buf
--   p = p - lr * d
-- Options: lr (required), momentum = 0, dampening = 0, nesterov = false, weightDecay = 0.
local retort = require "retort"
local Optimizer = require "retort.optim.Optimizer"

local SGD = Optimizer.class("SGD", {lr = "required", momentum = 0, dampening = 0, nesterov = false, weightDecay = 0})

-- the tensors a parameter's state holds after a step with options o (loadStateDict checks them)
function SGD.stateKeys(o) return o.momentum ~= 0 and {"momentumBuffer"} or {} end

function SGD.check(g)
   if g.nesterov and (type(g.momentum) ~= "number" or g.momentum <= 0 or g.dampening ~= 0) then
      return "nesterov needs momentum > 0 and dampening = 0"
   end
end

-- The fused kernel, for the parameters Optimizer:step gives it, in one call: one pass over each p,
-- g and momentum buffer, one launch on a GPU for all of them.
function SGD:updateAll(ps, gs, sts, o)
   local momentum = o.momentum ~= 0
   local bufs, first = {}, {}
   for i, st in ipairs(sts) do
      first[i] = momentum and st.momentumBuffer == nil
      if first[i] then st.momentumBuffer = retort.emptyLike(ps[i]) end -- the kernel writes it
      bufs[i] = st.momentumBuffer
   end
   local ok, err = pcall(retort.sgdUpdate, ps, gs, momentum and bufs or nil, {lr = o.lr, momentum = o.momentum,
      dampening = o.dampening, weightDecay = o.weightDecay, nesterov = o.nesterov, first = first})
   if not ok then -- nothing was written: the buffers made for this step were never filled
      for i, st in ipairs(sts) do if first[i] then st.momentumBuffer = nil end end
      error(err, 0)
   end
end

-- The same step composed from tensor ops, for a parameter the fused kernel cannot take.
function SGD:update(p, g, st, o)
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
