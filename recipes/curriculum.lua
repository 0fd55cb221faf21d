-- Curriculum vs none: the same student (784-800-800-10 MLP, same seed and initial weights) distilled
-- from the teacher's cached soft targets (--teacherModel=cnn, default, or mlp) (KD, T = 4, alpha = 0.5)
-- with each schedule:
--   none       every example, every epoch
--   easy       easiest first (difficulty = --score of the teacher, read from the cache), pacing
--              --pacing from --start to all examples over --paceEpochs epochs
--   anti       the same pacing, hardest first (anti-curriculum)
--   selfpaced  the same pacing, ranked before each epoch by the student's own loss
--   weights    every example; those outside the pacing fraction weighted --minWeight
-- and prints a table (schedule, test accuracy last and best, time). The cache is built on first use.
--
--   retort run recipes/curriculum.lua --teacher=runs/cnn-teacher/best.h5 --epochs=10
--   retort run recipes/curriculum.lua --teacher=... --schedules=none,easy --score=margin --pacing=linear
--   retort run recipes/curriculum.lua --teacher=... --device=cuda     -- on the GPU ("auto": there when there is one)
local retort = require "retort"
local curriculum = retort.curriculum

local opts = retort.recipe.options({
   teacher = "", teacherModel = "cnn", cache = "", epochs = 10, batch = 128, lr = 0.05, momentum = 0.9, weightDecay = 0,
   T = 4, alpha = 0.5,
   score = "loss", pacing = "root", start = 0.3, paceEpochs = 0, minWeight = 0.25,
   schedules = "none,easy,anti,selfpaced,weights", seed = 1, threads = 2, dir = "runs/curriculum", limit = 0,
   device = "cpu", precision = "f32", resume = false, overwrite = false,
}, {...}, {
   teacher = "teacher checkpoint (required; recipes/train_teacher.lua trains one)",
   teacherModel = "teacher architecture: cnn (as recipes/train_teacher.lua) or mlp (784-1200-1200-10)",
   cache = "soft-target cache file, built if missing (empty: <dir>/teacher.cache.h5)",
   epochs = "epochs for each schedule",
   batch = "training batch size",
   lr = "initial learning rate (cosine decay to 0 over each training run)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   T = "distillation temperature",
   alpha = "weight of the soft (KD) term; cross-entropy gets 1 - alpha",
   score = "difficulty of an example from the teacher: loss, entropy or margin",
   pacing = "pacing function of the fraction of examples used: linear, root or step",
   start = "fraction of the easiest examples used in the first epoch",
   paceEpochs = "epochs until every example is used (0: half of --epochs)",
   minWeight = "the weights schedule: weight of the examples outside the paced fraction",
   schedules = "comma-separated schedules to run: none, easy, anti, selfpaced, weights",
   seed = "random seed (data order; every student starts from seed + 1000)",
   threads = "CPU threads",
   dir = "output directory: a run folder per schedule, and the cache",
   limit = "use only the first N training and test examples (0: all)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
   resume = "continue each run in --dir from its last.h5 (a finished one is not trained again)",
   overwrite = "replace the runs already in --dir (without it, a fresh run into a used --dir is refused)",
})
retort.setNumThreads(opts.threads)
if opts.teacher == "" then error("--teacher=checkpoint.h5 is required (recipes/train_teacher.lua trains one)", 0) end

local function loaders()
   return retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = opts.seed, limit = opts.limit,
                                          device = opts.device}
end

local teacher = retort.recipe.teacher(opts.teacherModel)
teacher:loadStateDict(retort.load(opts.teacher).model)
local cache_path = opts.cache ~= "" and opts.cache or opts.dir .. "/teacher.cache.h5"
assert(retort.core.mkdir(opts.dir))
local cache = retort.cache.ensure{teacher = teacher, data = (loaders()), path = cache_path}
local scores = curriculum.scores(cache, {kind = opts.score})
local pace_epochs = opts.paceEpochs > 0 and opts.paceEpochs or math.max(1, opts.epochs // 2)
local pace = curriculum.pacing{kind = opts.pacing, start = opts.start, epochs = pace_epochs}

local rows = {}
for name in opts.schedules:gmatch("[^,%s]+") do
   retort.manualSeed(opts.seed + 1000) -- the same initial student for every schedule
   local student = retort.models.mlp{sizes = {784, 800, 800, 10}}
   local train, test = loaders()
   if name == "easy" or name == "anti" then
      train = curriculum.Loader(train, {scores = scores, pacing = pace, anti = name == "anti"})
   elseif name == "selfpaced" then
      train = curriculum.Loader(train, {selfPaced = student, pacing = pace})
   elseif name == "weights" then
      train = curriculum.Loader(train, {scores = scores, pacing = pace, weights = true, minWeight = opts.minWeight})
   elseif name ~= "none" then
      error(("unknown schedule '%s' in --schedules; known: none, easy, anti, selfpaced, weights"):format(name), 0)
   end
   local d = retort.distill.Distiller{teacher = cache, student = student, T = opts.T, alpha = opts.alpha,
                                      gamma = 1 - opts.alpha}
   io.stderr:write(("== %s ==\n"):format(name))
   local started = retort.clock()
   local r = retort.train.fit{model = d, optimizer = retort.recipe.optimizer(d:parameters(), opts, opts.epochs),
                              precision = opts.precision,
                              train = train, test = test, epochs = opts.epochs, dir = opts.dir .. "/" .. name,
                              options = opts, device = opts.device, resume = opts.resume, overwrite = opts.overwrite}
   if r.interrupted then os.exit(130) end
   rows[#rows + 1] = {name = name, acc = r.last.test_acc, best = r.best_acc,
                      seconds = retort.clock() - started}
end

print(("\nstudent mlp 800-800 distilled from %s (KD T = %g, alpha = %g), %d epochs, seed %d; difficulty: teacher %s; "
       .. "pacing %s from %g over %d epochs"):format(cache_path, opts.T, opts.alpha, opts.epochs, opts.seed, opts.score,
       opts.pacing, opts.start, pace_epochs))
print("| schedule  | last   | best   | time   |")
print("|-----------|--------|--------|--------|")
for _, r in ipairs(rows) do
   print(("| %-9s | %.4f | %.4f | %5.0fs |"):format(r.name, r.acc, r.best, r.seconds))
end
