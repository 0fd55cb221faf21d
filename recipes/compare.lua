-- Train the same student with every distillation method and print a table like RepDistiller's
-- README (method, test accuracy at the last and the best epoch, time).
-- Teacher: the CNN of recipes/train_teacher.lua (channels 32-64, fc 128); student: the same design,
-- thinner (channels 8-16, fc 64). Feature methods pair the two conv blocks (relu1, relu2) or the
-- penultimate features (relu), as RepDistiller pairs its feature lists; weights are the published
-- defaults, with CE weight gamma = 1 (and the KD row: gamma 0.1, alpha 0.9, T 4). Every row trains
-- with SGD (momentum 0.9) at lr 0.01: at 0.05 this student, which has no BatchNorm, died (10%
-- accuracy) under the KD, SP, NST, AB and DKD losses. A row that diverges is reported as such.
-- AB and FT first run RepDistiller's init stage (--initEpochs, there 30): AB trains the student's
-- conv blocks and connectors on the pre-ReLU maps, FT the paraphraser; then the main stage (AB: CE
-- alone, as RepDistiller's abound row; FT: CE + its factor loss). CRD draws --crdNegatives negatives
-- per example (RepDistiller's 16384 is too heavy for 2 CPU cores). FSP is left out: it needs the
-- paired layers of both networks to have equal channel counts, and this student is thinner.
--
--   retort run recipes/compare.lua --teacher=runs/cnn-teacher/best.h5 --epochs=5
--   retort run recipes/compare.lua --teacher=... --methods=ce,kd,at,dkd
--   retort run recipes/compare.lua --teacher=... --device=cuda     -- on the GPU ("auto": there when there is one)
local retort = require "retort"
local distill = retort.distill

local opts = retort.recipe.options({
   teacher = "", teacherEpochs = 5, epochs = 5, batch = 128, lr = 0.01, momentum = 0.9, weightDecay = 5e-4,
   methods = "ce,kd,fitnet,at,sp,cc,vid,rkd,pkt,nst,ab,ft,crd,dkd,logitl2", seed = 1, threads = 2,
   dir = "runs/compare", limit = 0, initEpochs = 2, crdNegatives = 4096, device = "cpu", resume = false,
   precision = "f32",
   overwrite = false, export = "",
}, {...}, {
   teacher = "teacher checkpoint (the CNN of recipes/train_teacher.lua); empty: train one first",
   teacherEpochs = "epochs to train the teacher when --teacher is not given",
   epochs = "epochs of each method (its main stage)",
   batch = "training batch size",
   lr = "initial learning rate of every method (cosine decay to 0)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   methods = "comma-separated methods to compare: ce, kd, fitnet, at, sp, cc, vid, rkd, pkt, nst, ab, ft, crd, "
             .. "dkd, logitl2",
   seed = "random seed (data order, the teacher; every student starts from seed + 1)",
   threads = "CPU threads",
   dir = "output directory: a run folder per method",
   limit = "use only the first N training and test examples (0: all)",
   initEpochs = "epochs of the init stage of AB and FT",
   crdNegatives = "negatives drawn per example by CRD",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
   export = "write the student of the method with the best last accuracy as ONNX to this file when done "
      .. "(e.g. student.onnx; empty: none)",
   resume = "continue each run in --dir from its last.h5 (a finished one is not trained again)",
   overwrite = "replace the runs already in --dir (without it, a fresh run into a used --dir is refused)",
})
retort.setNumThreads(opts.threads)

-- method -> Distiller options (pairs use the tap names of models.cnn)
local both = function(loss)
   return {{hint = "relu1", guided = "relu1", loss = loss}, {hint = "relu2", guided = "relu2", loss = loss}}
end
local METHODS = {
   ce = {},
   kd = {gamma = 0.1, alpha = 0.9, T = 4},
   fitnet = {pairs = {{hint = "relu2", guided = "relu2", loss = distill.FitNet{variant = "convreg"}}}},
   at = {pairs = both("at")},
   sp = {pairs = {{hint = "relu2", guided = "relu2", loss = "sp"}}},
   cc = {pairs = {{hint = "relu", guided = "relu", loss = "cc"}}},
   vid = {pairs = both("vid")},
   rkd = {pairs = {{hint = "relu", guided = "relu", loss = "rkd"}}},
   pkt = {pairs = {{hint = "relu", guided = "relu", loss = "pkt"}}},
   nst = {pairs = both("nst")},
   -- RepDistiller weights the k-th of n AB layers by 2^(k - n) on top of AB's 3/1000
   ab = {init = true, pairs = {{hint = "conv1", guided = "conv1", loss = "ab", weight = 1.5e-3},
                               {hint = "conv2", guided = "conv2", loss = "ab", weight = 3e-3}}},
   ft = {init = true, pairs = {{hint = "relu2", guided = "relu2", loss = "ft"}}},
   crd = {pairs = function(train) -- its memory bank is sized by the training set
      return {{hint = "relu", guided = "relu", loss = distill.CRD{labels = train.y, negatives = opts.crdNegatives}}}
   end},
   -- mdistiller ramps DKD's weight up over its first 20 of 240 epochs; here over the first epoch
   dkd = {pairs = {{hint = "logits", guided = "logits", loss = "dkd",
                    weight = retort.schedule.linear{from = 0, to = 1, epochs = 1}}}},
   -- 0.5 ||s - t||^2 summed over classes starts in the hundreds: 0.05 keeps its gradient near CE's
   logitl2 = {pairs = {{hint = "logits", guided = "logits", loss = "logitl2", weight = 0.05}}},
}

local function loaders()
   return retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = opts.seed, limit = opts.limit,
                                          device = opts.device}
end

local function fit(name, model, epochs, params, init)
   local train, test = loaders()
   local optimizer = retort.recipe.optimizer(params or model:parameters(), opts, epochs)
   local started = retort.clock()
   local r = retort.train.fit{model = model, optimizer = optimizer, train = train, test = not init and test or nil,
                              precision = opts.precision,
                              epochs = epochs, dir = opts.dir .. "/" .. name, options = opts, device = opts.device,
                              resume = opts.resume, overwrite = opts.overwrite}
   if r.interrupted then os.exit(130) end
   if init then return {seconds = retort.clock() - started} end
   return {acc = r.last.test_acc, best = r.best_acc, seconds = retort.clock() - started}
end

-- every named method exists: checked before anything trains
for name in opts.methods:gmatch("[^,%s]+") do
   if not METHODS[name] then
      local known = {}
      for k in pairs(METHODS) do known[#known + 1] = k end
      table.sort(known)
      error(("unknown method '%s' in --methods; known: %s"):format(name, table.concat(known, ", ")), 0)
   end
end

local teacher = retort.models.cnn{dropout = 0.3}
if opts.teacher ~= "" then
   teacher:loadStateDict(retort.load(opts.teacher).model)
else
   retort.manualSeed(opts.seed)
   fit("teacher", teacher, opts.teacherEpochs)
end
local _, test = loaders()
local teacher_acc = retort.train.evaluate(teacher, test).acc

local sample = retort.data.fashionMnistLoaders{batchSize = 2, limit = 2}:batches()()
local rows = {}
local best -- the method with the best last accuracy: its student is what --export writes
for name in opts.methods:gmatch("[^,%s]+") do
   local spec = METHODS[name]
   retort.manualSeed(opts.seed + 1) -- the same initial student for every method
   local student = retort.models.cnn{channels = {8, 16}, hidden = 64}
   local pairs = spec.pairs
   if type(pairs) == "function" then pairs = pairs(loaders()) end
   local d = distill.Distiller{teacher = teacher, student = student, sample = sample, pairs = pairs,
                               gamma = spec.gamma or 1, alpha = spec.alpha or 0, beta = 1, T = spec.T or 4}
   io.stderr:write(("== %s ==\n"):format(name))
   local init_seconds = 0
   if spec.init then
      d:setStage("init")
      init_seconds = fit(name .. "-init", d, opts.initEpochs, d:initParameters(), true).seconds
      d:setStage("main")
   end
   local ok, r = pcall(fit, name, d, opts.epochs)
   if not ok then -- a method that diverges gets its row, and the others still run
      if tostring(r):find("interrupted") then error(r, 0) end
      io.stderr:write(("%s failed: %s\n"):format(name, tostring(r)))
      r = {failed = tostring(r):match("(loss is %S+ at epoch %d+, .-) %(tensor") or "failed", seconds = 0}
   end
   r.name, r.seconds = name, r.seconds + init_seconds
   rows[#rows + 1] = r
   if r.acc and (not best or r.acc > best.acc) then best = {acc = r.acc, student = student} end
end

print(("\nteacher (cnn 32-64) test accuracy %.4f; student cnn 8-16, %d epochs, seed %d"):format(
   teacher_acc, opts.epochs, opts.seed))
print("| method  | last   | best   | time   |")
print("|---------|--------|--------|--------|")
for _, r in ipairs(rows) do
   if r.failed then
      print(("| %-7s | %s |"):format(r.name, r.failed))
   else
      print(("| %-7s | %.4f | %.4f | %5.0fs |"):format(r.name, r.acc, r.best, r.seconds))
   end
end
if best then retort.recipe.export(best.student, (loaders()), opts.export) end
