-- Benchmark: examples/s of a full training step (forward, cross-entropy, backward, SGD with
-- momentum) through retort's nn + optim, against PyTorch on the same model and batch in the same
-- run (tests/bench/torch_train_step.py with Debian's /usr/bin/python3, given its best thread
-- set-up per DESIGN.md §6). Prints the ratio retort / PyTorch and both processes' peak resident
-- memory (each model runs in a fresh process on both sides); asserts nothing.
--
--   build/bin/retort tests/bench/bench_train.lua [--model=all|teacher|student|cnn|tiny] [--batch=128] [--iters=100]
--                                                [--rounds=3]   (each side's best of that many alternating runs)
local retort = require "retort"
local opts = retort.recipe.options({model = "all", batch = 128, iters = 100, threads = 2, rounds = 3, child = false},
                                   {...})
retort.setNumThreads(opts.threads)

local cases = {
   teacher = {kind = "mlp", spec = "784,1200,1200,10", shape = {784}, torch_threads = 1},
   student = {kind = "mlp", spec = "784,800,800,10", shape = {784}, torch_threads = 1},
   cnn = {kind = "cnn", spec = "32,64,128", shape = {1, 28, 28}, torch_threads = 2},
   -- kernels of nothing: what is left is each framework's cost per op (dispatch, autograd, the
   -- optimizer's loop), the part that bounds a small model on a GPU (run with --batch=4)
   tiny = {kind = "mlp", spec = "8,8,8,10", shape = {8}, torch_threads = 1},
}

local function build(case)
   local nn = retort.nn
   local sizes = {}
   for s in case.spec:gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
   if case.kind == "mlp" then return retort.models.mlp{sizes = sizes} end
   local c1, c2, fc = sizes[1], sizes[2], sizes[3]
   return nn.Sequential()
      :add("conv1", nn.Conv2d(1, c1, 3, {padding = 1})):add("relu1", nn.ReLU()):add("pool1", nn.MaxPool2d(2))
      :add("conv2", nn.Conv2d(c1, c2, 3, {padding = 1})):add("relu2", nn.ReLU()):add("pool2", nn.MaxPool2d(2))
      :add("flatten", nn.Flatten()):add("fc1", nn.Linear(c2 * 7 * 7, fc)):add("relu3", nn.ReLU())
      :add("fc2", nn.Linear(fc, 10))
end

local function retort_rate(case, iters)
   retort.manualSeed(0)
   local net = build(case)
   local opt = retort.optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
   local shape = {opts.batch, table.unpack(case.shape)}
   local x = retort.randn(shape)
   local y = retort.randint(1, 10, opts.batch)
   local function step()
      opt:zeroGrad()
      local loss = retort.loss.crossEntropy(net:forward(x), y)
      loss:backward()
      opt:step()
   end
   for _ = 1, math.max(3, iters // 10) do step() end
   local best = math.huge
   for _ = 1, 3 do
      collectgarbage()
      local t0 = retort.clock()
      for _ = 1, iters do step() end
      best = math.min(best, retort.clock() - t0)
   end
   return opts.batch * iters / best
end

local function parse(out)
   return tonumber(out:match("examples_per_s=([%d%.]+)")), tonumber(out:match("peak_rss_kb=(%d+)"))
end

local function run(cmd)
   local p = io.popen(cmd)
   local out = p and p:read("a") or ""
   if p then p:close() end
   return parse(out)
end

local function torch_rate(case, iters)
   -- PyTorch gets its own best set-up, not the settings the retort host gave itself
   local env = "env -u OPENBLAS_THREAD_TIMEOUT -u OMP_WAIT_POLICY " ..
      (case.kind == "mlp" and "OPENBLAS_NUM_THREADS=2" or "OMP_WAIT_POLICY=PASSIVE")
   return run(("%s /usr/bin/python3 tests/bench/torch_train_step.py %s %s %d %d %d 2>/dev/null"):format(
      env, case.kind, case.spec, opts.batch, iters, case.torch_threads))
end

local function peak_rss_kb()
   local f = io.open("/proc/self/status")
   local text = f and f:read("a") or ""
   if f then f:close() end
   return tonumber(text:match("VmHWM:%s*(%d+)"))
end

local function iters_for(case) return case.kind == "cnn" and math.max(5, opts.iters // 5) or opts.iters end

if opts.child then -- one model in this fresh process: print its rate and peak memory
   local case = cases[opts.model]
   local r = retort_rate(case, iters_for(case))
   print(("examples_per_s=%.1f peak_rss_kb=%d"):format(r, peak_rss_kb() or 0))
   return
end

local names = opts.model == "all" and {"teacher", "student", "cnn"} or {opts.model}
print(("training step, batch %d, %d threads: examples/s and peak resident memory"):format(opts.batch, opts.threads))
for _, name in ipairs(names) do
   local case = cases[name] or error(("unknown model '%s' (teacher, student, cnn, tiny, all)"):format(name), 0)
   local self_cmd = ("%s tests/bench/bench_train.lua --model=%s --batch=%d --iters=%d --threads=%d --child"):format(
      arg[-1] or "retort", name, opts.batch, opts.iters, opts.threads)
   -- alternate the two sides `rounds` times and keep each side's best: machine noise hits both alike
   local r, rmem, t, tmem
   for _ = 1, opts.rounds do
      local r1, m1 = run(self_cmd)
      local t1, m2 = torch_rate(case, iters_for(case))
      if r1 and (not r or r1 > r) then r, rmem = r1, m1 end
      if t1 and (not t or t1 > t) then t, tmem = t1, m2 end
   end
   if not r then
      print(("  %-8s retort run failed (%s)"):format(name, self_cmd))
   elseif t then
      print(("  %-8s retort %7.0f ex/s %5.0f MB   pytorch %7.0f ex/s %5.0f MB   speed %.2fx  memory %.2fx"):format(
         name, r, rmem / 1024, t, tmem / 1024, r / t, rmem / tmem))
   else
      print(("  %-8s retort %7.0f ex/s %5.0f MB   pytorch: not available (/usr/bin/python3 with torch)"):format(
         name, r, rmem / 1024))
   end
end
