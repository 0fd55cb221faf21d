-- retort.nn and retort.loss: the class system, forward with taps, parameters/buffers, state dict
-- round trips and their errors, conversions, printing, layers against hand-written references,
-- gradients of a small double network against central finite differences.
-- Specs that need core ops still being written (conv2d, batchNorm, pools, dropout, leakyRelu,
-- crossEntropy) are pending until the tensors have them.
local retort = require "retort"
local nn = retort.nn

local HAVE_CONV = retort.randn(1).conv2d ~= nil
local HAVE_BN = retort.randn(1).batchNorm ~= nil
local HAVE_POOL = retort.randn(1).maxPool2d ~= nil
local HAVE_DROPOUT = retort.randn(1).dropout ~= nil
local HAVE_LEAKY = retort.randn(1).leakyRelu ~= nil
local HAVE_CE = retort.crossEntropy ~= nil

local function maybe(cond, name, fn)
   if cond then it(name, fn) else pending(name .. " (needs a core op not built yet)") end
end

local function max_abs_diff(a, b)
   return retort.noGrad(function() return (a - b):abs():max():item() end)
end

local function errmsg(fn, ...)
   local ok, err = pcall(fn, ...)
   assert.is_false(ok, "expected an error")
   return tostring(err)
end

local function mlp()
   return nn.Sequential()
      :add("fc1", nn.Linear(4, 5)):add("act1", nn.Tanh())
      :add("block", nn.Sequential():add("fc", nn.Linear(5, 3)):add("act", nn.Sigmoid()))
      :add("fc2", nn.Linear(3, 2))
end

describe("nn classes", function()
   it("construct with __call, are callable, and subclass", function()
      retort.manualSeed(1)
      local l = nn.Linear(784, 800)
      assert.are.same({800, 784}, l.weight:shape())
      assert.are.same({800}, l.bias:shape())
      assert.is_true(nn.isModule(l))
      local Square = nn.class("Square", nn.Module)
      function Square:__init() nn.Module.__init(self) end
      function Square:apply(x) return x * x end
      local s = Square()
      local y = s(retort.tensor{2, 3})
      assert.are.same({4, 9}, y:totable())
      assert.are.equal("Square", s:typename())
      assert.is_true(nn.isModule(s))
      assert.is_false(nn.isModule({}))
   end)

   it("Linear computes x W^T + b, bias optional", function()
      local l = nn.Linear(3, 2)
      local x = retort.randn(4, 3)
      local want = x:matmul(l.weight:t()) + l.bias
      assert.is_true(max_abs_diff(l:forward(x), want) < 1e-6)
      local nb = nn.Linear(3, 2, {bias = false})
      assert.is_nil(nb.bias)
      assert.are.equal(1, #nb:parameters())
   end)

   it("Linear initialises like PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias", function()
      retort.manualSeed(3)
      local l = nn.Linear(100, 400)
      local bound = 1 / math.sqrt(100)
      local w, b = l.weight, l.bias
      assert.is_true(w:abs():max():item() <= bound + 1e-7)
      assert.is_true(w:abs():max():item() > 0.95 * bound)
      -- variance of U(-b, b) is b^2 / 3
      local var = (w * w):mean():item()
      assert.is_true(math.abs(var - bound * bound / 3) < 0.05 * bound * bound)
      assert.is_true(b:abs():max():item() <= bound + 1e-7)
   end)

   it("Linear names a wrong input size", function()
      local msg = errmsg(function() return nn.Linear(4, 2):forward(retort.randn(3, 5)) end)
      assert.matches("nn.Linear%(4 %-> 2%)", msg)
      assert.matches("expected 4", msg)
   end)
end)

describe("nn.Sequential", function()
   it("names unnamed children by position and builds from a list", function()
      local s = nn.Sequential{nn.Linear(2, 3), nn.ReLU(), {"out", nn.Linear(3, 1)}}
      assert.are.equal(3, #s)
      assert.are.equal(s:get("1"), s[1])
      assert.are.equal(s:get("out"), s[3])
      local names = {}
      for i, e in ipairs(s:namedChildren()) do names[i] = e[1] end
      assert.are.same({"1", "2", "out"}, names)
      assert.matches("already exists", errmsg(function() s:add("out", nn.ReLU()) end))
      assert.matches("expected an nn.Module", errmsg(function() s:add("x", {}) end))
   end)

   it("forward returns requested taps with dotted paths", function()
      retort.manualSeed(2)
      local net = mlp()
      local x = retort.randn(3, 4)
      local y, taps = net:forward(x, {taps = {"act1", "block.fc", "block"}})
      assert.are.same({3, 2}, y:shape())
      local h = x:linear(net:get("fc1").weight, net:get("fc1").bias):tanh()
      assert.is_true(max_abs_diff(taps.act1, h) < 1e-6)
      local z = h:linear(net:get("block.fc").weight, net:get("block.fc").bias)
      assert.is_true(max_abs_diff(taps["block.fc"], z) < 1e-6)
      assert.is_true(max_abs_diff(taps.block, z:sigmoid()) < 1e-6)
      local y2, none = net(x)
      assert.are.same({}, none)
      assert.is_true(max_abs_diff(y, y2) < 1e-6)
   end)

   it("an unknown tap is an error listing the available names", function()
      local msg = errmsg(function() return mlp():forward(retort.randn(1, 4), {taps = {"block.nope"}}) end)
      assert.matches("unknown tap 'block.nope'", msg, 1, true)
      assert.matches("fc1, act1, block, block.fc, block.act, fc2", msg, 1, true)
   end)

   it("does not cache outputs: two forwards give two valid results", function()
      local net = mlp()
      local a, b = retort.randn(2, 4), retort.randn(2, 4)
      local ya = net:forward(a)
      local ya_copy = ya:clone()
      local yb = net:forward(b)
      assert.are.equal(0, max_abs_diff(ya, ya_copy))
      assert.is_true(max_abs_diff(ya, yb) > 0)
   end)

   it("get walks dotted paths and lists children on a miss", function()
      local net = mlp()
      assert.are.equal("Linear", net:get("block.fc"):typename())
      local msg = errmsg(function() return net:get("block.fx") end)
      assert.matches("no child 'fx' in 'block'", msg, 1, true)
      assert.matches("children: fc, act", msg, 1, true)
   end)
end)

describe("parameters and state", function()
   it("lists parameters in a stable order with paths", function()
      local net = mlp()
      local names = {}
      for i, e in ipairs(net:namedParameters()) do
         names[i] = e[1]
         assert.are.equal(e.name, e[1])
         assert.is_true(e.tensor:needsGrad())
      end
      assert.are.same({"fc1.weight", "fc1.bias", "block.fc.weight", "block.fc.bias", "fc2.weight", "fc2.bias"}, names)
      assert.are.equal(6, #net:parameters())
      assert.are.equal(4 * 5 + 5 + 5 * 3 + 3 + 3 * 2 + 2, net:numParameters())
      assert.are.equal(net:get("fc2").bias, net:parameters()[6])
   end)

   it("zeroGrad drops gradients", function()
      local net = mlp()
      net:forward(retort.randn(2, 4)):sum():backward()
      assert.is_not_nil(net:get("fc1").weight.grad)
      net:zeroGrad()
      for _, p in ipairs(net:parameters()) do assert.is_nil(p.grad) end
   end)

   it("training/evaluate reach every descendant", function()
      local net = mlp()
      assert.is_true(net:isTraining())
      net:evaluate()
      assert.is_false(net:get("block.act"):isTraining())
      net:training()
      assert.is_true(net:get("block.fc"):isTraining())
   end)

   it("stateDict round trip reproduces the outputs", function()
      retort.manualSeed(4)
      local a, b = mlp(), mlp()
      local x = retort.randn(5, 4)
      assert.is_true(max_abs_diff(a:forward(x), b:forward(x)) > 1e-4)
      local sd = a:stateDict()
      assert.are.same({5, 4}, sd["fc1.weight"]:shape())
      b:loadStateDict(sd)
      assert.are.equal(0, max_abs_diff(a:forward(x), b:forward(x)))
      -- values were copied, not shared
      retort.noGrad(function() a:get("fc1").weight:fill_(0) end)
      assert.is_true(b:get("fc1").weight:abs():sum():item() > 0)
   end)

   it("loadStateDict lists missing, unexpected and mis-shaped entries together", function()
      local net = mlp()
      local sd = net:stateDict()
      sd["fc1.weight"] = retort.zeros(3, 3)
      sd["block.fc.bias"] = nil
      sd["fc3.weight"] = retort.zeros(1)
      local msg = errmsg(function() net:loadStateDict(sd) end)
      assert.matches("size mismatch for fc1.weight: checkpoint (3x3), model (5x4)", msg, 1, true)
      assert.matches("missing keys: block.fc.bias", msg, 1, true)
      assert.matches("unexpected keys: fc3.weight", msg, 1, true)
      -- non-strict ignores missing/unexpected, never shapes
      sd["fc1.weight"] = retort.zeros(5, 4)
      local r = net:loadStateDict(sd, {strict = false})
      assert.are.same({"block.fc.bias"}, r.missing)
      assert.are.same({"fc3.weight"}, r.unexpected)
      assert.are.equal(0, net:get("fc1").weight:abs():sum():item())
   end)

   it("double() converts parameters, which keep requiring grad", function()
      local net = mlp():double()
      for _, p in ipairs(net:parameters()) do
         assert.are.equal("f64", p:dtype())
         assert.is_true(p:needsGrad())
         assert.is_true(p:isLeaf())
      end
      local y = net:forward(retort.randn(2, 4, "f64"))
      assert.are.equal("f64", y:dtype())
      net:float()
      assert.are.equal("f32", net:get("fc2").bias:dtype())
      assert.has_error(function() net:type("i64") end)
   end)

   it("prints one line per child with its parameter count and a total", function()
      local s = tostring(mlp())
      assert.matches("(fc1): nn.Linear(4 -> 5)  25 params", s, 1, true)
      assert.matches("  (block): nn.Sequential  18 params", s, 1, true)
      assert.matches("    (fc): nn.Linear(5 -> 3)  18 params", s, 1, true)
      assert.matches("(act1): nn.Tanh\n", s, 1, true)
      assert.matches("total: 51 parameters (6 tensors)", s, 1, true)
   end)
end)

-- Every parameter's gradient (and the input's) against central finite differences, in f64.
local function check_gradients(net, x)
   local target = retort.noGrad(function() return retort.randn(net:forward(x):shape(), "f64") end)
   local function loss() return (net:forward(x) * target):sum() end
   net:zeroGrad()
   x.grad = nil
   loss():backward()
   local h = 1e-6
   local checks = {}
   for _, e in ipairs(net:namedParameters()) do checks[#checks + 1] = e end
   checks[#checks + 1] = {"input", x}
   for _, e in ipairs(checks) do
      local p = e[2]
      local grad = p.grad:clone():view(-1)
      local flat = p:view(-1)
      for i = 1, p:numel() do
         local v = flat:get(i)
         local plus, minus
         retort.noGrad(function()
            flat:set(i, v + h); plus = loss():item()
            flat:set(i, v - h); minus = loss():item()
            flat:set(i, v)
         end)
         local fd = (plus - minus) / (2 * h)
         local g = grad:get(i)
         assert.is_true(math.abs(fd - g) <= 1e-6 * math.max(1, math.abs(fd)),
            ("%s[%d]: analytic %.10g, numeric %.10g"):format(e[1], i, g, fd))
      end
   end
end

describe("gradients through networks", function()
   it("a dense network matches central finite differences (f64)", function()
      retort.manualSeed(5)
      local net = nn.Sequential{nn.Linear(3, 4), nn.Tanh(), nn.Maxout(4, 3, 2), nn.Sigmoid(), nn.Linear(3, 2),
                                nn.LogSoftmax(2)}:double()
      check_gradients(net, retort.randn(4, 3, "f64"):requiresGrad())
   end)

   it("a convolutional network (conv, batch norm, pooling, residual block) matches finite differences", function()
      if not retort.Tensor.conv2d then return pending("needs Tensor:conv2d") end
      retort.manualSeed(6)
      local net = nn.Sequential()
         :add("conv1", nn.Conv2d(2, 3, 3, {padding = 1, stride = 1}))
         :add("bn1", nn.BatchNorm2d(3))
         :add("act1", nn.LeakyReLU(0.1))
         :add("block", nn.BasicBlock(3, 4, {stride = 2}))
         :add("pool", nn.AvgPool2d(2))
         :add("conv2", nn.Conv2d(4, 4, 1, {groups = 2}))
         :add("gap", nn.AdaptiveAvgPool2d(1))
         :add("flatten", nn.Flatten())
         :add("bn2", nn.BatchNorm1d(4))
         :add("fc", nn.Linear(4, 3))
         :double()
      check_gradients(net, retort.randn(3, 2, 8, 8, "f64"):requiresGrad())
   end)

   it("max pooling passes gradients to the selected inputs", function()
      if not retort.Tensor.conv2d then return pending("needs Tensor:conv2d") end
      retort.manualSeed(7)
      local net = nn.Sequential{nn.Conv2d(1, 2, 3, {padding = 1}), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)}
         :double()
      check_gradients(net, retort.randn(2, 1, 4, 4, "f64"):requiresGrad())
   end)
end)

describe("layers", function()
   it("Maxout takes the max over each unit's k pieces", function()
      local m = nn.Maxout(3, 2, 3)
      local x = retort.randn(4, 3)
      local z = x:linear(m:get("linear").weight, m:get("linear").bias):totable()
      local y = m:forward(x):totable()
      for i = 1, 4 do
         for j = 1, 2 do
            local best = -math.huge
            for p = 1, 3 do best = math.max(best, z[i][(j - 1) * 3 + p]) end
            assert.is_true(math.abs(best - y[i][j]) < 1e-6)
         end
      end
   end)

   it("activations, Softmax with temperature, Flatten, Identity", function()
      local x = retort.randn(2, 3, 2)
      assert.are.equal(0, max_abs_diff(nn.ReLU()(x), x:relu()))
      assert.are.equal(0, max_abs_diff(nn.Identity()(x), x))
      assert.are.same({2, 6}, nn.Flatten()(x):shape())
      local s = nn.Softmax(2, 4)(x:view(2, 6))
      assert.is_true(max_abs_diff(s, (x:view(2, 6) / 4):softmax(2)) < 1e-6)
      assert.is_true(max_abs_diff(nn.LogSoftmax(2)(x:view(2, 6)), x:view(2, 6):logSoftmax(2)) < 1e-6)
   end)

   maybe(HAVE_LEAKY, "LeakyReLU scales negatives by its slope", function()
      local y = nn.LeakyReLU(0.1)(retort.tensor{-2, 3})
      assert.is_true(math.abs(y:get(1) + 0.2) < 1e-6 and math.abs(y:get(2) - 3) < 1e-6)
   end)

   maybe(HAVE_DROPOUT, "Dropout is the identity when evaluating and zeroes/scales when training", function()
      local d = nn.Dropout(0.5)
      local x = retort.ones(1000)
      d:evaluate()
      assert.are.equal(0, max_abs_diff(d(x), x))
      d:training()
      local y = d(x)
      local zeros = y:eq(0):float():sum():item()
      assert.is_true(zeros > 400 and zeros < 600)
      assert.is_true(math.abs(y:max():item() - 2) < 1e-6)
   end)

   maybe(HAVE_CONV, "Conv2d gives the output shape of the formula and matches a 1x1 conv by hand", function()
      local c = nn.Conv2d(3, 8, 3, {stride = 2, padding = 1})
      assert.are.same({2, 8, 4, 4}, c(retort.randn(2, 3, 8, 8)):shape())
      assert.are.same({8, 3, 3, 3}, c.weight:shape())
      local c1 = nn.Conv2d(3, 2, 1)
      local x = retort.randn(1, 3, 2, 2)
      local want = x:permute(1, 3, 4, 2):contiguous():view(4, 3):linear(c1.weight:view(2, 3), c1.bias)
      local got = c1(x):permute(1, 3, 4, 2):contiguous():view(4, 2)
      assert.is_true(max_abs_diff(want, got) < 1e-5)
   end)

   maybe(HAVE_BN, "BatchNorm2d normalises per channel and updates running stats only when training", function()
      local bn = nn.BatchNorm2d(3)
      assert.are.same({"runningMean", "runningVar"}, {bn:namedBuffers()[1][1], bn:namedBuffers()[2][1]})
      local x = retort.randn(4, 3, 5, 5) * 3 + 2
      local y = bn(x)
      local m = y:permute(2, 1, 3, 4):contiguous():view(3, -1):mean(2)
      assert.is_true(m:abs():max():item() < 1e-4)
      assert.is_true(bn.runningMean:abs():max():item() > 0.05)
      local sd = bn:stateDict()
      assert.is_not_nil(sd.runningMean)
      local before = bn.runningMean:clone()
      bn:evaluate()
      bn(x)
      assert.are.equal(0, max_abs_diff(before, bn.runningMean))
   end)

   maybe(HAVE_POOL, "pooling layers give the expected shapes", function()
      local x = retort.randn(2, 3, 8, 8)
      assert.are.same({2, 3, 4, 4}, nn.MaxPool2d(2)(x):shape())
      assert.are.same({2, 3, 4, 4}, nn.AvgPool2d(3, {stride = 2, padding = 1})(x):shape())
      assert.are.same({2, 3, 1, 1}, nn.AdaptiveAvgPool2d(1)(x):shape())
      assert.is_true(max_abs_diff(nn.AdaptiveAvgPool2d(1)(x):view(2, 3), x:view(2, 3, 64):mean(3)) < 1e-5)
   end)
end)

describe("nn.init", function()
   it("follows the PyTorch formulas", function()
      retort.manualSeed(6)
      local w = retort.empty(200, 300)
      nn.init.kaimingUniform(w, {nonlinearity = "relu"})
      local b = math.sqrt(2) * math.sqrt(3 / 300)
      assert.is_true(w:abs():max():item() <= b + 1e-6 and w:abs():max():item() > 0.95 * b)
      nn.init.xavierNormal(w)
      local std = math.sqrt(2 / 500)
      assert.is_true(math.abs(math.sqrt((w * w):mean():item()) - std) < 0.03 * std)
      nn.init.kaimingNormal(w, {mode = "fanOut"})
      assert.is_true(math.abs(math.sqrt((w * w):mean():item()) - math.sqrt(2 / 200)) < 0.03 * math.sqrt(2 / 200))
      nn.init.ones(w)
      assert.are.equal(60000, w:sum():item())
      local c = retort.empty(8, 4, 3, 3)
      local fin, fout = nn.init.fans(c)
      assert.are.same({36, 72}, {fin, fout})
      assert.has_error(function() nn.init.kaimingUniform(w, {mode = "sideways"}) end)
   end)
end)

describe("retort.loss", function()
   local logits = retort.tensor{{1, 3, 2}, {5, 1, 0}, {0, 0, 1}, {2, 2, 1}}
   local labels = retort.tensor({2, 2, 3, 3}, "i64")

   it("accuracy and topk count hits without recording a graph", function()
      assert.are.equal(0.5, retort.loss.accuracy(logits, labels))
      -- ranks of the labels: 1, 2, 1, 3 (strictly larger logits + 1)
      assert.are.equal(0.5, retort.loss.topk(logits, labels, 1))
      assert.are.equal(0.75, retort.loss.topk(logits, labels, 2))
      assert.are.equal(1, retort.loss.topk(logits, labels, 3))
      local l = logits:clone():requiresGrad()
      assert.are.equal("number", type(retort.loss.accuracy(l, labels)))
   end)

   it("correct counts rows whose argmax is the label: ties to the first, NaN wins, bad labels miss", function()
      local devices = retort.cuda.isAvailable() and {"cpu", "cuda"} or {"cpu"}
      for _, c in ipairs{3, 100} do
         retort.manualSeed(c)
         local n = 64
         local x = retort.randint(0, 3, n, c):double() -- small integers: many ties
         local xs = x:totable()
         xs[5][c] = 0 / 0                            -- a NaN beats every number
         xs[9][2], xs[9][c] = 0 / 0, 0 / 0           -- the first NaN wins
         x = retort.tensor(xs)
         local lab = retort.randint(0, c + 1, n) -- 0 and c + 1 are out of range
         local labs = lab:totable()
         labs[5], labs[9] = c, 2
         lab = retort.tensor(labs, "i64")
         local want = 0
         for i = 1, n do -- the first NaN, else the first largest
            local bi = 1
            for j = 2, c do
               local v, b = xs[i][j], xs[i][bi]
               if b == b and (v ~= v or v > b) then bi = j end
            end
            if bi == labs[i] then want = want + 1 end
         end
         for _, dev in ipairs(devices) do
            local got = retort.loss.correct(x:to(dev), lab:to(dev))
            assert.are.equal(dev, got:device())
            assert.are.equal(want, got:item(), ("C = %d on %s"):format(c, dev))
            assert.are.equal(want, x:to(dev):double():argmax(2):eq(lab:to(dev)):sum():item())
         end
      end
   end)

   it("check their arguments", function()
      assert.matches("labels must be an i64 tensor",
                     errmsg(retort.loss.crossEntropy, logits, retort.tensor{1, 2, 3, 1}))
      assert.matches("labels must be %(N%) = %(4%)",
                     errmsg(retort.loss.crossEntropy, logits, retort.tensor({1}, "i64")))
      assert.matches("expected scores %(N, C%)", errmsg(retort.loss.nll, retort.randn(4), labels))
      assert.matches("reduction must be", errmsg(retort.loss.crossEntropy, logits, labels, {reduction = "avg"}))
      assert.matches("shapes differ", errmsg(retort.loss.mse, retort.randn(2), retort.randn(3)))
      assert.matches("k must be a positive integer", errmsg(retort.loss.topk, logits, labels, 0))
   end)

   maybe(HAVE_CE, "crossEntropy equals the mean of -log softmax at the label", function()
      local got = retort.loss.crossEntropy(logits, labels):item()
      local lp = logits:logSoftmax(2):totable()
      local want = 0
      for i, y in ipairs(labels:totable()) do want = want - lp[i][y] end
      assert.is_true(math.abs(got - want / 4) < 1e-5)
      local mse = retort.loss.mse(retort.tensor{1, 2}, retort.tensor{2, 4}):item()
      assert.is_true(math.abs(mse - 2.5) < 1e-6)
   end)
end)
