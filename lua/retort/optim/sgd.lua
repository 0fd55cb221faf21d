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

-- The fused kernel takes every parameter it can (contiguous, gradient of the parameter's dtype)
-- in one call: one pass over each p, g and momentum buffer, one launch on a GPU for all of them.
function SGD:updateAll(ps, gs, sts, o)
   local momentum = o.momentum ~= 0
   local bufs, first, n, all = {}, {}, 0, #ps
   for i = 1, all do -- the fused ones are compacted to the front of ps, gs and sts
      local p, g, st = ps[i], gs[i], sts[i]
      if p:isContiguous() and g:isContiguous() and g:dtype() == p:dtype() then
         n = n + 1
         local f = momentum and st.momentumBuffer == nil
         if f then st.momentumBuffer = retort.emptyLike(p) end -- the kernel writes it
         ps[n], gs[n], sts[n], bufs[n], first[n] = p, g, st, st.momentumBuffer, f
      else
         self:update(p, g, st, o)
      end
   end
   for i = n + 1, all do ps[i], gs[i], sts[i] = nil, nil, nil end
   if n == 0 then return end
   local ok, err = pcall(retort.sgdUpdate, ps, gs, momentum and bufs or nil, {lr = o.lr, momentum = o.momentum,
      dampening = o.dampening, weightDecay = o.weightDecay, nesterov = o.nesterov, first = first})
   if not ok then -- nothing was written: the buffers made for this step were never filled
      for i = 1, n do if first[i] then sts[i].momentumBuffer = nil end end
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
