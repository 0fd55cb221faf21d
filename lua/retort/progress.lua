-- Progress reporting for long work: a redrawn bar on a terminal, plain log lines otherwise.
--
--   local progress = require "retort.progress"
--   local p = progress.new{total = 60000, label = "epoch 1/10"}
--   p:update(128, {loss = 0.42})          -- 128 more examples done; latest values to show
--   p:finish{loss = 0.40, acc = 0.91}      -- final line (always printed)
--
-- On a terminal the bar shows percent, examples/s, the values and an ETA, redrawn at most ten
-- times a second. Elsewhere (logs, pipes, CI) a plain line is printed every `every` seconds
-- (default 10) so logs stay short.
local core = require "retort.core"

local progress = {}
local Progress = {}
Progress.__index = Progress

local function fmt_time(s)
   if s ~= s or s == math.huge then return "?" end
   s = math.floor(s + 0.5)
   if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
   return ("%d:%02d"):format(s // 60, s % 60)
end

local function fmt_rate(r)
   if r >= 1e5 then return ("%.0fk"):format(r / 1e3) end
   if r >= 1e4 then return ("%.1fk"):format(r / 1e3) end
   return ("%.0f"):format(r)
end

local function fmt_values(values, order)
   if not values then return "" end
   local keys = {}
   if order then
      for _, k in ipairs(order) do if values[k] ~= nil then keys[#keys + 1] = k end end
   else
      for k in pairs(values) do keys[#keys + 1] = k end
      table.sort(keys)
   end
   local parts = {}
   for _, k in ipairs(keys) do
      local v = values[k]
      parts[#parts + 1] = type(v) == "number" and ("%s %.4g"):format(k, v) or ("%s %s"):format(k, tostring(v))
   end
   return table.concat(parts, "  ")
end

--- progress.new{total=, label=, stream=io.stderr, tty=auto, every=10, order={keys...}, quiet=false}
--- (quiet: count, print nothing)
function progress.new(opts)
   opts = opts or {}
   local stream = opts.stream or io.stderr
   local tty = opts.tty
   if tty == nil then tty = core.isatty(stream == io.stdout and 1 or 2) end
   local now = core.clock()
   return setmetatable({
      total = opts.total, label = opts.label or "", stream = stream, tty = tty,
      every = opts.every or 10, order = opts.order, done = 0, start = now, last_draw = -math.huge,
      last_line = now, values = nil, quiet = opts.quiet,
   }, Progress)
end

function Progress:_line(final)
   local elapsed = core.clock() - self.start
   local rate = elapsed > 0 and self.done / elapsed or 0
   local parts = {self.label}
   if self.total and self.total > 0 then
      local frac = math.min(1, self.done / self.total)
      if self.tty and not final then
         local width = 24
         local filled = math.floor(frac * width)
         parts[#parts + 1] = "[" .. ("="):rep(filled) .. (filled < width and ">" or "") ..
            (" "):rep(math.max(0, width - filled - 1)) .. "]"
      end
      parts[#parts + 1] = ("%3d%%"):format(math.floor(frac * 100))
      parts[#parts + 1] = ("%d/%d"):format(self.done, self.total)
   else
      parts[#parts + 1] = tostring(self.done)
   end
   parts[#parts + 1] = fmt_rate(rate) .. " ex/s"
   local vals = fmt_values(self.values, self.order)
   if vals ~= "" then parts[#parts + 1] = vals end
   if final then
      parts[#parts + 1] = fmt_time(elapsed)
   elseif self.total and rate > 0 then
      parts[#parts + 1] = "ETA " .. fmt_time((self.total - self.done) / rate)
   end
   return table.concat(parts, "  ")
end

--- Record n more items done and (optionally) the latest values to display.
function Progress:update(n, values)
   self.done = self.done + (n or 1)
   if values then self.values = values end
   if self.quiet then return end
   local now = core.clock()
   if self.tty then
      if now - self.last_draw >= 0.1 then
         self.last_draw = now
         self.stream:write("\r\27[K", self:_line(false))
         self.stream:flush()
      end
   elseif now - self.last_line >= self.every then
      self.last_line = now
      self.stream:write(self:_line(false), "\n")
      self.stream:flush()
   end
end

--- Print the final line (with elapsed time); values replace the last ones shown.
function Progress:finish(values)
   if values then self.values = values end
   if self.quiet then return end
   if self.tty then self.stream:write("\r\27[K") end
   self.stream:write(self:_line(true), "\n")
   self.stream:flush()
end

return progress
