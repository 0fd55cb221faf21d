-- Distiller: a frozen teacher (or several), a student, and the losses that join them.
--
--   local d = retort.distill.Distiller{
--      teacher = teacherNet,             -- or a list of teachers
--      student = studentNet,
--      T = 4, gamma = 0.1, alpha = 0.9, beta = 0,     -- numbers or retort.schedule values
--      pairs = {                         -- hint (teacher tap) / guided (student tap) pairs
--         {hint = "layer2", guided = "layer3", loss = retort.distill.FitNet{}, weight = 1},
--         {hint = "logits", guided = "logits", loss = "dkd"},   -- "logits": the networks' outputs
--      },
--      sample = x,                       -- a batch: sizes the regressors/embeddings of the methods
--      multiTeacher = "average",         -- or "sum" (one KD term per teacher)
--   }
--   retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), ...), ...}
--
-- The training loss (DESIGN.md §4, RepDistiller's combination):
--   loss = gamma * CE(s, y) + alpha * T^2 * KL(p_t || softmax(s / T)) + beta * sum_k w_k * L_k(g_k, h_k)
-- Each term is logged on its own: ce, kl (unscaled), kd (= T^2 KL), and one per pair (its name,
-- default the method's), plus the total; train.fit writes them to metrics.csv as train_<name>.
--
-- The teacher is frozen: kept in evaluation mode, run without recording a graph, and not a child of
-- the Distiller, so d:parameters() and optimizers never see its weights, and d:stateDict() holds the
-- student ("student.*") and the methods' trainable parts ("pairs.<name>.*"). In evaluation mode the
-- Distiller is the student alone. `loss` may be a method instance or class, the name of a method
-- ("at", "fitnet", ... : retort.distill.methods), or a function(fs, ft, ctx) returning a loss.
local retort = require "retort"
local nn = require "retort.nn"
local schedule = require "retort.schedule"
local Method = require "retort.distill.Method"
local check = require "retort.distill.check"

local Distiller = nn.class("Distiller", nn.Module)

local function is_method(x) return type(x) == "table" and nn.isModule(x) and x.loss ~= nil end

-- the loss of a pair as a method instance, and its display name
local function make_method(spec, i)
   local loss = spec.loss
   if type(loss) == "string" then
      local cls = require("retort.distill").methods[loss:lower()]
      if not cls then
         local names = {}
         for k in pairs(require("retort.distill").methods) do names[#names + 1] = k end
         table.sort(names)
         error(("Distiller: pair %d: unknown method '%s'; known: %s"):format(i, loss, table.concat(names, ", ")), 4)
      end
      return cls(spec.opts), loss:lower()
   elseif type(loss) == "function" then
      local m = Method()
      m.weight = 1
      function m:loss(fs, ft, ctx) return loss(fs, ft, ctx) end
      return m, "custom"
   elseif is_method(loss) then
      return loss, loss.__typename:lower()
   elseif type(loss) == "table" and loss.__typename and loss.loss then -- a class: build it with defaults
      return loss(spec.opts), loss.__typename:lower()
   end
   error(("Distiller: pair %d: loss must be a method (e.g. retort.distill.AT{}), a method name (\"at\") "
          .. "or a function(fs, ft, ctx), got %s"):format(i, type(loss)), 4)
end

local function as_list(x)
   if type(x) == "table" and not nn.isModule(x) then return x end
   return {x}
end

function Distiller:__init(o)
   nn.Module.__init(self)
   if type(o) ~= "table" then error("Distiller: a table of options is expected", 3) end
   if not nn.isModule(o.student) then error("Distiller: option 'student' must be an nn.Module", 3) end
   self.teachers = as_list(o.teacher)
   if #self.teachers == 0 then error("Distiller: option 'teacher' must be an nn.Module or a list of them", 3) end
   for i, t in ipairs(self.teachers) do
      if not nn.isModule(t) then error(("Distiller: teacher %d is not an nn.Module"):format(i), 3) end
      t:evaluate()
   end
   self.multiTeacher = o.multiTeacher or "average"
   if self.multiTeacher ~= "average" and self.multiTeacher ~= "sum" then
      error(("Distiller: multiTeacher must be \"average\" or \"sum\", got %s"):format(tostring(o.multiTeacher)), 3)
   end
   self.T = o.T or 4
   self.gamma = o.gamma or 1
   self.alpha = o.alpha or 0
   self.beta = o.beta or 1
   if type(self.T) == "number" and not (self.T > 0 and self.T < math.huge) then
      error(("Distiller: temperature T must be a positive number, got %s"):format(tostring(self.T)), 3)
   end
   self:addModule("student", o.student)
   local methods = nn.Sequential()
   self.pairs = {}
   local seen = {}
   for i, spec in ipairs(o.pairs or {}) do
      if type(spec) ~= "table" or type(spec.hint) ~= "string" or type(spec.guided) ~= "string" then
         error(("Distiller: pair %d must be {hint = \"teacher.tap\", guided = \"student.tap\", loss = ...}"):format(i), 3)
      end
      local method, name = make_method(spec, i)
      name = spec.name or name
      if seen[name] then name = name .. i end
      seen[name] = true
      local teacher = spec.teacher or 1
      if not self.teachers[teacher] then error(("Distiller: pair %d names teacher %s; there are %d"):format(
         i, tostring(teacher), #self.teachers), 3) end
      self:checkTap("student", o.student, spec.guided, i)
      self:checkTap("teacher", self.teachers[teacher], spec.hint, i)
      methods:add(name, method)
      self.pairs[i] = {hint = spec.hint, guided = spec.guided, method = method, name = name, teacher = teacher,
                       weight = spec.weight or method.weight or 1}
   end
   self:addModule("pairs", methods)
   if o.sample ~= nil then self:setup(o.sample) end
end

-- A tap name must exist ("logits" always does); the error lists the ones that do.
function Distiller:checkTap(role, net, name, i)
   if name == "logits" then return end
   for _, n in ipairs(net:tapNames()) do if n == name then return end end
   error(("Distiller: pair %d: the %s has no tap '%s'; available: %s"):format(i, role, name,
      table.concat(net:tapNames(), ", ")), 4)
end

-- taps of one network for the pairs, with "logits" filled from the output
local function run(net, x, names)
   local want, seen = {}, {}
   for _, n in ipairs(names) do
      if n ~= "logits" and not seen[n] then want[#want + 1], seen[n] = n, true end
   end
   local y, taps = net:forward(x, {taps = want})
   taps.logits = y
   return y, taps
end

function Distiller:tapLists()
   local guided, hints = {}, {}
   for i = 1, #self.teachers do hints[i] = {} end
   for _, p in ipairs(self.pairs) do
      guided[#guided + 1] = p.guided
      table.insert(hints[p.teacher], p.hint)
   end
   return guided, hints
end

-- Run the teachers (frozen, no graph) on x: their logits and taps.
function Distiller:runTeachers(x, hints)
   local logits, taps = {}, {}
   retort.noGrad(function()
      for i, t in ipairs(self.teachers) do
         if t:isTraining() then t:evaluate() end
         logits[i], taps[i] = run(t, x, hints[i])
      end
   end)
   return logits, taps
end

--- setup(x): run both networks once on a sample batch and size the methods that need it.
function Distiller:setup(x)
   local guided, hints = self:tapLists()
   local student = self._modules.student
   local was = student:isTraining()
   student:evaluate()
   local _, staps = retort.noGrad(function() return run(student, x, guided) end)
   if was then student:training() end
   local tlogits, ttaps = self:runTeachers(x, hints)
   check.logits("Distiller", staps.logits, tlogits[1])
   for _, p in ipairs(self.pairs) do
      if p.method.setup and not p.built then
         p.method:setup(staps[p.guided]:shape(), ttaps[p.teacher][p.hint]:shape())
         p.built = true
      end
   end
   return self
end

function Distiller:apply(x, ctx)
   if not self:isTraining() then return self:runChild("student", x, ctx) end
   local guided, hints = self:tapLists()
   local logits, staps = run(self._modules.student, x, guided)
   local tlogits, ttaps = self:runTeachers(x, hints)
   self._batch = {staps = staps, tlogits = tlogits, ttaps = ttaps}
   return logits
end

-- teacher logits for the KD term: the average of the teachers' (multiTeacher = "average")
local function mean_logits(list)
   if #list == 1 then return list[1] end
   local s = list[1]
   for i = 2, #list do s = s + list[i] end
   return s / #list
end

--- termNames(): the names of the logged terms, in order (metrics columns).
function Distiller:termNames()
   local names = {"ce", "kl", "kd"}
   for _, p in ipairs(self.pairs) do names[#names + 1] = p.name end
   names[#names + 1] = "total"
   return names
end

--- trainingLoss(logits, y, ctx) -> loss, terms: the combined loss of the last training forward.
function Distiller:trainingLoss(logits, y, ctx)
   local b = self._batch
   if not b then error("Distiller: trainingLoss needs a training-mode forward first", 2) end
   self._batch = nil
   local progress = ctx and {epoch = ctx.epoch, step = ctx.step and ctx.step - 1, epochs = ctx.epochs,
                             stepsPerEpoch = ctx.stepsPerEpoch} or {epoch = 1, step = 0}
   local T = schedule.value(self.T, progress)
   local gamma, alpha, beta = schedule.value(self.gamma, progress), schedule.value(self.alpha, progress),
                              schedule.value(self.beta, progress)
   local terms = {}
   local total
   local function add(t, w)
      if w == 0 then return end
      total = total and total + t * w or t * w
   end
   local ce = retort.loss.crossEntropy(logits, y)
   terms.ce = ce:item()
   add(ce, gamma)
   if alpha ~= 0 then
      local kd_terms = {}
      if self.multiTeacher == "average" then
         local kd, t = retort.kdLoss(logits, mean_logits(b.tlogits), nil, {T = T, alpha = 1})
         add(kd, alpha)
         kd_terms = t
      else
         local kl = 0
         for _, tl in ipairs(b.tlogits) do
            local kd, t = retort.kdLoss(logits, tl, nil, {T = T, alpha = 1})
            add(kd, alpha)
            kl = kl + t.kl
         end
         kd_terms.kl = kl
      end
      terms.kl, terms.kd = kd_terms.kl, kd_terms.kl * T * T
   end
   local mctx = {labels = y, studentLogits = logits, teacherLogits = b.tlogits[1], progress = progress}
   for _, p in ipairs(self.pairs) do
      local w = schedule.value(p.weight, progress)
      local l = p.method:loss(b.staps[p.guided], b.ttaps[p.teacher][p.hint], mctx)
      terms[p.name] = l:item()
      add(l, w * beta)
   end
   total = total or ce * 0
   terms.total = total:item()
   return total, terms
end

return Distiller
