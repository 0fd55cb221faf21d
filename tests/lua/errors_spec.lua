-- Errors from the Lua surface: lauxlib-style "bad argument" messages, the core's shape messages
-- (with their leading "rt_" removed), cuda() without CUDA, temperatures, closed tensors, and a
-- sweep of odd arguments through every method that must never crash the process.
local retort = require "retort"

local function err_of(f, ...)
   local ok, err = pcall(f, ...)
   assert.is_false(ok, "expected an error")
   return tostring(err)
end

local function has(err, text)
   assert.truthy(err:find(text, 1, true), ("expected %q in %q"):format(text, err))
end

describe("bad arguments", function()
   local x = retort.zeros(2, 3)

   it("name the method and the argument (self not counted, as in lauxlib)", function()
      has(err_of(function() return x:narrow(5, 1, 1) end),
          "bad argument #1 to 'narrow' (dim 5 out of range for a 2-D tensor")
      has(err_of(function() return x:narrow(1, 0, 1) end), "bad argument #2 to 'narrow' (start 0 out of range")
      has(err_of(function() return x:narrow(2, 2, 5) end), "bad argument #3 to 'narrow' (length 5 out of range")
      has(err_of(function() return x:narrow("a", 1, 1) end),
          "bad argument #1 to 'narrow' (number expected, got string)")
      has(err_of(function() return x:select(1, 3) end), "bad argument #2 to 'select' (index 3 out of range [1, 2]")
      has(err_of(function() return x:sum(0) end), "bad argument #1 to 'sum' (dim 0 out of range")
      has(err_of(function() return x:add("a") end),
          "bad argument #1 to 'add' (retort.Tensor or number expected, got string)")
      has(err_of(function() return x:matmul(3) end), "bad argument #1 to 'matmul' (retort.Tensor expected, got number)")
      has(err_of(function() return x:get(3, 1) end), "index 3 out of range [1, 2] for dim 1")
      has(err_of(function() return x:get(1) end), "get: a 2-D tensor needs 2 indices, got 1")
      has(err_of(function() return x:permute(1, 1) end), "dim 1 repeated")
      has(err_of(function() return x:transpose(1, 3) end), "bad argument #2 to 'transpose' (dim 3 out of range")
   end)

   it("report bad self", function()
      has(err_of(function() return retort.Tensor.add(5, 1) end), "retort.Tensor expected, got number")
      has(err_of(function() return x.sum({}) end), "retort.Tensor expected, got table")
   end)

   it("count tensors and dims from 1, and tell a device from a dtype", function()
      has(err_of(retort.cat, {retort.zeros(2, 3), retort.zeros(2, 3), retort.zeros(3, 4)}, 1),
          "tensor 3 of 3 has shape (3,4), which does not match the first's (2,3) outside dim 1")
      has(err_of(retort.cat, {retort.zeros(2, 3), retort.zeros(2, 3, "i64")}, 2),
          "tensor 2 of 2 has dtype i64, the first has f32 (counted from 1)")
      has(err_of(retort.stack, {retort.zeros(2, 3), retort.zeros(3, 4)}, 1),
          "stack: tensor 2 of 2 has shape (3,4), the first has (2,3)")
      has(err_of(function() return retort.zeros(2):to("tpu") end), "unknown device or dtype 'tpu' (devices: \"cpu\"")
      -- a zero-size leading dim cannot hide sizes whose strides overflow
      has(err_of(retort.zeros, 0, 2^40, 2^40, 2^40), "too many elements")
   end)

   it("in constructors", function()
      has(err_of(retort.zeros, -1), "size 1 is -1; sizes must be >= 0")
      has(err_of(retort.zeros, 2, 1.5), "size 2 must be an integer")
      has(err_of(retort.tensor, {1}, "f16"), "unknown dtype 'f16'")
      has(err_of(retort.zeros, 2, "int"), "unknown dtype 'int'")
      has(err_of(retort.tensor, {{1, 2}, {3, 4, 5}}),
          "retort.tensor: ragged nested table: row 2 has 3 elements, expected 2")
      has(err_of(retort.tensor, {{{1}, {2}}, {{3}, {4, 5}}}), "ragged nested table: row 2,2 has 2 elements, expected 1")
      has(err_of(retort.tensor, {1.5}, "i64"), "not an integer")
      has(err_of(retort.tensor, {256}, "u8"), "[0, 255]")
      has(err_of(retort.randn, 2, "i64"), "randn: dtype must be f32 or f64")
      has(err_of(retort.arange, 1, 10, 0), "step nonzero")
      has(err_of(retort.arange, 10, 1), "cannot be reached")
      has(err_of(retort.randint, 5, 1, 3), "upper bound 1 is below lower bound 5")
      has(err_of(retort.cat, {}), "non-empty list")
      has(err_of(retort.cat, {retort.zeros(1), 3}), "element 2 is not an open retort.Tensor")
      has(err_of(retort.zeros, 1, 2, 3, 4, 5, 6, 7, 8, 9), "at most 8 dims")
   end)

   it("for index tensors", function()
      local s = retort.tensor{{1, 2, 3}}
      has(err_of(function() return s:gather(2, retort.tensor{{1}}) end), "index tensor must be i64")
      has(err_of(function() return s:gather(2, retort.tensor({{0}}, "i64")) end),
          "gather: index 0 at position 1 out of range [1, 3] (1-based)")
      has(err_of(function() return s:indexSelect(2, retort.tensor({4}, "i64")) end),
          "indexSelect: index 4 at position 1 out of range [1, 3] (1-based)")
   end)

   it("for temperatures", function()
      has(err_of(function() return x:softmax(2, 0) end), "bad argument #2 to 'softmax' (temperature T must be")
      has(err_of(function() return x:logSoftmax(2, -1) end), "bad argument #2 to 'logSoftmax' (temperature T must be")
      has(err_of(function() return x:softmax(2, 0 / 0) end), "temperature T must be")
   end)

   it("for fields", function()
      has(err_of(function() x.foo = 1 end), "retort.Tensor: cannot set field 'foo'")
      has(err_of(function() x.grad = retort.zeros(2, 3) end), "field 'grad' can only be set to nil")
      has(err_of(function() return x:item() end), "item: expected a tensor with one element, got 6 elements (2,3)")
      has(err_of(function() return retort.tensor(1):t() end), "t: expected a 2-D tensor")
   end)
end)

describe("core errors", function()
   it("keep the core's message without its rt_ prefix", function()
      local err = err_of(function() return retort.zeros(2, 3):matmul(retort.zeros(4, 5)) end)
      has(err, "matmul")
      has(err, "(2,3)")
      has(err, "(4,5)")
      assert.is_nil(err:find("rt_matmul", 1, true), err)
      err = err_of(function() return retort.zeros(2, 3) + retort.zeros(4) end)
      has(err, "(2,3)")
      has(err, "(4)")
      assert.is_nil(err:find(": rt_", 1, true), err)
      err = err_of(function() return retort.zeros(2, 3):view(4) end)
      has(err, "view")
   end)

   it("report mixed dtypes", function()
      local err = err_of(function() return retort.zeros(2) + retort.zeros(2, "i64") end)
      assert.truthy(err:find("f32") or err:find("dtype"), err)
   end)

   it("cuda() without a CUDA backend", function()
      local x = retort.zeros(2)
      local ok, res = pcall(x.cuda, x)
      if ok then -- a CUDA build with a GPU: the tensor moved
         assert.are.equal("cuda", res:device())
         assert.truthy(tostring(res):find("on cuda]", 1, true))
      else
         assert.truthy(tostring(res):lower():find("cuda"), res)
         assert.is_nil(tostring(res):find(": rt_", 1, true))
      end
   end)
end)

describe("closed tensors", function()
   it("raise instead of crashing", function()
      local y
      do
         local x <close> = retort.ones(2)
         y = x
      end
      has(err_of(function() return y:add(1) end), "retort.Tensor is closed")
      has(err_of(function() return y + 1 end), "retort.Tensor is closed")
      has(err_of(function() return retort.ones(2) + y end), "retort.Tensor is closed")
      has(err_of(function() return y.grad end), "retort.Tensor is closed")
      has(err_of(function() return #y end), "retort.Tensor is closed")
      has(err_of(function() return retort.cat{y} end), "not an open retort.Tensor")
      assert.is_false(retort.isTensor(y))
      -- __gc after __close is harmless
      local mt = getmetatable(retort.zeros(1))
      mt.__gc(y)
      mt.__close(y)
   end)
end)

describe("odd arguments", function()
   it("never crash any method, and leak no tensors when they fail", function()
      collectgarbage()
      collectgarbage()
      local live_before = retort.liveTensors()
      local samples = {
         function() return retort.zeros(2, 3) end,
         function() return retort.tensor({1, 2, 3}, "i64") end,
         function() return retort.tensor(2.5) end,
         function() return retort.zeros(0) end,
         function() return retort.tensor({{1, 0}, {1, 1}}, "u8") end,
         function() return retort.randn(2, 3):t() end,
      }
      local args = {
         {}, {nil}, {0}, {-1}, {1}, {2}, {9}, {2^40}, {-2^40}, {1.5}, {0 / 0}, {"x"}, {{}}, {{2, 3}},
         {true}, {1, 1}, {1, -1}, {2, 1, 1}, {1, 0, 0}, {1, 1, 1, 1}, {retort.zeros(3)},
         {retort.tensor({1}, "i64")}, {1, retort.tensor({{5}}, "i64")},
         {1, retort.tensor({{1}}, "i64"), retort.zeros(1, 1)},
         {retort.zeros(3), 2}, {-1, 1}, {1, 2^40}, {2^40, 1},
      }
      local names = {}
      for name in pairs(retort.Tensor) do
         if name ~= "print" then names[#names + 1] = name end
      end
      table.sort(names)
      local calls = 0
      for _, name in ipairs(names) do
         for _, make in ipairs(samples) do
            for _, a in ipairs(args) do
               local x = make()
               pcall(retort.Tensor[name], x, table.unpack(a, 1, 4))
               calls = calls + 1
            end
         end
      end
      assert.is_true(calls > 1000)
      -- module functions with odd (but small) arguments
      local small = {{}, {0}, {-1}, {1}, {1.5}, {"x"}, {{}}, {{-1}}, {2, "i64"}, {1, 2, 3}, {3, 1, -1},
                     {retort.zeros(2)}, {{retort.zeros(2), retort.zeros(3)}}, {{retort.zeros(2)}, 5},
                     {retort.zeros(2, "u8"), 1, 2}}
      -- skipped: global switches, and mkdir and lock (they would create files named "0", "x", ...)
      local skip = {setGradEnabled = true, noGrad = true, setNumThreads = true, manualSeed = true, mkdir = true,
                    lock = true}
      for name, f in pairs(retort.core) do
         if type(f) == "function" and not skip[name] then
            for _, a in ipairs(small) do
               pcall(f, table.unpack(a, 1, 3))
            end
         end
      end
      assert.is_true(retort.isGradEnabled())
      samples, args, small = nil, nil, nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.are.equal(live_before, retort.liveTensors())
   end)
end)
