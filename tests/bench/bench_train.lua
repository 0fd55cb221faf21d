-- Benchmark: examples/s of a full training step (forward, cross-entropy, backward, SGD with
-- momentum) through retort's nn + optim, against PyTorch on the same model and batch in the same
-- run (tests/bench/torch_train_step.py with Debian's /usr/bin/python3, given its best thread
-- set-up per DESIGN.md §6). Prints the ratio retort / PyTorch and both processes' peak resident
-- memory (each model runs in a fresh process on both sides); asserts nothing.
--
--   build/bin/retort tests/bench/bench_train.lua [--model=all|teacher|student|functional|cnn|thin|tiny] [--batch=128]
--                                                [--iters=100] [--conv=both|im2col,dnnl,auto]
--                                                [--rounds=3]   (each side's best of that many alternating runs)
-- --conv: the CPU convolution path(s) retort runs the CNNs with (RETORT_CPU_CONV in the child), a
-- comma-separated list timed in the same alternating rounds, each against the same PyTorch; both
-- (the default) is im2col,dnnl.
-- --profile: after the timings, each side once more under perf (linux-perf): its samples' shares in the
-- GEMM/convolution libraries, the OpenMP runtime, the OS kernel and everything else.
-- --precision=bf16: retort's step also under bf16 autocast (retort.autocast: bf16 products with f32
-- accumulation, f32 weights), timed in the same rounds as retort f32 and PyTorch f32, with the ratio
-- to retort's own f32 (the fastest of its f32 variants) as well (teacher, student and the CNNs).
local retort = require "retort"
local opts = retort.recipe.options({model = "all", batch = 128, iters = 100, threads = 2, rounds = 3, child = false,
                                    conv = "both", precision = "f32", profile = false},
                                   {...})
retort.setNumThreads(opts.threads)

local cases = {
   teacher = {kind = "mlp", spec = "784,1200,1200,10", shape = {784}, torch_threads = 1},
   student = {kind = "mlp", spec = "784,800,800,10", shape = {784}, torch_threads = 1},
   cnn = {kind = "cnn", spec = "32,64,128", shape = {1, 28, 28}, torch_threads = 2},
   -- thin-deep student with batch norm: five 3x3 convs (no bias) each + BN + ReLU, max-pools after
   -- the 2nd and 4th, a linear layer; CIFAR-sized input
   thin = {kind = "thin", spec = "16,32,32,64,64", shape = {3, 32, 32}, torch_threads = 2},
   -- kernels of nothing: what is left is each framework's cost per op (dispatch, autograd, the
   -- optimizer's loop), the part that bounds a small model on a GPU (run with --batch=4)
   tiny = {kind = "mlp", spec = "8,8,8,10", shape = {8}, torch_threads = 1},
   -- the teacher written with tensor ops the way researchers write their own losses: plain tensors
   -- with requiresGrad, matmul + broadcast bias, relu, logSoftmax, gather/sum NLL, and plain SGD as
   -- p:add_(p.grad * -lr) under noGrad (twin: torch_train_step.py functional)
   functional = {kind = "functional", spec = "784,1200,1200,10", shape = {784}, torch_threads = 1},
}

local function build(case)
   local nn = retort.nn
   local sizes = {}
   for s in case.spec:gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
   if case.kind == "mlp" then return retort.models.mlp{sizes = sizes} end
   if case.kind == "thin" then
      local net, cin, hw = nn.Sequential(), case.shape[1], case.shape[2]
      for i, c in ipairs(sizes) do
         net:add("conv" .. i, nn.Conv2d(cin, c, 3, {padding = 1, bias = false})):add("bn" .. i, nn.BatchNorm2d(c))
            :add("relu" .. i, nn.ReLU())
         if i == 2 or i == 4 then net:add("pool" .. i, nn.MaxPool2d(2)); hw = hw // 2 end
         cin = c
      end
      return net:add("flatten", nn.Flatten()):add("fc", nn.Linear(cin * hw * hw, 10))
   end
   local c1, c2, fc = sizes[1], sizes[2], sizes[3]
   return nn.Sequential()
      :add("conv1", nn.Conv2d(1, c1, 3, {padding = 1})):add("relu1", nn.ReLU()):add("pool1", nn.MaxPool2d(2))
      :add("conv2", nn.Conv2d(c1, c2, 3, {padding = 1})):add("relu2", nn.ReLU()):add("pool2", nn.MaxPool2d(2))
      :add("flatten", nn.Flatten()):add("fc1", nn.Linear(c2 * 7 * 7, fc)):add("relu3", nn.ReLU())
      :add("fc2", nn.Linear(fc, 10))
end


-- examples/s of step(): a warm-up, then the best of 3 timed runs of iters steps
local function best_rate(step, iters)
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
local function retort_rate(case, iters)
   retort.manualSeed(0)
   local net = build(case)
   local opt = retort.optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
   local shape = {opts.batch, table.unpack(case.shape)}
   local x = retort.randn(shape)
   local y = retort.randint(1, 10, opts.batch)
   local function forward_loss() return retort.loss.crossEntropy(net:forward(x), y) end
   local function step()
      opt:zeroGrad()
      local loss = retort.autocast(opts.precision, forward_loss) -- "f32": autocast off
      loss:backward()
      opt:step()
   end
   return best_rate(step, iters)
end

-- the functional step: no nn, no optim; parameters are plain tensors (w is in x out, so h @ w + b)
local function functional_rate(case, iters)
   retort.manualSeed(0)
   local sizes, params, lr = {}, {}, 0.01
   for s in case.spec:gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
   for i = 1, #sizes - 1 do
      local bound = 1 / math.sqrt(sizes[i])
      params[#params + 1] = (retort.rand(sizes[i], sizes[i + 1]) * (2 * bound) - bound):requiresGrad()
      params[#params + 1] = (retort.rand(sizes[i + 1]) * (2 * bound) - bound):requiresGrad()
   end
   local x = retort.randn{opts.batch, table.unpack(case.shape)}
   local y = retort.randint(1, 10, opts.batch):view(opts.batch, 1)
   local function step()
      for _, p in ipairs(params) do p:zeroGrad() end
      local h = x
      for i = 1, #params, 2 do
         h = h:matmul(params[i]) + params[i + 1]
         if i + 1 < #params then h = h:relu() end
      end
      local loss = h:logSoftmax(2):gather(2, y):sum() * (-1 / opts.batch)
      loss:backward()
      local _ <close> = retort.noGrad()
      for _, p in ipairs(params) do p:add_(p.grad * -lr) end
   end
   return best_rate(step, iters)
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

-- PyTorch's sgemm is OpenBLAS's. Where the environment pins OpenBLAS's kernels (OPENBLAS_CORETYPE:
-- the test machine's sets Haswell, AVX2, on an AVX-512 CPU), PyTorch runs both with the pin and with
-- OpenBLAS choosing its kernels for this CPU, and keeps its better figure.
local coretypes = {""}
if (os.getenv("OPENBLAS_CORETYPE") or "") ~= "" then coretypes[2] = "-u OPENBLAS_CORETYPE " end

local function torch_cmd(case, iters, coretype)
   -- PyTorch gets its own best set-up, not the settings the retort host gave itself
   local env = "env -u OPENBLAS_THREAD_TIMEOUT -u OMP_WAIT_POLICY " .. (coretype or "") ..
      ((case.kind == "mlp" or case.kind == "functional") and "OPENBLAS_NUM_THREADS=2" or "OMP_WAIT_POLICY=PASSIVE")
   return ("%s /usr/bin/python3 tests/bench/torch_train_step.py %s %s %d %d %d"):format(
      env, case.kind, case.spec, opts.batch, iters, case.torch_threads)
end

-- --profile: cmd run once under perf (cpu-clock samples of the whole process, both threads), its
-- samples grouped by library: the GEMM/convolution kernels (OpenBLAS and oneDNN, with the code oneDNN
-- generates at run time, which perf shows as "[JIT] tid N": the same system libraries on both sides),
-- the OpenMP runtime (its spinning and barriers), the OS kernel (page faults, zeroing, yielding), and
-- the rest: the framework itself, its own kernels (pooling, norms, elementwise) with its dispatch and
-- autograd (retort's core and Lua, or libtorch and Python), libc and libm. Sampling starts
-- PROFILE_DELAY_MS in, and the steps profiled are ten times those timed, so that start-up and warm-up
-- stay out of it.
local PROFILE_DELAY_MS = 4000 -- past start-up (importing torch takes 1-2 s of CPU here) and warm-up
local function profile(cmd)
   local data = os.tmpname()
   local ok = os.execute(("perf record -q -D %d -e cpu-clock -F 1999 -o %s -- %s >/dev/null 2>&1"):format(
      PROFILE_DELAY_MS, data, cmd))
   local p = ok and io.popen(("perf report -i %s --sort dso --stdio -q --percent-limit 0 2>/dev/null"):format(data))
   local shares = {kernels = 0, openmp = 0, os = 0, rest = 0}
   for line in (p and p:read("a") or ""):gmatch("[^\n]+") do
      local pct, dso = line:match("^%s*([%d.]+)%%%s+(%S+)")
      if pct then
         local lib = dso:find("openblas") or dso:find("libblas") or dso:find("dnnl") or dso == "[JIT]"
         local group = lib and "kernels"
                       or dso:find("gomp") and "openmp" or dso:find("kernel") and "os" or "rest"
         shares[group] = shares[group] + tonumber(pct)
      end
   end
   if p then p:close() end
   os.remove(data)
   if shares.kernels + shares.openmp + shares.os + shares.rest == 0 then return "no samples (is perf installed?)" end
   return ("gemm/conv %4.1f%%  openmp %4.1f%%  os %4.1f%%  framework %4.1f%%"):format(shares.kernels,
      shares.openmp, shares.os, shares.rest)
end

local function peak_rss_kb()
   local f = io.open("/proc/self/status")
   local text = f and f:read("a") or ""
   if f then f:close() end
   return tonumber(text:match("VmHWM:%s*(%d+)"))
end

local function iters_for(case)
   return (case.kind == "mlp" or case.kind == "functional") and opts.iters or math.max(5, opts.iters // 5)
end

if opts.child then -- one model in this fresh process: print its rate and peak memory
   local case = cases[opts.model]
   local r = (case.kind == "functional" and functional_rate or retort_rate)(case, iters_for(case))
   print(("examples_per_s=%.1f peak_rss_kb=%d"):format(r, peak_rss_kb() or 0))
   return
end

local names = opts.model == "all" and {"teacher", "student", "functional", "cnn", "thin"} or {opts.model}
local paths = {}
for p in (opts.conv == "both" and "im2col,dnnl" or opts.conv):gmatch("[^,]+") do
   if p ~= "im2col" and p ~= "dnnl" and p ~= "auto" then
      error(("unknown --conv '%s' (both, or a list of im2col, dnnl, auto)"):format(p), 0)
   end
   paths[#paths + 1] = p
end
print(("training step, batch %d, %d threads: examples/s and peak resident memory"):format(opts.batch, opts.threads))
for _, name in ipairs(names) do
   local case = cases[name] or
      error(("unknown model '%s' (teacher, student, functional, cnn, thin, tiny, all)"):format(name), 0)
   local variants = (case.kind == "mlp" or case.kind == "functional") and {""} or {table.unpack(paths)}
   local n_f32 = #variants
   if opts.precision == "bf16" and case.kind ~= "functional" then variants[#variants + 1] = "bf16" end
   local cmds, r, rmem = {}, {}, {}
   for i, p in ipairs(variants) do
      local env = (p == "" or p == "bf16") and "" or "env RETORT_CPU_CONV=" .. p .. " "
      cmds[i] = ("%s%s tests/bench/bench_train.lua --model=%s --batch=%d --iters=%d --threads=%d --child%s"):format(
         env, arg[-1] or "retort", name, opts.batch, opts.iters, opts.threads,
         p == "bf16" and " --precision=bf16" or "")
   end
   -- alternate the sides `rounds` times and keep each side's best: machine noise hits all alike
   local t, tmem, tcore
   for _ = 1, opts.rounds do
      for i = 1, #variants do
         local r1, m1 = run(cmds[i])
         if r1 and (not r[i] or r1 > r[i]) then r[i], rmem[i] = r1, m1 end
      end
      for _, core in ipairs(coretypes) do
         local t1, m2 = run(torch_cmd(case, iters_for(case), core) .. " 2>/dev/null")
         if t1 and (not t or t1 > t) then t, tmem, tcore = t1, m2, core end
      end
   end
   for i, p in ipairs(variants) do
      local label = p == "" and name or name .. "/" .. p
      if not r[i] then
         print(("  %-13s retort run failed (%s)"):format(label, cmds[i]))
      elseif t then
         print(("  %-13s retort %7.0f ex/s %5.0f MB   pytorch %7.0f ex/s %5.0f MB   speed %.2fx  memory %.2fx"):format(
            label, r[i], rmem[i] / 1024, t, tmem / 1024, r[i] / t, rmem[i] / tmem))
      else
         print(("  %-13s retort %7.0f ex/s %5.0f MB   pytorch: not available (/usr/bin/python3 with torch)"):format(
            label, r[i], rmem[i] / 1024))
      end
      if opts.profile then
         local long = cmds[i]:gsub("%-%-iters=%d+", "--iters=" .. 10 * opts.iters)
         print(("  %-13s retort  %s"):format("", profile(long)))
      end
      if p == "bf16" and r[i] then -- against retort's own best f32 variant of this run
         local best = 0
         for k = 1, n_f32 do best = math.max(best, r[k] or 0) end
         if best > 0 then print(("  %-13s bf16 / retort f32 %.2fx"):format("", r[i] / best)) end
      end
   end
   if t and #coretypes > 1 then
      local how = tcore == "" and "with OPENBLAS_CORETYPE=" .. os.getenv("OPENBLAS_CORETYPE")
                  or "choosing its own kernels (OPENBLAS_CORETYPE unset)"
      print(("  %-13s pytorch's best: OpenBLAS %s"):format("", how))
   end
   if opts.profile and t then
      print(("  %-13s pytorch %s"):format("", profile(torch_cmd(case, 10 * iters_for(case), tcore))))
   end
end
