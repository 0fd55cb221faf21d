-- retort.schedule: values that change with training progress (learning rate, temperature,
-- alpha, loss weights). One mechanism everywhere: a schedule is a callable object
-- s(progress) -> number, and schedule.value(x, progress) accepts a plain number too, so any
-- number option may be given as a schedule.
--
-- progress = {epoch = e, step = s, epochs = E, stepsPerEpoch = S, iteration = i}
--   epoch:  the current epoch, 1-based;   step: batches completed in this epoch (0 at its start)
--   elapsed epochs  t = (epoch - 1) + step / S         (t = epoch - 1 when S is unknown)
--   elapsed steps   n = (epoch - 1) * S + step          (or `iteration` when S is unknown)
-- So at the first batch of epoch 1, t = 0 and n = 0.
--
-- Constructors and their formulas:
--   constant(v)                               v
--   linear{from, to, epochs | steps}          from + (to - from) * min(1, u / U)
--                                             (u = t with `epochs`, u = n with `steps`; U the given span)
--   step{base, gamma = 0.1, every}            base * gamma ^ floor(t / every)          (PyTorch StepLR)
--   multistep{base, gamma = 0.1, milestones}  base * gamma ^ #{m in milestones : t >= m} (MultiStepLR)
--                                             e.g. milestones {150, 225}: epochs 151.. get base*gamma
--   cosine{base, min = 0, epochs = E}         min + (base - min) * (1 + cos(pi * min(t, E) / E)) / 2
--                                             (per step when S is known: a smooth curve)
--   warmup{epochs | steps, after, from = 0}   while u < U: after(p) * (from + (1 - from) * u / U),
--                                             then after(p); `after` is a schedule or a number and
--                                             runs on the same clock (it is not shifted by U)
--   value(x, progress)                        x if x is a number, else x(progress)
local schedule = {}

local Schedule = {}
Schedule.__index = Schedule
Schedule.__call = function(self, progress) return self.fn(progress or {}) end
Schedule.__tostring = function(self) return "retort.schedule." .. self.desc end

local function make(desc, fn) return setmetatable({desc = desc, fn = fn}, Schedule) end

function schedule.isSchedule(x)
   return getmetatable(x) == Schedule or type(x) == "function"
end

--- value(x, progress): a number stays a number; a schedule (or function) is evaluated.
function schedule.value(x, progress)
   local tx = type(x)
   if tx == "number" then return x end
   if getmetatable(x) == Schedule or tx == "function"
      or (tx == "table" and getmetatable(x) and getmetatable(x).__call) then
      local v = x(progress or {})
      if type(v) ~= "number" then
         error(("schedule.value: the schedule returned %s, not a number"):format(type(v)), 2)
      end
      return v
   end
   error(("schedule.value: expected a number or a schedule, got %s"):format(tx), 2)
end

--- epochs(progress): elapsed (fractional) epochs t.
function schedule.elapsedEpochs(p)
   local epoch = p.epoch or 1
   local spe = p.stepsPerEpoch
   if spe and spe > 0 then return (epoch - 1) + (p.step or 0) / spe end
   return epoch - 1
end

--- steps(progress): elapsed steps n.
function schedule.elapsedSteps(p)
   local spe = p.stepsPerEpoch
   if spe and spe > 0 then return ((p.epoch or 1) - 1) * spe + (p.step or 0) end
   if p.iteration then return p.iteration end
   error("schedule: a step-based schedule needs progress.stepsPerEpoch or progress.iteration", 3)
end

local function num(fn, o, key, default)
   local v = o[key]
   if v == nil then v = default end
   if type(v) ~= "number" then
      error(("schedule.%s: option '%s' must be a number, got %s"):format(fn, key, tostring(v)), 3)
   end
   return v
end

-- span of a schedule given {epochs = ...} or {steps = ...}: returns a function p -> u / U
local function span(fn, o)
   if o.epochs ~= nil and o.steps ~= nil then error(("schedule.%s: give epochs or steps, not both"):format(fn), 3) end
   if o.steps ~= nil then
      local n = num(fn, o, "steps")
      if n <= 0 then error(("schedule.%s: steps must be > 0"):format(fn), 3) end
      return function(p) return schedule.elapsedSteps(p) / n end, n .. " steps"
   end
   local n = num(fn, o, "epochs")
   if n <= 0 then error(("schedule.%s: epochs must be > 0"):format(fn), 3) end
   return function(p) return schedule.elapsedEpochs(p) / n end, n .. " epochs"
end

function schedule.constant(v)
   if type(v) ~= "number" then error("schedule.constant: a number is expected", 2) end
   return make(("constant(%g)"):format(v), function() return v end)
end

function schedule.linear(o)
   local from, to = num("linear", o, "from"), num("linear", o, "to")
   local frac, over = span("linear", o)
   return make(("linear{%g -> %g over %s}"):format(from, to, over), function(p)
      return from + (to - from) * math.min(1, math.max(0, frac(p)))
   end)
end

function schedule.step(o)
   local base, gamma, every = num("step", o, "base"), num("step", o, "gamma", 0.1), num("step", o, "every")
   if every <= 0 then error("schedule.step: every must be > 0", 2) end
   return make(("step{%g, x%g every %g epochs}"):format(base, gamma, every), function(p)
      return base * gamma ^ math.floor(schedule.elapsedEpochs(p) / every + 1e-9)
   end)
end

function schedule.multistep(o)
   local base, gamma = num("multistep", o, "base"), num("multistep", o, "gamma", 0.1)
   local ms = o.milestones
   if type(ms) ~= "table" then error("schedule.multistep: milestones must be a list of epochs", 2) end
   for i, m in ipairs(ms) do
      if type(m) ~= "number" then error(("schedule.multistep: milestone %d is not a number"):format(i), 2) end
   end
   return make(("multistep{%g, x%g at %s}"):format(base, gamma, table.concat(ms, ",")), function(p)
      local t, k = schedule.elapsedEpochs(p), 0
      for _, m in ipairs(ms) do if t >= m - 1e-9 then k = k + 1 end end
      return base * gamma ^ k
   end)
end

function schedule.cosine(o)
   local base, lo = num("cosine", o, "base"), num("cosine", o, "min", 0)
   local fixed = o.epochs
   if fixed ~= nil and (type(fixed) ~= "number" or fixed <= 0) then error("schedule.cosine: epochs must be > 0", 2) end
   return make(("cosine{%g -> %g over %s epochs}"):format(base, lo, tostring(fixed or "all")), function(p)
      local E = fixed or p.epochs
      if not E then error("schedule.cosine: give epochs, or progress.epochs must be known", 2) end
      local t = math.min(schedule.elapsedEpochs(p), E)
      return lo + (base - lo) * (1 + math.cos(math.pi * t / E)) / 2
   end)
end

function schedule.warmup(o)
   local frac, over = span("warmup", o)
   local from = num("warmup", o, "from", 0)
   local after = o.after
   if after == nil then error("schedule.warmup: option 'after' (a schedule or number) is required", 2) end
   return make(("warmup{%s, then %s}"):format(over, tostring(after)), function(p)
      local v = schedule.value(after, p)
      local f = frac(p)
      if f < 1 then return v * (from + (1 - from) * math.max(0, f)) end
      return v
   end)
end

return schedule
