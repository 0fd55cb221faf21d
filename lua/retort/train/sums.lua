-- Running sums of per-batch statistics (loss, correct predictions, loss terms) for the training
-- loop. A tensor added stays on its device, and the sums are read back together by take(), with one
-- wait for all of them: on a GPU, reading a value drains the queue and leaves the GPU idle while the
-- host catches up, so the loop reads every few dozen steps instead of every step.
--
--   local sums = Sums.new()
--   sums:add("loss", loss, b)        -- adds loss * b: a number, or a one-element tensor (its graph is dropped)
--   local got = sums:take()          -- {loss = number, ...}: what was added since the last take
--   Sums.read{t1, t2}                -- the numbers in one-element tensors, one read per device
local retort = require "retort"

local Sums = {}
Sums.__index = Sums

function Sums.new() return setmetatable({host = {}, device = {}}, Sums) end

--- add(name, v [, w = 1]): adds v * w; a tensor's sum is updated in place (one kernel per add)
function Sums:add(name, v, w)
   w = w or 1
   if type(v) == "number" then
      self.host[name] = (self.host[name] or 0) + v * w
      return
   end
   if not retort.isTensor(v) or v:numel() ~= 1 then
      error(("train: the value of '%s' must be a number or a one-element tensor, got %s"):format(
         name, retort.isTensor(v) and ("a tensor of %d elements"):format(v:numel()) or type(v)), 3)
   end
   v = v:detach():view(1)
   local have = self.device[name]
   if have then have:add_(v:to(have), w) else self.device[name] = v * w end -- a new tensor: v is not ours
end

--- Whether a take() would wait for a device.
function Sums:pending() return next(self.device) ~= nil end

--- Sums.read(list) -> numbers: the values of one-element tensors, with one read per device they are on.
function Sums.read(list)
   local out, by_device = {}, {}
   for i, t in ipairs(list) do
      local d = t:device()
      local g = by_device[d]
      if not g then g = {at = {}, parts = {}}; by_device[d] = g end
      g.at[#g.at + 1], g.parts[#g.parts + 1] = i, t:view(1):double()
   end
   for _, g in pairs(by_device) do
      for k, v in ipairs(retort.cat(g.parts, 1):totable()) do out[g.at[k]] = v end
   end
   return out
end

function Sums:take()
   local got = self.host
   local names, parts = {}, {}
   for name, t in pairs(self.device) do names[#names + 1], parts[#parts + 1] = name, t end
   for i, v in ipairs(Sums.read(parts)) do got[names[i]] = (got[names[i]] or 0) + v end
   self.host, self.device = {}, {}
   return got
end

return Sums
