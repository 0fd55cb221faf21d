-- retort.onnx.export and `retort export-onnx`, checked by consumers retort did not write
-- (tests/lua/onnx_check.py, run with /usr/bin/python3): onnx.checker (full check) and strict shape
-- inference accept every file, the inferred output shape keeps the symbolic batch "N"; OpenCV's DNN
-- module (cv2.dnn.readNetFromONNX) runs the models and its outputs equal retort's to 1e-4 for a
-- batch of 2 and of 3 (one file, dynamic batch); a plain numpy evaluator written from the ONNX
-- operator specs (in onnx_check.py) agrees to 1e-4 as well, also for the ops OpenCV 4.6 cannot run.
-- Batch-norm statistics and affine parameters are randomised first so that they matter.
-- Without python3-onnx those checks are pending, with the reason; without python3-opencv the OpenCV
-- comparisons are. Also, without Python: the errors (an op with no mapping names the op and the
-- module path, reading values, in-place writes, dropout while training, a BatchNorm without running
-- statistics, a reshape that mixes the batch dim), options, the tensor API and the model's mode put
-- back after every export, node and initializer names, and the command line.
-- RETORT_ONNX_ALL=1 also exports every model of retort.models at its full size (minutes).
local retort = require "retort"
local core = retort.core
local nn = retort.nn
local Module = require "retort.nn.Module"
local support = require "support"

local CHECK_PY = support.spec_dir .. "/onnx_check.py"

local BUILT, NOT_BUILT = retort.onnx.available()
local have_onnx = support.python_has("onnx, onnx.shape_inference, numpy")
local have_cv2 = support.python_has("cv2")
local ONNX_MISSING = "python3-onnx (and python3-numpy) are not installed for /usr/bin/python3: the ONNX checks " ..
                     "cannot run"
local CV2_MISSING = "python3-opencv is not installed for /usr/bin/python3: OpenCV's DNN cannot run the models"
local TOL = 1e-4

local tmp = support.mkdtemp()

-- Batch-norm layers as after training: running statistics measured on a random batch (one forward
-- in training mode with momentum 1), so that activations keep their scale through deep networks,
-- and affine parameters random (seeded), so that the exported BatchNormalization computes something.
local function perturb(net, seed, shape)
   retort.manualSeed(seed or 5)
   local bns = {}
   for _, e in ipairs(net:namedModules()) do
      if e[2].runningMean then bns[#bns + 1] = e[2] end
   end
   if #bns == 0 then return end
   retort.noGrad(function()
      for _, m in ipairs(bns) do
         if m.weight then m.weight:copy_(retort.rand(m.weight:shape()) * 0.5 + 0.75) end
         if m.bias then m.bias:copy_(retort.randn(m.bias:shape()) * 0.1) end
      end
   end)
   local momenta = {}
   for i, m in ipairs(bns) do momenta[i], m.momentum = m.momentum, 1 end
   net:training()
   retort.noGrad(function() net:forward(retort.randn({8, table.unpack(shape)})) end)
   for i, m in ipairs(bns) do m.momentum = momenta[i] end
   net:evaluate()
end

-- raw little-endian float32, as onnx_check.py reads it
local function write_f32(path, t)
   local v = t:contiguous():view(-1):totable()
   local f = assert(io.open(path, "wb"))
   for i = 1, #v, 1000 do
      local j = math.min(#v, i + 999)
      f:write(string.pack("<" .. ("f"):rep(j - i + 1), table.unpack(v, i, j)))
   end
   f:close()
end

local function worst(list)
   local w = 0
   for _, v in ipairs(list) do w = math.max(w, v) end
   return w
end

local counter = 0

--- export net (evaluation mode) traced on a batch of 2 (o.traceBatch), then run the Python checks on batches of
--- `batches` (default 2 and 3) with retort's outputs for them. Returns info, the checks' table, path.
local function check(net, shape, o)
   o = o or {}
   counter = counter + 1
   local path = ("%s/m%d.onnx"):format(tmp, counter)
   net:evaluate()
   retort.manualSeed(11)
   local info = retort.onnx.export(net, retort.randn({o.traceBatch or 2, table.unpack(shape)}), path, o.export)
   if not have_onnx then return info, nil, path end
   local args = {}
   for _, n in ipairs(o.batches or {2, 3}) do
      local x = retort.randn({n, table.unpack(shape)})
      local y = retort.noGrad(function() return net:forward(x) end)
      local xs, ys = ("%s/x%d_%d.f32"):format(tmp, counter, n), ("%s/y%d_%d.f32"):format(tmp, counter, n)
      write_f32(xs, x)
      write_f32(ys, y)
      args[#args + 1] = ("%s %s %s"):format(xs, table.concat(x:shape(), "x"), ys)
   end
   local r = support.sh(support.python .. " " .. support.shquote(CHECK_PY) .. " " .. support.shquote(path) .. " " ..
                        table.concat(args, " "))
   assert(r.status == 0, "onnx_check.py failed: " .. r.stderr)
   local res = assert(load(r.stdout))()
   if os.getenv("RETORT_ONNX_VERBOSE") then
      io.stderr:write(("\n%-22s %6.1f MB  out %.3g  opencv %s  numpy %s  %s\n"):format(o.label or "?", info.bytes / 1e6,
         res.opencv.scale and worst(res.opencv.scale) or 0,
         res.opencv.ok and table.concat(res.opencv.maxAbs, "/") or tostring(res.opencv.error),
         res.numpy.ok and table.concat(res.numpy.maxAbs, "/") or tostring(res.numpy.error),
         retort.onnx.summary(info.ops)))
   end
   return info, res, path
end

--- the consumers' verdicts: checker, shapes (output {"N", classes}), numpy, and OpenCV when asked;
--- tol defaults to TOL (absolute)
local function assert_consumers(label, res, outShape, opencv, tol)
   tol = tol or TOL
   assert(res.checker.ok, label .. ": onnx.checker refused the file: " .. tostring(res.checker.error))
   assert(res.shapes.ok, label .. ": shape inference failed: " .. tostring(res.shapes.error) ..
      " unknown: " .. table.concat(res.shapes.unknown or {}, ", "))
   if outShape then assert.same(outShape, res.shapes.output, label .. ": inferred output shape") end
   assert(res.numpy.ok, label .. ": the numpy evaluator failed: " .. tostring(res.numpy.error))
   assert(worst(res.numpy.maxAbs) <= tol, ("%s: numpy evaluator differs from retort by %g"):format(label,
      worst(res.numpy.maxAbs)))
   if opencv and have_cv2 then
      assert(res.opencv.ok, label .. ": OpenCV's DNN could not run it: " .. tostring(res.opencv.error))
      assert(worst(res.opencv.maxAbs) <= tol, ("%s: OpenCV differs from retort by %g (outputs up to %g)"):format(label,
         worst(res.opencv.maxAbs), worst(res.opencv.scale)))
   end
end

local function ops_of(info)
   local list = {}
   for op in pairs(info.ops) do list[#list + 1] = op end
   table.sort(list)
   return list
end

describe("retort.onnx", function()
   teardown(function() support.rmrf(tmp) end)

   it("is built in (protobuf-c and ONNX's onnx.proto were found)", function()
      if not BUILT then return pending(NOT_BUILT) end
      assert.is_true(BUILT)
   end)

   it("is checked by python3-onnx and OpenCV (installed)", function()
      if not have_onnx then return pending(ONNX_MISSING) end
      if not have_cv2 then return pending(CV2_MISSING) end
   end)

   describe("exports the models, which OpenCV's DNN runs to 1e-4 of retort", function()
      -- {label, model name, options, one example's shape, output classes, the ops expected exactly (or nil)}
      local MODELS = {
         {"mlp 784-800-800-10", "mlp", {sizes = {784, 800, 800, 10}}, {784}, 10, {"Flatten", "Gemm", "Relu"}},
         {"mlp 784-1200-1200-10 dropout", "mlp", {sizes = {784, 1200, 1200, 10}, dropout = 0.5, inputDropout = 0.2},
          {1, 28, 28}, 10, {"Flatten", "Gemm", "Relu"}},
         {"mlp tanh", "mlp", {sizes = {12, 16, 7}, activation = "tanh"}, {12}, 7, {"Flatten", "Gemm", "Tanh"}},
         {"mlp sigmoid", "mlp", {sizes = {12, 16, 7}, activation = "sigmoid"}, {12}, 7, {"Flatten", "Gemm", "Sigmoid"}},
         {"mlp leakyRelu", "mlp", {sizes = {12, 16, 7}, activation = "leakyRelu"}, {12}, 7,
          {"Flatten", "Gemm", "LeakyRelu"}},
         {"cnn dropout", "cnn", {dropout = 0.5}, {1, 28, 28}, 10, {"Conv", "Flatten", "Gemm", "MaxPool", "Relu"}},
         {"resnet8x4", "resnet8x4", nil, {3, 32, 32}, 100,
          {"Add", "BatchNormalization", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "Relu"}},
         {"wrn_16_2", "wrn_16_2", nil, {3, 32, 32}, 100,
          {"Add", "BatchNormalization", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "Relu"}},
         {"vgg8", "vgg8", nil, {3, 32, 32}, 100,
          {"BatchNormalization", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "MaxPool", "Relu"}},
         {"resnet20", "resnet20", {classes = 10}, {3, 32, 32}, 10, nil},
         {"MobileNetV2", "MobileNetV2", {classes = 10}, {3, 32, 32}, 10, nil},
         {"ShuffleV1", "ShuffleV1", {classes = 10}, {3, 32, 32}, 10,
          {"Add", "AveragePool", "BatchNormalization", "Concat", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "Pad",
           "Relu", "Reshape", "Transpose"}},
         {"ShuffleV2", "ShuffleV2", {classes = 10}, {3, 32, 32}, 10,
          {"BatchNormalization", "Concat", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "Relu", "Reshape", "Slice",
           "Transpose"}},
         -- ResNet18 / ResNet50's layers with one block per stage (the full ones: RETORT_ONNX_ALL=1)
         {"resnetv2 basic 1-1-1-1", "resnetv2", {block = "basic", blocks = {1, 1, 1, 1}, classes = 10}, {3, 32, 32}, 10,
          nil},
         {"resnetv2 bottleneck 1-1-1-1", "resnetv2", {block = "bottleneck", blocks = {1, 1, 1, 1}, classes = 10},
          {3, 32, 32}, 10, nil},
         {"fitnetStudent (maxout)", "fitnetStudent", nil, {3, 32, 32}, 10,
          {"Conv", "Flatten", "Gemm", "MaxPool", "ReduceMax", "Reshape"}},
         {"fitnetTeacher (maxout), narrowed", "fitnetTeacher", {channels = {16, 32, 32}, hidden = 50}, {3, 32, 32}, 10,
          nil},
      }
      for _, m in ipairs(MODELS) do
         it(m[1], function()
            if not BUILT then return pending(NOT_BUILT) end
            local net = retort.models.get(m[2], m[3])
            perturb(net, nil, m[4])
            local info, res = check(net, m[4], {label = m[1]})
            assert.same({"N", m[5]}, info.outputs[1].shape)
            assert.same({"N", table.unpack(m[4])}, info.inputs[1].shape)
            if m[6] then assert.same(m[6], ops_of(info)) end
            assert.is_nil(info.ops.Dropout)
            if not res then return pending(ONNX_MISSING) end
            assert_consumers(m[1], res, {"N", m[5]}, true)
         end)
      end
   end)

   if os.getenv("RETORT_ONNX_ALL") == "1" then
      describe("exports every model of retort.models at full size (RETORT_ONNX_ALL=1)", function()
         local names = {}
         for k, v in pairs(retort.models) do if type(v) == "function" and k ~= "get" then names[#names + 1] = k end end
         table.sort(names)
         for _, name in ipairs(names) do
            it(name, function()
               local net = retort.models.get(name)
               local shape = name == "mlp" and {784} or name == "cnn" and {1, 28, 28} or {3, 32, 32}
               perturb(net, nil, shape)
               local _, res = check(net, shape, {label = name})
               if not res then return pending(ONNX_MISSING) end
               -- f32 rounding through 150 layers (ResNet152) reaches 2e-4 of the logits' scale, in
               -- retort and OpenCV alike (the numpy evaluator computes in f64): 1e-3 of it is allowed here
               assert_consumers(name, res, nil, true, 1e-3 * math.max(1, worst(res.numpy.scale or {1})))
            end)
         end
      end)
   end

   describe("maps each tensor op (checked by the numpy evaluator; by OpenCV where 4.6 runs the op)", function()
      -- a model whose forward is fn(self, x); children added by kids(self)
      local function zoo(name, fn, kids)
         local C = nn.class("Zoo" .. name, nn.Module)
         function C:__init()
            nn.Module.__init(self)
            if kids then kids(self) end
         end
         function C:apply(x) return fn(self, x) end
         return C()
      end
      -- {label, forward, children, input shape, OpenCV runs it}
      local CASES = {
         {"activations", function(_, x)
            return x:tanh() + x:sigmoid() + x:leakyRelu(0.2) - x:abs():sqrt() + (x:abs() + 1):log() + x:exp() * 0.1 +
               (-x):relu() + (x:abs() + 1):reciprocal()
         end, nil, {3, 6, 8}, true},
         {"arithmetic with numbers and tensors", function(_, x)
            return (x * 3 - 2) / 4 + x:pow(3) + x * x - x / (x:abs() + 2) + x:affine(2, 1) + x:affine(0.5) +
               x:maximum(x * 0.5):minimum(x + 0.25)
         end, nil, {3, 6, 8}, true},
         -- OpenCV 4.6 fuses number - (number / tensor) wrongly, and has no Clip with min/max inputs
         -- nor Max/Min against a constant: these are checked by the numpy evaluator only
         {"number - number / tensor, clamp, maximum with a constant", function(self, x)
            return (1 - 2 / (x * x + 1)) + x:clamp(-0.5, 0.75) + x:maximum(self.c)
         end, function(self) self:registerBuffer("c", retort.randn(3, 1, 1)) end, {3, 6, 8}, false},
         {"softmax with a temperature, logSoftmax", function(_, x)
            local y = x:flatten(2)
            return y:softmax(2, 4) + y:logSoftmax(2) + x:softmax(2):flatten(2)
         end, nil, {3, 6, 8}, true},
         {"conv (dilated, strided, non-square), pools", function(self, x)
            local y = self:runChild("conv", x)
            -- (N, 4, 6, 3) -> four (N, 4, 4, 2) maps
            return retort.cat({y:avgPool2d(2, {padding = 1, countIncludePad = false}), y:avgPool2d(2, {padding = 1}),
                               y:maxPool2d(2, {stride = 2, padding = 1}),
                               y:avgPool2d({2, 1}, {stride = {2, 1}, padding = {1, 0}}):narrow(4, 1, 2)}, 2)
               :adaptiveAvgPool2d(2, 1)
         end, function(self)
            self:addModule("conv", nn.Conv2d(3, 4, {3, 2}, {padding = {1, 0}, dilation = {1, 2}, stride = {1, 2}}))
         end, {3, 6, 8}, true},
         {"grouped conv without bias, ConvTranspose2d", function(self, x)
            return self:runChild("up", self:runChild("conv", x))
         end, function(self)
            self:addModule("conv", nn.Conv2d(4, 6, 3, {groups = 2, padding = 1, bias = false}))
            self:addModule("up", nn.ConvTranspose2d(6, 3, 4, {stride = 2, padding = 1}))
         end, {4, 5, 6}, true},
         {"narrow, transpose, permute, reshape, select, unsqueeze, cat", function(_, x)
            local y = x:narrow(2, 2, 2):transpose(3, 4):contiguous():permute(1, 3, 4, 2):reshape(x:size(1), -1, 2)
            return retort.cat({y, y:select(3, 1):unsqueeze(3)}, 3):flatten(2)
         end, nil, {3, 6, 8}, false},
         {"transpose, narrow, cat along channels", function(_, x)
            local y = x:transpose(3, 4):contiguous()
            return retort.cat({y:narrow(2, 1, 1), y:narrow(2, 3, 1), y}, 2)
         end, nil, {3, 6, 6}, true},
         {"stack, squeeze, view", function(_, x)
            return retort.stack({x:select(2, 1), x:select(2, 3)}, 2):view(x:size(1), 2, -1):unsqueeze(2):squeeze(2)
         end, nil, {3, 6, 8}, true},
         {"reductions (sum, mean, max, min, keepdim)", function(_, x)
            return retort.cat({x:sum(2), x:mean(2), x:max(2), x:min(2), x:mean(3, true):squeeze(3)}, 2)
         end, nil, {3, 6, 8}, false},
         {"mean, max and min over channels", function(_, x)
            return retort.cat({x:mean(2, true), x:max(2, true), (x:min(2, true))}, 2) -- min's values only
         end, nil, {3, 6, 8}, true},
         {"linear, BatchNorm1d, a buffer", function(self, x)
            return self:runChild("bn", self:runChild("fc", x:flatten(2))) + self.c
         end, function(self)
            self:addModule("fc", nn.Linear(12, 6))
            self:addModule("bn", nn.BatchNorm1d(6))
            self:registerBuffer("c", retort.randn(6))
         end, {3, 2, 2}, false},
         {"matmul with a constant made from a parameter, bmm", function(self, x)
            local y = x:flatten(2, 3):matmul(self.w:t():contiguous()) -- (N, 18, 8) x (8, 5)
            return y:bmm(y:transpose(2, 3))
         end, function(self) self:registerParameter("w", retort.randn(5, 8) * 0.2) end, {3, 6, 8}, true},
      }
      it("a lone ConvTranspose2d (a model converted whole)", function()
         if not BUILT then return pending(NOT_BUILT) end
         retort.manualSeed(4)
         local info, res = check(nn.ConvTranspose2d(3, 2, 3, {stride = 2}), {3, 4, 5}, {label = "ConvTranspose2d"})
         assert.same({ConvTranspose = 1}, info.ops)
         assert.same({"N", 2, 9, 11}, info.outputs[1].shape)
         if not res then return pending(ONNX_MISSING) end
         assert_consumers("ConvTranspose2d", res, {"N", 2, 9, 11}, true)
      end)

      for _, c in ipairs(CASES) do
         it(c[1], function()
            if not BUILT then return pending(NOT_BUILT) end
            retort.manualSeed(3)
            local net = zoo(c[1]:gsub("%W", ""), c[2], c[3])
            perturb(net, 9, c[4])
            local _, res = check(net, c[4], {label = c[1]})
            if not res then return pending(ONNX_MISSING) end
            assert_consumers(c[1], res, nil, c[5])
         end)
      end
   end)

   describe("options", function()
      local function small()
         retort.manualSeed(1)
         return retort.models.mlp{sizes = {6, 5, 3}}
      end

      it("taps become extra outputs named by their paths", function()
         if not BUILT then return pending(NOT_BUILT) end
         local net = retort.models.resnet8x4{classes = 10}
         local path = tmp .. "/taps.onnx"
         local info = retort.onnx.export(net, retort.randn(2, 3, 32, 32), path, {taps = {"pool", "layer1"}})
         assert.same({"output", "pool", "layer1"}, {info.outputs[1].name, info.outputs[2].name, info.outputs[3].name})
         assert.same({"N", 256}, info.outputs[2].shape)
         assert.same({"N", 64, 32, 32}, info.outputs[3].shape)
         if not have_onnx then return pending(ONNX_MISSING) end
         local r = support.sh((support.python .. " -c %s %s"):format(support.shquote(
            "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); " ..
            "print(' '.join(o.name for o in m.graph.output))"), support.shquote(path)))
         assert.equal(0, r.status, r.stderr)
         assert.equal("output pool layer1", (r.stdout:gsub("%s+$", "")))
      end)

      it("dynamicBatch = false fixes every size; a reshape that merges the batch then exports", function()
         if not BUILT then return pending(NOT_BUILT) end
         local Flat = nn.class("FlatAll", nn.Module)
         function Flat:__init() nn.Module.__init(self); self:addModule("fc", nn.Linear(24, 4)) end
         function Flat:apply(x) return self:runChild("fc", x:view(1, -1)) end
         local net = Flat()
         local ok, err = pcall(retort.onnx.export, net, retort.randn(2, 3, 4), tmp .. "/flat.onnx")
         assert.is_false(ok)
         assert.matches("a reshape from (2x3x4) to (1x24) mixes the batch dim (dim 1) with others", err, 1, true)
         assert.matches("export with dynamicBatch = false", err, 1, true)
         local info, res = check(net, {3, 4}, {export = {dynamicBatch = false}, batches = {2}, label = "static"})
         assert.same({2, 3, 4}, info.inputs[1].shape)
         assert.same({1, 4}, info.outputs[1].shape)
         if not res then return pending(ONNX_MISSING) end
         -- OpenCV 4.6 keeps the first dim of a Reshape's input as the batch: it cannot reshape across it
         assert_consumers("static batch", res, {1, 4}, false)
      end)

      it("a sample of one example still gives a dynamic batch", function()
         if not BUILT then return pending(NOT_BUILT) end
         local net = retort.models.ShuffleV2{classes = 10}
         perturb(net, nil, {3, 32, 32})
         local info, res = check(net, {3, 32, 32}, {traceBatch = 1, batches = {1, 4}, label = "traced on 1"})
         assert.same({"N", 3, 32, 32}, info.inputs[1].shape)
         if not res then return pending(ONNX_MISSING) end
         assert_consumers("ShuffleV2 traced on one example", res, {"N", 10}, true)
      end)

      it("opset 13 to 17, and names for the input and output", function()
         if not BUILT then return pending(NOT_BUILT) end
         for _, opset in ipairs{13, 15, 17} do
            local info, res = check(retort.models.cnn{channels = {4, 8}, hidden = 16}, {1, 28, 28},
               {export = {opset = opset, inputName = "image", outputName = "logits"}, label = "opset " .. opset})
            assert.equal(opset, info.opset)
            assert.equal("image", info.inputs[1].name)
            assert.equal("logits", info.outputs[1].name)
            if res then
               assert.same({opset}, res.opset)
               assert_consumers("opset " .. opset, res, {"N", 10}, true)
            end
         end
         if not have_onnx then return pending(ONNX_MISSING) end
      end)

      it("are checked: unknown keys, opset, argument types", function()
         local net, x = small(), retort.randn(2, 6)
         local function err(...)
            local ok, e = pcall(retort.onnx.export, ...)
            assert.is_false(ok)
            return e
         end
         local e = err(net, x, tmp .. "/o.onnx", {opst = 13})
         assert.matches("unknown option 'opst'", e, 1, true)
         assert.matches("did you mean 'opset'", e, 1, true)
         assert.matches("opset must be an integer from 13 to 17, got 12", err(net, x, tmp .. "/o.onnx", {opset = 12}),
            1, true)
         assert.matches("bad argument #1 to 'export' (an nn.Module expected, got string)", err("net", x, "o.onnx"), 1,
            true)
         assert.matches("bad argument #2 to 'export' (a sample input tensor expected, got table)",
            err(net, {1, 2}, "o.onnx"), 1, true)
         assert.matches("bad argument #3 to 'export' (a file path expected, got nil)", err(net, x), 1, true)
         assert.matches("dynamicBatch must be a boolean", err(net, x, "o.onnx", {dynamicBatch = "yes"}), 1, true)
         assert.matches("outputName must be a non-empty string", err(net, x, "o.onnx", {outputName = ""}), 1, true)
      end)
   end)

   describe("refuses what a graph cannot hold, naming the op and the module", function()
      local function wrapped(fn, kids)
         local Inner = nn.class("Inner", nn.Module)
         function Inner:__init() nn.Module.__init(self); if kids then kids(self) end end
         function Inner:apply(x) return fn(self, x) end
         return nn.Sequential():add("fc", nn.Linear(4, 4)):add("block", nn.Sequential():add("inner", Inner()))
      end
      local function refused(net, pattern, opts)
         local path = tmp .. "/refused.onnx"
         os.remove(path)
         local ok, err = pcall(retort.onnx.export, net, retort.randn(2, 4), path, opts)
         assert.is_false(ok)
         assert.matches(pattern, err, 1, true)
         assert.is_nil(io.open(path, "rb"), "no file is written")
         return err
      end

      it("an op with no mapping", function()
         if not BUILT then return pending(NOT_BUILT) end
         local e = refused(wrapped(function(_, x) return x:norm(2, 2) end),
            "retort.onnx.export: block.inner (Inner): tensor op 'norm' has no ONNX mapping (mapped: ")
         assert.matches("conv2d", e, 1, true)
         refused(wrapped(function(_, x) return retort.where(x:gt(0), x, 0) end), "block.inner (Inner): tensor op 'gt'")
         refused(wrapped(function(_, x) return retort.crossEntropy(x, {1, 2}) end),
            "block.inner (Inner): retort.crossEntropy has no ONNX mapping")
      end)

      it("reading a traced tensor's values, in-place writes, max's indices", function()
         if not BUILT then return pending(NOT_BUILT) end
         refused(wrapped(function(_, x) if x:sum():item() > 0 then return x end return -x end),
            "block.inner (Inner): reads the values of a traced tensor (item)", {dynamicBatch = false})
         refused(wrapped(function(_, x) return x:add_(1) end),
            "block.inner (Inner): in-place op 'add_' on a traced tensor")
         refused(wrapped(function(self, x) self.buf:copy_(x); return self.buf * 2 end,
            function(self) self.buf = retort.zeros(2, 4) end), "in-place op 'copy_'")
         refused(wrapped(function(_, x) local _, i = x:max(2); return x + i:float():unsqueeze(2) end),
            "the indices that max(dim) returns have no ONNX mapping")
      end)

      it("dropout while training, a BatchNorm with batch statistics", function()
         if not BUILT then return pending(NOT_BUILT) end
         refused(wrapped(function(_, x) return x:dropout(0.5) end), "dropout while training")
         refused(wrapped(function(self, x) return self:runChild("bn", x) end,
            function(self) self:addModule("bn", nn.BatchNorm1d(4, {trackRunningStats = false})) end),
            "block.inner.bn (BatchNorm1d): batch normalisation with the batch's own statistics")
      end)

      it("an output that does not depend on the input", function()
         if not BUILT then return pending(NOT_BUILT) end
         local C = nn.class("Const", nn.Module)
         function C:__init() nn.Module.__init(self); self:registerParameter("w", retort.randn(2, 3)) end
         function C:apply() return self.w * 2 end
         local ok, err = pcall(retort.onnx.export, C(), retort.randn(2, 4), tmp .. "/c.onnx")
         assert.is_false(ok)
         assert.matches("the output 'output' does not depend on the input", err, 1, true)
      end)

      it("an unwritable file, naming it", function()
         if not BUILT then return pending(NOT_BUILT) end
         local ok, err = pcall(retort.onnx.export, retort.models.mlp{sizes = {4, 2}}, retort.randn(2, 4),
            tmp .. "/no/such/dir/m.onnx")
         assert.is_false(ok)
         assert.matches("cannot create " .. tmp .. "/no/such/dir/m.onnx.tmp-", err, 1, true)
      end)

      it("a build without protobuf-c, saying what to install", function()
         local saved = core.onnxAvailable
         core.onnxAvailable = function()
            return false, "built without ONNX export: install protobuf-c-compiler, libprotobuf-c-dev and " ..
                          "libonnx-dev and rebuild"
         end
         local ok, err = pcall(retort.onnx.export, retort.models.mlp{sizes = {4, 2}}, retort.randn(2, 4),
                               tmp .. "/x.onnx")
         core.onnxAvailable = saved
         assert.is_false(ok)
         assert.matches("retort.onnx.export: built without ONNX export: install protobuf-c-compiler, " ..
            "libprotobuf-c-dev and libonnx-dev and rebuild", err, 1, true)
      end)
   end)

   describe("leaves everything as it was", function()
      local function snapshot(x)
         local s = {cat = retort.cat, coreCat = core.cat, runChild = Module.runChild, add = getmetatable(x).__add}
         for k, v in pairs(core.Tensor) do s["m." .. k] = v end
         return s
      end

      it("the tensor API, Module.runChild and the model's mode, after a success and after an error", function()
         if not BUILT then return pending(NOT_BUILT) end
         local x = retort.randn(2, 3, 32, 32)
         local before = snapshot(x)
         local net = retort.models.resnet8x4{classes = 10}
         net:training()
         net:get("layer1"):evaluate()
         retort.onnx.export(net, x, tmp .. "/mode.onnx")
         assert.is_true(net:isTraining())
         assert.is_false(net:get("layer1.1.bn1"):isTraining())
         assert.is_true(net:get("layer2.1.bn1"):isTraining())
         assert.same(before, snapshot(x))
         local Bad = nn.class("Bad", nn.Module)
         function Bad:__init() nn.Module.__init(self) end
         function Bad:apply(y) return y:norm() end
         local bad = nn.Sequential():add("ok", nn.ReLU()):add("bad", Bad())
         assert.is_false(pcall(retort.onnx.export, bad, x, tmp .. "/bad.onnx"))
         assert.is_true(bad:isTraining())
         assert.same(before, snapshot(x))
         -- and ops run normally again (no tracing left behind)
         local y = retort.randn(3, 3)
         assert.equal(0, (y:relu() - y:clamp(0)):abs():max():item())
      end)

      it("names nodes and initializers by module path and drops what the output does not need", function()
         if not BUILT then return pending(NOT_BUILT) end
         local net = retort.models.resnet8x4{classes = 10}
         local desc, ops = retort.onnx.graph(net, retort.randn(2, 3, 32, 32))
         local nodes, inits = {}, {}
         for _, n in ipairs(desc.nodes) do nodes[n.name] = n end
         for _, t in ipairs(desc.initializers) do inits[t.name] = t.tensor end
         assert.is_table(nodes["layer1.1.conv1/Conv"])
         assert.same({"layer1.1.bn1/BatchNormalization"}, nodes["layer1.1/Relu"].inputs)
         assert.equal(inits["layer1.1.conv1.weight"], net:get("layer1.1.conv1").weight)
         assert.is_not_nil(inits["layer2.1.shortcut.bn.runningVar"])
         local count = 0
         for _ in pairs(inits) do count = count + 1 end
         -- every parameter and buffer, nothing else (the model has no constants)
         assert.equal(#net:parameters() + #net:buffers(), count)
         assert.equal(3, ops.Add)
         -- a tap asked for in the trace but not exported is computed and pruned: graph() is export's graph
         local Extra = nn.class("Extra", nn.Module)
         function Extra:__init() nn.Module.__init(self); self:addModule("fc", nn.Linear(4, 3)) end
         function Extra:apply(x)
            local _ = x:exp():sum() -- unused: dropped from the graph
            return self:runChild("fc", x)
         end
         local d2, ops2 = retort.onnx.graph(Extra(), retort.randn(2, 4))
         assert.same({Gemm = 1}, ops2)
         assert.equal(1, #d2.nodes)
         assert.equal("output", d2.nodes[1].outputs[1])
      end)

      it("an identity model gets an Identity node", function()
         if not BUILT then return pending(NOT_BUILT) end
         local _, res = check(nn.Identity(), {5}, {label = "identity"})
         if not res then return pending(ONNX_MISSING) end
         assert_consumers("identity", res, {"N", 5}, true)
         assert.same({"Identity"}, res.ops)
      end)
   end)

   describe("retort export-onnx", function()
      it("writes a checkpoint's model", function()
         if not BUILT then return pending(NOT_BUILT) end
         local net = retort.models.cnn{channels = {4, 8}, hidden = 16, classes = 7}
         local ck, out = tmp .. "/cnn.h5", tmp .. "/cli.onnx"
         retort.save(ck, {model = net, epoch = 1})
         local r = support.run({"export-onnx", ck, "--model=cnn", "--modelOptions={channels = {4, 8}, hidden = 16}",
                                "--classes=7", "--out=" .. out, "--taps=fc1"})
         assert.equal(0, r.status, r.stderr)
         assert.matches("wrote " .. out, r.stdout, 1, true)
         assert.matches("output output  (N, 7)", r.stdout, 1, true)
         assert.matches("output fc1  (N, 16)", r.stdout, 1, true)
         assert.matches("input  input  (N, 1, 28, 28)", r.stdout, 1, true)
         -- the same bytes as exporting the loaded model from Lua
         local lua_out = tmp .. "/lua.onnx"
         retort.onnx.export(net, retort.zeros(2, 1, 28, 28), lua_out, {taps = {"fc1"}})
         assert.equal(support.slurp(lua_out), support.slurp(out))
         if not have_onnx then return pending(ONNX_MISSING) end
         local c = support.sh((support.python .. " -c %s %s"):format(support.shquote(
            "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)"),
            support.shquote(out)))
         assert.equal(0, c.status, c.stderr)
      end)

      it("says what is wrong: usage (status 2), a checkpoint that does not fit (status 1)", function()
         if not BUILT then return pending(NOT_BUILT) end
         local ck = tmp .. "/mlp.h5"
         retort.save(ck, {model = retort.models.mlp{sizes = {6, 5, 3}}})
         local r = support.run({"export-onnx", ck, "--out=" .. tmp .. "/x.onnx"})
         assert.equal(2, r.status)
         assert.matches("--model is missing", r.stderr, 1, true)
         r = support.run({"export-onnx", ck, "--model=mlp", "--out=" .. tmp .. "/x.onnx", "--opst=13"})
         assert.equal(2, r.status)
         assert.matches("unknown option '--opst=13' (did you mean --opset?)", r.stderr, 1, true)
         r = support.run({"export-onnx", ck, "--model=mlp", "--out=" .. tmp .. "/x.onnx", "--batch=0"})
         assert.equal(2, r.status)
         assert.matches("--batch must be a positive integer, got '0'", r.stderr, 1, true)
         r = support.run({"export-onnx", ck, "--model=mlp", "--out=" .. tmp .. "/x.onnx", "--modelOptions=sizes"})
         assert.equal(2, r.status)
         assert.matches("--modelOptions must be a Lua table", r.stderr, 1, true)
         r = support.run({"export-onnx", ck, "--model=mlp", "--out=" .. tmp .. "/x.onnx"})
         assert.equal(1, r.status)
         assert.matches("does not fit --model=mlp: loadStateDict (MLP): size mismatch for fc1.weight", r.stderr, 1,
            true)
         r = support.run({"export-onnx", ck, "--model=mlp", "--modelOptions={sizes = {6, 5, 3}}", "--out=" .. tmp ..
                          "/x.onnx"})
         assert.equal(0, r.status, r.stderr)
         assert.matches("input  input  (N, 6)", r.stdout, 1, true)
         r = support.run({"export-onnx", tmp .. "/missing.h5", "--model=mlp", "--out=" .. tmp .. "/x.onnx"})
         assert.equal(1, r.status)
         assert.matches("missing.h5", r.stderr, 1, true)
         r = support.run({"export-onnx", "--help"})
         assert.equal(0, r.status)
         assert.matches("usage: retort export-onnx CHECKPOINT", r.stdout, 1, true)
      end)
   end)
end)
