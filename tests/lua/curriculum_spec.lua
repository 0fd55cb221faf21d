-- retort.curriculum: difficulty scores against the formulas computed in plain Lua, pacing values
-- against their closed forms, and the loader's subsets, order, weights and self-paced ranking.
local retort = require "retort"
local curriculum = retort.curriculum
local support = require "support"
local world = require "cache_world"

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(b)) end

-- the three scores of one row of logits, by hand
local function naive(z, y)
   local m = -math.huge
   for _, v in ipairs(z) do m = math.max(m, v) end
   local s = 0
   for _, v in ipairs(z) do s = s + math.exp(v - m) end
   local p, ent = {}, 0
   for k, v in ipairs(z) do
      p[k] = math.exp(v - m) / s
      ent = ent - p[k] * math.log(p[k])
   end
   local other = -math.huge
   for k = 1, #z do if k ~= y then other = math.max(other, p[k]) end end
   return {loss = -math.log(p[y]), entropy = ent, margin = -(p[y] - other)}
end

local function set_of(t)
   local s = {}
   for _, v in ipairs(t) do s[v] = true end
   return s
end

describe("retort.curriculum", function()
   it("scores examples by the teacher's loss, entropy and margin", function()
      local loader, teacher = world.loader{n = 40}, world.teacher()
      local dir = support.tmpdir()
      local cache = retort.cache.build{teacher = teacher, data = loader, path = dir .. "/c.h5", quiet = true}
      local z = cache:logitsOfView(1):totable()
      local y = loader.y:totable()
      for _, kind in ipairs({"loss", "entropy", "margin"}) do
         local from_cache = curriculum.scores(cache, {kind = kind}):totable()
         local live = curriculum.scores(teacher, {kind = kind, data = loader, batchSize = 7}):totable()
         for i = 1, 40 do
            local want = naive(z[i], y[i])[kind]
            assert.is_true(close(from_cache[i], want),
                           ("%s of example %d: %g vs %g"):format(kind, i, from_cache[i], want))
            assert.is_true(close(live[i], want, 1e-4), ("live %s of example %d"):format(kind, i))
         end
      end
      local ok, err = pcall(curriculum.scores, cache, {kind = "confidence"})
      assert.is_false(ok); assert.matches('kind must be "loss", "entropy" or "margin", got confidence', err, 1, true)
      ok, err = pcall(curriculum.scores, teacher, {})
      assert.is_false(ok); assert.matches("a live teacher needs data = a retort.data.Loader", err, 1, true)
      support.rmrf(dir)
   end)

   it("paces linearly, by square root and in steps from start to 1 over the epochs", function()
      local lin = curriculum.pacing{kind = "linear", start = 0.2, epochs = 4}
      local root = curriculum.pacing{kind = "root", start = 0.2, epochs = 4}
      local step = curriculum.pacing{kind = "step", start = 0.2, epochs = 4, steps = 2}
      for e = 1, 7 do
         local u = math.min(1, (e - 1) / 4)
         assert.is_true(close(lin{epoch = e}, 0.2 + 0.8 * u))
         assert.is_true(close(root{epoch = e}, math.sqrt(0.04 + 0.96 * u)))
         assert.is_true(close(step{epoch = e}, 0.2 + 0.8 * math.floor(u * 2 + 1e-9) / 2))
      end
      local ok, err = pcall(curriculum.pacing, {kind = "exp"})
      assert.is_false(ok); assert.matches('kind must be "linear", "root" or "step"', err, 1, true)
      ok, err = pcall(curriculum.pacing, {start = 0})
      assert.is_false(ok); assert.matches("start must be in (0, 1], got 0", err, 1, true)
   end)

   it("draws each epoch from the easiest fraction (the hardest with anti), reshuffled", function()
      local base = world.loader{n = 20}
      local scores = retort.arange(1, 20):float() * -1 -- example 20 is the easiest, 1 the hardest
      local pace = curriculum.pacing{kind = "linear", start = 0.25, epochs = 3}
      for _, anti in ipairs({false, true}) do
         local l = curriculum.Loader(base, {scores = scores, pacing = pace, anti = anti})
         for e = 1, 5 do
            l:setEpoch(e)
            local k = math.ceil((0.25 + 0.75 * math.min(1, (e - 1) / 3)) * 20 - 1e-9)
            local seen = {}
            for _, _, idx in l:batches() do for _, i in ipairs(idx:totable()) do seen[#seen + 1] = i end end
            assert.are.equal(k, #seen); assert.are.equal(k, l:numExamples())
            assert.are.equal(math.ceil(k / base.batchSize), l:numBatches())
            local want = {}
            for j = 1, k do want[j] = anti and j or 21 - j end
            assert.are.same(set_of(want), set_of(seen))
         end
      end
      local l = curriculum.Loader(base, {scores = scores, pacing = function() return 0.5 end})
      assert.are_not.same(l:order(1):totable(), l:order(2):totable()) -- same subset, new shuffle
   end)

   it("weights the examples outside the fraction instead of dropping them, through train.fit's ctx", function()
      local base = world.loader{n = 12, batchSize = 12}
      local scores = retort.tensor{5, 1, 9, 2, 8, 3, 7, 4, 6, 0, 11, 10}
      local l = curriculum.Loader(base, {scores = scores, pacing = function() return 0.5 end, weights = true,
                                         minWeight = 0.1})
      local w = l:weights(retort.arange(1, 12, "i64"), 1):totable()
      local easiest = set_of({10, 2, 4, 6, 8, 1}) -- the six smallest scores
      for i = 1, 12 do assert.is_true(close(w[i], easiest[i] and 1 or 0.1)) end
      assert.are.equal(12, l:numExamples())
      -- the loss train.fit computes is sum_i w_i CE_i / N
      local net = world.teacher(3)
      local seen
      retort.train.fit{model = net, optimizer = retort.optim.SGD(net:parameters(), {lr = 0}), train = l, epochs = 1,
                       log = io.open("/dev/null", "w"),
                       loss = function(logits, y, ctx)
                          seen = {ctx.weights:totable(), ctx.indices:totable()}
                          return retort.loss.crossEntropy(logits, y)
                       end}
      for j, i in ipairs(seen[2]) do assert.is_true(close(seen[1][j], easiest[i] and 1 or 0.1)) end
   end)

   it("the Distiller weights CE and KD per example with a curriculum's weights", function()
      local teacher, student = world.teacher(1), world.teacher(2)
      local d = retort.distill.Distiller{teacher = teacher, student = student, T = 3, alpha = 0.6, gamma = 0.4}
      local base = world.loader{n = 8}
      local idx = retort.arange(1, 8, "i64")
      local x, y = base:gather(idx, 1)
      local w = retort.tensor{1, 0.25, 1, 0.25, 0.25, 1, 1, 0.25}
      d:training()
      local _, loss = d:trainingStep(x, y, {epoch = 1, indices = idx, weights = w})
      loss = loss:item()
      local s = student:forward(x)
      local t = retort.noGrad(function() teacher:evaluate(); return teacher:forward(x) end)
      local ce = retort.loss.crossEntropy(s, y, {reduction = "none"}):totable()
      local want_ce = 0
      for i = 1, 8 do want_ce = want_ce + ce[i] * w:get(i) / 8 end
      local want = 0.4 * want_ce + 0.6 * retort.distill.kd(s, t, {T = 3, alpha = 1, weights = w}):item()
      assert.is_true(close(loss, want), ("%g vs %g"):format(loss, want))
   end)

   it("self-paced: before each epoch the model's own loss ranks the examples", function()
      local base = world.loader{n = 30}
      local net = world.teacher(4)
      local l = curriculum.Loader(base, {selfPaced = net, pacing = function() return 0.3 end})
      l:setEpoch(1)
      local losses = curriculum.modelScores(net, base, "loss", 1):totable()
      local order = {}
      for i = 1, 30 do order[i] = i end
      table.sort(order, function(a, b) return losses[a] < losses[b] end)
      local want = {}
      for j = 1, 9 do want[j] = order[j] end
      assert.are.same(set_of(want), set_of(l:order(1):totable()))
   end)

   it("refuses bad options with messages that say what was expected", function()
      local base = world.loader{n = 10}
      local function bad(o, want)
         local ok, err = pcall(curriculum.Loader, base, o)
         assert.is_false(ok); assert.matches(want, err, 1, true)
      end
      bad({pacing = curriculum.pacing{}}, "give scores (a tensor of difficulties) or selfPaced (the model)")
      bad({scores = retort.zeros(9), pacing = curriculum.pacing{}}, "scores must be a 1-D tensor of 10 difficulties")
      bad({scores = retort.zeros(10)}, "pacing must be a schedule")
      bad({scores = retort.zeros(10), pacing = curriculum.pacing{}, pace = 1}, "unknown option 'pace'")
   end)
end)
