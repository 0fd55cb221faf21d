-- Hinton knowledge distillation on Fashion-MNIST (Hinton, Vinyals & Dean 2015): a teacher, the
-- 784-800-800-10 student trained alone, and the same student (same seed, same initial weights)
-- distilled from the teacher with the pinned KD loss (DESIGN.md §4):
--   alpha * T^2 * KL(p_t || softmax(s / T)) + (1 - alpha) * CE(s, y)
-- Teachers: the 784-1200-1200-10 MLP of the paper (--teacherModel=mlp, T = 20 as in the paper) or
-- the CNN of recipes/train_teacher.lua (--teacherModel=cnn). With --seeds=N the student pair is
-- trained for N seeds and the mean and spread are printed.
--
--   retort run recipes/kd.lua                                        -- teacher, student, distilled student
--   retort run recipes/kd.lua --teacher=runs/kd/teacher/best.h5       -- reuse a trained teacher
--   retort run recipes/kd.lua --teacherModel=cnn --teacher=runs/cnn-teacher/best.h5 --T=8 --alpha=0.3 --seeds=3
--   retort run recipes/kd.lua ... --cache=runs/cnn.cache.h5    -- distill from the teacher's cached logits
--   retort run recipes/kd.lua ... --device=cuda                  -- on the GPU ("auto": there when there is one)
-- With --cache=path the distilled student reads the teacher's logits from a soft-target cache (built
-- first if missing; `retort cache --recipe recipes/kd.lua --out path ...` builds it alone; --cache=auto
-- keeps one in --dir, rebuilt whenever the teacher changes). With
-- augmentation (--crop, --flip) add --views=V: the cache holds V views that the epochs replay in turn.
local retort = require "retort"

local opts = retort.recipe.options({
   epochs = 10, teacherEpochs = 10, batch = 128, lr = 0.05, momentum = 0.9, weightDecay = 5e-4, T = 20,
   alpha = 0.9, seed = 1, seeds = 1, threads = 2, teacher = "", teacherModel = "mlp", dir = "runs/kd", limit = 0,
   crop = 0, flip = false, views = 0, cache = "", cacheOnly = false, cacheVerify = 0, device = "cpu", precision = "f32",
   resume = false, overwrite = false, export = "",
}, {...}, {
   epochs = "epochs for each student (alone and distilled)",
   teacherEpochs = "epochs to train the teacher when --teacher is not given",
   batch = "training batch size",
   lr = "initial learning rate (cosine decay to 0 over each training run)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   T = "distillation temperature",
   alpha = "weight of the soft (KD) term; cross-entropy gets 1 - alpha",
   seed = "random seed (data order, the teacher; students start from seed + 1000)",
   seeds = "train the student pair for N seeds (seed, seed + 1, ...) and print mean and spread",
   threads = "CPU threads",
   teacher = "teacher checkpoint to load (.h5); empty: train the teacher first",
   teacherModel = "teacher architecture: mlp (784-1200-1200-10) or cnn (as recipes/train_teacher.lua)",
   dir = "output directory: a run folder per model (metrics.csv, last.h5, best.h5)",
   limit = "use only the first N training and test examples (0: all)",
   crop = "training augmentation: random-crop padding in pixels (0: none)",
   flip = "training augmentation: random horizontal flips",
   views = "with --crop/--flip and --cache: augmentation views the cache holds, replayed in turn (0: one)",
   cache = "soft-target cache to distill from, built if missing (auto: one kept in --dir); empty: the live teacher",
   cacheOnly = "build the cache and stop (what `retort cache --out` runs)",
   cacheVerify = "recompute N cache rows with the teacher, compare and exit (what `retort cache --verify` runs)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
   export = "write the distilled student as ONNX to this file when done (e.g. student.onnx; empty: none)",
   resume = "continue each run in --dir from its last.h5 (a finished one is not trained again)",
   overwrite = "replace the runs already in --dir (without it, a fresh run into a used --dir is refused)",
})
retort.setNumThreads(opts.threads)

local function loaders(seed)
   local augment = (opts.crop > 0 or opts.flip) and {crop = opts.crop, flip = opts.flip} or nil
   return retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = seed or opts.seed, limit = opts.limit,
                                          augment = augment, views = opts.views > 0 and opts.views or nil,
                                          device = opts.device}
end

-- Train `model` into dir; returns the final test accuracy.
local function fit(name, model, epochs, seed)
   local train, test = loaders(seed)
   local optimizer = retort.recipe.optimizer(model:parameters(), opts, epochs)
   local started = retort.clock()
   local result = retort.train.fit{model = model, optimizer = optimizer, train = train, test = test, epochs = epochs,
                                   precision = opts.precision,
                                   dir = opts.dir .. "/" .. name, options = opts, device = opts.device,
                                   resume = opts.resume, overwrite = opts.overwrite}
   if result.interrupted then os.exit(130) end
   local acc = result.last.test_acc
   print(("%-18s test accuracy %.4f  (%d epochs, %.1f s)"):format(name, acc, epochs, retort.clock() - started))
   return acc
end

-- 1. the teacher: trained here, or loaded from a checkpoint
retort.manualSeed(opts.seed)
local teacher = retort.recipe.teacher(opts.teacherModel)
local teacher_acc
if opts.teacher == "" and (opts.cacheOnly or opts.cacheVerify > 0) then
   error("building or verifying a cache needs a trained teacher: --teacher=checkpoint.h5", 0)
end
if opts.teacher ~= "" then
   teacher:loadStateDict(retort.load(opts.teacher).model)
   local _, test = loaders()
   teacher_acc = retort.train.evaluate(teacher, test).acc
   print(("%-18s test accuracy %.4f  (loaded from %s)"):format("teacher", teacher_acc, opts.teacher))
else
   teacher_acc = fit("teacher", teacher, opts.teacherEpochs)
end

-- the teacher's soft targets from a cache, when --cache names one (built here if missing)
local cache = retort.recipe.cache(opts, {teacher = teacher, data = (loaders())})

-- 2. the student alone, and 3. the same student (same seed, same initial weights) distilled
local alone, distilled = {}, {}
local student -- the last distilled student (what --export writes)
for k = 1, opts.seeds do
   local seed = opts.seed + k - 1
   local suffix = opts.seeds > 1 and ("-seed" .. seed) or ""
   retort.manualSeed(seed + 1000)
   alone[k] = fit("student" .. suffix, retort.models.mlp{sizes = {784, 800, 800, 10}}, opts.epochs, seed)
   retort.manualSeed(seed + 1000)
   student = retort.models.mlp{sizes = {784, 800, 800, 10}}
   local d = retort.distill.Distiller{teacher = cache or teacher, student = student,
                                      T = opts.T, alpha = opts.alpha, gamma = 1 - opts.alpha}
   distilled[k] = fit("student-kd" .. suffix, d, opts.epochs, seed)
end

local function stats(v)
   local m, s = 0, 0
   for _, x in ipairs(v) do m = m + x end
   m = m / #v
   for _, x in ipairs(v) do s = s + (x - m) ^ 2 end
   return m, #v > 1 and math.sqrt(s / (#v - 1)) or 0
end
local am, as = stats(alone)
local dm, ds = stats(distilled)
if opts.seeds > 1 then
   print(("\nover %d seeds: student alone %.4f +- %.4f | distilled %.4f +- %.4f (mean +- std)"):format(
      opts.seeds, am, as, dm, ds))
end
print(("\nteacher %.4f | student alone %.4f | distilled student %.4f (T = %g, alpha = %g)"):format(
   teacher_acc, am, dm, opts.T, opts.alpha))
local gap = teacher_acc - am
if gap > 0 then
   print(("distillation recovered %.0f%% of the teacher-student gap"):format(100 * (dm - am) / gap))
end
retort.recipe.export(student, (loaders()), opts.export)
