-- Benchmark: decode a folder of 10,000 PNGs and one of 10,000 JPEGs (32x32 RGB, 10 classes; numpy
-- noise over gradients and blocks, written by PIL) into a (N, 3, 32, 32) u8 tensor with
-- retort.data.imageFolder (libpng / libjpeg-turbo on the OpenMP team, --threads threads), against
-- PIL + numpy in the same run: np.asarray(Image.open(p).convert("RGB")) into a preallocated
-- (N, 32, 32, 3) array in one process, and the same split over a multiprocessing Pool(2) (the pool
-- started before timing; each worker fills and returns blocks of 500 images). Both sides read the
-- same files from the page cache (a warm-up pass runs first), each variant runs --repeat times and
-- the best is kept. Also timed: retort on 1 thread, the folder scan (imageFolder{} itself), the
-- skipBad probe (one full decoding pass) and a Loader epoch at batch 256 (shuffled, crop + flip,
-- normalised). Prints seconds, images/s and PIL / retort ratios (> 1: retort is faster), and checks
-- that both sides decoded the same pixels. Asserts nothing about time. The folders are kept under
-- --dir and reused by later runs.
--
--   build/bin/retort tests/bench/bench_image_folder.lua [--n=10000] [--threads=2] [--repeat=3]
--                                                      [--dir=/tmp/retort_bench_images]
local retort = require "retort"
local core = retort.core
local opts = retort.recipe.options({n = 10000, threads = 2, ["repeat"] = 3, dir = "/tmp/retort_bench_images"}, {...},
   {n = "images per folder", threads = "retort's threads", ["repeat"] = "runs of each variant (the best is kept)",
    dir = "where the two folders are written (reused when complete)"})
retort.setNumThreads(opts.threads)

local function sh(cmd)
   local p = assert(io.popen(cmd, "r"))
   local out = p:read("a")
   local ok = p:close()
   if not ok then error("command failed: " .. cmd .. "\n" .. out, 0) end
   return out
end

if sh("/usr/bin/python3 -c 'import numpy, PIL' 2>&1; echo $?"):match("(%d+)%s*$") ~= "0" then
   error("bench_image_folder needs numpy and PIL for /usr/bin/python3 (Debian packages python3-numpy, python3-pil)", 0)
end

local function write_script(text)
   local path = os.tmpname() .. ".py"
   local f = assert(io.open(path, "w"))
   f:write(text)
   f:close()
   return path
end

-- the folders: <dir>/<fmt>-<n>/c<k>/<i>.<ext>, written once (a "complete" file marks a finished folder)
local MAKE = [==[
import os, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:32, 0:32]
for fmt, ext in (("png", "png"), ("jpeg", "jpg")):
    d = os.path.join(root, "%s-%d" % (fmt, n))
    if os.path.exists(os.path.join(d, "complete")):
        continue
    for i in range(n):
        k = i % 10
        c = os.path.join(d, "c%d" % k)
        os.makedirs(c, exist_ok=True)
        base = np.stack([xx * (k + 1) * 8 % 256, yy * 8, (xx // 8 + yy // 8) * 40 % 256], -1)
        img = np.clip(base + rng.integers(-30, 31, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(c, "%05d.%s" % (i, ext)), **({"quality": 90} if ext == "jpg" else {}))
    open(os.path.join(d, "complete"), "w").close()
]==]

-- PIL + numpy over the listed files: one process, then a Pool(2); prints "one <s>" and "pool <s>"
-- and writes the pixels (N, 32, 32, 3) as raw bytes to check them against retort's
local PIL_SIDE = [==[
import sys, time
import numpy as np
from multiprocessing import Pool
from PIL import Image
paths = open(sys.argv[1]).read().split("\n")
reps, out = int(sys.argv[2]), sys.argv[3]
n = len(paths)

def load(p):
    return np.asarray(Image.open(p).convert("RGB"))

def load_block(ps):
    a = np.empty((len(ps), 32, 32, 3), np.uint8)
    for i, p in enumerate(ps):
        a[i] = load(p)
    return a

if __name__ == "__main__":
    for p in paths:  # warm-up: the page cache, PIL's plugins
        load(p)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a = np.empty((n, 32, 32, 3), np.uint8)
        for i, p in enumerate(paths):
            a[i] = load(p)
        best = min(best, time.perf_counter() - t)
    print("one", best)
    a.tofile(out)
    blocks = [paths[i:i + 500] for i in range(0, n, 500)]
    with Pool(2) as pool:
        pool.map(load_block, blocks[:2])  # workers started and warm
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            b = np.empty((n, 32, 32, 3), np.uint8)
            pos = 0
            for part in pool.map(load_block, blocks):
                b[pos:pos + len(part)] = part
                pos += len(part)
            best = min(best, time.perf_counter() - t)
    assert (a == b).all()
    print("pool", best)
]==]

local make = write_script(MAKE)
local t0 = retort.clock()
sh(("/usr/bin/python3 %s %s %d"):format(make, opts.dir, opts.n))
os.remove(make)
local made_s = retort.clock() - t0
local pil = write_script(PIL_SIDE)

local function best_of(fn)
   local best = math.huge
   for _ = 1, opts["repeat"] do
      local s = retort.clock()
      fn()
      best = math.min(best, retort.clock() - s)
   end
   return best
end

local cpu = sh("lscpu | sed -n 's/^Model name: *//p'"):gsub("%s+$", "")
print(("image folders: %d 32x32 RGB files each, %s, retort on %d threads (%s)"):format(opts.n, opts.dir, opts.threads,
   cpu))
if made_s > 1 then print(("  (folders written in %.1f s)"):format(made_s)) end

for _, fmt in ipairs{"png", "jpeg"} do
   local root = ("%s/%s-%d"):format(opts.dir, fmt, opts.n)
   local s = retort.clock()
   local ds = retort.data.imageFolder{root = root, size = {32, 32}}
   local scan_s = retort.clock() - s
   local n = ds:size()
   local all = retort.arange(1, n, "i64")
   ds:read(all) -- warm-up: page cache
   local x
   local two = best_of(function() x = ds:read(all) end)
   retort.setNumThreads(1)
   local one = best_of(function() ds:read(all) end)
   retort.setNumThreads(opts.threads)
   s = retort.clock()
   retort.data.imageFolder{root = root, size = {32, 32}, skipBad = true}
   local probe_s = retort.clock() - s
   local loader = retort.data.Loader(ds, {batchSize = 256, shuffle = true, augment = {crop = 4, flip = true},
                                          normalize = {mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25}}})
   local epoch = best_of(function() for _ in loader:batches() do end end)

   -- PIL on the same files, in the same order
   local list, raw = os.tmpname(), os.tmpname()
   local f = assert(io.open(list, "w"))
   f:write(table.concat(ds.paths, "\n"))
   f:close()
   local out = sh(("/usr/bin/python3 %s %s %d %s"):format(pil, list, opts["repeat"], raw))
   local pil_one = tonumber(out:match("one ([%d.e-]+)"))
   local pil_pool = tonumber(out:match("pool ([%d.e-]+)"))
   local bytes = assert(io.open(raw, "rb")):read("a")
   os.remove(list)
   os.remove(raw)
   local mine = x:permute(1, 3, 4, 2):contiguous()
   local same = #bytes == mine:numel()
   if same then
      -- compare through a tensor built from PIL's bytes (IDX-wrapped so core.readIdx reads them)
      local hdr = string.pack(">BBBBI4I4I4I4", 0, 0, 8, 4, n, 32, 32, 3)
      local tmp = os.tmpname()
      local g = assert(io.open(tmp, "wb"))
      g:write(hdr, bytes)
      g:close()
      local ref = core.readIdx(tmp)
      os.remove(tmp)
      same = (ref:long() - mine:long()):abs():max():item() == 0
   end

   print(("%s (%d files):"):format(fmt:upper(), n))
   print(("  retort, %d threads      %7.3f s  %8.0f img/s"):format(opts.threads, two, n / two))
   print(("  retort, 1 thread       %7.3f s  %8.0f img/s"):format(one, n / one))
   print(("  PIL + numpy            %7.3f s  %8.0f img/s   PIL / retort %d threads: %5.2fx, / retort 1 thread: %5.2fx")
      :format(pil_one, n / pil_one, opts.threads, pil_one / two, pil_one / one))
   print(("  PIL, Pool(2)           %7.3f s  %8.0f img/s   PIL Pool(2) / retort %d threads: %5.2fx")
      :format(pil_pool, n / pil_pool, opts.threads, pil_pool / two))
   print(("  same pixels as PIL: %s"):format(same and "yes (max |difference| 0)" or "NO"))
   print(("  folder scan %.3f s; skipBad probe (scan + one decoding pass) %.3f s; Loader epoch (batch 256, crop+flip, "
      .. "normalised) %.3f s"):format(scan_s, probe_s, epoch))
end
os.remove(pil)
