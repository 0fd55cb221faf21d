-- NN ops from Lua: conv2d, pooling, batchNorm, dropout, leakyRelu as tensor methods and
-- crossEntropy / nllLoss / mseLoss on retort (1-based labels), against hand computations.
local retort = require "retort"

local function near(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(a), math.abs(b)) end

local function errmsg(f, ...)
   local ok, e = pcall(f, ...)
   assert.is_false(ok, "expected an error")
   return tostring(e)
end

describe("conv2d", function()
   it("gives the output shape of the formula for stride, padding, dilation and groups", function()
      local x = retort.randn(2, 4, 9, 8)
      assert.are.same({2, 6, 9, 8}, x:conv2d(retort.randn(6, 4, 3, 3), nil, {padding = 1}):shape())
      assert.are.same({2, 6, 4, 2}, x:conv2d(retort.randn(6, 4, 3, 3), retort.randn(6), {stride = {2, 3}}):shape())
      assert.are.same({2, 6, 5, 4}, x:conv2d(retort.randn(6, 2, 3, 3), nil, {dilation = 2, groups = 2}):shape())
   end)

   it("matches a hand-computed 2x2 kernel with bias", function()
      local x = retort.tensor{{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}}
      local w = retort.tensor{{{{1, 0}, {0, -1}}}}
      local y = x:conv2d(w, retort.tensor{10})
      assert.are.same({{{{6, 6}, {6, 6}}}}, y:totable())
   end)

   it("is differentiable: the bias gradient counts output pixels", function()
      local x = retort.randn(2, 3, 5, 5)
      local w = retort.randn(4, 3, 3, 3):requiresGrad()
      local b = retort.zeros(4):requiresGrad()
      x:conv2d(w, b, {padding = 1}):sum():backward()
      for _, v in ipairs(b.grad:totable()) do assert.are.equal(2 * 25, v) end
      assert.are.same({4, 3, 3, 3}, w.grad:shape())
   end)

   it("reports channel mismatches and bad options", function()
      local x = retort.randn(1, 3, 5, 5)
      assert.matches("channel mismatch", errmsg(x.conv2d, x, retort.randn(2, 4, 3, 3)))
      assert.matches("groups=2 must divide", errmsg(x.conv2d, x, retort.randn(2, 1, 3, 3), nil, {groups = 2}))
      assert.matches("stride must be an integer or {h, w}",
                     errmsg(x.conv2d, x, retort.randn(2, 3, 3, 3), nil, {stride = "x"}))
      assert.matches("larger than the padded input", errmsg(x.conv2d, x, retort.randn(2, 3, 7, 7)))
   end)
end)

describe("pooling", function()
   local x = retort.tensor{{{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}}}}

   it("maxPool2d takes window maxima; stride defaults to the kernel", function()
      assert.are.same({{{{6, 8}, {14, 16}}}}, x:maxPool2d(2):totable())
      assert.are.same({1, 1, 3, 3}, x:maxPool2d(2, {stride = 1}):shape())
      assert.are.same({{{{6, 8}, {14, 16}}}}, x:maxPool2d({2, 2}, {stride = {2, 2}, padding = 0}):totable())
   end)

   it("avgPool2d averages, with or without the padding in the count", function()
      assert.are.same({{{{3.5, 5.5}, {11.5, 13.5}}}}, x:avgPool2d(2):totable())
      local inc = x:avgPool2d(3, {stride = 3, padding = 1}):totable()
      local exc = x:avgPool2d(3, {stride = 3, padding = 1, countIncludePad = false}):totable()
      assert.is_true(near((1 + 2 + 5 + 6) / 9, inc[1][1][1][1]))
      assert.is_true(near((1 + 2 + 5 + 6) / 4, exc[1][1][1][1]))
   end)

   it("adaptiveAvgPool2d uses PyTorch bins; ow defaults to oh", function()
      assert.are.same({{{{8.5}}}}, x:adaptiveAvgPool2d(1):totable())
      assert.are.same({{{{3.5, 5.5}, {11.5, 13.5}}}}, x:adaptiveAvgPool2d(2, 2):totable())
      local y = retort.tensor{{{{1, 2, 3}}}}:adaptiveAvgPool2d(1, 2):totable()
      assert.are.same({{{{1.5, 2.5}}}}, y)
   end)

   it("checks its arguments", function()
      assert.matches("kernel size must be an integer or {h, w}", errmsg(x.maxPool2d, x, "2"))
      assert.matches("at most half the kernel", errmsg(x.maxPool2d, x, 2, {padding = 2}))
      assert.matches("input must be %(N,C,H,W%)", errmsg(x.avgPool2d, retort.randn(4, 4), 2))
   end)
end)

describe("batchNorm", function()
   it("normalises with batch statistics and updates the running ones when training", function()
      local x = retort.tensor{{1, 0}, {2, 0}, {3, 2}, {4, 2}}
      local rm, rv = retort.zeros(2), retort.ones(2)
      local y = x:batchNorm(rm, rv, nil, nil, {eps = 0}):totable()
      assert.is_true(near(-1.5 / math.sqrt(1.25), y[1][1]))
      assert.is_true(near(1, y[3][2]))
      assert.is_true(near(0.25, rm:totable()[1]))
      assert.is_true(near(0.9 + 0.1 * 5 / 3, rv:totable()[1]))
   end)

   it("uses the running statistics in evaluation and applies weight and bias", function()
      local x = retort.tensor{{1, 2}, {3, 4}}
      local y = x:batchNorm(retort.tensor{1, 2}, retort.tensor{4, 1}, retort.tensor{2, 1}, retort.tensor{0, 1},
                            {training = false, eps = 0}):totable()
      assert.are.same({{0, 1}, {2, 3}}, y)
   end)

   it("refuses evaluation without running statistics", function()
      local x = retort.randn(4, 3)
      assert.matches("needs running_mean", errmsg(x.batchNorm, x, nil, nil, nil, nil, {training = false}))
   end)
end)

describe("dropout and leakyRelu", function()
   it("dropout is reproducible under a seed, scales by 1/(1-p) and is the identity when evaluating", function()
      local x = retort.ones(1000)
      retort.manualSeed(3)
      local a = x:dropout(0.2):totable()
      retort.manualSeed(3)
      local b = x:dropout(0.2, true):totable()
      assert.are.same(a, b)
      local zeros = 0
      for _, v in ipairs(a) do
         if v == 0 then zeros = zeros + 1 else assert.is_true(near(1.25, v)) end
      end
      assert.is_true(zeros > 120 and zeros < 280)
      assert.are.same(x:totable(), x:dropout(0.5, false):totable())
      assert.matches("p must be in %[0, 1%]", errmsg(x.dropout, x, 2))
   end)

   it("leakyRelu scales negatives by the slope (0.01 by default)", function()
      local x = retort.tensor({-2, 0, 3}, "f64")
      local y = x:leakyRelu():totable()
      assert.is_true(near(-0.02, y[1]) and y[2] == 0 and y[3] == 3)
      assert.is_true(near(-1, x:leakyRelu(0.5):totable()[1]))
   end)
end)

describe("losses", function()
   local logits = retort.tensor({{2, 1, 0}, {0, 3, 1}, {1, 1, 1}}, "f64")
   local lp = logits:logSoftmax(2):totable()

   it("crossEntropy takes 1-based labels from tensors or tables", function()
      local want = -(lp[1][1] + lp[2][2] + lp[3][3]) / 3
      assert.is_true(near(want, retort.crossEntropy(logits, retort.tensor({1, 2, 3}, "i64")):item(), 1e-12))
      assert.is_true(near(want, retort.crossEntropy(logits, {1, 2, 3}):item(), 1e-12))
      assert.is_true(near(want * 3, retort.crossEntropy(logits, {1, 2, 3}, {reduction = "sum"}):item(), 1e-12))
      local none = retort.crossEntropy(logits, {1, 2, 3}, {reduction = "none"}):totable()
      assert.is_true(near(-lp[2][2], none[2], 1e-12))
   end)

   it("crossEntropy ignores samples in the 1-based label space and weighs by class", function()
      local got = retort.crossEntropy(logits, {1, 0, 3}, {ignoreIndex = 0}):item()
      assert.is_true(near(-(lp[1][1] + lp[3][3]) / 2, got, 1e-12))
      local w = retort.tensor({1, 2, 3}, "f64")
      local gw = retort.crossEntropy(logits, {1, 2, 3}, {weights = w}):item()
      assert.is_true(near(-(lp[1][1] + 2 * lp[2][2] + 3 * lp[3][3]) / 6, gw, 1e-12))
   end)

   it("crossEntropy smooths labels as PyTorch and has a gradient", function()
      local e = 0.3
      local want = 0
      for i, y in ipairs({1, 2, 3}) do
         local s = 0
         for j = 1, 3 do s = s - lp[i][j] end
         want = want + (1 - e) * -lp[i][y] + e / 3 * s
      end
      local x = logits:clone():requiresGrad()
      local l = retort.crossEntropy(x, {1, 2, 3}, {labelSmoothing = e})
      assert.is_true(near(want / 3, l:item(), 1e-12))
      l:backward()
      local g = x.grad:totable()
      assert.is_true(near(0, g[1][1] + g[1][2] + g[1][3], 1e-12)) -- rows of (softmax - target) sum to 0
   end)

   it("crossEntropy and nllLoss reject labels outside 1..C with a 1-based message", function()
      assert.matches("label 4 at position 2 out of range %[1, 3%]", errmsg(retort.crossEntropy, logits, {1, 4, 2}))
      assert.matches("label 0 at position 1", errmsg(retort.nllLoss, logits, retort.tensor({0, 1, 2}, "i64")))
      assert.matches("labels must be i64", errmsg(retort.crossEntropy, logits, retort.tensor{1, 2, 3}))
      assert.matches("reduction must be", errmsg(retort.crossEntropy, logits, {1, 2, 3}, {reduction = "avg"}))
   end)

   it("nllLoss on log-probabilities equals crossEntropy on logits", function()
      local a = retort.nllLoss(logits:logSoftmax(2), {3, 1, 2}):item()
      local b = retort.crossEntropy(logits, {3, 1, 2}):item()
      assert.is_true(near(a, b, 1e-12))
   end)

   it("loss.weightedCrossEntropy weighs each example's CE and divides by N", function()
      local x, y, w = {{2, 1, 0}, {0, 3, 1}, {1, 1, 1}}, {1, 3, 2}, {0.5, 2, 0}
      local want = 0
      for i, row in ipairs(x) do
         local z = 0
         for _, v in ipairs(row) do z = z + math.exp(v) end
         want = want + w[i] * (math.log(z) - row[y[i]])
      end
      local labels = retort.tensor(y, "i64")
      local got = retort.loss.weightedCrossEntropy(logits, labels, retort.tensor(w, "f64")):item()
      assert.is_true(near(want / 3, got, 1e-12))
      assert.are.equal(retort.loss.crossEntropy(logits, labels):item(),
                       retort.loss.weightedCrossEntropy(logits, labels):item())
      assert.matches("example weights must be %(N%) = %(3%), got %(2%)",
         errmsg(retort.loss.weightedCrossEntropy, logits, labels, retort.tensor({1, 2}, "f64")))
   end)

   it("mseLoss reduces by mean, sum or not at all", function()
      local a, b = retort.tensor{1, 2}, retort.tensor{2, 4}
      assert.is_true(near(2.5, retort.mseLoss(a, b):item()))
      assert.is_true(near(5, retort.mseLoss(a, b, {reduction = "sum"}):item()))
      assert.are.same({1, 4}, retort.mseLoss(a, b, {reduction = "none"}):totable())
      assert.matches("shapes differ", errmsg(retort.mseLoss, a, retort.randn(3)))
   end)
end)

describe("pairwise", function()
   it("gives x x^T, cosines and distances as the compositions they replace, with their gradients", function()
      retort.manualSeed(3)
      local x = retort.randn(6, 5, "f64")
      local idx = retort.arange(1, 6, "i64")
      local off = idx:view(6, 1):ne(idx:view(1, 6)):double()
      local comps = {
         gram = function(v) return v:matmul(v:t()) end,
         cosine = function(v) local h = v / (v:norm(2, 2, true) + 0.1); return h:matmul(h:t()) end,
         distance = function(v)
            local sq = (v * v):sum(2)
            return (sq:view(6, 1) + sq:view(1, 6) - v:matmul(v:t()) * 2):clamp(0.1):sqrt() * off
         end,
      }
      local w = retort.arange(1, 36):double():view(6, 6)
      local function run(f)
         local v = x:clone():requiresGrad()
         local y = f(v)
         ;(y * w):sum():backward()
         return y, v.grad
      end
      for kind, comp in pairs(comps) do
         local y1, g1 = run(function(v) return v:pairwise(kind, 0.1) end)
         local y2, g2 = run(comp)
         assert.is_true((y1 - y2):abs():max():item() < 1e-12, kind)
         assert.is_true((g1 - g2):abs():max():item() < 1e-9, kind)
      end
      assert.matches("invalid option 'dist'", errmsg(x.pairwise, x, "dist"))
   end)
end)
