-- The training loop: epochs, evaluation, progress, metrics files, best/last checkpoints,
-- exact resume, a stop on non-finite loss, and Ctrl-C that saves before it exits.
--
--   local result = retort.train.fit{
--      model = net, optimizer = opt, train = trainLoader, test = testLoader,
--      epochs = 10, dir = "runs/mlp",            -- metrics.csv, last.h5, best.h5 go here
--      loss = function(logits, y, ctx) ... end,  -- default: cross-entropy; ctx = {epoch, step, epochs, x,
--                                                --   indices (the batch's dataset indices, when the loader
--                                                --   gives them), weights (per-example weights, when the
--                                                --   loader has weights(idx, epoch))}
--                                                -- may return a second value: {term = number or
--                                                --   one-element tensor} to log
--      terms = {"kl", ...},                      -- the term names to write as train_<term> columns
--      resume = "runs/mlp/last.h5",              -- or true: dir/last.h5 when it exists
--      overwrite = true,                         -- replace a finished or stopped run in dir (default:
--                                                --   refuse a dir that holds metrics.csv/last.h5/best.h5)
--      device = "cuda",                          -- or "cpu", "auto": moves the model there first
--                                                -- (default: where it is); batches follow the model
--      readEvery = 50,                           -- on a GPU: steps between reads of the running sums
--      bucketMB = 4,                             -- several ranks: gradient bucket size (see below)
--      syncBatchNorm = true,                     -- several ranks: BatchNorm statistics over the whole batch
--                                                --   (nn.SyncBatchNorm.convert(model) first)
--      precision = "bf16",                       -- mixed precision (default "f32"): the training step's
--                                                --   forward and loss, and evaluation, run under
--                                                --   retort.autocast("bf16"): linear/matmul/conv in bf16
--                                                --   with f32 accumulation, the f32 weights get f32
--                                                --   gradients (README, "Mixed precision")
--   }
--   result.history[e] = {epoch=, train_loss=, train_acc=, test_loss=, test_acc=, test_top5=, ...}
--   result.last: the last completed epoch's row (from the checkpoint when a resumed run was already done)
--
-- A model with trainingStep(x, y, ctx) -> logits, loss, terms and termNames() (retort.distill.Distiller)
-- runs its own training forward and loss in one call (ctx as for loss); it is evaluated with
-- cross-entropy unless evalLoss says otherwise.
-- A model with checkData(loader) (the Distiller, for its soft-target caches) checks the training
-- loader before the first step.
-- Terms are averaged over each epoch and written as train_<term> columns of metrics.csv.
--
-- On a GPU the loop never waits for it within a step: the loss, accuracy and term sums stay on the
-- device and are read every readEvery (50) steps, at the end of the epoch and before a checkpoint.
-- A non-finite loss is then caught at the next read, naming the batches since the last one (on the
-- CPU the loss is read every step and a non-finite one stops the run before it reaches the weights;
-- readEvery = 1 does the same on a GPU, at the cost of a wait per step).
--
-- Several ranks (mpirun -np N retort run recipe.lua; retort.dist): the same call on every rank trains one
-- model data-parallel, as PyTorch's DistributedDataParallel. fit shards each epoch of the training loader
-- (Loader:setShard: the same shuffled order on every rank, padded to a multiple of the rank count, rank r
-- taking positions r + 1, r + 1 + N, ...; batchSize is per rank, so the global batch is N x batchSize),
-- broadcasts the model's parameters and buffers from rank 0 before the first step, averages the gradients
-- over the ranks before each optimizer step (gradient buckets all-reduced during backward: dist.Reducer;
-- option bucketMB, 4 by default), sums the logged loss, accuracy and terms over the ranks, evaluates
-- with the test set sharded (every example once; rank 0's BatchNorm statistics, sent to all, as the
-- checkpoint holds them), and writes metrics.csv, checkpoints and progress from rank 0 only (the run
-- directory must be on a path every rank sees the same: each rank reads the checkpoint to resume). A
-- checkpoint resumes under any number of ranks; one taken mid-epoch (Ctrl-C, one process) under another
-- number continues with the examples of that epoch not yet seen. Under several ranks Ctrl-C (mpirun
-- forwards it) ends the job without a mid-epoch checkpoint: last.h5 keeps the last completed epoch.
--
-- Determinism: the loaders shuffle and augment from (seed, epoch), dropout draws from the
-- default generator whose state is saved in every checkpoint, so the same seed and thread
-- count give the same metrics, and a resumed run continues exactly as if never stopped.
-- A checkpoint taken mid-epoch (Ctrl-C) records how many batches were done; resuming skips them.
local retort = require "retort"
local progress = require "retort.progress"
local metrics = require "retort.train.metrics"
local options = require "retort.options"
local outputs = require "retort.outputs"
local printable = require "retort.printable"
local Sums = require "retort.train.sums"
local dist = require "retort.dist"

local train = {}

local COLUMNS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr", "seconds",
                 "examples_per_s"}

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- Steps between reads of the running sums when the model is on a GPU (option readEvery): each read
-- waits for the queue to drain, so reading every step would leave the GPU idle while the host
-- catches up.
local READ_EVERY = 50

-- Iterate a loader's batches for one epoch: `loader:batches()` returns an iterator of (x, y[, idx]);
-- x and y are moved to `device` (a no-op when the loader put them there), idx stays where it is.
local function batches(loader, device)
   if type(loader.batches) ~= "function" then
      error("train: the data loader needs a batches() method returning an iterator of (x, y)", 3)
   end
   local it = loader:batches()
   return function()
      local x, y, idx = it()
      if x == nil then return nil end
      return x:to(device), y:to(device), idx
   end
end

local function num_examples(loader)
   if loader.numExamples then return loader:numExamples() end
   if loader.size then return loader:size() end
   return nil
end

-- Name the first parameter or gradient that is not finite (for the NaN/Inf message). The sums of
-- all of them are read together: one wait for a GPU.
local function find_non_finite(model)
   local names, sums = {}, {}
   retort.noGrad(function()
      for _, p in ipairs(model:namedParameters()) do
         local name, t = p[1], p[2]
         names[#names + 1], sums[#sums + 1] = ("parameter '%s'"):format(name), t:sum()
         if t.grad then
            names[#names + 1], sums[#sums + 1] = ("gradient of '%s'"):format(name), t.grad:sum()
         end
      end
   end)
   for i, v in ipairs(Sums.read(sums)) do
      if not finite(v) then return names[i] end
   end
   return nil
end

-- The path of the first float tensor in a loaded checkpoint table that holds a NaN or an infinity
-- (weights, buffers, optimizer moments), or nil: a run must not resume from a broken state.
local function non_finite_in(tbl, prefix)
   local keys = {}
   for k in pairs(tbl) do keys[#keys + 1] = k end
   table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
   for _, k in ipairs(keys) do
      local v, path = tbl[k], prefix .. "/" .. tostring(k)
      if retort.isTensor(v) then
         local dt = v:dtype()
         if (dt == "f32" or dt == "f64") and v:numel() > 0 and not finite((v * 0):sum():item()) then return path end
      elseif type(v) == "table" then
         local bad = non_finite_in(v, path)
         if bad then return bad end
      elseif type(v) == "number" and not finite(v) and k ~= "best_acc" then
         return path
      end
   end
end

-- A checkpoint's training state, checked against what train.fit writes: each entry's type and range,
-- named with the file when wrong (an epoch of -5 would train 9 epochs, a best_acc of NaN would never
-- be beaten again).
local STATE_RULES = {
   epoch = {"an integer >= 1", function(v) return math.type(v) == "integer" and v >= 1 end},
   step = {"an integer >= 0", function(v) return math.type(v) == "integer" and v >= 0 end},
   seen = {"an integer >= 0", function(v) return math.type(v) == "integer" and v >= 0 end},
   correct = {"a number >= 0", function(v) return type(v) == "number" and finite(v) and v >= 0 end},
   loss_sum = {"a finite number", function(v) return type(v) == "number" and finite(v) end},
   best_acc = {"a number in [-1, 1]", function(v) return type(v) == "number" and v >= -1 and v <= 1 end},
   best_epoch = {"an integer >= 0", function(v) return math.type(v) == "integer" and v >= 0 end},
}

-- entries older checkpoints lack: checked when present
local OPTIONAL_STATE_RULES = {
   world = {"an integer >= 1", function(v) return math.type(v) == "integer" and v >= 1 end},
   done = {"an integer >= 0", function(v) return math.type(v) == "integer" and v >= 0 end},
}

local function check_train_state(t)
   if type(t) ~= "table" then
      error("it has no training state (group /train); is it a checkpoint train.fit wrote?", 0)
   end
   for k, rule in pairs(OPTIONAL_STATE_RULES) do
      if t[k] ~= nil and not rule[2](t[k]) then
         error(("/train attribute %s should be %s, found %s"):format(k, rule[1], printable.value(t[k])), 0)
      end
   end
   for k, rule in pairs(STATE_RULES) do
      if not rule[2](t[k]) then
         error(("/train attribute %s should be %s, found %s"):format(k, rule[1], printable.value(t[k])), 0)
      end
   end
   if t.correct > t.seen then
      error(("/train says %s examples of the epoch were right out of %d seen"):format(t.correct, t.seen), 0)
   end
   if t.best_epoch > t.epoch then
      error(("/train names epoch %d as the best, but the run is at epoch %d"):format(t.best_epoch, t.epoch), 0)
   end
end

-- Restores model, optimizer, random state and training state from checkpoint `path`; any refusal (a
-- damaged or foreign file, a state that does not fit the model) is one sentence: "train.fit: cannot
-- resume from <path>: <why>", without the Lua position of the check that found it.
local function resume_from(path, model, optimizer, state)
   local ok, err = pcall(function()
      local ck = retort.load(path)
      check_train_state(ck.train)
      local bad = non_finite_in({model = ck.model, optim = ck.optim}, "")
      if bad then
         error(("%s holds a NaN or an infinity (the run diverged before this checkpoint, or the file is damaged); "
                .. "resume from an earlier checkpoint"):format(bad), 0)
      end
      model:loadStateDict(ck.model)
      optimizer:loadStateDict(ck.optim)
      retort.setRngState(ck.rng)
      for k, v in pairs(ck.train) do state[k] = v end
   end)
   if not ok then
      local why = tostring(err):gsub("^[^\n]-%.lua:%d+: ", "")
      if why:find("interrupted!", 1, true) then error(err, 0) end
      error(("train.fit: cannot resume from %s: %s"):format(path, why), 0)
   end
end

-- cross-entropy; per-example weights (a curriculum's, ctx.weights) give sum_i w_i CE_i / N
local function default_loss(logits, y, ctx) return retort.loss.weightedCrossEntropy(logits, y, ctx and ctx.weights) end

-- The retort.data.Loader that batches `loader` (itself, or the loader a curriculum loader wraps as .base),
-- whose setShard splits its epochs over the ranks; nil for another kind of loader.
local function shard_target(loader)
   if type(loader) ~= "table" then return nil end
   local base = rawget(loader, "base")
   if type(base) == "table" and type(base.setShard) == "function" and type(base.batchesOf) == "function" then
      return base
   end
   if type(loader.setShard) == "function" and type(loader.batchesOf) == "function" then return loader end
   return nil
end

-- Whether train.fit's model will train on the GPU (whose tensor cores multiply bf16 whatever the CPU
-- has): o.device when given, else the model's own device.
local function trains_on_gpu(o)
   if o.device ~= nil then
      return require("retort.cuda").resolveDevice(o.device, "train.fit: option 'device'") == "cuda"
   end
   return type(o.model.device) == "function" and o.model:device() == "cuda"
end

-- fn(...) under the given precision ("f32": as it is; "bf16": under bf16 autocast)
local function with_precision(precision, fn, ...)
   if precision == "bf16" then return retort.autocast("bf16", fn, ...) end
   return fn(...)
end

local PRECISIONS = {f32 = true, bf16 = true}
local function check_precision(where, p, level)
   if p ~= nil and not PRECISIONS[p] then
      error(("%s: option 'precision' must be \"f32\" or \"bf16\", got %s"):format(where, tostring(p)), level + 1)
   end
   return p or "f32"
end

--- Loss, accuracy and top-k accuracy of model over a loader, without recording a graph.
--- opts: loss (default cross-entropy), topk (5), distributed (false: under several ranks, each rank
--- evaluates its interleaved part of a retort.data.Loader and the sums are added over the ranks: every
--- rank must call it; train.fit does); precision ("f32", or "bf16": the forward under bf16 autocast).
function train.evaluate(model, loader, opts)
   opts = opts or {}
   local precision = check_precision("train.evaluate", opts.precision, 2)
   local loss_fn = opts.loss or default_loss
   local k = opts.topk or 5
   local target = opts.distributed and dist.isDistributed() and shard_target(loader) or nil
   local was_training = model:isTraining()
   model:evaluate()
   local n, sums = 0, Sums.new() -- read once at the end: no wait per batch on a GPU
   local device = model:device()
   local previous = target and target.shard
   if target then target:setShard(dist.rank(), dist.size(), {even = false}) end
   local ok, err = pcall(retort.noGrad, function()
      for x, y in batches(loader, device) do
         local logits = with_precision(precision, model.forward, model, x)
         local b = y:size(1)
         sums:add("loss", loss_fn(logits, y, {evaluating = true, x = x}), b)
         sums:add("correct", retort.loss.correct(logits, y))
         if logits:size(2) > k then sums:add("correct_k", retort.loss.topkCorrect(logits, y, k)) end
         sums:flush()
         n = n + b
      end
   end)
   if target then target.shard = previous end
   if not ok then error(err, 0) end
   local got = sums:take()
   if target then -- every example once over the ranks: the sums add up to one process's
      local all = dist.allReduceNumbers({n, got.loss or 0, got.correct or 0, got.correct_k or 0})
      n, got = all[1], {loss = all[2], correct = all[3], correct_k = all[4]}
   end
   if was_training then model:training() end
   if n == 0 then error("train.evaluate: the loader produced no batches", 2) end
   return {loss = (got.loss or 0) / n, acc = (got.correct or 0) / n, topk = (got.correct_k or 0) / n, n = n}
end

local function checkpoint_path(dir, name) return dir and (dir .. "/" .. name) end

local function save_checkpoint(path, o, state, rng)
   retort.save(path, {model = o.model, optim = o.optimizer, rng = rng or retort.getRngState(), train = state,
                      options = o.options})
end

local function mkdir(dir)
   local ok, err = retort.core.mkdir(dir)
   if not ok then error(("train: cannot create run directory %s (%s)"):format(dir, err), 3) end
end

local function current_lr(optimizer)
   if optimizer.currentLr then return optimizer:currentLr() end
   local g = optimizer.paramGroups and optimizer.paramGroups[1]
   return g and type(g.lr) == "number" and g.lr or nil
end

--- Train a model; see the header of this file for the options.
-- the files of an earlier run in dir (what a fresh run would overwrite)
local RESULT_FILES = {"metrics.csv", "last.h5", "best.h5"}
local function existing_results(dir)
   local found = {}
   for _, name in ipairs(RESULT_FILES) do
      local f = io.open(dir .. "/" .. name, "rb")
      if f then f:close(); found[#found + 1] = name end
   end
   return found
end

local FIT_OPTIONS = {overwrite = true, model = true, optimizer = true, train = true, test = true, epochs = true,
                     dir = true, loss = true, evalLoss = true, terms = true, resume = true, device = true,
                     readEvery = true, log = true,
                     options = true, onEpoch = true, checkFinite = true, bucketMB = true,
                     syncBatchNorm = true, precision = true}

-- where ranks other than 0 write their progress and log lines: nowhere
local NULL_LOG = {write = function(self) return self end, flush = function() end}

-- the optimizer's parameters (each once), or the model's when it has no parameter groups
local function trained_parameters(optimizer, model)
   if type(optimizer.paramGroups) ~= "table" then return model:parameters() end
   local out, seen = {}, {}
   for _, g in ipairs(optimizer.paramGroups) do
      for _, p in ipairs(g.params or {}) do
         if not seen[p] then seen[p] = true; out[#out + 1] = p end
      end
   end
   return out
end

function train.fit(o)
   if type(o) ~= "table" then
      error(("bad argument #1 to 'train.fit' (table of options expected, got %s)"):format(type(o)), 2)
   end
   options.check("train.fit", o, FIT_OPTIONS, 2)
   for _, key in ipairs{"model", "optimizer", "train"} do
      if o[key] == nil then error(("train.fit: option '%s' is required"):format(key), 2) end
   end
   local epochs = o.epochs or 1
   if math.type(epochs) ~= "integer" or epochs < 1 then
      error(("train.fit: option 'epochs' must be an integer >= 1, got %s"):format(tostring(epochs)), 2)
   end
   if num_examples(o.train) == 0 then
      error("train.fit: the training data has no examples (an empty dataset, or a limit of 0 rows?)", 2)
   end
   local read_every = o.readEvery or READ_EVERY
   if math.type(read_every) ~= "integer" or read_every < 1 then
      error(("train.fit: option 'readEvery' must be a positive integer (steps), got %s"):format(
         tostring(o.readEvery)), 2)
   end
   local precision = check_precision("train.fit", o.precision, 2)
   if precision == "bf16" and not retort.bf16Info().available and not trains_on_gpu(o) then
      error("train.fit: precision = \"bf16\" needs a CPU bf16 unit (AMX or AVX512-BF16): "
            .. retort.bf16Info().reason, 2)
   end
   local loss_fn = o.loss or default_loss
   local eval_loss = o.evalLoss or loss_fn
   local term_names = o.terms or {}
   -- step(x, y, ctx) -> logits, loss, terms: the model's own training step, or a forward and the loss
   local step_fn = function(x, y, ctx)
      local logits = o.model:forward(x)
      return logits, loss_fn(logits, y, ctx)
   end
   if not o.loss and o.model.trainingStep then
      step_fn = function(x, y, ctx) return o.model:trainingStep(x, y, ctx) end
      eval_loss = o.evalLoss or default_loss
      term_names = o.model:termNames()
   end
   if o.device ~= nil then -- in place: the optimizer keeps the same parameter objects
      local dev = require("retort.cuda").resolveDevice(o.device, "train.fit: option 'device'")
      if dev == "cuda" then o.model:cuda() else o.model:cpu() end
   end
   local device = o.model:device()
   if o.model.checkData then o.model:checkData(o.train) end
   local columns = {table.unpack(COLUMNS)}
   for _, t in ipairs(term_names) do columns[#columns + 1] = "train_" .. t end
   local world, rank = dist.size(), dist.rank()
   local distributed = world > 1
   local lead = rank == 0 -- writes the files and the progress
   local shard = shard_target(o.train)
   if distributed and not shard then
      error(("train.fit: under %d ranks the training data must be a retort.data.Loader (or a loader wrapping "
             .. "one as .base, as retort.curriculum.Loader does), so that each rank trains on its part"):format(
            world), 2)
   end
   if o.bucketMB ~= nil and (type(o.bucketMB) ~= "number" or o.bucketMB <= 0) then
      error(("train.fit: option 'bucketMB' must be a number > 0, got %s"):format(tostring(o.bucketMB)), 2)
   end
   local log = lead and (o.log or io.stderr) or NULL_LOG
   local dir = o.dir
   local lock -- one run per directory: a second one fails here instead of interleaving metrics.csv
   if dir and lead then
      mkdir(dir)
      lock = outputs.lock(dir .. "/.lock", "train.fit: run directory " .. dir)
      outputs.removeStaleTemps(dir) -- checkpoints half-written by a run that was killed
   end

   -- state carried across epochs; it is what a checkpoint stores besides weights and optimizer
   local state = {epoch = 1, step = 0, best_acc = -1, best_epoch = 0, loss_sum = 0, correct = 0, seen = 0, terms = {}}
   local resume = o.resume
   if resume == true then
      resume = checkpoint_path(dir, "last.h5")
      local f = resume and io.open(resume, "rb")
      if f then f:close() else resume = nil end
   end
   if distributed then resume = dist.broadcastValue(resume, 0) end -- rank 0's view of the directory decides
   -- a fresh run never overwrites another's results unless told to (resume continues them)
   -- resume = true with no last.h5 yet (stopped before its first checkpoint) starts afresh over what is there
   local results = dir and lead and not resume and existing_results(dir) or {}
   if #results > 0 then
      if not o.overwrite and not o.resume then
         if lock then lock:release() end
         error(("train.fit: run directory %s already holds a run (%s): pass resume = true to continue it "
                .. "(--resume), overwrite = true to replace it (--overwrite), or choose another directory"):format(
                dir, table.concat(results, ", ")), 2)
      end
      for _, name in ipairs(results) do os.remove(dir .. "/" .. name) end
   end
   local opened, writer = pcall(function()
      if resume then
         resume_from(resume, o.model, o.optimizer, state)
         log:write(("resuming from %s at epoch %d, batch %d\n"):format(resume, state.epoch, state.step))
      end
      if not lead then return nil end
      if dir and resume then metrics.resumeAt(checkpoint_path(dir, "metrics.csv"), state.epoch, state.last_row) end
      return dir and metrics.open(checkpoint_path(dir, "metrics.csv"),
                                  {columns = columns, append = resume and true or false}) or nil
   end)
   if not opened then
      if lock then lock:release() end
      error(writer, 0)
   end
   local history = {}
   -- where an interruption can leave us: mid-batch (redo it from batch_rng) or mid-update (unsafe)
   local batch_rng, updating = nil, false
   local read_pending -- reads the running epoch's sums still on a GPU into state (before a checkpoint)

   -- several ranks: one model (rank 0's weights and buffers), gradients averaged by buckets during backward
   local reducer, shard_before = nil, shard and shard.shard
   if o.syncBatchNorm then require("retort.nn").SyncBatchNorm.convert(o.model) end
   if distributed then
      dist.broadcastModule(o.model, 0)
      -- the loss is divided by the rank count before backward, so the gradients' sum over the ranks is
      -- their mean (backward is linear in its seed): no pass over the gradients to scale them
      reducer = dist.Reducer(trained_parameters(o.optimizer, o.model), {bucketMB = o.bucketMB, sum = true})
   end
   -- a checkpoint taken mid-epoch under another number of ranks: the rest of that epoch's order is shared
   -- out afresh (step k of N ranks covers examples (k - 1) N B + 1 .. k N B of the order)
   local resume_skip, resume_step = nil, nil
   if shard and (state.world or 1) ~= world and state.step > 0 then
      local batch = shard.batchSize
      resume_skip = state.done or state.step * batch * (state.world or 1)
      resume_step = resume_skip // (batch * world)
   end
   state.world = world
   if shard and distributed then shard:setShard(rank, world) end

   local function run_epoch(epoch)
      o.model:training()
      if o.train.setEpoch then o.train:setEpoch(epoch) end
      -- counted after setEpoch: a curriculum loader's epoch sizes change
      local total = num_examples(o.train)
      local steps_per_epoch = o.train.numBatches and o.train:numBatches() or nil
      if o.optimizer.setProgress then
         o.optimizer:setProgress{epoch = epoch, step = state.step, epochs = epochs, stepsPerEpoch = steps_per_epoch}
      end
      local bar = progress.new{total = total and total * world, label = ("epoch %d/%d"):format(epoch, epochs),
                               stream = log, order = {"loss", "acc"}}
      local t0 = retort.clock()
      local skip = state.step
      local step = 0
      if resume_skip then -- (see above) this epoch's first resume_skip examples were trained before
         shard:setShard(rank, world, {skip = resume_skip})
         step, skip = resume_step, resume_step
         resume_skip = nil
      end
      -- on a GPU the sums stay there and are read every read_every steps (and before any checkpoint)
      local lazy = device ~= "cpu"
      local sums, unread_from, unread_seen = Sums.new(), nil, 0
      local shown = {}
      -- this rank's sums read since the last merge: added to state (over all ranks) by merge()
      local acc = {loss_sum = 0, correct = 0, seen = 0, terms = {}}
      local function merge()
         if distributed then -- one all-reduce of the sums, the terms in name order (the same on every rank)
            local names = {}
            for k in pairs(acc.terms) do names[#names + 1] = k end
            table.sort(names)
            local list = {acc.loss_sum, acc.correct, acc.seen}
            for _, k in ipairs(names) do list[#list + 1] = acc.terms[k] end
            local all = dist.allReduceNumbers(list)
            acc.loss_sum, acc.correct, acc.seen = all[1], all[2], all[3]
            for i, k in ipairs(names) do acc.terms[k] = all[3 + i] end
         end
         state.loss_sum = state.loss_sum + acc.loss_sum
         state.correct = state.correct + acc.correct
         state.seen = state.seen + math.tointeger(acc.seen)
         for k, v in pairs(acc.terms) do state.terms[k] = (state.terms[k] or 0) + v end
         acc = {loss_sum = 0, correct = 0, seen = 0, terms = {}}
      end
      local function read_sums(upto)
         if not unread_from then return end
         local got = sums:take()
         if not finite(got.loss) then
            local where = unread_from == upto and ("batch %d"):format(upto)
                          or ("one of batches %d-%d"):format(unread_from, upto)
            error(("train: loss is %s at epoch %d, %s (tensor 'loss'); stopping"):format(
               tostring(got.loss), epoch, where), 0)
         end
         acc.loss_sum = acc.loss_sum + got.loss
         acc.correct = acc.correct + got.correct
         for k, v in pairs(got) do
            local term = k:match("^term%.(.+)$")
            if term then acc.terms[term] = (acc.terms[term] or 0) + v end
         end
         acc.seen = acc.seen + unread_seen
         unread_from, unread_seen = nil, 0
         -- shown: this rank's running values (rank 0's bar)
         local seen = state.seen + acc.seen
         shown = {loss = (state.loss_sum + acc.loss_sum) / seen, acc = (state.correct + acc.correct) / seen}
         if not distributed then merge() end
      end
      read_pending = function() read_sums(state.step); merge() end
      for x, y, idx in batches(o.train, device) do
         step = step + 1
         local b = y:size(1)
         if step > skip then
            if o.optimizer.setProgress then -- step counts the batches completed in this epoch
               o.optimizer:setProgress{epoch = epoch, step = step - 1, epochs = epochs, stepsPerEpoch = steps_per_epoch}
            end
            -- an interrupted batch is redone from scratch on resume: remember the generator before it
            batch_rng = retort.getRngState()
            local weights = idx and o.train.weights and o.train:weights(idx, epoch) or nil
            if weights then weights = weights:to(device) end
            local logits, loss, terms = with_precision(precision, step_fn, x, y,
                                                       {epoch = epoch, step = step, epochs = epochs, x = x,
                                                        indices = idx, weights = weights,
                                                        stepsPerEpoch = steps_per_epoch})
            local v -- the loss as a number (CPU), or a tensor that stays on the GPU
            if lazy then
               v = loss:detach()
            else -- free on the CPU: stop before a non-finite loss reaches the weights
               v = loss:item()
               if not finite(v) then
                  error(("train: loss is %s at epoch %d, batch %d (tensor 'loss'); stopping"):format(
                     tostring(v), epoch, step), 0)
               end
            end
            o.optimizer:zeroGrad()
            if reducer then
               local scaled = loss * (1 / world)
               reducer:begin()
               scaled:backward()
               reducer:finish() -- every rank's gradients, averaged
            else
               loss:backward()
            end
            updating = true -- from here until the sums below, an interruption leaves a half-updated model
            o.optimizer:step()
            unread_from, unread_seen = unread_from or step, unread_seen + b
            local correct = retort.loss.correct(logits, y)
            sums:add("loss", v, b)
            sums:add("correct", lazy and correct or correct:item())
            for k, tv in pairs(terms or {}) do
               sums:add("term." .. k, (lazy or type(tv) == "number") and tv or tv:item(), b)
            end
            sums:flush() -- the step's values: one kernel on a GPU
            state.step = step
            state.done = (state.done or 0) + b * world -- examples of the epoch's order consumed
            updating, batch_rng = false, nil
            if not lazy or step % read_every == 0 then read_sums(step) end
            if o.checkFinite ~= false and step % 50 == 0 then
               local bad = find_non_finite(o.model)
               if bad then
                  error(("train: %s is not finite at epoch %d, batch %d; stopping"):format(bad, epoch, step), 0)
               end
            end
            bar:update(b * world, shown)
         elseif bar.total then
            bar.total = bar.total - b * world -- skipped batches do not count towards the rate
         end
      end
      read_sums(step)
      merge()
      local seconds = retort.clock() - t0
      local row = {epoch = epoch, train_loss = state.loss_sum / math.max(state.seen, 1),
                   train_acc = state.correct / math.max(state.seen, 1), lr = current_lr(o.optimizer),
                   seconds = seconds, examples_per_s = (state.seen) / seconds}
      for k, sum in pairs(state.terms) do row["train_" .. k] = sum / math.max(state.seen, 1) end
      bar:finish{loss = row.train_loss, acc = row.train_acc}
      if o.test then
         -- several ranks evaluate rank 0's model: its BatchNorm statistics (those the checkpoint holds)
         if distributed then dist.broadcastTensors(o.model:buffers(), 0) end
         local ev = train.evaluate(o.model, o.test, {loss = eval_loss, distributed = distributed,
                                                     precision = precision})
         row.test_loss, row.test_acc, row.test_top5 = ev.loss, ev.acc, ev.topk
         log:write(("epoch %d/%d  test loss %.4f  acc %.4f\n"):format(epoch, epochs, ev.loss, ev.acc))
      end
      return row
   end

   local interrupted = false
   local ok, err = pcall(function()
      for epoch = state.epoch, epochs do
         state.epoch = epoch
         local row = run_epoch(epoch)
         history[#history + 1] = row
         -- the epoch is complete: the next run starts at the next epoch with fresh sums
         state.epoch, state.step, state.loss_sum, state.correct, state.seen = epoch + 1, 0, 0, 0, 0
         state.terms, state.last_row, state.done = {}, row, 0
         if shard and distributed then shard:setShard(rank, world) end -- a resumed epoch's skip is over
         if shard and not distributed and shard.shard and shard.shard.skip > 0 then shard.shard = shard_before end
         local acc = row.test_acc or row.train_acc
         local improved = acc > state.best_acc
         if improved then state.best_acc, state.best_epoch = acc, epoch end
         -- checkpoint first, then the row: a kill between them leaves a checkpoint that carries the row
         -- (last_row), and resuming writes it (metrics.resumeAt); never a row without its checkpoint
         if dir and lead then
            save_checkpoint(checkpoint_path(dir, "last.h5"), o, state)
            if improved then save_checkpoint(checkpoint_path(dir, "best.h5"), o, state) end
         end
         if writer then writer:write(row) end
         if o.onEpoch then o.onEpoch(row) end
      end
   end)
   if shard then shard.shard = shard_before end
   if reducer then reducer:close() end
   if not ok then
      if tostring(err):find("interrupted!", 1, true) then
         interrupted = true
         if distributed then -- the ranks may be at different steps: no consistent mid-epoch state to save
            log:write(("\ninterrupted%s\n"):format(dir and (": %s keeps the last completed epoch"):format(
               checkpoint_path(dir, "last.h5")) or ""))
         elseif dir and updating then
            log:write(("\ninterrupted during a parameter update: %s keeps the state of the last completed "
                       .. "epoch\n"):format(checkpoint_path(dir, "last.h5")))
         elseif dir then
            if read_pending then pcall(read_pending) end -- the sums of the batches done so far
            save_checkpoint(checkpoint_path(dir, "last.h5"), o, state, batch_rng)
            log:write(("\ninterrupted: checkpoint saved to %s (epoch %d, batch %d); resume with "
                       .. "resume = true\n"):format(checkpoint_path(dir, "last.h5"), state.epoch, state.step))
         else
            log:write("\ninterrupted\n")
         end
      else
         if writer then writer:close() end
         if lock then lock:release() end
         error(err, 0)
      end
   end
   if writer then writer:close() end
   if lock then lock:release() end
   -- the files are complete before any rank goes on (a next stage may read best.h5)
   if distributed and not interrupted then dist.barrier() end
   -- last: the row of the last completed epoch, also when a resumed run had no epoch left to train
   return {history = history, last = history[#history] or state.last_row, best_acc = state.best_acc,
           best_epoch = state.best_epoch, interrupted = interrupted, dir = dir}
end

return train
