-- A train.fit run into --dir that can be made to fail: the spec kills a rank (kill -9), makes one raise,
-- or resumes the run under another number of ranks.
--   mpirun -np N retort tests/dist/fit_run.lua --dir=D [--epochs=3] [--resume] [--out=r.lua]
--       [--kill=RANK:EPOCH:STEP --stamp=F]   that rank writes retort.clock() to F, then kills itself (-9)
--       [--fail=RANK:EPOCH:STEP]             that rank raises an error there
--       [--interrupt=EPOCH:STEP]             (one process) raises "interrupted!" there, as Ctrl-C does: fit
--                                            saves a mid-epoch checkpoint and returns
--       [--stall=RANK --timeout=S]           that rank stays busy (out of every collective) for 3 S seconds
--                                            while the others wait with a deadline of S seconds
-- A small CNN on generated images, batch 16 over the ranks (16 / N each). Written (rank 0): the history
-- of this run and the last metrics row.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local retort = require "retort"
local common = require "common"
local dist = retort.dist

local o = common.options({dir = "", epochs = 3, resume = false, out = "", kill = "", stamp = "", fail = "",
                          interrupt = "", stall = -1, timeout = 0}, {...})
local R, me = dist.size(), dist.rank()

local function at(spec) -- "rank:epoch:step" -> three integers, or nil
   local r, e, s = spec:match("^(%d+):(%d+):(%d+)$")
   if r then return tonumber(r) // 1, tonumber(e) // 1, tonumber(s) // 1 end
end

if o.stall >= 0 then -- a rank that never reaches the barrier (alive, busy elsewhere)
   dist.setTimeout(o.timeout)
   if me == o.stall then
      local t = retort.clock()
      while retort.clock() - t < 3 * o.timeout do end
   end
   dist.barrier()
   error("the barrier returned although a rank stalled")
end

local kr, ke, ks = at(o.kill)
local fr, fe, fs = at(o.fail)
local _, ie, is = at("0:" .. o.interrupt)
local train = retort.data.Loader(retort.data.randomImages{n = 96, classes = 4, height = 8, width = 8, seed = 2},
                                 {batchSize = 16 // R, shuffle = true, seed = 1})
local test = retort.data.Loader(retort.data.randomImages{n = 40, classes = 4, height = 8, width = 8, seed = 3},
                                {batchSize = 10})
retort.manualSeed(5)
local net = retort.models.cnn{size = 8, channels = {4, 8}, hidden = 12, classes = 4}
local opt = retort.optim.SGD(net:parameters(), {lr = retort.schedule.cosine{base = 0.05, epochs = o.epochs},
                                               momentum = 0.9})
local result = retort.train.fit{
   model = net, optimizer = opt, train = train, test = test, epochs = o.epochs, dir = o.dir, resume = o.resume,
   log = common.null,
   loss = function(logits, y, ctx)
      if not ctx.evaluating and ctx.epoch == ke and ctx.step == ks and me == kr then
         local f = assert(io.open(o.stamp, "w"))
         f:write(("%.6f\n"):format(retort.clock()))
         f:close()
         local pid = io.open("/proc/self/stat"):read("n")
         os.execute("kill -9 " .. pid)
      end
      if not ctx.evaluating and ctx.epoch == fe and ctx.step == fs and me == fr then
         error(("deliberate failure at epoch %d, step %d"):format(fe, fs))
      end
      if not ctx.evaluating and ctx.epoch == ie and ctx.step == is then error("interrupted!", 0) end
      return retort.loss.crossEntropy(logits, y)
   end,
}
common.check(common.identicalOnAllRanks(common.flat(net)), "the parameters differ between the ranks")
common.write(o.out, {history = result.history, last = result.last, ranks = R, interrupted = result.interrupted})
