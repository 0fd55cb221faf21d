local recipe = require "retort.recipe"
local progress = require "retort.progress"
local metrics = require "retort.train.metrics"

describe("recipe.options", function()
   local defaults = {epochs = 3, lr = 0.1, name = "mlp", verbose = false}

   it("keeps defaults and converts overrides to the default's type", function()
      local o = recipe.options(defaults, {"--epochs=5", "--name=cnn", "--verbose"})
      assert.are.same({epochs = 5, lr = 0.1, name = "cnn", verbose = true}, o)
      assert.are.equal(3, defaults.epochs) -- defaults untouched
      assert.is_false(recipe.options(defaults, {"--verbose=no"}).verbose)
   end)

   it("refuses unknown options and lists the known ones", function()
      local ok, err = pcall(recipe.options, defaults, {"--epoch=2"})
      assert.is_false(ok)
      assert.matches("unknown option '%-%-epoch=2'", err)
      assert.matches("%-%-epochs=3", err)
      assert.matches("%-%-lr=0.1", err)
   end)

   it("refuses values of the wrong type", function()
      local ok, err = pcall(recipe.options, defaults, {"--lr=fast"})
      assert.is_false(ok)
      assert.matches("option %-%-lr expects a number, got 'fast'", err)
      ok, err = pcall(recipe.options, defaults, {"--epochs"})
      assert.is_false(ok)
      assert.matches("needs a value", err)
   end)

   it("resolves a device option at once, refusing a GPU it cannot have", function()
      local has_cuda, why = require("retort").cuda.isAvailable()
      local d = {device = "cpu"}
      assert.are.equal("cpu", recipe.options(d, {}).device)
      assert.are.equal(has_cuda and "cuda" or "cpu", recipe.options(d, {"--device=auto"}).device)
      local ok, err = pcall(recipe.options, d, {"--device=gpu"})
      assert.is_false(ok)
      assert.are.equal('option --device must be "cpu", "cuda" or "auto", got gpu', err)
      if not has_cuda then
         ok, err = pcall(recipe.options, d, {"--device=cuda"})
         assert.is_false(ok)
         assert.are.equal('option --device is "cuda" but CUDA is not available: ' .. why, err)
      end
   end)
end)

describe("recipe.optimizer", function()
   local retort = require "retort"
   it("builds SGD or RMSProp on a cosine learning rate, and refuses other names", function()
      local p = {retort.zeros(2):requiresGrad()}
      local sgd = recipe.optimizer(p, {lr = 0.1, momentum = 0.9, weightDecay = 0}, 4)
      assert.are.equal("SGD", sgd.name)
      assert.are.equal(0.1, sgd:currentLr())
      local rms = recipe.optimizer(p, {optimizer = "rmsprop", lr = 1e-3, weightDecay = 0}, 4)
      assert.are.equal("RMSProp", rms.name)
      local ok, err = pcall(recipe.optimizer, p, {optimizer = "adagrad", lr = 1}, 1)
      assert.is_false(ok); assert.matches("--optimizer must be sgd or rmsprop, got adagrad", err, 1, true)
   end)
end)

describe("progress", function()
   it("prints plain lines with rate, values and a final elapsed time when not on a terminal", function()
      local path = os.tmpname()
      local f = io.open(path, "w")
      local p = progress.new{total = 100, label = "epoch 1/1", stream = f, tty = false, every = 0}
      p:update(50, {loss = 0.5})
      p:update(50)
      p:finish{loss = 0.25}
      f:close()
      local text = io.open(path):read("a")
      os.remove(path)
      assert.matches("epoch 1/1%s+50%%%s+50/100%s+[%d%.k]+ ex/s%s+loss 0.5%s+ETA", text)
      assert.matches("100%%%s+100/100.*loss 0.25%s+%d+:%d%d\n$", text)
   end)
end)

describe("metrics files", function()
   it("round-trips CSV rows and keeps the header when appending", function()
      local path = os.tmpname() .. ".csv"
      local w = metrics.open(path, {columns = {"epoch", "loss", "acc"}})
      w:write{epoch = 1, loss = 0.5}
      w:close()
      w = metrics.open(path, {append = true})
      w:write{epoch = 2, loss = 0.25, acc = 0.75}
      w:close()
      local rows = metrics.read(path)
      os.remove(path)
      assert.are.same({{epoch = 1, loss = 0.5}, {epoch = 2, loss = 0.25, acc = 0.75}}, rows)
   end)

   it("writes JSON lines with non-finite numbers as null", function()
      local path = os.tmpname() .. ".jsonl"
      local w = metrics.open(path)
      w:write{epoch = 1, loss = 0 / 0, split = "train"}
      w:close()
      local text = io.open(path):read("a")
      os.remove(path)
      assert.are.equal('{"epoch":1,"loss":null,"split":"train"}\n', text)
   end)
end)
