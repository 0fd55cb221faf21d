-- retort.onnx: a model as an ONNX file, for runtimes outside retort (ONNX Runtime, OpenCV's DNN
-- module, TensorRT, ...).
--
--   local info = retort.onnx.export(net, retort.randn(2, 3, 32, 32), "net.onnx")
--   --> {path = "net.onnx", bytes = 312345, opset = 13, nodes = 29, initializers = 41,
--        ops = {Conv = 10, BatchNormalization = 10, Relu = 7, Add = 3, ...},
--        inputs = {{name = "input", shape = {"N", 3, 32, 32}}}, outputs = {{name = "output", shape = {"N", 100}}}}
--   retort.onnx.export(net, x, "net.onnx", {opset = 13, dynamicBatch = true, inputName = "input",
--                                            outputName = "output", taps = {"pool"}, doc = "..."})
--   local desc, ops = retort.onnx.graph(net, x)      -- the same graph as a Lua table, nothing written
--
-- How: the model runs one forward on `sample` in evaluation mode, without autograd, while its tensor
-- ops are traced (retort/onnx/trace.lua says how and why); each op becomes standard ONNX operators
-- (retort/onnx/ops.lua lists the mapping); parameters and buffers become initializers named by their
-- module paths ("layer1.1.conv1.weight"); anything the forward computes from parameters alone is
-- folded into a constant; what the output does not depend on is dropped. The file is written by the
-- C core with protobuf-c against ONNX's own onnx.proto (core/src/onnx_write.c).
--
-- Options:
--   opset        13 (default) .. 17: the ai.onnx opset the graph declares (IR version 7 for 13-14,
--                8 for 15-17)
--   dynamicBatch true (default): the input's first dim and every dim it flows into are the symbolic
--                "N", so the file runs on any batch size; false fixes every size to the sample's
--   inputName, outputName   "input", "output"
--   taps         module paths whose outputs become extra graph outputs (named by the path), as
--                model:forward(x, {taps = ...}) would return them: a teacher's features, say
--   doc          the model's doc_string
-- The model's training/evaluation mode is put back afterwards. An op with no mapping is an error that
-- names the op and the module that ran it; so is anything the graph could not express (reading a
-- tensor's values, in-place writes, dropout while training, a reshape that mixes the batch dim
-- when the batch is dynamic).
local retort = require "retort"
local core = require "retort.core"
local options = require "retort.options"
local Module = require "retort.nn.Module"

local M = {}

local OPTIONS = {opset = true, dynamicBatch = true, inputName = true, outputName = true, taps = true, doc = true}
local IR_VERSION = {[13] = 7, [14] = 7, [15] = 8, [16] = 8, [17] = 8}

--- available() -> true, or false and why (this build has no protobuf-c)
function M.available() return core.onnxAvailable() end

local function check_args(fn, model, sample, opts, level)
   if not Module.isInstance(model, Module) then
      error(("bad argument #1 to '%s' (an nn.Module expected, got %s)"):format(fn, type(model)), level + 1)
   end
   if not retort.isTensor(sample) then
      error(("bad argument #2 to '%s' (a sample input tensor expected, got %s)"):format(fn, type(sample)), level + 1)
   end
   opts = opts or {}
   if type(opts) ~= "table" then
      error(("bad argument #4 to '%s' (an options table expected, got %s)"):format(fn, type(opts)), level + 1)
   end
   options.check("retort.onnx." .. fn, opts, OPTIONS, level + 1)
   local opset = opts.opset or 13
   if not IR_VERSION[opset] then
      error(("retort.onnx.%s: opset must be an integer from 13 to 17, got %s"):format(fn, tostring(opset)), level + 1)
   end
   for _, k in ipairs{"inputName", "outputName", "doc"} do
      if opts[k] ~= nil and (type(opts[k]) ~= "string" or (k ~= "doc" and opts[k] == "")) then
         error(("retort.onnx.%s: %s must be a non-empty string, got %s"):format(fn, k, tostring(opts[k])), level + 1)
      end
   end
   if opts.taps ~= nil and type(opts.taps) ~= "table" then
      error(("retort.onnx.%s: taps must be a list of module paths, got %s"):format(fn, type(opts.taps)), level + 1)
   end
   if opts.dynamicBatch ~= nil and type(opts.dynamicBatch) ~= "boolean" then
      error(("retort.onnx.%s: dynamicBatch must be a boolean, got %s"):format(fn, tostring(opts.dynamicBatch)),
         level + 1)
   end
   return opts, opset
end

-- trace in evaluation mode, putting every module's mode back afterwards
local function traced(model, sample, opts, opset)
   local modes = {}
   for _, e in ipairs(model:namedModules()) do modes[#modes + 1] = {e[2], e[2]._training} end
   model:evaluate()
   local trace = require "retort.onnx.trace"
   local ok, g, y, taps = pcall(trace.run, model, sample,
      {dynamic = opts.dynamicBatch ~= false, taps = opts.taps, inputName = opts.inputName or "input"})
   for _, m in ipairs(modes) do m[1]._training = m[2] end
   if not ok then error(g, 0) end
   if not retort.isTensor(y) then
      error(("retort.onnx.export: the model's forward returned %s, not a tensor"):format(type(y)), 0)
   end
   local outputs = {}
   local function out(t, name)
      local v = g:traced(t)
      if not v then
         error(("retort.onnx.export: the output '%s' does not depend on the input (or was computed by an op the " ..
                "trace could not see)"):format(name), 0)
      end
      outputs[#outputs + 1] = {v, name}
   end
   out(y, opts.outputName or "output")
   for _, name in ipairs(opts.taps or {}) do out(taps[name], name) end
   local version = type(retort.version) == "string" and retort.version or "?"
   local desc, ops = g:finish(outputs, {
      opset = opset, irVersion = IR_VERSION[opset], producer = "retort", producerVersion = version,
      graphName = model.__typename or "model", doc = opts.doc,
   })
   return desc, ops
end

--- graph(model, sample [, opts]) -> description, op counts: the graph export would write, as the
--- table core.onnxSave takes (inputs, initializers, nodes, outputs), without writing anything
function M.graph(model, sample, opts)
   local o, opset = check_args("graph", model, sample, opts, 2)
   return traced(model, sample, o, opset)
end

--- export(model, sample, path [, opts]) -> info (see the top of this file)
function M.export(model, sample, path, opts)
   local o, opset = check_args("export", model, sample, opts, 2)
   if type(path) ~= "string" or path == "" then
      error(("bad argument #3 to 'export' (a file path expected, got %s)"):format(type(path)), 2)
   end
   local ok, why = core.onnxAvailable()
   if not ok then error("retort.onnx.export: " .. why, 2) end
   local desc, ops = traced(model, sample, o, opset)
   local wrote, saved = pcall(core.onnxSave, path, desc)
   if not wrote then error("retort.onnx.export: " .. tostring(saved):gsub("^onnxSave: ", ""), 0) end
   local info = {path = path, bytes = saved.bytes, nodes = saved.nodes, initializers = saved.initializers,
                 opset = opset, ops = ops, inputs = {}, outputs = {}}
   for _, v in ipairs(desc.inputs) do info.inputs[#info.inputs + 1] = {name = v.name, shape = v.shape} end
   for _, v in ipairs(desc.outputs) do info.outputs[#info.outputs + 1] = {name = v.name, shape = v.shape} end
   return info
end

--- summary(ops): "Conv 7, BatchNormalization 7, Relu 7, ..." (most used first, then by name)
function M.summary(ops)
   local list = {}
   for op, n in pairs(ops) do list[#list + 1] = {op, n} end
   table.sort(list, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
   for i, e in ipairs(list) do list[i] = e[1] .. " " .. e[2] end
   return table.concat(list, ", ")
end

return M
