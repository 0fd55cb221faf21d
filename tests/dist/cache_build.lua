-- A soft-target cache built by every rank (each computing its share of the blocks into the parts folder,
-- rank 0 assembling them); the spec compares the file with a single process's.
--   mpirun -np N retort tests/dist/cache_build.lua --path=cache.h5
-- 300 examples in blocks of 64 rows (5 blocks: 2, 2, 1 over 3 ranks), batches of 16, the teacher's
-- logits and its features at relu1.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local retort = require "retort"
local common = require "common"

local o = common.options({path = ""}, {...})
common.check(o.path ~= "", "--path is needed")
retort.manualSeed(11)
local x = retort.randn(300, 12)
local y = retort.randint(1, 5, {300}):long()
local loader = retort.data.Loader(retort.data.tensorDataset(x, y), {batchSize = 32})
retort.manualSeed(2)
local teacher = retort.models.mlp{sizes = {12, 40, 5}}
local c = retort.cache.build{teacher = teacher, data = loader, path = o.path, blockRows = 64, batchSize = 16,
                             taps = {"relu1"}, quiet = true}
common.check(c.complete and c.numExamples == 300, "the cache is not complete: %s", tostring(c))
