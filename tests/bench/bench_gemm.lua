-- Benchmark: the CPU's matrix-product peak, the bound of every GEMM-bound training step. One square
-- product C = A B (--n, default 2048) on --threads threads through each of retort's CPU paths: f32
-- on oneDNN's matmul and on OpenBLAS's sgemm (RETORT_CPU_GEMM), the latter also with OpenBLAS
-- choosing its own kernels when the environment pins them (OPENBLAS_CORETYPE), and bf16 under
-- autocast (oneDNN, f32 accumulation); against PyTorch's torch.matmul on the same size in the same
-- run (Debian's /usr/bin/python3, OpenBLAS on OPENBLAS_NUM_THREADS=--threads). Best of --rounds
-- timings of --iters products each; GFLOP/s = 2 n^3 / seconds.
local retort = require "retort"

local opts = retort.recipe.options({n = 2048, threads = 2, iters = 5, rounds = 5, child = "",
                                    python = "/usr/bin/python3"}, {...})
retort.setNumThreads(opts.threads)
local flop = 2 * opts.n ^ 3

if opts.child ~= "" then -- one path in this fresh process: print its rate
   local a, b = retort.randn{opts.n, opts.n}, retort.randn{opts.n, opts.n}
   local function product()
      if opts.child == "bf16" then return retort.autocast("bf16", function() return a:matmul(b) end) end
      return a:matmul(b)
   end
   product()
   local best = math.huge
   for _ = 1, opts.rounds do
      local t0 = retort.clock()
      for _ = 1, opts.iters do product() end
      best = math.min(best, (retort.clock() - t0) / opts.iters)
   end
   print(("gflops=%.1f"):format(flop / best / 1e9))
   return
end

local function run(cmd)
   local p = io.popen(cmd .. " 2>/dev/null")
   local out = p and p:read("a") or ""
   if p then p:close() end
   return tonumber(out:match("gflops=([%d%.]+)"))
end

local pinned = os.getenv("OPENBLAS_CORETYPE") or ""
local self = ("%s tests/bench/bench_gemm.lua --n=%d --threads=%d --iters=%d --rounds=%d"):format(
   arg[-1] or "retort", opts.n, opts.threads, opts.iters, opts.rounds)
local paths = {
   {"f32, oneDNN", "env RETORT_CPU_GEMM=dnnl " .. self .. " --child=f32"},
   {"f32, OpenBLAS" .. (pinned ~= "" and " (OPENBLAS_CORETYPE=" .. pinned .. ")" or ""),
    "env RETORT_CPU_GEMM=openblas " .. self .. " --child=f32"},
}
if pinned ~= "" then
   paths[#paths + 1] = {"f32, OpenBLAS (its own kernels)", "env -u OPENBLAS_CORETYPE RETORT_CPU_GEMM=openblas " ..
      self .. " --child=f32"}
end
local info = retort.bf16Info()
local unit, isa = info.available and info.unit, info.isa
if unit then paths[#paths + 1] = {"bf16, oneDNN (" .. unit .. ")", self .. " --child=bf16"} end

local torch = ([[%s -c "
import time, torch
torch.set_num_threads(%d)
n = %d
a, b = torch.randn(n, n), torch.randn(n, n)
torch.matmul(a, b)
best = 1e9
for _ in range(%d):
    t0 = time.perf_counter()
    for _ in range(%d): torch.matmul(a, b)
    best = min(best, (time.perf_counter() - t0) / %d)
print('gflops=%%.1f' %% (2 * n ** 3 / best / 1e9))
"]]):format(opts.python, opts.threads, opts.n, opts.rounds, opts.iters, opts.iters)
-- PyTorch with the environment's OpenBLAS set-up and, where it pins the kernels, without the pin
local torch_envs = {("env -u OMP_WAIT_POLICY OPENBLAS_NUM_THREADS=%d "):format(opts.threads)}
if pinned ~= "" then torch_envs[2] = torch_envs[1]:gsub("^env ", "env -u OPENBLAS_CORETYPE ") end

print(("square f32 product %dx%dx%d, %d threads, best of %d: GFLOP/s (bf16 unit: %s, oneDNN ISA %s)"):format(
   opts.n, opts.n, opts.n, opts.threads, opts.rounds, unit or "none", isa or "?"))
local t
for _, env in ipairs(torch_envs) do
   local t1 = run(env .. torch)
   if t1 and (not t or t1 > t) then t = t1 end
end
for _, p in ipairs(paths) do
   local r = run(p[2])
   print(("  %-42s %7s%s"):format(p[1], r and ("%.0f"):format(r) or "failed",
      (r and t) and ("   / pytorch %.2fx"):format(r / t) or ""))
end
print(("  %-42s %7s"):format("pytorch torch.matmul (best OpenBLAS set-up)",
   t and ("%.0f"):format(t) or "not available"))
