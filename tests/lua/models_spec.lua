-- retort.models: parameter counts against published values (RepDistiller's CIFAR-100 table,
-- Hinton's MLPs), tap names, and output shapes (pending until the core has conv2d/batchNorm/pools).
local retort = require "retort"
local models = retort.models or require "retort.models"

local x1 = retort.randn(1)
local HAVE_CNN_OPS = x1.conv2d ~= nil and x1.batchNorm ~= nil and x1.maxPool2d ~= nil and x1.adaptiveAvgPool2d ~= nil

local function maybe(name, fn)
   if HAVE_CNN_OPS then it(name, fn) else pending(name .. " (needs conv2d/batchNorm/pools in the core)") end
end

local function has(list, name)
   for _, v in ipairs(list) do if v == name then return true end end
   return false
end

describe("models", function()
   it("have the published parameter counts (100 classes)", function()
      -- exact counts of the PyTorch definitions; RepDistiller reports 0.08M, 0.28M, 0.47M, 0.86M,
      -- 1.23M, 7.43M, 0.70M, 2.26M (wrn_40_2 2.25M), Hinton's MLPs 2.4M / 1.28M
      local want = {resnet8 = 83892, resnet20 = 278324, resnet32 = 472756, resnet56 = 861620,
                    resnet8x4 = 1233540, resnet32x4 = 7433860, wrn_16_2 = 703284, wrn_40_2 = 2255156,
                    wrn_40_1 = 569780}
      for name, n in pairs(want) do
         assert.are.equal(n, models.get(name, {classes = 100}):numParameters(), name)
      end
      assert.are.equal(272474, models.resnet20{classes = 10}:numParameters())
      assert.are.equal(2395210, models.mlp{sizes = {784, 1200, 1200, 10}}:numParameters())
      assert.are.equal(1276810, models.mlp{sizes = {784, 800, 800, 10}, dropout = 0.5}:numParameters())
   end)

   it("expose natural tap names", function()
      local r = models.resnet8x4()
      local names = r:tapNames()
      for _, n in ipairs{"conv1", "layer1", "layer2", "layer3", "layer3.1.preact", "pool", "logits"} do
         assert.is_true(has(names, n), n)
      end
      local w = models.wrn_16_2():tapNames()
      for _, n in ipairs{"block1", "block2", "block3", "block3.2", "pool", "logits"} do assert.is_true(has(w, n), n) end
      local m = models.mlp{sizes = {784, 800, 800, 10}, dropout = 0.5}:tapNames()
      for _, n in ipairs{"fc1", "relu1", "drop1", "fc2", "fc3", "logits"} do assert.is_true(has(m, n), n) end
      local s = models.fitnetStudent():tapNames()
      for _, n in ipairs{"conv1", "conv9", "pool2", "fc", "logits"} do assert.is_true(has(s, n), n) end
   end)

   it("get names the known models on a miss; depths are checked", function()
      local ok, err = pcall(models.get, "resnet21")
      assert.is_false(ok)
      assert.matches("unknown model 'resnet21'; known: cnn, fitnetStudent", err, 1, true)
      assert.has_error(function() models.resnet{depth = 21} end)
      assert.has_error(function() models.wrn{depth = 20} end)
   end)

   it("the MLP runs and taps its logits", function()
      local m = models.mlp{sizes = {784, 800, 800, 10}}
      local y, taps = m:forward(retort.randn(3, 1, 28, 28), {taps = {"relu2", "logits"}})
      assert.are.same({3, 10}, y:shape())
      assert.are.same({3, 800}, taps.relu2:shape())
      assert.are.equal(y, taps.logits)
   end)

   maybe("CIFAR networks give logits and block outputs of the expected shapes", function()
      local x = retort.randn(2, 3, 32, 32)
      local r = models.resnet8{classes = 10}
      local y, t = r:forward(x, {taps = {"layer1", "layer2", "layer3", "pool", "logits"}})
      assert.are.same({2, 10}, y:shape())
      assert.are.same({2, 16, 32, 32}, t.layer1:shape())
      assert.are.same({2, 32, 16, 16}, t.layer2:shape())
      assert.are.same({2, 64, 8, 8}, t.layer3:shape())
      assert.are.same({2, 64}, t.pool:shape())
      local w = models.wrn_16_1{classes = 10}
      local yw, tw = w:forward(x, {taps = {"block3"}})
      assert.are.same({2, 10}, yw:shape())
      assert.are.same({2, 64, 8, 8}, tw.block3:shape())
      assert.are.same({2, 10}, models.cnn{inChannels = 3, size = 32}:forward(x):shape())
      local s = models.fitnetStudent{stages = {{8, 8}, {16}}, hidden = 20}
      assert.are.same({2, 10}, s:forward(x):shape())
   end)
end)

describe("models' options", function()
   it("refuse unknown keys, suggesting the nearest (models.mlp{size = ...} once built the default MLP)", function()
      local cases = {
         {models.mlp, {size = {2, 3}}, "models.mlp: unknown option 'size'", "did you mean 'sizes'?"},
         {models.cnn, {chanels = {4}}, "models.cnn: unknown option 'chanels'", "did you mean 'channels'?"},
         {models.fitnetStudent, {channels = {4}}, "models.fitnetStudent: unknown option 'channels'", "(known:"},
         {models.fitnetTeacher, {stages = {{4}}}, "models.fitnetTeacher: unknown option 'stages'", "(known:"},
      }
      for _, c in ipairs(cases) do
         local ok, err = pcall(c[1], c[2])
         assert.is_false(ok)
         assert.matches(c[3], err, 1, true)
         assert.matches(c[4], err, 1, true)
      end
   end)
end)
