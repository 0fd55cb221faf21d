-- Tensor ops -> ONNX nodes: one converter per retort tensor method (and per tensor function of the
-- retort table: cat, stack), called by the tracer (retort/onnx/trace.lua) after the op ran.
--
-- A converter gets (g, a, r): g the graph (retort/onnx/graph.lua), a the op's arguments as the
-- caller gave them (a[1] is the tensor a method was called on; a.n counts them), r its results.
-- It emits nodes whose outputs are r's tensors. Shapes come from the results, so a reshape's target
-- is the shape the op produced, not its (perhaps -1-holding) arguments. Dims in a are 1-based and
-- may be negative, as the tensor API takes them; ONNX's axes are 0-based.
--
-- Evaluation form only: BatchNorm uses its running statistics (a BatchNorm without them, which
-- normalises with the batch's statistics even when evaluating, is refused), Dropout is the
-- identity. Written for opset 13 (axes of ReduceSum, Squeeze, Unsqueeze and Slice are inputs), which
-- every opset up to 17 reads the same. The mappings:
--   relu Relu | leakyRelu LeakyRelu | tanh Tanh | sigmoid Sigmoid | exp, log, sqrt, abs, neg,
--   reciprocal | clamp Clip | add/sub/mul/div (+ - * / and numbers) Add/Sub/Mul/Div |
--   pow Pow | maximum Max | minimum Min | affine Mul + Add | matmul, bmm MatMul |
--   linear Gemm | conv2d Conv | batchNorm BatchNormalization |
--   maxPool2d MaxPool | avgPool2d [Pad +] AveragePool | adaptiveAvgPool2d GlobalAveragePool (1x1) or
--   AveragePool (sizes that divide) | softmax, logSoftmax (T) [Div +] Softmax, LogSoftmax |
--   sum ReduceSum | mean ReduceMean | max, min (values) ReduceMax, ReduceMin | view, reshape,
--   flatten Reshape or Flatten | transpose, t, permute Transpose | narrow Slice | select Gather |
--   squeeze Reshape | unsqueeze Unsqueeze | cat Concat | stack Unsqueeze + Concat |
--   contiguous, clone, detach, float, to, cpu, cuda, dropout (evaluating) the identity |
--   nn.ConvTranspose2d (the module, whole) ConvTranspose
local M = {}

local function ndim(v) return #v.shape end

-- 1-based (or negative) user dim -> 0-based axis
local function axis(d, n)
   d = d or 1
   if d < 0 then d = d + n + 1 end
   return d - 1
end

local function first_tensor(a)
   for i = 1, a.n do
      local x = a[i]
      if type(x) == "userdata" then return x end
   end
end

-- ------------------------------------------------------------------------------------------
-- element-wise

local UNARY = {relu = "Relu", tanh = "Tanh", sigmoid = "Sigmoid", exp = "Exp", log = "Log", sqrt = "Sqrt",
               abs = "Abs", neg = "Neg", reciprocal = "Reciprocal"}
for method, op in pairs(UNARY) do
   M[method] = function(g, a, r) g:node(op, {g:value(a[1])}, {{tensor = r[1]}}) end
end
M.__unm = M.neg

function M.leakyRelu(g, a, r)
   local slope = a[2] or 0.01
   g:node("LeakyRelu", {g:value(a[1])}, {{tensor = r[1]}}, {{"alpha", "float", slope + 0.0}})
end

function M.clamp(g, a, r)
   local x = g:value(a[1])
   local lo = a[2] and g:scalar(a[2], x.dtype) or false
   local hi = a[3] and g:scalar(a[3], x.dtype) or false
   g:node("Clip", {x, lo, hi}, {{tensor = r[1]}})
end

-- with a dynamic batch, a constant operand may not hold the sample's batch size along the batch dim
local function check_broadcast(g, c, out)
   if not (g.dynamic and out.batch) or c.batch or c.kind ~= "init" then return end
   local d = out.batch - (#out.shape - #c.shape)
   if d >= 1 and c.shape[d] ~= 1 then
      g:batchLost(("a constant of shape (%s) meets the batch dim"):format(table.concat(c.shape, "x")))
   end
end

-- an operand: a tensor's value, or a number as a scalar of the other operand's dtype
local function operand(g, v, like)
   if type(v) == "number" then return g:scalar(v, like and like:dtype() or "f32") end
   return g:value(v)
end

local function binary(op)
   return function(g, a, r)
      local like = first_tensor(a)
      local x, y = operand(g, a[1], like), operand(g, a[2], like)
      local out = g:node(op, {x, y}, {{tensor = r[1], batch = (x.batch and x.batch + (r[1]:dim() - ndim(x)))
                                                            or (y.batch and y.batch + (r[1]:dim() - ndim(y)))}})
      check_broadcast(g, y, out)
      check_broadcast(g, x, out)
   end
end
M.add, M.sub, M.mul, M.div = binary("Add"), binary("Sub"), binary("Mul"), binary("Div")
M.__add, M.__sub, M.__mul, M.__div = M.add, M.sub, M.mul, M.div
M.maximum, M.minimum = binary("Max"), binary("Min")

function M.pow(g, a, r)
   local x = g:value(a[1])
   g:node("Pow", {x, g:scalar(a[2], x.dtype)}, {{tensor = r[1]}})
end
M.__pow = M.pow

function M.affine(g, a, r)
   local x = g:value(a[1])
   local mul, add = a[2], a[3] or 0
   if add == 0 then
      g:node("Mul", {x, g:scalar(mul, x.dtype)}, {{tensor = r[1]}})
   elseif mul == 1 then
      g:node("Add", {x, g:scalar(add, x.dtype)}, {{tensor = r[1]}})
   else
      local y = g:node("Mul", {x, g:scalar(mul, x.dtype)}, {{shape = x.shape, dtype = x.dtype}})
      g:node("Add", {y, g:scalar(add, x.dtype)}, {{tensor = r[1]}})
   end
end

-- ------------------------------------------------------------------------------------------
-- products

local function matmul_batch(g, x, y, rank)
   if x.batch then
      if x.batch == ndim(x) and ndim(x) > 1 then g:batchLost("a matrix product contracts the batch dim") end
      if ndim(x) == 1 then g:batchLost("a matrix product contracts the batch dim") end
      return x.batch + (rank - ndim(x))
   elseif y.batch then
      if ndim(y) == 1 or y.batch == ndim(y) - 1 then g:batchLost("a matrix product contracts the batch dim") end
      return y.batch + (rank - ndim(y))
   end
   return false
end

function M.matmul(g, a, r)
   local x, y = g:value(a[1], "a"), g:value(a[2], "b")
   g:node("MatMul", {x, y}, {{tensor = r[1], batch = matmul_batch(g, x, y, r[1]:dim())}})
end
M.bmm = M.matmul

function M.linear(g, a, r)
   local x, w, b = g:value(a[1]), a[2], a[3]
   if ndim(x) ~= 2 then g.fail(("linear of a %d-D input has no mapping (Gemm takes matrices)"):format(ndim(x))) end
   if x.batch == 2 then g:batchLost("linear contracts the batch dim") end
   local ins = {x, g:value(w, "weight")}
   if b then ins[3] = g:value(b, "bias") end
   g:node("Gemm", ins, {{tensor = r[1]}}, {{"transB", "int", 1}})
end

-- ------------------------------------------------------------------------------------------
-- convolution, pooling, normalisation

local function pair(v, default)
   if v == nil then v = default end
   if type(v) == "number" then return {v, v} end
   return {v[1], v[2]}
end

function M.conv2d(g, a, r)
   local x, w, b, o = g:value(a[1]), a[2], a[3], a[4] or {}
   local ws = w:shape()
   local s, p, d = pair(o.stride, 1), pair(o.padding, 0), pair(o.dilation, 1)
   local ins = {x, g:value(w, "weight")}
   if b then ins[3] = g:value(b, "bias") end
   g:node("Conv", ins, {{tensor = r[1]}}, {
      {"kernel_shape", "ints", {ws[3], ws[4]}}, {"strides", "ints", s}, {"pads", "ints", {p[1], p[2], p[1], p[2]}},
      {"dilations", "ints", d}, {"group", "int", math.tointeger(o.groups or 1)}})
end

local function pool_attrs(a)
   local k = pair(a[2])
   local o = a[3] or {}
   local s, p = pair(o.stride, k), pair(o.padding, 0)
   return {{"kernel_shape", "ints", k}, {"strides", "ints", s}, {"pads", "ints", {p[1], p[2], p[1], p[2]}}}, o
end

function M.maxPool2d(g, a, r)
   local attrs = pool_attrs(a)
   g:node("MaxPool", {g:value(a[1])}, {{tensor = r[1]}}, attrs)
end

-- Zero padding counted in the average (countIncludePad, PyTorch's default) is written as a Pad of
-- zeros and an AveragePool without pads: the same numbers as AveragePool's count_include_pad = 1,
-- which OpenCV 4.6's DNN ignores (it averages over the pixels inside the map only).
function M.avgPool2d(g, a, r)
   local attrs, o = pool_attrs(a)
   local x = g:value(a[1])
   local p = pair(o.padding, 0)
   if o.countIncludePad ~= false and (p[1] > 0 or p[2] > 0) then
      local shape = {x.shape[1], x.shape[2], x.shape[3] + 2 * p[1], x.shape[4] + 2 * p[2]}
      x = g:node("Pad", {x, g:ints({0, 0, p[1], p[2], 0, 0, p[1], p[2]}, "pads")}, {{shape = shape, dtype = x.dtype}},
                 {{"mode", "string", "constant"}})
      attrs[3] = {"pads", "ints", {0, 0, 0, 0}}
   else
      attrs[#attrs + 1] = {"count_include_pad", "int", 0}
   end
   g:node("AveragePool", {x}, {{tensor = r[1]}}, attrs)
end

function M.adaptiveAvgPool2d(g, a, r)
   local x = g:value(a[1])
   local oh, ow = a[2], a[3] or a[2]
   local h, w = x.shape[3], x.shape[4]
   if oh == 1 and ow == 1 then
      g:node("GlobalAveragePool", {x}, {{tensor = r[1]}})
   elseif h % oh == 0 and w % ow == 0 then
      local k = {h // oh, w // ow}
      g:node("AveragePool", {x}, {{tensor = r[1]}}, {{"kernel_shape", "ints", k}, {"strides", "ints", k}})
   else
      g.fail(("adaptiveAvgPool2d(%d, %d) of a %dx%d map has windows of unequal sizes: no ONNX pooling computes it")
         :format(oh, ow, h, w))
   end
end

function M.batchNorm(g, a, r)
   local x, rm, rv, w, b, o = g:value(a[1]), a[2], a[3], a[4], a[5], a[6] or {}
   if o.training ~= false or not rm or not rv then
      g.fail("batch normalisation with the batch's own statistics (a BatchNorm in training mode, or one without " ..
             "running statistics) has no evaluation form: call model:evaluate(), or use trackRunningStats")
   end
   local c = x.shape[2]
   local scale = w and g:value(w, "weight") or g:constant(require("retort").ones(c), "scale")
   local bias = b and g:value(b, "bias") or g:constant(require("retort").zeros(c), "bias")
   g:node("BatchNormalization", {x, scale, bias, g:value(rm, "mean"), g:value(rv, "var")}, {{tensor = r[1]}},
      {{"epsilon", "float", (o.eps or 1e-5) + 0.0}})
end

function M.dropout(g, a, r)
   local p, training = a[2] or 0.5, a[3]
   if training ~= false and p > 0 then
      g.fail("dropout while training: call model:evaluate() (evaluating, dropout is the identity)")
   end
   g:alias(r[1], g:value(a[1]))
end

-- ------------------------------------------------------------------------------------------
-- softmax and reductions

local function softmax(op)
   return function(g, a, r)
      local x = g:value(a[1])
      local ax = axis(a[2] or -1, ndim(x))
      if x.batch == ax + 1 then g:batchLost(op .. " along the batch dim") end
      local T = a[3] or 1
      if T ~= 1 then x = g:node("Div", {x, g:scalar(T, x.dtype)}, {{shape = x.shape, dtype = x.dtype}}) end
      g:node(op, {x}, {{tensor = r[1]}}, {{"axis", "int", ax}})
   end
end
M.softmax, M.logSoftmax = softmax("Softmax"), softmax("LogSoftmax")

-- the batch dim after reducing axes (0-based list) with keepdims
local function reduced_batch(g, x, axes, keep, what)
   if not x.batch then return false end
   local b = x.batch
   for _, ax in ipairs(axes) do
      if ax + 1 == x.batch then g:batchLost(what .. " over the batch dim"); return false end
      if not keep and ax + 1 < x.batch then b = b - 1 end
   end
   return b
end

local prod

local function reduce_node(g, op, axes_as_input, x, axes, keep, outs)
   if axes_as_input then
      return g:node(op, {x, g:ints(axes, "axes")}, outs, {{"keepdims", "int", keep and 1 or 0}})
   end
   return g:node(op, {x}, outs, {{"axes", "ints", axes}, {"keepdims", "int", keep and 1 or 0}})
end

-- A reduction along one dim of a tensor of more than 4 dims (maxout's view (N, C, k, H, W):max(3))
-- is written over a 4-D view, the dims after the reduced one merged into one, then reshaped back:
-- the same numbers, and OpenCV 4.6's DNN drops no dim of it (it keeps reduced dims of 5-D inputs).
-- When x itself came from a Reshape, the new Reshape starts from that one's input instead.
local function reduce(op, axes_as_input)
   return function(g, a, r)
      local x = g:value(a[1])
      local axes, keep = {}, a[3] and true or false
      if a[2] == nil then
         for i = 1, ndim(x) do axes[i] = i - 1 end
         keep = false
      else
         axes[1] = axis(a[2], ndim(x))
      end
      local batch = reduced_batch(g, x, axes, keep, op)
      local outs = {{tensor = r[1], batch = batch}}
      local ax = axes[1]
      if #axes == 1 and ndim(x) > 4 and ax + 2 <= 4 and (not x.batch or x.batch <= ax + 1) then
         local shape = {table.unpack(x.shape, 1, ax + 1)}
         shape[ax + 2] = prod(x.shape, ax + 2, ndim(x))
         local src = x
         if x.producer and x.producer.op == "Reshape" then src = x.producer.inputs[1] end
         local target = {}
         for i, s in ipairs(shape) do target[i] = (i == x.batch) and -1 or s end
         local x4 = g:node("Reshape", {src, g:ints(target, "shape")},
                           {{shape = shape, dtype = x.dtype, batch = x.batch or false}})
         local rshape = {}
         for i, s in ipairs(shape) do if i ~= ax + 1 or keep then rshape[#rshape + 1] = (i == ax + 1) and 1 or s end end
         local red = reduce_node(g, op, axes_as_input, x4, axes, keep,
                                 {{shape = rshape, dtype = x.dtype, batch = batch}})
         local out = r[1]:shape()
         local final = {}
         for i, s in ipairs(out) do final[i] = (i == batch) and -1 or s end
         g:node("Reshape", {red, g:ints(final, "shape")}, outs)
      else
         reduce_node(g, op, axes_as_input, x, axes, keep, outs)
      end
   end
end
M.sum = reduce("ReduceSum", true)     -- opset 13: axes is an input
M.mean = reduce("ReduceMean", false)

-- max()/min(): the value; max(dim)/min(dim): values (converted) and indices (no mapping: an error when used)
local function extreme(op)
   local f = reduce(op, false)
   return function(g, a, r)
      f(g, a, r)
      if r.n >= 2 and r[2] ~= nil then
         g:poison(r[2], ("the indices that %s(dim) returns have no ONNX mapping here (only its values)"):format(
            op == "ReduceMax" and "max" or "min"))
      end
   end
end
M.max, M.min = extreme("ReduceMax"), extreme("ReduceMin")

-- ------------------------------------------------------------------------------------------
-- shapes

function prod(list, i, j)
   local p = 1
   for k = i, j do p = p * list[k] end
   return p
end

-- Reshape x to the shape of tensor y; the batch dim survives when it keeps its extent and the dims
-- before it keep their product (then it is written as -1 and every other dim as itself).
local function reshape(g, x, y)
   local out = y:shape()
   local batch = false
   if x.batch then
      local b = x.batch
      if b <= #out and out[b] == x.shape[b] and prod(out, 1, b - 1) == prod(x.shape, 1, b - 1) then
         batch = b
      else
         g:batchLost(("a reshape from (%s) to (%s) mixes the batch dim (dim %d) with others"):format(
            table.concat(x.shape, "x"), table.concat(out, "x"), b))
      end
   end
   local target = {}
   for i, s in ipairs(out) do target[i] = (i == batch) and -1 or s end
   g:node("Reshape", {x, g:ints(target, "shape")}, {{tensor = y, batch = batch}})
end

function M.view(g, a, r) reshape(g, g:value(a[1]), r[1]) end
M.reshape = M.view

function M.flatten(g, a, r)
   local x = g:value(a[1])
   local n = ndim(x)
   local s = n == 0 and 0 or axis(a[2] or 1, n)
   local e = n == 0 and 0 or axis(a[3] or -1, n)
   if s == 1 and e == n - 1 and n >= 2 and (x.batch == nil or x.batch == 1) then
      g:node("Flatten", {x}, {{tensor = r[1], batch = x.batch or false}}, {{"axis", "int", 1}})
   else
      reshape(g, x, r[1])
   end
end

local function transpose(g, x, perm, y)
   local batch = false
   if x.batch then
      for i, p in ipairs(perm) do if p + 1 == x.batch then batch = i end end
   end
   g:node("Transpose", {x}, {{tensor = y, batch = batch}}, {{"perm", "ints", perm}})
end

function M.transpose(g, a, r)
   local x = g:value(a[1])
   local n = ndim(x)
   local d0, d1 = axis(a[2], n), axis(a[3], n)
   local perm = {}
   for i = 1, n do perm[i] = i - 1 end
   perm[d0 + 1], perm[d1 + 1] = d1, d0
   transpose(g, x, perm, r[1])
end

function M.t(g, a, r) transpose(g, g:value(a[1]), {1, 0}, r[1]) end

function M.permute(g, a, r)
   local x = g:value(a[1])
   local dims = type(a[2]) == "table" and a[2] or {table.unpack(a, 2, a.n)}
   local perm = {}
   for i, d in ipairs(dims) do perm[i] = axis(d, ndim(x)) end
   transpose(g, x, perm, r[1])
end

function M.narrow(g, a, r)
   local x = g:value(a[1])
   local ax = axis(a[2], ndim(x))
   local start, len = a[3], a[4]
   if x.batch == ax + 1 then g:batchLost("narrow along the batch dim") end
   g:node("Slice", {x, g:ints({start - 1}, "starts"), g:ints({start - 1 + len}, "ends"), g:ints({ax}, "axes")},
      {{tensor = r[1], batch = x.batch or false}})
end

function M.select(g, a, r)
   local x = g:value(a[1])
   local ax = axis(a[2], ndim(x))
   local i = a[3]
   if i < 0 then i = i + x.shape[ax + 1] + 1 end
   if x.batch == ax + 1 then g:batchLost("select along the batch dim") end
   local batch = x.batch and (x.batch > ax + 1 and x.batch - 1 or x.batch) or false
   g:node("Gather", {x, g:constant(require("retort").tensor(i - 1, "i64"), "index")}, {{tensor = r[1], batch = batch}},
      {{"axis", "int", ax}})
end

function M.unsqueeze(g, a, r)
   local x = g:value(a[1])
   local ax = axis(a[2], ndim(x) + 1)
   local batch = x.batch and (ax + 1 <= x.batch and x.batch + 1 or x.batch) or false
   g:node("Unsqueeze", {x, g:ints({ax}, "axes")}, {{tensor = r[1], batch = batch}})
end

-- squeeze is a reshape: written as Reshape, which every runtime has (OpenCV 4.6 has no Squeeze with
-- the axes input that opset 13 gives it)
function M.squeeze(g, a, r)
   local x = g:value(a[1])
   local axes = {}
   if a[2] == nil then
      for i, s in ipairs(x.shape) do if s == 1 then axes[#axes + 1] = i end end
   else
      local ax = axis(a[2], ndim(x)) + 1
      if x.shape[ax] == 1 then axes[1] = ax end
   end
   if #axes == 0 then g:alias(r[1], x); return end
   for _, ax in ipairs(axes) do
      if x.batch == ax then g:batchLost("squeeze of the batch dim (the sample's batch is 1)") end
   end
   reshape(g, x, r[1])
end

local function identity(g, a, r)
   local x = g:value(a[1])
   if r[1]:dtype() ~= x.dtype then
      g.fail(("a conversion from %s to %s has no mapping here"):format(x.dtype, r[1]:dtype()))
   end
   g:alias(r[1], x)
end
M.contiguous, M.clone, M.detach, M.float, M.to, M.cpu, M.cuda = identity, identity, identity, identity, identity,
   identity, identity

-- ------------------------------------------------------------------------------------------
-- functions of the retort table

function M.cat(g, a, r)
   local list, dim = a[1], a[2]
   local ins = {}
   for i, t in ipairs(list) do ins[i] = g:value(t, "cat" .. i) end
   local n = r[1]:dim()
   local ax = axis(dim or 1, n)
   local batch = false
   for _, v in ipairs(ins) do if v.batch then batch = v.batch end end
   if batch == ax + 1 then g:batchLost("concatenation along the batch dim") end
   g:node("Concat", ins, {{tensor = r[1], batch = batch}}, {{"axis", "int", ax}})
end

function M.stack(g, a, r)
   local list, dim = a[1], a[2]
   local n = r[1]:dim()
   local ax = axis(dim or 1, n)
   local ins, batch = {}, false
   for i, t in ipairs(list) do
      local v = g:value(t, "stack" .. i)
      local shape = {}
      for k = 1, #v.shape do shape[#shape + 1] = v.shape[k] end
      table.insert(shape, ax + 1, 1)
      local b = v.batch and (ax + 1 <= v.batch and v.batch + 1 or v.batch) or false
      if b then batch = b end
      ins[i] = g:node("Unsqueeze", {v, g:ints({ax}, "axes")}, {{shape = shape, dtype = v.dtype, batch = b}})
   end
   g:node("Concat", ins, {{tensor = r[1], batch = batch}}, {{"axis", "int", ax}})
end

-- ------------------------------------------------------------------------------------------
-- modules converted whole (their own ops are not traced): those composed of ops that would map
-- poorly, keyed by class name; (g, module, input value, output tensor)

M.modules = {}

-- nn.ConvTranspose2d spreads its input with zeros (zerosLike, stack) before a convolution: ONNX has
-- the operator itself, with the weight in the same (in, out, kh, kw) layout
function M.modules.ConvTranspose2d(g, m, x, y)
   local ins = {x, g:value(m.weight, "weight")}
   if m.bias then ins[3] = g:value(m.bias, "bias") end
   local p = m.padding
   g:node("ConvTranspose", ins, {{tensor = y}}, {{"kernel_shape", "ints", {m.kernel[1], m.kernel[2]}},
      {"strides", "ints", {m.stride[1], m.stride[2]}}, {"pads", "ints", {p[1], p[2], p[1], p[2]}}})
end

-- ------------------------------------------------------------------------------------------

--- supported(): the names of the ops with a mapping, sorted
function M.supported()
   local names = {}
   for k in pairs(M) do
      if type(M[k]) == "function" and not k:match("^__") and k ~= "supported" then names[#names + 1] = k end
   end
   table.sort(names)
   return names
end

return M
