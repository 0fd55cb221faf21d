-- Running sums of per-batch statistics (loss, correct predictions, loss terms) for the training
-- loop. A tensor added stays on its device, and the sums are read back together by take(), with one
-- wait for all of them: on a GPU, reading a value drains the queue and leaves the GPU idle while the
-- host catches up, so the loop reads every few dozen steps instead of every step.
--
--   local sums = Sums.new()
--   sums:add("loss", loss * b)       -- a number, or a one-element tensor (its graph is dropped)
--   local got = sums:take()          -- {loss = number, ...}: what was added since the last take
local retort = require "retort"

local Sums = {}
Sums.__index = Sums

function Sums.new() return setmetatable({host = {}, device = {}}, Sums) end

function Sums:add(name, v)
   if type(v) == "number" then
      self.host[name] = (self.host[name] or 0) + v
      return
   end
   if not retort.isTensor(v) or v:numel() ~= 1 then
      error(("train: the value of '%s' must be a number or a one-element tensor, got %s"):format(
         name, retort.isTensor(v) and ("a tensor of %d elements"):format(v:numel()) or type(v)), 3)
   end
   v = v:detach():view(1)
   local have = self.device[name]
   self.device[name] = have and have + v:to(have) or v
end

--- Whether a take() would wait for a device.
function Sums:pending() return next(self.device) ~= nil end

function Sums:take()
   local got = self.host
   local names, parts = {}, {}
   for name, t in pairs(self.device) do names[#names + 1], parts[#parts + 1] = name, t end
   if #parts > 0 then
      -- one read for all of them; sums on two devices (a user's terms) are read device by device
      local by_device = {}
      for i, t in ipairs(parts) do
         local d = t:device()
         by_device[d] = by_device[d] or {names = {}, parts = {}}
         table.insert(by_device[d].names, names[i])
         table.insert(by_device[d].parts, t:double())
      end
      for _, g in pairs(by_device) do
         local values = retort.cat(g.parts, 1):totable()
         for i, name in ipairs(g.names) do got[name] = (got[name] or 0) + values[i] end
      end
   end
   self.host, self.device = {}, {}
   return got
end

return Sums
