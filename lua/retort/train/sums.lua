-- Running sums of per-batch statistics (loss, correct predictions, loss terms) for the training
-- loop. A tensor added stays on its device, and the sums are read back together by take(), with one
-- wait for all of them: on a GPU, reading a value drains the queue and leaves the GPU idle while the
-- host catches up, so the loop reads every few dozen steps instead of every step. What a step adds
-- goes into an f64 accumulator per device in one kernel (retort.accumulate_), at the step's flush().
--
--   local sums = Sums.new()
--   sums:add("loss", loss, b)        -- adds loss * b: a number, or a one-element tensor (its graph is dropped)
--   sums:flush()                     -- the step's tensors into the accumulators (take() flushes too)
--   local got = sums:take()          -- {loss = number, ...}: what was added since the last take
--   Sums.read{t1, t2}                -- the numbers in one-element tensors, one read per device
local retort = require "retort"

local Sums = {}
Sums.__index = Sums

local MAX = 16 -- values one accumulate_ call takes (RT_ACCUMULATE_MAX)

function Sums.new() return setmetatable({host = {}, device = {}, queued = {}}, Sums) end

-- items grouped by device_of(item), each group a list with its .device, in the order the devices
-- first appear
local function by_device(items, device_of)
   local groups, of = {}, {}
   for _, it in ipairs(items) do
      local d = device_of(it)
      local g = of[d]
      if not g then g = {device = d}; of[d] = g; groups[#groups + 1] = g end
      g[#g + 1] = it
   end
   return groups
end

--- add(name, v [, w = 1]): adds v * w; a tensor waits for flush() (kept, not copied: it is detached)
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
   if v:dtype() ~= "f32" and v:dtype() ~= "f64" then v = v:double() end
   self.queued[#self.queued + 1] = {name, v:detach(), w}
end

-- the accumulator of device d with a slot for every name in names (a grown one keeps its sums)
local function accumulator(self, d, names)
   local acc = self.device[d] or {slots = {}, names = {}}
   self.device[d] = acc
   local grow = 0
   for _, name in ipairs(names) do
      if not acc.slots[name] then
         acc.names[#acc.names + 1] = name
         acc.slots[name] = #acc.names
         grow = grow + 1
      end
   end
   if grow > 0 then
      local more = retort.zeros(grow):double():to(d)
      acc.t = acc.t and retort.cat({acc.t, more}) or more
   end
   return acc
end

--- flush(): what add() gave since the last flush into the accumulators, one kernel per device
--- (per 16 values) however many names there are
function Sums:flush()
   local groups = by_device(self.queued, function(p) return p[2]:device() end)
   self.queued = {}
   for _, g in ipairs(groups) do
      local names = {}
      for i, p in ipairs(g) do names[i] = p[1] end
      local acc = accumulator(self, g.device, names)
      -- a name added twice in one step goes into two calls (slots must differ within one)
      local i = 1
      while i <= #g do
         local vs, ws, slots, used = {}, {}, {}, {}
         while i <= #g and #vs < MAX and not used[g[i][1]] do
            local p = g[i]
            used[p[1]] = true
            vs[#vs + 1], ws[#ws + 1], slots[#slots + 1] = p[2], p[3], acc.slots[p[1]]
            i = i + 1
         end
         retort.accumulate_(acc.t, vs, ws, slots)
      end
   end
end

--- Whether a take() would wait for a device.
function Sums:pending() return next(self.device) ~= nil or #self.queued > 0 end

--- Sums.read(list) -> numbers: the values of one-element tensors, with one read per device they are on.
function Sums.read(list)
   local positions, out = {}, {}
   for i = 1, #list do positions[i] = i end
   for _, g in ipairs(by_device(positions, function(i) return list[i]:device() end)) do
      local parts = {}
      for k, i in ipairs(g) do parts[k] = list[i]:view(1):double() end
      for k, v in ipairs(retort.cat(parts, 1):totable()) do out[g[k]] = v end
   end
   return out
end

function Sums:take()
   self:flush()
   local got = self.host
   for _, acc in pairs(self.device) do
      for k, v in ipairs(acc.t:totable()) do -- one read per device
         local name = acc.names[k]
         got[name] = (got[name] or 0) + v
      end
   end
   self.host, self.device = {}, {}
   return got
end

return Sums
