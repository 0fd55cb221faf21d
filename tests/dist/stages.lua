-- Distillation runs under N ranks (batch B/N each) against one process (batch B): the spec compares the
-- --out files. Small CNNs on 8x8 generated images; no BatchNorm or dropout, so the runs agree to rounding.
--   mpirun -np N retort tests/dist/stages.lua --stage=kd|fitnet|cached --batch=16 --dir=D --out=r.lua
--   kd       the teacher trained (1 epoch), then the student distilled from it (KD, T = 4; 2 epochs)
--   fitnet   FitNets' two stages: the hint stage (student up to conv2 + the regressor, 1 epoch), then KD
--            of the whole student (2 epochs)
--   cached   the teacher's logits cached (retort.cache.build, every rank building its share of the blocks
--            under D), then the student distilled from the cache (2 epochs)
-- Written (rank 0): each fit's last metrics row and the student's final parameters; checked here: the
-- parameters are bit-identical on every rank.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local retort = require "retort"
local common = require "common"
local dist = retort.dist
local distill = retort.distill

local o = common.options({stage = "kd", batch = 16, dir = "", out = ""}, {...})
local R = dist.size()
common.check(o.batch % R == 0, "the global batch %d must divide by %d ranks", o.batch, R)

local train_set = retort.data.randomImages{n = 96, classes = 4, height = 8, width = 8, seed = 2}
local test_set = retort.data.randomImages{n = 40, classes = 4, height = 8, width = 8, seed = 3}
local function loader() return retort.data.Loader(train_set, {batchSize = o.batch // R, shuffle = true, seed = 1}) end
local test = retort.data.Loader(test_set, {batchSize = 10})

local function fit(model, params, epochs)
   return retort.train.fit{model = model, optimizer = retort.optim.SGD(params, {lr = 0.05, momentum = 0.9}),
                           train = loader(), test = test, epochs = epochs, log = common.null}.last
end

retort.manualSeed(5)
local teacher = retort.models.cnn{size = 8, channels = {6, 8}, hidden = 16, classes = 4}
local student = retort.models.cnn{size = 8, channels = {4, 8}, hidden = 12, classes = 4}
local rows = {teacher = fit(teacher, teacher:parameters(), 1)}

if o.stage == "kd" then
   local d = distill.Distiller{teacher = teacher, student = student, T = 4, alpha = 0.9, gamma = 0.1}
   rows.student = fit(d, d:parameters(), 2)
elseif o.stage == "fitnet" then
   local d = distill.Distiller{teacher = teacher, student = student, T = 4, alpha = 0.9, gamma = 0.1,
                               pairs = {{hint = "conv2", guided = "conv2", loss = "fitnet", stage = "init"}},
                               sample = train_set.x:narrow(1, 1, 4):float()}
   d:setStage("init")
   rows.hint = fit(d, d:initParameters(), 1)
   d:setStage("main")
   rows.student = fit(d, d:parameters(), 2)
elseif o.stage == "cached" then
   common.check(o.dir ~= "", "--dir is needed for the cache")
   local c = retort.cache.build{teacher = teacher, data = loader(), path = o.dir .. "/teacher.cache.h5",
                                blockRows = 20, batchSize = 8, quiet = true}
   local d = distill.Distiller{teacher = c, student = student, T = 4, alpha = 0.9, gamma = 0.1}
   rows.student = fit(d, d:parameters(), 2)
else
   error("--stage must be kd, fitnet or cached")
end

local flat = common.flat(student)
common.check(common.identicalOnAllRanks(flat), "the student's parameters differ between the ranks")
common.write(o.out, {rows = rows, params = flat:totable(), ranks = R})
