-- Tracing a model into an ONNX graph: the model runs one ordinary forward on the sample, in
-- evaluation mode and without a graph, while every tensor op is watched.
--
-- Why the tensor API and not the module tree or the autograd tape: retort's models compute much of
-- their forward in their own apply with tensor methods (x:relu(), a + b for a residual,
-- x:adaptiveAvgPool2d(1):flatten(2), retort.cat, a channel shuffle's view/transpose/view), which
-- a walk over modules would not see; the tape records only ops that need gradients, and its nodes
-- keep no attributes (strides, pads, dims). So for the length of the forward the tracer puts a
-- wrapper in front of every method of the tensor methods table (core.Tensor, which every tensor's
-- __index reads), of the arithmetic metamethods, and of the functions of the retort table. A
-- wrapper whose arguments hold no traced tensor calls the op and nothing else, so work on
-- parameters alone (a transposed weight) runs normally and its result becomes a constant. One that
-- sees a traced tensor runs the op, then the op's converter (retort/onnx/ops.lua), which emits ONNX
-- nodes whose outputs are the op's results; an op without a converter is an error naming the op and
-- the module that called it. Ops inside a converter, or inside an op, are not watched (a depth
-- count). Module.runChild is wrapped too, to keep the path of the module running: it names nodes
-- ("layer1.1.conv1/Conv") and errors ("layer1.1 (BasicBlock): tensor op 'cumsum' ...").
-- Everything is put back when the forward ends, however it ends.
--
-- What cannot be traced is refused rather than baked in: reading a traced tensor's values (item,
-- totable, get: the graph would follow this sample's data), in-place writes to or from traced
-- tensors, and the indices of max/min.
local retort = require "retort"
local core = require "retort.core"
local Module = require "retort.nn.Module"
local Graph = require "retort.onnx.graph"
local ops = require "retort.onnx.ops"

local M = {}

-- tensor methods that read shapes and flags only
local QUERY = {shape = true, size = true, stride = true, dim = true, nDimension = true, numel = true,
               nElement = true, dtype = true, device = true, isContiguous = true, needsGrad = true, isLeaf = true,
               gradFn = true, print = true, type = true}
-- tensor methods that read values
local READS = {item = true, totable = true, get = true}
-- functions of the retort table that may see traced tensors without computing with them
local PASS = {isTensor = true, noGrad = true, isGradEnabled = true, setGradEnabled = true}
local ARITH = {"__add", "__sub", "__mul", "__div", "__unm", "__pow"}

local active = false

-- the module path stack and the messages that name it
local function describe(stack, root)
   local top = stack[#stack]
   if not top then return ("the model's own forward (%s)"):format(root) end
   return ("%s (%s)"):format(top.path, top.type)
end

--- run(model, sample, {dynamic, taps, inputName}) -> graph, output tensor, taps table
function M.run(model, sample, o)
   if active then error("retort.onnx.export: an export is already tracing (exports cannot nest)", 0) end
   local stack = {}
   local rootType = model.__typename or "Module"
   local function where() return stack[#stack] and stack[#stack].path or "" end
   local function fail(msg)
      error(("retort.onnx.export: %s: %s"):format(describe(stack, rootType), msg), 0)
   end
   local g = Graph.new{dynamic = o.dynamic, fail = fail, where = where,
                       describe = function() return describe(stack, rootType) end}
   g:addParams(model:namedParameters())
   g:addParams(model:namedBuffers())
   g:input(sample, o.inputName or "input")

   local depth = 0

   -- the traced tensor among the arguments (one level into tables: cat's list), failing on a poisoned one
   local function traced_arg(a)
      local found = false
      local function look(x)
         if type(x) == "userdata" then
            local why = g.poisoned[x]
            if why then fail(why) end
            if g.values[x] then found = true end
         end
      end
      for i = 1, a.n do
         local x = a[i]
         if type(x) == "table" and not Module.isInstance(x, Module) then
            for _, y in ipairs(x) do look(y) end
         else
            look(x)
         end
      end
      return found
   end

   local function wrap(name, orig, kind)
      local convert = ops[name]
      return function(...)
         if depth > 0 then return orig(...) end
         local a = table.pack(...)
         if not traced_arg(a) then return orig(...) end
         if kind == "function" then
            if PASS[name] then return orig(...) end
         else
            if QUERY[name] and not (name == "type" and a.n > 1) then return orig(...) end
            if READS[name] then
               fail(("reads the values of a traced tensor (%s): the graph would depend on this sample's data")
                  :format(name))
            end
            if name:sub(-1) == "_" then
               fail(("in-place op '%s' on a traced tensor: ONNX graphs have no in-place writes"):format(name))
            end
         end
         if not convert then
            local label = kind == "function" and ("retort.%s"):format(name) or ("tensor op '%s'"):format(name)
            fail(("%s has no ONNX mapping (mapped: %s)"):format(label, table.concat(ops.supported(), ", ")))
         end
         depth = depth + 1
         local r = table.pack(pcall(orig, ...))
         if not r[1] then
            depth = depth - 1
            error(r[2], 0)
         end
         local results = table.pack(table.unpack(r, 2, r.n))
         local ok, err = pcall(convert, g, a, results)
         depth = depth - 1
         if not ok then error(err, 0) end
         return table.unpack(results, 1, results.n)
      end
   end

   -- install the wrappers, remembering what to put back
   local saved = {}
   local function patch(tbl, key, fn)
      saved[#saved + 1] = {tbl, key, rawget(tbl, key)}
      rawset(tbl, key, fn)
   end
   local methods = core.Tensor
   local names = {}
   for k, v in pairs(methods) do if type(v) == "function" then names[#names + 1] = k end end
   for _, k in ipairs(names) do patch(methods, k, wrap(k, methods[k], "method")) end
   local mt = getmetatable(sample)
   for _, k in ipairs(ARITH) do
      if rawget(mt, k) then patch(mt, k, wrap(k, rawget(mt, k), "method")) end
   end
   local fnames = {}
   for k, v in pairs(core) do if type(v) == "function" then fnames[#fnames + 1] = k end end
   for _, k in ipairs(fnames) do
      local orig = core[k]
      local w = wrap(k, orig, "function")
      if rawget(retort, k) == orig then patch(retort, k, w) end
      patch(core, k, w)
   end
   local runChild = Module.runChild
   patch(Module, "runChild", function(self, name, x, ctx)
      local child = self._modules[name]
      local path = where() == "" and tostring(name) or (where() .. "." .. tostring(name))
      stack[#stack + 1] = {path = path, type = child and child.__typename or "?"}
      local whole = child and ops.modules[child.__typename]
      local y
      if whole and depth == 0 and retort.isTensor(x) and g.values[x] then
         depth = depth + 1 -- the module's own ops run unwatched; it becomes one node
         local ok, r = pcall(runChild, self, name, x, ctx)
         if ok then
            local converted, err = pcall(whole, g, child, g.values[x], r)
            if not converted then ok, r = false, err end
         end
         depth = depth - 1
         if not ok then error(r, 0) end
         y = r
      else
         y = runChild(self, name, x, ctx)
      end
      stack[#stack] = nil
      return y
   end)

   active = true
   local ok, y, taps = pcall(function()
      return retort.noGrad(function()
         local whole = ops.modules[rootType]
         if whole then -- the model is itself a module converted whole (a lone ConvTranspose2d)
            depth = depth + 1
            local out = model:forward(sample)
            depth = depth - 1
            whole(g, model, g.values[sample], out)
            return out, {}
         end
         if o.taps and #o.taps > 0 then return model:forward(sample, {taps = o.taps}) end
         return model:forward(sample)
      end)
   end)
   active = false
   for i = #saved, 1, -1 do rawset(saved[i][1], saved[i][2], saved[i][3]) end
   if not ok then error(y, 0) end
   return g, y, taps or {}
end

return M
