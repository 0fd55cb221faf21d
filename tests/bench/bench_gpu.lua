-- Benchmark: training steps on the GPU against PyTorch eager on the same GPU in the same run
-- (tests/bench/torch_gpu_step.py), and one KD epoch of Fashion-MNIST. Prints examples/s, the ratio
-- retort / PyTorch and both sides' peak GPU memory; asserts nothing. Needs a CUDA build and a GPU
-- (tests/bench/gpu/README.md says how to run it on a lent machine).
--
--   retort tests/bench/bench_gpu.lua [--steps=teacher,cnn,kd] [--batches=128,1024] [--iters=200]
--                                    [--precisions=f32,bf16] [--python=python3] [--epoch=true]
--
-- --python=none runs retort's side alone: on a CUDA simulator build (-DRETORT_CUDA=SIM) that counts
-- the launches each step queues without a GPU, e.g.
--   retort tests/bench/bench_gpu.lua --python=none --batches=128 --iters=2 --epoch=false
--
-- Steps: teacher (784-1200-1200-10 MLP, cross-entropy), cnn (retort.models.cnn, dropout 0.3), kd
-- (frozen 784-1200-1200-10 teacher, 784-800-800-10 student, retort.distill.kd at T 4, alpha 0.9).
-- SGD with momentum 0.9. Precisions: f32 (TF32 off on both sides), and bf16: the forward and loss
-- under autocast (retort.autocast; PyTorch's torch.autocast("cuda", dtype=torch.bfloat16)), products
-- on the tensor cores, f32 weights. The epoch: the same KD pair through retort.train.fit over the
-- 60000 training images with a Loader on the GPU, timed end to end, in each precision.
local retort = require "retort"
local opts = retort.recipe.options({steps = "teacher,cnn,kd", batches = "128,1024", iters = 200, python = "python3",
                                    precisions = "f32,bf16", epoch = true}, {...})
local ok, why = retort.cuda.isAvailable()
if not ok then
   print("bench_gpu: skipped: CUDA is not available: " .. why)
   return
end

local function list(s, conv)
   local out = {}
   for v in tostring(s):gmatch("[^,]+") do out[#out + 1] = conv and conv(v) or v end
   return out
end

local function mlp(sizes) return retort.models.mlp{sizes = sizes} end

local function setup(kind, batch)
   retort.manualSeed(0)
   local net, x, teacher
   if kind == "teacher" then
      net, x = mlp{784, 1200, 1200, 10}, retort.randn(batch, 784)
   elseif kind == "cnn" then
      net, x = retort.models.cnn{dropout = 0.3}, retort.randn(batch, 1, 28, 28)
   elseif kind == "kd" then
      net, x = mlp{784, 800, 800, 10}, retort.randn(batch, 784)
      teacher = mlp{784, 1200, 1200, 10}:cuda():evaluate()
   else
      error(("unknown step '%s' (teacher, cnn, kd)"):format(kind), 0)
   end
   net:cuda()
   local opt = retort.optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
   return net, opt, x:cuda(), retort.randint(1, 10, batch):cuda(), teacher
end

local function retort_rate(kind, batch, iters, precision)
   local net, opt, x, y, teacher = setup(kind, batch)
   local function forward_loss()
      local s = net:forward(x)
      if teacher then
         local t = retort.noGrad(function() return teacher:forward(x) end)
         return retort.distill.kd(s, t, {T = 4, alpha = 0.9, labels = y})
      end
      return retort.loss.crossEntropy(s, y)
   end
   local function step()
      opt:zeroGrad()
      local loss = retort.autocast(precision, forward_loss) -- "f32": autocast off
      loss:backward()
      opt:step()
   end
   for _ = 1, math.max(10, iters // 10) do step() end
   retort.cuda.synchronize()
   retort.cuda.resetPeakMemory()
   local best, w0, l0 = math.huge, retort.cuda.waits(), retort.cuda.launches()
   for _ = 1, 3 do
      collectgarbage()
      retort.cuda.synchronize()
      local t0 = retort.clock()
      for _ = 1, iters do step() end
      retort.cuda.synchronize()
      best = math.min(best, retort.clock() - t0)
   end
   -- the 2 synchronize calls of each round are waits by design; any more means a step read a value back
   local waits = (retort.cuda.waits() - w0 - 2 * 3) / (3 * iters)
   local launches = (retort.cuda.launches() - l0) / (3 * iters)
   return batch * iters / best, retort.cuda.memory().peakInUse / 2 ^ 20, waits, launches
end

local function torch_rate(kind, batch, iters, precision)
   if opts.python == "none" then return nil, nil, "not run (--python=none)" end
   local cmd = ("%s tests/bench/torch_gpu_step.py %s %d %d %s 2>&1"):format(opts.python, kind, batch, iters, precision)
   local p = io.popen(cmd)
   local out = p and p:read("a") or ""
   if p then p:close() end
   return tonumber(out:match("examples_per_s=([%d%.]+)")), tonumber(out:match("peak_mb=([%d%.]+)")), out,
          tonumber(out:match("launches_per_step=(%-?[%d%.]+)"))
end

print(("GPU: %s"):format(retort.cuda.describe()))
print("training step on the GPU: examples/s (best of 3 x iters) and peak GPU memory held by tensors")
local precisions = list(opts.precisions)
for _, p in ipairs(precisions) do
   if p ~= "f32" and p ~= "bf16" then error(("bench_gpu: --precisions takes f32 and bf16, got '%s'"):format(p), 0) end
end
for _, kind in ipairs(list(opts.steps)) do
   for _, batch in ipairs(list(opts.batches, tonumber)) do
      for _, precision in ipairs(precisions) do
         local iters = kind == "cnn" and math.max(20, opts.iters // 4) or opts.iters
         local r, rmem, waits, launches = retort_rate(kind, batch, iters, precision)
         local t, tmem, out, tlaunches = torch_rate(kind, batch, iters, precision)
         local head = ("  %-8s batch %5d %-4s   retort %9.0f ex/s %7.1f MB   "):format(kind, batch, precision, r, rmem)
         if t then
            print((head .. "pytorch %9.0f ex/s %7.1f MB   speed %.2fx   waits/step %.2f   launches/step %.0f "
                   .. "(pytorch %.0f)"):format(t, tmem, r / t, waits, launches, tlaunches or -1))
         else
            print((head .. "waits/step %.2f   launches/step %.0f   pytorch: %s"):format(waits, launches,
                  opts.python == "none" and out or "failed: " .. out:sub(1, 200)))
         end
      end
   end
end

if opts.epoch then
   local ok_data, data = pcall(retort.data.fashionMnist, {split = "train"})
   if not ok_data then
      print("KD epoch: skipped (" .. tostring(data) .. ")")
      return
   end
   local sink = io.open("/dev/null", "w")
   for _, precision in ipairs(precisions) do
      retort.manualSeed(1)
      local teacher = mlp{784, 1200, 1200, 10}
      local student = mlp{784, 800, 800, 10}
      local model = retort.distill.Distiller{teacher = teacher, student = student, T = 4, alpha = 0.9}
      model:cuda()
      local opt = retort.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
      local loader = retort.data.Loader(data, {batchSize = 128, shuffle = true, device = "cuda",
         normalize = {mean = retort.data.fashionMnistMean, std = retort.data.fashionMnistStd}})
      local fit = {model = model, optimizer = opt, train = loader, epochs = 1, log = sink, precision = precision}
      retort.train.fit(fit) -- warm-up
      retort.cuda.synchronize()
      local t0, w0 = retort.clock(), retort.cuda.waits()
      retort.train.fit(fit)
      retort.cuda.synchronize()
      local s = retort.clock() - t0
      print(("KD epoch %s (Fashion-MNIST, %d images, batch 128, 784-1200-1200-10 -> 784-800-800-10): %.3f s, "
             .. "%.0f ex/s, %d waits for the GPU"):format(precision, loader.n, s, loader.n / s,
             retort.cuda.waits() - w0))
   end
end
