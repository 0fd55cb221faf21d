-- RepDistiller's CIFAR-100 models in retort.models (vgg, MobileNetV2, ShuffleV1/V2, ResNet50, and the
-- resnet / wrn families the recipe pairs with them), checked against minimal PyTorch twins written
-- independently in tests/lua/models_cifar_twin.py (run at test time with Debian's python3-torch;
-- pending without it): parameter counts, output shapes for a (2, 3, 32, 32) input, and for every
-- entry of RepDistiller's is_feat lists (featureTaps, preactTaps) the shape and whether it is a
-- post-ReLU map (never negative) or a pre-activation. Also, without torch: the counts RepDistiller's
-- papers publish (in millions), natural tap names, the channel shuffle against its index formula,
-- gradients through grouped convs / splits / concatenations, and RepDistiller's initialisation.
local retort = require "retort"
local models = retort.models
local support = require "support"

local function has(list, name)
   for _, v in ipairs(list) do if v == name then return true end end
   return false
end

-- each model built once (the large ones take a second or two to initialise)
local built = {}
local function get(name)
   if not built[name] then built[name] = models.get(name, {classes = 100}) end
   return built[name]
end

local twin -- the twin's table, or nil (then the twin tests are pending)
do
   local r = support.sh(support.python .. " " .. support.shquote(support.spec_dir .. "/models_cifar_twin.py"))
   if r.status == 0 then twin = assert(load(r.stdout))() end
end

-- one forward (evaluation mode, as the twin) taps both lists: their shapes and whether they hold negatives
local function forward_feats(net)
   net:evaluate()
   local all = {}
   for _, n in ipairs(net.featureTaps) do all[#all + 1] = n end
   for _, n in ipairs(net.preactTaps) do all[#all + 1] = n end
   local y, taps = net:forward(retort.randn(2, 3, 32, 32), {taps = all})
   local function describe_list(list)
      local shapes, neg = {}, {}
      for i, name in ipairs(list) do
         shapes[i] = taps[name]:shape()
         neg[i] = taps[name]:min():item() < 0
      end
      return shapes, neg
   end
   local fs, fn = describe_list(net.featureTaps)
   local ps, pn = describe_list(net.preactTaps)
   return y, fs, fn, ps, pn
end

describe("RepDistiller's CIFAR-100 models", function()
   it("match their PyTorch twins: parameters, output, feature lists", function()
      if not twin then
         return pending("python3-torch is not installed for /usr/bin/python3: the PyTorch twins could not run")
      end
      local names = {}
      for name in pairs(twin) do names[#names + 1] = name end
      table.sort(names)
      assert.is_true(#names >= 15)
      for _, name in ipairs(names) do
         local t = twin[name]
         local net = get(name)
         assert.are.equal(t.count, net:numParameters(), name .. " parameters")
         local y, fshapes, fneg, pshapes, pneg = forward_feats(net)
         assert.are.same(t.out, y:shape(), name .. " output")
         assert.are.same(t.feat, fshapes, name .. " featureTaps shapes")
         assert.are.same(t.featNeg, fneg, name .. " featureTaps: post-ReLU or not")
         assert.are.same(t.pre, pshapes, name .. " preactTaps shapes")
         assert.are.same(t.preNeg, pneg, name .. " preactTaps: pre-activations")
      end
   end)

   it("have the parameter counts RepDistiller publishes (millions to 2 decimals, 100 classes)", function()
      local published = {vgg8 = 3.96, vgg13 = 9.46, MobileNetV2 = 0.81, ShuffleV1 = 0.95, ShuffleV2 = 1.36,
                         ResNet50 = 23.71, resnet8x4 = 1.23, resnet32x4 = 7.43, wrn_40_2 = 2.26, wrn_16_2 = 0.70}
      for name, m in pairs(published) do
         local n = get(name):numParameters() / 1e6
         assert.is_true(math.abs(n - m) < 0.01, ("%s: %.4fM, published %.2fM"):format(name, n, m))
      end
   end)

   it("give logits (2, classes) for a (2, 3, 32, 32) batch", function()
      for _, name in ipairs{"vgg8", "vgg13", "MobileNetV2", "ShuffleV1", "ShuffleV2", "ResNet50"} do
         assert.are.same({2, 100}, get(name)(retort.randn(2, 3, 32, 32)):shape(), name)
      end
      for _, name in ipairs{"vgg8", "MobileNetV2", "ShuffleV1", "ShuffleV2"} do
         assert.are.same({2, 10}, models.get(name, {classes = 10})(retort.randn(2, 3, 32, 32)):shape(), name)
      end
   end)

   it("are registered under RepDistiller's names and expose natural taps", function()
      for _, name in ipairs{"resnet8x4", "resnet32x4", "wrn_40_2", "wrn_16_2", "vgg8", "vgg11", "vgg13", "vgg16",
                            "vgg19", "MobileNetV2", "mobile_half", "ShuffleV1", "ShuffleV2", "ResNet50"} do
         local net = get(name)
         assert.is_table(net.featureTaps, name)
         local taps = net:tapNames()
         for _, t in ipairs(net.featureTaps) do assert.is_true(has(taps, t), name .. ": " .. t) end
         for _, t in ipairs(net.preactTaps) do assert.is_true(has(taps, t), name .. ": " .. t) end
         assert.is_true(has(taps, "pool") and has(taps, "logits"), name)
      end
      local expect = {
         vgg13 = {"block0", "block0.1", "relu0", "pool0", "block4", "relu4", "classifier"},
         MobileNetV2 = {"conv1", "blocks.1", "blocks.7.1.conv", "conv2", "classifier"},
         ShuffleV1 = {"conv1", "bn1", "relu", "layer1.1.shuffle", "layer1.1.shortcut", "layer3.4.preact", "linear"},
         ShuffleV2 = {"relu", "layer1.1.shuffle", "layer2.8.preact", "conv2", "bn2", "linear"},
         ResNet50 = {"relu", "layer1.1.shortcut", "layer4.3.preact", "layer4.3.conv3", "linear"},
      }
      for name, list in pairs(expect) do
         local taps = get(name):tapNames()
         for _, t in ipairs(list) do assert.is_true(has(taps, t), name .. ": " .. t) end
      end
      local bad, why = pcall(models.get, "ShuffleV2", {clases = 10})
      assert.is_false(bad)
      assert.matches("models.shufflenetv2: unknown option 'clases'", why, 1, true)
      local ok, err = pcall(models.get, "vgg12")
      assert.is_false(ok)
      assert.matches("unknown model 'vgg12'; known: cnn, fitnetStudent, fitnetTeacher, mlp, mobile_full, mobile_half, "
                     .. "MobileNetV2, mobilenetv2, resnet", err, 1, true)
   end)

   it("shuffle channels as view(N, g, C/g, H, W) transposed: out channel j g + k is in channel k C/g + j", function()
      local ChannelShuffle = require "retort.models.channel_shuffle"
      local c, g = 12, 3
      local x = retort.arange(0, 2 * c * 2 * 2 - 1):view(2, c, 2, 2)
      local y = ChannelShuffle(g)(x)
      local xs, ys = x:totable(), y:totable()
      for n = 1, 2 do
         for k = 0, g - 1 do
            for j = 0, c // g - 1 do
               assert.are.same(xs[n][k * (c // g) + j + 1], ys[n][j * g + k + 1])
            end
         end
      end
      assert.are.same(xs, ChannelShuffle(1)(x):totable())
   end)

   it("train: every parameter gets a gradient through grouped convs, splits and concatenations", function()
      for _, name in ipairs{"ShuffleV1", "ShuffleV2", "MobileNetV2"} do
         retort.manualSeed(3)
         local net = models.get(name, {classes = 5})
         local loss = retort.loss.crossEntropy(net(retort.randn(2, 3, 32, 32)), retort.tensor({1, 4}, "i64"))
         loss:backward()
         for _, p in ipairs(net:namedParameters()) do
            assert.is_not_nil(p.tensor.grad, name .. ": " .. p.name)
         end
      end
   end)

   it("start from RepDistiller's initialisation", function()
      local v = get("vgg13")
      local w = v:get("block3.1").weight -- 512 x 256 x 3 x 3: N(0, sqrt(2 / (9 * 512)))
      local std = math.sqrt((w * w):mean():item())
      assert.is_true(math.abs(std / math.sqrt(2 / (9 * 512)) - 1) < 0.02, "conv std " .. std)
      assert.are.equal(0, v:get("block3.1").bias:abs():max():item())
      local fc = v:get("classifier")
      assert.is_true(math.abs(math.sqrt((fc.weight * fc.weight):mean():item()) / 0.01 - 1) < 0.05)
      assert.are.equal(0, fc.bias:abs():max():item())
      local r = get("resnet32x4"):get("layer3.1.conv2").weight -- 256 x 256 x 3 x 3, fan_out 2304
      assert.is_true(math.abs(math.sqrt((r * r):mean():item()) / math.sqrt(2 / 2304) - 1) < 0.02)
   end)
end)
