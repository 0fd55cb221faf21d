-- One rank's side of tests/bench/bench_dist.sh (run it through that script): data-parallel training
-- steps and all-reduce timings under mpirun, printed by rank 0 as key=value lines.
--
--   mpirun -np N retort tests/bench/bench_dist.lua step mlp|cnn BATCH STEPS [BUCKET_MB]
--       examples/s over all ranks of train.fit's step (forward, cross-entropy, backward with the
--       gradient buckets all-reduced during it, SGD with momentum) on a fixed batch of BATCH per rank,
--       and of rank 0 alone (the same step without the exchange, the others waiting), in alternating
--       rounds; efficiency: the ranks' examples/s over N times rank 0's alone; finish_ms: the time per
--       step spent in reducer:finish() (the exchange left after backward); machine_efficiency: every
--       rank stepping at once without any exchange against rank 0 alone (what the cores, caches and
--       memory of this machine allow before any communication)
--   mpirun -np N retort tests/bench/bench_dist.lua allreduce mlp|cnn [0 0 BUCKET_MB]
--       one step's gradients exchanged three ways, each timed alone (no compute beside it): as the
--       reducer's buckets one after another (bucketed_ms), as one message of the same bytes
--       (one_message_ms), and 10 MB (bandwidth: algorithm bytes/s and the bus figure 2 (N-1)/N bytes/s)
local retort = require "retort"
local dist = retort.dist

local mode, kind = arg[1], arg[2]
local batch, steps = math.tointeger(tonumber(arg[3] or "128")), math.tointeger(tonumber(arg[4] or "20"))
local bucket_mb = tonumber(arg[5] or "0") -- 0: the reducer's default
retort.setNumThreads(1)
retort.manualSeed(1)
local net, shape
if kind == "mlp" then -- Hinton's teacher
   net, shape = retort.models.mlp{sizes = {784, 1200, 1200, 10}}, {784}
else -- the CNN of recipes/train_teacher.lua (without dropout)
   net, shape = retort.models.cnn{}, {1, 28, 28}
end
local R, me = dist.size(), dist.rank()
local function say(fmt, ...) if me == 0 then print(fmt:format(...)) end end

local function time_of(fn, reps)
   dist.barrier()
   local t0 = retort.clock()
   for _ = 1, reps do fn() end
   dist.barrier()
   return (retort.clock() - t0) / reps
end

if mode == "step" then
   local x = retort.randn(batch, table.unpack(shape))
   local y = retort.randint(1, 10, {batch}):long()
   local opt = retort.optim.SGD(net:parameters(), {lr = 0.01, momentum = 0.9})
   -- as train.fit: the loss divided by the rank count, the gradients' sum over the ranks is their mean
   local reducer = R > 1 and dist.Reducer(net:parameters(), {bucketMB = bucket_mb, sum = true}) or nil
   local finish = 0
   local function step(together)
      local loss = retort.loss.crossEntropy(net:forward(x), y)
      opt:zeroGrad()
      if together and reducer then
         local scaled = loss * (1 / R)
         reducer:begin()
         scaled:backward()
         local t = retort.clock()
         reducer:finish()
         finish = finish + retort.clock() - t
      else
         loss:backward()
      end
      opt:step()
   end
   -- rounds of: every rank together, then rank 0 alone (the others wait at a barrier); the best of each,
   -- so a load that comes and goes on the machine weighs on both alike
   local function together() step(true) end
   local function alone() if me == 0 then step(false) end end
   -- every rank stepping at once with no exchange: what the machine itself allows two processes
   local function apart() step(false) end
   time_of(together, math.max(3, steps // 5)) -- warm-up
   time_of(alone, math.max(3, steps // 5))
   local best_together, best_alone, best_apart, best_finish = math.huge, math.huge, math.huge, 0
   for _ = 1, 5 do
      finish = 0
      local t = time_of(together, steps)
      if t < best_together then best_together, best_finish = t, finish / steps end
      best_alone = math.min(best_alone, time_of(alone, steps))
      best_apart = math.min(best_apart, time_of(apart, steps))
   end
   say("alone: examples_per_s=%.1f step_ms=%.3f", batch / best_alone, 1e3 * best_alone)
   say("%d ranks, no exchange: examples_per_s=%.1f step_ms=%.3f machine_efficiency=%.3f", R, R * batch / best_apart,
       1e3 * best_apart, best_alone / best_apart)
   say("%d ranks: examples_per_s=%.1f step_ms=%.3f finish_ms=%.3f buckets=%d early=%d", R, R * batch / best_together,
       1e3 * best_together, 1e3 * best_finish, reducer and #reducer:buckets() or 0, reducer and reducer:early() or 0)
   say("efficiency=%.3f", batch * R / best_together / (R * batch / best_alone))
elseif mode == "allreduce" then
   local reducer = dist.Reducer(net:parameters(), {bucketMB = bucket_mb})
   local flats, total = {}, 0
   for i, b in ipairs(reducer:buckets()) do
      flats[i] = retort.zeros(b.bytes // 4)
      total = total + b.bytes
   end
   local one = retort.zeros(total // 4)
   local function buckets() for _, f in ipairs(flats) do dist.allReduce_(f, "sum") end end
   local function message() dist.allReduce_(one, "sum") end
   time_of(buckets, 3)
   time_of(message, 3)
   local tb, tm = math.huge, math.huge
   for _ = 1, 5 do
      tb = math.min(tb, time_of(buckets, 5))
      tm = math.min(tm, time_of(message, 5))
   end
   local ten = retort.zeros(10 * 1000 * 1000 // 4)
   local function big() dist.allReduce_(ten, "sum") end
   time_of(big, 2)
   local t10 = math.huge
   for _ = 1, 5 do t10 = math.min(t10, time_of(big, 3)) end
   say("gradient_bytes=%d buckets=%d bucketed_ms=%.3f one_message_ms=%.3f", total, #flats, 1e3 * tb, 1e3 * tm)
   say("allreduce_10MB_ms=%.3f algbw_GBps=%.3f busbw_GBps=%.3f", 1e3 * t10, 1e7 / t10 / 1e9,
       1e7 * 2 * (R - 1) / R / t10 / 1e9)
else
   error("usage: bench_dist.lua step|allreduce mlp|cnn [batch steps]")
end
