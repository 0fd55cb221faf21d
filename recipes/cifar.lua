-- RepDistiller's CIFAR-100 protocol: train a teacher, or distill a student from it with any of the
-- methods of RepDistiller's benchmark (Tian et al. 2020, "Contrastive Representation Distillation").
--
--   retort run recipes/cifar.lua --data=DIR --method=none --model=resnet32x4             -- the teacher
--   retort run recipes/cifar.lua --data=DIR --teacher=runs/cifar/resnet32x4/best.h5 \
--                                --teacherModel=resnet32x4 --student=resnet8x4 --method=kd
--   ... --method=fitnet|at|sp|cc|vid|rkd|pkt|ab|ft|fsp|nst|crd|dkd   (--alpha=1: add KD to it)
--   ... --resume                                                      -- continue the run in --dir
--
-- DIR holds the binary version of CIFAR-100 (train.bin, test.bin; or its cifar-100-binary/ folder);
-- CIFAR-10's binary batches work too. As RepDistiller: 240 epochs, batch 64, SGD with momentum 0.9 and
-- weight decay 5e-4, learning rate 0.05 (0.01 for MobileNetV2 and ShuffleNet students) times 0.1 at
-- epochs 150, 180 and 210; random crops with 4 pixels of padding and horizontal flips; CIFAR-100's
-- per-channel mean and std; T = 4 and each method's published weights, pairs and init stage
-- (lua/retort/distill/repdistiller.lua has the table). Models: retort.models' CIFAR zoo under
-- RepDistiller's names (resnet8 .. resnet110, resnet8x4, resnet32x4, wrn_16_1 .. wrn_40_2, vgg8 ..
-- vgg19, MobileNetV2, ShuffleV1, ShuffleV2, ResNet50).
--
-- A run directory (--dir, default runs/cifar/<student>-<method>, or runs/cifar/<model> for a teacher)
-- gets metrics.csv, last.h5 and best.h5 (and init/ for the init stage of ab, ft and fsp). A distilled
-- checkpoint holds the student under model/student; it loads as a teacher too.
local retort = require "retort"
local repdistiller = require "retort.distill.repdistiller"

local opts = retort.recipe.options({
   data = "", teacher = "", teacherModel = "resnet32x4", student = "resnet8x4", model = "", method = "kd",
   epochs = 240, batch = 64, lr = 0, momentum = 0.9, weightDecay = 5e-4, milestones = "150,180,210", lrDecay = 0.1,
   T = 4, gamma = -1, alpha = -1, beta = -1, initEpochs = 30, hintLayer = 2, crdNegatives = 16384, testBatch = 256,
   limit = 0, threads = 2, seed = 1, dir = "", resume = false, overwrite = false, device = "cpu", export = "",
   precision = "f32",
}, {...}, {
   data = "folder with the CIFAR binary files (or their cifar-100-binary/ folder); empty: $RETORT_DATA_ROOT",
   teacher = "teacher checkpoint (.h5, from --method=none or a distilled run); required unless --method=none",
   teacherModel = "the teacher's architecture (a retort.models name: resnet32x4, wrn_40_2, vgg13, ResNet50, ...)",
   student = "the student's architecture (resnet8x4, wrn_16_2, vgg8, MobileNetV2, ShuffleV1, ShuffleV2, ...)",
   model = "with --method=none: the network to train (default: --student)",
   method = "none (train alone), kd, fitnet, at, sp, cc, vid, rkd, pkt, ab, ft, fsp, nst, crd or dkd",
   epochs = "epochs to train (RepDistiller: 240)",
   batch = "training batch size",
   lr = "initial learning rate; 0: RepDistiller's (0.05, or 0.01 for MobileNetV2 / ShuffleNet students)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   milestones = "epochs after which the learning rate is multiplied by --lrDecay, comma-separated",
   lrDecay = "learning-rate factor at each milestone",
   T = "distillation temperature (KD term; DKD uses its own T = 4)",
   gamma = "weight of the cross-entropy term; -1: the method's (0.1 for kd, else 1)",
   alpha = "weight of the KD term (T^2 KL); -1: the method's (0.9 for kd, else 0; 1 adds KD to a method)",
   beta = "factor on the method's own weighted terms; -1: 1 (the pairs carry RepDistiller's weights)",
   initEpochs = "epochs of the init stage of ab, ft and fsp (RepDistiller: 30)",
   hintLayer = "fitnet: which feature (0 .. last) is the hint (RepDistiller: 2)",
   crdNegatives = "crd: negatives per example (RepDistiller: 16384)",
   testBatch = "test batch size (does not change results)",
   limit = "use only the first N training and test images (0: all)",
   threads = "CPU threads",
   seed = "random seed (data order, augmentation, the student's initial weights)",
   dir = "run directory; empty: runs/cifar/<student>-<method> (runs/cifar/<model> for --method=none)",
   resume = "continue from <dir>/last.h5 (and <dir>/init/last.h5 for an unfinished init stage)",
   overwrite = "replace the run already in --dir (without it, a fresh run into a used --dir is refused)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
   export = "write the trained network (the student) as ONNX to this file when done (empty: none)",
})

local function fail(fmt, ...) error(retort.recipe.usageError and retort.recipe.usageError(fmt:format(...))
                                    or fmt:format(...), 0) end

local method = opts.method
if method ~= "none" and not repdistiller.methods[method] then
   fail("unknown --method=%s; known: none, %s", method, table.concat(repdistiller.names(), ", "))
end
local studentName = method == "none" and (opts.model ~= "" and opts.model or opts.student) or opts.student
local milestones = {}
for m in opts.milestones:gmatch("[^,%s]+") do
   local v = tonumber(m)
   if not v then fail("--milestones expects epochs like 150,180,210, got '%s'", opts.milestones) end
   milestones[#milestones + 1] = v
end
local SMALL_LR = {MobileNetV2 = true, mobile_half = true, mobile_full = true, ShuffleV1 = true, ShuffleV2 = true}
local lr = opts.lr > 0 and opts.lr or (SMALL_LR[studentName] and 0.01 or 0.05)
if method ~= "none" and opts.teacher == "" then
   fail("--method=%s needs --teacher=checkpoint.h5 (train one with --method=none --model=%s)", method,
        opts.teacherModel)
end
for _, name in ipairs(method == "none" and {studentName} or {studentName, opts.teacherModel}) do
   if type(retort.models[name]) ~= "function" or name == "get" then
      local _, err = pcall(retort.models.get, name) -- an unknown name: the error lists the known ones
      fail("%s", (tostring(err):gsub("^.-models%.get: ", "")))
   end
end
local dir = opts.dir ~= "" and opts.dir
            or (method == "none" and "runs/cifar/" .. studentName or ("runs/cifar/%s-%s"):format(studentName, method))

retort.setNumThreads(opts.threads)

-- data: RepDistiller's augmentation and normalisation
local root = opts.data ~= "" and opts.data or nil
local function dataset(o)
   local ok, ds = pcall(retort.data.cifar, o)
   if not ok then fail("%s (--data)", (tostring(ds):gsub("^[^:]*:%d+: ", ""))) end
   return ds
end
local trainSet = dataset{root = root, split = "train"}
local testSet = dataset{root = root, split = "test", variant = trainSet.variant}
local classes = trainSet.numClasses
local norm = {mean = trainSet.mean, std = trainSet.std}
local train = retort.data.Loader(trainSet, {batchSize = opts.batch, shuffle = true, seed = opts.seed,
                                            limit = opts.limit, augment = {crop = 4, flip = true}, normalize = norm,
                                            device = opts.device})
local test = retort.data.Loader(testSet, {batchSize = opts.testBatch, limit = opts.limit, normalize = norm,
                                          device = opts.device})
io.stderr:write(("CIFAR-%d from %s: %d training, %d test images\n"):format(trainSet.variant, trainSet.dir, train.n,
                                                                           test.n))

local function model(name) return retort.models.get(name, {classes = classes}) end

-- a checkpoint's model entries; a distilled run's hold the student under "student."
local function student_entries(sd)
   local out, found = {}, false
   for k, v in pairs(sd) do
      local rest = type(k) == "string" and k:match("^student%.(.+)$")
      if rest then out[rest], found = v, true end
   end
   return found and out or sd
end

local function sgd(params, rate)
   return retort.optim.SGD(params, {lr = rate, momentum = opts.momentum, weightDecay = opts.weightDecay})
end

local started = retort.clock()
local function fit(m, optimizer, epochs, runDir, withTest)
   local r = retort.train.fit{model = m, optimizer = optimizer, train = train, test = withTest and test or nil,
                              precision = opts.precision,
                              epochs = epochs, dir = runDir, resume = opts.resume, overwrite = opts.overwrite,
                              options = opts, device = opts.device}
   if r.interrupted then os.exit(130) end
   return r
end

-- the student (or the network trained alone), from the seed
retort.manualSeed(opts.seed)
local student = model(studentName)
local schedule = retort.schedule.multistep{base = lr, milestones = milestones, gamma = opts.lrDecay}

local net, teacher_acc = student, nil
if method ~= "none" then
   local teacher = model(opts.teacherModel)
   local loaded, ck = pcall(retort.load, opts.teacher)
   if not loaded then fail("cannot load --teacher: %s", tostring(ck)) end
   local ok, err = pcall(teacher.loadStateDict, teacher, student_entries(ck.model or {}))
   if not ok then fail("%s does not hold a %s: %s", opts.teacher, opts.teacherModel, tostring(err)) end
   local spec = repdistiller.spec(method, teacher, student, {
      trainLabels = train.y, crdNegatives = opts.crdNegatives, hintLayer = opts.hintLayer, studentName = studentName,
      lr = lr})
   local built, d = pcall(retort.distill.Distiller, {
      teacher = teacher, student = student, sample = retort.randn(2, 3, 32, 32), pairs = spec.pairs, T = opts.T,
      gamma = opts.gamma >= 0 and opts.gamma or spec.gamma, alpha = opts.alpha >= 0 and opts.alpha or spec.alpha,
      beta = opts.beta >= 0 and opts.beta or spec.beta,
   })
   if not built then -- e.g. fsp between networks whose paired layers differ in width
      fail("--method=%s cannot pair %s with %s: %s", method, opts.teacherModel, studentName,
           (tostring(d):gsub("^[^:]*:%d+: ", "")))
   end
   if opts.device == "cuda" then teacher:cuda() end -- after the Distiller sized its parts on the CPU
   teacher_acc = retort.train.evaluate(teacher, test).acc
   io.stderr:write(("teacher %s: test accuracy %.4f (%s)\n"):format(opts.teacherModel, teacher_acc, opts.teacher))
   if spec.init then -- RepDistiller's init stage: a constant learning rate, no test pass
      local main_started = io.open(dir .. "/last.h5", "rb")
      if main_started then main_started:close() end
      if not (opts.resume and main_started) and opts.initEpochs > 0 then
         d:setStage("init")
         fit(d, sgd(d:initParameters(), spec.initLr), opts.initEpochs, dir .. "/init", false)
      end
      d:setStage("main")
   end
   net = d
end

local result = fit(net, sgd(net:parameters(), schedule), opts.epochs, dir, true)
local last = result.last
print(("%s%s: test accuracy %.4f after %d epochs (best %.4f at epoch %d)%s; %.1f s; run in %s"):format(
   studentName, method == "none" and "" or (" (%s from %s)"):format(method, opts.teacherModel),
   last and last.test_acc or result.best_acc, opts.epochs, result.best_acc, result.best_epoch,
   teacher_acc and (", teacher %.4f"):format(teacher_acc) or "", retort.clock() - started, dir))
retort.recipe.export(student, test, opts.export)
