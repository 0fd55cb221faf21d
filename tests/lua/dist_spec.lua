-- retort.dist with one process (no launcher: every collective is the identity), the Loader's sharding
-- (DistributedSampler's rule, checked by simulating every rank in this process), nn.SyncBatchNorm with
-- one rank, and the options train.fit adds for several ranks. The runs under mpirun are in
-- dist_mpi_spec.lua.
local retort = require "retort"
local dist = retort.dist
local nn = retort.nn

local function list(t) return t:totable() end

describe("retort.dist with one process", function()
   it("is rank 0 of 1 and every collective is the identity", function()
      assert.are.equal(0, dist.rank())
      assert.are.equal(1, dist.size())
      assert.are.equal(0, dist.localRank())
      assert.is_false(dist.isDistributed())
      assert.matches("one process", dist.info())
      local t = retort.tensor({{1, 2}, {3, 4}})
      for _, op in ipairs{"sum", "mean", "max"} do
         local r = dist.allReduce(t, op)
         assert.are.same(list(t), list(r))
         assert.is_false(rawequal(r, t))
      end
      assert.are.same({{1, 2}, {3, 4}}, list(dist.broadcast(t, 0)))
      assert.are.same({{1, 2}, {3, 4}}, list(dist.allGather(t)))
      assert.are.same({5}, list(dist.allGather(retort.tensor(5, "f64"))))
      assert.are.same({1.5, 2}, dist.allReduceNumbers({1.5, 2}))
      assert.are.equal("x", dist.broadcastValue("x"))
      dist.barrier()
      local net = retort.models.mlp{sizes = {3, 2}}
      assert.are.equal(net, dist.broadcastModule(net))
   end)

   it("keeps the gradient through allReduce (sum and mean: the identity's)", function()
      local x = retort.tensor({1, 2, 3}, "f64"):requiresGrad()
      local y = dist.allReduce(x * 2, "mean")
      ;(y * retort.tensor({1, 10, 100}, "f64")):sum():backward()
      assert.are.same({2, 20, 200}, list(x.grad))
   end)

   it("refuses bad arguments with the argument's number", function()
      assert.error_matches(function() dist.allReduce(retort.zeros(2), "prod") end,
                           "bad argument #2 to '[%w.]*allReduce' %(invalid option 'prod'%)")
      assert.error_matches(function() dist.allReduce({}, "sum") end, "bad argument #1 to '[%w.]*allReduce'")
      assert.error_matches(function() dist.broadcast_(retort.zeros(2), 1) end, "root must be a rank in 0..0, got 1")
      assert.error_matches(function() dist.allReduce(retort.zeros(2, "i64"), "mean") end, "mean needs a float tensor")
      assert.error_matches(function() dist.allReduce(retort.zeros(2):requiresGrad(), "max") end, "max has no gradient")
      assert.error_matches(function() dist.allReduceNumbers({1, "2"}) end, "entry 2 is a string, not a number")
      assert.error_matches(function() dist.broadcastValue({}) end, "a string, number, boolean or nil is expected")
      assert.error_matches(function() dist.Reducer({retort.zeros(2)}, {bucketMb = 1}) end, "bucketMb")
      assert.error_matches(function() dist.setTimeout(0) end, "a positive number of seconds expected")
   end)

   it("builds a gradient reducer whose steps leave the gradients alone", function()
      local net = retort.models.mlp{sizes = {4, 8, 3}}
      local r = dist.Reducer(net:parameters(), {bucketMB = 1})
      assert.matches("retort.dist.Reducer%(%d+ buckets", tostring(r))
      local total = 0
      for _, b in ipairs(r:buckets()) do total = total + b.bytes end
      assert.are.equal(4 * net:numParameters(), total)
      local x = retort.randn(5, 4)
      r:begin()
      net:forward(x):sum():backward()
      r:finish()
      local g = net:parameters()[1].grad:clone()
      net:zeroGrad()
      net:forward(x):sum():backward()
      assert.are.same(list(g), list(net:parameters()[1].grad))
      r:close()
      assert.error_matches(function() r:begin() end, "closed")
   end)
end)

-- every rank's indices of one epoch, simulated in this process
local function shards(loader, R, opts, epoch)
   local out = {}
   for r = 0, R - 1 do
      loader:setShard(r, R, opts)
      local got, batches = {}, 0
      for _, _, idx in loader:batches(epoch) do
         batches = batches + 1
         for _, i in ipairs(idx:totable()) do got[#got + 1] = i end
      end
      out[r + 1] = {idx = got, batches = batches, numBatches = loader:numBatches(), numExamples = loader:numExamples()}
   end
   loader:setShard(nil)
   return out
end

describe("Loader:setShard", function()
   local function loader(n, opts)
      local x = retort.arange(1, n):view(n, 1)
      local o = {batchSize = 3, shuffle = true, seed = 4}
      for k, v in pairs(opts or {}) do o[k] = v end
      return retort.data.Loader(retort.data.tensorDataset(x, retort.ones(n):long()), o)
   end

   it("deals each epoch's order out interleaved, padded with its first examples (sizes that divide and not)",
      function()
      for _, n in ipairs{12, 13, 7, 2, 1} do
         for _, R in ipairs{2, 3, 4} do
            local l = loader(n)
            local order = l:order(2):totable()
            local s = shards(l, R, nil, 2)
            local per = (n + R - 1) // R
            local count = {}
            for r = 1, R do
               assert.are.equal(per, #s[r].idx, ("n=%d R=%d rank %d"):format(n, R, r - 1))
               assert.are.equal(s[1].batches, s[r].batches) -- every rank runs the same number of steps
               assert.are.equal(s[r].batches, s[r].numBatches)
               assert.are.equal(per, s[r].numExamples)
               for j, i in ipairs(s[r].idx) do
                  local pos = (r - 1) + 1 + (j - 1) * R -- position in the padded order
                  assert.are.equal(order[(pos - 1) % n + 1], i)
                  count[i] = (count[i] or 0) + 1
               end
            end
            -- every example at least once; the extra ones are the order's first per * R - n
            local extra = {}
            for k = 1, per * R - n do extra[order[(k - 1) % n + 1]] = (extra[order[(k - 1) % n + 1]] or 0) + 1 end
            for i = 1, n do
               assert.are.equal(1 + (extra[i] or 0), count[i], ("n=%d R=%d example %d"):format(n, R, i))
            end
         end
      end
   end)

   it("drops the order's last examples evenly with dropLast", function()
      for _, n in ipairs{12, 13, 7} do
         for _, R in ipairs{2, 3, 4} do
            local l = loader(n, {dropLast = true, batchSize = 1})
            local order = l:order(1):totable()
            local s = shards(l, R, nil, 1)
            local seen = {}
            for r = 1, R do
               assert.are.equal(n // R, #s[r].idx)
               for _, i in ipairs(s[r].idx) do assert.is_nil(seen[i]); seen[i] = true end
            end
            for k = 1, n // R * R do assert.is_true(seen[order[k]]) end -- the first n // R * R, once each
         end
      end
   end)

   it("gives every example exactly once with even = false (evaluation)", function()
      for _, n in ipairs{12, 13, 7, 2} do
         for _, R in ipairs{2, 3, 4} do
            local s = shards(loader(n), R, {even = false}, 1)
            local seen, total = {}, 0
            for r = 1, R do
               assert.are.equal(#s[r].idx, s[r].numExamples)
               assert.is_true(math.abs(#s[r].idx - n / R) < 1)
               for _, i in ipairs(s[r].idx) do assert.is_nil(seen[i]); seen[i] = true; total = total + 1 end
            end
            assert.are.equal(n, total)
         end
      end
   end)

   it("skips the order's first examples, then deals out the rest (a resumed epoch)", function()
      local l = loader(13)
      local order = l:order(3):totable()
      local s = shards(l, 2, {skip = 5}, 3)
      assert.are.same({order[6], order[8], order[10], order[12]}, s[1].idx)
      assert.are.same({order[7], order[9], order[11], order[13]}, s[2].idx)
   end)

   it("keeps augmentation a function of the example, not of the shard", function()
      local ds = retort.data.randomImages{n = 10, classes = 2, height = 6, width = 6, seed = 1}
      local l = retort.data.Loader(ds, {batchSize = 10, shuffle = true, seed = 2, augment = {crop = 2, flip = true}})
      local whole = {}
      for x, _, idx in l:batches(1) do
         for k, i in ipairs(idx:totable()) do whole[i] = x:select(1, k):clone() end
      end
      l:setShard(1, 3)
      for x, _, idx in l:batches(1) do
         for k, i in ipairs(idx:totable()) do assert.are.same(list(whole[i]), list(x:select(1, k))) end
      end
      assert.matches("rank 1 of 3's shard", tostring(l))
   end)

   it("refuses bad shards", function()
      local l = loader(5)
      assert.error_matches(function() l:setShard(2, 2) end, "bad argument #1 to 'setShard' %(a rank in 0..1")
      assert.error_matches(function() l:setShard(0, 0) end, "bad argument #2 to 'setShard'")
      assert.error_matches(function() l:setShard(0, 2, {skip = -1}) end, "skip must be an integer >= 0")
      assert.error_matches(function() l:setShard(0, 2, {evn = false}) end, "even")
   end)
end)

describe("nn.SyncBatchNorm with one process", function()
   it("is BatchNorm: same outputs, statistics and gradients", function()
      retort.manualSeed(1)
      local x = retort.randn(6, 4, 3, 3, "f64")
      local bn, sbn = nn.BatchNorm2d(4):double(), nn.SyncBatchNorm(4):double()
      local a = x:clone():requiresGrad()
      local b = x:clone():requiresGrad()
      local ya, yb = bn:forward(a), sbn:forward(b)
      assert.are.same(list(ya), list(yb))
      ya:pow(2):sum():backward()
      yb:pow(2):sum():backward()
      assert.are.same(list(a.grad), list(b.grad))
      assert.are.same(list(bn.runningVar), list(sbn.runningVar))
   end)

   it("replaces the BatchNorms of a network, sharing their tensors (checkpoints load either way)", function()
      local net = nn.Sequential():add("fc", nn.Linear(3, 4)):add("bn", nn.BatchNorm1d(4))
         :add("inner", nn.Sequential():add("bn2", nn.BatchNorm1d(4)))
      local w = net._modules.bn.weight
      local keys = {}
      for k in pairs(net:stateDict()) do keys[#keys + 1] = k end
      table.sort(keys)
      local _, n = nn.SyncBatchNorm.convert(net)
      assert.are.equal(2, n)
      assert.are.equal("SyncBatchNorm", net._modules.bn:typename())
      assert.are.equal("SyncBatchNorm", net._modules.inner._modules.bn2:typename())
      assert.is_true(rawequal(w, net._modules.bn.weight))
      local after = {}
      for k in pairs(net:stateDict()) do after[#after + 1] = k end
      table.sort(after)
      assert.are.same(keys, after)
      assert.error_matches(function() nn.SyncBatchNorm(0) end, "a positive channel count")
      assert.error_matches(function() nn.SyncBatchNorm(3):forward(retort.zeros(2, 4)) end, "with 3 channels")
   end)
end)

describe("train.fit options for several ranks", function()
   it("takes syncBatchNorm and bucketMB with one process and refuses a bad bucketMB", function()
      local x, y = retort.randn(16, 3), retort.ones(16):long()
      local net = nn.Sequential():add("fc", nn.Linear(3, 4)):add("bn", nn.BatchNorm1d(4)):add("out", nn.Linear(4, 2))
      local loader = retort.data.Loader(retort.data.tensorDataset(x, y), {batchSize = 4})
      local null = io.open("/dev/null", "w")
      local r = retort.train.fit{model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0.1}),
                                 train = loader, epochs = 1, syncBatchNorm = true, bucketMB = 2, log = null}
      assert.are.equal(1, #r.history)
      assert.are.equal("SyncBatchNorm", net._modules.bn:typename())
      assert.is_nil(loader.shard)
      assert.error_matches(function()
         retort.train.fit{model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0.1}), train = loader,
                          bucketMB = 0, log = null}
      end, "bucketMB' must be a number > 0")
      null:close()
   end)
end)
