-- Hinton knowledge distillation on Fashion-MNIST (Hinton, Vinyals & Dean 2015): a 784-1200-1200-10
-- teacher, the 784-800-800-10 student trained alone, and the same student distilled from the
-- teacher with the pinned KD loss (DESIGN.md §4): alpha * T^2 * KL + (1 - alpha) * CE, T = 20.
-- Prints the three test accuracies.
--
--   retort run recipes/kd.lua                                   -- teacher, student, distilled student
--   retort run recipes/kd.lua --teacher=runs/mlp-teacher/best.h5 -- reuse a trained teacher
--   retort run recipes/kd.lua --T=4 --alpha=0.5 --epochs=5
--   retort run recipes/kd.lua --teacherModel=cnn --teacher=runs/cnn-teacher/best.h5 --T=4   -- CNN teacher -> MLP student
local retort = require "retort"

local opts = retort.recipe.options({
   epochs = 10, teacherEpochs = 10, batch = 128, lr = 0.05, momentum = 0.9, weightDecay = 5e-4, T = 20,
   alpha = 0.9, seed = 1, threads = 2, teacher = "", teacherModel = "mlp", dir = "runs/kd", limit = 0,
}, {...})
retort.setNumThreads(opts.threads)

local function loaders()
   return retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = opts.seed, limit = opts.limit}
end

-- Train `model` with `loss` (default cross-entropy) into dir; returns the final test accuracy.
local function fit(name, model, epochs, loss)
   local train, test = loaders()
   local optimizer = retort.optim.SGD(model:parameters(), {
      lr = retort.schedule.cosine{base = opts.lr, min = 0, epochs = epochs},
      momentum = opts.momentum, weightDecay = opts.weightDecay,
   })
   local started = retort.clock()
   local result = retort.train.fit{model = model, optimizer = optimizer, train = train, test = test, epochs = epochs,
                                   dir = opts.dir .. "/" .. name, loss = loss, options = opts}
   if result.interrupted then os.exit(130) end
   local acc = result.history[#result.history].test_acc
   print(("%-18s test accuracy %.4f  (%d epochs, %.1f s)"):format(name, acc, epochs, retort.clock() - started))
   return acc
end

-- 1. the teacher: trained here, or loaded from a checkpoint
retort.manualSeed(opts.seed)
local teacher_models = {
   mlp = function() return retort.models.mlp{sizes = {784, 1200, 1200, 10}} end,
   cnn = function() return retort.models.cnn{dropout = 0.3} end, -- recipes/train_teacher.lua with its defaults
}
local make_teacher = teacher_models[opts.teacherModel]
   or error(("unknown --teacherModel=%s (mlp or cnn)"):format(opts.teacherModel), 0)
local teacher = make_teacher()
local teacher_acc
if opts.teacher ~= "" then
   teacher:loadStateDict(retort.load(opts.teacher).model)
   local _, test = loaders()
   teacher_acc = retort.train.evaluate(teacher, test).acc
   print(("%-18s test accuracy %.4f  (loaded from %s)"):format("teacher", teacher_acc, opts.teacher))
else
   teacher_acc = fit("teacher", teacher, opts.teacherEpochs)
end
teacher:evaluate() -- frozen: evaluation mode, never given to an optimizer, run without a graph

-- 2. the student alone, and 3. the same student (same seed, same initial weights) distilled
retort.manualSeed(opts.seed + 1)
local alone_acc = fit("student", retort.models.mlp{sizes = {784, 800, 800, 10}}, opts.epochs)

retort.manualSeed(opts.seed + 1)
local student = retort.models.mlp{sizes = {784, 800, 800, 10}}
local kd_acc = fit("student-kd", student, opts.epochs, function(logits, y, ctx)
   if ctx.evaluating then return retort.loss.crossEntropy(logits, y) end
   local teacher_logits = retort.noGrad(function() return teacher:forward(ctx.x) end)
   return (retort.distill.kd(logits, teacher_logits, {T = opts.T, alpha = opts.alpha, labels = y}))
end)

print(("\nteacher %.4f | student alone %.4f | distilled student %.4f (T = %g, alpha = %g)"):format(
   teacher_acc, alone_acc, kd_acc, opts.T, opts.alpha))
local gap = teacher_acc - alone_acc
if gap > 0 then
   print(("distillation recovered %.0f%% of the teacher-student gap"):format(100 * (kd_acc - alone_acc) / gap))
end
