-- retort.schedule: each constructor against its documented formula, progress arithmetic
-- (fractional epochs, steps), value() on numbers and schedules, argument errors.
local retort = require "retort"
local schedule = retort.schedule

local function P(epoch, step, spe, extra)
   local p = {epoch = epoch, step = step or 0, stepsPerEpoch = spe}
   for k, v in pairs(extra or {}) do p[k] = v end
   return p
end

local function near(a, b) return math.abs(a - b) < 1e-12 * math.max(1, math.abs(b)) end

describe("schedule", function()
   it("value accepts numbers, schedules and functions", function()
      assert.are.equal(3, schedule.value(3, P(1)))
      assert.are.equal(2, schedule.value(schedule.constant(2), P(5)))
      assert.are.equal(5, schedule.value(function(p) return p.epoch end, P(5)))
      assert.has_error(function() schedule.value("x", P(1)) end)
   end)

   it("progress: fractional epochs and elapsed steps", function()
      assert.are.equal(0, schedule.elapsedEpochs(P(1, 0, 10)))
      assert.are.equal(1.5, schedule.elapsedEpochs(P(2, 5, 10)))
      assert.are.equal(2, schedule.elapsedEpochs(P(3)))
      assert.are.equal(15, schedule.elapsedSteps(P(2, 5, 10)))
      assert.are.equal(7, schedule.elapsedSteps({epoch = 1, iteration = 7}))
      assert.has_error(function() schedule.elapsedSteps({epoch = 2}) end)
   end)

   it("linear interpolates over epochs or steps and then holds", function()
      local s = schedule.linear{from = 4, to = 1, epochs = 3}
      assert.are.equal(4, s(P(1)))
      assert.are.equal(3, s(P(2)))
      assert.are.equal(2.5, s(P(2, 5, 10)))
      assert.are.equal(1, s(P(4)))
      assert.are.equal(1, s(P(10)))
      local t = schedule.linear{from = 0, to = 1, steps = 100}
      assert.are.equal(0.25, t(P(1, 25, 100)))
      assert.are.equal(0.5, t(P(2, 10, 40)))
      assert.has_error(function() schedule.linear{from = 0, to = 1, steps = 10, epochs = 1} end)
      assert.has_error(function() schedule.linear{from = 0, to = 1} end)
   end)

   it("step decays by gamma every n epochs (PyTorch StepLR)", function()
      local s = schedule.step{base = 0.1, gamma = 0.5, every = 30}
      assert.are.equal(0.1, s(P(1)))
      assert.are.equal(0.1, s(P(30, 99, 100)))
      assert.are.equal(0.05, s(P(31)))
      assert.are.equal(0.025, s(P(61, 3, 100)))
   end)

   it("multistep decays at each milestone (PyTorch MultiStepLR)", function()
      local s = schedule.multistep{base = 0.05, gamma = 0.1, milestones = {150, 180, 210}}
      assert.are.equal(0.05, s(P(150)))
      assert.is_true(near(s(P(151)), 0.005))
      assert.is_true(near(s(P(181)), 0.0005))
      assert.is_true(near(s(P(240)), 0.00005))
      assert.has_error(function() schedule.multistep{base = 1, milestones = 3} end)
   end)

   it("cosine follows min + (base - min)(1 + cos(pi t / E)) / 2", function()
      local s = schedule.cosine{base = 1, min = 0.1, epochs = 10}
      assert.are.equal(1, s(P(1)))
      assert.is_true(near(s(P(6)), 0.55))
      assert.is_true(near(s(P(3, 5, 10)), 0.1 + 0.9 * (1 + math.cos(math.pi * 2.5 / 10)) / 2))
      assert.is_true(near(s(P(11)), 0.1))
      assert.is_true(near(s(P(20)), 0.1))
      local e = schedule.cosine{base = 2}
      assert.is_true(near(e({epoch = 3, epochs = 4}), 1))
      assert.has_error(function() e({epoch = 3}) end)
   end)

   it("warmup ramps the following schedule linearly, on the same clock", function()
      local s = schedule.warmup{steps = 10, after = schedule.step{base = 1, gamma = 0.1, every = 2}}
      assert.are.equal(0, s(P(1, 0, 100)))
      assert.are.equal(0.5, s(P(1, 5, 100)))
      assert.are.equal(1, s(P(1, 10, 100)))
      assert.is_true(near(s(P(3, 0, 100)), 0.1))
      local e = schedule.warmup{epochs = 2, after = 0.4, from = 0.5}
      assert.is_true(near(e(P(1)), 0.2))
      assert.is_true(near(e(P(2)), 0.3))
      assert.is_true(near(e(P(3)), 0.4))
      assert.has_error(function() schedule.warmup{steps = 5} end)
   end)

   it("print their definition", function()
      assert.are.equal("retort.schedule.linear{4 -> 1 over 3 epochs}",
                       tostring(schedule.linear{from = 4, to = 1, epochs = 3}))
      assert.matches("cosine", tostring(schedule.cosine{base = 0.1, epochs = 5}))
   end)
end)
