-- The ONNX graph a trace builds (retort/onnx/trace.lua records, retort/onnx/ops.lua converts): values,
-- nodes and constants, then pruned and laid out as the table core.onnxSave writes.
--
-- A value is a record {name, shape (a Lua list), dtype ("f32"), batch (the 1-based dim that holds
-- the batch, or nil), producer (the node, for node outputs)}. Tensors met during the trace map to
-- values through a weak table: a traced tensor to the value its op produced; a parameter or buffer of
-- the model to an initializer named by its path ("layer1.1.conv1.weight"); any other tensor (made
-- inside a forward from parameters alone, or from nothing) to a constant initializer holding a copy
-- of its values, named after the module that made it. Constant folding is thus what tracing does
-- anyway: only what depends on the input becomes a node.
--
-- The batch dim: with dynamicBatch the input's first dim is the symbolic "N", and every converter
-- says where the batch goes (ops.lua); an op that would mix it with other dims (a reshape that
-- merges it, a reduction over it, a slice of it) marks its node, and a marked node that the outputs
-- need is refused with a message that says to export with dynamicBatch = false, where every size is
-- the sample's (a value the outputs do not need may do anything).
local retort = require "retort"

local Graph = {}
Graph.__index = Graph

--- Graph.new{dynamic = bool, fail = function(msg) (raises, naming the module being traced),
---           where = function() -> module path, describe = function() -> "path (Class)"}
function Graph.new(o)
   local g = setmetatable({}, Graph)
   g.dynamic = o.dynamic
   g.fail = o.fail
   g.where = o.where or function() return "" end   -- current module path ("" at the root)
   g.describe = o.describe or function() return "the model" end -- "layer1.1 (BasicBlock)" for messages
   g.nodes = {}
   g.values = setmetatable({}, {__mode = "k"})    -- tensor -> value
   g.params = {}                                   -- parameter/buffer tensor -> path
   g.inits = {}                                    -- initializer values, in creation order
   g.used = {}                                     -- names taken (values and nodes share one space)
   g.scalars = {}                                  -- "dtype value" -> initializer value
   g.poisoned = setmetatable({}, {__mode = "k"})  -- tensor -> why it has no mapping
   return g
end

--- name(base): base, or base_2, base_3, ... when taken; marks it taken.
function Graph:name(base)
   local n, k = base, 1
   while self.used[n] do
      k = k + 1
      n = base .. "_" .. k
   end
   self.used[n] = true
   return n
end

--- prefix(suffix): "path/suffix" for the module being traced ("suffix" at the root)
function Graph:prefix(suffix)
   local p = self.where()
   return p == "" and suffix or (p .. "/" .. suffix)
end

--- addParams(named): parameters or buffers ({path, tensor} lists) become initializers named by path when used
function Graph:addParams(named)
   for _, e in ipairs(named) do
      if self.params[e[2]] == nil then self.params[e[2]] = e[1] end
   end
end

--- input(tensor, name): the graph input standing for the sample
function Graph:input(t, name)
   local v = {name = self:name(name), shape = t:shape(), dtype = t:dtype(), kind = "input"}
   if self.dynamic then
      if t:dim() < 1 then
         error("retort.onnx.export: a dynamic batch needs a sample with a batch dim (dynamicBatch = false for a " ..
               "0-dim input)", 0)
      end
      v.batch = 1
   end
   self.values[t] = v
   self.inputValue = v
   return v
end

--- traced(t): the value of a tensor the trace produced (or the input), else nil
function Graph:traced(t) return self.values[t] end

local function init_value(self, name, tensor)
   local v = {name = self:name(name), shape = tensor:shape(), dtype = tensor:dtype(), kind = "init", tensor = tensor}
   self.inits[#self.inits + 1] = v
   return v
end

--- value(t, hint): the value of tensor t: traced, a parameter's initializer, or a new constant
--- (hint names it: "path/hint")
function Graph:value(t, hint)
   local v = self.values[t]
   if v then return v end
   local path = self.params[t]
   if path then
      v = init_value(self, path, t)
   else
      -- a copy: the tensor might be changed in place after the op that used it
      v = init_value(self, self:prefix(hint or "const"), t:detach():clone():contiguous():cpu())
   end
   self.values[t] = v
   return v
end

--- constant(tensor, hint): a new initializer holding tensor (made by a converter)
function Graph:constant(t, hint) return init_value(self, self:prefix(hint), t) end

--- ints(list, hint): a 1-D i64 initializer (shapes, axes, slice bounds)
function Graph:ints(list, hint) return init_value(self, self:prefix(hint), retort.tensor(list, "i64")) end

--- scalar(x, dtype): a 0-dim initializer holding x, shared by every use of the same number
function Graph:scalar(x, dtype)
   dtype = dtype or "f32"
   local key = dtype .. " " .. string.format("%.17g", x)
   local v = self.scalars[key]
   if not v then
      v = init_value(self, "scalar_" .. string.format("%.9g", x):gsub("[^%w%.%-]", "_"), retort.tensor(x, dtype))
      self.scalars[key] = v
   end
   return v
end

--- poison(t, why): a tensor the graph cannot express (max's indices); using it later fails with why
function Graph:poison(t, why) self.poisoned[t] = why end

--- alias(t, v): tensor t is the same value as v (contiguous, clone, dropout when evaluating, ...)
function Graph:alias(t, v) self.values[t] = v end

--- node(op, inputs, outputs, attrs): one ONNX node.
---   inputs: values (or false for an omitted optional input)
---   outputs: list of {tensor = t} and/or {shape = {...}, dtype =}, each with an optional batch
---            (a dim, or false for none); without one, the batch follows the first input that has
---            one, moved by the difference in rank (element-wise broadcasting)
---   attrs: list of {name, kind, value} (kind "int", "float", "ints", "floats", "string")
--- Returns the output values.
function Graph:node(op, inputs, outputs, attrs)
   local name = self:name(self:prefix(op))
   local node = {op = op, name = name, inputs = inputs, outputs = {}, attrs = attrs or {}, lost = self.lost}
   self.lost = nil
   local first
   for _, v in ipairs(inputs) do
      if v and v.batch then first = v; break end
   end
   for i, o in ipairs(outputs) do
      local shape = o.tensor and o.tensor:shape() or o.shape
      local batch = o.batch
      if batch == nil and first then batch = first.batch + (#shape - #first.shape) end
      if batch == false or (batch and (batch < 1 or batch > #shape)) then batch = nil end
      local v = {name = i == 1 and name or self:name(name .. ":" .. i), shape = shape, batch = batch,
                 dtype = o.tensor and o.tensor:dtype() or o.dtype or "f32", producer = node, kind = "node"}
      node.outputs[i] = v
      if o.tensor then self.values[o.tensor] = v end
   end
   self.nodes[#self.nodes + 1] = node
   return table.unpack(node.outputs)
end

--- batchLost(what): with a dynamic batch, an op that would mix the batch dim with others. The next
--- node carries the refusal; it is raised only if that node is part of the exported graph (a value
--- the output does not need may do anything).
function Graph:batchLost(what)
   if self.dynamic and not self.lost then
      self.lost = ("retort.onnx.export: %s: %s; the batch size would be fixed in the graph: export with " ..
                   "dynamicBatch = false"):format(self.describe(), what)
   end
end

--- finish(outputs): the description core.onnxSave takes. outputs: list of {value, name}.
--- Only nodes and initializers that the outputs depend on are kept.
function Graph:finish(outputs, meta)
   -- outputs named as asked: a node output is renamed (unless it is also another output); an input,
   -- an initializer or a value already given out gets an Identity node
   local taken = {}
   local outs = {}
   for _, o in ipairs(outputs) do
      local v, name = o[1], o[2]
      if v.kind ~= "node" or taken[v] then
         v = self:node("Identity", {v}, {{shape = v.shape, dtype = v.dtype, batch = v.batch or false}})
      end
      taken[v] = true
      self.used[v.name] = nil
      if self.used[name] then
         error(("retort.onnx.export: output name '%s' is already the name of a value in the graph"):format(name), 0)
      end
      self.used[name] = true
      v.name = name
      outs[#outs + 1] = v
   end
   -- keep what the outputs reach
   local live, nlive = {}, {}
   local stack = {}
   for _, v in ipairs(outs) do stack[#stack + 1] = v end
   while #stack > 0 do
      local v = table.remove(stack)
      if not live[v] then
         live[v] = true
         local n = v.producer
         if n and not nlive[n] then
            if n.lost then error(n.lost, 0) end
            nlive[n] = true
            for _, iv in ipairs(n.inputs) do if iv then stack[#stack + 1] = iv end end
         end
      end
   end
   local function dims(v)
      local d = {}
      for i, s in ipairs(v.shape) do d[i] = (i == v.batch) and "N" or s end
      return d
   end
   local desc = {inputs = {}, initializers = {}, nodes = {}, outputs = {}}
   for k, val in pairs(meta or {}) do desc[k] = val end
   local iv = self.inputValue
   desc.inputs[1] = {name = iv.name, dtype = iv.dtype, shape = dims(iv)}
   for _, v in ipairs(self.inits) do
      if live[v] then desc.initializers[#desc.initializers + 1] = {name = v.name, tensor = v.tensor} end
   end
   local ops = {}
   for _, n in ipairs(self.nodes) do
      if nlive[n] then
         local ins, outsn = {}, {}
         for i, v in ipairs(n.inputs) do ins[i] = v and v.name or "" end
         for i, v in ipairs(n.outputs) do outsn[i] = v.name end
         desc.nodes[#desc.nodes + 1] = {op = n.op, name = n.name, inputs = ins, outputs = outsn, attrs = n.attrs}
         ops[n.op] = (ops[n.op] or 0) + 1
      end
   end
   for _, v in ipairs(outs) do
      desc.outputs[#desc.outputs + 1] = {name = v.name, dtype = v.dtype, shape = dims(v)}
   end
   return desc, ops
end

return Graph
