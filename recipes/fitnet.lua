-- FitNets (Romero et al. 2015) on Fashion-MNIST, in the paper's two stages (DESIGN.md §4):
--   stage 1  the thin-and-deep student, up to its guided layer, plus a regressor (a conv whose
--            kernel makes the shapes meet) are trained on the hint loss 0.5 * mean((u_h - r(v_g))^2)
--   stage 2  the whole student, from stage 1's weights, is trained with KD:
--            CE(s, y) + lambda * H(p_t^tau, p_s^tau), lambda annealed linearly 4 -> 1, tau = 3
--            (the paper's soft term carries no tau^2; retort's KD term is T^2 KL, so alpha = lambda / T^2)
-- For comparison the same student is trained from scratch (cross-entropy) and with KD but no hints.
-- The teacher is the wide-and-shallow CNN of recipes/train_teacher.lua (trained here if no --teacher).
-- Every stage trains with RMSProp (lr 1e-3, cosine), as FitNets did: SGD with momentum at this
-- recipe's sizes blows up the deep maxout student (no BatchNorm) within the first epoch.
--
--   retort run recipes/fitnet.lua --teacher=runs/cnn-teacher/best.h5         -- both stages + baselines
--   retort run recipes/fitnet.lua --stage=1 --teacher=...                     -- stage 1 only
--   retort run recipes/fitnet.lua --stage=2 --from=runs/fitnet/hints/last.h5  -- stage 2 from a stage-1 checkpoint
--   retort run recipes/fitnet.lua --teacher=... --device=cuda                 -- on the GPU ("auto": there when
--                                                                                there is one)
local retort = require "retort"
local distill = retort.distill

local opts = retort.recipe.options({
   stage = "both", from = "", teacher = "", teacherEpochs = 5, hintEpochs = 3, epochs = 10, batch = 128,
   optimizer = "rmsprop", lr = 1e-3, momentum = 0.9, weightDecay = 5e-4, T = 3, lambdaFrom = 4, lambdaTo = 1,
   hint = "relu2", guided = "conv4", baselines = true, seed = 1, threads = 2, dir = "runs/fitnet", limit = 0,
   device = "cpu", precision = "f32", resume = false, overwrite = false, export = "",
}, {...}, {
   stage = "stages to run: 1 (hints), 2 (KD, from --from) or both",
   from = "stage-1 checkpoint that stage 2 starts from (with --stage=2)",
   teacher = "teacher checkpoint (the CNN of recipes/train_teacher.lua); empty: train one first",
   teacherEpochs = "epochs to train the teacher when --teacher is not given",
   hintEpochs = "epochs of stage 1 (hint training)",
   epochs = "epochs of stage 2 and of each baseline",
   batch = "training batch size",
   optimizer = "sgd or rmsprop (FitNets used RMSProp)",
   lr = "initial learning rate (cosine decay to 0 over each training run)",
   momentum = "SGD momentum (with --optimizer=sgd)",
   weightDecay = "L2 weight decay",
   T = "temperature tau of the KD stage",
   lambdaFrom = "KD weight lambda at the start of stage 2 (annealed linearly)",
   lambdaTo = "KD weight lambda at the end of stage 2",
   hint = "teacher tap giving the hint",
   guided = "student tap guided by the hint (the regressor reads it)",
   baselines = "also train the student from scratch and with KD alone",
   seed = "random seed (data order, the teacher; the student starts from seed + 1)",
   threads = "CPU threads",
   dir = "output directory: a run folder per stage and baseline",
   limit = "use only the first N training and test examples (0: all)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
   export = "write the FitNets student (hints, then KD) as ONNX to this file when done "
      .. "(e.g. student.onnx; empty: none)",
   resume = "continue each run in --dir from its last.h5 (a finished one is not trained again)",
   overwrite = "replace the runs already in --dir (without it, a fresh run into a used --dir is refused)",
})
retort.setNumThreads(opts.threads)
if opts.stage ~= "both" and opts.stage ~= "1" and opts.stage ~= "2" then
   error(("--stage must be 1, 2 or both, got %s"):format(opts.stage), 0)
end

local function loaders()
   return retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = opts.seed, limit = opts.limit,
                                          device = opts.device}
end

-- the thin-and-deep student: 6 maxout conv layers of 8-16 channels (the teacher has 2 of 32 and 64)
local function make_student()
   retort.manualSeed(opts.seed + 1)
   return retort.models.fitnetStudent{inChannels = 1, size = 28, stages = {{8, 8}, {16, 16}, {16, 16}},
                                      hidden = 128, fcPieces = 2}
end

local results = {}
local function fit(name, model, params, epochs, extra)
   local train, test = loaders()
   local started = retort.clock()
   local o = {model = model, optimizer = retort.recipe.optimizer(params, opts, epochs), train = train, test = test,
              epochs = epochs, dir = opts.dir .. "/" .. name, options = opts, device = opts.device,
              resume = opts.resume, overwrite = opts.overwrite, precision = opts.precision}
   extra = extra or {}
   local hints_only = extra.hintsOnly -- the recipe's own flag, not train.fit's
   for k, v in pairs(extra) do if k ~= "hintsOnly" then o[k] = v end end
   if hints_only then o.test = nil end
   local r = retort.train.fit(o)
   if r.interrupted then os.exit(130) end
   if hints_only then
      print(("%-12s hint loss %.4f  %d epochs, %.1f s"):format(name, r.last.train_loss, epochs,
         retort.clock() - started))
      return r
   end
   local acc = r.last.test_acc
   results[#results + 1] = {name = name, acc = acc, best = r.best_acc, seconds = retort.clock() - started}
   print(("%-12s test accuracy %.4f (best %.4f)  %d epochs, %.1f s"):format(name, acc, r.best_acc, epochs,
      retort.clock() - started))
   return r
end

-- the teacher: loaded, or trained briefly
local teacher = retort.models.cnn{dropout = 0.3}
if opts.teacher ~= "" then
   teacher:loadStateDict(retort.load(opts.teacher).model)
   local _, test = loaders()
   print(("teacher      test accuracy %.4f  (%s)"):format(retort.train.evaluate(teacher, test).acc, opts.teacher))
elseif opts.stage ~= "2" or opts.baselines then
   retort.manualSeed(opts.seed)
   fit("teacher", teacher, teacher:parameters(), opts.teacherEpochs)
end

-- One Distiller holds both stages: the hint pair belongs to stage 1 (stage = "init"), and the main
-- stage is KD with lambda 4 -> 1 at tau = 3. Checkpoints of both stages have the same entries.
local T = opts.T
local lambda = retort.schedule.linear{from = opts.lambdaFrom, to = opts.lambdaTo, epochs = opts.epochs}
local function alpha(p) return lambda(p) / (T * T) end
local sample = retort.data.fashionMnistLoaders{batchSize = 2, limit = 2}:batches()()
local student = make_student()
local d = distill.Distiller{teacher = teacher, student = student, T = T, gamma = 1, alpha = alpha, sample = sample,
                            pairs = {{hint = opts.hint, guided = opts.guided, loss = distill.FitNet{}, stage = "init"}}}

-- stage 1: the student's layers up to the guided one, plus the regressor, on the hint loss
if opts.stage ~= "2" then
   d:setStage("init")
   fit("hints", d, d:initParameters(), opts.hintEpochs, {hintsOnly = true})
   opts.from = opts.dir .. "/hints/last.h5"
end

-- stage 2: the whole student from stage 1's weights, KD with lambda 4 -> 1 at tau = 3
if opts.stage ~= "1" then
   if opts.from == "" then error("--stage=2 needs --from=<stage-1 checkpoint> (runs/fitnet/hints/last.h5)", 0) end
   d:loadStateDict(retort.load(opts.from).model)
   d:setStage("main")
   fit("fitnet", d, d._modules.student:parameters(), opts.epochs)
   retort.recipe.export(d._modules.student, (loaders()), opts.export)
   if opts.baselines then
      local scratch = make_student()
      fit("scratch", scratch, scratch:parameters(), opts.epochs)
      local kd = distill.Distiller{teacher = teacher, student = make_student(), T = T, gamma = 1, alpha = alpha}
      fit("kd-only", kd, kd:parameters(), opts.epochs)
   end
end

print("\nmethod        test acc (last)  best     time")
for _, r in ipairs(results) do
   print(("%-12s  %.4f           %.4f   %.0f s"):format(r.name, r.acc, r.best, r.seconds))
end
