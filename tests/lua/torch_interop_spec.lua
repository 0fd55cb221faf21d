-- PyTorch state dicts in and out (retort/interop/torch.lua, torch_names.lua) on every architecture both
-- frameworks define: for each, a PyTorch twin written independently in torch_twins.py (RepDistiller's
-- module names; retort's mlp and cnn with the names docs/checkpoint.md gives) gets random weights and
-- non-trivial BatchNorm statistics and is saved with torch.save; retort imports that file's tensors
-- (through tools/torch_state.py's own reader), runs the same inputs in evaluation mode, and must give
-- the twin's logits within 1e-4; the model is then exported back and PyTorch compares the result with
-- the original file: same keys in the same order, dtypes and bits, and a strict load_state_dict into a
-- twin that gives the original logits. One python process makes every file and one checks every
-- export, so the suite pays for torch's start twice. Set RETORT_TORCH_REPORT=1 to print the max |Δ|
-- per architecture. The name tables and the mismatch listing are also checked without torch.
local retort = require "retort"
local core = require "retort.core"
local torch = require "retort.interop.torch"
local names = require "retort.interop.torch_names"
local support = require "support"

local TWINS = support.spec_dir .. "/torch_twins.py"

-- twin (torch_twins.py's TWINS) -> retort model name and options
local CASES = {
   {"resnet8"}, {"resnet14"}, {"resnet20"}, {"resnet32"}, {"resnet44"}, {"resnet56"}, {"resnet110"},
   {"resnet8x4"}, {"resnet32x4"}, {"wrn_16_1"}, {"wrn_16_2"}, {"wrn_40_1"}, {"wrn_40_2"},
   {"vgg8"}, {"vgg11"}, {"vgg13"}, {"MobileNetV2"}, {"ShuffleV1"}, {"ShuffleV2"}, {"ResNet18"}, {"ResNet50"},
   {"mlp"}, {"mlp_small", "mlp", {sizes = {784, 64, 32, 10}}}, {"cnn"},
}

local function max_abs(a, b) return (a - b):abs():max():item() end

describe("PyTorch names", function()
   it("follow each family's table: 0-based blocks, PyTorch's module names, BatchNorm buffers", function()
      local cases = {
         {"resnet8", "layer2.1.shortcut.conv.weight", "layer2.0.downsample.0.weight"},
         {"resnet8", "layer2.1.shortcut.bn.runningVar", "layer2.0.downsample.1.running_var"},
         {"resnet8", "layer1.1.bn2.runningMean", "layer1.0.bn2.running_mean"},
         {"resnet8", "fc.weight", "fc.weight"},
         {"ResNet18", "layer2.1.shortcut.bn.weight", "layer2.0.shortcut.1.weight"},
         {"wrn_16_1", "block2.1.shortcut.weight", "block2.layer.0.convShortcut.weight"},
         {"wrn_16_1", "block1.2.bn1.bias", "block1.layer.1.bn1.bias"},
         {"wrn_16_1", "bn.runningVar", "bn1.running_var"},
         {"vgg8", "block0.2.runningMean", "block0.1.running_mean"},
         {"MobileNetV2", "blocks.2.1.conv.5.weight", "blocks.1.0.conv.4.weight"},
         {"MobileNetV2", "classifier.1.bias", "classifier.0.bias"},
         {"ShuffleV2", "layer1.2.conv3.weight", "layer1.1.conv3.weight"},
         {"mlp", "fc2.bias", "fc2.bias"},
      }
      for _, c in ipairs(cases) do
         local toTorch = names.mapping(retort.models.get(c[1]))
         assert.are.equal(c[3], toTorch[c[2]], c[1] .. " " .. c[2])
      end
   end)

   it("map every tensor of every supported model to a name of its own", function()
      for _, c in ipairs(CASES) do
         local model = torch.model(c[2] or c[1], {options = c[3]})
         local toTorch, toRetort, order = names.mapping(model)
         local n = 0
         for k in pairs(model:stateDict()) do
            n = n + 1
            assert.is_string(toTorch[k], c[1] .. " " .. k)
            assert.are.equal(k, toRetort[toTorch[k]])
         end
         assert.are.equal(n, #order, c[1])
      end
   end)

   it("are refused for a model without a table, naming the classes that have one", function()
      local ok, err = pcall(names.mapping, retort.models.fitnetTeacher())
      assert.is_false(ok)
      assert.matches("no PyTorch name table for class FitNet", err)
      assert.matches("ResNet, ResNetV2", err)
   end)
end)

describe("state dict matching", function()
   -- a PyTorch-named file made by retort itself: no torch needed
   local function file_of(model)
      return torch.fromRetort(model, {["layer1.0.bn1"] = 7}, "")
   end

   it("takes back what it exported, with the num_batches_tracked counters set aside", function()
      retort.manualSeed(3)
      local a, b = retort.models.resnet8(), retort.models.resnet8()
      local file = file_of(a)
      -- PyTorch's order: conv1.weight, then bn1's weight, bias, running_mean, running_var, num_batches_tracked
      assert.are.same({"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                       "bn1.num_batches_tracked"}, {table.unpack(file.names, 1, 6)})
      local sd, counters = torch.toRetort(b, file)
      b:loadStateDict(sd)
      for k, t in pairs(a:stateDict()) do assert.are.equal(0, max_abs(t, b:stateDict()[k]), k) end
      assert.are.equal(7, counters["layer1.0.bn1"])
      assert.are.equal(0, counters["layer1.0.bn2"])
   end)

   it("lists every unmatched name on both sides, and every shape that differs, with shapes", function()
      local model = retort.models.resnet8()
      local file = file_of(model)
      local function drop(n)
         file.tensors[n] = nil
         for i, m in ipairs(file.names) do if m == n then table.remove(file.names, i) end end
      end
      drop("layer1.0.conv1.weight")
      drop("fc.bias")
      file.names[#file.names + 1] = "layer1.0.conv3.weight"
      file.tensors["layer1.0.conv3.weight"] = retort.zeros(16, 16, 1, 1)
      file.tensors["fc.weight"] = retort.zeros(10, 64)
      local ok, err = pcall(torch.toRetort, model, file, {source = "t.pth"})
      assert.is_false(ok)
      assert.matches("t.pth does not match ResNet (class ResNet, PyTorch names of RepDistiller models/resnet.py)", err,
                     1, true)
      assert.matches("in the file, not in the model (1):\n    layer1.0.conv3.weight  16x16x1x1", err, 1, true)
      assert.matches("in the model, not in the file (2):\n    fc.bias  100  (retort fc.bias)\n" ..
                     "    layer1.0.conv1.weight  16x16x3x3  (retort layer1.1.conv1.weight)", err, 1, true)
      assert.matches("shapes differ (1):\n    fc.weight  file 10x64, model 100x64  (retort fc.weight)", err, 1, true)
   end)

   it("strips a prefix (nn.DataParallel's module.) only when asked, and lists the keys without it", function()
      local model = retort.models.mlp{sizes = {4, 3, 2}}
      local file = file_of(model)
      local prefixed = {names = {}, tensors = {}, dtypes = {}}
      for _, n in ipairs(file.names) do
         prefixed.names[#prefixed.names + 1] = "module." .. n
         prefixed.tensors["module." .. n] = file.tensors[n]
      end
      local ok, err = pcall(torch.toRetort, model, prefixed)
      assert.is_false(ok)
      assert.matches("in the file, not in the model (4):\n    module.fc1.bias  3", err, 1, true)
      assert.is_table(torch.toRetort(model, prefixed, {strip = "module."}))
      prefixed.names[#prefixed.names + 1] = "head.weight"
      prefixed.tensors["head.weight"] = retort.zeros(2, 2)
      ok, err = pcall(torch.toRetort, model, prefixed, {strip = "module."})
      assert.is_false(ok)
      assert.matches("keys without the prefix 'module.' (1):\n    head.weight  2x2", err, 1, true)
   end)

   it("writes and reads the neutral file: names in order, dtypes, a 0-dim int64", function()
      local path = support.mkdtemp() .. "/n.h5"
      local file = {names = {"b.weight", "a.num_batches_tracked"}, container = "model",
                    tensors = {["b.weight"] = retort.tensor{{1.5, -2}},
                               ["a.num_batches_tracked"] = retort.tensor(9, "i64")},
                    dtypes = {["b.weight"] = "float32", ["a.num_batches_tracked"] = "int64"}}
      torch.writeTensors(path, file)
      local back = torch.readTensors(path)
      assert.are.same(file.names, back.names)
      assert.are.same(file.dtypes, back.dtypes)
      assert.are.equal("model", back.container)
      assert.are.same({{1.5, -2}}, back.tensors["b.weight"]:totable())
      assert.are.equal(0, back.tensors["a.num_batches_tracked"]:dim())
      assert.are.equal(9, back.tensors["a.num_batches_tracked"]:item())
      support.rmrf(path:match("^(.*)/"))
   end)
end)

describe("docs/checkpoint.md", function()
   it("its h5py example writes a checkpoint that retort.load and loadStateDict take", function()
      if not support.python_has("h5py, numpy") then
         return pending("python3-h5py is not installed for /usr/bin/python3")
      end
      -- the example from the page, run as it is written there
      local doc = support.slurp("docs/checkpoint.md")
      local example = doc:match("# a checkpoint that retort%.load and net:loadStateDict take[^\n]*\n(.-)```")
      assert.is_string(example, "the example is in docs/checkpoint.md")
      local dir = support.mkdtemp()
      local script = support.tmpfile("import h5py, numpy as np\nnp.random.seed(0)\n" .. example, ".py")
      local r = support.sh(("cd %s && %s %s"):format(support.shquote(dir), support.python, support.shquote(script)))
      os.remove(script)
      assert.are.equal(0, r.status, r.stderr)
      local net = retort.models.mlp{sizes = {784, 64, 10}}
      local ck = retort.load(dir .. "/mine.h5")
      net:loadStateDict(ck.model)
      -- the values h5py wrote, read back independently of the checkpoint reader
      local f = core.h5Open(dir .. "/mine.h5")
      assert.are.equal(0, max_abs(f:read("/model/fc1/weight"), net:stateDict()["fc1.weight"]))
      f:abort()
      support.rmrf(dir)
   end)
end)

describe("every architecture against its PyTorch twin", function()
   it("imports to the twin's logits (<= 1e-4) and exports back bit-identical", function()
      if not support.have_torch() then
         return pending("python3-torch (or h5py, numpy) is not installed for /usr/bin/python3: the twins cannot run")
      end
      local dir = support.mkdtemp()
      finally(function() support.rmrf(dir) end) -- a few hundred MB (ResNet50's files alone: 4 x 95 MB)
      local twins = {}
      for i, c in ipairs(CASES) do twins[i] = c[1] end
      local r = support.sh(("%s %s make %s %s"):format(support.python, support.shquote(TWINS), support.shquote(dir),
                                                        table.concat(twins, " ")))
      assert.are.equal(0, r.status, r.stderr)
      local report = {}
      for _, c in ipairs(CASES) do
         local base = dir .. "/" .. c[1]
         local file = torch.readTensors(base .. ".tensors.h5")
         local model = torch.model(c[2] or c[1], {options = c[3]})
         local sd, counters = torch.toRetort(model, file, {source = c[1]})
         model:loadStateDict(sd)
         model:evaluate()
         local f = core.h5Open(base .. ".io.h5")
         local x, want = f:read("/x"), f:read("/logits")
         f:abort()
         local got = retort.noGrad(function() return model:forward(x) end)
         local delta = max_abs(got, want)
         report[c[1]] = {import = delta, scale = want:abs():max():item()}
         assert.is_true(delta <= 1e-4, ("%s: max |logits - twin's| = %g"):format(c[1], delta))
         torch.writeTensors(base .. ".export.h5", torch.fromRetort(model, counters, file.container))
         support.rmrf(base .. ".tensors.h5")
      end
      r = support.sh(("%s %s check %s %s"):format(support.python, support.shquote(TWINS), support.shquote(dir),
                                                   table.concat(twins, " ")))
      assert.are.equal(0, r.status, r.stderr)
      local checked = assert(load(r.stdout))()
      for _, c in ipairs(CASES) do
         local e = checked[c[1]]
         assert.is_table(e, c[1] .. " checked")
         assert.are.equal("", e.problems, c[1])
         assert.are.equal(0, e.delta, c[1] .. ": logits of the exported state dict")
         report[c[1]].export = e.delta
      end
      if os.getenv("RETORT_TORCH_REPORT") then
         io.stderr:write("\narchitecture   max|retort - torch| (import)   max|logit|   max|torch(export) - torch| \n")
         for _, c in ipairs(CASES) do
            local e = report[c[1]]
            io.stderr:write(("%-14s %-30.3g %-12.3g %g\n"):format(c[1], e.import, e.scale, e.export))
         end
      end
   end)
end)
