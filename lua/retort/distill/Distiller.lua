-- Distiller: a frozen teacher (or several), a student, and the losses that join them.
--
--   local d = retort.distill.Distiller{
--      teacher = teacherNet,             -- or a list of teachers; or a soft-target cache (retort.cache)
--      student = studentNet,
--      T = 4, gamma = 0.1, alpha = 0.9, beta = 0,     -- numbers or retort.schedule values
--      pairs = {                         -- hint (teacher tap) / guided (student tap) pairs
--         {hint = "layer2", guided = "layer3", loss = retort.distill.FitNet{}, weight = 1},
--         {hint = "logits", guided = "logits", loss = "dkd"},   -- "logits": the networks' outputs
--      },
--      sample = x,                       -- a batch: sizes the regressors/embeddings of the methods
--      multiTeacher = "average",         -- or "sum" (one KD term per teacher)
--      stage = "main",                   -- or "init" (see below)
--   }
--   retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), ...), ...}
--
-- Two stages (FitNets' hint stage, RepDistiller's init stage for AB, FT and FSP): each pair has a
-- phase, its method's (AB, FSP: "init"; FT: "both"; others "main") unless the pair says `stage =`.
-- d:setStage("init") makes the loss the sum of the init pairs' weighted (init) losses alone (weight:
-- the pair's initWeight, else the method's, else its weight), and
-- d:initParameters() lists what that stage trains: the student up to the deepest guided layer of
-- those pairs, and the methods' own parts. d:setStage("main") then trains with CE, KD and the main
-- pairs. A checkpoint of either stage has the same entries, so stage 2 can start from stage 1's.
-- A pair may name two taps on each side, {hint = {"a", "b"}, guided = {"c", "d"}}, for FSP.
--
-- The training loss (DESIGN.md §4, RepDistiller's combination):
--   loss = gamma * CE(s, y) + alpha * T^2 * KL(p_t || softmax(s / T)) + beta * sum_k w_k * L_k(g_k, h_k)
-- With per-example weights w (a curriculum loader's, ctx.weights) CE and KD become sum_i w_i l_i / N.
-- Each term is logged on its own: ce, kl (unscaled), kd (= T^2 KL), and one per pair (its name,
-- default the method's), plus the total; train.fit writes them to metrics.csv as train_<name>.
--
-- The teacher is frozen: kept in evaluation mode, run without recording a graph, and not a child of
-- the Distiller, so d:parameters() and optimizers never see its weights, and d:stateDict() holds the
-- student ("student.*") and the methods' trainable parts ("pairs.<name>.*"). In evaluation mode the
-- Distiller is the student alone.
--
-- A teacher may be a soft-target cache (retort.cache.open / build): its logits, and features at the
-- taps it was built with, are read for the batch's dataset indices and the epoch's view instead of
-- running a network (train.fit passes both from a retort.data.Loader).
--
-- `loss` may be a method instance or class, the name of a method
-- ("at", "fitnet", ... : retort.distill.methods), or a function(fs, ft, ctx) returning a loss.
local retort = require "retort"
local nn = require "retort.nn"
local schedule = require "retort.schedule"
local Method = require "retort.distill.Method"
local check = require "retort.distill.check"

local Distiller = nn.class("Distiller", nn.Module)

local function is_cache(x) return require("retort.cache").isCache(x) end

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

-- a pair's tap: a name, or a list of names (FSP)
local function taps_spec(x)
   if type(x) == "string" then return true end
   if type(x) ~= "table" or #x == 0 then return false end
   for _, n in ipairs(x) do if type(n) ~= "string" then return false end end
   return true
end

local function as_names(x) return type(x) == "string" and {x} or x end

-- the outputs of a pair's taps: a tensor, or a list of them
local function pick(taps, x)
   if type(x) == "string" then return taps[x] end
   local out = {}
   for i, n in ipairs(x) do out[i] = taps[n] end
   return out
end

local function shape_of(v)
   if retort.isTensor(v) then return v:shape() end
   local out = {}
   for i, t in ipairs(v) do out[i] = t:shape() end
   return out
end

local function as_list(x)
   if type(x) == "table" and not nn.isModule(x) and not is_cache(x) then return x end
   return {x}
end

local DISTILLER_OPTIONS = {student = true, teacher = true, multiTeacher = true, T = true, gamma = true, alpha = true,
                           beta = true, stage = true, pairs = true, sample = true}
local PAIR_OPTIONS = {hint = true, guided = true, loss = true, opts = true, name = true, teacher = true, stage = true,
                      weight = true, initWeight = true}

function Distiller:__init(o)
   nn.Module.__init(self)
   if type(o) ~= "table" then error("Distiller: a table of options is expected", 3) end
   require("retort.options").check("Distiller", o, DISTILLER_OPTIONS, 3)
   if not nn.isModule(o.student) then error("Distiller: option 'student' must be an nn.Module", 3) end
   self.teachers = as_list(o.teacher)
   if #self.teachers == 0 then
      error("Distiller: option 'teacher' must be an nn.Module, a soft-target cache, or a list of them", 3)
   end
   for i, t in ipairs(self.teachers) do
      if is_cache(t) then
         self.hasCache = true
      elseif nn.isModule(t) then
         t:evaluate()
      else
         error(("Distiller: teacher %d is neither an nn.Module nor a soft-target cache (retort.cache)"):format(i), 3)
      end
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
   self:setStage(o.stage or "main")
   local methods = nn.Sequential()
   self.pairs = {}
   local seen = {}
   for i, spec in ipairs(o.pairs or {}) do
      if type(spec) ~= "table" or not taps_spec(spec.hint) or not taps_spec(spec.guided) then
         error(("Distiller: pair %d must be {hint = \"teacher.tap\", guided = \"student.tap\", "
                .. "loss = ...}"):format(i), 3)
      end
      require("retort.options").check(("Distiller: pair %d"):format(i), spec, PAIR_OPTIONS, 3)
      local method, name = make_method(spec, i)
      name = spec.name or name
      if seen[name] then name = name .. i end
      seen[name] = true
      local teacher = spec.teacher or 1
      if not self.teachers[teacher] then error(("Distiller: pair %d names teacher %s; there are %d"):format(
         i, tostring(teacher), #self.teachers), 3) end
      for _, tap in ipairs(as_names(spec.guided)) do self:checkTap("student", o.student, tap, i) end
      for _, tap in ipairs(as_names(spec.hint)) do self:checkTap("teacher", self.teachers[teacher], tap, i) end
      local phase = spec.stage or method.phase or "main"
      if phase ~= "main" and phase ~= "init" and phase ~= "both" then
         error(("Distiller: pair %d: stage must be \"main\", \"init\" or \"both\", got %s"):format(
            i, tostring(phase)), 3)
      end
      methods:add(name, method)
      self.pairs[i] = {hint = spec.hint, guided = spec.guided, method = method, name = name, teacher = teacher,
                       weight = spec.weight or method.weight or 1, phase = phase}
      self.pairs[i].initWeight = spec.initWeight or method.initWeight or self.pairs[i].weight
   end
   self:addModule("pairs", methods)
   if o.sample ~= nil then self:setup(o.sample) end
end

-- A tap name must exist ("logits" always does); the error lists the ones that do.
function Distiller:checkTap(role, net, name, i)
   if name == "logits" then return end
   if is_cache(net) then
      for _, n in ipairs(net.taps) do if n == name then return end end
      error(("Distiller: pair %d: the teacher's cache %s holds no features for tap '%s'; it holds: %s (build it "
             .. "with taps = {\"%s\"})"):format(i, net.path, name, #net.taps > 0 and table.concat(net.taps, ", ")
             or "logits only", name), 4)
   end
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

--- checkData(loader): errors unless every cached teacher was built for this loader's dataset and
--- augmentation (train.fit calls it before training).
function Distiller:checkData(loader)
   for _, t in ipairs(self.teachers) do
      if is_cache(t) then t:check{loader = loader} end
   end
end

--- setStage("init" | "main"): which loss trainingStep computes (see the top of this file).
function Distiller:setStage(stage)
   if stage ~= "init" and stage ~= "main" then
      error(("Distiller: stage must be \"init\" or \"main\", got %s"):format(tostring(stage)), 2)
   end
   self.stage = stage
   return self
end

-- is pair p part of the current stage?
function Distiller:active(p)
   if self.stage == "init" then return p.phase ~= "main" end
   return p.phase ~= "init"
end

--- initParameters(): what the init stage trains: the student's top-level children up to the deepest
--- one holding a guided tap of an init pair that trains the student, and the init pairs' own parts.
function Distiller:initParameters()
   local student = self._modules.student
   local deepest, rank = 0, {}
   for i, name in ipairs(student._children) do rank[name] = i end
   local params, any = {}, false
   for _, p in ipairs(self.pairs) do
      if p.phase ~= "main" then
         any = true
         if p.method.initTrainsStudent ~= false then
            for _, tap in ipairs(as_names(p.guided)) do
               local r = tap == "logits" and #student._children or rank[tap:match("^[^.]+")]
               if not r then
                  error(("Distiller:initParameters: cannot place the student tap '%s' among its "
                         .. "children"):format(tap), 2)
               end
               deepest = math.max(deepest, r)
            end
         end
      end
   end
   if not any then
      error("Distiller:initParameters: no pair has an init stage (FitNet pairs need stage = \"init\")", 2)
   end
   for i = 1, deepest do
      for _, t in ipairs(student._modules[student._children[i]]:parameters()) do params[#params + 1] = t end
   end
   for _, p in ipairs(self.pairs) do
      if p.phase ~= "main" then
         for _, t in ipairs(p.method.initParameters and p.method:initParameters() or p.method:parameters()) do
            params[#params + 1] = t
         end
      end
   end
   return params
end

-- the student and per-teacher tap names of the current stage's pairs (all pairs with all = true)
function Distiller:tapLists(all)
   local guided, hints = {}, {}
   for i = 1, #self.teachers do hints[i] = {} end
   for _, p in ipairs(self.pairs) do
      if all or self:active(p) then
         for _, n in ipairs(as_names(p.guided)) do guided[#guided + 1] = n end
         for _, n in ipairs(as_names(p.hint)) do table.insert(hints[p.teacher], n) end
      end
   end
   return guided, hints
end

-- a cache's logits and features for dataset rows idx in that epoch's view, on `device`
local function lookup(cache, names, idx, epoch, device)
   local y = cache:teacherLogits(idx, epoch):to(device)
   local taps = {logits = y}
   for _, n in ipairs(names) do
      if n ~= "logits" then taps[n] = cache:features(n, idx, epoch):to(device) end
   end
   return y, taps
end

-- Run the teachers (frozen, no graph) on x: their logits and taps. Caches are read for
-- rows = {indices =, epoch =}; without rows they are left out (filled in by trainingStep). Without
-- x only the caches are read (trainingStep, once the networks have run).
function Distiller:runTeachers(x, hints, rows)
   local logits, taps = {}, {}
   local device = rows and self.hasCache and self:device() -- cached rows go where the student is
   retort.noGrad(function()
      for i, t in ipairs(self.teachers) do
         if is_cache(t) then
            if rows then logits[i], taps[i] = lookup(t, hints[i], rows.indices, rows.epoch, device) end
         elseif x ~= nil then
            if t:isTraining() then t:evaluate() end
            logits[i], taps[i] = run(t, x:to(t:device()), hints[i]) -- a no-op once the Distiller has moved
         end
      end
   end)
   return logits, taps
end

-- Teachers are not children (they are neither trained nor saved with the student), but they run on
-- the student's batches: moving the Distiller (cuda, cpu, double, ...) moves its network teachers too.
function Distiller:mapTensors(fn)
   nn.Module.mapTensors(self, fn)
   for _, t in ipairs(self.teachers) do
      if nn.isModule(t) then t:mapTensors(fn) end
   end
   return self
end

--- setup(x): run both networks once on a sample batch (on each one's device) and size the methods
--- that need it.
function Distiller:setup(x)
   local guided, hints = self:tapLists(true)
   local student = self._modules.student
   local was = student:isTraining()
   student:evaluate()
   local _, staps = retort.noGrad(function() return run(student, x:to(student:device()), guided) end)
   if was then student:training() end
   local rows = nil
   if self.hasCache then -- shapes only: the first rows of each cache
      local n = x:size(1)
      for _, t in ipairs(self.teachers) do if is_cache(t) then n = math.min(n, t.rowsDone) end end
      rows = {indices = retort.arange(1, math.max(n, 1), "i64"), epoch = 1}
   end
   local tlogits, ttaps = self:runTeachers(x, hints, rows)
   check.logits("Distiller", staps.logits, tlogits[1])
   for _, p in ipairs(self.pairs) do
      if p.method.setup and not p.built then
         p.method:setup(shape_of(pick(staps, p.guided)), shape_of(pick(ttaps[p.teacher], p.hint)))
         p.built = true
      end
   end
   return self
end

-- forward: the student alone (in training mode too; the losses come from trainingStep)
function Distiller:apply(x, ctx)
   return self:runChild("student", x, ctx)
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
   local names = self.stage == "main" and {"ce", "kl", "kd"} or {}
   for _, p in ipairs(self.pairs) do if self:active(p) then names[#names + 1] = p.name end end
   names[#names + 1] = "total"
   return names
end

--- trainingStep(x, y [, ctx]) -> logits, loss, terms: one training forward of the student and the
--- teachers on the batch x (labels y, 1-based) and the combined loss with its terms. ctx: {epoch, step,
--- epochs, stepsPerEpoch, indices (the batch's dataset indices: a cached teacher needs them), weights}.
--- retort.train.fit calls it for any model that has it; one call, nothing kept between calls.
function Distiller:trainingStep(x, y, ctx)
   local guided, hints = self:tapLists()
   local logits, staps = run(self._modules.student, x, guided)
   local tlogits, ttaps = self:runTeachers(x, hints)
   local b = {staps = staps, tlogits = tlogits, ttaps = ttaps, hints = hints}
   if self.hasCache then
      if not (ctx and ctx.indices) then
         error("Distiller: a cached teacher needs the batch's dataset indices: train with retort.train.fit and a "
               .. "retort.data.Loader (it passes them), or give ctx.indices", 2)
      end
      local cl, ct = self:runTeachers(nil, b.hints, {indices = ctx.indices, epoch = ctx.epoch or 1})
      for i in pairs(cl) do b.tlogits[i], b.ttaps[i] = cl[i], ct[i] end
   end
   local progress = ctx and {epoch = ctx.epoch, step = ctx.step and ctx.step - 1, epochs = ctx.epochs,
                             stepsPerEpoch = ctx.stepsPerEpoch} or {epoch = 1, step = 0}
   local T = schedule.value(self.T, progress)
   local gamma, alpha, beta = schedule.value(self.gamma, progress), schedule.value(self.alpha, progress),
                              schedule.value(self.beta, progress)
   local terms = {}
   local total
   local function add(t, w)
      if w == 0 then return end
      if w ~= 1 then t = t * w end -- a weight of 1 costs no launch on a GPU
      total = total and total + t or t
   end
   local mctx = {labels = y, indices = ctx and ctx.indices, studentLogits = logits, teacherLogits = b.tlogits[1],
                 progress = progress}
   if self.stage == "init" then
      for _, p in ipairs(self.pairs) do
         if self:active(p) then
            local m = p.method
            local l = (m.initLoss or m.loss)(m, pick(b.staps, p.guided), pick(b.ttaps[p.teacher], p.hint), mctx)
            terms[p.name] = l:detach()
            add(l, schedule.value(p.initWeight, progress))
         end
      end
      total = total or logits:sum() * 0
      terms.total = total:detach()
      return logits, total, terms
   end
   local w = ctx and ctx.weights -- a curriculum's per-example weights: on CE and KD, not on the pairs
   if gamma > 0 and alpha > 0 and not w and (#b.tlogits == 1 or self.multiTeacher == "average") then
      -- gamma CE + alpha T^2 KL = s ((1 - a) CE + a T^2 KL) with s = gamma + alpha, a = alpha / s: one
      -- fused loss (one kernel for both terms, forward and backward) instead of two and their sum.
      -- Not with a curriculum's weights: terms.ce is then the weighted CE, which kdLoss does not report.
      local s = gamma + alpha
      local kd, t = retort.kdLoss(logits, mean_logits(b.tlogits), y, {T = T, alpha = alpha / s})
      add(kd, s)
      terms.ce, terms.kl, terms.kd = t.ce, t.kl, t.klScaled
   else
      local ce = retort.loss.weightedCrossEntropy(logits, y, w)
      terms.ce = ce:detach()
      add(ce, gamma)
      if alpha ~= 0 then
         local kd_terms = {}
         if self.multiTeacher == "average" then
            local kd, t = retort.kdLoss(logits, mean_logits(b.tlogits), nil, {T = T, alpha = 1, weights = w})
            add(kd, alpha)
            kd_terms = t
         else
            local kl
            for _, tl in ipairs(b.tlogits) do
               local kd, t = retort.kdLoss(logits, tl, nil, {T = T, alpha = 1, weights = w})
               add(kd, alpha)
               kl = kl and kl + t.kl or t.kl
            end
            kd_terms.kl = kl
         end
         terms.kl, terms.kd = kd_terms.kl, kd_terms.klScaled or kd_terms.kl * (T * T)
      end
   end
   for _, p in ipairs(self.pairs) do
      if self:active(p) then
         local pw = schedule.value(p.weight, progress)
         local l = p.method:loss(pick(b.staps, p.guided), pick(b.ttaps[p.teacher], p.hint), mctx)
         terms[p.name] = l:detach()
         add(l, pw * beta)
      end
   end
   total = total or logits:sum() * 0 -- every weight 0 and no active pair: a zero loss on the graph
   terms.total = total:detach()
   return logits, total, terms
end

return Distiller
