-- The optimizer base: parameter groups, schedules for any number option, progress, state dicts.
--
--   local opt = optim.SGD(params_or_groups, {lr = 0.1, momentum = 0.9})
--   groups: {{params = {...}, lr = 0.01}, {params = {...}}}  -- a group's options override opts
--   opt:zeroGrad(); loss:backward(); opt:step()
--   opt:setProgress{epoch = e, step = s, epochs = E, stepsPerEpoch = S}; opt:setEpoch(e)
--   opt:currentLr([group]) -> the learning rate the next step uses
--   opt:stateDict() / opt:loadStateDict(sd)
--
-- Any number option (lr, momentum, weightDecay, betas' entries, ...) may be a schedule
-- (retort.schedule); it is evaluated at every step from the optimizer's progress. Without
-- setProgress, step-based schedules count the optimizer's own steps (progress.iteration).
-- Updates run under noGrad with in-place tensor methods (add_, mul_, copy_): no Lua loop over
-- elements. A parameter whose grad is nil is skipped (its state does not advance).
--
-- stateDict() = {iteration = n, progress = {epoch, step, ...}, groups = {{<numeric options>}, ...},
--                state = {[i] = {step = n, <buffer name> = tensor, ...}, ...}}  -- i: parameter index
-- over all groups in order. It holds numbers and tensors only (schedules stay in the code), so a
-- checkpoint can store it; loadStateDict checks counts and shapes and copies the buffers.
local retort = require "retort"
local printable = require "retort.printable"
local schedule = require "retort.schedule"

local Optimizer = {}
Optimizer.__index = Optimizer

local function class(name, defaults)
   local cls = setmetatable({}, {__index = Optimizer})
   cls.__index = cls
   cls.__name = "retort.optim." .. name
   cls.name = name
   cls.defaults = defaults
   cls.__tostring = Optimizer.__tostring
   setmetatable(cls, {
      __index = Optimizer,
      __call = function(c, params, opts) return Optimizer.new(c, params, opts, 2) end,
      __tostring = function() return "optim." .. name .. " (class)" end,
   })
   return cls
end

-- The range of each number option every optimizer shares: a number in it, or a schedule (whose
-- values are the user's to keep in range). A negative lr or betas of 1 would train nonsense quietly.
local RANGES = {
   lr = {"a number >= 0", function(v) return v >= 0 end},
   weightDecay = {"a number >= 0", function(v) return v >= 0 end},
   momentum = {"a number in [0, 1]", function(v) return v >= 0 and v <= 1 end},
   dampening = {"a number in [0, 1]", function(v) return v >= 0 and v <= 1 end},
   alpha = {"a number in [0, 1]", function(v) return v >= 0 and v <= 1 end},
   eps = {"a number > 0", function(v) return v > 0 end},
}

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- why group g's option k is out of range, or nil
local function range_error(k, v)
   local rule = RANGES[k]
   if k == "betas" then
      if type(v) ~= "table" or #v ~= 2 then return ("betas must be {beta1, beta2}, got %s"):format(tostring(v)) end
      for i = 1, 2 do
         local b = v[i]
         if type(b) == "number" and not (finite(b) and b >= 0 and b < 1) then
            return ("betas[%d] must be in [0, 1), got %s"):format(i, tostring(b))
         elseif type(b) ~= "number" and not schedule.isSchedule(b) then
            return ("betas[%d] must be a number in [0, 1) or a schedule, got %s"):format(i, type(b))
         end
      end
   elseif rule then
      if type(v) == "number" then
         if not (finite(v) and rule[2](v)) then return ("%s must be %s, got %s"):format(k, rule[1], tostring(v)) end
      elseif not schedule.isSchedule(v) then
         return ("%s must be %s or a schedule, got %s"):format(k, rule[1], type(v))
      end
   end
end

local function is_param_list(t)
   return type(t) == "table" and (t[1] == nil or retort.isTensor(t[1]))
end

function Optimizer.new(cls, params, opts, level)
   level = (level or 1) + 1
   opts = opts or {}
   if type(opts) ~= "table" then error(("optim.%s: options must be a table"):format(cls.name), level) end
   for k in pairs(opts) do
      if cls.defaults[k] == nil then
         local known = {}
         for name in pairs(cls.defaults) do known[#known + 1] = name end
         table.sort(known)
         error(("optim.%s: unknown option '%s'; known: %s"):format(
            cls.name, tostring(k), table.concat(known, ", ")), level)
      end
   end
   if type(params) ~= "table" then
      error(("optim.%s: a list of parameters or of groups is expected"):format(cls.name), level)
   end
   local groups = {}
   if is_param_list(params) then
      groups[1] = {params = params}
   else
      for i, g in ipairs(params) do
         if type(g) ~= "table" or not is_param_list(g.params) then
            error(("optim.%s: group %d needs params = {tensors...}"):format(cls.name, i), level)
         end
         groups[i] = g
      end
   end
   local self = setmetatable({paramGroups = {}, state = {}, iteration = 0, progress = {epoch = 1, step = 0}}, cls)
   local seen = {}
   local n = 0
   for gi, g in ipairs(groups) do
      local group = {params = {}}
      for k, v in pairs(g) do
         if k ~= "params" then
            if cls.defaults[k] == nil then
               error(("optim.%s: group %d: unknown option '%s'"):format(cls.name, gi, tostring(k)), level)
            end
            group[k] = v
         end
      end
      for k, v in pairs(cls.defaults) do
         if group[k] == nil then
            if opts[k] ~= nil then group[k] = opts[k]
            elseif v == "required" then
               error(("optim.%s: option '%s' is required"):format(cls.name, k), level)
            else group[k] = v end
         end
      end
      for pi, p in ipairs(g.params) do
         if not retort.isTensor(p) then
            error(("optim.%s: group %d, parameter %d is not a tensor"):format(cls.name, gi, pi), level)
         end
         if not p:needsGrad() then
            error(("optim.%s: group %d, parameter %d does not require grad"):format(cls.name, gi, pi), level)
         end
         if seen[p] then
            error(("optim.%s: group %d, parameter %d appears more than once"):format(cls.name, gi, pi), level)
         end
         seen[p] = true
         n = n + 1
         group.params[pi] = p
      end
      self.paramGroups[gi] = group
      for k, v in pairs(group) do
         local why = k ~= "params" and range_error(k, v)
         if why then
            error(("optim.%s: %s%s"):format(cls.name, #groups > 1 and ("group " .. gi .. ": ") or "", why), level)
         end
      end
   end
   if n == 0 then
      error(("optim.%s: no parameters to optimize (the list is empty: a model without parameters, or every "
             .. "parameter frozen?)"):format(cls.name), level)
   end
   if cls.check then
      for gi, g in ipairs(self.paramGroups) do
         local err = cls.check(g)
         if err then
            local group = #self.paramGroups > 1 and ("group " .. gi .. ": ") or ""
            error(("optim.%s: %s%s"):format(cls.name, group, err), level)
         end
      end
   end
   return self
end

--- the progress handed to schedules
function Optimizer:currentProgress()
   local p = {}
   for k, v in pairs(self.progress) do p[k] = v end
   p.iteration = self.iteration
   return p
end

--- setProgress{epoch, step, epochs, stepsPerEpoch}: fields given replace the current ones.
function Optimizer:setProgress(p)
   for k, v in pairs(p) do self.progress[k] = v end
   return self
end

function Optimizer:setEpoch(epoch)
   self.progress.epoch = epoch
   self.progress.step = 0
   return self
end

--- options(group): the group's options with schedules evaluated at the current progress.
function Optimizer:options(group)
   local p = self:currentProgress()
   local o = {}
   for k, v in pairs(group) do
      if k ~= "params" then
         if type(v) == "table" and not schedule.isSchedule(v) and getmetatable(v) == nil then
            local t = {}
            for i, x in ipairs(v) do t[i] = schedule.value(x, p) end
            o[k] = t
         elseif type(v) == "boolean" or type(v) == "string" then
            o[k] = v
         else
            o[k] = schedule.value(v, p)
         end
      end
   end
   return o
end

function Optimizer:currentLr(gi)
   return self:options(self.paramGroups[gi or 1]).lr
end

function Optimizer:zeroGrad()
   for _, g in ipairs(self.paramGroups) do
      for _, p in ipairs(g.params) do p:zeroGrad() end
   end
   return self
end

--- step(): one update of every parameter that has a gradient. An optimizer with updateAll(ps, gs,
--- states, o) (a fused kernel) gets each group's parameters it can take in one call, one launch on a
--- GPU: contiguous, with a contiguous gradient of the parameter's dtype. Every other parameter gets
--- update(p, g, st, o), the step composed from tensor ops.
function Optimizer:step()
   retort.noGrad(function()
      local index = 0
      for _, group in ipairs(self.paramGroups) do
         local o = self:options(group)
         local ps, gs, sts = {}, {}, {}
         for _, p in ipairs(group.params) do
            index = index + 1
            local g = p.grad
            if g ~= nil then
               local st = self.state[index]
               if st == nil then st = {step = 0}; self.state[index] = st end
               st.step = st.step + 1
               if self.updateAll and p:isContiguous() and g:isContiguous() and g:dtype() == p:dtype() then
                  local k = #ps + 1
                  ps[k], gs[k], sts[k] = p, g, st
               else
                  self:update(p, g, st, o)
               end
            end
         end
         if #ps > 0 then self:updateAll(ps, gs, sts, o) end
      end
   end)
   self.iteration = self.iteration + 1
   return self
end

local function copy_numbers(t)
   local out = {}
   for k, v in pairs(t) do
      if type(v) == "number" or type(v) == "boolean" then out[k] = v
      elseif type(v) == "table" and getmetatable(v) == nil and k ~= "params" then
         local all = true
         for _, x in ipairs(v) do all = all and type(x) == "number" end
         if all then out[k] = {table.unpack(v)} end
      end
   end
   return out
end

function Optimizer:numParams()
   local n = 0
   for _, g in ipairs(self.paramGroups) do n = n + #g.params end
   return n
end

function Optimizer:stateDict()
   local state = {}
   for i = 1, self:numParams() do
      local st = self.state[i]
      local e = {}
      if st then for k, v in pairs(st) do e[k] = retort.isTensor(v) and v:clone() or v end end
      state[i] = e
   end
   local groups = {}
   for gi, g in ipairs(self.paramGroups) do
      groups[gi] = copy_numbers(g)
      groups[gi].numParams = #g.params
   end
   return {iteration = self.iteration, progress = copy_numbers(self.progress), groups = groups, state = state}
end

local function shape_str(t) return "(" .. table.concat(t:shape(), "x") .. ")" end

-- loadStateDict's refusals: the file says what it says, so each names what was expected and found
local function state_error(self, fmt, ...)
   error(("optim.%s:loadStateDict: " .. fmt):format(self.name, ...), 3)
end

function Optimizer:loadStateDict(sd)
   if type(sd) ~= "table" or type(sd.state) ~= "table" then
      state_error(self, "expected a table from stateDict() (with a 'state' table), got %s", printable.value(sd))
   end
   local n = self:numParams()
   for i, e in pairs(sd.state) do
      if math.type(i) ~= "integer" or i < 1 or i > n then
         state_error(self, "the state names parameter %s; this optimizer has parameters 1..%d", tostring(i), n)
      end
      if type(e) ~= "table" then
         state_error(self, "the state of parameter %d should be a table, found %s", i, printable.value(e))
      end
      for k, v in pairs(e) do
         if not retort.isTensor(v) and (math.type(v) ~= "integer" or v < 0) then
            state_error(self, "parameter %d's state entry '%s' should be a tensor or a count >= 0, found %s", i,
                        printable.escape(k), printable.value(v))
         end
      end
   end
   if #sd.state ~= n then
      state_error(self, "the state has %d parameters, this optimizer %d", #sd.state, n)
   end
   if sd.groups ~= nil and type(sd.groups) ~= "table" then
      state_error(self, "'groups' should be a table, found %s", printable.value(sd.groups))
   end
   if sd.groups and #sd.groups ~= #self.paramGroups then
      state_error(self, "the state has %d parameter groups, this optimizer %d", #sd.groups, #self.paramGroups)
   end
   if sd.iteration ~= nil and (math.type(sd.iteration) ~= "integer" or sd.iteration < 0) then
      state_error(self, "'iteration' should be an integer >= 0, found %s", printable.value(sd.iteration))
   end
   if sd.progress ~= nil and type(sd.progress) ~= "table" then
      state_error(self, "'progress' should be a table, found %s", printable.value(sd.progress))
   end
   local params = {}
   for gi, g in ipairs(self.paramGroups) do
      local sg = sd.groups and sd.groups[gi]
      if sd.groups and type(sg) ~= "table" then
         state_error(self, "group %d should be a table of options, found %s", gi, printable.value(sg))
      end
      if sg and sg.numParams ~= nil and math.type(sg.numParams) ~= "integer" then
         state_error(self, "group %d's numParams should be an integer, found %s", gi, printable.value(sg.numParams))
      end
      if sg and sg.numParams and sg.numParams ~= #g.params then
         state_error(self, "group %d has %d parameters in the state, %d here", gi, sg.numParams, #g.params)
      end
      for k, v in pairs(sg or {}) do
         if k ~= "numParams" and (type(g[k]) == "number" or type(g[k]) == "boolean") then
            if type(v) ~= type(g[k]) then
               state_error(self, "group %d's option %s should be a %s, found %s", gi, printable.escape(k), type(g[k]),
                           printable.value(v))
            end
            local why = type(v) == "number" and range_error(k, v)
            if why then state_error(self, "group %d: %s", gi, why) end
         end
      end
      -- every parameter that has taken a step holds its count and the tensors this optimizer made for it
      local o = self:options(g)
      for k, v in pairs(sg or {}) do if type(o[k]) == type(v) then o[k] = v end end
      local needs = self.stateKeys and self.stateKeys(o) or {}
      for _, p in ipairs(g.params) do
         params[#params + 1] = p
         local e = sd.state[#params]
         if e ~= nil and next(e) ~= nil then
            if math.type(e.step) ~= "integer" or e.step < 1 then
               state_error(self, "parameter %d's state has no step count >= 1 (found %s)", #params,
                           printable.value(e.step))
            end
            for _, k in ipairs(needs) do
               if not retort.isTensor(e[k]) then
                  state_error(self, "parameter %d's state has no '%s' tensor (found %s), which a step of this "
                              .. "optimizer with these options makes", #params, k, printable.value(e[k]))
               end
            end
         end
      end
   end
   local problems = {}
   for i, e in pairs(sd.state) do
      for k, v in pairs(e) do
         if retort.isTensor(v) then
            local ps, vs = shape_str(params[i]), shape_str(v)
            if ps ~= vs then problems[#problems + 1] = ("parameter %d %s: %s is %s"):format(i, ps, k, vs) end
         end
      end
   end
   table.sort(problems)
   if #problems > 0 then
      error(("optim.%s:loadStateDict: shape mismatch: %s"):format(self.name, table.concat(problems, "; ")), 2)
   end
   local state = {}
   for i, e in ipairs(sd.state) do
      if next(e) ~= nil then
         local st = {}
         for k, v in pairs(e) do
            st[k] = retort.isTensor(v) and retort.noGrad(function() return v:to(params[i]):clone() end) or v
         end
         state[i] = st
      end
   end
   self.state = state
   -- numeric options that are plain numbers here follow the checkpoint; schedules stay
   if sd.groups then
      for gi, g in ipairs(self.paramGroups) do
         for k, v in pairs(sd.groups[gi]) do
            if k ~= "numParams" and (type(g[k]) == "number" or type(g[k]) == "boolean") then g[k] = v end
         end
      end
   end
   self.iteration = sd.iteration or 0
   if sd.progress then for k, v in pairs(sd.progress) do self.progress[k] = v end end
   return self
end

function Optimizer:__tostring()
   local parts = {}
   local o = self:options(self.paramGroups[1])
   local keys = {}
   for k in pairs(o) do keys[#keys + 1] = k end
   table.sort(keys)
   for _, k in ipairs(keys) do
      local v = o[k]
      if type(v) == "table" then v = "{" .. table.concat(v, ", ") .. "}" end
      parts[#parts + 1] = k .. "=" .. tostring(v)
   end
   return ("optim.%s(%d parameters in %d group%s; %s)"):format(self.name, self:numParams(), #self.paramGroups,
      #self.paramGroups == 1 and "" or "s", table.concat(parts, ", "))
end

Optimizer.class = class
return Optimizer
