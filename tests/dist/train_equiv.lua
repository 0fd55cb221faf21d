-- train.fit under N ranks with batch B/N each, against one process with batch B (the spec compares the
-- --out files): a small MLP on seeded data, no dropout.
--   mpirun -np N retort tests/dist/train_equiv.lua --batch=16 --out=r.lua [--model=bn --sync] [--n=64]
-- Checked here: every rank ends with bit-identical parameters; each epoch's examples, gathered from the
-- ranks' batches (ctx.indices), are the epoch's order once each (N divides it) or padded with its first
-- examples; every rank ran the same number of steps. Written (rank 0): the global loss of each step (the
-- mean over the ranks of each rank's batch mean: the loss of the B examples), the final parameters, the
-- last metrics row and the reducer's bucket count.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local retort = require "retort"
local common = require "common"
local dist = retort.dist
local nn = retort.nn

local o = common.options({batch = 16, n = 64, epochs = 2, model = "mlp", sync = false, device = "cpu", out = "",
                          bucketMB = 0.001, shuffle = true}, {...})
local R, me = dist.size(), dist.rank()
common.check(o.batch % R == 0, "the global batch %d must divide by %d ranks", o.batch, R)

retort.manualSeed(3)
local x = retort.randn(o.n, 10)
local y = retort.randint(1, 3, {o.n}):long()
local train = retort.data.Loader(retort.data.tensorDataset(x, y), {batchSize = o.batch // R, shuffle = o.shuffle,
                                                                   seed = 5, device = o.device})
local test = retort.data.Loader(retort.data.tensorDataset(x:narrow(1, 1, 37), y:narrow(1, 1, 37)),
                                {batchSize = 5, device = o.device})
retort.manualSeed(7)
local net
if o.model == "mlp" then
   net = retort.models.mlp{sizes = {10, 24, 16, 3}}
else -- with batch normalisation: per rank by default, over all ranks with --sync
   net = nn.Sequential():add("fc1", nn.Linear(10, 24)):add("bn", nn.BatchNorm1d(24)):add("relu", nn.ReLU())
      :add("fc2", nn.Linear(24, 3))
end
if o.device == "cuda" then net:cuda() end
local opt = retort.optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9})

local losses, seen = {}, {} -- seen[epoch] = this rank's example indices in batch order
local result = retort.train.fit{
   model = net, optimizer = opt, train = train, test = test, epochs = o.epochs, log = common.null,
   syncBatchNorm = o.sync, bucketMB = o.bucketMB,
   loss = function(logits, yy, ctx)
      local l = retort.loss.crossEntropy(logits, yy)
      if not ctx.evaluating then
         losses[#losses + 1] = l:item()
         seen[ctx.epoch] = seen[ctx.epoch] or {}
         for _, i in ipairs(ctx.indices:totable()) do table.insert(seen[ctx.epoch], i) end
      end
      return l
   end,
}

-- the same number of steps everywhere, and this rank's share of each epoch
local steps = dist.allReduceNumbers({#losses}, "max")[1]
common.check(steps == #losses, "rank %d ran %d steps, another %d", me, #losses, steps)
for e = 1, o.epochs do
   local mine = retort.tensor(seen[e] or {}, "i64")
   local all = dist.allGather(mine):totable()
   local order = train:order(e):totable()
   local n = #order
   local total = (n + R - 1) // R * R
   common.check(#all == total, "epoch %d: %d examples over the ranks, expected %d", e, #all, total)
   -- rank r's j-th example is the order's position r + 1 + (j - 1) R (padded with the order's start)
   local per = total // R
   for r = 0, R - 1 do
      for j = 1, per do
         local pos = r + 1 + (j - 1) * R
         local want = order[(pos - 1) % n + 1]
         common.check(all[r * per + j] == want, "epoch %d rank %d example %d is %d, expected %d", e, r, j,
                      all[r * per + j], want)
      end
   end
   local count = {}
   for _, i in ipairs(all) do count[i] = (count[i] or 0) + 1 end
   for i = 1, n do
      common.check(count[i] and count[i] >= 1, "epoch %d: example %d never seen", e, i)
   end
end

local flat = common.flat(net):cpu()
local global = dist.allReduceNumbers(losses, "mean")
local reducer = dist.Reducer(net:parameters(), {bucketMB = o.bucketMB})
common.write(o.out, {
   losses = global, params = flat:totable(), identical = common.identicalOnAllRanks(flat), ranks = R,
   row = result.last, buckets = #reducer:buckets(),
})
