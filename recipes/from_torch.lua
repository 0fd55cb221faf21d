-- Distil a student from a PyTorch teacher: import its state dict, check its test accuracy, cache its
-- soft targets, distil the student with KD, and export the student. The teacher is any checkpoint
-- `retort import-torch` reads (a bare state dict, or one under 'model', 'state_dict' or 'net', loaded
-- with torch.load(weights_only=True)) for a retort model with PyTorch names (docs/checkpoint.md):
--
--   retort run recipes/from_torch.lua --teacher=teacher.pth --teacherModel=cnn
--   retort run recipes/from_torch.lua --teacher=ckpt_epoch_240.pth --teacherModel=resnet32x4 --data=cifar100 \
--       --dataRoot=data --student=resnet8x4 --studentOptions= --T=4 --export=student.onnx
--
-- Steps, each into --dir: teacher.h5 (the imported teacher, a retort checkpoint), its test accuracy,
-- teacher.cache.h5 (its logits over the training set: --cache=auto; a path to keep it elsewhere),
-- student/ (train.fit's run: metrics.csv, last.h5, best.h5; --resume continues it), then the student
-- exported: ONNX with --export=FILE.onnx when retort.onnx is available (else it says so and goes on),
-- a PyTorch state dict with --exportTorch=FILE.pth. KD is DESIGN.md §4's:
-- alpha * T^2 * KL(p_t || softmax(s / T)) + (1 - alpha) * CE(s, y).
-- Inputs are normalised with the dataset's usual mean and std (Fashion-MNIST 0.2860 / 0.3530, CIFAR
-- RepDistiller's), which is what the teacher must have been trained on; --mean and --std change them.
local retort = require "retort"
local torch = require "retort.interop.torch"

local opts = retort.recipe.options({
   teacher = "", teacherModel = "cnn", teacherOptions = "", student = "mlp", studentOptions = "sizes={784,800,800,10}",
   data = "fashion-mnist", dataRoot = "", mean = "", std = "", epochs = 10, batch = 128, lr = 0.05, momentum = 0.9,
   weightDecay = 5e-4, T = 4, alpha = 0.9, seed = 1, threads = 2, dir = "runs/from-torch", limit = 0,
   cache = "auto", cacheOnly = false, cacheVerify = 0, device = "cpu", resume = false, overwrite = false,
   precision = "f32",
   export = "", exportTorch = "",
}, {...}, {
   teacher = "the PyTorch teacher (.pth/.pt, read with weights_only=True; or a .h5 import-torch made); required",
   teacherModel = "the teacher's retort model (retort.models name with PyTorch names: cnn, mlp, resnet32x4, ...)",
   teacherOptions = "the teacher model's other options, a Lua table: e.g. channels={32,64},hidden=128",
   student = "the student's retort model (mlp, cnn, resnet8x4, ...)",
   studentOptions = "the student model's other options, a Lua table (the mlp default: 784-800-800-10)",
   data = "fashion-mnist, cifar10 or cifar100 (the CIFAR binary version, in --dataRoot)",
   dataRoot = "folder holding fashion-mnist/ (default: Debian's dataset-fashion-mnist) or the CIFAR binary files",
   mean = "input normalisation mean, one value or one per channel, comma-separated (empty: the dataset's)",
   std = "input normalisation std, like --mean (empty: the dataset's)",
   epochs = "epochs to distil the student",
   batch = "training batch size",
   lr = "initial learning rate (cosine decay to 0)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   T = "distillation temperature",
   alpha = "weight of the soft (KD) term; cross-entropy gets 1 - alpha",
   seed = "random seed (data order, the student's initial weights)",
   threads = "CPU threads",
   dir = "output folder: teacher.h5, teacher.cache.h5, student/",
   limit = "use only the first N training and test examples (0: all)",
   cache = "soft-target cache of the teacher (auto: <dir>/teacher.cache.h5, rebuilt when stale); empty: live teacher",
   cacheOnly = "build the cache and stop (what `retort cache --out` runs)",
   cacheVerify = "recompute N cache rows with the teacher, compare and exit (what `retort cache --verify` runs)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
   resume = "continue the student's run in <dir>/student from its last.h5",
   overwrite = "replace the student's run already in <dir>/student",
   export = "write the trained student as ONNX to this file (needs retort.onnx)",
   exportTorch = "write the trained student as a PyTorch state dict to this file (.pth)",
})
retort.setNumThreads(opts.threads)

local function usage(fmt, ...) error(retort.recipe.usageError(fmt:format(...)), 0) end
if opts.teacher == "" then usage("--teacher=FILE.pth is required (a PyTorch state dict of --teacherModel)") end

local function numbers(text, name)
   if text == "" then return nil end
   local v = {}
   for w in text:gmatch("[^,%s]+") do
      v[#v + 1] = tonumber(w) or usage("--%s expects numbers like 0.5 or 0.5,0.5,0.5, got '%s'", name, text)
   end
   return #v == 1 and v[1] or v
end

local function model_options(text, name)
   local ok, v = pcall(torch.parseModelOptions, text)
   if not ok then usage("--%s: %s", name, tostring(v)) end
   return v
end

-- data
local train, test, classes
if opts.data == "fashion-mnist" then
   local root = opts.dataRoot ~= "" and opts.dataRoot or nil
   local trainSet = retort.data.fashionMnist{split = "train", root = root}
   local testSet = retort.data.fashionMnist{split = "test", root = root}
   local norm = {mean = numbers(opts.mean, "mean") or retort.data.fashionMnistMean,
                 std = numbers(opts.std, "std") or retort.data.fashionMnistStd}
   train = retort.data.Loader(trainSet, {batchSize = opts.batch, shuffle = true, seed = opts.seed, normalize = norm,
                                         limit = opts.limit, device = opts.device})
   test = retort.data.Loader(testSet, {batchSize = 1000, normalize = norm, limit = opts.limit,
                                       device = opts.device})
   classes = 10
elseif opts.data == "cifar10" or opts.data == "cifar100" then
   local variant = opts.data == "cifar10" and 10 or 100
   local root = opts.dataRoot ~= "" and opts.dataRoot or nil
   local trainSet = retort.data.cifar{root = root, variant = variant, split = "train"}
   local testSet = retort.data.cifar{root = root, variant = variant, split = "test"}
   local norm = {mean = numbers(opts.mean, "mean") or trainSet.mean, std = numbers(opts.std, "std") or trainSet.std}
   train = retort.data.Loader(trainSet, {batchSize = opts.batch, shuffle = true, seed = opts.seed, normalize = norm,
                                         augment = {crop = 4, flip = true}, limit = opts.limit, device = opts.device})
   test = retort.data.Loader(testSet, {batchSize = 256, normalize = norm, limit = opts.limit,
                                       device = opts.device})
   classes = variant
else
   usage("--data must be fashion-mnist, cifar10 or cifar100, got '%s'", opts.data)
end

-- 1. the teacher, imported (or an earlier import), and its test accuracy
assert(require("retort.core").mkdir(opts.dir))
local teacher
local teacherOpts = {numClasses = classes, options = model_options(opts.teacherOptions, "teacherOptions"),
                     optionsText = opts.teacherOptions}
if opts.teacher:match("%.h5$") then
   teacher = torch.model(opts.teacherModel, teacherOpts)
   teacher:loadStateDict(retort.load(opts.teacher).model)
else
   local imported = opts.dir .. "/teacher.h5"
   local info
   teacher, info = torch.importFile(opts.teacher, imported, opts.teacherModel, teacherOpts)
   print(("teacher: %s (%s) imported from %s%s -> %s"):format(opts.teacherModel, teacher.__typename, opts.teacher,
      info.container ~= "" and (" (under '" .. info.container .. "')") or "", imported))
end
if opts.device == "cuda" then teacher:cuda() end
teacher:evaluate()
local teacherAcc = retort.train.evaluate(teacher, test).acc
print(("teacher test accuracy %.4f"):format(teacherAcc))

-- 2. its soft targets, cached (and reused by a later run while teacher and data are the same)
local cache = retort.recipe.cache(opts, {teacher = teacher, data = train})

-- 3. the student, distilled
retort.manualSeed(opts.seed + 1000)
local student = torch.model(opts.student, {numClasses = classes,
                                           options = model_options(opts.studentOptions, "studentOptions")})
local distiller = retort.distill.Distiller{teacher = cache or teacher, student = student, T = opts.T,
                                           alpha = opts.alpha, gamma = 1 - opts.alpha}
local result = retort.train.fit{model = distiller, optimizer = retort.recipe.optimizer(distiller:parameters(), opts,
                                opts.epochs), train = train, test = test, epochs = opts.epochs,
                                precision = opts.precision,
                                dir = opts.dir .. "/student", options = opts, device = opts.device,
                                resume = opts.resume, overwrite = opts.overwrite}
if result.interrupted then os.exit(130) end
print(("student test accuracy %.4f (%s, %d epochs, T = %g, alpha = %g; teacher %.4f)"):format(
   result.last.test_acc, opts.student, opts.epochs, opts.T, opts.alpha, teacherAcc))

-- 4. the student, exported
student:cpu()
student:evaluate()
if opts.exportTorch ~= "" then
   local n = torch.save(student, opts.exportTorch)
   print(("student: %d tensors written as a PyTorch state dict to %s"):format(n, opts.exportTorch))
end
if opts.export ~= "" then
   local ok, onnx = pcall(require, "retort.onnx")
   local why = not ok and tostring(onnx):match("^[^\n]*") or nil
   local core = require "retort.core"
   if ok and core.onnxAvailable then
      local built, reason = core.onnxAvailable()
      if not built then why = reason end
   end
   if not why then
      local x = test:batches()() -- the first test batch; one of its inputs is the traced sample
      local sample = x:narrow(1, 1, 1):cpu()
      local info = onnx.export(student, sample, opts.export)
      print(("student: ONNX written to %s (%d bytes, %d nodes)"):format(opts.export, info.bytes, info.nodes))
   else
      print(("student: ONNX export is unavailable (%s), so %s was not written; the student is in %s/student/best.h5")
            :format(why, opts.export, opts.dir))
   end
end
