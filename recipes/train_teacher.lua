-- Train a CNN teacher on Fashion-MNIST (two conv-relu-pool blocks, then fc-relu-dropout-fc),
-- with random-crop and flip augmentation, SGD with momentum and a cosine learning rate.
--
--   retort run recipes/train_teacher.lua                          -- 15 epochs into runs/cnn-teacher
--   retort run recipes/train_teacher.lua --epochs=2 --channels=16,32 --dir=runs/quick
--   retort run recipes/train_teacher.lua --resume                  -- continue the run in --dir
--   retort run recipes/train_teacher.lua --device=cuda             -- on the GPU ("auto": there when there is one)
--
-- Writes <dir>/metrics.csv, <dir>/last.h5 and <dir>/best.h5; Ctrl-C saves last.h5 and exits.
local retort = require "retort"

local opts = retort.recipe.options({
   epochs = 15, batch = 128, lr = 0.05, momentum = 0.9, weightDecay = 5e-4, channels = "32,64",
   hidden = 128, dropout = 0.3, crop = 2, flip = true, seed = 1, threads = 2, dir = "runs/cnn-teacher",
   resume = false, overwrite = false, limit = 0, device = "cpu", precision = "f32",
}, {...}, {
   epochs = "epochs to train",
   batch = "training batch size",
   lr = "initial learning rate (cosine decay to 0 over each training run)",
   momentum = "SGD momentum",
   weightDecay = "L2 weight decay",
   channels = "output channels of the two conv blocks, comma-separated",
   hidden = "units of the hidden fully connected layer",
   dropout = "dropout probability before the last layer",
   crop = "training augmentation: random-crop padding in pixels (0: none)",
   flip = "training augmentation: random horizontal flips",
   seed = "random seed (data order, initial weights)",
   threads = "CPU threads",
   dir = "output directory: metrics.csv, last.h5, best.h5",
   resume = "continue from <dir>/last.h5",
   overwrite = "replace the run already in --dir (without it, a fresh run into a used --dir is refused)",
   limit = "use only the first N training and test examples (0: all)",
   device = "cpu, cuda, or auto (cuda when there is a GPU)",
   precision = retort.recipe.PRECISION_HELP,
})

local channels = {}
for c in opts.channels:gmatch("%d+") do channels[#channels + 1] = tonumber(c) end
if #channels == 0 then error(("--channels expects numbers like 32,64, got '%s'"):format(opts.channels), 0) end

retort.setNumThreads(opts.threads)
retort.manualSeed(opts.seed)

local augment = (opts.crop > 0 or opts.flip) and {crop = opts.crop, flip = opts.flip} or nil
local train_loader, test_loader = retort.data.fashionMnistLoaders{batchSize = opts.batch, seed = opts.seed,
                                                                  limit = opts.limit, augment = augment,
                                                                  device = opts.device}

local model = retort.models.cnn{channels = channels, hidden = opts.hidden, dropout = opts.dropout}
local optimizer = retort.recipe.optimizer(model:parameters(), opts, opts.epochs)
print(model)

local started = retort.clock()
local result = retort.train.fit{
   precision = opts.precision, model = model, optimizer = optimizer, train = train_loader, test = test_loader,
   epochs = opts.epochs, dir = opts.dir, resume = opts.resume, overwrite = opts.overwrite, options = opts,
   device = opts.device,
}
if not result.interrupted then
   local last = result.last
   print(("CNN teacher: test accuracy %.4f after %d epochs (best %.4f at epoch %d) in %.1f s; "
          .. "checkpoints in %s"):format(
      last and last.test_acc or result.best_acc, opts.epochs, result.best_acc, result.best_epoch,
      retort.clock() - started, opts.dir))
end
