-- retort.optim: update rules against scalar re-derivations of PyTorch's formulas (an independent
-- per-element Lua implementation), closed forms (SGD on a quadratic, Adam's first step),
-- parameter groups, schedules as options, state dict round trips and errors.
local retort = require "retort"
local optim = retort.optim
local schedule = retort.schedule

local W0 = {1.5, -2, 0.25}

-- f(w) = sum(w^3 / 3 + w^2): gradient g = w^2 + 2w (not linear, so buffers matter)
local function grad_of(w) return w * w + 2 * w end

local function run(cls, opts, steps)
   local w = retort.tensor(W0, "f64"):requiresGrad()
   local opt = optim[cls]({w}, opts)
   for _ = 1, steps do
      opt:zeroGrad()
      local l_ = ((w:pow(3) / 3) + w * w):sum(); l_:backward()
      opt:step()
   end
   return w:totable(), opt, w
end

-- scalar references, one element at a time
local ref = {}
function ref.SGD(w, o, steps)
   local buf
   for _ = 1, steps do
      local d = grad_of(w) + (o.weightDecay or 0) * w
      local m = o.momentum or 0
      if m ~= 0 then
         if buf == nil then buf = d else buf = m * buf + (1 - (o.dampening or 0)) * d end
         if o.nesterov then d = d + m * buf else d = buf end
      end
      w = w - o.lr * d
   end
   return w
end

local function adam(w, o, steps, decoupled)
   local b1, b2 = 0.9, 0.999
   if o.betas then b1, b2 = o.betas[1], o.betas[2] end
   local eps, wd = o.eps or 1e-8, o.weightDecay or (decoupled and 1e-2 or 0)
   local m, v, vmax = 0, 0, 0
   for t = 1, steps do
      local g = grad_of(w)
      if decoupled then w = w * (1 - o.lr * wd) else g = g + wd * w end
      m = b1 * m + (1 - b1) * g
      v = b2 * v + (1 - b2) * g * g
      local s = v
      if o.amsgrad then vmax = math.max(vmax, v); s = vmax end
      w = w - o.lr / (1 - b1 ^ t) * m / (math.sqrt(s) / math.sqrt(1 - b2 ^ t) + eps)
   end
   return w
end
function ref.Adam(w, o, steps) return adam(w, o, steps, false) end
function ref.AdamW(w, o, steps) return adam(w, o, steps, true) end

function ref.RMSProp(w, o, steps)
   local alpha, eps, wd, mom = o.alpha or 0.99, o.eps or 1e-8, o.weightDecay or 0, o.momentum or 0
   local s, a, buf = 0, 0, 0
   for _ = 1, steps do
      local g = grad_of(w) + wd * w
      s = alpha * s + (1 - alpha) * g * g
      local avg
      if o.centered then
         a = alpha * a + (1 - alpha) * g
         avg = math.sqrt(s - a * a) + eps
      else
         avg = math.sqrt(s) + eps
      end
      if mom > 0 then
         buf = mom * buf + g / avg
         w = w - o.lr * buf
      else
         w = w - o.lr * g / avg
      end
   end
   return w
end

local CASES = {
   {"SGD", {lr = 0.05}},
   {"SGD", {lr = 0.05, momentum = 0.9}},
   {"SGD", {lr = 0.05, momentum = 0.9, dampening = 0.3, weightDecay = 0.1}},
   {"SGD", {lr = 0.05, momentum = 0.8, nesterov = true, weightDecay = 0.01}},
   {"Adam", {lr = 0.1}},
   {"Adam", {lr = 0.05, betas = {0.8, 0.99}, weightDecay = 0.1, amsgrad = true, eps = 1e-6}},
   {"AdamW", {lr = 0.1}},
   {"AdamW", {lr = 0.1, weightDecay = 0.3, amsgrad = true}},
   {"RMSProp", {lr = 0.01}},
   {"RMSProp", {lr = 0.01, momentum = 0.9, centered = true, weightDecay = 0.1, alpha = 0.9}},
}

local function desc(o)
   local keys = {}
   for k in pairs(o) do keys[#keys + 1] = k end
   table.sort(keys)
   local parts = {}
   for _, k in ipairs(keys) do
      local v = o[k]
      parts[#parts + 1] = k .. "=" .. (type(v) == "table" and table.concat(v, "/") or tostring(v))
   end
   return table.concat(parts, " ")
end

describe("update rules", function()
   for _, case in ipairs(CASES) do
      local cls, o = case[1], case[2]
      it(("%s %s matches the scalar reference over 5 steps"):format(cls, desc(o)), function()
         local got = run(cls, o, 5)
         for i, w in ipairs(W0) do
            local want = ref[cls](w, o, 5)
            assert.is_true(math.abs(got[i] - want) < 1e-12 * math.max(1, math.abs(want)),
               ("element %d: expected %.15g, got %.15g"):format(i, want, got[i]))
         end
      end)
   end

   it("SGD on a quadratic follows the closed form w_T = (1 - lr a)^T w_0", function()
      local a, lr = 3, 0.1
      local w = retort.tensor({2, -1}, "f64"):requiresGrad()
      local opt = optim.SGD({w}, {lr = lr})
      for _ = 1, 10 do
         opt:zeroGrad()
         local l_ = (w * w * (a / 2)):sum(); l_:backward()
         opt:step()
      end
      local f = (1 - lr * a) ^ 10
      assert.is_true(math.abs(w:get(1) - 2 * f) < 1e-12 and math.abs(w:get(2) + f) < 1e-12)
   end)

   it("Adam's first step moves every coordinate by lr against the gradient sign", function()
      local w = retort.tensor({3, -0.5, 100}, "f64"):requiresGrad()
      local opt = optim.Adam({w}, {lr = 0.01})
      local l_ = ((w:pow(3) / 3) + w * w):sum(); l_:backward()
      opt:step()
      local got = w:totable()
      -- gradient signs: +, -, + (w^2 + 2w at -0.5 is -0.75)
      assert.is_true(math.abs(got[1] - 2.99) < 1e-9 and math.abs(got[2] + 0.49) < 1e-9
                     and math.abs(got[3] - 99.99) < 1e-9)
   end)

   it("skips parameters without gradients and leaves their state empty", function()
      local a = retort.tensor({1}, "f64"):requiresGrad()
      local b = retort.tensor({1}, "f64"):requiresGrad()
      local opt = optim.SGD({a, b}, {lr = 0.1, momentum = 0.9})
      local l_ = (a * a):sum(); l_:backward()
      opt:step()
      assert.are.equal(1, b:get(1))
      assert.is_nil(opt.state[2])
      assert.are.equal(1, opt.state[1].step)
   end)
end)

describe("options", function()
   it("parameter groups override the defaults", function()
      local a = retort.tensor({1}, "f64"):requiresGrad()
      local b = retort.tensor({1}, "f64"):requiresGrad()
      local opt = optim.SGD({{params = {a}}, {params = {b}, lr = 0.5}}, {lr = 0.1})
      local l_ = ((a * a):sum() + (b * b):sum()); l_:backward()
      opt:step()
      assert.is_true(math.abs(a:get(1) - 0.8) < 1e-12)
      assert.is_true(math.abs(b:get(1) - 0.0) < 1e-12)
      assert.are.equal(0.5, opt:currentLr(2))
   end)

   it("the learning rate may be a schedule fed by the progress", function()
      local w = retort.tensor({0}, "f64"):requiresGrad()
      local opt = optim.SGD({w}, {lr = schedule.step{base = 1, gamma = 0.1, every = 1}})
      local function unit_step()
         opt:zeroGrad()
         local l_ = (w * -1):sum(); l_:backward() -- gradient -1: w grows by lr
         opt:step()
      end
      opt:setEpoch(1); unit_step()
      opt:setEpoch(2); unit_step()
      opt:setProgress{epoch = 3, step = 0}; unit_step()
      assert.is_true(math.abs(w:get(1) - 1.11) < 1e-12)
      assert.is_true(math.abs(opt:currentLr() - 0.01) < 1e-15)
      -- step-based schedules count the optimizer's own steps without stepsPerEpoch
      local w2 = retort.tensor({0}, "f64"):requiresGrad()
      local o2 = optim.SGD({w2}, {lr = schedule.linear{from = 1, to = 0, steps = 4}})
      local lrs = {}
      for i = 1, 5 do
         lrs[i] = o2:currentLr()
         o2:zeroGrad(); (w2 * -1):sum():backward(); o2:step()
      end
      assert.are.same({1, 0.75, 0.5, 0.25, 0}, lrs)
   end)

   it("rejects unknown options, missing lr and bad parameters", function()
      local w = retort.randn(2):requiresGrad()
      local ok, err = pcall(optim.SGD, {w}, {lr = 0.1, mommentum = 0.9})
      assert.is_false(ok)
      assert.matches("unknown option 'mommentum'; known: dampening, lr, momentum, nesterov, weightDecay", err, 1, true)
      assert.matches("option 'lr' is required", select(2, pcall(optim.SGD, {w}, {})), 1, true)
      assert.matches("does not require grad", select(2, pcall(optim.Adam, {retort.randn(2)})), 1, true)
      assert.matches("appears more than once", select(2, pcall(optim.Adam, {w, w})), 1, true)
      assert.matches("nesterov needs momentum", select(2, pcall(optim.SGD, {w}, {lr = 1, nesterov = true})), 1, true)
      -- the fused kernel reads and writes parameter, gradient and buffer as separate arrays
      local p, g = retort.randn(4), retort.randn(4)
      assert.matches("gradient shares the parameter's storage",
                     select(2, pcall(retort.sgdUpdate, p, p, nil, {lr = 0.1})), 1, true)
      assert.matches("momentum buffer shares the gradient's storage",
                     select(2, pcall(retort.sgdUpdate, p, g, g, {lr = 0.1, momentum = 0.9})), 1, true)
   end)

   it("refuses values out of range and an empty parameter list, naming the option and the value", function()
      local w = retort.randn(2):requiresGrad()
      local function err_of(cls, params, o) local ok, e = pcall(cls, params, o); assert.is_false(ok); return e end
      assert.matches("optim.SGD: lr must be a number >= 0, got -0.1", err_of(optim.SGD, {w}, {lr = -0.1}), 1, true)
      assert.matches("optim.SGD: lr must be a number >= 0 or a schedule, got string",
                     err_of(optim.SGD, {w}, {lr = "0.1"}), 1, true)
      assert.matches("lr must be a number >= 0, got %-?nan", err_of(optim.Adam, {w}, {lr = 0 / 0}))
      assert.matches("optim.Adam: betas[2] must be in [0, 1), got 1", err_of(optim.Adam, {w}, {betas = {0.9, 1}}),
                     1, true)
      assert.matches("betas[1] must be in [0, 1), got -0.5", err_of(optim.AdamW, {w}, {betas = {-0.5, 0.9}}), 1, true)
      assert.matches("eps must be a number > 0, got 0", err_of(optim.Adam, {w}, {eps = 0}), 1, true)
      assert.matches("weightDecay must be a number >= 0, got -1", err_of(optim.SGD, {w}, {lr = 1, weightDecay = -1}),
                     1, true)
      assert.matches("momentum must be a number in [0, 1], got 1.5", err_of(optim.SGD, {w}, {lr = 1, momentum = 1.5}),
                     1, true)
      assert.matches("group 2: lr must be a number >= 0, got -1",
                     err_of(optim.SGD, {{params = {w}}, {params = {retort.randn(2):requiresGrad()}, lr = -1}},
                            {lr = 1}),
                     1, true)
      assert.matches("optim.SGD: no parameters to optimize", err_of(optim.SGD, {}, {lr = 0.1}), 1, true)
      -- schedules and boundary values are fine
      optim.SGD({w}, {lr = retort.schedule.cosine{base = 0.1, epochs = 3}, momentum = 0})
      optim.Adam({w}, {lr = 0, betas = {0, 0.999}})
   end)
end)

describe("state dicts", function()
   for _, cls in ipairs{"SGD", "Adam", "AdamW", "RMSProp"} do
      it(cls .. ": save after 3 steps, load into a fresh optimizer, continue identically", function()
         local o = {lr = 0.05}
         if cls == "SGD" then o.momentum = 0.9 end
         if cls == "RMSProp" then o.momentum = 0.5; o.centered = true end
         local _, opt, w = run(cls, o, 3)
         local sd = opt:stateDict()
         assert.are.equal(3, sd.iteration)
         assert.are.equal(3, sd.state[1].step)
         for k, v in pairs(sd.state[1]) do
            assert.is_true(type(v) == "number" or retort.isTensor(v), k)
         end
         -- the continuation of the original
         local function step_once(opt_, w_)
            opt_:zeroGrad()
            local l_ = ((w_:pow(3) / 3) + w_ * w_):sum(); l_:backward()
            opt_:step()
         end
         local w2 = w:detach():clone():requiresGrad()
         local opt2 = optim[cls]({w2}, o)
         opt2:loadStateDict(sd)
         step_once(opt, w)
         step_once(opt2, w2)
         assert.are.same(w:totable(), w2:totable())
         local want = run(cls, o, 4)
         for i = 1, 3 do assert.is_true(math.abs(want[i] - w2:get(i)) < 1e-12) end
      end)
   end

   it("loadStateDict refuses a state of another shape or size", function()
      local _, opt = run("Adam", {lr = 0.1}, 1)
      local sd = opt:stateDict()
      local other = optim.Adam({retort.randn(4, "f64"):requiresGrad()})
      local ok, err = pcall(other.loadStateDict, other, sd)
      assert.is_false(ok)
      assert.matches("shape mismatch: parameter 1 (4): expAvg is (3)", err, 1, true)
      local two = optim.Adam({retort.randn(3):requiresGrad(), retort.randn(3):requiresGrad()})
      assert.matches("the state has 1 parameters, this optimizer 2", select(2, pcall(two.loadStateDict, two, sd)),
                     1, true)
   end)

   it("SGD gives the same steps on non-contiguous parameters (generic path) as on contiguous ones (fused)", function()
      local o = {lr = 0.1, momentum = 0.9, dampening = 0.1, weightDecay = 0.01, nesterov = false}
      retort.manualSeed(3)
      local base = retort.randn(3, 4, "f64")
      local grads = {retort.randn(3, 4, "f64"), retort.randn(3, 4, "f64"), retort.randn(3, 4, "f64")}
      local a = base:clone():requiresGrad()
      local b = base:t():clone():t():requiresGrad() -- same values, transposed storage
      assert.is_false(b:isContiguous())
      local oa, ob = optim.SGD({a}, o), optim.SGD({b}, o)
      for k = 1, 3 do
         a.grad = nil
         b.grad = nil
         local la, lb = (a * grads[k]):sum(), (b * grads[k]):sum()
         la:backward()
         lb:backward()
         oa:step(); ob:step()
      end
      for i = 1, 3 do for j = 1, 4 do
         assert.is_true(math.abs(a:get(i, j) - b:get(i, j)) < 1e-12)
      end end
   end)

   it("Adam and AdamW: the fused step equals the composed one to the bit (f32 and f64)", function()
      for _, case in ipairs{{"Adam", {lr = 0.05, betas = {0.8, 0.99}, weightDecay = 0.1, amsgrad = true, eps = 1e-6}},
                            {"Adam", {lr = 0.01}}, {"AdamW", {lr = 0.02, weightDecay = 0.3, amsgrad = true}}} do
         for _, dt in ipairs{"f32", "f64"} do
            retort.manualSeed(6)
            local base = retort.randn(5, 7, dt)
            local a = base:clone():requiresGrad()                    -- contiguous: the fused kernel
            local b = base:t():clone():t():requiresGrad()            -- strided: the composed step
            assert.is_false(b:isContiguous())
            local opt = optim[case[1]]({a, b}, case[2])
            for _ = 1, 4 do
               local gk = retort.randn(5, 7, dt)
               a.grad, b.grad = nil, nil
               ;(a * gk):sum():backward()
               ;(b * gk):sum():backward()
               opt:step()
            end
            assert.are.equal(0, (a - b):abs():max():item(), case[1] .. " " .. dt)
         end
      end
   end)

   it("SGD steps a group in one fused call: same as one optimizer per parameter, mixed paths, late starters", function()
      -- a and c contiguous (fused, in one call), b strided (composed); c gets its first gradient at step 2
      local o = {lr = 0.1, momentum = 0.9, dampening = 0, weightDecay = 0.01, nesterov = true}
      retort.manualSeed(4)
      local base = retort.randn(3, 4, "f64")
      local function params()
         return base:clone():requiresGrad(), base:t():clone():t():requiresGrad(), base:clone():requiresGrad()
      end
      local a, b, c = params()
      local a1, b1, c1 = params()
      local together = optim.SGD({a, b, c}, o)
      local alone = {optim.SGD({a1}, o), optim.SGD({b1}, o), optim.SGD({c1}, o)}
      for k = 1, 3 do
         local gk = retort.randn(3, 4, "f64")
         for _, set in ipairs{{a, b, c}, {a1, b1, c1}} do
            for i, p in ipairs(set) do
               p.grad = nil
               if not (i == 3 and k == 1) then (p * gk * i):sum():backward() end
            end
         end
         together:step()
         for _, opt in ipairs(alone) do opt:step() end
      end
      for _, pair in ipairs{{a, a1}, {b, b1}, {c, c1}} do
         assert.are.equal(0, (pair[1] - pair[2]):abs():max():item())
      end
   end)
end)

describe("loadStateDict of a damaged state", function()
   it("says what was expected and what was found, instead of comparing '4' with 4", function()
      local w = retort.randn(3):requiresGrad()
      local o = optim.SGD({w}, {lr = 0.1, momentum = 0.9})
      o:zeroGrad(); w:sum():backward(); o:step()
      local function err_of(edit)
         local sd = o:stateDict()
         edit(sd)
         local ok, e = pcall(o.loadStateDict, o, sd)
         assert.is_false(ok)
         return e
      end
      assert.matches("optim.SGD:loadStateDict: group 1's numParams should be an integer, found the string \"1\"",
                     err_of(function(sd) sd.groups[1].numParams = "1" end), 1, true)
      assert.matches("group 1's option lr should be a number, found the string \"x\"",
                     err_of(function(sd) sd.groups[1].lr = "x" end), 1, true)
      assert.matches("group 1: momentum must be a number in [0, 1], got 7",
                     err_of(function(sd) sd.groups[1].momentum = 7 end), 1, true)
      assert.matches("'iteration' should be an integer >= 0, found integer -3",
                     err_of(function(sd) sd.iteration = -3 end), 1, true)
      assert.matches("the state of parameter 1 should be a table, found integer",
                     err_of(function(sd) sd.state[1] = 5 end), 1, true)
      assert.matches("the state names parameter 9; this optimizer has parameters 1..1",
                     err_of(function(sd) sd.state[9] = {} end), 1, true)
      assert.matches("parameter 1's state has no step count >= 1 (found nothing)",
                     err_of(function(sd) sd.state[1].step = nil end), 1, true)
      assert.matches("parameter 1's state has no 'momentumBuffer' tensor (found nothing), which a step of this "
                     .. "optimizer with these options makes", err_of(function(sd) sd.state[1].momentumBuffer = nil end),
                     1, true)
      o:loadStateDict(o:stateDict()) -- an intact one loads
      local a = optim.Adam({w}, {amsgrad = true})
      a:zeroGrad(); w:sum():backward(); a:step()
      local sd = a:stateDict()
      sd.state[1].maxExpAvgSq = nil
      local ok, e = pcall(a.loadStateDict, a, sd)
      assert.is_false(ok)
      assert.matches("optim.Adam:loadStateDict: parameter 1's state has no 'maxExpAvgSq' tensor", e, 1, true)
      -- without amsgrad in the state's own options the same state is complete
      sd.groups[1].amsgrad = false
      a:loadStateDict(sd)
   end)
end)

