-- Two-stage training (Distiller:setStage, initParameters) and the methods that need it or their
-- own state: AB (connector), FT (paraphraser + translator), FSP (pairs of layers), CRD (memory
-- banks, negatives from other classes, the batch's dataset indices). Small CNNs on 8x8 images.
local retort = require "retort"
local distill = retort.distill

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * (1 + math.abs(b)) end

local function images(n)
   return retort.data.randomImages{n = n or 64, classes = 4, height = 8, width = 8, seed = 2}
end

local function loader(ds) return retort.data.Loader(ds, {batchSize = 16, shuffle = true, seed = 1}) end

local function cnns()
   retort.manualSeed(5)
   local teacher = retort.models.cnn{size = 8, channels = {6, 8}, hidden = 16, classes = 4}
   local student = retort.models.cnn{size = 8, channels = {4, 8}, hidden = 12, classes = 4}
   return teacher, student
end

local function snapshot(params)
   local out = {}
   for i, p in ipairs(params) do out[i] = p:clone() end
   return out
end

local function changed(params, before)
   local n = 0
   for i, p in ipairs(params) do
      if (p - before[i]):abs():max():item() > 0 then n = n + 1 end
   end
   return n
end

local function fit(d, params, ds, epochs, lr)
   return retort.train.fit{model = d, optimizer = retort.optim.SGD(params, {lr = lr or 0.05, momentum = 0.9}),
                           train = loader(ds), epochs = epochs or 1, log = io.open("/dev/null", "w")}
end

local function sample() return images(4).x:float() end

describe("Loader", function()
   it("gives each batch's dataset indices as a third value", function()
      local ds = images(40)
      local l = loader(ds)
      local seen = {}
      for x, y, idx in l:batches() do
         assert.are.equal("i64", idx:dtype())
         assert.are.equal(x:size(1), idx:size(1))
         for i = 1, idx:size(1) do
            local k = idx:get(i)
            assert.are.equal(ds.y:get(k), y:get(i))
            assert.is_nil(seen[k])
            seen[k] = true
         end
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.are.equal(40, n)
   end)
end)

describe("Distiller stages", function()
   it("init stage: trains the student up to the guided layer and the regressor on the hint loss alone", function()
      local teacher, student = cnns()
      local d = distill.Distiller{teacher = teacher, student = student, alpha = 0.9,
                                  pairs = {{hint = "conv2", guided = "conv2", loss = "fitnet", stage = "init"}},
                                  sample = sample()}
      d:setStage("init")
      local params = d:initParameters()
      -- conv1, conv2 (weight and bias each) and the regressor's weight and bias
      assert.are.equal(6, #params)
      assert.are.same({"fitnet", "total"}, d:termNames())
      local x = sample()
      d:training()
      local _, loss, terms = d:trainingStep(x, retort.tensor({1, 2, 3, 4}, "i64"))
      local _, staps = student:forward(x, {taps = {"conv2"}})
      local _, ttaps = teacher:forward(x, {taps = {"conv2"}})
      local want = d._modules.pairs._modules.fitnet:loss(staps.conv2, ttaps.conv2):item()
      assert.is_true(close(loss:item(), want), ("%g vs %g"):format(loss:item(), want))
      assert.are.equal(terms.total:item(), terms.fitnet:item())
      local all = student:parameters()
      local before = snapshot(all)
      fit(d, params, images(32))
      -- conv1 and conv2 moved; fc1 and fc2 did not
      assert.are.equal(4, changed(all, before))
      -- main stage: the init pair is left out, CE + KD train everything
      d:setStage("main")
      assert.are.same({"ce", "kl", "kd", "total"}, d:termNames())
      before = snapshot(all)
      fit(d, d:parameters(), images(32))
      assert.are.equal(#all, changed(all, before))
   end)

   it("refuses an unknown stage and initParameters without init pairs", function()
      local teacher, student = cnns()
      local d = distill.Distiller{teacher = teacher, student = student}
      assert.has_error(function() d:setStage("warmup") end, 'Distiller: stage must be "init" or "main", got warmup')
      assert.error_matches(function() d:initParameters() end, "no pair has an init stage")
      assert.error_matches(function()
         distill.Distiller{teacher = teacher, student = student,
                           pairs = {{hint = "relu1", guided = "relu1", loss = "at", stage = "later"}}}
      end, 'stage must be "main", "init" or "both", got later')
   end)
end)

describe("AB", function()
   it("joins differing maps with a conv + BatchNorm connector and is an init-stage method", function()
      local teacher, student = cnns()
      local d = distill.Distiller{teacher = teacher, student = student,
                                  pairs = {{hint = "conv1", guided = "conv1", loss = "ab"}}, sample = sample()}
      local ab = d._modules.pairs._modules.ab
      assert.are.equal("init", d.pairs[1].phase)
      assert.are.equal(3e-3, d.pairs[1].weight)
      local conn = ab._modules.connector
      assert.is_not_nil(conn)
      assert.are.same({6, 4, 1, 1}, conn._modules["1"].weight:shape()) -- 4 -> 6 channels, same size: 1x1
      conn:evaluate()
      local fs, ft = retort.randn(2, 4, 8, 8), retort.randn(2, 6, 8, 8)
      assert.is_true(close(ab:loss(fs, ft):item(), distill.ab(conn:forward(fs), ft):item(), 1e-6))
      -- equal shapes: no connector
      local same = distill.AB():setup({2, 4, 8, 8}, {2, 4, 8, 8})
      assert.is_nil(same._modules.connector)
      d:setStage("init")
      local params = d:initParameters()
      assert.are.equal(2 + #conn:parameters(), #params) -- conv1's weight and bias, the connector's
      local before = snapshot(params)
      fit(d, params, images(32))
      assert.are.equal(#params, changed(params, before))
   end)
end)

describe("FT", function()
   it("init stage trains the paraphraser alone; the main stage the translator and student, "
      .. "not the paraphraser", function()
      local teacher, student = cnns()
      local d = distill.Distiller{teacher = teacher, student = student, gamma = 1,
                                  pairs = {{hint = "relu2", guided = "relu2", loss = "ft"}}, sample = sample()}
      local ft = d._modules.pairs._modules.ft
      assert.are.equal(200, d.pairs[1].weight)
      local para = ft._modules.paraphraser:parameters()
      -- the translator's parameters that get a gradient: not the conv biases, each right before a
      -- training-mode BatchNorm that takes the channel mean away (only rounding could move them)
      local trans, shapes = {}, {}
      for _, p in ipairs(ft._modules.translator:namedParameters()) do shapes[p[1]] = p[2]:dim() end
      for _, p in ipairs(ft._modules.translator:namedParameters()) do
         local layer = p[1]:match("^(.*)%.bias$")
         if not (layer and shapes[layer .. ".weight"] == 4) then trans[#trans + 1] = p[2] end
      end
      assert.are.equal(9, #trans)
      local stud = student:parameters()
      -- factors have half the teacher's 8 channels
      local _, ttaps = teacher:forward(sample(), {taps = {"relu2"}})
      assert.are.same({4, 4, 4, 4}, ft._modules.paraphraser._modules.encoder:forward(ttaps.relu2):shape())
      d:setStage("init")
      assert.are.equal(#para, #d:initParameters())
      local p0, s0, t0 = snapshot(para), snapshot(stud), snapshot(trans)
      local r = fit(d, d:initParameters(), images(64), 5, 0.01)
      assert.are.equal(r.history[1].train_ft, r.history[1].train_total) -- the reconstruction has weight 1
      assert.are.equal(#para, changed(para, p0))
      assert.are.equal(0, changed(stud, s0))
      assert.are.equal(0, changed(trans, t0))
      assert.is_true(r.history[5].train_loss < r.history[1].train_loss, ("reconstruction %g -> %g"):format(
         r.history[1].train_loss, r.history[5].train_loss))
      d:setStage("main")
      p0, s0, t0 = snapshot(para), snapshot(stud), snapshot(trans)
      fit(d, d:parameters(), images(32))
      assert.are.equal(0, changed(para, p0))
      assert.are.equal(#stud, changed(stud, s0))
      assert.are.equal(#trans, changed(trans, t0))
   end)
end)

describe("FSP", function()
   it("takes a pair of layers on each side and matches distill.fsp on them", function()
      local teacher = cnns()
      local student = retort.models.cnn{size = 8, channels = {6, 8}, hidden = 12, classes = 4}
      local d = distill.Distiller{teacher = teacher, student = student,
                                  pairs = {{hint = {"relu1", "conv2"}, guided = {"pool1", "conv2"}, loss = "fsp"}}}
      assert.are.equal("init", d.pairs[1].phase)
      d:setStage("init")
      local x = sample()
      d:training()
      local _, loss = d:trainingStep(x, retort.tensor({1, 2, 3, 4}, "i64"))
      local _, s = student:forward(x, {taps = {"pool1", "conv2"}})
      local _, t = teacher:forward(x, {taps = {"relu1", "conv2"}})
      local want = distill.fsp(s.pool1, s.conv2, t.relu1, t.conv2):item()
      assert.is_true(close(loss:item(), want), ("%g vs %g"):format(loss:item(), want))
      -- student layers up to conv2 are trained
      assert.are.equal(4, #d:initParameters())
      assert.error_matches(function() distill.FSP():loss(s.pool1, t.relu1) end, "compares two layers of each network")
   end)
end)

describe("CRD", function()
   local function crd_distiller(ds, opts)
      local teacher, student = cnns()
      opts = opts or {}
      opts.labels = ds.y
      opts.negatives = opts.negatives or 8
      local d = distill.Distiller{teacher = teacher, student = student,
                                  pairs = {{hint = "relu", guided = "relu", loss = distill.CRD(opts)}},
                                  sample = sample()}
      return d, d._modules.pairs._modules.crd, teacher, student
   end

   it("draws the negatives from other classes, after the example itself", function()
      local ds = images(48)
      local _, crd = crd_distiller(ds, {negatives = 20})
      local idx = crd:sampleIndices(retort.tensor({3, 17, 40}, "i64"))
      assert.are.same({3, 21}, idx:shape())
      for i, own in ipairs{3, 17, 40} do
         assert.are.equal(own, idx:get(i, 1))
         for k = 2, 21 do assert.are_not.equal(ds.y:get(own), ds.y:get(idx:get(i, k))) end
      end
   end)

   it("scores against the memories, fixes Z on the first batch and moves the memories to the embeddings", function()
      local ds = images(48)
      local _, crd = crd_distiller(ds, {momentum = 0.25})
      local fs, ft = retort.randn(3, 12), retort.randn(3, 16)
      local indices = retort.tensor({5, 9, 30}, "i64")
      local ms, mt = crd.memoryStudent:clone(), crd.memoryTeacher:clone()
      retort.manualSeed(11)
      local loss = crd:loss(fs, ft, {indices = indices})
      -- the same draw, recomputed with the plain function
      retort.manualSeed(11)
      local idx = crd:sampleIndices(indices)
      local es = distill.normalize(crd._modules.embedStudent:forward(fs), 2)
      local et = distill.normalize(crd._modules.embedTeacher:forward(ft), 2)
      local want, zs, zt = distill.crd(es, et, ms, mt, idx, {T = 0.07, nData = 48})
      assert.is_true(close(loss:item(), want:item(), 1e-5), ("%g vs %g"):format(loss:item(), want:item()))
      assert.is_true(close(crd.normalizers:get(1), zs, 1e-5) and close(crd.normalizers:get(2), zt, 1e-5))
      -- memory rows at the batch's indices: normalize(0.25 m + 0.75 e); the others untouched
      for i = 1, 3 do
         local k = indices:get(i)
         local row = ms:narrow(1, k, 1) * 0.25 + es:detach():narrow(1, i, 1) * 0.75
         row = row / row:norm(2, 2, true)
         assert.is_true((crd.memoryStudent:narrow(1, k, 1) - row):abs():max():item() < 1e-6)
      end
      assert.is_true((crd.memoryStudent:narrow(1, 1, 4) - ms:narrow(1, 1, 4)):abs():max():item() == 0)
      -- Z stays fixed afterwards
      local z1 = crd.normalizers:get(1)
      crd:loss(retort.randn(3, 12), retort.randn(3, 16), {indices = indices})
      assert.are.equal(z1, crd.normalizers:get(1))
   end)

   it("learns: its loss falls when its embeddings are trained on fixed features", function()
      retort.manualSeed(1)
      local n, dim = 64, 12
      local y = retort.randint(1, 4, n)
      local fs_all, ft_all = retort.randn(n, dim), retort.randn(n, dim)
      local crd = distill.CRD{labels = y, negatives = 8}:setup({n, dim}, {n, dim})
      local opt = retort.optim.SGD(crd:parameters(), {lr = 0.005, momentum = 0.9})
      local per_epoch = {}
      for epoch = 1, 20 do
         local perm, sum = retort.randperm(n), 0
         for b = 0, 3 do
            local idx = perm:narrow(1, b * 16 + 1, 16):long()
            local loss = crd:loss(fs_all:indexSelect(1, idx), ft_all:indexSelect(1, idx), {indices = idx})
            sum = sum + loss:item()
            opt:zeroGrad(); loss:backward(); opt:step()
         end
         per_epoch[epoch] = sum / 4
      end
      assert.is_true(per_epoch[20] < 0.8 * per_epoch[1], ("loss %g -> %g"):format(per_epoch[1], per_epoch[20]))
   end)

   it("gets the batch's indices from train.fit and keeps its state in checkpoints", function()
      local ds = images(64)
      local d, crd = crd_distiller(ds)
      local r = fit(d, d:parameters(), ds, 1)
      assert.is_true(r.history[1].train_crd > 0)
      local sd = d:stateDict()
      assert.is_not_nil(sd["pairs.crd.memoryStudent"])
      assert.is_not_nil(sd["pairs.crd.normalizers"])
      assert.is_true(crd.normalizers:get(1) > 0)
   end)

   it("says what it needs", function()
      assert.error_matches(function() distill.CRD{} end, "option 'labels' must be the training set's labels")
      assert.error_matches(function() distill.CRD{labels = retort.tensor({1, 1}, "i64")} end, "a single class")
      local ds = images(16)
      local _, crd = crd_distiller(ds)
      assert.error_matches(function() crd:loss(retort.randn(2, 12), retort.randn(2, 16), {}) end,
         "needs the batch's dataset indices")
   end)
end)
