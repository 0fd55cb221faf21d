-- bf16 and mixed precision from Lua (retort/bf16.h, lua/bind/bind_bf16.c, train.fit{precision}):
-- dtype names and conversions, checked against PyTorch's own bf16 rounding (/usr/bin/python3 with
-- torch; skipped without it) on ties, NaN, infinities, subnormals and random values; every tensor
-- method given a bf16 tensor either works (casts, views, copies, products) or raises an error that
-- names bf16, never a wrong value or a crash; autocast's choice op by op (the bf16 kernel counter
-- moves for linear/matmul/conv and their backward, not for softmax, losses, norms or reductions);
-- gradients in the f32 weights against f32 ones; the HDF5 file read back by h5py; a CPU without a
-- bf16 unit (forced with oneDNN's ONEDNN_MAX_CPU_ISA); and a short Fashion-MNIST run under bf16
-- within 0.5 points of f32's accuracy (same seed and epochs; skipped without dataset-fashion-mnist).
local retort = require "retort"
local support = require "support"

local PY = "/usr/bin/python3"

local function python_has(module)
   return support.sh(PY .. " -c 'import " .. module .. "' 2>/dev/null").status == 0
end

local function calls() return retort.bf16Info().kernelCalls end

local function max_abs_diff(a, b)
   return (a:float() - b:float()):abs():max():item()
end

describe("bf16 tensors", function()
   it("has the dtype's names, conversions, printing and element access", function()
      local x = retort.tensor{{1.0, 2.5, -3.3}, {1 / 3, 1e30, 65504}}
      local b = x:bf16()
      assert.are.equal("bf16", b:dtype())
      assert.are.equal("bf16", x:to("bf16"):dtype())
      assert.are.equal("bf16", x:to("bfloat16"):dtype())
      assert.are.equal("bf16", retort.tensor({1, 2}, "bf16"):dtype())
      assert.are.equal("bf16", retort.zeros(2, 2):to(b):dtype())
      assert.are.equal(b, b:bf16()) -- a no-op conversion returns the tensor itself
      -- values: 8 significant bits, f32's range
      local t = b:totable()
      assert.are.equal(1.0, t[1][1]); assert.are.equal(2.5, t[1][2])
      assert.are.equal(-3.296875, t[1][3]); assert.are.equal(0.333984375, t[2][1])
      assert.are.equal(65536, t[2][3])
      assert.are.equal(-3.296875, b:get(1, 3))
      assert.truthy(tostring(b):find("[retort.BFloat16Tensor of size 2x3]", 1, true))
      -- views and copies keep the dtype and the values
      assert.are.same(b:t():totable()[3], {-3.296875, 65536})
      assert.are.same(b:t():contiguous():float():totable(), b:float():t():totable())
      local c = retort.zeros(2, 3):bf16()
      c:copy_(x)
      assert.are.same(b:totable(), c:totable())
      c:fill_(0.1)
      assert.are.equal(0.10009765625, c:get(2, 2))
      local ok, err = pcall(retort.tensor, {1}, "bfloat")
      assert.is_false(ok)
      assert.matches('"bf16"/"bfloat16"', err, 1, true)
   end)

   it("rounds to nearest even as PyTorch does (ties, NaN, infinities, subnormals, random values)", function()
      if not python_has("torch") then return pending("python3-torch is not installed") end
      local vals = {0, 1, -1, 1 + 2 ^ -8, 1 + 3 * 2 ^ -8, -(1 + 3 * 2 ^ -8), 3.3, 1 / 3, 65504, 1e30, -1e-30,
                    3.3895313892515355e38 --[[largest bf16]], 3.4028234663852886e38 --[[FLT_MAX: rounds to inf]],
                    2 ^ -126, 1e-40, 2 ^ -133, 2 ^ -134, 3 * 2 ^ -134, 2 ^ -149, -2 ^ -149}
      retort.manualSeed(5)
      local r = (retort.randn(2000) * retort.randn(2000):mul(8):exp()):totable() -- many binades
      for _, v in ipairs(r) do vals[#vals + 1] = v end
      local x = retort.tensor(vals) -- f32, as torch gets them (both round the doubles to f32 first)
      local f32 = x:totable()
      local lines = {}
      for i, v in ipairs(f32) do lines[i] = ("%a"):format(v) end
      lines[#lines + 1] = "nan"; lines[#lines + 1] = "inf"; lines[#lines + 1] = "-inf"
      local input = support.tmpfile(table.concat(lines, "\n") .. "\n", ".txt")
      local script = support.tmpfile([[
import sys, torch
vals = [float.fromhex(l) if l not in ("nan", "inf", "-inf") else float(l) for l in open(sys.argv[1]).read().split()]
b = torch.tensor(vals, dtype=torch.float32).to(torch.bfloat16).to(torch.float32)
print("\n".join(float(v).hex() for v in b))
]], ".py")
      local res = support.sh(PY .. " " .. support.shquote(script) .. " " .. support.shquote(input))
      os.remove(input); os.remove(script)
      assert.are.equal(0, res.status, res.stderr)
      local want = {}
      local special = {nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge}
      for l in res.stdout:gmatch("[^\n]+") do want[#want + 1] = special[l] or tonumber(l) end
      local all = {}
      for i, v in ipairs(f32) do all[i] = v end
      all[#all + 1] = 0 / 0; all[#all + 1] = math.huge; all[#all + 1] = -math.huge
      local got = retort.tensor(all):bf16():float():totable()
      assert.are.equal(#all, #want)
      local bad = 0
      for i = 1, #all do
         local g, w = got[i], want[i]
         if not ((g ~= g and w ~= w) or g == w) then
            bad = bad + 1
            if bad <= 5 then print(("bf16 mismatch at %d: %a -> %a, torch %a"):format(i, all[i], g, w)) end
         end
      end
      assert.are.equal(0, bad)
   end)

   it("refuses every other op with an error naming bf16; nothing crashes, nothing is silently wrong", function()
      local f = retort.randn(4, 6)
      local idx = retort.tensor({1, 2}, "i64")
      -- every method, with several argument lists: it must raise or give a correct answer
      local argsets = {{}, {1}, {2}, {"bf16"}, {f}, {1, 2}, {idx}, {1, idx}, {2, 1, 2}, {0.5}}
      local allowed = {bf16 = 1, byte = 1, clone = 1, contiguous = 1, copy_ = 1, cpu = 1, detach = 1, device = 1,
                       dim = 1, double = 1, dtype = 1, fill_ = 1, flatten = 1, float = 1, get = 1, gradFn = 1,
                       indexSelect = 1, isContiguous = 1, isLeaf = 1, linear = 1, long = 1, nDimension = 1,
                       nElement = 1, narrow = 1, needsGrad = 1, numel = 1, permute = 1, replace_ = 1, select = 1,
                       set = 1, shape = 1, size = 1, squeeze = 1, stride = 1, t = 1, to = 1, totable = 1,
                       transpose = 1, type = 1, unsqueeze = 1, zeroGrad = 1, zero_ = 1, bernoulli_ = 1, print = 1,
                       view = 1, reshape = 1, expand = 1, matmul = 1, bmm = 1, conv2d = 1, item = 1, cuda = 1,
                       requiresGrad = 1}
      local names = {}
      for k in pairs(retort.Tensor) do names[#names + 1] = k end
      table.sort(names)
      local refused = 0
      for _, name in ipairs(names) do
         if name ~= "backward" and name ~= "close" and name ~= "print" then
            for _, a in ipairs(argsets) do
               local b = f:bf16()
               local args = a[1] == "bf16" and {f:bf16()} or a
               local ok = pcall(retort.Tensor[name], b, table.unpack(args))
               if ok and not allowed[name] then
                  error(("%s(%d args) accepted a bf16 tensor"):format(name, #args))
               end
               if not ok then refused = refused + 1 end
            end
         end
      end
      assert.is_true(refused > 100)
      -- the math ops name bf16 and say what to do
      local b = f:bf16()
      for _, op in ipairs{"abs", "relu", "neg", "sum", "max", "argmax", "dropout", "leakyRelu", "batchNorm", "exp",
                          "log", "sigmoid", "softmax", "logSoftmax", "mean", "sqrt", "norm", "logsumexp", "uniform_"} do
         local ok, err = pcall(retort.Tensor[op], b)
         assert.is_false(ok, op)
         assert.matches("bf16 tensors are not supported; convert with :float()", err, 1, true)
      end
      assert.matches("^exp: bf16 tensors are not supported", select(2, pcall(b.exp, b)))
      assert.matches("bf16 tensors are not supported", select(2, pcall(function() return b + b end)), 1, true)
      assert.matches("bf16", select(2, pcall(function() return b * f end)), 1, true)
      assert.matches("bf16", select(2, pcall(retort.loss.crossEntropy, b, retort.tensor({1, 2, 3, 4}, "i64"))),
                     1, true)
      assert.matches("bf16", select(2, pcall(function() return b:requiresGrad() end)), 1, true)
      -- the ones that work give the f32 answer of the rounded values
      local ix = retort.tensor({3, 1}, "i64")
      assert.are.same(f:bf16():float():indexSelect(1, ix):totable(), b:indexSelect(1, ix):float():totable())
   end)
end)

describe("retort.autocast", function()
   local info = retort.bf16Info()
   local function need_unit()
      if not info.available then pending("no bf16 unit: " .. info.reason) return false end
      return true
   end

   it("reports the bf16 unit oneDNN runs on", function()
      assert.are.equal("boolean", type(info.available))
      assert.matches("^oneDNN %d+%.%d+%.%d+$", info.library)
      if info.available then
         assert.truthy(info.unit == "amx" or info.unit == "avx512_bf16", info.unit)
         assert.are.equal(info.unit == "amx" and "avx512_core_amx" or "avx512_core_bf16", info.isa)
         -- the CPU really has it (Linux's flags)
         local cpuinfo = support.slurp("/proc/cpuinfo") or ""
         assert.truthy(cpuinfo:find(info.unit == "amx" and "amx_bf16" or "avx512_bf16", 1, true))
      else
         assert.is_string(info.reason)
      end
   end)

   it("runs fn in bf16 mode and restores the previous mode, also on error", function()
      if not need_unit() then return end
      assert.are.equal("f32", retort.autocastMode())
      local a, b = retort.autocast("bf16", function(x, y) return retort.autocastMode(), x + y end, 1, 2)
      assert.are.equal("bf16", a); assert.are.equal(3, b)
      assert.are.equal("f32", retort.autocastMode())
      local ok, err = pcall(retort.autocast, "bf16", function() error("boom") end)
      assert.is_false(ok); assert.matches("boom", err)
      assert.are.equal("f32", retort.autocastMode())
      retort.autocast("bf16", function()
         retort.autocast("f32", function() assert.are.equal("f32", retort.autocastMode()) end)
         assert.are.equal("bf16", retort.autocastMode())
      end)
      assert.matches("unknown precision 'f16'", select(2, pcall(retort.autocast, "f16", print)), 1, true)
      assert.matches("bad argument #2", select(2, pcall(retort.autocast, "bf16")), 1, true)
   end)

   it("runs linear, matmul and conv in bf16 (forward and backward) and the rest in f32", function()
      if not need_unit() then return end
      retort.manualSeed(11)
      local nn = retort.nn
      local net = nn.Sequential():add("conv", nn.Conv2d(3, 8, 3, {padding = 1})):add("bn", nn.BatchNorm2d(8))
         :add("relu", nn.ReLU()):add("pool", nn.MaxPool2d(2)):add("flat", nn.Flatten())
         :add("fc", nn.Linear(8 * 4 * 4, 10))
      local x = retort.randn(5, 3, 8, 8)
      local y = retort.tensor({1, 2, 3, 4, 5}, "i64")
      local teacher = retort.randn(5, 10)
      local function count(fn)
         local before = calls()
         local r = table.pack(fn())
         return calls() - before, table.unpack(r, 1, r.n)
      end
      retort.autocast("bf16", function()
         -- op by op: conv 1, linear 1, matmul 1; softmax, losses, KD, norms, reductions 0
         assert.are.equal(1, (count(function() return net._modules.conv:forward(x) end)))
         local n, h = count(function() return net:forward(x) end)
         assert.are.equal(2, n) -- conv + fc
         assert.are.equal("f32", h:dtype())
         assert.are.equal(1, (count(function() return h:matmul(retort.randn(10, 3)) end)))
         assert.are.equal(0, (count(function() return h:softmax(2) end)))
         assert.are.equal(0, (count(function() return h:logSoftmax(2) end)))
         assert.are.equal(0, (count(function() return retort.loss.crossEntropy(h, y) end)))
         assert.are.equal(0, (count(function() return retort.distill.kd(h, teacher, {T = 4, alpha = 1}) end)))
         assert.are.equal(0, (count(function() return h:sum() + h:mean(1):sum() + h:max() end)))
         assert.are.equal(0, (count(function() return net._modules.bn:forward(retort.randn(5, 8, 2, 2)) end)))
         assert.are.equal(0, (count(function() return h:exp():log() end)))
      end)
      -- backward (outside autocast): the GEMM/conv backward still in bf16, two per layer at most
      local h = retort.autocast("bf16", net.forward, net, x)
      local loss = retort.loss.crossEntropy(h, y)
      net:zeroGrad()
      local n = count(function() loss:backward() end)
      assert.are.equal(3, n) -- fc: dx and dW; conv: one call for dW (its input needs no gradient)
      for _, p in ipairs(net:parameters()) do assert.are.equal("f32", p.grad:dtype()) end
      -- autocast off: nothing in bf16
      assert.are.equal(0, (count(function() return net:forward(x) end)))
   end)

   it("gives the f32 weights the gradients of bf16 products (emulated in f32) near f32's", function()
      if not need_unit() then return end
      retort.manualSeed(12)
      local net = retort.models.mlp{sizes = {64, 48, 10}}
      local labels = {}
      for i = 1, 32 do labels[i] = i % 10 + 1 end
      local x, y = retort.randn(32, 64), retort.tensor(labels, "i64")
      local function grads(precision)
         net:zeroGrad()
         local logits = retort.autocast(precision, net.forward, net, x)
         retort.loss.crossEntropy(logits, y):backward()
         local g = {}
         for i, p in ipairs(net:parameters()) do g[i] = p.grad:clone() end
         return g
      end
      local g32, g16 = grads("f32"), grads("bf16")
      -- the same step written out in f32 with every product's operands rounded to bf16 by hand
      local p = net:parameters()
      local W1, b1, W2, b2 = p[1]:detach(), p[2]:detach(), p[3]:detach(), p[4]:detach()
      local function r(t) return t:bf16():float() end
      local xr = r(x)
      local h = (xr:matmul(r(W1):t()) + b1):relu()
      local l = (r(h):matmul(r(W2):t()) + b2):requiresGrad()
      retort.loss.crossEntropy(l, y):backward()
      local gl = r(l.grad)
      local dh = gl:matmul(r(W2)) * h:gt(0):float()
      local want = {r(dh):t():matmul(xr), dh:sum(1), gl:t():matmul(r(h)), l.grad:sum(1)}
      for i = 1, 4 do
         assert.are.equal("f32", g16[i]:dtype())
         local scale = want[i]:abs():max():item()
         assert.is_true(max_abs_diff(g16[i], want[i]) <= 1e-5 * scale, "parameter " .. i .. " vs the emulation")
         -- and near f32's: relative norm of the difference, and the direction
         local d = (g16[i] - g32[i]):pow(2):sum():sqrt():item() / g32[i]:pow(2):sum():sqrt():item()
         local cos = (g16[i] * g32[i]):sum():item() /
                     (g16[i]:pow(2):sum():sqrt():item() * g32[i]:pow(2):sum():sqrt():item())
         assert.is_true(d < 0.1 and cos > 0.995, ("parameter %d: relative difference %g, cosine %g"):format(i, d, cos))
         assert.is_true(d > 0, "bf16 really ran")
      end
   end)

   it("is refused with a clear message on a CPU without a bf16 unit (ONEDNN_MAX_CPU_ISA=AVX512_CORE)", function()
      local r = support.run({"-e", [[
local retort = require "retort"
local info = retort.bf16Info()
print(tostring(info.available), info.isa)
print(retort.tensor({1.5, 3.3}):bf16():float():totable()[2]) -- casts still work
print(tostring((select(2, pcall(retort.autocast, "bf16", print)))))
print(select(2, pcall(retort.train.fit, {model = {}, optimizer = {}, train = {}, precision = "bf16"})))
print(select(2, pcall(function() return retort.randn(2, 2):bf16():matmul(retort.randn(2, 2):bf16()) end)))
]]}, {env = {ONEDNN_MAX_CPU_ISA = "AVX512_CORE"}})
      assert.are.equal(0, r.status, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal("false avx512_core", lines[1]:gsub("\t", " "))
      assert.are.equal("3.296875", lines[2])
      if retort.cuda.isAvailable() then -- the GPU's tensor cores could take it: a CPU product refuses instead
         assert.are.equal("nil", lines[3])
      else
         assert.matches("bf16 autocast needs a CPU bf16 unit or a GPU: oneDNN runs on this CPU with neither AMX nor "
                        .. "AVX512-BF16", lines[3], 1, true)
      end
      assert.matches('precision = "bf16" needs a CPU bf16 unit', lines[4], 1, true)
      assert.matches("bf16 needs a CPU bf16 unit", lines[5], 1, true)
   end)
end)

describe("bf16 in HDF5", function()
   it("round-trips and h5py reads the values (an HDF5 float of 2 bytes)", function()
      local x = (retort.randn(30, 40) * 100):bf16()
      local dir = support.tmpdir()
      os.execute("mkdir -p " .. support.shquote(dir))
      local path = dir .. "/w.h5"
      retort.save(path, {w = x})
      local back = retort.load(path).w
      assert.are.equal("bf16", back:dtype())
      assert.are.same(x:float():totable(), back:float():totable())
      if not python_has("h5py") then support.rmrf(dir) return pending("python3-h5py is not installed") end
      local script = support.tmpfile([[
import sys, h5py
d = h5py.File(sys.argv[1], "r")["w"]
t = d.id.get_type()
print(d.dtype, t.get_size(), t.get_fields())
print("\n".join(float(v).hex() for v in d[:].ravel()))
]], ".py")
      local r = support.sh(PY .. " " .. support.shquote(script) .. " " .. support.shquote(path))
      os.remove(script); support.rmrf(dir)
      assert.are.equal(0, r.status, r.stderr)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal("float32 2 (15, 7, 8, 0, 7)", lines[1])
      local flat, i = {}, 0
      for _, row in ipairs(x:float():totable()) do for _, v in ipairs(row) do i = i + 1; flat[i] = v end end
      for k = 1, #flat do assert.are.equal(flat[k], tonumber(lines[k + 1])) end
   end)
end)

describe("train.fit{precision}", function()
   it("refuses an unknown precision and recipes check --precision", function()
      local ok, err = pcall(retort.train.fit, {model = {}, optimizer = {}, train = {}, precision = "fp16"})
      assert.is_false(ok)
      assert.matches([[option 'precision' must be "f32" or "bf16", got fp16]], err, 1, true)
      local r = support.run({"run", "recipes/demo_fit.lua", "--precision=f16"})
      assert.are.equal(2, r.status)
      assert.matches("option --precision must be f32 or bf16, got 'f16'", r.stderr, 1, true)
      if retort.bf16Info().available then
         r = support.run({"run", "recipes/demo_fit.lua", "--precision=bf16", "--steps=50"})
         assert.are.equal(0, r.status, r.stderr)
         assert.matches("lower%)", r.stdout)
      end
   end)

   it("trains a Fashion-MNIST slice in bf16 to no more than 0.5 points below f32 (same seed and epochs)", function()
      if not retort.bf16Info().available then return pending("no bf16 unit") end
      if not io.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb") then
         return pending("Debian's dataset-fashion-mnist is not installed")
      end
      local quiet = {write = function(self) return self end, flush = function() end}
      local function run(precision)
         retort.manualSeed(3)
         local tr, te = retort.data.fashionMnistLoaders{batchSize = 64, seed = 3, limit = 6000}
         local model = retort.models.mlp{sizes = {784, 512, 256, 10}}
         local opt = retort.optim.SGD(model:parameters(), {lr = 0.05, momentum = 0.9})
         local before = calls()
         local r = retort.train.fit{model = model, optimizer = opt, train = tr, test = te, epochs = 3,
                                    precision = precision, log = quiet}
         return r.last.test_acc, calls() - before
      end
      local acc32, n32 = run("f32")
      local acc16, n16 = run("bf16")
      assert.are.equal(0, n32)
      assert.is_true(n16 > 0)
      assert.is_true(acc32 > 0.75, "f32 learned: " .. acc32)
      -- within 0.5 points below f32 (above it is no failure: a slice this small moves by more than that
      -- between builds whose f32 rounding differs, e.g. FMA contraction in the sanitizer build)
      assert.is_true(acc16 >= acc32 - 0.005, ("bf16 %.4f vs f32 %.4f"):format(acc16, acc32))
   end)
end)
