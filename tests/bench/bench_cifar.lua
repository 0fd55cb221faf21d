-- Benchmark: decode 50,000 CIFAR 32x32 RGB images (a generated CIFAR-100 train.bin of the real size,
-- 153.7 MB) into a normalised f32 tensor (N, 3, 32, 32) with retort's reader (core/src/cifar.c) and
-- the Loader's normalisation (x * (1/255/std) + (-mean/std), per channel), against numpy doing the
-- same in the same run: np.fromfile, reshape, slicing, astype(float32) / 255, (x - mean) / std.
-- Three rows: decoding alone (u8 images + labels; numpy: fromfile, a contiguous copy of the pixel
-- columns), decoding + normalising the whole array, and the same through the Loader in batches of 500
-- (what a training epoch's input pipeline does; each batch reuses the memory the last one freed).
-- Each side runs --repeat times (best time kept); the file is read once before timing, so both read
-- from the page cache. Prints seconds and the numpy / retort ratio (> 1: retort is faster). Checks
-- that the two results agree, asserts nothing about time. The whole-array row is dominated by page
-- faults on the 614 MB result: numpy asks the kernel for transparent huge pages (madvise), retort's
-- allocator does not.
--
--   build/bin/retort tests/bench/bench_cifar.lua [--n=50000] [--threads=2] [--repeat=3] [--dir=/tmp/...]
local retort = require "retort"
local opts = retort.recipe.options({n = 50000, threads = 2, ["repeat"] = 3, dir = ""}, {...}, {
   n = "images in the generated train.bin",
   threads = "retort's threads (numpy's own element loops are single-threaded)",
   ["repeat"] = "runs of each side (the best is kept)",
   dir = "folder for the generated file (default: a new one under /tmp, removed at the end)",
})
retort.setNumThreads(opts.threads)

local dir = opts.dir ~= "" and opts.dir or os.tmpname() .. ".d"
assert(retort.core.mkdir(dir))
local path = dir .. "/train.bin"

local function sh(cmd)
   local p = assert(io.popen(cmd, "r"))
   local out = p:read("a")
   local ok = p:close()
   if not ok then error("command failed: " .. cmd .. "\n" .. out, 0) end
   return out
end

if sh("/usr/bin/python3 -c 'import numpy' 2>&1; echo $?"):match("(%d+)%s*$") ~= "0" then
   error("bench_cifar needs numpy for /usr/bin/python3 (Debian package python3-numpy)", 0)
end

-- the generated file: random labels (coarse < 20, fine < 100) and pixels
local GEN = [['
import numpy as np
r = np.random.default_rng(1); n = %d
lab = np.stack([r.integers(0, 20, n), r.integers(0, 100, n)], 1).astype(np.uint8)
np.concatenate([lab, r.integers(0, 256, (n, 3072), dtype=np.uint8)], 1).tofile("%s")
']]
sh("/usr/bin/python3 -c " .. GEN:format(opts.n, path))

local mean, std = retort.data.cifar100Mean, retort.data.cifar100Std

-- numpy, in a child process that times itself (after one untimed read to warm the page cache)
local NUMPY = [['
import numpy as np, time, sys
path, reps = sys.argv[1], int(sys.argv[2])
mean = np.array(%s, np.float32).reshape(1, 3, 1, 1); std = np.array(%s, np.float32).reshape(1, 3, 1, 1)
def decode():
    a = np.fromfile(path, np.uint8).reshape(-1, 3074)
    return np.ascontiguousarray(a[:, 2:]).reshape(-1, 3, 32, 32), a[:, 1].astype(np.int64)
def run():
    a = np.fromfile(path, np.uint8).reshape(-1, 3074)
    y = a[:, 1].astype(np.int64)
    x = a[:, 2:].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    return (x - mean) / std, y
def best_of(fn):
    fn()
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter(); r = fn(); best = min(best, time.perf_counter() - t); del r
    return best
d = best_of(decode)
b = best_of(run)
x, y = run()
print(b, float(x.sum(dtype=np.float64)), float(x[17, 2, 5, 9]), int(y.sum()), d)
']]
local vec = function(v) return "[" .. table.concat(v, ", ") .. "]" end
local out = sh(("/usr/bin/python3 -c %s %s %d"):format(NUMPY:format(vec(mean), vec(std)), path, opts["repeat"]))
local np_s, np_sum, np_one, np_ysum, np_dec = out:match("^(%S+) (%S+) (%S+) (%S+) (%S+)")
np_s, np_sum, np_one, np_ysum, np_dec = tonumber(np_s), tonumber(np_sum), tonumber(np_one), tonumber(np_ysum),
   tonumber(np_dec)

-- retort: the reader, then the Loader's normalisation (one multiply and one add per element)
local a = retort.tensor(std):view(1, 3, 1, 1):pow(-1) * (1 / 255)
local b = -(retort.tensor(mean):view(1, 3, 1, 1) / retort.tensor(std):view(1, 3, 1, 1))
local function decode()
   local ds = retort.data.cifar{root = dir, variant = 100}
   return ds.x, ds.y
end
local function run()
   local x, y = decode()
   return x:float() * a + b, y
end
local function best_of(fn)
   fn()
   local best = math.huge
   for _ = 1, opts["repeat"] do
      collectgarbage()
      local t0 = retort.clock()
      fn()
      best = math.min(best, retort.clock() - t0)
   end
   collectgarbage()
   return best
end
-- what a training epoch pays: the Loader's batches (gather, to f32, normalise), batch by batch
local loaded = retort.data.cifar{root = dir, variant = 100}
local function batches()
   local loader = retort.data.Loader(loaded, {batchSize = 500, normalize = {mean = mean, std = std}})
   for _ in loader:batches() do end
end
local dec = best_of(decode)
local best = best_of(run)
local inbatches = best_of(batches)
loaded = nil
local x, y = run()

local sum = x:double():sum():item()
local one = x:get(18, 3, 6, 10)
local ysum = (y - 1):sum():item() -- 0-based as numpy's
assert(math.abs(one - np_one) < 1e-5, ("results differ: x[17,2,5,9] %g vs numpy %g"):format(one, np_one))
assert(ysum == np_ysum, "labels differ")

print(("CIFAR decode + normalise: %d images -> f32 (N,3,32,32), %d threads, best of %d"):format(x:size(1),
   opts.threads, opts["repeat"]))
local n = x:size(1)
print(("  decode to u8 (N,3,32,32) + labels:  retort %6.3f s  numpy %6.3f s  numpy / retort %5.2fx"):format(dec,
   np_dec, np_dec / dec))
print(("  decode + normalise to f32:          retort %6.3f s  numpy %6.3f s  numpy / retort %5.2fx"):format(best,
   np_s, np_s / best))
print(("  (%.0f vs %.0f images/s; sums of the f32 results agree: %.7g vs %.7g)"):format(n / best, n / np_s, sum,
   np_sum))
print(("  the same through the Loader in batches of 500 (an epoch's input pipeline): retort %6.3f s, "
       .. "numpy / retort %5.2fx"):format(inbatches, np_s / inbatches))
if opts.dir == "" then os.execute("rm -rf '" .. dir .. "'") end
