-- Devices from Lua: retort.cuda's queries and errors, device options, modules that move their
-- parameters in place (so an optimizer built before keeps working), and, on a machine with a GPU,
-- a training step on the GPU against the same step on the CPU. Without a GPU the GPU cases are
-- pending and the rest checks that every path says clearly why CUDA cannot be used.
local retort = require "retort"
local support = require "support"

local has_cuda, why = retort.cuda.isAvailable()

describe("retort.cuda", function()
   it("says whether CUDA can be used, and why not", function()
      assert.is_boolean(has_cuda)
      if not has_cuda then assert.is_string(why); assert.is_true(#why > 0) end
      local m = retort.cuda.memory()
      for _, k in ipairs{"inUse", "peakInUse", "cached", "peakReserved"} do assert.is_number(m[k]) end
      assert.is_number(retort.memoryInUse("cuda"))
      assert.is_true(math.type(retort.cuda.waits()) == "integer" and math.type(retort.cuda.launches()) == "integer")
      assert.has_error(function() retort.memoryInUse("tpu") end,
         [[bad argument #1 to 'memoryInUse' (unknown device 'tpu' (expected "cpu" or "cuda"))]])
   end)

   it("leaves cuBLAS unloaded in a run that never uses the GPU", function()
      -- cuBLAS costs ~150 MB of resident memory once loaded; it is opened with the CUDA context
      local code = [[
         local retort = require "retort"
         local x = retort.randn(64, 64)
         local _ = x:matmul(x)
         retort.cuda.isAvailable()
         local f = assert(io.open("/proc/self/maps"))
         print(f:read("a"):find("libcublas", 1, true) and "loaded" or "not loaded")
         f:close()
      ]]
      local r = support.run({"-e", code})
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("not loaded\n", r.stdout)
   end)

   it("resolves device options", function()
      assert.are.equal("cpu", retort.cuda.resolveDevice(nil))
      assert.are.equal("cpu", retort.cuda.resolveDevice("cpu"))
      assert.are.equal(has_cuda and "cuda" or "cpu", retort.cuda.resolveDevice("auto"))
      local ok, err = pcall(retort.cuda.resolveDevice, "gpu", "train: device")
      assert.is_false(ok)
      assert.matches('train: device must be "cpu", "cuda" or "auto", got gpu', err, 1, true)
      if not has_cuda then
         ok, err = pcall(retort.cuda.resolveDevice, "cuda", "Loader: device")
         assert.is_false(ok)
         assert.matches('Loader: device is "cuda" but CUDA is not available: ' .. why, err, 1, true)
      end
   end)

   it("errors clearly where there is no GPU", function()
      if has_cuda then return end
      local ok, err = pcall(function() return retort.zeros(2):cuda() end)
      assert.is_false(ok)
      assert.matches("cuda is not available: " .. why, err, 1, true)
      ok, err = pcall(retort.cuda.describe)
      assert.is_false(ok)
      assert.matches("retort.cuda.describe: CUDA is not available", err, 1, true)
      local ds = retort.data.tensorDataset(retort.zeros(4, 2), retort.tensor({1, 2, 1, 2}, "i64"))
      ok, err = pcall(retort.data.Loader, ds, {device = "cuda"})
      assert.is_false(ok)
      assert.matches("Loader: device is \"cuda\" but CUDA is not available", err, 1, true)
   end)
end)

describe("waiting for the GPU", function()
   -- RETORT_EMULATE_CUDA=1 runs the cuda device's ops on the CPU but counts its waits as a GPU's:
   -- each read of a value drains the queue, so a training step must not read any
   local code = [[
      local retort = require "retort"
      local distill = retort.distill
      retort.manualSeed(1)
      local function waits(f)
         local w0 = retort.cuda.waits()
         f()
         return retort.cuda.waits() - w0
      end
      local teacher = retort.models.mlp{sizes = {20, 16, 3}}:cuda()
      local student = retort.models.mlp{sizes = {20, 16, 3}}:cuda()
      local opt = retort.optim.SGD(student:parameters(), {lr = 0.05, momentum = 0.9})
      local x, y = retort.randn(8, 20):cuda(), retort.tensor({1, 2, 3, 1, 2, 3, 1, 2}, "i64"):cuda()
      local tl = retort.noGrad(function() return teacher:forward(x) end)
      local function step(loss) opt:zeroGrad(); loss:backward(); opt:step() end
      local out = {}
      out.ce = waits(function() step(retort.loss.crossEntropy(student:forward(x), y)) end)
      out.nll = waits(function() step(retort.loss.nll(student:forward(x):logSoftmax(2), y, {ignoreIndex = 2})) end)
      out.kd = waits(function() step((distill.kd(student:forward(x), tl, {T = 4, alpha = 0.9, labels = y}))) end)
      local d = distill.Distiller{teacher = teacher, student = student, T = 3, gamma = 0.3, alpha = 0.7,
                                  pairs = {{hint = "relu1", guided = "relu1", loss = "hint"}}}
      d:training()
      out.distiller = waits(function() step((select(2, d:trainingStep(x, y, {epoch = 1, step = 1, epochs = 1})))) end)
      local ds = retort.data.blobs{n = 1600, dim = 20, classes = 3, seed = 2}
      local loader = retort.data.Loader(ds, {batchSize = 16, shuffle = true, seed = 1, device = "cuda"})
      local r
      out.fit = waits(function()
         r = retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.05}), train = loader,
                              epochs = 1, log = io.open("/dev/null", "w")}
      end)
      -- readEvery = 1: a read every step (2 epochs of 100 steps: at least 200 waits)
      out.every = waits(function()
         retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.05}), train = loader,
                          epochs = 2, readEvery = 1, log = io.open("/dev/null", "w")}
      end)
      local bad_every = select(2, pcall(retort.train.fit, {model = d, optimizer = retort.optim.SGD(d:parameters(),
         {lr = 0.05}), train = loader, readEvery = 0}))
      -- a bad label is still caught, at the next read
      local bad = retort.tensor({1, 2, 3, 4, 1, 2, 3, 1}, "i64"):cuda()
      local ok, err = pcall(function() return retort.loss.crossEntropy(student:forward(x), bad):item() end)
      print(out.ce, out.nll, out.kd, out.distiller, out.fit, r.history[1].train_loss, r.history[1].train_acc, err)
      print(out.every, bad_every)
   ]]

   it("a training step never waits, and train.fit reads its sums every 50 steps", function()
      local r = support.run({"-e", code}, {env = {RETORT_EMULATE_CUDA = "1"}})
      assert.are.equal(0, r.status, r.stderr)
      local ce, nll, kd, dist, fit, loss, acc, err, every, bad_every = r.stdout:match(
         "^(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t(%S+)\t(%S+)\t(.-)\n(%d+)\t(.-)\n$")
      assert.is_not_nil(ce, r.stdout)
      assert.are.same({"0", "0", "0", "0"}, {ce, nll, kd, dist})
      -- 100 steps: sums at steps 50 and 100 (+ the finiteness checks there) and the epoch's end
      assert.is_true(tonumber(fit) <= 6, "train.fit waited " .. fit .. " times in 100 steps")
      assert.is_true(tonumber(loss) > 0 and tonumber(loss) < 2, loss)
      assert.is_true(tonumber(acc) > 0.3 and tonumber(acc) <= 1, acc)
      assert.matches("crossEntropy: label 4 at position 4 out of range [1, 3] (1-based)", err, 1, true)
      assert.is_true(tonumber(every) >= 200, "readEvery = 1 waited only " .. every .. " times in 200 steps")
      assert.matches("option 'readEvery' must be a positive integer (steps), got 0", bad_every, 1, true)
   end)
end)

describe("moving tensors and modules", function()
   it("replace_ changes what every reference sees", function()
      local a = retort.tensor{1, 2, 3}
      local alias = a
      a:replace_(retort.tensor({4, 5}, "f64"))
      assert.are.same({4, 5}, alias:totable())
      assert.are.equal("f64", alias:dtype())
   end)

   it("emptyLike and zerosLike follow shape, dtype and device", function()
      local x = retort.randn(2, 3):double()
      local z = retort.zerosLike(x)
      assert.are.same({2, 3}, z:shape()); assert.are.equal("f64", z:dtype()); assert.are.equal(x:device(), z:device())
      assert.are.same({{0, 0, 0}, {0, 0, 0}}, z:totable())
      assert.are.same({2, 3}, retort.emptyLike(x):shape())
   end)

   it("a module converted after its optimizer was built still trains", function()
      retort.manualSeed(3)
      local net = retort.nn.Linear(3, 2)
      local opt = retort.optim.SGD(net:parameters(), {lr = 0.5, momentum = 0.9})
      local w = net.weight
      net:double() -- in place: the optimizer holds the same objects
      assert.is_true(rawequal(w, net.weight))
      assert.are.equal("f64", net.weight:dtype())
      assert.are.equal("cpu", net:device())
      local before = net.weight:clone()
      local x = retort.randn(4, 3):double()
      local loss = net:forward(x):pow(2):mean()
      opt:zeroGrad(); loss:backward(); opt:step()
      assert.is_true((net.weight - before):abs():max():item() > 0)
   end)

   local gpu_it = has_cuda and it or pending
   gpu_it("round-trips tensors and keeps gradients on the input's device", function()
      local x = retort.randn(3, 4):requiresGrad()
      local y = (x:cuda() * 2):sum()
      y:backward()
      assert.are.equal("cpu", x.grad:device())
      assert.are.same(retort.full({3, 4}, 2):totable(), x.grad:totable())
      local ok, err = pcall(function() return x:cuda() + x end)
      assert.is_false(ok)
      assert.matches("cuda", err, 1, true); assert.matches("cpu", err, 1, true)
   end)

   gpu_it("trains the same on the GPU as on the CPU", function()
      local function run(device)
         retort.manualSeed(5)
         local net = retort.models.mlp{sizes = {6, 8, 3}}
         local opt = retort.optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9})
         if device == "cuda" then net:cuda() end
         local x, y = retort.randn(16, 6):double(), retort.randint(1, 3, 16)
         net:double()
         x, y = x:to(device), y:to(device)
         for _ = 1, 5 do
            local loss = retort.loss.crossEntropy(net:forward(x), y)
            opt:zeroGrad(); loss:backward(); opt:step()
         end
         return net:get("fc1").weight:cpu()
      end
      local a, b = run("cpu"), run("cuda")
      assert.is_true((a - b):abs():max():item() < 1e-9)
   end)

   local bf16_it = has_cuda and retort.bf16Info().available and it or pending
   bf16_it("trains under bf16 autocast on the GPU as on the CPU (tensor cores against the CPU's bf16 unit)", function()
      local function run(device)
         retort.manualSeed(7)
         local nn = retort.nn
         local net = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)}
         local opt = retort.optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
         local x, y = retort.randn(16, 1, 6, 6), retort.randint(1, 10, 16)
         if device == "cuda" then net:cuda() end
         x, y = x:to(device), y:to(device)
         local losses = {}
         for i = 1, 4 do
            local loss = retort.autocast("bf16", function()
               return retort.loss.crossEntropy(net:forward(x), y)
            end)
            opt:zeroGrad(); loss:backward(); opt:step()
            losses[i] = loss:item()
         end
         return net:parameters(), losses
      end
      local pc, lc = run("cpu")
      local pg, lg = run("cuda")
      -- the same bf16 values multiplied exactly, summed in f32 in another order: a rounding to bf16
      -- further on may land one step apart (2^-8 relative), hence 1e-3, not f32's 1e-6
      for i = 1, #lc do assert.is_true(math.abs(lc[i] - lg[i]) < 1e-3 * math.max(1, math.abs(lc[i]))) end
      for i, p in ipairs(pc) do
         assert.are.equal("cuda", pg[i]:device())
         assert.is_true((p - pg[i]:cpu()):abs():max():item() < 1e-3)
      end
   end)

   -- The work each loss queues, counted (kernels, cuBLAS calls and copies; the emulated device runs
   -- CPU kernels and counts none). The numbers are the kernels each op is built from: a regression
   -- guard for the launch overhead that bounds a small batch on a GPU.
   local counted = has_cuda and not retort.cuda.describe():match("emulated")
   local count_it = counted and it or pending
   count_it("queues the fused kernels a loss or layer is built from, and no more", function()
      local function launches(f)
         local l0 = retort.cuda.launches()
         f()
         return retort.cuda.launches() - l0
      end
      local s = retort.randn(8, 5):cuda():requiresGrad()
      local t, y = retort.randn(8, 5):cuda(), retort.tensor({1, 2, 3, 4, 5, 1, 2, 3}, "i64"):cuda()
      local loss
      -- labels rebased to 0 (checked: 1), the loss rows with their labels checked (1), their mean (1)
      assert.are.equal(3, launches(function() loss = retort.loss.crossEntropy(s, y) end))
      -- the seed gradient (1) and one kernel that reads the mean's gradient in place (1)
      assert.are.equal(2, launches(function() loss:backward() end))
      s.grad = nil
      -- rebase (1), the KL and CE rows (1), their reduction to the loss and its terms, klScaled too (1)
      assert.are.equal(3, launches(function() loss = retort.distill.kd(s, t, {T = 4, alpha = 0.9, labels = y}) end))
      assert.are.equal(2, launches(function() loss:backward() end))
      local drop = retort.nn.Dropout(0.5)
      assert.are.equal(1, launches(function() drop:forward(t) end))
      -- a product with its bias added in the GEMM's epilogue (cuBLASLt)
      local fc = retort.nn.Linear(5, 3):cuda()
      assert.are.equal(1, launches(function() fc:forward(t) end))
      -- under bf16 autocast: the input's and the weight's bf16 copies (2), the product with its f32 bias
      -- in the epilogue (1)
      assert.are.equal(3, launches(function() retort.autocast("bf16", fc.forward, fc, t) end))
   end)
end)
