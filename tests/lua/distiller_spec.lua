-- The Distiller: frozen teacher, hint/guided pairs through taps, the combined loss and its terms,
-- schedules, multi-teacher, and its errors. Small MLPs/CNNs on synthetic data.
local retort = require "retort"
local support = require "support"
local distill = retort.distill

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * (1 + math.abs(b)) end

local function blobs_loader(n, seed)
   local ds = retort.data.blobs{n = n or 128, dim = 20, classes = 3, seed = seed or 1}
   return retort.data.Loader(ds, {batchSize = 32, shuffle = true, seed = 1})
end

local function nets()
   retort.manualSeed(3)
   return retort.models.mlp{sizes = {20, 16, 32, 3}}, retort.models.mlp{sizes = {20, 16, 3}}
end

local function snapshot(model)
   local out = {}
   for _, p in ipairs(model:namedParameters()) do out[p[1]] = p[2]:clone() end
   return out
end

describe("Distiller", function()
   it("keeps the teacher frozen: not in parameters, evaluation mode, weights untouched by training", function()
      local teacher, student = nets()
      local d = distill.Distiller{teacher = teacher, student = student, alpha = 0.9, gamma = 0.1, T = 4,
                                  pairs = {{hint = "relu2", guided = "relu1", loss = "fitnet"}},
                                  sample = retort.randn(4, 20)}
      local before = snapshot(teacher)
      local tparams = {}
      for _, p in ipairs(teacher:parameters()) do tparams[p] = true end
      for _, p in ipairs(d:parameters()) do assert.is_nil(tparams[p], "a teacher parameter reached the optimizer") end
      -- the student and the regressor are trained
      assert.are.equal(#student:parameters() + 2, #d:parameters())
      local sd = d:stateDict()
      for k in pairs(sd) do assert.truthy(k:find("^student%.") or k:find("^pairs%."), k) end
      d:training()
      assert.is_false(teacher:isTraining())
      retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.1, momentum = 0.9}),
                       train = blobs_loader(), epochs = 2, log = io.open("/dev/null", "w")}
      for _, p in ipairs(teacher:namedParameters()) do
         assert.are.equal(0, (p[2] - before[p[1]]):abs():max():item(), p[1] .. " changed")
         assert.is_nil(p[2].grad, p[1] .. " has a gradient")
      end
      assert.is_false(teacher:isTraining())
   end)

   it("with every weight 0 and no active pair, trains on a zero loss (no nil global 'ce')", function()
      local teacher, student = nets()
      local d = distill.Distiller{teacher = teacher, student = student, gamma = 0, alpha = 0}
      local r = retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.1}),
                                 train = blobs_loader(64), epochs = 1, log = io.open("/dev/null", "w")}
      assert.are.equal(0, r.history[1].train_loss)
   end)

   it("refuses unknown options, at the top and in a pair, suggesting the nearest", function()
      local teacher, student = nets()
      local ok, err = pcall(distill.Distiller, {teacher = teacher, student = student, aplha = 0.3})
      assert.is_false(ok)
      assert.matches("Distiller: unknown option 'aplha' (known: T, alpha, beta,", err, 1, true)
      assert.matches("did you mean 'alpha'?", err, 1, true)
      ok, err = pcall(distill.Distiller, {teacher = teacher, student = student,
                                          pairs = {{hint = "relu2", guided = "relu1", loss = "at", wieght = 2}}})
      assert.is_false(ok)
      assert.matches("Distiller: pair 1: unknown option 'wieght'", err, 1, true)
      assert.matches("did you mean 'weight'?", err, 1, true)
   end)

   it("combines gamma * CE + alpha * T^2 KL + beta * sum w_k L_k and reports each term", function()
      local teacher, student = nets()
      local x, y = retort.randn(8, 20), retort.tensor({1, 2, 3, 1, 2, 3, 1, 2}, "i64")
      local d = distill.Distiller{teacher = teacher, student = student, T = 3, gamma = 0.3, alpha = 0.7, beta = 2,
                                  pairs = {{hint = "logits", guided = "logits", loss = "logitl2", weight = 0.5},
                                           {hint = "relu1", guided = "relu1", loss = "hint", name = "h"}}}
      d:training()
      local logits, loss, terms = d:trainingStep(x, y, {epoch = 1, step = 1, epochs = 1})
      local tl = retort.noGrad(function() return teacher:forward(x) end)
      local ce = retort.loss.crossEntropy(logits, y):item()
      local kl = distill.kl(logits, tl, {T = 3}):item() / 9
      local l2 = distill.logitL2(logits, tl):item()
      local _, st = student:forward(x, {taps = {"relu1"}})
      local _, tt = teacher:forward(x, {taps = {"relu1"}})
      local h = distill.hint(st.relu1, tt.relu1):item()
      assert.is_true(close(terms.ce:item(), ce) and close(terms.kl:item(), kl) and close(terms.kd:item(), 9 * kl))
      assert.is_true(close(terms.logitl2:item(), l2) and close(terms.h:item(), h))
      assert.is_true(close(loss:item(), 0.3 * ce + 0.7 * 9 * kl + 2 * (0.5 * l2 + h)))
      assert.is_true(close(terms.total:item(), loss:item()))
      -- with gamma = 1 - alpha the KD part is the pinned kd loss
      local d2 = distill.Distiller{teacher = teacher, student = student, T = 3, gamma = 0.3, alpha = 0.7}
      d2:training()
      local _, l2d = d2:trainingStep(x, y)
      local want = distill.kd(logits, tl, {T = 3, alpha = 0.7, labels = y})
      assert.is_true(close(l2d:item(), want:item(), 1e-6))
      -- gamma + alpha other than 1, and two teachers averaged: still gamma CE + alpha T^2 KL
      retort.manualSeed(9)
      local t2 = retort.models.mlp{sizes = {20, 16, 32, 3}}
      local d3 = distill.Distiller{teacher = {teacher, t2}, student = student, T = 2, gamma = 0.5, alpha = 2,
                                   multiTeacher = "average"}
      d3:training()
      local _, l3, terms3 = d3:trainingStep(x, y)
      local tmean = (tl + retort.noGrad(function() return t2:forward(x) end)) / 2
      local kl3 = distill.kl(logits, tmean, {T = 2}):item() / 4
      assert.is_true(close(terms3.ce:item(), ce) and close(terms3.kl:item(), kl3) and close(terms3.kd:item(), 4 * kl3))
      assert.is_true(close(l3:item(), 0.5 * ce + 2 * 4 * kl3))
   end)

   it("writes the terms per epoch to metrics.csv and follows schedules for the weights", function()
      local teacher, student = nets()
      local dir = support.tmpdir()
      local d = distill.Distiller{teacher = teacher, student = student, T = 2, gamma = 1,
                                  alpha = retort.schedule.linear{from = 0, to = 1, epochs = 1},
                                  pairs = {{hint = "relu2", guided = "relu1", loss = "fitnet"}},
                                  sample = retort.randn(2, 20)}
      local seen = {}
      local orig = d.trainingStep
      d.trainingStep = function(self, x, y, ctx)
         local logits, loss, terms = orig(self, x, y, ctx)
         seen[#seen + 1] = retort.schedule.value(self.alpha, {epoch = ctx.epoch, step = ctx.step - 1,
                                                              epochs = ctx.epochs, stepsPerEpoch = ctx.stepsPerEpoch})
         return logits, loss, terms
      end
      local r = retort.train.fit{model = d, optimizer = retort.optim.SGD(d:parameters(), {lr = 0.05}),
                                 train = blobs_loader(), test = blobs_loader(64, 2), epochs = 2, dir = dir,
                                 log = io.open("/dev/null", "w")}
      assert.are.equal(0, seen[1])
      assert.are.equal(0.75, seen[4])
      assert.are.equal(1, seen[#seen])
      local rows = require("retort.train.metrics").read(dir .. "/metrics.csv")
      assert.are.equal(2, #rows)
      for _, k in ipairs{"train_ce", "train_kl", "train_kd", "train_fitnet", "train_total"} do
         assert.is_number(rows[2][k], k)
      end
      assert.is_true(close(rows[2].train_kd, 4 * rows[2].train_kl, 1e-6))
      assert.is_number(r.history[2].test_acc)
      support.rmrf(dir)
   end)

   it("averages the teachers' logits, or sums one KD term per teacher", function()
      local t1, student = nets()
      retort.manualSeed(9)
      local t2 = retort.models.mlp{sizes = {20, 8, 3}}
      local x, y = retort.randn(6, 20), retort.tensor({1, 2, 3, 1, 2, 3}, "i64")
      local avg = distill.Distiller{teacher = {t1, t2}, student = student, T = 2, gamma = 0, alpha = 1}
      local sum = distill.Distiller{teacher = {t1, t2}, student = student, T = 2, gamma = 0, alpha = 1,
                                    multiTeacher = "sum"}
      avg:training(); sum:training()
      local s, la = avg:trainingStep(x, y)
      la = la:item()
      local _, ls = sum:trainingStep(x, y)
      ls = ls:item()
      local l1 = retort.noGrad(function() return t1:forward(x) end)
      local l2 = retort.noGrad(function() return t2:forward(x) end)
      assert.is_true(close(la, distill.kl(s, (l1 + l2) / 2, {T = 2}):item(), 1e-6))
      assert.is_true(close(ls, distill.kl(s, l1, {T = 2}):item() + distill.kl(s, l2, {T = 2}):item(), 1e-6))
   end)

   it("forwards the student alone in either mode, and keeps nothing between training steps", function()
      local teacher, student = nets()
      local d = distill.Distiller{teacher = teacher, student = student, gamma = 0.5, alpha = 0.5}
      local x, y = retort.randn(3, 20), retort.tensor({1, 2, 3}, "i64")
      d:evaluate()
      assert.are.equal(0, (d:forward(x) - student:forward(x)):abs():max():item())
      d:training()
      local before = {}
      for k in pairs(d) do before[k] = true end
      local logits = d:trainingStep(x, y)
      assert.are.equal(0, (logits - student:forward(x)):abs():max():item())
      for k in pairs(d) do assert.is_true(before[k], "trainingStep left '" .. tostring(k) .. "' on the Distiller") end
   end)

   it("refuses bad input with errors that say what was expected", function()
      local teacher, student = nets()
      local function err(o)
         local ok, e = pcall(distill.Distiller, o)
         assert.is_false(ok)
         return e
      end
      local e = err{teacher = teacher, student = student, pairs = {{hint = "relu9", guided = "relu1", loss = "hint"}}}
      assert.matches("the teacher has no tap 'relu9'; available: flatten, fc1, relu1", e, 1, true)
      e = err{teacher = teacher, student = student, pairs = {{hint = "relu2", guided = "nope", loss = "hint"}}}
      assert.matches("the student has no tap 'nope'", e, 1, true)
      e = err{teacher = teacher, student = student, pairs = {{hint = "relu2", guided = "relu1", loss = "magic"}}}
      assert.matches("unknown method 'magic'; known: ab, at, cc, crd, dkd", e, 1, true)
      e = err{teacher = teacher, student = student, T = 0}
      assert.matches("temperature T must be a positive number, got 0", e, 1, true)
      local other = retort.models.mlp{sizes = {20, 8, 5}}
      e = err{teacher = other, student = student, sample = retort.randn(2, 20)}
      assert.matches("the student predicts 3 classes and the teacher 5", e, 1, true)
      -- a guided map smaller than the hint: the paper's regressor (a valid conv) cannot join them
      local fit = distill.FitNet{}
      local ok, m = pcall(fit.setup, fit, {2, 8, 4, 4}, {2, 16, 7, 7})
      assert.is_false(ok)
      assert.matches("no regressor joins the guided layer (2x8x4x4) to the hint (2x16x7x7)", m, 1, true)
      fit = distill.FitNet{}
      fit:setup({2, 8, 9, 9}, {2, 16, 7, 7})
      assert.are.same({16, 8, 3, 3}, fit._modules.regressor.weight:shape())
   end)
end)
