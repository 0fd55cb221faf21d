-- Running sums: retort.accumulate_ (many one-element values into an f64 accumulator in one call) and
-- the training loop's Sums on top of it, checked against the same sums in plain Lua.
local retort = require "retort"
local Sums = require "retort.train.sums"

local has_cuda = retort.cuda.isAvailable()
local devices = has_cuda and {"cpu", "cuda"} or {"cpu"}

describe("retort.accumulate_", function()
   for _, dev in ipairs(devices) do
      it("adds each weighted value into its slot on " .. dev, function()
         local acc = retort.tensor({1, 2, 3, 4}):double():to(dev)
         local a = retort.tensor({0.5}):to(dev)            -- f32, one element
         local b = retort.tensor(2.25):double():to(dev)    -- f64, 0-dim
         assert.are.equal(acc, retort.accumulate_(acc, {a, b}, {4, -2}, {3, 1}))
         assert.are.same({1 - 4.5, 2, 3 + 2, 4}, acc:cpu():totable())
         retort.accumulate_(acc, {b}, {1}, {4})
         assert.are.same({-3.5, 2, 5, 6.25}, acc:cpu():totable())
      end)
   end

   it("says what is wrong with its arguments", function()
      local acc, v = retort.zeros(3):double(), retort.tensor({1})
      local function err(...) return select(2, pcall(retort.accumulate_, ...)) end
      assert.matches("values 1 and 2 go to the same slot", err(acc, {v, v}, {1, 1}, {2, 2}), 1, true)
      assert.matches("outside the accumulator (3 slots)", err(acc, {v}, {1}, {4}), 1, true)
      assert.matches("must have one element, got 2", err(acc, {retort.zeros(2)}, {1}, {1}), 1, true)
      assert.matches("contiguous f64 vector", err(retort.zeros(3), {v}, {1}, {1}), 1, true)
      assert.matches("one entry per value", err(acc, {v}, {1, 2}, {1}), 1, true)
      local many = {}
      for i = 1, 17 do many[i] = v end
      assert.matches("at most 16 values", err(retort.zeros(20):double(), many, many, many), 1, true)
   end)
end)

describe("train Sums", function()
   for _, dev in ipairs(devices) do
      it("sums numbers and tensors by name on " .. dev, function()
         local s = Sums.new()
         local want = {}
         local function add(name, v, w)
            want[name] = (want[name] or 0) + v * (w or 1)
            s:add(name, (name == "n") and v or retort.tensor({v}):to(dev), w)
         end
         for step = 1, 3 do
            add("loss", 0.25 * step, 8)
            add("correct", step)
            add("loss", 1, 2) -- twice in one step: two calls, the sum is still one
            add("n", 8)
            s:flush()
         end
         assert.is_true(s:pending()) -- tensors were added: a take() reads them
         local got = s:take()
         for name, v in pairs(want) do assert.are.equal(v, got[name]) end
         assert.are.same({}, s:take()) -- taken: nothing left
      end)
   end
end)
