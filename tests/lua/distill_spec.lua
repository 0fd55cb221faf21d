-- Distillation losses against reference values computed with torch from the published formulas
-- (tests/fixtures/gen_distill.py: RepDistiller's distiller_zoo, mdistiller's DKD, the pinned KD).
-- Tolerance: 1e-9 relative (plus 1e-9 absolute) on the loss and on every gradient element, in f64.
local retort = require "retort"
local distill = retort.distill

local cases = dofile("tests/fixtures/distill_cases.lua")

local function close(a, b, tol) return math.abs(a - b) <= tol * (1 + math.abs(b)) end

-- fixture {shape, data, dtype} -> tensor (f64 unless dtype says otherwise)
local function tensor(spec)
   return retort.tensor(spec.data, spec.dtype or "f64"):view(table.unpack(spec.shape))
end

local function convert(opts)
   local out = {}
   for k, v in pairs(opts or {}) do out[k] = type(v) == "table" and v.shape and tensor(v) or v end
   return out
end

describe("distillation losses match the torch reference", function()
   for _, k in ipairs(cases) do
      it(("%s: %s loss and student gradients"):format(k.fn, k.name), function()
         local inputs, args = {}, {}
         for name, spec in pairs(k.inputs) do
            inputs[name] = tensor(spec)
            if k.grad[name] then inputs[name]:requiresGrad() end
         end
         for i, name in ipairs(k.order) do args[i] = inputs[name] end
         args[#args + 1] = convert(k.opts)
         local loss, terms, zt = distill[k.fn](table.unpack(args, 1, #k.order + 1))
         if k.Zs then -- crd returns its normalising constants
            assert.is_true(close(terms, k.Zs, 1e-9) and close(zt, k.Zt, 1e-9), ("Z %.17g %.17g vs %.17g %.17g"):format(
               terms, zt, k.Zs, k.Zt))
         end
         assert.is_true(close(loss:item(), k.loss, 1e-9), ("loss %.17g vs %.17g"):format(loss:item(), k.loss))
         if k.kl then
            local kl = terms.kl:item()
            assert.is_true(close(kl, k.kl, 1e-9), ("kl %.17g vs %.17g"):format(kl, k.kl))
         end
         if k.ce and k.opts.alpha < 1 then
            local ce = terms.ce:item()
            assert.is_true(close(ce, k.ce, 1e-9), ("ce %.17g vs %.17g"):format(ce, k.ce))
         end
         loss:backward()
         for name, want in pairs(k.grad) do
            local g = inputs[name].grad:contiguous():view(-1)
            assert.are.equal(#want.data, g:numel())
            for i = 1, #want.data do
               assert.is_true(close(g:get(i), want.data[i], 1e-9),
                  ("grad %s[%d] %.17g vs %.17g"):format(name, i, g:get(i), want.data[i]))
            end
         end
      end)
   end
end)

describe("distill.kd", function()
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
      assert.is_true(close(terms.klScaled:item(), 9 * terms.kl:item(), 1e-12))
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

describe("distill.kd with non-finite inputs", function()
   it("is an error naming the tensor and the row, not a NaN or a silent 0", function()
      local kd = require("retort").distill.kd
      local s, t = retort.randn(4, 5), retort.randn(4, 5)
      for _, bad in ipairs{0 / 0, math.huge, -math.huge} do
         local t2 = t:clone(); t2[3][2] = bad
         local ok, err = pcall(kd, s, t2, {T = 4, alpha = 1})
         assert.is_false(ok)
         assert.matches("the teacher's logits (argument 2) hold a non-finite value (NaN or infinity) in row 3", err,
                        1, true)
         local s2 = s:clone(); s2[2][5] = bad
         ok, err = pcall(kd, s2, t, {T = 4, alpha = 1})
         assert.is_false(ok)
         assert.matches("the student's logits (argument 1) hold a non-finite value (NaN or infinity) in row 2", err,
                        1, true)
      end
      assert.is_true(kd(s, t, {T = 4, alpha = 1}):item() >= 0)
   end)
end)

describe("loss functions' options", function()
   it("refuse an unknown key instead of running with the default (a misspelt T)", function()
      local s, t = retort.randn(4, 5), retort.randn(4, 5)
      local ok, err = pcall(distill.kd, s, t, {temperature = 4})
      assert.is_false(ok)
      assert.matches("kd: unknown option 'temperature' (known: T, alpha, ignoreIndex, labels, teacherProbs, weights)",
                     err, 1, true)
      ok, err = pcall(distill.kl, s, t, {t = 2})
      assert.is_false(ok)
      assert.matches("kl: unknown option 't' (known: T); did you mean 'T'?", err, 1, true)
      ok, err = pcall(distill.at, retort.randn(2, 3, 4, 4), retort.randn(2, 3, 4, 4), {P = 2})
      assert.is_false(ok)
      assert.matches("at: unknown option 'P'", err, 1, true)
      ok, err = pcall(distill.rkd, retort.randn(4, 6), retort.randn(4, 6), {distanse = 1})
      assert.is_false(ok)
      assert.matches("did you mean 'distance'?", err, 1, true)
      ok, err = pcall(distill.kl, s, t, 5)
      assert.is_false(ok)
      assert.matches("bad argument #3 to 'kl' (table of options expected, got number)", err, 1, true)
   end)
end)

