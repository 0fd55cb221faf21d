-- The training loop on a small synthetic problem with an in-memory loader.
local retort = require "retort"
local support = require "support"
local nn = retort.nn

local N, D, C = 256, 12, 3

-- A minimal loader: fixed data, order shuffled from (seed, epoch) so resumes can replay it.
local function make_loader(X, Y, batch, seed)
   local loader = {epoch = 1}
   function loader.setEpoch(self, e) self.epoch = e end
   function loader.numExamples() return N end
   function loader.batches(self)
      local order = {}
      for i = 1, N do order[i] = i end
      local s = seed * 1000 + self.epoch -- a tiny LCG shuffle: deterministic, independent of retort's RNG
      for i = N, 2, -1 do
         s = (s * 1103515245 + 12345) % 2147483648
         local j = s % i + 1
         order[i], order[j] = order[j], order[i]
      end
      local idx = retort.tensor(order, "i64")
      local i = 0
      return function()
         if i >= N then return nil end
         local b = math.min(batch, N - i)
         local sel = idx:narrow(1, i + 1, b)
         i = i + b
         return X:indexSelect(1, sel), Y:indexSelect(1, sel)
      end
   end
   return loader
end

local function problem(seed)
   retort.manualSeed(seed)
   local X = retort.randn(N, D)
   local Y = X:matmul(retort.randn(D, C)):argmax(2)
   return X, Y
end

local function ce(logits, y) return -(logits:logSoftmax(2):gather(2, y:view(-1, 1)):mean()) end

local function run(opts)
   local X, Y = problem(11)
   retort.manualSeed(opts.seed or 5)
   local net = nn.Sequential():add("fc1", nn.Linear(D, 16)):add("relu", nn.ReLU()):add("drop", nn.Dropout(0.2))
      :add("fc2", nn.Linear(16, C))
   local opt = retort.optim.SGD(net:parameters(), {lr = opts.lr or 0.1, momentum = 0.9})
   local sink = io.open("/dev/null", "w")
   local loss = ce
   if opts.interruptAt then -- what Ctrl-C does: the host raises "interrupted!" in the middle of a batch
      loss = function(logits, y, ctx)
         if ctx.epoch == opts.interruptAt[1] and ctx.step == opts.interruptAt[2] then error("interrupted!") end
         return ce(logits, y)
      end
   end
   local r = retort.train.fit{model = net, optimizer = opt, train = make_loader(X, Y, 32, 1),
      test = make_loader(X, Y, 64, 2), epochs = opts.epochs or 3, loss = loss, log = sink, dir = opts.dir,
      resume = opts.resume, overwrite = opts.overwrite}
   sink:close()
   return r, net
end

local has_dropout = retort.Tensor.dropout ~= nil
local has_save = pcall(function() return retort.save ~= nil and retort.getRngState ~= nil end)
   and retort.save ~= nil and retort.getRngState ~= nil

describe("train.fit", function()
   it("learns the synthetic problem and reports per-epoch metrics", function()
      if not has_dropout then return pending("needs Tensor:dropout") end
      local r = run{}
      assert.are.equal(3, #r.history)
      assert.is_true(r.history[3].train_loss < r.history[1].train_loss)
      assert.is_true(r.history[3].test_acc > 0.8, "test acc " .. r.history[3].test_acc)
      assert.are.equal(r.best_epoch, 3)
   end)

   it("is deterministic: same seed, same metrics", function()
      if not has_dropout then return pending("needs Tensor:dropout") end
      local a, b = run{seed = 9}, run{seed = 9}
      for e = 1, 3 do
         assert.are.equal(a.history[e].train_loss, b.history[e].train_loss)
         assert.are.equal(a.history[e].test_acc, b.history[e].test_acc)
      end
   end)

   it("stops on a non-finite loss and names the epoch and batch", function()
      if not has_dropout then return pending("needs Tensor:dropout") end
      local ok, err = pcall(run, {lr = 1e30})
      assert.is_false(ok)
      assert.matches("train: .* at epoch %d+, batch %d+", err)
   end)

   it("names a parameter that is not finite (checked every 50 batches)", function()
      local net = nn.Sequential():add("fc", nn.Linear(20, 3)):add("unused", nn.Linear(2, 2))
      net.apply = function(self, x) return self:runChild("fc", x) end -- the NaN never reaches the loss
      retort.noGrad(function() net:get("unused").weight:fill_(0 / 0) end)
      local ds = retort.data.blobs{n = 1000, dim = 20, classes = 3, seed = 1}
      local ok, err = pcall(retort.train.fit, {model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0.01}),
         train = retort.data.Loader(ds, {batchSize = 16}), log = io.open("/dev/null", "w")})
      assert.is_false(ok)
      assert.matches("train: parameter 'unused.weight' is not finite at epoch 1, batch 50; stopping", err, 1, true)
   end)

   it("resumes from the last checkpoint exactly as if never stopped", function()
      if not (has_dropout and has_save) then return pending("needs retort.save and Tensor:dropout") end
      local dir = support.tmpdir()
      local full = run{epochs = 3}
      run{epochs = 2, dir = dir}                        -- stops after epoch 2 (as if killed)
      local resumed = run{epochs = 3, dir = dir, resume = true}
      assert.are.equal(1, #resumed.history)             -- only epoch 3 ran
      assert.are.equal(full.history[3].train_loss, resumed.history[1].train_loss)
      assert.are.equal(full.history[3].test_loss, resumed.history[1].test_loss)
      local rows = require("retort.train.metrics").read(dir .. "/metrics.csv")
      assert.are.equal(3, #rows)
      support.rmrf(dir)
   end)

   it("refuses a fresh run into a directory holding another run, unless told to overwrite it", function()
      if not has_save then return pending("needs retort.save") end
      local dir = support.tmpdir()
      run{epochs = 2, dir = dir}
      local before = support.slurp(dir .. "/metrics.csv")
      local ok, err = pcall(run, {epochs = 1, dir = dir})
      assert.is_false(ok)
      assert.matches(("train.fit: run directory %s already holds a run (metrics.csv, last.h5, best.h5): pass "
                      .. "resume = true to continue it (--resume), overwrite = true to replace it (--overwrite)")
                     :format(dir), err, 1, true)
      assert.are.equal(before, support.slurp(dir .. "/metrics.csv")) -- untouched
      local r = run{epochs = 1, dir = dir, overwrite = true}
      assert.are.equal(1, #r.history)
      assert.are.equal(1, #require("retort.train.metrics").read(dir .. "/metrics.csv"))
      support.rmrf(dir)
   end)

   it("keeps metrics.csv in step with last.h5 across kills and repeated resumes", function()
      if not has_save then return pending("needs retort.save") end
      local metrics = require "retort.train.metrics"
      local function lines(path)
         local out = {}
         for l in io.lines(path) do out[#out + 1] = l end
         return out
      end
      local dir = support.tmpdir()
      local full = run{epochs = 4}
      run{epochs = 2, dir = dir}
      local good = lines(dir .. "/metrics.csv")
      assert.are.equal(3, #good) -- header + 2 rows
      -- killed after epoch 2's checkpoint but before its row: the row comes back from the checkpoint
      local f = assert(io.open(dir .. "/metrics.csv", "w"))
      f:write(good[1], "\n", good[2], "\n")
      f:close()
      run{epochs = 3, dir = dir, resume = true}
      local after = lines(dir .. "/metrics.csv")
      assert.are.equal(4, #after)
      assert.are.same({good[1], good[2], good[3]}, {after[1], after[2], after[3]})
      -- a row of an epoch the checkpoint has not reached (written by a later run whose last.h5 was
      -- lost): dropped, then written again by the resumed epoch
      local ck = retort.load(dir .. "/last.h5")
      assert.are.equal(4, ck.train.epoch)
      retort.save(dir .. "/last.h5", (function() ck.train.epoch = 3; return ck end)())
      run{epochs = 4, dir = dir, resume = true}
      local rows = metrics.read(dir .. "/metrics.csv")
      assert.are.same({1, 2, 3, 4}, {rows[1].epoch, rows[2].epoch, rows[3].epoch, rows[4].epoch})
      assert.are.equal(4, #rows)
      -- resuming a run whose metrics.csv is gone writes a header first, and a second resume keeps it
      os.remove(dir .. "/metrics.csv")
      run{epochs = 5, dir = dir, resume = true}
      run{epochs = 6, dir = dir, resume = true}
      local last = lines(dir .. "/metrics.csv")
      assert.are.equal(good[1], last[1])
      assert.are.equal(3, #last)
      rows = metrics.read(dir .. "/metrics.csv")
      assert.are.same({5, 6}, {rows[1].epoch, rows[2].epoch})
      for _, r in ipairs(rows) do assert.is_number(r.train_loss) end
      assert.are.equal(full.history[4].epoch, 4)
      support.rmrf(dir)
   end)

   it("refuses to resume from a checkpoint with NaN weights or optimizer state, or a training state out of range",
      function()
      if not has_save then return pending("needs retort.save") end
      local dir = support.tmpdir()
      run{epochs = 1, dir = dir}
      local good = retort.load(dir .. "/last.h5")
      local function resume_with(edit)
         local ck = retort.load(dir .. "/last.h5")
         edit(ck)
         retort.save(dir .. "/edited.h5", ck)
         local ok, err = pcall(run, {epochs = 2, dir = dir, resume = dir .. "/edited.h5"})
         assert.is_false(ok)
         return err
      end
      local function first_tensor(t)
         local keys = {}
         for k in pairs(t) do keys[#keys + 1] = k end
         table.sort(keys)
         for _, k in ipairs(keys) do
            if retort.isTensor(t[k]) then return t[k], k end
            if type(t[k]) == "table" then
               local v, name = first_tensor(t[k])
               if v then return v, k .. "/" .. name end
            end
         end
      end
      local err = resume_with(function(ck) local w = first_tensor(ck.model); w:fill_(0 / 0) end)
      local _, wname = first_tensor(good.model)
      assert.matches(("cannot resume from %s/edited.h5: /model/%s holds a NaN or an infinity"):format(dir, wname), err,
                     1, true)
      assert.is_not_nil(first_tensor(good.optim))
      err = resume_with(function(ck) local m = first_tensor(ck.optim); m:fill_(math.huge) end)
      assert.matches("/optim/.* holds a NaN or an infinity", err)
      err = resume_with(function(ck) ck.train.epoch = -5 end)
      assert.matches("/train attribute epoch should be an integer >= 1, found integer -5", err, 1, true)
      err = resume_with(function(ck) ck.train.best_acc = 0 / 0 end)
      assert.matches("/train attribute best_acc should be a number in [-1, 1], found", err, 1, true)
      err = resume_with(function(ck) ck.train.step = "4" end)
      assert.matches("/train attribute step should be an integer >= 0, found the string \"4\"", err, 1, true)
      err = resume_with(function(ck) ck.train.correct = ck.train.seen + 1 end)
      assert.matches("examples of the epoch were right out of", err, 1, true)
      err = resume_with(function(ck) ck.train.best_epoch = ck.train.epoch + 1 end)
      assert.matches("as the best, but the run is at epoch", err, 1, true)
      -- one sentence naming the file, without the Lua position of the check that refused it
      err = resume_with(function(ck) ck.optim.groups[1].momentum = {1, 2} end)
      assert.matches(("^train.fit: cannot resume from %s/edited.h5: optim.SGD:loadStateDict: group 1's option momentum "
                      .. "should be a number, found a list of 2 value%%(s%%)$"):format(dir:gsub("%p", "%%%0")), err)
      -- the untouched checkpoint still resumes
      assert.are.equal(1, #run{epochs = 2, dir = dir, resume = true}.history)
      support.rmrf(dir)
   end)

   it("resumes exactly from a checkpoint taken mid-epoch by an interruption", function()
      if not (has_dropout and has_save) then return pending("needs retort.save and Tensor:dropout") end
      local dir = support.tmpdir()
      local full = run{epochs = 3}
      local cut = run{epochs = 3, dir = dir, interruptAt = {2, 3}} -- dropout draws of batch 3 are redone
      assert.is_true(cut.interrupted)
      assert.are.equal(1, #cut.history)
      local resumed = run{epochs = 3, dir = dir, resume = true}
      assert.are.equal(2, #resumed.history)
      for e = 2, 3 do
         assert.are.equal(full.history[e].train_loss, resumed.history[e - 1].train_loss)
         assert.are.equal(full.history[e].test_loss, resumed.history[e - 1].test_loss)
      end
      support.rmrf(dir)
   end)
end)
