-- Benchmark: ns per element of the element-wise shapes a training step and an input pipeline hit
-- (a bias added across a batch, a per-row scale, a same-shape add, relu, a bias gradient summed over
-- the batch, and a whole-array per-channel normalise of u8 images to f32), against numpy doing the
-- same in the same run (/usr/bin/python3, one process started once; numpy's loops are
-- single-threaded, so the rows are timed on --threads retort threads and on 1). Each case runs
-- --repeat times on each side and keeps the best. Prints ns/element and numpy / retort (> 1: retort
-- is faster). Checks that the normalised arrays agree; asserts nothing about time.
--
--   build/bin/retort tests/bench/bench_elementwise.lua [--threads=2] [--repeat=20] [--images=10000]
local retort = require "retort"
local opts = retort.recipe.options({threads = 2, ["repeat"] = 20, images = 10000}, {...}, {
   threads = "retort's threads for the first column (the second is always 1)",
   ["repeat"] = "runs of each case on each side (the best is kept)",
   images = "(N, 3, 32, 32) u8 images in the normalise case",
})

-- each result is closed at once (as numpy's refcount frees it), so its memory goes back to the
-- allocator's cache for the next run instead of waiting for a garbage collection
local function best_of(reps, fn)
   do local _ <close> = fn() end
   local best = math.huge
   for _ = 1, reps do
      local t0 = retort.clock()
      local _ <close> = fn()
      best = math.min(best, retort.clock() - t0)
   end
   return best
end

retort.manualSeed(1)
local n_img = opts.images
local cases = {
   {"bias add (128,1200) + (1200)", 128 * 1200, function()
      local a, b = retort.randn(128, 1200), retort.randn(1200)
      return function() return a + b end
   end},
   {"row scale (128,1200) * (128,1)", 128 * 1200, function()
      local a, b = retort.randn(128, 1200), retort.randn(128, 1)
      return function() return a * b end
   end},
   {"same-shape add (1200,1200)", 1200 * 1200, function()
      local a, b = retort.randn(1200, 1200), retort.randn(1200, 1200)
      return function() return a + b end
   end},
   {"relu (128,1200)", 128 * 1200, function()
      local a = retort.randn(128, 1200)
      return function() return a:relu() end
   end},
   {"bias grad: sum(1) of (128,1200)", 128 * 1200, function()
      local a = retort.randn(128, 1200)
      return function() return a:sum(1) end
   end},
   {("normalise u8 (%d,3,32,32) -> f32"):format(n_img), n_img * 3 * 32 * 32, function(dir)
      local x = retort.core.readNpy(dir .. "/x.npy") -- numpy's images, so both sides sum the same data
      local a = retort.tensor{{{1 / 255 / 0.2673}}, {{1 / 255 / 0.2564}}, {{1 / 255 / 0.2762}}}
      local b = retort.tensor{{{-0.5071 / 0.2673}}, {{-0.4865 / 0.2564}}, {{-0.4409 / 0.2762}}}
      return function() return x:float() * a + b end, x
   end},
}

-- numpy's side: the same shapes and formulas; it writes the u8 images retort then reads (.npy)
local dir = os.tmpname() .. ".d"
assert(retort.core.mkdir(dir))
local py = ([[
import time, numpy as np
def best(f, reps):
    f(); b = 1e9
    for _ in range(reps):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b
r = np.random.default_rng(1); f32 = np.float32
a, b = r.standard_normal((128, 1200), f32), r.standard_normal(1200, f32)
c = r.standard_normal((128, 1), f32)
s, t = r.standard_normal((1200, 1200), f32), r.standard_normal((1200, 1200), f32)
x = r.integers(0, 256, (%d, 3, 32, 32), dtype=np.uint8)
np.save("%s/x.npy", x)
na = (1 / 255 / np.array([0.2673, 0.2564, 0.2762], f32)).astype(f32).reshape(3, 1, 1)
nb = (-np.array([0.5071, 0.4865, 0.4409], f32) / np.array([0.2673, 0.2564, 0.2762], f32)).astype(f32).reshape(3, 1, 1)
R = %d
for f in (lambda: a + b, lambda: a * c, lambda: s + t, lambda: np.maximum(a, 0), lambda: a.sum(0),
          lambda: x.astype(f32) * na + nb):
    print(best(f, R))
y = x.astype(f32) * na + nb
print(float(y.astype(np.float64).sum()))
]]):format(n_img, dir, opts["repeat"])
local pyfile = dir .. "/bench.py"
local f = assert(io.open(pyfile, "w"))
f:write(py)
f:close()
local p = assert(io.popen("/usr/bin/python3 " .. pyfile .. " 2>&1"))
local out = p:read("a")
p:close()
local np_t = {}
for v in out:gmatch("[^\n]+") do np_t[#np_t + 1] = tonumber(v) end
if #np_t ~= #cases + 1 then error("numpy side failed (needs python3-numpy):\n" .. out, 0) end

local run_case = {}
for i, c in ipairs(cases) do run_case[i] = c[3](dir) end
local rt_t = {}
for i = 1, #cases do
   rt_t[i] = {}
   for k, th in ipairs{opts.threads, 1} do
      retort.setNumThreads(th)
      rt_t[i][k] = best_of(opts["repeat"], run_case[i])
   end
end
retort.setNumThreads(opts.threads)
local sum = run_case[#cases]():double():sum():item()
assert(math.abs(sum - np_t[#cases + 1]) <= 1e-5 * math.abs(np_t[#cases + 1]) + 1e-2,
   ("normalised arrays differ: sum %.9g vs numpy %.9g"):format(sum, np_t[#cases + 1]))
os.execute("rm -rf '" .. dir .. "'")

print(("element-wise kernels: ns/element, best of %d; numpy / retort (> 1: retort faster)"):format(opts["repeat"]))
print(("  %-40s %16s %16s %8s"):format("case", ("retort %dT"):format(opts.threads), "retort 1T", "numpy"))
for i, c in ipairs(cases) do
   local ns = function(t) return t / c[2] * 1e9 end
   print(("  %-40s %7.3f (%5.2fx) %7.3f (%5.2fx) %8.3f"):format(c[1], ns(rt_t[i][1]), np_t[i] / rt_t[i][1],
      ns(rt_t[i][2]), np_t[i] / rt_t[i][2], ns(np_t[i])))
end
