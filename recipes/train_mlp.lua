-- Train Hinton-style MLPs on Fashion-MNIST: the 784-1200-1200-10 teacher or the 784-800-800-10
-- student (Hinton, Vinyals & Dean 2015, section 3).
--
--   retort run recipes/train_mlp.lua                       -- teacher, 10 epochs
--   retort run recipes/train_mlp.lua --size=student --epochs=5 --dir=runs/student
--   retort run recipes/train_mlp.lua --resume               -- continue the run in --dir
--   retort run recipes/train_mlp.lua --device=cuda          -- on the GPU ("auto": there when there is one)
--
-- Writes <dir>/metrics.csv, <dir>/last.h5 and <dir>/best.h5; Ctrl-C saves last.h5 and exits.
local retort = require "retort"

local opts = retort.recipe.options({
   size = "teacher", epochs = 10, batch = 128, lr = 0.05, momentum = 0.9, weightDecay = 5e-4,
   dropout = 0.0, seed = 1, threads = 2, dir = "", resume = false, overwrite = false, limit = 0,
   device = "cpu", precision = "f32",
}, {...}, {
   size = "teacher (784-1200-1200-10) or student (784-800-800-10)",
   epochs = "epochs to train",
   batch = "training batch size",
   lr = "initial learning rate (cosine decay to 0 over each training run)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   dropout = "dropout probability in the hidden layers (0: none)",
   seed = "random seed (data order, initial weights)",
   threads = "CPU threads",
   dir = "output directory: metrics.csv, last.h5, best.h5 (empty: runs/mlp-<size>)",
   resume = "continue from <dir>/last.h5",
   overwrite = "replace the run already in --dir (without it, a fresh run into a used --dir is refused)",
   limit = "use only the first N training and test examples (0: all)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
})

local sizes = ({teacher = {784, 1200, 1200, 10}, student = {784, 800, 800, 10}})[opts.size]
if not sizes then error(("unknown --size=%s (teacher or student)"):format(opts.size), 0) end
local dir = opts.dir ~= "" and opts.dir or ("runs/mlp-" .. opts.size)

retort.setNumThreads(opts.threads)
retort.manualSeed(opts.seed)

local train_loader, test_loader = retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = opts.seed,
                                                                  limit = opts.limit, device = opts.device}

local model = retort.models.mlp{sizes = sizes, dropout = opts.dropout}
local optimizer = retort.recipe.optimizer(model:parameters(), opts, opts.epochs)
print(model)

local started = retort.clock()
local result = retort.train.fit{
   precision = opts.precision, model = model, optimizer = optimizer, train = train_loader, test = test_loader,
   epochs = opts.epochs, dir = dir, resume = opts.resume, overwrite = opts.overwrite, options = opts,
   device = opts.device,
}
if not result.interrupted then
   local last = result.last
   print(("MLP %s: test accuracy %.4f after %d epochs (best %.4f at epoch %d) in %.1f s; checkpoints in %s"):format(
      opts.size, last and last.test_acc or result.best_acc, opts.epochs, result.best_acc, result.best_epoch,
      retort.clock() - started, dir))
end
