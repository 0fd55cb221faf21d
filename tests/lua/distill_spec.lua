-- Distillation losses against reference values computed with torch (tests/fixtures/gen_kd.py).
local retort = require "retort"
local distill = retort.distill

local cases = dofile("tests/fixtures/kd_cases.lua")

local function tensor(values, n, c) return retort.tensor(values, "f64"):view(n, c) end

local function close(a, b, tol) return math.abs(a - b) <= tol * math.max(1, math.abs(b)) end

describe("distill.kd", function()
   for _, k in ipairs(cases) do
      it(("matches the reference loss and student gradient: %s"):format(k.name), function()
         local s = tensor(k.s, k.n, k.c):requiresGrad()
         local t = tensor(k.t, k.n, k.c)
         local loss, terms = distill.kd(s, t, {T = k.T, alpha = k.alpha, labels = k.y, ignoreIndex = k.ignoreIndex})
         assert.is_true(close(loss:item(), k.loss, 1e-10), ("loss %.17g vs %.17g"):format(loss:item(), k.loss))
         assert.is_true(close(terms.kl, k.kl, 1e-10), ("kl %.17g vs %.17g"):format(terms.kl, k.kl))
         assert.is_true(close(terms.klScaled, k.kl * k.T * k.T, 1e-10))
         if k.alpha < 1 then
            assert.is_true(close(terms.ce, k.ce, 1e-10), ("ce %.17g vs %.17g"):format(terms.ce, k.ce))
         end
         loss:backward()
         local g = s.grad:view(-1)
         for i = 1, #k.grad do
            assert.is_true(close(g:get(i), k.grad[i], 1e-9),
               ("grad[%d] %.17g vs %.17g"):format(i, g:get(i), k.grad[i]))
         end
      end)
   end

   it("never records the teacher in the graph", function()
      local s = retort.randn(3, 4):requiresGrad()
      local t = retort.randn(3, 4):requiresGrad()
      local loss = distill.kd(s, t, {T = 2})
      loss:backward()
      assert.is_nil(t.grad)
      assert.is_not_nil(s.grad)
   end)

   it("kl equals kd with alpha = 1, and is T^2-scaled", function()
      local s, t = retort.randn(5, 3, "f64"), retort.randn(5, 3, "f64")
      local a = distill.kl(s, t, {T = 3}):item()
      local b = distill.kd(s, t, {T = 3, alpha = 1}):item()
      assert.is_true(close(a, b, 1e-12))
      local _, terms = distill.kd(s, t, {T = 3})
      assert.is_true(close(terms.klScaled, 9 * terms.kl, 1e-12))
   end)

   it("refuses bad input with messages that say what was expected", function()
      local s, t = retort.randn(2, 3), retort.randn(2, 4)
      local ok, err = pcall(distill.kd, s, t, {T = 2})
      assert.is_false(ok)
      assert.matches("student predicts 3 classes and the teacher 4", err, 1, true)
      ok, err = pcall(distill.kd, s, retort.randn(2, 3), {T = 0})
      assert.is_false(ok)
      assert.matches("temperature T must be a positive number, got 0", err, 1, true)
      ok, err = pcall(distill.kd, s, retort.randn(2, 3), {T = 2, alpha = 0.5})
      assert.is_false(ok)
      assert.matches("no labels were given", err, 1, true)
      ok, err = pcall(distill.kl, s, retort.randn(3, 3))
      assert.is_false(ok)
      assert.matches("batch sizes differ: student 2, teacher 3", err, 1, true)
   end)
end)
