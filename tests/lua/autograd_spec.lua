-- Autograd from Lua: gradients of simple expressions against closed forms, grad mode (noGrad in
-- both forms), accumulation, non-scalar roots, retained graphs, in-place edits of saved tensors.
local retort = require "retort"

local function near(a, b, tol)
   return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(a), math.abs(b))
end

local function assert_near(expected, got, tol, path)
   path = path or "grad"
   if type(expected) == "table" then
      assert.are.equal(#expected, #got, path .. ": length")
      for i = 1, #expected do
         assert_near(expected[i], got[i], tol, path .. "[" .. i .. "]")
      end
   else
      assert.is_true(near(expected, got, tol), ("%s: expected %.10g, got %.10g"):format(path, expected, got))
   end
end

describe("gradients", function()
   it("of a sum of squares is 2x", function()
      local x = retort.tensor({1, -2, 3}, "f64"):requiresGrad()
      local y = (x * x):sum()
      y:backward()
      assert_near({2, -4, 6}, x.grad:totable())
   end)

   it("of x:matmul(w:t()):pow(2):mean() match the closed form", function()
      local X = {{1, 2}, {3, 4}}
      local W = {{0.5, -1}, {2, 0.25}, {1, 1}}
      local x = retort.tensor(X, "f64")
      local w = retort.tensor(W, "f64"):requiresGrad()
      local loss = x:matmul(w:transpose(1, 2)):pow(2):mean()
      loss:backward()
      -- y = x w^T (2x3); loss = mean(y^2); dL/dw[j][k] = sum_i 2 y[i][j] x[i][k] / 6
      local expected = {}
      for j = 1, 3 do
         expected[j] = {}
         for k = 1, 2 do
            local s = 0
            for i = 1, 2 do
               local y = X[i][1] * W[j][1] + X[i][2] * W[j][2]
               s = s + 2 * y * X[i][k] / 6
            end
            expected[j][k] = s
         end
      end
      assert_near(expected, w.grad:totable())
      assert.is_nil(x.grad)
   end)

   it("of element-wise functions match their derivatives", function()
      local v = {-1.5, 0.3, 2}
      local cases = {
         {"exp", function(a) return math.exp(a) end},
         {"sigmoid", function(a) local s = 1 / (1 + math.exp(-a)); return s * (1 - s) end},
         {"tanh", function(a) local t = (math.exp(2 * a) - 1) / (math.exp(2 * a) + 1); return 1 - t * t end},
         {"relu", function(a) return a > 0 and 1 or 0 end},
         {"abs", function(a) return a > 0 and 1 or -1 end},
         {"neg", function() return -1 end},
      }
      for _, c in ipairs(cases) do
         local x = retort.tensor(v, "f64"):requiresGrad()
         x[c[1]](x):sum():backward()
         local expected = {}
         for i, a in ipairs(v) do expected[i] = c[2](a) end
         assert_near(expected, x.grad:totable(), 1e-9, c[1])
      end
      local x = retort.tensor({0.5, 2, 4}, "f64"):requiresGrad()
      x:log():sum():backward()
      assert_near({2, 0.5, 0.25}, x.grad:totable())
      x = retort.tensor({1, 4}, "f64"):requiresGrad()
      x:sqrt():sum():backward()
      assert_near({0.5, 0.25}, x.grad:totable())
      x = retort.tensor({1, 2}, "f64"):requiresGrad()
      ;(2 / x):sum():backward()
      assert_near({-2, -0.5}, x.grad:totable())
      x = retort.tensor({1, 2}, "f64"):requiresGrad()
      ;(3 - x * 2):sum():backward()
      assert_near({-2, -2}, x.grad:totable())
   end)

   it("sum back over broadcast dims", function()
      local a = retort.tensor({{1, 2, 3}, {4, 5, 6}}, "f64"):requiresGrad()
      local b = retort.tensor({10, 20, 30}, "f64"):requiresGrad()
      ;((a + b) * a):sum():backward()
      -- d/da = 2a + b ; d/db = sum over rows of a
      assert_near({{12, 24, 36}, {18, 30, 42}}, a.grad:totable())
      assert_near({5, 7, 9}, b.grad:totable())
   end)

   it("of logSoftmax + gather is softmax minus one-hot (1-based labels)", function()
      local logits = retort.tensor({{1, 2, 3}, {0, 0, 0}}, "f64"):requiresGrad()
      local labels = retort.tensor({{3}, {1}}, "i64")
      local nll = -logits:logSoftmax(2):gather(2, labels):sum()
      nll:backward()
      local p = logits:detach():softmax(2):totable()
      local expected = {{p[1][1], p[1][2], p[1][3] - 1}, {p[2][1] - 1, p[2][2], p[2][3]}}
      assert_near(expected, logits.grad:totable(), 1e-9)
   end)

   it("flows through views and max", function()
      local x = retort.tensor({{1, 5}, {7, 2}}, "f64"):requiresGrad()
      local v = x:max(2)
      v:sum():backward()
      assert_near({{0, 1}, {1, 0}}, x.grad:totable())
      local y = retort.tensor({1, 2, 3, 4}, "f64"):requiresGrad()
      y:view(2, 2):narrow(2, 2, 1):sum():backward()
      assert_near({0, 1, 0, 1}, y.grad:totable())
   end)
end)

describe("accumulation", function()
   it("adds the gradients of two backwards; zeroGrad and grad = nil clear", function()
      local x = retort.tensor({1, 2}, "f64"):requiresGrad()
      ;(x * 3):sum():backward()
      ;(x * 3):sum():backward()
      assert_near({6, 6}, x.grad:totable())
      x:zeroGrad()
      assert.is_true(x.grad == nil or (x.grad:abs():sum():item() == 0))
      ;(x * x):sum():backward()
      assert_near({2, 4}, x.grad:totable())
      x.grad = nil
      assert.is_nil(x.grad)
   end)

   it("needs retainGraph to run backward twice through one graph", function()
      local x = retort.tensor({1, 2}, "f64"):requiresGrad()
      local y = (x:exp()):sum()
      y:backward(nil, true)
      y:backward()
      assert_near({2 * math.exp(1), 2 * math.exp(2)}, x.grad:totable())
      local ok = pcall(y.backward, y)
      assert.is_false(ok)
   end)
end)

describe("non-scalar roots", function()
   it("need a gradient", function()
      local x = retort.tensor({1, 2, 3}, "f64"):requiresGrad()
      local y = x * 2
      local ok, err = pcall(y.backward, y)
      assert.is_false(ok)
      assert.truthy(err:find("needs a gradient", 1, true), err)
      y:backward(retort.tensor({1, 10, 100}, "f64"))
      assert_near({2, 20, 200}, x.grad:totable())
   end)
end)

describe("in-place edits of saved tensors", function()
   it("make backward fail with a clear message", function()
      local w = retort.tensor({1, 2}, "f64"):requiresGrad()
      local c = retort.tensor({3, 4}, "f64")
      local loss = (w * c):sum() -- c is saved for w's gradient
      c:fill_(0)
      local ok, err = pcall(loss.backward, loss)
      assert.is_false(ok)
      assert.truthy(err:lower():find("modified", 1, true) or err:lower():find("in%-place") or
                    err:lower():find("version"), err)
      assert.is_nil(err:find("^rt_"))
   end)

   it("are refused on tensors that require grad while grad mode is on", function()
      local w = retort.tensor({1, 2}, "f64"):requiresGrad()
      assert.has_error(function() w:fill_(0) end)
      retort.noGrad(function() w:add_(1) end)
      assert_near({2, 3}, w:totable())
   end)
end)

describe("grad mode", function()
   it("noGrad(fn) runs fn without recording and returns its results", function()
      assert.is_true(retort.isGradEnabled())
      local x = retort.tensor{1, 2}:requiresGrad()
      local y, n = retort.noGrad(function(a, b)
         assert.is_false(retort.isGradEnabled())
         return x * a, b
      end, 2, "extra")
      assert.are.equal("extra", n)
      assert.is_false(y:needsGrad())
      assert.is_nil(y:gradFn())
      assert.is_true(retort.isGradEnabled())
   end)

   it("noGrad(fn) restores the mode when fn errors", function()
      local ok, err = pcall(retort.noGrad, function() error("boom") end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("boom", 1, true))
      assert.is_true(retort.isGradEnabled())
      retort.setGradEnabled(false)
      pcall(retort.noGrad, function() error("boom") end)
      assert.is_false(retort.isGradEnabled())
      retort.setGradEnabled(true)
   end)

   it("noGrad() returns a to-be-closed guard", function()
      do
         local g <close> = retort.noGrad() -- luacheck: ignore 211 (to-be-closed)
         assert.is_false(retort.isGradEnabled())
         local x = retort.tensor{1}:requiresGrad()
         assert.is_false((x * 2):needsGrad())
      end
      assert.is_true(retort.isGradEnabled())
      local ok = pcall(function()
         local g <close> = retort.noGrad() -- luacheck: ignore 211 (to-be-closed)
         error("inside")
      end)
      assert.is_false(ok)
      assert.is_true(retort.isGradEnabled())
      -- nested guards restore the mode they found
      do
         local g1 <close> = retort.noGrad() -- luacheck: ignore 211 (to-be-closed)
         do
            local g2 <close> = retort.noGrad() -- luacheck: ignore 211 (to-be-closed)
         end
         assert.is_false(retort.isGradEnabled())
      end
      assert.is_true(retort.isGradEnabled())
   end)

   it("setGradEnabled returns the previous mode", function()
      assert.is_true(retort.setGradEnabled(false))
      assert.is_false(retort.setGradEnabled(true))
      assert.is_true(retort.isGradEnabled())
   end)
end)

describe("graph queries", function()
   it("isLeaf, gradFn, needsGrad, requiresGrad(false), detach", function()
      local x = retort.randn(2, 2)
      assert.is_true(x:isLeaf())
      assert.is_false(x:needsGrad())
      assert.are.equal(x, x:requiresGrad())
      assert.is_true(x:needsGrad())
      local y = x * 2
      assert.is_false(y:isLeaf())
      assert.is_true(y:needsGrad())
      assert.are.equal("string", type(y:gradFn()))
      assert.truthy(y:gradFn():find("Backward"))
      assert.is_nil(x:gradFn())
      assert.is_false(y:detach():needsGrad())
      x:requiresGrad(false)
      assert.is_false(x:needsGrad())
      assert.is_false((x * 2):needsGrad())
      assert.is_true(x.grad == x.grad or x.grad == nil)
   end)

   it("x.grad is the same tensor each time", function()
      local x = retort.tensor{1, 2}:requiresGrad()
      x:sum():backward()
      assert.is_true(x.grad == x.grad)
   end)
end)
