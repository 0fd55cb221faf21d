-- Train a CNN teacher on Fashion-MNIST (two conv-relu-pool blocks, then fc-relu-dropout-fc),
-- with random-crop and flip augmentation, SGD with momentum and a cosine learning rate.
--
--   retort run recipes/train_teacher.lua                          -- 15 epochs into runs/cnn-teacher
--   retort run recipes/train_teacher.lua --epochs=2 --channels=16,32 --dir=runs/quick
--   retort run recipes/train_teacher.lua --resume                  -- continue the run in --dir
--
-- Writes <dir>/metrics.csv, <dir>/last.h5 and <dir>/best.h5; Ctrl-C saves last.h5 and exits.
local retort = require "retort"

local opts = retort.recipe.options({
   epochs = 15, batch = 128, lr = 0.05, momentum = 0.9, weightDecay = 5e-4, channels = "32,64",
   hidden = 128, dropout = 0.3, crop = 2, flip = true, seed = 1, threads = 2, dir = "runs/cnn-teacher",
   resume = false, limit = 0,
}, {...})

local channels = {}
for c in opts.channels:gmatch("%d+") do channels[#channels + 1] = tonumber(c) end
if #channels == 0 then error(("--channels expects numbers like 32,64, got '%s'"):format(opts.channels), 0) end

retort.setNumThreads(opts.threads)
retort.manualSeed(opts.seed)

local data = retort.data
local train_set = data.fashionMnist{split = "train"}
local test_set = data.fashionMnist{split = "test"}
if opts.limit > 0 then -- a quick run on the first examples (smoke tests)
   train_set = data.tensorDataset(train_set.x:narrow(1, 1, opts.limit), train_set.y:narrow(1, 1, opts.limit))
   test_set = data.tensorDataset(test_set.x:narrow(1, 1, opts.limit), test_set.y:narrow(1, 1, opts.limit))
end
local norm = {mean = data.fashionMnistMean, std = data.fashionMnistStd}
local augment = (opts.crop > 0 or opts.flip) and {crop = opts.crop, flip = opts.flip} or nil
local train_loader = data.Loader(train_set, {batchSize = opts.batch, shuffle = true, seed = opts.seed,
                                             normalize = norm, augment = augment})
local test_loader = data.Loader(test_set, {batchSize = 1000, normalize = norm})

local model = retort.models.cnn{channels = channels, hidden = opts.hidden, dropout = opts.dropout}
local optimizer = retort.optim.SGD(model:parameters(), {
   lr = retort.schedule.cosine{base = opts.lr, min = 0, epochs = opts.epochs},
   momentum = opts.momentum, weightDecay = opts.weightDecay,
})
print(model)

local started = retort.clock()
local result = retort.train.fit{
   model = model, optimizer = optimizer, train = train_loader, test = test_loader,
   epochs = opts.epochs, dir = opts.dir, resume = opts.resume, options = opts,
}
if not result.interrupted then
   local last = result.history[#result.history]
   print(("CNN teacher: test accuracy %.4f after %d epochs (best %.4f at epoch %d) in %.1f s; checkpoints in %s"):format(
      last and last.test_acc or result.best_acc, opts.epochs, result.best_acc, result.best_epoch,
      retort.clock() - started, opts.dir))
end
