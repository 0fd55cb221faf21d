-- Benchmark: one KD epoch on Fashion-MNIST (784-800-800-10 student, CNN teacher of
-- recipes/train_teacher.lua) with the live teacher against the same epoch reading the teacher's
-- logits from a soft-target cache, plus the student trained alone (the floor a cache can reach).
-- Prints seconds, the live / cached ratio, the share of the cached epoch spent reading the cache,
-- and the one-time cost of building it. Same process, same loaders, same thread count; asserts
-- nothing. Teacher weights are random: the timings do not depend on them.
--
--   build/bin/retort tests/bench/bench_cache.lua [--limit=0 (all 60000)] [--threads=2] [--batch=128]
local retort = require "retort"
local opts = retort.recipe.options({limit = 0, threads = 2, batch = 128, dir = ""}, {...})
retort.setNumThreads(opts.threads)

local function loader()
   return (retort.data.fashionMnistLoaders{batchSize = opts.batch, limit = opts.limit})
end
local dir = opts.dir ~= "" and opts.dir or os.tmpname() .. ".d"
assert(retort.core.mkdir(dir))
local sink = io.open("/dev/null", "w")

local function epoch(teacher)
   retort.manualSeed(1)
   local student = retort.models.mlp{sizes = {784, 800, 800, 10}}
   local model = teacher
                 and retort.distill.Distiller{teacher = teacher, student = student, T = 4, alpha = 0.9, gamma = 0.1}
                 or student
   local opt = retort.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
   local t0 = retort.clock()
   retort.train.fit{model = model, optimizer = opt, train = loader(), epochs = 1, log = sink}
   return retort.clock() - t0
end

retort.manualSeed(7)
local teacher = retort.models.cnn{dropout = 0.3}
local path = dir .. "/bench.cache.h5"
os.remove(path)
local t0 = retort.clock()
local cache = retort.cache.build{teacher = teacher, data = loader(), path = path, quiet = true}
local build_s = retort.clock() - t0

-- time spent reading the cache: wrap its lookup
local read_s = 0
local lookup = cache.teacherLogits
cache.teacherLogits = function(self, idx, e)
   local s = retort.clock()
   local out = lookup(self, idx, e)
   read_s = read_s + retort.clock() - s
   return out
end

local n = loader().n
epoch(nil) -- warm-up (page cache, allocator)
local alone = epoch(nil)
local live = epoch(teacher)
read_s = 0
local cached = epoch(cache)

print(("KD epoch, %d examples, batch %d, %d threads (student 784-800-800-10, CNN teacher)"):format(
   n, opts.batch, opts.threads))
print(("  student alone (CE)       %7.2f s  %7.0f ex/s"):format(alone, n / alone))
print(("  KD, live teacher         %7.2f s  %7.0f ex/s"):format(live, n / live))
print(("  KD, cached logits        %7.2f s  %7.0f ex/s"):format(cached, n / cached))
print(("  live / cached            %7.2fx   (target >= 2x)"):format(live / cached))
print(("  cache reads              %7.3f s  = %.1f%% of the cached epoch (target < 5%%)"):format(
   read_s, 100 * read_s / cached))
print(("  building the cache once  %7.2f s  (%.1f live KD epochs' worth of time)"):format(build_s, build_s / live))
os.remove(path)
if opts.dir == "" then os.remove(dir) end
